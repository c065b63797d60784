//! Security notices by mail and the audit events of a user's own actions.

use serde_json::json;

use super::*;
use crate::support::csrf_from;
use crate::with_mail;

with_mail! {
    async fn password_changes_and_new_tokens_are_told_by_mail(app, sink) [] {
        api_create_user(&app, "ada", json!({"skip_confirmation": true})).await;
        let browser = app.new_browser();
        assert_eq!(app.sign_in_with(&browser, "ada", "ada-password-1").await.status(), 303);

        // GitLab's page for the password, with its field names.
        let page = browser.get(app.url("/-/user_settings/password/edit")).send().await.unwrap();
        assert_eq!(page.status(), 200);
        let csrf = csrf_from(&page.text().await.unwrap());
        let res = browser
            .post(app.url("/-/user_settings/password"))
            .form(&[("authenticity_token", csrf.as_str()), ("user[current_password]", "ada-password-1"), ("user[password]", "ada-password-2"), ("user[password_confirmation]", "ada-password-2"), ("from", "password")])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let mail = sink.wait_for("ada@example.com", MAIL_WAIT).await;
        assert_eq!(mail.subject(), "Password changed");
        assert!(!mail.raw.contains("ada-password-2"));

        let csrf = app.csrf_token(&browser, "/-/user_settings/personal_access_tokens").await;
        let expires = doorward::domain::clock::date(app.clock.now() + 10 * 86_400);
        let res = browser
            .post(app.url("/-/user_settings/personal_access_tokens"))
            .form(&[("authenticity_token", csrf.as_str()), ("name", "deploy & bot's"), ("scopes[]", "read_api"), ("expires_at", expires.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let page = res.text().await.unwrap();
        let token = page.split("dwpat-").nth(1).map(|t| t.split('"').next().unwrap_or_default().to_string()).unwrap_or_default();
        let mail = sink.wait_for("ada@example.com", MAIL_WAIT).await;
        assert_eq!(mail.subject(), "A new personal access token has been created");
        assert!(mail.text().contains("deploy & bot's"), "names the token: {}", mail.text());
        assert!(mail.html().contains("deploy &amp; bot"), "escaped in HTML");
        assert!(token.len() > 10 && !mail.raw.contains(&token), "never the token's value");

        // The audit trail of all this.
        assert_eq!(audit_actions(&app, "password_changed").await.len(), 1);
        let created = audit_actions(&app, "personal_access_token_created").await;
        assert!(created.iter().any(|d| d["token_name"] == "deploy & bot's"), "{created:?}");
        let sign_ins = audit_actions(&app, "sign_in").await;
        assert!(!sign_ins.is_empty());
        for event in sign_ins {
            let text = event.to_string().to_lowercase();
            for word in ["fail", "invalid", "wrong", "denied"] {
                assert!(!text.contains(word), "{text}");
            }
        }
        assert_eq!(app.sign_in_with(&app.new_browser(), "ada", "wrong-password").await.status(), 401);
        let failed = audit_actions(&app, "sign_in_failed").await;
        assert!(failed.iter().any(|d| d["target_details"] == "ada"));
        assert!(failed.iter().all(|d| !d.to_string().contains("wrong-password")), "never a password");
    }

    async fn turning_two_factor_off_is_told_by_mail(app, sink) [] {
        api_create_user(&app, "bo", json!({"skip_confirmation": true})).await;
        let user = app.state.store.user_by_username("bo").await.unwrap().unwrap();
        let audit = doorward::domain::audit::AuditEvent::about_user(doorward::domain::audit::Action::TwoFactorDisabled, Some(1), user.id, "bo");
        doorward::two_factor::disable(&app.state, &user, None, &audit).await.unwrap();
        let mail = sink.wait_for("bo@example.com", MAIL_WAIT).await;
        assert_eq!(mail.subject(), "Two-factor authentication disabled");
        assert_eq!(audit_actions(&app, "two_factor_disabled").await.len(), 1);
    }
}
