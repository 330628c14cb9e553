// <h-reward-shelf>: rewards with points price and stock, and a claim button per reward.
// Attributes: state, points (the customer's points balance, shown on top). Property: data
// ({items: RewardView[]}) from GET /api/v1/rewards; a reward with `campaign_title` is marked
// as that campaign's. Events: reward-claimed ({claim, reward}).
// A claim sends an Idempotency-Key kept across retries of the same claim; refusals
// (out of stock, not enough points, limit reached, no longer claimable) show a localized
// message on the reward.
import { HuobanElement, api, t, fmt, esc, celebrate } from "../huoban.js";

class RewardShelf extends HuobanElement {
  constructor() { super(); this._errors = {}; }
  static get observedAttributes() { return ["state", "points"]; }
  render() {
    if (this.renderState("reward.none", !this._data?.items?.length)) return;
    const pts = this.getAttribute("points");
    this.innerHTML = `${pts != null ? `<p class="card spread"><span>${esc(t("reward.my_points"))}</span><strong class="big" data-points>${fmt.number(Number(pts))}</strong></p>` : ""}
      <ul class="list">${this._data.items.map((r) => `<li class="card tile" data-reward="${esc(r.id)}">
        <div class="spread"><h3>${esc(r.title)}</h3><strong>${esc(t("reward.price", { points: fmt.number(r.points_price) }))}</strong></div>
        ${r.campaign_title ? `<p class="small reward" data-campaign>${esc(t("reward.campaign", { campaign: r.campaign_title }))}</p>` : ""}
        <p class="muted">${esc(r.stock_left > 0 ? t("reward.stock", { n: fmt.number(r.stock_left) }) : t("reward.sold_out"))} · ${esc(t("reward.until", { date: fmt.date(r.claimable_until) }))}</p>
        ${this._errors[r.id] ? `<p class="alert" role="alert">${esc(this._errors[r.id])}</p>` : ""}
        <button type="button" ${r.my_claims_left <= 0 || r.unavailable ? "disabled" : ""}>${esc(t(r.unavailable ? "reward.unavailable" : r.my_claims_left <= 0 ? "reward.limit" : "reward.claim"))}</button></li>`).join("")}</ul>`;
    this.querySelectorAll("[data-reward] button").forEach((b) => { b.onclick = () => this.claim(b.closest("[data-reward]").dataset.reward, b); });
  }
  async claim(id, btn) {
    btn.disabled = true;
    const reward = this._data.items.find((r) => r.id === id);
    try {
      const claim = await api.post(`/api/v1/rewards/${id}/claims`, {}, { action: "claim:" + id });
      delete this._errors[id];
      reward.my_claims += 1; reward.my_claims_left -= 1; reward.stock_left -= 1;
      const pts = this.getAttribute("points");
      if (pts != null) this.setAttribute("points", String(Number(pts) - claim.points_spent));
      celebrate("🎁");
      this.emit("reward-claimed", { claim, reward });
    } catch (e) {
      this._errors[id] = e.message;
      if (e.slug === "out-of-stock") reward.stock_left = 0;
      // Its campaign ended (or its window closed) while the page was open.
      if (e.slug === "reward-not-claimable") reward.unavailable = true;
    }
    this.render();
    this.querySelector(`[data-reward="${id}"] .alert, [data-reward="${id}"] button`)?.focus?.();
  }
}
customElements.define("h-reward-shelf", RewardShelf);
