//! The personal access tokens settings page: create (the token shown once), list, revoke;
//! expiry rules; CSRF; other users' tokens out of reach.

use doorward::domain::clock::date;
use doorward::domain::scope::ScopeSet;
use doorward::domain::secret;
use serde_json::Value;

use crate::both_backends;
use crate::support::{ROOT_PASSWORD, TestApp, csrf_from, location};

pub const PAGE: &str = "/-/user_settings/personal_access_tokens";

/// Issues a token for `user_id` as the page and the CLI do; returns it and its id.
pub async fn issue(app: &TestApp, user_id: i64, name: &str, scopes: &str) -> (String, i64) {
    let scopes = ScopeSet::parse_non_empty(scopes).unwrap();
    let expires = app.clock.now() + 30 * 86_400;
    let (token, record) = doorward::accounts::issue_personal_access_token(
        &app.state.store,
        &app.clock,
        user_id,
        name,
        &scopes,
        Some(expires),
        &crate::support::test_audit(),
    )
    .await
    .unwrap();
    (token.into_inner(), record.id)
}

/// A signed-in browser for a new (non-admin) user; returns it with the user's id.
pub async fn signed_in_user(app: &TestApp, username: &str) -> (reqwest::Client, i64) {
    let password = format!("{username}-password");
    let user = app.create_user(username, &password).await;
    let browser = app.new_browser();
    assert_eq!(
        app.sign_in_with(&browser, username, &password)
            .await
            .status(),
        303
    );
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

/// The `value` attribute of the element with `id` in `html`.
fn input_value(html: &str, id: &str) -> Option<String> {
    let start = html.find(&format!("id=\"{id}\""))?;
    let rest = &html[start..];
    let v = rest[..rest.find('>')?].find("value=\"")? + 7;
    Some(rest[v..].split('"').next().unwrap_or_default().to_string())
}

/// The HTML of the element with `id` up to its closing `</table>`, or empty.
fn table(html: &str, id: &str) -> String {
    html.find(&format!("id=\"{id}\""))
        .map(|start| {
            html[start..]
                .split("</table>")
                .next()
                .unwrap_or_default()
                .to_string()
        })
        .unwrap_or_default()
}

/// The date `days` from the test clock's today.
fn in_days(app: &TestApp, days: i64) -> String {
    date(app.clock.now() + days * 86_400)
}

async fn api_status(app: &TestApp, token: &str) -> (u16, Value) {
    let res = reqwest::Client::new()
        .get(app.url("/api/v4/user"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.json().await.unwrap())
}

both_backends! {
    async fn users_create_tokens_see_them_once_use_and_revoke_them(app: TestApp) {
        let (alice, alice_id) = signed_in_user(&app, "alice").await;
        let (status, html) = page(&app, &alice, PAGE).await;
        assert_eq!(status, 200);
        assert_eq!(input_value(&html, "expires_at").as_deref(), Some(in_days(&app, 30).as_str()), "30 days by default");
        assert!(html.contains("type=\"date\""));
        assert!(html.contains(&format!("min=\"{}\"", in_days(&app, 1))) && html.contains(&format!("max=\"{}\"", in_days(&app, 365))));
        assert!(html.contains("name=\"scopes[]\" value=\"read_api\"") && html.contains("Read-only access to the whole API."));
        assert!(!html.contains("value=\"openid\""), "OpenID Connect scopes are for applications");
        assert!(html.contains("id=\"no-active-tokens\"") && !html.contains("id=\"inactive-tokens\""));
        assert!(html.contains(&format!("href=\"{PAGE}\"")), "the nav links here");
        assert!(page(&app, &alice, "/-/user_settings/profile").await.1.contains("id=\"profile-tokens-link\""));

        let token = csrf_from(&html);
        let expiry = in_days(&app, 10);
        let res = post(&app, &alice, PAGE, &[
            ("authenticity_token", token.as_str()),
            ("name", "laptop"),
            ("expires_at", expiry.as_str()),
            ("scopes[]", "read_user"),
            ("scopes[]", "api"),
        ])
        .await;
        assert_eq!(res.status(), 200);
        assert_eq!(res.headers()["cache-control"], "no-store");
        let shown = res.text().await.unwrap();
        assert!(shown.contains("it won't be shown again"), "{shown}");
        let pat = input_value(&shown, "new-personal-access-token").expect("the token is shown");
        assert!(pat.starts_with("dwpat-") && pat.len() == 49, "{pat}");
        let active = table(&shown, "active-tokens");
        assert!(active.contains("laptop") && active.contains("api, read_user") && active.contains(&expiry) && active.contains("Never"), "{active}");

        let stored = app.state.store.personal_access_tokens_of_user(alice_id).await.unwrap();
        assert_eq!(stored.len(), 1);
        assert_eq!((stored[0].name.as_str(), stored[0].scopes.to_string().as_str()), ("laptop", "api read_user"));
        assert_eq!(stored[0].expires_at.map(date), Some(expiry.clone()));
        let (by_hash, owner) = app.state.store.personal_access_token_by_hash(&secret::hash(&pat)).await.unwrap().expect("only the hash is stored");
        assert_eq!((by_hash.id, owner.id), (stored[0].id, alice_id));

        // It works at once, and the page then shows when it was used; never the token again.
        let (status, me) = api_status(&app, &pat).await;
        assert_eq!(status, 200);
        assert_eq!(me["username"], "alice");
        let (_, list) = page(&app, &alice, PAGE).await;
        assert!(!list.contains("dwpat-") && !list.contains("new-personal-access-token"));
        let active = table(&list, "active-tokens");
        assert!(active.contains("laptop") && !active.contains("Never") && active.contains(" UTC"), "{active}");

        let revoke = format!("{PAGE}/{}/revoke", stored[0].id);
        let res = post(&app, &alice, &revoke, &[("authenticity_token", token.as_str())]).await;
        assert_eq!(res.status(), 303);
        assert_eq!(location(&res), format!("{PAGE}?notice=revoked"));
        let (_, list) = page(&app, &alice, &location(&res)).await;
        assert!(list.contains("The token was revoked.") && list.contains("id=\"no-active-tokens\""));
        let inactive = table(&list, "inactive-tokens");
        assert!(inactive.contains("laptop") && inactive.contains("Revoked"), "{inactive}");
        let (status, body) = api_status(&app, &pat).await;
        assert_eq!(status, 401);
        assert_eq!(body["error_description"], "Token was revoked. You have to re-authorize from the user.");
        // The notice comes from a fixed list, never from the URL.
        let (_, list) = page(&app, &alice, &format!("{PAGE}?notice=%3Cb%3Ehi")).await;
        assert!(!list.contains("<b>hi") && !list.contains("&lt;b&gt;hi"));
    }

    async fn expired_tokens_are_listed_as_inactive(app: TestApp) {
        let (alice, alice_id) = signed_in_user(&app, "alice").await;
        let token = app.csrf_token(&alice, PAGE).await;
        let tomorrow = in_days(&app, 1);
        let res = post(&app, &alice, PAGE, &[("authenticity_token", token.as_str()), ("name", "short"), ("expires_at", tomorrow.as_str()), ("scopes[]", "read_api")]).await;
        assert_eq!(res.status(), 200);
        let pat = input_value(&res.text().await.unwrap(), "new-personal-access-token").unwrap();
        app.clock.advance(2 * 86_400);
        let (_, list) = page(&app, &alice, PAGE).await;
        assert!(list.contains("id=\"no-active-tokens\""));
        assert!(table(&list, "inactive-tokens").contains(&format!("Expired {tomorrow}")));
        assert_eq!(api_status(&app, &pat).await.0, 401);
        assert_eq!(app.state.store.personal_access_tokens_of_user(alice_id).await.unwrap().len(), 1);
    }

    async fn expiry_dates_names_and_scopes_are_validated(app: TestApp) {
        let (alice, alice_id) = signed_in_user(&app, "alice").await;
        let token = app.csrf_token(&alice, PAGE).await;
        let (today, past, too_far, last) = (in_days(&app, 0), in_days(&app, -3), in_days(&app, 366), in_days(&app, 365));
        let cases: Vec<(Vec<(&str, &str)>, String)> = vec![
            (vec![("name", "a"), ("expires_at", past.as_str()), ("scopes[]", "api")], "Expires at must be after today".into()),
            (vec![("name", "a"), ("expires_at", today.as_str()), ("scopes[]", "api")], "Expires at must be after today".into()),
            (vec![("name", "a"), ("expires_at", too_far.as_str()), ("scopes[]", "api")], format!("Expires at must be at most 365 days from today ({last} or earlier)")),
            (vec![("name", "a"), ("expires_at", ""), ("scopes[]", "api")], "Expires at can&#x27;t be blank".into()),
            (vec![("name", "a"), ("expires_at", "next week"), ("scopes[]", "api")], "Expires at is not a date (use YYYY-MM-DD)".into()),
            (vec![("name", ""), ("expires_at", last.as_str()), ("scopes[]", "api")], "Name can&#x27;t be blank".into()),
            (vec![("name", "a"), ("expires_at", last.as_str())], "Scopes can&#x27;t be blank".into()),
            (vec![("name", "a"), ("expires_at", last.as_str()), ("scopes[]", "openid")], "Scopes openid is not available for personal access tokens".into()),
            (vec![("name", "a"), ("expires_at", last.as_str()), ("scopes[]", "api"), ("scopes[]", "bogus")], "Scopes include an unknown scope: bogus".into()),
        ];
        for (fields, words) in cases {
            let mut form = vec![("authenticity_token", token.as_str())];
            form.extend(fields);
            let res = post(&app, &alice, PAGE, &form).await;
            assert_eq!(res.status(), 422, "{words}");
            // Every dynamic page is `no-store` now (issue 10, defect 2), this one included.
            assert_eq!(res.headers()["cache-control"], "no-store");
            let html = res.text().await.unwrap();
            assert!(html.contains(&words), "{words}: {html}");
            assert!(!html.contains("dwpat-"));
        }

        // Every mistake at once; what was typed stays, escaped.
        let res = post(&app, &alice, PAGE, &[("authenticity_token", token.as_str()), ("name", "<script>alert(1)</script>"), ("expires_at", past.as_str()), ("scopes[]", "read_user")]).await;
        assert_eq!(res.status(), 422);
        let html = res.text().await.unwrap();
        assert!(html.contains("Name cannot contain HTML tags") && html.contains("Expires at must be after today"), "{html}");
        assert!(html.contains("value=\"&lt;script&gt;alert(1)&lt;&#x2f;script&gt;\"") && !html.contains("<script>alert(1)"));
        assert_eq!(input_value(&html, "expires_at"), Some(past.clone()));
        assert!(html.contains("name=\"scopes[]\" value=\"read_user\" checked"), "ticked scopes stay ticked");

        // Forms that cannot be read at all are a 400 page.
        for extra in [("user_id", "1"), ("name", "twice")] {
            let form = [("authenticity_token", token.as_str()), ("name", "a"), ("expires_at", last.as_str()), ("scopes[]", "api"), extra];
            assert_eq!(post(&app, &alice, PAGE, &form).await.status(), 400, "{extra:?}");
        }
        assert!(app.state.store.personal_access_tokens_of_user(alice_id).await.unwrap().is_empty(), "nothing was written");

        // The last day of the year is accepted, and `scopes` repeated works like `scopes[]`.
        let res = post(&app, &alice, PAGE, &[("authenticity_token", token.as_str()), ("name", "yearly"), ("expires_at", last.as_str()), ("scopes", "read_api"), ("scopes", "read_user")]).await;
        assert_eq!(res.status(), 200);
        let stored = app.state.store.personal_access_tokens_of_user(alice_id).await.unwrap();
        assert_eq!(stored[0].scopes.to_string(), "read_api read_user");
        assert_eq!(stored[0].expires_at.map(date), Some(last));
    }

    async fn forms_without_the_csrf_token_are_refused(app: TestApp) {
        let (alice, alice_id) = signed_in_user(&app, "alice").await;
        let (pat, id) = issue(&app, alice_id, "ci", "api").await;
        let expiry = in_days(&app, 5);
        for token in ["", "forged"] {
            let res = post(&app, &alice, PAGE, &[("authenticity_token", token), ("name", "x"), ("expires_at", expiry.as_str()), ("scopes[]", "api")]).await;
            assert_eq!(res.status(), 403, "{token:?}");
            assert!(res.text().await.unwrap().contains("Form expired"));
            let res = post(&app, &alice, &format!("{PAGE}/{id}/revoke"), &[("authenticity_token", token)]).await;
            assert_eq!(res.status(), 403, "{token:?}");
        }
        let res = post(&app, &alice, PAGE, &[("name", "x"), ("expires_at", expiry.as_str()), ("scopes[]", "api")]).await;
        assert_eq!(res.status(), 403, "no token at all");
        assert_eq!(app.state.store.personal_access_tokens_of_user(alice_id).await.unwrap().len(), 1);
        assert_eq!(api_status(&app, &pat).await.0, 200, "still works");
    }

    async fn other_users_cannot_see_or_revoke_your_tokens(app: TestApp) {
        let (_, alice_id) = signed_in_user(&app, "alice").await;
        let (bob, _) = signed_in_user(&app, "bob").await;
        let (pat, id) = issue(&app, alice_id, "alice's secret tool", "api").await;
        let (_, html) = page(&app, &bob, PAGE).await;
        assert!(!html.contains("secret tool"));
        let token = csrf_from(&html);
        for target in [id.to_string(), "999999".into(), "abc".into(), "-1".into()] {
            let res = post(&app, &bob, &format!("{PAGE}/{target}/revoke"), &[("authenticity_token", token.as_str())]).await;
            assert_eq!(res.status(), 404, "{target}");
        }
        assert_eq!(api_status(&app, &pat).await.0, 200, "alice's token still works");
        // Administrators manage other users' tokens through the API, not this page.
        app.sign_in_root().await;
        let token = app.csrf_token(&app.client, PAGE).await;
        let res = post(&app, &app.client, &format!("{PAGE}/{id}/revoke"), &[("authenticity_token", token.as_str())]).await;
        assert_eq!(res.status(), 404);
    }

    async fn the_page_needs_a_session_and_takes_gitlabs_prefill(app: TestApp) {
        let res = app.get(PAGE).await;
        assert_eq!(res.status(), 303);
        assert_eq!(location(&res), format!("/users/sign_in?return_to={PAGE}"));
        let res = app.get("/profile/personal_access_tokens").await;
        assert_eq!(res.status(), 308);
        assert_eq!(location(&res), PAGE);
        assert_eq!(app.sign_in_with(&app.client, "root", ROOT_PASSWORD).await.status(), 303);
        let res = app.get(&format!("{PAGE}?name=glab%20%3Cx%3E&scopes=api,write_repository,bogus&description=ignored")).await;
        assert_eq!(res.status(), 200);
        let html = res.text().await.unwrap();
        assert_eq!(input_value(&html, "name").as_deref(), Some("glab &lt;x&gt;"));
        assert!(html.contains("value=\"api\" checked") && html.contains("value=\"write_repository\" checked"));
        assert!(!html.contains("value=\"read_api\" checked") && !html.contains("bogus"));
    }
}
