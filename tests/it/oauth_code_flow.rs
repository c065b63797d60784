//! The authorization code flow end to end: the `oauth2` crate as the client, the seeds'
//! curl examples verbatim, consent, refresh, token info and API access.

use oauth2::basic::BasicClient;
use oauth2::{
    AuthType, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, PkceCodeChallenge,
    RedirectUrl, RefreshToken, Scope, TokenResponse, TokenUrl,
};
use serde_json::Value;

use crate::both_backends;
use crate::support::oauth::{
    AppSpec, REDIRECT, authorize, code_for, consent_fields, decide, http_client, param,
    redirect_params, register, signed_in_browser, token_request,
};
use crate::support::{TestApp, location};

async fn api_user(app: &TestApp, token: &str) -> reqwest::Response {
    reqwest::Client::new()
        .get(app.url("/api/v4/user"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

both_backends! {
    async fn the_oauth2_crate_completes_the_code_flow_with_pkce_and_refresh(app: TestApp) {
        let registered = register(&app, AppSpec::default()).await;
        let client = BasicClient::new(ClientId::new(registered.client_id.clone()))
            .set_client_secret(ClientSecret::new(registered.secret.clone()))
            .set_auth_uri(AuthUrl::new(app.url("/oauth/authorize")).unwrap())
            .set_token_uri(TokenUrl::new(app.url("/oauth/token")).unwrap())
            .set_redirect_uri(RedirectUrl::new(REDIRECT.to_string()).unwrap());
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let (auth_url, csrf_state) = client
            .authorize_url(CsrfToken::new_random)
            .add_scope(Scope::new("read_user".into()))
            .set_pkce_challenge(challenge)
            .url();

        // The user's browser: sign-in first, then straight back to the same request.
        let browser = app.new_browser();
        let res = browser.get(auth_url.as_str()).send().await.unwrap();
        assert_eq!(res.status(), 303);
        let to_sign_in = location(&res);
        assert!(to_sign_in.starts_with("/users/sign_in?return_to=/oauth/authorize"), "{to_sign_in}");
        let page = browser.get(app.url(&to_sign_in)).send().await.unwrap().text().await.unwrap();
        let token = crate::support::csrf_from(&page);
        let return_to = crate::support::oauth::unescape(page.split("name=\"return_to\" value=\"").nth(1).unwrap().split('"').next().unwrap());
        let res = browser
            .post(app.url("/users/sign_in"))
            .form(&[("authenticity_token", token.as_str()), ("username", "root"), ("password", crate::support::ROOT_PASSWORD), ("return_to", return_to.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 303);
        let back = location(&res);
        assert!(back.starts_with("/oauth/authorize?"), "{back}");

        let res = browser.get(app.url(&back)).send().await.unwrap();
        assert_eq!(res.status(), 200);
        let page = res.text().await.unwrap();
        assert!(page.contains("Authorize <span id=\"app-name\">Test Client</span>"));
        assert!(page.contains("<strong id=\"redirect-host\">client.example</strong>"));
        assert!(page.contains("<code>read_user</code>: Read-only access to your profile"));
        let res = decide(&app, &browser, &page, "authorize").await;
        assert_eq!(res.status(), 302);
        let pairs = redirect_params(&res);
        assert!(crate::support::location(&res).starts_with("https://client.example/callback?code=dwac-"));
        assert_eq!(param(&pairs, "state"), Some(csrf_state.secret().as_str()));
        assert_eq!(param(&pairs, "iss"), Some(app.base.as_str()));
        let code = param(&pairs, "code").unwrap().to_string();

        let tokens = client
            .exchange_code(AuthorizationCode::new(code))
            .set_pkce_verifier(verifier)
            .request_async(&http_client)
            .await
            .expect("code exchange");
        let access = tokens.access_token().secret().clone();
        assert!(access.starts_with("dwat-"));
        assert_eq!(tokens.expires_in().unwrap().as_secs(), 7200);
        assert_eq!(tokens.scopes().unwrap()[0].as_str(), "read_user");
        let refresh = tokens.refresh_token().unwrap().secret().clone();
        assert!(refresh.starts_with("dwrt-"));

        let res = api_user(&app, &access).await;
        assert_eq!(res.status(), 200);
        assert_eq!(res.json::<Value>().await.unwrap()["username"], "root");

        let refreshed = client
            .exchange_refresh_token(&RefreshToken::new(refresh.clone()))
            .request_async(&http_client)
            .await
            .expect("refresh");
        let new_access = refreshed.access_token().secret().clone();
        assert_ne!(new_access, access);
        assert_eq!(api_user(&app, &new_access).await.status(), 200);
        assert_eq!(api_user(&app, &access).await.status(), 401, "rotation revokes the old access token");

        // Replaying the rotated refresh token fails and revokes the whole chain.
        let replay = client.exchange_refresh_token(&RefreshToken::new(refresh)).request_async(&http_client).await;
        assert!(format!("{replay:?}").contains("invalid_grant"), "{replay:?}");
        assert_eq!(api_user(&app, &new_access).await.status(), 401, "the chain was revoked");
    }

    async fn a_public_client_uses_pkce_with_credentials_in_the_body(app: TestApp) {
        let registered = register(&app, AppSpec { confidential: false, ..AppSpec::default() }).await;
        let client = BasicClient::new(ClientId::new(registered.client_id.clone()))
            .set_auth_type(AuthType::RequestBody)
            .set_auth_uri(AuthUrl::new(app.url("/oauth/authorize")).unwrap())
            .set_token_uri(TokenUrl::new(app.url("/oauth/token")).unwrap())
            .set_redirect_uri(RedirectUrl::new(REDIRECT.to_string()).unwrap());
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let (url, _) = client.authorize_url(CsrfToken::new_random).add_scope(Scope::new("api".into())).set_pkce_challenge(challenge).url();
        let browser = signed_in_browser(&app).await;
        let page = browser.get(url.as_str()).send().await.unwrap().text().await.unwrap();
        assert!(page.contains("This is a public application"));
        let res = decide(&app, &browser, &page, "authorize").await;
        let code = param(&redirect_params(&res), "code").unwrap().to_string();
        let tokens = client
            .exchange_code(AuthorizationCode::new(code))
            .set_pkce_verifier(verifier)
            .request_async(&http_client)
            .await
            .expect("public exchange");
        assert_eq!(api_user(&app, tokens.access_token().secret()).await.status(), 200);
    }

    async fn the_seeds_curl_examples_work_verbatim(app: TestApp) {
        // Web application flow: client_id, client_secret, code, grant_type, redirect_uri.
        let confidential = register(&app, AppSpec::default()).await;
        let code = code_for(&app, &confidential, &[("scope", "api")]).await;
        let body = format!(
            "client_id={}&client_secret={}&code={code}&grant_type=authorization_code&redirect_uri={}",
            confidential.client_id, confidential.secret, REDIRECT
        );
        let res = reqwest::Client::new().post(app.url("/oauth/token")).header("content-type", "application/x-www-form-urlencoded").body(body).send().await.unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(res.headers()["cache-control"], "no-store");
        assert_eq!(res.headers()["pragma"], "no-cache");
        let tokens: Value = res.json().await.unwrap();
        assert_eq!(tokens["token_type"], "Bearer");
        assert_eq!(tokens["expires_in"], 7200);
        assert_eq!(tokens["scope"], "api");
        assert!(tokens["created_at"].is_i64());
        assert!(tokens["refresh_token"].as_str().unwrap().starts_with("dwrt-"));
        let access = tokens["access_token"].as_str().unwrap();

        // "Access GitLab API with access token": as a parameter and as a header.
        let by_param = reqwest::get(app.url(&format!("/api/v4/user?access_token={access}"))).await.unwrap();
        assert_eq!(by_param.status(), 200);
        let by_header = reqwest::Client::new().get(app.url("/api/v4/user")).header("Authorization", format!("Bearer {access}")).send().await.unwrap();
        assert_eq!(by_header.status(), 200);

        // "Retrieving the token information", both ways.
        for res in [
            reqwest::get(app.url(&format!("/oauth/token/info?access_token={access}"))).await.unwrap(),
            reqwest::Client::new().get(app.url("/oauth/token/info")).header("Authorization", format!("Bearer {access}")).send().await.unwrap(),
        ] {
            assert_eq!(res.status(), 200);
            let info: Value = res.json().await.unwrap();
            assert_eq!(info["resource_owner_id"], 1);
            assert_eq!(info["scope"], serde_json::json!(["api"]));
            assert_eq!(info["scopes"], serde_json::json!(["api"]));
            assert_eq!(info["application"]["uid"], confidential.client_id);
            let left = info["expires_in"].as_i64().unwrap();
            assert!((7190..=7200).contains(&left), "{left}");
            assert_eq!(info["expires_in_seconds"], info["expires_in"]);
            assert!(info["created_at"].is_i64());
        }

        // The public-application example: client_id, code, grant_type, redirect_uri, no secret.
        let public = register(&app, AppSpec { confidential: false, ..AppSpec::default() }).await;
        let code = code_for(&app, &public, &[("scope", "api")]).await;
        let res = token_request(&app, &[("client_id", &public.client_id), ("code", &code), ("grant_type", "authorization_code"), ("redirect_uri", REDIRECT)], None).await;
        assert_eq!(res.status(), 200);
        let tokens: Value = res.json().await.unwrap();
        assert_eq!(tokens["token_type"], "Bearer");
    }

    async fn browsers_may_call_the_token_endpoints_cross_origin(app: TestApp) {
        for path in ["/oauth/token", "/oauth/token/info"] {
            let res = reqwest::Client::new()
                .request(reqwest::Method::OPTIONS, app.url(path))
                .header("Origin", "https://spa.example")
                .header("Access-Control-Request-Method", "POST")
                .header("Access-Control-Request-Headers", "authorization, content-type")
                .send()
                .await
                .unwrap();
            assert!(res.status().is_success(), "{path}");
            assert_eq!(res.headers()["access-control-allow-origin"], "*");
            let headers = res.headers()["access-control-allow-headers"].to_str().unwrap().to_ascii_lowercase();
            assert!(headers.contains("authorization") && headers.contains("content-type"));
        }
        // The pages are not cross-origin resources.
        let res = reqwest::Client::new().get(app.url("/users/sign_in")).header("Origin", "https://spa.example").send().await.unwrap();
        assert!(res.headers().get("access-control-allow-origin").is_none());
    }

    async fn json_bodies_are_accepted_at_the_token_endpoint(app: TestApp) {
        let client = register(&app, AppSpec::default()).await;
        let code = code_for(&app, &client, &[]).await;
        let res = reqwest::Client::new()
            .post(app.url("/oauth/token"))
            .json(&serde_json::json!({"client_id": client.client_id, "client_secret": client.secret, "code": code, "grant_type": "authorization_code", "redirect_uri": REDIRECT}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(res.json::<Value>().await.unwrap()["scope"], "api", "no scope requested means api");
    }

    async fn refresh_may_narrow_the_scope(app: TestApp) {
        let client = register(&app, AppSpec::default()).await;
        let code = code_for(&app, &client, &[("scope", "api read_user")]).await;
        let tokens: Value = token_request(&app, &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", REDIRECT)], Some((&client.client_id, &client.secret))).await.json().await.unwrap();
        let res = token_request(&app, &[("grant_type", "refresh_token"), ("refresh_token", tokens["refresh_token"].as_str().unwrap()), ("scope", "read_user")], Some((&client.client_id, &client.secret))).await;
        assert_eq!(res.status(), 200);
        let narrowed: Value = res.json().await.unwrap();
        assert_eq!(narrowed["scope"], "read_user");
        let res = reqwest::Client::new()
            .post(app.url("/api/v4/users"))
            .bearer_auth(narrowed["access_token"].as_str().unwrap())
            .json(&serde_json::json!({"username": "z1", "email": "z1@example.com", "name": "Z", "password": "password-1"}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 403, "read_user cannot write");
    }

    async fn trusted_and_previously_authorized_confidential_apps_skip_consent(app: TestApp) {
        let trusted = register(&app, AppSpec { trusted: true, ..AppSpec::default() }).await;
        let browser = signed_in_browser(&app).await;
        let res = authorize(&app, &browser, &[("client_id", &trusted.client_id), ("redirect_uri", REDIRECT), ("response_type", "code"), ("scope", "read_user")]).await;
        assert_eq!(res.status(), 302, "trusted: no consent page");
        assert!(param(&redirect_params(&res), "code").is_some());

        // A confidential app the user already authorized for the same scopes.
        let confidential = register(&app, AppSpec::default()).await;
        let code = code_for(&app, &confidential, &[("scope", "read_user")]).await;
        let res = token_request(&app, &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", REDIRECT)], Some((&confidential.client_id, &confidential.secret))).await;
        assert_eq!(res.status(), 200);
        let again = authorize(&app, &browser, &[("client_id", &confidential.client_id), ("redirect_uri", REDIRECT), ("response_type", "code"), ("scope", "read_user")]).await;
        assert_eq!(again.status(), 302, "same scopes: no consent page");
        let wider = authorize(&app, &browser, &[("client_id", &confidential.client_id), ("redirect_uri", REDIRECT), ("response_type", "code"), ("scope", "read_user api")]).await;
        assert_eq!(wider.status(), 200, "different scopes: consent again");

        // A public app never skips consent (CVE-2023-34246).
        let public = register(&app, AppSpec { confidential: false, ..AppSpec::default() }).await;
        let code = code_for(&app, &public, &[("scope", "read_user")]).await;
        let res = token_request(&app, &[("grant_type", "authorization_code"), ("client_id", &public.client_id), ("code", &code), ("redirect_uri", REDIRECT)], None).await;
        assert_eq!(res.status(), 200);
        let again = authorize(&app, &browser, &[("client_id", &public.client_id), ("redirect_uri", REDIRECT), ("response_type", "code"), ("scope", "read_user")]).await;
        assert_eq!(again.status(), 200, "public: always the consent page");
    }

    async fn denying_sends_access_denied_with_state_and_issuer(app: TestApp) {
        let client = register(&app, AppSpec::default()).await;
        let browser = signed_in_browser(&app).await;
        let res = authorize(&app, &browser, &[("client_id", &client.client_id), ("redirect_uri", REDIRECT), ("response_type", "code"), ("state", "s1")]).await;
        let page = res.text().await.unwrap();
        let res = decide(&app, &browser, &page, "deny").await;
        assert_eq!(res.status(), 302);
        let pairs = redirect_params(&res);
        assert_eq!(param(&pairs, "error"), Some("access_denied"));
        assert_eq!(param(&pairs, "state"), Some("s1"));
        assert_eq!(param(&pairs, "iss"), Some(app.base.as_str()));
        assert!(param(&pairs, "code").is_none());
    }

    async fn the_consent_page_cannot_be_framed_or_forged(app: TestApp) {
        let client = register(&app, AppSpec::default()).await;
        let browser = signed_in_browser(&app).await;
        let res = authorize(&app, &browser, &[("client_id", &client.client_id), ("redirect_uri", REDIRECT), ("response_type", "code")]).await;
        assert_eq!(res.headers()["x-frame-options"], "DENY");
        let csp = res.headers()["content-security-policy"].to_str().unwrap().to_string();
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert!(csp.contains("form-action 'self' https://client.example"), "{csp}");
        let page = res.text().await.unwrap();
        // Without the CSRF token the decision is refused.
        let mut fields: Vec<(String, String)> = consent_fields(&page).into_iter().filter(|(k, _)| k != "authenticity_token").collect();
        fields.push(("decision".into(), "authorize".into()));
        let res = browser.post(app.url("/oauth/authorize")).form(&fields).send().await.unwrap();
        assert_eq!(res.status(), 403);
        // Consent is bound to what was shown: widening the scope in the form is refused.
        let mut fields = consent_fields(&page);
        for f in fields.iter_mut() {
            if f.0 == "scope" {
                f.1 = "api sudo".into();
            }
        }
        fields.push(("decision".into(), "authorize".into()));
        let res = browser.post(app.url("/oauth/authorize")).form(&fields).send().await.unwrap();
        assert_eq!(res.status(), 302);
        assert_eq!(param(&redirect_params(&res), "error"), Some("invalid_scope"));
    }

    async fn fragment_response_mode_and_registered_query_parameters(app: TestApp) {
        let client = register(&app, AppSpec { redirect_uris: "https://client.example/cb?tenant=7", ..AppSpec::default() }).await;
        let browser = signed_in_browser(&app).await;
        let res = authorize(&app, &browser, &[("client_id", &client.client_id), ("redirect_uri", "https://client.example/cb?tenant=7"), ("response_type", "code"), ("state", "q")]).await;
        let page = res.text().await.unwrap();
        let res = decide(&app, &browser, &page, "authorize").await;
        let loc = location(&res);
        assert!(loc.starts_with("https://client.example/cb?tenant=7&code="), "{loc}");
        let res = authorize(&app, &browser, &[("client_id", &client.client_id), ("redirect_uri", "https://client.example/cb?tenant=7"), ("response_type", "code"), ("response_mode", "fragment")]).await;
        let page = res.text().await.unwrap();
        let res = decide(&app, &browser, &page, "authorize").await;
        let loc = location(&res);
        assert!(loc.starts_with("https://client.example/cb?tenant=7#code=dwac-"), "{loc}");
    }

    async fn authorized_applications_can_be_revoked(app: TestApp) {
        let client = register(&app, AppSpec::default()).await;
        let code = code_for(&app, &client, &[("scope", "read_user")]).await;
        let tokens: Value = token_request(&app, &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", REDIRECT)], Some((&client.client_id, &client.secret))).await.json().await.unwrap();
        let browser = signed_in_browser(&app).await;
        let page = browser.get(app.url("/oauth/authorized_applications")).send().await.unwrap().text().await.unwrap();
        assert!(page.contains("Test Client") && page.contains("read_user"), "{page}");
        let token = crate::support::csrf_from(&page);
        let res = browser
            .post(app.url(&format!("/oauth/authorized_applications/{}/revoke", client.id)))
            .form(&[("authenticity_token", token.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 303);
        assert_eq!(api_user(&app, tokens["access_token"].as_str().unwrap()).await.status(), 401);
        let res = token_request(&app, &[("grant_type", "refresh_token"), ("refresh_token", tokens["refresh_token"].as_str().unwrap())], Some((&client.client_id, &client.secret))).await;
        assert_eq!(res.status(), 400);
        let page = browser.get(app.url("/oauth/authorized_applications")).send().await.unwrap().text().await.unwrap();
        assert!(page.contains("You have not authorized any applications."));
    }
}
