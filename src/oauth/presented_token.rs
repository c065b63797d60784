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

use std::sync::Arc;

use crate::domain::imported_secret::{self, IMPORTED_SECRET_MARKER, StoredForm};
use crate::domain::secret;
use crate::state::AppState;
use crate::store::StoreResult;
use crate::store::access_tokens::TokenWithOwner;
use crate::store::imported_credentials::{CredentialKind, ImportedToken};

/// The longest value worth hashing: doorkeeper's tokens are 43–64 characters.
const MAX_IMPORTED_LEN: usize = 256;

const ACCESS: &[CredentialKind] = &[CredentialKind::AccessToken];
const REFRESH: &[CredentialKind] = &[CredentialKind::RefreshToken];
const EITHER: &[CredentialKind] = &[CredentialKind::AccessToken, CredentialKind::RefreshToken];

/// The access token row behind `presented`, revoked or expired ones included (the caller
/// judges those).
pub async fn access_token(
    state: &AppState,
    presented: &str,
) -> StoreResult<Option<Arc<TokenWithOwner>>> {
    Ok(find(state, presented, ACCESS)
        .await?
        .map(|(found, _)| found))
}

/// The token row holding the refresh token `presented`.
pub async fn refresh_token(
    state: &AppState,
    presented: &str,
) -> StoreResult<Option<Arc<TokenWithOwner>>> {
    Ok(find(state, presented, REFRESH)
        .await?
        .map(|(found, _)| found))
}

/// The row behind a token of either kind, and whether it was a refresh token: Doorward's
/// prefix says which; an imported value may be either (revocation and introspection take
/// both, RFC 7009 §2.1, RFC 7662 §2.1, and `token_type_hint` is only a hint).
pub async fn either(
    state: &AppState,
    presented: &str,
) -> StoreResult<(Option<Arc<TokenWithOwner>>, bool)> {
    Ok(match find(state, presented, EITHER).await? {
        Some((found, kind)) => (Some(found), kind.is_refresh()),
        None => (None, false),
    })
}

/// Looks `presented` up as a token of one of `kinds` (access tokens first).
async fn find(
    state: &AppState,
    presented: &str,
    kinds: &[CredentialKind],
) -> StoreResult<Option<(Arc<TokenWithOwner>, CredentialKind)>> {
    let key = secret::token_key(presented);
    // Doorward's own tokens: the prefix names the kind, one lookup.
    for &kind in kinds {
        let prefix = if kind.is_refresh() {
            secret::REFRESH_TOKEN_PREFIX
        } else {
            secret::ACCESS_TOKEN_PREFIX
        };
        if presented.starts_with(prefix) {
            return Ok(native(state, &key, kind).await?.map(|found| (found, kind)));
        }
    }
    if !could_be_imported(presented) {
        return Ok(None);
    }
    // On the heap: the imported path's futures (hashing, re-storing) would otherwise make
    // every token lookup's future, and each future holding one, kilobytes larger.
    Box::pin(find_imported(state, presented, kinds, &key)).await
}

/// One indexed lookup of Doorward's key of a token of `kind`.
async fn native(
    state: &AppState,
    key: &[u8],
    kind: CredentialKind,
) -> StoreResult<Option<Arc<TokenWithOwner>>> {
    if kind.is_refresh() {
        state.store.refresh_token_by_hash(key).await
    } else {
        state.store.access_token_by_hash(key).await
    }
}

/// An unprefixed value: imported plaintext (or imported and presented before) under our
/// key, else one of GitLab's stored forms, re-stored under our key on a match.
async fn find_imported(
    state: &AppState,
    presented: &str,
    kinds: &[CredentialKind],
    key: &[u8],
) -> StoreResult<Option<(Arc<TokenWithOwner>, CredentialKind)>> {
    for &kind in kinds {
        if let Some(found) = native(state, key, kind).await? {
            return Ok(Some((found, kind)));
        }
    }
    let Some(imported) = imported_match(state, presented, kinds).await? else {
        return Ok(None);
    };
    state.store.restore_imported_token(&imported, key).await?;
    Ok(native(state, key, imported.kind)
        .await?
        .map(|found| (found, imported.kind)))
}

/// Whether `presented` is the secret of application `id` whose stored hash is
/// `secret_hash`: Doorward's hash, or, while the application still holds the secret it was
/// imported with, one of GitLab's stored forms of it.
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
    if secret_hash != IMPORTED_SECRET_MARKER || !could_be_imported(presented) {
        return Ok(false);
    }
    // On the heap, as `find_imported`: a cold path that would enlarge every caller's future.
    Box::pin(imported_secret_matches(state, id, presented)).await
}

/// Whether `presented` matches one of GitLab's stored forms of application `id`'s secret,
/// re-storing it under Doorward's hash on a match.
async fn imported_secret_matches(state: &AppState, id: i64, presented: &str) -> StoreResult<bool> {
    let hash = secret::hash(presented);
    for stored in state.store.imported_application_secrets(id).await? {
        let form = StoredForm::of(&stored);
        let matched = match form {
            StoredForm::Sha512 => imported_secret::matches(&stored, presented),
            StoredForm::Pbkdf2 if imported_secret::is_doorkeeper_shaped(presented) => {
                let presented = presented.to_string();
                // The pool fails only while shutting down: then nothing matches.
                state
                    .hasher
                    .run_imported_check(move || imported_secret::matches(&stored, &presented))
                    .await
                    .unwrap_or(false)
            }
            _ => false,
        };
        if matched {
            return state
                .store
                .restore_imported_application_secret(id, &hash)
                .await;
        }
    }
    Ok(false)
}

/// Neither one of Doorward's own kinds, nor a stored form (presenting what a copy of the
/// source database holds opens nothing), nor absurdly long.
fn could_be_imported(presented: &str) -> bool {
    const OURS: [&str; 6] = [
        secret::ACCESS_TOKEN_PREFIX,
        secret::REFRESH_TOKEN_PREFIX,
        secret::AUTHORIZATION_CODE_PREFIX,
        secret::PERSONAL_ACCESS_TOKEN_PREFIX,
        secret::APPLICATION_SECRET_PREFIX,
        secret::REGISTRATION_TOKEN_PREFIX,
    ];
    !presented.is_empty()
        && presented.len() <= MAX_IMPORTED_LEN
        && !OURS.iter().any(|p| presented.starts_with(p))
        && !imported_secret::is_stored_form(presented)
}

/// The imported credential of one of `kinds` that `presented` matches in GitLab's forms.
async fn imported_match(
    state: &AppState,
    presented: &str,
    kinds: &[CredentialKind],
) -> StoreResult<Option<ImportedToken>> {
    let store = &state.store;
    let sha512 = imported_secret::sha512_hex(presented);
    if let Some(found) = store
        .imported_token(kinds, StoredForm::Sha512, &sha512)
        .await?
    {
        return Ok(Some(found));
    }
    // PBKDF2 costs milliseconds of a core: only for a value doorkeeper could have made,
    // only while some imported credential of these kinds waits in that form, computed once
    // for all the kinds, one at a time.
    if !imported_secret::is_doorkeeper_shaped(presented)
        || !store
            .imported_tokens_waiting(kinds, StoredForm::Pbkdf2)
            .await?
    {
        return Ok(None);
    }
    let value = presented.to_string();
    let Ok(form) = state
        .hasher
        .run_imported_check(move || imported_secret::pbkdf2_form(&value))
        .await
    else {
        return Ok(None);
    };
    store.imported_token(kinds, StoredForm::Pbkdf2, &form).await
}
