//! RFC 7591 dynamic client registration and RFC 7592 management at `/oauth/register`, the
//! RFC 9728 metadata of the API and its challenges, as the MCP SDKs use them: what a
//! registered client gets, what it may never do, and bad input on both backends.

use serde_json::{Value, json};

use crate::both_backends;
use crate::support::TestApp;
use crate::support::oauth::{
    authorize, decide, param, redirect_params, signed_in_browser, token_request,
};

/// The body the MCP Python SDK (2.3) sends.
fn mcp_sdk_registration() -> Value {
    json!({
        "redirect_uris": ["http://127.0.0.1:53682/callback"],
        "token_endpoint_auth_method": "none",
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "client_name": "MCP client",
        "application_type": "native",
        "scope": "read_user",
    })
}

async fn post_registration(
    app: &TestApp,
    body: &Value,
) -> (u16, Value, reqwest::header::HeaderMap) {
    let res = reqwest::Client::new()
        .post(app.url("/oauth/register"))
        .json(body)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let text = res.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::Null),
        headers,
    )
}

async fn manage(
    app: &TestApp,
    method: reqwest::Method,
    client_id: &str,
    token: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .request(method, app.url(&format!("/oauth/register/{client_id}")))
        .bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

fn no_nulls(v: &Value) {
    match v {
        Value::Null => panic!("a JSON null in a response"),
        Value::Array(a) => a.iter().for_each(no_nulls),
        Value::Object(m) => m.values().for_each(no_nulls),
        _ => {}
    }
}

both_backends! {
    async fn a_public_client_registers_and_manages_itself(app: TestApp) {
        let (status, info, headers) = post_registration(&app, &mcp_sdk_registration()).await;
        assert_eq!(status, 201, "{info}");
        assert_eq!(headers["cache-control"], "no-store");
        no_nulls(&info);
        let client_id = info["client_id"].as_str().unwrap().to_string();
        assert!(info["client_id_issued_at"].as_i64().unwrap() > 0);
        assert_eq!(info["redirect_uris"], json!(["http://127.0.0.1:53682/callback"]));
        assert_eq!(info["token_endpoint_auth_method"], "none");
        assert_eq!(info["scope"], "read_user");
        assert_eq!(info["client_name"], "MCP client");
        assert!(info["grant_types"].as_array().unwrap().contains(&json!("authorization_code")));
        assert!(info.get("client_secret").is_none() && info.get("client_secret_expires_at").is_none());
        let token = info["registration_access_token"].as_str().unwrap().to_string();
        assert!(token.len() >= 20);
        assert_eq!(info["registration_client_uri"], json!(app.url(&format!("/oauth/register/{client_id}"))));

        // RFC 7592: read, update (effective at once), with the token not rotated.
        let (status, read) = manage(&app, reqwest::Method::GET, &client_id, &token, None).await;
        assert_eq!(status, 200);
        assert_eq!(read["client_id"], json!(client_id));
        let mut changed = mcp_sdk_registration();
        changed["client_id"] = json!(client_id);
        changed["redirect_uris"] = json!(["http://127.0.0.1:9999/cb", "https://app.example/cb"]);
        changed["client_name"] = json!("Renamed");
        let (status, updated) = manage(&app, reqwest::Method::PUT, &client_id, &token, Some(changed.clone())).await;
        assert_eq!(status, 200, "{updated}");
        assert_eq!(updated["client_name"], "Renamed");
        let (_, read) = manage(&app, reqwest::Method::GET, &client_id, &token, None).await;
        assert_eq!(read["redirect_uris"], json!(["http://127.0.0.1:9999/cb", "https://app.example/cb"]));
        // The new redirect URI works at the authorization endpoint right away.
        let browser = signed_in_browser(&app).await;
        let res = authorize(&app, &browser, &[
            ("client_id", &client_id), ("redirect_uri", "https://app.example/cb"), ("response_type", "code"), ("scope", "read_user"),
            ("code_challenge", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"), ("code_challenge_method", "S256"),
        ]).await;
        assert_eq!(res.status(), 200, "{:?}", res.headers().get("location"));

        // Turning public into confidential is refused, and so is another client_id.
        let mut bad = changed.clone();
        bad["token_endpoint_auth_method"] = json!("client_secret_basic");
        assert_eq!(manage(&app, reqwest::Method::PUT, &client_id, &token, Some(bad)).await.0, 400);
        let mut bad = changed.clone();
        bad["client_id"] = json!("someone-else");
        assert_eq!(manage(&app, reqwest::Method::PUT, &client_id, &token, Some(bad)).await.0, 400);

        // Another client's registration token, an access token, an admin PAT: 401, nothing changes.
        let (_, other, _) = post_registration(&app, &mcp_sdk_registration()).await;
        let other_token = other["registration_access_token"].as_str().unwrap();
        let admin_pat = app.token_for("root", "api").await;
        for wrong in [other_token, admin_pat.as_str(), "dwrat-forged", ""] {
            for method in [reqwest::Method::GET, reqwest::Method::DELETE] {
                let (status, _) = manage(&app, method.clone(), &client_id, wrong, None).await;
                assert_eq!(status, 401, "{method} with {wrong:?}");
            }
        }
        // The registration token is not an API token.
        let res = reqwest::Client::new().get(app.url("/api/v4/user")).bearer_auth(&token).send().await.unwrap();
        assert_eq!(res.status(), 401);

        // DELETE: 204, then the client and its registration token are dead.
        assert_eq!(manage(&app, reqwest::Method::DELETE, &client_id, &token, None).await.0, 204);
        assert_eq!(manage(&app, reqwest::Method::GET, &client_id, &token, None).await.0, 401);
        let res = authorize(&app, &browser, &[("client_id", &client_id), ("redirect_uri", "https://app.example/cb"), ("response_type", "code")]).await;
        assert!(res.status().is_client_error(), "{}", res.status());
        // The other client is untouched.
        assert_eq!(manage(&app, reqwest::Method::GET, other["client_id"].as_str().unwrap(), other_token, None).await.0, 200);
    }

    async fn a_registered_client_gets_only_the_code_flow_and_always_a_consent_page(app: TestApp) {
        let body = json!({"redirect_uris": ["https://app.example/cb"], "client_name": "Sneaky <b>", "scope": "api read_user"});
        let (status, info, _) = post_registration(&app, &body).await;
        assert_eq!(status, 400, "HTML in the name: {info}");
        let body = json!({"redirect_uris": ["https://app.example/cb"], "client_name": "Sneaky", "scope": "api read_user"});
        let (status, info, _) = post_registration(&app, &body).await;
        assert_eq!(status, 201);
        // client_secret_basic by default, with a long secret that does not expire.
        assert_eq!(info["token_endpoint_auth_method"], "client_secret_basic");
        let secret = info["client_secret"].as_str().unwrap();
        assert!(secret.len() >= 32);
        assert_eq!(info["client_secret_expires_at"], 0);
        let client_id = info["client_id"].as_str().unwrap();

        // Never a token by client credentials or the password grant, secret or not.
        app.create_user("cora", "cora-password-1").await;
        for form in [
            vec![("grant_type", "client_credentials"), ("scope", "api")],
            vec![("grant_type", "password"), ("username", "cora"), ("password", "cora-password-1")],
        ] {
            let res = token_request(&app, &form, Some((client_id, secret))).await;
            let status = res.status();
            let body: Value = res.json().await.unwrap();
            // doorkeeper's status for unauthorized_client (docs/compatibility.md).
            assert_eq!(status, 401, "{body}");
            assert_eq!(body["error"], "unauthorized_client", "{form:?}");
        }
        let res = reqwest::Client::new().post(app.url("/oauth/authorize_device"))
            .basic_auth(client_id, Some(secret)).form(&[("scope", "api")]).send().await.unwrap();
        assert_eq!(res.json::<Value>().await.unwrap()["error"], "unauthorized_client");

        // The code flow (with PKCE), consent shown every time and marked unverified.
        let browser = signed_in_browser(&app).await;
        let verifier = "x".repeat(64);
        let challenge = doorward::domain::secret::base64url(&<sha2::Sha256 as sha2::Digest>::digest(verifier.as_bytes()));
        let params = [
            ("client_id", client_id), ("redirect_uri", "https://app.example/cb"), ("response_type", "code"),
            ("state", "s1"), ("scope", "api"), ("code_challenge", challenge.as_str()), ("code_challenge_method", "S256"),
        ];
        for round in 0..2 {
            let res = authorize(&app, &browser, &params).await;
            assert_eq!(res.status(), 200, "round {round}: consent is never skipped");
            let page = res.text().await.unwrap();
            assert!(page.contains("id=\"unverified\""), "the page marks the client as unverified");
            let res = decide(&app, &browser, &page, "authorize").await;
            assert_eq!(res.status(), 302);
            let pairs = redirect_params(&res);
            let code = param(&pairs, "code").unwrap().to_string();
            if round == 0 {
                let res = token_request(&app, &[("grant_type", "authorization_code"), ("code", &code),
                    ("redirect_uri", "https://app.example/cb"), ("code_verifier", &verifier)], Some((client_id, secret))).await;
                assert_eq!(res.status(), 200);
                let tokens: Value = res.json().await.unwrap();
                no_nulls(&tokens);
            }
        }
        // Without PKCE: refused (every dynamic client must use it).
        let res = authorize(&app, &browser, &params[..5]).await;
        assert!(res.status() == 302 || res.status().is_client_error());
        if res.status() == 302 {
            assert!(param(&redirect_params(&res), "error").is_some());
        }

        // Administrators see it apart from their own applications, and may delete it.
        let admin = app.token_for("root", "api").await;
        let listed: Value = reqwest::Client::new().get(app.url("/api/v4/applications?dynamic=true"))
            .header("PRIVATE-TOKEN", &admin).send().await.unwrap().json().await.unwrap();
        let listed = listed.as_array().unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0]["application_id"], json!(client_id));
        assert_eq!(listed[0]["dynamically_registered"], true);
        let instance: Value = reqwest::Client::new().get(app.url("/api/v4/applications"))
            .header("PRIVATE-TOKEN", &admin).send().await.unwrap().json().await.unwrap();
        assert!(instance.as_array().unwrap().iter().all(|a| a["application_id"] != json!(client_id)));
        let res = reqwest::Client::new().delete(app.url(&format!("/api/v4/applications/{}", listed[0]["id"])))
            .header("PRIVATE-TOKEN", &admin).send().await.unwrap();
        assert_eq!(res.status(), 204);
    }

    async fn bad_registrations_get_rfc7591_errors_and_write_nothing(app: TestApp) {
        let before = app.state.store.count_all_rows().await.unwrap();
        let ok = json!(["https://app.example/cb"]);
        let cases = [
            (json!({"redirect_uris": ["javascript:alert(1)"]}), "invalid_redirect_uri"),
            (json!({"redirect_uris": ["https://ok.example/cb", "data:text/html,x"]}), "invalid_redirect_uri"),
            (json!({"redirect_uris": ["/relative"]}), "invalid_redirect_uri"),
            (json!({"redirect_uris": ["http://app.example/cb"]}), "invalid_redirect_uri"),
            (json!({"redirect_uris": ["https://app.example/\u{0}cb"]}), "invalid_redirect_uri"),
            (json!({"client_name": "no redirect"}), "invalid_redirect_uri"),
            (json!({"redirect_uris": ok, "scope": "sudo"}), "invalid_client_metadata"),
            (json!({"redirect_uris": ok, "token_endpoint_auth_method": "client_secret_jwt"}), "invalid_client_metadata"),
            (json!({"redirect_uris": ok, "response_types": ["token"]}), "invalid_client_metadata"),
            (json!({"redirect_uris": ok, "grant_types": ["client_credentials"]}), "invalid_client_metadata"),
            (json!({"redirect_uris": ok, "client_name": "nul\u{0}name"}), "invalid_client_metadata"),
        ];
        for (body, code) in cases {
            let (status, answer, _) = post_registration(&app, &body).await;
            assert_eq!(status, 400, "{body}");
            assert_eq!(answer["error"], code, "{body}");
            no_nulls(&answer);
        }
        for raw in [&b"not json"[..], b"{\"redirect_uris\": [\"https://a.example/cb\"", b"\0"] {
            let res = reqwest::Client::new().post(app.url("/oauth/register"))
                .header("content-type", "application/json").body(raw.to_vec()).send().await.unwrap();
            assert_eq!(res.status(), 400);
            assert_eq!(res.json::<Value>().await.unwrap()["error"], "invalid_client_metadata");
        }
        let res = reqwest::Client::new().post(app.url("/oauth/register"))
            .form(&[("redirect_uris", "https://app.example/cb")]).send().await.unwrap();
        assert_eq!(res.status(), 400, "a form body is not JSON");
        assert_eq!(app.state.store.count_all_rows().await.unwrap(), before);
    }

    async fn discovery_and_the_api_lead_an_mcp_client_to_registration(app: TestApp) {
        for path in ["/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"] {
            let doc: Value = reqwest::get(app.url(path)).await.unwrap().json().await.unwrap();
            assert_eq!(doc["issuer"], json!(app.state.config.external_url));
            assert_eq!(doc["registration_endpoint"], json!(app.url("/oauth/register")));
            assert!(doc["code_challenge_methods_supported"].as_array().unwrap().contains(&json!("S256")));
            assert!(doc["token_endpoint_auth_methods_supported"].as_array().unwrap().contains(&json!("none")));
        }
        let res = reqwest::Client::new().get(app.url("/.well-known/oauth-protected-resource/api/v4"))
            .header("origin", "https://mcp.example").send().await.unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(res.headers()["access-control-allow-origin"], "*");
        let prm: Value = res.json().await.unwrap();
        let issuer = app.state.config.external_url.clone();
        assert_eq!(prm["resource"], json!(format!("{issuer}/api/v4")));
        assert_eq!(prm["authorization_servers"], json!([issuer]));
        assert!(prm["bearer_methods_supported"].as_array().unwrap().contains(&json!("header")));
        assert!(prm["scopes_supported"].as_array().unwrap().contains(&json!("read_api")));

        let metadata = format!("resource_metadata=\"{issuer}/.well-known/oauth-protected-resource/api/v4\"");
        let anonymous = reqwest::get(app.url("/api/v4/user")).await.unwrap();
        assert_eq!(anonymous.status(), 401);
        let challenge = anonymous.headers()["www-authenticate"].to_str().unwrap().to_string();
        assert!(challenge.starts_with("Bearer ") && challenge.contains(&metadata), "{challenge}");
        let bad = reqwest::Client::new().get(app.url("/api/v4/user")).bearer_auth("dwat-nope").send().await.unwrap();
        let challenge = bad.headers()["www-authenticate"].to_str().unwrap().to_string();
        assert!(challenge.starts_with("Bearer ") && challenge.contains("error=\"invalid_token\"") && challenge.contains(&metadata), "{challenge}");
    }

    async fn browser_clients_may_register_cross_origin(app: TestApp) {
        let preflight = reqwest::Client::new()
            .request(reqwest::Method::OPTIONS, app.url("/oauth/register"))
            .header("origin", "http://localhost:6274")
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type")
            .send()
            .await
            .unwrap();
        assert!(preflight.status().is_success());
        assert_eq!(preflight.headers()["access-control-allow-origin"], "*");
        let res = reqwest::Client::new().post(app.url("/oauth/register"))
            .header("origin", "http://localhost:6274").json(&mcp_sdk_registration()).send().await.unwrap();
        assert_eq!(res.status(), 201);
        assert_eq!(res.headers()["access-control-allow-origin"], "*");
    }

    async fn registration_can_be_turned_off(app: TestApp) {
        let off = app.another_node(&[("DOORWARD_DYNAMIC_CLIENT_REGISTRATION", "false")]).await;
        let (status, _, _) = post_registration(&off, &mcp_sdk_registration()).await;
        assert_eq!(status, 404);
        let doc: Value = reqwest::get(off.url("/.well-known/oauth-authorization-server")).await.unwrap().json().await.unwrap();
        assert!(doc.get("registration_endpoint").is_none());
    }
}

#[tokio::test]
async fn registrations_are_rate_limited_per_address() {
    let app = TestApp::spawn(doorward::store::Backend::Sqlite).await;
    let mut created = 0;
    let mut limited = None;
    // Enough to be limited even if the loop crosses one minute boundary.
    for i in 0..300 {
        let (status, _, headers) = post_registration(&app, &mcp_sdk_registration()).await;
        match status {
            201 => created += 1,
            429 => {
                assert!(headers.contains_key("retry-after"));
                limited = Some(i);
                break;
            }
            other => panic!("{other}"),
        }
    }
    // At least 100 a minute (issue 13); the window may roll over once during the loop.
    assert!(created >= 100, "{created}");
    assert!(limited.is_some(), "never limited");
}

both_backends! {
    async fn registrations_never_used_are_purged_after_the_set_days(app: TestApp) {
        let (_, unused, _) = post_registration(&app, &mcp_sdk_registration()).await;
        let body = json!({"redirect_uris": ["https://app.example/cb"], "scope": "read_user"});
        let (_, used, _) = post_registration(&app, &body).await;
        // The second one gets a code (through the browser), so it has been used.
        let browser = signed_in_browser(&app).await;
        let verifier = "y".repeat(50);
        let challenge = doorward::domain::secret::base64url(&<sha2::Sha256 as sha2::Digest>::digest(verifier.as_bytes()));
        let res = authorize(&app, &browser, &[
            ("client_id", used["client_id"].as_str().unwrap()), ("redirect_uri", "https://app.example/cb"),
            ("response_type", "code"), ("scope", "read_user"), ("code_challenge", &challenge), ("code_challenge_method", "S256"),
        ]).await;
        let page = res.text().await.unwrap();
        assert_eq!(decide(&app, &browser, &page, "authorize").await.status(), 302);

        // 29 days on: nothing purged; 31: the unused one is gone, the used one stays.
        app.clock.advance(29 * 86_400);
        doorward::bootstrap::purge_expired(&app.state).await;
        let live = |info: &Value| app.state.store.application_by_uid(info["client_id"].as_str().unwrap().to_string().leak());
        assert!(live(&unused).await.unwrap().is_some());
        app.clock.advance(2 * 86_400);
        doorward::bootstrap::purge_expired(&app.state).await;
        assert!(live(&unused).await.unwrap().is_none(), "an unused registration outlived the purge");
        assert!(live(&used).await.unwrap().is_some());
    }
}
