//! GitLab's probes: `/-/health` (the process answers), `/-/liveness` (not wedged) and
//! `/-/readiness` (can serve: the database answers and we are not shutting down).

use std::sync::atomic::Ordering;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde_json::json;

use crate::app::AppState;

pub async fn health() -> &'static str {
    "Doorward OK"
}

pub async fn liveness() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

pub async fn readiness(State(state): State<AppState>) -> impl IntoResponse {
    if state.shutting_down.load(Ordering::SeqCst) {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "failed", "message": "shutting down"})),
        );
    }
    match tokio::time::timeout(std::time::Duration::from_secs(3), state.store.ping()).await {
        Ok(Ok(())) => (
            StatusCode::OK,
            Json(json!({"status": "ok", "db_check": [{"status": "ok"}]})),
        ),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness: database check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(
                    json!({"status": "failed", "db_check": [{"status": "failed", "message": "database unavailable"}]}),
                ),
            )
        }
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(
                json!({"status": "failed", "db_check": [{"status": "failed", "message": "database timed out"}]}),
            ),
        ),
    }
}
