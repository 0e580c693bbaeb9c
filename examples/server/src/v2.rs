//! The Open Inference Protocol (V2) over REST.

use axum::Router;

use crate::routes::AppState;

/// The V2 routes.
pub fn routes() -> Router<AppState> {
    Router::new()
}
