//! Builds the server: routes and layers over the handlers; and runs it until a shutdown
//! signal.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use tokio::net::TcpListener;
use tower_http::catch_panic::CatchPanicLayer;

use crate::bootstrap;
use crate::config::{Config, ConnectionSettings};
use crate::domain::clock::Clock;
use crate::http::body::MAX_BODY_BYTES;
use crate::state::AppState;

/// All routes with their layers.
pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(crate::http::routes())
        .merge(crate::web::routes(state.clone()))
        .merge(crate::oauth::routes(state.clone()))
        .merge(crate::oidc::routes(state.clone()))
        .nest(
            "/api/v4",
            crate::api::routes().layer(axum::middleware::from_fn_with_state(
                state.clone(),
                crate::oauth::protected_resource::advertise,
            )),
        )
        // A route layer runs after routing, so it sees which route matched.
        .route_layer(axum::middleware::from_fn_with_state(
            state.metrics.clone(),
            crate::http::metrics::track,
        ))
        .fallback(crate::web::not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            around_routes,
        ))
        .layer(crate::http::trace_layer())
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(CatchPanicLayer::custom(crate::http::panic_response))
        .with_state(state)
}

/// What every request passes through on its way in, and every response on its way out, as
/// one layer (each layer costs every request a boxed future, issue 15): the request's
/// deadline ([`request_deadline`]) over reading its body completely
/// ([`buffer_request_body`]) and answering it, then on the way out error pages rendered
/// (`web::error::render_error_page`) and the security headers set
/// (`http::headers::apply_security_headers`), in that order.
async fn around_routes(
    axum::extract::State(state): axum::extract::State<AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let oauth = req.uri().path().starts_with("/oauth/");
    let limits = state.config.connections;
    let res = request_deadline(limits, req, |req| buffer_request_body(limits, req, next)).await;
    let res = crate::web::error::render_error_page(&state, res);
    crate::http::headers::apply_security_headers(&state, oauth, res)
}

/// Refuses, before routing, a request target that is not UTF-8 or holds a control
/// character once percent-decoded (a `%00` in a query parameter would otherwise reach the
/// database, which PostgreSQL refuses with an error), then reads every request body
/// completely. A handler that ignores a body (python-gitlab sends `{}` with
/// `POST /users/:id/block`) would otherwise leave bytes unread, and hyper closes such a
/// keep-alive connection when they arrive late: the client's next request on it then fails.
/// Bodies are small (64 KiB at most), so one copy is cheap. A body that has not arrived
/// within `DOORWARD_BODY_READ_TIMEOUT_MS` is answered 408 (slowloris sending its body a
/// byte at a time). Every refusal is in the format of the endpoint the request was sent to.
async fn buffer_request_body(
    limits: ConnectionSettings,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use crate::http::body::BodyError;
    use crate::http::sink::Sink;
    let (parts, body) = req.into_parts();
    let sink = Sink::for_path(parts.uri.path());
    if let Err(e) = crate::http::body::check_target(&parts.uri) {
        return sink.refuse(e);
    }
    let read = axum::body::to_bytes(body, MAX_BODY_BYTES);
    let Ok(read) =
        tokio::time::timeout(Duration::from_millis(limits.body_read_timeout_ms), read).await
    else {
        return close_after(sink.refuse(BodyError::TimedOut));
    };
    match read {
        Ok(bytes) => {
            next.run(axum::extract::Request::from_parts(
                parts,
                axum::body::Body::from(bytes),
            ))
            .await
        }
        Err(e) => {
            // Over the limit, or the body could not be read at all (cut short, timed out).
            let too_large = std::error::Error::source(&e)
                .is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
            sink.refuse(if too_large {
                BodyError::TooLarge
            } else {
                BodyError::Malformed(format!("the request body could not be read: {e}"))
            })
        }
    }
}

/// Answers 503 (in the endpoint's format) to a request not answered within
/// `DOORWARD_REQUEST_TIMEOUT_MS` of its headers, body read included, so no request holds
/// its connection and its resources for longer.
async fn request_deadline<F>(
    limits: ConnectionSettings,
    req: axum::extract::Request,
    answer: impl FnOnce(axum::extract::Request) -> F,
) -> axum::response::Response
where
    F: Future<Output = axum::response::Response>,
{
    let sink = crate::http::sink::Sink::for_path(req.uri().path());
    let deadline = Duration::from_millis(limits.request_timeout_ms);
    match tokio::time::timeout(deadline, answer(req)).await {
        Ok(res) => res,
        Err(_) => {
            tracing::warn!("a request outlived its deadline");
            close_after(sink.refuse(crate::http::body::BodyError::Overdue))
        }
    }
}

/// The connection may hold unread bytes of the refused request: close it after answering.
fn close_after(mut res: axum::response::Response) -> axum::response::Response {
    res.headers_mut().insert(
        axum::http::header::CONNECTION,
        axum::http::HeaderValue::from_static("close"),
    );
    res
}

/// A bound, ready-to-run server.
pub struct Server {
    listener: TcpListener,
    state: AppState,
}

impl Server {
    /// Prepares storage (data directory, master key, migrations, the root account), then
    /// binds the listener.
    pub async fn build(mut config: Config, clock: Clock) -> anyhow::Result<Server> {
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", config.listen))?;
        let local = listener.local_addr()?;
        // With port 0 (tests), the default external URL names the port actually bound.
        if config.external_url == format!("http://{}", config.listen) {
            config.external_url = format!("http://{local}");
        }
        config.listen = local;
        let mut prepared = bootstrap::prepare(&config, &clock).await?;
        if config.token_cache_ttl > 0 {
            prepared.store.enable_token_cache(
                Duration::from_secs(config.token_cache_ttl),
                Duration::from_millis(config.cache_poll_interval_ms),
            );
        }
        let state = AppState::new(config, prepared.store, clock, &prepared.master_key)?;
        Ok(Server { listener, state })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .unwrap_or(self.state.config.listen)
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` completes, then lets in-flight requests finish.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let state = self.state.clone();
        let flag = state.shutting_down.clone();
        let maintenance = tokio::spawn(bootstrap::maintenance_loop(state.clone()));
        let invalidations = tokio::spawn(state.store.clone().follow_invalidations());
        let wal = tokio::spawn(state.store.clone().keep_wal_small());
        let logouts = tokio::spawn(crate::oidc::backchannel::deliver_forever(state.clone()));
        let mail = tokio::spawn(crate::mail::delivery::deliver_forever(state.clone()));
        let metrics = tokio::spawn(state.metrics.clone().upkeep_forever());
        tracing::info!(addr = %self.local_addr(), external_url = %state.config.external_url, "doorward is listening");
        let settings = state.config.connections;
        crate::http::connections::serve(
            self.listener,
            router(state.clone()),
            settings,
            async move {
                shutdown.await;
                flag.store(true, Ordering::SeqCst);
                tracing::info!("shutting down: finishing in-flight requests");
            },
        )
        .await;
        maintenance.abort();
        invalidations.abort();
        wal.abort();
        logouts.abort();
        mail.abort();
        metrics.abort();
        state.store.close().await;
        tracing::info!("stopped");
        Ok(())
    }
}

/// Resolves on SIGTERM or SIGINT (Ctrl-C).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
