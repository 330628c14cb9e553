// <h-checkin-calendar>: a month of check-ins with the streak flame and a check-in button.
// Attributes: state, readonly (no button). Property: data (a CalendarView from
// GET /api/v1/checkins/calendar). Events: checked-in ({outcome}) after POST /api/v1/checkins.
import { HuobanElement, api, t, fmt, esc, celebrate, isElderly } from "../huoban.js";

class CheckinCalendar extends HuobanElement {
  render() {
    if (this.renderState("checkin.none")) return;
    const c = this._data, first = new Date(c.days[0]?.date + "T00:00:00");
    const lead = (first.getDay() + 6) % 7;
    const dow = Array.from({ length: 7 }, (_, i) => new Intl.DateTimeFormat(document.documentElement.lang, { weekday: "narrow" }).format(new Date(2024, 0, 1 + i)));
    const next = c.next_milestone ? t("checkin.next", { days: c.next_milestone.days_to_go, points: fmt.number(c.next_milestone.points) }) : "";
    this.innerHTML = `<div class="card">
      <div class="spread"><h2>${esc(t("checkin.title"))}</h2>
      <p class="row" aria-live="polite"><span class="flame playful" aria-hidden="true">${c.current_streak > 0 ? "🔥" : "🪵"}</span>
      <strong data-streak>${esc(t("checkin.streak", { n: c.current_streak }))}</strong></p></div>
      ${next ? `<p class="muted">${esc(next)}</p>` : ""}
      <h3 class="sr">${esc(t("checkin.calendar", { month: c.month }))}</h3>
      <div class="cal">
        ${dow.map((d) => `<div class="dow" aria-hidden="true">${esc(d)}</div>`).join("")}
        ${"<div></div>".repeat(lead)}
        ${c.days.map((d) => `<div class="d ${esc(d.state)}"><span aria-hidden="true">${Number(d.date.slice(8))}</span><span class="sr">${esc(fmt.date(d.date) + " " + t("checkin.state." + d.state))}</span></div>`).join("")}
      </div>
      ${this.hasAttribute("readonly") ? "" : `<p><button type="button" data-checkin ${c.checked_in_today ? "disabled" : ""}>${esc(t(c.checked_in_today ? "checkin.done" : "checkin.button"))}</button></p>`}
      <p class="alert" role="alert" hidden></p></div>`;
    const btn = this.querySelector("[data-checkin]");
    if (btn) btn.onclick = () => this.checkin(btn);
  }
  async checkin(btn) {
    btn.disabled = true;
    try {
      const outcome = await api.post("/api/v1/checkins", {});
      this.emit("checked-in", { outcome });
      celebrate(isElderly() ? "" : "🔥");
    } catch (e) {
      const box = this.querySelector(".alert"); box.hidden = false; box.textContent = e.message; btn.disabled = false;
    }
  }
}
customElements.define("h-checkin-calendar", CheckinCalendar);
