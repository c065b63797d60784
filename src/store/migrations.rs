//! The embedded migrations: one folder per backend, the same numbers and names in both
//! (a unit test checks), applied on start and by `doorward migrate`.

use sqlx::SqlSafeStr;
use sqlx::migrate::{Migration, MigrationType, Migrator};

use super::{Pool, StoreError, StoreResult};

/// (version, name, SQLite text, PostgreSQL text)
const MIGRATIONS: &[(i64, &str, &str, &str)] = &[
    (
        1,
        "foundation",
        include_str!("../../migrations/sqlite/0001_foundation.sql"),
        include_str!("../../migrations/postgres/0001_foundation.sql"),
    ),
    (
        2,
        "oauth",
        include_str!("../../migrations/sqlite/0002_oauth.sql"),
        include_str!("../../migrations/postgres/0002_oauth.sql"),
    ),
    (
        3,
        "lifecycle",
        include_str!("../../migrations/sqlite/0003_lifecycle.sql"),
        include_str!("../../migrations/postgres/0003_lifecycle.sql"),
    ),
    (
        4,
        "two_factor",
        include_str!("../../migrations/sqlite/0004_two_factor.sql"),
        include_str!("../../migrations/postgres/0004_two_factor.sql"),
    ),
    (
        5,
        "signing_keys",
        include_str!("../../migrations/sqlite/0005_signing_keys.sql"),
        include_str!("../../migrations/postgres/0005_signing_keys.sql"),
    ),
    (
        6,
        "cache_invalidations",
        include_str!("../../migrations/sqlite/0006_cache_invalidations.sql"),
        include_str!("../../migrations/postgres/0006_cache_invalidations.sql"),
    ),
    (
        7,
        "cache_notify",
        include_str!("../../migrations/sqlite/0007_cache_notify.sql"),
        include_str!("../../migrations/postgres/0007_cache_notify.sql"),
    ),
    (
        8,
        "groups",
        include_str!("../../migrations/sqlite/0008_groups.sql"),
        include_str!("../../migrations/postgres/0008_groups.sql"),
    ),
    (
        9,
        "group_applications",
        include_str!("../../migrations/sqlite/0009_group_applications.sql"),
        include_str!("../../migrations/postgres/0009_group_applications.sql"),
    ),
    (
        10,
        "backchannel_logout",
        include_str!("../../migrations/sqlite/0010_backchannel_logout.sql"),
        include_str!("../../migrations/postgres/0010_backchannel_logout.sql"),
    ),
    (
        11,
        "group_claims_cache",
        include_str!("../../migrations/sqlite/0011_group_claims_cache.sql"),
        include_str!("../../migrations/postgres/0011_group_claims_cache.sql"),
    ),
    (
        12,
        "dynamic_registration",
        include_str!("../../migrations/sqlite/0012_dynamic_registration.sql"),
        include_str!("../../migrations/postgres/0012_dynamic_registration.sql"),
    ),
    (
        13,
        "resource_indicators",
        include_str!("../../migrations/sqlite/0013_resource_indicators.sql"),
        include_str!("../../migrations/postgres/0013_resource_indicators.sql"),
    ),
    (
        14,
        "accounts",
        include_str!("../../migrations/sqlite/0014_accounts.sql"),
        include_str!("../../migrations/postgres/0014_accounts.sql"),
    ),
    (
        15,
        "pushed_authorization_requests",
        include_str!("../../migrations/sqlite/0015_pushed_authorization_requests.sql"),
        include_str!("../../migrations/postgres/0015_pushed_authorization_requests.sql"),
    ),
    (
        16,
        "dpop",
        include_str!("../../migrations/sqlite/0016_dpop.sql"),
        include_str!("../../migrations/postgres/0016_dpop.sql"),
    ),
    (
        17,
        "private_key_jwt",
        include_str!("../../migrations/sqlite/0017_private_key_jwt.sql"),
        include_str!("../../migrations/postgres/0017_private_key_jwt.sql"),
    ),
    (
        18,
        "append_only_tokens",
        include_str!("../../migrations/sqlite/0018_append_only_tokens.sql"),
        include_str!("../../migrations/postgres/0018_append_only_tokens.sql"),
    ),
    (
        19,
        "purge_indexes",
        include_str!("../../migrations/sqlite/0019_purge_indexes.sql"),
        include_str!("../../migrations/postgres/0019_purge_indexes.sql"),
    ),
    (
        20,
        "imported_credentials",
        include_str!("../../migrations/sqlite/0020_imported_credentials.sql"),
        include_str!("../../migrations/postgres/0020_imported_credentials.sql"),
    ),
    (
        21,
        "pushed_request_start",
        include_str!("../../migrations/sqlite/0021_pushed_request_start.sql"),
        include_str!("../../migrations/postgres/0021_pushed_request_start.sql"),
    ),
    (
        22,
        "refresh_family_index",
        include_str!("../../migrations/sqlite/0022_refresh_family_index.sql"),
        include_str!("../../migrations/postgres/0022_refresh_family_index.sql"),
    ),
    (
        23,
        "refresh_successor",
        include_str!("../../migrations/sqlite/0023_refresh_successor.sql"),
        include_str!("../../migrations/postgres/0023_refresh_successor.sql"),
    ),
];

fn migrator(postgres: bool) -> Migrator {
    let migrations = MIGRATIONS
        .iter()
        .map(|&(version, name, sqlite, pg)| {
            let sql = if postgres { pg } else { sqlite };
            Migration::new(
                version,
                name.into(),
                MigrationType::Simple,
                sql.into_sql_str(),
                false,
            )
        })
        .collect();
    Migrator::with_migrations(migrations)
}

pub(super) async fn run(pool: &Pool) -> StoreResult<()> {
    // The migrator takes an advisory lock on PostgreSQL, so nodes starting together are safe.
    let result = match pool {
        Pool::Sqlite { write, .. } => migrator(false).run(write).await,
        Pool::Postgres(p) => migrator(true).run(p).await,
    };
    result.map_err(|err| match err {
        sqlx::migrate::MigrateError::Execute(e) => StoreError::from(e),
        other => StoreError::Other(sqlx::Error::Migrate(Box::new(other))),
    })
}

#[cfg(test)]
mod tests {
    use super::MIGRATIONS;

    #[test]
    fn every_migration_exists_for_both_backends_with_the_same_tables() {
        let sqlite_dir =
            std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/sqlite"));
        let pg_dir = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/postgres"));
        let names = |dir: std::io::Result<std::fs::ReadDir>| -> Vec<String> {
            let mut v: Vec<String> = dir
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
            v.sort();
            v
        };
        let sqlite = names(sqlite_dir);
        assert_eq!(
            sqlite,
            names(pg_dir),
            "migration files differ between backends"
        );
        assert_eq!(
            sqlite.len(),
            MIGRATIONS.len(),
            "a migration file is not embedded"
        );
        for (file, (version, name, s, p)) in sqlite.iter().zip(MIGRATIONS) {
            assert_eq!(file, &format!("{version:04}_{name}.sql"));
            // Tables, indexes and alterations must read the same; a trigger only needs the
            // same name (its body is written in each dialect). A line may opt out with a
            // `-- backend-specific` comment (PostgreSQL's trigger function, for one).
            let tables = |sql: &str| -> Vec<String> {
                sql.lines()
                    .filter(|l| l.starts_with("CREATE") || l.starts_with("ALTER"))
                    .filter(|l| !l.ends_with("-- backend-specific"))
                    .map(|l| match l.strip_prefix("CREATE TRIGGER ") {
                        Some(rest) => rest.split(' ').next().unwrap_or_default().to_string(),
                        None => l.to_string(),
                    })
                    .collect()
            };
            assert_eq!(tables(s), tables(p), "{file}: tables and indexes differ");
        }
    }
}
