import { api, t, esc } from "../huoban.js";
import { start, showError } from "./chrome.js";
import "../components/quiz.js";

await start();
const list = document.querySelector("#quizzes");
function open(id) {
  const old = document.querySelector("#quiz");
  const q = document.createElement("h-quiz");
  q.id = "quiz"; q.setAttribute("questionnaire-id", id);
  old.replaceWith(q);
  q.scrollIntoView?.();
}
api.get("/api/v1/questionnaires").then((p) => {
  list.innerHTML = p.items.length ? p.items.map((q) => `<li class="spread"><span>${esc(q.title)} <span class="muted">· ${esc(t("quiz.count", { n: q.question_count }))}</span></span>
    <button type="button" data-id="${esc(q.id)}">${esc(t("quiz.start"))}</button></li>`).join("") : `<li class="muted">${esc(t("quiz.none"))}</li>`;
  list.querySelectorAll("button").forEach((b) => { b.onclick = () => open(b.dataset.id); });
  const want = new URLSearchParams(location.search).get("id");
  if (want) open(want);
}, showError);
