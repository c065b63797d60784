//! The admin applications API (`/api/v4/applications`): GitLab's shapes, admin only, the
//! secret shown once and stored only as SHA-256.

use doorward::domain::application::validate_settings;
use doorward::domain::secret;
use doorward::store::Backend;
use serde_json::{Value, json};

use crate::both_backends;
use crate::support::TestApp;

fn api() -> reqwest::Client {
    reqwest::Client::new()
}

/// Creates an instance-wide application through the API; returns its JSON (with secret).
async fn create(app: &TestApp, token: &str, body: Value) -> Value {
    let res = api()
        .post(app.url("/api/v4/applications"))
        .header("PRIVATE-TOKEN", token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "creating {body}");
    res.json().await.unwrap()
}

/// How many applications of each kind exist: (instance-wide, owned by root).
async fn counts(app: &TestApp) -> (usize, usize) {
    let store = &app.state.store;
    let root = store.user_by_login("root").await.unwrap().unwrap();
    (
        store.applications_of_owner(None).await.unwrap().len(),
        store
            .applications_of_owner(Some(root.id))
            .await
            .unwrap()
            .len(),
    )
}

/// A user-owned application, registered the way the settings page does it.
async fn user_application(app: &TestApp, username: &str) -> i64 {
    let owner = app
        .state
        .store
        .user_by_login(username)
        .await
        .unwrap()
        .unwrap();
    let settings = validate_settings(
        "Owned",
        "https://owned.example/cb",
        "read_user",
        true,
        false,
        false,
    )
    .unwrap();
    let (created, _) = doorward::applications::register_application(
        &app.state.store,
        &app.clock,
        &settings,
        false,
        Some(owner.id),
        &crate::support::test_audit(),
    )
    .await
    .unwrap();
    created.id
}

both_backends! {
    async fn admins_create_applications_with_json_or_form_bodies(app: TestApp) {
        let admin = app.token_for("root", "api").await;
        let created = create(&app, &admin, json!({
            "name": "Wiki",
            "redirect_uri": "https://wiki.example.com/oauth/callback",
            "scopes": "read_user openid",
        }))
        .await;
        assert_eq!(created["application_name"], "Wiki");
        assert_eq!(created["callback_url"], "https://wiki.example.com/oauth/callback");
        assert_eq!(created["confidential"], true, "confidential by default");
        assert_eq!(created["trusted"], false);
        assert_eq!(created["require_pkce"], false);
        assert_eq!(created["scopes"], "read_user openid");
        let uid = created["application_id"].as_str().unwrap();
        assert!(uid.len() == 64 && uid.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()), "{uid}");
        let client_secret = created["secret"].as_str().unwrap();
        assert!(client_secret.starts_with("dwoas-") && client_secret.len() == 6 + 43, "{client_secret}");

        // The database holds the SHA-256 of the secret, never the secret.
        let stored = app.state.store.application_by_id(created["id"].as_i64().unwrap()).await.unwrap().unwrap();
        assert_eq!(stored.uid, uid);
        assert_eq!(stored.secret_hash.len(), 32);
        assert_eq!(stored.secret_hash, secret::hash(client_secret).to_vec());
        assert!(!String::from_utf8_lossy(&stored.secret_hash).contains("dwoas-"));
        assert_eq!(stored.owner_id, None, "the admin API makes instance-wide applications");

        // curl's form bodies, several URIs separated by newlines, and the extensions.
        let res = api()
            .post(app.url("/api/v4/applications"))
            .header("PRIVATE-TOKEN", &admin)
            .form(&[
                ("name", "CLI"),
                ("redirect_uri", "http://127.0.0.1/callback\ncom.example.cli:/oauth"),
                ("scopes", "api"),
                ("confidential", "false"),
                ("trusted", "true"),
                ("require_pkce", "true"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let cli: Value = res.json().await.unwrap();
        assert_eq!(cli["callback_url"], "http://127.0.0.1/callback\ncom.example.cli:/oauth");
        assert_eq!(cli["confidential"], false);
        assert_eq!(cli["trusted"], true);
        assert_eq!(cli["require_pkce"], true);
        assert_ne!(cli["secret"], created["secret"]);
        assert_ne!(cli["application_id"], created["application_id"]);
        let stored = app.state.store.application_by_id(cli["id"].as_i64().unwrap()).await.unwrap().unwrap();
        assert!(stored.trusted && stored.require_pkce && !stored.confidential);
        assert_eq!(stored.redirect_uris(), ["http://127.0.0.1/callback", "com.example.cli:/oauth"]);
    }

    async fn lists_show_instance_applications_without_secrets_and_paginate(app: TestApp) {
        let admin = app.token_for("root", "api").await;
        for name in ["One", "Two", "Three"] {
            create(&app, &admin, json!({"name": name, "redirect_uri": "https://a.example/cb", "scopes": "openid"})).await;
        }
        user_application(&app, "root").await;

        let res = api().get(app.url("/api/v4/applications")).header("PRIVATE-TOKEN", &admin).send().await.unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(res.headers()["x-total"], "3", "user-owned applications are not listed");
        let list: Vec<Value> = res.json().await.unwrap();
        let names: Vec<&str> = list.iter().map(|a| a["application_name"].as_str().unwrap()).collect();
        assert_eq!(names, ["One", "Two", "Three"]);
        for a in &list {
            assert!(a.get("secret").is_none(), "{a}");
            assert!(!a.to_string().contains("dwoas-"), "{a}");
            assert_eq!(a["callback_url"], "https://a.example/cb");
        }

        // read_api is enough to read.
        let reader = app.token_for("root", "read_api").await;
        let res = api().get(app.url("/api/v4/applications?per_page=2&page=2")).bearer_auth(&reader).send().await.unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(res.headers()["x-total-pages"], "2");
        assert_eq!(res.headers()["x-prev-page"], "1");
        let link = res.headers()["link"].to_str().unwrap().to_string();
        assert!(link.contains(&format!("<{}?page=1&per_page=2>; rel=\"prev\"", app.url("/api/v4/applications"))), "{link}");
        let page: Vec<Value> = res.json().await.unwrap();
        assert_eq!(page.len(), 1);
        assert_eq!(page[0]["application_name"], "Three");
    }

    async fn renewing_a_secret_replaces_the_stored_hash(app: TestApp) {
        let admin = app.token_for("root", "api").await;
        let created = create(&app, &admin, json!({"name": "Wiki", "redirect_uri": "https://a.example/cb", "scopes": "read_user"})).await;
        let id = created["id"].as_i64().unwrap();
        let old_hash = app.state.store.application_by_id(id).await.unwrap().unwrap().secret_hash;

        let res = api().post(app.url(&format!("/api/v4/applications/{id}/renew-secret"))).header("PRIVATE-TOKEN", &admin).send().await.unwrap();
        assert_eq!(res.status(), 200);
        let renewed: Value = res.json().await.unwrap();
        assert_eq!(renewed["id"], created["id"]);
        assert_eq!(renewed["application_id"], created["application_id"], "the client id stays");
        assert_eq!(renewed["application_name"], "Wiki");
        let new_secret = renewed["secret"].as_str().unwrap();
        assert!(new_secret.starts_with("dwoas-"));
        assert_ne!(renewed["secret"], created["secret"]);

        let new_hash = app.state.store.application_by_id(id).await.unwrap().unwrap().secret_hash;
        assert_ne!(new_hash, old_hash);
        assert_eq!(new_hash, secret::hash(new_secret).to_vec());
        assert_eq!(new_hash.len(), 32);
    }

    async fn deleting_an_application_removes_it_with_its_tokens(app: TestApp) {
        let admin = app.token_for("root", "api").await;
        let created = create(&app, &admin, json!({"name": "Wiki", "redirect_uri": "https://a.example/cb", "scopes": "read_user"})).await;
        let id = created["id"].as_i64().unwrap();
        // A token the application was granted.
        let root = app.state.store.user_by_login("root").await.unwrap().unwrap();
        let token_hash = secret::hash("dwat-granted-to-wiki");
        let now = app.clock.now();
        app.state
            .store
            .insert_token(&doorward::store::access_tokens::NewToken {
                token_hash: &token_hash,
                refresh_token_hash: None,
                application_id: Some(id),
                user_id: Some(root.id),
                grant_id: None,
                family: &secret::random_bytes::<16>(),
                scopes: "read_user",
                created_at: now,
                expires_at: now + 7200,
                resources: None,
                audience: None,
                dpop_jkt: None,
            })
            .await
            .unwrap();
        assert!(app.state.store.access_token_by_hash(&token_hash).await.unwrap().is_some());

        let delete = |path: String| api().delete(app.url(&path)).header("PRIVATE-TOKEN", &admin).send();
        let res = delete(format!("/api/v4/applications/{id}")).await.unwrap();
        assert_eq!(res.status(), 204);
        assert!(app.state.store.application_by_id(id).await.unwrap().is_none());
        assert!(app.state.store.access_token_by_hash(&token_hash).await.unwrap().is_none(), "its tokens went with it");

        // Unknown, non-numeric and user-owned ids are all GitLab's 404.
        let owned = user_application(&app, "root").await;
        for path in [format!("/api/v4/applications/{id}"), "/api/v4/applications/abc".to_string(), format!("/api/v4/applications/{owned}")] {
            let res = delete(path.clone()).await.unwrap();
            assert_eq!(res.status(), 404, "{path}");
            assert_eq!(res.json::<Value>().await.unwrap(), json!({"message": "404 Application Not Found"}));
            let res = api().post(app.url(&format!("{path}/renew-secret"))).header("PRIVATE-TOKEN", &admin).send().await.unwrap();
            assert_eq!(res.status(), 404, "{path}/renew-secret");
            assert_eq!(res.json::<Value>().await.unwrap(), json!({"message": "404 Application Not Found"}));
        }
        assert!(app.state.store.application_by_id(owned).await.unwrap().is_some());
    }

    async fn non_admins_get_403(app: TestApp) {
        let admin = app.token_for("root", "api").await;
        let created = create(&app, &admin, json!({"name": "Wiki", "redirect_uri": "https://a.example/cb", "scopes": "read_user"})).await;
        let id = created["id"].as_i64().unwrap();
        let before = app.state.store.application_by_id(id).await.unwrap().unwrap();
        app.create_user("grace", "grace-password").await;
        let token = app.token_for("grace", "api").await;
        let responses = [
            api().get(app.url("/api/v4/applications")).bearer_auth(&token).send().await.unwrap(),
            api()
                .post(app.url("/api/v4/applications"))
                .bearer_auth(&token)
                .json(&json!({"name": "Mine", "redirect_uri": "https://a.example/cb", "scopes": "api"}))
                .send()
                .await
                .unwrap(),
            api().delete(app.url(&format!("/api/v4/applications/{id}"))).bearer_auth(&token).send().await.unwrap(),
            api().post(app.url(&format!("/api/v4/applications/{id}/renew-secret"))).bearer_auth(&token).send().await.unwrap(),
        ];
        for res in responses {
            assert_eq!(res.status(), 403);
            assert_eq!(res.json::<Value>().await.unwrap(), json!({"message": "403 Forbidden"}));
        }
        assert_eq!(app.state.store.application_by_id(id).await.unwrap().unwrap(), before, "nothing changed");
        assert_eq!(counts(&app).await, (1, 0));

        let res = api().get(app.url("/api/v4/applications")).send().await.unwrap();
        assert_eq!(res.status(), 401);
    }

    async fn tokens_without_the_needed_scope_get_insufficient_scope(app: TestApp) {
        let user_only = app.token_for("root", "read_user").await;
        let res = api().get(app.url("/api/v4/applications")).bearer_auth(&user_only).send().await.unwrap();
        assert_eq!(res.status(), 403);
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"], "insufficient_scope");
        assert_eq!(body["scope"], "api read_api");

        // read_api may read but not write, even for an administrator.
        let reader = app.token_for("root", "read_api read_user").await;
        let res = api()
            .post(app.url("/api/v4/applications"))
            .bearer_auth(&reader)
            .json(&json!({"name": "Wiki", "redirect_uri": "https://a.example/cb", "scopes": "read_user"}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 403);
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"], "insufficient_scope");
        assert_eq!(body["scope"], "api");
        assert_eq!(counts(&app).await, (0, 0));
    }

    async fn bad_registrations_get_gitlab_errors_and_write_nothing(app: TestApp) {
        let admin = app.token_for("root", "api").await;
        let post = |body: Value| api().post(app.url("/api/v4/applications")).header("PRIVATE-TOKEN", &admin).json(&body).send();

        let res = post(json!({"redirect_uri": "https://a.example/cb"})).await.unwrap();
        assert_eq!(res.status(), 400);
        assert_eq!(res.json::<Value>().await.unwrap(), json!({"message": "400 Bad request - name is missing, scopes is missing"}));

        let invalid: Vec<(Value, &str, &str)> = vec![
            (json!({"name": "A", "redirect_uri": "http://example.com/cb", "scopes": "read_user"}), "redirect_uri", "must use https"),
            (json!({"name": "A", "redirect_uri": "https://a.example/cb#frag", "scopes": "read_user"}), "redirect_uri", "cannot contain a fragment"),
            (json!({"name": "A", "redirect_uri": "javascript:alert(1)", "scopes": "read_user"}), "redirect_uri", "forbidden"),
            (json!({"name": "A", "redirect_uri": "urn:ietf:wg:oauth:2.0:oob", "scopes": "read_user"}), "redirect_uri", "out-of-band"),
            (json!({"name": "A", "redirect_uri": "https://ok.example/cb\nhttps://u:p@a.example/cb", "scopes": "read_user"}), "redirect_uri", "user information"),
            (json!({"name": "A", "redirect_uri": "", "scopes": "read_user"}), "redirect_uri", "can't be blank"),
            (json!({"name": "A", "redirect_uri": "https://a.example/cb", "scopes": "read_user bogus"}), "scopes", "unknown scope: bogus"),
            (json!({"name": "A", "redirect_uri": "https://a.example/cb", "scopes": ""}), "scopes", "at least one scope is required"),
            (json!({"name": "<b>A</b>", "redirect_uri": "https://a.example/cb", "scopes": "api"}), "name", "cannot contain HTML tags"),
            (json!({"name": " ", "redirect_uri": "https://a.example/cb", "scopes": "api"}), "name", "can't be blank"),
        ];
        for (body, field, words) in invalid {
            let res = post(body.clone()).await.unwrap();
            assert_eq!(res.status(), 400, "{body}");
            let answer: Value = res.json().await.unwrap();
            let message = answer["message"][field][0].as_str().unwrap_or_default().to_string();
            assert!(message.contains(words), "{body}: {answer}");
        }

        // Unknown fields and wrong types are refused, as everywhere in the API.
        let res = post(json!({"name": "A", "redirect_uri": "https://a.example/cb", "scopes": "api", "owner": 1})).await.unwrap();
        assert_eq!(res.status(), 400);
        let res = post(json!({"name": "A", "redirect_uri": "https://a.example/cb", "scopes": "api", "confidential": "maybe"})).await.unwrap();
        assert_eq!(res.status(), 400);

        assert_eq!(counts(&app).await, (0, 0), "nothing was written");
    }
}

/// With `DOORWARD_ALLOW_HTTP_REDIRECT_URIS=true`, plain http callbacks are accepted.
async fn http_redirect_uris_when_allowed(backend: Backend) {
    let app = TestApp::spawn_with(backend, &[("DOORWARD_ALLOW_HTTP_REDIRECT_URIS", "true")]).await;
    let admin = app.token_for("root", "api").await;
    let created = create(&app, &admin, json!({"name": "Intranet", "redirect_uri": "http://intranet.example.com/cb", "scopes": "openid"})).await;
    assert_eq!(created["callback_url"], "http://intranet.example.com/cb");
    // Everything else is still refused.
    let res = api()
        .post(app.url("/api/v4/applications"))
        .header("PRIVATE-TOKEN", &admin)
        .json(&json!({"name": "Bad", "redirect_uri": "javascript:alert(1)", "scopes": "openid"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(counts(&app).await, (1, 0));
}

mod http_redirect_uris_are_allowed_when_configured {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        super::http_redirect_uris_when_allowed(doorward::store::Backend::Sqlite).await
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        super::http_redirect_uris_when_allowed(doorward::store::Backend::Postgres).await
    }
}
