//! RFC 8707 resource indicators: `resource` at the authorization and token endpoints, the
//! audience of the tokens, introspection by a resource server, and the API refusing a
//! token meant for another resource.

use serde_json::{Value, json};

use crate::both_backends;
use crate::support::TestApp;
use crate::support::oauth::{
    AppSpec, Client, authorize, consent_fields, introspect, param, post_consent, redirect_params,
    register, signed_in_browser, token_request,
};

const MCP: &str = "https://mcp.example/mcp";
const OTHER: &str = "https://other.example/api";

/// The code flow as root with these `resource`s; the code.
async fn code_with_resources(app: &TestApp, client: &Client, resources: &[&str]) -> String {
    let browser = signed_in_browser(app).await;
    let mut params = vec![
        ("client_id", client.client_id.as_str()),
        ("redirect_uri", client.redirect_uri.as_str()),
        ("response_type", "code"),
        ("scope", "read_user"),
        ("state", "s"),
        // The page even where an earlier approval would skip it.
        ("prompt", "consent"),
    ];
    params.extend(resources.iter().map(|r| ("resource", *r)));
    let res = authorize(app, &browser, &params).await;
    assert_eq!(res.status(), 200);
    let page = res.text().await.unwrap();
    let fields = consent_fields(&page);
    let shown: Vec<&str> = fields
        .iter()
        .filter(|(k, _)| k == "resource")
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(shown, resources, "the consent form carries every resource");
    // A resource added to the form after the page was shown gives no code.
    let mut edited = fields.clone();
    edited.push(("resource".into(), "https://third.example/".into()));
    let res = post_consent(app, &browser, &edited, "authorize").await;
    assert!(
        res.status() != 302 || param(&redirect_params(&res), "code").is_none(),
        "an edited resource gave a code"
    );
    let res = post_consent(app, &browser, &fields, "authorize").await;
    assert_eq!(res.status(), 302);
    param(&redirect_params(&res), "code").unwrap().to_string()
}

async fn exchange(
    app: &TestApp,
    client: &Client,
    code: &str,
    resources: &[&str],
) -> reqwest::Response {
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", client.redirect_uri.as_str()),
    ];
    form.extend(resources.iter().map(|r| ("resource", *r)));
    token_request(app, &form, Some((&client.client_id, &client.secret))).await
}

async fn api_user_status(app: &TestApp, token: &str) -> (u16, String) {
    let res = reqwest::Client::new()
        .get(app.url("/api/v4/user"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let challenge = res
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (res.status().as_u16(), challenge)
}

both_backends! {
    async fn tokens_are_bound_to_the_resources_named(app: TestApp) {
        let client = register(&app, AppSpec::default()).await;
        // A resource server: a confidential application an administrator created.
        let server = register(&app, AppSpec { owner: None, ..AppSpec::default() }).await;
        // Another user's application: sees only its own tokens.
        let bystander = register(&app, AppSpec::default()).await;

        let code = code_with_resources(&app, &client, &[MCP, OTHER]).await;
        // Outside the authorization: invalid_target, and the code is still good.
        let res = exchange(&app, &client, &code, &["https://third.example/"]).await;
        assert_eq!(res.status(), 400);
        assert_eq!(res.json::<Value>().await.unwrap()["error"], "invalid_target");
        let res = exchange(&app, &client, &code, &[MCP]).await;
        assert_eq!(res.status(), 200);
        let tokens: Value = res.json().await.unwrap();
        let access = tokens["access_token"].as_str().unwrap();
        let refresh = tokens["refresh_token"].as_str().unwrap();

        let seen = introspect(&app, &server, access).await;
        assert_eq!(seen["active"], true, "{seen}");
        assert_eq!(seen["aud"], json!([MCP, client.client_id]));
        assert_eq!(introspect(&app, &bystander, access).await, json!({"active": false}));
        assert_eq!(introspect(&app, &client, access).await["active"], true);

        // Not for the API: 401 invalid_token, with the API's metadata.
        let (status, challenge) = api_user_status(&app, access).await;
        assert_eq!(status, 401);
        assert!(challenge.contains("error=\"invalid_token\"") && challenge.contains("resource_metadata="), "{challenge}");

        // A refresh may name any subset of the authorization; another resource is
        // invalid_target and leaves the refresh token unused.
        let refresh_with = |resource: &'static str, refresh: String| {
            let app = &app;
            let client = &client;
            async move {
                token_request(app, &[("grant_type", "refresh_token"), ("refresh_token", &refresh), ("resource", resource)],
                    Some((&client.client_id, &client.secret))).await
            }
        };
        let res = refresh_with("https://third.example/", refresh.to_string()).await;
        assert_eq!(res.status(), 400);
        assert_eq!(res.json::<Value>().await.unwrap()["error"], "invalid_target");
        let res = refresh_with(OTHER, refresh.to_string()).await;
        assert_eq!(res.status(), 200, "the refused refresh did not spend the token");
        let renewed: Value = res.json().await.unwrap();
        let seen = introspect(&app, &server, renewed["access_token"].as_str().unwrap()).await;
        assert_eq!(seen["aud"], json!([OTHER, client.client_id]));
        // Narrowed once, a later refresh may still name the rest of the authorization.
        let res = refresh_with(MCP, renewed["refresh_token"].as_str().unwrap().to_string()).await;
        assert_eq!(res.status(), 200);

        // A token for the API itself, and one with no resource, both work at the API.
        let api = format!("{}/api/v4", app.state.config.external_url);
        let code = code_with_resources(&app, &client, &[api.as_str()]).await;
        let tokens: Value = exchange(&app, &client, &code, &[]).await.json().await.unwrap();
        assert_eq!(api_user_status(&app, tokens["access_token"].as_str().unwrap()).await.0, 200);
        let plain = token_request(&app, &[("grant_type", "authorization_code"), ("code", &crate::support::oauth::code_for(&app, &client, &[("scope", "read_user")]).await),
            ("redirect_uri", &client.redirect_uri)], Some((&client.client_id, &client.secret))).await;
        let plain: Value = plain.json().await.unwrap();
        let plain = plain["access_token"].as_str().unwrap();
        assert_eq!(api_user_status(&app, plain).await.0, 200);
        // Without a resource, a resource server sees only its own tokens, as before.
        assert_eq!(introspect(&app, &server, plain).await, json!({"active": false}));
        assert_eq!(introspect(&app, &client, plain).await["aud"], json!(client.client_id));
    }

    async fn malformed_resources_are_invalid_target_and_write_nothing(app: TestApp) {
        let client = register(&app, AppSpec::default()).await;
        let browser = signed_in_browser(&app).await;
        // (A NUL in the query is refused before anything else, as a page: tested below at
        // the token endpoint, where the body reaches the resource check.)
        for bad in ["/relative", "https://a.example/#frag", "urn:example:x", "ftp://a.example/"] {
            let res = authorize(&app, &browser, &[
                ("client_id", &client.client_id), ("redirect_uri", &client.redirect_uri), ("response_type", "code"),
                ("scope", "read_user"), ("state", "st"), ("resource", bad),
            ]).await;
            assert_eq!(res.status(), 302, "{bad:?}");
            let pairs = redirect_params(&res);
            assert_eq!(param(&pairs, "error"), Some("invalid_target"), "{bad:?}");
            assert_eq!(param(&pairs, "state"), Some("st"));
            assert!(param(&pairs, "iss").is_some());
        }
        let before = app.state.store.count_all_rows().await.unwrap();
        for bad in ["/relative", "https://a.example/\u{0}x", "https://a.example/#f"] {
            let res = token_request(&app, &[("grant_type", "client_credentials"), ("scope", "api"), ("resource", bad)],
                Some((&client.client_id, &client.secret))).await;
            assert_eq!(res.status(), 400, "{bad:?}");
            let error = res.json::<Value>().await.unwrap()["error"].clone();
            // A NUL is refused with the body, before any parameter is read.
            let expected = if bad.contains('\u{0}') { "invalid_request" } else { "invalid_target" };
            assert_eq!(error, expected, "{bad:?}");
        }
        assert_eq!(app.state.store.count_all_rows().await.unwrap(), before);
    }
}
