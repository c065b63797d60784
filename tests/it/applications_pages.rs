//! The applications settings pages: register, show, edit, renew, delete; the secret shown
//! once; other users' applications out of reach; CSRF and escaping.

use doorward::domain::application::validate_settings;
use doorward::domain::secret;

use crate::both_backends;
use crate::support::{ROOT_PASSWORD, TestApp, csrf_from, location};

const LIST: &str = "/-/user_settings/applications";

/// A signed-in browser for a new (non-admin) user; returns it with the user's id.
async fn signed_in_user(app: &TestApp, username: &str) -> (reqwest::Client, i64) {
    let user = app
        .create_user(username, &format!("{username}-password"))
        .await;
    let browser = app.new_browser();
    let res = app
        .sign_in_with(&browser, username, &format!("{username}-password"))
        .await;
    assert_eq!(res.status(), 303);
    (browser, user["id"].as_i64().unwrap())
}

async fn page(app: &TestApp, browser: &reqwest::Client, path: &str) -> (u16, String) {
    let res = browser.get(app.url(path)).send().await.unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

async fn post(
    app: &TestApp,
    browser: &reqwest::Client,
    path: &str,
    form: &[(&str, &str)],
) -> reqwest::Response {
    browser.post(app.url(path)).form(form).send().await.unwrap()
}

/// The text of the element with `id` in `html` (up to the next `<`).
fn element_text(html: &str, id: &str) -> Option<String> {
    let marker = format!("id=\"{id}\"");
    let start = html.find(&marker)? + marker.len();
    let rest = &html[start..];
    let open = rest.find('>')? + 1;
    Some(
        rest[open..]
            .split('<')
            .next()
            .unwrap_or_default()
            .to_string(),
    )
}

/// Registers an application for `owner_id` directly, as the page would.
async fn registered(app: &TestApp, owner_id: Option<i64>, name: &str) -> i64 {
    let settings = validate_settings(
        name,
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
        owner_id,
        &crate::support::test_audit(),
    )
    .await
    .unwrap();
    created.id
}

both_backends! {
    async fn users_register_applications_and_see_the_secret_once(app: TestApp) {
        let (alice, alice_id) = signed_in_user(&app, "alice").await;
        let (status, html) = page(&app, &alice, LIST).await;
        assert_eq!(status, 200);
        assert!(html.contains("Add new application") && html.contains("Use one line per URI"), "{html}");
        assert!(html.contains("id=\"no-applications\""));
        assert!(html.contains("name=\"scopes[]\" value=\"openid\""));
        let openid = doorward::domain::scope::find("openid").unwrap();
        assert!(html.contains(openid.description), "each scope shows its description");
        assert!(html.contains("name=\"confidential\" value=\"1\" checked"), "confidential by default");
        assert!(!html.contains("name=\"trusted\""), "only administrators may mark an application trusted");
        assert!(!html.contains("Instance-wide applications"));
        assert!(html.contains("href=\"/-/user_settings/applications\""), "the nav links here");
        let (_, profile) = page(&app, &alice, "/-/user_settings/profile").await;
        assert!(profile.contains("id=\"profile-applications-link\""));

        let token = csrf_from(&html);
        let res = post(&app, &alice, LIST, &[
            ("authenticity_token", token.as_str()),
            ("name", "Wiki"),
            ("redirect_uri", "https://wiki.example.com/cb\r\nhttp://127.0.0.1/cb"),
            ("confidential", "1"),
            ("scopes[]", "read_user"),
            ("scopes[]", "openid"),
        ])
        .await;
        assert_eq!(res.status(), 200);
        assert_eq!(res.headers()["cache-control"], "no-store");
        let shown = res.text().await.unwrap();
        assert!(shown.contains("it will not be shown again"), "{shown}");
        let client_secret = element_text(&shown, "application-secret").expect("the secret is shown");
        assert!(client_secret.starts_with("dwoas-") && client_secret.len() == 49, "{client_secret}");
        let uid = element_text(&shown, "application-id").unwrap();
        assert_eq!(uid.len(), 64);

        let stored = app.state.store.application_by_uid(&uid).await.unwrap().unwrap();
        assert_eq!(stored.owner_id, Some(alice_id));
        assert_eq!(stored.name, "Wiki");
        assert_eq!(stored.redirect_uris(), ["https://wiki.example.com/cb", "http://127.0.0.1/cb"]);
        assert_eq!(stored.scopes.to_string(), "read_user openid");
        assert!(stored.confidential && !stored.trusted && !stored.require_pkce);
        assert_eq!(stored.secret_hash, secret::hash(&client_secret).to_vec());

        // Never again: neither the list nor the application's page shows it.
        let (_, list) = page(&app, &alice, LIST).await;
        assert!(list.contains("Wiki") && list.contains(&uid) && list.contains("read_user openid"));
        assert!(list.contains(&format!("href=\"/-/user_settings/applications/{}\"", stored.id)));
        assert!(!list.contains("dwoas-"));
        let (status, show) = page(&app, &alice, &format!("{LIST}/{}", stored.id)).await;
        assert_eq!(status, 200);
        assert!(show.contains(&uid) && show.contains("Renew secret") && show.contains("Delete"));
        assert!(!show.contains("dwoas-") && !show.contains("application-secret"));

        // `scopes` repeated, as a hand-written client sends it, works the same.
        let res = post(&app, &alice, LIST, &[
            ("authenticity_token", token.as_str()),
            ("name", "Script"),
            ("redirect_uri", "com.example.script:/cb"),
            ("scopes", "api"),
            ("scopes", "read_user"),
        ])
        .await;
        assert_eq!(res.status(), 200);
        let apps = app.state.store.applications_of_owner(Some(alice_id)).await.unwrap();
        assert_eq!(apps.len(), 2);
        assert_eq!(apps[1].scopes.to_string(), "api read_user");
        assert!(!apps[1].confidential, "an unticked checkbox is false");
    }

    async fn a_private_key_jwt_application_has_keys_and_no_secret(app: TestApp) {
        let (alice, _) = signed_in_user(&app, "alice").await;
        let (_, html) = page(&app, &alice, LIST).await;
        assert!(html.contains("name=\"token_endpoint_auth_method\"") && html.contains("name=\"jwks\""));
        let token = csrf_from(&html);
        let key = crate::support::dpop::DpopKey::generate();
        let jwks = crate::support::client_jwt::jwks(&key, "k1");
        let form = |jwks: &str| vec![
            ("authenticity_token", token.clone()),
            ("name", "Signed".to_string()),
            ("redirect_uri", "https://signed.example/cb".to_string()),
            ("scopes[]", "api".to_string()),
            ("token_endpoint_auth_method", "private_key_jwt".to_string()),
            ("jwks", jwks.to_string()),
            ("jwks_uri", String::new()),
        ];
        // Without keys, or with a private one, the form comes back with the reason.
        let pairs = form("");
        let res = alice.post(app.url(LIST)).form(&pairs).send().await.unwrap();
        assert_eq!(res.status(), 422);
        assert!(res.text().await.unwrap().contains("jwks"));
        let mut private = key.jwk();
        private["d"] = serde_json::json!("AAAA");
        let pairs = form(&serde_json::json!({"keys": [private]}).to_string());
        assert_eq!(alice.post(app.url(LIST)).form(&pairs).send().await.unwrap().status(), 422);
        // A member named twice: two readers could disagree on the key.
        let twice = jwks.replacen("\"kid\":\"k1\"", "\"kid\":\"k1\",\"kid\":\"k2\"", 1);
        assert_ne!(twice, jwks);
        assert_eq!(alice.post(app.url(LIST)).form(&form(&twice)).send().await.unwrap().status(), 422);
        let pairs = form(&jwks);
        let res = alice.post(app.url(LIST)).form(&pairs).send().await.unwrap();
        assert_eq!(res.status(), 200);
        let shown = res.text().await.unwrap();
        assert!(element_text(&shown, "application-secret").is_none(), "no secret is shown");
        assert_eq!(element_text(&shown, "token-endpoint-auth-method").as_deref(), Some("private_key_jwt"));
        assert!(!shown.contains("Renew secret"));
        let uid = element_text(&shown, "application-id").unwrap();
        let stored = app.state.store.application_by_uid(&uid).await.unwrap().unwrap();
        assert!(stored.uses_private_key_jwt() && stored.confidential);
        assert!(stored.jwks.as_deref().unwrap().contains("\"kid\":\"k1\""));
        // Renewing its secret is refused.
        let res = post(&app, &alice, &format!("{LIST}/{}/renew_secret", stored.id), &[("authenticity_token", token.as_str())]).await;
        assert_eq!(res.status(), 400);

        // An application that had a secret, moved to keys and back, does not take its old
        // secret again.
        let res = post(&app, &alice, LIST, &[("authenticity_token", token.as_str()), ("name", "Was secret"),
            ("redirect_uri", "https://was.example/cb"), ("confidential", "1"), ("scopes[]", "api")]).await;
        let shown = res.text().await.unwrap();
        let old_secret = element_text(&shown, "application-secret").unwrap();
        let was = app.state.store.application_by_uid(&element_text(&shown, "application-id").unwrap()).await.unwrap().unwrap();
        let edit = |method: &str, jwks: &str| vec![
            ("authenticity_token", token.clone()), ("name", "Was secret".to_string()),
            ("redirect_uri", "https://was.example/cb".to_string()), ("confidential", "1".to_string()),
            ("scopes[]", "api".to_string()), ("token_endpoint_auth_method", method.to_string()),
            ("jwks", jwks.to_string()), ("jwks_uri", String::new()),
        ];
        let path = app.url(&format!("{LIST}/{}", was.id));
        assert_eq!(alice.post(&path).form(&edit("private_key_jwt", &jwks)).send().await.unwrap().status(), 200);
        assert_eq!(alice.post(&path).form(&edit("", "")).send().await.unwrap().status(), 200);
        let back = app.state.store.application_by_id(was.id).await.unwrap().unwrap();
        assert!(!back.uses_private_key_jwt());
        assert_ne!(back.secret_hash, secret::hash(&old_secret).to_vec(), "the old secret stays dead");
    }

    async fn the_page_sets_require_pushed_authorization_requests(app: TestApp) {
        let (alice, _) = signed_in_user(&app, "alice").await;
        let (_, html) = page(&app, &alice, LIST).await;
        assert!(html.contains("name=\"require_pushed_authorization_requests\""));
        let token = csrf_from(&html);
        let form = |par: bool| {
            let mut form = vec![("authenticity_token", token.as_str()), ("name", "Pushed"),
                ("redirect_uri", "https://pushed.example/cb"), ("confidential", "1"), ("scopes[]", "api")];
            if par {
                form.push(("require_pushed_authorization_requests", "1"));
            }
            form
        };
        let res = post(&app, &alice, LIST, &form(true)).await;
        assert_eq!(res.status(), 200);
        let uid = element_text(&res.text().await.unwrap(), "application-id").unwrap();
        let stored = app.state.store.application_by_uid(&uid).await.unwrap().unwrap();
        assert!(stored.require_par);
        let (_, edit) = page(&app, &alice, &format!("{LIST}/{}", stored.id)).await;
        assert!(edit.contains("name=\"require_pushed_authorization_requests\" value=\"1\" checked"), "{edit}");
        // Unticked on edit, it is off again.
        let res = post(&app, &alice, &format!("{LIST}/{}", stored.id), &form(false)).await;
        assert_eq!(res.status(), 200);
        assert!(!app.state.store.application_by_id(stored.id).await.unwrap().unwrap().require_par);
    }

    async fn owners_edit_renew_and_delete_their_applications(app: TestApp) {
        let (alice, alice_id) = signed_in_user(&app, "alice").await;
        let id = registered(&app, Some(alice_id), "Wiki").await;
        let path = format!("{LIST}/{id}");
        let (_, html) = page(&app, &alice, &path).await;
        assert!(html.contains("value=\"Wiki\""), "the edit form holds the current values");
        assert!(html.contains("name=\"scopes[]\" value=\"read_user\" checked"));
        let token = csrf_from(&html);

        let res = post(&app, &alice, &path, &[
            ("authenticity_token", token.as_str()),
            ("name", "Wiki 2"),
            ("redirect_uri", "https://wiki2.example.com/cb"),
            ("require_pkce", "1"),
            ("scopes[]", "api"),
            ("scopes[]", "email"),
        ])
        .await;
        assert_eq!(res.status(), 200);
        assert!(res.text().await.unwrap().contains("The application was updated."));
        let stored = app.state.store.application_by_id(id).await.unwrap().unwrap();
        assert_eq!(stored.name, "Wiki 2");
        assert_eq!(stored.redirect_uri, "https://wiki2.example.com/cb");
        assert_eq!(stored.scopes.to_string(), "api email");
        assert!(!stored.confidential && stored.require_pkce && !stored.trusted);

        // A failed edit keeps what was typed and changes nothing.
        let res = post(&app, &alice, &path, &[
            ("authenticity_token", token.as_str()),
            ("name", "Wiki 3"),
            ("redirect_uri", "http://wiki3.example.com/cb"),
            ("scopes[]", "api"),
        ])
        .await;
        assert_eq!(res.status(), 422);
        let html = res.text().await.unwrap();
        assert!(html.contains("value=\"Wiki 3\"") && html.contains("must use https"), "{html}");
        assert_eq!(app.state.store.application_by_id(id).await.unwrap().unwrap().name, "Wiki 2");

        let res = post(&app, &alice, &format!("{path}/renew_secret"), &[("authenticity_token", token.as_str())]).await;
        assert_eq!(res.status(), 200);
        assert_eq!(res.headers()["cache-control"], "no-store");
        let html = res.text().await.unwrap();
        let new_secret = element_text(&html, "application-secret").expect("the new secret is shown");
        assert!(new_secret.starts_with("dwoas-"));
        let renewed = app.state.store.application_by_id(id).await.unwrap().unwrap();
        assert_ne!(renewed.secret_hash, stored.secret_hash);
        assert_eq!(renewed.secret_hash, secret::hash(&new_secret).to_vec());
        assert_eq!(renewed.uid, stored.uid);

        let res = post(&app, &alice, &format!("{path}/delete"), &[("authenticity_token", token.as_str())]).await;
        assert_eq!(res.status(), 303);
        assert_eq!(location(&res), format!("{LIST}?notice=deleted"));
        let (_, list) = page(&app, &alice, &location(&res)).await;
        assert!(list.contains("The application was deleted.") && list.contains("id=\"no-applications\""));
        assert!(app.state.store.application_by_id(id).await.unwrap().is_none());
        assert_eq!(page(&app, &alice, &path).await.0, 404);
        // The notice comes from a fixed list, never from the URL.
        let (_, list) = page(&app, &alice, &format!("{LIST}?notice=%3Cb%3Ehi")).await;
        assert!(!list.contains("<b>hi") && !list.contains("&lt;b&gt;hi"));
    }

    async fn other_users_get_404_for_someone_elses_application(app: TestApp) {
        let (_, alice_id) = signed_in_user(&app, "alice").await;
        let (bob, _) = signed_in_user(&app, "bob").await;
        let id = registered(&app, Some(alice_id), "Alice's app").await;
        let instance = registered(&app, None, "Instance app").await;
        let before = app.state.store.application_by_id(id).await.unwrap().unwrap();
        let (_, html) = page(&app, &bob, LIST).await;
        assert!(!html.contains("Alice&#x27;s app") && !html.contains("Instance app"));
        let token = csrf_from(&html);

        for target in [id, instance] {
            let path = format!("{LIST}/{target}");
            assert_eq!(page(&app, &bob, &path).await.0, 404, "{path}");
            let res = post(&app, &bob, &path, &[("authenticity_token", token.as_str()), ("name", "Mine"), ("redirect_uri", "https://bob.example/cb"), ("scopes[]", "api")]).await;
            assert_eq!(res.status(), 404);
            for action in ["renew_secret", "delete"] {
                let res = post(&app, &bob, &format!("{path}/{action}"), &[("authenticity_token", token.as_str())]).await;
                assert_eq!(res.status(), 404, "{action}");
            }
        }
        assert_eq!(app.state.store.application_by_id(id).await.unwrap().unwrap(), before, "nothing changed");
        assert!(app.state.store.application_by_id(instance).await.unwrap().is_some());
        for missing in ["999999", "abc", "-1"] {
            assert_eq!(page(&app, &bob, &format!("{LIST}/{missing}")).await.0, 404, "{missing}");
        }

        // Administrators see the instance-wide list and may open any application.
        app.sign_in_root().await;
        let (_, html) = page(&app, &app.client, LIST).await;
        assert!(html.contains("Instance-wide applications") && html.contains("Instance app"));
        assert!(html.contains(&format!("href=\"/-/user_settings/applications/{instance}\"")));
        assert!(html.contains("name=\"trusted\""), "administrators may mark applications trusted");
        assert!(html.contains("use only for applications you run"));
        assert_eq!(page(&app, &app.client, &format!("{LIST}/{instance}")).await.0, 200);
        assert_eq!(page(&app, &app.client, &format!("{LIST}/{id}")).await.0, 200);
        let token = csrf_from(&html);
        let res = post(&app, &app.client, &format!("{LIST}/{instance}"), &[
            ("authenticity_token", token.as_str()),
            ("name", "Instance app"),
            ("redirect_uri", "https://owned.example/cb"),
            ("confidential", "1"),
            ("trusted", "1"),
            ("scopes[]", "openid"),
        ])
        .await;
        assert_eq!(res.status(), 200);
        let stored = app.state.store.application_by_id(instance).await.unwrap().unwrap();
        assert!(stored.trusted && stored.owner_id.is_none());
        let res = post(&app, &app.client, &format!("{LIST}/{instance}/delete"), &[("authenticity_token", token.as_str())]).await;
        assert_eq!(res.status(), 303);
        assert!(app.state.store.application_by_id(instance).await.unwrap().is_none());
    }

    async fn forms_without_the_csrf_token_are_refused(app: TestApp) {
        let (alice, alice_id) = signed_in_user(&app, "alice").await;
        let id = registered(&app, Some(alice_id), "Wiki").await;
        let before = app.state.store.application_by_id(id).await.unwrap().unwrap();
        for token in ["", "forged"] {
            let res = post(&app, &alice, LIST, &[("authenticity_token", token), ("name", "X"), ("redirect_uri", "https://x.example/cb"), ("scopes[]", "api")]).await;
            assert_eq!(res.status(), 403, "{token:?}");
            assert!(res.text().await.unwrap().contains("Form expired"));
            let res = post(&app, &alice, &format!("{LIST}/{id}"), &[("authenticity_token", token), ("name", "X"), ("redirect_uri", "https://x.example/cb"), ("scopes[]", "api")]).await;
            assert_eq!(res.status(), 403);
            for action in ["renew_secret", "delete"] {
                let res = post(&app, &alice, &format!("{LIST}/{id}/{action}"), &[("authenticity_token", token)]).await;
                assert_eq!(res.status(), 403, "{action}");
            }
        }
        let res = post(&app, &alice, LIST, &[("name", "X"), ("redirect_uri", "https://x.example/cb"), ("scopes[]", "api")]).await;
        assert_eq!(res.status(), 403, "no token at all");
        assert_eq!(app.state.store.application_by_id(id).await.unwrap().unwrap(), before);
        assert_eq!(app.state.store.applications_of_owner(Some(alice_id)).await.unwrap().len(), 1);
    }

    async fn invalid_registrations_re_render_the_form_escaped(app: TestApp) {
        let (alice, alice_id) = signed_in_user(&app, "alice").await;
        let token = app.csrf_token(&alice, LIST).await;
        let res = post(&app, &alice, LIST, &[
            ("authenticity_token", token.as_str()),
            ("name", "<script>alert(1)</script>"),
            ("redirect_uri", "https://ok.example/cb\n\"><img src=x onerror=alert(1)>"),
            ("scopes[]", "openid"),
        ])
        .await;
        assert_eq!(res.status(), 422);
        let html = res.text().await.unwrap();
        assert!(html.contains("Name cannot contain HTML tags"), "{html}");
        assert!(html.contains("value=\"&lt;script&gt;alert(1)&lt;&#x2f;script&gt;\""), "{html}");
        assert!(!html.contains("<script>alert(1)") && !html.contains("<img src=x"), "{html}");
        assert!(html.contains("name=\"scopes[]\" value=\"openid\" checked"), "ticked scopes stay ticked");

        let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
            (vec![("name", "A"), ("redirect_uri", "http://example.com/cb"), ("scopes[]", "api")], "must use https"),
            (vec![("name", "A"), ("redirect_uri", "https://a.example/cb#x"), ("scopes[]", "api")], "cannot contain a fragment"),
            (vec![("name", "A"), ("redirect_uri", "javascript:alert(1)"), ("scopes[]", "api")], "forbidden"),
            (vec![("name", "A"), ("redirect_uri", "https://a.example/cb")], "at least one scope is required"),
            (vec![("name", "A"), ("redirect_uri", "https://a.example/cb"), ("scopes[]", "bogus")], "unknown scope: bogus"),
            (vec![("name", "A"), ("redirect_uri", "https://a.example/cb"), ("scopes[]", "api"), ("trusted", "1")], "Trusted can be set only by an administrator"),
        ];
        for (fields, words) in cases {
            let mut form = vec![("authenticity_token", token.as_str())];
            form.extend(fields);
            let res = post(&app, &alice, LIST, &form).await;
            assert_eq!(res.status(), 422, "{words}");
            let html = res.text().await.unwrap();
            assert!(html.contains(words), "{words}: {html}");
        }

        // Forms that cannot be read at all are a 400 page.
        for extra in [("owner_id", "1"), ("name", "B")] {
            let form = [("authenticity_token", token.as_str()), ("name", "A"), ("redirect_uri", "https://a.example/cb"), ("scopes[]", "api"), extra];
            assert_eq!(post(&app, &alice, LIST, &form).await.status(), 400, "{extra:?}");
        }
        let form = [("authenticity_token", token.as_str()), ("name", "A"), ("redirect_uri", "https://a.example/cb"), ("scopes[]", "api"), ("confidential", "yes please")];
        assert_eq!(post(&app, &alice, LIST, &form).await.status(), 400);
        assert!(app.state.store.applications_of_owner(Some(alice_id)).await.unwrap().is_empty(), "nothing was written");
    }

    async fn the_pages_need_a_session_and_old_paths_redirect(app: TestApp) {
        let res = app.get(LIST).await;
        assert_eq!(res.status(), 303);
        assert_eq!(location(&res), "/users/sign_in?return_to=/-/user_settings/applications");
        for old in ["/profile/applications", "/oauth/applications"] {
            let res = app.get(old).await;
            assert_eq!(res.status(), 308, "{old}");
            assert_eq!(location(&res), LIST);
        }
        let res = app.sign_in_with(&app.client, "root", ROOT_PASSWORD).await;
        assert_eq!(res.status(), 303);
        assert_eq!(app.get(LIST).await.status(), 200);
    }
}
