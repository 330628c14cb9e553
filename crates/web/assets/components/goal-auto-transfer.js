// <h-goal-auto-transfer>: a savings goal's automatic monthly transfer: whether it is on, what
// moves on which day from which account, the next run (and a retry after a shortfall); turn
// it on (choosing the day, and the account when there are several), change it, turn it off
// (PUT / DELETE /api/v1/goals/{id}/auto-transfer). Partners see it without the controls.
// Attributes: state. Properties: data (a GoalView; its auto_transfer is the state), accounts
// (AccountView[]: the money accounts it may come from). Events: auto-transfer-change ({goal, on}).
// Elderly mode: one plain sentence and one button; the day is changed behind "Change the day".
import { HuobanElement, api, request, t, fmt, esc, isElderly } from "../huoban.js";

const DAYS = Array.from({ length: 28 }, (_, i) => i + 1);
const isMoney = (a) => a.type === "current" || a.type === "savings";
// A sentence with a date in it, as HTML: the sentence escaped, the date a <time> element.
const withDate = (key, iso) => esc(t(key, { date: "\u0000" })).replace("\u0000", `<time datetime="${esc(iso)}">${esc(fmt.date(iso))}</time>`);

class GoalAutoTransfer extends HuobanElement {
  constructor() { super(); this._accounts = []; this._day = null; this._from = null; this._message = null; this._open = false; }
  set accounts(list) { this._accounts = (list || []).filter(isMoney); if (this.isConnected && this._data) this.render(); }
  get accounts() { return this._accounts; }
  // The page passes every fresh read of the goal (polls, pushes): redraw only when what this
  // card shows changed, so a day being chosen and the keyboard focus stay where they are.
  set data(g) {
    // A read that raced a change being made here would show the old state: the answer to
    // the change is drawn instead.
    if (this._busy && !this._own) return;
    const sig = g ? JSON.stringify([g.id, g.role, g.completed, g.plan?.transfer_day, g.plan?.monthly_amount, g.auto_transfer]) : null;
    if (sig && sig === this._sig && this.state === "ready") return;
    if (!this._own) this._message = null;
    if (g?.id !== this._data?.id) { this._day = null; this._from = null; }
    this._sig = sig;
    super.data = g;
  }
  get data() { return this._data; }
  accountName(id) {
    if (this._data?.role === "partner") return t("auto.from.owner");
    if (!id) return t("auto.from.current");
    const a = this._accounts.find((x) => x.id === id);
    return t("auto.from." + (a?.type || "any"));
  }
  amount() {
    const g = this._data;
    return g.auto_transfer ? g.auto_transfer.amount : Math.max(0, Math.min(g.plan?.monthly_amount || 0, g.remaining));
  }
  line() {
    const g = this._data, a = g.auto_transfer;
    return t("auto.line", { amount: fmt.money(this.amount(), g.currency), day: this._day ?? a?.transfer_day ?? g.plan?.transfer_day, account: this.accountName(this._from ?? a?.from_account) });
  }
  render() {
    if (this.renderState("auto.none")) return;
    const g = this._data, a = g.auto_transfer, id = this.uid, elderly = isElderly(this);
    const owner = g.role !== "partner", editable = owner && !g.completed;
    const day = this._day ?? a?.transfer_day ?? g.plan?.transfer_day ?? 1;
    const from = this._from ?? a?.from_account ?? this._accounts.find((x) => x.type === "current")?.id;
    const status = g.completed ? `<p class="ok">${esc(t("auto.done"))}</p>`
      : a ? `<p><strong>${esc(t("auto.state_on"))}</strong> · <span data-line>${esc(this.line())}</span></p>
        ${a.attempts > 0 ? `<p class="alert" data-retry>${withDate("auto.retry", a.next_transfer_at)}</p>` : `<p data-next>${withDate("auto.next", a.next_transfer_at)}</p>`}`
      : `<p><strong>${esc(t("auto.state_off"))}</strong> · ${esc(t("auto.pitch"))}</p><p><strong data-line>${esc(this.line())}</strong></p>`;
    const choices = `<label>${esc(t("auto.day"))}<select name="day">${DAYS.map((d) => `<option value="${d}" ${d === Number(day) ? "selected" : ""}>${esc(t("auto.day_option", { day: d }))}</option>`).join("")}</select></label>
      ${this._accounts.length > 1 ? `<label>${esc(t("auto.account"))}<select name="from">${this._accounts.map((x) => `<option value="${esc(x.id)}" ${x.id === from ? "selected" : ""}>${esc(t("account.type." + x.type))}</option>`).join("")}</select></label>` : ""}`;
    // Elderly mode: the plan's day is taken as it is; the choice waits behind one button.
    const hideChoices = elderly && !this._open;
    const controls = !editable ? (owner ? "" : `<p class="muted">${esc(t("auto.owner_only"))}</p>`)
      : `${hideChoices ? `<button type="button" class="ghost" data-change>${esc(t("auto.change"))}</button>` : choices}
        <div class="row">${!a || !hideChoices ? `<button type="submit" data-on>${esc(t(a ? "auto.save" : "auto.turn_on"))}</button>` : ""}
        ${a ? `<button type="button" class="ghost" data-off>${esc(t("auto.turn_off"))}</button>` : ""}</div>`;
    const msg = this._message;
    this.innerHTML = `<form class="card" novalidate aria-labelledby="${id}-h" data-auto="${a ? "on" : "off"}"><h2 id="${id}-h">${esc(t("auto.title"))}</h2>
      ${status}${controls}
      ${msg ? `<p class="${msg.ok ? "ok" : "alert"}" role="${msg.ok ? "status" : "alert"}" tabindex="-1" data-message>${msg.text}</p>` : ""}</form>`;
    const form = this.querySelector("form");
    if (!editable) { form.onsubmit = (e) => e.preventDefault(); return; }
    form.onchange = (e) => {
      if (e.target.name === "day") this._day = Number(e.target.value);
      if (e.target.name === "from") this._from = e.target.value;
      const line = this.querySelector("[data-line]");
      if (line) line.textContent = this.line();
    };
    form.onsubmit = (e) => { e.preventDefault(); this.turnOn(); };
    const change = this.querySelector("[data-change]");
    if (change) change.onclick = () => { this._open = true; this.render(); this.querySelector("select[name=day]")?.focus(); };
    const off = this.querySelector("[data-off]");
    if (off) off.onclick = () => this.turnOff();
  }
  async act(call, on) {
    this.querySelectorAll("button").forEach((b) => { b.disabled = true; });
    this._busy = true;
    try {
      const goal = await call();
      this._busy = false;
      const a = goal.auto_transfer;
      this._message = { ok: true, text: a ? withDate("auto.turned_on", a.next_transfer_at) : esc(t("auto.turned_off")) };
      this._day = null; this._from = null; this._open = false;
      this._own = true; this.data = goal; this._own = false;
      this.render();
      this.emit("auto-transfer-change", { goal, on });
    } catch (e) {
      this._busy = false;
      // The choice stays as it was made; the reason is read out and focused.
      this._message = { ok: false, text: esc(e.message) };
      this.render();
    }
    this.querySelector("[data-message]")?.focus();
  }
  turnOn() {
    const g = this._data, body = {};
    if (this._day != null || !g.auto_transfer) body.transfer_day = Number(this._day ?? g.plan?.transfer_day);
    const from = this._from ?? g.auto_transfer?.from_account;
    if (from) body.from_account = from;
    return this.act(() => request("PUT", `/api/v1/goals/${g.id}/auto-transfer`, body), true);
  }
  turnOff() { return this.act(() => api.del(`/api/v1/goals/${this._data.id}/auto-transfer`), false); }
}
customElements.define("h-goal-auto-transfer", GoalAutoTransfer);
