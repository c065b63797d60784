//! Cross-cutting HTTP: health checks, metrics, security headers, request logging, client
//! addresses and body parsing shared by the web and API faces.

pub mod body;
pub mod client_ip;
pub mod connections;
pub mod cors;
pub mod headers;
pub mod health;
pub mod metrics;
pub mod outgoing;
pub mod rate_limit;
pub mod sink;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, Response, StatusCode, header};
use axum::routing::get;
use tower_http::classify::{ServerErrorsAsFailures, SharedClassifier};
use tower_http::trace::TraceLayer;
use tracing::Span;

use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/-/health", get(health::health))
        .route("/-/liveness", get(health::liveness))
        .route("/-/readiness", get(health::readiness))
        .route("/-/metrics", get(health::metrics))
}

type MakeSpan = fn(&Request<Body>) -> Span;

/// Request logging. The span names the method and the path only: query strings can carry
/// tokens (`access_token`, `private_token`) and must never reach the log.
pub fn trace_layer() -> TraceLayer<SharedClassifier<ServerErrorsAsFailures>, MakeSpan> {
    fn make_span(req: &Request<Body>) -> Span {
        tracing::info_span!("request", method = %req.method(), path = %req.uri().path())
    }
    TraceLayer::new_for_http().make_span_with(make_span as MakeSpan)
}

/// A panic in a handler becomes a plain 500, never a dropped connection.
pub fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response<axum::body::Body> {
    tracing::error!("a request handler panicked");
    let mut res = Response::new(axum::body::Body::from("500 Internal Server Error"));
    *res.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    res
}
