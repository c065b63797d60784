//! OpenID Connect and the browser session: `prompt` (none, login, consent), `max_age`,
//! `login_hint`, and RP-initiated logout with and without `id_token_hint`.

use serde_json::Value;

use crate::both_backends;
use crate::support::oauth::{
    AppSpec, Client, REDIRECT, authorize, decide, param, redirect_params, register,
    signed_in_browser, token_request,
};
use crate::support::{ROOT_PASSWORD, TestApp, csrf_from, location};

fn request<'a>(client: &'a Client, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut p = vec![
        ("client_id", client.client_id.as_str()),
        ("redirect_uri", REDIRECT),
        ("response_type", "code"),
        ("scope", "openid"),
        ("state", "st"),
    ];
    p.extend_from_slice(extra);
    p
}

/// The id_token of the code in `res` (a redirect to the client).
async fn id_token_from(app: &TestApp, client: &Client, res: &reqwest::Response) -> String {
    let code = param(&redirect_params(res), "code")
        .expect("a code")
        .to_string();
    let res = token_request(
        app,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
        ],
        Some((&client.client_id, &client.secret)),
    )
    .await;
    let tokens: Value = res.json().await.unwrap();
    tokens["id_token"]
        .as_str()
        .expect("an id_token")
        .to_string()
}

fn claims_of(token: &str) -> Value {
    use base64::Engine;
    let part = token.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part)
            .unwrap(),
    )
    .unwrap()
}

/// True when `browser` still has a session (the profile page answers instead of
/// redirecting to sign-in).
async fn signed_in(app: &TestApp, browser: &reqwest::Client) -> bool {
    let res = browser.get(app.url("/users/sign_in")).send().await.unwrap();
    res.status() == 303 && !location(&res).starts_with("/users/sign_in")
}

both_backends! {
    async fn prompt_none_answers_without_a_page(app: TestApp) {
        let client = register(&app, AppSpec { scopes: "openid read_user", ..AppSpec::default() }).await;
        let anonymous = app.new_browser();
        let res = authorize(&app, &anonymous, &request(&client, &[("prompt", "none")])).await;
        assert_eq!(res.status(), 302);
        let pairs = redirect_params(&res);
        assert_eq!(param(&pairs, "error"), Some("login_required"));
        assert_eq!(param(&pairs, "state"), Some("st"));
        assert_eq!(param(&pairs, "iss"), Some(app.base.as_str()));

        let browser = signed_in_browser(&app).await;
        let res = authorize(&app, &browser, &request(&client, &[("prompt", "none")])).await;
        assert_eq!(res.status(), 302);
        assert_eq!(param(&redirect_params(&res), "error"), Some("consent_required"));

        // Once authorized for these scopes, prompt=none returns a code straight away.
        let page = authorize(&app, &browser, &request(&client, &[])).await.text().await.unwrap();
        let res = decide(&app, &browser, &page, "authorize").await;
        id_token_from(&app, &client, &res).await;
        let res = authorize(&app, &browser, &request(&client, &[("prompt", "none")])).await;
        assert_eq!(res.status(), 302);
        assert!(param(&redirect_params(&res), "code").is_some());

        // prompt=consent shows the page again; unsupported values are refused.
        let res = authorize(&app, &browser, &request(&client, &[("prompt", "consent")])).await;
        assert_eq!(res.status(), 200);
        for bad in ["select_account", "none login"] {
            let res = authorize(&app, &browser, &request(&client, &[("prompt", bad)])).await;
            assert_eq!(res.status(), 302);
            assert_eq!(param(&redirect_params(&res), "error"), Some("invalid_request"), "{bad}");
        }
    }

    async fn prompt_login_and_max_age_ask_for_a_fresh_sign_in(app: TestApp) {
        let client = register(&app, AppSpec { scopes: "openid", trusted: true, ..AppSpec::default() }).await;
        let browser = signed_in_browser(&app).await;
        // A recent sign-in satisfies a generous max_age.
        let res = authorize(&app, &browser, &request(&client, &[("max_age", "3600")])).await;
        assert_eq!(res.status(), 302);
        assert!(param(&redirect_params(&res), "code").is_some());

        for extra in [("prompt", "login"), ("max_age", "0")] {
            app.clock.advance(2);
            let before = app.clock.now();
            let res = authorize(&app, &browser, &request(&client, &[extra])).await;
            assert_eq!(res.status(), 303, "{extra:?}");
            let to_sign_in = location(&res);
            assert!(to_sign_in.starts_with("/users/sign_in?return_to=") && to_sign_in.ends_with("&prompt=login"), "{to_sign_in}");
            // The form is shown although a session exists.
            let res = browser.get(app.url(&to_sign_in)).send().await.unwrap();
            assert_eq!(res.status(), 200);
            let page = res.text().await.unwrap();
            let token = csrf_from(&page);
            let return_to = crate::support::oauth::unescape(page.split("name=\"return_to\" value=\"").nth(1).unwrap().split('"').next().unwrap());
            app.clock.advance(1);
            let res = browser
                .post(app.url("/users/sign_in"))
                .form(&[("authenticity_token", token.as_str()), ("username", "root"), ("password", ROOT_PASSWORD), ("return_to", return_to.as_str())])
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 303);
            // Back at the same request, now satisfied: no loop.
            let res = browser.get(app.url(&location(&res))).send().await.unwrap();
            assert_eq!(res.status(), 302, "{extra:?}");
            let id_token = id_token_from(&app, &client, &res).await;
            let auth_time = claims_of(&id_token)["auth_time"].as_i64().unwrap();
            assert!(auth_time > before, "auth_time {auth_time} is the fresh sign-in");
        }

        // prompt=none with a stale session is login_required, not a page.
        app.clock.advance(10);
        let res = authorize(&app, &browser, &request(&client, &[("prompt", "none"), ("max_age", "1")])).await;
        assert_eq!(param(&redirect_params(&res), "error"), Some("login_required"));
        let res = authorize(&app, &browser, &request(&client, &[("max_age", "soon")])).await;
        assert_eq!(param(&redirect_params(&res), "error"), Some("invalid_request"));
    }

    async fn login_hint_prefills_the_sign_in_form(app: TestApp) {
        let client = register(&app, AppSpec { scopes: "openid", ..AppSpec::default() }).await;
        let browser = app.new_browser();
        let res = authorize(&app, &browser, &request(&client, &[("login_hint", "ada.l")])).await;
        assert_eq!(res.status(), 303);
        let page = browser.get(app.url(&location(&res))).send().await.unwrap().text().await.unwrap();
        assert!(page.contains("value=\"ada.l\""), "{page}");
    }

    async fn logout_with_an_id_token_hint_signs_out_and_returns_to_the_client(app: TestApp) {
        let client = register(&app, AppSpec { scopes: "openid", trusted: true, redirect_uris: "https://client.example/callback\nhttps://client.example/bye", ..AppSpec::default() }).await;
        let browser = signed_in_browser(&app).await;
        let res = authorize(&app, &browser, &request(&client, &[])).await;
        let id_token = id_token_from(&app, &client, &res).await;

        // Unregistered or forged: refused on our own page, no redirect.
        let q = |pairs: &[(&str, &str)]| url::form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish();
        let res = browser.get(app.url(&format!("/oauth/logout?{}", q(&[("id_token_hint", &id_token), ("post_logout_redirect_uri", "https://evil.example/")])))).send().await.unwrap();
        assert_eq!(res.status(), 400);
        let sig_start = id_token.rfind('.').unwrap() + 1;
        let first = &id_token[sig_start..sig_start + 1];
        let forged = format!("{}{}{}", &id_token[..sig_start], if first == "A" { "B" } else { "A" }, &id_token[sig_start + 1..]);
        let res = browser.get(app.url(&format!("/oauth/logout?{}", q(&[("id_token_hint", &forged)])))).send().await.unwrap();
        assert_eq!(res.status(), 400);
        assert!(signed_in(&app, &browser).await);

        // Expired hints are accepted (RP-Initiated Logout §2).
        app.clock.advance(3600);
        let res = browser.get(app.url(&format!("/oauth/logout?{}", q(&[("id_token_hint", &id_token), ("post_logout_redirect_uri", "https://client.example/bye"), ("state", "bye-1")])))).send().await.unwrap();
        assert_eq!(res.status(), 302);
        assert_eq!(location(&res), "https://client.example/bye?state=bye-1");
        assert!(!signed_in(&app, &browser).await, "the session ended");
    }

    async fn logout_without_a_hint_asks_first(app: TestApp) {
        let client = register(&app, AppSpec { scopes: "openid", ..AppSpec::default() }).await;
        let browser = signed_in_browser(&app).await;
        let query = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs([("client_id", client.client_id.as_str()), ("post_logout_redirect_uri", REDIRECT), ("state", "s2")])
            .finish();
        let res = browser.get(app.url(&format!("/oauth/logout?{query}"))).send().await.unwrap();
        assert_eq!(res.status(), 200);
        let csp = res.headers()["content-security-policy"].to_str().unwrap().to_string();
        assert!(csp.contains("form-action 'self' https://client.example"), "{csp}");
        let page = res.text().await.unwrap();
        assert!(page.contains("Test Client") && page.contains("Sign out"));
        assert!(signed_in(&app, &browser).await, "nothing happens before the button");

        // Without the CSRF token the button does nothing.
        let form = [("client_id", client.client_id.as_str()), ("post_logout_redirect_uri", REDIRECT), ("state", "s2"), ("confirm", "yes")];
        let res = browser.post(app.url("/oauth/logout")).form(&form).send().await.unwrap();
        assert_eq!(res.status(), 403);
        assert!(signed_in(&app, &browser).await);

        let token = csrf_from(&page);
        let mut with_token = form.to_vec();
        with_token.push(("authenticity_token", token.as_str()));
        let res = browser.post(app.url("/oauth/logout")).form(&with_token).send().await.unwrap();
        assert_eq!(res.status(), 302);
        assert_eq!(location(&res), format!("{REDIRECT}?state=s2"));
        assert!(!signed_in(&app, &browser).await);

        // A URI that is not the named client's is refused even without a session.
        let query = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs([("client_id", client.client_id.as_str()), ("post_logout_redirect_uri", "https://client.example/elsewhere")])
            .finish();
        let res = browser.get(app.url(&format!("/oauth/logout?{query}"))).send().await.unwrap();
        assert_eq!(res.status(), 400);
        let res = browser.get(app.url(&format!("/oauth/logout?post_logout_redirect_uri={REDIRECT}"))).send().await.unwrap();
        assert_eq!(res.status(), 400, "a redirect needs a client");
    }
}
