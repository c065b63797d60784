//! The signing keys every node shares: created on first start, rotated by `doorward keys
//! rotate`, read from the database and cached in `AppState` for a few seconds.
//!
//! The newest generation signs. A key that was superseded stays in the JWKS for the id_token
//! lifetime plus a margin (for clock skew and validation leeway), so every token it signed
//! can still be verified until it expires; after that it is no longer published.
//! Each node re-reads the newest generation at most every [`RELOAD_INTERVAL`], so a
//! rotation made by the CLI reaches every running server within seconds.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use super::signing_keys::{Alg, KeyError, PublicJwk, SigningKey, generate};
use crate::domain::sealed;
use crate::domain::secret::{MasterKey, SecretString};
use crate::store::Store;
use crate::store::signing_keys::{NewKey, StoredKey};

/// How stale a node's view of the keys may be.
pub const RELOAD_INTERVAL: Duration = Duration::from_secs(3);
/// Seconds a superseded key stays published beyond the id_token lifetime.
pub const PUBLISH_MARGIN: i64 = 600;
/// The master-key purpose of the subkey that encrypts private keys.
const SUBKEY_PURPOSE: &str = "oidc-signing-keys";

/// The subkey encrypting signing keys at rest.
pub fn encryption_key(master: &MasterKey) -> [u8; 32] {
    master.derive(SUBKEY_PURPOSE)
}

/// Associated data: the ciphertext belongs to the key with this `kid`.
fn aad(kid: &str) -> Vec<u8> {
    format!("signing-key:{kid}").into_bytes()
}

/// One loaded key and when a newer one replaced it.
#[derive(Debug)]
pub struct LoadedKey {
    pub generation: i64,
    pub created_at: i64,
    /// When the next generation was created; `None` for the signing key.
    pub superseded_at: Option<i64>,
    pub key: SigningKey,
}

/// The keys of one moment: the signing key first, then older keys still published.
#[derive(Debug)]
pub struct KeyRing {
    keys: Vec<LoadedKey>,
}

impl KeyRing {
    /// The key that signs now.
    pub fn signing(&self) -> Option<&SigningKey> {
        self.keys.first().map(|k| &k.key)
    }

    /// Keys whose tokens may still be presented at `now`, newest first.
    pub fn published(&self, now: i64, id_token_lifetime: i64) -> impl Iterator<Item = &SigningKey> {
        self.keys
            .iter()
            .filter(move |k| is_published(k.superseded_at, now, id_token_lifetime))
            .map(|k| &k.key)
    }

    /// The published key with this `kid`.
    pub fn find(&self, kid: &str, now: i64, id_token_lifetime: i64) -> Option<&SigningKey> {
        self.published(now, id_token_lifetime)
            .find(|k| k.kid() == kid)
    }

    /// The JWKS document (RFC 7517 §5).
    pub fn jwks(&self, now: i64, id_token_lifetime: i64) -> Vec<PublicJwk> {
        self.published(now, id_token_lifetime)
            .map(|k| k.public.clone())
            .collect()
    }

    fn newest_generation(&self) -> Option<i64> {
        self.keys.first().map(|k| k.generation)
    }
}

/// A superseded key stays published until the last token it signed has expired (Core
/// §10.1.1: the JWKS keeps recently decommissioned keys).
pub fn is_published(superseded_at: Option<i64>, now: i64, id_token_lifetime: i64) -> bool {
    superseded_at.is_none_or(|at| now < at + id_token_lifetime + PUBLISH_MARGIN)
}

fn decrypt(subkey: &[u8; 32], row: &StoredKey) -> Result<SigningKey, KeyError> {
    let alg = Alg::parse(&row.alg).ok_or_else(|| KeyError::UnknownAlg(row.alg.clone()))?;
    let pem = sealed::open(subkey, &aad(&row.kid), &row.private_key_encrypted)
        .ok_or(KeyError::Decrypt)?;
    let pem = SecretString::new(String::from_utf8(pem).map_err(|_| KeyError::Decrypt)?);
    let key = SigningKey::from_pem(alg, &pem)?;
    if key.kid() != row.kid {
        return Err(KeyError::Decrypt);
    }
    Ok(key)
}

/// Reads every key still worth loading at `now` and decrypts it.
async fn load(
    store: &Store,
    subkey: &[u8; 32],
    now: i64,
    id_token_lifetime: i64,
) -> Result<KeyRing, KeyError> {
    let rows = store.signing_keys().await?;
    let mut keys = Vec::new();
    let mut superseded_at = None;
    for row in &rows {
        if is_published(superseded_at, now, id_token_lifetime) {
            keys.push(LoadedKey {
                generation: row.generation,
                created_at: row.created_at,
                superseded_at,
                key: decrypt(subkey, row)?,
            });
        }
        superseded_at = Some(row.created_at);
    }
    Ok(KeyRing { keys })
}

/// Generates a key of `alg` and stores it as `generation`. `Ok(None)` when that generation
/// was taken by someone else in the meantime.
async fn insert_new(
    store: &Store,
    subkey: &[u8; 32],
    alg: Alg,
    generation: i64,
    now: i64,
) -> Result<Option<String>, KeyError> {
    let pem = generate(alg)?;
    let key = SigningKey::from_pem(alg, &pem)?;
    let sealed =
        sealed::seal(subkey, &aad(key.kid()), pem.expose().as_bytes()).ok_or(KeyError::Generate)?;
    let inserted = store
        .insert_signing_key(&NewKey {
            generation,
            kid: key.kid(),
            alg: alg.as_str(),
            private_key_encrypted: &sealed,
            created_at: now,
        })
        .await?;
    Ok(inserted.then(|| key.kid().to_string()))
}

/// On first start, creates the RS256 key; on every start, proves the signing key decrypts
/// and signs (a wrong master key fails the start, not the first sign-in).
pub async fn ensure(
    store: &Store,
    master: &MasterKey,
    now: i64,
    id_token_lifetime: i64,
) -> Result<(), KeyError> {
    let subkey = encryption_key(master);
    if store.newest_signing_key_generation().await?.is_none()
        && let Some(kid) = insert_new(store, &subkey, Alg::Rs256, 1, now).await?
    {
        tracing::info!(kid = %kid, "generated the OpenID Connect signing key");
    }
    let ring = load(store, &subkey, now, id_token_lifetime).await?;
    if ring.signing().is_none() {
        return Err(KeyError::Decrypt);
    }
    Ok(())
}

/// Adds a key of a new generation that signs from now on; older keys stay published until
/// their tokens have expired. Returns the new `kid`.
pub async fn rotate(
    store: &Store,
    master: &MasterKey,
    alg: Alg,
    now: i64,
) -> Result<String, KeyError> {
    let subkey = encryption_key(master);
    let next = store.newest_signing_key_generation().await?.unwrap_or(0) + 1;
    insert_new(store, &subkey, alg, next, now)
        .await?
        .ok_or(KeyError::Concurrent)
}

/// What `doorward keys list` shows of one key.
#[derive(Debug, serde::Serialize)]
pub struct KeyInfo {
    pub kid: String,
    pub alg: String,
    pub generation: i64,
    pub created_at: i64,
    /// `signing`, `published` (superseded, tokens may still be presented) or `retired`.
    pub status: &'static str,
    /// Until when a superseded key is published.
    pub published_until: Option<i64>,
}

/// Every key with its status at `now`, newest first (no private key is decrypted).
pub async fn list(
    store: &Store,
    now: i64,
    id_token_lifetime: i64,
) -> Result<Vec<KeyInfo>, KeyError> {
    let rows = store.signing_keys().await?;
    let mut out = Vec::with_capacity(rows.len());
    let mut superseded_at: Option<i64> = None;
    for row in rows {
        let status = match superseded_at {
            None => "signing",
            Some(_) if is_published(superseded_at, now, id_token_lifetime) => "published",
            Some(_) => "retired",
        };
        out.push(KeyInfo {
            published_until: superseded_at.map(|at| at + id_token_lifetime + PUBLISH_MARGIN),
            kid: row.kid,
            alg: row.alg,
            generation: row.generation,
            created_at: row.created_at,
            status,
        });
        superseded_at = Some(row.created_at);
    }
    Ok(out)
}

/// The keys as this node last read them, refreshed when older than [`RELOAD_INTERVAL`].
pub struct KeyCache {
    subkey: [u8; 32],
    id_token_lifetime: i64,
    current: RwLock<Option<(Arc<KeyRing>, Instant)>>,
    /// One reload at a time; others wait for it rather than all querying.
    reloading: tokio::sync::Mutex<()>,
}

impl KeyCache {
    pub fn new(master: &MasterKey, id_token_lifetime: i64) -> KeyCache {
        KeyCache {
            subkey: encryption_key(master),
            id_token_lifetime,
            current: RwLock::new(None),
            reloading: tokio::sync::Mutex::new(()),
        }
    }

    fn cached(&self, fresh_only: bool) -> Option<Arc<KeyRing>> {
        let guard = self.current.read().unwrap_or_else(|e| e.into_inner());
        guard
            .as_ref()
            .filter(|(_, at)| !fresh_only || at.elapsed() < RELOAD_INTERVAL)
            .map(|(ring, _)| ring.clone())
    }

    fn put(&self, ring: Arc<KeyRing>) {
        let mut guard = self.current.write().unwrap_or_else(|e| e.into_inner());
        *guard = Some((ring, Instant::now()));
    }

    /// The current keys. A database error while refreshing keeps the previous keys (and
    /// logs), so a short outage does not stop verification; with no keys yet it is an error.
    pub async fn ring(&self, store: &Store, now: i64) -> Result<Arc<KeyRing>, KeyError> {
        if let Some(ring) = self.cached(true) {
            return Ok(ring);
        }
        let _one = self.reloading.lock().await;
        if let Some(ring) = self.cached(true) {
            return Ok(ring);
        }
        let previous = self.cached(false);
        let newest = match store.newest_signing_key_generation().await {
            Ok(n) => n,
            Err(e) => {
                return match previous {
                    Some(ring) => {
                        tracing::warn!(error = %e, "cannot refresh the signing keys; using the cached ones");
                        Ok(ring)
                    }
                    None => Err(e.into()),
                };
            }
        };
        if let Some(ring) = previous.filter(|r| r.newest_generation() == newest) {
            self.put(ring.clone());
            return Ok(ring);
        }
        let ring = Arc::new(load(store, &self.subkey, now, self.id_token_lifetime).await?);
        if let Some(key) = ring.signing() {
            tracing::info!(kid = %key.kid(), "loaded the OpenID Connect signing keys");
        }
        self.put(ring.clone());
        Ok(ring)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn superseded_keys_stay_published_for_the_token_lifetime_and_margin() {
        assert!(is_published(None, 1_000_000, 120));
        assert!(is_published(
            Some(1000),
            1000 + 120 + PUBLISH_MARGIN - 1,
            120
        ));
        assert!(!is_published(Some(1000), 1000 + 120 + PUBLISH_MARGIN, 120));
    }
}
