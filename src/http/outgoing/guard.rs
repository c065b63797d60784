//! The SSRF guard of `http::outgoing`: which addresses a request may reach, checked before
//! anything is sent and again on the addresses actually connected to.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use hyper_util::client::proxy::matcher::Matcher;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use super::OutgoingError;
use crate::domain::net::{Reach, is_loopback_name};

/// The pre-send check, with the environment's proxy rules read once.
#[derive(Clone, Debug)]
pub(super) struct Guard {
    reach: Reach,
    /// reqwest's own proxy rules (`HTTPS_PROXY`/`ALL_PROXY`, `NO_PROXY`), read from the
    /// environment as reqwest reads them, so both agree on which requests a proxy carries.
    proxies: Arc<Matcher>,
    proxy_hosts: Arc<Vec<String>>,
}

impl Guard {
    pub(super) fn from_env(reach: Reach) -> Guard {
        Guard {
            reach,
            proxies: Arc::new(Matcher::from_system()),
            proxy_hosts: Arc::new(proxy_hosts()),
        }
    }

    /// The resolver for reqwest: it filters every name but the proxies' own.
    pub(super) fn resolver(&self) -> Filtered {
        Filtered {
            reach: self.reach,
            proxy_hosts: self.proxy_hosts.clone(),
        }
    }

    /// Refuses, before anything is sent, a URL whose host is out of reach: an IP literal
    /// (in whatever spelling the URL parser normalised, `2130706433` or `0x7f.1` included),
    /// a `localhost` name, or, when our resolver will not see the name (a proxy carries the
    /// request, or the name is a proxy's own), any of the addresses it resolves to here.
    /// Otherwise the resolver checks the addresses connected to, at connection time.
    pub(super) async fn check(&self, url: &url::Url) -> Result<(), OutgoingError> {
        if self.reach == Reach::Any {
            return Ok(());
        }
        let allow = |ip: IpAddr| match self.reach.allows(ip) {
            true => Ok(()),
            false => Err(OutgoingError::LocalAddress(ip.to_string())),
        };
        let host = match url.host() {
            Some(url::Host::Ipv4(ip)) => return allow(IpAddr::from(ip)),
            Some(url::Host::Ipv6(ip)) => return allow(IpAddr::from(ip)),
            Some(url::Host::Domain(d)) => d.to_ascii_lowercase(),
            None => return Err(OutgoingError::Url("the URL has no host".into())),
        };
        if self.reach == Reach::Global && is_loopback_name(&host) {
            return Err(OutgoingError::LocalAddress(host));
        }
        if self.resolver_sees(url, &host) {
            return Ok(());
        }
        let port = url.port_or_known_default().unwrap_or(443);
        resolve_within(&host, port, self.reach).await
    }

    /// False when a proxy will carry the request (the proxy resolves the name, not us), or
    /// when the name is a proxy's own (our resolver lets those through).
    fn resolver_sees(&self, url: &url::Url, host: &str) -> bool {
        let proxied = url
            .as_str()
            .parse::<axum::http::Uri>()
            .is_ok_and(|u| self.proxies.intercept(&u).is_some());
        !proxied && !self.proxy_hosts.iter().any(|p| p == host)
    }
}

/// Resolves `host` and refuses it unless every address is within reach.
async fn resolve_within(host: &str, port: u16, reach: Reach) -> Result<(), OutgoingError> {
    let found: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| OutgoingError::Resolve {
            host: host.into(),
            message: e.to_string(),
        })?
        .collect();
    if found.is_empty() || found.iter().any(|a| !reach.allows(a.ip())) {
        return Err(OutgoingError::LocalAddress(host.into()));
    }
    Ok(())
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

/// Resolves names with the system resolver and keeps only the addresses within reach.
#[derive(Debug)]
pub(super) struct Filtered {
    reach: Reach,
    proxy_hosts: Arc<Vec<String>>,
}

impl Resolve for Filtered {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_ascii_lowercase();
        let reach = match self.proxy_hosts.contains(&host) {
            true => Reach::Any,
            false => self.reach,
        };
        Box::pin(async move {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| reach.allows(a.ip()))
                .collect();
            if found.is_empty() {
                return Err(Box::new(OutgoingError::LocalAddress(host)) as _);
            }
            Ok(Box::new(found.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn guard(reach: Reach, proxy: Option<&str>, no_proxy: &str) -> Guard {
        let mut matcher = Matcher::builder().no(no_proxy);
        if let Some(p) = proxy {
            matcher = matcher.all(p);
        }
        Guard {
            reach,
            proxies: Arc::new(matcher.build()),
            proxy_hosts: Arc::new(
                proxy
                    .map(|_| "proxy.internal".to_string())
                    .into_iter()
                    .collect(),
            ),
        }
    }

    fn url(s: &str) -> url::Url {
        url::Url::parse(s).unwrap()
    }

    #[tokio::test]
    async fn literals_and_localhost_are_refused_before_sending() {
        let g = guard(Reach::Global, None, "");
        for u in [
            "https://127.0.0.1/x",
            "https://2130706433/x",
            "https://0x7f.1/x",
            "https://[::ffff:127.0.0.1]/x",
            "https://10.0.0.1/x",
            "https://169.254.169.254/x",
            "https://localhost:8443/x",
        ] {
            assert!(
                matches!(g.check(&url(u)).await, Err(OutgoingError::LocalAddress(_))),
                "{u}"
            );
        }
        assert!(g.check(&url("https://1.1.1.1/x")).await.is_ok());
        let loopback = guard(Reach::GlobalAndLoopback, None, "");
        assert!(loopback.check(&url("https://127.0.0.1/x")).await.is_ok());
        assert!(loopback.check(&url("https://10.0.0.1/x")).await.is_err());
        assert!(
            guard(Reach::Any, None, "")
                .check(&url("https://10.0.0.1/x"))
                .await
                .is_ok()
        );
    }

    #[test]
    fn names_a_proxy_carries_are_resolved_here() {
        let direct = guard(Reach::Global, None, "");
        assert!(direct.resolver_sees(&url("https://app.example/x"), "app.example"));
        let proxied = guard(
            Reach::Global,
            Some("http://proxy.internal:3128"),
            "corp.example",
        );
        assert!(!proxied.resolver_sees(&url("https://app.example/x"), "app.example"));
        // NO_PROXY: a direct connection, which the resolver filters.
        assert!(proxied.resolver_sees(&url("https://a.corp.example/x"), "a.corp.example"));
        // The proxy's own name is not filtered by the resolver, so it is checked here.
        let direct_to_proxy = guard(Reach::Global, Some("http://proxy.internal:3128"), "*");
        assert!(!direct_to_proxy.resolver_sees(&url("https://proxy.internal/x"), "proxy.internal"));
    }

    #[tokio::test]
    async fn resolved_addresses_are_checked() {
        assert!(matches!(
            resolve_within("localhost", 443, Reach::Global).await,
            Err(OutgoingError::LocalAddress(_))
        ));
        let filtered = Filtered {
            reach: Reach::Global,
            proxy_hosts: Arc::new(Vec::new()),
        };
        let name = Name::from_str("localhost").unwrap();
        assert!(filtered.resolve(name).await.is_err());
        let loopback = Filtered {
            reach: Reach::GlobalAndLoopback,
            proxy_hosts: Arc::new(Vec::new()),
        };
        let found: Vec<SocketAddr> = loopback
            .resolve(Name::from_str("localhost").unwrap())
            .await
            .unwrap()
            .collect();
        assert!(!found.is_empty());
        assert!(found.iter().all(|a| a.ip().is_loopback()));
    }
}
