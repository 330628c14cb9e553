// The campaign hub: the live campaign (its festival theme, title and dates), the savings
// goal's bar, a check-in nudge, and a link to every page. The theme comes from
// GET /api/v1/campaigns (remembered, so the next page starts in it); `?theme=` previews one.
import { api, t, esc, fmt, setElderly, isElderly, campaigns } from "../huoban.js";
import { start } from "./chrome.js";

const preview = new URLSearchParams(location.search).get("theme");
const me = await start(preview ? { theme: preview } : undefined);
const goalEl = document.querySelector("#goal"), nudgeEl = document.querySelector("#nudge"), banner = document.querySelector("#campaign");
// Not needed to be interactive: the goal bar's module loads beside the goal itself (which the
// page's head already asked for), the nudge's after it.
const bar = import("../components/goal-progress.js");
Promise.all([api.get("/api/v1/goals"), bar]).then(([list]) => {
  const g = list.items[0];
  if (!g) { goalEl.setAttribute("state", "empty"); return; }
  goalEl.setAttribute("goal-id", g.id); goalEl.setAttribute("live", ""); goalEl.data = g;
  goalEl.remove(); banner.after(goalEl);
  // The goal is on screen: `huoban bench h5` reports this too.
  performance.mark?.("huoban:goal");
}, (e) => bar.then(() => { goalEl.error = e; }));
campaigns({ keepTheme: !!preview }).then(({ live }) => {
  if (!live) return;
  banner.innerHTML = `<h2>${esc(live.title)}</h2><p class="spread"><span class="muted">${esc(t("hub.campaign_until", { date: fmt.date(live.ends_at) }))}</span>
    <a class="btn ghost" href="/h5/tasks">${esc(t("hub.campaign_go"))}</a></p>`;
  banner.hidden = false;
}, () => { /* the hub works without a campaign */ });
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
  nudgeEl.data = { text: c.current_streak ? t("nudge.streak", { n: c.current_streak }) : t("nudge.first"), action: t("nudge.go") };
}, () => {});
