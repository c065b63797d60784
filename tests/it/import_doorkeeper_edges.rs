//! `doorward import doorkeeper` (issue 16) at its edges: a minimal doorkeeper database with
//! bad rows, unreadable sources, and what Doorward did with imported credentials afterwards
//! (deleting, renewing, revoking) surviving a second import.

use serde_json::{Value, json};

use crate::both_backends;
use crate::cli::doorward;
use crate::doorkeeper_fixture::*;
use crate::support::{TestApp, test_audit};

/// The Doorward id of source application `id`.
async fn application_here(app: &TestApp, manifest: &Value, id: i64) -> Option<i64> {
    let uid = application(manifest, &json!(id))["uid"]
        .as_str()
        .unwrap()
        .to_string();
    let found = app.state.store.application_by_uid(&uid).await.unwrap();
    found.map(|a| a.id)
}

/// Source token `id` from the manifest.
fn token(manifest: &Value, id: i64) -> Value {
    items(manifest, "access_tokens")
        .iter()
        .find(|t| t["id"] == id)
        .unwrap()
        .clone()
}

async fn token_info_status(app: &TestApp, value: &Value) -> u16 {
    bearer(app, "/oauth/token/info", value.as_str().unwrap())
        .await
        .status()
        .as_u16()
}

async fn client_credentials(app: &TestApp, client: &Value) -> reqwest::Response {
    let form = [("grant_type", "client_credentials"), ("scope", "read_api")];
    token_request(app, client, &form, false).await
}

both_backends! {
    async fn a_deleted_applications_old_tokens_never_open_newer_rows(app: TestApp) {
        let fixture = sqlite_fixture().await;
        let manifest = &fixture.manifest;
        import(&app, &fixture.url, false);
        // Source application 13 (SHA-512 era) holds the newest imported rows (tokens 37 and
        // 39). Deleting it deletes them, and SQLite hands out their row ids again.
        let doomed = application_here(&app, manifest, 13).await.unwrap();
        app.state.store.delete_application(doomed, &test_audit(), app.clock.now()).await.unwrap();
        let instance = application(manifest, &json!(14));
        let mut fresh = Vec::new();
        for _ in 0..3 {
            let res = client_credentials(&app, &instance).await;
            assert_eq!(res.status(), 200);
            fresh.push(res.json::<Value>().await.unwrap()["access_token"].clone());
        }
        // The old values' records let go of the rows with them: no old value re-stores
        // itself into a new row.
        for old in [37, 39] {
            let old = token(manifest, old);
            assert_eq!(token_info_status(&app, &old["token"]).await, 401, "{}", old["id"]);
            let form = [("grant_type", "refresh_token"), ("refresh_token", old["refresh_token"].as_str().unwrap())];
            assert_eq!(token_request(&app, &instance, &form, false).await.status(), 400);
        }
        for value in &fresh {
            assert_eq!(token_info_status(&app, value).await, 200);
        }
    }

    async fn an_imported_secret_ends_with_its_renewal(app: TestApp) {
        let fixture = sqlite_fixture().await;
        let manifest = &fixture.manifest;
        import(&app, &fixture.url, false);
        let admin = app.token_for("root", "api").await;
        // Instance-wide applications of the PBKDF2 and SHA-512 eras, never used here yet.
        for source_id in [8, 14] {
            let client = application(manifest, &json!(source_id));
            let id = application_here(&app, manifest, source_id).await.unwrap();
            let res = reqwest::Client::new()
                .post(app.url(&format!("/api/v4/applications/{id}/renew-secret")))
                .header("PRIVATE-TOKEN", &admin)
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 200);
            let renewed = res.json::<Value>().await.unwrap()["secret"].clone();
            assert_eq!(client_credentials(&app, &client).await.status(), 401, "the GitLab secret ended");
            let mut now = client.clone();
            now["secret"] = renewed;
            assert_eq!(client_credentials(&app, &now).await.status(), 200);
        }
    }

    async fn a_second_import_keeps_doorwards_changes_and_takes_gitlabs_revocations(app: TestApp) {
        let fixture = sqlite_fixture().await;
        let manifest = &fixture.manifest;
        import(&app, &fixture.url, false);
        // Here: token 2 revoked by its client, application 18 deleted.
        let client = application(manifest, &json!(1));
        let revoked = token(manifest, 2);
        let res = reqwest::Client::new()
            .post(app.url("/oauth/revoke"))
            .basic_auth(client["uid"].as_str().unwrap(), client["secret"].as_str())
            .form(&[("token", revoked["token"].as_str().unwrap())])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let gone = application_here(&app, manifest, 18).await.unwrap();
        app.state.store.delete_application(gone, &test_audit(), app.clock.now()).await.unwrap();
        // At GitLab meanwhile: token 15 revoked, token 16's refresh token used (so 16 was
        // rotated into a new row, which names it).
        let path = fixture.sqlite_path.as_ref().unwrap();
        let conn = rusqlite::Connection::open(path).unwrap();
        conn.execute("UPDATE oauth_access_tokens SET revoked_at = '2026-01-01 00:00:00' WHERE id = 15", []).unwrap();
        conn.execute(
            "INSERT INTO oauth_access_tokens (id, resource_owner_id, application_id, token, refresh_token, expires_in, created_at, scopes, previous_refresh_token) \
             SELECT 1000, resource_owner_id, application_id, 'successor-token-0123456789', 'successor-refresh-0123456789', 7200, created_at, scopes, refresh_token \
             FROM oauth_access_tokens WHERE id = 16",
            [],
        )
        .unwrap();
        drop(conn);

        let again = import(&app, &fixture.url, false);
        assert_eq!(again["users"], counts(8, 0, 8, 0));
        assert_eq!(again["applications"], counts(18, 0, 18, 0), "the deleted one counts as met");
        assert_eq!(again["access_tokens"], counts(40, 1, 33, 6));
        assert!(application_here(&app, manifest, 18).await.is_none(), "not brought back");
        assert_eq!(token_info_status(&app, &revoked["token"]).await, 401, "not brought back");
        assert_eq!(token_info_status(&app, &token(manifest, 15)["token"]).await, 401);
        let rotated = token(manifest, 16);
        assert_eq!(token_info_status(&app, &rotated["token"]).await, 200);
        let refresh = [("grant_type", "refresh_token"), ("refresh_token", rotated["refresh_token"].as_str().unwrap())];
        let owner = application(manifest, &rotated["application_id"]);
        assert_eq!(token_request(&app, &owner, &refresh, false).await.status(), 400);
        let successor = [("grant_type", "refresh_token"), ("refresh_token", "successor-refresh-0123456789")];
        assert_eq!(token_request(&app, &owner, &successor, false).await.status(), 200);
        assert_eq!(token_info_status(&app, &json!(token(manifest, 17)["token"])).await, 200);
    }

    async fn a_minimal_doorkeeper_database_with_bad_rows(app: TestApp) {
        // Any doorkeeper app, not only GitLab: only the required columns, integer times
        // and text booleans absent; one row of each table holds a NUL, which PostgreSQL
        // would refuse: those rows are skipped alike on both backends.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("minimal.sqlite3");
        let conn = rusqlite::Connection::open(&path).unwrap();
        // In WAL mode, as Rails 7.1 makes them: reading must not leave -wal or -shm files.
        conn.pragma_update(None, "journal_mode", "WAL").unwrap();
        conn.execute_batch(
            "CREATE TABLE users (id INTEGER PRIMARY KEY, username TEXT, email TEXT, encrypted_password TEXT);
             CREATE TABLE oauth_applications (id INTEGER PRIMARY KEY, name TEXT, uid TEXT, secret TEXT, redirect_uri TEXT, scopes TEXT);
             CREATE TABLE oauth_access_tokens (id INTEGER PRIMARY KEY, token TEXT, resource_owner_id INTEGER, application_id INTEGER,
                 expires_in INTEGER, created_at TEXT, revoked_at TEXT, scopes TEXT);",
        )
        .unwrap();
        let hash = bcrypt::hash("minimal-password", 4).unwrap();
        let now = time::OffsetDateTime::now_utc();
        let created = format!("{:04}-{:02}-{:02} {:02}:{:02}:{:02}", now.year(), u8::from(now.month()), now.day(), now.hour(), now.minute(), now.second());
        conn.execute("INSERT INTO users VALUES (7, 'grace', 'grace@example.com', ?1), (8, 'nuluser', 'nul@example.com', ?1)", [&hash]).unwrap();
        conn.execute("INSERT INTO users VALUES (9, 'heidi', 'heidi@example.com', ?1)", [&hash]).unwrap();
        conn.execute("UPDATE users SET username = 'nul' || char(0) || 'user' WHERE id = 8", []).unwrap();
        conn.execute("INSERT INTO oauth_applications VALUES (1, 'Minimal', 'minimal-uid', 'minimal-secret', 'http://127.0.0.1:9/cb', 'read_user'), (2, 'Bad', 'bad-uid', 'x', 'http://127.0.0.1:9/cb', 'api'), (3, 'No secret', 'empty-uid', '', 'http://127.0.0.1:9/cb', 'read_api')", []).unwrap();
        conn.execute("UPDATE oauth_applications SET name = 'Bad' || char(0) WHERE id = 2", []).unwrap();
        conn.execute("INSERT INTO oauth_access_tokens VALUES (1, 'minimal-token-0123456789', 7, 1, 7200, ?1, NULL, 'read_user'), (2, 'nul-token', 7, 1, 7200, ?1, NULL, 'read_user')", [&created]).unwrap();
        conn.execute("UPDATE oauth_access_tokens SET token = 'nul' || char(0) || 'token' WHERE id = 2", []).unwrap();
        drop(conn);

        let report = import(&app, &format!("sqlite://{}", path.display()), false);
        for side in ["-wal", "-shm", "-journal"] {
            let side = format!("{}{side}", path.display());
            assert!(!std::path::Path::new(&side).exists(), "{side}");
        }
        assert_eq!(report["users"], counts(3, 2, 0, 1));
        assert_eq!(report["applications"], counts(3, 2, 0, 1));
        assert_eq!(report["access_tokens"], counts(2, 1, 0, 1));
        assert_eq!(report["access_grants"], counts(0, 0, 0, 0));
        let res = bearer(&app, "/api/v4/user", "minimal-token-0123456789").await;
        assert_eq!(res.status(), 200);
        assert_eq!(res.json::<Value>().await.unwrap()["id"], 7);
        let client = json!({"uid": "minimal-uid", "secret": "minimal-secret", "confidential": true});
        let form = [("grant_type", "password"), ("username", "heidi"), ("password", "minimal-password"), ("scope", "read_user")];
        assert_eq!(token_request(&app, &client, &form, true).await.status(), 200);
        // An application without a secret at the source is not opened by an empty one.
        let secretless = json!({"uid": "empty-uid", "secret": "", "confidential": true});
        assert_eq!(client_credentials(&app, &secretless).await.status(), 401);
    }

    async fn unreadable_sources_fail_at_once_and_change_nothing(app: TestApp) {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.sqlite3");
        let text = dir.path().join("notes.txt");
        std::fs::write(&text, "not a database at all, just some text that is long enough\n").unwrap();
        // A SQLite database, but not a doorkeeper one.
        let other = dir.path().join("other.sqlite3");
        let conn = rusqlite::Connection::open(&other).unwrap();
        conn.execute_batch("CREATE TABLE users (id INTEGER PRIMARY KEY, username TEXT, email TEXT, encrypted_password TEXT);").unwrap();
        drop(conn);
        // A closed port, with a password in the URL that must not be shown.
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = closed.local_addr().unwrap().port();
        drop(closed);
        let refused = format!("postgres://gitlab:sekr3t-pw@127.0.0.1:{port}/gitlabhq_production");
        let cases = [
            (format!("sqlite://{}", missing.display()), "no such file"),
            (format!("sqlite://{}", text.display()), "cannot open the source database"),
            (format!("sqlite://{}", other.display()), "no table oauth_applications"),
            ("mysql://u:sekr3t-pw@localhost/gitlab".to_string(), "unknown scheme"),
            (refused, "cannot open the source database"),
        ];
        for (from, message) in &cases {
            let started = std::time::Instant::now();
            let out = doorward(&app, &["import", "doorkeeper", "--from", from], None);
            assert!(!out.status.success(), "{from}");
            assert!(started.elapsed().as_secs() < 15);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
            assert!(stderr.contains(message), "{from}: {stderr}");
            assert!(!stderr.contains("sekr3t") && !stderr.contains("panicked"), "{stderr}");
            assert!(out.stdout.is_empty());
        }
        assert!(!missing.exists(), "a missing source is not created");
        let (users, _) = app.state.store.list_users(&Default::default(), 10, 0).await.unwrap();
        assert_eq!(users.len(), 1, "nothing was written");
    }
}
