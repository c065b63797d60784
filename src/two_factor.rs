//! Two-factor operations shared by the sign-in challenge and the two-factor settings page:
//! set-up, confirmation, checking a code or a recovery code (each accepted once), new
//! recovery codes, and turning it off. The rules are in [`crate::domain::two_factor`]; this
//! module adds the keys, the clock and the store.

use crate::domain::secret::SecretString;
use crate::domain::two_factor::{self as rules, Attempt, TotpSecret};
use crate::state::AppState;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum TwoFactorError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The stored secret does not decrypt under the current master key.
    #[error("a TOTP secret does not decrypt: was DOORWARD_SECRET_KEY changed?")]
    Undecryptable,
    /// AES-256-GCM refused the key; cannot happen with a 32-byte key.
    #[error("cannot encrypt a TOTP secret")]
    Encryption,
}

/// What a submitted code turned out to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Checked {
    /// A current authenticator code, not used before; now it is.
    Code,
    /// An unused recovery code; now it is used.
    RecoveryCode,
    /// Wrong, malformed, already used, or two-factor authentication is off.
    Invalid,
}

impl Checked {
    pub fn is_valid(self) -> bool {
        self != Checked::Invalid
    }
}

fn decrypt(state: &AppState, user_id: i64, stored: &[u8]) -> Result<TotpSecret, TwoFactorError> {
    rules::decrypt_secret(&state.totp_key, user_id, stored).ok_or(TwoFactorError::Undecryptable)
}

/// Starts set-up: a new secret, stored encrypted and unconfirmed (replacing an abandoned
/// one). `None` when two-factor authentication is already on.
pub async fn begin_setup(
    state: &AppState,
    user_id: i64,
) -> Result<Option<TotpSecret>, TwoFactorError> {
    let secret = TotpSecret::generate();
    let sealed = rules::encrypt_secret(&state.totp_key, user_id, &secret)
        .ok_or(TwoFactorError::Encryption)?;
    let stored = state
        .store
        .begin_two_factor_setup(user_id, &sealed, state.clock.now())
        .await?;
    Ok(stored.then_some(secret))
}

/// The secret of a set-up in progress, to show again; `None` if none is pending.
pub async fn pending_secret(
    state: &AppState,
    user_id: i64,
) -> Result<Option<TotpSecret>, TwoFactorError> {
    match state.store.two_factor_by_user(user_id).await? {
        Some(record) if record.confirmed_at.is_none() => {
            Ok(Some(decrypt(state, user_id, &record.secret_encrypted)?))
        }
        _ => Ok(None),
    }
}

/// Finishes set-up with the first code from the app. On success two-factor authentication
/// is on, the user's other sessions are over, and the new recovery codes are returned: the
/// only time they exist in clear. `None` if the code is wrong or nothing is pending.
pub async fn confirm(
    state: &AppState,
    user_id: i64,
    code: &str,
    keep_session: &[u8],
    audit: &crate::domain::audit::AuditEvent,
) -> Result<Option<Vec<SecretString>>, TwoFactorError> {
    let Attempt::Code(code) = rules::classify(code) else {
        return Ok(None);
    };
    let Some(secret) = pending_secret(state, user_id).await? else {
        return Ok(None);
    };
    let now = state.clock.now();
    let Some(step) = rules::verify_code(&secret, &code, now) else {
        return Ok(None);
    };
    let codes = rules::generate_recovery_codes();
    let hashes = hashes_of(&codes);
    let done = state
        .store
        .confirm_two_factor(user_id, step, &hashes, keep_session, audit, now)
        .await?;
    Ok(done.then_some(codes))
}

fn hashes_of(codes: &[SecretString]) -> Vec<[u8; 32]> {
    codes
        .iter()
        .filter_map(|c| rules::recovery_code_hash(c.expose()))
        .collect()
}

/// Checks a code or a recovery code for a user with two-factor authentication on, and uses
/// it up: a code's time step is recorded (a replay in the same window is `Invalid`), a
/// recovery code is marked used.
pub async fn check(
    state: &AppState,
    user_id: i64,
    attempt: &str,
) -> Result<Checked, TwoFactorError> {
    match rules::classify(attempt) {
        Attempt::Code(code) => {
            let Some(record) = state.store.two_factor_by_user(user_id).await? else {
                return Ok(Checked::Invalid);
            };
            if record.confirmed_at.is_none() {
                return Ok(Checked::Invalid);
            }
            let secret = decrypt(state, user_id, &record.secret_encrypted)?;
            let Some(step) = rules::verify_code(&secret, &code, state.clock.now()) else {
                return Ok(Checked::Invalid);
            };
            // Cheap early answer for the common replay; the conditional UPDATE is the
            // authority when two requests race.
            if step <= record.last_used_step {
                return Ok(Checked::Invalid);
            }
            let fresh = state.store.use_two_factor_step(user_id, step).await?;
            Ok(if fresh {
                Checked::Code
            } else {
                Checked::Invalid
            })
        }
        Attempt::RecoveryCode(canonical) => {
            let hash = crate::domain::secret::hash(&canonical);
            let used = state
                .store
                .use_recovery_code(user_id, &hash, state.clock.now())
                .await?;
            Ok(if used {
                Checked::RecoveryCode
            } else {
                Checked::Invalid
            })
        }
        Attempt::Malformed => Ok(Checked::Invalid),
    }
}

/// Replaces the user's recovery codes with new ones and returns them in clear, once.
pub async fn regenerate_recovery_codes(
    state: &AppState,
    user_id: i64,
) -> Result<Vec<SecretString>, TwoFactorError> {
    let codes = rules::generate_recovery_codes();
    state
        .store
        .replace_recovery_codes(user_id, &hashes_of(&codes), state.clock.now())
        .await?;
    Ok(codes)
}

/// Turns two-factor authentication off and ends the user's other sessions (all of them when
/// `keep_session` is `None`: an administrator did it), records `audit` with it, and tells
/// the user by mail.
pub async fn disable(
    state: &AppState,
    user: &crate::domain::user::User,
    keep_session: Option<&[u8]>,
    audit: &crate::domain::audit::AuditEvent,
) -> Result<(), TwoFactorError> {
    let now = state.clock.now();
    state
        .store
        .disable_two_factor(user.id, keep_session, audit, now)
        .await?;
    crate::accounts::notify(state, user, &crate::mail::Letter::TwoFactorDisabled).await;
    Ok(())
}
