//! `/admin/audit_events`: the audit events, newest first, a page at a time, filtered by
//! entity type and id (the same filters as `GET /api/v4/audit_events`).

use axum::extract::{RawQuery, State};
use axum::response::Response;
use serde_json::{Map, Value};

use super::{Admin, PER_PAGE, check_text, nav, page_number, pager, param, query_pairs};
use crate::domain::audit::{ENTITY_APPLICATION, ENTITY_USER};
use crate::domain::clock::human;
use crate::state::AppState;
use crate::store::audit_events::{AuditEventFilter, StoredAuditEvent};
use crate::web::WebError;

/// The entity types the filter offers.
const ENTITY_TYPES: &[&str] = &[ENTITY_USER, ENTITY_APPLICATION];

/// The keys shown in their own columns; the rest of `details` is shown as it is.
const SHOWN: &[&str] = &[
    "action",
    "target_id",
    "target_type",
    "target_details",
    "ip_address",
];

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn event_view(e: &StoredAuditEvent, author: Option<&str>) -> minijinja::Value {
    let details: Map<String, Value> = match serde_json::from_str(&e.details) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    };
    let get = |k: &str| details.get(k).map(text).unwrap_or_default();
    let extra: Vec<String> = details
        .iter()
        .filter(|(k, _)| !SHOWN.contains(&k.as_str()))
        .map(|(k, v)| format!("{k}: {}", text(v)))
        .collect();
    let target_link = match e.entity_type.as_str() {
        ENTITY_APPLICATION => Some(format!("/admin/applications/{}", e.entity_id)),
        _ => None,
    };
    minijinja::context! {
        id => e.id,
        created_at => human(e.created_at),
        author_id => e.author_id,
        author => author,
        action => &e.action,
        entity_type => &e.entity_type,
        entity_id => e.entity_id,
        target => get("target_details"),
        target_link,
        ip_address => &e.ip_address,
        extra => extra.join(", "),
    }
}

/// `GET /admin/audit_events[?entity_type=…&entity_id=…&page=N]`.
pub async fn index(
    State(state): State<AppState>,
    admin: Admin,
    csrf: crate::web::csrf::Csrf,
    RawQuery(query): RawQuery,
) -> Result<Response, WebError> {
    let pairs = query_pairs(query.as_deref());
    let page = page_number(param(&pairs, "page"))?;
    let entity_type = param(&pairs, "entity_type").unwrap_or_default().trim();
    check_text("entity type", entity_type, 64)?;
    let raw_id = param(&pairs, "entity_id").unwrap_or_default().trim();
    let entity_id =
        match raw_id {
            "" => None,
            raw => Some(raw.parse::<i64>().map_err(|_| {
                WebError::BadRequest("The entity id must be a whole number.".into())
            })?),
        };
    let filter = AuditEventFilter {
        entity_type: Some(entity_type.to_string()).filter(|t| !t.is_empty()),
        entity_id,
        ..AuditEventFilter::default()
    };
    let (events, total) = state
        .store
        .list_audit_events(&filter, PER_PAGE, (page - 1) * PER_PAGE)
        .await?;
    let authors: Vec<i64> = events.iter().filter_map(|e| e.author_id).collect();
    let names = state.store.usernames_by_ids(&authors).await?;
    let rows: Vec<_> = events
        .iter()
        .map(|e| {
            let author = e
                .author_id
                .and_then(|id| names.get(&id))
                .map(String::as_str);
            event_view(e, author)
        })
        .collect();
    state.templates.render(
        "admin_audit_events.html",
        minijinja::context! {
            title => "Audit events",
            section => "audit_events",
            current_user => nav(admin.user()),
            csrf_token => csrf.token(),
            events => rows,
            entity_types => ENTITY_TYPES.to_vec(),
            entity_type,
            entity_id => raw_id,
            pager => pager(&[("entity_type", entity_type), ("entity_id", raw_id)], page, total),
        },
    )
}
