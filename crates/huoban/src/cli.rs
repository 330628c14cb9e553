//! The command line: `huoban serve | migrate | admin | bench | config`. Every subcommand
//! takes the same `--config` and `--database-url`.

use std::{net::SocketAddr, path::PathBuf, process::ExitCode, sync::Arc};

use anyhow::Context;
use clap::{Parser, Subcommand};
use huoban_identity::Role;
use huoban_kit::SystemClock;

use crate::{
    app::App,
    bench::BenchArgs,
    config::{Config, Overrides},
    observability,
};

#[derive(Debug, Parser)]
#[command(name = "huoban", version, about = "Huoban (伙伴): a bank's engagement platform", long_about = None)]
struct Cli {
    /// Configuration file (TOML). Default: ./huoban.toml when present.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// SQLite file path or postgres:// URL. Default: ./huoban.db
    #[arg(long, global = true, value_name = "URL")]
    database_url: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server (applies migrations first).
    Serve {
        /// Address to listen on. Default: 127.0.0.1:8080
        #[arg(long, value_name = "ADDR")]
        listen: Option<SocketAddr>,
        /// Seed a demo bank into an empty database and print how to sign in.
        #[arg(long)]
        demo: bool,
    },
    /// Apply pending migrations and report the schema version.
    Migrate,
    /// Staff administration.
    Admin {
        #[command(subcommand)]
        action: AdminCommand,
    },
    /// Run a benchmark scenario and print throughput and latency.
    Bench(BenchArgs),
    /// Print the commented example configuration.
    Config,
    /// The audit trail: check it, or make a checkpoint signing key.
    Audit {
        #[command(subcommand)]
        action: AuditCommand,
    },
    /// Keys of personal data at rest.
    Keys {
        #[command(subcommand)]
        action: KeysCommand,
    },
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Move every customer row under the current master key (`keys.current`), in batches,
    /// while servers keep serving.
    Rotate {
        /// Rows per batch.
        #[arg(long, default_value_t = 500)]
        batch: i64,
    },
    /// Print a new random key for `[keys.master]` or `keys.blind_index`.
    Generate,
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Check the whole hash chain and every signed checkpoint; exits non-zero naming the
    /// first broken entry.
    Verify,
    /// Print a new checkpoint signing key for `audit.signing_key`, and its public key.
    Keygen,
}

#[derive(Debug, Subcommand)]
enum AdminCommand {
    /// Create a staff user; the generated password is printed once.
    Create {
        #[arg(long)]
        username: String,
        /// admin, operator, risk_officer, support_agent or auditor
        #[arg(long, default_value = "admin")]
        role: String,
        #[arg(long)]
        display_name: Option<String>,
    },
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    if let Command::Config = cli.command {
        print!("{}", crate::config::EXAMPLE);
        return Ok(());
    }
    if let Command::Keys {
        action: KeysCommand::Generate,
    } = cli.command
    {
        println!("{}", huoban_identity::vault::generate_key());
        return Ok(());
    }
    if let Command::Audit {
        action: AuditCommand::Keygen,
    } = cli.command
    {
        let (seed, public) = huoban_audit::generate_key();
        println!("# Put this in huoban.toml (keep it secret); auditors verify with the public key.");
        println!("[audit]\nsigning_key = \"{seed}\"");
        println!("# public key: {public}");
        return Ok(());
    }
    let listen = match &cli.command {
        Command::Serve { listen, .. } => *listen,
        _ => None,
    };
    let overrides = Overrides {
        config_file: cli.config.clone(),
        listen,
        database_url: cli.database_url.clone(),
    };
    let (config, warnings) = Config::load(&overrides).context("loading configuration")?;
    observability::init_logging(config.log_format, &config.log_level);
    for w in warnings {
        tracing::warn!("{w}");
    }
    match cli.command {
        Command::Serve { demo, .. } => serve(config, demo).await,
        Command::Migrate => {
            let db = huoban_kit::Db::connect(config.database_url(), &Default::default())
                .await
                .context("connecting to the database")?;
            let status = db
                .migrate(&crate::app::migrations())
                .await
                .context("applying migrations")?;
            println!(
                "schema version {} on {} ({} migrations known, {} pending)",
                status.applied.unwrap_or(0),
                status.backend,
                crate::app::migrations().len(),
                status.pending.len()
            );
            db.close().await;
            Ok(())
        }
        Command::Admin {
            action:
                AdminCommand::Create {
                    username,
                    role,
                    display_name,
                },
        } => {
            let role = Role::parse(&role).map_err(anyhow::Error::msg)?;
            let app = App::start(config, Arc::new(SystemClock)).await?;
            let (user, password) = app
                .identity
                .create_staff(&username, display_name.as_deref().unwrap_or(&username), role)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("created staff user {} ({})", user.username, user.role.as_str());
            println!("password (shown once): {password}");
            Ok(())
        }
        Command::Bench(args) => crate::bench::run(args, config, cli.database_url.is_some()).await,
        Command::Config => Ok(()),
        Command::Audit {
            action: AuditCommand::Keygen,
        } => Ok(()),
        Command::Keys {
            action: KeysCommand::Generate,
        } => Ok(()),
        Command::Keys {
            action: KeysCommand::Rotate { batch },
        } => {
            let app = App::start(config, Arc::new(SystemClock)).await?;
            let current = app.identity.store().vault().current_key_id();
            let moved = app
                .identity
                .rotate_keys(batch, |done, total| {
                    eprintln!("[rotate] {done}/{total} customers under key {current}");
                })
                .await
                .map_err(|e| anyhow::anyhow!("{}: {}", e.title, e.detail.unwrap_or_default()))?;
            println!(
                "{moved} customers moved under key {}",
                app.identity.store().vault().current_key_id()
            );
            app.db.close().await;
            Ok(())
        }
        Command::Audit {
            action: AuditCommand::Verify,
        } => audit_verify(config).await,
    }
}

/// `huoban audit verify`: reads the trail in batches, printing progress on long chains.
async fn audit_verify(config: Config) -> anyhow::Result<()> {
    let db = huoban_kit::Db::connect(config.database_url(), &Default::default())
        .await
        .context("connecting to the database")?;
    let (audit, warning) = huoban_audit::AuditLog::new(db.clone(), Arc::new(SystemClock), &config.audit)
        .map_err(|e| anyhow::anyhow!("audit configuration: {e}"))?;
    if let Some(w) = warning {
        eprintln!("warning: {w}");
    }
    let started = std::time::Instant::now();
    let report = audit
        .verify(|checked, seq| {
            if started.elapsed().as_millis() > 500 {
                eprintln!("[verify] {checked} entries checked (up to entry {seq})");
            }
        })
        .await
        .context("reading the audit trail")?;
    db.close().await;
    match report.broken {
        None => {
            println!(
                "audit trail intact: {} entries, {} signed checkpoints (last at entry {}), {} entries after it not yet signed",
                report.entries,
                report.checkpoints,
                report.last_checkpoint.unwrap_or(0),
                report.unsigned_tail
            );
            Ok(())
        }
        Some(b) => Err(anyhow::anyhow!(
            "audit trail broken at entry {}: {} ({} entries before it verified)",
            b.seq,
            b.reason,
            report.entries
        )),
    }
}

async fn serve(config: Config, demo: bool) -> anyhow::Result<()> {
    let listen = config.listen;
    let app = App::start(config, Arc::new(SystemClock)).await?;
    if let Some((username, password)) = app
        .identity
        .ensure_first_admin()
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?
    {
        println!("\nCreated the first staff user. Keep this password; it is shown only now:");
        println!("  username: {username}\n  password: {password}\n");
    }
    if demo {
        let report = crate::demo::seed(&app).await?;
        report.print(&app.config.public_url());
    }
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding {listen}"))?;
    let url = app.config.public_url();
    println!(
        "Huoban is listening on http://{}  (API reference: {url}/api/docs/)",
        listener.local_addr()?
    );
    tracing::info!(addr = %listener.local_addr()?, "listening");
    app.serve(listener, shutdown_signal()).await
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
