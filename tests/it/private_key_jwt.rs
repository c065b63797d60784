//! RFC 7523 `private_key_jwt` client authentication: clients registered with keys (admin API,
//! settings page, dynamic registration, `jwks_uri`), assertions accepted at the token, PAR,
//! introspection and revocation endpoints, and every defect refused with 401
//! `invalid_client`, before the grant is looked at.

use serde_json::{Value, json};

use crate::both_backends;
use crate::support::TestApp;
use crate::support::client_jwt::{self, KID, KeyClient, post_form};
use crate::support::dpop::{DpopKey, fresh_jti, now};

/// A client-credentials request authenticated by `assertion`.
async fn client_credentials(app: &TestApp, assertion: &str) -> (u16, Value) {
    let auth = KeyClient::auth_fields(assertion);
    let mut form: Vec<(&str, &str)> = vec![("grant_type", "client_credentials"), ("scope", "api")];
    form.extend(auth.iter().map(|(k, v)| (*k, v.as_str())));
    post_form(app, "/oauth/token", &form).await
}

fn with(mut v: Value, name: &str, member: Value) -> Value {
    v[name] = member;
    v
}

both_backends! {
    async fn assertions_authenticate_once_each_at_every_endpoint(app: TestApp) {
        let client = client_jwt::register(&app, "api read_user").await;
        assert_eq!(client.created["token_endpoint_auth_method"], "private_key_jwt");
        assert_eq!(client.created["secret"], Value::Null, "no secret: {}", client.created);
        let token_endpoint = app.url("/oauth/token");

        // aud: the token endpoint, or the issuer.
        let assertion = client.assertion(&token_endpoint);
        let (status, body) = client_credentials(&app, &assertion).await;
        assert_eq!(status, 200, "{body}");
        let access_token = body["access_token"].as_str().unwrap().to_string();
        let (status, _) = client_credentials(&app, &client.assertion(&app.base)).await;
        assert_eq!(status, 200);
        // The same assertion again is a replay.
        let (status, body) = client_credentials(&app, &assertion).await;
        assert_eq!((status, body["error"].as_str()), (401, Some("invalid_client")), "{body}");

        // Introspection and revocation accept the same method, with their own URL as aud.
        let auth = KeyClient::auth_fields(&client.assertion(&app.url("/oauth/introspect")));
        let mut form = vec![("token", access_token.as_str())];
        form.extend(auth.iter().map(|(k, v)| (*k, v.as_str())));
        let (status, body) = post_form(&app, "/oauth/introspect", &form).await;
        assert_eq!((status, body["active"].as_bool()), (200, Some(true)), "{body}");
        let auth = KeyClient::auth_fields(&client.assertion(&app.url("/oauth/revoke")));
        let mut form = vec![("token", access_token.as_str())];
        form.extend(auth.iter().map(|(k, v)| (*k, v.as_str())));
        assert_eq!(post_form(&app, "/oauth/revoke", &form).await.0, 200);
        // PAR too (RFC 9126 §2: its own URL is an audience).
        let auth = KeyClient::auth_fields(&client.assertion(&app.url("/oauth/par")));
        let mut form = vec![("response_type", "code"), ("redirect_uri", client.redirect_uri.as_str()), ("scope", "read_user")];
        form.extend(auth.iter().map(|(k, v)| (*k, v.as_str())));
        let (status, body) = post_form(&app, "/oauth/par", &form).await;
        assert_eq!(status, 201, "{body}");

        // A secret, or nothing, does not authenticate a private_key_jwt client.
        let res = reqwest::Client::new().post(&token_endpoint)
            .basic_auth(&client.client_id, Some("anything"))
            .form(&[("grant_type", "client_credentials")]).send().await.unwrap();
        assert_eq!(res.status(), 401);
        let (status, _) = post_form(&app, "/oauth/token", &[("grant_type", "client_credentials"), ("client_id", &client.client_id)]).await;
        assert_eq!(status, 401);
        // Renewing its secret is refused: it has none.
        let admin = app.token_for("root", "api").await;
        let id = client.created["id"].as_i64().unwrap();
        let res = reqwest::Client::new().post(app.url(&format!("/api/v4/applications/{id}/renew-secret"))).bearer_auth(&admin).send().await.unwrap();
        assert_eq!(res.status(), 400);
    }

    async fn every_defective_assertion_is_invalid_client(app: TestApp) {
        let client = client_jwt::register(&app, "api").await;
        let aud = app.url("/oauth/token");
        let good_header = json!({"alg": "ES256", "kid": KID});
        let other = DpopKey::generate();
        let cases: Vec<(&str, String)> = vec![
            ("expired", client.sign(&good_header, &with(with(client.assertion_claims(&aud), "exp", json!(now() - 1)), "iat", json!(now() - 61)))),
            ("too long-lived", client.sign(&good_header, &with(client.assertion_claims(&aud), "exp", json!(now() + 3600)))),
            ("another aud", client.sign(&good_header, &with(client.assertion_claims(&aud), "aud", json!("https://elsewhere.example/token")))),
            ("sub is not iss", client.sign(&good_header, &with(client.assertion_claims(&aud), "sub", json!("someone-else")))),
            ("no jti", { let mut c = client.assertion_claims(&aud); c.as_object_mut().unwrap().remove("jti"); client.sign(&good_header, &c) }),
            ("alg none", client.sign(&json!({"alg": "none", "kid": KID}), &client.assertion_claims(&aud))),
            ("HS256", client.sign(&json!({"alg": "HS256", "kid": KID}), &client.assertion_claims(&aud))),
            ("unknown kid", client.sign(&json!({"alg": "ES256", "kid": "key-2"}), &client.assertion_claims(&aud))),
            ("another key", other.sign_raw(&good_header.to_string(), &client.assertion_claims(&aud).to_string())),
            ("a DPoP proof", client.sign(&json!({"alg": "ES256", "kid": KID, "typ": "dpop+jwt"}), &client.assertion_claims(&aud))),
            ("truncated", client.assertion(&aud)[..40].to_string()),
            ("not a JWT", "a.b.c".to_string()),
            ("duplicate members", client.key.sign_raw(r#"{"alg":"ES256","kid":"key-1"}"#, &format!(r#"{{"iss":"{0}","sub":"{0}","sub":"x","aud":"{aud}","exp":{1},"jti":"{2}"}}"#, client.client_id, now() + 60, fresh_jti()))),
            ("huge exp", client.sign(&good_header, &with(client.assertion_claims(&aud), "exp", json!(1e300)))),
            ("oversized", client.sign(&good_header, &with(client.assertion_claims(&aud), "pad", json!("x".repeat(9000))))),
        ];
        for (what, assertion) in cases {
            let mut form = vec![("grant_type", "client_credentials"), ("client_id", client.client_id.as_str())];
            let auth = KeyClient::auth_fields(&assertion);
            form.extend(auth.iter().map(|(k, v)| (*k, v.as_str())));
            let (status, body) = post_form(&app, "/oauth/token", &form).await;
            assert_eq!((status, body["error"].as_str()), (401, Some("invalid_client")), "{what}: {body}");
        }
        // A wrong client_assertion_type.
        let assertion = client.assertion(&aud);
        let (status, body) = post_form(&app, "/oauth/token", &[
            ("grant_type", "client_credentials"),
            ("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:saml2-bearer"),
            ("client_assertion", &assertion),
        ]).await;
        assert_eq!((status, body["error"].as_str()), (401, Some("invalid_client")));
        // The client is authenticated before the grant: a bad assertion with a bad code is
        // invalid_client, a good one with a bad code invalid_grant.
        let bad_code = [("grant_type", "authorization_code"), ("code", "dwac-nonsense"), ("redirect_uri", client.redirect_uri.as_str())];
        let auth = KeyClient::auth_fields(&client.sign(&json!({"alg": "ES256", "kid": "nope"}), &client.assertion_claims(&aud)));
        let mut form = bad_code.to_vec();
        form.extend(auth.iter().map(|(k, v)| (*k, v.as_str())));
        let (status, body) = post_form(&app, "/oauth/token", &form).await;
        assert_eq!((status, body["error"].as_str()), (401, Some("invalid_client")), "{body}");
        let auth = KeyClient::auth_fields(&client.assertion(&aud));
        let mut form = bad_code.to_vec();
        form.extend(auth.iter().map(|(k, v)| (*k, v.as_str())));
        let (status, body) = post_form(&app, "/oauth/token", &form).await;
        assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")), "{body}");
        // An assertion from a client that has a secret is refused too.
        let secret_client = crate::support::oauth::register(&app, Default::default()).await;
        let claims = json!({"iss": secret_client.client_id, "sub": secret_client.client_id, "aud": aud, "exp": now() + 60, "jti": fresh_jti()});
        let auth = KeyClient::auth_fields(&client.sign(&good_header, &claims));
        let mut form = vec![("grant_type", "client_credentials")];
        form.extend(auth.iter().map(|(k, v)| (*k, v.as_str())));
        assert_eq!(post_form(&app, "/oauth/token", &form).await.0, 401);
    }

    async fn unusable_keys_are_refused_at_registration(app: TestApp) {
        let key = DpopKey::generate();
        let base = json!({"name": "K", "redirect_uri": "https://k.example/cb", "scopes": "api", "token_endpoint_auth_method": "private_key_jwt"});
        let mut private = key.jwk();
        private["d"] = json!("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
        let mut p384 = key.jwk();
        p384["crv"] = json!("P-384");
        let weak_rsa = json!({"kty": "RSA", "e": "AQAB", "n": "sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1WlUzewbgBHod5pcM9H95GQRV3JDXboIRROSBigeC5yjU1hGzHHyXss8UDprecbAYxknTcQkhslANGRUZmdTOQ5qTRsLAt6BTYuyvVRdhS8exSZEy_c4g"});
        let (hmac, no_keys) = (json!({"kty": "oct", "k": "c2VjcmV0"}), json!({"keys": []}));
        for (what, jwks) in [
            ("a private key", json!({"keys": [private]}).to_string()),
            ("an unknown curve", json!({"keys": [p384]}).to_string()),
            ("weak RSA", json!({"keys": [weak_rsa]}).to_string()),
            ("a symmetric key", json!({"keys": [hmac]}).to_string()),
            ("no key", no_keys.to_string()),
            ("not JSON", "{\"keys\": [".to_string()),
        ] {
            let (status, body) = client_jwt::create(&app, &with(base.clone(), "jwks", json!(jwks))).await;
            assert_eq!(status, 400, "{what}: {body}");
        }
        assert_eq!(client_jwt::create(&app, &base).await.0, 400, "keys are required");
        let both = with(with(base.clone(), "jwks", json!(client_jwt::jwks(&key, "k"))), "jwks_uri", json!("https://k.example/jwks"));
        assert_eq!(client_jwt::create(&app, &both).await.0, 400, "jwks or jwks_uri, not both");
        let secret_with_keys = with(with(base.clone(), "token_endpoint_auth_method", json!("client_secret_basic")), "jwks", json!(client_jwt::jwks(&key, "k")));
        assert_eq!(client_jwt::create(&app, &secret_with_keys).await.0, 400);
        let local_uri = with(base.clone(), "jwks_uri", json!("https://127.0.0.1/jwks"));
        assert_eq!(client_jwt::create(&app, &local_uri).await.0, 400, "no private addresses");

        // Dynamic registration (RFC 7591): private_key_jwt with jwks, no client_secret.
        let res = reqwest::Client::new().post(app.url("/oauth/register")).json(&json!({
            "redirect_uris": ["https://dyn.example/cb"],
            "token_endpoint_auth_method": "private_key_jwt",
            "jwks": serde_json::from_str::<Value>(&client_jwt::jwks(&key, KID)).unwrap(),
        })).send().await.unwrap();
        assert_eq!(res.status(), 201);
        let info: Value = res.json().await.unwrap();
        assert!(info.get("client_secret").is_none(), "{info}");
        assert_eq!(info["token_endpoint_auth_method"], "private_key_jwt");
        assert_eq!(info["jwks"]["keys"][0]["kid"], KID);
        let registered = KeyClient { client_id: info["client_id"].as_str().unwrap().to_string(), redirect_uri: "https://dyn.example/cb".into(), key, created: info };
        // It authenticates (a dynamic client has the code grant only: the grant is refused
        // after the client is known).
        let auth = KeyClient::auth_fields(&registered.assertion(&app.base));
        let mut form = vec![("grant_type", "authorization_code"), ("code", "dwac-x"), ("redirect_uri", "https://dyn.example/cb")];
        form.extend(auth.iter().map(|(k, v)| (*k, v.as_str())));
        let (status, body) = post_form(&app, "/oauth/token", &form).await;
        assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")), "{body}");
        let res = reqwest::Client::new().post(app.url("/oauth/register")).json(&json!({
            "redirect_uris": ["https://dyn.example/cb"], "token_endpoint_auth_method": "private_key_jwt",
        })).send().await.unwrap();
        assert_eq!(res.status(), 400);
    }

    async fn keys_at_a_jwks_uri_are_fetched_and_refetched_for_a_new_kid(app: TestApp) {
        let app = TestApp::spawn_with(app.backend, &[("DOORWARD_BACKCHANNEL_LOGOUT_ALLOW_LOOPBACK", "true")]).await;
        let first = DpopKey::generate();
        let served = std::sync::Arc::new(std::sync::Mutex::new(client_jwt::jwks(&first, KID)));
        let fetches = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (s, f) = (served.clone(), fetches.clone());
        let failures = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let broken = failures.clone();
        let router = axum::Router::new().route("/jwks", axum::routing::get(move || {
            let (s, f) = (s.clone(), f.clone());
            async move {
                f.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                ([("content-type", "application/json")], s.lock().unwrap().clone())
            }
        })).route("/broken", axum::routing::get(move || {
            let broken = broken.clone();
            async move {
                broken.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                axum::http::StatusCode::INTERNAL_SERVER_ERROR
            }
        }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let uri = format!("http://{}/jwks", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router).await });
        let (status, created) = client_jwt::create(&app, &json!({"name": "U", "redirect_uri": "https://u.example/cb", "scopes": "api", "token_endpoint_auth_method": "private_key_jwt", "jwks_uri": uri})).await;
        assert_eq!(status, 200, "{created}");
        assert_eq!(created["jwks_uri"], uri.as_str());
        let mut client = KeyClient { client_id: created["application_id"].as_str().unwrap().to_string(), redirect_uri: "https://u.example/cb".into(), key: first, created };
        let aud = app.url("/oauth/token");
        for _ in 0..3 {
            assert_eq!(client_credentials(&app, &client.assertion(&aud)).await.0, 200);
        }
        assert_eq!(fetches.load(std::sync::atomic::Ordering::SeqCst), 1, "cached");
        // The client rotates to a new key under a new kid: the set is fetched again.
        let second = DpopKey::generate();
        *served.lock().unwrap() = client_jwt::jwks(&second, "key-2");
        client.key = second;
        let claims = client.assertion_claims(&aud);
        let rotated = client.sign(&json!({"alg": "ES256", "kid": "key-2"}), &claims);
        // Within REFETCH_AFTER of the first fetch the set is not fetched again.
        assert_eq!(client_credentials(&app, &rotated).await.0, 401);
        assert_eq!(fetches.load(std::sync::atomic::Ordering::SeqCst), 1);
        app.clock.advance(31);
        let claims = client.assertion_claims(&aud);
        let rotated = client.sign(&json!({"alg": "ES256", "kid": "key-2"}), &claims);
        let (status, body) = client_credentials(&app, &rotated).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(fetches.load(std::sync::atomic::Ordering::SeqCst), 2);

        // A URL that fails is not fetched again for every request.
        let broken_uri = uri.replace("/jwks", "/broken");
        let (status, created) = client_jwt::create(&app, &json!({"name": "B", "redirect_uri": "https://b.example/cb", "scopes": "api", "token_endpoint_auth_method": "private_key_jwt", "jwks_uri": broken_uri})).await;
        assert_eq!(status, 200, "{created}");
        let broken_client = KeyClient { client_id: created["application_id"].as_str().unwrap().to_string(), redirect_uri: "https://b.example/cb".into(), key: DpopKey::generate(), created };
        for _ in 0..5 {
            assert_eq!(client_credentials(&app, &broken_client.assertion(&aud)).await.0, 401);
        }
        assert_eq!(failures.load(std::sync::atomic::Ordering::SeqCst), 1, "one attempt per 30 s");
    }

    async fn a_burst_waits_for_the_one_jwks_uri_fetch(app: TestApp) {
        let app = TestApp::spawn_with(app.backend, &[("DOORWARD_BACKCHANNEL_LOGOUT_ALLOW_LOOPBACK", "true")]).await;
        let key = DpopKey::generate();
        let served = client_jwt::jwks(&key, KID);
        let fetches = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let f = fetches.clone();
        // A slow key server: every request of the burst arrives while the first fetch runs.
        let router = axum::Router::new().route("/jwks", axum::routing::get(move || {
            let (f, served) = (f.clone(), served.clone());
            async move {
                f.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                tokio::time::sleep(std::time::Duration::from_millis(400)).await;
                ([("content-type", "application/json")], served)
            }
        }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let uri = format!("http://{}/jwks", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router).await });
        let (status, created) = client_jwt::create(&app, &json!({"name": "Burst", "redirect_uri": "https://burst.example/cb", "scopes": "api", "token_endpoint_auth_method": "private_key_jwt", "jwks_uri": uri})).await;
        assert_eq!(status, 200, "{created}");
        let client = KeyClient { client_id: created["application_id"].as_str().unwrap().to_string(), redirect_uri: "https://burst.example/cb".into(), key, created };
        let aud = app.url("/oauth/token");
        let assertions: Vec<String> = (0..6).map(|_| client.assertion(&aud)).collect();
        let answers = all_at_once(&app, &assertions).await;
        assert!(answers.iter().all(|s| *s == 200), "{answers:?}");
        assert_eq!(fetches.load(std::sync::atomic::Ordering::SeqCst), 1, "one fetch for the burst");
    }
}

/// Client-credentials requests with each assertion, all at once; their statuses.
async fn all_at_once(app: &TestApp, assertions: &[String]) -> Vec<u16> {
    let mut set = tokio::task::JoinSet::new();
    for assertion in assertions {
        let (url, assertion) = (app.url("/oauth/token"), assertion.clone());
        set.spawn(async move {
            let mut form = vec![
                ("grant_type", "client_credentials".to_string()),
                ("scope", "api".to_string()),
            ];
            form.extend(KeyClient::auth_fields(&assertion));
            reqwest::Client::new()
                .post(url)
                .form(&form)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        });
    }
    set.join_all().await
}
