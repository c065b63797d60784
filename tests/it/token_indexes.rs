//! Issue 15: what each issuance writes to the token table's indexes, on both backends.
//! - A token issued without a refresh token (client credentials) writes no entry into the
//!   index of refresh chains (`oauth_access_tokens_family`, migration 0022).
//! - A rotation writes none into the index of grants: only a chain's first row names its
//!   code.
//! - A new SQLite file has 1 KiB pages (`store::SQLITE_PAGE_SIZE`).
//!
//! The statements that look chains and grants up still use those indexes, and still revoke
//! whole chains.

use serde_json::Value;

use doorward::store::Backend;

use crate::both_backends;
use crate::support::TestApp;
use crate::support::oauth::{AppSpec, REDIRECT, code_for, register, token_request};

/// `Store::revoke_token_family`'s statement, as the planner sees it, for a family written
/// as the backend's literal.
fn revoke_family(family: &str) -> String {
    format!(
        "UPDATE oauth_access_tokens SET revoked_at = 1 \
         WHERE family = {family} AND refresh_token_hash IS NOT NULL AND revoked_at IS NULL"
    )
}

both_backends! {
    async fn tokens_without_a_refresh_token_leave_the_chain_index_alone(app: TestApp) {
        let client = register(&app, AppSpec::default()).await;
        let basic = Some((client.client_id.as_str(), client.secret.as_str()));
        for _ in 0..5 {
            let res = token_request(&app, &[("grant_type", "client_credentials"), ("scope", "api")], basic).await;
            assert_eq!(res.status(), 200);
        }
        // A chain of two rows: a code exchange, then a rotation.
        let code = code_for(&app, &client, &[("scope", "api")]).await;
        let res = token_request(
            &app,
            &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", REDIRECT)],
            basic,
        )
        .await;
        let first: Value = res.json().await.unwrap();
        let first_refresh = first["refresh_token"].as_str().unwrap().to_string();
        let res = token_request(&app, &[("grant_type", "refresh_token"), ("refresh_token", &first_refresh)], basic).await;
        let second: Value = res.json().await.unwrap();
        let second_access = second["access_token"].as_str().unwrap().to_string();
        assert!(active(&app, &client.client_id, &client.secret, &second_access).await);

        match app.backend {
            Backend::Sqlite => {
                let pool = sqlx::SqlitePool::connect(&app.database_url).await.unwrap();
                // A new file has 1 KiB pages: every page a commit touches is a whole page of log.
                let page_size: i64 = sqlx::query_scalar("PRAGMA page_size").fetch_one(&pool).await.unwrap();
                assert_eq!(page_size, i64::from(doorward::store::SQLITE_PAGE_SIZE));
                assert_eq!(page_size, 1024);
                // Seven rows, two of them in a chain: the index holds those two only.
                let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM oauth_access_tokens").fetch_one(&pool).await.unwrap();
                assert_eq!(rows, 7);
                assert_eq!(index_entries(&pool, "oauth_access_tokens_family").await, 2);
                let plan = sqlite_plan(&pool, &revoke_family("X'00'")).await;
                assert!(plan.contains("USING INDEX oauth_access_tokens_family"), "{plan}");
                pool.close().await;
            }
            Backend::Postgres => {
                let pool = sqlx::PgPool::connect(&app.database_url).await.unwrap();
                let definition: String = sqlx::query_scalar(
                    "SELECT indexdef FROM pg_indexes WHERE indexname = 'oauth_access_tokens_family'",
                )
                .fetch_one(&pool)
                .await
                .unwrap();
                assert!(definition.ends_with("WHERE (refresh_token_hash IS NOT NULL)"), "{definition}");
                let plan = postgres_plan(&pool, &revoke_family("'\\x00'::bytea")).await;
                assert!(plan.contains("oauth_access_tokens_family"), "{plan}");
                pool.close().await;
            }
        }

        // Presenting the spent refresh token again revokes the chain (RFC 9700 §4.14.2)
        // through that index: the second generation's access token goes too.
        let res = token_request(&app, &[("grant_type", "refresh_token"), ("refresh_token", &first_refresh)], basic).await;
        assert_eq!(res.status(), 400);
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

        let first_rows = "UPDATE oauth_access_tokens SET revoked_at = 1 WHERE grant_id = 1 AND revoked_at IS NULL";
        match app.backend {
            Backend::Sqlite => {
                let pool = sqlx::SqlitePool::connect(&app.database_url).await.unwrap();
                let entries = index_entries(&pool, "oauth_access_tokens_grant_id").await;
                assert_eq!(entries, 1, "only the chain's first row is in the index of grants");
                let plan = sqlite_plan(&pool, first_rows).await;
                assert!(plan.contains("USING INDEX oauth_access_tokens_grant_id"), "{plan}");
                let plan = sqlite_plan(&pool, &descendants("1")).await;
                assert!(plan.contains("USING INDEX oauth_access_tokens_family"), "{plan}");
                assert!(plan.contains("USING INDEX oauth_access_tokens_grant_id"), "{plan}");
                pool.close().await;
            }
            Backend::Postgres => {
                let pool = sqlx::PgPool::connect(&app.database_url).await.unwrap();
                let named: i64 = sqlx::query_scalar("SELECT count(*) FROM oauth_access_tokens WHERE grant_id IS NOT NULL")
                    .fetch_one(&pool)
                    .await
                    .unwrap();
                assert_eq!(named, 1, "only the chain's first row names its code");
                let plan = postgres_plan(&pool, &descendants("1")).await;
                assert!(plan.contains("oauth_access_tokens_family"), "{plan}");
                assert!(plan.contains("oauth_access_tokens_grant_id"), "{plan}");
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

/// `Store::revoke_tokens_of_grant`'s second statement: the rows of the grant's chains.
fn descendants(grant_id: &str) -> String {
    format!(
        "UPDATE oauth_access_tokens SET revoked_at = 1 \
         WHERE family IN (SELECT family FROM oauth_access_tokens \
                          WHERE grant_id = {grant_id} AND refresh_token_hash IS NOT NULL) \
           AND refresh_token_hash IS NOT NULL AND revoked_at IS NULL"
    )
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
