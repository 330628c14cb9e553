//! Inbox endpoints: list, unread count, mark read, and the live stream.

use std::{convert::Infallible, time::Duration};

use axum::{
    extract::{FromRef, State},
    response::sse::{Event, KeepAlive, Sse},
};
use futures::Stream;
use huoban_identity::{CustomerAuth, IdentityService};
use huoban_kit::{ApiError, ApiJson, ApiQuery, Page, PageQuery};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast::error::RecvError;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::{InboxService, Message};

#[derive(Debug, Clone, FromRef)]
pub struct InboxState {
    pub inbox: InboxService,
    pub identity: IdentityService,
}

pub fn router(state: InboxState) -> OpenApiRouter {
    OpenApiRouter::new()
        .routes(routes!(list_messages))
        .routes(routes!(unread_count))
        .routes(routes!(mark_read))
        .routes(routes!(stream))
        .with_state(state)
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct InboxQuery {
    /// Only unread messages.
    #[serde(default)]
    pub unread: bool,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct UnreadCount {
    pub unread: i64,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MarkRead {
    /// Messages to mark read.
    #[serde(default)]
    pub message_ids: Option<Vec<Uuid>>,
    /// Mark every message read.
    #[serde(default)]
    pub all: bool,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Marked {
    pub marked: u64,
}

/// The signed-in customer's messages, newest first.
#[utoipa::path(get, path = "/api/v1/inbox", tag = "inbox", security(("bearer" = [])), params(InboxQuery),
    responses((status = 200, body = Page<Message>), (status = 401, body = huoban_kit::problem::Problem)))]
async fn list_messages(
    State(s): State<InboxService>,
    auth: CustomerAuth,
    ApiQuery(q): ApiQuery<InboxQuery>,
) -> Result<ApiJson<Page<Message>>, ApiError> {
    let page = PageQuery {
        limit: q.limit,
        cursor: q.cursor,
    };
    Ok(ApiJson(
        s.list(auth.customer_id, q.unread, page.after()?, page.limit()?).await?,
    ))
}

/// How many messages are unread (the badge on the inbox icon).
#[utoipa::path(get, path = "/api/v1/inbox/unread-count", tag = "inbox", security(("bearer" = [])),
    responses((status = 200, body = UnreadCount)))]
async fn unread_count(State(s): State<InboxService>, auth: CustomerAuth) -> Result<ApiJson<UnreadCount>, ApiError> {
    Ok(ApiJson(UnreadCount {
        unread: s.unread_count(auth.customer_id).await?,
    }))
}

/// Mark messages read: `{"message_ids": [...]}` or `{"all": true}`.
#[utoipa::path(post, path = "/api/v1/inbox/read", tag = "inbox", security(("bearer" = [])), request_body = MarkRead,
    responses((status = 200, body = Marked), (status = 404, description = "unknown-message", body = huoban_kit::problem::Problem),
              (status = 422, body = huoban_kit::problem::Problem)))]
async fn mark_read(
    State(s): State<InboxService>,
    auth: CustomerAuth,
    ApiJson(body): ApiJson<MarkRead>,
) -> Result<ApiJson<Marked>, ApiError> {
    let marked = match (body.all, body.message_ids.as_deref()) {
        (true, None) => s.mark_read(auth.customer_id, None).await?,
        (false, Some(ids)) => s.mark_read(auth.customer_id, Some(ids)).await?,
        _ => return Err(ApiError::validation("give either message_ids or all: true")),
    };
    Ok(ApiJson(Marked { marked }))
}

/// Live messages as Server-Sent Events (`event: message`, JSON data). Browsers'
/// `EventSource` cannot send headers, so this endpoint also takes the session token as
/// `?access_token=`.
#[utoipa::path(get, path = "/api/v1/inbox/stream", tag = "inbox", security(("bearer" = [])),
    responses((status = 200, content_type = "text/event-stream", description = "A stream of `message` events")))]
async fn stream(
    State(s): State<InboxService>,
    auth: CustomerAuth,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let receiver = s.hub().subscribe(auth.customer_id);
    let events = futures::stream::unfold(receiver, |mut rx| async move {
        let event = match rx.recv().await {
            Ok(message) => Event::default()
                .event("message")
                .id(message.id.to_string())
                .json_data(&message)
                .unwrap_or_else(|_| Event::default().comment("unencodable message")),
            // A slow page missed some; tell it to reload the list.
            Err(RecvError::Lagged(_)) => Event::default().event("resync").data("{}"),
            Err(RecvError::Closed) => return None,
        };
        Some((Ok(event), rx))
    });
    Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}
