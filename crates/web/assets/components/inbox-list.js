// <h-inbox>: the customer's messages, newest first; new ones arrive live over SSE.
// Attributes: state, live (fetch GET /api/v1/inbox and listen), limit (default 20).
// Property: data ({items: Message[]}). Events: message-open ({message}) — opening marks read.
import { HuobanElement, api, live, t, fmt, esc } from "../huoban.js";

class Inbox extends HuobanElement {
  connectedCallback() {
    super.connectedCallback();
    if (this.hasAttribute("live")) {
      const load = () => api.get(`/api/v1/inbox?limit=${Number(this.getAttribute("limit") || 20)}`).then((p) => { this.data = p; }, (e) => { this.error = e; });
      load();
      this._unlive = live((m) => {
        if (m.type === "resync") return load();
        if (this._data && !this._data.items.some((x) => x.id === m.id)) { this._data.items.unshift(m); this.render(); }
      });
    }
  }
  disconnectedCallback() { super.disconnectedCallback(); this._unlive?.(); }
  render() {
    if (this.renderState("inbox.none", !this._data?.items?.length)) return;
    const items = this._data.items;
    const unread = items.filter((m) => !m.read).length;
    this.innerHTML = `<section class="card"><div class="spread"><h2>${esc(t("inbox.title"))}</h2><span class="muted" aria-live="polite">${esc(t("inbox.unread", { n: unread }))}</span></div>
      <ul class="list">${items.map((m) => `<li><details data-id="${esc(m.id)}"><summary class="${m.read ? "" : "unread"}">${esc(m.title)} <span class="muted">· ${esc(fmt.dateTime(m.created_at))}</span></summary><p>${esc(m.body)}</p></details></li>`).join("")}</ul>
      ${unread ? `<button type="button" class="ghost" data-all>${esc(t("inbox.read_all"))}</button>` : ""}</section>`;
    this.querySelectorAll("details").forEach((d) => d.addEventListener("toggle", () => {
      if (!d.open) return;
      const m = items.find((x) => x.id === d.dataset.id);
      this.emit("message-open", { message: m });
      if (!m.read && this.hasAttribute("live")) api.post("/api/v1/inbox/read", { message_ids: [m.id] }).then(() => { m.read = true; d.querySelector("summary").classList.remove("unread"); }, () => {});
    }));
    this.querySelector("[data-all]")?.addEventListener("click", () => {
      api.post("/api/v1/inbox/read", { all: true }).then(() => { items.forEach((m) => { m.read = true; }); this.render(); }, (e) => { this.error = e; });
    });
  }
}
customElements.define("h-inbox", Inbox);
