// <h-goal-wizard>: set a savings goal in three steps: target (name, amount, date) → plan
// (the monthly amount it takes) → confirm (creates it through POST /api/v1/goals); in
// elderly mode two: target → confirm, which shows the plan.
// Attributes: step (target | plan | confirm), state. Properties: value ({name, amount,
// date}). Events: goal-created ({goal}). Errors keep what was typed.
import { HuobanElement, api, t, fmt, esc, isElderly } from "../huoban.js";

const stepsNow = (el) => (isElderly(el) ? ["target", "confirm"] : ["target", "plan", "confirm"]);

function monthsUntil(date) {
  const now = new Date(), d = new Date(date + "T00:00:00");
  return Math.max(1, (d.getFullYear() - now.getFullYear()) * 12 + d.getMonth() - now.getMonth());
}

class GoalWizard extends HuobanElement {
  constructor() { super(); this.value = { name: "", amount: "", date: "" }; this.step = "target"; }
  get state() { return this.getAttribute("state") || "ready"; }
  render() {
    if (this.state === "loading") { this.renderState(""); return; }
    const v = this.value, err = this._error ? `<p class="alert" role="alert">${esc(this._error.message)}</p>` : "";
    const steps = stepsNow(this);
    // Switched to elderly mode on the plan step: that step is part of confirming now.
    if (!steps.includes(this.step)) this.step = "confirm";
    const i = steps.indexOf(this.step);
    const head = `<h2>${esc(t("wizard.title"))}</h2><p class="muted">${esc(t("wizard.step", { n: i + 1, total: steps.length }))} · ${esc(t("wizard." + this.step))}</p>`;
    if (this.step === "target") {
      const min = new Date(Date.now() + 40 * 864e5).toISOString().slice(0, 10);
      this.innerHTML = `<form class="card" novalidate>${head}${err}
        <label>${esc(t("wizard.name"))}<input name="name" required maxlength="40" value="${esc(v.name)}" autocomplete="off"></label>
        <label>${esc(t("wizard.amount"))}<input name="amount" required inputmode="decimal" type="number" min="1" step="0.01" value="${esc(v.amount)}"></label>
        <label>${esc(t("wizard.date"))}<input name="date" required type="date" min="${min}" value="${esc(v.date)}"></label>
        <button type="submit">${esc(t("wizard.next"))}</button></form>`;
    } else {
      const cents = Math.round(Number(v.amount) * 100), months = monthsUntil(v.date);
      const monthly = Math.ceil(cents / months);
      this.innerHTML = `<form class="card">${head}${err}
        <p><strong>${esc(v.name)}</strong>: ${fmt.money(cents)} · ${esc(fmt.date(v.date))}</p>
        <p class="big">${esc(t("wizard.monthly", { amount: fmt.money(monthly) }))}</p>
        <p class="muted">${esc(t("wizard.months", { n: months }))}</p>
        <div class="row"><button type="button" class="ghost" data-back>${esc(t("wizard.back"))}</button>
        <button type="submit">${esc(t(this.step === "plan" ? "wizard.next" : "wizard.create"))}</button></div></form>`;
      this.querySelector("[data-back]").onclick = () => { this._error = null; this.step = steps[Math.max(0, i - 1)]; this._focus = true; this.render(); };
    }
    this.querySelector("form").onsubmit = (e) => { e.preventDefault(); this.next(new FormData(e.target)); };
    if (this._focus) { this._focus = false; (this.querySelector(".alert") ? this.querySelector("input,button[type=submit]") : this.querySelector("input,button[type=submit]"))?.focus(); }
  }
  async next(form) {
    this._error = null; this._focus = true;
    if (this.step === "target") {
      const v = { name: form.get("name").trim(), amount: form.get("amount"), date: form.get("date") };
      this.value = v;
      if (!v.name || !(Number(v.amount) > 0) || !v.date) { this._error = { message: t("wizard.invalid") }; this.render(); return; }
      this.step = stepsNow(this)[1];
    } else if (this.step === "plan") {
      this.step = "confirm";
    } else {
      const btn = this.querySelector("button[type=submit]"); btn.disabled = true;
      try {
        const goal = await api.post("/api/v1/goals", { name: this.value.name, target_amount: Math.round(Number(this.value.amount) * 100), target_date: this.value.date });
        this.emit("goal-created", { goal });
        this.value = { name: "", amount: "", date: "" }; this.step = "target";
      } catch (e) { this._error = e; if (e.slug === "invalid-target-date" || e.slug === "invalid-target-amount") this.step = "target"; }
    }
    this.render();
  }
}
customElements.define("h-goal-wizard", GoalWizard);
