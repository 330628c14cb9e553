// The component gallery: every component in each state (loading, empty, normal, error,
// elderly mode), with sample data; no session needed.
import { t, esc, ApiError } from "../huoban.js";
import { start } from "./chrome.js";
import "../components/account-overview.js";
import "../components/goal-progress.js";
import "../components/goal-wizard.js";
import "../components/goal-auto-transfer.js";
import "../components/goal-conversion.js";
import "../components/checkin-calendar.js";
import "../components/task-card.js";
import "../components/badge-wall.js";
import "../components/quiz.js";
import "../components/invite-panel.js";
import "../components/team-board.js";
import "../components/leaderboard.js";
import "../components/reward-shelf.js";
import "../components/inbox-list.js";
import "../components/nudge-banner.js";

await start({ auth: false });
const today = new Date(), iso = (d) => d.toISOString().slice(0, 10);
const days = Array.from({ length: 30 }, (_, i) => {
  const d = new Date(today.getFullYear(), today.getMonth(), 1 + i, 12);
  const n = i + 1, td = today.getDate();
  return { date: iso(d), state: n < td - 6 ? (n % 4 ? "checked_in" : "missed") : n < td ? (n === td - 3 ? "made_up" : "checked_in") : n === td ? "today" : "future", makeup_eligible: false };
});
const S = {
  "h-account-overview": { items: [
    { id: "a1", type: "current", currency: "CNY", label: null, balance: { available: 1284550, posted: 1284550 } },
    { id: "a2", type: "savings", currency: "CNY", label: null, balance: { available: 5000000, posted: 5000000 } },
    { id: "a3", type: "points", currency: "POINTS", label: null, balance: { available: 3260, posted: 3260 } }] },
  "h-goal-progress": { id: "g1", name: t("sample.goal"), currency: "CNY", target_amount: 1000000, saved: 560000, remaining: 440000, percent: 56, completed: false, behind_plan: false, plan: { monthly_amount: 90000, transfer_day: 12 } },
  "h-goal-wizard": null,
  "h-goal-auto-transfer": { id: "g1", name: t("sample.goal"), role: "owner", currency: "CNY", target_amount: 1000000, saved: 560000, remaining: 440000, percent: 56, completed: false, plan: { monthly_amount: 90000, transfer_day: 12 },
    auto_transfer: { from_account: "a1", transfer_day: 12, amount: 90000, next_transfer_at: new Date(Date.now() + 9 * 864e5).toISOString(), month: iso(today).slice(0, 7), attempts: 0 } },
  "h-goal-conversion": { items: [{ id: "o1", title: t("sample.offer"), campaign_id: "c1", points: 100, fen: 100, max_points: 100000 }] },
  "h-checkin-calendar": { month: iso(today).slice(0, 7), days, current_streak: 6, longest_streak: 12, checked_in_today: false, next_milestone: { days: 7, points: 50, days_to_go: 1 } },
  "h-task-card": { id: "k1", campaign_id: "c1", title: t("sample.task2"), period: "daily", period_key: iso(today), event_type: "check_in", progress: 1, target: 1, complete: true, claimed: false, reward_points: 10, reward_coupon: null },
  "h-badge-wall": { badges: [
    { id: "b1", name: t("sample.badge1"), icon: "🔥", earned: true, earned_at: iso(today) },
    { id: "b2", name: t("sample.badge2"), icon: "🎯", earned: true },
    { id: "b3", name: t("sample.badge3"), icon: "🌱", earned: false, hint: t("sample.badge_hint") }] },
  "h-quiz": { session_id: "s1", questionnaire_id: "q1", status: "in_progress", answered: 1, question: { id: "q2", text: t("sample.question"), options: [{ id: "a", text: t("sample.option_a") }, { id: "b", text: t("sample.option_b") }] } },
  "h-invite-panel": { code: "HB7K2Q9P", link: location.origin + "/h5/invite?code=HB7K2Q9P", poster_url: null, programme_id: "p1", programme_name: t("sample.campaign"), accepted: 3, qualified: 2, unlock_count: 3, progress: "2/3", unlocked: false, rewarded: false, reward: { points: 500 }, ends_at: new Date(Date.now() + 20 * 864e5).toISOString(), action: t("action.questionnaire_completed") },
  "h-team-board": { id: "t1", challenge_id: "ch1", challenge_name: t("sample.team"), name: t("sample.team2"), join_code: "GREEN7Q2", member_count: 3, max_members: 5, progress: 41, target: 60, percent: 68, completed: false, completed_at: null, reward: { points: 300 }, unit: t("team.unit.green_trip"),
    members: [{ name: t("sample.team_member1"), contribution: 17, captain: true, me: false, rewarded: false }, { name: t("sample.team_member2"), contribution: 14, captain: false, me: true, rewarded: false }, { name: t("sample.team_member3"), contribution: 10, captain: false, me: false, rewarded: false }] },
  "h-leaderboard": { challenge_id: "ch1", target: 60, teams: [
    { rank: 1, team_id: "t2", name: t("sample.team3"), member_count: 5, progress: 52, percent: 86, completed: false, mine: false },
    { rank: 2, team_id: "t1", name: t("sample.team2"), member_count: 3, progress: 41, percent: 68, completed: false, mine: true },
    { rank: 3, team_id: "t3", name: t("sample.team"), member_count: 2, progress: 12, percent: 20, completed: false, mine: false }] },
  "h-reward-shelf": { items: [
    { id: "r1", title: t("sample.reward1"), points_price: 500, stock_left: 37, claimable_until: iso(new Date(Date.now() + 20 * 864e5)), my_claims: 0, my_claims_left: 1, campaign_id: "c1", campaign_title: t("sample.campaign") },
    { id: "r2", title: t("sample.reward2"), points_price: 3000, stock_left: 0, claimable_until: iso(new Date(Date.now() + 5 * 864e5)), my_claims: 0, my_claims_left: 1 }] },
  "h-inbox": { items: [
    { id: "m1", kind: "goal_milestone", title: t("sample.msg1"), body: t("sample.msg1_body"), created_at: new Date().toISOString(), read: false },
    { id: "m2", kind: "alert", title: t("sample.msg2"), body: t("sample.msg2_body"), created_at: new Date(Date.now() - 864e5).toISOString(), read: true }] },
  "h-nudge": { text: t("nudge.streak", { n: 6 }), action: t("nudge.go") },
};
const STATES = ["loading", "empty", "normal", "error", "elderly"];
const root = document.querySelector("#gallery");
root.innerHTML = Object.keys(S).map((tag) => `<section aria-labelledby="h-${tag}"><h2 id="h-${tag}"><code>&lt;${tag}&gt;</code></h2>
  ${STATES.map((s) => `<h3>${esc(t("gallery." + s))}</h3><div ${s === "elderly" ? 'data-mode="elderly"' : ""} data-slot="${tag}:${s}"></div>`).join("")}</section>`).join("");
for (const [tag, data] of Object.entries(S)) {
  for (const s of STATES) {
    const el = document.createElement(tag);
    if (tag === "h-checkin-calendar" || tag === "h-quiz") el.setAttribute("readonly", "");
    if (tag === "h-reward-shelf" || tag === "h-goal-conversion") el.setAttribute("points", "3260");
    if (tag === "h-goal-conversion") el.setAttribute("goal-id", "g1");
    if (tag === "h-goal-auto-transfer") el.accounts = S["h-account-overview"].items;
    if (s === "loading") el.setAttribute("state", "loading");
    else if (s === "empty") el.setAttribute("state", "empty");
    else if (s === "error") { el.error = new ApiError(503, "network", {}); }
    else if (data) el.data = structuredClone(data);
    root.querySelector(`[data-slot="${tag}:${s}"]`).append(el);
  }
}
