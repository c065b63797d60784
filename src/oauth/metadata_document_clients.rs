//! Clients named by a client ID metadata document (draft-ietf-oauth-client-id-metadata-
//! document, as the MCP authorization spec uses it): at `/oauth/authorize` a `client_id`
//! that is an `https` URL is fetched (`client_id_metadata`), checked by the same rules as
//! a dynamic registration (scopes, redirect URIs, code flow only), and kept as an
//! application row so its codes and tokens belong somewhere. The token endpoint then
//! finds that row like any public client's. Any problem is an error page, never a
//! redirect: until the document is read, no redirect URI can be trusted.

use super::client_id_metadata::is_metadata_document_url;
use super::error::{ErrorCode, OAuthError};
use crate::domain::application::{Application, ApplicationSettings};
use crate::domain::client_registration;
use crate::state::AppState;

/// New metadata document clients (application rows) one node creates per minute at most.
/// A document URL can be named by anyone, signed in or not, and each new one is a row;
/// past this, new ones get a 503 page for the rest of the minute (known ones still work),
/// and rows never used are purged with stale registrations.
pub const NEW_CLIENTS_PER_MINUTE: u32 = 120;

/// The application `client_id` names for an authorization request: a metadata document's
/// (fetched or cached, and its row brought up to date) when documents are enabled and
/// `client_id` is a URL, else the registered application, if any.
pub async fn application_for_authorization(
    state: &AppState,
    client_id: &str,
) -> Result<Option<Application>, OAuthError> {
    if !is_metadata_document_url(client_id) {
        return Ok(state.store.application_by_uid(client_id).await?);
    }
    // Turned off, a URL is an unknown client, even one that has a row from before.
    let Some(documents) = &state.client_id_metadata else {
        return Ok(None);
    };
    let now = state.clock.now();
    let document = documents.get(client_id, now).await.map_err(|e| {
        OAuthError::with_description(ErrorCode::InvalidClient, e.to_string())
            .detail("client metadata document refused")
    })?;
    let invalid = |why: String| {
        OAuthError::with_description(
            ErrorCode::InvalidClient,
            format!("The client metadata document at {client_id} is invalid: {why}"),
        )
    };
    // The same rules as RFC 7591 registration: nobody vetted this client either. (Its
    // redirect URIs were checked with the document, by stricter rules: https, or http on
    // loopback; no private-use scheme anyone could claim.)
    client_registration::check_grants_and_response_types(
        &document.grant_types,
        &document.response_types,
    )
    .map_err(invalid)?;
    let scopes =
        client_registration::registrable_scopes(document.scope.as_deref()).map_err(invalid)?;
    let name = match document.client_name.as_deref().map(str::trim) {
        Some(name) if !name.is_empty() && !name.contains(['<', '>']) => {
            name.chars().take(255).collect()
        }
        _ => client_registration::default_name(&document.redirect_uris[0]),
    };
    let known = state.store.application_by_uid(client_id).await?;
    if known.is_none()
        && state
            .metadata_client_limit
            .check(std::net::Ipv4Addr::UNSPECIFIED.into(), now)
            .is_err()
    {
        return Err(OAuthError::new(ErrorCode::TemporarilyUnavailable)
            .detail("too many new client metadata document clients this minute"));
    }
    let settings = ApplicationSettings {
        name,
        redirect_uri: document.redirect_uris.join("\n"),
        scopes,
        confidential: false,
        require_pkce: true,
        require_par: false,
        backchannel_logout_uri: None,
        backchannel_logout_session_required: false,
        keys: Default::default(),
    };
    // Most authorizations find the row as the document still describes it: no write.
    if let Some(app) = known.filter(|a| {
        a.is_dynamic()
            && a.name == settings.name
            && a.redirect_uri == settings.redirect_uri
            && a.scopes == settings.scopes
    }) {
        return Ok(Some(app));
    }
    match state
        .store
        .upsert_metadata_document_client(client_id, &settings, now)
        .await
    {
        Ok(app) => Ok(Some(app)),
        // A row of another kind holds this client_id: not ours to replace.
        Err(crate::store::StoreError::NotFound) => Ok(None),
        Err(e) => Err(e.into()),
    }
}
