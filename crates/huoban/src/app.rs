//! The HTTP application: connects storage, runs migrations, builds every capability's
//! service and mounts its routes under `/api/v1`, wraps them in the API conventions
//! (request ids, problem+json, idempotency keys, body limits, timeouts, CORS, metrics) and
//! serves them until a shutdown signal, letting in-flight requests finish.

use std::{future::Future, sync::Arc, time::Duration};

use anyhow::Context;
use axum::{
    Router,
    extract::{FromRef, State},
    http::{HeaderName, HeaderValue, Method, StatusCode, header},
    middleware::{from_fn, from_fn_with_state},
    response::{Html, IntoResponse, Response},
    routing::get,
};
use huoban_accounts::AccountsService;
use huoban_identity::{IdentityService, store::IdentityStore};
use huoban_inbox::InboxService;
use huoban_kit::{
    ApiError, Db, MigrationSpec, SharedClock,
    clock::to_micros,
    db::{DbOptions, SchemaStatus},
    idempotency::{self, Idempotency},
    problem::normalize_errors,
};
use huoban_ledger::Ledger;
use tokio::net::TcpListener;
use tower_http::{
    catch_panic::CatchPanicLayer,
    cors::{AllowOrigin, CorsLayer},
    limit::RequestBodyLimitLayer,
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
    timeout::TimeoutLayer,
    trace::TraceLayer,
};
use utoipa::{
    Modify, OpenApi,
    openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
};
use utoipa_axum::router::OpenApiRouter;
use utoipa_swagger_ui::SwaggerUi;

use crate::{config::Config, observability::Metrics};

pub const REQUEST_ID: &str = "x-request-id";

/// Every capability's migrations, in the order they were written.
pub fn migrations() -> Vec<MigrationSpec> {
    let mut all = vec![idempotency::MIGRATION];
    all.extend_from_slice(huoban_identity::MIGRATIONS);
    all.extend_from_slice(huoban_audit::MIGRATIONS);
    all.extend_from_slice(huoban_ledger::MIGRATIONS);
    all.extend_from_slice(huoban_inbox::MIGRATIONS);
    all.extend_from_slice(huoban_accounts::MIGRATIONS);
    all.extend(huoban_engage::migrations());
    all.extend_from_slice(huoban_social::MIGRATIONS);
    all.extend_from_slice(huoban_stepup::MIGRATIONS);
    all.extend_from_slice(huoban_risk::MIGRATIONS);
    all.extend_from_slice(huoban_campaigns::MIGRATIONS);
    all.sort_by_key(|m| m.version);
    all
}

/// Kept for callers that want a static list.
pub static MIGRATIONS: std::sync::LazyLock<Vec<MigrationSpec>> = std::sync::LazyLock::new(migrations);

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Huoban API",
        description = "Huoban (伙伴) turns a bank's H5 pages, WeChat official account, mini-programs and app \
into a partner customers come back to. Errors are RFC 9457 problem+json with a stable `type` \
(`urn:huoban:problem:<slug>`). POST requests that create something or move value honour an \
`Idempotency-Key` header. Lists use cursor pagination (`limit`, `cursor` → `next_cursor`).",
        license(name = "Apache-2.0")
    ),
    components(schemas(huoban_kit::problem::Problem)),
    modifiers(&BearerAuth),
    tags(
        (name = "identity", description = "Customers, sessions across channels, hand-off"),
        (name = "staff", description = "Staff console: users, roles, customer lookup"),
        (name = "inbox", description = "In-app messages and their live stream"),
        (name = "engage", description = "Check-ins, questionnaires and quizzes"),
        (name = "social", description = "Invite programmes, share posters and team challenges"),
        (name = "campaigns", description = "Campaigns, rules, tasks, badges, levels, effects and nudges"),
        (name = "accounts", description = "Accounts, balances, history, statements, transfers and balance alerts"),
        (name = "audit", description = "The hash-chained audit trail and its verification (auditors)"),
        (name = "security", description = "Adaptive security: step-up factors (transaction PIN, one-time codes, passkeys, lockout), devices, trust, delayed and held operations, cases"),
        (name = "operations", description = "Health and metrics")
    )
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "A session token from POST /api/v1/sessions (customers) or /api/v1/staff/sessions (staff).",
                    ))
                    .build(),
            ),
        );
    }
}

#[derive(Debug, Clone)]
pub struct App {
    pub config: Arc<Config>,
    pub db: Db,
    pub clock: SharedClock,
    pub identity: IdentityService,
    pub audit: huoban_audit::AuditLog,
    pub limiter: huoban_identity::limits::RateLimiter,
    pub ledger: Ledger,
    pub inbox: InboxService,
    pub accounts: AccountsService,
    pub stepup: huoban_stepup::StepUpService,
    pub risk: huoban_risk::RiskService,
    pub metrics: Metrics,
    /// The check-in reward schedule from `[checkin]`, checked at start.
    pub checkin: Arc<huoban_engage::checkin::domain::CheckinConfig>,
}

/// State of the server's own routes (health, readiness, metrics).
#[derive(Debug, Clone, FromRef)]
struct OpsState {
    db: Db,
    metrics: Metrics,
}

impl App {
    /// Connects to the database, applies pending migrations and builds the services.
    pub async fn start(config: Config, clock: SharedClock) -> anyhow::Result<App> {
        // Configuration mistakes stop the start before anything is touched.
        let checkin = Arc::new(huoban_engage::checkin::domain::CheckinConfig::try_from(
            &config.checkin,
        )?);
        let db = Db::connect(
            config.database_url(),
            &DbOptions {
                max_connections: config.database_max_connections,
                ..Default::default()
            },
        )
        .await
        .context("connecting to the database")?;
        let status = db.migrate(&migrations()).await.context("applying migrations")?;
        tracing::info!(backend = status.backend, schema = ?status.applied, "database ready");
        crate::install_tls_provider();
        let (audit, warning) = huoban_audit::AuditLog::new(db.clone(), clock.clone(), &config.audit)
            .map_err(|e| anyhow::anyhow!("audit configuration: {e}"))?;
        if let Some(w) = warning {
            tracing::warn!("{w}");
        }
        let (keys, warning) = huoban_identity::vault::ConfigKeys::from_settings(&config.keys)
            .map_err(|e| anyhow::anyhow!("keys configuration: {e}"))?;
        if let Some(w) = warning {
            tracing::warn!("{w}");
        }
        let vault = huoban_identity::vault::Vault::new(Arc::new(keys));
        let identity = IdentityService::new(
            IdentityStore::new(db.clone(), vault),
            clock.clone(),
            config.identity.clone(),
        )
        .map_err(|e| anyhow::anyhow!("identity configuration: {e}"))?
        .with_audit(Arc::new(audit.clone()));
        let sealed = identity
            .seal_unencrypted_rows()
            .await
            .map_err(|e| anyhow::anyhow!("sealing personal data: {}", e.title))?;
        if sealed > 0 {
            tracing::info!(sealed, "personal data of customers from before encryption sealed");
        }
        let limiter =
            huoban_identity::limits::RateLimiter::new(config.rate_limits.clone(), clock.clone(), identity.clone());
        huoban_kit::headers::SecurityHeaders::new(&config.http.content_security_policy, config.http.hsts_max_age_secs)
            .map_err(|e| anyhow::anyhow!("http configuration: {e}"))?;
        if config.http.csrf_protection && config.http.cors_origins.iter().any(|o| o == "*") {
            tracing::warn!(
                "http.cors_origins = [\"*\"] lets pages of every site send state-changing requests; \
                 list the H5 origins instead before a cookie-signed console is served"
            );
        }
        let ledger = Ledger::start(db.clone(), clock.clone());
        let inbox = InboxService::new(db.clone(), clock.clone());
        let accounts = AccountsService::new(
            db.clone(),
            ledger.clone(),
            identity.clone(),
            inbox.clone(),
            clock.clone(),
        );
        let stepup = huoban_stepup::StepUpService::new(
            huoban_stepup::store::StepUpStore::new(db.clone()),
            identity.clone(),
            clock.clone(),
            config.step_up.clone(),
        )
        .map_err(|e| anyhow::anyhow!("step-up configuration: {e}"))?
        .with_audit(Arc::new(audit.clone()));
        // Adaptive security: transfers pass through the risk service (crates/risk).
        let risk = huoban_risk::RiskService::new(
            huoban_risk::store::RiskStore::new(db.clone()),
            ledger.clone(),
            identity.clone(),
            inbox.clone(),
            clock.clone(),
            config.risk.trust_forwarded_for,
            Duration::from_millis(config.risk.facts_max_age_ms),
        );
        if config.risk.transfer_checks {
            accounts.set_gate(Arc::new(risk.clone()));
        }
        // A step-up the risk engine asks for is proved with the customer's factors (crates/stepup).
        risk.set_step_up_verifier(Arc::new(StepUpForRisk(stepup.clone())));
        // Security decisions and step-up attempts go into the audit trail (crates/audit).
        risk.set_audit(Arc::new(audit.clone()));
        // Every capability's personal data joins the customer's export and erasure (PIPL),
        // erased in this order and identity's own part last: events before the campaign
        // rules that read them, the inbox after everything that may still write to it.
        let parts: [Arc<dyn huoban_kit::personal::PersonalData>; 7] = [
            Arc::new(accounts.clone()),
            Arc::new(huoban_engage::personal::EngageData::new(db.clone(), inbox.clone())),
            Arc::new(huoban_campaigns::personal::CampaignsData::new(db.clone())),
            Arc::new(huoban_social::personal::SocialData::new(db.clone())),
            Arc::new(huoban_stepup::personal::StepUpData::new(db.clone())),
            Arc::new(risk.clone()),
            Arc::new(inbox.clone()),
        ];
        for part in parts {
            identity.register_personal_data(part);
        }
        Ok(App {
            risk,
            config: Arc::new(config),
            db,
            clock,
            identity,
            audit,
            limiter,
            ledger,
            inbox,
            accounts,
            stepup,
            metrics: Metrics::new(),
            checkin,
        })
    }

    pub fn openapi(&self) -> utoipa::openapi::OpenApi {
        self.api_router().into_openapi()
    }

    fn api_router(&self) -> OpenApiRouter {
        OpenApiRouter::with_openapi(ApiDoc::openapi())
            .merge(
                huoban_identity::routes::router(self.identity.clone()).layer(from_fn_with_state(
                    self.risk.clone(),
                    huoban_risk::routes::sign_in_observer,
                )),
            )
            .merge(huoban_inbox::routes::router(huoban_inbox::routes::InboxState {
                inbox: self.inbox.clone(),
                identity: self.identity.clone(),
            }))
            .merge(huoban_accounts::routes::router(self.accounts.clone()))
            .merge(huoban_audit::routes::router(self.audit_state()))
            .merge(huoban_engage::router(self.engage_state()))
            .merge(huoban_social::router(self.social_state()))
            .merge(huoban_stepup::routes::router(self.stepup.clone()))
            .merge(huoban_risk::routes::router(self.risk.clone()))
            .merge(huoban_campaigns::router(self.campaigns_state()))
    }

    /// Invites, share posters and team challenges (crates/social), on the engagement
    /// services; invite links use `public_url` when it is set.
    pub fn social_state(&self) -> huoban_social::SocialState {
        huoban_social::SocialState {
            engage: self.engage_state(),
            public_url: self.config.public_url.clone(),
            campaigns: Some(Arc::new(CampaignsForSocial(self.campaigns_state()))),
        }
    }

    /// Campaigns, rules, tasks and badges (crates/campaigns), on the engagement services.
    pub fn campaigns_state(&self) -> huoban_campaigns::CampaignsState {
        huoban_campaigns::CampaignsState::new(self.engage_state())
    }

    /// The services the engagement features use, all shared with the rest of the server
    /// (one inbox, so its live push reaches every open page).
    pub fn engage_state(&self) -> huoban_engage::EngageState {
        huoban_engage::EngageState {
            db: self.db.clone(),
            clock: self.clock.clone(),
            identity: self.identity.clone(),
            accounts: self.accounts.clone(),
            ledger: self.ledger.clone(),
            inbox: self.inbox.clone(),
            campaigns: Some(Arc::new(CampaignsForEngage {
                campaigns: huoban_campaigns::campaigns::service::CampaignService::new(
                    self.db.clone(),
                    self.identity.store().clone(),
                    huoban_campaigns::campaigns::budget::Budgets::new(self.ledger.clone(), self.accounts.clone()),
                    self.clock.clone(),
                ),
                clock: self.clock.clone(),
            })),
            checkin: self.checkin.clone(),
        }
    }

    fn audit_state(&self) -> huoban_audit::routes::AuditState {
        huoban_audit::routes::AuditState {
            audit: self.audit.clone(),
            identity: self.identity.clone(),
        }
    }

    pub fn router(&self) -> Router {
        let (api, openapi) = self.api_router().split_for_parts();
        let idempotency = Idempotency {
            db: self.db.clone(),
            clock: self.clock.clone(),
            body_limit: self.config.http.body_limit_bytes,
            // Transfers keep their key in the ledger, atomically with the value they move.
            // These keep the key in their own rows, in the same transaction as their effect.
            native: Arc::from(vec![
                "/api/v1/transfers",
                "/api/v1/rewards/{id}/claims",
                "/api/v1/goals/{id}/conversions",
            ]),
        };
        let api = api
            .layer(from_fn_with_state(idempotency, idempotency::middleware))
            .layer(from_fn_with_state(
                self.audit_state(),
                huoban_audit::routes::record_staff_actions,
            ));
        let security_headers = huoban_kit::headers::SecurityHeaders::new(
            &self.config.http.content_security_policy,
            self.config.http.hsts_max_age_secs,
        )
        .unwrap_or_else(|_| {
            huoban_kit::headers::SecurityHeaders::new(huoban_kit::headers::DEFAULT_PAGE_CSP, 0)
                .expect("the default policy is a valid header")
        });
        let ops = Router::new()
            .route("/healthz", get(healthz))
            .route("/readyz", get(readyz))
            .route("/metrics", get(metrics))
            .route("/", get(index))
            .with_state(OpsState {
                db: self.db.clone(),
                metrics: self.metrics.clone(),
            });
        let request_id = HeaderName::from_static(REQUEST_ID);
        Router::new()
            .merge(api)
            .merge(SwaggerUi::new("/api/docs").url("/api/openapi.json", openapi))
            .merge(ops)
            .merge(huoban_web::Web::new(self.config.web.assets_dir.as_deref()).router())
            .fallback(|| async { StatusCode::NOT_FOUND })
            .layer(axum::extract::DefaultBodyLimit::max(self.config.http.body_limit_bytes))
            .layer(RequestBodyLimitLayer::new(self.config.http.body_limit_bytes))
            .layer(TimeoutLayer::with_status_code(
                StatusCode::REQUEST_TIMEOUT,
                Duration::from_secs(self.config.http.request_timeout_secs),
            ))
            .layer(CatchPanicLayer::new())
            .layer(from_fn_with_state(self.metrics.clone(), crate::observability::track))
            .layer(from_fn(normalize_errors))
            // Outside the routes, so paths limited by prefix are limited even before a
            // capability mounts them.
            .layer(from_fn_with_state(
                self.limiter.clone(),
                huoban_identity::limits::middleware,
            ))
            // Cross-site writes are refused before anything (rate limits, idempotency
            // keys, handlers) runs, so a refused one leaves no trace but its log line.
            .layer(from_fn_with_state(self.cross_site_guard(), huoban_kit::csrf::middleware))
            .layer(from_fn_with_state(security_headers, huoban_kit::headers::middleware))
            .layer(cors(&self.config.http.cors_origins))
            .layer(TraceLayer::new_for_http().make_span_with(|request: &axum::http::Request<_>| {
                let id = request
                    .headers()
                    .get(REQUEST_ID)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("-");
                tracing::info_span!("request", method = %request.method(), uri = %request.uri().path(), request_id = %id)
            }))
            .layer(PropagateRequestIdLayer::new(request_id.clone()))
            .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
    }

    /// The origins whose pages may change things: the H5 origins (`http.cors_origins`)
    /// and this server's public address.
    fn cross_site_guard(&self) -> Arc<huoban_kit::csrf::CrossSiteGuard> {
        let public = self.config.public_url();
        let origins = self
            .config
            .http
            .cors_origins
            .iter()
            .map(String::as_str)
            .chain(std::iter::once(public.as_str()));
        huoban_kit::csrf::CrossSiteGuard::new(
            self.config.http.csrf_protection,
            origins,
            self.config.http.csrf_allow_same_site,
        )
    }

    /// Work that runs beside the API: expired ledger holds are voided every few seconds
    /// (the expiry lives in the database, so a restart loses nothing), and stored
    /// idempotent responses are kept a day.
    fn spawn_background(&self) -> Vec<tokio::task::JoinHandle<()>> {
        let db = self.db.clone();
        let clock = self.clock.clone();
        let ledger = self.ledger.clone();
        let sweeper_clock = self.clock.clone();
        let sweeper = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(5));
            loop {
                tick.tick().await;
                match ledger.void_expired(sweeper_clock.now()).await {
                    Ok(n) if n > 0 => tracing::info!(voided = n, "expired ledger holds voided"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "voiding expired holds failed"),
                }
            }
        });
        // Balance alerts: subscribed before serving starts, so no posted transfer is missed.
        let alerts = self.accounts.spawn_alert_listener();
        // Savings goals: milestones heard from the ledger (subscribed here, before serving),
        // and the monthly reminders claimed from the database every few seconds.
        let goals = huoban_engage::goals::GoalsService::new(&self.engage_state()).spawn_background();
        // Behaviour events: ledger postings to customer accounts recorded as events
        // (subscribed here, before serving), and a sweep of the ledger for any missed.
        let events = huoban_engage::events::service::EventsService::new(&self.engage_state()).spawn_listener();
        // Rewards: settle claims whose request died between reserving stock and posting
        // the points (crates/engage/src/rewards), by the state of their ledger hold.
        let rewards = huoban_engage::rewards::service::RewardsService::new(&self.engage_state());
        let rewards = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(30));
            loop {
                tick.tick().await;
                if let Err(e) = rewards.recover_stale().await {
                    tracing::warn!(error = %e, "reward recovery failed");
                }
            }
        });
        // Audit trail: sign the chain head periodically, so a rewritten tail is detectable.
        let audit = self.audit.clone();
        let every = Duration::from_secs(self.config.audit.checkpoint_interval_secs.max(1));
        let checkpoints = tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.tick().await;
            loop {
                tick.tick().await;
                if let Err(e) = audit.checkpoint().await {
                    tracing::warn!(error = %e, "audit checkpoint failed");
                }
            }
        });
        // Adaptive security: delayed large transfers settle when due (timers in the database).
        let risk = self.risk.clone();
        let risk = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(2));
            loop {
                tick.tick().await;
                if let Err(e) = risk.settle_due().await {
                    tracing::warn!(error = %e, "settling delayed transfers failed");
                }
            }
        });
        // Personal data: erasures that stopped half-way (a crash, a capability that
        // failed) are finished here.
        let identity = self.identity.clone();
        let erasures = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(60));
            loop {
                tick.tick().await;
                match identity.resume_erasures().await {
                    Ok(n) if n > 0 => tracing::info!(finished = n, "interrupted erasures finished"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(problem = e.slug, "resuming erasures failed"),
                }
            }
        });
        // Sessions: revocations made on other nodes reach this node's session cache.
        let identity = self.identity.clone();
        let revocations = tokio::spawn(async move { identity.listen_for_revocations().await });
        // Campaign rules, tasks and badges: the `rules` consumer of the event feed.
        let rules = self.campaigns_state().rules.spawn_consumer();
        vec![
            revocations,
            risk,
            erasures,
            sweeper,
            checkpoints,
            rules,
            alerts,
            rewards,
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_secs(600));
                loop {
                    tick.tick().await;
                    let now = to_micros(clock.now());
                    match idempotency::purge(&db, now, 24 * 3600 * 1_000_000).await {
                        Ok(n) if n > 0 => tracing::info!(purged = n, "expired idempotency keys removed"),
                        Ok(_) => {}
                        Err(e) => tracing::warn!(error = %e, "idempotency purge failed"),
                    }
                }
            }),
        ]
        .into_iter()
        .chain(events)
        .chain(goals)
        // Invites and team challenges: the `invites` and `teams` event-feed consumers.
        .chain(huoban_social::spawn_consumers(&self.social_state()))
        .collect()
    }

    /// Serves on a bound listener until `shutdown` resolves, then lets in-flight requests
    /// finish for up to the configured grace period.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let background = self.spawn_background();
        let grace = Duration::from_secs(self.config.http.shutdown_grace_secs);
        let signalled = Arc::new(tokio::sync::Notify::new());
        let notify = signalled.clone();
        let service = self
            .router()
            .into_make_service_with_connect_info::<std::net::SocketAddr>();
        let server = axum::serve(listener, service).with_graceful_shutdown(async move {
            shutdown.await;
            tracing::info!("shutting down: finishing in-flight requests");
            notify.notify_one();
        });
        let result = tokio::select! {
            r = server.into_future() => r.context("serving HTTP"),
            _ = async { signalled.notified().await; tokio::time::sleep(grace).await } => {
                tracing::warn!("grace period over; closing remaining connections");
                Ok(())
            }
        };
        for task in background {
            task.abort();
        }
        self.db.close().await;
        result
    }

    pub async fn schema_status(&self) -> Result<SchemaStatus, huoban_kit::DbError> {
        self.db.schema_status(&migrations()).await
    }
}

/// Campaigns answering social: invite programmes and team challenges may only be attached
/// to a campaign that exists and has not ended.
#[derive(Debug)]
struct CampaignsForSocial(huoban_campaigns::CampaignsState);

impl huoban_social::CampaignCheck for CampaignsForSocial {
    fn check<'a>(
        &'a self,
        campaign_id: &'a str,
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<(), ApiError>> + Send + 'a>> {
        Box::pin(async move {
            use huoban_campaigns::campaigns::domain::{State, ended, unknown};
            let id = uuid::Uuid::parse_str(campaign_id).map_err(|_| unknown().with("field", "campaign_id"))?;
            let campaign = self.0.campaigns.get(id).await?;
            if campaign.state == State::Ended {
                return Err(ended()
                    .detail("a programme or challenge cannot join an ended campaign")
                    .with("field", "campaign_id"));
            }
            Ok(())
        })
    }
}

/// Campaigns answering engage: a reward or a goal conversion offer may only belong to a
/// campaign that exists and has not ended, and is usable only while that campaign is live
/// for the customer. Built on the campaign service alone (not on the campaigns state,
/// which is itself built on the engage state).
#[derive(Debug)]
struct CampaignsForEngage {
    campaigns: huoban_campaigns::campaigns::service::CampaignService,
    clock: SharedClock,
}

impl CampaignsForEngage {
    /// The campaign by the id engage holds: 404 `unknown-campaign` (on `campaign_id`) when
    /// it is not one.
    async fn row(&self, campaign_id: &str) -> Result<huoban_campaigns::campaigns::store::CampaignRow, ApiError> {
        let id = uuid::Uuid::parse_str(campaign_id)
            .map_err(|_| huoban_campaigns::campaigns::domain::unknown().with("field", "campaign_id"))?;
        self.campaigns.row(id).await.map_err(|e| e.with("field", "campaign_id"))
    }
}

impl huoban_engage::CampaignGate for CampaignsForEngage {
    fn check_open<'a>(&'a self, campaign_id: &'a str) -> huoban_engage::BoxFuture<'a, Result<(), ApiError>> {
        Box::pin(async move {
            use huoban_campaigns::campaigns::{
                domain::{State, ended},
                service::state_of,
            };
            let row = self.row(campaign_id).await?;
            if state_of(&row, self.clock.now()) == State::Ended {
                return Err(ended()
                    .detail("nothing new can join an ended campaign")
                    .with("field", "campaign_id"));
            }
            Ok(())
        })
    }

    fn live_for<'a>(
        &'a self,
        customer: uuid::Uuid,
        channel: &'a str,
    ) -> huoban_engage::BoxFuture<'a, Result<std::collections::BTreeSet<String>, ApiError>> {
        Box::pin(async move {
            Ok(self
                .campaigns
                .for_customer(customer, channel)
                .await?
                .into_iter()
                .map(|c| c.id.to_string())
                .collect())
        })
    }

    fn points_budget<'a>(
        &'a self,
        campaign_id: &'a str,
    ) -> huoban_engage::BoxFuture<'a, Result<huoban_ledger::AccountId, ApiError>> {
        Box::pin(async move {
            let row = self.row(campaign_id).await?;
            self.campaigns.points_account(&row).await
        })
    }
}

/// The step-up factors answering the risk engine: a token proved for the purpose
/// `risk-{challenge}` is consumed once, and the factor it used is reported.
#[derive(Debug)]
struct StepUpForRisk(huoban_stepup::StepUpService);

impl huoban_risk::StepUpVerifier for StepUpForRisk {
    fn consume<'a>(
        &'a self,
        customer: uuid::Uuid,
        token: &'a str,
        purpose: &'a str,
    ) -> huoban_accounts::gate::BoxFuture<'a, Result<huoban_risk::Factor, ApiError>> {
        Box::pin(async move {
            let purpose = huoban_risk::service::step_up_purpose(purpose);
            Ok(match self.0.consume(customer, token, &purpose).await? {
                huoban_stepup::Factor::Pin => huoban_risk::Factor::Pin,
                huoban_stepup::Factor::Totp | huoban_stepup::Factor::Sms => huoban_risk::Factor::Otp,
                huoban_stepup::Factor::Passkey => huoban_risk::Factor::Passkey,
            })
        })
    }
}

fn cors(origins: &[String]) -> CorsLayer {
    let layer = CorsLayer::new()
        .allow_methods([Method::GET, Method::POST, Method::PATCH, Method::PUT, Method::DELETE])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            HeaderName::from_static(idempotency::HEADER),
            HeaderName::from_static(REQUEST_ID),
            HeaderName::from_static("x-device-id"),
            HeaderName::from_static("x-geo"),
            HeaderName::from_static("x-step-up-token"),
        ])
        .expose_headers([
            HeaderName::from_static(REQUEST_ID),
            HeaderName::from_static(idempotency::REPLAYED),
        ]);
    if origins.iter().any(|o| o == "*") {
        layer.allow_origin(AllowOrigin::any())
    } else {
        let list: Vec<HeaderValue> = origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()).collect();
        layer.allow_origin(AllowOrigin::list(list))
    }
}

async fn healthz() -> impl IntoResponse {
    axum::Json(serde_json::json!({ "status": "ok" }))
}

async fn readyz(State(db): State<Db>) -> Response {
    if let Err(e) = db.ping().await {
        tracing::warn!(error = %e, "readiness: database unreachable");
        return ApiError::unavailable("The database is not reachable.").into_response();
    }
    match db.schema_status(&migrations()).await {
        Ok(status) if status.is_current() => {
            axum::Json(serde_json::json!({ "status": "ready", "database": status })).into_response()
        }
        Ok(status) => ApiError::unavailable("Database migrations are pending.")
            .with("pending", status.pending)
            .into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

async fn metrics(State(state): State<OpsState>) -> Response {
    crate::observability::metrics_response(state.metrics.render(&state.db))
}

async fn index() -> Html<&'static str> {
    Html(include_str!("index.html"))
}
