// <h-goal-conversion>: points into a savings goal under a campaign's conversion offer: the
// rate, the customer's points, the money an amount makes, and a convert button
// (POST /api/v1/goals/{id}/conversions with an Idempotency-Key kept across retries of the same
// conversion). Refusals (not a multiple, not enough points, the offer ended) show localized
// on the card, which keeps the amount typed.
// Attributes: goal-id, points (the customer's points balance, lowered after a conversion),
// state. Property: data ({items: OfferView[]} from GET /api/v1/goal-conversion-offers).
// Events: points-converted ({conversion}; conversion.goal is the goal after it).
// Elderly mode: one button converts all the points the offer can take; another amount is
// typed behind "Another amount".
import { HuobanElement, api, t, fmt, esc, isElderly, celebrate } from "../huoban.js";

class GoalConversion extends HuobanElement {
  constructor() { super(); this._value = ""; this._offer = null; this._message = null; this._open = false; }
  static get observedAttributes() { return ["state", "points"]; }
  offer() { const items = this._data?.items || []; return items.find((o) => o.id === this._offer) || items[0]; }
  balance() { const p = this.getAttribute("points"); return p == null ? null : Number(p); }
  /** The most points this offer can take now: whole steps, within its maximum and the balance. */
  usable(o) {
    const cap = Math.min(o.max_points, this.balance() ?? o.max_points);
    return Math.max(0, Math.floor(cap / o.points) * o.points);
  }
  preview(o, raw) {
    const n = Number(raw);
    if (raw !== "" && Number.isInteger(n) && n > 0 && n % o.points === 0 && n <= o.max_points) {
      return t("convert.makes", { points: fmt.number(n), amount: fmt.money((n / o.points) * o.fen) });
    }
    return t("convert.step", { points: fmt.number(o.points), max: fmt.number(o.max_points) });
  }
  render() {
    if (this.renderState("convert.none", !this._data?.items?.length)) return;
    const o = this.offer(), id = this.uid, items = this._data.items, pts = this.balance(), all = this.usable(o);
    const hideForm = isElderly(this) && all > 0 && !this._open;
    const msg = this._message;
    this.innerHTML = `<form class="card" novalidate aria-labelledby="${id}-h"><h2 id="${id}-h">${esc(t("convert.title"))}</h2>
      ${items.length > 1 ? `<label>${esc(t("convert.offer"))}<select name="offer">${items.map((x) => `<option value="${esc(x.id)}" ${x.id === o.id ? "selected" : ""}>${esc(x.title)}</option>`).join("")}</select></label>` : `<p class="muted">${esc(o.title)}</p>`}
      <p class="spread"><span>${esc(t("convert.rate", { points: fmt.number(o.points), amount: fmt.money(o.fen) }))}</span>
      ${pts != null ? `<span>${esc(t("reward.my_points"))} <strong class="big" data-points>${fmt.number(pts)}</strong></span>` : ""}</p>
      ${all > 0 && isElderly(this) ? `<button type="button" data-all>${esc(t("convert.all_in_one", { points: fmt.number(all), amount: fmt.money((all / o.points) * o.fen) }))}</button>
        ${hideForm ? `<button type="button" class="ghost" data-other>${esc(t("convert.other"))}</button>` : ""}` : ""}
      ${all === 0 && pts != null ? `<p class="muted">${esc(t("convert.short"))}</p>` : ""}
      ${hideForm ? "" : `
        <label>${esc(t("convert.points"))}<input name="points" type="number" inputmode="numeric" min="${o.points}" step="${o.points}" max="${o.max_points}" value="${esc(this._value)}" aria-describedby="${id}-preview" autocomplete="off"></label>
        <p id="${id}-preview" class="muted" aria-live="polite" data-preview>${esc(this.preview(o, this._value))}</p>
        <div class="row">${all > 0 && !isElderly(this) ? `<button type="button" class="ghost" data-fill>${esc(t("convert.fill"))}</button>` : ""}
        <button type="submit">${esc(t("convert.submit"))}</button></div>`}
      ${msg ? `<p class="${msg.ok ? "ok" : "alert"}" role="${msg.ok ? "status" : "alert"}" tabindex="-1" data-message>${esc(msg.text)}</p>` : ""}</form>`;
    const input = this.querySelector("input[name=points]"), preview = this.querySelector("[data-preview]");
    this.querySelector("form").onsubmit = (e) => { e.preventDefault(); if (input) this.convert(input.value); };
    if (input) input.oninput = () => { this._value = input.value; preview.textContent = this.preview(o, input.value); };
    const select = this.querySelector("select[name=offer]");
    if (select) select.onchange = () => { this._offer = select.value; this.render(); this.querySelector("select[name=offer]").focus(); };
    const fill = this.querySelector("[data-fill]");
    if (fill) fill.onclick = () => { input.value = String(all); input.oninput(); input.focus(); };
    const one = this.querySelector("[data-all]");
    if (one) one.onclick = () => this.convert(String(all), false);
    const other = this.querySelector("[data-other]");
    if (other) other.onclick = () => { this._open = true; this.render(); this.querySelector("input[name=points]").focus(); };
  }
  /** Converts `raw` points; `typed`: it came from the field (kept there if refused). */
  async convert(raw, typed = true) {
    const o = this.offer(), goal = this.getAttribute("goal-id"), n = Number(raw);
    if (typed) this._value = raw;
    if (!goal || raw === "" || !Number.isInteger(n) || n <= 0) {
      this._message = { ok: false, text: t("convert.invalid") };
      this.render(); this.querySelector("[data-message]")?.focus();
      return;
    }
    this.querySelectorAll("button").forEach((b) => { b.disabled = true; });
    try {
      const conversion = await api.post(`/api/v1/goals/${goal}/conversions`, { offer_id: o.id, points: n }, { action: "convert:" + goal });
      const pts = this.balance();
      if (pts != null) this.setAttribute("points", String(pts - conversion.points));
      this._value = "";
      this._message = { ok: true, text: t("convert.done", { points: fmt.number(conversion.points), amount: fmt.money(conversion.amount, conversion.goal?.currency) }) };
      celebrate("🪙");
      this.emit("points-converted", { conversion });
    } catch (e) {
      this._message = { ok: false, text: e.message };
    }
    this.render();
    this.querySelector("[data-message]")?.focus();
  }
}
customElements.define("h-goal-conversion", GoalConversion);
