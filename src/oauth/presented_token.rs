//! Finding the token row behind a presented access or refresh token, and checking a
//! presented client secret: the one place that knows a value may be Doorward's own or one
//! imported from a doorkeeper database (issue 16).
//!
//! Doorward's tokens carry their prefix (`dwat-`, `dwrt-`) and are found by one indexed
//! lookup of their key, as before: nothing below runs for them. A value without the prefix
//! can only be imported. Imported plaintext values, and imported values already presented
//! once, are stored under Doorward's key for them and found by the same single lookup. The
//! rest were imported as GitLab stored them (SHA-512 hex or PBKDF2-SHA512, spec §2.2): the
//! value is hashed those ways and looked up in `imported_credentials`, and on a match the
//! row is re-stored under Doorward's key, so this slower path runs once per credential.

use crate::domain::imported_secret::{self, StoredForm};
use crate::domain::secret::{self, ACCESS_TOKEN_PREFIX, REFRESH_TOKEN_PREFIX};
use crate::state::AppState;
use crate::store::StoreResult;
use crate::store::access_tokens::TokenWithOwner;
use crate::store::imported_credentials::CredentialKind;

/// The longest value worth hashing: doorkeeper's tokens are 43–64 characters.
const MAX_IMPORTED_LEN: usize = 256;

/// The access token row behind `presented`, revoked or expired ones included (the caller
/// judges those).
pub async fn access_token(
    state: &AppState,
    presented: &str,
) -> StoreResult<Option<TokenWithOwner>> {
    let key = secret::token_key(presented);
    if presented.starts_with(ACCESS_TOKEN_PREFIX) {
        return state.store.access_token_by_hash(&key).await;
    }
    if !could_be_imported(presented) {
        return Ok(None);
    }
    if let Some(found) = state.store.access_token_by_hash(&key).await? {
        return Ok(Some(found));
    }
    if !restore(state, CredentialKind::AccessToken, presented, &key).await? {
        return Ok(None);
    }
    state.store.access_token_by_hash(&key).await
}

/// The token row holding the refresh token `presented`.
pub async fn refresh_token(
    state: &AppState,
    presented: &str,
) -> StoreResult<Option<TokenWithOwner>> {
    let key = secret::token_key(presented);
    if presented.starts_with(REFRESH_TOKEN_PREFIX) {
        return state.store.refresh_token_by_hash(&key).await;
    }
    if !could_be_imported(presented) {
        return Ok(None);
    }
    if let Some(found) = state.store.refresh_token_by_hash(&key).await? {
        return Ok(Some(found));
    }
    if !restore(state, CredentialKind::RefreshToken, presented, &key).await? {
        return Ok(None);
    }
    state.store.refresh_token_by_hash(&key).await
}

/// The row behind a token of either kind, and whether it was a refresh token: Doorward's
/// prefix says which; an imported value may be either (revocation and introspection take
/// both, RFC 7009 §2.1, RFC 7662 §2.1, and `token_type_hint` is only a hint).
pub async fn either(
    state: &AppState,
    presented: &str,
) -> StoreResult<(Option<TokenWithOwner>, bool)> {
    if presented.starts_with(REFRESH_TOKEN_PREFIX) {
        return Ok((refresh_token(state, presented).await?, true));
    }
    if let Some(found) = access_token(state, presented).await? {
        return Ok((Some(found), false));
    }
    if presented.starts_with(ACCESS_TOKEN_PREFIX) {
        return Ok((None, false));
    }
    Ok((refresh_token(state, presented).await?, true))
}

/// Whether `presented` is the secret of application `id` whose stored hash is
/// `secret_hash`: Doorward's hash, or an imported stored form not yet re-stored.
pub async fn application_secret_matches(
    state: &AppState,
    id: i64,
    secret_hash: &[u8],
    presented: &str,
) -> StoreResult<bool> {
    let hash = secret::hash(presented);
    if secret::constant_time_eq(&hash, secret_hash) {
        return Ok(true);
    }
    if !could_be_imported(presented) {
        return Ok(false);
    }
    for stored in state.store.imported_application_secrets(id).await? {
        if StoredForm::of(&stored) == StoredForm::Pbkdf2
            && !imported_secret::is_gitlab_shaped(presented)
        {
            continue;
        }
        let presented = presented.to_string();
        // The pool fails only while shutting down: then nothing matches.
        let matched = state
            .hasher
            .run_cpu(move || imported_secret::matches(&stored, &presented))
            .await
            .unwrap_or(false);
        if matched {
            state
                .store
                .restore_imported_application_secret(id, &hash)
                .await?;
            return Ok(true);
        }
    }
    Ok(false)
}

/// Neither Doorward's own shape, nor a stored form (presenting what a copy of the source
/// database holds opens nothing), nor absurdly long.
fn could_be_imported(presented: &str) -> bool {
    !presented.is_empty()
        && presented.len() <= MAX_IMPORTED_LEN
        && !presented.starts_with("dw")
        && !imported_secret::is_stored_form(presented)
}

/// Looks `presented` up among the imported credentials of `kind` in GitLab's forms and, on
/// a match, re-stores its row under `key`. True when it did.
async fn restore(
    state: &AppState,
    kind: CredentialKind,
    presented: &str,
    key: &[u8],
) -> StoreResult<bool> {
    let store = &state.store;
    let mut target = store
        .imported_credential(
            kind,
            StoredForm::Sha512,
            &imported_secret::sha512_hex(presented),
        )
        .await?;
    // PBKDF2 costs milliseconds of a core: only for a value GitLab could have made, and
    // only when some imported credential of this kind is in that form.
    if target.is_none()
        && imported_secret::is_gitlab_shaped(presented)
        && store.has_imported_form(kind, StoredForm::Pbkdf2).await?
    {
        let value = presented.to_string();
        if let Ok(form) = state
            .hasher
            .run_cpu(move || imported_secret::pbkdf2_form(&value))
            .await
        {
            target = store
                .imported_credential(kind, StoredForm::Pbkdf2, &form)
                .await?;
        }
    }
    let Some(id) = target else {
        return Ok(false);
    };
    store
        .restore_imported_token(id, kind == CredentialKind::RefreshToken, key)
        .await?;
    Ok(true)
}
