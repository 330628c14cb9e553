// Invite friends. Without `?code=`: my code in each live invite programme, its link and the
// server-drawn share poster, and progress toward the unlock ("2 of 3"), refreshed live.
// With `?code=` (the page an invite link opens): a friend opens an account (or signs in) and
// accepts, then is sent to the qualifying action (e.g. the finance quiz).
import { api, t, esc, session, deviceId, locale, live } from "../huoban.js";
import { start, showError, redraw } from "./chrome.js";
import { actionHref, actionText } from "./actions.js";
import "../components/invite-panel.js";

const code = (new URLSearchParams(location.search).get("code") || "").trim();
// A friend's link works signed out; a signed-in friend's profile still sets language and mode.
await start({ auth: !code || !!session.token });
const root = document.querySelector("#invite");

// ---- the inviter ----
let programmes = new Map();
async function mine() {
  const [open, codes] = await Promise.all([api.get("/api/v1/invite-programmes"), api.get("/api/v1/invites/mine")]);
  programmes = new Map(open.items.map((p) => [p.id, p]));
  // A code in every live programme: issued once, the same code after.
  for (const p of open.items) {
    if (!codes.some((c) => c.programme_id === p.id)) codes.push(await api.post("/api/v1/invites", { programme_id: p.id }));
  }
  return codes.filter((c) => programmes.has(c.programme_id) || c.unlocked);
}
let shown = "";
async function showMine() {
  let codes;
  // A failed refresh keeps what is shown (and the focus where it is).
  try { codes = await mine(); } catch (e) { if (!shown) showError(e); return; }
  root.removeAttribute("aria-busy");
  // Redrawn only when something changed, so a refresh never moves the keyboard focus.
  const now = JSON.stringify(codes);
  if (now === shown) return;
  shown = now;
  if (!codes.length) { root.innerHTML = `<p class="card muted">${esc(t("invite.none"))}</p>`; return; }
  root.innerHTML = "";
  for (const c of codes) {
    const p = programmes.get(c.programme_id);
    const panel = document.createElement("h-invite-panel");
    panel.data = { ...c, action: p ? actionText(p.event_type) : "" };
    root.append(panel);
  }
}

// ---- the friend ----
const ACCEPTED = "huoban.invite-accepted:";
function nextStep(a) {
  const href = actionHref(a.event_type, a.event_match);
  root.innerHTML = `<section class="card tile" aria-labelledby="accepted"><h2 id="accepted" tabindex="-1">${esc(t("invite.accepted", { inviter: a.inviter, programme: a.programme_name }))}</h2>
    <p>${esc(t("invite.next", { action: actionText(a.event_type) }))}</p>
    ${href ? `<p><a class="btn" href="${esc(href)}" data-next>${esc(t("invite.go"))}</a></p>` : ""}</section>`;
  root.querySelector("#accepted").focus();
}
async function accept() {
  const a = await api.post("/api/v1/invites/accept", { code }, { headers: { "x-device-id": deviceId() } });
  try { localStorage.setItem(ACCEPTED + code.toUpperCase(), JSON.stringify(a)); } catch { /* private mode */ }
  nextStep(a);
}
function friend() {
  root.removeAttribute("aria-busy");
  let done = null;
  try { done = JSON.parse(localStorage.getItem(ACCEPTED + code.toUpperCase()) || "null"); } catch { /* none */ }
  if (done && session.token) { nextStep(done); return; }
  const back = "/h5/signin?next=" + encodeURIComponent(location.pathname + location.search);
  const poster = `/api/v1/invites/${encodeURIComponent(code)}/poster.png`;
  root.innerHTML = `<section class="card tile" aria-labelledby="welcome"><h2 id="welcome">${esc(t("invite.welcome"))}</h2>
      <p>${esc(t("invite.welcome_text", { code }))}</p></section>
    ${session.token ? `<section class="card tile"><h2>${esc(t("invite.accept_title"))}</h2><p class="alert" role="alert" tabindex="-1" hidden></p><button type="button" data-accept>${esc(t("invite.accept"))}</button></section>`
    : `<form class="card" id="register" novalidate><h2>${esc(t("invite.register_title"))}</h2>
        <label>${esc(t("invite.name"))}<input name="name" autocomplete="name" required></label>
        <label>${esc(t("invite.phone"))}<input name="phone" type="tel" inputmode="numeric" autocomplete="tel" required></label>
        <label>${esc(t("invite.password"))}<input name="password" type="password" autocomplete="new-password" minlength="8" required></label>
        <p class="alert" role="alert" tabindex="-1" hidden></p><button type="submit">${esc(t("invite.register"))}</button></form>
      <section class="card tile"><h2>${esc(t("invite.have_account"))}</h2><a class="btn ghost" href="${esc(back)}">${esc(t("invite.signin"))}</a></section>`}
    <a class="poster-img" href="${poster}"><img src="${poster}" alt="${esc(t("invite.friend_poster"))}" width="750" height="1334" loading="lazy"></a>`;
  const fail = (box, e) => { box.hidden = false; box.textContent = e.message; box.focus(); };
  const btn = root.querySelector("[data-accept]");
  if (btn) btn.onclick = async () => {
    btn.disabled = true;
    try { await accept(); } catch (e) { fail(btn.previousElementSibling, e); btn.disabled = false; }
  };
  const form = root.querySelector("#register");
  if (form) form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const f = new FormData(form), box = form.querySelector(".alert"), submit = form.querySelector("button");
    const name = String(f.get("name") || "").trim(), phone = String(f.get("phone") || "").trim(), password = String(f.get("password") || "");
    if (!name || !phone || !password) { fail(box, { message: t("invite.missing") }); return; }
    submit.disabled = true;
    try {
      try {
        await api.post("/api/v1/customers", { phone, password, name, locale: locale() }, { noRedirect: true });
      } catch (err) {
        // Registered by an earlier try whose answer was lost: signing in below settles it.
        if (err.slug !== "phone-taken") throw err;
      }
      let s;
      try { s = await api.post("/api/v1/sessions", { phone, password, channel: "h5" }, { noRedirect: true }); }
      catch (err) { throw err.slug === "invalid-credentials" ? { message: t("error.phone-taken") } : err; }
      session.set(s.token);
      await accept();
    } catch (err) { fail(box, err); submit.disabled = false; }
  });
}

if (code) {
  friend();
  document.addEventListener("huoban:prefs", () => redraw(root, friend));
} else {
  await showMine();
  // Friends qualify at any time: the unlock arrives as an inbox message (pushed live), and
  // progress is re-read every few seconds while the page is visible.
  live(() => showMine());
  setInterval(() => { if (!document.hidden) showMine(); }, 5000);
  document.addEventListener("huoban:prefs", () => { shown = ""; showMine(); });
}
