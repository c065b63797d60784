//! `doorward import doorkeeper` (issue 16) against a real doorkeeper database: the Rails app
//! in tests/fixtures/doorkeeper/ (Debian's Rails and doorkeeper, GitLab's table shapes and
//! secret storage) mints tokens through real OAuth flows in three eras of stored forms
//! (plaintext, PBKDF2-SHA512, SHA-512) and writes a manifest of the plaintexts; the import
//! runs as the `doorward` binary beside a running server, and every credential is then tried
//! over HTTP.

use std::path::PathBuf;

use serde_json::{Value, json};

use crate::both_backends;
use crate::doorkeeper_fixture::*;
use crate::support::TestApp;
use doorward::domain::imported_secret;

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
}
