import { api, t, setTheme } from "../huoban.js";
import { start } from "./chrome.js";
import "../components/goal-progress.js";
import "../components/nudge-banner.js";

const theme = new URLSearchParams(location.search).get("theme");
if (theme) setTheme(theme);
await start();
const goalEl = document.querySelector("#goal"), nudge = document.querySelector("#nudge");
api.get("/api/v1/goals").then((list) => {
  const g = list.items[0];
  if (!g) { goalEl.setAttribute("state", "empty"); return; }
  goalEl.setAttribute("goal-id", g.id); goalEl.setAttribute("live", ""); goalEl.data = g;
  goalEl.remove(); document.querySelector("main").insertBefore(goalEl, document.querySelector(".grid2"));
}, (e) => { goalEl.error = e; });
api.get("/api/v1/checkins/calendar").then((c) => {
  if (c.checked_in_today) return;
  nudge.data = { text: c.current_streak ? t("nudge.streak", { n: c.current_streak }) : t("nudge.first"), action: t("nudge.go") };
}, () => {});
