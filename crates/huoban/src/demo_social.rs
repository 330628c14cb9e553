//! The demo bank's social features (crates/social), in its Spring Festival campaign:
//! - an invite programme, "invite three friends to finish the risk-appetite test and
//!   unlock a coupon": demo customer 1 (13800000001) has a code, three friends accepted
//!   it and two finished the test, so the page shows "2 of 3";
//! - a 30-day green-travel team challenge with three teams and ten days of trips, so the
//!   leaderboard and each team's member contributions have something to show.
//!
//! Everything goes through the services (acceptance guards, the questionnaire, event
//! ingest, the feed consumers), deterministic from the demo seed.

use std::collections::BTreeMap;

use anyhow::Context;
use huoban_engage::{
    events::service::{EventsService, IngestRequest},
    questionnaire::service::{NewAnswer, QuestionnaireService},
    rewards::service::{NewRewardRequest, RewardsService},
};
use huoban_identity::store::CustomerRow;
use huoban_social::{
    invites::{
        service::{InvitesService, NewProgrammeRequest},
        store::{CodeRow, InvitesStore},
    },
    prize::PrizeSpec,
    teams::service::{NewChallengeRequest, TeamsService},
};
use jiff::SignedDuration;
use rand::{Rng, SeedableRng, rngs::StdRng};
use serde_json::{Map, json};
use uuid::Uuid;

use crate::App;

fn id(row: &CustomerRow) -> anyhow::Result<Uuid> {
    row.id.parse().context("customer id")
}

fn err(e: huoban_kit::ApiError) -> anyhow::Error {
    anyhow::anyhow!("{e:?}")
}

/// Seeds the invite programme and the team challenge, both part of `campaign` (the Spring
/// Festival campaign); needs at least 12 customers.
pub async fn seed(app: &App, rows: &[CustomerRow], seed: u64, campaign: Uuid) -> anyhow::Result<()> {
    if rows.len() < 12 {
        return Ok(());
    }
    let state = app.social_state();
    let now = app.clock.now();
    let staff = Uuid::now_v7();
    let hours = |h: i64| (now + SignedDuration::from_hours(h)).to_string();

    // The coupon friends unlock.
    let coupon = RewardsService::new(&state.engage)
        .create(
            staff,
            NewRewardRequest {
                titles: BTreeMap::from([
                    ("zh-CN".to_owned(), "新春理财专属券".to_owned()),
                    ("en".to_owned(), "Spring Festival wealth coupon".to_owned()),
                ]),
                points_price: 1_000,
                total_stock: 500,
                per_customer_limit: 1,
                claimable_from: hours(-72),
                claimable_until: hours(24 * 30),
                coupon_valid_days: 30,
                campaign_id: Some(campaign.to_string()),
            },
        )
        .await
        .map_err(err)?;
    let invites = InvitesService::new(state.clone());
    let programme = invites
        .create_programme(
            staff,
            NewProgrammeRequest {
                name: "邀请三位好友完成理财测试，解锁专属优惠券".into(),
                campaign_id: Some(campaign.to_string()),
                event_type: "questionnaire_completed".into(),
                event_match: Map::from_iter([("questionnaire_id".to_owned(), json!("risk-appetite"))]),
                unlock_count: 3,
                max_invitees: Some(10),
                reward: PrizeSpec {
                    points: None,
                    reward_id: Some(coupon.id.parse().context("reward id")?),
                },
                starts_at: hours(-72),
                ends_at: hours(24 * 30),
            },
        )
        .await
        .map_err(err)?;
    // Customer 1 shared the code before their friends (customers 3–5) signed up: the
    // demo's customers were all created just now, so the code is dated back.
    let code = "HBFEST26".to_owned();
    InvitesStore::new(app.db.clone())
        .issue_code(&CodeRow {
            code: code.clone(),
            programme_id: programme.id.clone(),
            inviter_id: rows[0].id.clone(),
            accepted: 0,
            qualified: 0,
            created_at: huoban_kit::clock::to_micros(now - SignedDuration::from_hours(48)),
            unlocked_at: None,
            rewarded_at: None,
        })
        .await?;
    let questionnaires = QuestionnaireService::new(state.engage.clone());
    for (i, friend) in rows[2..5].iter().enumerate() {
        invites
            .accept(id(friend)?, &code, Some(&format!("demo-device-{i}")))
            .await
            .map_err(err)?;
        if i < 2 {
            let session = questionnaires.start(id(friend)?, "risk-appetite").await.map_err(err)?;
            for (q, o) in [
                ("age", "b"),
                ("experience", "b"),
                ("horizon", "c"),
                ("loss_tolerance", "b"),
                ("goal", "b"),
            ] {
                questionnaires
                    .answer(
                        id(friend)?,
                        session.session_id,
                        NewAnswer {
                            question_id: q.into(),
                            option_id: o.into(),
                        },
                    )
                    .await
                    .map_err(err)?;
            }
        }
    }

    // The green-travel challenge: teams of customers 1, 3–5 / 6–8 / 9–10.
    let teams = TeamsService::new(state.clone());
    let challenge = teams
        .create_challenge(
            staff,
            NewChallengeRequest {
                name: "30 天绿色出行打卡计划".into(),
                campaign_id: Some(campaign.to_string()),
                event_type: "green_trip".into(),
                event_match: Map::new(),
                target: 60,
                max_members: 5,
                reward: PrizeSpec {
                    points: Some(300),
                    reward_id: None,
                },
                starts_at: hours(-24 * 10),
                ends_at: hours(24 * 20),
            },
        )
        .await
        .map_err(err)?;
    let challenge_id: Uuid = challenge.id.parse().context("challenge id")?;
    let plan: [(&str, Vec<&CustomerRow>); 3] = [
        ("绿色先锋队", vec![&rows[0], &rows[2], &rows[3], &rows[4]]),
        ("低碳骑行团", vec![&rows[5], &rows[6], &rows[7]]),
        ("步行小分队", vec![&rows[8], &rows[9]]),
    ];
    let events = EventsService::new(&state.engage);
    let mut rng = StdRng::seed_from_u64(seed ^ 0x5eed_50c1);
    for (name, members) in plan {
        let team = teams
            .create_team(id(members[0])?, challenge_id, name)
            .await
            .map_err(err)?;
        let code = team.join_code.context("captain sees the join code")?;
        for member in &members[1..] {
            teams.join(id(member)?, &code).await.map_err(err)?;
        }
        for member in &members {
            let trips: i64 = rng.random_range(2..=10);
            let batch = (0..trips)
                .map(|t| {
                    let mode = ["bike", "metro", "walk", "bus"][t as usize % 4];
                    json!({
                        "id": format!("demo-green-{t}"), "type": "green_trip", "channel": "app",
                        "at": (now - SignedDuration::from_mins(30 * (t + 1))).to_string(),
                        "properties": { "mode": mode },
                    })
                })
                .collect();
            events
                .ingest(id(member)?, IngestRequest { events: batch })
                .await
                .map_err(err)?;
        }
    }
    // Apply every event now, so the pages show progress without waiting for the server.
    for _ in 0..20 {
        if invites.consume().await.map_err(err)? == 0 && teams.consume().await.map_err(err)? == 0 {
            break;
        }
    }
    Ok(())
}
