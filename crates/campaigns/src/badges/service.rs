//! [`BadgeService`]: staff define badges; customers see their badge wall and level.

use std::collections::{BTreeMap, HashMap};

use huoban_kit::{ApiError, SharedClock, ids::new_id};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{
    domain::{self, BadgeInput, Standing},
    store::{BadgeRow, BadgeStore},
};
use crate::{
    campaigns::{
        domain::{State, ended},
        service::{CampaignService, iso, state_of},
    },
    rules::domain::Tier,
};

/// A badge definition.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StaffBadgeView {
    pub id: Uuid,
    pub campaign_id: Option<Uuid>,
    pub titles: BTreeMap<String, String>,
    pub event_type: String,
    pub filter: String,
    pub tiers: Vec<Tier>,
    pub created_at: String,
}

/// A badge on your wall.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BadgeView {
    pub id: Uuid,
    pub campaign_id: Option<Uuid>,
    pub title: String,
    pub tiers: Vec<Tier>,
    /// Matching events so far.
    pub progress: i64,
    #[serde(flatten)]
    pub standing: Standing,
}

/// Your level from points earned.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LevelView {
    pub level: i64,
    /// Points credited to you by rewards over time (spending does not lower it).
    pub points_earned: i64,
    pub next_level: Option<i64>,
    /// Points earned needed for the next level.
    pub next_level_at: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct BadgeService {
    store: BadgeStore,
    campaigns: CampaignService,
    clock: SharedClock,
}

pub fn tiers_of(row: &BadgeRow) -> Vec<Tier> {
    serde_json::from_str(&row.tiers).unwrap_or_default()
}

fn staff_view(row: BadgeRow) -> StaffBadgeView {
    StaffBadgeView {
        id: row.id.parse().unwrap_or_default(),
        campaign_id: row.campaign_id.as_deref().and_then(|c| c.parse().ok()),
        titles: serde_json::from_str(&row.titles).unwrap_or_default(),
        tiers: tiers_of(&row),
        event_type: row.event_type,
        filter: row.filter,
        created_at: iso(row.created_at),
    }
}

impl BadgeService {
    pub fn new(engage: &huoban_engage::EngageState, campaigns: CampaignService) -> Self {
        Self {
            store: BadgeStore::new(engage.db.clone()),
            campaigns,
            clock: engage.clock.clone(),
        }
    }

    pub fn store(&self) -> &BadgeStore {
        &self.store
    }

    pub async fn create(&self, input: BadgeInput) -> Result<StaffBadgeView, ApiError> {
        if let Some(c) = input.campaign_id {
            let row = self.campaigns.row(c).await?;
            if state_of(&row, self.clock.now()) == State::Ended {
                return Err(ended());
            }
        }
        domain::check(&input)?;
        let id = new_id();
        self.store.insert(id, &input, self.clock.now()).await?;
        let row = self
            .store
            .get(id)
            .await?
            .ok_or_else(|| ApiError::internal("badge vanished"))?;
        Ok(staff_view(row))
    }

    pub async fn list(&self) -> Result<Vec<StaffBadgeView>, ApiError> {
        Ok(self.store.all().await?.into_iter().map(staff_view).collect())
    }

    /// Every badge with the customer's progress ("2 of 3").
    pub async fn wall(&self, customer: Uuid) -> Result<Vec<BadgeView>, ApiError> {
        let attrs = self.campaigns.attrs(customer, "").await?;
        let progress: HashMap<String, i64> = self.store.progress_of(customer).await?.into_iter().collect();
        Ok(self
            .store
            .all()
            .await?
            .into_iter()
            .map(|row| {
                let tiers = tiers_of(&row);
                let p = progress.get(&row.id).copied().unwrap_or(0);
                let titles: BTreeMap<String, String> = serde_json::from_str(&row.titles).unwrap_or_default();
                BadgeView {
                    id: row.id.parse().unwrap_or_default(),
                    campaign_id: row.campaign_id.as_deref().and_then(|c| c.parse().ok()),
                    title: titles
                        .get(&attrs.locale)
                        .or_else(|| titles.get("zh-CN"))
                        .cloned()
                        .unwrap_or_default(),
                    standing: domain::standing(&tiers, p),
                    tiers,
                    progress: p,
                }
            })
            .collect())
    }

    pub async fn level(&self, customer: Uuid) -> Result<LevelView, ApiError> {
        let earned = self.store.points_earned(customer).await?;
        let (level, next) = domain::level(earned);
        Ok(LevelView {
            level,
            points_earned: earned,
            next_level: next.map(|n| n.0),
            next_level_at: next.map(|n| n.1),
        })
    }
}
