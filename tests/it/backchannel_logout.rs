//! OpenID Connect Back-Channel Logout 1.0: signing out, or being blocked, sends a signed
//! logout token to each application that got an id_token in that session, and nothing to
//! one that got only an access token; the token verifies against the JWKS; local addresses
//! are refused unless the instance allows them.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::both_backends;
use crate::support::TestApp;
use crate::support::oauth::{authorize, decide, param, redirect_params, token_request};

/// A relying party's back-channel logout endpoint: records each `logout_token` POSTed.
async fn receiver() -> (String, Arc<Mutex<Vec<String>>>) {
    let got: Arc<Mutex<Vec<String>>> = Arc::default();
    let sink = got.clone();
    let app = axum::Router::new().route(
        "/logout",
        axum::routing::post(
            move |axum::Form(form): axum::Form<std::collections::HashMap<String, String>>| {
                let sink = sink.clone();
                async move {
                    sink.lock()
                        .unwrap()
                        .push(form.get("logout_token").cloned().unwrap_or_default());
                    axum::http::StatusCode::OK
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/logout"), got)
}

/// An instance-wide application registered through the admin API.
async fn application(app: &TestApp, scopes: &str, logout_uri: Option<&str>) -> (u16, Value) {
    let admin = app.token_for("root", "api").await;
    let mut body = json!({"name": "RP", "redirect_uri": "https://rp.example/cb", "scopes": scopes});
    if let Some(uri) = logout_uri {
        body["backchannel_logout_uri"] = json!(uri);
        body["backchannel_logout_session_required"] = json!(true);
    }
    let res = reqwest::Client::new()
        .post(app.url("/api/v4/applications"))
        .header("PRIVATE-TOKEN", admin)
        .json(&body)
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.json().await.unwrap())
}

/// Signs `username` in on a new browser.
async fn browser_of(app: &TestApp, username: &str, password: &str) -> reqwest::Client {
    let browser = app.new_browser();
    assert_eq!(
        app.sign_in_with(&browser, username, password)
            .await
            .status(),
        303
    );
    browser
}

/// The code flow in `browser` for `client` with `scope`; the token response.
async fn sign_in_to(
    app: &TestApp,
    browser: &reqwest::Client,
    client: &Value,
    scope: &str,
) -> Value {
    let client_id = client["application_id"].as_str().unwrap();
    let params = [
        ("client_id", client_id),
        ("redirect_uri", "https://rp.example/cb"),
        ("response_type", "code"),
        ("scope", scope),
        ("state", "s"),
    ];
    let res = authorize(app, browser, &params).await;
    let res = if res.status() == 200 {
        let page = res.text().await.unwrap();
        decide(app, browser, &page, "authorize").await
    } else {
        res
    };
    let code = param(&redirect_params(&res), "code").unwrap().to_string();
    let res = token_request(
        app,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "https://rp.example/cb"),
        ],
        Some((client_id, client["secret"].as_str().unwrap())),
    )
    .await;
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

async fn sign_out(app: &TestApp, browser: &reqwest::Client) {
    let token = app.csrf_token(browser, "/-/user_settings/profile").await;
    let res = browser
        .post(app.url("/users/sign_out"))
        .form(&[("authenticity_token", token)])
        .send()
        .await
        .unwrap();
    assert!(res.status().is_redirection(), "{}", res.status());
}

async fn wait_for(got: &Arc<Mutex<Vec<String>>>, n: usize) -> Vec<String> {
    let started = Instant::now();
    loop {
        let now = got.lock().unwrap().clone();
        if now.len() >= n {
            return now;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{} of {n} logout tokens after 10 s",
            now.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn part(jwt: &str, i: usize) -> Value {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(jwt.split('.').nth(i).unwrap())
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// Verifies `token`'s signature with the published key of its `kid` and returns its claims.
async fn verified(app: &TestApp, token: &str, audience: &str) -> Value {
    let header = jsonwebtoken::decode_header(token).unwrap();
    let jwks: jsonwebtoken::jwk::JwkSet = reqwest::get(app.url("/oauth/discovery/keys"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let jwk = jwks
        .find(header.kid.as_deref().unwrap())
        .expect("the kid is published");
    let mut validation = jsonwebtoken::Validation::new(header.alg);
    validation.set_audience(&[audience]);
    validation.set_issuer(&[app.base.as_str()]);
    validation.set_required_spec_claims(&["iss", "aud", "exp", "iat"]);
    jsonwebtoken::decode::<Value>(
        token,
        &jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap(),
        &validation,
    )
    .expect("a valid signature and claims")
    .claims
}

both_backends! {
    async fn signing_out_or_a_block_tells_each_application_that_got_an_id_token(app: TestApp) {
        let app = TestApp::spawn_with(app.backend, &[("DOORWARD_BACKCHANNEL_LOGOUT_ALLOW_LOOPBACK", "true")]).await;
        let (uri, got) = receiver().await;
        let (status, rp) = application(&app, "openid read_user", Some(&uri)).await;
        assert_eq!(status, 200, "{rp}");
        assert_eq!(rp["backchannel_logout_uri"], uri.as_str());
        let (_, plain) = application(&app, "read_user", Some(&uri)).await;
        let doc: Value = reqwest::get(app.url("/.well-known/openid-configuration")).await.unwrap().json().await.unwrap();
        assert_eq!(doc["backchannel_logout_supported"], true);
        assert_eq!(doc["backchannel_logout_session_supported"], true);

        // Root signs in, gets an id_token at one client and only an access token at another.
        let browser = browser_of(&app, "root", crate::support::ROOT_PASSWORD).await;
        let tokens = sign_in_to(&app, &browser, &rp, "openid read_user").await;
        let id_token = tokens["id_token"].as_str().unwrap();
        let sid = part(id_token, 1)["sid"].as_str().unwrap().to_string();
        assert!(!sid.is_empty());
        sign_in_to(&app, &browser, &plain, "read_user").await;
        // A refreshed id_token keeps the sid.
        let client_id = rp["application_id"].as_str().unwrap();
        let refreshed: Value = token_request(
            &app,
            &[("grant_type", "refresh_token"), ("refresh_token", tokens["refresh_token"].as_str().unwrap())],
            Some((client_id, rp["secret"].as_str().unwrap())),
        )
        .await
        .json()
        .await
        .unwrap();
        assert_eq!(part(refreshed["id_token"].as_str().unwrap(), 1)["sid"], sid.as_str());
        assert!(got.lock().unwrap().is_empty());

        sign_out(&app, &browser).await;
        let tokens = wait_for(&got, 1).await;
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(got.lock().unwrap().len(), 1, "one token: the access-token-only client is not told");
        let logout = &tokens[0];
        let header = part(logout, 0);
        assert_eq!(header["typ"], "logout+jwt");
        let claims = verified(&app, logout, client_id).await;
        assert_eq!(claims["sid"], sid.as_str());
        assert_eq!(claims["sub"], "1");
        assert_eq!(claims["events"], json!({"http://schemas.openid.net/event/backchannel-logout": {}}));
        assert!(claims["jti"].as_str().is_some_and(|j| !j.is_empty()));
        assert!(claims.get("nonce").is_none());
        assert_eq!(app.state.store.count_rows("backchannel_logouts").await.unwrap(), 0, "delivered and forgotten");

        // A block ends every session of the user: each client that got an id_token is told.
        app.create_user("cora", "cora-password-1").await;
        let cora = browser_of(&app, "cora", "cora-password-1").await;
        sign_in_to(&app, &cora, &rp, "openid").await;
        let admin = app.token_for("root", "api").await;
        let cora_id = app.state.store.user_by_username("cora").await.unwrap().unwrap().id;
        let res = reqwest::Client::new().post(app.url(&format!("/api/v4/users/{cora_id}/block"))).header("PRIVATE-TOKEN", admin).send().await.unwrap();
        assert_eq!(res.status(), 201);
        let tokens = wait_for(&got, 2).await;
        let claims = verified(&app, &tokens[1], client_id).await;
        assert_eq!(claims["sub"], cora_id.to_string());
    }

    async fn local_logout_uris_are_refused_without_the_setting(app: TestApp) {
        for uri in ["http://127.0.0.1:9/logout", "https://127.0.0.1/logout", "https://10.0.0.1/x", "https://localhost/x", "https://[::1]/x", "https://rp.example/logout#frag", "not a uri"] {
            let (status, body) = application(&app, "openid", Some(uri)).await;
            assert_eq!(status, 400, "{uri}: {body}");
            assert!(body["message"]["backchannel_logout_uri"].is_array(), "{body}");
        }
        assert_eq!(app.state.store.count_rows("oauth_applications").await.unwrap(), 0);
        let (status, _) = application(&app, "openid", Some("https://rp.example/logout")).await;
        assert_eq!(status, 200);

        // And a name that resolves to a local address is never called.
        let (uri, got) = receiver().await;
        let port = uri.split(':').nth(2).unwrap().split('/').next().unwrap();
        let client = doorward::http::outgoing::OutgoingClient::new(false).unwrap();
        let by_name = client.post_form(&format!("http://localhost:{port}/logout"), &[("logout_token", "x")]).await;
        assert!(by_name.is_err(), "{by_name:?}");
        let by_ip = client.post_form(&uri, &[("logout_token", "x")]).await;
        assert!(by_ip.is_err(), "{by_ip:?}");
        let allowed = doorward::http::outgoing::OutgoingClient::new(true).unwrap();
        assert_eq!(allowed.post_form(&uri, &[("logout_token", "x")]).await.unwrap(), 200);
        assert_eq!(got.lock().unwrap().len(), 1, "only the allowed client reached it");
    }
}
