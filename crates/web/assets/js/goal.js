import { api, t, fmt, toast } from "../huoban.js";
import { start, showError } from "./chrome.js";
import "../components/goal-progress.js";
import "../components/goal-wizard.js";

await start();
const progress = document.querySelector("#goal"), wizard = document.querySelector("#wizard");
const depositBox = document.querySelector("#deposit"), form = document.querySelector("#deposit-form");
let goal = null, current = null;

function show(g) {
  goal = g;
  progress.remove(); progress.setAttribute("goal-id", g.id); progress.setAttribute("live", "");
  document.querySelector("main").insertBefore(progress, depositBox);
  progress.data = g;
  depositBox.hidden = false;
}
progress.addEventListener("milestone", (e) => toast(t("goal.milestone", { pct: e.detail.percent })));
wizard.addEventListener("goal-created", (e) => { show(e.detail.goal); toast(t("goal.created")); });

const [list, accounts] = await Promise.all([api.get("/api/v1/goals"), api.get("/api/v1/accounts")]).catch((e) => { showError(e); return [{ items: [] }, { items: [] }]; });
current = accounts.items.find((a) => a.type === "current");
if (list.items[0]) show(list.items[0]);

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
