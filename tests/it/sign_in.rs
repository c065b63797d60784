use crate::both_backends;
use crate::support::{ROOT_PASSWORD, browser, csrf_from, location};

both_backends! {
    async fn signing_in_starts_a_session_and_shows_the_profile(app: TestApp) {
        let res = app.get("/users/sign_in").await;
        assert_eq!(res.status(), 200);
        let cookie = res.headers()["set-cookie"].to_str().unwrap().to_string();
        assert!(cookie.starts_with("doorward_csrf=") && cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"));

        let res = app.sign_in_with(&app.client, "root", ROOT_PASSWORD).await;
        assert_eq!(res.status(), 303);
        assert_eq!(location(&res), "/");
        let session = res
            .headers()
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .find(|c| c.starts_with("doorward_session="))
            .expect("session cookie");
        assert!(session.contains("HttpOnly") && session.contains("SameSite=Lax") && !session.contains("Secure"), "{session}");

        let res = app.get("/").await;
        assert_eq!(location(&res), "/-/user_settings/profile");
        let page = app.get("/-/user_settings/profile").await.text().await.unwrap();
        assert!(page.contains("id=\"profile-username\">root<"), "{page}");
        assert!(page.contains("Administrator"));
    }

    async fn the_username_field_takes_an_email_in_any_case(app: TestApp) {
        let res = app.sign_in_with(&app.client, "ADMIN@example.com", ROOT_PASSWORD).await;
        assert_eq!(res.status(), 303);
    }

    async fn wrong_password_and_unknown_user_get_the_same_answer(app: TestApp) {
        let wrong = app.sign_in_with(&app.client, "root", "not-the-password").await;
        let wrong_status = wrong.status();
        let wrong_body = wrong.text().await.unwrap();
        let unknown = app.sign_in_with(&app.client, "nobody", "not-the-password").await;
        assert_eq!(wrong_status, 401);
        assert_eq!(unknown.status(), wrong_status);
        let unknown_body = unknown.text().await.unwrap();
        assert!(wrong_body.contains("Invalid login or password."));
        assert!(unknown_body.contains("Invalid login or password."));
        // The typed login is kept, escaped; nothing else differs.
        assert_eq!(wrong_body.replace("value=\"root\"", ""), unknown_body.replace("value=\"nobody\"", ""));
        assert!(app.get("/-/user_settings/profile").await.status().is_redirection());
    }

    async fn forms_without_the_right_csrf_token_are_refused(app: TestApp) {
        app.get("/users/sign_in").await;
        for token in ["", "forged"] {
            let res = app
                .client
                .post(app.url("/users/sign_in"))
                .form(&[("authenticity_token", token), ("username", "root"), ("password", ROOT_PASSWORD)])
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 403, "token {token:?}");
            assert!(res.text().await.unwrap().contains("Form expired"));
        }
        // A token from another browser does not match this browser's cookie.
        let other = browser();
        let foreign = app.csrf_token(&other, "/users/sign_in").await;
        let res = app
            .client
            .post(app.url("/users/sign_in"))
            .form(&[("authenticity_token", foreign.as_str()), ("username", "root"), ("password", ROOT_PASSWORD)])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 403);
    }

    async fn return_to_accepts_only_local_paths(app: TestApp) {
        let page = app.get("/users/sign_in?return_to=/-/user_settings/profile%3Fx%3D1").await.text().await.unwrap();
        let token = csrf_from(&page);
        // minijinja escapes `/` too (`&#x2f;`); the browser posts the decoded value.
        assert!(page.contains("name=\"return_to\" value=\"&#x2f;-&#x2f;user_settings&#x2f;profile?x=1\""), "{page}");
        let res = app
            .client
            .post(app.url("/users/sign_in"))
            .form(&[
                ("authenticity_token", token.as_str()),
                ("username", "root"),
                ("password", ROOT_PASSWORD),
                ("return_to", "/-/user_settings/profile?x=1"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(location(&res), "/-/user_settings/profile?x=1");

        for evil in ["https://evil.example/", "//evil.example/x", "/\\evil.example"] {
            let other = browser();
            let token = app.csrf_token(&other, "/users/sign_in").await;
            let res = other
                .post(app.url("/users/sign_in"))
                .form(&[("authenticity_token", token.as_str()), ("username", "root"), ("password", ROOT_PASSWORD), ("return_to", evil)])
                .send()
                .await
                .unwrap();
            assert_eq!(location(&res), "/", "{evil}");
        }
    }

    async fn pages_that_need_a_session_send_to_sign_in_and_back(app: TestApp) {
        let res = app.get("/-/user_settings/profile").await;
        assert_eq!(res.status(), 303);
        assert_eq!(location(&res), "/users/sign_in?return_to=/-/user_settings/profile");
    }

    async fn repeated_failures_lock_the_login_whether_or_not_it_exists(app: TestApp) {
        for login in ["root", "ghost"] {
            for _ in 0..10 {
                let res = app.sign_in_with(&app.client, login, "wrong-password").await;
                assert_eq!(res.status(), 401);
            }
            let res = app.sign_in_with(&app.client, login, ROOT_PASSWORD).await;
            assert_eq!(res.status(), 429, "{login}");
            let body = res.text().await.unwrap();
            assert!(body.contains("Too many failed sign-in attempts. Try again in 10 minutes."), "{body}");
        }
        app.clock.advance(601);
        let res = app.sign_in_with(&app.client, "root", ROOT_PASSWORD).await;
        assert_eq!(res.status(), 303);
    }

    async fn one_address_cannot_try_many_accounts_without_limit(app: TestApp) {
        for i in 0..50 {
            let res = app.sign_in_with(&app.client, &format!("user{i}"), "wrong-password").await;
            assert_eq!(res.status(), 401);
        }
        let res = app.sign_in_with(&app.client, "root", ROOT_PASSWORD).await;
        assert_eq!(res.status(), 429);
    }

    async fn signing_out_ends_the_session_everywhere(app: TestApp) {
        let res = app.sign_in_with(&app.client, "root", ROOT_PASSWORD).await;
        let cookie = res
            .headers()
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_string())
            .find(|c| c.starts_with("doorward_session="))
            .unwrap();
        let token = app.csrf_token(&app.client, "/-/user_settings/profile").await;
        let res = app.client.post(app.url("/users/sign_out")).form(&[("authenticity_token", token)]).send().await.unwrap();
        assert_eq!(res.status(), 303);
        assert_eq!(location(&res), "/users/sign_in");
        // The old cookie, replayed by anyone, no longer works.
        let replay = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        let res = replay.get(app.url("/-/user_settings/profile")).header("cookie", cookie).send().await.unwrap();
        assert_eq!(res.status(), 303);
        // Sign-out without a token is refused.
        let res = app.client.post(app.url("/users/sign_out")).form(&[("authenticity_token", "x")]).send().await.unwrap();
        assert_eq!(res.status(), 403);
    }

    async fn sessions_expire_when_idle_and_at_their_absolute_limit(app: TestApp) {
        app.sign_in_root().await;
        // Activity keeps an idle session alive...
        for _ in 0..3 {
            app.clock.advance(6 * 86_400);
            assert_eq!(app.get("/-/user_settings/profile").await.status(), 200);
        }
        // ...until the absolute lifetime (30 days) ends it.
        app.clock.advance(13 * 86_400);
        assert_eq!(app.get("/-/user_settings/profile").await.status(), 303);

        app.sign_in_root().await;
        app.clock.advance(7 * 86_400 + 1);
        assert_eq!(app.get("/-/user_settings/profile").await.status(), 303, "idle for a week");
    }

    async fn blocked_users_cannot_sign_in_and_lose_their_sessions(app: TestApp) {
        let alice = app.create_user("alice", "alice-password").await;
        let browser = app.new_browser();
        assert_eq!(app.sign_in_with(&browser, "alice", "alice-password").await.status(), 303);
        let admin = app.token_for("root", "api").await;
        let res = reqwest::Client::new()
            .post(app.url(&format!("/api/v4/users/{}/block", alice["id"])))
            .header("PRIVATE-TOKEN", &admin)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201);
        let res = browser.get(app.url("/-/user_settings/profile")).send().await.unwrap();
        assert_eq!(res.status(), 303, "the session ended with the block");
        let res = app.sign_in_with(&browser, "alice", "alice-password").await;
        assert_eq!(res.status(), 403);
        assert!(res.text().await.unwrap().contains("Your account has been blocked."));
        // A wrong password still says only "invalid".
        let res = app.sign_in_with(&browser, "alice", "wrong-password").await;
        assert_eq!(res.status(), 401);
    }

    async fn the_profile_can_be_edited_and_rejects_bad_values(app: TestApp) {
        app.create_user("bob", "bob-password").await;
        app.sign_in_root().await;
        let token = app.csrf_token(&app.client, "/-/user_settings/profile").await;
        let post = |fields: Vec<(&'static str, String)>| {
            let mut form = vec![("authenticity_token", token.clone())];
            form.extend(fields);
            app.client.post(app.url("/-/user_settings/profile")).form(&form).send()
        };
        let res = post(vec![("name", "<script>alert(1)</script>".into()), ("email", "admin@example.com".into())]).await.unwrap();
        assert_eq!(res.status(), 422);
        let body = res.text().await.unwrap();
        assert!(body.contains("Name cannot contain HTML tags"));
        assert!(body.contains("&lt;script&gt;") && !body.contains("<script>alert"), "escaped");

        let res = post(vec![("name", "Admin".into()), ("email", "BOB@example.com".into())]).await.unwrap();
        assert_eq!(res.status(), 422);
        assert!(res.text().await.unwrap().contains("Email has already been taken"));

        let res = post(vec![
            ("name", "Ada O'Root".into()),
            ("email", "ada@example.com".into()),
            ("website_url", "https://ada.example".into()),
            ("location", "London".into()),
        ])
        .await
        .unwrap();
        assert_eq!(res.status(), 200);
        assert!(res.text().await.unwrap().contains("Profile was successfully updated."));
        // A new address waits for its confirmation link (tests/it/accounts/confirmation.rs).
        let user = app.state.store.user_by_login("root").await.unwrap().unwrap();
        assert_eq!((user.name.as_str(), user.email.as_str(), user.location.as_str()), ("Ada O'Root", "admin@example.com", "London"));
        assert_eq!(user.unconfirmed_email.as_deref(), Some("ada@example.com"));
    }

    async fn changing_the_password_ends_other_sessions(app: TestApp) {
        app.sign_in_root().await;
        let other = app.new_browser();
        assert_eq!(app.sign_in_with(&other, "root", ROOT_PASSWORD).await.status(), 303);
        let token = app.csrf_token(&app.client, "/-/user_settings/profile").await;
        let change = |current: &str, new: &str, confirm: &str| {
            app.client
                .post(app.url("/-/user_settings/password"))
                .form(&[
                    ("authenticity_token", token.as_str()),
                    ("current_password", current),
                    ("new_password", new),
                    ("password_confirmation", confirm),
                ])
                .send()
        };
        let res = change("wrong", "new-password-1", "new-password-1").await.unwrap();
        assert_eq!(res.status(), 422);
        assert!(res.text().await.unwrap().contains("Current password is invalid."));
        let res = change(ROOT_PASSWORD, "short", "short").await.unwrap();
        assert!(res.text().await.unwrap().contains("Password is too short (minimum is 8 characters)."));
        let res = change(ROOT_PASSWORD, "new-password-1", "new-password-2").await.unwrap();
        assert!(res.text().await.unwrap().contains("match the new password"));
        let res = change(ROOT_PASSWORD, "new-password-1", "new-password-1").await.unwrap();
        assert_eq!(res.status(), 200);
        assert!(res.text().await.unwrap().contains("Password was successfully updated."));

        assert_eq!(app.get("/-/user_settings/profile").await.status(), 200, "this session stays");
        let res = other.get(app.url("/-/user_settings/profile")).send().await.unwrap();
        assert_eq!(res.status(), 303, "the other session ended");
        assert_eq!(app.sign_in_with(&other, "root", ROOT_PASSWORD).await.status(), 401);
        assert_eq!(app.sign_in_with(&other, "root", "new-password-1").await.status(), 303);
    }
}
