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

/// What Doorward holds, read once at the start of the import's transaction and kept up to
/// date in memory as it goes: per-row queries made a 200,000-token import take minutes.
const ALL_USERS: &str = "SELECT id, username, email FROM users";
const ALL_RECORDS: &str =
    "SELECT kind, form, stored, token_id, application_id FROM imported_credentials";
/// The highest user id ever handed out here (deleted users' ids included).
const USER_IDS_SQLITE: &str =
    "SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'users'), 0)";
const USER_IDS_POSTGRES: &str = "SELECT COALESCE((SELECT last_value FROM pg_sequences \
     WHERE schemaname = current_schema() AND sequencename = 'users_id_seq'), 0)";
/// PostgreSQL: users created later, or signing up while the import runs, get ids above
/// the imported ones ($1, the highest), so the sequence moves there before the inserts; it
/// never moves back (its `nextval` burns one id, which only leaves a gap). Sequences are
/// not transactional, so a dry run leaves it alone. SQLite's AUTOINCREMENT moves past an
/// explicitly inserted id by itself.
const MOVE_USER_SEQUENCE: &str = "SELECT setval(pg_get_serial_sequence('users', 'id'), \
     GREATEST($1, nextval(pg_get_serial_sequence('users', 'id')) - 1))";
const APPLICATION_BY_UID: &str = "SELECT id FROM oauth_applications WHERE uid = $1";
const INSERT_APPLICATION: &str = "INSERT INTO oauth_applications (uid, secret_hash, name, redirect_uri, scopes, \
     confidential, trusted, owner_id, created_at, updated_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9) RETURNING id";
/// Rows per multi-row INSERT. sqlx's SQLite driver looks each `$n` up among the
/// statement's parameter names, a cost that grows with their square: 64 rows (up to 704
/// parameters) took 28 s instead of 47 s with 500 rows for a 200,000-token import.
const CHUNK: usize = 64;
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
    if stored.is_empty() {
        // No secret at the source: none opens it here (SHA-256 of "" would be one).
        return secret::random_bytes::<32>().to_vec();
    }
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

/// A record's key in memory: (kind, form, stored).
type Key = (i16, i16, String);

fn key(kind: CredentialKind, form: StoredForm, stored: String) -> Key {
    (kind.code(), form.code(), stored)
}

fn plain_key(kind: CredentialKind, stored: String) -> Key {
    key(kind, StoredForm::Plain, stored)
}

/// A record to write: its key, `token_id`, `application_id`.
type NewRecord = (Key, Option<i64>, Option<i64>);

/// A record as stored: kind, form, stored, `token_id`, `application_id`.
type RecordRow = (i16, i16, String, Option<i64>, Option<i64>);

/// What a met record links to: (`token_id`, `application_id`).
type Links = (Option<i64>, Option<i64>);

/// A token row to write, and the records that will point at it.
struct NewToken {
    token_hash: Vec<u8>,
    refresh_hash: Option<Vec<u8>>,
    application_id: Option<i64>,
    user_id: Option<i64>,
    scopes: String,
    created_at: i64,
    expires_at: i64,
    /// Each record, and whether it keeps a link to the row (hashed forms do, until the
    /// value is presented; plaintext ones are found natively already).
    records: Vec<(Key, bool)>,
}

/// `INSERT INTO <table> (<columns>) VALUES (...), (...)` for `rows` rows, numbered `$n` as
/// both backends take them.
fn insert_sql(head: &str, columns: usize, rows: usize, tail: &str) -> String {
    let mut sql = String::from(head);
    sql.push_str(" VALUES ");
    for row in 0..rows {
        sql.push_str(if row == 0 { "(" } else { ", (" });
        for column in 0..columns {
            if column > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!("${}", row * columns + column + 1));
        }
        sql.push(')');
    }
    sql.push_str(tail);
    sql
}

const USERS_HEAD: &str = "INSERT INTO users (id, username, email, name, password_hash, is_admin, state, \
     created_at, updated_at, confirmed_at, two_factor_enabled)";
const TOKENS_HEAD: &str = "INSERT INTO oauth_access_tokens (token_hash, refresh_token_hash, application_id, \
     user_id, family, scopes, created_at, expires_at)";
const RECORDS_HEAD: &str =
    "INSERT INTO imported_credentials (kind, form, stored, token_id, application_id)";

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
            // A dry run only reads: on SQLite a deferred BEGIN takes no write lock.
            let mut tx = p.begin_with(if dry_run { "BEGIN" } else { begin }).await?;
            // Every record met before: key → (token_id, application_id).
            let mut ledger: HashMap<Key, Links> = HashMap::new();
            let rows: Vec<RecordRow> =
                sqlx::query_as(ALL_RECORDS).fetch_all(&mut *tx).await?;
            for (kind, form, stored, token, application) in rows {
                ledger.insert((kind, form, stored), (token, application));
            }
            let mut records: Vec<NewRecord> = Vec::new();
            let mut remember = |ledger: &mut HashMap<Key, Links>, record: NewRecord| {
                ledger.insert(record.0.clone(), (record.1, record.2));
                records.push(record);
            };

            // Users keep their ids: the OIDC `sub` and /api/v4/user's id are what relying
            // parties key on.
            let ids_handed_out: i64 = sqlx::query_scalar(if postgres { USER_IDS_POSTGRES } else { USER_IDS_SQLITE })
                .fetch_one(&mut *tx).await?;
            let all_users: Vec<(i64, String, String)> = sqlx::query_as(ALL_USERS).fetch_all(&mut *tx).await?;
            let mut username_of_id: HashMap<i64, String> = HashMap::new();
            let mut id_of_username: HashMap<String, i64> = HashMap::new();
            let mut id_of_email: HashMap<String, i64> = HashMap::new();
            for (id, username, email) in all_users {
                id_of_username.insert(username.to_lowercase(), id);
                id_of_email.insert(email.to_lowercase(), id);
                username_of_id.insert(id, username);
            }
            let mut users_here = HashSet::new();
            let mut new_users = Vec::new();
            for user in &source.users {
                if !user.is_storable() {
                    report.users.skipped();
                    continue;
                }
                // The source id with the source username: another source's user with the
                // same id is not this one.
                let user_key = plain_key(
                    CredentialKind::User,
                    format!("{}:{}", user.id, user.username.to_lowercase()),
                );
                if ledger.contains_key(&user_key) {
                    // Met before: the same user, renamed or even deleted here since.
                    report.users.existing();
                    if username_of_id.contains_key(&user.id) {
                        users_here.insert(user.id);
                    }
                    continue;
                }
                let mut target = TargetMatches {
                    username_of_id: username_of_id.get(&user.id).cloned(),
                    ..TargetMatches::default()
                };
                if target.username_of_id.is_none() {
                    target.id_retired = user.id <= ids_handed_out;
                    target.id_of_username = id_of_username.get(&user.username.to_lowercase()).copied();
                    target.id_of_email = id_of_email.get(&user.email.to_lowercase()).copied();
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
                        id_of_username.insert(user.username.to_lowercase(), user.id);
                        id_of_email.insert(user.email.to_lowercase(), user.id);
                        username_of_id.insert(user.id, user.username.clone());
                        new_users.push(user);
                        report.users.imported();
                    }
                }
                remember(&mut ledger, (user_key, None, None));
                users_here.insert(user.id);
            }
            let highest = new_users.iter().map(|user| user.id).max();
            if let Some(highest) = highest.filter(|_| postgres && !dry_run) {
                sqlx::query(MOVE_USER_SEQUENCE).bind(highest).execute(&mut *tx).await?;
            }
            // A dry run writes nothing: its report comes from the decisions alone.
            for chunk in new_users.chunks(CHUNK).filter(|_| !dry_run) {
                let sql = insert_sql(USERS_HEAD, 11, chunk.len(), "");
                let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
                for user in chunk {
                    // A second factor GitLab required stays required: enabled, with no
                    // authenticator here (its secret is encrypted with GitLab's key), so
                    // neither the password form nor the password grant lets the password
                    // alone in until an administrator resets it.
                    query = query
                        .bind(user.id)
                        .bind(&user.username)
                        .bind(&user.email)
                        .bind(user.name.as_deref().filter(|n| !n.is_empty()).unwrap_or(&user.username))
                        .bind(&user.encrypted_password)
                        .bind(user.admin)
                        .bind(user.doorward_state())
                        .bind(now)
                        .bind(now)
                        .bind(user.confirmed.then_some(now))
                        .bind(user.otp_required_for_login);
                }
                query.execute(&mut *tx).await?;
            }

            // Applications by client_id; the source id maps to Doorward's for the tokens.
            let mut applications: HashMap<i64, i64> = HashMap::new();
            let uids: HashMap<i64, &str> = source.applications.iter().map(|a| (a.id, a.uid.as_str())).collect();
            for app in &source.applications {
                if !app.is_storable() {
                    report.applications.skipped();
                    continue;
                }
                let app_key = plain_key(CredentialKind::Application, app.uid.clone());
                if let Some((_, here)) = ledger.get(&app_key) {
                    // Met before; still here unless deleted since.
                    report.applications.existing();
                    if let Some(id) = here {
                        applications.insert(app.id, *id);
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
                    // A dry run only needs to know the application would be here.
                    None if dry_run => {
                        report.applications.imported();
                        0
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
                            let secret = key(CredentialKind::ApplicationSecret, form, app.secret.clone());
                            remember(&mut ledger, (secret, None, Some(id)));
                        }
                        report.applications.imported();
                        id
                    }
                };
                remember(&mut ledger, (app_key, None, Some(id)));
                applications.insert(app.id, id);
            }

            // Tokens by their source row and by their stored value.
            let rotated = rules::rotated_refresh_tokens(&source.access_tokens);
            let mut new_tokens = Vec::new();
            for token in &source.access_tokens {
                if !token.is_storable() {
                    report.access_tokens.skipped();
                    continue;
                }
                // A row is known by its application's uid (unique across sources) and its id;
                // a row without an application only by its value.
                let uid = token.application_id.and_then(|id| uids.get(&id).copied());
                let row_key = uid.map(|uid| plain_key(CredentialKind::TokenRow, format!("{uid}:{}", token.id)));
                let (form, stored) = imported_secret::record_key(&token.token);
                let value_key = key(CredentialKind::AccessToken, form, stored);
                let by_row = row_key.as_ref().and_then(|k| ledger.get(k).copied());
                if by_row.is_some() || ledger.contains_key(&value_key) {
                    report.access_tokens.existing();
                    // What the source revoked or rotated since the first run stops here too
                    // (the row only: `token_id` is NULL once the row is gone).
                    let Some((Some(id), _)) = by_row.filter(|_| !dry_run) else { continue };
                    // Only a row imported with its refresh token has one to drop.
                    let refresh_here = token.refresh_token.as_deref().is_some_and(|r| {
                        let (form, stored) = imported_secret::record_key(r);
                        ledger.contains_key(&key(CredentialKind::RefreshToken, form, stored))
                    });
                    let refresh_rotated = token.refresh_token.as_deref().is_some_and(|r| rotated.contains(r));
                    if token.revoked_at.is_some() {
                        reconciled |= sqlx::query(REVOKE_TOKEN).bind(id).bind(now)
                            .execute(&mut *tx).await?.rows_affected() > 0;
                    } else if refresh_here && refresh_rotated {
                        sqlx::query(DROP_REFRESH).bind(id).execute(&mut *tx).await?;
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
                // A refresh value met before (twice in the source, or by an earlier run for
                // another row) stays with its first row.
                let refresh = token.refresh_token.as_deref().filter(|r| {
                    let (form, stored) = imported_secret::record_key(r);
                    with_refresh && !ledger.contains_key(&key(CredentialKind::RefreshToken, form, stored))
                });
                let mut token_records: Vec<(Key, bool)> = row_key.into_iter().map(|k| (k, true)).collect();
                token_records.push((value_key, form != StoredForm::Plain));
                if let Some(r) = refresh {
                    let (form, stored) = imported_secret::record_key(r);
                    token_records.push((key(CredentialKind::RefreshToken, form, stored), form != StoredForm::Plain));
                }
                for (record, _) in &token_records {
                    // Known from here on, so a value twice in the source comes in once.
                    ledger.insert(record.clone(), (None, None));
                }
                new_tokens.push(NewToken {
                    token_hash: token_key(&token.token),
                    refresh_hash: refresh.map(token_key),
                    application_id: application,
                    user_id: token.resource_owner_id,
                    scopes: ScopeSet::from_stored(&token.scopes).to_string(),
                    created_at: token.created_at,
                    expires_at: token.expires_at(),
                    records: token_records,
                });
                report.access_tokens.imported();
            }
            for chunk in new_tokens.chunks(CHUNK).filter(|_| !dry_run) {
                let sql = insert_sql(TOKENS_HEAD, 8, chunk.len(), " RETURNING id, token_hash");
                let mut query = sqlx::query_as::<_, (i64, Vec<u8>)>(sqlx::AssertSqlSafe(sql));
                for t in chunk {
                    query = query
                        .bind(&t.token_hash)
                        .bind(&t.refresh_hash)
                        .bind(t.application_id)
                        .bind(t.user_id)
                        .bind(secret::new_family().to_vec())
                        .bind(&t.scopes)
                        .bind(t.created_at)
                        .bind(t.expires_at);
                }
                // Matched back by key: RETURNING promises no order.
                let ids: HashMap<Vec<u8>, i64> = query
                    .fetch_all(&mut *tx)
                    .await?
                    .into_iter()
                    .map(|(id, hash)| (hash, id))
                    .collect();
                for t in chunk {
                    let id = ids.get(&t.token_hash).copied().ok_or_else(|| {
                        sqlx::Error::Protocol("an inserted token's id did not come back".into())
                    })?;
                    for (record, link) in &t.records {
                        records.push((record.clone(), link.then_some(id), None));
                    }
                }
            }
            for chunk in records.chunks(CHUNK).filter(|_| !dry_run) {
                let sql = insert_sql(RECORDS_HEAD, 5, chunk.len(), "");
                let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
                for ((kind, form, stored), token, application) in chunk {
                    query = query.bind(kind).bind(form).bind(stored).bind(token).bind(application);
                }
                query.execute(&mut *tx).await?;
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
