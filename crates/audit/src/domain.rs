//! The audit trail's rules, without I/O: how an entry is encoded and hashed, how a
//! checkpoint is signed, and how a stretch of the log is checked.
//!
//! An entry's hash is SHA-256 over a domain tag, the previous entry's hash and every column
//! of the entry, each as a length-prefixed field, so no two different entries encode alike.
//! Details are stored as canonical JSON (object keys sorted, no spaces) and hashed exactly as
//! stored. A checkpoint is an Ed25519 signature over `seq`, `hash` and `at`.

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The `prev_hash` of the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";
const ENTRY_TAG: &[u8] = b"huoban-audit-entry-v1";
const CHECKPOINT_TAG: &[u8] = b"huoban-audit-checkpoint-v1";

/// One entry as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct EntryRow {
    pub seq: i64,
    pub at: i64,
    pub actor_kind: String,
    pub actor_id: Option<String>,
    pub action: String,
    pub subject: Option<String>,
    pub details: String,
    pub prev_hash: String,
    pub hash: String,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct CheckpointRow {
    pub seq: i64,
    pub hash: String,
    pub at: i64,
    pub public_key: String,
    pub signature: String,
}

fn field(h: &mut Sha256, bytes: &[u8]) {
    h.update((bytes.len() as u64).to_be_bytes());
    h.update(bytes);
}

fn opt_field(h: &mut Sha256, value: Option<&str>) {
    match value {
        None => h.update([0u8]),
        Some(v) => {
            h.update([1u8]);
            field(h, v.as_bytes());
        }
    }
}

/// The hash an entry must carry, from its columns and the previous entry's hash.
pub fn entry_hash(e: &EntryRow) -> String {
    let mut h = Sha256::new();
    field(&mut h, ENTRY_TAG);
    field(&mut h, e.prev_hash.as_bytes());
    h.update(e.seq.to_be_bytes());
    h.update(e.at.to_be_bytes());
    field(&mut h, e.actor_kind.as_bytes());
    opt_field(&mut h, e.actor_id.as_deref());
    field(&mut h, e.action.as_bytes());
    opt_field(&mut h, e.subject.as_deref());
    field(&mut h, e.details.as_bytes());
    hex::encode(h.finalize())
}

/// JSON with object keys sorted at every level and no whitespace: one text per value.
pub fn canonical_json(value: &Value) -> String {
    fn write(value: &Value, out: &mut String) {
        match value {
            Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                out.push('{');
                for (i, k) in keys.into_iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&Value::String(k.clone()).to_string());
                    out.push(':');
                    write(&map[k], out);
                }
                out.push('}');
            }
            Value::Array(items) => {
                out.push('[');
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write(v, out);
                }
                out.push(']');
            }
            other => out.push_str(&other.to_string()),
        }
    }
    let mut out = String::new();
    write(value, &mut out);
    out
}

fn checkpoint_message(seq: i64, hash: &str, at: i64) -> Vec<u8> {
    let mut m = CHECKPOINT_TAG.to_vec();
    m.extend_from_slice(format!("\n{seq}\n{hash}\n{at}").as_bytes());
    m
}

pub fn sign_checkpoint(key: &SigningKey, seq: i64, hash: &str, at: i64) -> CheckpointRow {
    let signature = key.sign(&checkpoint_message(seq, hash, at));
    CheckpointRow {
        seq,
        hash: hash.to_owned(),
        at,
        public_key: hex::encode(key.verifying_key().as_bytes()),
        signature: hex::encode(signature.to_bytes()),
    }
}

/// Whether the checkpoint was signed by `key` over exactly its own seq, hash and time.
pub fn checkpoint_signed_by(c: &CheckpointRow, key: &VerifyingKey) -> bool {
    let Ok(bytes) = hex::decode(&c.signature) else {
        return false;
    };
    let Ok(bytes) = <[u8; 64]>::try_from(bytes.as_slice()) else {
        return false;
    };
    key.verify(
        &checkpoint_message(c.seq, &c.hash, c.at),
        &Signature::from_bytes(&bytes),
    )
    .is_ok()
}

/// Where and why the log stops being trustworthy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Broken {
    /// The first entry that cannot be trusted.
    pub seq: i64,
    pub reason: String,
}

/// Checks entries in order; remembers the last good hash between batches.
#[derive(Debug, Clone)]
pub struct ChainCheck {
    pub expected_seq: i64,
    pub prev_hash: String,
    pub checked: u64,
}

impl Default for ChainCheck {
    fn default() -> Self {
        Self {
            expected_seq: 1,
            prev_hash: GENESIS.to_owned(),
            checked: 0,
        }
    }
}

impl ChainCheck {
    /// Feeds the next entry; an error names the first entry that breaks the chain.
    pub fn feed(&mut self, e: &EntryRow) -> Result<(), Broken> {
        if e.seq != self.expected_seq {
            return Err(Broken {
                seq: self.expected_seq,
                reason: format!(
                    "entry {} is missing (the next stored entry is {})",
                    self.expected_seq, e.seq
                ),
            });
        }
        if e.prev_hash != self.prev_hash {
            return Err(Broken {
                seq: e.seq,
                reason: format!(
                    "entry {} does not link to entry {}: its prev_hash differs from that entry's hash \
                     (one of the two was altered)",
                    e.seq,
                    e.seq - 1
                ),
            });
        }
        if entry_hash(e) != e.hash {
            return Err(Broken {
                seq: e.seq,
                reason: format!("entry {} was altered: its content does not match its hash", e.seq),
            });
        }
        self.prev_hash = e.hash.clone();
        self.expected_seq += 1;
        self.checked += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: i64) -> Vec<EntryRow> {
        let mut prev = GENESIS.to_owned();
        (1..=n)
            .map(|seq| {
                let mut e = EntryRow {
                    seq,
                    at: 1_000 + seq,
                    actor_kind: "staff".into(),
                    actor_id: Some("s1".into()),
                    action: "customers.view".into(),
                    subject: None,
                    details: canonical_json(&serde_json::json!({ "b": 1, "a": [seq] })),
                    prev_hash: prev.clone(),
                    hash: String::new(),
                };
                e.hash = entry_hash(&e);
                prev = e.hash.clone();
                e
            })
            .collect()
    }

    #[test]
    fn canonical_json_sorts_keys_at_every_level() {
        let v = serde_json::json!({ "z": { "b": 2, "a": 1 }, "a": "x" });
        assert_eq!(canonical_json(&v), r#"{"a":"x","z":{"a":1,"b":2}}"#);
    }

    #[test]
    fn an_intact_chain_checks_and_any_change_is_named() {
        let entries = chain(5);
        let mut check = ChainCheck::default();
        assert!(entries.iter().all(|e| check.feed(e).is_ok()));
        assert_eq!(check.checked, 5);

        let mut altered = entries.clone();
        altered[2].action = "customers.list".into();
        let mut check = ChainCheck::default();
        let broken = altered.iter().find_map(|e| check.feed(e).err());
        assert_eq!(broken.map(|b| b.seq), Some(3));

        let mut gap = entries.clone();
        gap.remove(1);
        let mut check = ChainCheck::default();
        assert_eq!(gap.iter().find_map(|e| check.feed(e).err()).map(|b| b.seq), Some(2));

        // Re-hashing an altered entry breaks the link of the next one.
        let mut rehashed = entries;
        rehashed[1].subject = Some("customer:x".into());
        rehashed[1].hash = entry_hash(&rehashed[1]);
        let mut check = ChainCheck::default();
        assert_eq!(
            rehashed.iter().find_map(|e| check.feed(e).err()).map(|b| b.seq),
            Some(3)
        );
    }

    #[test]
    fn a_checkpoint_verifies_only_with_its_key_and_content() {
        let key = SigningKey::from_bytes(&[7u8; 32]);
        let other = SigningKey::from_bytes(&[8u8; 32]);
        let c = sign_checkpoint(&key, 10, "ab", 99);
        assert!(checkpoint_signed_by(&c, &key.verifying_key()));
        assert!(!checkpoint_signed_by(&c, &other.verifying_key()));
        let forged = CheckpointRow { hash: "cd".into(), ..c };
        assert!(!checkpoint_signed_by(&forged, &key.verifying_key()));
    }
}
