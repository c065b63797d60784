//! "Forgot your password?": one answer for every login, a single-use link that a newer
//! request or a password change supersedes, and a reset that ends every session.

use reqwest::StatusCode;
use serde_json::json;

use super::*;
use crate::with_mail;

/// Asks for a reset of `login` from a fresh page; returns the status and the body without
/// its CSRF token.
async fn request_reset(
    app: &TestApp,
    browser: &reqwest::Client,
    login: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, String) {
    let token = app.csrf_token(browser, "/users/password/new").await;
    let mut req = browser
        .post(app.url("/users/password"))
        .form(&[("authenticity_token", token.as_str()), ("login", login)]);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let res = req.send().await.unwrap();
    let status = res.status();
    (status, res.text().await.unwrap().replace(&token, "TOKEN"))
}

/// Opens the link's form and posts a new password; returns the POST's status.
async fn follow_reset(app: &TestApp, link: &str, password: &str) -> StatusCode {
    let browser = app.new_browser();
    let page = browser.get(link).send().await.unwrap();
    if page.status() != 200 {
        return page.status();
    }
    let html = page.text().await.unwrap();
    let csrf = crate::support::csrf_from(&html);
    let token = link.split("reset_password_token=").nth(1).unwrap();
    browser
        .post(app.url("/users/password/edit"))
        .form(&[
            ("authenticity_token", csrf.as_str()),
            ("reset_password_token", token),
            ("password", password),
            ("password_confirmation", password),
        ])
        .send()
        .await
        .unwrap()
        .status()
}

with_mail! {
    async fn the_answer_is_the_same_and_the_link_works_once(app, sink) [] {
        api_create_user(&app, "ada", json!({"skip_confirmation": true})).await;
        let browser = app.new_browser();
        let known = request_reset(&app, &browser, "ada", &[]).await;
        let unknown = request_reset(&app, &browser, "nobody-at-all", &[]).await;
        assert_eq!(known.0, 200);
        assert_eq!(known, unknown, "one answer for known and unknown accounts");
        let mail = sink.wait_for("ada@example.com", MAIL_WAIT).await;
        assert_eq!(mail.subject(), "Reset password instructions");
        assert!(mail.text().contains("127.0.0.1"), "names the requesting address: {}", mail.text());
        let link = link_to(&mail, "/users/password/edit?reset_password_token=");
        assert!(link.starts_with(&app.url("/users/password/edit")));

        // A session that exists before the reset ends with it.
        let old = app.new_browser();
        assert_eq!(app.sign_in_with(&old, "ada", "ada-password-1").await.status(), 303);
        assert_eq!(follow_reset(&app, &link, "brand-new-password-1").await, 200);
        let res = old.get(app.url("/-/user_settings/profile")).send().await.unwrap();
        assert_eq!(res.status(), 303, "the old session is over");
        assert_eq!(app.sign_in_with(&app.new_browser(), "ada", "ada-password-1").await.status(), 401);
        assert_eq!(app.sign_in_with(&app.new_browser(), "ada", "brand-new-password-1").await.status(), 303);
        // Used: the link does nothing now.
        assert_eq!(follow_reset(&app, &link, "third-password-123").await, 404);
        assert_eq!(app.sign_in_with(&app.new_browser(), "ada", "brand-new-password-1").await.status(), 303);
        let changed = sink.wait_for("ada@example.com", MAIL_WAIT).await;
        assert_eq!(changed.subject(), "Password changed");
        assert_eq!(audit_actions(&app, "password_reset").await.len(), 1);
    }

    async fn newer_requests_and_password_changes_supersede_links(app, sink) [] {
        api_create_user(&app, "bea", json!({"skip_confirmation": true})).await;
        let browser = app.new_browser();
        // Two requests a minute for one account pass (the minimum).
        request_reset(&app, &browser, "bea", &[]).await;
        let first = link_to(&sink.wait_for("bea@example.com", MAIL_WAIT).await, "/users/password/edit");
        request_reset(&app, &browser, "bea@example.com", &[]).await;
        let second = link_to(&sink.wait_for("bea@example.com", MAIL_WAIT).await, "/users/password/edit");
        assert_eq!(follow_reset(&app, &first, "superseded-password-1").await, 404);
        // A password change through the settings spends the newest link too.
        let session = app.new_browser();
        assert_eq!(app.sign_in_with(&session, "bea", "bea-password-1").await.status(), 303);
        let csrf = app.csrf_token(&session, "/-/user_settings/password/edit").await;
        let res = session
            .post(app.url("/-/user_settings/password"))
            .form(&[("authenticity_token", csrf.as_str()), ("current_password", "bea-password-1"), ("new_password", "changed-password-1"), ("password_confirmation", "changed-password-1"), ("from", "password")])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(follow_reset(&app, &second, "too-late-password-1").await, 404);
        assert_eq!(app.sign_in_with(&app.new_browser(), "bea", "changed-password-1").await.status(), 303);
    }

    async fn forged_hosts_appear_nowhere(app, sink) [] {
        api_create_user(&app, "cyd", json!({"skip_confirmation": true})).await;
        let browser = app.new_browser();
        let (status, _) = request_reset(&app, &browser, "cyd", &[
            ("X-Forwarded-Host", "evil.example"),
            ("Forwarded", "host=evil.example;proto=https"),
            ("X-Forwarded-For", "203.0.113.9"),
            ("X-Forwarded-Proto", "https"),
        ]).await;
        assert_eq!(status, 200);
        let mail = sink.wait_for("cyd@example.com", MAIL_WAIT).await;
        assert!(!mail.raw.contains("evil.example"), "{}", mail.raw);
        assert!(!mail.raw.contains("203.0.113.9"), "an untrusted peer's forwarded address is not believed");
        let link = link_to(&mail, "/users/password/edit");
        assert!(link.starts_with(&app.url("/")), "{link}");
    }

    async fn bad_input_changes_nothing(app, sink) [] {
        api_create_user(&app, "dee", json!({"skip_confirmation": true})).await;
        let browser = app.new_browser();
        request_reset(&app, &browser, "dee", &[]).await;
        let link = link_to(&sink.wait_for("dee@example.com", MAIL_WAIT).await, "/users/password/edit");
        let token = link.split("reset_password_token=").nth(1).unwrap().to_string();
        let page = browser.get(&link).send().await.unwrap().text().await.unwrap();
        let csrf = crate::support::csrf_from(&page);
        // Mismatched confirmation, weak password, forged CSRF: refused, the link still works.
        for (csrf, password, confirmation) in [(csrf.as_str(), "one-password-1", "another-password-1"), (csrf.as_str(), "short", "short"), ("forged", "good-password-123", "good-password-123")] {
            let res = browser
                .post(app.url("/users/password/edit"))
                .form(&[("authenticity_token", csrf), ("reset_password_token", token.as_str()), ("password", password), ("password_confirmation", confirmation)])
                .send()
                .await
                .unwrap();
            assert!(res.status().is_client_error(), "{password}: {}", res.status());
        }
        for bad in ["", "nope", &"z".repeat(4000)] {
            let res = browser.get(app.url(&format!("/users/password/edit?reset_password_token={bad}"))).send().await.unwrap();
            assert_eq!(res.status(), 404, "{bad:?}");
        }
        assert_eq!(follow_reset(&app, &link, "finally-valid-password-1").await, 200);
        let _ = sink;
    }
}
