// <h-invite-panel>: invite friends: a share poster with the link and code, progress toward
// the unlock. Attributes: state. Property: data ({code, link, invited, completed, needed,
// reward_points, campaign}). Events: invite-share ({link, method: share | copy}).
import { HuobanElement, t, fmt, esc } from "../huoban.js";

class InvitePanel extends HuobanElement {
  render() {
    if (this.renderState("invite.none")) return;
    const d = this._data, pct = Math.min(100, Math.round((100 * d.completed) / (d.needed || 1)));
    this.innerHTML = `<section class="card tile"><h2>${esc(t("invite.title"))}</h2>
      <figure class="poster" aria-label="${esc(t("invite.poster"))}"><p class="big">${esc(d.campaign || t("app.name"))}</p>
      <p>${esc(t("invite.poster_text", { points: fmt.number(d.reward_points) }))}</p><p><code>${esc(d.code)}</code></p></figure>
      <div class="meter" role="progressbar" aria-label="${esc(t("invite.progress"))}" aria-valuemin="0" aria-valuemax="${d.needed}" aria-valuenow="${d.completed}"><i style="width:${pct}%"></i></div>
      <p>${esc(t("invite.status", { completed: d.completed, needed: d.needed, invited: d.invited }))}</p>
      <div class="row"><button type="button" data-share>${esc(t("invite.share"))}</button><button type="button" class="ghost" data-copy>${esc(t("invite.copy"))}</button></div>
      <p role="status" class="muted" data-said></p></section>`;
    const said = this.querySelector("[data-said]");
    this.querySelector("[data-share]").onclick = async () => {
      this.emit("invite-share", { link: d.link, method: "share" });
      if (navigator.share) { try { await navigator.share({ title: t("invite.title"), text: t("invite.poster_text", { points: d.reward_points }), url: d.link }); } catch { /* dismissed */ } }
      else { await navigator.clipboard?.writeText(d.link).catch(() => {}); said.textContent = t("invite.copied"); }
    };
    this.querySelector("[data-copy]").onclick = async () => {
      this.emit("invite-share", { link: d.link, method: "copy" });
      await navigator.clipboard?.writeText(d.link).catch(() => {}); said.textContent = t("invite.copied");
    };
  }
}
customElements.define("h-invite-panel", InvitePanel);
