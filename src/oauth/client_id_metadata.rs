//! OAuth Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document, which
//! the MCP authorization specification of 2025-11-25 relies on): a client with no
//! registration here uses an `https` URL as its `client_id`, and the document at that URL
//! (JSON, RFC 7591 client metadata) says who it is and where it may be redirected.
//!
//! This module fetches and checks such documents and keeps them in memory; the
//! authorization and token endpoints decide what to do with them. Doorward's rules, each
//! the draft's or stricter:
//! - the URL (§3): `https`, a path other than `/`, no `.`/`..` segment, no fragment, no
//!   user information, written in the form the WHATWG URL parser gives it (so `client_id`
//!   compares as a plain string, and `https://2130706433/x` is not another spelling of
//!   `https://127.0.0.1/x`);
//! - the fetch (§4, §6.5, §6.6): through `http::outgoing` — never to a loopback, private or
//!   otherwise non-global address (unless `DOORWARD_CIMD_ALLOW_LOOPBACK` lets loopback
//!   through), TLS verified, no redirect followed, at most [`MAX_DOCUMENT_BYTES`] (the
//!   draft recommends 5 KB; real documents with logos and long names run larger), 5 s to
//!   connect, 10 s in all;
//! - the answer (§4, §4.1): 200 and a JSON object whose `client_id` is the URL exactly,
//!   with a non-empty `redirect_uris`; no `client_secret` nor `client_secret_expires_at`,
//!   and `token_endpoint_auth_method` absent or `none` (§4.1 forbids shared secrets; the
//!   key-based methods of §6.2 are not supported here, so every such client is public);
//! - caching (§4.4): as the answer's `Cache-Control` says, [`DEFAULT_TTL`] when it says
//!   nothing, [`MAX_TTL`] at most; `no-store`/`no-cache` are not cached, and neither is any
//!   error nor any invalid document.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::header::{AGE, CACHE_CONTROL, HeaderMap, LOCATION};

use crate::config::Config;
use crate::domain::net::Reach;
use crate::http::outgoing::{OutgoingClient, OutgoingError, OutgoingOptions};

/// The largest document read (§6.6).
pub const MAX_DOCUMENT_BYTES: usize = 64 * 1024;
/// How long a document is kept when its answer says nothing about caching (seconds).
pub const DEFAULT_TTL: i64 = 300;
/// The longest a document is kept, whatever its answer says (seconds).
pub const MAX_TTL: i64 = 86_400;
/// Documents kept in memory at most.
pub const MAX_ENTRIES: usize = 1024;

mod document;
pub use document::{
    CimdError, ClientMetadataDocument, is_metadata_document_url, parse_document, validate_url,
};

/// How long an answer may be kept (seconds), from its `Cache-Control` and `Age` (§4.4, RFC
/// 9111 §5.2.2): `None` for `no-store`, `no-cache`, an unreadable or zero `max-age`.
pub fn cache_lifetime(headers: &HeaderMap) -> Option<i64> {
    let mut max_age = None;
    for value in headers.get_all(CACHE_CONTROL) {
        for directive in value.to_str().ok()?.split(',') {
            let (name, arg) = directive.split_once('=').unwrap_or((directive, ""));
            match name.trim().to_ascii_lowercase().as_str() {
                "no-store" | "no-cache" => return None,
                "max-age" => max_age = Some(arg.trim().trim_matches('"').parse::<i64>().ok()?),
                _ => {}
            }
        }
    }
    let age = headers
        .get(AGE)
        .and_then(|v| v.to_str().ok()?.trim().parse::<i64>().ok())
        .unwrap_or(0);
    let ttl = max_age.unwrap_or(DEFAULT_TTL).min(MAX_TTL) - age.max(0);
    (ttl > 0).then_some(ttl)
}

/// What [`ClientIdMetadataDocuments`] needs from the configuration, and its time bounds.
#[derive(Clone, Debug)]
pub struct CimdSettings {
    /// `DOORWARD_CIMD_ALLOW_LOOPBACK`.
    pub allow_loopback: bool,
    /// `DOORWARD_OUTBOUND_CA_FILE`.
    pub extra_roots: Option<PathBuf>,
    pub connect_timeout: Duration,
    pub timeout: Duration,
}

impl CimdSettings {
    pub fn from_config(config: &Config) -> CimdSettings {
        CimdSettings {
            allow_loopback: config.cimd_allow_loopback,
            extra_roots: config.outbound_ca_file.clone(),
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(10),
        }
    }
}

struct Entry {
    document: Arc<ClientMetadataDocument>,
    expires_at: i64,
}

/// The fetcher and its in-memory cache, keyed by URL. Share it in an `Arc`.
pub struct ClientIdMetadataDocuments {
    client: OutgoingClient,
    allow_loopback: bool,
    cache: Mutex<HashMap<String, Entry>>,
}

impl ClientIdMetadataDocuments {
    /// `None` when the instance has client metadata documents off.
    pub fn from_config(config: &Config) -> anyhow::Result<Option<Arc<Self>>> {
        if !config.client_id_metadata_documents {
            return Ok(None);
        }
        Ok(Some(Arc::new(Self::new(CimdSettings::from_config(
            config,
        ))?)))
    }

    pub fn new(settings: CimdSettings) -> anyhow::Result<Self> {
        let client = OutgoingClient::with_options(OutgoingOptions {
            reach: match settings.allow_loopback {
                true => Reach::GlobalAndLoopback,
                false => Reach::Global,
            },
            extra_roots: settings.extra_roots,
            connect_timeout: settings.connect_timeout,
            timeout: settings.timeout,
        })?;
        Ok(ClientIdMetadataDocuments {
            client,
            allow_loopback: settings.allow_loopback,
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// The document `client_id` names, from the cache or fetched now; `now` in Unix
    /// seconds (`state.clock.now()`).
    pub async fn get(
        &self,
        client_id: &str,
        now: i64,
    ) -> Result<Arc<ClientMetadataDocument>, CimdError> {
        let url = validate_url(client_id, self.allow_loopback)?;
        if let Some(document) = self.cached(client_id, now) {
            return Ok(document);
        }
        let fetch = |reason: String| CimdError::Fetch {
            url: client_id.into(),
            reason,
        };
        let res = match self
            .client
            .get_bounded(url.as_str(), MAX_DOCUMENT_BYTES)
            .await
        {
            Ok(res) => res,
            Err(OutgoingError::LocalAddress(host)) => {
                return Err(CimdError::Refused {
                    url: client_id.into(),
                    reason: format!("{host} is not a public address"),
                });
            }
            Err(OutgoingError::Timeout) => {
                return Err(fetch("it did not answer in time".into()));
            }
            Err(e) => return Err(fetch(e.to_string())),
        };
        if res.status.is_redirection() {
            let to = res.headers.get(LOCATION).and_then(|v| v.to_str().ok());
            return Err(fetch(format!(
                "it answered {} redirecting to {}; redirects are not followed",
                res.status,
                to.unwrap_or("nowhere")
            )));
        }
        if res.status != reqwest::StatusCode::OK {
            return Err(fetch(format!(
                "it answered {} instead of 200 OK",
                res.status
            )));
        }
        let document =
            parse_document(client_id, &res.body).map_err(|reason| CimdError::Invalid {
                url: client_id.into(),
                reason,
            })?;
        let document = Arc::new(document);
        if let Some(ttl) = cache_lifetime(&res.headers) {
            self.keep(client_id, document.clone(), now + ttl);
        }
        tracing::info!(client_id, "fetched a client metadata document");
        Ok(document)
    }

    fn cached(&self, client_id: &str, now: i64) -> Option<Arc<ClientMetadataDocument>> {
        let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        let entry = cache.get(client_id)?;
        (entry.expires_at > now).then(|| entry.document.clone())
    }

    fn keep(&self, client_id: &str, document: Arc<ClientMetadataDocument>, expires_at: i64) {
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        insert_bounded(
            &mut cache,
            client_id,
            Entry {
                document,
                expires_at,
            },
            MAX_ENTRIES,
        );
    }
}

/// Inserts, first making room when full: the entry expiring first (or expired longest) goes.
fn insert_bounded(cache: &mut HashMap<String, Entry>, key: &str, entry: Entry, max: usize) {
    if !cache.contains_key(key) && cache.len() >= max {
        let soonest = cache
            .iter()
            .min_by_key(|(_, e)| e.expires_at)
            .map(|(k, _)| k.clone());
        if let Some(k) = soonest {
            cache.remove(&k);
        }
    }
    cache.insert(key.to_string(), entry);
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    const ID: &str = "https://app.example.com/oauth/client.json";

    fn doc(extra: &str) -> String {
        format!(r#"{{"client_id":"{ID}","redirect_uris":["https://app.example.com/cb"]{extra}}}"#)
    }

    #[test]
    fn cache_lifetimes_follow_cache_control() {
        let lifetime = |pairs: &[(&'static str, &'static str)]| {
            let mut h = HeaderMap::new();
            for (k, v) in pairs {
                h.append(*k, HeaderValue::from_static(v));
            }
            cache_lifetime(&h)
        };
        assert_eq!(lifetime(&[]), Some(DEFAULT_TTL));
        assert_eq!(
            lifetime(&[("cache-control", "public, max-age=60")]),
            Some(60)
        );
        assert_eq!(lifetime(&[("cache-control", "max-age=\"60\"")]), Some(60));
        assert_eq!(
            lifetime(&[("cache-control", "max-age=99999999")]),
            Some(MAX_TTL)
        );
        assert_eq!(
            lifetime(&[("cache-control", "max-age=600"), ("age", "100")]),
            Some(500)
        );
        assert_eq!(
            lifetime(&[("cache-control", "max-age=60"), ("age", "100")]),
            None
        );
        assert_eq!(lifetime(&[("cache-control", "max-age=0")]), None);
        assert_eq!(lifetime(&[("cache-control", "max-age=soon")]), None);
        assert_eq!(lifetime(&[("cache-control", "No-Store")]), None);
        assert_eq!(lifetime(&[("cache-control", "max-age=60, no-cache")]), None);
        assert_eq!(
            lifetime(&[("cache-control", "public"), ("cache-control", "no-store")]),
            None
        );
        assert_eq!(lifetime(&[("cache-control", "private")]), Some(DEFAULT_TTL));
    }

    #[test]
    fn the_cache_is_bounded() {
        let document = Arc::new(parse_document(ID, doc("").as_bytes()).unwrap());
        let entry = |expires_at| Entry {
            document: document.clone(),
            expires_at,
        };
        let mut cache = HashMap::new();
        for i in 0..3 {
            insert_bounded(&mut cache, &format!("k{i}"), entry(100 + i), 3);
        }
        insert_bounded(&mut cache, "k1", entry(500), 3);
        assert_eq!(cache.len(), 3);
        insert_bounded(&mut cache, "k3", entry(400), 3);
        assert_eq!(cache.len(), 3);
        assert!(!cache.contains_key("k0"), "the entry expiring first goes");
        assert!(cache.contains_key("k1") && cache.contains_key("k3"));
    }
}
