//! RFC 9449 DPoP, black box: proofs made by a key generated here (`support::dpop`), sent
//! by hand (no client library of ours speaks DPoP).

use reqwest::StatusCode;
use serde_json::Value;

use crate::both_backends;
use crate::support::dpop::{DpopKey, challenge};
use crate::support::oauth::{self, AppSpec, Client};
use crate::support::{ROOT_PASSWORD, TestApp};

/// The password grant for root with `scope`, with a proof by `key` when given.
async fn password_tokens(
    app: &TestApp,
    client: &Client,
    scope: &str,
    key: Option<&DpopKey>,
) -> reqwest::Response {
    let mut req = reqwest::Client::new()
        .post(app.url("/oauth/token"))
        .basic_auth(&client.client_id, Some(&client.secret))
        .form(&[
            ("grant_type", "password"),
            ("username", "root"),
            ("password", ROOT_PASSWORD),
            ("scope", scope),
        ]);
    if let Some(key) = key {
        req = req.header("DPoP", key.proof("POST", &app.url("/oauth/token"), None));
    }
    req.send().await.unwrap()
}

/// `GET path` with `Authorization: DPoP token` and a proof for it by `key`.
async fn dpop_get(app: &TestApp, path: &str, token: &str, proof: &str) -> reqwest::Response {
    reqwest::Client::new()
        .get(app.url(path))
        .header("Authorization", format!("DPoP {token}"))
        .header("DPoP", proof)
        .send()
        .await
        .unwrap()
}

both_backends! {
    async fn a_proof_at_the_token_endpoint_binds_the_token_to_its_key(app: TestApp) {
        let client = oauth::register(&app, AppSpec { scopes: "api read_user openid", ..AppSpec::default() }).await;
        let key = DpopKey::generate();
        let res = password_tokens(&app, &client, "api openid", Some(&key)).await;
        assert_eq!(res.status(), 200);
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["token_type"], "DPoP");
        let access = body["access_token"].as_str().unwrap().to_string();

        // Introspection shows the binding.
        let res = reqwest::Client::new()
            .post(app.url("/oauth/introspect"))
            .basic_auth(&client.client_id, Some(&client.secret))
            .form(&[("token", access.as_str())])
            .send()
            .await
            .unwrap();
        let info: Value = res.json().await.unwrap();
        assert_eq!(info["token_type"], "DPoP");
        assert_eq!(info["cnf"]["jkt"], key.thumbprint());

        // The API, UserInfo (GET and POST) and token info, each with a proof of its own.
        let url = app.url("/api/v4/user");
        let res = dpop_get(&app, "/api/v4/user", &access, &key.proof("GET", &url, Some(&access))).await;
        assert_eq!(res.status(), 200, "{}", challenge(&res));
        assert_eq!(res.json::<Value>().await.unwrap()["username"], "root");
        let res = dpop_get(&app, "/oauth/userinfo", &access, &key.proof("GET", &app.url("/oauth/userinfo"), Some(&access))).await;
        assert_eq!(res.status(), 200);
        let res = reqwest::Client::new()
            .post(app.url("/oauth/userinfo"))
            .header("Authorization", format!("DPoP {access}"))
            .header("DPoP", key.proof("POST", &app.url("/oauth/userinfo"), Some(&access)))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let res = dpop_get(&app, "/oauth/token/info", &access, &key.proof("GET", &app.url("/oauth/token/info"), Some(&access))).await;
        assert_eq!(res.status(), 200);
        // htu without the query (RFC 9449 §4.3).
        let res = dpop_get(&app, "/api/v4/user?x=1", &access, &key.proof("GET", &url, Some(&access))).await;
        assert_eq!(res.status(), 200);

        // The same token any other way: 401 with a DPoP challenge.
        let http = reqwest::Client::new();
        for req in [
            http.get(&url).bearer_auth(&access),
            http.get(format!("{url}?access_token={access}")),
            http.get(&url).header("PRIVATE-TOKEN", &access),
            http.get(&url).header("Authorization", format!("DPoP {access}")),
        ] {
            let res = req.send().await.unwrap();
            assert_eq!(res.status(), 401);
            let c = challenge(&res);
            assert!(c.starts_with("DPoP ") && c.contains("algs=\"") && c.contains("error=\"invalid_dpop_proof\""), "{c}");
        }
        let res = http.get(app.url("/oauth/userinfo")).bearer_auth(&access).send().await.unwrap();
        assert_eq!(res.status(), 401);
        assert!(challenge(&res).starts_with("DPoP "));

        // Bad proofs: replayed, another method, another URL, stale, another token.
        let proof = key.proof("GET", &url, Some(&access));
        assert_eq!(dpop_get(&app, "/api/v4/user", &access, &proof).await.status(), 200);
        let replay = dpop_get(&app, "/api/v4/user", &access, &proof).await;
        assert_eq!(replay.status(), 401);
        assert!(challenge(&replay).contains("invalid_dpop_proof"));
        let now = app.clock.now();
        for bad in [
            key.proof("POST", &url, Some(&access)),
            key.proof("GET", &app.url("/api/v4/users"), Some(&access)),
            key.proof_with(crate::support::dpop::ProofSpec {
                iat: Some(now - 600),
                ath: Some(crate::support::dpop::ath(&access)),
                ..key.spec("GET", &url)
            }),
            key.proof_with(crate::support::dpop::ProofSpec {
                typ: Some("JWT".into()),
                ath: Some(crate::support::dpop::ath(&access)),
                ..key.spec("GET", &url)
            }),
            key.proof("GET", &url, Some("dwat-another-token")),
            key.proof("GET", &url, None),
            "not.a.proof".to_string(),
        ] {
            let res = dpop_get(&app, "/api/v4/user", &access, &bad).await;
            assert_eq!(res.status(), 401);
            assert!(challenge(&res).contains("error=\"invalid_dpop_proof\""), "{}", challenge(&res));
        }
        // A good proof by another key: invalid_token.
        let other = DpopKey::generate();
        let res = dpop_get(&app, "/api/v4/user", &access, &other.proof("GET", &url, Some(&access))).await;
        assert_eq!(res.status(), 401);
        assert!(challenge(&res).contains("error=\"invalid_token\""), "{}", challenge(&res));

        // A bearer token is not one to send with the DPoP scheme; as Bearer it works.
        let res = password_tokens(&app, &client, "api", None).await;
        let bearer: Value = res.json().await.unwrap();
        assert_eq!(bearer["token_type"], "Bearer");
        let plain = bearer["access_token"].as_str().unwrap();
        let res = dpop_get(&app, "/api/v4/user", plain, &key.proof("GET", &url, Some(plain))).await;
        assert_eq!(res.status(), 401);
        assert_eq!(http.get(&url).bearer_auth(plain).send().await.unwrap().status(), 200);

        // At the token endpoint a bad proof is 400 invalid_dpop_proof.
        let res = reqwest::Client::new()
            .post(app.url("/oauth/token"))
            .basic_auth(&client.client_id, Some(&client.secret))
            .header("DPoP", key.proof("POST", &app.url("/oauth/revoke"), None))
            .form(&[("grant_type", "client_credentials"), ("scope", "api")])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400);
        assert_eq!(res.json::<Value>().await.unwrap()["error"], "invalid_dpop_proof");

        let doc: Value = reqwest::get(app.url("/.well-known/openid-configuration")).await.unwrap().json().await.unwrap();
        assert!(doc["dpop_signing_alg_values_supported"].as_array().unwrap().iter().any(|a| a == "ES256"));
    }

    async fn a_public_clients_refresh_token_is_bound_too(app: TestApp) {
        let client = oauth::register(&app, AppSpec { confidential: false, require_pkce: true, ..AppSpec::default() }).await;
        let key = DpopKey::generate();
        let verifier = "a-verifier-of-at-least-forty-three-characters-1234";
        let challenge = doorward::domain::secret::base64url(&sha256(verifier));
        let code = oauth::code_for(&app, &client, &[("code_challenge", &challenge), ("code_challenge_method", "S256")]).await;
        let token_url = app.url("/oauth/token");
        let res = reqwest::Client::new()
            .post(&token_url)
            .header("DPoP", key.proof("POST", &token_url, None))
            .form(&[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", &client.redirect_uri), ("client_id", &client.client_id), ("code_verifier", verifier)])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["token_type"], "DPoP");
        let refresh = body["refresh_token"].as_str().unwrap().to_string();
        let refresh_with = |proof: Option<String>| {
            let mut req = reqwest::Client::new()
                .post(&token_url)
                .form(&[("grant_type", "refresh_token"), ("refresh_token", refresh.as_str()), ("client_id", client.client_id.as_str())]);
            if let Some(p) = proof {
                req = req.header("DPoP", p);
            }
            req.send()
        };
        let other = DpopKey::generate();
        for proof in [None, Some(other.proof("POST", &token_url, None))] {
            let res = refresh_with(proof).await.unwrap();
            assert_eq!(res.status(), 400);
            assert_eq!(res.json::<Value>().await.unwrap()["error"], "invalid_grant");
        }
        // Still unused: the right key refreshes it.
        let res = refresh_with(Some(key.proof("POST", &token_url, None))).await.unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(res.json::<Value>().await.unwrap()["token_type"], "DPoP");
    }

    async fn dpop_jkt_binds_the_code_to_a_key(app: TestApp) {
        let client = oauth::register(&app, AppSpec { trusted: true, ..AppSpec::default() }).await;
        let key = DpopKey::generate();
        let token_url = app.url("/oauth/token");
        let exchange = |code: String, proof: Option<String>| {
            let mut req = reqwest::Client::new()
                .post(&token_url)
                .basic_auth(&client.client_id, Some(&client.secret))
                .form(&[("grant_type", "authorization_code"), ("code", code.as_str()), ("redirect_uri", client.redirect_uri.as_str())]);
            if let Some(p) = proof {
                req = req.header("DPoP", p);
            }
            req.send()
        };
        let jkt = key.thumbprint();
        let code = oauth::code_for(&app, &client, &[("dpop_jkt", &jkt)]).await;
        let other = DpopKey::generate();
        for proof in [None, Some(other.proof("POST", &token_url, None))] {
            let res = exchange(code.clone(), proof).await.unwrap();
            assert_eq!(res.status(), 400);
            assert_eq!(res.json::<Value>().await.unwrap()["error"], "invalid_grant");
        }
        let res = exchange(code, Some(key.proof("POST", &token_url, None))).await.unwrap();
        assert_eq!(res.status(), 200, "the code was not spent by the refusals");
        assert_eq!(res.json::<Value>().await.unwrap()["token_type"], "DPoP");

        // A malformed dpop_jkt is refused at the authorization.
        let browser = oauth::signed_in_browser(&app).await;
        let res = oauth::authorize(&app, &browser, &[("client_id", &client.client_id), ("redirect_uri", &client.redirect_uri), ("response_type", "code"), ("dpop_jkt", "short")]).await;
        assert_eq!(oauth::param(&oauth::redirect_params(&res), "error"), Some("invalid_request"));

        // A DPoP proof on a pushed request binds its code the same way.
        let par_url = app.url("/oauth/par");
        let res = reqwest::Client::new()
            .post(&par_url)
            .basic_auth(&client.client_id, Some(&client.secret))
            .header("DPoP", key.proof("POST", &par_url, None))
            .form(&[("response_type", "code"), ("redirect_uri", client.redirect_uri.as_str()), ("scope", "api")])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201);
        let pushed: Value = res.json().await.unwrap();
        let res = oauth::authorize(&app, &browser, &[("client_id", &client.client_id), ("request_uri", pushed["request_uri"].as_str().unwrap())]).await;
        let code = oauth::param(&oauth::redirect_params(&res), "code").unwrap().to_string();
        assert_eq!(exchange(code.clone(), None).await.unwrap().status(), 400);
        assert_eq!(exchange(code, Some(key.proof("POST", &token_url, None))).await.unwrap().status(), StatusCode::OK);
    }
}

fn sha256(s: &str) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha256::digest(s.as_bytes()).to_vec()
}
