//! The Huoban server: configuration, the HTTP application that mounts every capability,
//! observability, the command line (`serve`, `migrate`, `admin`, `bench`), the demo bank
//! and the benchmark harness. Capabilities live in their own crates (`huoban-identity`,
//! `huoban-ledger`, …); this crate only assembles them.

pub mod app;
pub mod bench;
pub mod bench_events;
pub mod bench_h5;
pub mod bench_risk;
pub mod cli;
pub mod config;
pub mod demo;
pub mod demo_campaign;
pub mod demo_risk;
pub mod demo_social;
pub mod observability;

pub use app::{App, MIGRATIONS};
pub use config::Config;

/// Installs the process-wide TLS crypto provider (ring) once, before any HTTPS client is
/// built (JWKS fetches, the benchmark client).
pub fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
