//! Account operations shared by the API, the web pages and the CLI: each validates with
//! the domain rules, hashes what must be hashed, and writes through the store.

use crate::domain::audit::AuditEvent;
use crate::domain::clock::{Clock, date, parse_date_end_of_day};
use crate::domain::password::{self, PasswordHasher};
use crate::domain::scope::ScopeSet;
use crate::domain::secret::{self, PERSONAL_ACCESS_TOKEN_PREFIX, SecretString};
use crate::domain::user::{self, FieldErrors, NewUser, User};
use crate::mail::{Letter, MailError};
use crate::state::AppState;
use crate::store::personal_access_tokens::{NewPersonalAccessToken, PersonalAccessToken};
use crate::store::{Store, StoreError};

/// Sends `letter` to the user's address. Queuing can only fail with the database, and a
/// notice must never undo or fail what it reports, so a failure is logged, not returned.
pub async fn notify(state: &AppState, user: &User, letter: &Letter<'_>) {
    if let Err(e) = state
        .mailer
        .send(
            &state.store,
            state.clock.now(),
            &user.email,
            &user.name,
            letter,
        )
        .await
    {
        tracing::error!(user_id = user.id, error = %e, "cannot queue a notice");
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("{}", .0.sentences().join("; "))]
    Invalid(FieldErrors),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("password hashing failed")]
    Hashing,
    #[error(transparent)]
    Mail(#[from] MailError),
}

pub mod approval;
pub mod links;

/// Validates and stores a new account, with `audit` (ids filled in once known). A username
/// or email already taken is `Store(Conflict(..))`.
pub async fn create_user(
    store: &Store,
    hasher: &PasswordHasher,
    clock: &Clock,
    new_user: &NewUser,
    password: &SecretString,
    audit: Option<&AuditEvent>,
) -> Result<User, AccountError> {
    let mut errors = user::validate_new_user(new_user);
    if let Err(e) = password::validate_new_password(password.expose()) {
        errors.add("password", e.to_string());
    }
    if !errors.is_empty() {
        return Err(AccountError::Invalid(errors));
    }
    let hash = hasher
        .hash(password)
        .await
        .map_err(|_| AccountError::Hashing)?;
    Ok(store
        .create_user(new_user, &hash, clock.now(), audit)
        .await?)
}

/// Creates an account as the API, the admin area and sign-up do: stored with `audit`, then
/// a confirmation mail to its address unless it counts as confirmed already.
pub async fn create_account(
    state: &AppState,
    new_user: &NewUser,
    password: &SecretString,
    audit: AuditEvent,
) -> Result<User, AccountError> {
    let user = create_user(
        &state.store,
        &state.hasher,
        &state.clock,
        new_user,
        password,
        Some(&audit),
    )
    .await?;
    if user.confirmed_at.is_none() {
        links::send_confirmation(state, &user, &user.email).await?;
    }
    Ok(user)
}

/// Longest accepted token name.
pub const MAX_TOKEN_NAME_LEN: usize = 255;

/// The longest lifetime the settings page gives a token, in days: GitLab's default cap.
pub const MAX_TOKEN_LIFETIME_DAYS: i64 = 365;
/// The expiry the settings page suggests, in days from today (GitLab's default too).
pub const DEFAULT_TOKEN_LIFETIME_DAYS: i64 = 30;

const DAY: i64 = 86_400;

/// The last second of the UTC day holding `t`.
fn end_of_day(t: i64) -> i64 {
    t - t.rem_euclid(DAY) + DAY - 1
}

/// The first and last expiry dates (`YYYY-MM-DD`) the settings page accepts: tomorrow, and
/// [`MAX_TOKEN_LIFETIME_DAYS`] from today.
pub fn token_expiry_bounds(now: i64) -> (String, String) {
    (date(now + DAY), date(now + MAX_TOKEN_LIFETIME_DAYS * DAY))
}

/// Reads the expiry date the settings page posts (`YYYY-MM-DD`) into the Unix second at
/// which that day ends. As in GitLab the date is required and at most a year away; today is
/// refused too, because a token that dies within hours is almost always a slip.
pub fn token_expiry_from_date(text: &str, now: i64, errors: &mut FieldErrors) -> Option<i64> {
    let text = text.trim();
    if text.is_empty() {
        errors.add("expires_at", "can't be blank");
        return None;
    }
    let Some(end) = parse_date_end_of_day(text) else {
        errors.add("expires_at", "is not a date (use YYYY-MM-DD)");
        return None;
    };
    let today = end_of_day(now);
    let last = today + MAX_TOKEN_LIFETIME_DAYS * DAY;
    if end <= today {
        errors.add("expires_at", "must be after today");
        return None;
    }
    if end > last {
        errors.add(
            "expires_at",
            format!(
                "must be at most {MAX_TOKEN_LIFETIME_DAYS} days from today ({} or earlier)",
                date(last)
            ),
        );
        return None;
    }
    Some(end)
}

/// The rules every new personal access token follows, whoever makes it.
pub fn validate_personal_access_token(
    name: &str,
    scopes: &ScopeSet,
    expires_at: Option<i64>,
    now: i64,
) -> FieldErrors {
    let mut errors = FieldErrors::default();
    user::validate_text("name", name, true, &mut errors);
    if scopes.is_empty() {
        errors.add("scopes", "can't be blank");
    }
    if let Some(s) = scopes.iter().find(|s| s.oidc) {
        errors.add(
            "scopes",
            format!("{} is not available for personal access tokens", s.name),
        );
    }
    if expires_at.is_some_and(|e| e <= now) {
        errors.add("expires_at", "must be in the future");
    }
    errors
}

/// Creates a personal access token and returns it in clear, the only time it exists so.
pub async fn issue_personal_access_token(
    store: &Store,
    clock: &Clock,
    user_id: i64,
    name: &str,
    scopes: &ScopeSet,
    expires_at: Option<i64>,
    audit: &AuditEvent,
) -> Result<(SecretString, PersonalAccessToken), AccountError> {
    let errors = validate_personal_access_token(name, scopes, expires_at, clock.now());
    if !errors.is_empty() {
        return Err(AccountError::Invalid(errors));
    }
    let token = secret::generate(PERSONAL_ACCESS_TOKEN_PREFIX);
    let record = store
        .create_personal_access_token(
            &NewPersonalAccessToken {
                user_id,
                name: name.trim(),
                token_hash: &secret::hash(token.expose()),
                scopes: &scopes.to_string(),
                expires_at,
            },
            audit,
            clock.now(),
        )
        .await?;
    Ok((token, record))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2024-05-31 12:00:00 UTC.
    const NOON: i64 = 1_717_156_800;

    fn expiry(text: &str) -> Result<i64, Vec<String>> {
        let mut errors = FieldErrors::default();
        token_expiry_from_date(text, NOON, &mut errors).ok_or_else(|| errors.sentences())
    }

    #[test]
    fn expiry_dates_run_from_tomorrow_to_a_year_ahead() {
        assert_eq!(
            token_expiry_bounds(NOON),
            ("2024-06-01".to_string(), "2025-05-31".to_string())
        );
        assert_eq!(expiry("2024-06-01").map(date), Ok("2024-06-01".to_string()));
        assert_eq!(
            expiry(" 2025-05-31 ").map(date),
            Ok("2025-05-31".to_string())
        );
        assert_eq!(
            expiry("2024-05-31"),
            Err(vec!["Expires at must be after today".into()])
        );
        assert!(expiry("2020-01-01").is_err());
        let too_far = expiry("2025-06-01").err().unwrap_or_default();
        assert_eq!(
            too_far,
            ["Expires at must be at most 365 days from today (2025-05-31 or earlier)"]
        );
        assert_eq!(expiry(""), Err(vec!["Expires at can't be blank".into()]));
        assert!(expiry("31/05/2025").is_err());
    }

    #[test]
    fn tokens_need_a_name_and_api_scopes() {
        let oidc = ScopeSet::parse("openid").unwrap_or_default();
        let errors = validate_personal_access_token("", &oidc, Some(NOON - 1), NOON);
        assert_eq!(
            errors.sentences(),
            [
                "Name can't be blank",
                "Scopes openid is not available for personal access tokens",
                "Expires at must be in the future"
            ]
        );
        let api = ScopeSet::parse("api").unwrap_or_default();
        assert!(validate_personal_access_token("ci", &api, None, NOON).is_empty());
    }
}

/// The outcome of checking a password typed on the sign-in page or sent with the password
/// grant.
#[derive(Debug)]
pub enum PasswordCheck {
    /// The password is right (the account may still be blocked: the caller decides).
    Valid(Box<User>),
    /// Unknown login or wrong password: one answer for both. For the audit log only: the
    /// account when the login names one, and whether this failure locked the login.
    Invalid {
        user: Option<Box<User>>,
        locked_now: bool,
    },
    /// Too many recent failures for this login or address; locked for this many seconds.
    Locked(i64),
}

/// Checks `password` for `login` (username or email) from `ip`, counting failures in the
/// throttle both doors share. An unknown login costs the same Argon2id verification as a
/// wrong password, so timing does not tell them apart.
pub async fn check_password(
    store: &Store,
    hasher: &PasswordHasher,
    clock: &Clock,
    login: &str,
    password: &SecretString,
    ip: std::net::IpAddr,
) -> Result<PasswordCheck, StoreError> {
    use crate::domain::sign_in_throttle::{self as throttle, ADDRESS_POLICY, LOGIN_POLICY};
    use crate::store::throttles::ThrottleStatus;
    let now = clock.now();
    let (login_key, address_key) = (throttle::login_key(login), throttle::address_key(ip));
    let login_status = store.throttle_status(&login_key, now).await?;
    if let Some(seconds) = login_status.locked_for() {
        return Ok(PasswordCheck::Locked(seconds));
    }
    if let Some(seconds) = store.throttle_locked_for(&address_key, now).await? {
        return Ok(PasswordCheck::Locked(seconds));
    }
    let user = store.user_by_login(login).await?;
    let valid = hasher
        .verify(password, user.as_ref().map(|u| u.password_hash.as_str()))
        .await;
    match user {
        Some(user) if valid => {
            // Most sign-ins follow no failure: then the read above found no row and there is
            // nothing to delete, so the write is skipped. A failure recorded by a concurrent
            // attempt since that read stays counted, as if it had come just after.
            if login_status != ThrottleStatus::Clear {
                store.throttle_clear(&login_key).await?;
            }
            if crate::domain::password::needs_rehash(&user.password_hash) {
                rehash(store, hasher, &user, password).await;
            }
            Ok(PasswordCheck::Valid(Box::new(user)))
        }
        user => {
            let locked_now = store
                .throttle_record_failure(&login_key, LOGIN_POLICY, now)
                .await?;
            store
                .throttle_record_failure(&address_key, ADDRESS_POLICY, now)
                .await?;
            Ok(PasswordCheck::Invalid {
                user: user.map(Box::new),
                locked_now,
            })
        }
    }
}

/// Replaces an imported (bcrypt) or outdated hash after it verified: the password is known
/// only now. A failure leaves the old hash, which keeps verifying.
async fn rehash(store: &Store, hasher: &PasswordHasher, user: &User, password: &SecretString) {
    let result = match hasher.hash(password).await {
        Ok(new_hash) => store
            .rehash_password(user.id, &user.password_hash, &new_hash)
            .await
            .map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    match result {
        Ok(()) => tracing::info!(user_id = user.id, "password hash upgraded to Argon2id"),
        Err(e) => tracing::warn!(user_id = user.id, error = %e, "password rehash failed"),
    }
}
