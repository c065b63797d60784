//! Requests Doorward makes to URLs that others chose (back-channel logout URIs, client ID
//! metadata documents; later `jwks_uri`). Such a URL must not turn Doorward against its own
//! network (SSRF), so:
//! - names are resolved by a resolver of ours that keeps only the addresses the client's
//!   [`Reach`] allows (globally routable ones, `domain::net::is_global`, unless an instance
//!   setting adds loopback or everything), and an IP literal is checked the same way before
//!   anything is sent. The address connected to is the one checked, so a name that changes
//!   its answer between two lookups (DNS rebinding) gains nothing;
//! - proxies come from `HTTPS_PROXY`/`HTTP_PROXY`/`ALL_PROXY` and `NO_PROXY` (reqwest's
//!   reading of them); the proxies' own names are resolved without the filter (a proxy is
//!   usually on the local network), and the proxy then decides where it connects. So when
//!   a proxy will carry a request (the same matcher reqwest uses says so), the target's
//!   name is resolved here first, and refused if any of its addresses is out of reach;
//! - no redirect is followed, a connection must open within 5 s and the whole exchange end
//!   within 10 s (by default), and a body is read only up to a bound;
//! - TLS is verified against the system's roots plus, optionally, the certificates of
//!   `DOORWARD_OUTBOUND_CA_FILE` (a private CA, or a test's).

mod guard;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use reqwest::header::{ACCEPT, HeaderMap};

use crate::domain::net::Reach;
use guard::Guard;

#[derive(Debug, thiserror::Error)]
pub enum OutgoingError {
    #[error("{0} is not a globally routable address")]
    LocalAddress(String),
    #[error("invalid URL: {0}")]
    Url(String),
    #[error("cannot resolve {host}: {message}")]
    Resolve { host: String, message: String },
    #[error("no complete answer in time")]
    Timeout,
    #[error("the answer is larger than {0} bytes")]
    TooLarge(usize),
    #[error("{}", error_chain(.0))]
    Http(#[from] reqwest::Error),
}

/// How an [`OutgoingClient`] may connect.
#[derive(Clone, Debug)]
pub struct OutgoingOptions {
    pub reach: Reach,
    /// A PEM file of trust anchors added to the system's (`DOORWARD_OUTBOUND_CA_FILE`).
    pub extra_roots: Option<PathBuf>,
    pub connect_timeout: Duration,
    /// For the whole exchange, the body included.
    pub timeout: Duration,
}

impl Default for OutgoingOptions {
    fn default() -> Self {
        OutgoingOptions {
            reach: Reach::Global,
            extra_roots: None,
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(10),
        }
    }
}

/// An answer whose body was read in full, within a bound.
#[derive(Debug)]
pub struct BoundedResponse {
    pub status: reqwest::StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

/// The HTTP client for outgoing requests. Cheap to clone.
#[derive(Clone, Debug)]
pub struct OutgoingClient {
    client: reqwest::Client,
    guard: Guard,
}

impl OutgoingClient {
    /// Global addresses only, or anything with `allow_local`; the default bounds.
    pub fn new(allow_local: bool) -> anyhow::Result<OutgoingClient> {
        Self::with_options(OutgoingOptions {
            reach: if allow_local {
                Reach::Any
            } else {
                Reach::Global
            },
            ..OutgoingOptions::default()
        })
    }

    pub fn with_options(options: OutgoingOptions) -> anyhow::Result<OutgoingClient> {
        let guard = Guard::from_env(options.reach);
        let mut builder = reqwest::Client::builder()
            .dns_resolver(Arc::new(guard.resolver()))
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(options.connect_timeout)
            .timeout(options.timeout)
            .user_agent(concat!("Doorward/", env!("CARGO_PKG_VERSION")));
        if let Some(path) = &options.extra_roots {
            let pem = std::fs::read(path)
                .with_context(|| format!("cannot read the CA file {}", path.display()))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .with_context(|| format!("invalid PEM in the CA file {}", path.display()))?;
            anyhow::ensure!(
                !certs.is_empty(),
                "the CA file {} holds no PEM certificate",
                path.display()
            );
            builder = builder.tls_certs_merge(certs);
        }
        Ok(OutgoingClient {
            client: builder.build()?,
            guard,
        })
    }

    /// POSTs a form; the answer's status.
    pub async fn post_form(
        &self,
        url: &str,
        form: &[(&str, &str)],
    ) -> Result<reqwest::StatusCode, OutgoingError> {
        let parsed = url::Url::parse(url).map_err(|e| OutgoingError::Url(e.to_string()))?;
        self.guard.check(&parsed).await?;
        let res = self
            .client
            .post(parsed)
            .form(form)
            .send()
            .await
            .map_err(classify)?;
        Ok(res.status())
    }

    /// GETs a JSON resource and reads its body, refusing one past `max_bytes` (announced or
    /// read so far) without reading further. Any status is returned as is; redirects are
    /// not followed.
    pub async fn get_bounded(
        &self,
        url: &str,
        max_bytes: usize,
    ) -> Result<BoundedResponse, OutgoingError> {
        let parsed = url::Url::parse(url).map_err(|e| OutgoingError::Url(e.to_string()))?;
        self.guard.check(&parsed).await?;
        let mut res = self
            .client
            .get(parsed)
            .header(ACCEPT, "application/json")
            .send()
            .await
            .map_err(classify)?;
        if res
            .content_length()
            .is_some_and(|n| n > u64::try_from(max_bytes).unwrap_or(u64::MAX))
        {
            return Err(OutgoingError::TooLarge(max_bytes));
        }
        let status = res.status();
        let headers = res.headers().clone();
        let mut body = Vec::new();
        while let Some(chunk) = res.chunk().await.map_err(classify)? {
            if body.len() + chunk.len() > max_bytes {
                return Err(OutgoingError::TooLarge(max_bytes));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(BoundedResponse {
            status,
            headers,
            body,
        })
    }
}

/// A timeout, or a refusal by our resolver, as such; anything else as reqwest said it.
fn classify(e: reqwest::Error) -> OutgoingError {
    if e.is_timeout() {
        return OutgoingError::Timeout;
    }
    let mut source = std::error::Error::source(&e);
    while let Some(inner) = source {
        if let Some(OutgoingError::LocalAddress(host)) = inner.downcast_ref::<OutgoingError>() {
            return OutgoingError::LocalAddress(host.clone());
        }
        source = inner.source();
    }
    OutgoingError::Http(e)
}

/// reqwest's message and its causes ("error sending request …: connection refused").
fn error_chain(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}
