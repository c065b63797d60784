//! Users.

use super::audit_events::insert_audit_event;
use super::cache::Invalidation;
use super::reader::{FromSqliteRow, Route};
use super::{Store, StoreError, StoreResult, impl_from_row, on_pool};
use crate::domain::audit::AuditEvent;
use crate::domain::user::{NewUser, Profile, User};

impl_from_row!(User {
    id: i64,
    username: String,
    email: String,
    name: String,
    password_hash: String,
    is_admin: bool,
    state: String,
    public_email: String,
    website_url: String,
    bio: String,
    location: String,
    organization: String,
    job_title: String,
    created_at: i64,
    updated_at: i64,
    last_sign_in_at: Option<i64>,
    current_sign_in_at: Option<i64>,
    two_factor_enabled: bool,
    confirmed_at: Option<i64>,
    unconfirmed_email: Option<String>,
} and rusqlite);

/// Every column of `users`, in `User`'s order.
/// With a table name or alias and its dot (`user_columns!("u.")`), qualified, for joins.
macro_rules! user_columns {
    () => {
        $crate::store::users::user_columns!("")
    };
    ($t:literal) => {
        concat!(
            $t,
            "id, ",
            $t,
            "username, ",
            $t,
            "email, ",
            $t,
            "name, ",
            $t,
            "password_hash, ",
            $t,
            "is_admin, ",
            $t,
            "state, ",
            $t,
            "public_email, ",
            $t,
            "website_url, ",
            $t,
            "bio, ",
            $t,
            "location, ",
            $t,
            "organization, ",
            $t,
            "job_title, ",
            $t,
            "created_at, ",
            $t,
            "updated_at, ",
            $t,
            "last_sign_in_at, ",
            $t,
            "current_sign_in_at, ",
            $t,
            "two_factor_enabled, ",
            $t,
            "confirmed_at, ",
            $t,
            "unconfirmed_email"
        )
    };
}
pub(crate) use user_columns;

/// Filters of the user list (GitLab's `GET /users` parameters).
#[derive(Clone, Debug, Default)]
pub struct UserFilter {
    /// Exact username, case-insensitive.
    pub username: Option<String>,
    /// Substring of username, name or (when `search_email`) email, case-insensitive.
    pub search: Option<String>,
    pub search_email: bool,
    pub state: Option<&'static str>,
    /// Administrators only (the admin area's filter).
    pub admins: bool,
    /// With (`Some(true)`) or without two-factor authentication.
    pub two_factor: Option<bool>,
    /// Newest first (the admin area, as GitLab's), else oldest first (the API).
    pub newest_first: bool,
}

impl Store {
    /// Stores a new account; `audit` (about the new user: its ids are filled in here, once
    /// known) commits with it.
    pub async fn create_user(
        &self,
        user: &NewUser,
        password_hash: &str,
        now: i64,
        audit: Option<&AuditEvent>,
    ) -> StoreResult<User> {
        const SQL: &str = concat!(
            "INSERT INTO users (username, email, name, password_hash, is_admin, state, public_email, \
             website_url, bio, location, organization, job_title, created_at, updated_at, confirmed_at) \
             VALUES ($1, $2, $3, $4, $5, $13, $6, $7, $8, $9, $10, $11, $12, $12, \
             CASE WHEN $14 THEN $12 END) RETURNING ",
            user_columns!()
        );
        let p = &user.profile;
        on_pool!(self, pool, begin => {
            let mut tx = pool.begin_with(begin).await?;
            let created: User = sqlx::query_as(SQL)
                .bind(&user.username)
                .bind(&user.email)
                .bind(&user.name)
                .bind(password_hash)
                .bind(user.is_admin)
                .bind(&p.public_email)
                .bind(&p.website_url)
                .bind(&p.bio)
                .bind(&p.location)
                .bind(&p.organization)
                .bind(&p.job_title)
                .bind(now)
                .bind(user.state)
                .bind(user.confirmed)
                .fetch_one(&mut *tx)
                .await?;
            if let Some(audit) = audit {
                let event = audit.clone().about_new_user(created.id);
                insert_audit_event!(&mut *tx, &event, now);
            }
            tx.commit().await?;
            Ok(created)
        })
    }

    pub async fn count_users(&self) -> StoreResult<i64> {
        Ok(
            on_pool!(self, read p => sqlx::query_scalar("SELECT COUNT(*) FROM users").fetch_one(p).await)?,
        )
    }

    pub async fn user_by_id(&self, id: i64) -> StoreResult<Option<User>> {
        const SQL: &str = concat!("SELECT ", user_columns!(), " FROM users WHERE id = $1");
        let native = self.read_natively(Route::Readers, move |conn| {
            use rusqlite::OptionalExtension;
            conn.prepare_cached(SQL)?
                .query_row([id], |row| User::from_sqlite_row(row, 0))
                .optional()
        });
        if let Some(found) = native.await {
            return found;
        }
        Ok(on_pool!(self, read p => sqlx::query_as(SQL).bind(id).fetch_optional(p).await)?)
    }

    /// Finds a user by username, case-insensitively.
    pub async fn user_by_username(&self, username: &str) -> StoreResult<Option<User>> {
        const SQL: &str = concat!(
            "SELECT ",
            user_columns!(),
            " FROM users WHERE lower(username) = lower($1)"
        );
        Ok(on_pool!(self, read p => sqlx::query_as(SQL).bind(username).fetch_optional(p).await)?)
    }

    /// Finds a user by username or email, case-insensitively (the sign-in field takes either).
    pub async fn user_by_login(&self, login: &str) -> StoreResult<Option<User>> {
        const SQL: &str = concat!(
            "SELECT ",
            user_columns!(),
            " FROM users WHERE lower(username) = lower($1) OR lower(email) = lower($1) LIMIT 1"
        );
        Ok(on_pool!(self, read p => sqlx::query_as(SQL).bind(login).fetch_optional(p).await)?)
    }

    /// One page of users ordered by id, and the total matching the filter.
    pub async fn list_users(
        &self,
        filter: &UserFilter,
        limit: i64,
        offset: i64,
    ) -> StoreResult<(Vec<User>, i64)> {
        // Every filter is always bound; a NULL parameter switches its condition off, so the
        // statement text stays constant (no SQL is built from input).
        macro_rules! filtered {
            ($select:literal, $tail:literal) => {
                concat!(
                    $select,
                    " FROM users WHERE ($1 IS NULL OR lower(username) = lower($1)) \
                     AND ($2 IS NULL OR lower(username) LIKE $2 ESCAPE '\\' \
                          OR lower(name) LIKE $2 ESCAPE '\\' \
                          OR ($3 AND lower(email) LIKE $2 ESCAPE '\\')) \
                     AND ($4 IS NULL OR state = $4) \
                     AND (NOT $5 OR is_admin) \
                     AND ($6 IS NULL OR two_factor_enabled = $6)",
                    $tail
                )
            };
        }
        const LIST: &str = filtered!(
            "SELECT id, username, email, name, password_hash, is_admin, state, public_email, \
             website_url, bio, location, organization, job_title, created_at, updated_at, \
             last_sign_in_at, current_sign_in_at, two_factor_enabled, confirmed_at, unconfirmed_email",
            " ORDER BY id LIMIT $7 OFFSET $8"
        );
        const NEWEST_FIRST: &str = filtered!(
            "SELECT id, username, email, name, password_hash, is_admin, state, public_email, \
             website_url, bio, location, organization, job_title, created_at, updated_at, \
             last_sign_in_at, current_sign_in_at, two_factor_enabled, confirmed_at, unconfirmed_email",
            " ORDER BY id DESC LIMIT $7 OFFSET $8"
        );
        const COUNT: &str = filtered!("SELECT COUNT(*)", "");
        let search = filter
            .search
            .as_ref()
            .map(|s| format!("%{}%", escape_like(&s.to_lowercase())));
        on_pool!(self, read p => {
            let users: Vec<User> = sqlx::query_as(if filter.newest_first { NEWEST_FIRST } else { LIST })
                .bind(filter.username.as_deref())
                .bind(search.as_deref())
                .bind(filter.search_email)
                .bind(filter.state)
                .bind(filter.admins)
                .bind(filter.two_factor)
                .bind(limit)
                .bind(offset)
                .fetch_all(p)
                .await?;
            let total: i64 = sqlx::query_scalar(COUNT)
                .bind(filter.username.as_deref())
                .bind(search.as_deref())
                .bind(filter.search_email)
                .bind(filter.state)
                .bind(filter.admins)
                .bind(filter.two_factor)
                .fetch_one(p)
                .await?;
            Ok((users, total))
        })
    }

    /// Sets the state (active / blocked / pending approval). Any state but active also ends
    /// every browser session of the user, in the same transaction (with `audit`), so a block
    /// takes effect on every node at once.
    pub async fn set_user_state(
        &self,
        id: i64,
        state: &str,
        audit: &AuditEvent,
        now: i64,
    ) -> StoreResult<()> {
        on_pool!(self, p, begin => {
            let mut tx = p.begin_with(begin).await?;
            let done = sqlx::query("UPDATE users SET state = $2, updated_at = $3 WHERE id = $1")
                .bind(id)
                .bind(state)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
            if state != crate::domain::user::STATE_ACTIVE {
                sqlx::query("DELETE FROM sessions WHERE user_id = $1").bind(id).execute(&mut *tx).await?;
            }
            insert_audit_event!(&mut *tx, audit, now);
            tx.commit().await?;
            self.forget(Invalidation::User(id));
            Ok(())
        })
    }

    pub async fn update_profile(
        &self,
        id: i64,
        name: &str,
        email: &str,
        profile: &Profile,
        now: i64,
    ) -> StoreResult<()> {
        const SQL: &str = "UPDATE users SET name = $2, email = $3, public_email = $4, website_url = $5, \
             bio = $6, location = $7, organization = $8, job_title = $9, updated_at = $10 WHERE id = $1";
        let done = on_pool!(self, p => sqlx::query(SQL)
            .bind(id)
            .bind(name)
            .bind(email)
            .bind(&profile.public_email)
            .bind(&profile.website_url)
            .bind(&profile.bio)
            .bind(&profile.location)
            .bind(&profile.organization)
            .bind(&profile.job_title)
            .bind(now)
            .execute(p)
            .await
            .map(|r| r.rows_affected()))?;
        self.forget(Invalidation::User(id));
        if done == 0 {
            Err(StoreError::NotFound)
        } else {
            Ok(())
        }
    }

    /// Changes the password, ends every other browser session of the user, spends their
    /// password-reset links, and records `audit`, in one transaction.
    pub async fn set_password(
        &self,
        id: i64,
        password_hash: &str,
        keep_session_hash: Option<&[u8]>,
        audit: &AuditEvent,
        now: i64,
    ) -> StoreResult<()> {
        on_pool!(self, p, begin => {
            let mut tx = p.begin_with(begin).await?;
            sqlx::query("UPDATE users SET password_hash = $2, updated_at = $3 WHERE id = $1")
                .bind(id)
                .bind(password_hash)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM sessions WHERE user_id = $1 AND ($2 IS NULL OR token_hash <> $2)")
                .bind(id)
                .bind(keep_session_hash)
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM account_tokens WHERE user_id = $1 AND purpose = 'reset_password'")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            insert_audit_event!(&mut *tx, audit, now);
            tx.commit().await?;
            self.forget(Invalidation::User(id));
            Ok(())
        })
    }

    /// Replaces a password hash that just verified by one at our parameters (an imported
    /// bcrypt hash at its first use, issue 16), unless the password changed meanwhile.
    pub async fn rehash_password(
        &self,
        id: i64,
        old_hash: &str,
        new_hash: &str,
    ) -> StoreResult<()> {
        const SQL: &str =
            "UPDATE users SET password_hash = $3 WHERE id = $1 AND password_hash = $2";
        on_pool!(self, p => sqlx::query(SQL).bind(id).bind(old_hash).bind(new_hash).execute(p).await.map(|_| ()))?;
        self.forget(Invalidation::User(id));
        Ok(())
    }

    /// Marks a sign-in of user `id` and records `audit` with it.
    pub async fn record_sign_in(&self, id: i64, audit: &AuditEvent, now: i64) -> StoreResult<()> {
        const SQL: &str = "UPDATE users SET last_sign_in_at = current_sign_in_at, current_sign_in_at = $2 WHERE id = $1";
        on_pool!(self, p, begin => {
            let mut tx = p.begin_with(begin).await?;
            sqlx::query(SQL).bind(id).bind(now).execute(&mut *tx).await?;
            insert_audit_event!(&mut *tx, audit, now);
            tx.commit().await?;
            Ok::<(), StoreError>(())
        })?;
        self.forget(Invalidation::User(id));
        Ok(())
    }
}

/// Escapes the `LIKE` wildcards so a search term matches literally.
pub(super) fn escape_like(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
