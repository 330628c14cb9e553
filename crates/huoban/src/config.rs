//! Configuration, layered: built-in defaults < `huoban.toml` (or `--config FILE`) <
//! `HUOBAN_*` environment variables < command-line flags.
//!
//! Nested keys use a double underscore in the environment: `[http] body_limit_bytes` is
//! `HUOBAN_HTTP__BODY_LIMIT_BYTES`. A `HUOBAN_*` variable that matches no key is warned
//! about at start, because a typo there would otherwise silently fall back to a default.
//! The database URL may carry a password, so it is a secret: `Debug` prints `[REDACTED]`
//! and it is never logged.

use std::{net::SocketAddr, path::PathBuf};

use figment::{
    Figment,
    providers::{Format, Serialized, Toml},
};
use huoban_identity::IdentitySettings;
use huoban_stepup::StepUpSettings;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpSettings {
    /// Largest request body accepted, in bytes.
    pub body_limit_bytes: usize,
    /// A request that takes longer is answered 408.
    pub request_timeout_secs: u64,
    /// Origins of H5 pages allowed to call the API from a browser (CORS). Empty: same
    /// origin only. `["*"]` allows any origin (never with credentials).
    pub cors_origins: Vec<String>,
    /// How long a node waits for in-flight requests at shutdown.
    pub shutdown_grace_secs: u64,
    /// Content-Security-Policy of HTML pages (API responses get a deny-all policy).
    pub content_security_policy: String,
    /// `Strict-Transport-Security` max-age; 0 sends none (set it when served over HTTPS).
    pub hsts_max_age_secs: u64,
    /// Refuse POST/PUT/PATCH/DELETE requests a browser marks as cross-site (Fetch Metadata,
    /// `Origin`) unless their origin is in `cors_origins` or is `public_url` (403
    /// `cross-site-request`). Requests without browser headers pass.
    pub csrf_protection: bool,
    /// Also let pages of the same site (another subdomain) send state-changing requests.
    pub csrf_allow_same_site: bool,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            body_limit_bytes: 1024 * 1024,
            request_timeout_secs: 30,
            cors_origins: Vec::new(),
            shutdown_grace_secs: 20,
            content_security_policy: huoban_kit::headers::DEFAULT_PAGE_CSP.to_owned(),
            hsts_max_age_secs: 0,
            csrf_protection: true,
            csrf_allow_same_site: false,
        }
    }
}

/// The H5 pages and components (`/h5/`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebSettings {
    /// Development: serve the H5 assets from this folder (a checkout's
    /// `crates/web/assets`), read on every request, instead of the copy inside the binary.
    /// Also `HUOBAN_WEB_ASSETS_DIR`.
    pub assets_dir: Option<PathBuf>,
}

/// Adaptive security (crates/risk).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RiskSettings {
    /// Risk-check every `POST /api/v1/transfers` (on by default; off only to measure
    /// the cost of the checks).
    pub transfer_checks: bool,
    /// Take the client address from `X-Forwarded-For` (only behind a proxy that sets it).
    pub trust_forwarded_for: bool,
    /// How long a node decides a customer's transfers on the facts it keeps in memory
    /// without reading their version from the database, in milliseconds. Another node's
    /// change (a freeze, a removed device) reaches this node within it; refusals, holds,
    /// delays and step-ups are always decided on confirmed facts. 0 reads the version for
    /// every transfer.
    pub facts_max_age_ms: u64,
}

impl Default for RiskSettings {
    fn default() -> Self {
        Self {
            transfer_checks: true,
            trust_forwarded_for: false,
            facts_max_age_ms: 250,
        }
    }
}

/// What the daily check-in pays (crates/engage/src/checkin): points for every check-in, a
/// bonus at each streak length, and the make-up allowance. Checked at start.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CheckinSettings {
    pub base_points: i64,
    pub milestones: Vec<CheckinMilestone>,
    pub makeup_window_days: i32,
    pub makeup_cards_per_month: i64,
}

/// A streak length (`days` in a row) and the points it pays once per streak.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckinMilestone {
    pub days: i32,
    pub points: i64,
}

impl Default for CheckinSettings {
    fn default() -> Self {
        let d = huoban_engage::checkin::domain::CheckinConfig::default();
        Self {
            base_points: d.base_points,
            milestones: d
                .milestones
                .iter()
                .map(|m| CheckinMilestone {
                    days: m.days,
                    points: m.points,
                })
                .collect(),
            makeup_window_days: d.makeup_window_days,
            makeup_cards_per_month: d.makeup_cards_per_month,
        }
    }
}

impl TryFrom<&CheckinSettings> for huoban_engage::checkin::domain::CheckinConfig {
    type Error = anyhow::Error;

    fn try_from(s: &CheckinSettings) -> anyhow::Result<Self> {
        use huoban_engage::checkin::domain::{CheckinConfig, Milestone};
        CheckinConfig::new(
            s.base_points,
            s.milestones
                .iter()
                .map(|m| Milestone {
                    days: m.days,
                    points: m.points,
                })
                .collect(),
            s.makeup_window_days,
            s.makeup_cards_per_month,
        )
        .map_err(|e| anyhow::anyhow!("checkin: {e}"))
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DemoSettings {
    /// Seed of the demo bank's generator: the same seed gives the same bank.
    pub seed: u64,
    pub customers: u32,
    pub days_of_history: u32,
}

impl Default for DemoSettings {
    fn default() -> Self {
        Self {
            seed: 2026,
            customers: 1000,
            days_of_history: 90,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub listen: SocketAddr,
    /// A SQLite file path (default `./huoban.db`) or a `postgres://` URL.
    pub database_url: SecretString,
    pub database_max_connections: u32,
    /// The address customers reach Huoban at; used in links, QR codes and the start banner.
    pub public_url: Option<String>,
    pub log_format: LogFormat,
    /// Default log filter when `RUST_LOG` is not set.
    pub log_level: String,
    pub http: HttpSettings,
    pub identity: IdentitySettings,
    pub audit: huoban_audit::AuditSettings,
    pub rate_limits: huoban_identity::limits::RateLimitSettings,
    /// Master keys for personal data at rest and the phone blind-index key.
    pub keys: huoban_identity::vault::KeySettings,
    /// Step-up factors: lockout cool-down, TOTP issuer, WebAuthn relying party.
    pub step_up: StepUpSettings,
    pub demo: DemoSettings,
    pub web: WebSettings,
    pub risk: RiskSettings,
    pub checkin: CheckinSettings,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            database_url: SecretString::from("./huoban.db"),
            database_max_connections: 16,
            public_url: None,
            log_format: LogFormat::Text,
            log_level: "info".into(),
            http: HttpSettings::default(),
            identity: IdentitySettings::default(),
            audit: huoban_audit::AuditSettings::default(),
            rate_limits: Default::default(),
            keys: Default::default(),
            step_up: StepUpSettings::default(),
            demo: DemoSettings::default(),
            web: WebSettings::default(),
            risk: RiskSettings::default(),
            checkin: CheckinSettings::default(),
        }
    }
}

/// Every key, as a `HUOBAN_*` variable spells it (lower case, `__` between levels).
pub const KNOWN_KEYS: &[&str] = &[
    "listen",
    "database_url",
    "database_max_connections",
    "public_url",
    "log_format",
    "log_level",
    "http__body_limit_bytes",
    "http__request_timeout_secs",
    "http__cors_origins",
    "http__shutdown_grace_secs",
    "http__content_security_policy",
    "http__hsts_max_age_secs",
    "http__csrf_protection",
    "http__csrf_allow_same_site",
    "identity__session_ttl_minutes",
    "identity__handoff_ttl_seconds",
    "identity__self_registration",
    "identity__session_cache_ms",
    "identity__idp__issuer",
    "identity__idp__audience",
    "identity__idp__jwks_url",
    "identity__idp__public_keys_pem",
    "identity__idp__provision",
    "audit__signing_key",
    "audit__checkpoint_every",
    "audit__checkpoint_interval_secs",
    "audit__trusted_public_keys",
    "keys__current",
    "keys__blind_index",
    "rate_limits__enabled",
    "rate_limits__trust_forwarded_for",
    "rate_limits__sign_in__per_ip__burst",
    "rate_limits__sign_in__per_ip__per_minute",
    "rate_limits__sign_in__per_account__burst",
    "rate_limits__sign_in__per_account__per_minute",
    "rate_limits__step_up__per_ip__burst",
    "rate_limits__step_up__per_ip__per_minute",
    "rate_limits__step_up__per_account__burst",
    "rate_limits__step_up__per_account__per_minute",
    "rate_limits__claims__per_ip__burst",
    "rate_limits__claims__per_ip__per_minute",
    "rate_limits__claims__per_account__burst",
    "rate_limits__claims__per_account__per_minute",
    "step_up__lockout_minutes",
    "step_up__totp_issuer",
    "step_up__rp_id",
    "step_up__rp_origin",
    "demo__seed",
    "demo__customers",
    "demo__days_of_history",
    "web__assets_dir",
    "risk__transfer_checks",
    "risk__trust_forwarded_for",
    "risk__facts_max_age_ms",
    "checkin__base_points",
    "checkin__milestones",
    "checkin__makeup_window_days",
    "checkin__makeup_cards_per_month",
];

/// Variables with the prefix that are not configuration keys but are still ours.
const OTHER_VARIABLES: &[&str] = &[
    "config",
    "test_postgres_url",
    "web_assets_dir",
    // `huoban bench h5`: other browser paths, and the request waterfall.
    "chromedriver",
    "chromium",
    "bench_h5_waterfall",
];

/// Flags given on the command line; they win over everything else.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub config_file: Option<PathBuf>,
    pub listen: Option<SocketAddr>,
    pub database_url: Option<String>,
}

impl Config {
    pub fn load(overrides: &Overrides) -> Result<(Config, Vec<String>), Box<figment::Error>> {
        Self::load_from(overrides, std::env::vars())
    }

    /// Loads with the given environment instead of the process's (tests).
    pub fn load_from(
        overrides: &Overrides,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<(Config, Vec<String>), Box<figment::Error>> {
        let env: Vec<(String, String)> = env.into_iter().filter(|(k, _)| k.starts_with("HUOBAN_")).collect();
        let mut warnings = Vec::new();
        for (key, _) in &env {
            let name = key["HUOBAN_".len()..].to_ascii_lowercase();
            if !KNOWN_KEYS.contains(&name.as_str()) && !OTHER_VARIABLES.contains(&name.as_str()) {
                warnings.push(format!("ignoring unknown environment variable {key}"));
            }
        }
        let file = overrides.config_file.clone().or_else(|| {
            env.iter()
                .find(|(k, _)| k == "HUOBAN_CONFIG")
                .map(|(_, v)| PathBuf::from(v))
        });
        let mut figment = Figment::new();
        match &file {
            Some(path) if !path.exists() => {
                return Err(Box::new(figment::Error::from(format!(
                    "config file {} does not exist",
                    path.display()
                ))));
            }
            Some(path) => figment = figment.merge(Toml::file_exact(path)),
            None if std::path::Path::new("huoban.toml").exists() => {
                figment = figment.merge(Toml::file_exact("huoban.toml"));
            }
            None => {}
        }
        // The environment is read from the given pairs (not figment's own `Env`) so tests
        // can pass their own; values are parsed the way figment parses variables.
        for (key, value) in &env {
            let mut name = key["HUOBAN_".len()..].to_ascii_lowercase();
            if name == "web_assets_dir" {
                // The short spelling of `web__assets_dir`.
                name = "web__assets_dir".into();
            }
            if KNOWN_KEYS.contains(&name.as_str()) {
                let parsed: figment::value::Value = value.parse().unwrap_or_else(|_| value.clone().into());
                figment = figment.merge(Serialized::default(&name.replace("__", "."), parsed));
            }
        }
        if let Some(listen) = overrides.listen {
            figment = figment.merge(Serialized::default("listen", listen));
        }
        if let Some(url) = &overrides.database_url {
            figment = figment.merge(Serialized::default("database_url", url));
        }
        let config: Config = figment.extract().map_err(Box::new)?;
        Ok((config, warnings))
    }

    pub fn database_url(&self) -> &str {
        self.database_url.expose_secret()
    }

    pub fn public_url(&self) -> String {
        self.public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", self.listen))
            .trim_end_matches('/')
            .to_owned()
    }
}

/// The commented example configuration shipped in the repository.
pub const EXAMPLE: &str = include_str!("../../../huoban.example.toml");

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn layers_apply_in_order_defaults_file_env_flags() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("h.toml");
        std::fs::write(
            &file,
            "listen = \"127.0.0.1:9000\"\nlog_level = \"debug\"\n[http]\nbody_limit_bytes = 2048\n",
        )
        .expect("write");
        let overrides = Overrides {
            config_file: Some(file),
            ..Default::default()
        };
        let (c, warnings) = Config::load_from(&overrides, env(&[("HUOBAN_LOG_LEVEL", "warn")])).expect("load");
        assert!(warnings.is_empty());
        assert_eq!(c.listen.port(), 9000, "file beats default");
        assert_eq!(c.log_level, "warn", "environment beats file");
        assert_eq!(c.http.body_limit_bytes, 2048);
        assert_eq!(c.http.request_timeout_secs, 30, "default kept");

        let overrides = Overrides {
            listen: Some("127.0.0.1:9100".parse().expect("addr")),
            ..overrides
        };
        let (c, _) = Config::load_from(&overrides, env(&[("HUOBAN_LISTEN", "127.0.0.1:9200")])).expect("load");
        assert_eq!(c.listen.port(), 9100, "flag beats environment");
    }

    #[test]
    fn nested_keys_come_from_double_underscore_variables() {
        let (c, _) = Config::load_from(
            &Overrides::default(),
            env(&[
                ("HUOBAN_HTTP__REQUEST_TIMEOUT_SECS", "5"),
                ("HUOBAN_IDENTITY__HANDOFF_TTL_SECONDS", "60"),
            ]),
        )
        .expect("load");
        assert_eq!(c.http.request_timeout_secs, 5);
        assert_eq!(c.identity.handoff_ttl_seconds, 60);
    }

    #[test]
    fn unknown_variables_are_warned_about() {
        let (_, warnings) = Config::load_from(
            &Overrides::default(),
            env(&[("HUOBAN_LISTN", "x"), ("HUOBAN_TEST_POSTGRES_URL", "y")]),
        )
        .expect("load");
        assert_eq!(
            warnings,
            vec!["ignoring unknown environment variable HUOBAN_LISTN".to_owned()]
        );
    }

    #[test]
    fn the_database_url_never_shows_in_debug_output() {
        let (c, _) = Config::load_from(
            &Overrides {
                database_url: Some("postgres://bank:s3cret@db/huoban".into()),
                ..Default::default()
            },
            env(&[]),
        )
        .expect("load");
        assert_eq!(c.database_url(), "postgres://bank:s3cret@db/huoban");
        assert!(!format!("{c:?}").contains("s3cret"));
    }

    #[test]
    fn a_missing_config_file_or_a_bad_value_is_an_error() {
        let missing = Overrides {
            config_file: Some("/nonexistent/huoban.toml".into()),
            ..Default::default()
        };
        assert!(Config::load_from(&missing, env(&[])).is_err());
        assert!(Config::load_from(&Overrides::default(), env(&[("HUOBAN_LISTEN", "not-an-address")])).is_err());
    }

    #[test]
    fn the_example_config_parses_and_matches_the_defaults() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("example.toml");
        std::fs::write(&file, EXAMPLE).expect("write");
        let (c, _) = Config::load_from(
            &Overrides {
                config_file: Some(file),
                ..Default::default()
            },
            env(&[]),
        )
        .expect("example config must load");
        assert_eq!(c.listen, Config::default().listen);
        let checkin = huoban_engage::checkin::domain::CheckinConfig::try_from(&c.checkin).expect("valid schedule");
        assert_eq!(checkin, huoban_engage::checkin::domain::CheckinConfig::default());
    }

    #[test]
    fn the_checkin_schedule_can_come_from_the_environment() {
        let (c, unknown) = Config::load_from(
            &Overrides::default(),
            env(&[
                ("HUOBAN_CHECKIN__MILESTONES", "[{days=2,points=5},{days=10,points=50}]"),
                ("HUOBAN_CHECKIN__BASE_POINTS", "3"),
            ]),
        )
        .expect("loads");
        assert!(unknown.is_empty(), "{unknown:?}");
        let checkin = huoban_engage::checkin::domain::CheckinConfig::try_from(&c.checkin).expect("valid");
        assert_eq!(checkin.base_points, 3);
        assert_eq!(
            checkin
                .milestones
                .iter()
                .map(|m| (m.days, m.points))
                .collect::<Vec<_>>(),
            [(2, 5), (10, 50)]
        );
    }
}
