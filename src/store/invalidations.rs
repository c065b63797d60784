//! Keeping each node's [`TokenCache`] right: the cached lookups, the evictions a node makes
//! for its own writes, and the poll of the `cache_invalidations` log written by triggers
//! (migration 0006) for everyone else's. On PostgreSQL the same triggers also NOTIFY each
//! row as it commits (migration 0007) and every node LISTENs, so in practice an eviction
//! reaches the other nodes in milliseconds; the poll stays the guarantee (a node that misses
//! a message while its listening connection is down still reads the row at its next poll).

use std::sync::Arc;
use std::time::Duration;

use super::cache::{Invalidation, TokenCache};
use super::rows::TokenWithOwner;
use super::{Pool, Store, StoreResult, on_pool};
use crate::domain::application::Application;

/// Log rows are kept this long (seconds); a node that has not polled for that long has
/// emptied its cache anyway (a failed poll empties it).
const LOG_RETENTION: i64 = 3600;

/// Where a node's reading of the log stands.
#[derive(Clone, Copy, Debug)]
enum Cursor {
    /// SQLite: the last row id applied. SQLite has one writer, so ids are committed in order.
    LastId(i64),
    /// PostgreSQL: the snapshot xmin of the previous poll; rows of transactions from there
    /// on are read again, because they may have committed since.
    Xmin(i64),
}

impl Store {
    /// Turns the cache on. Nothing is served from it until [`Store::follow_invalidations`]
    /// runs and its first poll succeeds.
    pub fn enable_token_cache(&mut self, ttl: Duration, poll: Duration) {
        let cache = TokenCache::new(ttl, poll);
        cache.set_healthy(false);
        self.token_cache = Some(Arc::new(cache));
    }

    /// The cache, when enabled (for metrics and tests).
    pub fn token_cache(&self) -> Option<&TokenCache> {
        self.token_cache.as_deref()
    }

    /// Polls the invalidation log, and on PostgreSQL listens for its notifications, for as
    /// long as the server runs.
    pub async fn follow_invalidations(self) {
        let Some(cache) = self.token_cache.clone() else {
            return;
        };
        if let Pool::Postgres(p) = &self.pool {
            tokio::join!(
                self.poll_invalidations_forever(&cache),
                listen_for_invalidations(p, &cache)
            );
        } else {
            self.poll_invalidations_forever(&cache).await;
        }
    }

    async fn poll_invalidations_forever(&self, cache: &TokenCache) {
        let mut tick = tokio::time::interval(cache.poll);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut cursor = None;
        loop {
            tick.tick().await;
            match self.poll_invalidations(cache, cursor).await {
                Ok(next) => {
                    cursor = Some(next);
                    cache.set_healthy(true);
                }
                Err(e) => {
                    if cursor.is_some() {
                        tracing::warn!(error = %e, "cannot read cache invalidations; token cache off until the database answers");
                    }
                    cursor = None;
                    cache.set_healthy(false);
                }
            }
        }
    }

    /// One poll: applies the rows after `cursor` (or, at first, only finds where the log
    /// ends: the cache is empty then) and returns the new cursor.
    async fn poll_invalidations(
        &self,
        cache: &TokenCache,
        cursor: Option<Cursor>,
    ) -> StoreResult<Cursor> {
        const XMIN: &str = "SELECT pg_snapshot_xmin(pg_current_snapshot())::TEXT::BIGINT";
        const SINCE_XMIN: &str =
            "SELECT kind, subject FROM cache_invalidations WHERE txid >= $1 ORDER BY id";
        const LAST_ID: &str = "SELECT COALESCE(MAX(id), 0) FROM cache_invalidations";
        const AFTER_ID: &str = "SELECT id, kind, subject FROM cache_invalidations WHERE id > $1 ORDER BY id LIMIT 5000";
        match (&self.pool, cursor) {
            (Pool::Postgres(p), cursor) => {
                // Taken before reading the rows: everything older than it is committed, so
                // it is visible to the read that follows.
                let xmin: i64 = sqlx::query_scalar(XMIN).fetch_one(p).await?;
                if let Some(Cursor::Xmin(from)) = cursor {
                    let rows: Vec<(i16, i64)> =
                        sqlx::query_as(SINCE_XMIN).bind(from).fetch_all(p).await?;
                    apply(cache, rows.into_iter());
                }
                Ok(Cursor::Xmin(xmin))
            }
            (Pool::Sqlite { read, .. }, Some(Cursor::LastId(mut last))) => loop {
                let rows: Vec<(i64, i16, i64)> =
                    sqlx::query_as(AFTER_ID).bind(last).fetch_all(read).await?;
                let Some(&(id, _, _)) = rows.last() else {
                    return Ok(Cursor::LastId(last));
                };
                last = id;
                apply(cache, rows.into_iter().map(|(_, k, s)| (k, s)));
            },
            (Pool::Sqlite { read, .. }, _) => {
                let last: i64 = sqlx::query_scalar(LAST_ID).fetch_one(read).await?;
                Ok(Cursor::LastId(last))
            }
        }
    }

    /// Deletes log rows every node has long applied.
    pub async fn purge_cache_invalidations(&self, now: i64) -> StoreResult<u64> {
        const SQL: &str = "DELETE FROM cache_invalidations WHERE created_at <= $1";
        Ok(on_pool!(self, p => sqlx::query(SQL)
            .bind(now - LOG_RETENTION)
            .execute(p)
            .await
            .map(|r| r.rows_affected()))?)
    }

    /// A cached lookup of a token; `read` runs the query on a miss.
    pub(super) async fn cached_token<F>(
        &self,
        key: &[u8],
        read: F,
    ) -> StoreResult<Option<Arc<TokenWithOwner>>>
    where
        F: Future<Output = StoreResult<Option<Arc<TokenWithOwner>>>>,
    {
        let (Some(cache), Ok(key)) = (&self.token_cache, <[u8; 32]>::try_from(key)) else {
            return read.await;
        };
        if let Some(hit) = cache.token(&key) {
            return Ok(Some(hit));
        }
        let epoch = cache.epoch();
        let found = read.await?;
        if let Some(found) = &found {
            cache.put_token(key, epoch, found);
        }
        Ok(found)
    }

    /// A cached lookup of an application by `client_id`; `read` runs the query on a miss.
    pub(super) async fn cached_application<F>(
        &self,
        client_id: &str,
        read: F,
    ) -> StoreResult<Option<Application>>
    where
        F: Future<Output = StoreResult<Option<Application>>>,
    {
        let Some(cache) = &self.token_cache else {
            return read.await;
        };
        if let Some(hit) = cache.application(client_id) {
            return Ok(Some(hit));
        }
        let epoch = cache.epoch();
        let found = read.await?;
        if let Some(found) = &found {
            cache.put_application(epoch, found);
        }
        Ok(found)
    }

    /// This node changed `what`: evict it here before answering (other nodes learn it from
    /// the log).
    pub(super) fn forget(&self, what: Invalidation) {
        if let Some(cache) = &self.token_cache {
            cache.evict(&[what]);
        }
    }

    /// This node revoked tokens it cannot name cheaply (a whole chain, grant or
    /// authorization): forget every cached token and application.
    pub(super) fn forget_all(&self) {
        if let Some(cache) = &self.token_cache {
            cache.clear();
        }
    }
}

/// The channel the PostgreSQL trigger notifies (migration 0007); each payload is
/// `kind:subject`, as in a row of the log.
const CHANNEL: &str = "doorward_cache_invalidations";

/// Evicts what each notification names, reconnecting (after a pause) whenever the
/// listening connection is lost. Missed messages are not an error: the poll reads them.
async fn listen_for_invalidations(pool: &sqlx::PgPool, cache: &TokenCache) {
    loop {
        match sqlx::postgres::PgListener::connect_with(pool).await {
            Ok(mut listener) => {
                if let Err(e) = listener.listen(CHANNEL).await {
                    tracing::debug!(error = %e, "cannot LISTEN for cache invalidations");
                } else {
                    // `try_recv` gives `None` when the connection was lost; the loop then
                    // reconnects (sqlx's `recv` would reconnect by itself, silently).
                    while let Ok(Some(message)) = listener.try_recv().await {
                        if let Some(invalidation) = parse_notification(message.payload()) {
                            cache.evict(&[invalidation]);
                        }
                    }
                }
            }
            Err(e) => {
                tracing::debug!(error = %e, "cannot connect to LISTEN for cache invalidations")
            }
        }
        tokio::time::sleep(cache.poll).await;
    }
}

/// `kind:subject`, both decimal.
fn parse_notification(payload: &str) -> Option<Invalidation> {
    let (kind, subject) = payload.split_once(':')?;
    Invalidation::from_row(kind.parse().ok()?, subject.parse().ok()?)
}

fn apply(cache: &TokenCache, rows: impl Iterator<Item = (i16, i64)>) {
    let evictions: Vec<Invalidation> = rows
        .filter_map(|(kind, subject)| Invalidation::from_row(kind, subject))
        .collect();
    cache.evict(&evictions);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notifications_name_what_the_log_names() {
        assert_eq!(parse_notification("1:42"), Some(Invalidation::Token(42)));
        assert_eq!(parse_notification("2:7"), Some(Invalidation::User(7)));
        assert_eq!(
            parse_notification("3:9"),
            Some(Invalidation::Application(9))
        );
        assert_eq!(
            parse_notification("4:7"),
            Some(Invalidation::GroupClaimsOf(7))
        );
        assert_eq!(
            parse_notification("5:1"),
            Some(Invalidation::AllGroupClaims)
        );
        for bad in ["", "1", "1:", ":5", "9:1", "1:x", "1:2:3"] {
            assert_eq!(parse_notification(bad), None, "{bad:?}");
        }
    }
}
