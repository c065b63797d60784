//! A SQLite source, as a Rails app on SQLite writes it: booleans 0/1 (or `t`/`f` from older
//! Rails), UTC datetimes as text `YYYY-MM-DD HH:MM:SS[.ffffff]`. Opened read-only and not
//! created when missing, so the file stays byte for byte as it was, with no journal beside it.

use std::collections::HashSet;
use std::path::Path;

use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
use rusqlite::types::Value;
use rusqlite::{Connection, OpenFlags};

use super::{COUNTED, Cell, Kind, READ, SourceError, Table, assemble, check_columns};
use crate::domain::doorkeeper_import::SourceData;

pub(super) fn read(path: &Path) -> Result<SourceData, SourceError> {
    if !path.is_file() {
        return Err(SourceError::Open(format!(
            "no such file: {}",
            path.display()
        )));
    }
    let conn = open(path)?;
    // A file that is not a database fails at its first read, here, as an opening error.
    let tables: HashSet<String> = {
        let mut stmt = conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
            .map_err(|e| SourceError::Open(e.to_string()))?;
        let names = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .map_err(|e| SourceError::Open(e.to_string()))?;
        names
            .collect::<Result<_, _>>()
            .map_err(|e| SourceError::Open(e.to_string()))?
    };
    let mut rows = Vec::new();
    for table in READ {
        let columns = tables
            .contains(table.name)
            .then(|| columns_of(&conn, table.name))
            .transpose()?;
        let present = check_columns(table, columns.as_ref())?;
        rows.push(read_table(&conn, table, &present)?);
    }
    let mut counted = [0u64; 3];
    for (n, name) in counted.iter_mut().zip(COUNTED) {
        if tables.contains(name) {
            let sql = format!("SELECT COUNT(*) FROM \"{name}\"");
            let count: i64 = conn
                .query_row(&sql, [], |r| r.get(0))
                .map_err(|e| SourceError::Read(e.to_string()))?;
            *n = count.max(0) as u64;
        }
    }
    assemble(rows, counted)
}

/// Opens the file read-only without creating anything beside it. Read-only alone is not
/// enough for a database in WAL mode (Rails 7.1+ makes them so): SQLite would create its
/// `-wal` and `-shm` files. Without a `-wal` file there is nothing but the file to read, and
/// `immutable=1` tells SQLite so: no locks, no side files. With one (an app still writing
/// to it), the file alone would be out of date, so it is opened as usual, read-only.
fn open(path: &Path) -> Result<Connection, SourceError> {
    const IN_URI: &AsciiSet = &CONTROLS.add(b' ').add(b'%').add(b'?').add(b'#').add(b'"');
    let wal = Path::new(&format!("{}-wal", path.display())).exists();
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_URI;
    let encoded = utf8_percent_encode(&path.to_string_lossy(), IN_URI).to_string();
    let uri = if wal {
        format!("file:{encoded}?mode=ro")
    } else {
        format!("file:{encoded}?immutable=1")
    };
    Connection::open_with_flags(uri, flags).map_err(|e| SourceError::Open(e.to_string()))
}

fn columns_of(conn: &Connection, table: &str) -> Result<HashSet<String>, SourceError> {
    let mut stmt = conn
        .prepare(&format!("PRAGMA table_info(\"{table}\")"))
        .map_err(|e| SourceError::Read(e.to_string()))?;
    let names = stmt
        .query_map([], |r| r.get::<_, String>(1))
        .map_err(|e| SourceError::Read(e.to_string()))?;
    names
        .map(|n| n.map(|n| n.to_ascii_lowercase()))
        .collect::<Result<_, _>>()
        .map_err(|e| SourceError::Read(e.to_string()))
}

fn read_table(
    conn: &Connection,
    table: &Table,
    present: &[bool],
) -> Result<Vec<Vec<Cell>>, SourceError> {
    let sql = table.select(present, |column, here| {
        if here {
            format!("\"{}\"", column.name)
        } else {
            "NULL".into()
        }
    });
    let mut stmt = conn
        .prepare(&sql)
        .map_err(|e| SourceError::Read(e.to_string()))?;
    let mut rows = stmt
        .query([])
        .map_err(|e| SourceError::Read(e.to_string()))?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(|e| SourceError::Read(e.to_string()))? {
        let mut cells = Vec::with_capacity(table.columns.len());
        for (i, column) in table.columns.iter().enumerate() {
            let value: Value = row.get(i).map_err(|e| SourceError::Read(e.to_string()))?;
            cells.push(cell(value, column.kind).ok_or_else(|| {
                SourceError::Read(format!(
                    "{}.{} holds a value of the wrong type",
                    table.name, column.name
                ))
            })?);
        }
        out.push(cells);
    }
    Ok(out)
}

/// One SQLite value as `kind`; `None` when it cannot be one.
fn cell(value: Value, kind: Kind) -> Option<Cell> {
    Some(match (value, kind) {
        (Value::Null, _) => Cell::Null,
        (Value::Integer(i), Kind::Int | Kind::Time) => Cell::Int(i),
        (Value::Integer(i), Kind::Bool) => Cell::Bool(i != 0),
        (Value::Integer(i), Kind::Text) => Cell::Text(i.to_string()),
        (Value::Text(t), Kind::Text) => Cell::Text(t),
        (Value::Text(t), Kind::Int) => Cell::Int(t.trim().parse().ok()?),
        (Value::Text(t), Kind::Bool) => {
            Cell::Bool(matches!(t.as_str(), "t" | "true" | "1" | "TRUE"))
        }
        (Value::Text(t), Kind::Time) => Cell::Int(parse_datetime(&t)?),
        (Value::Real(r), Kind::Time | Kind::Int) => Cell::Int(r as i64),
        (Value::Blob(b), Kind::Text) => Cell::Text(String::from_utf8(b).ok()?),
        _ => return None,
    })
}

/// Rails' SQLite datetime, `YYYY-MM-DD HH:MM:SS[.ffffff]` in UTC (a `T` separator and a
/// trailing `Z` tolerated), as Unix seconds; fractions are dropped.
fn parse_datetime(text: &str) -> Option<i64> {
    let head = text.get(..19)?.replacen('T', " ", 1);
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    let at = time::PrimitiveDateTime::parse(&head, &format).ok()?;
    Some(at.assume_utc().unix_timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rails_datetimes_and_booleans() {
        assert_eq!(parse_datetime("1970-01-01 00:00:10"), Some(10));
        assert_eq!(
            parse_datetime("2024-02-29 12:00:00.123456"),
            Some(1_709_208_000)
        );
        assert_eq!(parse_datetime("2024-02-29T12:00:00Z"), Some(1_709_208_000));
        assert_eq!(parse_datetime("yesterday"), None);
        assert_eq!(cell(Value::Integer(1), Kind::Bool), Some(Cell::Bool(true)));
        assert_eq!(
            cell(Value::Text("f".into()), Kind::Bool),
            Some(Cell::Bool(false))
        );
        assert_eq!(cell(Value::Blob(vec![1]), Kind::Int), None);
    }
}
