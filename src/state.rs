//! `AppState`: everything a handler may need, built once per server. It sits below the
//! handlers (they depend on it) and below the router (`app`), which depends on the handlers.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use crate::config::Config;
use crate::domain::clock::Clock;
use crate::domain::net::Reach;
use crate::domain::password::PasswordHasher;
use crate::domain::secret::MasterKey;
use crate::http::metrics::Metrics;
use crate::http::outgoing::{OutgoingClient, OutgoingOptions};
use crate::oauth::client_id_metadata::ClientIdMetadataDocuments;
use crate::oidc::keys::KeyCache;
use crate::store::Store;
use crate::web::templates::Templates;

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
    /// Subkey binding a consent decision to the page shown (`oauth::consent`).
    pub consent_key: Arc<[u8; 32]>,
    /// Subkey encrypting TOTP secrets at rest (AES-256-GCM), derived from the master key.
    pub totp_key: Arc<[u8; 32]>,
    pub templates: Arc<Templates>,
    /// Makes and queues mail (`mail`); `mail::delivery` sends it.
    pub mailer: Arc<crate::mail::Mailer>,
    /// The OpenID Connect signing keys, as last read from the database (`oidc::keys`).
    pub signing_keys: Arc<KeyCache>,
    pub metrics: Arc<Metrics>,
    /// For requests to URLs others registered (back-channel logout).
    pub outgoing: OutgoingClient,
    /// Fetches and caches client ID metadata documents; `None` when they are off
    /// (`DOORWARD_CLIENT_ID_METADATA_DOCUMENTS=false`).
    pub client_id_metadata: Option<Arc<ClientIdMetadataDocuments>>,
    /// JWK Sets fetched from clients' `jwks_uri` (`oauth::client_keys`).
    pub jwks_cache: Arc<crate::oauth::client_keys::JwksCache>,
    /// RFC 7591 registrations per client address and minute (`oauth::registration`).
    pub registration_limit: Arc<crate::http::rate_limit::RateLimit>,
    /// New client-ID-metadata-document clients per minute on this node, all addresses
    /// together (`oauth::metadata_document_clients`).
    pub metadata_client_limit: Arc<crate::http::rate_limit::RateLimit>,
    /// Sign-ups per client address and minute (`web::sign_up`).
    pub sign_up_limit: Arc<crate::http::rate_limit::RateLimit>,
    /// Mailed-link requests (password reset, confirmation resend) per client address and
    /// per account and minute (`web::password_reset`, `web::confirmation`).
    pub mail_link_address_limit: Arc<crate::http::rate_limit::RateLimit>,
    pub mail_link_account_limit: Arc<crate::http::rate_limit::RateLimit<i64>>,
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
            hasher: PasswordHasher::new(config.password_hash_concurrency)?,
            csrf_key: Arc::new(master_key.derive("csrf")),
            consent_key: Arc::new(master_key.derive("consent-binding")),
            totp_key: Arc::new(master_key.derive("totp-encryption")),
            templates: Arc::new(Templates::load()?),
            mailer: Arc::new(crate::mail::Mailer::new(&config)?),
            signing_keys: Arc::new(KeyCache::new(master_key, config.id_token_lifetime)),
            metrics: Arc::new(Metrics::new()),
            outgoing: OutgoingClient::with_options(OutgoingOptions {
                reach: match config.backchannel_logout_allow_loopback {
                    true => Reach::Any,
                    false => Reach::Global,
                },
                extra_roots: config.outbound_ca_file.clone(),
                ..OutgoingOptions::default()
            })?,
            client_id_metadata: ClientIdMetadataDocuments::from_config(&config)?,
            jwks_cache: Arc::default(),
            registration_limit: Arc::new(crate::http::rate_limit::RateLimit::per_minute(
                crate::oauth::registration::PER_ADDRESS_PER_MINUTE,
            )),
            metadata_client_limit: Arc::new(crate::http::rate_limit::RateLimit::per_minute(
                crate::oauth::metadata_document_clients::NEW_CLIENTS_PER_MINUTE,
            )),
            sign_up_limit: Arc::new(crate::http::rate_limit::RateLimit::per_minute(5)),
            // GitLab-like allowances: a few tries per minute, far below a mail flood.
            mail_link_address_limit: Arc::new(crate::http::rate_limit::RateLimit::per_minute(10)),
            mail_link_account_limit: Arc::new(crate::http::rate_limit::RateLimit::per_minute(3)),
            config: Arc::new(config),
            store,
            clock,
            shutting_down: Arc::new(AtomicBool::new(false)),
        })))
    }
}
