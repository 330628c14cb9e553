// <h-leaderboard>: the teams of a team challenge, best first (most progress, then the first
// to finish), yours marked. Attributes: state. Property: data (a LeaderboardView from GET
// /api/v1/challenges/{id}/leaderboard: {target, teams: [{rank, team_id, name, member_count,
// progress, percent, completed, mine}]}). Events: none.
import { HuobanElement, t, fmt, esc } from "../huoban.js";

class Leaderboard extends HuobanElement {
  render() {
    if (this.renderState("leaderboard.none", !this._data?.teams?.length)) return;
    const d = this._data;
    this.innerHTML = `<section class="card tile" aria-labelledby="${this.uid}"><h2 id="${this.uid}">${esc(t("leaderboard.title"))}</h2>
      <ol class="list board">${d.teams.map((s) => `<li class="spread${s.mine ? " mine" : ""}" data-team="${esc(s.team_id)}">
        <span class="rank"><span class="playful" aria-hidden="true">${["🥇", "🥈", "🥉"][s.rank - 1] || ""}</span> ${esc(t("leaderboard.rank", { n: s.rank }))}</span>
        <span class="grow">${esc(s.name)}${s.mine ? ` <strong>(${esc(t("leaderboard.yours"))})</strong>` : ""}<br><span class="muted small">${esc(t("leaderboard.line", { members: fmt.number(s.member_count), percent: fmt.percent(s.percent) }))}${s.completed ? " · " + esc(t("leaderboard.done")) : ""}</span></span>
        <strong>${fmt.number(s.progress)}</strong></li>`).join("")}</ol></section>`;
  }
}
customElements.define("h-leaderboard", Leaderboard);
