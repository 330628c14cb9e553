//! Authorization across the whole customer API, driven by the OpenAPI document the server
//! serves: every `/api/v1/` route (staff routes apart) is either public ([`PUBLIC`]), checked
//! against another customer's resources named in its path ([`OWNED`]), a write whose body
//! names owned resources ([`BODY_OWNED`], tried with B's ids in the body), a write acting on
//! the caller alone ([`CALLER_WRITES`]), a write taking a code its owner shares on purpose
//! ([`SHARED_CODES`]), a caller-scoped read, shared catalogue ([`CATALOGUE`]) or explicitly
//! not checked yet ([`NOT_CHECKED`], with the reason). A route in no list fails the test, so
//! a new route cannot escape it. Customer B owns one of everything (accounts, a goal, an
//! alert, a held transfer, a challenge, a passkey registration, a questionnaire session, a
//! coupon, an invite code, a nudge, a device, inbox messages, events), and after A has tried
//! every route B's data is unchanged.

use huoban_identity::Role;
use huoban_kit::Clock;
use reqwest::Method;
use serde_json::{Value, json};

use crate::{
    accounts::{customer, fund},
    helpers::{Reply, TestApp},
    on_both_backends,
};

on_both_backends!(a_customer_never_reaches_another_customers_data);

/// Routes anyone may call without a session (method, path).
const PUBLIC: &[(&str, &str)] = &[
    ("POST", "/api/v1/customers"),                // sign-up
    ("POST", "/api/v1/sessions"),                 // sign-in
    ("POST", "/api/v1/sessions/idp"),             // sign-in through the bank's identity provider
    ("POST", "/api/v1/handoffs/redeem"),          // hand-off redeem: the one-time code is the credential
    ("GET", "/api/v1/invites/{code}/poster.png"), // a shareable poster, by design public
];

/// Routes for any signed-in caller, staff or customer, acting only on the caller's own
/// sessions (sign-out): not called with the staff token, which they would revoke.
const ANY_SESSION: &[(&str, &str)] = &[("DELETE", "/api/v1/sessions/current"), ("DELETE", "/api/v1/sessions")];

/// Routes with a path parameter naming a customer-owned resource: (method, path, fixture of
/// customer B whose id goes into the parameter). The body is from [`body_for`].
const OWNED: &[(&str, &str, Fixture)] = &[
    ("GET", "/api/v1/accounts/{id}/statement", Fixture::Account),
    ("GET", "/api/v1/accounts/{id}/transactions", Fixture::Account),
    ("GET", "/api/v1/goals/{id}", Fixture::Goal),
    ("POST", "/api/v1/goals/{id}/deposits", Fixture::Goal),
    ("POST", "/api/v1/goals/{id}/partners", Fixture::Goal),
    ("PUT", "/api/v1/goals/{id}/auto-transfer", Fixture::Goal),
    ("DELETE", "/api/v1/goals/{id}/auto-transfer", Fixture::Goal),
    ("POST", "/api/v1/goals/{id}/conversions", Fixture::Goal),
    ("POST", "/api/v1/step-up/challenges/{id}/verify", Fixture::Challenge),
    ("POST", "/api/v1/transfers/{id}/cancel", Fixture::Transfer),
    ("DELETE", "/api/v1/alerts/{id}", Fixture::Alert),
    (
        "POST",
        "/api/v1/security/passkeys/registrations/{id}/finish",
        Fixture::Passkey,
    ),
    (
        "POST",
        "/api/v1/questionnaires/sessions/{session_id}/answers",
        Fixture::Session,
    ),
    ("POST", "/api/v1/security/holds/{id}/confirm", Fixture::Hold),
    ("POST", "/api/v1/security/holds/{id}/deny", Fixture::Hold),
    // Device ids are the client's names, scoped to the customer: A naming B's device
    // reaches nothing, and B's device stays (see the snapshot).
    ("DELETE", "/api/v1/security/devices/{device_id}", Fixture::Device),
    ("POST", "/api/v1/security/devices/{device_id}/untrust", Fixture::Device),
    ("POST", "/api/v1/nudges/{id}/dismiss", Fixture::Nudge),
];

/// Writes whose body (not path) names customer-owned resources: each is tried as A with B's
/// ids in every place the body takes one ([`body_cases`]) and must be refused (403/404, or
/// 422 where the id is checked as a field), leaving B's data unchanged.
const BODY_OWNED: &[(&str, &str)] = &[
    ("POST", "/api/v1/transfers"),
    ("POST", "/api/v1/alerts"),
    ("POST", "/api/v1/inbox/read"),
    // Its path names the goal (see OWNED); its body names the account paid from.
    ("POST", "/api/v1/goals/{id}/deposits"),
];

/// Writes with no owned id in their path or body: they act on the caller alone. Each is
/// called as A (with a real body where one is cheap to make, see [`body_for`]) and must not
/// fail as a server error; B's data is unchanged afterwards. (method, path, why).
const CALLER_WRITES: &[(&str, &str, &str)] = &[
    ("POST", "/api/v1/goals", "creates a goal of the caller's"),
    ("PATCH", "/api/v1/me", "the caller's own profile"),
    (
        "POST",
        "/api/v1/me/erasure",
        "the caller's own data; called unconfirmed here (422), erasure is tested in personal.rs",
    ),
    ("POST", "/api/v1/checkins", "the caller's check-in"),
    ("POST", "/api/v1/checkins/makeup", "the caller's make-up check-in"),
    (
        "POST",
        "/api/v1/events",
        "events are recorded as the caller's, whatever ids their properties carry (B's are sent)",
    ),
    ("POST", "/api/v1/handoffs", "a hand-off of the caller's own session"),
    ("POST", "/api/v1/invites", "the caller's own invite code"),
    (
        "POST",
        "/api/v1/security/assessments",
        "assesses an operation of the caller's",
    ),
    (
        "POST",
        "/api/v1/security/passkeys/registrations",
        "starts the caller's registration",
    ),
    ("PUT", "/api/v1/security/pin", "the caller's PIN"),
    ("POST", "/api/v1/security/totp", "the caller's authenticator"),
    ("POST", "/api/v1/security/totp/confirm", "the caller's authenticator"),
    (
        "POST",
        "/api/v1/step-up/challenges",
        "a challenge for the caller; the reference is the caller's label",
    ),
];

/// Writes that take a code or phone number its owner hands out on purpose: using B's makes
/// A an invitee or a team member, never B's owner. (method, path, what is still checked.)
const SHARED_CODES: &[(&str, &str, &str)] = &[
    (
        "POST",
        "/api/v1/invites/accept",
        "invites.rs: self-invite, eligibility, device reuse, cap",
    ),
    (
        "POST",
        "/api/v1/teams/join",
        "teams.rs: team size; the team view masks B (SHARED_VIEW)",
    ),
];

/// Routes whose path parameter names something shared by every customer (a catalogue entry),
/// so another customer's id is not a thing to try.
const CATALOGUE: &[&str] = &[
    "/api/v1/campaigns/{id}",
    "/api/v1/challenges/{id}/leaderboard",
    "/api/v1/challenges/{id}/teams",
    "/api/v1/questionnaires/{id}/sessions",
    "/api/v1/rewards/{id}/claims",
    "/api/v1/tasks/{id}/claim",
];

/// Customer-owned path parameters this test does not exercise yet, with the reason.
const NOT_CHECKED: &[(&str, &str)] = &[];

/// Routes that by design show another customer's resource to any customer, each with the
/// check of what they must still keep back (see the test).
const SHARED_VIEW: &[&str] = &[
    // A team's progress is public to every customer (leaderboards link to it); its join code
    // is shown only to members and other members' names are masked.
    "/api/v1/teams/{id}",
];

/// Routes never called with a body read in full: (path, reason).
const STREAMS: &[&str] = &["/api/v1/inbox/stream"];

/// Caller-scoped reads that answer 404 until the caller has done something first: (path, slug).
const NOTHING_YET: &[(&str, &str)] = &[("/api/v1/suitability", "no-suitability")];

/// A sample of staff routes a customer token must not reach.
const STAFF_SAMPLE: &[(&str, &str)] = &[
    ("GET", "/api/v1/staff/me"),
    ("GET", "/api/v1/staff/customers"),
    ("GET", "/api/v1/staff/audit"),
];

#[derive(Clone, Copy, Debug)]
enum Fixture {
    Account,
    Goal,
    Challenge,
    Transfer,
    Alert,
    Passkey,
    Session,
    Hold,
    Device,
    Nudge,
}

struct Customer {
    id: String,
    token: String,
    current: String,
    all_accounts: Vec<String>,
    goal: String,
    challenge: String,
    transfer: String,
    alert: String,
    hold: String,
    /// A passkey registration the customer started.
    passkey: String,
    /// A questionnaire session of the customer's, and a valid answer to its first question.
    session: String,
    first_answer: Value,
    /// A message in the customer's inbox.
    message: String,
    /// The device the customer signs in on, named after their phone so no one else has it.
    device: String,
    /// A coupon the customer claimed: its claim id and code, and the key it was claimed with.
    coupon: String,
    coupon_code: String,
    claim_key: String,
    /// The key of the customer's first transfer.
    transfer_key: String,
    /// The customer's invite code.
    invite_code: String,
    /// A nudge a campaign rule left for the customer.
    nudge: String,
}

impl Customer {
    fn id_of(&self, f: Fixture) -> &str {
        match f {
            Fixture::Account => &self.current,
            Fixture::Goal => &self.goal,
            Fixture::Challenge => &self.challenge,
            Fixture::Transfer => &self.transfer,
            Fixture::Alert => &self.alert,
            Fixture::Passkey => &self.passkey,
            Fixture::Hold => &self.hold,
            Fixture::Session => &self.session,
            Fixture::Device => &self.device,
            Fixture::Nudge => &self.nudge,
        }
    }

    fn ids(&self) -> Vec<String> {
        let mut ids = vec![
            self.id.clone(),
            self.goal.clone(),
            self.challenge.clone(),
            self.transfer.clone(),
            self.alert.clone(),
            self.hold.clone(),
            self.coupon.clone(),
            self.coupon_code.clone(),
            self.invite_code.clone(),
            self.nudge.clone(),
            self.message.clone(),
        ];
        ids.extend(self.all_accounts.iter().cloned());
        ids
    }
}

/// The new device a held transfer comes from (each customer signs in on `device-<phone>`).
const NEW_DEVICE: &str = "phone-b";

/// What every customer's fixtures hang off: a reward to claim with points, an invite
/// programme, and a live campaign whose rule leaves a nudge on a `page_view` of goals.
pub struct Shared {
    pub reward: String,
    pub programme: String,
}

pub async fn shared(app: &TestApp) -> Shared {
    let operator = app.staff(Role::Operator).await;
    let at = |hours: i64| (app.clock.now() + jiff::SignedDuration::from_hours(hours)).to_string();
    let reward = app
        .post(
            "/api/v1/staff/rewards",
            Some(&operator),
            json!({
                "titles": { "zh-CN": "咖啡券", "en": "Coffee" }, "points_price": 100, "total_stock": 10,
                "per_customer_limit": 5, "claimable_from": at(-1), "claimable_until": at(24), "coupon_valid_days": 30,
            }),
        )
        .await;
    assert_eq!(reward.status.as_u16(), 201, "{:?}", reward.body);
    let programme = app
        .post(
            "/api/v1/staff/invite-programmes",
            Some(&operator),
            json!({
                "name": "邀请好友完成理财测试", "event_type": "questionnaire_completed",
                "event_match": { "questionnaire_id": "risk-appetite" }, "unlock_count": 3,
                "reward": { "points": 500 }, "starts_at": at(-1), "ends_at": at(24),
            }),
        )
        .await;
    assert_eq!(programme.status.as_u16(), 201, "{:?}", programme.body);
    let campaign =
        crate::campaigns::live_campaign(app, &operator, crate::campaigns::campaign_body(app, "", 0, 0)).await;
    crate::campaigns::add_rule(
        app,
        &operator,
        &campaign,
        json!({ "name": "Goal nudge", "trigger": "page_view", "condition": "event.properties.page == 'goals'",
                "actions": [{ "type": "show_nudge", "title": "开始攒钱", "body": "设一个目标吧" }] }),
    )
    .await;
    Shared {
        reward: reward.body["id"].as_str().expect("reward id").to_owned(),
        programme: programme.body["id"].as_str().expect("programme id").to_owned(),
    }
}

async fn set_up(app: &TestApp, phone: &str, shared: &Shared) -> Customer {
    let (id, token) = customer(app, phone).await;
    let device = format!("device-{phone}");
    let on_device = app
        .send(
            Method::POST,
            "/api/v1/sessions",
            None,
            Some(json!({ "phone": phone, "password": "secret-pass", "channel": "app" })),
            &[("X-Device-Id", device.as_str())],
        )
        .await;
    assert_eq!(on_device.status.as_u16(), 201, "{:?}", on_device.body);
    let accounts = app.get("/api/v1/accounts", Some(&token)).await;
    assert_eq!(accounts.status.as_u16(), 200, "{:?}", accounts.body);
    let all_accounts: Vec<String> = accounts.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|a| a["id"].as_str().expect("id").to_owned())
        .collect();
    let current = all_accounts[0].clone();
    let savings = all_accounts[1].clone();
    fund(app, &current, 20_000_000, "salary").await;
    let goal = app
        .post(
            "/api/v1/goals",
            Some(&token),
            json!({ "name": "教育", "target_amount": 50_000, "target_date": "2030-01-01", "category": "education" }),
        )
        .await;
    assert_eq!(goal.status.as_u16(), 201, "{:?}", goal.body);
    let challenge = app
        .post(
            "/api/v1/step-up/challenges",
            Some(&token),
            json!({ "purpose": "transfer", "factor": "sms", "reference": "tr-1" }),
        )
        .await;
    assert_eq!(challenge.status.as_u16(), 201, "{:?}", challenge.body);
    let transfer = app
        .send(
            Method::POST,
            "/api/v1/transfers",
            Some(&token),
            Some(json!({ "from_account": current, "to_account": savings, "amount": 1_000, "currency": "CNY" })),
            &[("idempotency-key", &format!("authz-{phone}"))],
        )
        .await;
    assert_eq!(transfer.status.as_u16(), 201, "{:?}", transfer.body);
    let alert = app
        .post(
            "/api/v1/alerts",
            Some(&token),
            json!({ "kind": "balance_below", "account_id": current, "threshold": 50_000 }),
        )
        .await;
    assert_eq!(alert.status.as_u16(), 201, "{:?}", alert.body);
    // A large transfer from a new device is held until the customer answers.
    let held = app
        .send(
            Method::POST,
            "/api/v1/transfers",
            Some(&token),
            Some(json!({ "from_account": current, "to_account": savings, "amount": 800_000, "currency": "CNY" })),
            &[
                ("idempotency-key", &format!("held-{phone}")),
                ("X-Device-Id", NEW_DEVICE),
            ],
        )
        .await;
    assert_eq!(held.status.as_u16(), 201, "{:?}", held.body);
    assert_eq!(held.body["risk"]["handling"], "held", "{:?}", held.body);
    let started = app
        .post("/api/v1/questionnaires/risk-appetite/sessions", Some(&token), json!({}))
        .await;
    assert_eq!(started.status.as_u16(), 201, "{:?}", started.body);
    let first_answer = json!({
        "question_id": started.body["question"]["id"],
        "option_id": started.body["question"]["options"][0]["id"],
    });
    // The held transfer asked "Was this you?" in the inbox.
    let inbox = app.get("/api/v1/inbox", Some(&token)).await;
    let message = inbox.body["items"][0]["id"]
        .as_str()
        .expect("an inbox message")
        .to_owned();
    let passkey = app
        .post("/api/v1/security/passkeys/registrations", Some(&token), json!({}))
        .await;
    assert_eq!(passkey.status.as_u16(), 201, "{:?}", passkey.body);
    // A coupon bought with points.
    let points = all_accounts[2].clone();
    fund(app, &points, 1_000, "reward").await;
    let claim_key = format!("claim-{phone}");
    let coupon = app
        .send(
            Method::POST,
            &format!("/api/v1/rewards/{}/claims", shared.reward),
            Some(&token),
            None,
            &[("idempotency-key", claim_key.as_str())],
        )
        .await;
    assert_eq!(coupon.status.as_u16(), 201, "{:?}", coupon.body);
    let invite = app
        .post(
            "/api/v1/invites",
            Some(&token),
            json!({ "programme_id": shared.programme }),
        )
        .await;
    assert!(invite.status.is_success(), "{:?}", invite.body);
    // A nudge, left by the campaign's rule for this customer's page view.
    crate::campaigns::send(app, &token, &[("authz-page", "page_view", json!({ "page": "goals" }))]).await;
    let nudges = app.get("/api/v1/nudges", Some(&token)).await;
    let nudge = nudges.body[0]["id"].as_str().expect("a nudge").to_owned();
    Customer {
        coupon: coupon.body["claim_id"].as_str().expect("claim id").to_owned(),
        coupon_code: coupon.body["code"].as_str().expect("coupon code").to_owned(),
        claim_key,
        transfer_key: format!("authz-{phone}"),
        invite_code: invite.body["code"].as_str().expect("invite code").to_owned(),
        nudge,
        passkey: passkey.body["id"].as_str().expect("registration id").to_owned(),
        device,
        session: started.body["session_id"].as_str().expect("session id").to_owned(),
        first_answer,
        message,
        alert: alert.body["id"].as_str().expect("alert id").to_owned(),
        hold: held.body["id"].as_str().expect("hold id").to_owned(),
        id: id.to_string(),
        token,
        current,
        all_accounts,
        goal: goal.body["id"].as_str().expect("goal id").to_owned(),
        challenge: challenge.body["id"].as_str().expect("challenge id").to_owned(),
        transfer: transfer.body["id"].as_str().expect("transfer id").to_owned(),
    }
}

/// A plausible body for a route, in the caller's (A's) terms.
fn body_for(path: &str, a: &Customer, b: &Customer) -> Value {
    match path {
        "/api/v1/goals" => json!({ "name": "A 的目标", "target_amount": 10_000, "target_date": "2031-01-01" }),
        "/api/v1/me" => json!({ "name": "A 改名" }),
        "/api/v1/events" => json!({ "events": [{ "id": "authz-a-own", "type": "page_view", "channel": "app",
            "at": (jiff::Timestamp::now() - jiff::SignedDuration::from_secs(1)).to_string(),
            "properties": { "page": "home" } }] }),
        "/api/v1/step-up/challenges" => json!({ "purpose": "transfer", "factor": "sms", "reference": b.transfer }),
        "/api/v1/security/assessments" => json!({ "operation": "wealth_purchase", "amount": 1_000 }),
        "/api/v1/questionnaires/sessions/{session_id}/answers" => b.first_answer.clone(),
        "/api/v1/goals/{id}/deposits" => json!({ "from_account": a.current, "amount": 100 }),
        "/api/v1/goals/{id}/partners" => json!({ "phone": "13900000001" }),
        "/api/v1/goals/{id}/auto-transfer" => json!({ "from_account": a.current }),
        "/api/v1/goals/{id}/conversions" => json!({ "offer_id": uuid::Uuid::now_v7(), "points": 100 }),
        "/api/v1/step-up/challenges/{id}/verify" => json!({ "code": "000000" }),
        // Shaped like a browser's attestation; the registration is refused before it is read.
        "/api/v1/security/passkeys/registrations/{id}/finish" => json!({ "credential": {
            "id": "AAAA", "rawId": "AAAA", "type": "public-key",
            "response": { "clientDataJSON": "AAAA", "attestationObject": "AAAA" },
        } }),
        _ => json!({}),
    }
}

/// The bodies that put B's ids where a route's body takes owned ids, with A's own ids
/// everywhere else; `path` is as the route is called.
fn body_cases(route: &str, a: &Customer, b: &Customer) -> Vec<(String, Value)> {
    let b_savings = &b.all_accounts[1];
    let a_savings = &a.all_accounts[1];
    match route {
        "/api/v1/transfers" => vec![
            // Paying out of B's account, into A's own.
            (
                route.into(),
                json!({ "from_account": b.current, "to_account": a_savings, "amount": 100, "currency": "CNY" }),
            ),
            // Moving A's money "between own accounts" into B's (paying B goes by phone).
            (
                route.into(),
                json!({ "from_account": a.current, "to_account": b_savings, "amount": 100, "currency": "CNY" }),
            ),
        ],
        "/api/v1/alerts" => vec![(
            route.into(),
            json!({ "kind": "balance_below", "account_id": b.current, "threshold": 50_000 }),
        )],
        "/api/v1/inbox/read" => vec![(route.into(), json!({ "message_ids": [b.message] }))],
        // A's own goal, paid from B's account.
        "/api/v1/goals/{id}/deposits" => vec![(
            format!("/api/v1/goals/{}/deposits", a.goal),
            json!({ "from_account": b.current, "amount": 100 }),
        )],
        other => panic!("no body cases for {other}"),
    }
}

/// Everything about B that A must not be able to change.
async fn snapshot(app: &TestApp, b: &Customer) -> Value {
    let mut balances = Vec::new();
    for account in &b.all_accounts {
        balances.push(crate::accounts::balance(app, account).await);
    }
    let goal = app.get(&format!("/api/v1/goals/{}", b.goal), Some(&b.token)).await.body;
    let accounts = app.get("/api/v1/accounts", Some(&b.token)).await.body;
    let alerts = app.get("/api/v1/alerts", Some(&b.token)).await.body;
    let devices = app.get("/api/v1/security/devices", Some(&b.token)).await.body;
    let holds = app.get("/api/v1/security/holds", Some(&b.token)).await.body;
    let inbox = app.get("/api/v1/inbox/unread-count", Some(&b.token)).await.body;
    let coupons = app.get("/api/v1/coupons", Some(&b.token)).await.body;
    let goals = app.get("/api/v1/goals", Some(&b.token)).await.body;
    let nudges = app.get("/api/v1/nudges", Some(&b.token)).await.body;
    let invites = app.get("/api/v1/invites/mine", Some(&b.token)).await.body;
    let me = app.get("/api/v1/me", Some(&b.token)).await.body;
    let inbox_list = app.get("/api/v1/inbox", Some(&b.token)).await.body;
    let transactions = app
        .get(&format!("/api/v1/accounts/{}/transactions", b.current), Some(&b.token))
        .await
        .body;
    let snapshot = json!({
        "balances": balances, "goal": goal, "accounts": accounts, "alerts": alerts, "devices": devices,
        "holds": holds, "inbox": inbox, "coupons": coupons, "transactions": transactions,
        "goals": goals, "nudges": nudges, "invites": invites, "me": me, "inbox_list": inbox_list,
    });
    // The snapshot is made of real answers, not of problems.
    assert!(!snapshot.to_string().contains("urn:huoban:problem"), "{snapshot}");
    assert!(
        devices.to_string().contains(&b.device),
        "B's device is known: {devices}"
    );
    for (what, id) in [
        ("coupon", &b.coupon),
        ("invite code", &b.invite_code),
        ("nudge", &b.nudge),
    ] {
        assert!(
            snapshot.to_string().contains(id.as_str()),
            "B's {what} is in the snapshot: {snapshot}"
        );
    }
    snapshot
}

async fn call(app: &TestApp, method: &str, path: &str, token: Option<&str>, body: Value) -> Reply {
    let method: Method = method.parse().expect("method");
    let key = format!("authz-{}", uuid::Uuid::now_v7());
    let body = (method != Method::GET && method != Method::DELETE).then_some(body);
    tokio::time::timeout(
        std::time::Duration::from_secs(10),
        app.send(method, path, token, body, &[("idempotency-key", &key)]),
    )
    .await
    .unwrap_or_else(|_| panic!("{path} answers"))
}

fn is_problem(reply: &Reply, statuses: &[u16]) -> bool {
    statuses.contains(&reply.status.as_u16())
        && reply.headers.get("content-type").and_then(|v| v.to_str().ok()) == Some("application/problem+json")
}

async fn a_customer_never_reaches_another_customers_data(app: TestApp) {
    let shared = shared(&app).await;
    let a = set_up(&app, "13900000001", &shared).await;
    let b = set_up(&app, "13900000002", &shared).await;
    let staff = app.staff(Role::Admin).await;
    let doc = app.app.openapi();
    let doc = serde_json::to_value(&doc).expect("openapi json");
    let before = snapshot(&app, &b).await;
    // B captains a team in a challenge.
    let operator = app.staff(Role::Operator).await;
    let now = app.clock.now();
    let challenge = app
        .post(
            "/api/v1/staff/challenges",
            Some(&operator),
            json!({
                "name": "30 天绿色出行打卡计划", "event_type": "green_trip",
                "target": 100, "max_members": 5, "reward": { "points": 200 },
                "starts_at": (now - jiff::SignedDuration::from_hours(1)).to_string(),
                "ends_at": (now + jiff::SignedDuration::from_hours(24 * 30)).to_string(),
            }),
        )
        .await;
    assert_eq!(challenge.status.as_u16(), 201, "{:?}", challenge.body);
    let challenge = challenge.body["id"].as_str().expect("challenge id").to_owned();
    let team = app
        .post(
            &format!("/api/v1/challenges/{challenge}/teams"),
            Some(&b.token),
            json!({ "name": "B 队" }),
        )
        .await;
    assert_eq!(team.status.as_u16(), 201, "{:?}", team.body);
    let team_id = team.body["id"].as_str().expect("team id").to_owned();
    let join_code = team.body["join_code"].as_str().expect("join code").to_owned();
    let mut b_ids = b.ids();
    b_ids.push(join_code.clone());

    // No route is in two lists ("*" stands for every method of a path).
    let mut listed: Vec<(&str, &str)> = OWNED.iter().map(|(m, p, _)| (*m, *p)).collect();
    listed.extend(PUBLIC.iter().chain(ANY_SESSION).copied());
    listed.extend(CATALOGUE.iter().chain(SHARED_VIEW).chain(STREAMS).map(|p| ("*", *p)));
    listed.extend(NOT_CHECKED.iter().map(|(p, _)| ("*", *p)));
    listed.extend(CALLER_WRITES.iter().chain(SHARED_CODES).map(|(m, p, _)| (*m, *p)));
    // Body-named routes without a path parameter are listed there alone.
    listed.extend(BODY_OWNED.iter().filter(|(_, p)| !p.contains('{')).copied());
    for (i, (m1, p1)) in listed.iter().enumerate() {
        for (m2, p2) in &listed[i + 1..] {
            let clash = p1 == p2 && (m1 == m2 || *m1 == "*" || *m2 == "*");
            assert!(!clash, "{m1} {p1} and {m2} {p2} are both listed");
        }
    }

    let mut owned_checked = 0;
    let mut staff_checked = 0;
    let mut scoped_checked = 0;
    let mut caller_writes_checked = 0;
    let mut unlisted = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        if !path.starts_with("/api/v1/") || path.starts_with("/api/v1/staff/") {
            continue;
        }
        for method in item.as_object().expect("item").keys() {
            let method = method.to_uppercase();
            if !["GET", "POST", "PUT", "PATCH", "DELETE"].contains(&method.as_str()) {
                continue;
            }
            let route = format!("{method} {path}");
            if PUBLIC.contains(&(method.as_str(), path.as_str())) {
                continue;
            }
            let concrete_stub = path
                .replace("{id}", &a.goal)
                .replace("{session_id}", &a.goal)
                .replace("{device_id}", "x");
            // Every non-public route refuses an anonymous caller and a staff token.
            let anonymous = call(&app, &method, &concrete_stub, None, json!({})).await;
            assert!(
                is_problem(&anonymous, &[401]),
                "{route} anonymous: {} {:?}",
                anonymous.status,
                anonymous.body
            );
            if !ANY_SESSION.contains(&(method.as_str(), path.as_str())) {
                let by_staff = call(&app, &method, &concrete_stub, Some(&staff), json!({})).await;
                assert!(
                    is_problem(&by_staff, &[403]),
                    "{route} staff: {} {:?}",
                    by_staff.status,
                    by_staff.body
                );
                staff_checked += 1;
            }

            if let Some((_, _, fixture)) = OWNED.iter().find(|(m, p, _)| *m == method && p == path) {
                let id = b.id_of(*fixture);
                let concrete = path
                    .replace("{id}", id)
                    .replace("{session_id}", id)
                    .replace("{device_id}", id);
                let reply = call(&app, &method, &concrete, Some(&a.token), body_for(path, &a, &b)).await;
                assert!(
                    is_problem(&reply, &[403, 404]),
                    "{route} as A on B's: {} {:?}",
                    reply.status,
                    reply.body
                );
                owned_checked += 1;
            } else if SHARED_VIEW.contains(&path.as_str()) {
                let concrete = path.replace("{id}", &team_id);
                let reply = call(&app, &method, &concrete, Some(&a.token), json!({})).await;
                assert_eq!(reply.status.as_u16(), 200, "{route}: {:?}", reply.body);
                assert!(
                    reply.body["join_code"].is_null(),
                    "{route} shows B's join code to A: {:?}",
                    reply.body
                );
                assert!(
                    !reply.body.to_string().contains(&join_code),
                    "{route}: {:?}",
                    reply.body
                );
                assert!(
                    !reply.body.to_string().contains("测试客户"),
                    "{route} unmasks B's name: {:?}",
                    reply.body
                );
            } else if CATALOGUE.contains(&path.as_str()) || NOT_CHECKED.iter().any(|(p, _)| p == path) {
                continue;
            } else if path.contains('{') {
                unlisted.push(route);
            } else if method != "GET" {
                let listed = |l: &[(&str, &str, &str)]| l.iter().any(|(m, p, _)| *m == method && p == path);
                if listed(CALLER_WRITES) {
                    // Acts as A, on A alone (B's snapshot is compared at the end).
                    let reply = call(&app, &method, path, Some(&a.token), body_for(path, &a, &b)).await;
                    assert!(
                        !reply.status.is_server_error() && ![401, 403].contains(&reply.status.as_u16()),
                        "{route} as A: {} {:?}",
                        reply.status,
                        reply.body
                    );
                    caller_writes_checked += 1;
                } else if !listed(SHARED_CODES)
                    && !BODY_OWNED.contains(&(method.as_str(), path.as_str()))
                    && !ANY_SESSION.contains(&(method.as_str(), path.as_str()))
                {
                    unlisted.push(route);
                }
            } else if !STREAMS.contains(&path.as_str()) {
                // No customer-owned parameter: what A reads never names B's resources.
                let reply = call(&app, &method, path, Some(&a.token), json!({})).await;
                match NOTHING_YET.iter().find(|(p, _)| p == path) {
                    Some((_, slug)) => reply.assert_problem(404, slug),
                    None => assert!(
                        reply.status.is_success(),
                        "{route} as A: {} {:?}",
                        reply.status,
                        reply.body
                    ),
                }
                let text = reply.body.to_string();
                for id in &b_ids {
                    assert!(!text.contains(id.as_str()), "{route} shows B's {id} to A: {text}");
                }
                scoped_checked += 1;
            }
        }
    }
    assert!(unlisted.is_empty(), "routes in no list: {unlisted:?}");
    // No list names a route the server no longer has.
    let listed = OWNED
        .iter()
        .map(|(m, p, _)| (*m, *p))
        .chain(PUBLIC.iter().copied())
        .chain(ANY_SESSION.iter().copied())
        .chain(BODY_OWNED.iter().copied())
        .chain(CALLER_WRITES.iter().chain(SHARED_CODES).map(|(m, p, _)| (*m, *p)));
    for (method, path) in listed {
        let declared = doc["paths"][path][method.to_lowercase()].is_object();
        assert!(declared, "{method} {path} is listed but not in the OpenAPI document");
    }
    for path in CATALOGUE
        .iter()
        .chain(SHARED_VIEW)
        .chain(STREAMS)
        .chain(NOTHING_YET.iter().map(|(p, _)| p))
        .chain(NOT_CHECKED.iter().map(|(p, _)| p))
    {
        assert!(
            doc["paths"][*path].is_object(),
            "{path} is listed but not in the OpenAPI document"
        );
    }
    eprintln!(
        "authorization: {owned_checked} owned routes tried as another customer, {scoped_checked} caller-scoped \
         reads checked for B's ids, {staff_checked} customer routes refused to staff"
    );
    assert!(owned_checked >= OWNED.len(), "owned routes checked: {owned_checked}");
    assert!(
        staff_checked > 50,
        "customer routes checked with a staff token: {staff_checked}"
    );
    assert!(scoped_checked > 10, "scoped routes checked: {scoped_checked}");
    // Writes that name owned things in their body: B's ids in every place, each refused.
    let mut body_checked = 0;
    for (method, path) in BODY_OWNED {
        for (concrete, body) in body_cases(path, &a, &b) {
            let reply = call(&app, method, &concrete, Some(&a.token), body.clone()).await;
            assert!(
                is_problem(&reply, &[403, 404, 422]),
                "{method} {path} as A with B's ids in {body}: {} {:?}",
                reply.status,
                reply.body
            );
            body_checked += 1;
        }
    }
    // Keys are per customer: A reusing B's idempotency keys gets A's own new transfer and
    // coupon, never a replay of B's.
    let mine = app
        .send(
            Method::POST,
            "/api/v1/transfers",
            Some(&a.token),
            Some(
                json!({ "from_account": a.current, "to_account": a.all_accounts[1], "amount": 100, "currency": "CNY" }),
            ),
            &[("idempotency-key", b.transfer_key.as_str())],
        )
        .await;
    assert_eq!(mine.status.as_u16(), 201, "{:?}", mine.body);
    assert_ne!(mine.body["id"], b.transfer.as_str(), "A got B's transfer back");
    let coupon = app
        .send(
            Method::POST,
            &format!("/api/v1/rewards/{}/claims", shared.reward),
            Some(&a.token),
            None,
            &[("idempotency-key", b.claim_key.as_str())],
        )
        .await;
    assert_eq!(coupon.status.as_u16(), 201, "{:?}", coupon.body);
    assert_ne!(coupon.body["claim_id"], b.coupon.as_str(), "A got B's coupon back");
    assert_ne!(coupon.body["code"], b.coupon_code.as_str(), "A got B's coupon code");
    eprintln!(
        "authorization: {body_checked} bodies with B's ids refused, {caller_writes_checked} caller-only writes made as A"
    );
    assert!(body_checked > BODY_OWNED.len(), "bodies checked: {body_checked}");
    assert!(
        caller_writes_checked >= CALLER_WRITES.len(),
        "caller writes made: {caller_writes_checked}"
    );
    assert_eq!(snapshot(&app, &b).await, before, "B's data changed");
    // An event A sends with B's ids in its properties is A's, not B's. (Sent after the walk,
    // which checks A's reads for B's ids; compared this way, not in the snapshot, because
    // ledger postings reach the feed asynchronously.)
    let sent = call(
        &app,
        "POST",
        "/api/v1/events",
        Some(&a.token),
        json!({ "events": [{ "id": "authz-b-ids", "type": "page_view", "channel": "app",
            "at": (jiff::Timestamp::now() - jiff::SignedDuration::from_secs(1)).to_string(),
            "properties": { "customer_id": b.id, "account": b.current, "goal": b.goal, "page": "goals" } }] }),
    )
    .await;
    assert_eq!(sent.status.as_u16(), 200, "{:?}", sent.body);
    let events_of = |token: String| {
        let app = &app;
        async move { app.get("/api/v1/events?limit=200", Some(&token)).await.body.to_string() }
    };
    assert!(
        !events_of(b.token.clone()).await.contains("authz-b-ids"),
        "A's event landed in B's feed"
    );
    assert!(
        events_of(a.token.clone()).await.contains("authz-b-ids"),
        "A's event is A's"
    );
    // A's answer did not move B's questionnaire session: B still answers its first question.
    let answered = call(
        &app,
        "POST",
        &format!("/api/v1/questionnaires/sessions/{}/answers", b.session),
        Some(&b.token),
        b.first_answer.clone(),
    )
    .await;
    assert_eq!(answered.status.as_u16(), 200, "{:?}", answered.body);

    for (method, path) in STAFF_SAMPLE {
        let reply = call(&app, method, path, Some(&a.token), json!({})).await;
        assert!(
            is_problem(&reply, &[401, 403]),
            "{method} {path} as a customer: {} {:?}",
            reply.status,
            reply.body
        );
    }
}
