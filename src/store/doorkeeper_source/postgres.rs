//! A PostgreSQL source (GitLab Omnibus: `gitlabhq_production`), read in one read-only
//! repeatable-read transaction. Every column is cast to what the import reads, so `integer` or `bigint`
//! ids, `character varying` or `text`, and `timestamp` with or without time zone all do.

use std::collections::HashSet;
use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgConnection, PgRow};
use sqlx::{Connection, Row};

use super::{COUNTED, Cell, Kind, READ, SourceError, Table, assemble, check_columns};
use crate::domain::doorkeeper_import::SourceData;

/// A source that does not answer in this time is an error, not a hang.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

pub(super) async fn read(url: &str) -> Result<SourceData, SourceError> {
    let options = PgConnectOptions::from_str(url).map_err(|e| SourceError::Open(e.to_string()))?;
    let mut conn = tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect_with(&options))
        .await
        .map_err(|_| SourceError::Open("the server did not answer within 10 seconds".into()))?
        .map_err(|e| SourceError::Open(e.to_string()))?;
    let read = |e: sqlx::Error| SourceError::Read(e.to_string());
    // One snapshot for every table, so tokens and their users and applications agree.
    sqlx::raw_sql("START TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut conn)
        .await
        .map_err(read)?;
    let mut rows = Vec::new();
    for table in READ {
        let columns = columns_of(&mut conn, table.name).await?;
        let present = check_columns(table, columns.as_ref())?;
        rows.push(read_table(&mut conn, table, &present).await?);
    }
    let mut counted = [0u64; 3];
    for (n, name) in counted.iter_mut().zip(COUNTED) {
        if columns_of(&mut conn, name).await?.is_some() {
            let sql = format!("SELECT COUNT(*) FROM \"{name}\"");
            let count: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                .fetch_one(&mut conn)
                .await
                .map_err(read)?;
            *n = count.max(0) as u64;
        }
    }
    sqlx::raw_sql("ROLLBACK")
        .execute(&mut conn)
        .await
        .map_err(read)?;
    let _ = conn.close().await;
    assemble(rows, counted)
}

/// The table's column names (lowercase), or `None` when the current schema has no such table.
async fn columns_of(
    conn: &mut PgConnection,
    table: &str,
) -> Result<Option<HashSet<String>>, SourceError> {
    const SQL: &str = "SELECT CAST(column_name AS TEXT) FROM information_schema.columns \
                       WHERE table_schema = current_schema() AND table_name = $1";
    let names: Vec<String> = sqlx::query_scalar(SQL)
        .bind(table)
        .fetch_all(&mut *conn)
        .await
        .map_err(|e| SourceError::Read(e.to_string()))?;
    Ok((!names.is_empty()).then(|| names.into_iter().map(|n| n.to_ascii_lowercase()).collect()))
}

fn expression(name: &str, kind: Kind, here: bool) -> String {
    let column = if here {
        format!("\"{name}\"")
    } else {
        "NULL".to_string()
    };
    match kind {
        Kind::Int => format!("CAST({column} AS BIGINT)"),
        Kind::Text => format!("CAST({column} AS TEXT)"),
        Kind::Bool => format!("CAST({column} AS BOOLEAN)"),
        // A `timestamp` column holds UTC (Rails' default); EXTRACT reads it as such, and
        // FLOOR keeps whole seconds as Ruby's `to_i` does (a CAST alone would round).
        Kind::Time if here => format!("CAST(FLOOR(EXTRACT(EPOCH FROM {column})) AS BIGINT)"),
        Kind::Time => "CAST(NULL AS BIGINT)".to_string(),
    }
}

async fn read_table(
    conn: &mut PgConnection,
    table: &Table,
    present: &[bool],
) -> Result<Vec<Vec<Cell>>, SourceError> {
    let sql = table.select(present, |column, here| {
        expression(column.name, column.kind, here)
    });
    let rows: Vec<PgRow> = sqlx::query(sqlx::AssertSqlSafe(sql))
        .fetch_all(&mut *conn)
        .await
        .map_err(|e| SourceError::Read(e.to_string()))?;
    rows.iter()
        .map(|row| {
            table
                .columns
                .iter()
                .enumerate()
                .map(|(i, c)| cell(row, i, c.kind))
                .collect::<Result<Vec<_>, sqlx::Error>>()
                .map_err(|e| SourceError::Read(format!("{}: {e}", table.name)))
        })
        .collect()
}

fn cell(row: &PgRow, i: usize, kind: Kind) -> Result<Cell, sqlx::Error> {
    Ok(match kind {
        Kind::Int | Kind::Time => row
            .try_get::<Option<i64>, _>(i)?
            .map_or(Cell::Null, Cell::Int),
        Kind::Text => row
            .try_get::<Option<String>, _>(i)?
            .map_or(Cell::Null, Cell::Text),
        Kind::Bool => row
            .try_get::<Option<bool>, _>(i)?
            .map_or(Cell::Null, Cell::Bool),
    })
}
