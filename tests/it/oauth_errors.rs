//! One test per error the RFCs and GitLab's behaviour name, at the authorization endpoint,
//! the token endpoint and on the API.

use serde_json::Value;

use crate::both_backends;
use crate::support::TestApp;
use crate::support::oauth::{
    AppSpec, Client, REDIRECT, authorize, code_for, param, redirect_params, register,
    signed_in_browser, token_request,
};

fn has_location(res: &reqwest::Response) -> bool {
    res.headers().get("location").is_some()
}

async fn expect_error_page(res: reqwest::Response, text: &str) {
    assert_eq!(res.status(), 400);
    assert!(
        !has_location(&res),
        "never a redirect to an unverified client"
    );
    let page = res.text().await.unwrap();
    assert!(page.contains(text), "{page}");
}

fn expect_redirect_error(res: &reqwest::Response, error: &str, state: Option<&str>, iss: &str) {
    assert_eq!(res.status(), 302);
    let pairs = redirect_params(res);
    assert_eq!(param(&pairs, "error"), Some(error), "{pairs:?}");
    assert!(param(&pairs, "error_description").is_some());
    assert_eq!(param(&pairs, "state"), state);
    assert_eq!(param(&pairs, "iss"), Some(iss));
    assert!(crate::support::location(res).starts_with(REDIRECT));
}

async fn token_error(res: reqwest::Response, status: u16, error: &str) -> Value {
    assert_eq!(res.status().as_u16(), status);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], error, "{body}");
    assert!(body["error_description"].is_string());
    body
}

/// A code and the client it was issued to.
async fn fresh_code(app: &TestApp, extra: &[(&str, &str)]) -> (Client, String) {
    let client = register(app, AppSpec::default()).await;
    let code = code_for(app, &client, extra).await;
    (client, code)
}

async fn exchange(
    app: &TestApp,
    client: &Client,
    code: &str,
    extra: &[(&str, &str)],
) -> reqwest::Response {
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", REDIRECT),
    ];
    form.extend_from_slice(extra);
    token_request(app, &form, Some((&client.client_id, &client.secret))).await
}

both_backends! {
    async fn unknown_clients_and_unregistered_redirect_uris_get_a_page_not_a_redirect(app: TestApp) {
        let client = register(&app, AppSpec::default()).await;
        let browser = signed_in_browser(&app).await;
        let res = authorize(&app, &browser, &[("client_id", "nope"), ("redirect_uri", REDIRECT), ("response_type", "code")]).await;
        expect_error_page(res, "Client authentication failed due to unknown client").await;
        let res = authorize(&app, &browser, &[("redirect_uri", REDIRECT), ("response_type", "code")]).await;
        expect_error_page(res, "Missing required parameter: client_id.").await;
        for bad in ["https://evil.example/callback", "https://client.example/callback/", "https://client.example/callback?x=1", "https://client.example:444/callback", "http://client.example/callback"] {
            let res = authorize(&app, &browser, &[("client_id", &client.client_id), ("redirect_uri", bad), ("response_type", "code")]).await;
            expect_error_page(res, "The redirect URI included is not valid.").await;
        }
        let res = authorize(&app, &browser, &[("client_id", &client.client_id), ("response_type", "code")]).await;
        expect_error_page(res, "The redirect URI included is not valid.").await;
        // Even unauthenticated: no sign-in detour for a request that cannot succeed.
        let res = authorize(&app, &app.new_browser(), &[("client_id", "nope"), ("redirect_uri", REDIRECT), ("response_type", "code")]).await;
        assert_eq!(res.status(), 400);
    }

    async fn other_authorization_errors_go_back_to_the_client(app: TestApp) {
        let client = register(&app, AppSpec { scopes: "read_user openid", ..AppSpec::default() }).await;
        let browser = signed_in_browser(&app).await;
        let base = [("client_id", client.client_id.as_str()), ("redirect_uri", REDIRECT), ("state", "st")];
        let with = |extra: &[(&'static str, &'static str)]| {
            let mut v: Vec<(&str, &str)> = base.to_vec();
            v.extend_from_slice(extra);
            v
        };
        let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
            (with(&[("response_type", "token")]), "unsupported_response_type"),
            (with(&[]), "invalid_request"),
            (with(&[("response_type", "code"), ("scope", "read_user bogus")]), "invalid_scope"),
            (with(&[("response_type", "code"), ("scope", "api")]), "invalid_scope"),
            // No scope, and the application lacks api (GitLab's default scope).
            (with(&[("response_type", "code")]), "invalid_scope"),
            (with(&[("response_type", "code"), ("scope", "read_user"), ("code_challenge_method", "S256")]), "invalid_request"),
            (with(&[("response_type", "code"), ("scope", "read_user"), ("code_challenge", "abc"), ("code_challenge_method", "S256")]), "invalid_request"),
            (with(&[("response_type", "code"), ("scope", "read_user"), ("code_challenge", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"), ("code_challenge_method", "S512")]), "invalid_request"),
            (with(&[("response_type", "code"), ("scope", "read_user"), ("response_mode", "form_post")]), "invalid_request"),
            (with(&[("response_type", "code"), ("scope", "read_user"), ("state", "twice")]), "invalid_request"),
        ];
        for (params, error) in cases {
            let res = authorize(&app, &browser, &params).await;
            expect_redirect_error(&res, error, Some("st"), &app.base);
        }
    }

    async fn pkce_can_be_required_per_application(app: TestApp) {
        let client = register(&app, AppSpec { require_pkce: true, ..AppSpec::default() }).await;
        let browser = signed_in_browser(&app).await;
        let base = [("client_id", client.client_id.as_str()), ("redirect_uri", REDIRECT), ("response_type", "code")];
        let res = authorize(&app, &browser, &base).await;
        expect_redirect_error(&res, "invalid_request", None, &app.base);
        let verifier = "x".repeat(50);
        let mut plain = base.to_vec();
        plain.extend([("code_challenge", verifier.as_str()), ("code_challenge_method", "plain")]);
        let res = authorize(&app, &browser, &plain).await;
        expect_redirect_error(&res, "invalid_request", None, &app.base);
        let mut s256 = base.to_vec();
        s256.extend([("code_challenge", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"), ("code_challenge_method", "S256")]);
        assert_eq!(authorize(&app, &browser, &s256).await.status(), 200);
    }

    async fn code_exchange_errors(app: TestApp) {
        // Wrong secret, missing secret: 401 invalid_client with WWW-Authenticate.
        let (client, code) = fresh_code(&app, &[]).await;
        let res = token_request(&app, &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", REDIRECT)], Some((&client.client_id, "dwoas-wrong"))).await;
        assert!(res.headers()["www-authenticate"].to_str().unwrap().starts_with("Basic"));
        token_error(res, 401, "invalid_client").await;
        let res = token_request(&app, &[("grant_type", "authorization_code"), ("client_id", &client.client_id), ("code", &code), ("redirect_uri", REDIRECT)], None).await;
        token_error(res, 401, "invalid_client").await;
        let res = token_request(&app, &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", REDIRECT)], None).await;
        token_error(res, 401, "invalid_client").await;
        // Basic and a body secret at once.
        let res = token_request(&app, &[("grant_type", "authorization_code"), ("client_secret", &client.secret), ("code", &code), ("redirect_uri", REDIRECT)], Some((&client.client_id, &client.secret))).await;
        token_error(res, 400, "invalid_request").await;
        // A redirect URI other than the authorization request's.
        let res = exchange(&app, &client, &code, &[("redirect_uri", "https://client.example/other")]).await;
        token_error(res, 400, "invalid_request").await;
        let res = token_request(&app, &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", "https://client.example/other")], Some((&client.client_id, &client.secret))).await;
        token_error(res, 400, "invalid_grant").await;
        // Missing parameters, unknown grant types.
        let res = token_request(&app, &[("grant_type", "authorization_code"), ("redirect_uri", REDIRECT)], Some((&client.client_id, &client.secret))).await;
        let body = token_error(res, 400, "invalid_request").await;
        assert_eq!(body["error_description"], "Missing required parameter: code.");
        let res = token_request(&app, &[("code", &code)], Some((&client.client_id, &client.secret))).await;
        token_error(res, 400, "invalid_request").await;
        let res = token_request(&app, &[("grant_type", "implicit")], Some((&client.client_id, &client.secret))).await;
        token_error(res, 400, "unsupported_grant_type").await;
        // The code still works after all those failures.
        assert_eq!(exchange(&app, &client, &code, &[]).await.status(), 200);
    }

    async fn a_reused_code_fails_and_revokes_what_it_issued(app: TestApp) {
        let (client, code) = fresh_code(&app, &[("scope", "api")]).await;
        let first: Value = exchange(&app, &client, &code, &[]).await.json().await.unwrap();
        let access = first["access_token"].as_str().unwrap();
        let user = |t: &str| reqwest::Client::new().get(app.url("/api/v4/user")).bearer_auth(t.to_string()).send();
        assert_eq!(user(access).await.unwrap().status(), 200);
        token_error(exchange(&app, &client, &code, &[]).await, 400, "invalid_grant").await;
        assert_eq!(user(access).await.unwrap().status(), 401, "tokens from a replayed code are revoked");
        let res = token_request(&app, &[("grant_type", "refresh_token"), ("refresh_token", first["refresh_token"].as_str().unwrap())], Some((&client.client_id, &client.secret))).await;
        token_error(res, 400, "invalid_grant").await;
    }

    async fn pkce_verifier_errors(app: TestApp) {
        let challenge = [("code_challenge", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"), ("code_challenge_method", "S256")];
        let (client, code) = fresh_code(&app, &challenge).await;
        token_error(exchange(&app, &client, &code, &[]).await, 400, "invalid_request").await;
        token_error(exchange(&app, &client, &code, &[("code_verifier", "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXX")]).await, 400, "invalid_grant").await;
        assert_eq!(exchange(&app, &client, &code, &[("code_verifier", "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk")]).await.status(), 200);
        // A verifier for a code issued without a challenge.
        let (client, code) = fresh_code(&app, &[]).await;
        token_error(exchange(&app, &client, &code, &[("code_verifier", "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk")]).await, 400, "invalid_grant").await;
    }

    async fn expired_codes_and_other_clients_codes_are_invalid_grant(app: TestApp) {
        let (client, code) = fresh_code(&app, &[]).await;
        let other = register(&app, AppSpec::default()).await;
        let res = token_request(&app, &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", REDIRECT)], Some((&other.client_id, &other.secret))).await;
        token_error(res, 400, "invalid_grant").await;
        app.clock.advance(601);
        token_error(exchange(&app, &client, &code, &[]).await, 400, "invalid_grant").await;
        token_error(exchange(&app, &client, "dwac-never-issued", &[]).await, 400, "invalid_grant").await;
    }

    async fn basic_credentials_are_form_urlencoded(app: TestApp) {
        let (client, code) = fresh_code(&app, &[]).await;
        // openid-client style: '-' encoded as %2D inside the Basic credentials.
        let encoded_secret = client.secret.replace('-', "%2D");
        let res = token_request(&app, &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", REDIRECT)], Some((&client.client_id, &encoded_secret))).await;
        assert_eq!(res.status(), 200);
    }

    async fn repeated_token_parameters_are_refused(app: TestApp) {
        let (client, code) = fresh_code(&app, &[]).await;
        let body = format!("grant_type=authorization_code&code={code}&code={code}&redirect_uri={REDIRECT}");
        let res = reqwest::Client::new()
            .post(app.url("/oauth/token"))
            .basic_auth(&client.client_id, Some(&client.secret))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        let body = token_error(res, 400, "invalid_request").await;
        assert!(body["error_description"].as_str().unwrap().contains("more than once"));
    }

    async fn refresh_errors(app: TestApp) {
        let (client, code) = fresh_code(&app, &[("scope", "read_user")]).await;
        let tokens: Value = exchange(&app, &client, &code, &[]).await.json().await.unwrap();
        let refresh = tokens["refresh_token"].as_str().unwrap();
        let basic = Some((client.client_id.as_str(), client.secret.as_str()));
        // Widening the scope.
        let res = token_request(&app, &[("grant_type", "refresh_token"), ("refresh_token", refresh), ("scope", "read_user api")], basic).await;
        token_error(res, 400, "invalid_scope").await;
        // No client authentication for an application's token: GitLab says invalid_grant.
        let res = token_request(&app, &[("grant_type", "refresh_token"), ("refresh_token", refresh)], None).await;
        token_error(res, 400, "invalid_grant").await;
        // Another client.
        let other = register(&app, AppSpec::default()).await;
        let res = token_request(&app, &[("grant_type", "refresh_token"), ("refresh_token", refresh)], Some((&other.client_id, &other.secret))).await;
        token_error(res, 400, "invalid_grant").await;
        // Wrong secret.
        let res = token_request(&app, &[("grant_type", "refresh_token"), ("refresh_token", refresh)], Some((&client.client_id, "dwoas-nope"))).await;
        token_error(res, 401, "invalid_client").await;
        // Missing or unknown.
        token_error(token_request(&app, &[("grant_type", "refresh_token")], basic).await, 400, "invalid_request").await;
        token_error(token_request(&app, &[("grant_type", "refresh_token"), ("refresh_token", "dwrt-nope")], basic).await, 400, "invalid_grant").await;
        // After all that, the token still refreshes once; then its reuse kills the chain.
        let res = token_request(&app, &[("grant_type", "refresh_token"), ("refresh_token", refresh)], basic).await;
        assert_eq!(res.status(), 200);
        let next: Value = res.json().await.unwrap();
        token_error(token_request(&app, &[("grant_type", "refresh_token"), ("refresh_token", refresh)], basic).await, 400, "invalid_grant").await;
        let res = token_request(&app, &[("grant_type", "refresh_token"), ("refresh_token", next["refresh_token"].as_str().unwrap())], basic).await;
        token_error(res, 400, "invalid_grant").await;
        // Refresh tokens outlive their access tokens.
        let (client, code) = fresh_code(&app, &[]).await;
        let tokens: Value = exchange(&app, &client, &code, &[]).await.json().await.unwrap();
        app.clock.advance(30 * 86_400);
        let res = token_request(&app, &[("grant_type", "refresh_token"), ("refresh_token", tokens["refresh_token"].as_str().unwrap())], Some((&client.client_id, &client.secret))).await;
        assert_eq!(res.status(), 200);
    }

    async fn api_errors_for_oauth_tokens(app: TestApp) {
        let (client, code) = fresh_code(&app, &[("scope", "openid")]).await;
        let tokens: Value = exchange(&app, &client, &code, &[]).await.json().await.unwrap();
        let access = tokens["access_token"].as_str().unwrap().to_string();
        let get = |t: String| reqwest::Client::new().get(app.url("/api/v4/user")).bearer_auth(t).send();
        // openid alone does not read the API.
        let res = get(access.clone()).await.unwrap();
        assert_eq!(res.status(), 403);
        assert_eq!(res.json::<Value>().await.unwrap()["error"], "insufficient_scope");
        // Expired.
        let (client, code) = fresh_code(&app, &[("scope", "read_user")]).await;
        let tokens: Value = exchange(&app, &client, &code, &[]).await.json().await.unwrap();
        let access = tokens["access_token"].as_str().unwrap().to_string();
        assert_eq!(get(access.clone()).await.unwrap().status(), 200);
        app.clock.advance(7201);
        let res = get(access.clone()).await.unwrap();
        assert_eq!(res.status(), 401);
        assert!(res.headers()["www-authenticate"].to_str().unwrap().contains("error=\"invalid_token\""));
        assert_eq!(res.json::<Value>().await.unwrap()["error_description"], "Token is expired. You can either do re-authorization or token refresh.");
        // Token info for a bad token: GitLab's body.
        let res = reqwest::get(app.url(&format!("/oauth/token/info?access_token={access}"))).await.unwrap();
        assert_eq!(res.status(), 401);
        assert!(res.headers()["www-authenticate"].to_str().unwrap().contains("invalid_token"));
        assert_eq!(res.json::<Value>().await.unwrap(), serde_json::json!({"error":"invalid_token","error_description":"The access token is invalid","state":"unauthorized"}));
        let res = reqwest::get(app.url("/oauth/token/info")).await.unwrap();
        assert_eq!(res.status(), 401);
    }

    async fn instance_wide_pkce_requirement(app: TestApp) {
        let backend = app.backend;
        drop(app);
        let app = TestApp::spawn_with(backend, &[("DOORWARD_REQUIRE_PKCE", "true")]).await;
        let client = register(&app, AppSpec::default()).await;
        let browser = signed_in_browser(&app).await;
        let res = authorize(&app, &browser, &[("client_id", &client.client_id), ("redirect_uri", REDIRECT), ("response_type", "code")]).await;
        expect_redirect_error(&res, "invalid_request", None, &app.base);
    }

    async fn blocked_users_cannot_exchange_or_refresh(app: TestApp) {
        let user = app.create_user("mallory", "mallory-password").await;
        let client = register(&app, AppSpec::default()).await;
        let browser = app.new_browser();
        assert_eq!(app.sign_in_with(&browser, "mallory", "mallory-password").await.status(), 303);
        let res = authorize(&app, &browser, &[("client_id", &client.client_id), ("redirect_uri", REDIRECT), ("response_type", "code")]).await;
        let page = res.text().await.unwrap();
        let res = crate::support::oauth::decide(&app, &browser, &page, "authorize").await;
        let code = param(&redirect_params(&res), "code").unwrap().to_string();
        let admin = app.token_for("root", "api").await;
        reqwest::Client::new().post(app.url(&format!("/api/v4/users/{}/block", user["id"]))).header("PRIVATE-TOKEN", admin).send().await.unwrap();
        token_error(exchange(&app, &client, &code, &[]).await, 400, "invalid_grant").await;
    }
}
