//! Builds the server: state, routes, layers; and runs it until a shutdown signal.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use tokio::net::TcpListener;
use tower_http::catch_panic::CatchPanicLayer;

use crate::bootstrap;
use crate::config::Config;
use crate::domain::clock::Clock;
use crate::domain::password::PasswordHasher;
use crate::domain::secret::MasterKey;
use crate::http::metrics::Metrics;
use crate::oidc::keys::KeyCache;
use crate::store::Store;
use crate::web::templates::Templates;

/// Largest request body accepted (forms and JSON are small; this stops memory abuse).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Everything a handler may need. No globals: tests run several of these in one process.
///
/// One `Arc` around it all: the state is cloned for every middleware and extractor of
/// every request, and one reference count is cheaper than one per field.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// The fields of [`AppState`].
pub struct Shared {
    pub config: Arc<Config>,
    pub store: Store,
    pub clock: Clock,
    pub hasher: PasswordHasher,
    /// Subkey for CSRF tokens, derived from the master key.
    pub csrf_key: Arc<[u8; 32]>,
    /// Subkey encrypting TOTP secrets at rest (AES-256-GCM), derived from the master key.
    pub totp_key: Arc<[u8; 32]>,
    pub templates: Arc<Templates>,
    /// The OpenID Connect signing keys, as last read from the database (`oidc::keys`).
    pub signing_keys: Arc<KeyCache>,
    pub metrics: Arc<Metrics>,
    /// Set when shutdown starts, so readiness turns 503 and load balancers drain us.
    pub shutting_down: Arc<AtomicBool>,
}

impl AppState {
    pub fn new(
        config: Config,
        store: Store,
        clock: Clock,
        master_key: &MasterKey,
    ) -> anyhow::Result<AppState> {
        Ok(AppState(Arc::new(Shared {
            hasher: PasswordHasher::new(config.password_hash_concurrency),
            csrf_key: Arc::new(master_key.derive("csrf")),
            totp_key: Arc::new(master_key.derive("totp-encryption")),
            templates: Arc::new(Templates::load()?),
            signing_keys: Arc::new(KeyCache::new(master_key, config.id_token_lifetime)),
            metrics: Arc::new(Metrics::new()),
            config: Arc::new(config),
            store,
            clock,
            shutting_down: Arc::new(AtomicBool::new(false)),
        })))
    }
}

/// All routes with their layers.
pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(crate::http::routes())
        .merge(crate::web::routes(state.clone()))
        .merge(crate::oauth::routes(state.clone()))
        .merge(crate::oidc::routes(state.clone()))
        .nest("/api/v4", crate::api::routes())
        // A route layer runs after routing, so it sees which route matched.
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::http::metrics::track,
        ))
        .fallback(crate::web::not_found)
        .layer(axum::middleware::from_fn(buffer_request_body))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::web::error::render_error_pages,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::http::headers::security_headers,
        ))
        .layer(crate::http::trace_layer())
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(CatchPanicLayer::custom(crate::http::panic_response))
        .with_state(state)
}

/// Reads every request body completely before routing. A handler that ignores a body
/// (python-gitlab sends `{}` with `POST /users/:id/block`) would otherwise leave bytes
/// unread, and hyper closes such a keep-alive connection when they arrive late: the
/// client's next request on it then fails. Bodies are small (64 KiB at most), so one copy
/// is cheap; a larger one is refused here, in the format of the endpoint it was sent to.
async fn buffer_request_body(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let (parts, body) = req.into_parts();
    match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(bytes) => {
            next.run(axum::extract::Request::from_parts(
                parts,
                axum::body::Body::from(bytes),
            ))
            .await
        }
        Err(_) => {
            let path = parts.uri.path();
            let too_large = crate::http::body::BodyError::TooLarge;
            if path.starts_with("/api/") {
                crate::api::error::ApiError::Body(too_large).into_response()
            } else if matches!(
                path,
                "/oauth/token" | "/oauth/revoke" | "/oauth/introspect" | "/oauth/authorize_device"
            ) {
                let body = serde_json::json!({"error": "invalid_request", "error_description": too_large.to_string()});
                (axum::http::StatusCode::PAYLOAD_TOO_LARGE, axum::Json(body)).into_response()
            } else {
                crate::web::WebError::Body {
                    status: too_large.status(),
                    message: too_large.to_string(),
                }
                .into_response()
            }
        }
    }
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
        tracing::info!(addr = %self.local_addr(), external_url = %state.config.external_url, "doorward is listening");
        let app = router(state.clone()).into_make_service_with_connect_info::<SocketAddr>();
        axum::serve(self.listener, app)
            .with_graceful_shutdown(async move {
                shutdown.await;
                flag.store(true, Ordering::SeqCst);
                tracing::info!("shutting down: finishing in-flight requests");
            })
            .await?;
        maintenance.abort();
        invalidations.abort();
        wal.abort();
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

/// How long the maintenance loop sleeps between purges.
pub const MAINTENANCE_INTERVAL: Duration = Duration::from_secs(300);
