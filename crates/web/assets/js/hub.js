import { api, t, setTheme, setElderly, isElderly } from "../huoban.js";
import { start } from "./chrome.js";
import "../components/goal-progress.js";

const theme = new URLSearchParams(location.search).get("theme");
if (theme) setTheme(theme);
const me = await start();
const goalEl = document.querySelector("#goal"), nudge = document.querySelector("#nudge");
api.get("/api/v1/goals").then((list) => {
  const g = list.items[0];
  if (!g) { goalEl.setAttribute("state", "empty"); return; }
  goalEl.setAttribute("goal-id", g.id); goalEl.setAttribute("live", ""); goalEl.data = g;
  goalEl.remove(); document.querySelector("main").insertBefore(goalEl, document.querySelector(".grid2"));
}, (e) => { goalEl.error = e; });
// Nudges are not needed for the first paint: loaded after the page is interactive.
await import("../components/nudge-banner.js");
// Older customers are offered large print once (the choice is kept in their profile).
if (me?.elderly_mode_suggested && !isElderly() && !localStorage.getItem("huoban.elderly-offered")) {
  const offer = document.createElement("h-nudge");
  offer.setAttribute("href", "#");
  offer.data = { text: t("nudge.elderly"), action: t("nudge.elderly_go") };
  offer.addEventListener("nudge-action", () => { localStorage.setItem("huoban.elderly-offered", "1"); setElderly(true); offer.hidden = true; offer.render(); });
  offer.addEventListener("nudge-dismiss", () => localStorage.setItem("huoban.elderly-offered", "1"));
  document.querySelector("main").prepend(offer);
}
api.get("/api/v1/checkins/calendar").then((c) => {
  if (c.checked_in_today) return;
  nudge.data = { text: c.current_streak ? t("nudge.streak", { n: c.current_streak }) : t("nudge.first"), action: t("nudge.go") };
}, () => {});
