// <h-team-board>: a team challenge: the team's total toward its target and each member's part.
// Attributes: state. Property: data ({name, target, total, unit, ends_at?, members: [{name,
// amount, is_you}]}). Events: team-join when the join button (shown when `joinable`) is pressed.
import { HuobanElement, t, fmt, esc } from "../huoban.js";

class TeamBoard extends HuobanElement {
  render() {
    if (this.renderState("team.none")) return;
    const d = this._data, pct = Math.min(100, Math.round((100 * d.total) / (d.target || 1)));
    const members = [...(d.members || [])].sort((a, b) => b.amount - a.amount);
    this.innerHTML = `<section class="card tile"><h2>${esc(d.name)}</h2>
      <div class="meter" role="progressbar" aria-label="${esc(t("team.progress"))}" aria-valuemin="0" aria-valuemax="${d.target}" aria-valuenow="${d.total}"><i style="width:${pct}%"></i></div>
      <p>${esc(t("team.total", { total: fmt.number(d.total), target: fmt.number(d.target), unit: d.unit || "" }))}${d.ends_at ? " · " + esc(t("team.ends", { date: fmt.date(d.ends_at) })) : ""}</p>
      <ol class="list">${members.map((m, i) => `<li class="spread"><span>${i < 3 ? `<span class="playful" aria-hidden="true">${["🥇", "🥈", "🥉"][i]}</span> ` : ""}${esc(m.name)}${m.is_you ? ` <strong>(${esc(t("team.you"))})</strong>` : ""}</span><span>${fmt.number(m.amount)}</span></li>`).join("")}</ol>
      ${d.joinable ? `<button type="button">${esc(t("team.join"))}</button>` : ""}</section>`;
    this.querySelector("button")?.addEventListener("click", () => this.emit("team-join", {}));
  }
}
customElements.define("h-team-board", TeamBoard);
