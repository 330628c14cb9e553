// <h-goal-progress>: a savings goal's bar with milestones (25/50/75/100 %), animated fill.
// Attributes: goal-id (with `live`: fetches the goal, refreshes on inbox pushes and every
// `poll` seconds, default 5), state. Property: data (a GoalView). Event: milestone
// ({percent}) when the bar crosses a milestone it had not shown before; goal-change ({goal})
// on every goal it is given (the page's other goal cards follow it).
import { HuobanElement, api, live, t, fmt, esc, celebrate } from "../huoban.js";

const MARKS = [25, 50, 75, 100];

class GoalProgress extends HuobanElement {
  connectedCallback() {
    super.connectedCallback();
    const id = this.getAttribute("goal-id");
    if (id && this.hasAttribute("live")) {
      const refresh = () => api.get(`/api/v1/goals/${id}`).then((g) => { this.data = g; }, (e) => { if (!this._data) this.error = e; });
      // Data given with the element (a list the page read) needs no second read now.
      if (!this._data) refresh();
      this._unlive = live((m) => { if (m.type === "resync" || m.kind === "goal_milestone" || m.data?.goal_id === id) refresh(); });
      const every = Number(this.getAttribute("poll") || 5) * 1000;
      this._poll = setInterval(() => { if (!document.hidden) refresh(); }, every);
    }
  }
  disconnectedCallback() { super.disconnectedCallback(); this._unlive?.(); clearInterval(this._poll); }
  set data(g) {
    const before = this._data?.percent;
    super.data = g;
    if (g) this.emit("goal-change", { goal: g });
    if (before != null && g) {
      const crossed = MARKS.filter((m) => before < m && g.percent >= m);
      if (crossed.length) { this.emit("milestone", { percent: crossed.at(-1) }); celebrate(g.percent >= 100 ? "🏆" : "🎉"); this.querySelector(".card")?.classList.add("celebrate"); }
    }
  }
  get data() { return this._data; }
  render() {
    if (this.renderState("goal.none")) return;
    const g = this._data;
    const pct = Math.max(0, Math.min(100, g.percent));
    const bar = this.querySelector(".fill");
    if (bar && this.querySelector(".card")?.dataset.goal === g.id && this._lang === document.documentElement.lang) {
      // Update in place so the width animates (a new language draws it anew).
      this.querySelector("[data-saved]").textContent = fmt.money(g.saved, g.currency);
      this.querySelector("[data-remaining]").textContent = t("goal.remaining", { amount: fmt.money(g.remaining, g.currency) });
      const track = this.querySelector("[role=progressbar]");
      track.setAttribute("aria-valuenow", pct);
      track.setAttribute("aria-valuetext", fmt.percent(pct));
      this.querySelector("[data-pct]").textContent = fmt.percent(pct);
      MARKS.forEach((m) => this.querySelector(`[data-mark="${m}"]`)?.classList.toggle("hit", pct >= m));
      requestAnimationFrame(() => { bar.style.width = pct + "%"; });
      return;
    }
    this._lang = document.documentElement.lang;
    this.innerHTML = `<div class="card" data-goal="${esc(g.id)}">
      <div class="spread"><h3>${esc(g.name)}</h3><span class="big" data-pct>${fmt.percent(pct)}</span></div>
      <div class="track" role="progressbar" aria-label="${esc(t("goal.progress"))}" aria-valuemin="0" aria-valuemax="100" aria-valuenow="${pct}" aria-valuetext="${fmt.percent(pct)}">
        <div class="fill" style="width:0"></div>
        ${MARKS.map((m) => `<div class="mark${pct >= m ? " hit" : ""}" data-mark="${m}" style="left:${m}%"><span>${m}%</span></div>`).join("")}
      </div>
      <p class="spread"><span><span data-saved>${fmt.money(g.saved, g.currency)}</span> / ${fmt.money(g.target_amount, g.currency)}</span>
      <span class="muted" data-remaining>${esc(t("goal.remaining", { amount: fmt.money(g.remaining, g.currency) }))}</span></p>
      ${g.plan ? `<p class="muted">${esc(t("goal.plan_line", { amount: fmt.money(g.plan.monthly_amount, g.currency), day: g.plan.transfer_day }))}</p>` : ""}
      ${g.behind_plan ? `<p class="alert">${esc(t("goal.behind"))}</p>` : ""}
      ${g.completed ? `<p class="ok">${esc(t("goal.completed"))}</p>` : ""}
    </div>`;
    const fill = this.querySelector(".fill");
    requestAnimationFrame(() => requestAnimationFrame(() => { fill.style.width = pct + "%"; }));
  }
}
customElements.define("h-goal-progress", GoalProgress);
