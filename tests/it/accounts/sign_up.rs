//! `/users/sign_up` when open, with approval, and closed; GitLab's approve API.

use reqwest::StatusCode;
use serde_json::Value;

use super::*;
use crate::with_mail;

/// Posts the sign-up form from a fresh page; returns the status and body.
async fn sign_up(
    app: &TestApp,
    browser: &reqwest::Client,
    fields: &[(&str, &str)],
) -> (StatusCode, String) {
    let token = app.csrf_token(browser, "/users/sign_up").await;
    let mut form = vec![("authenticity_token", token.as_str())];
    form.extend_from_slice(fields);
    let res = browser
        .post(app.url("/users/sign_up"))
        .form(&form)
        .send()
        .await
        .unwrap();
    let status = res.status();
    (status, res.text().await.unwrap().replace(&token, "TOKEN"))
}

fn fields<'a>(username: &'a str, email: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("username", username),
        ("name", "New Person"),
        ("email", email),
        ("password", "a-long-password-1"),
    ]
}

async fn user_json(app: &TestApp, username: &str) -> Value {
    let admin = app.token_for("root", "api").await;
    let list: Vec<Value> = reqwest::Client::new()
        .get(app.url(&format!("/api/v4/users?username={username}")))
        .header("PRIVATE-TOKEN", admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    list.into_iter().next().unwrap_or(Value::Null)
}

with_mail! {
    async fn closed_by_default(app, sink) [] {
        assert_eq!(app.get("/users/sign_up").await.status(), 404);
        let page = app.get("/users/sign_in").await.text().await.unwrap();
        assert!(!page.contains("/users/sign_up"), "no register link when closed");
        assert!(page.contains("/users/password/new"), "the sign-in page links the reset form");
        let browser = app.new_browser();
        let token = app.csrf_token(&browser, "/users/sign_in").await;
        let mut form = vec![("authenticity_token", token.as_str())];
        form.extend(fields("mallory", "mallory@example.com"));
        let res = browser.post(app.url("/users/sign_up")).form(&form).send().await.unwrap();
        assert_eq!(res.status(), 404);
        assert_eq!(user_json(&app, "mallory").await, Value::Null);
        drop(sink);
    }

    async fn open_sign_up_creates_an_active_unconfirmed_account(app, sink) ["DOORWARD_SIGNUP" = "open"] {
        let browser = app.new_browser();
        assert!(app.get("/users/sign_in").await.text().await.unwrap().contains("/users/sign_up"));
        let (status, body) = sign_up(&app, &browser, &fields("newbie", "newbie@example.com")).await;
        assert_eq!(status, 201, "{body}");
        let user = user_json(&app, "newbie").await;
        assert_eq!(user["state"], "active");
        assert_eq!(user["confirmed_at"], Value::Null);
        let mail = sink.wait_for("newbie@example.com", MAIL_WAIT).await;
        let link = link_to(&mail, "/users/confirmation?confirmation_token=");
        // Soft confirmation: signing in works before the link is followed.
        assert_eq!(app.sign_in_with(&app.new_browser(), "newbie", "a-long-password-1").await.status(), 303);
        assert_eq!(reqwest::get(&link).await.unwrap().status(), 200);
        assert!(user_json(&app, "newbie").await["confirmed_at"].is_string());
        let signed_up = audit_actions(&app, "user_signed_up").await;
        assert_eq!(signed_up.len(), 1);
        assert_eq!(signed_up[0]["target_details"], "newbie");

        // GitLab's field names work too.
        let token = app.csrf_token(&browser, "/users/sign_up").await;
        let res = browser.post(app.url("/users")).form(&[
            ("authenticity_token", token.as_str()),
            ("new_user[username]", "gitlabform"),
            ("new_user[name]", "Form"),
            ("new_user[email]", "gitlabform@example.com"),
            ("new_user[password]", "a-long-password-1"),
        ]).send().await.unwrap();
        assert_eq!(res.status(), 201);
    }

    async fn taken_names_and_addresses_tell_nobody_who_is_registered(app, sink) ["DOORWARD_SIGNUP" = "open"] {
        let browser = app.new_browser();
        let made = sign_up(&app, &browser, &fields("first", "first@example.com")).await;
        assert_eq!(made.0, 201);
        sink.wait_for("first@example.com", MAIL_WAIT).await;
        // A taken username, a taken address: the very page of a sign-up that worked.
        let taken_name = sign_up(&app, &browser, &fields("First", "other@example.com")).await;
        let taken_address = sign_up(&app, &browser, &fields("second", "FIRST@example.com")).await;
        assert_eq!(taken_name, made);
        assert_eq!(taken_address, made);
        assert_eq!(user_json(&app, "second").await, Value::Null);
        assert_eq!(user_json(&app, "First").await["email"], "first@example.com", "the first account is untouched");
        assert_eq!(app.state.store.count_users().await.unwrap(), 2, "root and first only");
        // Each address given learns by mail why nothing was made; no link in either.
        let name_mail = sink.wait_for("other@example.com", MAIL_WAIT).await;
        assert!(name_mail.text().contains("username \"First\" is already taken"), "{}", name_mail.text());
        let address_mail = sink.wait_for("first@example.com", MAIL_WAIT).await;
        assert!(address_mail.text().contains("already has an account"), "{}", address_mail.text());
        assert!(name_mail.links().is_empty() && address_mail.links().is_empty());
    }

    async fn bad_input_is_refused_and_escaped(app, sink) ["DOORWARD_SIGNUP" = "open", "DOORWARD_SIGNUP_DOMAINS" = "example.com"] {
        let browser = app.new_browser();
        let (status, body) = sign_up(&app, &browser, &[("username", "x"), ("name", "<script>alert(1)</script>"), ("email", "x@example.com"), ("password", "short")]).await;
        assert_eq!(status, 422);
        assert!(!body.contains("<script>alert(1)</script>") && body.contains("&lt;script&gt;"), "escaped");
        let (status, body) = sign_up(&app, &browser, &fields("outsider", "outsider@elsewhere.test")).await;
        assert_eq!(status, 422);
        assert!(body.contains("domain"), "{body}");
        let (status, _) = sign_up(&app, &browser, &[("username", "nul"), ("name", "a\u{0}b"), ("email", "nul@example.com"), ("password", "a-long-password-1")]).await;
        assert!(status.is_client_error(), "{status}");
        let token = app.csrf_token(&browser, "/users/sign_up").await;
        let res = browser.post(app.url("/users/sign_up")).form(&[("authenticity_token", token.as_str()), ("username", "a"), ("username", "b")]).send().await.unwrap();
        assert!(res.status().is_client_error(), "repeated field");
        let res = browser.post(app.url("/users/sign_up")).form(&[("authenticity_token", "forged"), ("username", "forged"), ("name", "F"), ("email", "forged@example.com"), ("password", "a-long-password-1")]).send().await.unwrap();
        assert!(res.status().is_client_error());
        for name in ["outsider", "nul", "forged", "x"] {
            assert_eq!(user_json(&app, name).await, Value::Null, "{name}");
        }
        drop(sink);
    }

    async fn approval_keeps_new_accounts_out_until_approved(app, sink) ["DOORWARD_SIGNUP" = "approval"] {
        let browser = app.new_browser();
        let (status, body) = sign_up(&app, &browser, &fields("waiting", "waiting@example.com")).await;
        assert_eq!(status, 201, "{body}");
        assert!(body.contains("approval"));
        let user = user_json(&app, "waiting").await;
        assert_eq!(user["state"], "blocked_pending_approval");

        // Refused sign-in: the form again, with the message; no session.
        let res = app.sign_in_with(&app.new_browser(), "waiting", "a-long-password-1").await;
        assert_eq!(res.status(), 403);
        let page = res.text().await.unwrap();
        assert!(page.contains("pending approval") && page.contains("name=\"password\""), "{page}");
        let client = oauth::register(&app, oauth::AppSpec::default()).await;
        let res = oauth::token_request(&app, &[("grant_type", "password"), ("username", "waiting"), ("password", "a-long-password-1")], Some((&client.client_id, &client.secret))).await;
        assert_eq!(res.status(), 400);
        assert_eq!(res.json::<Value>().await.unwrap()["error"], "invalid_grant");

        // An administrator approves (GitLab's API); the user gets a mail of its own.
        let confirmation = sink.wait_for("waiting@example.com", MAIL_WAIT).await;
        assert_eq!(confirmation.subject(), "Confirmation instructions");
        let admin = app.token_for("root", "api").await;
        let res = reqwest::Client::new()
            .post(app.url(&format!("/api/v4/users/{}/approve", user["id"])))
            .header("PRIVATE-TOKEN", admin)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201);
        let approved = sink.wait_for("waiting@example.com", MAIL_WAIT).await;
        assert_ne!(approved.subject(), "Confirmation instructions");
        assert!(approved.links().iter().all(|l| !l.contains("token")), "no confirmation or reset link");
        assert_eq!(app.sign_in_with(&app.new_browser(), "waiting", "a-long-password-1").await.status(), 303);
        let failed = audit_actions(&app, "sign_in_failed").await;
        assert!(failed.iter().any(|d| d["target_details"] == "waiting"));
    }
}
