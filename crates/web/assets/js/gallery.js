// The component gallery: every component in each state (loading, empty, normal, error,
// elderly mode), with sample data; no session needed.
import { t, esc, ApiError } from "../huoban.js";
import { start } from "./chrome.js";
import "../components/account-overview.js";
import "../components/goal-progress.js";
import "../components/goal-wizard.js";
import "../components/checkin-calendar.js";
import "../components/task-card.js";
import "../components/badge-wall.js";
import "../components/quiz.js";
import "../components/invite-panel.js";
import "../components/team-board.js";
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
  "h-checkin-calendar": { month: iso(today).slice(0, 7), days, current_streak: 6, longest_streak: 12, checked_in_today: false, next_milestone: { days: 7, points: 50, days_to_go: 1 } },
  "h-task-card": { id: "k1", title: t("sample.task"), description: t("sample.task_text"), progress: 2, target: 3, reward_points: 30, status: "open" },
  "h-badge-wall": { badges: [
    { id: "b1", name: t("sample.badge1"), icon: "🔥", earned: true, earned_at: iso(today) },
    { id: "b2", name: t("sample.badge2"), icon: "🎯", earned: true },
    { id: "b3", name: t("sample.badge3"), icon: "🌱", earned: false, hint: t("sample.badge_hint") }] },
  "h-quiz": { session_id: "s1", questionnaire_id: "q1", status: "in_progress", answered: 1, question: { id: "q2", text: t("sample.question"), options: [{ id: "a", text: t("sample.option_a") }, { id: "b", text: t("sample.option_b") }] } },
  "h-invite-panel": { code: "HB7K2Q", link: location.origin + "/h5/?invite=HB7K2Q", invited: 4, completed: 2, needed: 3, reward_points: 200, campaign: t("sample.campaign") },
  "h-team-board": { name: t("sample.team"), target: 300, total: 187, unit: "km", joinable: true, members: [{ name: "王芳", amount: 72 }, { name: "李强", amount: 60, is_you: true }, { name: "张伟", amount: 55 }] },
  "h-reward-shelf": { items: [
    { id: "r1", title: t("sample.reward1"), points_price: 500, stock_left: 37, claimable_until: iso(new Date(Date.now() + 20 * 864e5)), my_claims: 0, my_claims_left: 1 },
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
    if (tag === "h-reward-shelf") el.setAttribute("points", "3260");
    if (s === "loading") el.setAttribute("state", "loading");
    else if (s === "empty") el.setAttribute("state", "empty");
    else if (s === "error") { el.error = new ApiError(503, "network", {}); }
    else if (data) el.data = structuredClone(data);
    root.querySelector(`[data-slot="${tag}:${s}"]`).append(el);
  }
}
