//! The mailed links: address confirmation (new accounts and changed addresses) and password
//! reset. Tokens are 256 random bits, sent only in the mail, stored as SHA-256, single use,
//! expiring, and superseded by a newer one of the same purpose (`store::account_tokens`).

use super::{AccountError, notify};
use crate::domain::audit::{Action, AuditEvent};
use crate::domain::password;
use crate::domain::secret::{self, SecretString};
use crate::domain::user::{self, FieldErrors, User};
use crate::mail::Letter;
use crate::state::AppState;
use crate::store::StoreError;
use crate::store::account_tokens::{PURPOSE_CONFIRMATION, PURPOSE_RESET_PASSWORD};

/// Where a confirmation link points (`?confirmation_token=`).
pub const CONFIRMATION_PATH: &str = "/users/confirmation";
/// Where a reset link points (`?reset_password_token=`).
pub const RESET_PATH: &str = "/users/password/edit";

/// Longest token accepted from a link; real ones are 43 characters.
const MAX_TOKEN_LEN: usize = 128;

fn new_token() -> (String, [u8; 32]) {
    let token = secret::base64url(&secret::random_bytes::<32>());
    let hash = secret::hash(&token);
    (token, hash)
}

/// The stored hash of a token from a link, or `None` for something no token can be.
fn hash_of_presented(token: &str) -> Option<[u8; 32]> {
    (!token.is_empty() && token.len() <= MAX_TOKEN_LEN).then(|| secret::hash(token))
}

/// Mails `email` a link that confirms it as `user`'s address.
pub async fn send_confirmation(
    state: &AppState,
    user: &User,
    email: &str,
) -> Result<(), AccountError> {
    let now = state.clock.now();
    let (token, hash) = new_token();
    let lifetime = state.config.accounts.confirmation_lifetime;
    state
        .store
        .create_account_token(
            user.id,
            PURPOSE_CONFIRMATION,
            email,
            &hash,
            now,
            now + lifetime,
            None,
        )
        .await?;
    let link = state
        .mailer
        .link(&format!("{CONFIRMATION_PATH}?confirmation_token={token}"));
    let letter = Letter::Confirmation { link: &link, email };
    state
        .mailer
        .send(&state.store, now, email, &user.name, &letter)
        .await?;
    Ok(())
}

/// Follows a confirmation link: the address it names becomes the user's confirmed address.
/// `None` when the token does not work (unknown, used, superseded, expired).
pub async fn confirm(
    state: &AppState,
    token: &str,
    ip: &str,
) -> Result<Option<User>, AccountError> {
    let Some(hash) = hash_of_presented(token) else {
        return Ok(None);
    };
    let confirmed = state
        .store
        .confirm_email(&hash, state.clock.now(), |id, username| {
            AuditEvent::about_user(Action::EmailConfirmed, Some(id), id, username).from_ip(ip)
        })
        .await;
    let confirmed = match confirmed {
        // Another account took the address since the link was sent: the link no longer
        // works (the transaction rolled back, so nothing changed).
        Err(StoreError::Conflict(_)) => None,
        other => other?,
    };
    match confirmed {
        Some(id) => Ok(state.store.user_by_id(id).await?),
        None => Ok(None),
    }
}

/// Changes `user`'s address to `new_email`. With `confirmed` (an administrator vouches for
/// it) at once; otherwise the new address is pending: the old one stays in use, the new one
/// gets a confirmation link, and the old one a notice without a link.
pub async fn change_email(
    state: &AppState,
    user: &User,
    new_email: &str,
    confirmed: bool,
    audit: AuditEvent,
) -> Result<(), AccountError> {
    let new_email = new_email.trim();
    let mut errors = FieldErrors::default();
    user::validate_email("email", new_email, &mut errors);
    if !errors.is_empty() {
        return Err(AccountError::Invalid(errors));
    }
    let now = state.clock.now();
    let unchanged = new_email.eq_ignore_ascii_case(&user.email);
    if confirmed {
        if unchanged && user.confirmed_at.is_some() && user.unconfirmed_email.is_none() {
            return Ok(());
        }
        state
            .store
            .set_confirmed_email(user.id, new_email, now, &audit.with("email", new_email))
            .await?;
        return Ok(());
    }
    if unchanged {
        return Ok(());
    }
    if user
        .unconfirmed_email
        .as_deref()
        .is_some_and(|pending| pending.eq_ignore_ascii_case(new_email))
    {
        // Asked again for the same pending address: a fresh link, no second notice.
        return send_confirmation(state, user, new_email).await;
    }
    state
        .store
        .set_unconfirmed_email(user.id, new_email, now, &audit.with("email", new_email))
        .await?;
    send_confirmation(state, user, new_email).await?;
    notify(state, user, &Letter::EmailChanged { new_email }).await;
    Ok(())
}

/// Mails an active user a password-reset link, saying where the request came from. A newer
/// request supersedes the older link. `author_id`: the administrator who sent it, if one did.
pub async fn send_password_reset(
    state: &AppState,
    user: &User,
    requested_from: &str,
    author_id: Option<i64>,
) -> Result<(), AccountError> {
    if !user.is_active() {
        return Ok(());
    }
    let now = state.clock.now();
    let (token, hash) = new_token();
    let lifetime = state.config.accounts.reset_password_lifetime;
    let audit = AuditEvent::about_user(
        Action::PasswordResetRequested,
        author_id,
        user.id,
        &user.username,
    )
    .from_ip(requested_from);
    state
        .store
        .create_account_token(
            user.id,
            PURPOSE_RESET_PASSWORD,
            &user.email,
            &hash,
            now,
            now + lifetime,
            Some(&audit),
        )
        .await?;
    let link = state
        .mailer
        .link(&format!("{RESET_PATH}?reset_password_token={token}"));
    let letter = Letter::ResetPassword {
        link: &link,
        requested_from,
        valid_minutes: lifetime / 60,
    };
    state
        .mailer
        .send(&state.store, now, &user.email, &user.name, &letter)
        .await?;
    Ok(())
}

/// Whether a reset link still works (the form is shown only then).
pub async fn reset_token_works(state: &AppState, token: &str) -> Result<bool, AccountError> {
    let Some(hash) = hash_of_presented(token) else {
        return Ok(false);
    };
    Ok(state
        .store
        .account_token_user(&hash, PURPOSE_RESET_PASSWORD, state.clock.now())
        .await?
        .is_some())
}

/// Sets a new password through a reset link: the link is spent, every session of the user
/// ends, and the user is told by mail. `Ok(None)` when the link does not work;
/// `Invalid` when the password is not acceptable (the link still works then).
pub async fn reset_password(
    state: &AppState,
    token: &str,
    new_password: &SecretString,
    ip: &str,
) -> Result<Option<User>, AccountError> {
    let Some(hash) = hash_of_presented(token) else {
        return Ok(None);
    };
    if let Err(e) = password::validate_new_password(new_password.expose()) {
        let mut errors = FieldErrors::default();
        errors.add("password", e.to_string());
        return Err(AccountError::Invalid(errors));
    }
    let password_hash = state
        .hasher
        .hash(new_password)
        .await
        .map_err(|_| AccountError::Hashing)?;
    let reset = state
        .store
        .reset_password_with_token(&hash, &password_hash, state.clock.now(), |id, username| {
            AuditEvent::about_user(Action::PasswordReset, Some(id), id, username).from_ip(ip)
        })
        .await?;
    let Some(id) = reset else {
        return Ok(None);
    };
    let user = state.store.user_by_id(id).await?;
    if let Some(user) = &user {
        notify(state, user, &Letter::PasswordChanged).await;
    }
    Ok(user)
}
