//! Confirmation mail, `email_verified`, `confirmed_at`, `skip_confirmation` and address
//! changes that wait for the new address to be confirmed.

use serde_json::{Value, json};

use super::*;
use crate::support::ROOT_PASSWORD;
use crate::with_mail;

with_mail! {
    async fn a_new_account_is_confirmed_by_the_mailed_link_once(app, sink) [] {
        let user = api_create_user(&app, "ada", json!({})).await;
        let id = user["id"].as_i64().unwrap();
        assert_eq!(api_user(&app, id).await["confirmed_at"], Value::Null);
        let (claims, userinfo) = email_claims(&app, "ada", "ada-password-1").await;
        assert_eq!(claims["email_verified"], false);
        assert_eq!(userinfo["email_verified"], false);

        let mail = sink.wait_for("ada@example.com", MAIL_WAIT).await;
        assert_eq!(mail.subject(), "Confirmation instructions");
        assert!(mail.from().contains("noreply@doorward.test"), "{}", mail.from());
        let link = link_to(&mail, "/users/confirmation?confirmation_token=");
        assert!(link.starts_with(&app.url("/users/confirmation?confirmation_token=")), "{link}");
        assert!(mail.html_links().contains(&link), "the HTML part links the same place");

        // Confirms on GET, as GitLab's link does.
        let res = reqwest::get(&link).await.unwrap();
        assert_eq!(res.status(), 200);
        assert!(res.text().await.unwrap().contains("successfully confirmed"));
        let confirmed_at = api_user(&app, id).await["confirmed_at"].clone();
        assert!(confirmed_at.as_str().is_some_and(|t| t.ends_with('Z')), "{confirmed_at}");
        let (claims, userinfo) = email_claims(&app, "ada", "ada-password-1").await;
        assert_eq!(claims["email"], "ada@example.com");
        assert_eq!(claims["email_verified"], true);
        assert_eq!(userinfo["email_verified"], true);
        assert_eq!(audit_actions(&app, "email_confirmed").await.len(), 1);

        // Used once: the second time changes nothing and answers < 500.
        let again = reqwest::get(&link).await.unwrap();
        assert_eq!(again.status(), 404);
        assert_eq!(api_user(&app, id).await["confirmed_at"], confirmed_at);
        assert_eq!(audit_actions(&app, "email_confirmed").await.len(), 1);
        for bad in ["", "nope", &"x".repeat(5000), "%00"] {
            let res = reqwest::get(app.url(&format!("/users/confirmation?confirmation_token={bad}"))).await.unwrap();
            assert!(res.status().is_client_error(), "{bad:?}: {}", res.status());
        }
    }

    async fn skip_confirmation_confirms_at_once_and_mails_nothing(app, sink) [] {
        let user = api_create_user(&app, "bob", json!({"skip_confirmation": true})).await;
        assert!(user["confirmed_at"].is_string(), "{user}");
        let (claims, _) = email_claims(&app, "bob", "bob-password-1").await;
        assert_eq!(claims["email_verified"], true);
        // A mail to someone else proves the worker ran; none went to bob.
        api_create_user(&app, "carol", json!({})).await;
        sink.wait_for("carol@example.com", MAIL_WAIT).await;
        assert!(sink.messages().iter().all(|m| !m.to().contains("bob@")));
        // The first root counts as confirmed.
        let (claims, _) = email_claims(&app, "root", ROOT_PASSWORD).await;
        assert_eq!(claims["email_verified"], true);
    }

    async fn an_address_change_waits_for_the_new_address(app, sink) [] {
        let user = api_create_user(&app, "dora", json!({"skip_confirmation": true})).await;
        let id = user["id"].as_i64().unwrap();
        let browser = app.new_browser();
        assert_eq!(app.sign_in_with(&browser, "dora", "dora-password-1").await.status(), 303);
        let token = app.csrf_token(&browser, "/-/user_settings/profile").await;
        let res = browser
            .post(app.url("/-/user_settings/profile"))
            .form(&[("authenticity_token", token.as_str()), ("name", "Dora"), ("email", "dora@new.example")])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let page = res.text().await.unwrap();
        assert!(page.contains("dora@new.example"), "the page says where the link went");

        // The old address stays in use, confirmed, until the link is followed.
        assert_eq!(api_user(&app, id).await["email"], "dora@example.com");
        let (claims, _) = email_claims(&app, "dora", "dora-password-1").await;
        assert_eq!((claims["email"].as_str(), claims["email_verified"].as_bool()), (Some("dora@example.com"), Some(true)));

        let notice = sink.wait_for("dora@example.com", MAIL_WAIT).await;
        assert_eq!(notice.subject(), "Email changed");
        assert!(notice.text().contains("dora@new.example"));
        assert!(notice.links().is_empty() && notice.html_links().is_empty(), "no link to the old address: {}", notice.text());

        let mail = sink.wait_for("dora@new.example", MAIL_WAIT).await;
        let link = link_to(&mail, "/users/confirmation?confirmation_token=");
        assert_eq!(reqwest::get(&link).await.unwrap().status(), 200);
        let after = api_user(&app, id).await;
        assert_eq!(after["email"], "dora@new.example");
        let (claims, userinfo) = email_claims(&app, "dora", "dora-password-1").await;
        assert_eq!((claims["email"].as_str(), claims["email_verified"].as_bool()), (Some("dora@new.example"), Some(true)));
        assert_eq!(userinfo["email"], "dora@new.example");
    }

    async fn resending_answers_the_same_for_any_address(app, sink) [] {
        api_create_user(&app, "erin", json!({})).await;
        let first = sink.wait_for("erin@example.com", MAIL_WAIT).await;
        let first_link = link_to(&first, "/users/confirmation");
        let browser = app.new_browser();
        let mut answers = Vec::new();
        for email in ["erin@example.com", "nobody@example.com"] {
            let token = app.csrf_token(&browser, "/users/confirmation/new").await;
            let res = browser
                .post(app.url("/users/confirmation"))
                .form(&[("authenticity_token", token.as_str()), ("email", email)])
                .send()
                .await
                .unwrap();
            answers.push((res.status(), res.text().await.unwrap().replace(&token, "")));
        }
        assert_eq!(answers[0].0, 200);
        assert_eq!(answers[0], answers[1], "known and unknown addresses get one answer");
        let second = sink.wait_for("erin@example.com", MAIL_WAIT).await;
        let second_link = link_to(&second, "/users/confirmation");
        // The newer link supersedes the older.
        assert_eq!(reqwest::get(&first_link).await.unwrap().status(), 404);
        assert_eq!(reqwest::get(&second_link).await.unwrap().status(), 200);
        // A forged CSRF token changes nothing and mails nothing.
        let res = browser
            .post(app.url("/users/confirmation"))
            .form(&[("authenticity_token", "forged"), ("email", "erin@example.com")])
            .send()
            .await
            .unwrap();
        assert!(res.status().is_client_error());
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(sink.messages().len(), 2, "no third mail");
    }
}
