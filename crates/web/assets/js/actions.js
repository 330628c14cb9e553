// Where each qualifying action (an event type) is done on these pages, and how to say it:
// the tasks page's "Go" links and the invite page's next step for a friend.
import { t } from "../huoban.js";

const PAGES = { check_in: "/h5/checkin", questionnaire_completed: "/h5/quiz", deposit: "/h5/goal", green_trip: "/h5/team", share: "/h5/invite" };

/** The page where `type` is done (with `match`, e.g. the questionnaire to take), or null. */
export function actionHref(type, match = {}) {
  if (type === "questionnaire_completed" && match?.questionnaire_id) return "/h5/quiz?id=" + encodeURIComponent(match.questionnaire_id);
  return PAGES[type] || null;
}

/** The action in words ("finish the finance quiz"). */
export function actionText(type) {
  const key = "action." + type, text = t(key);
  return text === key ? t("action.other") : text;
}
