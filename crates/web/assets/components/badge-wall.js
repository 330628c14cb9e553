// <h-badge-wall>: earned and locked badges.
// Attributes: state. Property: data ({badges: [{id, name, icon, earned, earned_at?, hint?}]}).
// Events: badge-select ({id}) when a badge is chosen.
import { HuobanElement, t, fmt, esc } from "../huoban.js";

class BadgeWall extends HuobanElement {
  render() {
    if (this.renderState("badge.none", !this._data?.badges?.length)) return;
    const b = this._data.badges, n = b.filter((x) => x.earned).length;
    this.innerHTML = `<section class="card"><h2>${esc(t("badge.title"))} <span class="muted">${esc(t("badge.count", { n, total: b.length }))}</span></h2>
      <ul class="badges list">${b.map((x) => `<li class="badge${x.earned ? "" : " locked"}"><button type="button" class="ghost" data-id="${esc(x.id)}" aria-label="${esc(x.name + ", " + (x.earned ? t("badge.earned") : t("badge.locked")))}">
      <span class="ico" aria-hidden="true">${esc(x.icon || "🏅")}</span></button><div>${esc(x.name)}</div>
      <div class="muted">${esc(x.earned ? (x.earned_at ? fmt.date(x.earned_at) : t("badge.earned")) : (x.hint || t("badge.locked")))}</div></li>`).join("")}</ul></section>`;
    this.querySelectorAll("button").forEach((el) => { el.onclick = () => this.emit("badge-select", { id: el.dataset.id }); });
  }
}
customElements.define("h-badge-wall", BadgeWall);
