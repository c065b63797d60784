//! Writing what `doorward import doorkeeper` read (issue 16): one transaction, all or
//! nothing, that also reads what Doorward already holds, so the report of a dry run (rolled
//! back at the end) is the report the real run makes. The rules are in
//! `domain::doorkeeper_import`; this file only applies them. Every source user, application
//! and token it meets is recorded in `imported_credentials` by its source key, so that a
//! second run finds it `existing` whatever became of it here since.

use std::collections::{HashMap, HashSet};

use super::imported_credentials::CredentialKind;
use super::{Backend, Store, StoreResult, on_pool};
use crate::domain::doorkeeper_import::{
    self as rules, Conflict, Counts, ImportCounts, SourceData, TargetMatches, TokenDecision,
    UserDecision,
};
use crate::domain::imported_secret::{self, IMPORTED_SECRET_MARKER, StoredForm};
use crate::domain::scope::ScopeSet;
use crate::domain::secret;

const USER_BY_ID: &str = "SELECT username FROM users WHERE id = $1";
const USER_EXISTS: &str = "SELECT id FROM users WHERE id = $1";
const USER_BY_USERNAME: &str = "SELECT id FROM users WHERE lower(username) = lower($1)";
const USER_BY_EMAIL: &str = "SELECT id FROM users WHERE lower(email) = lower($1)";
/// The highest user id ever handed out here (deleted users' ids included).
const USER_IDS_SQLITE: &str =
    "SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'users'), 0)";
const USER_IDS_POSTGRES: &str = "SELECT COALESCE((SELECT last_value FROM pg_sequences \
     WHERE schemaname = current_schema() AND sequencename = 'users_id_seq'), 0)";
const INSERT_USER: &str = "INSERT INTO users (id, username, email, name, password_hash, is_admin, state, \
     created_at, updated_at, confirmed_at, two_factor_enabled) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, CASE WHEN $9 THEN $8 END, $10)";
/// PostgreSQL: users created later get ids above the imported ones, and the sequence never
/// moves back (its `nextval` burns one id, which only leaves a gap). SQLite's AUTOINCREMENT
/// moves past an explicitly inserted id by itself.
const MOVE_USER_SEQUENCE: &str = "SELECT setval(pg_get_serial_sequence('users', 'id'), \
     GREATEST((SELECT MAX(id) FROM users), nextval(pg_get_serial_sequence('users', 'id')) - 1))";
const APPLICATION_BY_UID: &str = "SELECT id FROM oauth_applications WHERE uid = $1";
const INSERT_APPLICATION: &str = "INSERT INTO oauth_applications (uid, secret_hash, name, redirect_uri, scopes, \
     confidential, trusted, owner_id, created_at, updated_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9) RETURNING id";
const RECORD: &str = "SELECT token_id, application_id FROM imported_credentials \
     WHERE kind = $1 AND form = $2 AND stored = $3";
const INSERT_RECORD: &str = "INSERT INTO imported_credentials (kind, form, stored, token_id, application_id) \
     VALUES ($1, $2, $3, $4, $5)";
const INSERT_TOKEN: &str = "INSERT INTO oauth_access_tokens (token_hash, refresh_token_hash, application_id, \
     user_id, family, scopes, created_at, expires_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id";
/// A second run carries over what the source revoked or rotated since the first.
const REVOKE_TOKEN: &str =
    "UPDATE oauth_access_tokens SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL";
const DROP_REFRESH: &str = "UPDATE oauth_access_tokens SET refresh_token_hash = NULL \
     WHERE id = $1 AND revoked_at IS NULL AND refresh_token_hash IS NOT NULL";

/// Doorward's key for an imported token: its own lookup key when the source kept the
/// plaintext; otherwise 32 random bytes no presented value hashes to, until the value is
/// presented and the row re-stored (`oauth::presented_token`).
fn token_key(stored: &str) -> Vec<u8> {
    match StoredForm::of(stored) {
        StoredForm::Plain => secret::token_key(stored).to_vec(),
        _ => secret::random_bytes::<32>().to_vec(),
    }
}

/// The same for an application secret: SHA-256 of a plaintext one, else the marker that
/// lets the imported forms be tried until the secret changes.
fn secret_hash(stored: &str) -> Vec<u8> {
    match StoredForm::of(stored) {
        StoredForm::Plain => secret::hash(stored).to_vec(),
        _ => IMPORTED_SECRET_MARKER.to_vec(),
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

/// A source record's key: (kind, form, stored).
type Key = (CredentialKind, StoredForm, String);

fn plain_record(kind: CredentialKind, stored: String) -> Key {
    (kind, StoredForm::Plain, stored)
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
        let mut reconciled = false;
        on_pool!(self, p, begin => {
            let mut tx = p.begin_with(begin).await?;
            // A record: (token_id, application_id) when the source key was met before.
            macro_rules! record {
                ($key:expr) => {{
                    let (kind, form, stored): &Key = $key;
                    let found: Option<(Option<i64>, Option<i64>)> = sqlx::query_as(RECORD)
                        .bind(kind.code()).bind(form.code()).bind(stored)
                        .fetch_optional(&mut *tx).await?;
                    found
                }};
            }
            macro_rules! remember {
                ($key:expr, $token:expr, $application:expr) => {{
                    let (kind, form, stored): Key = $key;
                    sqlx::query(INSERT_RECORD)
                        .bind(kind.code()).bind(form.code()).bind(stored)
                        .bind($token).bind($application)
                        .execute(&mut *tx).await?;
                }};
            }

            // Users keep their ids: the OIDC `sub` and /api/v4/user's id are what relying
            // parties key on.
            let ids_handed_out: i64 = sqlx::query_scalar(if postgres { USER_IDS_POSTGRES } else { USER_IDS_SQLITE })
                .fetch_one(&mut *tx).await?;
            let mut users_here = HashSet::new();
            let mut imported_users = false;
            for user in &source.users {
                if !user.is_storable() {
                    report.users.skipped();
                    continue;
                }
                let key = plain_record(CredentialKind::User, user.id.to_string());
                if record!(&key).is_some() {
                    // Met before: the same user, renamed or even deleted here since.
                    report.users.existing();
                    let here: Option<i64> = sqlx::query_scalar(USER_EXISTS)
                        .bind(user.id).fetch_optional(&mut *tx).await?;
                    if here.is_some() {
                        users_here.insert(user.id);
                    }
                    continue;
                }
                let username_of_id: Option<String> = sqlx::query_scalar(USER_BY_ID)
                    .bind(user.id).fetch_optional(&mut *tx).await?;
                let mut target = TargetMatches { username_of_id, ..TargetMatches::default() };
                if target.username_of_id.is_none() {
                    target.id_retired = user.id <= ids_handed_out;
                    target.id_of_username = sqlx::query_scalar(USER_BY_USERNAME)
                        .bind(&user.username).fetch_optional(&mut *tx).await?;
                    target.id_of_email = sqlx::query_scalar(USER_BY_EMAIL)
                        .bind(&user.email).fetch_optional(&mut *tx).await?;
                }
                match rules::decide_user(user, &target) {
                    UserDecision::Existing => report.users.existing(),
                    UserDecision::Conflict(reason) => {
                        report.users.skipped();
                        report.conflicts.push(Conflict {
                            table: "users",
                            source_id: user.id,
                            username: user.username.clone(),
                            reason,
                        });
                        continue;
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
                        imported_users = true;
                    }
                }
                remember!(key, None::<i64>, None::<i64>);
                users_here.insert(user.id);
            }
            if postgres && imported_users && !dry_run {
                sqlx::query(MOVE_USER_SEQUENCE).execute(&mut *tx).await?;
            }

            // Applications by client_id; the source id maps to Doorward's for the tokens.
            let mut applications: HashMap<i64, i64> = HashMap::new();
            let uids: HashMap<i64, &str> = source.applications.iter().map(|a| (a.id, a.uid.as_str())).collect();
            for app in &source.applications {
                if !app.is_storable() {
                    report.applications.skipped();
                    continue;
                }
                let key = plain_record(CredentialKind::Application, app.uid.clone());
                if let Some((_, here)) = record!(&key) {
                    // Met before; still here unless deleted since.
                    report.applications.existing();
                    if let Some(id) = here {
                        applications.insert(app.id, id);
                    }
                    continue;
                }
                let existing: Option<i64> = sqlx::query_scalar(APPLICATION_BY_UID)
                    .bind(&app.uid).fetch_optional(&mut *tx).await?;
                let id = match existing {
                    Some(id) => {
                        report.applications.existing();
                        id
                    }
                    None => {
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
                            let secret = (CredentialKind::ApplicationSecret, form, app.secret.clone());
                            remember!(secret, None::<i64>, Some(id));
                        }
                        report.applications.imported();
                        id
                    }
                };
                remember!(key, None::<i64>, Some(id));
                applications.insert(app.id, id);
            }

            // Tokens by their source row and by their stored value.
            let rotated = rules::rotated_refresh_tokens(&source.access_tokens);
            for token in &source.access_tokens {
                if !token.is_storable() {
                    report.access_tokens.skipped();
                    continue;
                }
                let uid = token.application_id.and_then(|id| uids.get(&id).copied()).unwrap_or("-");
                let row_key = plain_record(CredentialKind::TokenRow, format!("{uid}:{}", token.id));
                let (form, value_key) = imported_secret::record_key(&token.token);
                let value_key = (CredentialKind::AccessToken, form, value_key);
                let by_row = record!(&row_key);
                if by_row.is_some() || record!(&value_key).is_some() {
                    report.access_tokens.existing();
                    // What the source revoked or rotated since the first run stops here too.
                    if let Some((Some(id), _)) = by_row {
                        let refresh_gone = token.refresh_token.as_deref().is_none_or(|r| rotated.contains(r));
                        if token.revoked_at.is_some() {
                            reconciled |= sqlx::query(REVOKE_TOKEN).bind(id).bind(now)
                                .execute(&mut *tx).await?.rows_affected() > 0;
                        } else if refresh_gone {
                            sqlx::query(DROP_REFRESH).bind(id).execute(&mut *tx).await?;
                        }
                    }
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
                // The value records open the row until first presented (plaintext ones are
                // found natively already, and keep no link).
                let link = |form: StoredForm| (form != StoredForm::Plain).then_some(id);
                remember!(row_key, Some(id), None::<i64>);
                let value_link = link(value_key.1);
                remember!(value_key, value_link, None::<i64>);
                if let Some(r) = refresh {
                    let (form, key) = imported_secret::record_key(r);
                    remember!((CredentialKind::RefreshToken, form, key), link(form), None::<i64>);
                }
                report.access_tokens.imported();
            }

            if dry_run {
                tx.rollback().await?;
            } else {
                tx.commit().await?;
            }
        });
        if reconciled && !dry_run {
            // Revoked rows may sit in this node's token cache; the trigger tells the others.
            self.forget_all();
        }
        Ok(report)
    }
}
