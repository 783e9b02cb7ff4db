//! The HTTP server of `serve` and `demo`: the JSON lookup API and health checks (DESIGN.md §3.4).

use std::future::Future;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use tokio::net::TcpListener;

use crate::lookup::{Finder, Outcome};

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    finder: Arc<Finder>,
}

/// The routes.
pub fn router(finder: Arc<Finder>) -> Router {
    Router::new()
        .route("/api/v1/locate", get(locate))
        .route("/healthz", get(healthz))
        .with_state(AppState { finder })
}

/// Serves `router` on `listener` until `shutdown` completes, then lets requests in flight finish.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}

#[derive(Debug, Deserialize)]
struct LocateParams {
    q: Option<String>,
}

/// An error answer: `{"error": "..."}` with a status.
fn error(status: StatusCode, message: String) -> Response {
    (status, Json(serde_json::json!({ "error": message }))).into_response()
}

/// `GET /api/v1/locate?q=QUERY`: the `find --json` document. 400 for a bad query, 502 when every
/// source failed (the body still lists the failures).
async fn locate(State(state): State<AppState>, Query(params): Query<LocateParams>) -> Response {
    let Some(query) = params.q else {
        return error(
            StatusCode::BAD_REQUEST,
            "missing q: ask /api/v1/locate?q=USERNAME".to_owned(),
        );
    };
    match state.finder.find(&query).await {
        Err(err) => error(StatusCode::BAD_REQUEST, err.to_string()),
        Ok(report) => {
            let status = match state.finder.outcome(&report) {
                Outcome::Found | Outcome::NotFound => StatusCode::OK,
                Outcome::AllSourcesFailed => StatusCode::BAD_GATEWAY,
            };
            (status, Json(report)).into_response()
        }
    }
}

/// `GET /healthz`: the process is up.
async fn healthz() -> &'static str {
    "ok\n"
}
