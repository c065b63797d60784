//! Failed sign-in counters, kept in the database so that every node sees the same counts
//! (a per-process limiter would let N nodes allow N times the attempts).

use super::{Store, StoreResult, on_pool};

/// The throttling policy for one kind of key.
#[derive(Clone, Copy, Debug)]
pub struct ThrottlePolicy {
    /// Failures allowed within `window` seconds before the key is locked.
    pub max_failures: i64,
    pub window: i64,
    /// How long a lock lasts, in seconds.
    pub lock_for: i64,
}

/// What the counters hold for one key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ThrottleStatus {
    /// Nothing recorded: there is nothing to clear either.
    Clear,
    /// Failures recorded (possibly an old window or a lock that has lifted), not locked now.
    Counting,
    /// Locked for this many more seconds.
    Locked(i64),
}

impl ThrottleStatus {
    pub fn locked_for(self) -> Option<i64> {
        match self {
            ThrottleStatus::Locked(seconds) => Some(seconds),
            ThrottleStatus::Clear | ThrottleStatus::Counting => None,
        }
    }
}

impl Store {
    /// Seconds until the lock on `key` lifts, or `None` when it is not locked.
    pub async fn throttle_locked_for(&self, key: &str, now: i64) -> StoreResult<Option<i64>> {
        Ok(self.throttle_status(key, now).await?.locked_for())
    }

    /// Whether `key` is locked, has failures recorded, or has nothing: one read, which also
    /// tells a successful sign-in whether it has anything to clear.
    pub async fn throttle_status(&self, key: &str, now: i64) -> StoreResult<ThrottleStatus> {
        let until: Option<i64> = on_pool!(self, p => sqlx::query_scalar(
            "SELECT locked_until FROM sign_in_throttles WHERE throttle_key = $1")
            .bind(key)
            .fetch_optional(p)
            .await)?;
        Ok(match until {
            None => ThrottleStatus::Clear,
            Some(until) if until > now => ThrottleStatus::Locked(until - now),
            Some(_) => ThrottleStatus::Counting,
        })
    }

    /// Counts one failure for `key` (one atomic upsert, safe across nodes) and locks the key
    /// once the policy's limit is reached within the window.
    pub async fn throttle_record_failure(
        &self,
        key: &str,
        policy: ThrottlePolicy,
        now: i64,
    ) -> StoreResult<bool> {
        const SQL: &str = "INSERT INTO sign_in_throttles (throttle_key, failures, window_started_at, locked_until) \
             VALUES ($1, 1, $2, CASE WHEN $3 <= 1 THEN $2 + $5 ELSE 0 END) \
             ON CONFLICT (throttle_key) DO UPDATE SET \
               failures = CASE WHEN sign_in_throttles.window_started_at <= $2 - $4 THEN 1 \
                               ELSE sign_in_throttles.failures + 1 END, \
               window_started_at = CASE WHEN sign_in_throttles.window_started_at <= $2 - $4 THEN $2 \
                                        ELSE sign_in_throttles.window_started_at END, \
               locked_until = CASE WHEN sign_in_throttles.window_started_at > $2 - $4 \
                                        AND sign_in_throttles.failures + 1 >= $3 THEN $2 + $5 \
                                   ELSE sign_in_throttles.locked_until END \
             RETURNING locked_until";
        let locked_until: i64 = on_pool!(self, p => sqlx::query_scalar(SQL)
            .bind(key)
            .bind(now)
            .bind(policy.max_failures)
            .bind(policy.window)
            .bind(policy.lock_for)
            .fetch_one(p)
            .await)?;
        // True when this very failure started the lock (the audit log's lockout event).
        Ok(locked_until == now + policy.lock_for)
    }

    /// Forgets the failures of `key` (after a successful sign-in).
    pub async fn throttle_clear(&self, key: &str) -> StoreResult<()> {
        on_pool!(self, p => sqlx::query("DELETE FROM sign_in_throttles WHERE throttle_key = $1")
            .bind(key)
            .execute(p)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Drops counters whose window and lock have both passed.
    pub async fn purge_throttles(&self, now: i64, window: i64) -> StoreResult<u64> {
        let done = on_pool!(self, p => sqlx::query(
            "DELETE FROM sign_in_throttles WHERE window_started_at <= $1 AND locked_until <= $2")
            .bind(now - window)
            .bind(now)
            .execute(p)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(done)
    }
}
