// <h-quiz>: takes a questionnaire or quiz (branching: the server picks the next question
// from the answer). Attributes: questionnaire-id (starts a session through the API),
// state. Property: data (a SessionView, to render without the API). Events:
// quiz-finished ({result}). An error keeps the chosen answer selected.
import { HuobanElement, api, t, fmt, esc } from "../huoban.js";

class Quiz extends HuobanElement {
  connectedCallback() {
    super.connectedCallback();
    const id = this.getAttribute("questionnaire-id");
    if (id && !this._data) api.post(`/api/v1/questionnaires/${encodeURIComponent(id)}/sessions`, {}).then((s) => { this.data = s; }, (e) => { this.error = e; });
  }
  render() {
    if (this.renderState("quiz.none")) return;
    const s = this._data, err = this._error ? `<p class="alert" role="alert">${esc(this._error.message)}</p>` : "";
    if (s.status === "finished" || s.result) {
      const r = s.result || {};
      const lines = [t("quiz.score", { score: fmt.number(r.score) })];
      if (r.passed != null) lines.push(t(r.passed ? "quiz.passed" : "quiz.failed"));
      if (r.points_awarded) lines.push(t("quiz.points", { points: fmt.number(r.points_awarded) }));
      if (r.suitability) lines.push(t("quiz.suitability", { level: r.suitability.level, name: r.suitability.name }));
      this.innerHTML = `<section class="card" aria-live="polite"><h2>${esc(t("quiz.done"))}</h2>${lines.map((l) => `<p data-result>${esc(l)}</p>`).join("")}
        <p class="muted">${esc(t("quiz.path", { n: (r.path || []).length }))}</p></section>`;
      return;
    }
    const q = s.question;
    this.innerHTML = `<form class="card" novalidate>${err}<fieldset><legend>${esc(t("quiz.question", { n: s.answered + 1 }))}: ${esc(q.text)}</legend>
      ${q.options.map((o) => `<label class="choice"><input type="radio" name="option" value="${esc(o.id)}" ${this._chosen === o.id ? "checked" : ""} required> ${esc(o.text)}</label>`).join("")}
      </fieldset><button type="submit">${esc(t("quiz.answer"))}</button></form>`;
    const form = this.querySelector("form");
    form.onchange = () => { this._chosen = new FormData(form).get("option"); };
    form.onsubmit = (e) => { e.preventDefault(); this.answer(form); };
    if (this._focus) { this._focus = false; this.querySelector("legend").setAttribute("tabindex", "-1"); this.querySelector("legend").focus(); }
  }
  async answer(form) {
    const option = new FormData(form).get("option");
    if (!option) { this._error = { message: t("quiz.pick") }; this.render(); return; }
    form.querySelector("button").disabled = true;
    try {
      const next = await api.post(`/api/v1/questionnaires/sessions/${this._data.session_id}/answers`, { question_id: this._data.question.id, option_id: option });
      this._chosen = null; this._focus = true; this.data = next;
      if (next.result) this.emit("quiz-finished", { result: next.result });
    } catch (e) { this._error = e; this.render(); }
  }
}
customElements.define("h-quiz", Quiz);
