//! `doorward import doorkeeper` (issue 16) against a real doorkeeper database: the Rails app
//! in tests/fixtures/doorkeeper/ (Debian's Rails and doorkeeper, GitLab's table shapes and
//! secret storage) mints tokens through real OAuth flows in three eras of stored forms
//! (plaintext, PBKDF2-SHA512, SHA-512) and writes a manifest of the plaintexts; the import
//! runs as the `doorward` binary beside a running server, and every credential is then tried
//! over HTTP.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Value, json};

use crate::both_backends;
use crate::cli::{doorward, stdout_json};
use crate::support::{TestApp, pg_admin_url};
use doorward::domain::imported_secret;

/// A doorkeeper database built by the fixture app, and its manifest.
struct Fixture {
    _dir: tempfile::TempDir,
    url: String,
    sqlite_path: Option<PathBuf>,
    manifest: Value,
}

async fn run_fixture(url: &str, dir: &Path) -> Value {
    let manifest = dir.join("manifest.json");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/doorkeeper/build.rb");
    let out = tokio::process::Command::new("ruby")
        .arg(script)
        .args(["--database", url, "--manifest"])
        .arg(&manifest)
        .output()
        .await
        .expect("ruby (scripts/test installs it with tests/fixtures/doorkeeper/install-deps)");
    assert!(
        out.status.success(),
        "the doorkeeper fixture failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&std::fs::read(manifest).unwrap()).unwrap()
}

async fn sqlite_fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gitlab.sqlite3");
    let url = format!("sqlite://{}", path.display());
    let manifest = run_fixture(&url, dir.path()).await;
    Fixture {
        _dir: dir,
        url,
        sqlite_path: Some(path),
        manifest,
    }
}

/// The fixture in a database of its own on the test PostgreSQL server, named in a URL
/// with a password (the server trusts local connections and ignores it) that the report
/// must mask.
async fn postgres_fixture() -> Fixture {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let dir = tempfile::tempdir().unwrap();
    let mut url = url::Url::parse(&pg_admin_url()).unwrap();
    url.set_path(&format!(
        "gitlabhq_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    ));
    let manifest = run_fixture(url.as_str(), dir.path()).await;
    url.set_password(Some("hunter2-not-logged")).unwrap();
    Fixture {
        _dir: dir,
        url: url.to_string(),
        sqlite_path: None,
        manifest,
    }
}

fn import(app: &TestApp, from: &str, dry_run: bool) -> Value {
    let mut args = vec!["--json", "import", "doorkeeper", "--from", from];
    if dry_run {
        args.push("--dry-run");
    }
    stdout_json(&doorward(app, &args, None))
}

fn counts(found: u64, imported: u64, existing: u64, skipped: u64) -> Value {
    json!({"found": found, "imported": imported, "existing": existing, "skipped": skipped})
}

fn items<'a>(manifest: &'a Value, key: &str) -> &'a Vec<Value> {
    manifest[key].as_array().unwrap()
}

fn application(manifest: &Value, id: &Value) -> Value {
    items(manifest, "applications")
        .iter()
        .find(|a| &a["id"] == id)
        .unwrap()
        .clone()
}

async fn bearer(app: &TestApp, path: &str, token: &str) -> reqwest::Response {
    reqwest::Client::new()
        .get(app.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

/// A token request authenticated as the source application: its plaintext secret by HTTP
/// Basic (or in the body when `in_body`), or `client_id` alone for a public client.
async fn token_request(
    app: &TestApp,
    client: &Value,
    form: &[(&str, &str)],
    in_body: bool,
) -> reqwest::Response {
    let uid = client["uid"].as_str().unwrap();
    let secret = client["secret"].as_str().unwrap();
    let mut form: Vec<(&str, &str)> = form.to_vec();
    let mut req = reqwest::Client::new().post(app.url("/oauth/token"));
    if client["confidential"] == false {
        form.push(("client_id", uid));
    } else if in_body {
        form.extend([("client_id", uid), ("client_secret", secret)]);
    } else {
        req = req.basic_auth(uid, Some(secret));
    }
    req.form(&form).send().await.unwrap()
}

/// Owners whose tokens the checks below refresh and use: not blocked, pending or 2FA.
fn usable_owner(token: &Value) -> bool {
    !matches!(token["resource_owner_id"].as_i64(), Some(3..=5))
}

/// Every access token works as long as doorkeeper would still take it, with its source
/// `created_at` and remaining lifetime; the others are refused. `refreshed`: the checks
/// below used every usable refresh token, and Doorward's rotation revokes the access token
/// of the pair it rotates.
async fn check_access_tokens(app: &TestApp, manifest: &Value, refreshed: bool) {
    let now = app.clock.now();
    for token in items(manifest, "access_tokens") {
        let value = token["token"].as_str().unwrap();
        let res = bearer(app, "/oauth/token/info", value).await;
        let rotated_here = refreshed && token["refresh_usable"] == true && usable_owner(token);
        let usable = token["access_usable"] == true && !rotated_here;
        assert_eq!(
            res.status() == 200,
            usable,
            "token {}: {}",
            token["id"],
            res.status()
        );
        if usable {
            let info: Value = res.json().await.unwrap();
            assert_eq!(
                info["created_at"], token["created_at"],
                "token {}",
                token["id"]
            );
            let left =
                token["created_at"].as_i64().unwrap() + token["expires_in"].as_i64().unwrap() - now;
            assert!(
                (info["expires_in"].as_i64().unwrap() - left).abs() <= 5,
                "{info}"
            );
            assert_eq!(info["resource_owner_id"], token["resource_owner_id"]);
        }
    }
}

async fn check_everything(app: &TestApp, manifest: &Value) {
    check_access_tokens(app, manifest, false).await;
    let tokens = items(manifest, "access_tokens");

    // Users keep their ids: /api/v4/user, and the OIDC `sub` as its decimal string.
    let alice_api = tokens
        .iter()
        .find(|t| {
            t["resource_owner_id"] == 2
                && t["access_usable"] == true
                && t["scopes"].as_str().unwrap().contains("api")
        })
        .unwrap();
    let res = bearer(app, "/api/v4/user", alice_api["token"].as_str().unwrap()).await;
    assert_eq!(res.status(), 200, "token {}", alice_api["id"]);
    let me: Value = res.json().await.unwrap();
    assert_eq!(
        (me["id"].clone(), me["username"].clone()),
        (json!(2), json!("alice"))
    );
    let openid = tokens
        .iter()
        .find(|t| {
            t["access_usable"] == true
                && t["resource_owner_id"] == 2
                && t["scopes"].as_str().unwrap().contains("openid")
        })
        .unwrap();
    let claims: Value = bearer(app, "/oauth/userinfo", openid["token"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(claims["sub"], "2");

    // What the source database holds opens nothing: a hashed token or secret presented
    // as such is refused.
    for token in tokens
        .iter()
        .filter(|t| t["access_usable"] == true && t["stored_form"] != "plain")
    {
        let plain = token["token"].as_str().unwrap();
        let stored = if token["stored_form"] == "sha512" {
            imported_secret::sha512_hex(plain)
        } else {
            imported_secret::pbkdf2_form(plain)
        };
        assert_eq!(
            bearer(app, "/oauth/token/info", &stored).await.status(),
            401
        );
    }

    // Refresh tokens: an unused one refreshes once, then rotation and replay detection
    // apply; one doorkeeper rotated away (or revoked) is invalid_grant.
    for (n, token) in tokens
        .iter()
        .enumerate()
        .filter(|(_, t)| !t["refresh_token"].is_null() && usable_owner(t))
    {
        let client = application(manifest, &token["application_id"]);
        let form = [
            ("grant_type", "refresh_token"),
            ("refresh_token", token["refresh_token"].as_str().unwrap()),
        ];
        let res = token_request(app, &client, &form, n % 2 == 0).await;
        let status = res.status();
        let body: Value = res.json().await.unwrap();
        if token["refresh_usable"] == true {
            assert_eq!(status, 200, "refresh of token {}: {body}", token["id"]);
            let fresh = body["access_token"].as_str().unwrap();
            assert_eq!(bearer(app, "/oauth/token/info", fresh).await.status(), 200);
            let again = token_request(app, &client, &form, false).await;
            assert_eq!(again.status(), 400, "a refresh token refreshes once");
        } else {
            assert_eq!(
                (status.as_u16(), body["error"].as_str()),
                (400, Some("invalid_grant")),
                "token {}",
                token["id"]
            );
        }
    }

    // Every confidential client's secret works in its stored form, by Basic and in the
    // body; the stored form itself does not.
    for (n, client) in items(manifest, "applications")
        .iter()
        .filter(|a| a["confidential"] == true)
        .enumerate()
    {
        let scope = client["scopes"]
            .as_str()
            .unwrap()
            .split(' ')
            .next()
            .unwrap()
            .to_string();
        let form = [
            ("grant_type", "client_credentials"),
            ("scope", scope.as_str()),
        ];
        let res = token_request(app, client, &form, n % 2 == 1).await;
        assert_eq!(
            res.status(),
            200,
            "client {} ({})",
            client["id"],
            client["stored_form"]
        );
        let plain = client["secret"].as_str().unwrap();
        let stored = match client["stored_form"].as_str().unwrap() {
            "sha512" => imported_secret::sha512_hex(plain),
            "pbkdf2" => imported_secret::pbkdf2_form(plain),
            _ => continue,
        };
        let mut forged = client.clone();
        forged["secret"] = json!(stored);
        assert_eq!(
            token_request(app, &forged, &form, false).await.status(),
            401
        );
    }

    // Passwords: Devise's bcrypt verifies, then Argon2id replaces it.
    let runner = application(manifest, &json!(2));
    let password_grant = |user: &str| {
        let (user, pw) = (user.to_string(), format!("fixture-password-{user}"));
        let runner = runner.clone();
        async move {
            let form = [
                ("grant_type", "password"),
                ("username", user.as_str()),
                ("password", pw.as_str()),
                ("scope", "api"),
            ];
            token_request(app, &runner, &form, false).await
        }
    };
    assert_eq!(password_grant("alice").await.status(), 200);
    let alice = app.state.store.user_by_id(2).await.unwrap().unwrap();
    assert!(
        alice.password_hash.starts_with("$argon2id$"),
        "rehashed at first use"
    );
    assert_eq!(password_grant("alice").await.status(), 200);
    let dave = password_grant("dave").await;
    assert_eq!(
        dave.status(),
        400,
        "the password alone never does for a 2FA user"
    );
    assert_eq!(
        dave.json::<Value>().await.unwrap()["error"],
        "invalid_grant"
    );
    assert_eq!(
        app.sign_in_with(&app.new_browser(), "frank", "fixture-password-frank")
            .await
            .status(),
        303
    );
    let refused = app
        .sign_in_with(&app.new_browser(), "dave", "fixture-password-dave")
        .await;
    assert_eq!(refused.status(), 403);
    assert!(
        refused
            .text()
            .await
            .unwrap()
            .contains("Ask an administrator to reset it")
    );
    // An administrator resets the second factor that stayed behind; then the password
    // signs dave in, and he can set up a new authenticator.
    app.sign_in_root().await;
    let csrf = app
        .csrf_token(&app.client, "/-/user_settings/profile")
        .await;
    let reset = app
        .client
        .post(app.url("/admin/users/dave/disable_two_factor"))
        .form(&[("authenticity_token", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(reset.status(), 303);
    let dave = app
        .sign_in_with(&app.new_browser(), "dave", "fixture-password-dave")
        .await;
    assert_eq!(dave.status(), 303);
    let blocked = app
        .sign_in_with(&app.new_browser(), "bob", "fixture-password-bob")
        .await;
    assert_eq!(blocked.status(), 403);
    assert!(blocked.text().await.unwrap().contains("blocked"));
    let erin = app.state.store.user_by_id(6).await.unwrap().unwrap();
    assert!(erin.confirmed_at.is_none() && alice.confirmed_at.is_some());
    let carol = app.state.store.user_by_id(4).await.unwrap().unwrap();
    assert_eq!(carol.state, "blocked_pending_approval");

    // GitLab's root is Doorward's root (both id 1), whose password stays Doorward's.
    assert_eq!(password_grant("root").await.status(), 400);
    let root = app
        .sign_in_with(&app.new_browser(), "root", crate::support::ROOT_PASSWORD)
        .await;
    assert_eq!(root.status(), 303);

    // The admin applications API lists the imported instance-wide applications, as it
    // lists GitLab's (`ApplicationsFinder`: no owner).
    let admin = app.token_for("root", "api").await;
    let listed: Value = reqwest::Client::new()
        .get(app.url("/api/v4/applications?per_page=100"))
        .header("PRIVATE-TOKEN", admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for client in items(manifest, "applications")
        .iter()
        .filter(|a| a["owner_type"] != "User")
    {
        assert!(
            listed
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a["application_id"] == client["uid"]),
            "{}",
            client["uid"]
        );
    }

    // Owners: a User's application stays theirs, the rest belong to the instance.
    for client in items(manifest, "applications") {
        let here = app
            .state
            .store
            .application_by_uid(client["uid"].as_str().unwrap())
            .await
            .unwrap()
            .unwrap();
        let expected =
            (client["owner_type"] == "User").then(|| client["owner_id"].as_i64().unwrap());
        assert_eq!(here.owner_id, expected, "{}", client["name"]);
        assert_eq!(here.trusted, client["trusted"] == true);
        assert_eq!(here.confidential, client["confidential"] == true);
        assert_eq!(
            here.redirect_uri.lines().count(),
            client["redirect_uris"].as_array().unwrap().len()
        );
    }
}

fn expected_first_import(source: &str, dry_run: bool) -> Value {
    json!({
        "source": source,
        "dry_run": dry_run,
        "users": counts(8, 7, 1, 0),
        "applications": counts(18, 18, 0, 0),
        // Per era: the revoked token, and the one doorkeeper revoked when its successor
        // was used.
        "access_tokens": counts(39, 33, 0, 6),
        "access_grants": counts(12, 0, 0, 12),
        "openid_requests": counts(1, 0, 0, 1),
        "device_grants": counts(1, 0, 0, 1),
        "conflicts": [],
    })
}

/// The source stays byte for byte as it was, with nothing created beside it.
fn assert_untouched(fixture: &Fixture, before: &[u8]) {
    let Some(path) = &fixture.sqlite_path else {
        return;
    };
    assert_eq!(
        std::fs::read(path).unwrap(),
        before,
        "the source file changed"
    );
    for suffix in ["-journal", "-wal", "-shm"] {
        let side = PathBuf::from(format!("{}{suffix}", path.display()));
        assert!(!side.exists(), "{} was created", side.display());
    }
}

async fn import_and_check(app: TestApp, fixture: Fixture) {
    let before = fixture
        .sqlite_path
        .as_ref()
        .map(|p| std::fs::read(p).unwrap())
        .unwrap_or_default();
    let masked = doorward::store::doorkeeper_source::masked(&fixture.url);
    assert!(!masked.contains("hunter2"));

    let dry = import(&app, &fixture.url, true);
    assert_eq!(dry, expected_first_import(&masked, true));
    assert!(
        app.state.store.user_by_id(2).await.unwrap().is_none(),
        "a dry run writes nothing"
    );

    let done = import(&app, &fixture.url, false);
    assert_eq!(done, expected_first_import(&masked, false));
    assert_untouched(&fixture, &before);
    check_everything(&app, &fixture.manifest).await;

    // Users created later get ids above the highest imported one (57).
    let later = app.create_user("newcomer", "newcomer-password").await;
    assert!(later["id"].as_i64().unwrap() > 57, "{later}");

    // A second run imports nothing and keeps everything working, re-stored and rotated
    // credentials included.
    let again = import(&app, &fixture.url, false);
    assert_eq!(again["users"], counts(8, 0, 8, 0));
    assert_eq!(again["applications"], counts(18, 0, 18, 0));
    assert_eq!(again["access_tokens"], counts(39, 0, 33, 6));
    check_access_tokens(&app, &fixture.manifest, true).await;
    assert_untouched(&fixture, &before);
}

both_backends! {
    async fn a_gitlab_sqlite_database_keeps_every_credential_working(app: TestApp) {
        import_and_check(app, sqlite_fixture().await).await;
    }

    async fn a_gitlab_postgres_database_keeps_every_credential_working(app: TestApp) {
        import_and_check(app, postgres_fixture().await).await;
    }

    async fn conflicting_users_are_listed_and_left_alone(app: TestApp) {
        let fixture = sqlite_fixture().await;
        // Doorward's own users: mallory takes id 2 (alice's at the source) and another
        // account id 3 (bob's) with erin's address.
        let mallory = app.create_user("mallory", "doorward-mallory-pw").await;
        assert_eq!(mallory["id"], 2);
        let admin = app.token_for("root", "api").await;
        let res = reqwest::Client::new()
            .post(app.url("/api/v4/users"))
            .header("PRIVATE-TOKEN", admin)
            .json(&json!({"username": "erin-here", "email": "Erin@example.com", "name": "Erin Here", "password": "doorward-erin-pw"}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201);
        assert_eq!(res.json::<Value>().await.unwrap()["id"], 3);

        let report = import(&app, &fixture.url, false);
        let conflicts: Vec<(i64, &str, &str)> = report["conflicts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| (c["source_id"].as_i64().unwrap(), c["username"].as_str().unwrap(), c["reason"].as_str().unwrap()))
            .collect();
        assert_eq!(conflicts, [(2, "alice", "id"), (3, "bob", "id"), (6, "erin", "email"), (40, "mallory", "username")]);
        assert!(report["conflicts"].as_array().unwrap().iter().all(|c| c["table"] == "users"));
        assert_eq!(report["users"], counts(8, 3, 1, 4));

        // The Doorward users are untouched, and the conflicting users' tokens stayed out.
        let here = app.state.store.user_by_id(2).await.unwrap().unwrap();
        assert_eq!((here.username.as_str(), here.email.as_str()), ("mallory", "mallory@example.com"));
        assert_eq!(app.sign_in_with(&app.new_browser(), "mallory", "doorward-mallory-pw").await.status(), 303);
        for token in items(&fixture.manifest, "access_tokens") {
            let owner = token["resource_owner_id"].as_i64();
            if matches!(owner, Some(2 | 3 | 6 | 40)) {
                let res = bearer(&app, "/oauth/token/info", token["token"].as_str().unwrap()).await;
                assert_eq!(res.status(), 401, "token {} of a conflicting user", token["id"]);
            }
        }
        // Alice's applications came in without an owner.
        for client in items(&fixture.manifest, "applications").iter().filter(|a| a["owner_id"] == 2) {
            let here = app.state.store.application_by_uid(client["uid"].as_str().unwrap()).await.unwrap().unwrap();
            assert_eq!(here.owner_id, None);
        }
    }

    async fn a_minimal_doorkeeper_database_with_bad_rows(app: TestApp) {
        // Any doorkeeper app, not only GitLab: only the required columns, integer times
        // and text booleans absent; one row of each table holds a NUL, which PostgreSQL
        // would refuse: those rows are skipped alike on both backends.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("minimal.sqlite3");
        let conn = rusqlite::Connection::open(&path).unwrap();
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
        conn.execute("INSERT INTO oauth_applications VALUES (1, 'Minimal', 'minimal-uid', 'minimal-secret', 'http://127.0.0.1:9/cb', 'read_user'), (2, 'Bad', 'bad-uid', 'x', 'http://127.0.0.1:9/cb', 'api')", []).unwrap();
        conn.execute("UPDATE oauth_applications SET name = 'Bad' || char(0) WHERE id = 2", []).unwrap();
        conn.execute("INSERT INTO oauth_access_tokens VALUES (1, 'minimal-token-0123456789', 7, 1, 7200, ?1, NULL, 'read_user'), (2, 'nul-token', 7, 1, 7200, ?1, NULL, 'read_user')", [&created]).unwrap();
        conn.execute("UPDATE oauth_access_tokens SET token = 'nul' || char(0) || 'token' WHERE id = 2", []).unwrap();
        drop(conn);

        let report = import(&app, &format!("sqlite://{}", path.display()), false);
        assert_eq!(report["users"], counts(3, 2, 0, 1));
        assert_eq!(report["applications"], counts(2, 1, 0, 1));
        assert_eq!(report["access_tokens"], counts(2, 1, 0, 1));
        assert_eq!(report["access_grants"], counts(0, 0, 0, 0));
        let res = bearer(&app, "/api/v4/user", "minimal-token-0123456789").await;
        assert_eq!(res.status(), 200);
        assert_eq!(res.json::<Value>().await.unwrap()["id"], 7);
        let client = json!({"uid": "minimal-uid", "secret": "minimal-secret", "confidential": true});
        let form = [("grant_type", "password"), ("username", "heidi"), ("password", "minimal-password"), ("scope", "read_user")];
        assert_eq!(token_request(&app, &client, &form, true).await.status(), 200);
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
