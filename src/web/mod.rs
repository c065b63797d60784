//! The server-rendered pages: sign-in, sign-out, profile, applications, personal access
//! tokens; sessions, CSRF and templates.

pub mod active_sessions;
pub mod admin;
pub mod application_form;
pub mod applications;
pub mod confirmation;
pub mod csrf;
pub mod error;
pub mod form;
pub mod groups;
pub mod message;
pub mod password_reset;
pub mod personal_access_tokens;
pub mod profile;
pub mod scopes;
pub mod session;
pub mod sign_in;
pub mod sign_up;
pub mod templates;
pub mod two_factor;
pub mod two_factor_sign_in;

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};

use crate::state::AppState;
pub use error::WebError;
use session::MaybeUser;

pub fn routes(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/users/sign_in", get(sign_in::show).post(sign_in::submit))
        .route("/users/sign_up", get(sign_up::show).post(sign_up::submit))
        // GitLab's sign-up form posts here.
        .route("/users", post(sign_up::submit))
        .route(
            "/users/confirmation",
            get(confirmation::confirm).post(confirmation::resend),
        )
        .route("/users/confirmation/new", get(confirmation::new_form))
        .route("/users/password", post(password_reset::request))
        .route(
            "/users/password/new",
            get(password_reset::new_form).post(password_reset::request),
        )
        .route(
            "/users/password/edit",
            get(password_reset::edit_form).post(password_reset::update),
        )
        .route(active_sessions::PATH, get(active_sessions::index))
        .route(
            "/-/user_settings/active_sessions/{id}/revoke",
            post(active_sessions::revoke),
        )
        .route(
            "/-/user_settings/active_sessions/revoke_all_others",
            post(active_sessions::revoke_all_others),
        )
        .route(
            profile::PASSWORD_EDIT_PATH,
            get(profile::password_edit).post(profile::change_password),
        )
        .route("/dashboard/groups", get(groups::dashboard))
        .route("/groups/new", get(groups::new_form))
        .route("/groups", post(groups::create))
        .route("/groups/{*rest}", get(groups::show).post(groups::act))
        .route(
            "/users/sign_out",
            get(sign_in::confirm_sign_out).post(sign_in::sign_out),
        )
        .route(
            two_factor_sign_in::PATH,
            get(two_factor_sign_in::show).post(two_factor_sign_in::submit),
        )
        .route(
            two_factor::PATH,
            get(two_factor::show).post(two_factor::confirm),
        )
        .route("/-/profile/two_factor_auth/setup", post(two_factor::setup))
        .route(
            "/-/profile/two_factor_auth/codes",
            post(two_factor::regenerate_codes),
        )
        .route(
            "/-/profile/two_factor_auth/disable",
            post(two_factor::disable),
        )
        .route(
            "/-/user_settings/profile",
            get(profile::show).post(profile::update),
        )
        .route(
            "/-/user_settings/password",
            get(profile::password_page).post(profile::change_password),
        )
        .route(
            "/-/profile",
            get(|| async { Redirect::permanent("/-/user_settings/profile") }),
        )
        .route(
            applications::LIST_PATH,
            get(applications::index).post(applications::create),
        )
        .route(
            "/-/user_settings/applications/{id}",
            get(applications::show).post(applications::update),
        )
        .route(
            "/-/user_settings/applications/{id}/renew_secret",
            post(applications::renew_secret),
        )
        .route(
            "/-/user_settings/applications/{id}/delete",
            post(applications::delete),
        )
        // GitLab's older paths of the same page.
        .route(
            "/profile/applications",
            get(|| async { Redirect::permanent(applications::LIST_PATH) }),
        )
        .route(
            "/oauth/applications",
            get(|| async { Redirect::permanent(applications::LIST_PATH) }),
        )
        .route(
            personal_access_tokens::LIST_PATH,
            get(personal_access_tokens::index).post(personal_access_tokens::create),
        )
        .route(
            "/-/user_settings/personal_access_tokens/{id}/revoke",
            post(personal_access_tokens::revoke),
        )
        // GitLab's older path of the same page.
        .route(
            "/profile/personal_access_tokens",
            get(|| async { Redirect::permanent(personal_access_tokens::LIST_PATH) }),
        )
        .merge(admin::routes())
        .route("/assets/doorward.css", get(stylesheet))
        .layer(axum::middleware::from_fn_with_state(
            state,
            csrf::ensure_cookie,
        ))
}

async fn home(MaybeUser(user): MaybeUser) -> Redirect {
    match user {
        Some(_) => Redirect::to("/-/user_settings/profile"),
        None => Redirect::to("/users/sign_in"),
    }
}

async fn stylesheet() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../../assets/doorward.css"),
    )
}

/// The fallback for unknown paths: JSON under the API, a page elsewhere.
pub async fn not_found(uri: axum::http::Uri) -> Response {
    if uri.path().starts_with("/api/") {
        return crate::api::error::ApiError::NotFound("404 Not Found".into()).into_response();
    }
    WebError::NotFound.into_response()
}

/// `(status, page)` helper for handlers that re-render a form with an error.
pub fn page_with_status(status: StatusCode, page: Result<Response, WebError>) -> Response {
    match page {
        Ok(mut res) => {
            *res.status_mut() = status;
            res
        }
        Err(e) => e.into_response(),
    }
}
