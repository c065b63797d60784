//! Issue 15: what each issuance writes to the token table's indexes, on both backends.
//! - No index of refresh chains: a rotation records its successor's id in the row it
//!   revokes (migration 0023), and a chain is walked forward by primary key.
//! - A rotation writes no entry into the index of grants: only a chain's first row names
//!   its code.
//! - A new SQLite file has 1 KiB pages (`store::SQLITE_PAGE_SIZE`).
//!
//! The statements that revoke chains use the primary key and the index of grants, and still
//! revoke whole chains; chains rotated before migration 0023 are linked by it.

use serde_json::Value;

use doorward::domain::secret;
use doorward::store::Backend;
use doorward::store::access_tokens::{REVOKE_TOKEN_CHAIN, REVOKE_TOKENS_OF_GRANT};

use crate::both_backends;
use crate::support::oauth::{AppSpec, REDIRECT, code_for, register, token_request};
use crate::support::{TestApp, fresh_database};

/// A store statement with its parameters written as literals, for `EXPLAIN`.
fn with_literals(statement: &str, first: i64) -> String {
    statement
        .replace("$1", &first.to_string())
        .replace("$2", "1")
}

/// Checks, on either backend's pool, that `$no_index` counts no index of chains and that the
/// five client-credentials rows and the chain of three are linked `first → second →
/// third`; gives the chain's ids.
macro_rules! checked_chain {
    ($pool:expr, $no_index:literal) => {{
        let indexes: i64 = sqlx::query_scalar($no_index)
            .fetch_one(&$pool)
            .await
            .unwrap();
        assert_eq!(indexes, 0, "no index of chains");
        let chain: Vec<i64> = sqlx::query_scalar(
            "SELECT id FROM oauth_access_tokens WHERE refresh_token_hash IS NOT NULL ORDER BY id",
        )
        .fetch_all(&$pool)
        .await
        .unwrap();
        let successors: Vec<Option<i64>> =
            sqlx::query_scalar("SELECT successor_id FROM oauth_access_tokens ORDER BY id")
                .fetch_all(&$pool)
                .await
                .unwrap();
        assert_eq!(chain.len(), 3);
        assert_eq!(
            successors,
            [
                None,
                None,
                None,
                None,
                None,
                Some(chain[1]),
                Some(chain[2]),
                None
            ]
        );
        chain
    }};
}

both_backends! {
    async fn a_rotation_links_its_successor_and_reuse_walks_the_chain_by_primary_key(app: TestApp) {
        let client = register(&app, AppSpec::default()).await;
        let basic = Some((client.client_id.as_str(), client.secret.as_str()));
        for _ in 0..5 {
            let res = token_request(&app, &[("grant_type", "client_credentials"), ("scope", "api")], basic).await;
            assert_eq!(res.status(), 200);
        }
        // A chain of three rows: a code exchange, then two rotations.
        let code = code_for(&app, &client, &[("scope", "api")]).await;
        let res = token_request(
            &app,
            &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", REDIRECT)],
            basic,
        )
        .await;
        let first: Value = res.json().await.unwrap();
        let first_refresh = first["refresh_token"].as_str().unwrap().to_string();
        let mut refresh = first_refresh.clone();
        let mut access = String::new();
        for _ in 0..2 {
            let res = token_request(&app, &[("grant_type", "refresh_token"), ("refresh_token", &refresh)], basic).await;
            assert_eq!(res.status(), 200);
            let next: Value = res.json().await.unwrap();
            refresh = next["refresh_token"].as_str().unwrap().to_string();
            access = next["access_token"].as_str().unwrap().to_string();
        }
        assert!(active(&app, &client.client_id, &client.secret, &access).await);

        match app.backend {
            Backend::Sqlite => {
                let pool = sqlx::SqlitePool::connect(&app.database_url).await.unwrap();
                // A new file has 1 KiB pages: every page a commit touches is a whole page of log.
                let page_size: i64 = sqlx::query_scalar("PRAGMA page_size").fetch_one(&pool).await.unwrap();
                assert_eq!(page_size, i64::from(doorward::store::SQLITE_PAGE_SIZE));
                assert_eq!(page_size, 1024);
                let chain = checked_chain!(pool, "SELECT count(*) FROM sqlite_master WHERE name = 'oauth_access_tokens_family'");
                let plan = sqlite_plan(&pool, &with_literals(REVOKE_TOKEN_CHAIN, chain[0])).await;
                assert!(plan.contains("USING INTEGER PRIMARY KEY"), "{plan}");
                assert!(!plan.contains("SCAN oauth_access_tokens"), "{plan}");
                pool.close().await;
            }
            Backend::Postgres => {
                let pool = sqlx::PgPool::connect(&app.database_url).await.unwrap();
                let chain = checked_chain!(pool, "SELECT count(*) FROM pg_indexes WHERE indexname = 'oauth_access_tokens_family'");
                let plan = postgres_plan(&pool, &with_literals(REVOKE_TOKEN_CHAIN, chain[0])).await;
                assert!(plan.contains("oauth_access_tokens_pkey"), "{plan}");
                assert!(!plan.contains("Seq Scan"), "{plan}");
                pool.close().await;
            }
        }

        // Presenting the first, spent refresh token again revokes the chain (RFC 9700
        // §4.14.2) by walking its links: the third generation's tokens go too.
        let res = token_request(&app, &[("grant_type", "refresh_token"), ("refresh_token", &first_refresh)], basic).await;
        assert_eq!(res.status(), 400);
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"], "invalid_grant");
        assert!(!active(&app, &client.client_id, &client.secret, &access).await);
        let res = token_request(&app, &[("grant_type", "refresh_token"), ("refresh_token", &refresh)], basic).await;
        assert_eq!(res.status(), 400);
    }

    async fn revoking_a_refresh_token_revokes_its_successors(app: TestApp) {
        let client = register(&app, AppSpec::default()).await;
        let basic = Some((client.client_id.as_str(), client.secret.as_str()));
        let code = code_for(&app, &client, &[("scope", "api")]).await;
        let exchange = [("grant_type", "authorization_code"), ("code", code.as_str()), ("redirect_uri", REDIRECT)];
        let first: Value = token_request(&app, &exchange, basic).await.json().await.unwrap();
        let first_refresh = first["refresh_token"].as_str().unwrap().to_string();
        let res = token_request(&app, &[("grant_type", "refresh_token"), ("refresh_token", &first_refresh)], basic).await;
        let second: Value = res.json().await.unwrap();
        let second_access = second["access_token"].as_str().unwrap().to_string();
        assert!(active(&app, &client.client_id, &client.secret, &second_access).await);
        // RFC 7009 §2.1: revoking the spent refresh token takes the live generation along.
        let res = reqwest::Client::new()
            .post(app.url("/oauth/revoke"))
            .basic_auth(&client.client_id, Some(&client.secret))
            .form(&[("token", first_refresh.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        assert!(!active(&app, &client.client_id, &client.secret, &second_access).await);
    }

    async fn a_replayed_code_revokes_the_chain_though_rotations_name_no_code(app: TestApp) {
        let client = register(&app, AppSpec::default()).await;
        let basic = Some((client.client_id.as_str(), client.secret.as_str()));
        let code = code_for(&app, &client, &[("scope", "api")]).await;
        let exchange = [("grant_type", "authorization_code"), ("code", code.as_str()), ("redirect_uri", REDIRECT)];
        let first: Value = token_request(&app, &exchange, basic).await.json().await.unwrap();
        // Two rotations: three rows in the chain, the last one live.
        let mut refresh = first["refresh_token"].as_str().unwrap().to_string();
        let mut access = String::new();
        for _ in 0..2 {
            let res = token_request(&app, &[("grant_type", "refresh_token"), ("refresh_token", &refresh)], basic).await;
            let next: Value = res.json().await.unwrap();
            refresh = next["refresh_token"].as_str().unwrap().to_string();
            access = next["access_token"].as_str().unwrap().to_string();
        }
        assert!(active(&app, &client.client_id, &client.secret, &access).await);

        let statement = with_literals(REVOKE_TOKENS_OF_GRANT, 1);
        match app.backend {
            Backend::Sqlite => {
                let pool = sqlx::SqlitePool::connect(&app.database_url).await.unwrap();
                let entries = index_entries(&pool, "oauth_access_tokens_grant_id").await;
                assert_eq!(entries, 1, "only the chain's first row is in the index of grants");
                let plan = sqlite_plan(&pool, &statement).await;
                assert!(plan.contains("INDEX oauth_access_tokens_grant_id"), "{plan}");
                assert!(plan.contains("USING INTEGER PRIMARY KEY"), "{plan}");
                assert!(!plan.contains("SCAN oauth_access_tokens"), "{plan}");
                pool.close().await;
            }
            Backend::Postgres => {
                let pool = sqlx::PgPool::connect(&app.database_url).await.unwrap();
                let named: i64 = sqlx::query_scalar("SELECT count(*) FROM oauth_access_tokens WHERE grant_id IS NOT NULL")
                    .fetch_one(&pool)
                    .await
                    .unwrap();
                assert_eq!(named, 1, "only the chain's first row names its code");
                let plan = postgres_plan(&pool, &statement).await;
                assert!(plan.contains("oauth_access_tokens_grant_id"), "{plan}");
                assert!(plan.contains("oauth_access_tokens_pkey"), "{plan}");
                assert!(!plan.contains("Seq Scan"), "{plan}");
                pool.close().await;
            }
        }

        // RFC 6749 §4.1.2: the code presented again is refused, and every token issued from
        // it goes, the rotated ones included.
        let res = token_request(&app, &exchange, basic).await;
        assert_eq!(res.status(), 400);
        assert!(!active(&app, &client.client_id, &client.secret, &access).await);
        let res = token_request(&app, &[("grant_type", "refresh_token"), ("refresh_token", &refresh)], basic).await;
        assert_eq!(res.status(), 400);
    }
}

/// Chains rotated before migration 0023 (rows of one `family`, no links) are linked by it,
/// and a spent refresh token of such a chain still revokes its newest row.
#[tokio::test]
async fn chains_rotated_before_the_links_are_linked_by_the_migration_sqlite() {
    chains_rotated_before_the_links(Backend::Sqlite).await;
}

#[tokio::test]
async fn chains_rotated_before_the_links_are_linked_by_the_migration_postgres() {
    chains_rotated_before_the_links(Backend::Postgres).await;
}

async fn chains_rotated_before_the_links(backend: Backend) {
    let data_dir = tempfile::tempdir().unwrap();
    let database_url = fresh_database(backend, data_dir.path()).await;
    let folder = match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };
    let all = sqlx::migrate::Migrator::new(std::path::Path::new(&format!(
        "{}/migrations/{folder}",
        env!("CARGO_MANIFEST_DIR")
    )))
    .await
    .unwrap();
    let mut before = sqlx::migrate::Migrator::DEFAULT;
    before.migrations = all
        .migrations
        .iter()
        .filter(|m| m.version <= 22)
        .cloned()
        .collect::<Vec<_>>()
        .into();
    // Two chains of one family each, interleaved by id: a (1, 3, 5) and b (2, 4), plus a
    // token without a refresh token (6). Only each chain's newest row is live.
    // Revoked a minute ago: well within the retention, so the purge on start keeps them.
    let recently = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let recently = Some(i64::try_from(recently).unwrap() - 60);
    let family_a = secret::new_family();
    let family_b = secret::new_family();
    let refresh: Vec<String> = (0..6)
        .map(|_| {
            secret::generate_ordered(secret::REFRESH_TOKEN_PREFIX)
                .expose()
                .to_string()
        })
        .collect();
    let rows: [(&[u8], bool, Option<i64>); 6] = [
        (&family_a, true, recently),
        (&family_b, true, recently),
        (&family_a, true, recently),
        (&family_b, true, None),
        (&family_a, true, None),
        (&family_b, false, None),
    ];
    let insert = "INSERT INTO oauth_access_tokens (id, token_hash, refresh_token_hash, family, scopes, created_at, expires_at, revoked_at) \
                  VALUES ($1, $2, $3, $4, 'api', 1, 4102444800, $5)";
    macro_rules! prepare {
        ($pool:expr) => {{
            before.run(&$pool).await.unwrap();
            for (i, (family, with_refresh, revoked_at)) in rows.iter().enumerate() {
                let id = i64::try_from(i).unwrap() + 1;
                let access = secret::generate_ordered(secret::ACCESS_TOKEN_PREFIX);
                sqlx::query(insert)
                    .bind(id)
                    .bind(secret::token_key(access.expose()).to_vec())
                    .bind(with_refresh.then(|| secret::token_key(&refresh[i]).to_vec()))
                    .bind(family.to_vec())
                    .bind(*revoked_at)
                    .execute(&$pool)
                    .await
                    .unwrap();
            }
            $pool.close().await;
        }};
    }
    match backend {
        Backend::Sqlite => {
            let options: sqlx::sqlite::SqliteConnectOptions = database_url.parse().unwrap();
            let pool = sqlx::SqlitePool::connect_with(options.create_if_missing(true))
                .await
                .unwrap();
            prepare!(pool);
        }
        Backend::Postgres => {
            let pool = sqlx::PgPool::connect(&database_url).await.unwrap();
            prepare!(pool);
        }
    }

    let app = TestApp::spawn_on(backend, data_dir, database_url.clone()).await;
    let links = "SELECT successor_id FROM oauth_access_tokens ORDER BY id";
    let revoked = "SELECT revoked_at IS NOT NULL FROM oauth_access_tokens ORDER BY id";
    let (successors, now_revoked): (Vec<Option<i64>>, Vec<bool>) = match backend {
        Backend::Sqlite => {
            let pool = sqlx::SqlitePool::connect(&database_url).await.unwrap();
            let before: Vec<Option<i64>> =
                sqlx::query_scalar(links).fetch_all(&pool).await.unwrap();
            pool.close().await;
            // Reuse of chain a's first refresh token, over HTTP.
            reuse(&app, &refresh[0]).await;
            let pool = sqlx::SqlitePool::connect(&database_url).await.unwrap();
            let after: Vec<bool> = sqlx::query_scalar(revoked).fetch_all(&pool).await.unwrap();
            pool.close().await;
            (before, after)
        }
        Backend::Postgres => {
            let pool = sqlx::PgPool::connect(&database_url).await.unwrap();
            let before: Vec<Option<i64>> =
                sqlx::query_scalar(links).fetch_all(&pool).await.unwrap();
            reuse(&app, &refresh[0]).await;
            let after: Vec<bool> = sqlx::query_scalar(revoked).fetch_all(&pool).await.unwrap();
            pool.close().await;
            (before, after)
        }
    };
    assert_eq!(successors, [Some(3), Some(4), Some(5), None, None, None]);
    // Chain a's newest row (5) went; chain b's (4) and the lone token (6) did not.
    assert_eq!(now_revoked, [true, true, true, false, true, false]);
    app.stop().await;
}

/// Presents a spent refresh token (of a token without a client) and expects the reuse answer.
async fn reuse(app: &TestApp, refresh_token: &str) {
    let res = token_request(
        app,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ],
        None,
    )
    .await;
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant");
}

/// Entries in a SQLite index, counted on its leaf pages (`dbstat`).
async fn index_entries(pool: &sqlx::SqlitePool, index: &str) -> i64 {
    sqlx::query_scalar("SELECT sum(ncell) FROM dbstat WHERE name = ?1 AND pagetype = 'leaf'")
        .bind(index)
        .fetch_one(pool)
        .await
        .unwrap()
}

/// PostgreSQL's plan of `statement`, index scans preferred: the tests' few rows are too
/// few for the planner to choose an index unprompted.
async fn postgres_plan(pool: &sqlx::PgPool, statement: &str) -> String {
    let mut conn = pool.acquire().await.unwrap();
    sqlx::query("SET enable_seqscan = off")
        .execute(&mut *conn)
        .await
        .unwrap();
    let plan: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("EXPLAIN {statement}")))
        .fetch_all(&mut *conn)
        .await
        .unwrap();
    plan.join("\n")
}

/// The details of SQLite's `EXPLAIN QUERY PLAN` rows (id, parent, notused, detail).
async fn sqlite_plan(pool: &sqlx::SqlitePool, statement: &str) -> String {
    use sqlx::Row;
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "EXPLAIN QUERY PLAN {statement}"
    )))
    .fetch_all(pool)
    .await
    .unwrap();
    rows.iter()
        .map(|r| r.get::<String, _>(3))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Whether introspection (RFC 7662) calls `token` active.
async fn active(app: &TestApp, client_id: &str, secret: &str, token: &str) -> bool {
    let res = reqwest::Client::new()
        .post(app.url("/oauth/introspect"))
        .basic_auth(client_id, Some(secret))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap();
    let body: Value = res.json().await.unwrap();
    body["active"] == true
}
