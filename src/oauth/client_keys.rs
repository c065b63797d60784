//! The keys a `private_key_jwt` client registered (RFC 7591 §2): the JWK Set stored with it
//! (`jwks`), or the one at its `jwks_uri`, fetched through the outgoing client (global
//! addresses only after resolution, bounded in size and time, `HTTPS_PROXY`/`NO_PROXY`
//! honoured, no redirects) and cached per node for [`TTL`] seconds. A JWS naming a `kid`
//! the cached set lacks fetches again (key rotation), at most once per [`REFETCH_AFTER`]
//! seconds per URL, so unknown `kid`s cannot make Doorward hammer a client's server. One
//! fetch per URL runs at a time: requests arriving meanwhile wait for its answer instead of
//! being refused for want of keys (a client's first burst, a rotation, a cache expiry).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::domain::application::{Application, ClientKeySource};
use crate::domain::client_keys::{ClientKeys, MAX_JWKS_LEN};
use crate::http::outgoing::OutgoingError;
use crate::state::AppState;

/// Seconds a fetched JWK Set is used before it is fetched again.
pub const TTL: i64 = 300;
/// Seconds between fetches of one URL however many unknown `kid`s arrive.
pub const REFETCH_AFTER: i64 = 30;
/// URLs remembered at most; beyond, the oldest entries go.
const MAX_ENTRIES: usize = 1024;

/// Fetched JWK Sets by URL.
#[derive(Default)]
pub struct JwksCache {
    entries: Mutex<HashMap<String, Entry>>,
}

#[derive(Clone, Default)]
struct Entry {
    /// Held while this URL is fetched; waiters read the entry again once they get it.
    fetching: Arc<tokio::sync::Mutex<()>>,
    /// The last set fetched, if any fetch worked.
    keys: Option<Arc<ClientKeys>>,
    /// When `keys` were fetched.
    fetched_at: i64,
    /// When a fetch last started, whether it worked, failed or is still running: no other
    /// starts within [`REFETCH_AFTER`], so neither unknown `kid`s nor a failing or slow URL
    /// make Doorward fetch once per request.
    attempted_at: i64,
}

impl JwksCache {
    fn get(&self, uri: &str) -> Option<Entry> {
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(uri)
            .cloned()
    }

    /// The URL's fetch lock, its entry made if there was none.
    fn fetch_lock(&self, uri: &str) -> Arc<tokio::sync::Mutex<()>> {
        if let Some(entry) = self.get(uri) {
            return entry.fetching;
        }
        self.put(uri, Entry::default());
        self.get(uri).unwrap_or_default().fetching
    }

    /// Stores `entry` for the URL, keeping the fetch lock already there.
    fn put(&self, uri: &str, mut entry: Entry) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(old) = entries.get(uri) {
            entry.fetching = old.fetching.clone();
        } else if entries.len() >= MAX_ENTRIES {
            let oldest = entries
                .iter()
                .min_by_key(|(_, e)| e.attempted_at)
                .map(|(k, _)| k.clone());
            if let Some(oldest) = oldest {
                entries.remove(&oldest);
            }
        }
        entries.insert(uri.to_string(), entry);
    }
}

/// The client's keys, for a JWS whose header names `kid` and `alg`. `Err` says why, for the
/// log (the client only learns `invalid_client` or `invalid_request_object`).
pub async fn keys_for(
    state: &AppState,
    app: &Application,
    kid: Option<&str>,
    alg: &str,
) -> Result<Arc<ClientKeys>, String> {
    match app.keys() {
        ClientKeySource::None => Err("the client registered no keys".into()),
        ClientKeySource::Jwks(text) => ClientKeys::parse(&text)
            .map(Arc::new)
            .map_err(|why| format!("the registered jwks {why}")),
        ClientKeySource::JwksUri(uri) => {
            let cached = state.jwks_cache.get(&uri).unwrap_or_default();
            if let Some(keys) = usable(&cached, state.clock.now(), kid, alg) {
                return Ok(keys);
            }
            // Held by the fetch itself (below), not by this request: a caller that goes
            // away mid-fetch does not abandon it, and its waiters get its answer.
            let fetching = state.jwks_cache.fetch_lock(&uri).lock_owned().await;
            // Whoever held the lock may have fetched what this request needs.
            let cached = state.jwks_cache.get(&uri).unwrap_or_default();
            let now = state.clock.now();
            if let Some(keys) = usable(&cached, now, kid, alg) {
                return Ok(keys);
            }
            let fresh = cached
                .keys
                .clone()
                .filter(|_| now - cached.fetched_at < TTL);
            if now - cached.attempted_at < REFETCH_AFTER {
                return fresh.ok_or_else(|| {
                    format!("the JWK Set at {uri} could not be fetched moments ago; not again yet")
                });
            }
            state.jwks_cache.put(
                &uri,
                Entry {
                    attempted_at: now,
                    ..cached.clone()
                },
            );
            let task = {
                let (state, uri) = (state.clone(), uri.clone());
                tokio::spawn(async move {
                    let fetched = fetch(&state, &uri).await.map(Arc::new);
                    if let Ok(keys) = &fetched {
                        // `put` keeps the URL's fetch lock.
                        let entry = Entry {
                            keys: Some(keys.clone()),
                            fetched_at: now,
                            attempted_at: now,
                            ..Entry::default()
                        };
                        state.jwks_cache.put(&uri, entry);
                    }
                    drop(fetching);
                    fetched
                })
            };
            let fetched = task
                .await
                .unwrap_or_else(|e| Err(format!("the fetch of {uri} stopped: {e}")));
            match fetched {
                Ok(keys) => Ok(keys),
                // A client's server being down for a moment does not lock it out while
                // the keys it had are fresh enough.
                Err(why) => match fresh {
                    Some(keys) => {
                        tracing::warn!(jwks_uri = %uri, reason = %why, "using the cached JWK Set");
                        Ok(keys)
                    }
                    None => Err(why),
                },
            }
        }
    }
}

/// The cached keys, when fresh and holding a key for this `kid` and `alg`.
fn usable(cached: &Entry, now: i64, kid: Option<&str>, alg: &str) -> Option<Arc<ClientKeys>> {
    cached
        .keys
        .clone()
        .filter(|keys| now - cached.fetched_at < TTL && keys.select(kid, alg).is_some())
}

async fn fetch(state: &AppState, uri: &str) -> Result<ClientKeys, String> {
    let res = match state.outgoing.get_bounded(uri, MAX_JWKS_LEN).await {
        Ok(res) => res,
        Err(OutgoingError::LocalAddress(host)) => {
            return Err(format!("jwks_uri {uri}: {host} is not a public address"));
        }
        Err(e) => return Err(format!("jwks_uri {uri}: {e}")),
    };
    if res.status != reqwest::StatusCode::OK {
        return Err(format!("jwks_uri {uri} answered {}", res.status));
    }
    let text = std::str::from_utf8(&res.body).map_err(|_| format!("jwks_uri {uri}: not UTF-8"))?;
    ClientKeys::parse(text).map_err(|why| format!("the JWK Set at {uri} {why}"))
}
