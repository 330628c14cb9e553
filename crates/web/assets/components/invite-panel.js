// <h-invite-panel>: invite friends: the server-drawn share poster (a QR code of the link),
// the code and link, progress toward the unlock ("2 of 3") and what the friends must do.
// Attributes: state. Property: data (an InviteView from POST /api/v1/invites or GET
// /api/v1/invites/mine: {code, link, poster_url, programme_name, accepted, qualified,
// unlock_count, unlocked, rewarded, reward: {points | reward_id}, ends_at}, plus `action`:
// the qualifying action in words). Events: invite-share ({link, method: share | copy}).
import { HuobanElement, t, fmt, esc } from "../huoban.js";


class InvitePanel extends HuobanElement {
  render() {
    if (this.renderState("invite.none")) return;
    const d = this._data, needed = d.unlock_count || 1, done = Math.min(d.qualified, needed);
    const pct = Math.round((100 * done) / needed), reward = fmt.prize(d.reward);
    const status = t("invite.status", { qualified: fmt.number(done), needed: fmt.number(needed), accepted: fmt.number(d.accepted) });
    this.innerHTML = `<section class="card tile invite" aria-labelledby="${this.uid}">
      <div class="spread"><h2 id="${this.uid}">${esc(d.programme_name || t("invite.title"))}</h2>${d.ends_at ? `<span class="muted small">${esc(t("invite.until", { date: fmt.date(d.ends_at) }))}</span>` : ""}</div>
      <p>${esc(t("invite.how", { action: d.action || t("action.other"), needed: fmt.number(needed), reward }))}</p>
      <div class="meter" role="progressbar" aria-label="${esc(t("invite.progress"))}" aria-valuemin="0" aria-valuemax="${needed}" aria-valuenow="${done}" aria-valuetext="${esc(status)}"><i style="width:${pct}%"></i></div>
      <p data-status aria-live="polite"><strong>${esc(status)}</strong></p>
      ${d.unlocked ? `<p class="ok" data-unlocked>${esc(t("invite.unlocked", { reward }))}${d.rewarded ? " " + esc(t("invite.paid")) : ""}</p>` : ""}
      <div class="row"><button type="button" data-share>${esc(t("invite.share"))}</button><button type="button" class="ghost" data-copy>${esc(t("invite.copy"))}</button>
      ${d.poster_url ? `<a class="btn ghost" href="${esc(d.poster_url)}" download="huoban-invite-${esc(d.code)}.png">${esc(t("invite.save_poster"))}</a>` : ""}</div>
      <p role="status" class="muted" data-said></p>
      <p class="spread"><span>${esc(t("invite.code_label"))}</span><code class="big" data-code>${esc(d.code)}</code></p>
      <label>${esc(t("invite.link_label"))}<input readonly data-link value="${esc(d.link)}"></label>
      ${d.poster_url ? `<a class="poster-img" href="${esc(d.poster_url)}"><img src="${esc(d.poster_url)}" alt="${esc(t("invite.poster_alt"))}" width="750" height="1334" loading="lazy"></a>`
        : `<figure class="poster" aria-label="${esc(t("invite.poster"))}"><p class="big">${esc(d.programme_name || t("app.name"))}</p><p><code>${esc(d.code)}</code></p></figure>`}
      </section>`;
    const said = this.querySelector("[data-said]");
    const copy = async () => {
      try { await navigator.clipboard.writeText(d.link); } catch { this.querySelector("[data-link]").select(); }
      said.textContent = t("invite.copied");
    };
    this.querySelector("[data-share]").onclick = async () => {
      this.emit("invite-share", { link: d.link, method: navigator.share ? "share" : "copy" });
      if (navigator.share) { try { await navigator.share({ title: d.programme_name || t("invite.title"), text: t("invite.welcome"), url: d.link }); } catch { /* dismissed */ } }
      else await copy();
    };
    this.querySelector("[data-copy]").onclick = async () => { this.emit("invite-share", { link: d.link, method: "copy" }); await copy(); };
  }
}
customElements.define("h-invite-panel", InvitePanel);
