//! An in-process cache of validated access tokens, of applications (clients) and of users'
//! group claims, so that a hot bearer token or client authentication costs no database
//! query, and a user in a thousand groups no thousand-row query per UserInfo answer.
//!
//! Correctness rests on three rules:
//! - Only what can be checked locally is left to the reader: expiry (the caller compares
//!   `expires_at` with its clock on every use; group claims are kept only until the first
//!   of their memberships expires). Revocation, a blocked or changed user, a changed or
//!   deleted application, a changed membership or group must evict the entry.
//! - Every such change writes a row to `cache_invalidations`, by a trigger in the same
//!   transaction (migration 0006), whichever node or code path made it. Each node polls the
//!   rows it has not applied yet every `poll` interval and evicts what they name: another
//!   node's revocation takes effect here within one interval. The node that made a change
//!   also evicts at once, before answering, so its own clients never see a stale answer.
//! - A value read from the database is cached only if no eviction happened while it was
//!   being read (an epoch counter), so a revocation racing with a cache fill cannot be lost.
//!
//! If a poll fails (database unreachable), the cache empties and stays off until a poll
//! succeeds again: nothing is served from it that might have been revoked meanwhile.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::access_tokens::TokenWithOwner;
use super::groups::UserGroupClaims;
use crate::domain::application::Application;

/// Entries kept at most; past this, new values are not cached until expiry frees room.
const CAPACITY: usize = 50_000;

/// Group claim rows (one per group of a user) kept at most, over all users: about 100 MB
/// at GitLab's longest paths, a few MB in practice.
const GROUP_CLAIM_ROWS: usize = 1_000_000;

/// What a row of `cache_invalidations` names (its `kind` column).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Invalidation {
    Token(i64),
    User(i64),
    Application(i64),
    /// The group claims of one user (a direct membership changed).
    GroupClaimsOf(i64),
    /// Every user's group claims (a group created, deleted, renamed or moved).
    AllGroupClaims,
}

impl Invalidation {
    pub(super) fn from_row(kind: i16, subject: i64) -> Option<Invalidation> {
        match kind {
            1 => Some(Invalidation::Token(subject)),
            2 => Some(Invalidation::User(subject)),
            3 => Some(Invalidation::Application(subject)),
            4 => Some(Invalidation::GroupClaimsOf(subject)),
            5 => Some(Invalidation::AllGroupClaims),
            _ => None,
        }
    }
}

struct Entry<T> {
    value: T,
    fresh_until: Instant,
}

#[derive(Default)]
struct Inner {
    /// Keyed by the SHA-256 of the access token.
    /// Shared (`Arc`): every request with the token reads the same row and owner, with no
    /// copy of the user's strings per request.
    tokens: HashMap<[u8; 32], Entry<Arc<TokenWithOwner>>>,
    /// Token row id → key in `tokens`, for evictions by id.
    token_keys: HashMap<i64, [u8; 32]>,
    /// Keyed by `client_id` (the application's uid).
    applications: HashMap<String, Entry<Application>>,
    /// Keyed by user id; shared (`Arc`) because a user's claims can be thousands of paths.
    group_claims: HashMap<i64, Entry<Arc<UserGroupClaims>>>,
    /// The rows in `group_claims`, against [`GROUP_CLAIM_ROWS`].
    group_claim_rows: usize,
    /// Bumped by every eviction; a fill that started before the bump is dropped.
    epoch: u64,
    /// False after a failed poll: nothing is served or stored until one succeeds.
    healthy: bool,
}

/// The cache one node keeps. Cheap to share (`Arc`).
pub struct TokenCache {
    inner: Mutex<Inner>,
    /// How long an entry is served without being read again, at most.
    ttl: Duration,
    /// How often the invalidation log is polled.
    pub(super) poll: Duration,
}

impl std::fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCache")
            .field("ttl", &self.ttl)
            .field("poll", &self.poll)
            .finish_non_exhaustive()
    }
}

impl TokenCache {
    pub(super) fn new(ttl: Duration, poll: Duration) -> TokenCache {
        TokenCache {
            inner: Mutex::new(Inner {
                healthy: true,
                ..Inner::default()
            }),
            ttl,
            poll,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave a half-made entry behind (every
        // mutation is a single map operation), so a poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The epoch to pass to `put_*` for a value about to be read from the database.
    pub(super) fn epoch(&self) -> u64 {
        self.lock().epoch
    }

    pub(super) fn token(&self, key: &[u8; 32]) -> Option<Arc<TokenWithOwner>> {
        let inner = self.lock();
        if !inner.healthy {
            return None;
        }
        let entry = inner.tokens.get(key)?;
        (entry.fresh_until > Instant::now()).then(|| entry.value.clone())
    }

    /// Caches a live token read at `epoch`; revoked tokens are never cached.
    pub(super) fn put_token(&self, key: [u8; 32], epoch: u64, value: &Arc<TokenWithOwner>) {
        if value.token.revoked_at.is_some() {
            return;
        }
        let mut inner = self.lock();
        if !inner.healthy || inner.epoch != epoch || !has_room(&mut inner) {
            return;
        }
        inner.token_keys.insert(value.token.id, key);
        let fresh_until = Instant::now() + self.ttl;
        inner.tokens.insert(
            key,
            Entry {
                value: value.clone(),
                fresh_until,
            },
        );
    }

    pub(super) fn application(&self, client_id: &str) -> Option<Application> {
        let inner = self.lock();
        if !inner.healthy {
            return None;
        }
        let entry = inner.applications.get(client_id)?;
        (entry.fresh_until > Instant::now()).then(|| entry.value.clone())
    }

    pub(super) fn put_application(&self, epoch: u64, value: &Application) {
        let mut inner = self.lock();
        if !inner.healthy || inner.epoch != epoch || !has_room(&mut inner) {
            return;
        }
        let fresh_until = Instant::now() + self.ttl;
        inner.applications.insert(
            value.uid.clone(),
            Entry {
                value: value.clone(),
                fresh_until,
            },
        );
    }

    /// A user's cached group claims, if they are still right at `now` (Unix seconds).
    pub(super) fn group_claims(&self, user_id: i64, now: i64) -> Option<Arc<UserGroupClaims>> {
        let inner = self.lock();
        if !inner.healthy {
            return None;
        }
        let entry = inner.group_claims.get(&user_id)?;
        let live = entry.fresh_until > Instant::now()
            && entry.value.valid_until.is_none_or(|until| now < until);
        live.then(|| entry.value.clone())
    }

    pub(super) fn put_group_claims(&self, user_id: i64, epoch: u64, value: Arc<UserGroupClaims>) {
        let mut inner = self.lock();
        if !inner.healthy || inner.epoch != epoch {
            return;
        }
        let rows = value.rows.len();
        if inner.group_claim_rows + rows > GROUP_CLAIM_ROWS {
            let now = Instant::now();
            inner.group_claims.retain(|_, e| e.fresh_until > now);
            inner.group_claim_rows = count_rows(&inner.group_claims);
            if inner.group_claim_rows + rows > GROUP_CLAIM_ROWS {
                return;
            }
        }
        let fresh_until = Instant::now() + self.ttl;
        let old = inner
            .group_claims
            .insert(user_id, Entry { value, fresh_until });
        inner.group_claim_rows += rows;
        inner.group_claim_rows -= old.map_or(0, |e| e.value.rows.len());
    }

    /// Applies evictions (from the log, or made by this node).
    pub(super) fn evict(&self, what: &[Invalidation]) {
        if what.is_empty() {
            return;
        }
        let mut inner = self.lock();
        inner.epoch += 1;
        for item in what {
            match *item {
                Invalidation::Token(id) => {
                    if let Some(key) = inner.token_keys.remove(&id) {
                        inner.tokens.remove(&key);
                    }
                }
                Invalidation::User(id) => {
                    inner
                        .tokens
                        .retain(|_, e| e.value.token.user_id != Some(id));
                    rebuild_keys(&mut inner);
                    forget_group_claims(&mut inner, id);
                }
                Invalidation::GroupClaimsOf(id) => forget_group_claims(&mut inner, id),
                Invalidation::AllGroupClaims => {
                    inner.group_claims.clear();
                    inner.group_claim_rows = 0;
                }
                Invalidation::Application(id) => {
                    inner.applications.retain(|_, e| e.value.id != id);
                    inner
                        .tokens
                        .retain(|_, e| e.value.token.application_id != Some(id));
                    rebuild_keys(&mut inner);
                }
            }
        }
    }

    /// Forgets everything (after a change this node made whose extent it does not know).
    pub(super) fn clear(&self) {
        let mut inner = self.lock();
        inner.epoch += 1;
        inner.tokens.clear();
        inner.token_keys.clear();
        inner.applications.clear();
        inner.group_claims.clear();
        inner.group_claim_rows = 0;
    }

    /// A poll failed or succeeded: while failing, the cache is empty and unused.
    pub(super) fn set_healthy(&self, healthy: bool) {
        if !healthy {
            self.clear();
        }
        self.lock().healthy = healthy;
    }

    /// False until the first poll of the invalidation log succeeds, and after a failed one.
    pub fn is_healthy(&self) -> bool {
        self.lock().healthy
    }

    /// Users whose group claims are cached, for metrics and tests.
    pub fn cached_group_claims(&self) -> usize {
        self.lock().group_claims.len()
    }

    /// (cached tokens, cached applications), for metrics and tests.
    pub fn len(&self) -> (usize, usize) {
        let inner = self.lock();
        (inner.tokens.len(), inner.applications.len())
    }
}

/// Makes room for one more entry if the cache is full, by dropping stale ones.
fn has_room(inner: &mut Inner) -> bool {
    if inner.tokens.len() + inner.applications.len() < CAPACITY {
        return true;
    }
    let now = Instant::now();
    inner.tokens.retain(|_, e| e.fresh_until > now);
    inner.applications.retain(|_, e| e.fresh_until > now);
    rebuild_keys(inner);
    inner.tokens.len() + inner.applications.len() < CAPACITY
}

fn forget_group_claims(inner: &mut Inner, user_id: i64) {
    if let Some(old) = inner.group_claims.remove(&user_id) {
        inner.group_claim_rows -= old.value.rows.len();
    }
}

fn count_rows(claims: &HashMap<i64, Entry<Arc<UserGroupClaims>>>) -> usize {
    claims.values().map(|e| e.value.rows.len()).sum()
}

fn rebuild_keys(inner: &mut Inner) {
    let Inner {
        tokens, token_keys, ..
    } = inner;
    token_keys.retain(|_, key| tokens.contains_key(key));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::access_tokens::AccessToken;

    fn token(id: i64, user: Option<i64>, app: Option<i64>) -> Arc<TokenWithOwner> {
        Arc::new(TokenWithOwner {
            token: AccessToken {
                id,
                application_id: app,
                user_id: user,
                grant_id: None,
                family: vec![],
                scopes: crate::domain::scope::ScopeSet::from_stored("api"),
                created_at: 0,
                expires_at: i64::MAX,
                revoked_at: None,
                resources: Default::default(),
                audience: Default::default(),
                dpop_jkt: None,
            },
            user: None,
            client_id: None,
        })
    }

    fn cache() -> TokenCache {
        TokenCache::new(Duration::from_secs(60), Duration::from_millis(100))
    }

    #[test]
    fn serves_what_was_put_and_forgets_what_is_evicted() {
        let c = cache();
        let e = c.epoch();
        c.put_token([1; 32], e, &token(1, Some(10), Some(100)));
        c.put_token([2; 32], e, &token(2, Some(11), Some(100)));
        c.put_token([3; 32], e, &token(3, Some(11), Some(101)));
        assert_eq!(c.token(&[1; 32]).unwrap().token.id, 1);
        c.evict(&[Invalidation::Token(1)]);
        assert!(c.token(&[1; 32]).is_none());
        c.evict(&[Invalidation::User(11)]);
        assert!(c.token(&[2; 32]).is_none() && c.token(&[3; 32]).is_none());
        assert_eq!(c.len(), (0, 0));
    }

    #[test]
    fn evicting_an_application_drops_its_tokens_too() {
        let c = cache();
        let e = c.epoch();
        c.put_token([1; 32], e, &token(1, Some(10), Some(100)));
        c.put_token([2; 32], e, &token(2, None, Some(101)));
        c.evict(&[Invalidation::Application(100)]);
        assert!(c.token(&[1; 32]).is_none());
        assert!(c.token(&[2; 32]).is_some());
    }

    #[test]
    fn a_fill_that_raced_with_an_eviction_is_dropped() {
        let c = cache();
        let before = c.epoch();
        c.evict(&[Invalidation::Token(7)]);
        c.put_token([7; 32], before, &token(7, None, None));
        assert!(c.token(&[7; 32]).is_none());
    }

    #[test]
    fn revoked_tokens_are_never_cached() {
        let c = cache();
        let mut t = token(1, None, None);
        Arc::make_mut(&mut t).token.revoked_at = Some(5);
        c.put_token([1; 32], c.epoch(), &t);
        assert!(c.token(&[1; 32]).is_none());
    }

    #[test]
    fn an_unhealthy_cache_serves_and_stores_nothing() {
        let c = cache();
        c.put_token([1; 32], c.epoch(), &token(1, None, None));
        c.set_healthy(false);
        assert!(c.token(&[1; 32]).is_none());
        c.put_token([1; 32], c.epoch(), &token(1, None, None));
        assert!(c.token(&[1; 32]).is_none());
        c.set_healthy(true);
        c.put_token([1; 32], c.epoch(), &token(1, None, None));
        assert!(c.token(&[1; 32]).is_some());
    }

    fn claims(valid_until: Option<i64>) -> Arc<UserGroupClaims> {
        Arc::new(UserGroupClaims {
            rows: vec![],
            valid_until,
        })
    }

    #[test]
    fn group_claims_are_forgotten_for_their_user_for_all_or_at_their_first_expiry() {
        let c = cache();
        c.put_group_claims(1, c.epoch(), claims(None));
        c.put_group_claims(2, c.epoch(), claims(Some(1000)));
        c.put_group_claims(3, c.epoch(), claims(None));
        assert!(c.group_claims(2, 999).is_some());
        assert!(c.group_claims(2, 1000).is_none(), "kept past an expiry");
        c.evict(&[Invalidation::GroupClaimsOf(1)]);
        assert!(c.group_claims(1, 0).is_none());
        assert!(c.group_claims(3, 0).is_some());
        c.evict(&[Invalidation::User(3)]);
        assert!(
            c.group_claims(3, 0).is_none(),
            "a changed user keeps claims"
        );
        c.put_group_claims(3, c.epoch(), claims(None));
        c.evict(&[Invalidation::AllGroupClaims]);
        assert!(c.group_claims(3, 0).is_none() && c.group_claims(2, 0).is_none());
        let before = c.epoch();
        c.evict(&[Invalidation::GroupClaimsOf(9)]);
        c.put_group_claims(4, before, claims(None));
        assert!(c.group_claims(4, 0).is_none(), "a fill that raced is kept");
    }

    #[test]
    fn entries_expire_after_the_ttl() {
        let c = TokenCache::new(Duration::ZERO, Duration::from_millis(100));
        c.put_token([1; 32], c.epoch(), &token(1, None, None));
        assert!(c.token(&[1; 32]).is_none());
    }
}
