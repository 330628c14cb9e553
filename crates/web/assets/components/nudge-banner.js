// <h-nudge>: a gentle prompt toward a next step ("You are 3 days from a 7-day streak").
// Attributes: href (where the action goes), tone (info | festival), state. Property: data
// ({text, action}). Events: nudge-dismiss, nudge-action.
import { HuobanElement, t, esc } from "../huoban.js";

class Nudge extends HuobanElement {
  render() {
    if (this.state === "loading" || this.state === "empty" || this.hidden) { this.innerHTML = ""; return; }
    if (this.renderState("")) return;
    const d = this._data;
    this.innerHTML = `<aside class="nudge" aria-label="${esc(t("nudge.label"))}"><span class="playful" aria-hidden="true">${this.getAttribute("tone") === "festival" ? "🧧" : "💡"}</span>
      <p>${esc(d.text)}</p>${d.action ? `<a class="btn" href="${esc(this.getAttribute("href") || "#")}">${esc(d.action)}</a>` : ""}
      <button type="button" class="ghost" aria-label="${esc(t("nudge.dismiss"))}">✕</button></aside>`;
    this.querySelector("a")?.addEventListener("click", () => this.emit("nudge-action", {}));
    this.querySelector("button").onclick = () => { this.hidden = true; this.emit("nudge-dismiss", {}); this.render(); };
  }
}
customElements.define("h-nudge", Nudge);
