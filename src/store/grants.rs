//! Authorization codes (RFC 6749 §4.1.2): stored only as their hash, consumed once.
//!
//! Single use is enforced by one conditional UPDATE (`... WHERE consumed_at IS NULL`), which
//! gives exactly one winner on both backends and across nodes, and the token pair is
//! inserted in the same short transaction.

use super::reader::{FromSqliteRow, Route};
pub use super::rows::{Grant, NewGrant};
use super::rows::{GrantRow, NewToken};
use super::users::user_columns;
use super::writer::ClaimSql;
use super::{FromRowAt, Store, StoreResult, on_pool};
use crate::domain::user::User;

impl Store {
    /// Stores the code; with `g.pushed_request`, spends that request in the same
    /// transaction. `false` (nothing stored) when the request was spent or expired already,
    /// so two racing consents get one code between them.
    pub async fn create_grant(&self, g: &NewGrant<'_>, now: i64) -> StoreResult<bool> {
        const INSERT: &str = "INSERT INTO oauth_grants (code_hash, application_id, user_id, redirect_uri, scopes, \
             code_challenge, code_challenge_method, nonce, auth_time, created_at, expires_at, session_id, resources, dpop_jkt) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)";
        // A dynamically registered client's first code marks it as used (never purged as
        // a stale registration); later codes change no row.
        const FIRST_USE: &str = "UPDATE oauth_applications SET first_used_at = $2 \
             WHERE id = $1 AND first_used_at IS NULL";
        on_pool!(self, p, begin => {
            let mut tx = p.begin_with(begin).await?;
            if let Some(pushed) = g.pushed_request {
                let spent = sqlx::query(super::pushed_requests::SPEND).bind(pushed).bind(now).execute(&mut *tx).await?;
                if spent.rows_affected() != 1 {
                    return Ok(false);
                }
            }
            sqlx::query(INSERT)
                .bind(g.code_hash)
                .bind(g.application_id)
                .bind(g.user_id)
                .bind(g.redirect_uri)
                .bind(g.scopes)
                .bind(g.code_challenge.map(|c| c.value.as_str()))
                .bind(g.code_challenge.map(|c| c.method.as_str()))
                .bind(g.nonce)
                .bind(g.auth_time)
                .bind(now)
                .bind(g.expires_at)
                .bind(g.session_id)
                .bind(g.resources)
                .bind(g.dpop_jkt)
                .execute(&mut *tx)
                .await?;
            if g.dynamic_client {
                sqlx::query(FIRST_USE).bind(g.application_id).bind(now).execute(&mut *tx).await?;
            }
            tx.commit().await?;
        });
        Ok(true)
    }

    /// The code with this hash and the user it was issued to, in one read (one indexed
    /// lookup and the user by primary key; the user cannot be missing: deleting a user
    /// deletes their codes).
    pub async fn grant_by_code_hash(&self, code_hash: &[u8]) -> StoreResult<Option<(Grant, User)>> {
        const SQL: &str = concat!(
            "SELECT g.id, g.application_id, g.user_id, g.redirect_uri, g.scopes, g.code_challenge, \
             g.code_challenge_method, g.nonce, g.auth_time, g.created_at, g.expires_at, g.consumed_at, \
             g.session_id, g.resources, g.dpop_jkt, ",
            user_columns!("u."),
            " FROM oauth_grants g JOIN users u ON u.id = g.user_id WHERE g.code_hash = $1"
        );
        /// The user's columns follow the code's fifteen.
        const FIRST_USER_COLUMN: usize = 15;
        let key = code_hash.to_vec();
        // On the writer's thread, whose cache holds the row: the exchange claims it next.
        let native = self.read_natively(Route::Writer, move |conn| {
            use rusqlite::OptionalExtension;
            conn.prepare_cached(SQL)?
                .query_row([&key], |row| {
                    Ok((
                        GrantRow::from_sqlite_row(row, 0)?,
                        User::from_sqlite_row(row, FIRST_USER_COLUMN)?,
                    ))
                })
                .optional()
        });
        let found = match native.await {
            Some(found) => found?,
            None => {
                on_pool!(self, read p => match sqlx::query(SQL).bind(code_hash).fetch_optional(p).await? {
                    Some(row) => Some((GrantRow::from_row_at(&row, 0)?, User::from_row_at(&row, FIRST_USER_COLUMN)?)),
                    None => None,
                })
            }
        };
        Ok(match found {
            Some((grant, user)) => Some((Grant::try_from(grant)?, user)),
            None => None,
        })
    }

    /// Consumes the code and inserts the token pair, atomically. `None` when the code had
    /// already been consumed (a replay, or a concurrent exchange that won).
    pub async fn exchange_grant(
        &self,
        grant_id: i64,
        token: &NewToken<'_>,
        now: i64,
    ) -> StoreResult<Option<i64>> {
        const CONSUME: ClaimSql = ClaimSql {
            one: "UPDATE oauth_grants SET consumed_at = $2 WHERE id = $1 AND consumed_at IS NULL",
            many: "UPDATE oauth_grants SET consumed_at = $2 WHERE id = ANY($1) AND consumed_at IS NULL \
                   RETURNING id",
            link: None,
        };
        self.claim_then_insert_token(CONSUME, grant_id, now, token)
            .await
    }
}
