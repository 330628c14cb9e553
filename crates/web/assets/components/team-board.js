// <h-team-board>: a team in a team challenge: progress toward the shared target, every
// member's contribution (ranked), the join code to share, and the reward on completion.
// Attributes: state. Property: data (a TeamView from GET /api/v1/teams/{id}: {name,
// challenge_name, progress, target, percent, completed, member_count, max_members,
// join_code, reward: {points | reward_id}, members: [{name, contribution, captain, me,
// rewarded}]}, plus optional `unit` (e.g. "trips") and `ends_at`). Events: team-share
// ({code, method: share | copy}).
import { HuobanElement, t, fmt, esc } from "../huoban.js";


class TeamBoard extends HuobanElement {
  render() {
    if (this.renderState("team.none")) return;
    const d = this._data, pct = Math.min(100, Math.max(0, d.percent ?? Math.round((100 * d.progress) / (d.target || 1))));
    const members = [...(d.members || [])].sort((a, b) => b.contribution - a.contribution);
    const total = t("team.total_of", { progress: fmt.number(d.progress), target: fmt.number(d.target), unit: d.unit || "" }).trim();
    const reward = fmt.prize(d.reward);
    this.innerHTML = `<section class="card tile team" aria-labelledby="${this.uid}">
      <div class="spread"><h2 id="${this.uid}">${esc(d.name)}</h2><span class="muted small">${esc(d.challenge_name || "")}</span></div>
      <div class="meter" role="progressbar" aria-label="${esc(t("team.progress"))}" aria-valuemin="0" aria-valuemax="${d.target}" aria-valuenow="${Math.min(d.progress, d.target)}" aria-valuetext="${esc(total)}"><i style="width:${pct}%"></i></div>
      <p class="spread"><span data-total>${esc(total)}</span><strong>${esc(fmt.percent(pct))}</strong></p>
      ${d.ends_at ? `<p class="muted small">${esc(t("team.ends", { date: fmt.date(d.ends_at) }))}</p>` : ""}
      ${d.completed ? `<p class="ok" data-completed>${esc(t("team.completed", { reward }))}</p>` : `<p class="muted">${esc(t("team.reward_line", { reward }))}</p>`}
      <h3>${esc(t("team.members", { n: fmt.number(d.member_count ?? members.length), max: fmt.number(d.max_members ?? members.length) }))}</h3>
      <ol class="list" data-members>${members.map((m, i) => `<li class="spread"><span>${i < 3 && m.contribution > 0 ? `<span class="playful" aria-hidden="true">${["🥇", "🥈", "🥉"][i]}</span> ` : ""}${esc(m.name)}${m.me ? ` <strong>(${esc(t("team.you"))})</strong>` : ""}${m.captain ? ` <span class="muted">· ${esc(t("team.captain"))}</span>` : ""}${m.rewarded ? ` <span class="muted">· ${esc(t("team.rewarded"))}</span>` : ""}</span><span>${fmt.number(m.contribution)}</span></li>`).join("")}</ol>
      ${d.join_code ? `<div class="tile"><p class="spread"><span>${esc(t("team.code"))}</span><code class="big" data-join-code>${esc(d.join_code)}</code></p>
        <p class="muted small">${esc(t("team.code_hint"))}</p><div class="row"><button type="button" class="ghost" data-share>${esc(t("team.share"))}</button></div></div>` : ""}
      <p role="status" class="muted" data-said></p></section>`;
    const share = this.querySelector("[data-share]");
    if (share) share.onclick = async () => {
      const link = location.origin + "/h5/team?code=" + encodeURIComponent(d.join_code);
      this.emit("team-share", { code: d.join_code, method: navigator.share ? "share" : "copy" });
      if (navigator.share) { try { await navigator.share({ title: d.challenge_name || d.name, text: t("team.code") + " " + d.join_code, url: link }); } catch { /* dismissed */ } return; }
      try { await navigator.clipboard.writeText(d.join_code); } catch { /* not allowed */ }
      this.querySelector("[data-said]").textContent = t("team.copied");
    };
  }
}
customElements.define("h-team-board", TeamBoard);
