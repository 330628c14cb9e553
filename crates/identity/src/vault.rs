//! Personal data at rest (issue 6, item 8). A customer's name, phone number, ID number and
//! birthday are stored encrypted field by field with AES-256-GCM under a data key of their
//! own; that data key is stored wrapped (AES-256-GCM again) under a master key from a
//! [`KeyProvider`] — envelope encryption. Phone lookups use a blind index:
//! HMAC-SHA256 of the normalized number under a separate key, so equal numbers find each
//! other and nothing else can be learnt from the column.
//!
//! - Rotation (`huoban keys rotate`) re-wraps each row's data key under the newest master
//!   key; rows name the master key that wraps them (`key_id`), so old and new rows are read
//!   side by side while it runs.
//! - Erasure destroys the row's wrapped data key and every sealed field (crypto-shredding).
//! - Each sealed field is bound to its customer and field name (associated data), so a
//!   ciphertext copied to another row or column does not open.
//!
//! The configuration's `[keys]` table is the built-in provider; a KMS or HSM plugs in by
//! implementing [`KeyProvider`].

use std::{collections::BTreeMap, fmt, sync::Arc};

use aes_gcm::{
    Aes256Gcm, KeyInit,
    aead::{Aead, Payload},
};
use base64::{Engine, engine::general_purpose::STANDARD};
use hmac::{Hmac, Mac};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Where master keys come from.
pub trait KeyProvider: Send + Sync + fmt::Debug {
    /// Id of the master key that wraps new data keys.
    fn current_key_id(&self) -> String;
    /// The master key with this id, if this node knows it.
    fn master_key(&self, id: &str) -> Option<[u8; 32]>;
    /// The key of the phone blind index. It must never change while rows use it.
    fn index_key(&self) -> [u8; 32];
}

/// `[keys]` in the configuration.
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeySettings {
    /// Id of the master key new rows are wrapped under (and `huoban keys rotate` moves to).
    pub current: Option<String>,
    /// Master keys by id, each base64 of 32 bytes (`huoban keys generate`). Keep older ones
    /// until `huoban keys rotate` has moved every row off them.
    pub master: BTreeMap<String, String>,
    /// Base64 of 32 bytes: the phone blind-index key. Never change it on a live database.
    pub blind_index: Option<String>,
}

impl fmt::Debug for KeySettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeySettings")
            .field("current", &self.current)
            .field("master", &self.master.keys().collect::<Vec<_>>())
            .field("blind_index", &self.blind_index.as_ref().map(|_| "[REDACTED]"))
            .finish()
    }
}

fn decode_key(what: &str, b64: &str) -> Result<[u8; 32], String> {
    STANDARD
        .decode(b64.trim())
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .ok_or_else(|| format!("{what} must be base64 of 32 bytes (run `huoban keys generate`)"))
}

/// A fresh random key, base64, for `[keys.master]` or `keys.blind_index`.
pub fn generate_key() -> String {
    let mut k = [0u8; 32];
    rand::rng().fill_bytes(&mut k);
    STANDARD.encode(k)
}

/// The keys from the configuration file.
#[derive(Clone)]
pub struct ConfigKeys {
    current: String,
    master: BTreeMap<String, [u8; 32]>,
    index: [u8; 32],
}

impl fmt::Debug for ConfigKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConfigKeys")
            .field("current", &self.current)
            .field("master", &self.master.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

const DEV_KEY_ID: &str = "dev";

impl ConfigKeys {
    /// Reads `[keys]`; with none configured, fixed development keys and a warning.
    pub fn from_settings(s: &KeySettings) -> Result<(Self, Option<String>), String> {
        if s.current.is_none() && s.master.is_empty() && s.blind_index.is_none() {
            let dev = |label: &str| <[u8; 32]>::from(Sha256::digest(label.as_bytes()));
            return Ok((
                Self {
                    current: DEV_KEY_ID.to_owned(),
                    master: BTreeMap::from([(DEV_KEY_ID.to_owned(), dev("huoban-development-master-key"))]),
                    index: dev("huoban-development-blind-index-key"),
                },
                Some(
                    "PERSONAL DATA IS ENCRYPTED WITH PUBLIC DEVELOPMENT KEYS: anyone can decrypt it. \
                     Configure [keys] (current, master, blind_index; `huoban keys generate`) before production."
                        .to_owned(),
                ),
            ));
        }
        let current = s
            .current
            .clone()
            .ok_or("keys.current is required when [keys] is configured")?;
        let mut master = BTreeMap::new();
        for (id, b64) in &s.master {
            master.insert(id.clone(), decode_key(&format!("keys.master.{id}"), b64)?);
        }
        if !master.contains_key(&current) {
            return Err(format!("keys.current names {current:?}, which is not in [keys.master]"));
        }
        let index = decode_key(
            "keys.blind_index",
            s.blind_index.as_deref().ok_or("keys.blind_index is required")?,
        )?;
        Ok((Self { current, master, index }, None))
    }
}

impl KeyProvider for ConfigKeys {
    fn current_key_id(&self) -> String {
        self.current.clone()
    }
    fn master_key(&self, id: &str) -> Option<[u8; 32]> {
        self.master.get(id).copied()
    }
    fn index_key(&self) -> [u8; 32] {
        self.index
    }
}

/// A row's data key, in clear, only in memory.
#[derive(Clone)]
pub struct DataKey([u8; 32]);

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DataKey([REDACTED])")
    }
}

/// Seals and opens personal fields with the provider's keys.
#[derive(Debug, Clone)]
pub struct Vault {
    keys: Arc<dyn KeyProvider>,
}

fn seal_with(key: &[u8; 32], aad: &[u8], clear: &[u8]) -> Result<String, String> {
    let cipher = Aes256Gcm::new_from_slice(key).map_err(|e| e.to_string())?;
    let mut nonce = [0u8; 12];
    rand::rng().fill_bytes(&mut nonce);
    let sealed = cipher
        .encrypt(
            &aes_gcm::aead::Nonce::<Aes256Gcm>::from(nonce),
            Payload { msg: clear, aad },
        )
        .map_err(|_| "encryption failed".to_owned())?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&sealed);
    Ok(STANDARD.encode(out))
}

fn open_with(key: &[u8; 32], aad: &[u8], sealed: &str) -> Result<Vec<u8>, String> {
    let bytes = STANDARD
        .decode(sealed)
        .map_err(|_| "sealed value is not base64".to_owned())?;
    if bytes.len() < 12 + 16 {
        return Err("sealed value too short".into());
    }
    let (nonce, body) = bytes.split_at(12);
    let nonce: [u8; 12] = nonce.try_into().map_err(|_| "bad nonce".to_owned())?;
    let cipher = Aes256Gcm::new_from_slice(key).map_err(|e| e.to_string())?;
    cipher
        .decrypt(
            &aes_gcm::aead::Nonce::<Aes256Gcm>::from(nonce),
            Payload { msg: body, aad },
        )
        .map_err(|_| "the value does not open with this key (wrong key, row or field)".to_owned())
}

impl Vault {
    pub fn new(keys: Arc<dyn KeyProvider>) -> Self {
        Self { keys }
    }

    pub fn current_key_id(&self) -> String {
        self.keys.current_key_id()
    }

    /// A new random data key for a new row, wrapped under the current master key:
    /// (data key, wrapped form, master key id).
    pub fn new_data_key(&self, customer_id: &str) -> Result<(DataKey, String, String), String> {
        let mut k = [0u8; 32];
        rand::rng().fill_bytes(&mut k);
        let key = DataKey(k);
        let id = self.keys.current_key_id();
        let wrapped = self.wrap(&key, customer_id, &id)?;
        Ok((key, wrapped, id))
    }

    pub fn wrap(&self, key: &DataKey, customer_id: &str, master_id: &str) -> Result<String, String> {
        let master = self
            .keys
            .master_key(master_id)
            .ok_or_else(|| format!("master key {master_id:?} is not configured"))?;
        seal_with(&master, format!("dk:{customer_id}").as_bytes(), &key.0)
    }

    pub fn unwrap(&self, wrapped: &str, customer_id: &str, master_id: &str) -> Result<DataKey, String> {
        let master = self
            .keys
            .master_key(master_id)
            .ok_or_else(|| format!("master key {master_id:?} is not configured on this node"))?;
        let bytes = open_with(&master, format!("dk:{customer_id}").as_bytes(), wrapped)?;
        <[u8; 32]>::try_from(bytes)
            .map(DataKey)
            .map_err(|_| "bad data key".to_owned())
    }

    pub fn seal(&self, key: &DataKey, customer_id: &str, field: &str, clear: &str) -> Result<String, String> {
        seal_with(&key.0, format!("{field}:{customer_id}").as_bytes(), clear.as_bytes())
    }

    pub fn open(&self, key: &DataKey, customer_id: &str, field: &str, sealed: &str) -> Result<String, String> {
        let bytes = open_with(&key.0, format!("{field}:{customer_id}").as_bytes(), sealed)?;
        String::from_utf8(bytes).map_err(|_| "sealed text is not UTF-8".to_owned())
    }

    /// The blind index of a normalized phone number (hex HMAC-SHA256).
    pub fn phone_index(&self, phone: &str) -> String {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.keys.index_key()).expect("HMAC takes any key length");
        mac.update(b"phone:");
        mac.update(phone.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vault(current: &str, ids: &[&str]) -> Vault {
        let settings = KeySettings {
            current: Some(current.into()),
            master: ids
                .iter()
                .map(|id| (id.to_string(), STANDARD.encode(Sha256::digest(id.as_bytes()))))
                .collect(),
            blind_index: Some(STANDARD.encode([9u8; 32])),
        };
        Vault::new(Arc::new(ConfigKeys::from_settings(&settings).expect("keys").0))
    }

    #[test]
    fn fields_open_only_for_their_row_and_field() {
        let v = vault("k1", &["k1"]);
        let (key, wrapped, id) = v.new_data_key("c1").expect("key");
        assert_eq!(id, "k1");
        let sealed = v.seal(&key, "c1", "phone", "+8613800138000").expect("seal");
        assert!(!sealed.contains("138"));
        assert_eq!(v.open(&key, "c1", "phone", &sealed).as_deref(), Ok("+8613800138000"));
        assert!(v.open(&key, "c2", "phone", &sealed).is_err(), "another row");
        assert!(v.open(&key, "c1", "name", &sealed).is_err(), "another field");
        let again = v.unwrap(&wrapped, "c1", "k1").expect("unwrap");
        assert_eq!(v.open(&again, "c1", "phone", &sealed).as_deref(), Ok("+8613800138000"));
        assert_ne!(
            v.seal(&key, "c1", "phone", "x").ok(),
            v.seal(&key, "c1", "phone", "x").ok(),
            "fresh nonces"
        );
    }

    #[test]
    fn a_data_key_rewrapped_under_a_new_master_key_opens_without_the_old_one() {
        let both = vault("k2", &["k1", "k2"]);
        let old = vault("k1", &["k1"]);
        let (key, wrapped, _) = old.new_data_key("c1").expect("key");
        let rewrapped = both
            .wrap(&both.unwrap(&wrapped, "c1", "k1").expect("unwrap"), "c1", "k2")
            .expect("wrap");
        let only_new = vault("k2", &["k2"]);
        let reopened = only_new.unwrap(&rewrapped, "c1", "k2").expect("opens with k2");
        let sealed = old.seal(&key, "c1", "name", "张三").expect("seal");
        assert_eq!(only_new.open(&reopened, "c1", "name", &sealed).as_deref(), Ok("张三"));
        assert!(only_new.unwrap(&wrapped, "c1", "k1").is_err(), "k1 unknown there");
    }

    #[test]
    fn the_blind_index_is_stable_and_keyed() {
        let a = vault("k1", &["k1"]);
        assert_eq!(a.phone_index("+8613800138000"), a.phone_index("+8613800138000"));
        assert_ne!(a.phone_index("+8613800138000"), a.phone_index("+8613800138001"));
        let (dev, warning) = ConfigKeys::from_settings(&KeySettings::default()).expect("dev keys");
        assert!(warning.is_some());
        assert_ne!(
            Vault::new(Arc::new(dev)).phone_index("+8613800138000"),
            a.phone_index("+8613800138000")
        );
        let bad = KeySettings {
            current: Some("k9".into()),
            ..KeySettings::default()
        };
        assert!(ConfigKeys::from_settings(&bad).is_err());
    }
}
