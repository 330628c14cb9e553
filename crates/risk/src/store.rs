//! The SQL of the risk capability: policies, decisions, devices, profiles (habits and
//! history), payees, failed attempts, holds (delayed and held operations) and cases.
//!
//! Every write that changes what the engine reads about a customer also raises the
//! customer's version in `risk_stamps`, in the same transaction (`RiskStore::bump_in`).
//! That is what lets each node keep customers' facts in memory ([`crate::facts`]) and
//! still see another node's changes: a transfer reads the version with its idempotency
//! key ([`RiskStore::decision_and_stamp`]) and re-reads the facts ([`RiskStore::snapshot`])
//! only when it moved.

use std::collections::{BTreeMap, HashMap, HashSet};

use huoban_kit::{
    Db, DbError,
    db::{Bind, bind_rows, flag, insert_rows, multi_row_insert},
    ids::new_id,
};
use sqlx::{AssertSqlSafe, Row};
use uuid::Uuid;

use crate::domain::GeoPoint;

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct DecisionRow {
    pub id: String,
    pub customer_id: String,
    pub operation: String,
    pub op_key: Option<String>,
    pub outcome: String,
    pub factor: Option<String>,
    pub score: i64,
    pub anomaly: Option<String>,
    pub policy_version: i64,
    pub inputs: String,
    pub decision: String,
    pub created_at: i64,
}

const DECISION_COLUMNS: &str =
    "id, customer_id, operation, op_key, outcome, factor, score, anomaly, policy_version, inputs, decision, created_at";

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DeviceRow {
    pub customer_id: String,
    pub device_id: String,
    pub fingerprint: String,
    pub first_seen: i64,
    pub last_seen: i64,
    pub trusted: i64,
}

#[derive(Debug, Clone, Default, PartialEq, sqlx::FromRow)]
pub struct ProfileRow {
    pub customer_id: String,
    pub first_seen: i64,
    pub last_lat: Option<i64>,
    pub last_lon: Option<i64>,
    pub last_geo_at: Option<i64>,
    pub amount_count: i64,
    pub amount_sum: i64,
    pub amount_max: i64,
    pub clean_ops: i64,
    pub step_ups: i64,
    pub frozen: i64,
    pub frozen_at: Option<i64>,
}

impl ProfileRow {
    pub fn last_geo(&self) -> Option<GeoPoint> {
        Some(GeoPoint {
            lat: self.last_lat? as f64 / 1e6,
            lon: self.last_lon? as f64 / 1e6,
        })
    }
    pub fn is_frozen(&self) -> bool {
        flag(self.frozen)
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct HoldRow {
    pub id: String,
    pub customer_id: String,
    pub decision_id: String,
    pub kind: String,
    pub state: String,
    pub amount: Option<i64>,
    pub anomaly: Option<String>,
    pub due_at: Option<i64>,
    pub lease_until: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

const HOLD_COLUMNS: &str =
    "id, customer_id, decision_id, kind, state, amount, anomaly, due_at, lease_until, created_at, updated_at";

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CaseRow {
    pub id: String,
    pub customer_id: String,
    pub hold_id: Option<String>,
    pub kind: String,
    pub state: String,
    pub assignee: Option<String>,
    pub summary: String,
    pub resolution: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

const CASE_COLUMNS: &str =
    "id, customer_id, hold_id, kind, state, assignee, summary, resolution, created_at, updated_at";

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct NoteRow {
    pub id: String,
    pub case_id: String,
    pub staff_id: String,
    pub body: String,
    pub created_at: i64,
}

/// What the engine needs from the database about a customer, read together.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    pub profile: Option<ProfileRow>,
    pub device: Option<DeviceRow>,
    pub hour_counts: Vec<u32>,
    pub payee_known: Option<bool>,
    pub recent_failures: u32,
    pub recent_operations: u32,
    pub recent_anomalies: u32,
}

/// Everything the engine reads about a customer before a transfer, as of one stamp
/// version, read in one statement: what the in-memory facts are built from.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    /// The customer's stamp when read (0: never written).
    pub version: i64,
    pub profile: Option<ProfileRow>,
    /// Device id → trusted.
    pub devices: HashMap<String, bool>,
    pub hour_counts: Vec<u32>,
    /// Payees paid before; `payees_complete` is false when there were too many to hold
    /// (then a payee not in the set is looked up).
    pub payees: HashSet<String>,
    pub payees_complete: bool,
    /// Times of failed attempts since the window's start.
    pub failures: Vec<i64>,
    /// Times of the newest transfer decisions since the hour's start, at most the velocity
    /// threshold of them (enough to compare with it).
    pub operations: Vec<i64>,
    /// Times of anomalies in the trust memory (at most 100).
    pub anomalies: Vec<i64>,
    /// The customer's keyed decisions that were not a plain allow (step-ups, refusals,
    /// holds, delays), by key: what a retry must get back. `keyed_complete` is false when
    /// there were too many to hold (then a key not here is looked up).
    pub keyed: HashMap<String, DecisionRow>,
    pub keyed_complete: bool,
}

/// Most payees a snapshot holds; customers with more are looked up payee by payee.
pub const SNAPSHOT_PAYEES: usize = 1_000;
/// Most keyed decisions a snapshot holds.
pub const SNAPSHOT_KEYED: usize = 200;

/// A decision to insert.
#[derive(Debug, Clone)]
pub struct NewDecision {
    pub id: Uuid,
    pub customer: Uuid,
    pub operation: &'static str,
    pub op_key: Option<String>,
    pub outcome: &'static str,
    pub factor: Option<&'static str>,
    pub score: i64,
    pub anomaly: Option<&'static str>,
    pub policy_version: i64,
    pub inputs: String,
    pub decision: String,
    pub at: i64,
}

impl NewDecision {
    /// The row this decision becomes once stored.
    pub fn as_row(&self) -> DecisionRow {
        DecisionRow {
            id: self.id.to_string(),
            customer_id: self.customer.to_string(),
            operation: self.operation.to_owned(),
            op_key: self.op_key.clone(),
            outcome: self.outcome.to_owned(),
            factor: self.factor.map(str::to_owned),
            score: self.score,
            anomaly: self.anomaly.map(str::to_owned),
            policy_version: self.policy_version,
            inputs: self.inputs.clone(),
            decision: self.decision.clone(),
            created_at: self.at,
        }
    }
}

/// What an allowed operation teaches the profile.
#[derive(Debug, Clone, Default)]
pub struct Learned {
    pub amount: Option<i64>,
    pub hour: Option<i64>,
    pub geo: Option<GeoPoint>,
    pub payee: Option<String>,
    /// Device id and fingerprint.
    pub device: Option<(String, String)>,
    pub step_up: bool,
}

/// A decision with everything its operation changes, written together.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub decision: NewDecision,
    pub learned: Learned,
    /// Counts as a clean operation for trust.
    pub clean: bool,
    pub hold: Option<HoldRow>,
    /// A step-up decision for the same key was stored earlier and is replaced by this one.
    pub replaces_step_up: bool,
}

#[derive(Debug, Clone)]
pub struct RiskStore {
    db: Db,
}

type Tx<'c> = sqlx::Transaction<'c, sqlx::Any>;

impl RiskStore {
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    // ---- policies ----

    /// The newest stored policy `(version, json)`, if any.
    pub async fn current_policy(&self) -> Result<Option<(i64, String)>, DbError> {
        let row = sqlx::query("SELECT version, body FROM risk_policies ORDER BY version DESC LIMIT 1")
            .fetch_optional(self.db.reader())
            .await?;
        Ok(row.map(|r| (r.get::<i64, _>(0), r.get::<String, _>(1))))
    }

    pub async fn policy(&self, version: i64) -> Result<Option<String>, DbError> {
        Ok(sqlx::query_scalar("SELECT body FROM risk_policies WHERE version = $1")
            .bind(version)
            .fetch_optional(self.db.reader())
            .await?)
    }

    /// Stores a policy as the version after `previous`; a concurrent update that took the
    /// same version is refused by the primary key (`DbError::Conflict`).
    pub async fn insert_policy(&self, version: i64, body: &str, by: Uuid, at: i64) -> Result<(), DbError> {
        sqlx::query("INSERT INTO risk_policies (version, body, created_by, created_at) VALUES ($1, $2, $3, $4)")
            .bind(version)
            .bind(body)
            .bind(by.to_string())
            .bind(at)
            .execute(self.db.writer())
            .await?;
        Ok(())
    }

    // ---- facts ----

    /// The customer's profile, the device, hour habits, whether the payee is known, and
    /// recent failures, operations (counted up to `operations_cap`: enough to compare with
    /// the velocity threshold without counting a busy customer's whole hour) and anomalies,
    /// on one connection of the read pool.
    #[allow(clippy::too_many_arguments)]
    pub async fn facts(
        &self,
        customer: Uuid,
        device: Option<&str>,
        payee: Option<&str>,
        operation: &str,
        failures_since: i64,
        operations_since: i64,
        anomalies_since: i64,
        operations_cap: u32,
    ) -> Result<Facts, DbError> {
        let c = customer.to_string();
        let mut conn = self.db.reader().acquire().await?;
        // One statement for the profile, the device, the payee and the recent counts.
        let row = sqlx::query(
            "SELECT p.customer_id, p.first_seen, p.last_lat, p.last_lon, p.last_geo_at, p.amount_count, \
               p.amount_sum, p.amount_max, p.clean_ops, p.step_ups, p.frozen, p.frozen_at, \
               (SELECT trusted FROM risk_devices WHERE customer_id = $1 AND device_id = $2), \
               (SELECT COUNT(*) FROM risk_payees WHERE customer_id = $1 AND payee = $3), \
               (SELECT COUNT(*) FROM risk_failures WHERE customer_id = $1 AND at >= $4), \
               (SELECT COUNT(*) FROM (SELECT 1 FROM risk_decisions WHERE customer_id = $1 AND operation = $5 \
                  AND created_at >= $6 LIMIT $8) AS v), \
               (SELECT COUNT(*) FROM (SELECT 1 FROM risk_decisions WHERE customer_id = $1 AND created_at >= $7 \
                  AND anomaly IS NOT NULL LIMIT 100) AS a) \
             FROM (SELECT 1 AS one) AS x LEFT JOIN risk_profiles p ON p.customer_id = $1",
        )
        .bind(&c)
        .bind(device.unwrap_or(""))
        .bind(payee.unwrap_or(""))
        .bind(failures_since)
        .bind(operation)
        .bind(operations_since)
        .bind(anomalies_since)
        .bind(i64::from(operations_cap))
        .fetch_one(&mut *conn)
        .await?;
        let profile = row.get::<Option<String>, _>(0).map(|customer_id| ProfileRow {
            customer_id,
            first_seen: row.get::<Option<i64>, _>(1).unwrap_or(0),
            last_lat: row.get(2),
            last_lon: row.get(3),
            last_geo_at: row.get(4),
            amount_count: row.get::<Option<i64>, _>(5).unwrap_or(0),
            amount_sum: row.get::<Option<i64>, _>(6).unwrap_or(0),
            amount_max: row.get::<Option<i64>, _>(7).unwrap_or(0),
            clean_ops: row.get::<Option<i64>, _>(8).unwrap_or(0),
            step_ups: row.get::<Option<i64>, _>(9).unwrap_or(0),
            frozen: row.get::<Option<i64>, _>(10).unwrap_or(0),
            frozen_at: row.get(11),
        });
        let device_trusted: Option<i64> = row.get(12);
        let n = |i: usize| u32::try_from(row.get::<i64, _>(i)).unwrap_or(u32::MAX);
        let mut hour_counts = vec![0u32; 24];
        if profile.is_some() {
            let rows = sqlx::query("SELECT hour, n FROM risk_hours WHERE customer_id = $1")
                .bind(&c)
                .fetch_all(&mut *conn)
                .await?;
            for r in rows {
                let h: i64 = r.get(0);
                let count: i64 = r.get(1);
                if let Some(slot) = hour_counts.get_mut(h as usize) {
                    *slot = u32::try_from(count).unwrap_or(u32::MAX);
                }
            }
        }
        Ok(Facts {
            device: device.zip(device_trusted).map(|(d, trusted)| DeviceRow {
                customer_id: c.clone(),
                device_id: d.to_owned(),
                fingerprint: String::new(),
                first_seen: 0,
                last_seen: 0,
                trusted,
            }),
            profile,
            hour_counts,
            payee_known: payee.map(|_| n(13) > 0),
            recent_failures: n(14),
            recent_operations: n(15),
            recent_anomalies: n(16),
        })
    }

    // ---- stamps ----

    /// Raises the customers' versions (one step each, whatever else the transaction
    /// changes for them) and returns the new versions.
    async fn bump_in(&self, tx: &mut Tx<'_>, customers: &[&str]) -> Result<Vec<(String, i64)>, DbError> {
        let mut unique: Vec<&str> = customers.to_vec();
        unique.sort_unstable();
        unique.dedup();
        let backend = self.db.backend();
        let mut out = Vec::with_capacity(unique.len());
        for chunk in unique.chunks(huoban_kit::db::rows_per_statement(2)) {
            let rows: Vec<Vec<Bind>> = chunk
                .iter()
                .map(|c| vec![Bind::Text((*c).to_owned()), Bind::Int(1)])
                .collect();
            let sql = multi_row_insert(
                backend,
                "risk_stamps (customer_id, version)",
                2,
                rows.len(),
                "ON CONFLICT (customer_id) DO UPDATE SET version = risk_stamps.version + 1 \
                 RETURNING customer_id, version",
            );
            // Not prepared: each group size would be a statement of its own per connection.
            for r in bind_rows(sqlx::query(AssertSqlSafe(sql)).persistent(false), &rows)
                .fetch_all(&mut **tx)
                .await?
            {
                out.push((r.get::<String, _>(0), r.get::<i64, _>(1)));
            }
        }
        Ok(out)
    }

    /// The decision already made for the operation's key, if any, and the customer's stamp
    /// (0 when never written), in one statement.
    pub async fn decision_and_stamp(&self, customer: Uuid, key: &str) -> Result<(Option<DecisionRow>, i64), DbError> {
        let row = sqlx::query(
            "SELECT (SELECT version FROM risk_stamps WHERE customer_id = $1), d.id, d.customer_id, d.operation, \
               d.op_key, d.outcome, d.factor, d.score, d.anomaly, d.policy_version, d.inputs, d.decision, d.created_at \
             FROM (SELECT 1 AS one) AS x LEFT JOIN risk_decisions d ON d.customer_id = $1 AND d.op_key = $2",
        )
        .bind(customer.to_string())
        .bind(key)
        .fetch_one(self.db.reader())
        .await?;
        let version = row.get::<Option<i64>, _>(0).unwrap_or(0);
        let decision = row.get::<Option<String>, _>(1).map(|id| DecisionRow {
            id,
            customer_id: row.get(2),
            operation: row.get(3),
            op_key: row.get(4),
            outcome: row.get(5),
            factor: row.get(6),
            score: row.get(7),
            anomaly: row.get(8),
            policy_version: row.get(9),
            inputs: row.get(10),
            decision: row.get(11),
            created_at: row.get(12),
        });
        Ok((decision, version))
    }

    /// The customer's stamp and everything the engine reads about them, in one statement
    /// (one consistent view on both backends). Lists come back as space-separated tokens:
    /// device ids are visible ASCII without spaces, payees are ids, the rest numbers.
    pub async fn snapshot(
        &self,
        customer: Uuid,
        failures_since: i64,
        operations_since: i64,
        operations_cap: u32,
        anomalies_since: i64,
    ) -> Result<Snapshot, DbError> {
        let row = sqlx::query(
            "SELECT (SELECT version FROM risk_stamps WHERE customer_id = $1), \
               p.customer_id, p.first_seen, p.last_lat, p.last_lon, p.last_geo_at, p.amount_count, \
               p.amount_sum, p.amount_max, p.clean_ops, p.step_ups, p.frozen, p.frozen_at, \
               (SELECT string_agg(device_id || ' ' || CAST(trusted AS TEXT), ' ') FROM risk_devices \
                  WHERE customer_id = $1), \
               (SELECT string_agg(CAST(hour AS TEXT) || ' ' || CAST(n AS TEXT), ' ') FROM risk_hours \
                  WHERE customer_id = $1), \
               (SELECT string_agg(payee, ' ') FROM (SELECT payee FROM risk_payees WHERE customer_id = $1 \
                  LIMIT $6) AS y), \
               (SELECT string_agg(CAST(at AS TEXT), ' ') FROM risk_failures WHERE customer_id = $1 AND at >= $2), \
               (SELECT string_agg(CAST(created_at AS TEXT), ' ') FROM (SELECT created_at FROM risk_decisions \
                  WHERE customer_id = $1 AND operation = 'transfer' AND created_at >= $3 \
                  ORDER BY created_at DESC LIMIT $4) AS v), \
               (SELECT string_agg(CAST(created_at AS TEXT), ' ') FROM (SELECT created_at FROM risk_decisions \
                  WHERE customer_id = $1 AND created_at >= $5 AND anomaly IS NOT NULL \
                  ORDER BY created_at DESC LIMIT 100) AS a) \
             FROM (SELECT 1 AS one) AS x LEFT JOIN risk_profiles p ON p.customer_id = $1",
        )
        .bind(customer.to_string())
        .bind(failures_since)
        .bind(operations_since)
        .bind(i64::from(operations_cap))
        .bind(anomalies_since)
        .bind(SNAPSHOT_PAYEES as i64 + 1)
        .fetch_one(self.db.reader())
        .await?;
        let profile = row.get::<Option<String>, _>(1).map(|customer_id| ProfileRow {
            customer_id,
            first_seen: row.get::<Option<i64>, _>(2).unwrap_or(0),
            last_lat: row.get(3),
            last_lon: row.get(4),
            last_geo_at: row.get(5),
            amount_count: row.get::<Option<i64>, _>(6).unwrap_or(0),
            amount_sum: row.get::<Option<i64>, _>(7).unwrap_or(0),
            amount_max: row.get::<Option<i64>, _>(8).unwrap_or(0),
            clean_ops: row.get::<Option<i64>, _>(9).unwrap_or(0),
            step_ups: row.get::<Option<i64>, _>(10).unwrap_or(0),
            frozen: row.get::<Option<i64>, _>(11).unwrap_or(0),
            frozen_at: row.get(12),
        });
        let text = |i: usize| row.get::<Option<String>, _>(i).unwrap_or_default();
        let numbers = |i: usize| -> Vec<i64> { text(i).split_whitespace().filter_map(|t| t.parse().ok()).collect() };
        let devices_text = text(13);
        let tokens: Vec<&str> = devices_text.split_whitespace().collect();
        let devices = tokens.chunks_exact(2).map(|p| (p[0].to_owned(), p[1] != "0")).collect();
        let mut hour_counts = vec![0u32; 24];
        for p in numbers(14).chunks_exact(2) {
            if let Some(slot) = usize::try_from(p[0]).ok().and_then(|h| hour_counts.get_mut(h)) {
                *slot = u32::try_from(p[1]).unwrap_or(u32::MAX);
            }
        }
        let payees: HashSet<String> = text(15).split_whitespace().map(str::to_owned).collect();
        // Read after the stamp: it may hold decisions newer than the stamp (harmless, they
        // are real), never miss one older.
        // Both halves are indexed (risk_decisions_not_allowed, risk_holds_customer): a busy
        // customer's thousands of plain allows are never scanned.
        let keyed: Vec<DecisionRow> = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT {DECISION_COLUMNS} FROM (\
               SELECT {DECISION_COLUMNS} FROM risk_decisions WHERE customer_id = $1 AND outcome <> 'allow' \
                 AND op_key IS NOT NULL \
               UNION ALL \
               SELECT {D_COLUMNS} FROM risk_holds h JOIN risk_decisions d ON d.id = h.decision_id \
                 WHERE h.customer_id = $1 AND d.outcome = 'allow' AND d.op_key IS NOT NULL) AS k \
             ORDER BY created_at DESC LIMIT {}",
            SNAPSHOT_KEYED + 1,
            D_COLUMNS = DECISION_COLUMNS
                .split(", ")
                .map(|c| format!("d.{c}"))
                .collect::<Vec<_>>()
                .join(", ")
        )))
        .bind(customer.to_string())
        .fetch_all(self.db.reader())
        .await?;
        Ok(Snapshot {
            keyed_complete: keyed.len() <= SNAPSHOT_KEYED,
            keyed: keyed
                .into_iter()
                .filter_map(|r| r.op_key.clone().map(|k| (k, r)))
                .collect(),
            version: row.get::<Option<i64>, _>(0).unwrap_or(0),
            profile,
            devices,
            hour_counts,
            payees_complete: payees.len() <= SNAPSHOT_PAYEES,
            payees,
            failures: numbers(16),
            operations: numbers(17),
            anomalies: numbers(18),
        })
    }

    /// Whether the customer paid the payee before.
    pub async fn payee_known(&self, customer: Uuid, payee: &str) -> Result<bool, DbError> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM risk_payees WHERE customer_id = $1 AND payee = $2")
            .bind(customer.to_string())
            .bind(payee)
            .fetch_one(self.db.reader())
            .await?;
        Ok(n > 0)
    }

    pub async fn profile(&self, customer: Uuid) -> Result<Option<ProfileRow>, DbError> {
        Ok(sqlx::query_as(
            "SELECT customer_id, first_seen, last_lat, last_lon, last_geo_at, amount_count, amount_sum, amount_max, \
             clean_ops, step_ups, frozen, frozen_at FROM risk_profiles WHERE customer_id = $1",
        )
        .bind(customer.to_string())
        .fetch_optional(self.db.reader())
        .await?)
    }

    pub async fn recent_anomalies(&self, customer: Uuid, since: i64) -> Result<u32, DbError> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM risk_decisions WHERE customer_id = $1 AND created_at >= $2 AND anomaly IS NOT NULL",
        )
        .bind(customer.to_string())
        .bind(since)
        .fetch_one(self.db.reader())
        .await?;
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }

    // ---- decisions ----

    async fn insert_decision_in(tx: &mut Tx<'_>, d: &NewDecision) -> Result<(), DbError> {
        sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO risk_decisions ({DECISION_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
        )))
        .bind(d.id.to_string())
        .bind(d.customer.to_string())
        .bind(d.operation)
        .bind(&d.op_key)
        .bind(d.outcome)
        .bind(d.factor)
        .bind(d.score)
        .bind(d.anomaly)
        .bind(d.policy_version)
        .bind(&d.inputs)
        .bind(&d.decision)
        .bind(d.at)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// Stores a decision that changes nothing else (refusals, step-ups).
    pub async fn insert_decision(&self, d: &NewDecision) -> Result<(), DbError> {
        let mut tx = self.db.writer().begin().await?;
        // A step-up asked again for the same key replaces the earlier one.
        if let Some(key) = &d.op_key {
            sqlx::query("DELETE FROM risk_decisions WHERE customer_id = $1 AND op_key = $2 AND outcome = 'step_up'")
                .bind(d.customer.to_string())
                .bind(key)
                .execute(&mut *tx)
                .await?;
        }
        Self::insert_decision_in(&mut tx, d).await?;
        self.bump_in(&mut tx, &[&d.customer.to_string()]).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn decision(&self, id: Uuid) -> Result<Option<DecisionRow>, DbError> {
        Ok(sqlx::query_as(AssertSqlSafe(format!(
            "SELECT {DECISION_COLUMNS} FROM risk_decisions WHERE id = $1"
        )))
        .bind(id.to_string())
        .fetch_optional(self.db.reader())
        .await?)
    }

    /// Decisions newest first, optionally of one customer; `before` is an id cursor.
    pub async fn decisions(
        &self,
        customer: Option<Uuid>,
        before: Option<&str>,
        limit: u32,
    ) -> Result<Vec<DecisionRow>, DbError> {
        let sql = format!(
            "SELECT {DECISION_COLUMNS} FROM risk_decisions WHERE ($1 = '' OR customer_id = $1) \
             AND ($2 = '' OR id < $2) ORDER BY id DESC LIMIT {}",
            limit
        );
        Ok(sqlx::query_as(AssertSqlSafe(sql))
            .bind(customer.map(|c| c.to_string()).unwrap_or_default())
            .bind(before.unwrap_or(""))
            .fetch_all(self.db.reader())
            .await?)
    }

    /// Stores decisions with what each teaches the profile and its hold row, all in one
    /// transaction (one commit for a whole group of transfers) and in a fixed handful of
    /// multi-row statements whatever the group's size: per customer the profile's sums, per
    /// (customer, hour), payee and device one row each. Returns the customers' new stamps.
    ///
    /// With `durable` false (nobody waits for these records: plain allows), the commit does
    /// not wait for the disk ([`Db::write_lazily`]): a crash right after may lose the
    /// records, as it may lose any not yet written, never money or a timer.
    pub async fn record_outcomes(&self, outcomes: &[Outcome], durable: bool) -> Result<Vec<(String, i64)>, DbError> {
        if !durable {
            return self
                .db
                .write_lazily(async |tx: &mut Tx<'_>| self.write_outcomes_in(tx, outcomes).await)
                .await;
        }
        let mut tx = self.db.writer().begin().await?;
        let stamps = self.write_outcomes_in(&mut tx, outcomes).await?;
        tx.commit().await?;
        Ok(stamps)
    }

    async fn write_outcomes_in(&self, tx: &mut Tx<'_>, outcomes: &[Outcome]) -> Result<Vec<(String, i64)>, DbError> {
        let backend = self.db.backend();
        for o in outcomes.iter().filter(|o| o.replaces_step_up) {
            if let Some(key) = &o.decision.op_key {
                sqlx::query(
                    "DELETE FROM risk_decisions WHERE customer_id = $1 AND op_key = $2 AND outcome = 'step_up'",
                )
                .bind(o.decision.customer.to_string())
                .bind(key)
                .execute(&mut **tx)
                .await?;
            }
        }
        let decisions: Vec<Vec<Bind>> = outcomes
            .iter()
            .map(|o| {
                let d = &o.decision;
                vec![
                    Bind::Text(d.id.to_string()),
                    Bind::Text(d.customer.to_string()),
                    Bind::Text(d.operation.to_owned()),
                    Bind::OptText(d.op_key.clone()),
                    Bind::Text(d.outcome.to_owned()),
                    Bind::OptText(d.factor.map(str::to_owned)),
                    Bind::Int(d.score),
                    Bind::OptText(d.anomaly.map(str::to_owned)),
                    Bind::Int(d.policy_version),
                    Bind::Text(d.inputs.clone()),
                    Bind::Text(d.decision.clone()),
                    Bind::Int(d.at),
                ]
            })
            .collect();
        insert_rows(
            tx,
            backend,
            &format!("risk_decisions ({DECISION_COLUMNS})"),
            "",
            &decisions,
        )
        .await?;

        // What the group teaches, summed per customer (an upsert may touch a row once).
        #[derive(Default)]
        struct Sums {
            first: i64,
            geo: Option<(GeoPoint, i64)>,
            count: i64,
            sum: i64,
            max: i64,
            clean: i64,
            step_ups: i64,
        }
        let mut profiles: BTreeMap<String, Sums> = BTreeMap::new();
        let mut hours: BTreeMap<(String, i64), i64> = BTreeMap::new();
        let mut payees: BTreeMap<(String, String), i64> = BTreeMap::new();
        // (customer, device) → (fingerprint, first, last, trusted)
        let mut devices: BTreeMap<(String, String), (String, i64, i64, bool)> = BTreeMap::new();
        for o in outcomes {
            let (d, l) = (&o.decision, &o.learned);
            let c = d.customer.to_string();
            let p = profiles.entry(c.clone()).or_insert_with(|| Sums {
                first: d.at,
                ..Sums::default()
            });
            p.first = p.first.min(d.at);
            if let Some(g) = l.geo
                && p.geo.is_none_or(|(_, at)| at <= d.at)
            {
                p.geo = Some((g, d.at));
            }
            if let Some(a) = l.amount {
                p.count += 1;
                p.sum += a;
                p.max = p.max.max(a);
            }
            p.clean += i64::from(o.clean);
            p.step_ups += i64::from(l.step_up);
            if let Some(h) = l.hour {
                *hours.entry((c.clone(), h)).or_default() += 1;
            }
            if let Some(payee) = &l.payee {
                payees.entry((c.clone(), payee.clone())).or_insert(d.at);
            }
            if let Some((device, fp)) = &l.device {
                let e = devices
                    .entry((c.clone(), device.clone()))
                    .or_insert_with(|| (fp.clone(), d.at, d.at, false));
                e.1 = e.1.min(d.at);
                e.2 = e.2.max(d.at);
                e.3 |= l.step_up;
            }
        }
        let profile_rows: Vec<Vec<Bind>> = profiles
            .iter()
            .map(|(c, p)| {
                let (lat, lon, at) = match p.geo {
                    Some((g, at)) => (Some((g.lat * 1e6) as i64), Some((g.lon * 1e6) as i64), Some(at)),
                    None => (None, None, None),
                };
                vec![
                    Bind::Text(c.clone()),
                    Bind::Int(p.first),
                    Bind::OptInt(lat),
                    Bind::OptInt(lon),
                    Bind::OptInt(at),
                    Bind::Int(p.count),
                    Bind::Int(p.sum),
                    Bind::Int(p.max),
                    Bind::Int(p.clean),
                    Bind::Int(p.step_ups),
                ]
            })
            .collect();
        insert_rows(
            tx,
            backend,
            "risk_profiles (customer_id, first_seen, last_lat, last_lon, last_geo_at, amount_count, amount_sum, \
             amount_max, clean_ops, step_ups)",
            "ON CONFLICT (customer_id) DO UPDATE SET \
               last_lat = COALESCE(excluded.last_lat, risk_profiles.last_lat), \
               last_lon = COALESCE(excluded.last_lon, risk_profiles.last_lon), \
               last_geo_at = COALESCE(excluded.last_geo_at, risk_profiles.last_geo_at), \
               amount_count = risk_profiles.amount_count + excluded.amount_count, \
               amount_sum = risk_profiles.amount_sum + excluded.amount_sum, \
               amount_max = CASE WHEN excluded.amount_max > risk_profiles.amount_max \
                 THEN excluded.amount_max ELSE risk_profiles.amount_max END, \
               clean_ops = risk_profiles.clean_ops + excluded.clean_ops, \
               step_ups = risk_profiles.step_ups + excluded.step_ups",
            &profile_rows,
        )
        .await?;
        insert_rows(
            tx,
            backend,
            "risk_hours (customer_id, hour, n)",
            "ON CONFLICT (customer_id, hour) DO UPDATE SET n = risk_hours.n + excluded.n",
            &hours
                .into_iter()
                .map(|((c, h), n)| vec![Bind::Text(c), Bind::Int(h), Bind::Int(n)])
                .collect::<Vec<_>>(),
        )
        .await?;
        insert_rows(
            tx,
            backend,
            "risk_payees (customer_id, payee, first_at)",
            "ON CONFLICT (customer_id, payee) DO NOTHING",
            &payees
                .into_iter()
                .map(|((c, p), at)| vec![Bind::Text(c), Bind::Text(p), Bind::Int(at)])
                .collect::<Vec<_>>(),
        )
        .await?;
        insert_rows(
            tx,
            backend,
            "risk_devices (customer_id, device_id, fingerprint, first_seen, last_seen, trusted)",
            "ON CONFLICT (customer_id, device_id) DO UPDATE SET \
               last_seen = CASE WHEN excluded.last_seen > risk_devices.last_seen \
                 THEN excluded.last_seen ELSE risk_devices.last_seen END, \
               trusted = CASE WHEN excluded.trusted = 1 THEN 1 ELSE risk_devices.trusted END",
            &devices
                .into_iter()
                .map(|((c, dev), (fp, first, last, trusted))| {
                    vec![
                        Bind::Text(c),
                        Bind::Text(dev),
                        Bind::Text(fp),
                        Bind::Int(first),
                        Bind::Int(last),
                        Bind::Int(i64::from(trusted)),
                    ]
                })
                .collect::<Vec<_>>(),
        )
        .await?;
        let holds: Vec<Vec<Bind>> = outcomes
            .iter()
            .filter_map(|o| o.hold.as_ref())
            .map(|h| {
                vec![
                    Bind::Text(h.id.clone()),
                    Bind::Text(h.customer_id.clone()),
                    Bind::Text(h.decision_id.clone()),
                    Bind::Text(h.kind.clone()),
                    Bind::Text(h.state.clone()),
                    Bind::OptInt(h.amount),
                    Bind::OptText(h.anomaly.clone()),
                    Bind::OptInt(h.due_at),
                    Bind::OptInt(h.lease_until),
                    Bind::Int(h.created_at),
                    Bind::Int(h.updated_at),
                ]
            })
            .collect();
        insert_rows(tx, backend, &format!("risk_holds ({HOLD_COLUMNS})"), "", &holds).await?;
        let customers: Vec<&str> = profiles.keys().map(String::as_str).collect();
        self.bump_in(tx, &customers).await
    }

    // ---- devices ----

    async fn touch_device_in(
        tx: &mut Tx<'_>,
        customer: &str,
        device: &str,
        fingerprint: &str,
        at: i64,
        trust: bool,
    ) -> Result<(), DbError> {
        sqlx::query(
            "INSERT INTO risk_devices (customer_id, device_id, fingerprint, first_seen, last_seen, trusted) \
             VALUES ($1, $2, $3, $4, $4, $5) \
             ON CONFLICT (customer_id, device_id) DO UPDATE SET last_seen = excluded.last_seen, \
               trusted = CASE WHEN excluded.trusted = 1 THEN 1 ELSE risk_devices.trusted END",
        )
        .bind(customer)
        .bind(device)
        .bind(fingerprint)
        .bind(at)
        .bind(i64::from(trust))
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// Registers a device or refreshes its last-seen time.
    pub async fn touch_device(
        &self,
        customer: Uuid,
        device: &str,
        fingerprint: &str,
        at: i64,
        trust: bool,
    ) -> Result<(), DbError> {
        let mut tx = self.db.writer().begin().await?;
        let c = customer.to_string();
        Self::touch_device_in(&mut tx, &c, device, fingerprint, at, trust).await?;
        self.bump_in(&mut tx, &[&c]).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn devices(&self, customer: Uuid) -> Result<Vec<DeviceRow>, DbError> {
        Ok(sqlx::query_as(
            "SELECT customer_id, device_id, fingerprint, first_seen, last_seen, trusted FROM risk_devices \
             WHERE customer_id = $1 ORDER BY last_seen DESC",
        )
        .bind(customer.to_string())
        .fetch_all(self.db.reader())
        .await?)
    }

    /// Runs one statement about a customer's facts with their stamp raised in the same
    /// transaction; returns the rows it affected.
    async fn change<'q>(
        &self,
        customer: &str,
        query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
    ) -> Result<u64, DbError> {
        let mut tx = self.db.writer().begin().await?;
        let n = query.execute(&mut *tx).await?.rows_affected();
        if n > 0 {
            self.bump_in(&mut tx, &[customer]).await?;
        }
        tx.commit().await?;
        Ok(n)
    }

    pub async fn untrust_device(&self, customer: Uuid, device: &str) -> Result<bool, DbError> {
        let c = customer.to_string();
        let q = sqlx::query("UPDATE risk_devices SET trusted = 0 WHERE customer_id = $1 AND device_id = $2")
            .bind(c.clone())
            .bind(device.to_owned());
        Ok(self.change(&c, q).await? == 1)
    }

    pub async fn remove_device(&self, customer: Uuid, device: &str) -> Result<bool, DbError> {
        let c = customer.to_string();
        let q = sqlx::query("DELETE FROM risk_devices WHERE customer_id = $1 AND device_id = $2")
            .bind(c.clone())
            .bind(device.to_owned());
        Ok(self.change(&c, q).await? == 1)
    }

    // ---- failures ----

    pub async fn record_failure(&self, customer: Uuid, kind: &str, at: i64) -> Result<(), DbError> {
        let c = customer.to_string();
        let q = sqlx::query("INSERT INTO risk_failures (id, customer_id, kind, at) VALUES ($1, $2, $3, $4)")
            .bind(new_id().to_string())
            .bind(c.clone())
            .bind(kind.to_owned())
            .bind(at);
        self.change(&c, q).await?;
        Ok(())
    }

    pub async fn clear_failures(&self, customer: Uuid) -> Result<(), DbError> {
        let c = customer.to_string();
        let q = sqlx::query("DELETE FROM risk_failures WHERE customer_id = $1").bind(c.clone());
        self.change(&c, q).await?;
        Ok(())
    }

    // ---- holds ----

    async fn insert_hold_in(tx: &mut Tx<'_>, h: &HoldRow) -> Result<(), DbError> {
        sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO risk_holds ({HOLD_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
        )))
        .bind(&h.id)
        .bind(&h.customer_id)
        .bind(&h.decision_id)
        .bind(&h.kind)
        .bind(&h.state)
        .bind(h.amount)
        .bind(&h.anomaly)
        .bind(h.due_at)
        .bind(h.lease_until)
        .bind(h.created_at)
        .bind(h.updated_at)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// Stores a hold; a second one with the same id is ignored (a replayed request).
    pub async fn insert_hold(&self, h: &HoldRow) -> Result<bool, DbError> {
        let mut tx = self.db.writer().begin().await?;
        let exists: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM risk_holds WHERE id = $1")
            .bind(&h.id)
            .fetch_one(&mut *tx)
            .await?;
        if exists > 0 {
            return Ok(false);
        }
        Self::insert_hold_in(&mut tx, h).await?;
        tx.commit().await?;
        Ok(true)
    }

    pub async fn hold(&self, id: &str) -> Result<Option<HoldRow>, DbError> {
        Ok(sqlx::query_as(AssertSqlSafe(format!(
            "SELECT {HOLD_COLUMNS} FROM risk_holds WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(self.db.writer())
        .await?)
    }

    pub async fn holds_of(&self, customer: Uuid) -> Result<Vec<HoldRow>, DbError> {
        Ok(sqlx::query_as(AssertSqlSafe(format!(
            "SELECT {HOLD_COLUMNS} FROM risk_holds WHERE customer_id = $1 ORDER BY id DESC LIMIT 100"
        )))
        .bind(customer.to_string())
        .fetch_all(self.db.reader())
        .await?)
    }

    /// Ids of delayed holds due at `now` and not leased by another worker.
    pub async fn due_holds(&self, now: i64, limit: u32) -> Result<Vec<String>, DbError> {
        Ok(sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT id FROM risk_holds WHERE state = 'waiting' AND due_at <= $1 \
             AND (lease_until IS NULL OR lease_until < $1) ORDER BY due_at LIMIT {limit}"
        )))
        .bind(now)
        .fetch_all(self.db.reader())
        .await?)
    }

    /// Claims a due hold for settlement until `lease_until`; false when another worker
    /// holds the lease or the hold is no longer waiting.
    pub async fn claim_hold(&self, id: &str, now: i64, lease_until: i64) -> Result<bool, DbError> {
        Ok(sqlx::query(
            "UPDATE risk_holds SET lease_until = $2, updated_at = $3 WHERE id = $1 AND state = 'waiting' \
             AND due_at <= $3 AND (lease_until IS NULL OR lease_until < $3)",
        )
        .bind(id)
        .bind(lease_until)
        .bind(now)
        .execute(self.db.writer())
        .await?
        .rows_affected()
            == 1)
    }

    /// Moves a hold from one of `from` to `to`; false when it was in none of them.
    pub async fn move_hold(&self, id: &str, from: &[&str], to: &str, now: i64) -> Result<bool, DbError> {
        let list: Vec<String> = from.iter().map(|s| format!("'{s}'")).collect();
        Ok(sqlx::query(AssertSqlSafe(format!(
            "UPDATE risk_holds SET state = $2, updated_at = $3, lease_until = NULL WHERE id = $1 AND state IN ({})",
            list.join(", ")
        )))
        .bind(id)
        .bind(to)
        .bind(now)
        .execute(self.db.writer())
        .await?
        .rows_affected()
            == 1)
    }

    /// Cancels a waiting hold unless a settlement holds a live lease on it.
    pub async fn cancel_hold(&self, id: &str, now: i64) -> Result<bool, DbError> {
        Ok(sqlx::query(
            "UPDATE risk_holds SET state = 'cancelled', updated_at = $2 WHERE id = $1 AND state = 'waiting' \
             AND (lease_until IS NULL OR lease_until < $2)",
        )
        .bind(id)
        .bind(now)
        .execute(self.db.writer())
        .await?
        .rows_affected()
            == 1)
    }

    // ---- freeze and cases ----

    /// Freezes the customer's transfers and opens a case, in one transaction.
    pub async fn freeze_and_open_case(&self, case: &CaseRow) -> Result<(), DbError> {
        let mut tx = self.db.writer().begin().await?;
        sqlx::query(
            "INSERT INTO risk_profiles (customer_id, first_seen, frozen, frozen_at) VALUES ($1, $2, 1, $2) \
             ON CONFLICT (customer_id) DO UPDATE SET frozen = 1, frozen_at = excluded.frozen_at",
        )
        .bind(&case.customer_id)
        .bind(case.created_at)
        .execute(&mut *tx)
        .await?;
        sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO risk_cases ({CASE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        )))
        .bind(&case.id)
        .bind(&case.customer_id)
        .bind(&case.hold_id)
        .bind(&case.kind)
        .bind(&case.state)
        .bind(&case.assignee)
        .bind(&case.summary)
        .bind(&case.resolution)
        .bind(case.created_at)
        .bind(case.updated_at)
        .execute(&mut *tx)
        .await?;
        self.bump_in(&mut tx, &[&case.customer_id]).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn unfreeze(&self, customer: &str) -> Result<(), DbError> {
        let q = sqlx::query("UPDATE risk_profiles SET frozen = 0, frozen_at = NULL WHERE customer_id = $1")
            .bind(customer.to_owned());
        self.change(customer, q).await?;
        Ok(())
    }

    pub async fn cases(&self, state: Option<&str>, before: Option<&str>, limit: u32) -> Result<Vec<CaseRow>, DbError> {
        Ok(sqlx::query_as(AssertSqlSafe(format!(
            "SELECT {CASE_COLUMNS} FROM risk_cases WHERE ($1 = '' OR state = $1) AND ($2 = '' OR id < $2) \
             ORDER BY id DESC LIMIT {limit}"
        )))
        .bind(state.unwrap_or(""))
        .bind(before.unwrap_or(""))
        .fetch_all(self.db.reader())
        .await?)
    }

    pub async fn case(&self, id: Uuid) -> Result<Option<CaseRow>, DbError> {
        Ok(sqlx::query_as(AssertSqlSafe(format!(
            "SELECT {CASE_COLUMNS} FROM risk_cases WHERE id = $1"
        )))
        .bind(id.to_string())
        .fetch_optional(self.db.writer())
        .await?)
    }

    pub async fn assign_case(&self, id: Uuid, staff: Uuid, now: i64) -> Result<bool, DbError> {
        Ok(
            sqlx::query("UPDATE risk_cases SET assignee = $2, updated_at = $3 WHERE id = $1 AND state = 'open'")
                .bind(id.to_string())
                .bind(staff.to_string())
                .bind(now)
                .execute(self.db.writer())
                .await?
                .rows_affected()
                == 1,
        )
    }

    pub async fn resolve_case(&self, id: Uuid, resolution: &str, now: i64) -> Result<bool, DbError> {
        Ok(sqlx::query(
            "UPDATE risk_cases SET state = 'resolved', resolution = $2, updated_at = $3 WHERE id = $1 AND state = 'open'",
        )
        .bind(id.to_string())
        .bind(resolution)
        .bind(now)
        .execute(self.db.writer())
        .await?
        .rows_affected()
            == 1)
    }

    pub async fn add_note(&self, case: Uuid, staff: Uuid, body: &str, now: i64) -> Result<NoteRow, DbError> {
        let row = NoteRow {
            id: new_id().to_string(),
            case_id: case.to_string(),
            staff_id: staff.to_string(),
            body: body.to_owned(),
            created_at: now,
        };
        sqlx::query(
            "INSERT INTO risk_case_notes (id, case_id, staff_id, body, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&row.id)
        .bind(&row.case_id)
        .bind(&row.staff_id)
        .bind(&row.body)
        .bind(row.created_at)
        .execute(self.db.writer())
        .await?;
        Ok(row)
    }

    // ---- personal data ----

    /// Everything held about the customer, as JSON rows, for their export.
    pub async fn export(&self, customer: Uuid) -> Result<serde_json::Value, DbError> {
        use huoban_kit::personal::rows_json;
        let db = &self.db;
        let rows = |sql: &'static str| rows_json(db, sql, customer);
        Ok(serde_json::json!({
            "devices": rows("SELECT device_id, first_seen, last_seen, trusted FROM risk_devices \
                WHERE customer_id = $1 ORDER BY first_seen").await?,
            "habits": rows("SELECT first_seen, last_lat, last_lon, last_geo_at, amount_count, amount_sum, amount_max, \
                clean_ops, step_ups, frozen, frozen_at FROM risk_profiles WHERE customer_id = $1").await?,
            "hours": rows("SELECT hour, n FROM risk_hours WHERE customer_id = $1 ORDER BY hour").await?,
            "payees": rows("SELECT payee, first_at FROM risk_payees WHERE customer_id = $1 ORDER BY first_at").await?,
            "failed_attempts": rows("SELECT kind, at FROM risk_failures WHERE customer_id = $1 ORDER BY at").await?,
            "decisions": rows("SELECT id, operation, outcome, factor, score, anomaly, inputs, decision, created_at \
                FROM risk_decisions WHERE customer_id = $1 ORDER BY id").await?,
            "holds": rows("SELECT id, kind, state, amount, anomaly, due_at, created_at, updated_at FROM risk_holds \
                WHERE customer_id = $1 ORDER BY id").await?,
            "cases": rows("SELECT id, kind, state, summary, resolution, created_at, updated_at FROM risk_cases \
                WHERE customer_id = $1 ORDER BY id").await?,
        }))
    }

    /// Erases what is held about the customer, in one transaction: devices, habits,
    /// payees, failed attempts and every decision with its inputs (addresses, places,
    /// device ids) are deleted; cases keep their skeleton (kind, state, times) with their
    /// texts overwritten; holds stay (a delayed transfer still settles or is voided on
    /// time). A frozen customer's profile stays frozen — the freeze is a safety control,
    /// not data about the person, and the erasure must not lift it while the customer's
    /// session still works — with every habit in it blanked (place, amounts, counts, and
    /// first seen set to the freeze time); any other profile is deleted. The stamp is
    /// raised so no node decides on what it kept in memory.
    pub async fn erase(&self, customer: Uuid) -> Result<(), DbError> {
        let c = customer.to_string();
        let mut tx = self.db.writer().begin().await?;
        for sql in [
            "DELETE FROM risk_devices WHERE customer_id = $1",
            "UPDATE risk_profiles SET first_seen = COALESCE(frozen_at, first_seen), last_lat = NULL, \
             last_lon = NULL, last_geo_at = NULL, amount_count = 0, amount_sum = 0, amount_max = 0, \
             clean_ops = 0, step_ups = 0 WHERE customer_id = $1 AND frozen <> 0",
            "DELETE FROM risk_profiles WHERE customer_id = $1 AND frozen = 0",
            "DELETE FROM risk_hours WHERE customer_id = $1",
            "DELETE FROM risk_payees WHERE customer_id = $1",
            "DELETE FROM risk_failures WHERE customer_id = $1",
            "DELETE FROM risk_decisions WHERE customer_id = $1",
            "UPDATE risk_case_notes SET body = '(erased)' WHERE body <> '(erased)' \
             AND case_id IN (SELECT id FROM risk_cases WHERE customer_id = $1)",
            "UPDATE risk_cases SET summary = '(erased)', resolution = CASE WHEN resolution IS NULL THEN NULL \
             ELSE '(erased)' END WHERE customer_id = $1 AND summary <> '(erased)'",
        ] {
            sqlx::query(sql).bind(&c).execute(&mut *tx).await?;
        }
        self.bump_in(&mut tx, &[&c]).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn notes(&self, case: Uuid) -> Result<Vec<NoteRow>, DbError> {
        Ok(sqlx::query_as(
            "SELECT id, case_id, staff_id, body, created_at FROM risk_case_notes WHERE case_id = $1 ORDER BY id",
        )
        .bind(case.to_string())
        .fetch_all(self.db.reader())
        .await?)
    }
}
