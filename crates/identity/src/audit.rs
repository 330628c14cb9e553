//! The hook through which identity reports what must go into the audit trail: staff looking
//! at customer data, and sign-ins that succeeded or failed. Identity does not know how the
//! trail is kept; `huoban-audit` implements [`AuditSink`] and the server plugs it in with
//! [`crate::IdentityService::with_audit`]. Events carry ids only, never personal data in
//! clear (no phone numbers, names or passwords).

use std::{fmt, future::Future, pin::Pin};

/// Who did something, as the audit trail records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActorKind {
    Staff,
    Customer,
    /// The server itself (background work, the command line).
    System,
    /// Someone not (yet) signed in, e.g. a failed sign-in.
    Anonymous,
}

impl ActorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ActorKind::Staff => "staff",
            ActorKind::Customer => "customer",
            ActorKind::System => "system",
            ActorKind::Anonymous => "anonymous",
        }
    }
}

/// One thing to record.
#[derive(Debug, Clone)]
pub struct AuditEvent {
    pub actor_kind: ActorKind,
    pub actor_id: Option<String>,
    /// Dotted verb, e.g. `customers.view`, `session.sign_in`, `session.sign_in_failed`.
    pub action: String,
    /// What it was done to, e.g. `customer:<uuid>`.
    pub subject: Option<String>,
    /// Further facts as JSON; ids and codes only.
    pub details: serde_json::Value,
}

pub type SinkFuture<'a> = Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>>;

/// Where audit events go. Implemented by `huoban_audit::AuditLog`.
pub trait AuditSink: Send + Sync + fmt::Debug {
    fn append(&self, event: AuditEvent) -> SinkFuture<'_>;
}
