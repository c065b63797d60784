//! Issuing tokens, once for every grant: minting fresh random tokens, storing their hashes
//! (alone, or in the same transaction as the single-use claim that entitles them),
//! answering RFC 6749 §5.1, and attaching the OpenID Connect id_token. The code, refresh,
//! password, device, client-credentials and implicit paths each only decide the inputs.

use super::error::OAuthError;
use super::response::TokenResponse;
use crate::domain::resource::Resources;
use crate::domain::scope::ScopeSet;
use crate::domain::secret::{self, ACCESS_TOKEN_PREFIX, REFRESH_TOKEN_PREFIX, SecretString};
use crate::oidc::id_token::{self, Subject};
use crate::state::AppState;
use crate::store::access_tokens::NewToken;

/// What entitles the new tokens, written atomically with them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Write {
    /// Nothing to claim (password, client credentials, implicit).
    Insert,
    /// Consume authorization code `grant_id` (RFC 6749 §4.1.2: single use).
    ExchangeCode { grant_id: i64 },
    /// Consume approved device grant `id` (RFC 8628 §3.5).
    RedeemDevice { id: i64 },
    /// Revoke the refreshed token `token_id` (RFC 9700 §4.14.2: rotation).
    Rotate { token_id: i64 },
}

/// Everything a grant decides about the tokens it issues.
pub struct Issuance<'a> {
    pub application_id: Option<i64>,
    pub user_id: Option<i64>,
    /// The authorization code the tokens descend from, so a replay can revoke them.
    pub grant_id: Option<i64>,
    /// The refresh chain to continue; `None` starts a new one.
    pub family: Option<&'a [u8]>,
    pub scopes: &'a ScopeSet,
    /// RFC 8707: the resources of the authorization (carried along refreshes) and those
    /// this access token is for. Both empty when none were named.
    pub resources: &'a Resources,
    pub audience: &'a Resources,
    /// Whether a refresh token is issued (never for client credentials, §4.4.3, or
    /// implicit, §4.2.2).
    pub with_refresh: bool,
    pub write: Write,
    /// RFC 9449: the thumbprint of the proof key the tokens are bound to (`token_type`
    /// `DPoP`); `None` issues bearer tokens.
    pub dpop_jkt: Option<&'a str>,
    /// The signed-in user the id_token speaks for, when the scope has `openid`.
    pub subject: Option<Subject<'a>>,
}

/// Issues tokens: `Ok(None)` when the claim was lost (the code, device grant or refresh
/// token was used concurrently); the caller decides what that means.
pub async fn issue(
    state: &AppState,
    issuance: Issuance<'_>,
) -> Result<Option<TokenResponse>, OAuthError> {
    let now = state.clock.now();
    let lifetime = state.config.access_token_lifetime;
    let tokens = MintedTokens::new(issuance.with_refresh);
    let new_chain = secret::new_family();
    let scope_text = issuance.scopes.to_string();
    let family = issuance.family.unwrap_or(&new_chain);
    let resources = issuance.resources.stored();
    let audience = issuance.audience.stored();
    let owner = TokenOwner {
        application_id: issuance.application_id,
        user_id: issuance.user_id,
        grant_id: issuance.grant_id,
        family,
        scopes: &scope_text,
        resources: resources.as_deref(),
        audience: audience.as_deref(),
        dpop_jkt: issuance.dpop_jkt,
    };
    let row = tokens.row(&owner, now, lifetime);
    let store = &state.store;
    let stored = match issuance.write {
        Write::Insert => Some(store.insert_token(&row).await?),
        Write::ExchangeCode { grant_id } => store.exchange_grant(grant_id, &row, now).await?,
        Write::RedeemDevice { id } => store.consume_device_grant(id, &row, now).await?,
        Write::Rotate { token_id } => store.rotate_token(token_id, &row, now).await?,
    };
    if stored.is_none() {
        return Ok(None);
    }
    let mut response = tokens.response(issuance.scopes, now, lifetime);
    if issuance.dpop_jkt.is_some() {
        // RFC 9449 §5: a bound access token's type.
        response.token_type = "DPoP";
    }
    if let Some(subject) = &issuance.subject
        && issuance.scopes.contains("openid")
    {
        // On the heap: signing and the session record would otherwise enlarge the future
        // of every issuance, the many without an id_token included.
        Box::pin(async {
            let sid = id_token::sid_of_chain(family);
            id_token::attach(state, &mut response, issuance.scopes, subject, &sid).await?;
            // Back-Channel Logout 1.0 §2: remember that this client got an id_token in
            // this browser session, so the session's end can be told to it.
            if let (Some(session), Some(application)) =
                (subject.browser_session, issuance.application_id)
            {
                store
                    .record_session_login(session, application, subject.user.id, &sid, now)
                    .await?;
            }
            Ok::<_, OAuthError>(())
        })
        .await?;
    }
    Ok(Some(response))
}

/// The building blocks of [`issue`], public for the benchmark's bulk seeding and the
/// micro-benchmarks; product code issues only through [`issue`].
///
/// A new access token (and refresh token), in clear for the response and hashed for the
/// database.
pub struct MintedTokens {
    access: SecretString,
    refresh: Option<SecretString>,
    access_hash: [u8; 32],
    refresh_hash: Option<[u8; 32]>,
}

impl MintedTokens {
    pub fn new(with_refresh: bool) -> MintedTokens {
        // Ordered tokens (issue 15): their keys append to the token indexes.
        let access = secret::generate_ordered(ACCESS_TOKEN_PREFIX);
        let refresh = with_refresh.then(|| secret::generate_ordered(REFRESH_TOKEN_PREFIX));
        MintedTokens {
            access_hash: secret::token_key(access.expose()),
            refresh_hash: refresh.as_ref().map(|r| secret::token_key(r.expose())),
            access,
            refresh,
        }
    }

    /// The row to store for these tokens.
    pub fn row<'a>(&'a self, owner: &TokenOwner<'a>, now: i64, lifetime: i64) -> NewToken<'a> {
        NewToken {
            token_hash: &self.access_hash,
            refresh_token_hash: self.refresh_hash.as_ref().map(|h| &h[..]),
            application_id: owner.application_id,
            user_id: owner.user_id,
            grant_id: owner.grant_id,
            family: owner.family,
            scopes: owner.scopes,
            created_at: now,
            expires_at: now + lifetime,
            resources: owner.resources,
            audience: owner.audience,
            dpop_jkt: owner.dpop_jkt,
        }
    }

    /// The RFC 6749 §5.1 response for these tokens.
    pub fn response(self, scopes: &ScopeSet, now: i64, lifetime: i64) -> TokenResponse {
        TokenResponse {
            access_token: self.access.into_inner(),
            token_type: "Bearer",
            expires_in: lifetime,
            refresh_token: self.refresh.map(SecretString::into_inner),
            scope: scopes.to_string(),
            created_at: now,
            id_token: None,
        }
    }
}

/// Whom a token pair belongs to and where it came from.
pub struct TokenOwner<'a> {
    pub application_id: Option<i64>,
    pub user_id: Option<i64>,
    /// The authorization code it was exchanged for, if any.
    pub grant_id: Option<i64>,
    /// The refresh chain it belongs to.
    pub family: &'a [u8],
    /// Canonical space-separated scopes.
    pub scopes: &'a str,
    /// RFC 8707, as stored (`Resources::stored`).
    pub resources: Option<&'a str>,
    pub audience: Option<&'a str>,
    /// RFC 9449 `cnf.jkt`, for a DPoP-bound pair.
    pub dpop_jkt: Option<&'a str>,
}
