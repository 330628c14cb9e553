//! [`AuditLog`]: what other capabilities call to record, and what auditors and
//! `huoban audit verify` use to read and check the trail.

use std::{collections::BTreeMap, fmt, sync::Arc};

use base64::{Engine, engine::general_purpose::STANDARD};
use ed25519_dalek::{SigningKey, VerifyingKey};
use huoban_identity::audit::{ActorKind, AuditEvent, AuditSink, SinkFuture};
use huoban_kit::{
    ApiError, Db, DbError, Page, SharedClock,
    clock::{from_micros, to_micros},
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::{
    domain::{
        Broken, ChainCheck, CheckpointRow, EntryRow, canonical_json, checkpoint_signed_by, entry_hash, sign_checkpoint,
    },
    store::{AuditStore, EntryFilter},
};

/// `[audit]` in the configuration.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditSettings {
    /// Base64 of the 32-byte Ed25519 seed that signs checkpoints (`huoban audit keygen`).
    /// Unset: a fixed development key, with a loud warning at start.
    pub signing_key: Option<String>,
    /// Sign a checkpoint every this many entries.
    pub checkpoint_every: u64,
    /// Also sign the head this often (seconds) when entries were added since the last one.
    pub checkpoint_interval_secs: u64,
    /// Public keys (hex) of earlier signing keys whose checkpoints are still trusted.
    pub trusted_public_keys: Vec<String>,
}

impl Default for AuditSettings {
    fn default() -> Self {
        Self {
            signing_key: None,
            checkpoint_every: 100,
            checkpoint_interval_secs: 300,
            trusted_public_keys: Vec::new(),
        }
    }
}

impl fmt::Debug for AuditSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuditSettings")
            .field("signing_key", &self.signing_key.as_ref().map(|_| "[REDACTED]"))
            .field("checkpoint_every", &self.checkpoint_every)
            .field("checkpoint_interval_secs", &self.checkpoint_interval_secs)
            .field("trusted_public_keys", &self.trusted_public_keys)
            .finish()
    }
}

/// A fresh signing key, as `audit.signing_key` takes it, and its public key (hex).
pub fn generate_key() -> (String, String) {
    let mut seed = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut seed);
    let key = SigningKey::from_bytes(&seed);
    (STANDARD.encode(seed), hex::encode(key.verifying_key().as_bytes()))
}

/// Who did something.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub kind: ActorKind,
    pub id: Option<String>,
}

impl Actor {
    pub fn staff(id: Uuid) -> Self {
        Self {
            kind: ActorKind::Staff,
            id: Some(id.to_string()),
        }
    }
    pub fn customer(id: Uuid) -> Self {
        Self {
            kind: ActorKind::Customer,
            id: Some(id.to_string()),
        }
    }
    pub fn system(component: &str) -> Self {
        Self {
            kind: ActorKind::System,
            id: Some(component.to_owned()),
        }
    }
    pub fn anonymous() -> Self {
        Self {
            kind: ActorKind::Anonymous,
            id: None,
        }
    }
}

/// One entry as auditors see it.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditEntry {
    pub seq: i64,
    pub at: String,
    /// `staff`, `customer`, `system` or `anonymous`.
    pub actor_kind: String,
    pub actor_id: Option<String>,
    pub action: String,
    pub subject: Option<String>,
    pub details: Value,
    pub prev_hash: String,
    pub hash: String,
}

impl AuditEntry {
    fn of(e: &EntryRow) -> Self {
        Self {
            seq: e.seq,
            at: from_micros(e.at).to_string(),
            actor_kind: e.actor_kind.clone(),
            actor_id: e.actor_id.clone(),
            action: e.action.clone(),
            subject: e.subject.clone(),
            details: serde_json::from_str(&e.details).unwrap_or(Value::Null),
            prev_hash: e.prev_hash.clone(),
            hash: e.hash.clone(),
        }
    }
}

/// The outcome of checking the whole trail.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct VerifyReport {
    pub ok: bool,
    /// Entries checked.
    pub entries: u64,
    /// Signed checkpoints checked.
    pub checkpoints: u64,
    pub last_seq: i64,
    pub last_checkpoint: Option<i64>,
    /// Entries after the last checkpoint (not yet covered by a signature).
    pub unsigned_tail: i64,
    /// The first entry that cannot be trusted, and why.
    pub broken: Option<Broken>,
}

/// The append-only, hash-chained audit trail.
#[derive(Clone)]
pub struct AuditLog {
    store: AuditStore,
    clock: SharedClock,
    key: Arc<SigningKey>,
    trusted: Arc<Vec<VerifyingKey>>,
    every: i64,
}

impl fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuditLog")
            .field("public_key", &self.public_key())
            .field("checkpoint_every", &self.every)
            .finish()
    }
}

const DEV_SEED_LABEL: &[u8] = b"huoban-development-audit-signing-key (not for production)";

impl AuditLog {
    /// Builds the log; the second value is a warning to print when the development key is used.
    pub fn new(db: Db, clock: SharedClock, settings: &AuditSettings) -> Result<(Self, Option<String>), String> {
        let (seed, warning) = match &settings.signing_key {
            Some(b64) => {
                let bytes = STANDARD
                    .decode(b64.trim())
                    .map_err(|e| format!("audit.signing_key is not base64: {e}"))?;
                let seed: [u8; 32] = bytes
                    .try_into()
                    .map_err(|_| "audit.signing_key must be 32 bytes (run `huoban audit keygen`)".to_owned())?;
                (seed, None)
            }
            None => (
                <[u8; 32]>::from(Sha256::digest(DEV_SEED_LABEL)),
                Some(
                    "AUDIT CHECKPOINTS ARE SIGNED WITH THE PUBLIC DEVELOPMENT KEY: anyone can forge them. \
                     Set audit.signing_key (generate one with `huoban audit keygen`) before production."
                        .to_owned(),
                ),
            ),
        };
        let key = SigningKey::from_bytes(&seed);
        let mut trusted = vec![key.verifying_key()];
        for hexkey in &settings.trusted_public_keys {
            let bytes: [u8; 32] = hex::decode(hexkey)
                .ok()
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| format!("audit.trusted_public_keys: {hexkey:?} is not a 32-byte hex key"))?;
            trusted.push(VerifyingKey::from_bytes(&bytes).map_err(|e| format!("audit.trusted_public_keys: {e}"))?);
        }
        Ok((
            Self {
                store: AuditStore::new(db),
                clock,
                key: Arc::new(key),
                trusted: Arc::new(trusted),
                every: settings.checkpoint_every.max(1) as i64,
            },
            warning,
        ))
    }

    pub fn store(&self) -> &AuditStore {
        &self.store
    }

    /// The public key (hex) that verifies this node's checkpoints.
    pub fn public_key(&self) -> String {
        hex::encode(self.key.verifying_key().as_bytes())
    }

    /// Appends an entry. `subject` names what was acted on (`customer:<uuid>`, `route:…`);
    /// `details` must hold ids and codes only, never personal data in clear. Appends are
    /// serialized, and every `checkpoint_every`-th entry is signed in the same transaction.
    pub async fn record(
        &self,
        actor: Actor,
        action: &str,
        subject: Option<&str>,
        details: Value,
    ) -> Result<AuditEntry, DbError> {
        let at = to_micros(self.clock.now());
        let details = canonical_json(&details);
        let every = self.every;
        let key = self.key.clone();
        let entry = self
            .store
            .append(
                |seq, prev| {
                    let mut e = EntryRow {
                        seq,
                        at,
                        actor_kind: actor.kind.as_str().to_owned(),
                        actor_id: actor.id.clone(),
                        action: action.to_owned(),
                        subject: subject.map(str::to_owned),
                        details,
                        prev_hash: prev.to_owned(),
                        hash: String::new(),
                    };
                    e.hash = entry_hash(&e);
                    e
                },
                |e| (e.seq % every == 0).then(|| sign_checkpoint(&key, e.seq, &e.hash, e.at)),
            )
            .await?;
        Ok(AuditEntry::of(&entry))
    }

    /// Signs the chain head when entries were added since the last checkpoint; returns its seq.
    pub async fn checkpoint(&self) -> Result<Option<i64>, DbError> {
        let at = to_micros(self.clock.now());
        let key = self.key.clone();
        let c = self
            .store
            .checkpoint_head(|seq, hash| sign_checkpoint(&key, seq, hash, at))
            .await?;
        Ok(c.map(|c| c.seq))
    }

    /// Newest first, with filters; the cursor is the seq of the last entry seen.
    pub async fn list(
        &self,
        filter: &EntryFilter,
        after: Option<String>,
        limit: u32,
    ) -> Result<Page<AuditEntry>, ApiError> {
        let before = after
            .map(|a| {
                a.parse::<i64>()
                    .map_err(|_| ApiError::invalid_field("cursor", "the cursor is not one this server issued"))
            })
            .transpose()?;
        let rows = self.store.list(filter, before, limit).await?;
        let items = rows.iter().map(AuditEntry::of).collect();
        Ok(Page::from_rows(items, limit, |e: &AuditEntry| e.seq.to_string()))
    }

    /// Checks the whole chain and every checkpoint; `progress(entries_checked, last_seq)`
    /// is called after each batch.
    pub async fn verify(&self, mut progress: impl FnMut(u64, i64)) -> Result<VerifyReport, DbError> {
        const BATCH: i64 = 5_000;
        let checkpoints: BTreeMap<i64, CheckpointRow> = self
            .store
            .checkpoints()
            .await?
            .into_iter()
            .map(|c| (c.seq, c))
            .collect();
        let (head_seq, _) = self.store.head().await?;
        let mut check = ChainCheck::default();
        let mut broken: Option<Broken> = None;
        let mut last_good_checkpoint = 0;
        let mut checkpoints_ok = 0u64;
        // A checkpoint not signed by a trusted key is itself a break.
        for c in checkpoints.values() {
            if !self.trusted.iter().any(|k| checkpoint_signed_by(c, k)) {
                broken = Some(Broken {
                    seq: c.seq,
                    reason: format!("the checkpoint at entry {} is not signed by a trusted key", c.seq),
                });
                break;
            }
        }
        let mut after = 0;
        'outer: loop {
            let batch = self.store.entries_after(after, BATCH).await?;
            let Some(last) = batch.last() else { break };
            after = last.seq;
            for e in &batch {
                if broken.as_ref().is_some_and(|b| b.seq <= e.seq) {
                    break 'outer;
                }
                if let Err(b) = check.feed(e) {
                    broken = Some(b);
                    break 'outer;
                }
                if let Some(c) = checkpoints.get(&e.seq) {
                    if c.hash != e.hash {
                        broken = Some(Broken {
                            seq: e.seq,
                            reason: format!(
                                "entries {}..={} were rewritten: entry {} no longer matches its signed checkpoint",
                                last_good_checkpoint + 1,
                                e.seq,
                                e.seq
                            ),
                        });
                        break 'outer;
                    }
                    last_good_checkpoint = e.seq;
                    checkpoints_ok += 1;
                }
            }
            progress(check.checked, after);
        }
        let last_seq = check.expected_seq - 1;
        if broken.is_none() {
            if let Some((&signed, _)) = checkpoints.range(last_seq + 1..).next() {
                broken = Some(Broken {
                    seq: last_seq + 1,
                    reason: format!("entries after {last_seq} are missing: a signed checkpoint covers entry {signed}"),
                });
            } else if head_seq != last_seq {
                broken = Some(Broken {
                    seq: last_seq.min(head_seq) + 1,
                    reason: format!("the chain head says {head_seq} entries but {last_seq} are stored"),
                });
            }
        }
        Ok(VerifyReport {
            ok: broken.is_none(),
            entries: check.checked,
            checkpoints: checkpoints_ok,
            last_seq,
            last_checkpoint: (last_good_checkpoint > 0).then_some(last_good_checkpoint),
            unsigned_tail: last_seq - last_good_checkpoint,
            broken,
        })
    }
}

impl AuditSink for AuditLog {
    fn append(&self, event: AuditEvent) -> SinkFuture<'_> {
        Box::pin(async move {
            self.record(
                Actor {
                    kind: event.actor_kind,
                    id: event.actor_id,
                },
                &event.action,
                event.subject.as_deref(),
                event.details,
            )
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
        })
    }
}
