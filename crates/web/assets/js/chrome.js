// The page frame shared by every H5 page: header with language and large-print switches,
// bottom tabs, the campaign pages' own row of links (`<nav class="sub">`), and a place for
// page-level errors. Strings come from the locale files.
import { boot, restoreDrafts, t, esc, translate, setLocale, setElderly, isElderly, locale, LOCALES, events } from "../huoban.js";

const TABS = [["/h5/", "nav.hub"], ["/h5/goal", "nav.goal"], ["/h5/tasks", "nav.tasks"], ["/h5/rewards", "nav.rewards"], ["/h5/inbox", "nav.inbox"]];
const CAMPAIGN = [["/h5/tasks", "nav.tasks"], ["/h5/checkin", "nav.checkin"], ["/h5/quiz", "nav.quiz"], ["/h5/invite", "nav.invite"], ["/h5/team", "nav.team"]];
const links = (list) => list.map(([href, key]) => `<a href="${href}" ${location.pathname === href ? 'aria-current="page"' : ""}>${esc(t(key))}</a>`).join("");

function frame() {
  const header = document.querySelector("header.bar");
  if (header) {
    header.innerHTML = `<h1 data-t="${esc(document.body.dataset.title)}"></h1>
      <select data-lang aria-label="${esc(t("prefs.language"))}" style="width:auto">${LOCALES.map((l) => `<option value="${l}" ${l === locale() ? "selected" : ""}>${esc(t("lang." + l))}</option>`).join("")}</select>
      <button type="button" class="ghost" data-elderly aria-pressed="${isElderly()}" style="color:var(--brand-ink);border-color:var(--brand-ink)">${esc(t(isElderly() ? "prefs.playful" : "prefs.elderly"))}</button>`;
    header.querySelector("[data-lang]").onchange = (e) => setLocale(e.target.value).then(frame, showError);
    header.querySelector("[data-elderly]").onclick = () => setElderly(!isElderly()).then(frame, showError);
  }
  const nav = document.querySelector("nav.tabs");
  if (nav) {
    nav.setAttribute("aria-label", t("nav.label"));
    nav.innerHTML = links(TABS);
  }
  const sub = document.querySelector("nav.sub");
  if (sub) {
    sub.setAttribute("aria-label", t("nav.sub"));
    sub.innerHTML = links(CAMPAIGN);
  }
  translate(document);
}

/** Shows an error (an ApiError or a string) at the top of the page, in the alert region. */
export function showError(e) {
  const box = document.querySelector("#page-error");
  if (!box) return;
  box.hidden = !e;
  box.textContent = e ? (e.message || String(e)) : "";
  if (e) box.focus?.();
}

/** Redraws `root` with `draw()` (e.g. in another language) keeping what was typed in its
 * named fields. */
export function redraw(root, draw) {
  const typed = [...root.querySelectorAll("input[name], select[name]")].filter((i) => i.value).map((i) => [i.name, i.value]);
  draw();
  for (const [name, value] of typed) root.querySelectorAll(`[name="${name}"]`).forEach((i) => { i.value = value; });
}

/** Starts the page: session, strings, frame; resolves with the customer's profile. */
export async function start(opts) {
  addEventListener("offline", () => showError({ message: t("error.offline") }));
  addEventListener("online", () => showError(null));
  let profile;
  try { profile = await boot(opts); } catch (e) { showError(e); }
  frame();
  document.addEventListener("huoban:prefs", frame);
  document.body.removeAttribute("aria-busy");
  setTimeout(restoreDrafts, 0);
  // Session, strings and frame in place, handlers attached: `huoban bench h5` measures this.
  performance.mark?.("huoban:interactive");
  return profile;
}

export { events };
