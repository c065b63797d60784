//! RFC 9101 signed request objects: `request=<JWS>` on `/oauth/authorize` and in a pushed
//! request stands for the whole authorization request; a bad one gives no code.

use serde_json::{Value, json};

use crate::both_backends;
use crate::support::client_jwt::{self, KID, KeyClient, post_form};
use crate::support::dpop::{DpopKey, now};
use crate::support::{location, oauth};

fn object_params(client: &KeyClient) -> Value {
    json!({
        "response_type": "code", "redirect_uri": client.redirect_uri, "scope": "read_user",
        "state": "signed-state", "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        "code_challenge_method": "S256",
    })
}

both_backends! {
    async fn a_signed_request_runs_and_outside_parameters_are_ignored(app: TestApp) {
        let client = client_jwt::register(&app, "api read_user").await;
        let object = client.request_object(&app.base, object_params(&client));
        let browser = oauth::signed_in_browser(&app).await;
        let res = oauth::authorize(&app, &browser, &[
            ("client_id", &client.client_id), ("request", &object),
            ("scope", "api"), ("state", "forged"), ("redirect_uri", "https://evil.example/cb"),
        ]).await;
        assert_eq!(res.status(), 200);
        let page = res.text().await.unwrap();
        assert!(page.contains("read_user") && !page.contains(">api<"), "the signed scope is shown");
        let res = oauth::decide(&app, &browser, &page, "authorize").await;
        assert_eq!(res.status(), 302);
        assert!(location(&res).starts_with(&client.redirect_uri));
        let pairs = oauth::redirect_params(&res);
        assert_eq!(oauth::param(&pairs, "state"), Some("signed-state"));
        let code = oauth::param(&pairs, "code").unwrap().to_string();
        let auth = KeyClient::auth_fields(&client.assertion(&app.base));
        let mut form = vec![("grant_type", "authorization_code"), ("code", code.as_str()), ("redirect_uri", client.redirect_uri.as_str()),
            ("code_verifier", "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk")];
        form.extend(auth.iter().map(|(k, v)| (*k, v.as_str())));
        let (status, body) = post_form(&app, "/oauth/token", &form).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["scope"], "read_user");
    }

    async fn a_bad_request_object_gives_no_code(app: TestApp) {
        let client = client_jwt::register(&app, "read_user").await;
        let other_client = client_jwt::register(&app, "read_user").await;
        let claims = |extra: Value| {
            let mut c = json!({"iss": client.client_id, "aud": app.base, "client_id": client.client_id, "exp": now() + 300});
            if let (Value::Object(c), Value::Object(p)) = (&mut c, object_params(&client)) { c.extend(p); }
            if let (Value::Object(c), Value::Object(e)) = (&mut c, extra) { c.extend(e); }
            c
        };
        let header = json!({"alg": "ES256", "kid": KID, "typ": "oauth-authz-req+jwt"});
        let stranger = DpopKey::generate();
        let browser = oauth::signed_in_browser(&app).await;
        for (what, object) in [
            ("another key", stranger.sign_raw(&header.to_string(), &claims(json!({})).to_string())),
            ("another client_id", client.sign(&header, &claims(json!({"client_id": other_client.client_id})))),
            ("another iss", client.sign(&header, &claims(json!({"iss": other_client.client_id})))),
            ("another aud", client.sign(&header, &claims(json!({"aud": "https://elsewhere.example"})))),
            ("expired", client.sign(&header, &claims(json!({"exp": now() - 5})))),
            ("alg none", client.sign(&json!({"alg": "none", "kid": KID, "typ": "oauth-authz-req+jwt"}), &claims(json!({})))),
            ("no typ", client.sign(&json!({"alg": "ES256", "kid": KID}), &claims(json!({})))),
            ("not a JWT", "eyJ.x".to_string()),
            ("a NUL in a parameter", client.sign(&header, &claims(json!({"nonce": "a\0b", "state": "s\0"})))),
        ] {
            let res = oauth::authorize(&app, &browser, &[("client_id", &client.client_id), ("request", &object)]).await;
            assert_eq!(res.status(), 400, "{what}");
            let page = res.text().await.unwrap();
            assert!(page.contains("invalid_request_object"), "{what}: {page}");
            // Pushed, it is refused as well.
            let auth = KeyClient::auth_fields(&client.assertion(&app.base));
            let mut form = vec![("request", object.as_str())];
            form.extend(auth.iter().map(|(k, v)| (*k, v.as_str())));
            let (status, body) = post_form(&app, "/oauth/par", &form).await;
            assert_eq!((status, body["error"].as_str()), (400, Some("invalid_request_object")), "{what}: {body}");
        }
        // Another client's object, presented under its own client_id, pushed by this one.
        let theirs = other_client.request_object(&app.base, object_params(&other_client));
        let auth = KeyClient::auth_fields(&client.assertion(&app.base));
        let mut form = vec![("request", theirs.as_str())];
        form.extend(auth.iter().map(|(k, v)| (*k, v.as_str())));
        assert_eq!(post_form(&app, "/oauth/par", &form).await.0, 400);
    }

    async fn a_pushed_request_object_runs_to_a_code(app: TestApp) {
        let client = client_jwt::register(&app, "read_user").await;
        let object = client.request_object(&app.base, object_params(&client));
        let auth = KeyClient::auth_fields(&client.assertion(&app.url("/oauth/par")));
        let mut form = vec![("request", object.as_str())];
        form.extend(auth.iter().map(|(k, v)| (*k, v.as_str())));
        let (status, body) = post_form(&app, "/oauth/par", &form).await;
        assert_eq!(status, 201, "{body}");
        let request_uri = body["request_uri"].as_str().unwrap().to_string();
        let browser = oauth::signed_in_browser(&app).await;
        let res = oauth::authorize(&app, &browser, &[("client_id", &client.client_id), ("request_uri", &request_uri)]).await;
        assert_eq!(res.status(), 200);
        let page = res.text().await.unwrap();
        let res = oauth::decide(&app, &browser, &page, "authorize").await;
        let pairs = oauth::redirect_params(&res);
        assert_eq!(oauth::param(&pairs, "state"), Some("signed-state"));
        assert!(oauth::param(&pairs, "code").is_some());
        let doc: Value = reqwest::get(app.url("/.well-known/openid-configuration")).await.unwrap().json().await.unwrap();
        assert_eq!(doc["request_parameter_supported"], true);
        assert!(doc["request_object_signing_alg_values_supported"].as_array().unwrap().iter().any(|a| a == "ES256"));
        assert!(doc["token_endpoint_auth_methods_supported"].as_array().unwrap().iter().any(|a| a == "private_key_jwt"));
        assert!(doc["token_endpoint_auth_signing_alg_values_supported"].as_array().unwrap().iter().any(|a| a == "ES256"));
    }
}
