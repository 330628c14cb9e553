//! Team challenge endpoints. Handlers only translate between HTTP and [`TeamsService`]:
//! staff routes need `ManageCampaigns`, customer routes a customer session.

use axum::{
    extract::{FromRef, State},
    http::StatusCode,
};
use huoban_identity::{CustomerAuth, IdentityService, Permission, StaffAuth};
use huoban_kit::{ApiError, ApiJson, ApiPath, ApiQuery, Page, PageQuery, problem::Problem};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::service::{
    ChallengeView, JoinRequest, LeaderboardView, NewChallengeRequest, NewTeamRequest, TeamView, TeamsService,
};
use crate::SocialState;

pub const TAG: &str = "social";

impl FromRef<TeamsService> for IdentityService {
    fn from_ref(s: &TeamsService) -> Self {
        s.state().engage.identity.clone()
    }
}

pub fn router(state: SocialState) -> OpenApiRouter {
    OpenApiRouter::new()
        .routes(routes!(staff_create, staff_list))
        .routes(routes!(open_challenges))
        .routes(routes!(create_team))
        .routes(routes!(join))
        .routes(routes!(team))
        .routes(routes!(leaderboard))
        .with_state(TeamsService::new(state))
}

/// Create a team challenge: the counted event, the shared target, team size (2–10), the
/// prize for every member of a team that reaches the target, and the period.
#[utoipa::path(post, path = "/api/v1/staff/challenges", tag = TAG, security(("bearer" = [])),
    request_body = NewChallengeRequest,
    responses((status = 201, body = ChallengeView),
              (status = 401, description = "unauthenticated", body = Problem),
              (status = 403, description = "permission-denied, staff-only", body = Problem),
              (status = 422, description = "validation (with `field`), invalid-body", body = Problem)))]
#[tracing::instrument(skip_all, fields(staff = %auth.staff_id))]
async fn staff_create(
    State(s): State<TeamsService>,
    auth: StaffAuth,
    ApiJson(body): ApiJson<NewChallengeRequest>,
) -> Result<(StatusCode, ApiJson<ChallengeView>), ApiError> {
    auth.require(Permission::ManageCampaigns)?;
    Ok((
        StatusCode::CREATED,
        ApiJson(s.create_challenge(auth.staff_id, body).await?),
    ))
}

/// Every team challenge, newest first.
#[utoipa::path(get, path = "/api/v1/staff/challenges", tag = TAG, security(("bearer" = [])),
    params(PageQuery),
    responses((status = 200, body = Page<ChallengeView>),
              (status = 401, description = "unauthenticated", body = Problem),
              (status = 403, description = "permission-denied, staff-only", body = Problem)))]
#[tracing::instrument(skip_all, fields(staff = %auth.staff_id))]
async fn staff_list(
    State(s): State<TeamsService>,
    auth: StaffAuth,
    ApiQuery(page): ApiQuery<PageQuery>,
) -> Result<ApiJson<Page<ChallengeView>>, ApiError> {
    auth.require(Permission::ManageCampaigns)?;
    Ok(ApiJson(s.challenges(&page, None).await?))
}

/// Challenges not ended yet, newest first, each with your team if you have one.
#[utoipa::path(get, path = "/api/v1/challenges", tag = TAG, security(("bearer" = [])),
    params(PageQuery),
    responses((status = 200, body = Page<ChallengeView>),
              (status = 401, description = "unauthenticated", body = Problem),
              (status = 403, description = "customers-only", body = Problem)))]
#[tracing::instrument(skip_all, fields(customer = %auth.customer_id))]
async fn open_challenges(
    State(s): State<TeamsService>,
    auth: CustomerAuth,
    ApiQuery(page): ApiQuery<PageQuery>,
) -> Result<ApiJson<Page<ChallengeView>>, ApiError> {
    Ok(ApiJson(s.challenges(&page, Some(auth.customer_id)).await?))
}

/// Create a team in a challenge; you are its captain and first member. Share its
/// `join_code` with friends.
#[utoipa::path(post, path = "/api/v1/challenges/{id}/teams", tag = TAG, security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The challenge")),
    request_body = NewTeamRequest,
    responses((status = 201, body = TeamView),
              (status = 401, description = "unauthenticated", body = Problem),
              (status = 403, description = "customers-only", body = Problem),
              (status = 404, description = "unknown-challenge", body = Problem),
              (status = 409, description = "already-in-team, challenge-ended", body = Problem),
              (status = 422, description = "validation (team name)", body = Problem)))]
#[tracing::instrument(skip_all, fields(customer = %auth.customer_id))]
async fn create_team(
    State(s): State<TeamsService>,
    auth: CustomerAuth,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<NewTeamRequest>,
) -> Result<(StatusCode, ApiJson<TeamView>), ApiError> {
    Ok((
        StatusCode::CREATED,
        ApiJson(s.create_team(auth.customer_id, id, &body.name).await?),
    ))
}

/// Join a friend's team with its code.
#[utoipa::path(post, path = "/api/v1/teams/join", tag = TAG, security(("bearer" = [])),
    request_body = JoinRequest,
    responses((status = 201, body = TeamView),
              (status = 401, description = "unauthenticated", body = Problem),
              (status = 403, description = "customers-only", body = Problem),
              (status = 404, description = "unknown-team", body = Problem),
              (status = 409, description = "team-full, already-in-team, team-completed, challenge-ended", body = Problem)))]
#[tracing::instrument(skip_all, fields(customer = %auth.customer_id))]
async fn join(
    State(s): State<TeamsService>,
    auth: CustomerAuth,
    ApiJson(body): ApiJson<JoinRequest>,
) -> Result<(StatusCode, ApiJson<TeamView>), ApiError> {
    Ok((
        StatusCode::CREATED,
        ApiJson(s.join(auth.customer_id, &body.code).await?),
    ))
}

/// A team: progress toward the shared target and every member's contribution.
#[utoipa::path(get, path = "/api/v1/teams/{id}", tag = TAG, security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The team")),
    responses((status = 200, body = TeamView),
              (status = 401, description = "unauthenticated", body = Problem),
              (status = 403, description = "customers-only", body = Problem),
              (status = 404, description = "unknown-team", body = Problem)))]
#[tracing::instrument(skip_all, fields(customer = %auth.customer_id))]
async fn team(
    State(s): State<TeamsService>,
    auth: CustomerAuth,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<ApiJson<TeamView>, ApiError> {
    Ok(ApiJson(s.team_view(&id.to_string(), auth.customer_id).await?))
}

/// The challenge's teams, best first: most progress, then the first to complete.
#[utoipa::path(get, path = "/api/v1/challenges/{id}/leaderboard", tag = TAG, security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The challenge")),
    responses((status = 200, body = LeaderboardView),
              (status = 401, description = "unauthenticated", body = Problem),
              (status = 403, description = "customers-only", body = Problem),
              (status = 404, description = "unknown-challenge", body = Problem)))]
#[tracing::instrument(skip_all, fields(customer = %auth.customer_id))]
async fn leaderboard(
    State(s): State<TeamsService>,
    auth: CustomerAuth,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<ApiJson<LeaderboardView>, ApiError> {
    Ok(ApiJson(s.leaderboard(id, auth.customer_id).await?))
}
