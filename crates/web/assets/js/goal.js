import { api, t, fmt, toast } from "../huoban.js";
import { start, showError } from "./chrome.js";
import "../components/goal-progress.js";
import "../components/goal-wizard.js";
import "../components/goal-auto-transfer.js";
import "../components/goal-conversion.js";

await start();
// The wizard drew itself when its module defined it, before the strings were loaded.
document.querySelector("#wizard").render();
const progress = document.querySelector("#goal"), wizard = document.querySelector("#wizard");
const depositBox = document.querySelector("#deposit"), form = document.querySelector("#deposit-form");
const auto = document.querySelector("#auto"), convert = document.querySelector("#convert");
let goal = null, current = null, offers = { items: [] };

function show(g) {
  goal = g;
  progress.remove(); progress.setAttribute("goal-id", g.id); progress.setAttribute("live", "");
  document.querySelector("main").insertBefore(progress, depositBox);
  progress.data = g;
  depositBox.hidden = false;
  // Once the plan is on screen: its automatic transfer, and points into it when a campaign
  // offers that.
  auto.hidden = false;
  convert.setAttribute("goal-id", g.id);
  convert.hidden = !offers.items.length;
}
progress.addEventListener("milestone", (e) => toast(t("goal.milestone", { pct: e.detail.percent })));
// Every fresh read of the goal (a deposit, a push, a poll) reaches the automatic-transfer card.
progress.addEventListener("goal-change", (e) => { auto.data = e.detail.goal; });
wizard.addEventListener("goal-created", (e) => { show(e.detail.goal); toast(t("goal.created")); });
convert.addEventListener("points-converted", (e) => { progress.data = e.detail.conversion.goal; });

const none = { items: [] };
const [list, accounts, offered] = await Promise.all([
  api.get("/api/v1/goals"),
  api.get("/api/v1/accounts"),
  // The page works without the offers.
  api.get("/api/v1/goal-conversion-offers").catch(() => none),
]).catch((e) => { showError(e); return [none, none, none]; });
current = accounts.items.find((a) => a.type === "current");
auto.accounts = accounts.items;
offers = offered;
convert.data = offers;
const points = accounts.items.find((a) => a.type === "points");
if (points) convert.setAttribute("points", String(points.balance.available));
if (list.items[0]) show(list.items[0]);
// Offer titles come in the customer's language: read them again when it changes.
document.addEventListener("huoban:prefs", () => api.get("/api/v1/goal-conversion-offers").then((o) => { if (o.items.length) convert.data = o; }, () => {}));

form.addEventListener("submit", async (e) => {
  e.preventDefault();
  const amount = Math.round(Number(new FormData(form).get("amount")) * 100);
  if (!(amount > 0) || !goal || !current) { showError({ message: t("error.invalid-amount") }); return; }
  const btn = form.querySelector("button"); btn.disabled = true;
  const body = { from_account: current.id, amount };
  try {
    const r = await api.post(`/api/v1/goals/${goal.id}/deposits`, body, { action: "deposit:" + goal.id });
    showError(null); progress.data = r.goal; form.reset();
    toast(t("goal.deposited", { amount: fmt.money(amount, r.goal.currency) }));
  } catch (err) { showError(err); } finally { btn.disabled = false; }
});
