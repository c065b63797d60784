//! `/audit_events`: GitLab's instance audit events API (`ee/lib/api/audit_events.rb`), for
//! administrators. Events are listed newest first with GitLab's offset pagination and its
//! filters (`created_after`, `created_before`, `entity_type`, `entity_id`).

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::auth::Caller;
use super::error::ApiError;
use super::input::parse_query;
use super::pagination::Page;
use crate::domain::clock::iso8601;
use crate::domain::scope::access;
use crate::state::AppState;
use crate::store::audit_events::{AuditEventFilter, StoredAuditEvent};

/// GitLab's author of an event nobody signed in did (a failed sign-in of an unknown login).
const UNAUTHENTICATED_AUTHOR_ID: i64 = -1;
const UNAUTHENTICATED_AUTHOR_NAME: &str = "An unauthenticated user";

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    page: Option<i64>,
    per_page: Option<i64>,
    created_after: Option<String>,
    created_before: Option<String>,
    entity_type: Option<String>,
    entity_id: Option<i64>,
}

/// A time parameter as GitLab (Grape's `DateTime`) reads one: ISO 8601 with an offset
/// (`2024-05-31T12:00:00Z`, `…+02:00`, fractions allowed), without one (UTC), or a bare
/// date (its midnight, UTC).
pub fn parse_time(value: &str) -> Option<i64> {
    use time::format_description::well_known::Rfc3339;
    use time::macros::format_description;
    let value = value.trim();
    if let Ok(t) = time::OffsetDateTime::parse(value, &Rfc3339) {
        return Some(t.unix_timestamp());
    }
    let local = format_description!(
        version = 2,
        "[year]-[month]-[day][first [T] [ ]][hour]:[minute][optional [:[second][optional [.[subsecond]]]]]"
    );
    if let Ok(t) = time::PrimitiveDateTime::parse(value, &local) {
        return Some(t.assume_utc().unix_timestamp());
    }
    let day = format_description!("[year]-[month]-[day]");
    time::Date::parse(value, &day)
        .ok()
        .map(|d| d.midnight().assume_utc().unix_timestamp())
}

fn time_param(name: &str, value: Option<&str>) -> Result<Option<i64>, ApiError> {
    match value.filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => parse_time(v)
            .map(Some)
            .ok_or_else(|| ApiError::BadRequest(format!("{name} is invalid"))),
    }
}

/// `AuditEvent`: GitLab's keys, `details` as stored (with `action`, `target_*`,
/// `ip_address`) plus the author's current username as `author_name`.
pub fn audit_event(e: &StoredAuditEvent, author_name: Option<&str>) -> Value {
    let mut details = match serde_json::from_str::<Value>(&e.details) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    };
    details
        .entry("action")
        .or_insert_with(|| Value::String(e.action.clone()));
    let author = match (e.author_id, author_name) {
        (None, _) => Some(UNAUTHENTICATED_AUTHOR_NAME),
        (Some(_), name) => name,
    };
    if let Some(name) = author {
        details.insert("author_name".into(), name.into());
    }
    json!({
        "id": e.id,
        "author_id": e.author_id.unwrap_or(UNAUTHENTICATED_AUTHOR_ID),
        "entity_id": e.entity_id,
        "entity_type": e.entity_type,
        "event_name": e.action,
        "details": details,
        "created_at": iso8601(e.created_at),
    })
}

/// The JSON of `events`, their authors named with one lookup.
async fn entities(state: &AppState, events: &[StoredAuditEvent]) -> Result<Vec<Value>, ApiError> {
    let authors: Vec<i64> = events.iter().filter_map(|e| e.author_id).collect();
    let names = state.store.usernames_by_ids(&authors).await?;
    Ok(events
        .iter()
        .map(|e| {
            let name = e
                .author_id
                .and_then(|id| names.get(&id))
                .map(String::as_str);
            audit_event(e, name)
        })
        .collect())
}

/// `GET /audit_events` (administrators).
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    caller.require_scope(access::READ_API)?;
    caller.require_admin()?;
    let q: ListQuery = parse_query(query.as_deref())?;
    let page = Page::new(q.page, q.per_page)?;
    if q.entity_type
        .as_deref()
        .is_some_and(|t| t.contains('\0') || t.len() > 255)
    {
        return Err(ApiError::BadRequest("entity_type is invalid".into()));
    }
    let filter = AuditEventFilter {
        created_after: time_param("created_after", q.created_after.as_deref())?,
        created_before: time_param("created_before", q.created_before.as_deref())?,
        entity_type: q.entity_type.clone().filter(|t| !t.is_empty()),
        entity_id: q.entity_id,
    };
    let (events, total) = state
        .store
        .list_audit_events(&filter, page.per_page, page.offset())
        .await?;
    let body = entities(&state, &events).await?;
    let mut kept = Vec::new();
    for (k, v) in [
        ("created_after", &q.created_after),
        ("created_before", &q.created_before),
        ("entity_type", &q.entity_type),
    ] {
        if let Some(v) = v {
            kept.push((k.to_string(), v.clone()));
        }
    }
    if let Some(id) = q.entity_id {
        kept.push(("entity_id".into(), id.to_string()));
    }
    let base = format!("{}/api/v4/audit_events", state.config.external_url);
    let headers = page.headers(total, &base, &kept);
    Ok((headers, Json(body)).into_response())
}

/// `GET /audit_events/:id` (administrators).
pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    caller.require_scope(access::READ_API)?;
    caller.require_admin()?;
    let not_found = || ApiError::NotFound("404 Audit Event Not Found".into());
    let id: i64 = id.parse().map_err(|_| not_found())?;
    let event = state.store.audit_event(id).await?.ok_or_else(not_found)?;
    let mut body = entities(&state, std::slice::from_ref(&event)).await?;
    Ok(Json(body.pop().unwrap_or_default()).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_read_as_gitlab_reads_them() {
        assert_eq!(parse_time("2024-05-31T12:00:00Z"), Some(1_717_156_800));
        assert_eq!(parse_time("2024-05-31T12:00:00.123Z"), Some(1_717_156_800));
        assert_eq!(parse_time("2024-05-31T14:00:00+02:00"), Some(1_717_156_800));
        assert_eq!(parse_time("2024-05-31T12:00:00"), Some(1_717_156_800));
        assert_eq!(parse_time("2024-05-31 12:00"), Some(1_717_156_800));
        assert_eq!(parse_time("2024-05-31"), Some(1_717_113_600));
        for bad in [
            "",
            "yesterday",
            "2024-13-01",
            "2024-05-31T25:00:00Z",
            "1717156800",
        ] {
            assert_eq!(parse_time(bad), None, "{bad}");
        }
    }

    #[test]
    fn entities_name_the_author_and_keep_the_details() {
        let e = StoredAuditEvent {
            id: 3,
            author_id: Some(1),
            entity_type: "User".into(),
            entity_id: 7,
            action: "user_blocked".into(),
            details: r#"{"action":"user_blocked","target_id":7,"ip_address":"10.0.0.1"}"#.into(),
            ip_address: "10.0.0.1".into(),
            created_at: 0,
        };
        let v = audit_event(&e, Some("root"));
        assert_eq!(v["details"]["action"], "user_blocked");
        assert_eq!(v["details"]["author_name"], "root");
        assert_eq!(v["details"]["target_id"], 7);
        assert_eq!(v["created_at"], "1970-01-01T00:00:00.000Z");
        let anonymous = StoredAuditEvent {
            author_id: None,
            details: "not json".into(),
            ..e
        };
        let v = audit_event(&anonymous, None);
        assert_eq!(v["author_id"], -1);
        assert_eq!(v["details"]["action"], "user_blocked");
        assert_eq!(v["details"]["author_name"], "An unauthenticated user");
    }
}
