// <h-account-overview>: balances of the customer's accounts (current, savings, points, goal
// pockets). Attributes: state, live (fetch GET /api/v1/accounts). Property: data ({items:
// AccountView[]}). Events: account-select ({id}).
import { HuobanElement, api, t, fmt, esc } from "../huoban.js";

const amount = (a) => a.type === "points" ? t("account.points_value", { n: fmt.number(a.balance.available) }) : fmt.money(a.balance.available, a.currency);

class AccountOverview extends HuobanElement {
  connectedCallback() {
    super.connectedCallback();
    if (this.hasAttribute("live")) api.get("/api/v1/accounts").then((d) => { this.data = d; }, (e) => { this.error = e; });
  }
  render() {
    if (this.renderState("account.none", !this._data?.items?.length)) return;
    this.innerHTML = `<section class="card"><h2>${esc(t("account.title"))}</h2><ul class="list">
      ${this._data.items.map((a) => `<li class="spread"><button type="button" class="ghost" data-id="${esc(a.id)}">${esc(t("account.type." + a.type) === "account.type." + a.type ? a.label : t("account.type." + a.type))}</button>
      <strong data-balance>${esc(amount(a))}</strong></li>`).join("")}</ul></section>`;
    this.querySelectorAll("[data-id]").forEach((b) => { b.onclick = () => this.emit("account-select", { id: b.dataset.id }); });
  }
}
customElements.define("h-account-overview", AccountOverview);
