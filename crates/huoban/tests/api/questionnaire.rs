//! Questionnaires and quizzes: the built-in risk questionnaire branches and sets a
//! suitability level; operators save quizzes whose graphs are validated at save time;
//! answers must follow the path; a passing quiz pays its points once, a failing one
//! nothing; staff routes are for staff with the campaign permission.

use huoban_identity::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::{
    helpers::{Reply, TestApp},
    on_both_backends,
};

on_both_backends!(
    the_risk_questionnaire_down_two_branches_gives_two_paths_and_levels,
    an_operator_saves_a_quiz_that_customers_then_see,
    invalid_graphs_are_refused_at_save_time_naming_the_problem,
    answers_off_the_path_are_refused,
    a_passing_quiz_pays_points_once_and_a_failing_one_nothing,
    customers_and_auditors_cannot_use_the_staff_routes,
    concurrent_answers_take_effect_once,
);

fn text(s: &str) -> Value {
    json!({ "zh-CN": s, "en": s })
}

/// A two-question quiz: one point per right answer, two to pass, `reward` points for it.
pub fn quiz(reward: i64) -> Value {
    json!({
        "kind": "quiz",
        "title": { "zh-CN": "理财小测验", "zh-TW": "理財小測驗", "en": "Money quiz" },
        "start": "q1",
        "quiz": { "pass_mark": 2, "reward_points": reward },
        "questions": [
            { "id": "q1", "text": { "zh-CN": "存款保险的最高赔付是？", "en": "The deposit insurance limit is?" },
              "options": [
                  { "id": "right", "text": text("50 万"), "next": "q2", "score": 1 },
                  { "id": "wrong", "text": text("100 万"), "next": "q2", "score": 0 } ] },
            { "id": "q2", "text": text("复利是？"),
              "options": [
                  { "id": "right", "text": text("利滚利"), "next": null, "score": 1 },
                  { "id": "wrong", "text": text("单利"), "score": 0 } ] }
        ]
    })
}

async fn start(app: &TestApp, token: &str, questionnaire: &str) -> Reply {
    app.post(
        &format!("/api/v1/questionnaires/{questionnaire}/sessions"),
        Some(token),
        json!({}),
    )
    .await
}

async fn answer(app: &TestApp, token: &str, session: &str, question: &str, option: &str) -> Reply {
    app.post(
        &format!("/api/v1/questionnaires/sessions/{session}/answers"),
        Some(token),
        json!({ "question_id": question, "option_id": option }),
    )
    .await
}

/// Starts a session and gives the answers in order; returns the last reply.
async fn take(app: &TestApp, token: &str, questionnaire: &str, answers: &[(&str, &str)]) -> Reply {
    let started = start(app, token, questionnaire).await;
    assert_eq!(started.status, StatusCode::CREATED, "{:?}", started.body);
    let session = started.body["session_id"].as_str().expect("session id").to_owned();
    let mut last = started;
    for (question, option) in answers {
        assert_eq!(last.body["question"]["id"], *question, "{:?}", last.body);
        last = answer(app, token, &session, question, option).await;
        assert_eq!(last.status, StatusCode::OK, "{:?}", last.body);
    }
    last
}

async fn save(app: &TestApp, token: &str, body: Value) -> Reply {
    app.post("/api/v1/staff/questionnaires", Some(token), body).await
}

async fn points(app: &TestApp, token: &str) -> i64 {
    let accounts = app.get("/api/v1/accounts", Some(token)).await;
    accounts.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|a| a["type"] == "points")
        .and_then(|a| a["balance"]["posted"].as_i64())
        .expect("points account")
}

async fn the_risk_questionnaire_down_two_branches_gives_two_paths_and_levels(app: TestApp) {
    let young = app.customer("13500000001").await;
    let senior = app.customer("13500000002").await;
    app.patch("/api/v1/me", Some(&senior), json!({ "locale": "en" })).await;
    app.get("/api/v1/suitability", Some(&young))
        .await
        .assert_problem(404, "no-suitability");

    let list = app.get("/api/v1/questionnaires", Some(&young)).await;
    assert_eq!(list.body["items"][0]["id"], "risk-appetite", "{:?}", list.body);
    assert_eq!(list.body["items"][0]["title"], "风险承受能力评估");

    let first = start(&app, &senior, "risk-appetite").await;
    assert_eq!(first.status, StatusCode::CREATED, "{:?}", first.body);
    assert_eq!(
        first.body["question"]["text"], "How old are you?",
        "in the customer's locale"
    );
    assert!(
        first.body["question"]["options"][0].get("score").is_none(),
        "scores stay hidden"
    );

    let aggressive = take(
        &app,
        &young,
        "risk-appetite",
        &[
            ("age", "a"),
            ("experience", "d"),
            ("horizon", "d"),
            ("loss_tolerance", "e"),
            ("goal", "d"),
        ],
    )
    .await;
    let cautious = take(
        &app,
        &senior,
        "risk-appetite",
        &[
            ("age", "d"),
            ("retirement_income", "a"),
            ("horizon", "a"),
            ("loss_tolerance", "a"),
            ("goal", "a"),
        ],
    )
    .await;
    assert_eq!(aggressive.body["status"], "finished");
    assert_eq!(
        aggressive.body["result"]["path"],
        json!(["age", "experience", "horizon", "loss_tolerance", "goal"])
    );
    assert_eq!(
        cautious.body["result"]["path"],
        json!(["age", "retirement_income", "horizon", "loss_tolerance", "goal"])
    );
    assert_eq!(aggressive.body["result"]["suitability"]["level"], "C5");
    assert_eq!(cautious.body["result"]["suitability"]["level"], "C1");
    assert_eq!(cautious.body["result"]["suitability"]["name"], "Conservative");

    let young_level = app.get("/api/v1/suitability", Some(&young)).await;
    assert_eq!(young_level.status, StatusCode::OK, "{:?}", young_level.body);
    assert_eq!(young_level.body["level"], "C5");
    assert_eq!(young_level.body["score"], 21);
    assert_eq!(app.get("/api/v1/suitability", Some(&senior)).await.body["level"], "C1");
    // A retake replaces the level.
    take(
        &app,
        &young,
        "risk-appetite",
        &[
            ("age", "b"),
            ("experience", "b"),
            ("horizon", "b"),
            ("loss_tolerance", "c"),
            ("goal", "b"),
        ],
    )
    .await;
    assert_eq!(app.get("/api/v1/suitability", Some(&young)).await.body["level"], "C3");
    assert_eq!(app.count("customer_suitability").await, 2);
}

async fn an_operator_saves_a_quiz_that_customers_then_see(app: TestApp) {
    let operator = app.staff(Role::Operator).await;
    let saved = save(&app, &operator, quiz(50)).await;
    assert_eq!(saved.status, StatusCode::CREATED, "{:?}", saved.body);
    let id = saved.body["id"].as_str().expect("id").to_owned();
    assert_eq!(saved.body["published"], true);
    assert_eq!(saved.body["definition"]["quiz"]["reward_points"], 50);
    let mut draft = quiz(10);
    draft["published"] = json!(false);
    let draft = save(&app, &operator, draft).await;
    assert_eq!(draft.status, StatusCode::CREATED, "{:?}", draft.body);
    let draft_id = draft.body["id"].as_str().expect("id").to_owned();

    let staff_list = app.get("/api/v1/staff/questionnaires", Some(&operator)).await;
    assert_eq!(staff_list.status, StatusCode::OK, "{:?}", staff_list.body);
    let staff_ids: Vec<&str> = staff_list.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|q| q["id"].as_str())
        .collect();
    assert_eq!(staff_ids, [id.as_str(), draft_id.as_str()]);

    let customer = app.customer("13500000011").await;
    let list = app.get("/api/v1/questionnaires", Some(&customer)).await;
    let items = list.body["items"].as_array().expect("items");
    let ids: Vec<&str> = items.iter().filter_map(|q| q["id"].as_str()).collect();
    assert_eq!(ids, ["risk-appetite", id.as_str()], "drafts are not listed");
    assert_eq!(items[1]["title"], "理财小测验");
    assert_eq!(items[1]["kind"], "quiz");
    assert_eq!(items[1]["reward_points"], 50);
    start(&app, &customer, &draft_id)
        .await
        .assert_problem(404, "unknown-questionnaire");
    start(&app, &customer, "no-such-quiz")
        .await
        .assert_problem(404, "unknown-questionnaire");
    let started = start(&app, &customer, &id).await;
    assert_eq!(started.status, StatusCode::CREATED, "{:?}", started.body);
    assert_eq!(started.body["question"]["text"], "存款保险的最高赔付是？");
}

async fn invalid_graphs_are_refused_at_save_time_naming_the_problem(app: TestApp) {
    let operator = app.staff(Role::Operator).await;
    let broken = |change: &dyn Fn(&mut Value)| {
        let mut body = quiz(50);
        change(&mut body);
        body
    };
    let cases: Vec<(Value, &str, &str)> = vec![
        (
            broken(&|q| q["questions"][1]["options"][0]["next"] = json!("q1")),
            "cycle",
            "q2",
        ),
        (
            broken(&|q| q["questions"][0]["options"][1]["next"] = json!("q9")),
            "missing_target",
            "q1",
        ),
        (
            broken(&|q| {
                let orphan = json!({ "id": "q3", "text": text("孤立"), "options": [
                    { "id": "a", "text": text("a") }, { "id": "b", "text": text("b") } ] });
                q["questions"].as_array_mut().expect("questions").push(orphan);
            }),
            "unreachable",
            "q3",
        ),
        (
            broken(&|q| q["questions"][1]["id"] = json!("q1")),
            "duplicate_question",
            "q1",
        ),
        (
            broken(&|q| q["questions"][1]["options"][1]["id"] = json!("right")),
            "duplicate_option",
            "q2",
        ),
        (
            broken(&|q| {
                q["questions"][1]["options"]
                    .as_array_mut()
                    .expect("options")
                    .truncate(1)
            }),
            "too_few_options",
            "q2",
        ),
        (broken(&|q| q["start"] = json!("q0")), "missing_start", ""),
    ];
    for (body, kind, question) in cases {
        let refused = save(&app, &operator, body).await;
        refused.assert_problem(422, "invalid-questionnaire");
        let errors = refused.body["errors"].as_array().expect("errors");
        let named = errors
            .iter()
            .find(|e| e["kind"] == kind)
            .unwrap_or_else(|| panic!("no {kind} error in {errors:?}"));
        if !question.is_empty() {
            assert_eq!(named["question"], question, "{named:?}");
        }
        assert!(named["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    let detail = save(
        &app,
        &operator,
        broken(&|q| q["questions"][1]["options"][0]["next"] = json!("q1")),
    )
    .await;
    assert!(
        detail.body["detail"].as_str().expect("detail").contains("cycle"),
        "{:?}",
        detail.body
    );
    let mut too_hard = quiz(50);
    too_hard["quiz"]["pass_mark"] = json!(3);
    save(&app, &operator, too_hard)
        .await
        .assert_problem(422, "invalid-questionnaire");
    let mut risk = quiz(50);
    risk["kind"] = json!("risk_appetite");
    save(&app, &operator, risk).await.assert_problem(422, "validation");
    assert_eq!(app.count("questionnaires").await, 0, "nothing invalid is stored");
}

async fn answers_off_the_path_are_refused(app: TestApp) {
    let customer = app.customer("13500000021").await;
    let other = app.customer("13500000022").await;
    let started = start(&app, &customer, "risk-appetite").await;
    let session = started.body["session_id"].as_str().expect("session").to_owned();
    let off = answer(&app, &customer, &session, "horizon", "a").await;
    off.assert_problem(409, "not-on-path");
    assert_eq!(off.body["current_question"], "age");
    answer(&app, &customer, &session, "age", "z")
        .await
        .assert_problem(422, "unknown-option");
    let next = answer(&app, &customer, &session, "age", "a").await;
    assert_eq!(next.body["question"]["id"], "experience");
    assert_eq!(next.body["answered"], 1);
    // The other branch's question, and the question already answered, are both off the path.
    answer(&app, &customer, &session, "retirement_income", "a")
        .await
        .assert_problem(409, "not-on-path");
    answer(&app, &customer, &session, "age", "b")
        .await
        .assert_problem(409, "not-on-path");
    answer(&app, &other, &session, "experience", "a")
        .await
        .assert_problem(404, "unknown-session");
    for (question, option) in [
        ("experience", "a"),
        ("horizon", "a"),
        ("loss_tolerance", "a"),
        ("goal", "a"),
    ] {
        let reply = answer(&app, &customer, &session, question, option).await;
        assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    }
    answer(&app, &customer, &session, "goal", "a")
        .await
        .assert_problem(409, "session-finished");
    app.post(
        &format!("/api/v1/questionnaires/sessions/{session}/answers"),
        Some(&customer),
        json!({ "question_id": "age" }),
    )
    .await
    .assert_problem(422, "invalid-body");
}

async fn a_passing_quiz_pays_points_once_and_a_failing_one_nothing(app: TestApp) {
    let operator = app.staff(Role::Operator).await;
    let id = save(&app, &operator, quiz(50)).await.body["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let winner = app.customer("13500000031").await;
    let loser = app.customer("13500000032").await;

    let passed = take(&app, &winner, &id, &[("q1", "right"), ("q2", "right")]).await;
    assert_eq!(passed.body["result"]["passed"], true, "{:?}", passed.body);
    assert_eq!(passed.body["result"]["score"], 2);
    assert_eq!(passed.body["result"]["points_awarded"], 50);
    assert_eq!(points(&app, &winner).await, 50);

    let again = take(&app, &winner, &id, &[("q1", "right"), ("q2", "right")]).await;
    assert_eq!(again.body["result"]["passed"], true);
    assert_eq!(again.body["result"]["points_awarded"], 0, "paid once per quiz");
    assert_eq!(points(&app, &winner).await, 50);

    let failed = take(&app, &loser, &id, &[("q1", "right"), ("q2", "wrong")]).await;
    assert_eq!(failed.body["result"]["passed"], false);
    assert_eq!(failed.body["result"]["points_awarded"], 0);
    assert_eq!(points(&app, &loser).await, 0);
    // The ledger still balances: the reward came from the bank's points clearing account.
    let report = huoban_ledger::invariants(&app.app.db).await.expect("invariants");
    assert!(report.is_ok(), "{report:?}");
}

async fn customers_and_auditors_cannot_use_the_staff_routes(app: TestApp) {
    let customer = app.customer("13500000041").await;
    let auditor = app.staff(Role::Auditor).await;
    let admin = app.staff(Role::Admin).await;
    save(&app, &customer, quiz(50)).await.assert_problem(403, "staff-only");
    save(&app, &auditor, quiz(50))
        .await
        .assert_problem(403, "permission-denied");
    app.get("/api/v1/staff/questionnaires", Some(&auditor))
        .await
        .assert_problem(403, "permission-denied");
    app.get("/api/v1/staff/questionnaires", Some(&customer))
        .await
        .assert_problem(403, "staff-only");
    assert_eq!(app.count("questionnaires").await, 0);
    // Staff do not take questionnaires for customers.
    start(&app, &admin, "risk-appetite")
        .await
        .assert_problem(403, "customers-only");
    let saved = save(&app, &admin, quiz(50)).await;
    assert_eq!(saved.status, StatusCode::CREATED, "{:?}", saved.body);
}

async fn concurrent_answers_take_effect_once(app: TestApp) {
    let operator = app.staff(Role::Operator).await;
    let id = save(&app, &operator, quiz(50)).await.body["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let customer = app.customer("13500000051").await;
    // The same last answer sent twice at once to one session: one finishes it.
    let mut sessions = Vec::new();
    for _ in 0..2 {
        let started = start(&app, &customer, &id).await;
        let session = started.body["session_id"].as_str().expect("session").to_owned();
        answer(&app, &customer, &session, "q1", "right").await;
        sessions.push(session);
    }
    let (a, b) = tokio::join!(
        answer(&app, &customer, &sessions[0], "q2", "right"),
        answer(&app, &customer, &sessions[0], "q2", "right"),
    );
    let mut statuses = [a.status.as_u16(), b.status.as_u16()];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 409], "{:?} {:?}", a.body, b.body);
    // Two sessions of the same quiz finished at once: the reward is still paid once.
    let (c, _) = tokio::join!(
        answer(&app, &customer, &sessions[1], "q2", "right"),
        take(&app, &customer, &id, &[("q1", "right"), ("q2", "right")]),
    );
    assert_eq!(c.status, StatusCode::OK, "{:?}", c.body);
    assert_eq!(points(&app, &customer).await, 50);
}
