// <h-task-card>: one campaign task with its progress and reward.
// Attributes: state. Property: data ({id, title, description, progress, target,
// reward_points, status: open | done | claimed, href?}). Events: task-action ({id}) when
// the button is pressed (go / claim).
import { HuobanElement, t, fmt, esc } from "../huoban.js";

class TaskCard extends HuobanElement {
  render() {
    if (this.renderState("task.none")) return;
    const k = this._data, pct = Math.min(100, Math.round((100 * (k.progress || 0)) / (k.target || 1)));
    const label = k.status === "done" ? "task.claim" : k.status === "claimed" ? "task.claimed" : "task.go";
    this.innerHTML = `<article class="card tile">
      <div class="spread"><h3>${esc(k.title)}</h3><span class="muted">${esc(t("task.reward", { points: fmt.number(k.reward_points) }))}</span></div>
      ${k.description ? `<p class="muted">${esc(k.description)}</p>` : ""}
      <div class="meter" role="progressbar" aria-label="${esc(k.title)}" aria-valuemin="0" aria-valuemax="${k.target}" aria-valuenow="${k.progress}"><i style="width:${pct}%"></i></div>
      <div class="spread"><span>${fmt.number(k.progress)} / ${fmt.number(k.target)}</span>
      <button type="button" ${k.status === "claimed" ? "disabled" : ""}>${esc(t(label))}</button></div></article>`;
    this.querySelector("button").onclick = () => this.emit("task-action", { id: k.id, status: k.status });
  }
}
customElements.define("h-task-card", TaskCard);
