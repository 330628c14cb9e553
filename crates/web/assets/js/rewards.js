import { api, t, fmt, esc, campaigns } from "../huoban.js";
import { start, showError } from "./chrome.js";
import "../components/reward-shelf.js";

await start();
const shelf = document.querySelector("#shelf"), coupons = document.querySelector("#coupons");
const loadCoupons = () => api.get("/api/v1/coupons").then((p) => {
  coupons.innerHTML = p.items.length ? p.items.map((c) => `<li class="spread"><span>${esc(c.title)} <code>${esc(c.code)}</code></span><span class="muted">${esc(t("reward.valid", { date: fmt.date(c.valid_until) }))}</span></li>`).join("") : `<li class="muted">${esc(t("reward.no_coupons"))}</li>`;
}, showError);
// A campaign's rewards are listed only while it is live: named with the campaign's title
// (and the page takes its festival theme).
const live = campaigns().then(({ list }) => list, () => []);
Promise.all([api.get("/api/v1/rewards"), api.get("/api/v1/accounts"), live]).then(([rewards, accounts, list]) => {
  for (const r of rewards.items) r.campaign_title = list.find((c) => c.id === r.campaign_id)?.title;
  const points = accounts.items.find((a) => a.type === "points");
  if (points) shelf.setAttribute("points", String(points.balance.available));
  shelf.data = rewards;
}, (e) => { shelf.error = e; });
shelf.addEventListener("reward-claimed", loadCoupons);
loadCoupons();
