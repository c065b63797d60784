//! Account operations shared by the API, the web pages and the CLI: each validates with
//! the domain rules, hashes what must be hashed, and writes through the store.

use crate::domain::clock::Clock;
use crate::domain::password::{self, PasswordHasher};
use crate::domain::scope::ScopeSet;
use crate::domain::secret::{self, PERSONAL_ACCESS_TOKEN_PREFIX, SecretString};
use crate::domain::user::{self, FieldErrors, NewUser, User};
use crate::store::tokens::{NewPersonalAccessToken, PersonalAccessToken};
use crate::store::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("{}", .0.sentences().join("; "))]
    Invalid(FieldErrors),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("password hashing failed")]
    Hashing,
}

/// Validates and stores a new account. A username or email already taken is
/// `Store(Conflict(..))`.
pub async fn create_user(
    store: &Store,
    hasher: &PasswordHasher,
    clock: &Clock,
    new_user: &NewUser,
    password: &SecretString,
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
    Ok(store.create_user(new_user, &hash, clock.now()).await?)
}

/// Longest accepted token name.
pub const MAX_TOKEN_NAME_LEN: usize = 255;

/// Creates a personal access token and returns it in clear, the only time it exists so.
pub async fn issue_personal_access_token(
    store: &Store,
    clock: &Clock,
    user_id: i64,
    name: &str,
    scopes: &ScopeSet,
    expires_at: Option<i64>,
) -> Result<(SecretString, PersonalAccessToken), AccountError> {
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
    if expires_at.is_some_and(|e| e <= clock.now()) {
        errors.add("expires_at", "must be in the future");
    }
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
            clock.now(),
        )
        .await?;
    Ok((token, record))
}
