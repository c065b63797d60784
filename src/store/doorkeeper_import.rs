//! Writing what `doorward import doorkeeper` read (issue 16): one transaction, all or
//! nothing, that also reads what Doorward already holds, so the report of a dry run (rolled
//! back at the end) is the report the real run makes. The rules are in
//! `domain::doorkeeper_import`; this file only applies them.

use std::collections::{HashMap, HashSet};

use super::imported_credentials::CredentialKind;
use super::{Backend, Store, StoreResult, on_pool};
use crate::domain::doorkeeper_import::{
    self as rules, Conflict, Counts, ImportCounts, SourceData, TargetMatches, TokenDecision,
    UserDecision,
};
use crate::domain::imported_secret::{self, StoredForm};
use crate::domain::scope::ScopeSet;
use crate::domain::secret;

const USER_BY_ID: &str = "SELECT username FROM users WHERE id = $1";
const USER_BY_USERNAME: &str = "SELECT id FROM users WHERE lower(username) = lower($1)";
const USER_BY_EMAIL: &str = "SELECT id FROM users WHERE lower(email) = lower($1)";
const INSERT_USER: &str = "INSERT INTO users (id, username, email, name, password_hash, is_admin, state, \
     created_at, updated_at, confirmed_at, two_factor_enabled) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, CASE WHEN $9 THEN $8 END, $10)";
/// PostgreSQL: users created later get ids above the imported ones. (SQLite's AUTOINCREMENT
/// moves past an explicitly inserted id by itself.)
const MOVE_USER_SEQUENCE: &str = "SELECT setval(pg_get_serial_sequence('users', 'id'), \
     (SELECT MAX(id) FROM users))";
const APPLICATION_BY_UID: &str = "SELECT id FROM oauth_applications WHERE uid = $1";
const INSERT_APPLICATION: &str = "INSERT INTO oauth_applications (uid, secret_hash, name, redirect_uri, scopes, \
     confidential, trusted, owner_id, created_at, updated_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9) RETURNING id";
const CREDENTIAL_EXISTS: &str =
    "SELECT target_id FROM imported_credentials WHERE kind = $1 AND form = $2 AND stored = $3";
const INSERT_CREDENTIAL: &str =
    "INSERT INTO imported_credentials (kind, form, stored, target_id) VALUES ($1, $2, $3, $4)";
const INSERT_TOKEN: &str = "INSERT INTO oauth_access_tokens (token_hash, refresh_token_hash, application_id, \
     user_id, family, scopes, created_at, expires_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id";

/// Doorward's key for an imported token: its own lookup key when the source kept the
/// plaintext; otherwise 32 random bytes no presented value hashes to, until the value is
/// presented and the row re-stored (`oauth::presented_token`).
fn token_key(stored: &str) -> Vec<u8> {
    match StoredForm::of(stored) {
        StoredForm::Plain => secret::token_key(stored).to_vec(),
        _ => secret::random_bytes::<32>().to_vec(),
    }
}

/// The same for an application secret (Doorward keeps SHA-256 of the secret).
fn secret_hash(stored: &str) -> Vec<u8> {
    match StoredForm::of(stored) {
        StoredForm::Plain => secret::hash(stored).to_vec(),
        _ => secret::random_bytes::<32>().to_vec(),
    }
}

/// doorkeeper keeps one redirect URI per line; so does Doorward, without blank lines.
fn redirect_lines(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

fn new_family() -> Vec<u8> {
    let mut family = secret::ordered_id().to_vec();
    family.extend_from_slice(&secret::random_bytes::<8>());
    family
}

impl Store {
    /// Imports `source` (or, with `dry_run`, finds out what importing it would do).
    pub async fn import_doorkeeper(
        &self,
        source: &SourceData,
        dry_run: bool,
        now: i64,
    ) -> StoreResult<ImportCounts> {
        let postgres = self.backend() == Backend::Postgres;
        let mut report = ImportCounts {
            access_grants: Counts::skipped_all(source.access_grants),
            openid_requests: Counts::skipped_all(source.openid_requests),
            device_grants: Counts::skipped_all(source.device_grants),
            ..ImportCounts::default()
        };
        on_pool!(self, p, begin => {
            let mut tx = p.begin_with(begin).await?;

            // Users keep their ids: the OIDC `sub` and /api/v4/user's id are what relying
            // parties key on.
            let mut users_here = HashSet::new();
            let mut imported_users = false;
            for user in &source.users {
                if !user.is_storable() {
                    report.users.skipped();
                    continue;
                }
                let username_of_id: Option<String> = sqlx::query_scalar(USER_BY_ID)
                    .bind(user.id).fetch_optional(&mut *tx).await?;
                let mut target = TargetMatches { username_of_id, ..TargetMatches::default() };
                if target.username_of_id.is_none() {
                    target.id_of_username = sqlx::query_scalar(USER_BY_USERNAME)
                        .bind(&user.username).fetch_optional(&mut *tx).await?;
                    target.id_of_email = sqlx::query_scalar(USER_BY_EMAIL)
                        .bind(&user.email).fetch_optional(&mut *tx).await?;
                }
                match rules::decide_user(user, &target) {
                    UserDecision::Existing => {
                        report.users.existing();
                        users_here.insert(user.id);
                    }
                    UserDecision::Conflict(reason) => {
                        report.users.skipped();
                        report.conflicts.push(Conflict {
                            table: "users",
                            source_id: user.id,
                            username: user.username.clone(),
                            reason,
                        });
                    }
                    UserDecision::Import => {
                        // A second factor GitLab required stays required: enabled, with no
                        // authenticator here (its secret is encrypted with GitLab's key), so
                        // neither the password form nor the password grant lets the password
                        // alone in until an administrator resets it.
                        sqlx::query(INSERT_USER)
                            .bind(user.id)
                            .bind(&user.username)
                            .bind(&user.email)
                            .bind(user.name.as_deref().filter(|n| !n.is_empty()).unwrap_or(&user.username))
                            .bind(&user.encrypted_password)
                            .bind(user.admin)
                            .bind(user.doorward_state())
                            .bind(now)
                            .bind(user.confirmed)
                            .bind(user.otp_required_for_login)
                            .execute(&mut *tx)
                            .await?;
                        report.users.imported();
                        users_here.insert(user.id);
                        imported_users = true;
                    }
                }
            }
            if postgres && imported_users {
                sqlx::query(MOVE_USER_SEQUENCE).execute(&mut *tx).await?;
            }

            // Applications by client_id; the source id maps to Doorward's for the tokens.
            let mut applications: HashMap<i64, i64> = HashMap::new();
            for app in &source.applications {
                if !app.is_storable() {
                    report.applications.skipped();
                    continue;
                }
                let existing: Option<i64> = sqlx::query_scalar(APPLICATION_BY_UID)
                    .bind(&app.uid).fetch_optional(&mut *tx).await?;
                if let Some(id) = existing {
                    report.applications.existing();
                    applications.insert(app.id, id);
                    continue;
                }
                let id: i64 = sqlx::query_scalar(INSERT_APPLICATION)
                    .bind(&app.uid)
                    .bind(secret_hash(&app.secret))
                    .bind(if app.name.is_empty() { &app.uid } else { &app.name })
                    .bind(redirect_lines(&app.redirect_uri))
                    .bind(ScopeSet::from_stored(&app.scopes).to_string())
                    .bind(app.confidential)
                    .bind(app.trusted)
                    .bind(rules::application_owner(app, &users_here))
                    .bind(now)
                    .fetch_one(&mut *tx)
                    .await?;
                let form = StoredForm::of(&app.secret);
                if form != StoredForm::Plain {
                    sqlx::query(INSERT_CREDENTIAL)
                        .bind(CredentialKind::ApplicationSecret.code())
                        .bind(form.code())
                        .bind(&app.secret)
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                }
                report.applications.imported();
                applications.insert(app.id, id);
            }

            // Tokens by their stored value, whose record stays after any re-store or rotation.
            let rotated = rules::rotated_refresh_tokens(&source.access_tokens);
            for token in &source.access_tokens {
                if !token.is_storable() {
                    report.access_tokens.skipped();
                    continue;
                }
                // Imported before (whatever became of it since, expiry included): existing.
                let (form, key) = imported_secret::record_key(&token.token);
                let existing: Option<i64> = sqlx::query_scalar(CREDENTIAL_EXISTS)
                    .bind(CredentialKind::AccessToken.code())
                    .bind(form.code())
                    .bind(&key)
                    .fetch_optional(&mut *tx)
                    .await?;
                if existing.is_some() {
                    report.access_tokens.existing();
                    continue;
                }
                let owner_here = token.resource_owner_id.is_some_and(|id| users_here.contains(&id));
                let application = token.application_id.and_then(|id| applications.get(&id).copied());
                let decision = rules::decide_token(token, owner_here, application.is_some(), &rotated, now);
                let TokenDecision::Import { with_refresh } = decision else {
                    report.access_tokens.skipped();
                    continue;
                };
                let refresh = token.refresh_token.as_deref().filter(|_| with_refresh);
                let id: i64 = sqlx::query_scalar(INSERT_TOKEN)
                    .bind(token_key(&token.token))
                    .bind(refresh.map(token_key))
                    .bind(application)
                    .bind(token.resource_owner_id)
                    .bind(new_family())
                    .bind(ScopeSet::from_stored(&token.scopes).to_string())
                    .bind(token.created_at)
                    .bind(token.expires_at())
                    .fetch_one(&mut *tx)
                    .await?;
                let records = std::iter::once((CredentialKind::AccessToken, form, key))
                    .chain(refresh.map(|r| {
                        let (form, key) = imported_secret::record_key(r);
                        (CredentialKind::RefreshToken, form, key)
                    }));
                for (kind, form, key) in records {
                    sqlx::query(INSERT_CREDENTIAL)
                        .bind(kind.code())
                        .bind(form.code())
                        .bind(key)
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                }
                report.access_tokens.imported();
            }

            if dry_run {
                tx.rollback().await?;
            } else {
                tx.commit().await?;
            }
        });
        Ok(report)
    }
}
