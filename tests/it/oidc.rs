//! OpenID Connect end to end with the `openidconnect` crate as the relying party:
//! discovery, the code flow with PKCE and nonce, id_token signature and claims checked
//! against the JWKS, UserInfo, refresh, and key rotation by the CLI while a server runs.
//!
//! openidconnect does not insist on an https issuer, so it discovers the test server at
//! its plain `http://127.0.0.1:port` issuer; its HTTP client is the same non-following
//! reqwest closure the `oauth2` tests use.

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreIdToken, CoreProviderMetadata, CoreUserInfoClaims,
};
use openidconnect::{
    AccessTokenHash, AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce,
    OAuth2TokenResponse, PkceCodeChallenge, RedirectUrl, RefreshToken, Scope, TokenResponse,
};
use serde_json::Value;

use crate::both_backends;
use crate::support::oauth::{
    AppSpec, REDIRECT, decide, http_client, param, redirect_params, register, signed_in_browser,
};
use crate::support::{SECRET_KEY, TestApp};

/// Runs the `doorward` binary against the test server's database.
pub fn doorward_cli(app: &TestApp, args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_doorward"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DOORWARD_DATABASE_URL", &app.database_url)
        .env("DOORWARD_DATA_DIR", app.data_dir.path())
        .env("DOORWARD_SECRET_KEY", SECRET_KEY)
        .env("DOORWARD_LOG_LEVEL", "error")
        .stdin(Stdio::null())
        .output()
        .expect("run doorward");
    assert!(
        out.status.success(),
        "doorward {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

pub async fn discover(app: &TestApp) -> CoreProviderMetadata {
    CoreProviderMetadata::discover_async(IssuerUrl::new(app.base.clone()).unwrap(), &http_client)
        .await
        .expect("discovery")
}

/// The JWKS as JSON.
pub async fn jwks(app: &TestApp) -> Value {
    reqwest::get(app.url("/oauth/discovery/keys"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Waits until the server publishes `n` keys (its cache reloads every few seconds).
pub async fn wait_for_keys(app: &TestApp, n: usize) -> Value {
    for _ in 0..40 {
        let set = jwks(app).await;
        if set["keys"].as_array().unwrap().len() == n {
            return set;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("the server never published {n} keys");
}

fn kid_of(token: &str) -> String {
    let header = token.split('.').next().unwrap();
    let bytes = base64_decode(header);
    let v: Value = serde_json::from_slice(&bytes).unwrap();
    v["kid"].as_str().unwrap().to_string()
}

fn claims_of(token: &str) -> Value {
    serde_json::from_slice(&base64_decode(token.split('.').nth(1).unwrap())).unwrap()
}

fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .unwrap()
}

/// A second server on `app`'s database and master key (another node), returning its base URL.
async fn second_node(app: &TestApp) -> String {
    let env: std::collections::HashMap<&str, String> = [
        ("DOORWARD_LISTEN", "127.0.0.1:0".to_string()),
        (
            "DOORWARD_DATA_DIR",
            app.data_dir.path().display().to_string(),
        ),
        ("DOORWARD_DATABASE_URL", app.database_url.clone()),
        ("DOORWARD_SECRET_KEY", SECRET_KEY.to_string()),
        ("DOORWARD_DB_MAX_CONNECTIONS", "3".to_string()),
    ]
    .into_iter()
    .collect();
    let config = doorward::config::Config::load_with(None, &|k| env.get(k).cloned()).unwrap();
    let server = doorward::app::Server::build(config, doorward::domain::clock::Clock::system())
        .await
        .unwrap();
    let base = format!("http://{}", server.local_addr());
    // Runs until the test's runtime ends.
    tokio::spawn(server.run(std::future::pending::<()>()));
    base
}

async fn jwks_at(base: &str) -> Value {
    reqwest::get(format!("{base}/oauth/discovery/keys"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

both_backends! {
    async fn discovery_advertises_only_what_works(app: TestApp) {
        let res = reqwest::get(app.url("/.well-known/openid-configuration")).await.unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(res.headers()["cache-control"], "max-age=86400, public, must-revalidate, no-transform");
        let doc: Value = res.json().await.unwrap();
        assert_eq!(doc["issuer"], app.base);
        assert_eq!(doc["jwks_uri"], app.url("/oauth/discovery/keys"));
        assert_eq!(doc["userinfo_endpoint"], app.url("/oauth/userinfo"));
        assert_eq!(doc["end_session_endpoint"], app.url("/oauth/logout"));
        assert_eq!(doc["response_types_supported"], serde_json::json!(["code"]));
        assert_eq!(doc["id_token_signing_alg_values_supported"], serde_json::json!(["RS256"]));
        assert_eq!(doc["authorization_response_iss_parameter_supported"], true);
        // RFC 7591 registration is on by default (issue 13); tests/it/dynamic_registration.rs
        // checks it disappears when turned off.
        assert_eq!(doc["registration_endpoint"], serde_json::json!(app.url("/oauth/register")));
        let grants = doc["grant_types_supported"].as_array().unwrap();
        assert!(!grants.iter().any(|g| g == "implicit"));
        assert!(grants.iter().any(|g| g == "urn:ietf:params:oauth:grant-type:device_code"));
        assert!(doc["scopes_supported"].as_array().unwrap().iter().any(|s| s == "openid"));
        // Every advertised endpoint answers something other than 404.
        for key in ["authorization_endpoint", "token_endpoint", "userinfo_endpoint", "jwks_uri", "revocation_endpoint", "introspection_endpoint", "device_authorization_endpoint", "end_session_endpoint"] {
            let url = doc[key].as_str().unwrap();
            let get = reqwest::get(url).await.unwrap().status();
            let post = reqwest::Client::new().post(url).send().await.unwrap().status();
            assert!(get != 404 || post != 404, "{key} {url}");
        }

        let rfc8414: Value = reqwest::get(app.url("/.well-known/oauth-authorization-server")).await.unwrap().json().await.unwrap();
        assert_eq!(rfc8414["issuer"], app.base);
        assert_eq!(rfc8414["token_endpoint"], doc["token_endpoint"]);

        // The implicit grant shows up only when it is on.
        let implicit = TestApp::spawn_with(app.backend, &[("DOORWARD_IMPLICIT_GRANT", "true")]).await;
        let doc: Value = reqwest::get(implicit.url("/.well-known/openid-configuration")).await.unwrap().json().await.unwrap();
        assert_eq!(doc["response_types_supported"], serde_json::json!(["code", "token"]));
        assert!(doc["grant_types_supported"].as_array().unwrap().iter().any(|g| g == "implicit"));

        // WebFinger, as GitLab has it.
        let wf: Value = reqwest::get(app.url("/.well-known/webfinger?resource=acct:root@example.com")).await.unwrap().json().await.unwrap();
        assert_eq!(wf["subject"], "acct:root@example.com");
        assert_eq!(wf["links"][0]["rel"], "http://openid.net/specs/connect/1.0/issuer");
        assert_eq!(wf["links"][0]["href"], format!("{}/", app.base));
        assert_eq!(reqwest::get(app.url("/.well-known/webfinger")).await.unwrap().status(), 400);

        // The public documents answer CORS preflights from any origin.
        for path in ["/.well-known/openid-configuration", "/oauth/discovery/keys", "/oauth/userinfo", "/.well-known/webfinger"] {
            let res = reqwest::Client::new()
                .request(reqwest::Method::OPTIONS, app.url(path))
                .header("Origin", "https://rp.example")
                .header("Access-Control-Request-Method", "GET")
                .send()
                .await
                .unwrap();
            assert!(res.status().is_success(), "{path}");
            assert_eq!(res.headers()["access-control-allow-origin"], "*", "{path}");
        }
    }

    async fn the_jwks_publishes_the_rs256_key_under_its_thumbprint(app: TestApp) {
        let res = reqwest::get(app.url("/oauth/discovery/keys")).await.unwrap();
        assert_eq!(res.headers()["cache-control"], "max-age=86400, public, must-revalidate, no-transform");
        let set: Value = res.json().await.unwrap();
        let keys = set["keys"].as_array().unwrap();
        assert_eq!(keys.len(), 1);
        let key = &keys[0];
        assert_eq!(key["kty"], "RSA");
        assert_eq!(key["alg"], "RS256");
        assert_eq!(key["use"], "sig");
        assert_eq!(key["e"], "AQAB");
        assert_eq!(key["kid"], doorward::oidc::signing_keys::rsa_thumbprint(key["n"].as_str().unwrap(), "AQAB"));
        assert!(key.get("d").is_none(), "no private parts");
        let same: Value = reqwest::get(app.url("/-/jwks")).await.unwrap().json().await.unwrap();
        assert_eq!(same, set);
        // The private key is stored only encrypted.
        let stored = app.state.store.signing_keys().await.unwrap();
        assert_eq!(stored.len(), 1);
        assert!(!String::from_utf8_lossy(&stored[0].private_key_encrypted).contains("PRIVATE KEY"));
    }

    async fn openidconnect_runs_the_code_flow_with_pkce_nonce_userinfo_refresh_and_rotation(app: TestApp) {
        let registered = register(&app, AppSpec { scopes: "openid profile email read_user", ..AppSpec::default() }).await;
        let metadata = discover(&app).await;
        let client = CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(registered.client_id.clone()),
            Some(ClientSecret::new(registered.secret.clone())),
        )
        .set_redirect_uri(RedirectUrl::new(REDIRECT.to_string()).unwrap());
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let (url, csrf, nonce) = client
            .authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
            .add_scope(Scope::new("email".into()))
            .add_scope(Scope::new("profile".into()))
            .set_pkce_challenge(challenge)
            .url();
        let browser = signed_in_browser(&app).await;
        let page = browser.get(url.as_str()).send().await.unwrap().text().await.unwrap();
        let res = decide(&app, &browser, &page, "authorize").await;
        let pairs = redirect_params(&res);
        assert_eq!(param(&pairs, "state"), Some(csrf.secret().as_str()));
        let code = param(&pairs, "code").unwrap().to_string();

        let tokens = client
            .exchange_code(AuthorizationCode::new(code))
            .unwrap()
            .set_pkce_verifier(verifier)
            .request_async(&http_client)
            .await
            .expect("code exchange");
        let id_token = tokens.id_token().expect("an id_token with openid");
        let verifier = client.id_token_verifier();
        let claims = id_token.claims(&verifier, &nonce).expect("valid id_token");
        assert_eq!(claims.subject().as_str(), "1");
        assert_eq!(claims.issuer().as_str(), app.base);
        assert_eq!(claims.audiences()[0].as_str(), registered.client_id);
        assert_eq!(claims.preferred_username().unwrap().as_str(), "root");
        assert_eq!(claims.email().unwrap().as_str(), "admin@example.com");
        let lifetime = claims.expiration() - claims.issue_time();
        assert_eq!(lifetime.num_seconds(), 120);
        assert!(claims.auth_time().is_some());
        let expected_hash = claims.access_token_hash().expect("at_hash");
        let actual = AccessTokenHash::from_token(
            tokens.access_token(),
            id_token.signing_alg().unwrap(),
            id_token.signing_key(&verifier).unwrap(),
        )
        .unwrap();
        assert_eq!(&actual, expected_hash);
        let raw = claims_of(&id_token.to_string());
        assert_eq!(raw["nickname"], "root");
        assert_eq!(raw["name"], "Administrator");
        assert_eq!(raw["profile"], format!("{}/root", app.base));
        assert_eq!(raw["aud"], registered.client_id, "aud is a string, as GitLab sends it");
        assert!(raw.get("website").is_none(), "empty claims are omitted");
        let first_kid = kid_of(&id_token.to_string());

        // UserInfo: the same claims, through the crate, by header, parameter and POST.
        let info: CoreUserInfoClaims = client
            .user_info(tokens.access_token().clone(), Some(claims.subject().clone()))
            .unwrap()
            .request_async(&http_client)
            .await
            .expect("userinfo");
        assert_eq!(info.preferred_username().unwrap().as_str(), "root");
        assert_eq!(info.email().unwrap().as_str(), "admin@example.com");
        let access = tokens.access_token().secret().clone();
        let by_param: Value = reqwest::get(app.url(&format!("/oauth/userinfo?access_token={access}"))).await.unwrap().json().await.unwrap();
        assert_eq!(by_param["sub"], "1");
        let by_post = reqwest::Client::new().post(app.url("/oauth/userinfo")).form(&[("access_token", access.as_str())]).send().await.unwrap();
        assert_eq!(by_post.status(), 200);
        assert_eq!(by_post.headers()["cache-control"], "no-store");
        assert!(by_param.get("auth_time").is_none() && by_param.get("nonce").is_none());

        // Refresh: a new id_token for the same subject, without the nonce.
        let refreshed = client
            .exchange_refresh_token(&RefreshToken::new(tokens.refresh_token().unwrap().secret().clone()))
            .unwrap()
            .request_async(&http_client)
            .await
            .expect("refresh");
        let refreshed_id = refreshed.id_token().expect("a new id_token on refresh");
        let again = refreshed_id.claims(&verifier, |_: Option<&Nonce>| Ok(())).expect("valid refreshed id_token");
        assert_eq!(again.subject().as_str(), "1");
        assert!(again.nonce().is_none());

        // Rotation by the CLI while the server runs: new tokens carry the new kid, the old
        // token still verifies against the published keys.
        let out = doorward_cli(&app, &["keys", "rotate", "--json"]);
        let rotated: Value = serde_json::from_slice(&out.stdout).unwrap();
        let new_kid = rotated["kid"].as_str().unwrap().to_string();
        assert_ne!(new_kid, first_kid);
        let set = wait_for_keys(&app, 2).await;
        assert_eq!(set["keys"][0]["kid"], new_kid.as_str());
        assert_eq!(set["keys"][1]["kid"], first_kid.as_str());
        let list: Value = serde_json::from_slice(&doorward_cli(&app, &["keys", "list", "--json"]).stdout).unwrap();
        assert_eq!(list[0]["status"], "signing");
        assert_eq!(list[1]["status"], "published");

        let client = CoreClient::from_provider_metadata(
            discover(&app).await,
            ClientId::new(registered.client_id.clone()),
            Some(ClientSecret::new(registered.secret.clone())),
        )
        .set_redirect_uri(RedirectUrl::new(REDIRECT.to_string()).unwrap());
        let verifier = client.id_token_verifier();
        id_token.claims(&verifier, &nonce).expect("the old id_token still verifies");
        let after = client
            .exchange_refresh_token(&RefreshToken::new(refreshed.refresh_token().unwrap().secret().clone()))
            .unwrap()
            .request_async(&http_client)
            .await
            .expect("refresh after rotation");
        let after_id = after.id_token().unwrap();
        assert_eq!(kid_of(&after_id.to_string()), new_kid);
        after_id.claims(&verifier, |_: Option<&Nonce>| Ok(())).expect("the new id_token verifies");

        // ES256 as an option.
        doorward_cli(&app, &["keys", "rotate", "--alg", "ES256"]);
        let set = wait_for_keys(&app, 3).await;
        assert_eq!(set["keys"][0]["kty"], "EC");
        assert_eq!(set["keys"][0]["crv"], "P-256");
        let doc: Value = reqwest::get(app.url("/.well-known/openid-configuration")).await.unwrap().json().await.unwrap();
        assert_eq!(doc["id_token_signing_alg_values_supported"], serde_json::json!(["ES256", "RS256"]));
        let es = token_with_openid(&app, &registered).await;
        let es_token: CoreIdToken = es.parse().unwrap();
        let client = CoreClient::from_provider_metadata(
            discover(&app).await,
            ClientId::new(registered.client_id.clone()),
            Some(ClientSecret::new(registered.secret.clone())),
        );
        es_token.claims(&client.id_token_verifier().set_allowed_algs(vec![openidconnect::core::CoreJwsSigningAlgorithm::EcdsaP256Sha256]), |_: Option<&Nonce>| Ok(())).expect("ES256 id_token verifies");
    }

    async fn every_node_signs_with_the_same_keys_and_follows_a_rotation(app: TestApp) {
        let other = second_node(&app).await;
        assert_eq!(jwks_at(&other).await, jwks(&app).await, "the second node reuses the first key");
        let client = register(&app, AppSpec { scopes: "openid", ..AppSpec::default() }).await;
        let id_token = token_with_openid(&app, &client).await;
        let set = jwks_at(&other).await;
        assert_eq!(set["keys"][0]["kid"], kid_of(&id_token).as_str());

        let out = doorward_cli(&app, &["keys", "rotate", "--json"]);
        let kid = serde_json::from_slice::<Value>(&out.stdout).unwrap()["kid"].as_str().unwrap().to_string();
        wait_for_keys(&app, 2).await;
        for _ in 0..40 {
            if jwks_at(&other).await["keys"].as_array().unwrap().len() == 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        assert_eq!(jwks_at(&other).await, jwks(&app).await, "both nodes publish the same keys");
        // Tokens from either node now carry the new kid.
        let res = reqwest::Client::new()
            .post(format!("{other}/oauth/token"))
            .basic_auth(&client.client_id, Some(&client.secret))
            .form(&[("grant_type", "password"), ("username", "root"), ("password", crate::support::ROOT_PASSWORD), ("scope", "openid")])
            .send()
            .await
            .unwrap();
        let tokens: Value = res.json().await.unwrap();
        assert_eq!(kid_of(tokens["id_token"].as_str().unwrap()), kid);
        assert_eq!(kid_of(&token_with_openid(&app, &client).await), kid);
    }

    async fn id_tokens_come_only_with_openid_and_from_every_user_grant(app: TestApp) {
        let client = register(&app, AppSpec { scopes: "openid read_user", ..AppSpec::default() }).await;
        let code = crate::support::oauth::code_for(&app, &client, &[("scope", "read_user")]).await;
        let res = crate::support::oauth::token_request(&app, &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", REDIRECT)], Some((&client.client_id, &client.secret))).await;
        let tokens: Value = res.json().await.unwrap();
        assert!(tokens.get("id_token").is_none(), "no openid, no id_token");
        let userinfo = reqwest::Client::new().get(app.url("/oauth/userinfo")).bearer_auth(tokens["access_token"].as_str().unwrap()).send().await.unwrap();
        assert_eq!(userinfo.status(), 403);
        assert!(userinfo.headers()["www-authenticate"].to_str().unwrap().contains("insufficient_scope"));

        // The password grant, with a nonce passed directly (GitLab's ROPC).
        let res = crate::support::oauth::token_request(&app, &[("grant_type", "password"), ("username", "root"), ("password", crate::support::ROOT_PASSWORD), ("scope", "openid"), ("nonce", "n-0S6")], Some((&client.client_id, &client.secret))).await;
        assert_eq!(res.status(), 200);
        let tokens: Value = res.json().await.unwrap();
        let claims = claims_of(tokens["id_token"].as_str().unwrap());
        assert_eq!(claims["sub"], "1");
        assert_eq!(claims["nonce"], "n-0S6");
        assert_eq!(claims["aud"], client.client_id.as_str());
    }

    async fn userinfo_refuses_bad_tokens_with_rfc_6750_challenges(app: TestApp) {
        let res = reqwest::get(app.url("/oauth/userinfo")).await.unwrap();
        assert_eq!(res.status(), 401);
        assert!(res.headers()["www-authenticate"].to_str().unwrap().starts_with("Bearer realm="));
        let res = reqwest::Client::new().get(app.url("/oauth/userinfo")).bearer_auth("dwat-nonsense").send().await.unwrap();
        assert_eq!(res.status(), 401);
        assert!(res.headers()["www-authenticate"].to_str().unwrap().contains("error=\"invalid_token\""));
        assert!(res.text().await.unwrap().is_empty(), "GitLab's empty body");

        let client = register(&app, AppSpec { scopes: "openid", ..AppSpec::default() }).await;
        let access = token_with_openid_access(&app, &client).await;
        assert_eq!(reqwest::Client::new().get(app.url("/oauth/userinfo")).bearer_auth(&access).send().await.unwrap().status(), 200);
        let res = reqwest::Client::new().post(app.url("/oauth/revoke")).form(&[("token", access.as_str()), ("client_id", client.client_id.as_str()), ("client_secret", client.secret.as_str())]).send().await.unwrap();
        assert_eq!(res.status(), 200);
        let res = reqwest::Client::new().get(app.url("/oauth/userinfo")).bearer_auth(&access).send().await.unwrap();
        assert_eq!(res.status(), 401);
        assert!(res.headers()["www-authenticate"].to_str().unwrap().contains("revoked"));
    }
}

/// A token response with `openid` from the password grant, for `client`.
async fn password_tokens(app: &TestApp, client: &crate::support::oauth::Client) -> Value {
    let res = crate::support::oauth::token_request(
        app,
        &[
            ("grant_type", "password"),
            ("username", "root"),
            ("password", crate::support::ROOT_PASSWORD),
            ("scope", "openid"),
        ],
        Some((&client.client_id, &client.secret)),
    )
    .await;
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

async fn token_with_openid(app: &TestApp, client: &crate::support::oauth::Client) -> String {
    password_tokens(app, client).await["id_token"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn token_with_openid_access(app: &TestApp, client: &crate::support::oauth::Client) -> String {
    password_tokens(app, client).await["access_token"]
        .as_str()
        .unwrap()
        .to_string()
}
