//! The admin area (`/admin`, GitLab's paths): users (search, filters, create, edit, block,
//! approve, password reset, two-factor recovery, sessions), every OAuth application, and
//! the audit events. Administrators only: anyone else signed in gets the same 404 as a page
//! that does not exist, and a signed-out visitor is sent to sign in. Every form carries the
//! CSRF token and posts; every change records an audit event in its own transaction.

mod applications;
mod audit_events;
mod user_actions;
mod user_page;
mod users;

use axum::Router;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::response::Redirect;
use axum::routing::{get, post};
use serde::Deserialize;

use super::WebError;
use super::session::CurrentUser;
use crate::domain::user::User;
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/admin",
            get(|_: Admin| async { Redirect::to("/admin/users") }),
        )
        .route("/admin/users", get(users::index).post(users::create))
        .route("/admin/users/new", get(users::new_form))
        .route(
            "/admin/users/{username}",
            get(user_page::show).post(users::update),
        )
        .route("/admin/users/{username}/edit", get(users::edit_form))
        .route("/admin/users/{username}/{action}", post(user_actions::act))
        .route(
            "/admin/users/{username}/sessions/{id}/revoke",
            post(user_actions::end_session),
        )
        .route(
            "/admin/applications",
            get(applications::index).post(applications::create),
        )
        .route("/admin/applications/new", get(applications::new_form))
        .route(
            "/admin/applications/{id}",
            get(applications::show).post(applications::update),
        )
        .route(
            "/admin/applications/{id}/renew_secret",
            post(applications::renew_secret),
        )
        .route(
            "/admin/applications/{id}/delete",
            post(applications::delete),
        )
        .route("/admin/audit_events", get(audit_events::index))
}

/// A signed-in administrator.
pub struct Admin(pub CurrentUser);

impl FromRequestParts<AppState> for Admin {
    type Rejection = WebError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let current = CurrentUser::from_request_parts(parts, state).await?;
        if !current.user.is_admin {
            // The admin area's pages do not exist for anyone else (GitLab answers 404 too).
            return Err(WebError::NotFound);
        }
        Ok(Admin(current))
    }
}

impl Admin {
    pub fn user(&self) -> &User {
        &self.0.user
    }
}

/// The layout's `current_user`: the name in the nav and the Admin link.
use crate::web::session::nav;

/// The forms that carry nothing but the CSRF token (the buttons).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenForm {
    /// Missing is the same refusal as wrong (403), not an unreadable form.
    #[serde(default)]
    pub authenticity_token: String,
}

/// Rows per page of the admin lists.
const PER_PAGE: i64 = 50;

/// A page number from a query (`page=`): 1 when absent, a clear 400 when not a number.
fn page_number(raw: Option<&str>) -> Result<i64, WebError> {
    match raw.filter(|p| !p.is_empty()) {
        None => Ok(1),
        Some(p) => p
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=1_000_000).contains(n))
            .ok_or_else(|| WebError::BadRequest("The page number is not valid.".into())),
    }
}

/// Links (relative: the query alone) to the previous and next pages of a list of `total`
/// rows, keeping `params`.
fn pager(params: &[(&str, &str)], page: i64, total: i64) -> minijinja::Value {
    let pages = ((total + PER_PAGE - 1) / PER_PAGE).max(1);
    let link = |n: i64| {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in params.iter().filter(|(_, v)| !v.is_empty()) {
            q.append_pair(k, v);
        }
        q.append_pair("page", &n.to_string());
        format!("?{}", q.finish())
    };
    minijinja::context! {
        page,
        pages,
        total,
        prev => (page > 1).then(|| link(page - 1)),
        next => (page < pages).then(|| link(page + 1)),
    }
}

/// Refuses text no field can hold: NUL (which PostgreSQL cannot store) and anything longer
/// than `max` characters.
fn check_text(what: &str, value: &str, max: usize) -> Result<(), WebError> {
    if value.contains('\0') {
        return Err(WebError::BadRequest(format!(
            "The {what} contains a NUL character."
        )));
    }
    if value.chars().count() > max {
        return Err(WebError::BadRequest(format!(
            "The {what} is too long (maximum is {max} characters)."
        )));
    }
    Ok(())
}

/// The query's pairs, each key once (the last wins), for GET pages that ignore unknown
/// parameters as GitLab does.
fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> = Vec::new();
    for (k, v) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        pairs.retain(|(key, _)| key != k.as_ref());
        pairs.push((k.into_owned(), v.into_owned()));
    }
    pairs
}

fn param<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_are_numbers() {
        assert_eq!(page_number(None).ok(), Some(1));
        assert_eq!(page_number(Some("3")).ok(), Some(3));
        assert!(page_number(Some("0")).is_err());
        assert!(page_number(Some("x")).is_err());
    }

    #[test]
    fn the_pager_links_neighbours_with_the_filters() {
        let p = pager(&[("filter", "admins"), ("search_query", "")], 2, 120);
        assert_eq!(
            p.get_attr("pages").ok().map(|v| v.to_string()),
            Some("3".into())
        );
        assert_eq!(
            p.get_attr("next").ok().map(|v| v.to_string()),
            Some("?filter=admins&page=3".into())
        );
    }
}
