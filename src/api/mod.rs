//! The GitLab-compatible REST API under `/api/v4`, reached with a personal access token
//! (`PRIVATE-TOKEN` header, `private_token` parameter or `Authorization: Bearer`).

pub mod applications;
pub mod audit_events;
pub mod auth;
pub mod entities;
pub mod error;
pub mod group_members;
pub mod groups;
pub mod input;
pub mod pagination;
pub mod personal_access_tokens;
pub mod user_approval;
pub mod users;

use axum::Router;
use axum::routing::{delete, get, post};

use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/user", get(users::current_user))
        .route("/users", get(users::list).post(users::create))
        .route("/users/{id}", get(users::show))
        .route("/users/{id}/block", post(users::block))
        .route("/users/{id}/unblock", post(users::unblock))
        .route("/users/{id}/approve", post(user_approval::approve_user))
        .route("/users/{id}/reject", post(user_approval::reject_user))
        .route("/audit_events", get(audit_events::list))
        .route("/audit_events/{id}", get(audit_events::show))
        .route("/users/{id}/memberships", get(group_members::of_user))
        .route("/groups", get(groups::list).post(groups::create))
        .route(
            "/groups/{id}",
            get(groups::show).put(groups::update).delete(groups::delete),
        )
        .route("/groups/{id}/transfer", post(groups::transfer))
        .route("/groups/{id}/subgroups", get(groups::subgroups))
        .route(
            "/groups/{id}/descendant_groups",
            get(groups::descendant_groups),
        )
        .route(
            "/groups/{id}/members",
            get(group_members::list).post(group_members::create),
        )
        .route("/groups/{id}/members/all", get(group_members::list_all))
        .route(
            "/groups/{id}/members/all/{user_id}",
            get(group_members::show_all),
        )
        .route(
            "/groups/{id}/members/{user_id}",
            get(group_members::show)
                .put(group_members::update)
                .delete(group_members::delete),
        )
        .route(
            "/applications",
            get(applications::list).post(applications::create),
        )
        .route("/applications/{id}", delete(applications::delete))
        .route(
            "/applications/{id}/renew-secret",
            post(applications::renew_secret),
        )
        .route("/personal_access_tokens", get(personal_access_tokens::list))
        .route(
            "/personal_access_tokens/self",
            get(personal_access_tokens::show_self).delete(personal_access_tokens::delete_self),
        )
        .route(
            "/personal_access_tokens/{id}",
            get(personal_access_tokens::show).delete(personal_access_tokens::delete),
        )
        .fallback(|| async { error::ApiError::NotFound("404 Not Found".into()) })
}
