// <h-task-card>: one campaign task with its progress this period, its reward and a claim
// button. Attributes: state. Property: data (a TaskView from GET /api/v1/tasks: {id, title,
// period, progress, target, complete, claimed, reward_points, reward_coupon}, plus `href`:
// where "Go" leads while it is open). Claims with POST /api/v1/tasks/{id}/claim (an
// Idempotency-Key kept across retries); a refusal is shown, localized, on the card.
// Events: task-claimed ({task, claim}).
import { HuobanElement, api, t, fmt, esc, celebrate } from "../huoban.js";

export function rewardText(k) {
  if (k.reward_coupon && k.reward_points) return t("task.reward_both", { points: fmt.number(k.reward_points) });
  if (k.reward_coupon) return t("task.reward_coupon");
  return t("task.reward", { points: fmt.number(k.reward_points) });
}

class TaskCard extends HuobanElement {
  render() {
    if (this.renderState("task.none")) return;
    const k = this._data, pct = Math.min(100, Math.round((100 * (k.progress || 0)) / (k.target || 1)));
    const status = k.claimed ? "claimed" : k.complete ? "done" : "open";
    const progress = t("task.progress", { progress: fmt.number(Math.min(k.progress, k.target)), target: fmt.number(k.target) });
    const action = status === "claimed" ? `<button type="button" disabled>${esc(t("task.claimed"))}</button>`
      : status === "done" ? `<button type="button" data-claim>${esc(t("task.claim"))}</button>`
      : k.href ? `<a class="btn ghost" href="${esc(k.href)}">${esc(t("task.go"))}<span class="sr"> · ${esc(k.title)}</span></a>` : "";
    this.innerHTML = `<article class="card tile task" data-task="${esc(k.id)}" data-status="${status}">
      <div class="spread"><h3>${esc(k.title)}</h3><strong class="reward">${esc(rewardText(k))}</strong></div>
      <div class="meter" role="progressbar" aria-label="${esc(k.title)}" aria-valuemin="0" aria-valuemax="${k.target}" aria-valuenow="${Math.min(k.progress, k.target)}" aria-valuetext="${esc(progress)}"><i style="width:${pct}%"></i></div>
      <div class="spread"><span data-progress>${esc(status === "done" ? t("task.done") : progress)}</span>${action}</div>
      ${k.period && k.period !== "once" ? `<p class="muted small">${esc(t("task.resets." + k.period))}</p>` : ""}
      ${this._message ? `<p class="${this._message.ok ? "ok" : "alert"}" role="${this._message.ok ? "status" : "alert"}" tabindex="-1" data-message>${esc(this._message.text)}</p>` : ""}
    </article>`;
    const claim = this.querySelector("[data-claim]");
    if (claim) claim.onclick = () => this.claim(claim);
  }
  async claim(btn) {
    btn.disabled = true;
    const k = this._data;
    try {
      const claim = await api.post(`/api/v1/tasks/${k.id}/claim`, {}, { action: `task:${k.id}:${k.period_key ?? ""}` });
      k.claimed = true;
      const lines = [];
      if (claim.points) lines.push(t("task.claimed_points", { points: fmt.number(claim.points) }));
      if (claim.coupon_code) lines.push(t("task.claimed_coupon", { code: claim.coupon_code }));
      this._message = { ok: true, text: lines.join(" ") || t("task.claimed") };
      celebrate("🎁");
      this.emit("task-claimed", { task: k, claim });
    } catch (e) {
      if (e.slug === "task-already-claimed") k.claimed = true;
      this._message = { ok: false, text: e.message };
    }
    this.render();
    this.querySelector("[data-message]")?.focus();
  }
}
customElements.define("h-task-card", TaskCard);
