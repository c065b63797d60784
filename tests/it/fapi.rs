//! `DOORWARD_SECURITY_PROFILE=fapi2`: the FAPI 2.0 Security Profile's rules on OAuth clients
//! and their tokens (docs/fapi.md), and what stays as it was.

use serde_json::{Value, json};

use crate::both_backends;
use crate::support::client_jwt::{self, KeyClient, post_form};
use crate::support::dpop::DpopKey;
use crate::support::{TestApp, oauth};

const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

async fn fapi2(app: &TestApp) -> TestApp {
    TestApp::spawn_with(app.backend, &[("DOORWARD_SECURITY_PROFILE", "fapi2")]).await
}

/// Pushes `form` authenticated by a fresh assertion of `client`.
async fn push(app: &TestApp, client: &KeyClient, form: &[(&str, &str)]) -> (u16, Value) {
    let auth = KeyClient::auth_fields(&client.assertion(&app.base));
    let mut form = form.to_vec();
    form.extend(auth.iter().map(|(k, v)| (*k, v.as_str())));
    post_form(app, "/oauth/par", &form).await
}

both_backends! {
    async fn the_profile_runs_par_private_key_jwt_pkce_and_dpop_to_a_bound_token(app: TestApp) {
        let app = fapi2(&app).await;
        let doc: Value = reqwest::get(app.url("/.well-known/openid-configuration")).await.unwrap().json().await.unwrap();
        assert_eq!(doc["require_pushed_authorization_requests"], true);
        assert_eq!(doc["token_endpoint_auth_methods_supported"], json!(["private_key_jwt"]));
        assert_eq!(doc["code_challenge_methods_supported"], json!(["S256"]));
        assert_eq!(doc["response_types_supported"], json!(["code"]));
        assert!(doc.get("client_id_metadata_document_supported").is_none());
        assert!(!doc["dpop_signing_alg_values_supported"].as_array().unwrap().iter().any(|a| a == "RS256"));
        let oauth_doc: Value = reqwest::get(app.url("/.well-known/oauth-authorization-server")).await.unwrap().json().await.unwrap();
        assert_eq!(oauth_doc["token_endpoint_auth_methods_supported"], json!(["private_key_jwt"]));

        let client = client_jwt::register(&app, "read_user openid").await;
        let base = [("response_type", "code"), ("redirect_uri", client.redirect_uri.as_str()), ("scope", "read_user"), ("state", "s1")];
        // PKCE S256 is required at PAR: missing or plain is invalid_request.
        let (status, body) = push(&app, &client, &base).await;
        assert_eq!((status, body["error"].as_str()), (400, Some("invalid_request")), "{body}");
        let mut plain = base.to_vec();
        plain.extend([("code_challenge", VERIFIER), ("code_challenge_method", "plain")]);
        assert_eq!(push(&app, &client, &plain).await.0, 400);
        // A plain (unpushed) request is refused.
        let browser = oauth::signed_in_browser(&app).await;
        let mut direct = base.to_vec();
        direct.extend([("client_id", client.client_id.as_str()), ("code_challenge", CHALLENGE), ("code_challenge_method", "S256")]);
        let res = oauth::authorize(&app, &browser, &direct).await;
        let pairs = oauth::redirect_params(&res);
        assert_eq!(oauth::param(&pairs, "error"), Some("invalid_request"));

        // PAR without a DPoP binding is accepted; the code then needs a proof.
        let mut good = base.to_vec();
        good.extend([("code_challenge", CHALLENGE), ("code_challenge_method", "S256")]);
        let (status, body) = push(&app, &client, &good).await;
        assert_eq!(status, 201, "{body}");
        let request_uri = body["request_uri"].as_str().unwrap().to_string();
        let res = oauth::authorize(&app, &browser, &[("client_id", &client.client_id), ("request_uri", &request_uri)]).await;
        assert_eq!(res.status(), 200);
        let page = res.text().await.unwrap();
        let res = oauth::decide(&app, &browser, &page, "authorize").await;
        let pairs = oauth::redirect_params(&res);
        assert_eq!(oauth::param(&pairs, "iss"), Some(app.base.as_str()));
        let code = oauth::param(&pairs, "code").unwrap().to_string();
        let exchange = |assertion: String| {
            let code = code.clone();
            let redirect = client.redirect_uri.clone();
            async move {
                let auth = KeyClient::auth_fields(&assertion);
                let mut form = vec![("grant_type", "authorization_code".to_string()), ("code", code), ("redirect_uri", redirect), ("code_verifier", VERIFIER.to_string())];
                form.extend(auth.iter().map(|(k, v)| (*k, v.clone())));
                form
            }
        };
        let form = exchange(client.assertion(&app.base)).await;
        let res = reqwest::Client::new().post(app.url("/oauth/token")).form(&form).send().await.unwrap();
        assert_eq!(res.status(), 400);
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"], "invalid_request", "{body}");
        // With a proof (the failed attempt left the code unused): a DPoP-bound token.
        let dpop = DpopKey::generate();
        let form = exchange(client.assertion(&app.base)).await;
        let res = reqwest::Client::new().post(app.url("/oauth/token"))
            .header("DPoP", dpop.proof("POST", &app.url("/oauth/token"), None))
            .form(&form).send().await.unwrap();
        assert_eq!(res.status(), 200);
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["token_type"], "DPoP", "{body}");
        // Without its proof the token is refused, and the challenge offers the profile's
        // algorithms only.
        let res = reqwest::Client::new().get(app.url("/api/v4/user"))
            .bearer_auth(body["access_token"].as_str().unwrap()).send().await.unwrap();
        assert_eq!(res.status(), 401);
        let challenge = res.headers()["www-authenticate"].to_str().unwrap().to_string();
        assert!(challenge.starts_with("DPoP algs=\"ES256 EdDSA PS256\""), "{challenge}");
    }

    async fn secrets_and_public_clients_are_refused_but_personal_tokens_work(app: TestApp) {
        let app = fapi2(&app).await;
        let confidential = oauth::register(&app, Default::default()).await;
        let public = oauth::register(&app, oauth::AppSpec { confidential: false, ..Default::default() }).await;
        for path in ["/oauth/par", "/oauth/token"] {
            let res = reqwest::Client::new().post(app.url(path))
                .basic_auth(&confidential.client_id, Some(&confidential.secret))
                .form(&[("grant_type", "client_credentials"), ("response_type", "code"), ("redirect_uri", confidential.redirect_uri.as_str())])
                .send().await.unwrap();
            assert_eq!(res.status(), 401, "{path}");
            let body: Value = res.json().await.unwrap();
            assert_eq!(body["error"], "invalid_client");
            let (status, body) = post_form(&app, path, &[("client_id", &public.client_id), ("grant_type", "authorization_code"), ("code", "x"), ("response_type", "code"), ("redirect_uri", &public.redirect_uri)]).await;
            assert_eq!((status, body["error"].as_str()), (401, Some("invalid_client")), "{path}");
        }
        // Registration takes private_key_jwt clients only.
        for method in ["none", "client_secret_basic", "client_secret_post"] {
            let res = reqwest::Client::new().post(app.url("/oauth/register"))
                .json(&json!({"redirect_uris": ["https://r.example/cb"], "token_endpoint_auth_method": method}))
                .send().await.unwrap();
            assert_eq!(res.status(), 400, "{method}");
            let body: Value = res.json().await.unwrap();
            assert_eq!(body["error"], "invalid_client_metadata");
        }
        let key = DpopKey::generate();
        let res = reqwest::Client::new().post(app.url("/oauth/register"))
            .json(&json!({"redirect_uris": ["https://r.example/cb"], "token_endpoint_auth_method": "private_key_jwt",
                "jwks": serde_json::from_str::<Value>(&client_jwt::jwks(&key, "k")).unwrap()}))
            .send().await.unwrap();
        assert_eq!(res.status(), 201);
        // Personal access tokens and the admin API are not OAuth clients: they work as before.
        let pat = app.token_for("root", "api").await;
        let res = reqwest::Client::new().get(app.url("/api/v4/user")).header("PRIVATE-TOKEN", &pat).send().await.unwrap();
        assert_eq!(res.status(), 200);
        // The admin API still creates a client with a secret (the profile binds OAuth
        // clients at the endpoints, not the administrator); that client is refused there.
        let res = reqwest::Client::new().post(app.url("/api/v4/applications")).header("PRIVATE-TOKEN", &pat)
            .json(&json!({"name": "Legacy", "redirect_uri": "https://legacy.example/cb", "scopes": "api"}))
            .send().await.unwrap();
        assert_eq!(res.status(), 200);
        let legacy: Value = res.json().await.unwrap();
        assert!(legacy["secret"].as_str().is_some_and(|s| !s.is_empty()));
        let res = reqwest::Client::new().post(app.url("/oauth/token"))
            .basic_auth(legacy["application_id"].as_str().unwrap(), legacy["secret"].as_str())
            .form(&[("grant_type", "client_credentials"), ("scope", "api")])
            .send().await.unwrap();
        assert_eq!(res.status(), 401);
        // An assertion whose aud is an array, or the token endpoint, is refused under the
        // profile (FAPI 2.0 §5.3.2.1: the issuer, as a string).
        let client = client_jwt::register(&app, "api").await;
        let dpop = DpopKey::generate();
        for aud in [json!([app.base]), json!(app.url("/oauth/token"))] {
            let mut claims = client.assertion_claims(&app.base);
            claims["aud"] = aud.clone();
            let assertion = client.sign(&json!({"alg": "ES256", "kid": client_jwt::KID}), &claims);
            let auth = KeyClient::auth_fields(&assertion);
            let mut form = vec![("grant_type", "client_credentials")];
            form.extend(auth.iter().map(|(k, v)| (*k, v.as_str())));
            let res = reqwest::Client::new().post(app.url("/oauth/token"))
                .header("DPoP", dpop.proof("POST", &app.url("/oauth/token"), None))
                .form(&form).send().await.unwrap();
            assert_eq!(res.status(), 401, "{aud}");
        }
    }

    async fn the_profile_offers_the_code_flow_only_whatever_else_is_enabled(app: TestApp) {
        let app = TestApp::spawn_with(app.backend, &[("DOORWARD_SECURITY_PROFILE", "fapi2"), ("DOORWARD_IMPLICIT_GRANT", "true")]).await;
        let doc: Value = reqwest::get(app.url("/.well-known/openid-configuration")).await.unwrap().json().await.unwrap();
        assert_eq!(doc["response_types_supported"], json!(["code"]));
        let client = client_jwt::register(&app, "api").await;
        let browser = oauth::signed_in_browser(&app).await;
        let res = oauth::authorize(&app, &browser, &[("client_id", &client.client_id), ("redirect_uri", &client.redirect_uri), ("response_type", "token"), ("state", "s")]).await;
        // Not pushed (PAR is required) and not a response type offered: no token either way.
        assert!(!crate::support::location(&res).contains("access_token"), "{}", crate::support::location(&res));
        let (status, body) = push(&app, &client, &[("response_type", "token"), ("redirect_uri", &client.redirect_uri)]).await;
        assert_eq!((status, body["error"].as_str()), (400, Some("unsupported_response_type")), "{body}");
    }

    async fn rs256_passwords_and_slow_codes_are_refused_under_the_profile(app: TestApp) {
        use jsonwebtoken::Algorithm;
        let default_app = app;
        let app = fapi2(&default_app).await;
        let doc: Value = reqwest::get(app.url("/.well-known/openid-configuration")).await.unwrap().json().await.unwrap();
        assert!(!doc["grant_types_supported"].as_array().unwrap().iter().any(|g| g == "password"));
        // An RSA-keyed client: PS256 authenticates under the profile, RS256 does not; in the
        // default profile RS256 does.
        let rsa = client_jwt::RsaKey::generate();
        let body = json!({"name": "R", "redirect_uri": oauth::REDIRECT, "scopes": "api",
            "token_endpoint_auth_method": "private_key_jwt", "jwks": json!({"keys": [rsa.jwk]}).to_string()});
        let token_with = |app: &TestApp, client_id: String, alg: Algorithm, grant: &'static str| {
            let claims = json!({"iss": client_id, "sub": client_id, "aud": app.base,
                "exp": crate::support::dpop::now() + 60, "jti": crate::support::dpop::fresh_jti()});
            let name = if alg == Algorithm::PS256 { "PS256" } else { "RS256" };
            let assertion = rsa.sign(alg, &json!({"alg": name, "kid": "rsa-1"}), &claims);
            let dpop = DpopKey::generate();
            let req = reqwest::Client::new().post(app.url("/oauth/token"))
                .header("DPoP", dpop.proof("POST", &app.url("/oauth/token"), None))
                .form(&[("grant_type", grant), ("scope", "api"), ("username", "root"), ("password", crate::support::ROOT_PASSWORD),
                    ("client_assertion_type", client_jwt::ASSERTION_TYPE), ("client_assertion", assertion.as_str())]);
            async move {
                let res = req.send().await.unwrap();
                let status = res.status().as_u16();
                (status, res.json::<Value>().await.unwrap_or(Value::Null))
            }
        };
        let (status, created) = client_jwt::create(&app, &body).await;
        assert_eq!(status, 200, "{created}");
        let id = created["application_id"].as_str().unwrap().to_string();
        let (status, body_ps) = token_with(&app, id.clone(), Algorithm::PS256, "client_credentials").await;
        assert_eq!(status, 200, "{body_ps}");
        assert_eq!(token_with(&app, id.clone(), Algorithm::RS256, "client_credentials").await.0, 401);
        let (status, refused) = token_with(&app, id.clone(), Algorithm::PS256, "password").await;
        assert_eq!((status, refused["error"].as_str()), (400, Some("unsupported_grant_type")), "{refused}");
        let (_, created) = client_jwt::create(&default_app, &body).await;
        let id = created["application_id"].as_str().unwrap().to_string();
        assert_eq!(token_with(&default_app, id, Algorithm::RS256, "client_credentials").await.0, 200);

        // Codes live 60 seconds under the profile.
        let client = client_jwt::register(&app, "read_user").await;
        let (status, body) = push(&app, &client, &[("response_type", "code"), ("redirect_uri", client.redirect_uri.as_str()),
            ("scope", "read_user"), ("state", "s"), ("code_challenge", CHALLENGE), ("code_challenge_method", "S256")]).await;
        assert_eq!(status, 201, "{body}");
        let browser = oauth::signed_in_browser(&app).await;
        let res = oauth::authorize(&app, &browser, &[("client_id", &client.client_id), ("request_uri", body["request_uri"].as_str().unwrap())]).await;
        let page = res.text().await.unwrap();
        let res = oauth::decide(&app, &browser, &page, "authorize").await;
        let code = oauth::param(&oauth::redirect_params(&res), "code").unwrap().to_string();
        app.clock.advance(61);
        // The assertion is made for the server's clock, now 61 s ahead.
        let mut claims = client.assertion_claims(&app.base);
        claims["iat"] = json!(crate::support::dpop::now() + 61);
        claims["exp"] = json!(crate::support::dpop::now() + 121);
        let assertion = client.sign(&json!({"alg": "ES256", "kid": client_jwt::KID}), &claims);
        let dpop = DpopKey::generate();
        let res = reqwest::Client::new().post(app.url("/oauth/token"))
            .header("DPoP", dpop.proof("POST", &app.url("/oauth/token"), None))
            .form(&[("grant_type", "authorization_code"), ("code", code.as_str()), ("redirect_uri", client.redirect_uri.as_str()),
                ("code_verifier", VERIFIER), ("client_assertion_type", client_jwt::ASSERTION_TYPE), ("client_assertion", assertion.as_str())])
            .send().await.unwrap();
        assert_eq!(res.status(), 400);
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"], "invalid_grant", "{body}");
    }
}
