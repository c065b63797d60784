//! Reading a doorkeeper (GitLab) database for `doorward import doorkeeper` (issue 16): SQLite
//! or PostgreSQL, opened read-only, in GitLab's table shapes. Each backend only turns rows
//! into [`Cell`]s; the shapes, the optional columns and the conversion are here, once.

mod postgres;
mod sqlite;

use std::collections::HashSet;

use crate::domain::doorkeeper_import::{SourceApplication, SourceData, SourceToken, SourceUser};

/// Why a source could not be read. Each is one line, never with the URL's password.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("cannot open the source database: {0}")]
    Open(String),
    #[error("the source is not a doorkeeper database in GitLab's shape: {0}")]
    NotDoorkeeper(String),
    #[error("cannot read the source database: {0}")]
    Read(String),
}

/// How a column is read, whatever its declared type in the source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    Int,
    Text,
    Bool,
    /// A datetime (UTC), read as Unix seconds.
    Time,
}

/// A value read from the source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Cell {
    Null,
    Int(i64),
    Text(String),
    Bool(bool),
}

/// A column the import reads: required ones must exist, optional ones read as NULL when
/// the source lacks them.
pub(super) struct Column {
    pub name: &'static str,
    pub kind: Kind,
    pub required: bool,
}

const fn col(name: &'static str, kind: Kind, required: bool) -> Column {
    Column {
        name,
        kind,
        required,
    }
}

/// A table the import reads, in GitLab's shape.
pub(super) struct Table {
    pub name: &'static str,
    pub columns: &'static [Column],
}

impl Table {
    /// `SELECT` of every column as `expression` writes it (given whether the source has
    /// it) `FROM` the table, in id order. The names are this file's constants, never input.
    pub(super) fn select(
        &self,
        present: &[bool],
        expression: impl Fn(&Column, bool) -> String,
    ) -> String {
        let list: Vec<String> = self
            .columns
            .iter()
            .zip(present)
            .map(|(column, here)| expression(column, *here))
            .collect();
        format!(
            "SELECT {} FROM \"{}\" ORDER BY \"id\"",
            list.join(", "),
            self.name
        )
    }
}

const USERS: Table = Table {
    name: "users",
    columns: &[
        col("id", Kind::Int, true),
        col("username", Kind::Text, true),
        col("email", Kind::Text, true),
        col("encrypted_password", Kind::Text, true),
        col("name", Kind::Text, false),
        col("state", Kind::Text, false),
        col("admin", Kind::Bool, false),
        col("otp_required_for_login", Kind::Bool, false),
        col("confirmed_at", Kind::Time, false),
    ],
};

const APPLICATIONS: Table = Table {
    name: "oauth_applications",
    columns: &[
        col("id", Kind::Int, true),
        col("name", Kind::Text, true),
        col("uid", Kind::Text, true),
        col("secret", Kind::Text, true),
        col("redirect_uri", Kind::Text, true),
        col("scopes", Kind::Text, true),
        col("confidential", Kind::Bool, false),
        col("trusted", Kind::Bool, false),
        col("owner_id", Kind::Int, false),
        col("owner_type", Kind::Text, false),
    ],
};

const ACCESS_TOKENS: Table = Table {
    name: "oauth_access_tokens",
    columns: &[
        col("id", Kind::Int, true),
        col("token", Kind::Text, true),
        col("refresh_token", Kind::Text, false),
        col("resource_owner_id", Kind::Int, true),
        col("application_id", Kind::Int, true),
        col("expires_in", Kind::Int, true),
        col("created_at", Kind::Time, true),
        col("revoked_at", Kind::Time, true),
        col("scopes", Kind::Text, true),
        col("previous_refresh_token", Kind::Text, false),
    ],
};

/// Tables only counted.
const COUNTED: [&str; 3] = [
    "oauth_access_grants",
    "oauth_openid_requests",
    "oauth_device_grants",
];

/// Where a source lives, parsed from `--from`.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Location {
    Sqlite(std::path::PathBuf),
    Postgres(String),
}

fn locate(url: &str) -> Result<Location, SourceError> {
    if let Some(path) = url.strip_prefix("sqlite://") {
        let path = std::path::Path::new(path);
        if !path.is_absolute() {
            return Err(SourceError::Open(
                "a SQLite source is sqlite:///<absolute path>".into(),
            ));
        }
        return Ok(Location::Sqlite(path.to_path_buf()));
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(Location::Postgres(url.to_string()));
    }
    Err(SourceError::Open(
        "unknown scheme: use sqlite:///<absolute path> or postgres://user:password@host:port/database".into(),
    ))
}

/// `url` with its password replaced by `********`, for reports and messages: the one in
/// its user part, and a `password` query parameter (which libpq and sqlx accept too).
pub fn masked(url: &str) -> String {
    const HIDDEN: &str = "********";
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            if parsed.password().is_some() {
                // Only fails for URLs that cannot have a password, which this one has.
                let _ = parsed.set_password(Some(HIDDEN));
            }
            if parsed.query_pairs().any(|(k, _)| k == "password") {
                let pairs: Vec<(String, String)> = parsed
                    .query_pairs()
                    .map(|(k, v)| {
                        let v = if k == "password" {
                            HIDDEN.into()
                        } else {
                            v.into_owned()
                        };
                        (k.into_owned(), v)
                    })
                    .collect();
                parsed.query_pairs_mut().clear().extend_pairs(pairs);
            }
            parsed.to_string()
        }
        // Unparsable: keep only the scheme, which cannot hold a secret.
        Err(_) => url.split(':').next().unwrap_or_default().to_string() + ":…",
    }
}

/// Reads everything the import needs from the source at `url`, read-only.
pub async fn read(url: &str) -> Result<SourceData, SourceError> {
    match locate(url)? {
        Location::Sqlite(path) => tokio::task::spawn_blocking(move || sqlite::read(&path))
            .await
            .map_err(|e| SourceError::Read(e.to_string()))?,
        Location::Postgres(url) => postgres::read(&url).await,
    }
}

/// The tables a reader reads, in this order.
pub(super) const READ: [&Table; 3] = [&USERS, &APPLICATIONS, &ACCESS_TOKENS];

/// Checks that `present` (the table's column names, lowercase; `None` when the table is
/// missing) holds what `table` requires, and says which optional columns to read as NULL.
pub(super) fn check_columns(
    table: &Table,
    present: Option<&HashSet<String>>,
) -> Result<Vec<bool>, SourceError> {
    let present = present
        .ok_or_else(|| SourceError::NotDoorkeeper(format!("there is no table {}", table.name)))?;
    table
        .columns
        .iter()
        .map(|c| {
            let here = present.contains(c.name);
            if c.required && !here {
                Err(SourceError::NotDoorkeeper(format!(
                    "table {} has no column {}",
                    table.name, c.name
                )))
            } else {
                Ok(here)
            }
        })
        .collect()
}

/// What a backend reader read: the rows of the [`READ`] tables in their order, as cells,
/// and the counts of the [`COUNTED`] ones.
pub(super) fn assemble(
    tables: Vec<Vec<Vec<Cell>>>,
    counted: [u64; 3],
) -> Result<SourceData, SourceError> {
    let [users, applications, access_tokens] = <[Vec<Vec<Cell>>; 3]>::try_from(tables)
        .map_err(|_| SourceError::Read("a table was not read".into()))?;
    let users = users.iter().map(|r| user(r)).collect::<Result<_, _>>()?;
    let applications = applications
        .iter()
        .map(|r| application(r))
        .collect::<Result<_, _>>()?;
    let access_tokens = access_tokens
        .iter()
        .map(|r| token(r))
        .collect::<Result<_, _>>()?;
    let [access_grants, openid_requests, device_grants] = counted;
    Ok(SourceData {
        users,
        applications,
        access_tokens,
        access_grants,
        openid_requests,
        device_grants,
    })
}

fn bad(table: &str, column: &str) -> SourceError {
    SourceError::Read(format!("{table}.{column} holds a value of the wrong type"))
}

fn int(row: &[Cell], i: usize, table: &str, column: &str) -> Result<Option<i64>, SourceError> {
    match &row[i] {
        Cell::Null => Ok(None),
        Cell::Int(v) => Ok(Some(*v)),
        _ => Err(bad(table, column)),
    }
}

fn text(row: &[Cell], i: usize) -> Option<String> {
    match &row[i] {
        Cell::Text(s) => Some(s.clone()),
        Cell::Int(v) => Some(v.to_string()),
        _ => None,
    }
}

fn boolean(row: &[Cell], i: usize, default: bool) -> bool {
    match &row[i] {
        Cell::Bool(b) => *b,
        Cell::Int(v) => *v != 0,
        _ => default,
    }
}

fn required<T>(value: Option<T>, table: &str, column: &str) -> Result<T, SourceError> {
    value.ok_or_else(|| SourceError::Read(format!("{table}.{column} is NULL in a row")))
}

fn user(r: &[Cell]) -> Result<SourceUser, SourceError> {
    let t = "users";
    Ok(SourceUser {
        id: required(int(r, 0, t, "id")?, t, "id")?,
        username: required(text(r, 1), t, "username")?,
        email: required(text(r, 2), t, "email")?,
        encrypted_password: text(r, 3).unwrap_or_default(),
        name: text(r, 4),
        state: text(r, 5),
        admin: boolean(r, 6, false),
        otp_required_for_login: boolean(r, 7, false),
        confirmed: int(r, 8, t, "confirmed_at")?.is_some(),
    })
}

fn application(r: &[Cell]) -> Result<SourceApplication, SourceError> {
    let t = "oauth_applications";
    Ok(SourceApplication {
        id: required(int(r, 0, t, "id")?, t, "id")?,
        name: text(r, 1).unwrap_or_default(),
        uid: required(text(r, 2), t, "uid")?,
        secret: text(r, 3).unwrap_or_default(),
        redirect_uri: text(r, 4).unwrap_or_default(),
        scopes: text(r, 5).unwrap_or_default(),
        confidential: boolean(r, 6, true),
        trusted: boolean(r, 7, false),
        owner_id: int(r, 8, t, "owner_id")?,
        owner_type: text(r, 9),
    })
}

fn token(r: &[Cell]) -> Result<SourceToken, SourceError> {
    let t = "oauth_access_tokens";
    Ok(SourceToken {
        id: required(int(r, 0, t, "id")?, t, "id")?,
        token: text(r, 1).unwrap_or_default(),
        refresh_token: text(r, 2),
        resource_owner_id: int(r, 3, t, "resource_owner_id")?,
        application_id: int(r, 4, t, "application_id")?,
        expires_in: int(r, 5, t, "expires_in")?,
        created_at: required(int(r, 6, t, "created_at")?, t, "created_at")?,
        revoked_at: int(r, 7, t, "revoked_at")?,
        scopes: text(r, 8).unwrap_or_default(),
        previous_refresh_token: text(r, 9),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_located_and_passwords_masked() {
        assert_eq!(
            locate("sqlite:///var/db/gitlab.sqlite3").unwrap(),
            Location::Sqlite("/var/db/gitlab.sqlite3".into())
        );
        assert!(locate("sqlite://relative.db").is_err());
        assert!(locate("mysql://u:p@h/db").is_err());
        assert_eq!(
            masked("postgres://gitlab:s3cret@db.example:5432/gitlabhq_production"),
            "postgres://gitlab:********@db.example:5432/gitlabhq_production"
        );
        assert_eq!(masked("sqlite:///tmp/a.db"), "sqlite:///tmp/a.db");
        assert_eq!(
            masked("postgres://gitlab@db/gitlab?sslmode=require&password=s3cret"),
            "postgres://gitlab@db/gitlab?sslmode=require&password=********"
        );
        assert!(!masked("postgres://u:s3cret@[bad").contains("s3cret"));
    }

    #[test]
    fn required_columns_must_exist_and_optional_ones_may_not() {
        let mut present: HashSet<String> = ["id", "username", "email", "encrypted_password"]
            .map(String::from)
            .into();
        let read = check_columns(&USERS, Some(&present)).unwrap();
        assert_eq!(read[..5], [true, true, true, true, false]);
        present.remove("email");
        assert!(matches!(
            check_columns(&USERS, Some(&present)),
            Err(SourceError::NotDoorkeeper(_))
        ));
        assert!(check_columns(&USERS, None).is_err());
    }
}
