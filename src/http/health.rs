//! GitLab's probes: `/-/health` (the process answers), `/-/liveness` (not wedged) and
//! `/-/readiness` (can serve: the database answers and we are not shutting down); and the
//! Prometheus endpoint `/-/metrics`.

use std::sync::atomic::Ordering;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde_json::json;

use crate::state::AppState;

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

/// `GET /-/metrics` in the Prometheus text format.
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let (open, idle) = state.store.pool_figures();
    let backend = match state.store.backend() {
        crate::store::Backend::Sqlite => "sqlite",
        crate::store::Backend::Postgres => "postgres",
    };
    state.metrics.with(|| {
        metrics::gauge!("db_pool_connections", "backend" => backend, "state" => "open")
            .set(f64::from(open));
        metrics::gauge!("db_pool_connections", "backend" => backend, "state" => "idle")
            .set(idle as f64);
        metrics::gauge!("db_pool_max_connections", "backend" => backend)
            .set(f64::from(state.config.db_max_connections));
    });
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
}
