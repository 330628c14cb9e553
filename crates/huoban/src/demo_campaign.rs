//! The demo bank's live Spring Festival campaign (theme `spring-festival`), using every
//! engagement feature: an audience-free campaign with points and coupon budgets, rules (a
//! windowed aggregate with a nudge, a once-only welcome bonus with an inbox message, a
//! coupon for sharing, a care message for elderly customers, a bonus for the first money
//! saved into a goal, points for passing the festival quiz, a nudge after the
//! risk-appetite questionnaire), daily (check-in), weekly and one-off tasks, tiered badges
//! (green trips, check-ins), a festival quiz, a flash-sale reward and a coupon that belong
//! to the campaign, and a points-into-savings conversion offer of the campaign. Savings
//! goals of a few demo customers, with automatic transfers on for some, fill during the
//! festival ([`seed_goals`]); the invite programme and the team challenge join it in
//! [`crate::demo_social`]. Built through the same services as the staff API.

use anyhow::Context;
use huoban_engage::{
    goals::{
        GoalsService,
        automation::{AutoTransferRequest, NewOfferRequest},
        service::{NewDeposit, NewGoal},
    },
    questionnaire::service::{NewQuestionnaire, QuestionnaireService},
    rewards::service::{NewRewardRequest, RewardsService},
};
use huoban_identity::store::CustomerRow;
use jiff::SignedDuration;
use serde_json::json;
use uuid::Uuid;

use crate::app::App;

/// What the campaign seeded, for the demo's goals and social features and for tests.
#[derive(Debug, Clone)]
pub struct DemoCampaign {
    pub id: Uuid,
    /// The festival flash sale: few units, one per customer.
    pub flash_reward: String,
    /// The coupon tasks and rules hand out.
    pub coupon: String,
    /// 100 points = ¥1 into a savings goal, during the festival.
    pub conversion_offer: String,
    pub quiz: Uuid,
}

fn parse<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> anyhow::Result<T> {
    serde_json::from_value(value).context("demo campaign definition")
}

fn api(e: huoban_kit::ApiError) -> anyhow::Error {
    anyhow::anyhow!("demo campaign: {e}")
}

/// Creates the campaign and schedules it, live a second after seeding for 30 days.
pub async fn seed(app: &App) -> anyhow::Result<DemoCampaign> {
    let state = app.campaigns_state();
    let now = app.clock.now();
    let staff = Uuid::nil();
    let campaign = state
        .campaigns
        .create(
            staff,
            parse(json!({
                "name": "Spring Festival 2027",
                "titles": { "zh-CN": "新春伙伴季", "zh-TW": "新春夥伴季", "en": "Spring Festival with Huoban" },
                "theme": "spring-festival",
                // Live from the moment the demo bank is seeded: the seeded history is older and
                // does not count.
                "starts_at": (now + SignedDuration::from_secs(1)).to_string(),
                "ends_at": (now + SignedDuration::from_hours(24 * 30)).to_string(),
                "audience": "",
                "points_budget": 2_000_000,
                "coupon_budget": 300,
            }))?,
        )
        .await
        .map_err(api)?
        .id;
    let rewards = RewardsService::new(&app.engage_state());
    let coupon = rewards
        .create(
            staff,
            parse::<NewRewardRequest>(json!({
                "titles": { "zh-CN": "新春理财体验券", "zh-TW": "新春理財體驗券", "en": "Spring wealth trial coupon" },
                "points_price": 200, "total_stock": 500, "per_customer_limit": 2,
                "claimable_from": (now - SignedDuration::from_hours(24)).to_string(),
                "claimable_until": (now + SignedDuration::from_hours(24 * 45)).to_string(),
                "coupon_valid_days": 30, "campaign_id": campaign,
            }))?,
        )
        .await
        .map_err(api)?
        .id;
    // The festival flash sale: 88 red-envelope coupons at 88 points, one each.
    let flash_reward = rewards
        .create(
            staff,
            parse::<NewRewardRequest>(json!({
                "titles": { "zh-CN": "新春秒杀红包券", "zh-TW": "新春秒殺紅包券", "en": "Festival flash red envelope" },
                "points_price": 88, "total_stock": 88, "per_customer_limit": 1,
                "claimable_from": now.to_string(),
                "claimable_until": (now + SignedDuration::from_hours(24 * 30)).to_string(),
                "coupon_valid_days": 14, "campaign_id": campaign,
            }))?,
        )
        .await
        .map_err(api)?
        .id;
    let conversion_offer = GoalsService::new(&app.engage_state())
        .create_offer(
            staff,
            parse::<NewOfferRequest>(json!({
                "titles": { "zh-CN": "积分换存款：100 积分 = 1 元", "zh-TW": "積分換存款：100 積分 = 1 元",
                            "en": "Points into savings: 100 points = ¥1" },
                "points": 100, "fen": 100, "max_points": 100_000, "campaign_id": campaign,
            }))?,
        )
        .await
        .map_err(api)?
        .id;
    let quiz = QuestionnaireService::new(app.engage_state())
        .save(
            staff,
            parse::<NewQuestionnaire>(json!({
                "kind": "quiz",
                "title": { "zh-CN": "新春理财小测验", "zh-TW": "新春理財小測驗", "en": "Festival money quiz" },
                "start": "q1",
                "quiz": { "pass_mark": 2, "reward_points": 20 },
                "questions": [
                    { "id": "q1", "text": { "zh-CN": "存款保险的最高赔付是多少？", "zh-TW": "存款保險的最高賠付是多少？",
                                            "en": "How much does deposit insurance cover at most?" },
                      "options": [
                          { "id": "a", "text": { "zh-CN": "50 万元", "zh-TW": "50 萬元", "en": "¥500,000" }, "next": "q2", "score": 1 },
                          { "id": "b", "text": { "zh-CN": "不清楚", "zh-TW": "不清楚", "en": "Not sure" }, "next": "q3", "score": 0 } ] },
                    { "id": "q2", "text": { "zh-CN": "复利是指？", "zh-TW": "複利是指？", "en": "Compound interest means?" },
                      "options": [
                          { "id": "a", "text": { "zh-CN": "利滚利", "zh-TW": "利滾利", "en": "Interest on interest" }, "next": null, "score": 1 },
                          { "id": "b", "text": { "zh-CN": "只按本金计息", "zh-TW": "只按本金計息", "en": "Interest on the principal only" }, "next": null, "score": 0 } ] },
                    { "id": "q3", "text": { "zh-CN": "想先了解存款保险吗？", "zh-TW": "想先了解存款保險嗎？", "en": "Learn about deposit insurance first?" },
                      "options": [
                          { "id": "a", "text": { "zh-CN": "好的", "zh-TW": "好的", "en": "Yes" }, "next": null, "score": 0 },
                          { "id": "b", "text": { "zh-CN": "下次吧", "zh-TW": "下次吧", "en": "Later" }, "next": null, "score": 0 } ] }
                ]
            }))?,
        )
        .await
        .map_err(api)?
        .id;
    let green = state
        .badges
        .create(parse(json!({
            "campaign_id": campaign,
            "titles": { "zh-CN": "绿色出行达人", "zh-TW": "綠色出行達人", "en": "Green traveller" },
            "event_type": "green_trip",
            "tiers": [{ "name": "bronze", "threshold": 1 }, { "name": "silver", "threshold": 10 }, { "name": "gold", "threshold": 30 }],
        }))?)
        .await
        .map_err(api)?
        .id;
    state
        .badges
        .create(parse(json!({
            "campaign_id": campaign,
            "titles": { "zh-CN": "新春签到星", "zh-TW": "新春簽到星", "en": "Festival check-in star" },
            "event_type": "check_in",
            "tiers": [{ "name": "bronze", "threshold": 1 }, { "name": "silver", "threshold": 7 }, { "name": "gold", "threshold": 15 }],
        }))?)
        .await
        .map_err(api)?;
    for task in [
        json!({ "titles": { "zh-CN": "每日签到", "zh-TW": "每日簽到", "en": "Check in today" },
                "period": "daily", "event_type": "check_in", "target": 1, "reward_points": 10 }),
        json!({ "titles": { "zh-CN": "本周绿色出行 3 次", "zh-TW": "本週綠色出行 3 次", "en": "Three green trips this week" },
                "period": "weekly", "event_type": "green_trip", "target": 3, "reward_points": 50 }),
        json!({ "titles": { "zh-CN": "完成风险测评", "zh-TW": "完成風險測評", "en": "Finish the risk questionnaire" },
                "period": "once", "event_type": "questionnaire_completed", "target": 1, "reward_coupon": coupon }),
    ] {
        state.tasks.create(campaign, parse(task)?).await.map_err(api)?;
    }
    for rule in [
        json!({ "name": "理财探索者 Wealth explorer", "trigger": "product_view",
                "condition": "event.properties.category == 'wealth'",
                "aggregate": { "count": 3, "within_days": 7 },
                "actions": [{ "type": "show_nudge", "title": "定制我的配置方案", "body": "您最近看了几款理财产品，来定制一份适合您的配置方案吧。",
                              "action_url": "/h5/allocation-plan" },
                            { "type": "award_points", "points": 30 }] }),
        json!({ "name": "新春首笔存款 First festival deposit", "trigger": "deposit", "max_per_customer": 1,
                "actions": [{ "type": "award_points", "points": 88 },
                            { "type": "send_message", "title": "新春红包已到账", "body": "新春第一笔存款，送您 88 积分。" }] }),
        json!({ "name": "分享得券 Share for a coupon", "trigger": "share", "max_per_customer": 1,
                "actions": [{ "type": "issue_coupon", "reward": coupon }] }),
        json!({ "name": "长辈关怀 Care for elders", "trigger": "check_in", "max_per_customer": 1,
                "condition": "customer.age_band == '60_plus' || customer.elderly_mode",
                "actions": [{ "type": "send_message", "title": "新春安康", "body": "长辈专享：大字版页面已为您开启，签到满 7 天送保温杯。" }] }),
        json!({ "name": "绿色出行徽章 Green trip badge", "trigger": "green_trip",
                "condition": "has(event.properties.km) && event.properties.km >= 5", "max_per_customer": 1,
                "actions": [{ "type": "grant_badge", "badge": green }] }),
        // Savings goals: the first money into a goal during the festival (a deposit, an
        // automatic transfer, converted points) earns a bonus.
        json!({ "name": "新春存下第一笔 First festival savings", "trigger": "transfer_in", "max_per_customer": 1,
                "condition": "has(event.properties.merchant_category) && (event.properties.merchant_category == 'savings_goal' || event.properties.merchant_category == 'points_conversion')",
                "actions": [{ "type": "award_points", "points": 66 },
                            { "type": "send_message", "title": "新春存钱第一步", "body": "您为心愿目标存下了新春第一笔，送您 66 积分。" }] }),
        json!({ "name": "新春小测验达人 Festival quiz", "trigger": "questionnaire_completed", "max_per_customer": 1,
                "condition": format!("event.properties.questionnaire_id == '{quiz}' && event.properties.passed == true"),
                "actions": [{ "type": "award_points", "points": 30 }] }),
        json!({ "name": "风险测评后 After the risk questionnaire", "trigger": "questionnaire_completed", "max_per_customer": 1,
                "condition": "event.properties.questionnaire_id == 'risk-appetite'",
                "actions": [{ "type": "show_nudge", "title": "看看适合您的理财", "body": "风险测评已完成，来看看与您的风险等级相符的理财产品。",
                              "action_url": "/h5/hub" }] }),
    ] {
        state.rules.create(campaign, parse(rule)?).await.map_err(api)?;
    }
    state
        .campaigns
        .transition(campaign, huoban_campaigns::campaigns::domain::Transition::Schedule)
        .await
        .map_err(api)?;
    Ok(DemoCampaign {
        id: campaign,
        flash_reward,
        coupon,
        conversion_offer,
        quiz,
    })
}

/// Savings goals of the first demo customers (at most six): a festival trip, education,
/// a new phone… each with a first deposit (a tenth of the target, or a fifth of what the
/// current account holds); the automatic monthly transfer is on for every
/// other one (customer 1, 13800000001, among them), on the plan's day after their payday.
pub async fn seed_goals(app: &App, rows: &[CustomerRow]) -> anyhow::Result<()> {
    let goals = GoalsService::new(&app.engage_state());
    let today = app
        .clock
        .now()
        .to_zoned(jiff::tz::TimeZone::get("Asia/Shanghai")?)
        .date();
    let kinds = [
        ("新春旅行基金", "travel", 1_200_000, 6),
        ("孩子教育金", "education", 3_000_000, 12),
        ("换新手机", "gadget", 600_000, 4),
    ];
    for (i, row) in rows.iter().take(6).enumerate() {
        let customer: Uuid = row.id.parse().context("customer id")?;
        let (name, category, target, months) = kinds[i % kinds.len()];
        let target_date = today
            .checked_add(jiff::Span::new().months(months))
            .context("target date")?;
        let goal = goals
            .create(
                customer,
                NewGoal {
                    name: name.to_owned(),
                    target_amount: target,
                    target_date: target_date.to_string(),
                    category: Some(category.to_owned()),
                },
            )
            .await
            .map_err(api)?;
        let current = app
            .accounts
            .ensure_standard_accounts(customer)
            .await
            .map_err(api)?
            .current;
        // A tenth of the target, or what the customer can spare (a fifth of their balance).
        let balance = app.ledger.balance(current).await?.posted;
        let first = (target / 10).min(balance / 5 / 100 * 100);
        if first > 0 {
            goals
                .deposit(
                    customer,
                    "h5",
                    goal.id,
                    "demo-first-deposit",
                    NewDeposit {
                        from_account: current.as_uuid(),
                        amount: first,
                    },
                )
                .await
                .map_err(api)?;
        }
        if i % 2 == 0 {
            goals
                .set_auto_transfer(customer, goal.id, AutoTransferRequest::default())
                .await
                .map_err(api)?;
        }
    }
    Ok(())
}
