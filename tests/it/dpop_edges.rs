//! RFC 9449 DPoP at its edges, black box: every grant binds, bound tokens come only in the
//! DPoP scheme's own header, refusals under that scheme carry its challenge, proofs that
//! must never pass at the token endpoint, `dpop_jkt` in a pushed body, refresh-token `cnf`
//! only where the refresh token is bound, and browsers allowed to send the header.

use serde_json::{Value, json};

use crate::both_backends;
use crate::support::dpop::{DpopKey, ProofSpec, challenge};
use crate::support::oauth::{self, AppSpec, Client};
use crate::support::{ROOT_PASSWORD, TestApp, csrf_from};

/// The token endpoint with `form`, Basic for `client` when confidential, and `proof`.
async fn token(
    app: &TestApp,
    client: Option<&Client>,
    form: &[(&str, &str)],
    proof: Option<String>,
) -> reqwest::Response {
    let mut req = reqwest::Client::new()
        .post(app.url("/oauth/token"))
        .form(form);
    if let Some(c) = client {
        req = req.basic_auth(&c.client_id, Some(&c.secret));
    }
    if let Some(p) = proof {
        req = req.header("DPoP", p);
    }
    req.send().await.unwrap()
}

both_backends! {
    async fn client_credentials_and_device_grants_bind_too(app: TestApp) {
        let client = oauth::register(&app, AppSpec { scopes: "api read_user", ..AppSpec::default() }).await;
        let key = DpopKey::generate();
        let token_url = app.url("/oauth/token");
        let res = token(&app, Some(&client), &[("grant_type", "client_credentials"), ("scope", "api")], Some(key.proof("POST", &token_url, None))).await;
        assert_eq!(res.status(), 200);
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["token_type"], "DPoP");
        let info = oauth::introspect(&app, &client, body["access_token"].as_str().unwrap()).await;
        assert_eq!((info["token_type"].as_str(), info["cnf"]["jkt"].as_str()), (Some("DPoP"), Some(key.thumbprint().as_str())));

        // The device grant: approved in a browser, redeemed with a proof.
        let res = reqwest::Client::new()
            .post(app.url("/oauth/authorize_device"))
            .basic_auth(&client.client_id, Some(&client.secret))
            .form(&[("scope", "read_user")])
            .send()
            .await
            .unwrap();
        let device: Value = res.json().await.unwrap();
        let user_code = device["user_code"].as_str().unwrap();
        let browser = oauth::signed_in_browser(&app).await;
        let page = browser.get(app.url("/oauth/device")).send().await.unwrap().text().await.unwrap();
        let res = browser.post(app.url("/oauth/device/confirm")).form(&[("authenticity_token", csrf_from(&page).as_str()), ("user_code", user_code)]).send().await.unwrap();
        let page = res.text().await.unwrap();
        let res = browser.post(app.url("/oauth/device")).form(&[("authenticity_token", csrf_from(&page).as_str()), ("user_code", user_code), ("decision", "authorize")]).send().await.unwrap();
        assert!(res.text().await.unwrap().contains("Device connected"));
        let grant = [("grant_type", "urn:ietf:params:oauth:grant-type:device_code"), ("device_code", device["device_code"].as_str().unwrap())];
        let res = token(&app, Some(&client), &grant, Some(key.proof("POST", &token_url, None))).await;
        assert_eq!(res.status(), 200);
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["token_type"], "DPoP");
        let access = body["access_token"].as_str().unwrap();
        let url = app.url("/api/v4/user");
        let res = reqwest::Client::new().get(&url).header("Authorization", format!("DPoP {access}")).header("DPoP", key.proof("GET", &url, Some(access))).send().await.unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(reqwest::Client::new().get(&url).bearer_auth(access).send().await.unwrap().status(), 401);

        // A confidential client's refresh token is bound by its secret, not the key: no cnf.
        let info = oauth::introspect(&app, &client, body["refresh_token"].as_str().unwrap()).await;
        assert_eq!(info["active"], true);
        assert!(info.get("cnf").is_none(), "{info}");
    }

    async fn bound_tokens_come_only_in_the_dpop_header(app: TestApp) {
        let client = oauth::register(&app, AppSpec { scopes: "api read_user", ..AppSpec::default() }).await;
        let key = DpopKey::generate();
        let form = [("grant_type", "password"), ("username", "root"), ("password", ROOT_PASSWORD), ("scope", "api")];
        let res = token(&app, Some(&client), &form, Some(key.proof("POST", &app.url("/oauth/token"), None))).await;
        let access = res.json::<Value>().await.unwrap()["access_token"].as_str().unwrap().to_string();
        let http = reqwest::Client::new();
        for path in ["/oauth/token/info", "/api/v4/user", "/oauth/userinfo"] {
            let url = app.url(path);
            // As Bearer, or as a query parameter beside a proof and a bare scheme name.
            for req in [
                http.get(&url).bearer_auth(&access),
                http.get(format!("{url}?access_token={access}")).header("Authorization", "DPoP").header("DPoP", key.proof("GET", &url, Some(&access))),
            ] {
                let res = req.send().await.unwrap();
                assert_eq!(res.status(), 401, "{path}");
                assert!(challenge(&res).starts_with("DPoP ") && challenge(&res).contains("invalid_dpop_proof"), "{path}: {}", challenge(&res));
            }
        }
    }

    async fn tokens_refused_under_the_dpop_scheme_get_its_challenge(app: TestApp) {
        let key = DpopKey::generate();
        let http = reqwest::Client::new();
        let unknown = "dwat-unknown-token-value";
        for path in ["/oauth/token/info", "/api/v4/user", "/oauth/userinfo"] {
            let url = app.url(path);
            let res = http.get(&url).header("Authorization", format!("DPoP {unknown}")).header("DPoP", key.proof("GET", &url, Some(unknown))).send().await.unwrap();
            assert_eq!(res.status(), 401, "{path}");
            let c = challenge(&res);
            assert!(c.starts_with("DPoP ") && c.contains("algs=\"") && c.contains("error=\"invalid_token\""), "{path}: {c}");
        }
        // A personal access token is never DPoP-bound.
        let pat = app.token_for("root", "api").await;
        let url = app.url("/api/v4/user");
        let res = http.get(&url).header("Authorization", format!("DPoP {pat}")).header("DPoP", key.proof("GET", &url, Some(&pat))).send().await.unwrap();
        assert_eq!(res.status(), 401);
        assert!(challenge(&res).starts_with("DPoP ") && challenge(&res).contains("invalid_token"), "{}", challenge(&res));
        assert_eq!(http.get(&url).header("PRIVATE-TOKEN", &pat).send().await.unwrap().status(), 200);
    }

    async fn proofs_that_never_pass_at_the_token_endpoint(app: TestApp) {
        let client = oauth::register(&app, AppSpec { scopes: "api", ..AppSpec::default() }).await;
        let key = DpopKey::generate();
        let url = app.url("/oauth/token");
        let form = [("grant_type", "client_credentials"), ("scope", "api")];
        let mut private = key.jwk();
        private["d"] = json!("AAAA");
        let defective = [
            ("a private key", key.proof_with(ProofSpec { jwk: Some(private), ..key.spec("POST", &url) })),
            ("alg none", key.proof_with(ProofSpec { alg: Some("none".into()), ..key.spec("POST", &url) })),
            ("HMAC", key.proof_with(ProofSpec { alg: Some("HS256".into()), ..key.spec("POST", &url) })),
            ("no jti", key.proof_with(ProofSpec { jti: None, ..key.spec("POST", &url) })),
            ("oversized", key.proof_with(ProofSpec { extra_claims: json!({"pad": "x".repeat(10_000)}), ..key.spec("POST", &url) })),
            ("duplicate members", key.sign_raw(&format!("{{\"typ\":\"dpop+jwt\",\"alg\":\"ES256\",\"jwk\":{},\"typ\":\"dpop+jwt\"}}", key.jwk()), &json!({"jti": "j", "htm": "POST", "htu": url, "iat": crate::support::dpop::now()}).to_string())),
        ];
        for (what, proof) in defective {
            let res = token(&app, Some(&client), &form, Some(proof)).await;
            assert_eq!(res.status(), 400, "{what}");
            assert_eq!(res.json::<Value>().await.unwrap()["error"], "invalid_dpop_proof", "{what}");
        }
        // Two DPoP headers (§4.3 check 1), each a good proof on its own.
        let res = reqwest::Client::new()
            .post(&url)
            .basic_auth(&client.client_id, Some(&client.secret))
            .header("DPoP", key.proof("POST", &url, None))
            .header("DPoP", key.proof("POST", &url, None))
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400);
        assert_eq!(res.json::<Value>().await.unwrap()["error"], "invalid_dpop_proof");
        assert_eq!(token(&app, Some(&client), &form, Some(key.proof("POST", &url, None))).await.status(), 200);
    }

    async fn dpop_jkt_in_a_pushed_body_binds_the_code(app: TestApp) {
        let client = oauth::register(&app, AppSpec { trusted: true, ..AppSpec::default() }).await;
        let key = DpopKey::generate();
        let par_url = app.url("/oauth/par");
        let push = |extra: Vec<(&'static str, String)>, proof: Option<String>| {
            let mut form = vec![("response_type", "code".to_string()), ("redirect_uri", client.redirect_uri.clone()), ("scope", "api".to_string())];
            form.extend(extra);
            let mut req = reqwest::Client::new().post(&par_url).basic_auth(&client.client_id, Some(&client.secret)).form(&form);
            if let Some(p) = proof {
                req = req.header("DPoP", p);
            }
            req.send()
        };
        // dpop_jkt and a proof by another key: refused.
        let other = DpopKey::generate();
        let res = push(vec![("dpop_jkt", key.thumbprint())], Some(other.proof("POST", &par_url, None))).await.unwrap();
        assert_eq!(res.status(), 400);
        assert_eq!(res.json::<Value>().await.unwrap()["error"], "invalid_dpop_proof");
        let res = push(vec![("dpop_jkt", key.thumbprint())], None).await.unwrap();
        assert_eq!(res.status(), 201);
        let pushed: Value = res.json().await.unwrap();
        let browser = oauth::signed_in_browser(&app).await;
        let res = oauth::authorize(&app, &browser, &[("client_id", &client.client_id), ("request_uri", pushed["request_uri"].as_str().unwrap())]).await;
        let code = oauth::param(&oauth::redirect_params(&res), "code").unwrap().to_string();
        let url = app.url("/oauth/token");
        let exchange = [("grant_type", "authorization_code"), ("code", code.as_str()), ("redirect_uri", client.redirect_uri.as_str())];
        for proof in [None, Some(other.proof("POST", &url, None))] {
            let res = token(&app, Some(&client), &exchange, proof).await;
            assert_eq!(res.status(), 400);
            assert_eq!(res.json::<Value>().await.unwrap()["error"], "invalid_grant");
        }
        let res = token(&app, Some(&client), &exchange, Some(key.proof("POST", &url, None))).await;
        assert_eq!(res.status(), 200);
        assert_eq!(res.json::<Value>().await.unwrap()["token_type"], "DPoP");
    }

    async fn a_public_clients_bound_refresh_token_shows_its_key(app: TestApp) {
        let client = oauth::register(&app, AppSpec { confidential: false, ..AppSpec::default() }).await;
        let key = DpopKey::generate();
        let code = oauth::code_for(&app, &client, &[]).await;
        let url = app.url("/oauth/token");
        let form = [("grant_type", "authorization_code"), ("code", code.as_str()), ("redirect_uri", client.redirect_uri.as_str()), ("client_id", client.client_id.as_str())];
        let body: Value = token(&app, None, &form, Some(key.proof("POST", &url, None))).await.json().await.unwrap();
        // The public client introspects its refresh token with its own bound access token
        // (RFC 7662 §2.1 bearer authentication, with the token's proof).
        let access = body["access_token"].as_str().unwrap();
        let introspect_url = app.url("/oauth/introspect");
        let res = reqwest::Client::new()
            .post(&introspect_url)
            .header("Authorization", format!("DPoP {access}"))
            .header("DPoP", key.proof("POST", &introspect_url, Some(access)))
            .form(&[("token", body["refresh_token"].as_str().unwrap())])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let info: Value = res.json().await.unwrap();
        assert_eq!(info["token_type"], "refresh_token");
        assert_eq!(info["cnf"]["jkt"], key.thumbprint(), "{info}");
    }

    async fn browsers_may_send_dpop_proofs(app: TestApp) {
        for path in ["/oauth/token", "/oauth/par", "/oauth/token/info", "/oauth/userinfo"] {
            let res = reqwest::Client::new()
                .request(reqwest::Method::OPTIONS, app.url(path))
                .header("Origin", "https://spa.example")
                .header("Access-Control-Request-Method", "POST")
                .header("Access-Control-Request-Headers", "authorization,dpop,content-type")
                .send()
                .await
                .unwrap();
            assert!(res.status().is_success(), "{path}: {}", res.status());
            let allowed = res.headers().get("access-control-allow-headers").and_then(|v| v.to_str().ok()).unwrap_or_default().to_ascii_lowercase();
            assert!(allowed.contains("dpop"), "{path}: {allowed}");
        }
        // The refusal's challenge can be read by the page.
        let res = reqwest::Client::new()
            .get(app.url("/oauth/userinfo"))
            .header("Origin", "https://spa.example")
            .bearer_auth("dwat-unknown")
            .send()
            .await
            .unwrap();
        let exposed = res.headers().get("access-control-expose-headers").and_then(|v| v.to_str().ok()).unwrap_or_default().to_ascii_lowercase();
        assert!(exposed.contains("www-authenticate"), "{exposed}");
    }
}
