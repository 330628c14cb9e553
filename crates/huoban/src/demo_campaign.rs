//! The demo bank's live Spring Festival campaign (theme `spring-festival`), using every
//! campaign feature: an audience-free campaign with points and coupon budgets, rules (a
//! windowed aggregate with a nudge, a once-only welcome bonus with an inbox message, a
//! coupon for sharing, a care message for elderly customers), daily, weekly and one-off
//! tasks, and tiered badges. Built through the same services as the staff API. Returns the
//! campaign's id.

use anyhow::Context;
use huoban_engage::rewards::service::{NewRewardRequest, RewardsService};
use jiff::SignedDuration;
use serde_json::json;
use uuid::Uuid;

use crate::app::App;

fn parse<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> anyhow::Result<T> {
    serde_json::from_value(value).context("demo campaign definition")
}

fn api(e: huoban_kit::ApiError) -> anyhow::Error {
    anyhow::anyhow!("demo campaign: {e}")
}

/// Creates the campaign and schedules it, live a second after seeding for 30 days.
pub async fn seed(app: &App) -> anyhow::Result<Uuid> {
    let state = app.campaigns_state();
    let now = app.clock.now();
    let staff = Uuid::nil();
    let rewards = RewardsService::new(&app.engage_state());
    let coupon = rewards
        .create(
            staff,
            parse::<NewRewardRequest>(json!({
                "titles": { "zh-CN": "新春理财体验券", "zh-TW": "新春理財體驗券", "en": "Spring wealth trial coupon" },
                "points_price": 200, "total_stock": 500, "per_customer_limit": 2,
                "claimable_from": (now - SignedDuration::from_hours(24)).to_string(),
                "claimable_until": (now + SignedDuration::from_hours(24 * 45)).to_string(),
                "coupon_valid_days": 30,
            }))?,
        )
        .await
        .map_err(api)?
        .id;
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
    ] {
        state.rules.create(campaign, parse(rule)?).await.map_err(api)?;
    }
    state
        .campaigns
        .transition(campaign, huoban_campaigns::campaigns::domain::Transition::Schedule)
        .await
        .map_err(api)?;
    Ok(campaign)
}
