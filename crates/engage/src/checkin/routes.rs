//! (being built)

use utoipa_axum::router::OpenApiRouter;

use crate::EngageState;

pub fn router(state: EngageState) -> OpenApiRouter {
    OpenApiRouter::new().with_state(state)
}
