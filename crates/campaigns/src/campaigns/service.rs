//! [`CampaignService`]: staff create, change (drafts), schedule and end campaigns;
//! customers list the live campaigns their profile matches.

use std::collections::BTreeMap;

use huoban_kit::{ApiError, Page, PageQuery, SharedClock, clock::from_micros, ids::new_id};
use huoban_ledger::AccountId;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{
    budget::Budgets,
    domain::{self, CampaignInput, State, Transition},
    store::{CampaignRow, CampaignStore, ProfileRow},
};
use crate::expr::{self, CustomerAttrs, Vars};

/// A campaign as staff see it, with budget use and stats.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StaffCampaignView {
    pub id: Uuid,
    pub name: String,
    pub titles: BTreeMap<String, String>,
    pub theme: String,
    pub starts_at: String,
    pub ends_at: String,
    pub audience: String,
    /// The state now (the clock makes scheduled campaigns live, then ended).
    pub state: State,
    pub points_budget: i64,
    /// Points paid out of the budget (read from its ledger account).
    pub points_used: i64,
    /// Points the budget can still pay.
    pub points_left: i64,
    /// The budget's ledger account.
    pub points_account: Option<Uuid>,
    pub coupon_budget: i64,
    pub coupons_used: i64,
    pub coupons_left: i64,
    /// Effects applied for this campaign (points, coupons, badges, messages, nudges…).
    pub effects: i64,
    /// Customers who got at least one effect.
    pub customers_reached: i64,
    pub created_at: String,
    pub updated_at: String,
}

/// A campaign as customers see it.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CampaignView {
    pub id: Uuid,
    /// In the customer's locale (zh-CN when missing).
    pub title: String,
    pub titles: BTreeMap<String, String>,
    pub theme: String,
    pub starts_at: String,
    pub ends_at: String,
    pub state: State,
}

#[derive(Debug, Clone)]
pub struct CampaignService {
    store: CampaignStore,
    budgets: Budgets,
    clock: SharedClock,
}

pub fn iso(micros: i64) -> String {
    from_micros(micros).to_string()
}

fn parse_id(s: &str) -> Uuid {
    Uuid::parse_str(s).unwrap_or_default()
}

/// The effective state of a stored campaign at `now`.
pub fn state_of(row: &CampaignRow, now: Timestamp) -> State {
    domain::effective(
        row.stored_state(),
        from_micros(row.starts_at),
        from_micros(row.ends_at),
        now,
    )
}

/// Profile attributes from a customer's row, tags and current channel.
pub fn attrs_of(row: &ProfileRow, tags: Vec<String>, channel: &str, now: Timestamp) -> CustomerAttrs {
    let tz = jiff::tz::TimeZone::get(&row.time_zone).unwrap_or(jiff::tz::TimeZone::UTC);
    let today = now.to_zoned(tz).date();
    let age = row
        .birthday
        .as_deref()
        .and_then(|b| b.parse::<jiff::civil::Date>().ok())
        .map(|b| i64::from(huoban_identity::domain::age_on(b, today)));
    let elderly_mode = serde_json::from_str::<serde_json::Value>(&row.preferences)
        .ok()
        .and_then(|p| p.get("elderly_mode").and_then(serde_json::Value::as_bool))
        .unwrap_or(false);
    CustomerAttrs {
        age: age.unwrap_or(-1),
        age_band: expr::age_band(age).to_owned(),
        tags,
        elderly_mode,
        locale: row.locale.clone(),
        time_zone: row.time_zone.clone(),
        suitability: row.suitability.clone().unwrap_or_default(),
        channel: channel.to_owned(),
    }
}

impl CampaignService {
    pub fn new(
        db: huoban_kit::Db,
        identity: huoban_identity::store::IdentityStore,
        budgets: Budgets,
        clock: SharedClock,
    ) -> Self {
        Self {
            store: CampaignStore::new(db, identity),
            budgets,
            clock,
        }
    }

    pub fn store(&self) -> &CampaignStore {
        &self.store
    }

    pub fn budgets(&self) -> &Budgets {
        &self.budgets
    }

    /// The campaign's points budget account. A campaign created before budgets moved to
    /// the ledger gets one now, funded with what its budget had left, in one transaction.
    pub async fn points_account(&self, row: &CampaignRow) -> Result<AccountId, ApiError> {
        if let Some(account) = row.points_account.as_deref().and_then(|a| a.parse().ok()) {
            return Ok(account);
        }
        let id = parse_id(&row.id);
        let account = self.budgets.open(id).await?;
        let funding = self
            .budgets
            .funding(id, account, row.points_cap - row.points_used)
            .await?;
        let mut tx = self.store.db().begin().await?;
        let funded = self.budgets.fund_in(&mut tx, funding).await?;
        if self
            .store
            .adopt_points_account(&mut tx, id, &account.to_string())
            .await?
        {
            tx.commit().await.map_err(huoban_kit::DbError::from)?;
            self.budgets.ledger().announce(&funded);
            return Ok(account);
        }
        // Another node adopted it first.
        tx.rollback().await.map_err(huoban_kit::DbError::from)?;
        self.row(id)
            .await?
            .points_account
            .and_then(|a| a.parse().ok())
            .ok_or_else(|| ApiError::internal("a campaign lost its budget account"))
    }

    pub async fn row(&self, id: Uuid) -> Result<CampaignRow, ApiError> {
        self.store.get(id).await?.ok_or_else(domain::unknown)
    }

    async fn staff_view(&self, row: CampaignRow) -> Result<StaffCampaignView, ApiError> {
        let id = parse_id(&row.id);
        let (effects, customers_reached) = self.store.stats(id).await?;
        let account = self.points_account(&row).await?;
        let points_left = self.budgets.left(&[account]).await?.get(&account).copied().unwrap_or(0);
        let now = self.clock.now();
        Ok(StaffCampaignView {
            id,
            state: state_of(&row, now),
            titles: serde_json::from_str(&row.titles).unwrap_or_default(),
            name: row.name,
            theme: row.theme,
            starts_at: iso(row.starts_at),
            ends_at: iso(row.ends_at),
            audience: row.audience,
            points_budget: row.points_cap,
            points_used: row.points_cap - points_left,
            points_left,
            points_account: Some(account.as_uuid()),
            coupon_budget: row.coupon_cap,
            coupons_used: row.coupons_used,
            coupons_left: row.coupon_cap - row.coupons_used,
            effects,
            customers_reached,
            created_at: iso(row.created_at),
            updated_at: iso(row.updated_at),
        })
    }

    pub async fn create(&self, staff: Uuid, input: CampaignInput) -> Result<StaffCampaignView, ApiError> {
        let definition = domain::check(input)?;
        let id = new_id();
        // The budget account is opened first (opening moves no value); the campaign row and
        // the budget's funding then commit together.
        let account = self.budgets.open(id).await?;
        let funding = self.budgets.funding(id, account, definition.points_cap).await?;
        let mut tx = self.store.db().begin().await?;
        let funded = self.budgets.fund_in(&mut tx, funding).await?;
        self.store
            .insert(&mut tx, id, staff, &definition, &account.to_string(), self.clock.now())
            .await?;
        tx.commit().await.map_err(huoban_kit::DbError::from)?;
        self.budgets.ledger().announce(&funded);
        self.get(id).await
    }

    pub async fn get(&self, id: Uuid) -> Result<StaffCampaignView, ApiError> {
        let row = self.row(id).await?;
        self.staff_view(row).await
    }

    pub async fn update(&self, id: Uuid, input: CampaignInput) -> Result<StaffCampaignView, ApiError> {
        let row = self.row(id).await?;
        let now = self.clock.now();
        domain::transition(state_of(&row, now), Transition::Update, from_micros(row.ends_at), now)?;
        let definition = domain::check(input)?;
        // A draft pays nothing, so its budget account holds its whole budget: the change
        // moves the difference, in the transaction that changes the row.
        let account = self.points_account(&row).await?;
        let funding = self
            .budgets
            .funding(id, account, definition.points_cap - row.points_cap)
            .await?;
        let mut tx = self.store.db().begin().await?;
        let funded = self.budgets.fund_in(&mut tx, funding).await?;
        let updated = self
            .store
            .update_draft(&mut tx, id, &definition, row.points_cap, now)
            .await?;
        if updated {
            tx.commit().await.map_err(huoban_kit::DbError::from)?;
            self.budgets.ledger().announce(&funded);
        } else {
            tx.rollback().await.map_err(huoban_kit::DbError::from)?;
        }
        if !updated {
            return Err(
                domain::transition(State::Scheduled, Transition::Update, definition.ends_at, now)
                    .err()
                    .unwrap_or_else(domain::ended),
            );
        }
        self.get(id).await
    }

    pub async fn transition(&self, id: Uuid, t: Transition) -> Result<StaffCampaignView, ApiError> {
        let row = self.row(id).await?;
        let now = self.clock.now();
        let to = domain::transition(state_of(&row, now), t, from_micros(row.ends_at), now)?;
        if !self.store.set_state(id, &row.state, to, now).await? {
            return Err(
                ApiError::conflict("invalid-campaign-transition", "Invalid campaign transition")
                    .detail("the campaign changed meanwhile; read it again"),
            );
        }
        self.get(id).await
    }

    pub async fn list(&self, page: &PageQuery) -> Result<Page<StaffCampaignView>, ApiError> {
        let limit = page.limit()?;
        let after = page.after()?;
        let rows = self.store.list(after.as_deref(), limit).await?;
        let mut views = Vec::with_capacity(rows.len());
        for row in rows {
            views.push(self.staff_view(row).await?);
        }
        Ok(Page::from_rows(views, limit, |v| v.id.to_string()))
    }

    /// The attributes audiences see for one customer now.
    pub async fn attrs(&self, customer: Uuid, channel: &str) -> Result<CustomerAttrs, ApiError> {
        let mut found = self.store.profiles(&[customer]).await?;
        let (row, tags) = found
            .remove(&customer)
            .ok_or_else(|| ApiError::not_found("The customer"))?;
        Ok(attrs_of(&row, tags, channel, self.clock.now()))
    }

    fn customer_view(row: &CampaignRow, locale: &str, now: Timestamp) -> CampaignView {
        let titles: BTreeMap<String, String> = serde_json::from_str(&row.titles).unwrap_or_default();
        CampaignView {
            id: parse_id(&row.id),
            title: titles
                .get(locale)
                .or_else(|| titles.get("zh-CN"))
                .cloned()
                .unwrap_or_default(),
            titles,
            theme: row.theme.clone(),
            starts_at: iso(row.starts_at),
            ends_at: iso(row.ends_at),
            state: state_of(row, now),
        }
    }

    /// Live campaigns whose audience matches the customer.
    pub async fn for_customer(&self, customer: Uuid, channel: &str) -> Result<Vec<CampaignView>, ApiError> {
        let attrs = self.attrs(customer, channel).await?;
        let now = self.clock.now();
        let mut out = Vec::new();
        for row in self.store.live(now).await? {
            if audience_matches(&row.audience, &attrs) {
                out.push(Self::customer_view(&row, &attrs.locale, now));
            }
        }
        Ok(out)
    }

    /// One campaign for a customer: unknown (or not for them, or not yet public) → 404,
    /// ended → 409 `campaign-ended`.
    pub async fn one_for_customer(&self, customer: Uuid, id: Uuid, channel: &str) -> Result<CampaignView, ApiError> {
        let row = self.row(id).await?;
        let now = self.clock.now();
        match state_of(&row, now) {
            State::Ended => return Err(domain::ended()),
            State::Draft | State::Scheduled => return Err(domain::unknown()),
            State::Live => {}
        }
        let attrs = self.attrs(customer, channel).await?;
        if !audience_matches(&row.audience, &attrs) {
            return Err(domain::unknown());
        }
        Ok(Self::customer_view(&row, &attrs.locale, now))
    }
}

/// Whether a stored audience expression admits the customer (a broken one admits no one).
pub fn audience_matches(audience: &str, attrs: &CustomerAttrs) -> bool {
    expr::compile(audience, &["customer"]).is_ok_and(|e| {
        e.matches(&Vars {
            customer: Some(attrs),
            ..Vars::default()
        })
    })
}
