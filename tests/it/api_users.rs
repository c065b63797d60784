use serde_json::{Value, json};

use crate::both_backends;

fn api() -> reqwest::Client {
    reqwest::Client::new()
}

both_backends! {
    async fn the_current_user_is_found_by_any_of_gitlabs_token_methods(app: TestApp) {
        let token = app.token_for("root", "read_user").await;
        assert!(token.starts_with("dwpat-"));
        let by_header = api().get(app.url("/api/v4/user")).header("PRIVATE-TOKEN", &token).send().await.unwrap();
        let by_bearer = api().get(app.url("/api/v4/user")).bearer_auth(&token).send().await.unwrap();
        let by_param = api().get(app.url(&format!("/api/v4/user?private_token={token}"))).send().await.unwrap();
        for res in [by_header, by_bearer, by_param] {
            assert_eq!(res.status(), 200);
            let user: Value = res.json().await.unwrap();
            assert_eq!(user["username"], "root");
            assert_eq!(user["name"], "Administrator");
            assert_eq!(user["state"], "active");
            assert_eq!(user["email"], "admin@example.com");
            assert_eq!(user["is_admin"], true);
            assert_eq!(user["two_factor_enabled"], false);
            assert_eq!(user["web_url"], app.url("/root"));
            assert!(user["id"].is_i64());
            assert!(user["avatar_url"].is_null());
            let created = user["created_at"].as_str().unwrap();
            assert!(created.ends_with(".000Z") && created.len() == 24, "{created}");
        }
    }

    async fn regular_users_do_not_see_admin_fields(app: TestApp) {
        app.create_user("carol", "carol-password").await;
        let token = app.token_for("carol", "read_user").await;
        let user: Value = api().get(app.url("/api/v4/user")).bearer_auth(&token).send().await.unwrap().json().await.unwrap();
        assert_eq!(user["username"], "carol");
        assert_eq!(user["email"], "carol@example.com");
        assert!(user.get("is_admin").is_none());
    }

    async fn missing_unknown_expired_and_revoked_tokens_get_401(app: TestApp) {
        let res = api().get(app.url("/api/v4/user")).send().await.unwrap();
        assert_eq!(res.status(), 401);
        // RFC 6750 §3.1 (no error code), and RFC 9728 §5.1's pointer to the API's metadata.
        assert_eq!(
            res.headers()["www-authenticate"],
            format!("Bearer realm=\"Doorward\", resource_metadata=\"{}/.well-known/oauth-protected-resource/api/v4\"", app.state.config.external_url).as_str()
        );
        let body: Value = res.json().await.unwrap();
        assert_eq!(body, json!({"message": "401 Unauthorized"}));

        for bogus in ["dwpat-not-a-real-token", "0123456789abcdef"] {
            let res = api().get(app.url("/api/v4/user")).bearer_auth(bogus).send().await.unwrap();
            assert_eq!(res.status(), 401);
            let challenge = res.headers()["www-authenticate"].to_str().unwrap().to_string();
            assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
        }

        let token = app.token_for("root", "api").await;
        let user = app.state.store.user_by_login("root").await.unwrap().unwrap();
        let id = app.state.store.personal_access_tokens_of_user(user.id).await.unwrap()[0].id;
        app.state.store.revoke_personal_access_token(id, user.id, &crate::support::test_audit(), 0).await.unwrap();
        let res = api().get(app.url("/api/v4/user")).bearer_auth(&token).send().await.unwrap();
        assert_eq!(res.status(), 401);
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"], "invalid_token");
        assert_eq!(body["error_description"], "Token was revoked. You have to re-authorize from the user.");

        let token = app.token_for("root", "api").await;
        app.clock.advance(31 * 86_400);
        let res = api().get(app.url("/api/v4/user")).bearer_auth(&token).send().await.unwrap();
        assert_eq!(res.status(), 401);
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error_description"], "Token is expired. You can either do re-authorization or token refresh.");
    }

    async fn a_token_without_the_needed_scope_gets_403_insufficient_scope(app: TestApp) {
        let token = app.token_for("root", "read_repository").await;
        let res = api().get(app.url("/api/v4/user")).bearer_auth(&token).send().await.unwrap();
        assert_eq!(res.status(), 403);
        let challenge = res.headers()["www-authenticate"].to_str().unwrap().to_string();
        assert!(challenge.contains("error=\"insufficient_scope\""), "{challenge}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"], "insufficient_scope");
        assert_eq!(body["scope"], "api read_api read_user");

        // read_user may read, but not create users, even as an admin.
        let read_only = app.token_for("root", "read_user read_api").await;
        let res = api()
            .post(app.url("/api/v4/users"))
            .bearer_auth(&read_only)
            .json(&json!({"username": "x1", "email": "x1@example.com", "name": "X", "password": "password-1"}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 403);
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"], "insufficient_scope");
    }

    async fn admins_create_users_with_json_or_form_bodies(app: TestApp) {
        let admin = app.token_for("root", "api").await;
        let res = api()
            .post(app.url("/api/v4/users"))
            .header("PRIVATE-TOKEN", &admin)
            .json(&json!({
                "username": "dave", "email": "dave@example.com", "name": "Dave",
                "password": "dave-password", "skip_confirmation": true, "admin": false,
                "bio": "Robert'); DROP TABLE users;--"
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201);
        let dave: Value = res.json().await.unwrap();
        assert_eq!(dave["username"], "dave");
        assert_eq!(dave["is_admin"], false);
        assert_eq!(dave["bio"], "Robert'); DROP TABLE users;--");

        let res = api()
            .post(app.url("/api/v4/users"))
            .header("PRIVATE-TOKEN", &admin)
            .form(&[("username", "erin"), ("email", "erin@example.com"), ("name", "Erin"), ("password", "erin-password"), ("admin", "true")])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201);
        let erin: Value = res.json().await.unwrap();
        assert_eq!(erin["is_admin"], true);

        // Users created through the API can sign in at once.
        let browser = app.new_browser();
        assert_eq!(app.sign_in_with(&browser, "dave", "dave-password").await.status(), 303);
        let count = app.state.store.count_users().await.unwrap();
        assert_eq!(count, 3);
    }

    async fn bad_user_input_gets_gitlab_errors_and_writes_nothing(app: TestApp) {
        let admin = app.token_for("root", "api").await;
        app.create_user("frank", "frank-password").await;
        let post = |body: Value| api().post(app.url("/api/v4/users")).header("PRIVATE-TOKEN", &admin).json(&body).send();

        let res = post(json!({"username": "FRANK", "email": "f2@example.com", "name": "F", "password": "password-1"})).await.unwrap();
        assert_eq!(res.status(), 409);
        assert_eq!(res.json::<Value>().await.unwrap(), json!({"message": "Username has already been taken"}));

        let res = post(json!({"username": "frank2", "email": "Frank@Example.com", "name": "F", "password": "password-1"})).await.unwrap();
        assert_eq!(res.status(), 409);
        assert_eq!(res.json::<Value>().await.unwrap(), json!({"message": "Email has already been taken"}));

        let res = post(json!({"username": "g", "email": "g@example.com"})).await.unwrap();
        assert_eq!(res.status(), 400);
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["message"], "400 Bad request - name is missing");

        let res = post(json!({"username": "gina", "email": "gina@example.com", "name": "Gina", "password": "short"})).await.unwrap();
        assert_eq!(res.status(), 400);
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["message"]["password"][0], "is too short (minimum is 8 characters)");

        let res = post(json!({"username": "h<b>", "email": "not-an-email", "name": "<b>H</b>", "password": "password-1"})).await.unwrap();
        assert_eq!(res.status(), 400);
        let body: Value = res.json().await.unwrap();
        assert!(body["message"]["username"].is_array() && body["message"]["email"].is_array() && body["message"]["name"].is_array(), "{body}");

        let res = post(json!({"username": "ivan", "email": "ivan@example.com", "name": "Ivan", "password": "password-1", "favourite_colour": "blue"})).await.unwrap();
        assert_eq!(res.status(), 400);
        assert!(res.json::<Value>().await.unwrap()["message"].as_str().unwrap().contains("favourite_colour"));

        let res = post(json!({"username": "ivan", "email": "ivan@example.com", "name": "Ivan"})).await.unwrap();
        assert_eq!(res.status(), 400);
        assert!(res.json::<Value>().await.unwrap()["message"].as_str().unwrap().contains("exactly one parameter must be provided"));

        let res = post(json!({"username": 42, "email": "ivan@example.com", "name": "Ivan", "password": "password-1"})).await.unwrap();
        assert_eq!(res.status(), 400);

        assert_eq!(app.state.store.count_users().await.unwrap(), 2, "nothing was written");
    }

    async fn non_admins_cannot_manage_users(app: TestApp) {
        let grace = app.create_user("grace", "grace-password").await;
        let token = app.token_for("grace", "api").await;
        let res = api()
            .post(app.url("/api/v4/users"))
            .bearer_auth(&token)
            .json(&json!({"username": "x2", "email": "x2@example.com", "name": "X", "password": "password-1"}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 403);
        assert_eq!(res.json::<Value>().await.unwrap(), json!({"message": "403 Forbidden"}));
        let res = api().post(app.url("/api/v4/users/1/block")).bearer_auth(&token).send().await.unwrap();
        assert_eq!(res.status(), 403);
        // Listing is allowed, with public fields only.
        let list: Vec<Value> = api().get(app.url("/api/v4/users")).bearer_auth(&token).send().await.unwrap().json().await.unwrap();
        assert_eq!(list.len(), 2);
        assert!(list.iter().all(|u| u.get("email").is_none()));
        let me: Value = api().get(app.url(&format!("/api/v4/users/{}", grace["id"]))).bearer_auth(&token).send().await.unwrap().json().await.unwrap();
        assert_eq!(me["username"], "grace");
        assert!(me.get("email").is_none());
    }

    async fn user_lists_paginate_with_gitlabs_headers(app: TestApp) {
        let admin = app.token_for("root", "api").await;
        for i in 0..11 {
            let res = api()
                .post(app.url("/api/v4/users"))
                .header("PRIVATE-TOKEN", &admin)
                .json(&json!({"username": format!("u{i:02}"), "email": format!("u{i}@example.com"), "name": format!("U {i}"), "force_random_password": true}))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 201);
        }
        let res = api().get(app.url("/api/v4/users?per_page=5&page=2")).header("PRIVATE-TOKEN", &admin).send().await.unwrap();
        assert_eq!(res.status(), 200);
        let h = res.headers().clone();
        assert_eq!(h["x-page"], "2");
        assert_eq!(h["x-per-page"], "5");
        assert_eq!(h["x-total"], "12");
        assert_eq!(h["x-total-pages"], "3");
        assert_eq!(h["x-next-page"], "3");
        assert_eq!(h["x-prev-page"], "1");
        let link = h["link"].to_str().unwrap();
        assert!(link.contains(&format!("<{}?page=3&per_page=5>; rel=\"next\"", app.url("/api/v4/users"))), "{link}");
        let page: Vec<Value> = res.json().await.unwrap();
        let names: Vec<&str> = page.iter().map(|u| u["username"].as_str().unwrap()).collect();
        assert_eq!(names, ["u04", "u05", "u06", "u07", "u08"], "root is first, so page 2 starts at u04");

        let found: Vec<Value> = api().get(app.url("/api/v4/users?username=U07")).header("PRIVATE-TOKEN", &admin).send().await.unwrap().json().await.unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0]["username"], "u07");
        let found: Vec<Value> = api().get(app.url("/api/v4/users?search=u1%40exa")).header("PRIVATE-TOKEN", &admin).send().await.unwrap().json().await.unwrap();
        assert_eq!(found.len(), 1, "admins search emails");
        let found: Vec<Value> = api().get(app.url("/api/v4/users?search=%25")).header("PRIVATE-TOKEN", &admin).send().await.unwrap().json().await.unwrap();
        assert!(found.is_empty(), "wildcards match literally");
        let res = api().get(app.url("/api/v4/users?colour=red")).header("PRIVATE-TOKEN", &admin).send().await.unwrap();
        assert_eq!(res.status(), 400);
    }

    async fn single_users_and_missing_ones(app: TestApp) {
        let admin = app.token_for("root", "api").await;
        let res = api().get(app.url("/api/v4/users/1")).header("PRIVATE-TOKEN", &admin).send().await.unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(res.json::<Value>().await.unwrap()["username"], "root");
        for missing in ["999", "abc", "1%20OR%201=1"] {
            let res = api().get(app.url(&format!("/api/v4/users/{missing}"))).header("PRIVATE-TOKEN", &admin).send().await.unwrap();
            assert_eq!(res.status(), 404, "{missing}");
            assert_eq!(res.json::<Value>().await.unwrap(), json!({"message": "404 User Not Found"}));
        }
    }

    async fn blocking_and_unblocking_a_user(app: TestApp) {
        let admin = app.token_for("root", "api").await;
        let henry = app.create_user("henry", "henry-password").await;
        let henrys = app.token_for("henry", "read_user").await;
        let block = api().post(app.url(&format!("/api/v4/users/{}/block", henry["id"]))).header("PRIVATE-TOKEN", &admin).send().await.unwrap();
        assert_eq!(block.status(), 201);
        assert_eq!(block.json::<Value>().await.unwrap(), json!(true));
        let shown: Value = api().get(app.url(&format!("/api/v4/users/{}", henry["id"]))).header("PRIVATE-TOKEN", &admin).send().await.unwrap().json().await.unwrap();
        assert_eq!(shown["state"], "blocked");
        let res = api().get(app.url("/api/v4/user")).bearer_auth(&henrys).send().await.unwrap();
        assert_eq!(res.status(), 403, "a blocked user's tokens stop working");
        let blocked: Vec<Value> = api().get(app.url("/api/v4/users?blocked=true")).header("PRIVATE-TOKEN", &admin).send().await.unwrap().json().await.unwrap();
        assert_eq!(blocked.len(), 1);

        let res = api().post(app.url(&format!("/api/v4/users/{}/unblock", henry["id"]))).header("PRIVATE-TOKEN", &admin).send().await.unwrap();
        assert_eq!(res.status(), 201);
        assert_eq!(api().get(app.url("/api/v4/user")).bearer_auth(&henrys).send().await.unwrap().status(), 200);

        let res = api().post(app.url("/api/v4/users/1/block")).header("PRIVATE-TOKEN", &admin).send().await.unwrap();
        assert_eq!(res.status(), 403, "admins cannot lock themselves out");
        let res = api().post(app.url("/api/v4/users/999/block")).header("PRIVATE-TOKEN", &admin).send().await.unwrap();
        assert_eq!(res.status(), 404);
    }
}
