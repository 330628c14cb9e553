import { api, t, fmt, esc } from "../huoban.js";
import { start, showError } from "./chrome.js";
import "../components/account-overview.js";

await start();
const overview = document.querySelector("#overview"), txs = document.querySelector("#txs"), alerts = document.querySelector("#alerts"), form = document.querySelector("#alert-form");
let current = null;
function showAlerts() {
  api.get("/api/v1/alerts").then((p) => {
    alerts.innerHTML = p.items.length ? p.items.map((a) => `<li class="spread"><span>${esc(t("alert.kind." + a.kind, { amount: fmt.money(a.threshold ?? a.amount ?? 0) }))}</span>
      <button type="button" class="ghost" data-del="${esc(a.id)}">${esc(t("alert.remove"))}</button></li>`).join("") : `<li class="muted">${esc(t("alert.none"))}</li>`;
    alerts.querySelectorAll("[data-del]").forEach((b) => { b.onclick = () => api.del(`/api/v1/alerts/${b.dataset.del}`).then(showAlerts, showError); });
  }, showError);
}
function showTxs(account) {
  api.get(`/api/v1/accounts/${account.id}/transactions?limit=10`).then((p) => {
    txs.innerHTML = p.items.length ? p.items.map((x) => `<li class="spread"><span>${esc(x.description || t("account.category." + (x.category || "other")))}<br><span class="muted">${esc(fmt.dateTime(x.at))}</span></span>
      <strong>${x.direction === "debit" ? "−" : "+"}${esc(fmt.money(x.amount, x.currency))}</strong></li>`).join("") : `<li class="muted">${esc(t("account.no_tx"))}</li>`;
  }, showError);
}
api.get("/api/v1/accounts").then((d) => {
  overview.data = d;
  current = d.items.find((a) => a.type === "current") || d.items[0];
  if (current) showTxs(current);
}, (e) => { overview.error = e; });
overview.addEventListener("account-select", (e) => showTxs(overview.data.items.find((a) => a.id === e.detail.id)));
form.addEventListener("submit", (e) => {
  e.preventDefault();
  const threshold = Math.round(Number(new FormData(form).get("threshold")) * 100);
  api.post("/api/v1/alerts", { kind: "balance_below", account_id: current?.id, threshold }).then(() => { form.reset(); showError(null); showAlerts(); }, showError);
});
showAlerts();
