//! Group-owned applications (GitLab: group Settings → Applications): registered and managed
//! by any Owner of the group at `/groups/<full_path>/-/settings/applications`, 403 to other
//! members and 404 to everyone else, usable for OAuth, and deleted with the group.

use serde_json::Value;

use crate::both_backends;
use crate::groups_api::Api;
use crate::support::oauth::token_request;
use crate::support::{TestApp, browser};

async fn signed_in(app: &TestApp, username: &str) -> reqwest::Client {
    let client = browser();
    let res = app
        .sign_in_with(&client, username, &format!("{username}-password-1"))
        .await;
    assert_eq!(res.status(), 303, "{username} signs in");
    client
}

fn between<'a>(html: &'a str, id: &str) -> &'a str {
    let marker = format!("id=\"{id}\"");
    let start = html.find(&marker).unwrap_or_else(|| panic!("no #{id}")) + marker.len();
    let rest = &html[start..];
    let open = rest.find('>').unwrap() + 1;
    let close = rest[open..].find('<').unwrap();
    &rest[open..open + close]
}

both_backends! {
    async fn group_owners_manage_the_groups_applications(app: TestApp) {
        for name in ["olga", "eve", "max", "nia"] {
            app.create_user(name, &format!("{name}-password-1")).await;
        }
        let olga_api = Api::of(&app, "olga", "api").await;
        let acme = olga_api.group("acme", None, "private").await["id"].as_i64().unwrap();
        let eve = app.state.store.user_by_username("eve").await.unwrap().unwrap().id;
        let max = app.state.store.user_by_username("max").await.unwrap().unwrap().id;
        assert_eq!(olga_api.add_member(acme, eve, 50).await.0, 201);
        assert_eq!(olga_api.add_member(acme, max, 40).await.0, 201);
        let base = "/groups/acme/-/settings/applications";

        let olga = signed_in(&app, "olga").await;
        let res = olga.get(app.url(base)).send().await.unwrap();
        assert_eq!(res.status(), 200);
        let token = crate::support::csrf_from(&res.text().await.unwrap());
        let res = olga
            .post(app.url(base))
            .form(&[
                ("authenticity_token", token.as_str()),
                ("name", "Grafana"),
                ("redirect_uri", "https://grafana.example/login/gitlab"),
                ("confidential", "1"),
                ("scopes[]", "openid"),
                ("scopes[]", "read_api"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(res.headers()["cache-control"], "no-store");
        let html = res.text().await.unwrap();
        let client_id = between(&html, "application-id").to_string();
        let secret = between(&html, "application-secret").to_string();
        assert!(secret.starts_with("dwoas-"), "{secret}");

        // Owned by the group: not olga's, not instance-wide.
        let stored = app.state.store.application_by_uid(&client_id).await.unwrap().unwrap();
        assert_eq!((stored.owner_id, stored.group_id), (None, Some(acme)));
        assert!(app.state.store.applications_of_owner(None).await.unwrap().is_empty());
        assert!(app.state.store.applications_of_owner(Some(1)).await.unwrap().is_empty());
        let root = Api::of(&app, "root", "api").await;
        assert_eq!(root.get("/applications").await.1, Value::Array(vec![]));

        // It works for OAuth.
        let res = token_request(&app, &[("grant_type", "client_credentials"), ("scope", "read_api")], Some((&client_id, &secret))).await;
        assert_eq!(res.status(), 200);

        // Any other Owner manages it; a Maintainer gets 403, a non-member 404.
        let eve_browser = signed_in(&app, "eve").await;
        let list = eve_browser.get(app.url(base)).send().await.unwrap().text().await.unwrap();
        assert!(list.contains("Grafana"));
        let page = format!("{base}/{}", stored.id);
        let res = eve_browser.get(app.url(&page)).send().await.unwrap();
        assert_eq!(res.status(), 200);
        let token = crate::support::csrf_from(&res.text().await.unwrap());
        let res = eve_browser
            .post(app.url(&format!("{page}/renew_secret")))
            .form(&[("authenticity_token", token.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let renewed = between(&res.text().await.unwrap(), "application-secret").to_string();
        assert_ne!(renewed, secret);
        let max_browser = signed_in(&app, "max").await;
        assert_eq!(max_browser.get(app.url(base)).send().await.unwrap().status(), 403);
        assert_eq!(max_browser.get(app.url(&page)).send().await.unwrap().status(), 403);
        let nia_browser = signed_in(&app, "nia").await;
        assert_eq!(nia_browser.get(app.url(base)).send().await.unwrap().status(), 404);
        // Nor through a user's own settings path.
        assert_eq!(nia_browser.get(app.url(&format!("/-/user_settings/applications/{}", stored.id))).send().await.unwrap().status(), 404);
        let token = app.csrf_token(&max_browser, "/dashboard/groups").await;
        let res = max_browser
            .post(app.url(&format!("{page}/delete")))
            .form(&[("authenticity_token", token.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 403);
        assert!(app.state.store.application_by_id(stored.id).await.unwrap().is_some());

        // Deleting the group deletes its applications and what they were granted.
        assert_eq!(olga_api.delete(&format!("/groups/{acme}")).await.0, 202);
        assert!(app.state.store.application_by_id(stored.id).await.unwrap().is_none());
        let res = token_request(&app, &[("grant_type", "client_credentials"), ("scope", "read_api")], Some((&client_id, &renewed))).await;
        assert_eq!(res.status(), 401);
    }
}
