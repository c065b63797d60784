//! On a SQLite file the hot point reads (a token with its owner, a code, a user by id) go
//! through SQLite itself on threads of their own (`store::reader`), every other read through
//! sqlx. Both must read every column alike; these tests set every optional column and
//! compare, on both backends (on PostgreSQL both sides are sqlx).

use serde_json::Value;

use doorward::domain::secret;
use doorward::store::Backend;

use crate::both_backends;
use crate::support::TestApp;
use crate::support::oauth::{AppSpec, REDIRECT, code_for, register, token_request};

/// A PKCE pair: CHALLENGE is base64url(SHA-256(VERIFIER)) (RFC 7636 §4.2).
const VERIFIER: &str = "dBjftJeZ4CVP-mJ0kRmVb8xJoQSY4UrFlb4Ab_Xf5j3k";
const CHALLENGE: &str = "KGeiraBx9b-46OZ-BnBjKBkagofJhnU1xc4BScLojks";
const MCP: &str = "https://mcp.example/mcp";
const OTHER: &str = "https://other.example/api";

/// Gives root a value in every column that can be empty or NULL, all different.
async fn fill_every_user_column(app: &TestApp) {
    const SQL: &str = "UPDATE users SET public_email = 'public@example.com', \
         website_url = 'https://root.example', bio = 'a bio', location = 'a place', \
         organization = 'an org', job_title = 'a title', last_sign_in_at = 1000000001, \
         current_sign_in_at = 1000000002, two_factor_enabled = TRUE, confirmed_at = 1000000003, \
         unconfirmed_email = 'next@example.com' WHERE username = 'root'";
    match app.backend {
        Backend::Sqlite => {
            let pool = sqlx::SqlitePool::connect(&app.database_url).await.unwrap();
            sqlx::query(SQL).execute(&pool).await.unwrap();
            pool.close().await;
        }
        Backend::Postgres => {
            let pool = sqlx::PgPool::connect(&app.database_url).await.unwrap();
            sqlx::query(SQL).execute(&pool).await.unwrap();
            pool.close().await;
        }
    }
}

both_backends! {
    async fn point_reads_decode_every_column_as_the_other_reads_do(app: TestApp) {
        let client = register(&app, AppSpec { scopes: "api openid", ..AppSpec::default() }).await;
        let code = code_for(
            &app,
            &client,
            &[
                ("scope", "api openid"),
                ("nonce", "n-0S6_WzA2Mj"),
                ("code_challenge", CHALLENGE),
                ("code_challenge_method", "S256"),
                ("resource", MCP),
                ("resource", OTHER),
            ],
        )
        .await;
        fill_every_user_column(&app).await;
        let store = &app.state.store;

        // A user by id (natively on SQLite) against by username (sqlx), every field.
        let by_name = store.user_by_username("root").await.unwrap().unwrap();
        assert_eq!(by_name.website_url, "https://root.example");
        assert_eq!(by_name.unconfirmed_email.as_deref(), Some("next@example.com"));
        assert!(by_name.two_factor_enabled);
        let by_id = store.user_by_id(by_name.id).await.unwrap().unwrap();
        assert_eq!(by_id, by_name);

        // The code, natively on SQLite: every column as the authorization stored it.
        let (grant, owner) = store
            .grant_by_code_hash(&secret::token_key(&code))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(owner, by_name);
        assert_eq!(grant.application_id, client.id);
        assert_eq!(grant.user_id, by_name.id);
        assert_eq!(grant.redirect_uri, REDIRECT);
        assert_eq!(grant.scopes.to_string(), "api openid");
        let pkce = grant.code_challenge.as_ref().unwrap();
        assert_eq!((pkce.value.as_str(), pkce.method.as_str()), (CHALLENGE, "S256"));
        assert_eq!(grant.nonce.as_deref(), Some("n-0S6_WzA2Mj"));
        assert_eq!(grant.resources.stored().as_deref(), Some(&*format!("{MCP} {OTHER}")));
        assert!(grant.session_id.is_some());
        assert_eq!(grant.consumed_at, None);
        assert!(grant.expires_at > grant.created_at);

        let res = token_request(
            &app,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", VERIFIER),
                ("resource", MCP),
            ],
            Some((&client.client_id, &client.secret)),
        )
        .await;
        let status = res.status();
        let tokens: Value = res.json().await.unwrap();
        assert_eq!(status, 200, "{tokens}");
        let access = tokens["access_token"].as_str().unwrap();
        let refresh = tokens["refresh_token"].as_str().unwrap();

        // The pair's row found by either token: the access token on the reader threads, the
        // refresh token on the writer's (SQLite); the same row, its owner read in full.
        let by_access = store
            .access_token_by_hash(&secret::token_key(access))
            .await
            .unwrap()
            .unwrap();
        let by_refresh = store
            .refresh_token_by_hash(&secret::token_key(refresh))
            .await
            .unwrap()
            .unwrap();
        for found in [&by_access, &by_refresh] {
            let t = &found.token;
            assert_eq!(t.application_id, Some(client.id));
            assert_eq!(t.user_id, Some(by_name.id));
            assert_eq!(t.grant_id, Some(grant.id));
            assert_eq!(t.scopes.to_string(), "api openid");
            assert_eq!(t.resources, grant.resources);
            assert_eq!(t.audience.stored().as_deref(), Some(MCP));
            assert_eq!(t.revoked_at, None);
            assert_eq!(t.dpop_jkt, None);
            assert!(t.expires_at > t.created_at);
            assert_eq!(found.client_id.as_deref(), Some(client.client_id.as_str()));
            assert_eq!(found.user.as_deref(), Some(&by_name));
        }
        assert_eq!(by_access.token, by_refresh.token);
        // Rotated, the row reads as revoked on both paths.
        let res = token_request(
            &app,
            &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
            Some((&client.client_id, &client.secret)),
        )
        .await;
        assert_eq!(res.status(), 200);
        let rotated = store
            .refresh_token_by_hash(&secret::token_key(refresh))
            .await
            .unwrap()
            .unwrap();
        assert!(rotated.token.revoked_at.is_some());
        // Unknown keys are no row, not an error.
        let unknown = secret::token_key("dwrt-unknown");
        assert!(store.refresh_token_by_hash(&unknown).await.unwrap().is_none());
        assert!(store.grant_by_code_hash(&unknown).await.unwrap().is_none());
        assert!(store.user_by_id(i64::MAX).await.unwrap().is_none());
    }
}
