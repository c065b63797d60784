//! Browser sessions: a random 256-bit id in an HttpOnly, SameSite=Lax cookie; the database
//! keeps only its SHA-256 with idle and absolute expiry, so any node can serve any session
//! and signing out or blocking a user ends it everywhere at once.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};

use super::WebError;
use crate::domain::secret;
use crate::domain::user::User;
use crate::state::AppState;
use crate::store::sessions::SessionOrigin;

/// Seconds between two `last_seen_at` updates of one session: activity tracking must not
/// turn every page view into a write.
const TOUCH_GRANULARITY: i64 = 60;

/// The signed-in user of this request.
#[derive(Clone, Debug)]
pub struct CurrentUser {
    pub user: User,
    /// SHA-256 of the session id (what the database knows it by).
    pub session_hash: [u8; 32],
    /// When the user signed in (OpenID Connect `auth_time`).
    pub signed_in_at: i64,
    /// The session's row id (for what is recorded against this session: the logins that
    /// Back-Channel Logout tells about).
    pub session_id: i64,
}

/// What the layout's header needs of the signed-in user: the name, and whether to link the
/// admin area.
pub fn nav(user: &User) -> minijinja::Value {
    minijinja::context! { username => &user.username, is_admin => user.is_admin }
}

/// The signed-in user, if any.
pub struct MaybeUser(pub Option<CurrentUser>);

pub fn cookie_name(state: &AppState) -> &'static str {
    if state.config.is_https() {
        "__Host-doorward_session"
    } else {
        "doorward_session"
    }
}

impl FromRequestParts<AppState> for MaybeUser {
    type Rejection = WebError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if let Some(found) = parts.extensions.get::<CurrentUser>() {
            return Ok(MaybeUser(Some(found.clone())));
        }
        let jar = CookieJar::from_headers(&parts.headers);
        let Some(cookie) = jar.get(cookie_name(state)) else {
            return Ok(MaybeUser(None));
        };
        let hash = secret::hash(cookie.value());
        let now = state.clock.now();
        let idle_cutoff = now - state.config.session_idle_timeout;
        let Some(found) = state.store.session_by_hash(&hash, now, idle_cutoff).await? else {
            return Ok(MaybeUser(None));
        };
        if now - found.last_seen_at >= TOUCH_GRANULARITY {
            state.store.touch_session(found.session_id, now).await?;
        }
        let current = CurrentUser {
            user: found.user,
            session_hash: hash,
            signed_in_at: found.created_at,
            session_id: found.session_id,
        };
        parts.extensions.insert(current.clone());
        Ok(MaybeUser(Some(current)))
    }
}

impl FromRequestParts<AppState> for CurrentUser {
    type Rejection = WebError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        match MaybeUser::from_request_parts(parts, state).await?.0 {
            Some(user) => Ok(user),
            None => {
                let here = parts
                    .uri
                    .path_and_query()
                    .map(|p| p.as_str())
                    .unwrap_or("/")
                    .to_string();
                Err(WebError::SignInRequired(here))
            }
        }
    }
}

/// Starts a session for `user_id` and returns its cookie. A fresh id at every sign-in
/// rules out session fixation.
pub async fn start(
    state: &AppState,
    user_id: i64,
    origin: &SessionOrigin,
) -> Result<Cookie<'static>, WebError> {
    let id = secret::generate("");
    let now = state.clock.now();
    state
        .store
        .create_session(
            &secret::hash(id.expose()),
            user_id,
            origin,
            now,
            now + state.config.session_lifetime,
        )
        .await?;
    Ok(Cookie::build((cookie_name(state), id.into_inner()))
        .path("/")
        .http_only(true)
        .secure(state.config.is_https())
        .same_site(SameSite::Lax)
        .build())
}

/// A cookie that removes the session cookie from the browser.
pub fn removal(state: &AppState) -> Cookie<'static> {
    let mut c = Cookie::build((cookie_name(state), "")).path("/").build();
    c.make_removal();
    c
}
