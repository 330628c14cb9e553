import { api, t, fmt } from "../huoban.js";
import { start } from "./chrome.js";
import "../components/checkin-calendar.js";

await start();
const cal = document.querySelector("#cal"), out = document.querySelector("#outcome");
const load = () => api.get("/api/v1/checkins/calendar").then((c) => { cal.data = c; }, (e) => { cal.error = e; });
cal.addEventListener("checked-in", (e) => {
  const o = e.detail.outcome;
  out.hidden = false;
  out.textContent = t("checkin.outcome", { points: fmt.number(o.points_awarded), n: o.streak }) + (o.milestone_reached ? " " + t("checkin.milestone", { days: o.milestone_reached.days }) : "");
  load();
});
load();
