//! The other grants (password, client credentials, device, implicit) and the lifecycle
//! endpoints (revocation, introspection), with the `oauth2` crate as the client where it
//! supports the flow.

use std::time::Duration;

use oauth2::basic::BasicClient;
use oauth2::{
    AccessToken, ClientId, ClientSecret, DeviceAuthorizationUrl, IntrospectionUrl,
    ResourceOwnerPassword, ResourceOwnerUsername, Scope, StandardDeviceAuthorizationResponse,
    TokenIntrospectionResponse, TokenResponse, TokenUrl,
};
use serde_json::Value;

use crate::both_backends;
use crate::support::oauth::{
    AppSpec, Client, REDIRECT, authorize, code_for, decide, http_client, param, redirect_params,
    register, signed_in_browser, token_request,
};
use crate::support::{ROOT_PASSWORD, TestApp, csrf_from, location};

async fn api_user(app: &TestApp, token: &str) -> reqwest::Response {
    reqwest::Client::new()
        .get(app.url("/api/v4/user"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

async fn error_of(res: reqwest::Response, status: u16) -> Value {
    assert_eq!(res.status().as_u16(), status);
    res.json().await.unwrap()
}

/// Tokens from a code exchange for `client`.
async fn code_tokens(app: &TestApp, client: &Client, scope: &str) -> Value {
    let code = code_for(app, client, &[("scope", scope)]).await;
    token_request(
        app,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
        ],
        Some((&client.client_id, &client.secret)),
    )
    .await
    .json()
    .await
    .unwrap()
}

both_backends! {
    async fn the_oauth2_crate_uses_the_password_grant(app: TestApp) {
        let registered = register(&app, AppSpec::default()).await;
        let client = BasicClient::new(ClientId::new(registered.client_id.clone()))
            .set_client_secret(ClientSecret::new(registered.secret.clone()))
            .set_token_uri(TokenUrl::new(app.url("/oauth/token")).unwrap());
        let tokens = client
            .exchange_password(&ResourceOwnerUsername::new("root".into()), &ResourceOwnerPassword::new(ROOT_PASSWORD.into()))
            .request_async(&http_client)
            .await
            .expect("password grant");
        assert_eq!(tokens.scopes().unwrap()[0].as_str(), "api", "the default scope is api");
        assert!(tokens.refresh_token().is_some());
        assert_eq!(api_user(&app, tokens.access_token().secret()).await.status(), 200);

        // The seed's curl example: form body, HTTP Basic client authentication.
        let res = reqwest::Client::new()
            .post(app.url("/oauth/token"))
            .basic_auth(&registered.client_id, Some(&registered.secret))
            .body(format!("grant_type=password&username=admin@example.com&password={ROOT_PASSWORD}"))
            .header("content-type", "application/x-www-form-urlencoded")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(res.json::<Value>().await.unwrap()["token_type"], "Bearer");
    }

    async fn password_grant_errors(app: TestApp) {
        let confidential = register(&app, AppSpec::default()).await;
        let basic = Some((confidential.client_id.as_str(), confidential.secret.as_str()));
        let wrong = error_of(token_request(&app, &[("grant_type", "password"), ("username", "root"), ("password", "nope")], basic).await, 400).await;
        let unknown = error_of(token_request(&app, &[("grant_type", "password"), ("username", "ghost"), ("password", "nope")], basic).await, 400).await;
        assert_eq!(wrong["error"], "invalid_grant");
        assert_eq!(wrong, unknown, "the same answer for an unknown user and a wrong password");
        // No client at all, or a confidential client without its secret.
        let res = token_request(&app, &[("grant_type", "password"), ("username", "root"), ("password", ROOT_PASSWORD)], None).await;
        assert_eq!(error_of(res, 401).await["error"], "invalid_client");
        let res = token_request(&app, &[("grant_type", "password"), ("client_id", &confidential.client_id), ("username", "root"), ("password", ROOT_PASSWORD)], None).await;
        assert_eq!(error_of(res, 401).await["error"], "invalid_client");
        // Public clients are refused unless the instance allows them.
        let public = register(&app, AppSpec { confidential: false, ..AppSpec::default() }).await;
        let res = token_request(&app, &[("grant_type", "password"), ("client_id", &public.client_id), ("username", "root"), ("password", ROOT_PASSWORD)], None).await;
        assert_eq!(error_of(res, 401).await["error"], "unauthorized_client");
        // Scope beyond the application's.
        let res = token_request(&app, &[("grant_type", "password"), ("username", "root"), ("password", ROOT_PASSWORD), ("scope", "sudo")], basic).await;
        assert_eq!(error_of(res, 400).await["error"], "invalid_scope");
        // Blocked users.
        let user = app.create_user("nina", "nina-password").await;
        let admin = app.token_for("root", "api").await;
        reqwest::Client::new().post(app.url(&format!("/api/v4/users/{}/block", user["id"]))).header("PRIVATE-TOKEN", admin).send().await.unwrap();
        let res = token_request(&app, &[("grant_type", "password"), ("username", "nina"), ("password", "nina-password")], basic).await;
        assert_eq!(error_of(res, 400).await["error"], "invalid_grant");
    }

    async fn password_grant_failures_share_the_sign_in_lockout(app: TestApp) {
        let client = register(&app, AppSpec::default()).await;
        let basic = Some((client.client_id.as_str(), client.secret.as_str()));
        for _ in 0..5 {
            token_request(&app, &[("grant_type", "password"), ("username", "root"), ("password", "nope")], basic).await;
        }
        for _ in 0..5 {
            app.sign_in_with(&app.client, "root", "nope").await;
        }
        // Ten failures across both doors: both are locked now, even with the right password.
        let res = token_request(&app, &[("grant_type", "password"), ("username", "root"), ("password", ROOT_PASSWORD)], basic).await;
        let body = error_of(res, 400).await;
        assert!(body["error_description"].as_str().unwrap().starts_with("Too many failed sign-in attempts"), "{body}");
        assert_eq!(app.sign_in_with(&app.client, "root", ROOT_PASSWORD).await.status(), 429);
    }

    async fn public_clients_may_use_the_password_grant_when_allowed(app: TestApp) {
        let backend = app.backend;
        drop(app);
        let app = TestApp::spawn_with(backend, &[("DOORWARD_PASSWORD_GRANT_PUBLIC_CLIENTS", "true")]).await;
        let public = register(&app, AppSpec { confidential: false, ..AppSpec::default() }).await;
        let res = token_request(&app, &[("grant_type", "password"), ("client_id", &public.client_id), ("username", "root"), ("password", ROOT_PASSWORD)], None).await;
        assert_eq!(res.status(), 200);
    }

    async fn the_oauth2_crate_uses_client_credentials(app: TestApp) {
        let registered = register(&app, AppSpec::default()).await;
        let client = BasicClient::new(ClientId::new(registered.client_id.clone()))
            .set_client_secret(ClientSecret::new(registered.secret.clone()))
            .set_token_uri(TokenUrl::new(app.url("/oauth/token")).unwrap());
        let tokens = client
            .exchange_client_credentials()
            .add_scope(Scope::new("read_user".into()))
            .request_async(&http_client)
            .await
            .expect("client credentials");
        assert!(tokens.refresh_token().is_none(), "no refresh token without a user");
        let access = tokens.access_token().secret().clone();
        let res = api_user(&app, &access).await;
        assert_eq!(res.status(), 403, "the token has no user");
        // Introspection shows no subject.
        let res = token_request(&app, &[("token", &access)], None).await;
        assert_eq!(res.status(), 400);
        let info: Value = reqwest::Client::new()
            .post(app.url("/oauth/introspect"))
            .basic_auth(&registered.client_id, Some(&registered.secret))
            .form(&[("token", access.as_str())])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(info["active"], true);
        assert!(info.get("sub").is_none() && info.get("username").is_none(), "{info}");
        // Public clients cannot use it; OpenID scopes need a user.
        let public = register(&app, AppSpec { confidential: false, ..AppSpec::default() }).await;
        let res = token_request(&app, &[("grant_type", "client_credentials"), ("client_id", &public.client_id)], None).await;
        assert_eq!(error_of(res, 401).await["error"], "unauthorized_client");
        let res = token_request(&app, &[("grant_type", "client_credentials"), ("scope", "openid")], Some((&registered.client_id, &registered.secret))).await;
        assert_eq!(error_of(res, 400).await["error"], "invalid_scope");
    }

    async fn the_oauth2_crate_completes_the_device_flow(app: TestApp) {
        let registered = register(&app, AppSpec { confidential: false, ..AppSpec::default() }).await;
        let client = BasicClient::new(ClientId::new(registered.client_id.clone()))
            .set_token_uri(TokenUrl::new(app.url("/oauth/token")).unwrap())
            .set_device_authorization_url(DeviceAuthorizationUrl::new(app.url("/oauth/authorize_device")).unwrap());
        let details: StandardDeviceAuthorizationResponse = client
            .exchange_device_code()
            .add_scope(Scope::new("read_user".into()))
            .request_async(&http_client)
            .await
            .expect("device authorization");
        let user_code = details.user_code().secret().clone();
        assert_eq!(user_code.len(), 9);
        assert_eq!(details.verification_uri().as_str(), app.url("/oauth/device"));
        assert_eq!(details.expires_in(), Duration::from_secs(300));
        assert_eq!(details.interval(), Duration::from_secs(5));

        // The person approves on another screen while the device polls.
        let browser = signed_in_browser(&app).await;
        let complete = details.verification_uri_complete().unwrap().secret().clone();
        let page = browser.get(&complete).send().await.unwrap().text().await.unwrap();
        assert!(page.contains(&format!("value=\"{user_code}\"")), "the code is filled in");
        let res = browser
            .post(app.url("/oauth/device/confirm"))
            .form(&[("authenticity_token", csrf_from(&page).as_str()), ("user_code", &user_code.to_lowercase())])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let page = res.text().await.unwrap();
        assert!(page.contains("Test Client") && page.contains("<code>read_user</code>"), "{page}");
        let form = [("authenticity_token", csrf_from(&page)), ("user_code", user_code.clone()), ("decision", "authorize".to_string())];
        let res = browser.post(app.url("/oauth/device")).form(&form).send().await.unwrap();
        assert!(res.text().await.unwrap().contains("Device connected"));

        let clock = app.clock.clone();
        let sleep = move |d: Duration| {
            clock.advance(i64::try_from(d.as_secs()).unwrap());
            tokio::time::sleep(Duration::from_millis(5))
        };
        let tokens = client
            .exchange_device_access_token(&details)
            .request_async(&http_client, sleep, Some(Duration::from_secs(30)))
            .await
            .expect("device token");
        assert_eq!(api_user(&app, tokens.access_token().secret()).await.status(), 200);
        assert!(tokens.refresh_token().is_some());
    }

    async fn device_flow_errors(app: TestApp) {
        let client = register(&app, AppSpec::default()).await;
        let basic = Some((client.client_id.as_str(), client.secret.as_str()));
        let res = token_request(&app, &[("scope", "read_user")], None).await;
        assert_eq!(res.status(), 400);
        let start = || async {
            let res = reqwest::Client::new()
                .post(app.url("/oauth/authorize_device"))
                .basic_auth(&client.client_id, Some(&client.secret))
                .form(&[("scope", "read_user")])
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 200);
            assert_eq!(res.headers()["cache-control"], "no-store");
            res.json::<Value>().await.unwrap()
        };
        let app_ref = &app;
        let poll = |code: String| async move {
            token_request(app_ref, &[("grant_type", "urn:ietf:params:oauth:grant-type:device_code"), ("device_code", &code)], basic).await
        };
        let d = start().await;
        let code = d["device_code"].as_str().unwrap().to_string();
        assert_eq!(error_of(poll(code.clone()).await, 400).await["error"], "authorization_pending");
        assert_eq!(error_of(poll(code.clone()).await, 400).await["error"], "slow_down", "polled within the interval");
        app.clock.advance(10);
        assert_eq!(error_of(poll(code.clone()).await, 400).await["error"], "authorization_pending", "the interval grew to 10 s");

        // Deny.
        let browser = signed_in_browser(&app).await;
        let page = browser.get(app.url("/oauth/device")).send().await.unwrap().text().await.unwrap();
        let form = [("authenticity_token", csrf_from(&page)), ("user_code", d["user_code"].as_str().unwrap().to_string()), ("decision", "deny".into())];
        let res = browser.post(app.url("/oauth/device")).form(&form).send().await.unwrap();
        assert!(res.text().await.unwrap().contains("Access denied"));
        app.clock.advance(10);
        assert_eq!(error_of(poll(code.clone()).await, 400).await["error"], "access_denied");
        // RFC 8628 §3.5: slow_down is a kind of authorization_pending; a decided grant is
        // answered at once, however fast the device polls.
        assert_eq!(error_of(poll(code.clone()).await, 400).await["error"], "access_denied");

        // Expiry.
        let d = start().await;
        app.clock.advance(301);
        assert_eq!(error_of(poll(d["device_code"].as_str().unwrap().to_string()).await, 400).await["error"], "expired_token");
        let form = [("authenticity_token", csrf_from(&page)), ("user_code", d["user_code"].as_str().unwrap().to_string())];
        let res = browser.post(app.url("/oauth/device/confirm")).form(&form).send().await.unwrap();
        assert_eq!(res.status(), 422);
        assert!(res.text().await.unwrap().contains("The user code is expired"));

        // Another client's device code; an unknown one.
        let d = start().await;
        let other = register(&app, AppSpec::default()).await;
        let res = token_request(&app, &[("grant_type", "urn:ietf:params:oauth:grant-type:device_code"), ("device_code", d["device_code"].as_str().unwrap())], Some((&other.client_id, &other.secret))).await;
        assert_eq!(error_of(res, 400).await["error"], "invalid_grant");
        assert_eq!(error_of(poll("dwdc-unknown".into()).await, 400).await["error"], "invalid_grant");
        // A scope beyond the application's.
        let res = reqwest::Client::new().post(app.url("/oauth/authorize_device")).basic_auth(&client.client_id, Some(&client.secret)).form(&[("scope", "sudo")]).send().await.unwrap();
        assert_eq!(error_of(res, 400).await["error"], "invalid_scope");
    }

    async fn guessing_user_codes_is_rate_limited(app: TestApp) {
        let browser = signed_in_browser(&app).await;
        let page = browser.get(app.url("/oauth/device")).send().await.unwrap().text().await.unwrap();
        let token = csrf_from(&page);
        for _ in 0..10 {
            let res = browser.post(app.url("/oauth/device/confirm")).form(&[("authenticity_token", token.as_str()), ("user_code", "BBBB-BBBB")]).send().await.unwrap();
            assert_eq!(res.status(), 422);
            assert!(res.text().await.unwrap().contains("The user code is invalid."));
        }
        let res = browser.post(app.url("/oauth/device/confirm")).form(&[("authenticity_token", token.as_str()), ("user_code", "BBBB-BBBB")]).send().await.unwrap();
        assert!(res.text().await.unwrap().contains("Too many wrong codes"));
        // The page needs a session.
        let res = app.new_browser().get(app.url("/oauth/device?user_code=ABCD")).send().await.unwrap();
        assert_eq!(res.status(), 303);
        assert!(location(&res).starts_with("/users/sign_in?return_to=/oauth/device"));
    }

    async fn revocation_follows_rfc_7009(app: TestApp) {
        let registered = register(&app, AppSpec::default()).await;
        let tokens = code_tokens(&app, &registered, "read_user").await;
        let access = tokens["access_token"].as_str().unwrap().to_string();
        let refresh = tokens["refresh_token"].as_str().unwrap().to_string();
        // The oauth2 crate refuses a revocation URL that is not https, so this test speaks
        // RFC 7009 directly.
        let revoke = |token: String, hint: &'static str| {
            reqwest::Client::new()
                .post(app.url("/oauth/revoke"))
                .basic_auth(&registered.client_id, Some(&registered.secret))
                .form(&[("token", token), ("token_type_hint", hint.to_string())])
                .send()
        };

        // Another client may not revoke it: 403 and nothing revoked.
        let other = register(&app, AppSpec::default()).await;
        let res = reqwest::Client::new().post(app.url("/oauth/revoke")).basic_auth(&other.client_id, Some(&other.secret)).form(&[("token", access.as_str())]).send().await.unwrap();
        let body = error_of(res, 403).await;
        assert_eq!(body["error"], "unauthorized_client");
        assert_eq!(api_user(&app, &access).await.status(), 200);
        // Unknown tokens: 200 {}.
        let res = reqwest::Client::new().post(app.url("/oauth/revoke")).basic_auth(&registered.client_id, Some(&registered.secret)).form(&[("token", "dwat-unknown")]).send().await.unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(res.json::<Value>().await.unwrap(), serde_json::json!({}));
        // No client authentication.
        let res = reqwest::Client::new().post(app.url("/oauth/revoke")).form(&[("token", access.as_str())]).send().await.unwrap();
        assert_eq!(error_of(res, 401).await["error"], "invalid_client");

        // Revoking the refresh token ends the access token of its grant too.
        let res = revoke(refresh.clone(), "refresh_token").await.unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(res.headers()["cache-control"], "no-store");
        assert_eq!(api_user(&app, &access).await.status(), 401);
        let res = token_request(&app, &[("grant_type", "refresh_token"), ("refresh_token", &refresh)], Some((&registered.client_id, &registered.secret))).await;
        assert_eq!(error_of(res, 400).await["error"], "invalid_grant");

        // Revoking an access token (idempotently).
        let tokens = code_tokens(&app, &registered, "read_user").await;
        let access = tokens["access_token"].as_str().unwrap().to_string();
        for _ in 0..2 {
            assert_eq!(revoke(access.clone(), "access_token").await.unwrap().status(), 200);
        }
        assert_eq!(api_user(&app, &access).await.status(), 401);
    }

    async fn introspection_follows_rfc_7662(app: TestApp) {
        let registered = register(&app, AppSpec::default()).await;
        let tokens = code_tokens(&app, &registered, "read_user openid").await;
        let access = tokens["access_token"].as_str().unwrap().to_string();
        let client = BasicClient::new(ClientId::new(registered.client_id.clone()))
            .set_client_secret(ClientSecret::new(registered.secret.clone()))
            .set_token_uri(TokenUrl::new(app.url("/oauth/token")).unwrap())
            .set_introspection_url(IntrospectionUrl::new(app.url("/oauth/introspect")).unwrap());
        let info = client.introspect(&AccessToken::new(access.clone())).request_async(&http_client).await.expect("introspection");
        assert!(info.active());
        assert_eq!(info.client_id().unwrap().as_str(), registered.client_id);
        assert_eq!(info.username().unwrap(), "root");
        assert_eq!(info.sub().unwrap(), "1");
        assert_eq!(info.iss().unwrap(), app.base);
        assert_eq!(info.scopes().unwrap().len(), 2);
        let exp = info.exp().unwrap().timestamp();
        let iat = info.iat().unwrap().timestamp();
        assert_eq!(exp - iat, 7200);

        let raw = |form: Vec<(&'static str, String)>, who: Option<(&str, &str)>, bearer: Option<&str>| {
            let mut req = reqwest::Client::new().post(app.url("/oauth/introspect")).form(&form);
            if let Some((id, secret)) = who {
                req = req.basic_auth(id, Some(secret));
            }
            if let Some(b) = bearer {
                req = req.bearer_auth(b);
            }
            req.send()
        };
        let basic = Some((registered.client_id.as_str(), registered.secret.as_str()));
        // A refresh token is active too, without exp.
        let body: Value = raw(vec![("token", tokens["refresh_token"].as_str().unwrap().into())], basic, None).await.unwrap().json().await.unwrap();
        assert_eq!(body["active"], true);
        assert_eq!(body["token_type"], "refresh_token");
        assert!(body.get("exp").is_none());
        // Unknown, foreign, expired, revoked: {"active": false} and nothing else.
        let other = register(&app, AppSpec::default()).await;
        let inactive = serde_json::json!({"active": false});
        let body: Value = raw(vec![("token", "dwat-unknown".into())], basic, None).await.unwrap().json().await.unwrap();
        assert_eq!(body, inactive);
        let body: Value = raw(vec![("token", access.clone())], Some((&other.client_id, &other.secret)), None).await.unwrap().json().await.unwrap();
        assert_eq!(body, inactive, "another client learns nothing");
        // A resource server may authenticate with a bearer token of the same application.
        let second = code_tokens(&app, &registered, "read_user").await;
        let body: Value = raw(vec![("token", access.clone())], None, Some(second["access_token"].as_str().unwrap())).await.unwrap().json().await.unwrap();
        assert_eq!(body["active"], true);
        let res = raw(vec![("token", access.clone())], None, Some("dwat-bogus")).await.unwrap();
        assert_eq!(error_of(res, 401).await["error"], "invalid_client");
        let res = raw(vec![("token", access.clone())], None, None).await.unwrap();
        assert_eq!(error_of(res, 401).await["error"], "invalid_client");
        app.clock.advance(7201);
        let body: Value = raw(vec![("token", access.clone())], basic, None).await.unwrap().json().await.unwrap();
        assert_eq!(body, inactive, "expired");
    }

    async fn expired_rows_are_purged_and_purging_is_safe_on_several_nodes(app: TestApp) {
        use doorward::domain::secret::{hash, token_key};
        let client = register(&app, AppSpec::default()).await;
        let unused_code = code_for(&app, &client, &[]).await;
        let kept = code_tokens(&app, &client, "read_user").await;
        let revoked = code_tokens(&app, &client, "read_user").await;
        let res = reqwest::Client::new()
            .post(app.url("/oauth/revoke"))
            .basic_auth(&client.client_id, Some(&client.secret))
            .form(&[("token", revoked["access_token"].as_str().unwrap())])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let device: Value = reqwest::Client::new()
            .post(app.url("/oauth/authorize_device"))
            .basic_auth(&client.client_id, Some(&client.secret))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let store = &app.state.store;
        app.clock.advance(doorward::bootstrap::OAUTH_RETENTION + 8000);
        // Two nodes purging at the same moment.
        tokio::join!(doorward::bootstrap::purge_expired(&app.state), doorward::bootstrap::purge_expired(&app.state));
        assert!(store.grant_by_code_hash(&token_key(&unused_code)).await.unwrap().is_none(), "expired code purged");
        assert!(store.device_grant_by_device_code(&hash(device["device_code"].as_str().unwrap())).await.unwrap().is_none());
        assert!(store.access_token_by_hash(&token_key(revoked["access_token"].as_str().unwrap())).await.unwrap().is_none(), "revoked token purged");
        // An expired access token whose refresh token is still good stays, and refreshes.
        assert!(store.access_token_by_hash(&token_key(kept["access_token"].as_str().unwrap())).await.unwrap().is_some());
        let res = token_request(&app, &[("grant_type", "refresh_token"), ("refresh_token", kept["refresh_token"].as_str().unwrap())], Some((&client.client_id, &client.secret))).await;
        assert_eq!(res.status(), 200);
    }

    async fn implicit_grant_is_off_by_default(app: TestApp) {
        let public = register(&app, AppSpec { confidential: false, ..AppSpec::default() }).await;
        let browser = signed_in_browser(&app).await;
        let res = authorize(&app, &browser, &[("client_id", &public.client_id), ("redirect_uri", REDIRECT), ("response_type", "token"), ("state", "s")]).await;
        assert_eq!(res.status(), 302);
        assert_eq!(param(&redirect_params(&res), "error"), Some("unsupported_response_type"));
    }

    async fn implicit_grant_when_enabled_works_as_the_seed_describes(app: TestApp) {
        let backend = app.backend;
        drop(app);
        let app = TestApp::spawn_with(backend, &[("DOORWARD_IMPLICIT_GRANT", "true")]).await;
        let public = register(&app, AppSpec { confidential: false, ..AppSpec::default() }).await;
        let browser = signed_in_browser(&app).await;
        let res = authorize(&app, &browser, &[("client_id", &public.client_id), ("redirect_uri", REDIRECT), ("response_type", "token"), ("state", "YOUR_UNIQUE_STATE_HASH"), ("scope", "read_user")]).await;
        assert_eq!(res.status(), 200);
        let page = res.text().await.unwrap();
        let res = decide(&app, &browser, &page, "authorize").await;
        assert_eq!(res.status(), 302);
        let loc = location(&res);
        assert!(loc.starts_with("https://client.example/callback#access_token=dwat-"), "{loc}");
        let pairs = redirect_params(&res);
        assert_eq!(param(&pairs, "token_type"), Some("Bearer"));
        assert_eq!(param(&pairs, "expires_in"), Some("7200"));
        assert_eq!(param(&pairs, "scope"), Some("read_user"));
        assert_eq!(param(&pairs, "state"), Some("YOUR_UNIQUE_STATE_HASH"));
        assert!(param(&pairs, "refresh_token").is_none());
        assert_eq!(api_user(&app, param(&pairs, "access_token").unwrap()).await.status(), 200);
        // Confidential applications use the code flow.
        let confidential = register(&app, AppSpec::default()).await;
        let res = authorize(&app, &browser, &[("client_id", &confidential.client_id), ("redirect_uri", REDIRECT), ("response_type", "token")]).await;
        assert_eq!(param(&redirect_params(&res), "error"), Some("unauthorized_client"));
        assert!(location(&res).contains('#'), "implicit errors come back in the fragment");
        // RFC 9449 §10 binds codes: a token in a fragment is never silently left unbound.
        let jkt = crate::support::dpop::DpopKey::generate().thumbprint();
        let res = authorize(&app, &browser, &[("client_id", &public.client_id), ("redirect_uri", REDIRECT), ("response_type", "token"), ("dpop_jkt", &jkt)]).await;
        assert_eq!(param(&redirect_params(&res), "error"), Some("invalid_request"));
        assert!(param(&redirect_params(&res), "access_token").is_none());
    }
}
