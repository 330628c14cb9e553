// Tasks: the customer's daily, weekly and one-off tasks in live campaigns, with progress
// this period (in their time zone) and a claim button once complete.
import { api, t, esc, live } from "../huoban.js";
import { start, showError } from "./chrome.js";
import { actionHref } from "./actions.js";
import "../components/task-card.js";

await start();
const root = document.querySelector("#tasks");
const ORDER = ["daily", "weekly", "once"];
let shown = "";

async function load() {
  let list;
  try { list = await api.get("/api/v1/tasks"); } catch (e) {
    // A failed refresh keeps what is shown (and the focus where it is).
    if (!shown) { showError(e); root.removeAttribute("aria-busy"); root.innerHTML = ""; }
    return;
  }
  root.removeAttribute("aria-busy");
  // Redrawn only when something changed, so a refresh never moves the keyboard focus.
  const now = JSON.stringify(list);
  if (now === shown) return;
  shown = now;
  if (!list.length) { root.innerHTML = `<p class="card muted">${esc(t("task.none"))}</p>`; return; }
  root.innerHTML = ORDER.filter((p) => list.some((k) => k.period === p))
    .map((p) => `<section class="stack" aria-labelledby="tasks-${p}"><h2 id="tasks-${p}">${esc(t("task.period." + p))}</h2><div class="stack" data-period="${p}"></div></section>`).join("");
  for (const k of list) {
    const card = document.createElement("h-task-card");
    card.data = { ...k, href: actionHref(k.event_type) };
    root.querySelector(`[data-period="${k.period}"]`)?.append(card);
  }
}
// A claimed card keeps its message; the list is re-read when the customer comes back.
root.addEventListener("task-claimed", () => { shown = ""; });
document.addEventListener("visibilitychange", () => { if (!document.hidden) load(); });
document.addEventListener("huoban:prefs", () => { shown = ""; load(); });
live(() => load());
load();
