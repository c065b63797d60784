//! `/-/user_settings/active_sessions`: see where one is signed in, revoke one or all others.

use serde_json::json;

use super::*;
use crate::support::csrf_from;
use crate::with_mail;

with_mail! {
    async fn sessions_are_listed_and_revoked(app, sink) [] {
        api_create_user(&app, "ada", json!({"skip_confirmation": true})).await;
        let me = app.new_browser();
        let phone = app.new_browser();
        let tablet = app.new_browser();
        for b in [&me, &phone, &tablet] {
            assert_eq!(app.sign_in_with(b, "ada", "ada-password-1").await.status(), 303);
        }
        let other = app.new_browser();
        api_create_user(&app, "eve", json!({"skip_confirmation": true})).await;
        assert_eq!(app.sign_in_with(&other, "eve", "eve-password-1").await.status(), 303);

        let page = me.get(app.url("/-/user_settings/active_sessions")).send().await.unwrap().text().await.unwrap();
        assert_eq!(page.matches("class=\"session\"").count(), 3, "{page}");
        assert!(page.contains("127.0.0.1") && page.contains("This browser"));
        let ids: Vec<String> = page
            .split("/-/user_settings/active_sessions/")
            .skip(1)
            .filter_map(|s| s.split('/').next())
            .filter(|s| s.chars().all(|c| c.is_ascii_digit()))
            .map(str::to_string)
            .collect();
        assert_eq!(ids.len(), 2, "a Revoke button for each other session");
        let csrf = csrf_from(&page);

        // Eve's session ids are unknown to Ada.
        let eve_sessions = app.state.store.user_sessions(app.state.store.user_by_username("eve").await.unwrap().unwrap().id, app.clock.now()).await.unwrap();
        let res = me.post(app.url(&format!("/-/user_settings/active_sessions/{}/revoke", eve_sessions[0].id))).form(&[("authenticity_token", csrf.as_str())]).send().await.unwrap();
        assert_eq!(res.status(), 404);
        assert_eq!(other.get(app.url("/-/user_settings/profile")).send().await.unwrap().status(), 200);

        let res = me.post(app.url(&format!("/-/user_settings/active_sessions/{}/revoke", ids[0]))).form(&[("authenticity_token", csrf.as_str())]).send().await.unwrap();
        assert_eq!(res.status(), 303);
        let page = me.get(app.url(&crate::support::location(&res))).send().await.unwrap().text().await.unwrap();
        assert!(page.contains("The session has been revoked."));
        let alive = |b: &reqwest::Client| { let b = b.clone(); let url = app.url("/-/user_settings/profile"); async move { b.get(url).send().await.unwrap().status() == 200 } };
        assert_eq!([alive(&phone).await, alive(&tablet).await].iter().filter(|a| **a).count(), 1);
        let res = me.post(app.url("/-/user_settings/active_sessions/revoke_all_others")).form(&[("authenticity_token", csrf.as_str())]).send().await.unwrap();
        assert_eq!(res.status(), 303);
        assert!(!alive(&phone).await && !alive(&tablet).await);
        assert!(alive(&me).await, "this browser stays signed in");
        assert!(alive(&other).await, "another user's sessions are untouched");
        assert!(audit_actions(&app, "session_revoked").await.len() >= 2);
        // A forged token revokes nothing.
        let res = me.post(app.url("/-/user_settings/active_sessions/revoke_all_others")).form(&[("authenticity_token", "forged")]).send().await.unwrap();
        assert!(res.status().is_client_error());
        drop(sink);
    }
}
