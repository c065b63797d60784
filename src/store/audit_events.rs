//! Audit events (migration 0014). Each is written by the store method that makes the change
//! it records, in the same transaction, with [`insert_audit_event!`]; events that record no
//! change of their own (a failed sign-in) go through [`Store::record_audit_event`].

use super::{Store, StoreResult, impl_from_row, on_pool};
use crate::domain::audit::AuditEvent;

/// An event as stored and served.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredAuditEvent {
    pub id: i64,
    pub author_id: Option<i64>,
    pub entity_type: String,
    pub entity_id: i64,
    pub action: String,
    /// A JSON object.
    pub details: String,
    pub ip_address: String,
    pub created_at: i64,
}
impl_from_row!(StoredAuditEvent {
    id: i64,
    author_id: Option<i64>,
    entity_type: String,
    entity_id: i64,
    action: String,
    details: String,
    ip_address: String,
    created_at: i64,
});

pub(crate) const INSERT_AUDIT_EVENT: &str = "INSERT INTO audit_events \
     (author_id, entity_type, entity_id, action, details, ip_address, created_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7)";

/// Inserts `$event` (an `&AuditEvent`) at `$now` through `$exec` (a transaction), so the
/// event commits or rolls back with the change it records. A macro because each backend's
/// transaction is its own type.
macro_rules! insert_audit_event {
    ($exec:expr, $event:expr, $now:expr) => {{
        let event: &$crate::domain::audit::AuditEvent = $event;
        sqlx::query($crate::store::audit_events::INSERT_AUDIT_EVENT)
            .bind(event.author_id)
            .bind(event.entity_type)
            .bind(event.entity_id)
            .bind(event.action.as_str())
            .bind(event.details_json())
            .bind(&event.ip_address)
            .bind($now)
            .execute($exec)
            .await?;
        $crate::store::audit_events::log_event(event);
    }};
}
pub(crate) use insert_audit_event;

/// Each event is also one structured log line.
pub(crate) fn log_event(event: &AuditEvent) {
    tracing::info!(
        target: "doorward::audit",
        action = event.action.as_str(),
        author_id = event.author_id,
        entity_type = event.entity_type,
        entity_id = event.entity_id,
        ip = %event.ip_address,
        details = %event.details_json(),
        "audit event"
    );
}

/// Filters of `GET /api/v4/audit_events`.
#[derive(Clone, Debug, Default)]
pub struct AuditEventFilter {
    pub created_after: Option<i64>,
    pub created_before: Option<i64>,
    pub entity_type: Option<String>,
    pub entity_id: Option<i64>,
}

impl Store {
    /// Records an event that has no other write of its own.
    pub async fn record_audit_event(&self, event: &AuditEvent, now: i64) -> StoreResult<()> {
        on_pool!(self, p, begin => {
            let mut tx = p.begin_with(begin).await?;
            insert_audit_event!(&mut *tx, event, now);
            tx.commit().await?;
            Ok(())
        })
    }

    /// One page of events, newest first, and the total matching the filter.
    pub async fn list_audit_events(
        &self,
        filter: &AuditEventFilter,
        limit: i64,
        offset: i64,
    ) -> StoreResult<(Vec<StoredAuditEvent>, i64)> {
        macro_rules! filtered {
            ($select:literal, $tail:literal) => {
                concat!(
                    $select,
                    " FROM audit_events WHERE ($1 IS NULL OR created_at >= $1) \
                     AND ($2 IS NULL OR created_at <= $2) \
                     AND ($3 IS NULL OR entity_type = $3) \
                     AND ($4 IS NULL OR entity_id = $4)",
                    $tail
                )
            };
        }
        const LIST: &str = filtered!(
            "SELECT id, author_id, entity_type, entity_id, action, details, ip_address, created_at",
            " ORDER BY id DESC LIMIT $5 OFFSET $6"
        );
        const COUNT: &str = filtered!("SELECT COUNT(*)", "");
        on_pool!(self, read p => {
            let events: Vec<StoredAuditEvent> = sqlx::query_as(LIST)
                .bind(filter.created_after)
                .bind(filter.created_before)
                .bind(filter.entity_type.as_deref())
                .bind(filter.entity_id)
                .bind(limit)
                .bind(offset)
                .fetch_all(p)
                .await?;
            let total: i64 = sqlx::query_scalar(COUNT)
                .bind(filter.created_after)
                .bind(filter.created_before)
                .bind(filter.entity_type.as_deref())
                .bind(filter.entity_id)
                .fetch_one(p)
                .await?;
            Ok((events, total))
        })
    }

    pub async fn audit_event(&self, id: i64) -> StoreResult<Option<StoredAuditEvent>> {
        const SQL: &str = "SELECT id, author_id, entity_type, entity_id, action, details, ip_address, created_at \
             FROM audit_events WHERE id = $1";
        Ok(on_pool!(self, read p => sqlx::query_as(SQL).bind(id).fetch_optional(p).await)?)
    }

    /// Deletes events older than `before`, in batches ([`Store::delete_in_batches`]), so a
    /// year of events never makes one long transaction; returns how many went.
    pub async fn purge_audit_events(&self, before: i64) -> StoreResult<u64> {
        const SQL: &str = "DELETE FROM audit_events WHERE id IN \
             (SELECT id FROM audit_events WHERE created_at < $1 ORDER BY id LIMIT $2)";
        self.delete_in_batches(SQL, before).await
    }
}
