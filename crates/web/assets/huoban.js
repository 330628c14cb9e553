// huoban.js: the SDK for Huoban's H5 pages and components (and any bank's own H5).
// - api: fetch wrapper; Bearer session token from localStorage; problem+json → ApiError
//   with a localized message; an Idempotency-Key on every value-moving POST, kept for
//   retries of the same action until it succeeds (a retry never moves value twice).
// - events: behaviour events batched, kept in localStorage, sent with client ids, retried
//   when back online (the server drops duplicates by id).
// - live(): inbox messages over SSE (EventSource with ?access_token=), reconnecting.
// - i18n: t(key, vars) from locales/{zh-CN,zh-TW,en}.json (the page carries its language's
//   strings inline; others are fetched); fmt.* via Intl per locale.
// - prefs: elderly mode and language, applied to <html> and saved to /api/v1/me; the live
//   campaign's festival theme, remembered for the next page.

const LS = globalThis.localStorage;
const TOKEN = "huoban.token", LOCALE = "huoban.locale", MODE = "huoban.mode", THEME = "huoban.theme", DEVICE = "huoban.device", QUEUE = "huoban.events", IDEM = "huoban.idem.";
export const LOCALES = ["zh-CN", "zh-TW", "en"];
let base = "";
let strings = {};
let me = null;

/** Point the SDK at another origin (a bank's own H5 embedding the components). */
export function configure(opts = {}) { if (opts.base != null) base = opts.base; }

const read = (k) => { try { return LS.getItem(k); } catch { return null; } };
const write = (k, v) => { try { v == null ? LS.removeItem(k) : LS.setItem(k, v); } catch { /* private mode */ } };

export const session = {
  get token() { return read(TOKEN); },
  set(token) { write(TOKEN, token); },
  clear() { write(TOKEN, null); },
};

/** This browser's device id (made once, kept in localStorage), e.g. for `X-Device-Id`. */
export function deviceId() {
  let id = read(DEVICE);
  if (!id) { id = uuid(); write(DEVICE, id); }
  return id;
}

export const uuid = () => (crypto.randomUUID ? crypto.randomUUID()
  : "10000000-1000-4000-8000-100000000000".replace(/[018]/g, (c) => (c ^ (crypto.getRandomValues(new Uint8Array(1))[0] & (15 >> (c / 4)))).toString(16)));

/** An API failure: `slug` is the problem type's last part (`insufficient-points`),
 * `message` is localized, `problem` the raw problem+json body. */
export class ApiError extends Error {
  constructor(status, slug, problem = {}) {
    super(errorText(slug, problem));
    this.name = "ApiError"; this.status = status; this.slug = slug; this.problem = problem;
  }
}

function errorText(slug, problem) {
  // A refused field has its own sentence when the locale has one (`error.validation.password`).
  const field = slug === "validation" && problem.field ? "error.validation." + problem.field : null;
  if (field && strings[field]) return t(field, problem);
  const k = "error." + slug;
  if (strings[k]) return t(k, problem);
  return problem.detail || problem.title || t("error.generic");
}

function idemKey(action, body) {
  const sig = JSON.stringify(body ?? null);
  let saved = null;
  try { saved = JSON.parse(read(IDEM + action) || "null"); } catch { /* corrupt */ }
  if (saved && saved.sig === sig) return saved.key;
  const key = uuid();
  write(IDEM + action, JSON.stringify({ key, sig }));
  return key;
}

/**
 * Calls the API. `opts.action` (e.g. `deposit:<goal id>`) marks a value-moving call: an
 * Idempotency-Key is created for it and reused by every retry of the same action with the
 * same body, and forgotten once the server has answered (success or a refusal).
 * `opts.headers` adds headers (e.g. `x-device-id`).
 */
export async function request(method, path, body, opts = {}) {
  const headers = { ...opts.headers, accept: "application/json, application/problem+json" };
  const token = session.token;
  if (token) headers.authorization = "Bearer " + token;
  if (body !== undefined) headers["content-type"] = "application/json";
  if (opts.action) headers["idempotency-key"] = idemKey(opts.action, body);
  let res;
  try {
    // The page's inline head script may have started this very request already.
    const first = opts.early || takeEarly(method, path);
    res = first ? await first : await fetch(base + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch {
    throw new ApiError(0, navigator.onLine === false ? "offline" : "network", {});
  }
  if (opts.action && res.status < 500) write(IDEM + opts.action, null);
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = { detail: text }; }
  if (!res.ok) {
    const slug = String(data?.type || "").replace("urn:huoban:problem:", "") || "http-" + res.status;
    const err = new ApiError(res.status, slug, data || {});
    if (res.status === 401 && !opts.noRedirect) toSignIn();
    throw err;
  }
  return data;
}

export const api = {
  get: (p, o) => request("GET", p, undefined, o),
  post: (p, b = {}, o) => request("POST", p, b, o),
  patch: (p, b, o) => request("PATCH", p, b, o),
  del: (p, o) => request("DELETE", p, undefined, o),
};

/** Expired or missing session: go to sign-in, remembering where to come back to. */
export function toSignIn() {
  session.clear();
  if (location.pathname.startsWith("/h5/signin")) return;
  saveDrafts();
  const back = location.pathname + location.search + location.hash;
  location.assign("/h5/signin?next=" + encodeURIComponent(back));
}

// What the customer typed survives a trip to sign-in: drafts are kept per page in
// sessionStorage and put back by restoreDrafts() when the page starts again.
const DRAFT = "huoban.draft:";
const fieldKey = (el) => (el.closest("[id]")?.id || "") + ":" + el.name;
function saveDrafts() {
  const vals = {};
  document.querySelectorAll("input[name]:not([type=password]):not([type=radio]), select[name]").forEach((el) => { if (el.value) vals[fieldKey(el)] = el.value; });
  try { sessionStorage.setItem(DRAFT + location.pathname, JSON.stringify(vals)); } catch { /* private mode */ }
}
export function restoreDrafts() {
  let vals = null;
  try { vals = JSON.parse(sessionStorage.getItem(DRAFT + location.pathname) || "null"); sessionStorage.removeItem(DRAFT + location.pathname); } catch { /* none */ }
  if (!vals) return;
  document.querySelectorAll("input[name], select[name]").forEach((el) => { const v = vals[fieldKey(el)]; if (v != null) el.value = v; });
}

// ---- i18n and formatting ----
export function locale() {
  const saved = read(LOCALE);
  if (LOCALES.includes(saved)) return saved;
  const nav = (navigator.language || "zh-CN");
  return nav.startsWith("en") ? "en" : /TW|HK|Hant/i.test(nav) ? "zh-TW" : "zh-CN";
}

function assetUrl(stable) {
  try {
    const map = JSON.parse(document.querySelector("script[type=importmap]")?.textContent || "{}");
    return map.imports?.[stable] || stable;
  } catch { return stable; }
}

// Started by the page's inline head script, in parallel with the module downloads: the
// profile, the strings when the page's inline ones are of another language, and the reads
// the page names in <meta name="huoban-early">. Each is used once, by the first call for it.
const early = globalThis.__huobanEarly || {};
globalThis.__huobanEarly = null;
function takeEarly(method, path) {
  const pending = method === "GET" && !base && early.token === session.token ? early.api?.[path] : null;
  if (pending) delete early.api[path];
  return pending;
}

// The strings the server put in the page (`<script type="application/json" id="huoban-strings">`).
function inlineStrings(loc) {
  const el = document.getElementById("huoban-strings");
  if (!el || el.dataset.locale !== loc) return null;
  try { return JSON.parse(el.textContent); } catch { return null; }
}

/** Loads the strings of `loc` (default: the saved or the browser's language). */
export async function loadLocale(loc = locale()) {
  const pending = early.locale === loc && early.strings;
  early.strings = null;
  const fetchIt = () => fetch(assetUrl(`/h5/assets/locales/${loc}.json`)).then((r) => r.json());
  strings = inlineStrings(loc) || await (pending ? pending.catch(fetchIt) : fetchIt());
  document.documentElement.lang = loc;
  // Tells the server which language to put in the next page.
  try { document.cookie = `huoban.locale=${loc}; path=/h5; max-age=31536000; samesite=lax`; } catch { /* no cookies */ }
  return strings;
}

/** A localized string; `{name}` placeholders are filled from `vars`. */
export function t(key, vars = {}) {
  const s = strings[key] ?? key;
  return s.replace(/\{(\w+)\}/g, (m, k) => (vars[k] ?? m));
}

export const fmt = {
  money: (minor, currency = "CNY") => new Intl.NumberFormat(locale(), { style: "currency", currency }).format((minor || 0) / 100),
  number: (n) => new Intl.NumberFormat(locale()).format(n || 0),
  percent: (p) => new Intl.NumberFormat(locale(), { style: "percent", maximumFractionDigits: 0 }).format((p || 0) / 100),
  date: (d, style = "medium") => new Intl.DateTimeFormat(locale(), { dateStyle: style }).format(typeof d === "string" && d.length === 10 ? new Date(d + "T00:00:00") : new Date(d)),
  dateTime: (d) => new Intl.DateTimeFormat(locale(), { dateStyle: "medium", timeStyle: "short" }).format(new Date(d)),
  /** A prize (`{points}` or `{reward_id}`) in words: "500 points", "a coupon". */
  prize: (p) => (p?.points ? t("prize.points", { points: fmt.number(p.points) }) : t("prize.coupon")),
};

// ---- preferences ----
/** Elderly mode on the page, or (given an element) in the part of the page it is in. */
export const isElderly = (el) => (el?.closest("[data-mode]") || document.documentElement).dataset.mode === "elderly";

function applyMode(elderly) {
  document.documentElement.dataset.mode = elderly ? "elderly" : "playful";
  write(MODE, elderly ? "elderly" : "playful");
}

/** A festival theme for the page (`spring-festival`, `mid-autumn`), or none. */
export function setTheme(name) {
  if (name) document.documentElement.dataset.theme = name; else delete document.documentElement.dataset.theme;
}

/**
 * The live campaigns for this customer (`GET /api/v1/campaigns`); the first live one's
 * festival theme is applied and remembered, so the next page starts in it (and forgotten
 * when no campaign is live). `keepTheme` leaves the page's theme alone (a preview).
 */
export async function campaigns({ keepTheme = false } = {}) {
  const list = await api.get("/api/v1/campaigns");
  const live = list.find((c) => c.state === "live") || null;
  write(THEME, live?.theme || null);
  if (!keepTheme) setTheme(live?.theme);
  return { list, live };
}

/** The signed-in customer's profile (cached for the page). */
export async function profile(refresh = false) {
  const first = !me && early.me && early.token === session.token ? early.me : null;
  early.me = null;
  if (!me || refresh) me = await request("GET", "/api/v1/me", undefined, first ? { early: first } : {});
  return me;
}

/** Switches elderly mode and saves it to the profile. */
export async function setElderly(on) {
  applyMode(on);
  try {
    if (session.token) {
      const p = await profile();
      me = await api.patch("/api/v1/me", { preferences: { ...p.preferences, elderly_mode: on } });
    }
  } finally { document.dispatchEvent(new CustomEvent("huoban:prefs")); }
}

/** Switches the language, reloads the strings and saves it to the profile. */
export async function setLocale(loc) {
  write(LOCALE, loc);
  // Saved before the page redraws, so the next page (which reads the profile) agrees.
  const saving = session.token ? api.patch("/api/v1/me", { locale: loc }) : null;
  try {
    await loadLocale(loc);
    if (saving) me = await saving;
  } finally { document.dispatchEvent(new CustomEvent("huoban:prefs")); }
}

/**
 * Starts a page: applies the saved mode, loads strings; with `auth` (default) it needs a
 * session (else goes to sign-in) and takes language and elderly mode from the profile.
 */
export async function boot({ auth = true, theme } = {}) {
  applyMode(read(MODE) === "elderly");
  setTheme(theme || read(THEME));
  if (auth && !session.token) { toSignIn(); return new Promise(() => {}); }
  const [p] = await Promise.all([auth ? profile().catch((e) => { if (e.status !== 401) throw e; }) : null, loadLocale()]);
  if (p) {
    applyMode(!!p.preferences?.elderly_mode);
    if (p.locale && p.locale !== locale()) { write(LOCALE, p.locale); await loadLocale(p.locale); }
  }
  translate(document);
  events.track("page_view", { page: location.pathname });
  return p;
}

/** Fills `[data-t]` elements' text and `[data-t-label]` aria-labels from the strings. */
export function translate(root) {
  root.querySelectorAll("[data-t]").forEach((el) => { el.textContent = t(el.dataset.t); });
  root.querySelectorAll("[data-t-label]").forEach((el) => el.setAttribute("aria-label", t(el.dataset.tLabel)));
  root.querySelectorAll("[data-t-placeholder]").forEach((el) => el.setAttribute("placeholder", t(el.dataset.tPlaceholder)));
  if (root === document && document.body.dataset.title) document.title = t(document.body.dataset.title) + " · " + t("app.name");
}

// ---- behaviour events ----
const loadQueue = () => { try { return JSON.parse(read(QUEUE) || "[]"); } catch { return []; } };
let timer = null;
let sending = false;

export const events = {
  /** Queues one event; it is sent within a few seconds with the others. `id` (optional)
   * makes it count once however often it is sent (the server drops repeated ids). */
  track(type, properties = {}, id = uuid()) {
    const q = loadQueue();
    if (q.some((e) => e.id === id)) return;
    q.push({ id, type, channel: "h5", at: new Date().toISOString(), properties });
    write(QUEUE, JSON.stringify(q.slice(-500)));
    events.schedule();
  },
  pending: () => loadQueue().length,
  schedule(ms = 3000) { if (!timer) timer = setTimeout(() => { timer = null; events.flush(); }, ms); },
  /** Sends what is queued (up to 100 at a time); keeps it when offline or on a server error. */
  async flush() {
    if (sending || !session.token) return;
    const batch = loadQueue().slice(0, 100);
    if (!batch.length) return;
    sending = true;
    try {
      await request("POST", "/api/v1/events", { events: batch }, { noRedirect: true });
      const sent = new Set(batch.map((e) => e.id));
      write(QUEUE, JSON.stringify(loadQueue().filter((e) => !sent.has(e.id))));
      if (loadQueue().length) events.schedule(100);
    } catch (e) {
      if (e.status >= 400 && e.status < 500 && e.status !== 401 && e.status !== 429) {
        // Refused as a whole (malformed): drop it rather than retry forever.
        const sent = new Set(batch.map((x) => x.id));
        write(QUEUE, JSON.stringify(loadQueue().filter((x) => !sent.has(x.id))));
      } else events.schedule(15000);
    } finally { sending = false; }
  },
};
addEventListener("online", () => events.flush());
addEventListener("pagehide", () => {
  const q = loadQueue();
  if (q.length && session.token) fetch(base + "/api/v1/events", { method: "POST", keepalive: true, headers: { "content-type": "application/json", authorization: "Bearer " + session.token }, body: JSON.stringify({ events: q.slice(0, 100) }) }).catch(() => {});
});

// ---- live updates ----
const listeners = new Set();
let source = null;

/** Calls `fn(message)` for every inbox message pushed live; returns an unsubscribe function.
 * `fn({type: "resync"})` means some were missed: reload what you show. */
export function live(fn) {
  listeners.add(fn);
  if (!source && session.token && globalThis.EventSource) {
    source = new EventSource(base + "/api/v1/inbox/stream?access_token=" + encodeURIComponent(session.token));
    source.addEventListener("message", (e) => { let m; try { m = JSON.parse(e.data); } catch { return; } listeners.forEach((l) => l(m)); });
    source.addEventListener("resync", () => listeners.forEach((l) => l({ type: "resync" })));
  }
  return () => { listeners.delete(fn); if (!listeners.size && source) { source.close(); source = null; } };
}

// ---- small UI helpers shared by pages and components ----
/** Escapes text for HTML. */
export const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));

export function toast(text, ms = 3000) {
  const el = document.createElement("div");
  el.className = "toast"; el.setAttribute("role", "status"); el.textContent = text;
  document.body.append(el);
  setTimeout(() => el.remove(), ms);
}

export function celebrate(symbol = "🎉") {
  if (isElderly()) return;
  const el = document.createElement("div");
  el.className = "confetti playful"; el.setAttribute("aria-hidden", "true"); el.textContent = symbol;
  document.body.append(el);
  setTimeout(() => el.remove(), 1700);
}

/** Base for Huoban's custom elements: `data` property, `state` attribute
 * (loading | empty | error | ready), re-render on language/mode change. */
let elements = 0;
export class HuobanElement extends HTMLElement {
  /** An id prefix unique to this element on the page (for aria-labelledby and the like). */
  get uid() { return this._uid || (this._uid = "hb" + ++elements); }
  static get observedAttributes() { return ["state"]; }
  constructor() { super(); this._data = null; this._error = null; }
  connectedCallback() { this._prefs = () => this.render(); document.addEventListener("huoban:prefs", this._prefs); this.render(); }
  disconnectedCallback() { document.removeEventListener("huoban:prefs", this._prefs); }
  attributeChangedCallback() { if (this.isConnected) this.render(); }
  get data() { return this._data; }
  set data(v) { this._data = v; this._error = null; if (this.getAttribute("state") !== "ready") this.setAttribute("state", "ready"); else this.render(); }
  set error(e) { this._error = e; this.setAttribute("state", "error"); this.render(); }
  get state() { return this.getAttribute("state") || (this._data ? "ready" : "loading"); }
  emit(name, detail) { this.dispatchEvent(new CustomEvent(name, { detail, bubbles: true, composed: true })); }
  /** Common states; returns true when it rendered one of them. */
  renderState(emptyKey, isEmpty) {
    const s = this.state;
    if (s === "loading") { this.innerHTML = `<div class="card" aria-busy="true"><div class="skeleton"></div><p class="muted">${esc(t("state.loading"))}</p></div>`; return true; }
    if (s === "error") { this.innerHTML = `<div class="alert" role="alert">${esc(this._error?.message || t("error.generic"))}</div>`; return true; }
    if (s === "empty" || isEmpty) { this.innerHTML = `<div class="card muted">${esc(t(emptyKey))}</div>`; return true; }
    return false;
  }
}
