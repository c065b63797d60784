//! Requests Doorward makes to URLs that others registered (back-channel logout URIs). Such
//! a URL must not turn Doorward against its own network (SSRF), so:
//! - names are resolved by a resolver of ours that keeps only globally routable addresses
//!   (`domain::net::is_global`), and an IP literal is checked the same way before anything
//!   is sent, unless `DOORWARD_BACKCHANNEL_LOGOUT_ALLOW_LOOPBACK` allows local ones;
//! - proxies come from `HTTPS_PROXY`/`HTTP_PROXY`/`ALL_PROXY` and `NO_PROXY` (reqwest's
//!   reading of them); the proxies' own names are resolved without the filter (a proxy is
//!   usually on the local network), and the proxy then decides where it connects;
//! - no redirect is followed, a connection must open within 5 s and the whole exchange end
//!   within 10 s, and the answer's body is never read.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use crate::domain::net::is_global;

#[derive(Debug, thiserror::Error)]
pub enum OutgoingError {
    #[error("{0} is not a globally routable address")]
    LocalAddress(String),
    #[error("invalid URL: {0}")]
    Url(String),
    #[error("{0}")]
    Http(#[from] reqwest::Error),
}

/// The HTTP client for outgoing requests. Cheap to clone.
#[derive(Clone, Debug)]
pub struct OutgoingClient {
    client: reqwest::Client,
    allow_local: bool,
}

impl OutgoingClient {
    pub fn new(allow_local: bool) -> anyhow::Result<OutgoingClient> {
        let resolver = GlobalOnly {
            allow_local,
            proxy_hosts: proxy_hosts(),
        };
        let client = reqwest::Client::builder()
            .dns_resolver(Arc::new(resolver))
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(10))
            .user_agent(concat!("Doorward/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(OutgoingClient {
            client,
            allow_local,
        })
    }

    /// POSTs a form; the answer's status.
    pub async fn post_form(
        &self,
        url: &str,
        form: &[(&str, &str)],
    ) -> Result<reqwest::StatusCode, OutgoingError> {
        let parsed = url::Url::parse(url).map_err(|e| OutgoingError::Url(e.to_string()))?;
        let literal = match parsed.host() {
            Some(url::Host::Ipv4(ip)) => Some(std::net::IpAddr::from(ip)),
            Some(url::Host::Ipv6(ip)) => Some(std::net::IpAddr::from(ip)),
            _ => None,
        };
        if let Some(ip) = literal
            && !self.allow_local
            && !is_global(ip)
        {
            return Err(OutgoingError::LocalAddress(ip.to_string()));
        }
        let res = self.client.post(parsed).form(form).send().await?;
        Ok(res.status())
    }
}

/// The hosts of the configured proxies, which the resolver leaves unfiltered.
fn proxy_hosts() -> Vec<String> {
    [
        "HTTPS_PROXY",
        "https_proxy",
        "HTTP_PROXY",
        "http_proxy",
        "ALL_PROXY",
        "all_proxy",
    ]
    .iter()
    .filter_map(|k| std::env::var(k).ok())
    .filter_map(|v| url::Url::parse(&v).ok())
    .filter_map(|u| u.host_str().map(str::to_ascii_lowercase))
    .collect()
}

/// Resolves names with the system resolver and keeps only global addresses.
#[derive(Debug)]
struct GlobalOnly {
    allow_local: bool,
    proxy_hosts: Vec<String>,
}

impl Resolve for GlobalOnly {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_ascii_lowercase();
        let unfiltered = self.allow_local || self.proxy_hosts.contains(&host);
        Box::pin(async move {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| unfiltered || is_global(a.ip()))
                .collect();
            if found.is_empty() {
                return Err(Box::new(OutgoingError::LocalAddress(host)) as _);
            }
            Ok(Box::new(found.into_iter()) as Addrs)
        })
    }
}
