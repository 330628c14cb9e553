// Team challenge: create a team or join a friend's with its code, the team's progress and
// members, the leaderboard across teams, and the reward when the target is reached. For a
// green-travel plan, one check-in a day ("I made a green trip today").
import { api, t, esc, fmt, events, toast } from "../huoban.js";
import { start, showError, redraw } from "./chrome.js";
import "../components/team-board.js";
import "../components/leaderboard.js";

await start();
const root = document.querySelector("#challenges");
const wanted = new URLSearchParams(location.search).get("code") || "";
const today = () => new Intl.DateTimeFormat("sv-SE").format(new Date());
const tripKey = (c) => "huoban.trip:" + c.id;
const unit = (type) => { const key = "team.unit." + type, text = t(key); return text === key ? "" : text; };
let challenges = [];

function section(c) {
  const mine = !!c.my_team_id, tripped = localStorage.getItem(tripKey(c)) === today();
  return `<section class="stack" data-challenge="${esc(c.id)}" aria-labelledby="ch-${esc(c.id)}">
    <div class="card tile"><h2 id="ch-${esc(c.id)}">${esc(c.name)}</h2>
      <p class="muted">${mine ? "" : esc(t("team.reward_line", { reward: fmt.prize(c.reward) })) + " "}${esc(t("team.ends", { date: fmt.date(c.ends_at) }))}</p></div>
    ${mine ? `<h-team-board state="loading"></h-team-board>
      ${c.event_type === "green_trip" ? `<p class="row"><button type="button" data-trip ${tripped ? "disabled" : ""}>${esc(t(tripped ? "team.recorded" : "team.record"))}</button></p>` : ""}`
    : `<form class="card" data-create novalidate><h3>${esc(t("team.create_title"))}</h3>
        <label>${esc(t("team.name"))}<input name="team_name" maxlength="40" autocomplete="off" required></label>
        <p class="alert" role="alert" hidden></p><button type="submit">${esc(t("team.create"))}</button></form>
      <form class="card" data-join novalidate><h3>${esc(t("team.join_title"))}</h3>
        <label>${esc(t("team.code_input"))}<input name="code" autocomplete="off" autocapitalize="characters" value="${esc(wanted)}" required></label>
        <p class="alert" role="alert" hidden></p><button type="submit">${esc(t("team.join_button"))}</button></form>`}
    <h-leaderboard state="loading"></h-leaderboard></section>`;
}

async function fill(c, el) {
  const board = el.querySelector("h-team-board"), ranks = el.querySelector("h-leaderboard");
  const [team, standings] = await Promise.allSettled([c.my_team_id ? api.get(`/api/v1/teams/${c.my_team_id}`) : null, api.get(`/api/v1/challenges/${c.id}/leaderboard`)]);
  if (board) {
    // Set only when changed, so a refresh never moves the keyboard focus.
    if (team.status === "fulfilled") { const d = { ...team.value, challenge_name: "", unit: unit(c.event_type) }; if (JSON.stringify(d) !== JSON.stringify(board.data)) board.data = d; }
    else board.error = team.reason;
  }
  if (standings.status === "fulfilled") { if (JSON.stringify(standings.value) !== JSON.stringify(ranks.data)) ranks.data = standings.value; }
  else ranks.error = standings.reason;
}

function wire(c, el) {
  const submit = (form, call, done) => form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const alert = form.querySelector(".alert"), input = form.querySelector("input"), btn = form.querySelector("button");
    const value = input.value.trim();
    if (!value) { alert.hidden = false; alert.textContent = t(form.dataset.create != null ? "team.missing_name" : "team.missing_code"); input.focus(); return; }
    btn.disabled = true;
    try {
      await call(value); input.value = ""; toast(t(done)); await load();
      // The form is gone: the keyboard focus goes to the team that replaced it.
      const heading = root.querySelector(`[data-challenge="${c.id}"] h-team-board h2`);
      if (heading) { heading.tabIndex = -1; heading.focus(); }
    }
    catch (err) { alert.hidden = false; alert.textContent = err.message; input.focus(); }
    finally { btn.disabled = false; }
  });
  const create = el.querySelector("[data-create]"), join = el.querySelector("[data-join]"), trip = el.querySelector("[data-trip]");
  if (create) submit(create, (name) => api.post(`/api/v1/challenges/${c.id}/teams`, { name }), "team.created");
  if (join) submit(join, (code) => api.post("/api/v1/teams/join", { code }), "team.joined");
  if (trip) trip.onclick = () => {
    // One check-in a day: the event id is the day, so a second press (or a resend) counts once.
    events.track(c.event_type, { challenge_id: c.id }, `${c.event_type}:${c.id}:${today()}`);
    events.flush();
    localStorage.setItem(tripKey(c), today());
    trip.disabled = true; trip.textContent = t("team.recorded");
    setTimeout(() => fill(c, el), 1500);
  };
}

async function load() {
  let page;
  // A failed refresh keeps what is shown (and the focus where it is).
  try { page = await api.get("/api/v1/challenges"); } catch (e) { if (!challenges.length) showError(e); return; }
  root.removeAttribute("aria-busy");
  const changed = JSON.stringify(page.items.map((c) => [c.id, c.my_team_id])) !== JSON.stringify(challenges.map((c) => [c.id, c.my_team_id]));
  challenges = page.items;
  if (!challenges.length) { root.innerHTML = `<p class="card muted">${esc(t("team.none"))}</p>`; return; }
  if (changed || !root.querySelector("[data-challenge]")) {
    // Redrawn (e.g. in another language): what was typed stays.
    redraw(root, () => { root.innerHTML = challenges.map(section).join(""); });
    challenges.forEach((c) => wire(c, root.querySelector(`[data-challenge="${c.id}"]`)));
  }
  await Promise.all(challenges.map((c) => fill(c, root.querySelector(`[data-challenge="${c.id}"]`))));
}
document.addEventListener("huoban:prefs", () => { challenges = []; load(); });
document.addEventListener("visibilitychange", () => { if (!document.hidden) load(); });
setInterval(() => { if (!document.hidden) load(); }, 10000);
load();
