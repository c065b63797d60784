//! GitLab's personal access token API: list with filters and pagination, one token, `self`
//! (personal access tokens only), revocation by the token itself, its owner or an admin.

use doorward::domain::clock::iso8601;
use doorward::domain::secret;
use doorward::store::personal_access_tokens::NewPersonalAccessToken;
use serde_json::{Value, json};

use crate::both_backends;
use crate::personal_access_tokens::issue;
use crate::support::TestApp;
use crate::support::oauth::{AppSpec, code_for, register, token_request};

const LIST: &str = "/api/v4/personal_access_tokens";

/// A token that expired yesterday, written straight to the store (the rules refuse it).
async fn expired(app: &TestApp, user_id: i64, name: &str) -> i64 {
    let hash = secret::hash(secret::generate(secret::PERSONAL_ACCESS_TOKEN_PREFIX).expose());
    let now = app.clock.now();
    let new = NewPersonalAccessToken {
        user_id,
        name,
        token_hash: &hash,
        scopes: "api",
        expires_at: Some(now - 86_400),
    };
    app.state
        .store
        .create_personal_access_token(&new, &crate::support::test_audit(), now - 2 * 86_400)
        .await
        .unwrap()
        .id
}

async fn call(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    token: &str,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let res = reqwest::Client::new()
        .request(method, app.url(path))
        .header("PRIVATE-TOKEN", token)
        .send()
        .await
        .unwrap();
    let (status, headers) = (res.status().as_u16(), res.headers().clone());
    let text = res.text().await.unwrap();
    (
        status,
        headers,
        if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap()
        },
    )
}

async fn get(app: &TestApp, path: &str, token: &str) -> (u16, Value) {
    let (status, _, body) = call(app, reqwest::Method::GET, path, token).await;
    (status, body)
}

async fn delete(app: &TestApp, path: &str, token: &str) -> (u16, Value) {
    let (status, _, body) = call(app, reqwest::Method::DELETE, path, token).await;
    (status, body)
}

fn names(list: &Value) -> Vec<&str> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect()
}

/// An OAuth access token for root with `api`, through the code flow.
async fn oauth_token(app: &TestApp) -> String {
    let client = register(app, AppSpec::default()).await;
    let code = code_for(app, &client, &[("scope", "api")]).await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", client.redirect_uri.as_str()),
    ];
    let res = token_request(app, &form, Some((&client.client_id, &client.secret))).await;
    assert_eq!(res.status(), 200);
    res.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_string()
}

both_backends! {
    async fn users_list_their_own_tokens_filtered_and_paginated(app: TestApp) {
        let root_token = app.token_for("root", "api").await;
        let alice_id = app.create_user("alice", "alice-password").await["id"].as_i64().unwrap();
        let (laptop, laptop_id) = issue(&app, alice_id, "laptop", "read_api").await;
        issue(&app, alice_id, "CI runner", "api read_user").await;
        let (_, deploy_id) = issue(&app, alice_id, "deploy", "api").await;
        app.state.store.revoke_personal_access_token(deploy_id, alice_id, &crate::support::test_audit(), 0).await.unwrap();
        expired(&app, alice_id, "old").await;

        let (status, list) = get(&app, LIST, &laptop).await;
        assert_eq!(status, 200);
        assert_eq!(names(&list), ["laptop", "CI runner", "deploy", "old"], "only her own, in id order");
        let first = &list[0];
        let mut keys: Vec<&str> = first.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["active", "created_at", "description", "expires_at", "id", "last_used_at", "name", "revoked", "scopes", "user_id"]);
        assert_eq!(first["id"], laptop_id);
        assert_eq!((first["user_id"].as_i64(), first["active"].as_bool(), first["revoked"].as_bool()), (Some(alice_id), Some(true), Some(false)));
        assert_eq!(first["scopes"], json!(["read_api"]));
        assert_eq!(first["description"], Value::Null);
        assert_eq!(first["expires_at"], doorward::domain::clock::date(app.clock.now() + 30 * 86_400));
        let created = first["created_at"].as_str().unwrap();
        assert!(created.ends_with(".000Z") && created.len() == 24, "{created}");
        assert!(first["last_used_at"].as_str().unwrap().ends_with(".000Z"), "this very request used it");
        assert_eq!(list[1]["scopes"], json!(["api", "read_user"]));
        assert_eq!(list[1]["last_used_at"], Value::Null);
        assert_eq!((list[2]["revoked"].as_bool(), list[2]["active"].as_bool()), (Some(true), Some(false)));
        assert_eq!((list[3]["revoked"].as_bool(), list[3]["active"].as_bool()), (Some(false), Some(false)));

        for (query, expected) in [
            ("state=active", vec!["laptop", "CI runner"]),
            ("state=inactive", vec!["deploy", "old"]),
            ("revoked=true", vec!["deploy"]),
            ("revoked=False", vec!["laptop", "CI runner", "old"]),
            ("search=RUN", vec!["CI runner"]),
            ("search=%25", vec![]),
            ("state=active&search=lap", vec!["laptop"]),
            (&format!("user_id={alice_id}"), vec!["laptop", "CI runner", "deploy", "old"]),
        ] {
            let (status, list) = get(&app, &format!("{LIST}?{query}"), &laptop).await;
            assert_eq!(status, 200, "{query}");
            assert_eq!(names(&list), expected, "{query}");
        }

        let (status, headers, list) = call(&app, reqwest::Method::GET, &format!("{LIST}?per_page=3&page=2"), &laptop).await;
        assert_eq!(status, 200);
        assert_eq!(names(&list), ["old"]);
        for (name, value) in [("x-total", "4"), ("x-total-pages", "2"), ("x-prev-page", "1"), ("x-next-page", "")] {
            assert_eq!(headers[name], value, "{name}");
        }
        let (_, headers, _) = call(&app, reqwest::Method::GET, &format!("{LIST}?per_page=1&state=active"), &laptop).await;
        let link = headers["link"].to_str().unwrap();
        assert!(link.contains(&format!("<{}?state=active&page=2&per_page=1>; rel=\"next\"", app.url(LIST))), "{link}");

        // Someone else's tokens, bad filters, and too little scope.
        let (status, body) = get(&app, &format!("{LIST}?user_id=1"), &laptop).await;
        assert_eq!((status, body), (403, json!({"message": "403 Forbidden"})));
        for bad in ["state=revoked", "revoked=maybe", "colour=red"] {
            assert_eq!(get(&app, &format!("{LIST}?{bad}"), &laptop).await.0, 400, "{bad}");
        }
        let (read_user, _) = issue(&app, alice_id, "profile reader", "read_user").await;
        let (status, body) = get(&app, LIST, &read_user).await;
        assert_eq!(status, 403);
        assert_eq!(body["error"], "insufficient_scope");

        // Administrators see every token, or one user's.
        let (_, all) = get(&app, LIST, &root_token).await;
        assert_eq!(all.as_array().unwrap().len(), 7, "root's two and alice's five: {all}");
        let (_, hers) = get(&app, &format!("{LIST}?user_id={alice_id}&state=active"), &root_token).await;
        assert_eq!(names(&hers), ["laptop", "CI runner", "profile reader"]);
        let (status, nobody) = get(&app, &format!("{LIST}?user_id=9999"), &root_token).await;
        assert_eq!((status, nobody), (200, json!([])));
    }

    async fn single_tokens_and_the_token_itself(app: TestApp) {
        let root_token = app.token_for("root", "api").await;
        let alice_id = app.create_user("alice", "alice-password").await["id"].as_i64().unwrap();
        let bob_id = app.create_user("bob", "bob-password").await["id"].as_i64().unwrap();
        let (laptop, laptop_id) = issue(&app, alice_id, "laptop", "read_api").await;
        let (_, bobs_id) = issue(&app, bob_id, "bob's", "api").await;

        let (status, body) = get(&app, &format!("{LIST}/{laptop_id}"), &laptop).await;
        assert_eq!((status, body["name"].as_str()), (200, Some("laptop")));
        for other in [bobs_id.to_string(), "999999".into(), "abc".into()] {
            let (status, body) = get(&app, &format!("{LIST}/{other}"), &laptop).await;
            assert_eq!((status, body), (404, json!({"message": "404 Not Found"})), "{other}");
        }
        let (status, body) = get(&app, &format!("{LIST}/{bobs_id}"), &root_token).await;
        assert_eq!((status, body["user_id"].as_i64()), (200, Some(bob_id)), "administrators see any token");

        // Any scope may look at itself.
        let (git_only, git_only_id) = issue(&app, alice_id, "git", "read_repository").await;
        let (status, me) = get(&app, &format!("{LIST}/self"), &git_only).await;
        assert_eq!(status, 200);
        assert_eq!((me["id"].as_i64(), me["scopes"].clone(), me["active"].as_bool()), (Some(git_only_id), json!(["read_repository"]), Some(true)));
        assert!(me["last_used_at"].is_string());
        assert_eq!(get(&app, &format!("{LIST}/{git_only_id}"), &git_only).await.0, 403, "but not by id");

        // An OAuth token has no `self` here, though it may use the rest of the API.
        let oauth = oauth_token(&app).await;
        let expected = json!({"message": "400 Bad request - This endpoint requires token type to be a personal access token"});
        assert_eq!(get(&app, &format!("{LIST}/self"), &oauth).await, (400, expected.clone()));
        assert_eq!(delete(&app, &format!("{LIST}/self"), &oauth).await, (400, expected));
        let (status, all) = get(&app, LIST, &oauth).await;
        assert_eq!((status, all.as_array().unwrap().len()), (200, 6), "root is an administrator: every token");

        let res = reqwest::Client::new().get(app.url(&format!("{LIST}/self"))).send().await.unwrap();
        assert_eq!(res.status(), 401);
    }

    async fn tokens_are_revoked_by_themselves_their_owner_or_an_admin(app: TestApp) {
        let root_token = app.token_for("root", "api").await;
        let alice_id = app.create_user("alice", "alice-password").await["id"].as_i64().unwrap();
        let bob_id = app.create_user("bob", "bob-password").await["id"].as_i64().unwrap();
        let (weak, weak_id) = issue(&app, alice_id, "weak", "read_repository").await;
        let (reader, _) = issue(&app, alice_id, "reader", "read_api").await;
        let (writer, writer_id) = issue(&app, alice_id, "writer", "api").await;
        let (_, spare_id) = issue(&app, alice_id, "spare", "api").await;
        let (bobs, _) = issue(&app, bob_id, "bob's", "api").await;
        let revoked = |id: i64| {
            let store = app.state.store.clone();
            async move { store.personal_access_token_by_id(id).await.unwrap().unwrap().revoked }
        };

        let (status, body) = delete(&app, &format!("{LIST}/{spare_id}"), &reader).await;
        assert_eq!((status, body["error"].as_str()), (403, Some("insufficient_scope")));
        assert!(!revoked(spare_id).await);

        assert_eq!(delete(&app, &format!("{LIST}/self"), &weak).await, (204, Value::Null), "any scope may revoke itself");
        assert!(revoked(weak_id).await);
        let (status, body) = get(&app, &format!("{LIST}/self"), &weak).await;
        assert_eq!((status, body["error_description"].as_str()), (401, Some("Token was revoked. You have to re-authorize from the user.")));

        assert_eq!(delete(&app, &format!("{LIST}/{spare_id}"), &writer).await.0, 204);
        assert!(revoked(spare_id).await);
        assert_eq!(delete(&app, &format!("{LIST}/{spare_id}"), &writer).await.0, 204, "again: still 204, as in GitLab");

        for target in [writer_id.to_string(), "999999".into(), "self-ish".into()] {
            let (status, body) = delete(&app, &format!("{LIST}/{target}"), &bobs).await;
            assert_eq!((status, body), (404, json!({"message": "404 Not Found"})), "{target}");
        }
        assert!(!revoked(writer_id).await);
        assert_eq!(get(&app, "/api/v4/user", &writer).await.0, 200);

        assert_eq!(delete(&app, &format!("{LIST}/{writer_id}"), &root_token).await.0, 204, "administrators revoke any token");
        assert_eq!(get(&app, "/api/v4/user", &writer).await.0, 401);
        assert_eq!(delete(&app, &format!("{LIST}/self"), &writer).await.0, 401);
    }

    async fn last_used_at_is_recorded_at_most_every_ten_minutes(app: TestApp) {
        let root_token = app.token_for("root", "api").await;
        let alice_id = app.create_user("alice", "alice-password").await["id"].as_i64().unwrap();
        let (fresh, fresh_id) = issue(&app, alice_id, "fresh", "read_user").await;
        let path = format!("{LIST}/{fresh_id}");
        assert_eq!(get(&app, &path, &root_token).await.1["last_used_at"], Value::Null);

        // Just now: this second, or one or two before it on a slow machine.
        let recent = |v: &Value| (0..3).any(|ago| *v == iso8601(app.clock.now() - ago));
        assert_eq!(get(&app, "/api/v4/user", &fresh).await.0, 200);
        let first = get(&app, &path, &root_token).await.1["last_used_at"].clone();
        assert!(recent(&first), "{first}");
        app.clock.advance(300);
        get(&app, "/api/v4/user", &fresh).await;
        assert_eq!(get(&app, &path, &root_token).await.1["last_used_at"], first, "reads stay reads");
        app.clock.advance(400);
        get(&app, "/api/v4/user", &fresh).await;
        let later = get(&app, &path, &root_token).await.1["last_used_at"].clone();
        assert!(recent(&later), "{later}");
        assert_ne!(later, first);
    }
}
