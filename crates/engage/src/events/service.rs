//! [`EventsService`]: ingests a customer's batch of behaviour events, lists their recent
//! events, and turns ledger postings to customer accounts into events.
//!
//! Durable before acknowledged: a batch is judged event by event ([`domain::judge_batch`]),
//! then every valid event is inserted in one transaction, which commits before the answer
//! is built. Ingest is idempotent on (customer, event id): the insert skips ids the customer
//! already has, and those are answered `duplicate`; nothing is stored twice.
//!
//! Ledger postings reach the service through [`EventsService::spawn_listener`]; each
//! becomes `deposit`, `transfer_out` or `transfer_in` for each customer-owned account it
//! moved, under the event id `ledger:{transfer_id}:{account}`, so hearing a transfer twice
//! stores it once. The ledger's announcements are not durable: a crash between a commit and
//! its announcement, or a listener that falls too far behind, would miss postings. So a
//! sweep ([`EventsService::sweep_postings`], every [`SWEEP_EVERY`]) reads the ledger's own
//! record of postings in posted order up to [`SWEEP_MARGIN`] ago, from a mark kept in
//! `posting_sweeps`, and records what the listener did not (on this node it skips the
//! transfers its listener handled; event ids make any overlap harmless). Postings older
//! than the first sweep ever are not replayed.

use std::{collections::BTreeMap, sync::Arc};

use axum::http::StatusCode;
use huoban_kit::clock::to_micros;
use huoban_kit::{ApiError, Page, PageQuery, SharedClock, clock::from_micros, page::decode_cursor};
use huoban_ledger::{AccountId, Ledger, OwnerKind, Transfer, TransferId};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

use super::{
    domain::{self, Judged, LEDGER_CHANNEL, MAX_BATCH, NetMovement, Rejection},
    store::{EventRow, EventsStore, StoredEvent},
};
use crate::EngageState;

/// Most transfers handled per listener round.
const LISTENER_GROUP: usize = 512;

/// How often postings are swept for what the listener missed.
pub const SWEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

/// How old a posting must be before a sweep takes it: time for its commit (a posting is
/// stamped before its batch commits) and for the listener to handle it first.
pub const SWEEP_MARGIN: jiff::SignedDuration = jiff::SignedDuration::from_secs(30);

/// Transfers read per sweep query.
const SWEEP_PAGE: u32 = 500;

/// Most transfer ids remembered as handled by the listener; past it the memory starts
/// over (the sweep then re-reads those, recording nothing twice).
const HEARD_REMEMBERED: usize = 500_000;

/// A batch of events.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IngestRequest {
    /// 1 to 1,000 events: `{"id", "type", "channel", "at", "properties"}`. Each is judged
    /// on its own; an invalid one is answered `rejected` and does not fail the others.
    #[schema(value_type = Vec<EventInput>)]
    pub events: Vec<Value>,
}

/// One event as a client sends it.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[allow(dead_code)]
pub struct EventInput {
    /// The client's id for the event, 1 to 128 visible ASCII characters; a resend with the
    /// same id is a duplicate.
    pub id: String,
    /// A lowercase slug, at most 64 characters: `page_view`, `product_view`, `share`,
    /// `green_trip`, …
    #[serde(rename = "type")]
    pub kind: String,
    /// `app`, `h5`, `mini_program`, `wechat_oa` or `web`.
    pub channel: String,
    /// When it happened, RFC 3339; at most 5 minutes ahead of the server's clock.
    pub at: String,
    /// A JSON object of at most 4 KB; default `{}`.
    pub properties: Option<Value>,
}

/// Why an event was rejected, shaped like a problem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EventProblem {
    /// `urn:huoban:problem:<slug>`: `invalid-event`, `invalid-event-id`,
    /// `invalid-event-type`, `invalid-channel`, `invalid-event-time`, `invalid-properties`,
    /// `properties-too-large`.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl From<Rejection> for EventProblem {
    fn from(r: Rejection) -> Self {
        Self {
            kind: format!("{}{}", huoban_kit::problem::TYPE_PREFIX, r.slug),
            title: r.title.to_owned(),
            status: StatusCode::UNPROCESSABLE_ENTITY.as_u16(),
            detail: r.detail,
            field: r.field.map(str::to_owned),
        }
    }
}

/// What became of one event, in the order sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EventResult {
    /// Position in the batch, from 0.
    pub index: usize,
    /// The event's id, when it had a string one.
    pub id: Option<String>,
    /// `accepted` (stored now), `duplicate` (already stored; nothing written) or
    /// `rejected` (invalid; see `problem`).
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<EventProblem>,
}

/// The answer to a batch: stored before it was sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct IngestOutcome {
    pub accepted: usize,
    pub duplicates: usize,
    pub rejected: usize,
    pub results: Vec<EventResult>,
}

/// A stored event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EventView {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    /// The client channel, or `ledger` for postings.
    pub channel: String,
    /// When it happened, RFC 3339 UTC.
    pub at: String,
    /// When the server stored it, RFC 3339 UTC.
    pub received_at: String,
    pub properties: Value,
}

impl From<StoredEvent> for EventView {
    fn from(e: StoredEvent) -> Self {
        Self {
            id: e.event_id,
            kind: e.kind,
            channel: e.channel,
            at: from_micros(e.at).to_string(),
            received_at: from_micros(e.received_at).to_string(),
            properties: serde_json::from_str(&e.properties).unwrap_or_else(|_| json!({})),
        }
    }
}

/// The events handle; cheap to clone.
#[derive(Debug, Clone)]
pub struct EventsService {
    store: EventsStore,
    clock: SharedClock,
    ledger: Ledger,
    identity: huoban_identity::IdentityService,
    /// Who owns each account seen in postings (an account's owner never changes), so
    /// the listener reads each account once, not once per group.
    owners: Arc<std::sync::Mutex<BTreeMap<AccountId, Option<Uuid>>>>,
    /// Transfers this node's listener has recorded, which the sweep need not record again.
    heard: Arc<std::sync::Mutex<std::collections::HashSet<TransferId>>>,
}

/// Most account owners remembered; past it the memory starts over.
const OWNERS_REMEMBERED: usize = 200_000;

impl EventsService {
    pub fn new(state: &EngageState) -> Self {
        Self {
            store: EventsStore::new(state.db.clone()),
            clock: state.clock.clone(),
            ledger: state.ledger.clone(),
            identity: state.identity.clone(),
            owners: Arc::default(),
            heard: Arc::default(),
        }
    }

    pub fn identity(&self) -> &huoban_identity::IdentityService {
        &self.identity
    }

    /// Judges and stores a batch for the customer; see the module doc.
    #[tracing::instrument(skip_all, fields(customer = %customer, events = request.events.len()))]
    pub async fn ingest(&self, customer: Uuid, request: IngestRequest) -> Result<IngestOutcome, ApiError> {
        let n = request.events.len();
        if n == 0 || n > MAX_BATCH {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid-batch",
                "The batch of events is not valid",
            )
            .detail(format!("a batch has 1 to {MAX_BATCH} events, this one has {n}"))
            .with("field", "events"));
        }
        let now = self.clock.now();
        let judged = domain::judge_batch(&request.events, now);
        let rows: Vec<EventRow> = judged
            .iter()
            .filter_map(|j| match j {
                Judged::Valid(e) => Some(EventRow {
                    customer,
                    event_id: e.id.clone(),
                    kind: e.kind.clone(),
                    channel: e.channel.clone(),
                    at: e.at,
                    properties: e.properties.clone(),
                }),
                _ => None,
            })
            .collect();
        let inserted = if rows.is_empty() {
            Default::default()
        } else {
            self.store.insert_committed(&rows, now).await?
        };
        let customer_key = customer.to_string();
        let mut outcome = IngestOutcome {
            accepted: 0,
            duplicates: 0,
            rejected: 0,
            results: Vec::with_capacity(n),
        };
        for (index, j) in judged.into_iter().enumerate() {
            let (id, status, problem) = match j {
                Judged::Valid(e) => {
                    if inserted.contains(&(customer_key.clone(), e.id.clone())) {
                        outcome.accepted += 1;
                        (Some(e.id), "accepted", None)
                    } else {
                        outcome.duplicates += 1;
                        (Some(e.id), "duplicate", None)
                    }
                }
                Judged::RepeatInBatch { id } => {
                    outcome.duplicates += 1;
                    (Some(id), "duplicate", None)
                }
                Judged::Rejected { id, rejection } => {
                    outcome.rejected += 1;
                    (id, "rejected", Some(EventProblem::from(rejection)))
                }
            };
            outcome.results.push(EventResult {
                index,
                id,
                status: status.to_owned(),
                problem,
            });
        }
        Ok(outcome)
    }

    /// The customer's events, newest first.
    pub async fn recent(&self, customer: Uuid, query: &PageQuery) -> Result<Page<EventView>, ApiError> {
        let limit = query.limit()?;
        let before = match query.cursor.as_deref() {
            Some(cursor) => Some(
                decode_cursor(cursor)?
                    .parse::<i64>()
                    .map_err(|_| ApiError::invalid_field("cursor", "the cursor is not one this server issued"))?,
            ),
            None => None,
        };
        let rows = self.store.recent(customer, before, limit + 1).await?;
        let page = Page::from_rows(rows, limit, |r| r.seq.to_string());
        Ok(Page {
            items: page.items.into_iter().map(EventView::from).collect(),
            next_cursor: page.next_cursor,
        })
    }

    /// Subscribes now and, until the ledger stops, records events for posted transfers;
    /// and sweeps the ledger's postings every [`SWEEP_EVERY`] for any the listener missed.
    pub fn spawn_listener(&self) -> Vec<tokio::task::JoinHandle<()>> {
        let mut posted = self.ledger.listen("behaviour events");
        let service = self.clone();
        let listener = tokio::spawn(async move {
            while let Some(group) = posted.next_group(LISTENER_GROUP).await {
                match service.handle_posted(&group).await {
                    Ok(_) => service.heard(&group),
                    Err(e) => {
                        tracing::warn!(error = %e, transfers = group.len(), "ledger postings not recorded as events yet")
                    }
                }
            }
        });
        let service = self.clone();
        let sweeper = tokio::spawn(async move {
            let mut tick = tokio::time::interval(SWEEP_EVERY);
            loop {
                tick.tick().await;
                match service.sweep_postings().await {
                    Ok(0) => {}
                    Ok(n) => tracing::warn!(recorded = n, "ledger postings the listener missed recorded as events"),
                    Err(e) => tracing::warn!(error = %e, "sweeping ledger postings failed"),
                }
            }
        });
        vec![listener, sweeper]
    }

    fn heard(&self, transfers: &[Arc<Transfer>]) {
        let mut heard = self.heard.lock().unwrap_or_else(|e| e.into_inner());
        if heard.len() + transfers.len() > HEARD_REMEMBERED {
            heard.clear();
        }
        heard.extend(transfers.iter().map(|t| t.id));
    }

    /// Records the events of postings the listener missed: the ledger's posted transfers
    /// from the sweep mark up to [`SWEEP_MARGIN`] ago, in posted order, a page at a time,
    /// moving the mark after each page. The first sweep only sets the mark. Returns how
    /// many events were recorded (0 when the listener missed nothing).
    pub async fn sweep_postings(&self) -> Result<usize, ApiError> {
        let until = self.clock.now() - SWEEP_MARGIN;
        let Some((mut at, mut id)) = self.store.sweep_mark().await? else {
            self.store.advance_sweep_mark(to_micros(until), "").await?;
            return Ok(0);
        };
        let mut recorded = 0;
        while at < to_micros(until) {
            let after: Option<TransferId> = (!id.is_empty())
                .then(|| id.parse())
                .transpose()
                .map_err(|_| ApiError::internal(format!("the posting sweep mark {id:?} is not a transfer id")))?;
            let page = self
                .ledger
                .posted_since((from_micros(at), after), until, SWEEP_PAGE)
                .await?;
            let Some(last) = page.last() else {
                self.store.advance_sweep_mark(to_micros(until), "").await?;
                break;
            };
            let (last_at, last_id) = (last.posted_at.map_or(at, to_micros), last.id.to_string());
            let full = page.len() == SWEEP_PAGE as usize;
            let missed: Vec<Arc<Transfer>> = {
                let mut heard = self.heard.lock().unwrap_or_else(|e| e.into_inner());
                page.into_iter()
                    .filter(|t| !heard.remove(&t.id))
                    .map(Arc::new)
                    .collect()
            };
            if !missed.is_empty() {
                recorded += self.handle_posted(&missed).await?;
            }
            if !full {
                // Nothing else is posted before `until`: the mark moves there.
                self.store.advance_sweep_mark(to_micros(until), "").await?;
                break;
            }
            self.store.advance_sweep_mark(last_at, &last_id).await?;
            (at, id) = (last_at, last_id);
        }
        Ok(recorded)
    }

    /// Records `deposit`/`transfer_out`/`transfer_in` events for the customer accounts
    /// these transfers moved; returns how many were new.
    #[tracing::instrument(skip_all, fields(transfers = transfers.len()))]
    pub async fn handle_posted(&self, transfers: &[Arc<Transfer>]) -> Result<usize, ApiError> {
        let owners = self.owners_of(transfers).await?;
        let mut rows = Vec::new();
        for transfer in transfers {
            let mut movements: BTreeMap<AccountId, NetMovement> = BTreeMap::new();
            for leg in &transfer.legs {
                for (account, out, into) in [(leg.debit, leg.amount.get(), 0), (leg.credit, 0, leg.amount.get())] {
                    let owner = owners.get(&account).copied().flatten();
                    let m = movements.entry(account).or_insert(NetMovement {
                        out: 0,
                        into: 0,
                        customer_owned: owner.is_some(),
                    });
                    m.out = m.out.saturating_add(out);
                    m.into = m.into.saturating_add(into);
                }
            }
            // A transfer may move several units (points converted into goal money): each
            // account's event carries its own leg's unit.
            let unit_of = |account: AccountId| {
                transfer
                    .legs
                    .iter()
                    .find(|l| l.debit == account || l.credit == account)
                    .map_or(transfer.unit, |l| l.unit_in(transfer.unit))
            };
            for (account, kind, amount) in domain::classify_ledger(&movements) {
                let Some(Some(customer)) = owners.get(&account).copied() else {
                    continue;
                };
                rows.push(EventRow {
                    customer,
                    event_id: domain::ledger_event_id(&transfer.id.to_string(), &account.to_string()),
                    kind: kind.as_str().to_owned(),
                    channel: LEDGER_CHANNEL.to_owned(),
                    at: transfer.posted_at.unwrap_or(transfer.created_at),
                    properties: json!({
                        "transfer_id": transfer.id.to_string(),
                        "account_id": account.to_string(),
                        "unit": unit_of(account),
                        "amount": amount,
                        "merchant_category": transfer.meta.merchant_category,
                        "channel": transfer.meta.channel,
                    })
                    .to_string(),
                });
            }
        }
        if rows.is_empty() {
            return Ok(0);
        }
        Ok(self.store.insert_committed(&rows, self.clock.now()).await?.len())
    }

    /// The customer owning each account these transfers move (`None`: not a customer's),
    /// from memory, reading the accounts not seen before in one query.
    async fn owners_of(&self, transfers: &[Arc<Transfer>]) -> Result<BTreeMap<AccountId, Option<Uuid>>, ApiError> {
        let mut owners = BTreeMap::new();
        let mut unknown = std::collections::BTreeSet::new();
        {
            let known = self.owners.lock().unwrap_or_else(|e| e.into_inner());
            for account in transfers
                .iter()
                .flat_map(|t| t.legs.iter().flat_map(|l| [l.debit, l.credit]))
            {
                match known.get(&account) {
                    Some(owner) => {
                        owners.insert(account, *owner);
                    }
                    None => {
                        unknown.insert(account);
                    }
                }
            }
        }
        if unknown.is_empty() {
            return Ok(owners);
        }
        let found: Vec<(AccountId, Option<Uuid>)> = self
            .ledger
            .accounts(&unknown.into_iter().collect::<Vec<_>>())
            .await?
            .into_iter()
            .map(|a| {
                let owner = match a.owner.kind {
                    OwnerKind::Customer => Uuid::parse_str(&a.owner.id).ok(),
                    _ => None,
                };
                (a.id, owner)
            })
            .collect();
        let mut known = self.owners.lock().unwrap_or_else(|e| e.into_inner());
        if known.len() + found.len() > OWNERS_REMEMBERED {
            known.clear();
        }
        known.extend(found.iter().copied());
        owners.extend(found);
        Ok(owners)
    }
}
