//! The defects an outside review found (issue "One path for each concern"): each test here
//! failed before its fix.

use serde_json::Value;

use crate::both_backends;
use crate::support::oauth::{
    AppSpec, authorize, consent_fields, param, post_consent, redirect_params, register,
    signed_in_browser, token_request,
};
use crate::support::{ROOT_PASSWORD, TestApp};

const SECOND_REDIRECT: &str = "https://client.example/second";

/// The consent page for a request with scope `read_user` and everything PKCE and OIDC can
/// add, and the hidden fields it shows.
async fn consent_page(
    app: &TestApp,
    browser: &reqwest::Client,
    client: &crate::support::oauth::Client,
) -> Vec<(String, String)> {
    let res = authorize(
        app,
        browser,
        &[
            ("client_id", client.client_id.as_str()),
            ("redirect_uri", client.redirect_uri.as_str()),
            ("response_type", "code"),
            ("scope", "read_user"),
            ("state", "shown-state"),
            ("nonce", "shown-nonce"),
            (
                "code_challenge",
                "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            ),
            ("code_challenge_method", "S256"),
        ],
    )
    .await;
    assert_eq!(res.status(), 200);
    consent_fields(&res.text().await.unwrap())
}

fn edited(fields: &[(String, String)], name: &str, value: Option<&str>) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> =
        fields.iter().filter(|(k, _)| k != name).cloned().collect();
    if let Some(v) = value {
        out.push((name.to_string(), v.to_string()));
    }
    out
}

/// The raw `Set-Cookie` value named `name` of a response.
fn set_cookie(res: &reqwest::Response, name: &str) -> Option<String> {
    res.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(|v| v.split(';').next().unwrap()[name.len() + 1..].to_string())
}

both_backends! {
    async fn a_consent_post_with_an_edited_field_gets_no_code(app: TestApp) {
        let client = register(
            &app,
            AppSpec {
                scopes: "api read_user openid",
                redirect_uris: &format!("{} {SECOND_REDIRECT}", crate::support::oauth::REDIRECT),
                ..Default::default()
            },
        )
        .await;
        let browser = signed_in_browser(&app).await;
        let fields = consent_page(&app, &browser, &client).await;
        let grants_before = app.state.store.count_rows("oauth_grants").await.unwrap();
        // Every field that decides what is issued or where it goes, edited to a value that
        // is valid on its own (registered scope, registered redirect URI, a fresh PKCE
        // challenge), or dropped.
        let edits: Vec<(&str, Option<&str>)> = vec![
            ("scope", Some("api read_user")),
            ("scope", Some("api")),
            ("redirect_uri", Some(SECOND_REDIRECT)),
            ("state", Some("other-state")),
            ("state", None),
            ("nonce", Some("other-nonce")),
            ("nonce", None),
            ("code_challenge", Some("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")),
            ("code_challenge", None),
            ("response_mode", Some("fragment")),
            ("consent_binding", None),
            ("consent_binding", Some("1.AAAA")),
        ];
        for (name, value) in edits {
            let res = post_consent(&app, &browser, &edited(&fields, name, value), "authorize").await;
            // Refused on our own page, or (a request now invalid on its own, such as a
            // method without a challenge) with an error sent to the client: never a code.
            let pairs = if res.status() == 302 { redirect_params(&res) } else { Vec::new() };
            assert!(param(&pairs, "code").is_none(), "edited {name} to {value:?} gave a code");
            assert!(res.status() == 400 || param(&pairs, "error").is_some(), "edited {name}: {}", res.status());
        }
        assert_eq!(app.state.store.count_rows("oauth_grants").await.unwrap(), grants_before);

        // The form of another session (root signed in elsewhere, with that session's own
        // CSRF token) is refused in this one.
        let other = signed_in_browser(&app).await;
        let other_fields = consent_page(&app, &other, &client).await;
        let other_csrf = param(&other_fields, "authenticity_token").unwrap();
        let res = post_consent(&app, &other, &edited(&fields, "authenticity_token", Some(other_csrf)), "authorize").await;
        assert_eq!(res.status(), 400);

        // Untouched, the form gives a code for exactly what was shown.
        let res = post_consent(&app, &browser, &fields, "authorize").await;
        assert_eq!(res.status(), 302);
        let pairs = redirect_params(&res);
        assert_eq!(param(&pairs, "state"), Some("shown-state"));
        let code = param(&pairs, "code").unwrap().to_string();
        // The code is for exactly the shown request.
        let (grant, _) = app
            .state
            .store
            .grant_by_code_hash(&doorward::domain::secret::token_key(&code))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(grant.scopes.to_string(), "read_user");
        assert_eq!(grant.redirect_uri, client.redirect_uri);
        assert_eq!(grant.nonce.as_deref(), Some("shown-nonce"));
        // And the exchange gives a token for exactly that scope.
        let res = token_request(
            &app,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", &client.redirect_uri),
                ("code_verifier", "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            ],
            Some((&client.client_id, &client.secret)),
        )
        .await;
        assert_eq!(res.status(), 200);
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["scope"], "read_user");
    }

    async fn responses_carrying_secrets_are_never_cached(app: TestApp) {
        let admin = app.token_for("root", "api").await;
        let http = reqwest::Client::new();
        let res = http
            .post(app.url("/api/v4/applications"))
            .header("PRIVATE-TOKEN", &admin)
            .json(&serde_json::json!({"name": "x", "redirect_uri": "https://x.example/cb", "scopes": "api"}))
            .send()
            .await
            .unwrap();
        assert!(res.status().is_success());
        assert_eq!(res.headers()["cache-control"], "no-store");
        let created: Value = res.json().await.unwrap();
        assert!(created["secret"].is_string());
        let res = http
            .post(app.url(&format!("/api/v4/applications/{}/renew-secret", created["id"])))
            .header("PRIVATE-TOKEN", &admin)
            .send()
            .await
            .unwrap();
        assert!(res.status().is_success());
        assert_eq!(res.headers()["cache-control"], "no-store");

        // The token endpoint's 413, built before any handler runs.
        let res = http
            .post(app.url("/oauth/token"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(vec![b'a'; 70 * 1024])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 413);
        assert_eq!(res.headers()["cache-control"], "no-store");
        assert_eq!(res.headers()["pragma"], "no-cache");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"], "invalid_request");

        // Every dynamic answer defaults to no-store; public documents keep their own policy.
        let res = app.get("/api/v4/user").await;
        assert_eq!(res.headers()["cache-control"], "no-store");
        let res = app.get("/.well-known/openid-configuration").await;
        assert_ne!(res.headers()["cache-control"], "no-store");
        let res = app.get("/users/sign_in").await;
        assert_eq!(res.headers()["cache-control"], "no-store");
    }

    async fn nul_and_control_characters_are_refused_at_parsing(app: TestApp) {
        let client = register(&app, AppSpec::default()).await;
        let http = reqwest::Client::new();
        let admin = app.token_for("root", "api").await;
        let tables_before = app.state.store.count_all_rows().await.unwrap();

        // The password grant's username (the report's case), and other OAuth parameters.
        for body in [
            "grant_type=password&username=%00&password=x".to_string(),
            "grant_type=password&username=ro%01ot&password=x".to_string(),
            "grant_type=client_credentials&scope=api%00".to_string(),
            "grant_type=authorization_code&code=%00&redirect_uri=x".to_string(),
        ] {
            let res = http
                .post(app.url("/oauth/token"))
                .basic_auth(&client.client_id, Some(&client.secret))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body.clone())
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 400, "{body}");
            let json: Value = res.json().await.unwrap();
            assert_eq!(json["error"], "invalid_request", "{body}");
        }
        // Decoded HTTP Basic credentials with NUL: `Basic ADoA` is "\0:\0".
        for basic in ["Basic ADoA", "Basic YQA6Yg==", "Basic YTpi%00"] {
            let res = http
                .post(app.url("/oauth/token"))
                .header("authorization", basic)
                .form(&[("grant_type", "client_credentials")])
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 401, "{basic}");
            let json: Value = res.json().await.unwrap();
            assert_eq!(json["error"], "invalid_client");
        }
        // JSON bodies: escaped controls in values and keys.
        for body in [
            r#"{"username":"a\u0000b","email":"a@b.example","name":"x","password":"password-123"}"#,
            r#"{"username":"ab","email":"a@b.example","name":"x\u0007","password":"password-123"}"#,
        ] {
            let res = http
                .post(app.url("/api/v4/users"))
                .header("PRIVATE-TOKEN", &admin)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 400, "{body}");
            let json: Value = res.json().await.unwrap();
            assert!(json["message"].is_string());
        }
        let res = http
            .post(app.url("/oauth/token"))
            .header("content-type", "application/json")
            .body(r#"{"grant_type":"password","username":"\u0000","password":"x"}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400);
        // Query strings and paths, on every sink.
        for (path, kind) in [
            ("/api/v4/users?username=%00", "api"),
            ("/api/v4/users/%00", "api"),
            ("/oauth/token/info?access_token=%00", "oauth"),
            ("/oauth/userinfo?access_token=%00", "oauth"),
            ("/oauth/authorize?client_id=%00&response_type=code", "page"),
            ("/users/sign_in?return_to=%00", "page"),
            ("/.well-known/webfinger?resource=%00", "oauth"),
        ] {
            let res = http
                .get(app.url(path))
                .header("PRIVATE-TOKEN", &admin)
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 400, "{path}");
            let text = res.text().await.unwrap();
            match kind {
                "api" => assert!(text.contains("\"message\""), "{path}: {text}"),
                "oauth" => assert!(text.contains("invalid_request"), "{path}: {text}"),
                _ => assert!(text.contains("<!doctype html>"), "{path}"),
            }
        }
        // A page form: the sign-in form with a NUL login.
        let token = app.csrf_token(&app.client, "/users/sign_in").await;
        let res = app
            .client
            .post(app.url("/users/sign_in"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("authenticity_token={token}&username=%00&password=x"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400);
        // Tab, line feed and carriage return stay allowed (multi-line fields).
        let res = http
            .get(app.url("/api/v4/users?search=a%09b"))
            .header("PRIVATE-TOKEN", &admin)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(app.state.store.count_all_rows().await.unwrap(), tables_before);
    }

    async fn a_token_sent_by_two_methods_is_invalid_request(app: TestApp) {
        let token = app.token_for("root", "api").await;
        let client = register(&app, AppSpec::default()).await;
        let res = token_request(
            &app,
            &[("grant_type", "client_credentials"), ("scope", "api")],
            Some((&client.client_id, &client.secret)),
        )
        .await;
        let oauth: Value = res.json().await.unwrap();
        let oauth = oauth["access_token"].as_str().unwrap().to_string();
        let http = reqwest::Client::new();
        for (path, token) in [
            ("/api/v4/user", &token),
            ("/oauth/token/info", &oauth),
            ("/oauth/userinfo", &oauth),
        ] {
            let res = http
                .get(app.url(&format!("{path}?access_token={token}")))
                .bearer_auth(token)
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 400, "{path}");
            let challenge = res.headers()["www-authenticate"].to_str().unwrap().to_string();
            assert!(challenge.starts_with("Bearer realm=\"Doorward\""), "{challenge}");
            assert!(challenge.contains("error=\"invalid_request\""), "{path}: {challenge}");
        }
        // GitLab's own methods count too.
        let res = http
            .get(app.url("/api/v4/user"))
            .header("PRIVATE-TOKEN", &token)
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400);
        // One method is fine.
        let res = http.get(app.url("/api/v4/user")).bearer_auth(&token).send().await.unwrap();
        assert_eq!(res.status(), 200);
    }

    async fn a_planted_csrf_cookie_cannot_forge_a_signed_in_users_form(app: TestApp) {
        let plain = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        // The attacker visits the sign-in page: a pre-session cookie and its token.
        let res = plain.get(app.url("/users/sign_in")).send().await.unwrap();
        let attacker_cookie = set_cookie(&res, "doorward_csrf").unwrap();
        let attacker_token = crate::support::csrf_from(&res.text().await.unwrap());
        // The victim signs in.
        let res = plain.get(app.url("/users/sign_in")).send().await.unwrap();
        let victim_pre = set_cookie(&res, "doorward_csrf").unwrap();
        let token = crate::support::csrf_from(&res.text().await.unwrap());
        let res = plain
            .post(app.url("/users/sign_in"))
            .header("cookie", format!("doorward_csrf={victim_pre}"))
            .form(&[("authenticity_token", token.as_str()), ("username", "root"), ("password", ROOT_PASSWORD)])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 303);
        let session = set_cookie(&res, "doorward_session").unwrap();
        let pats_before = app.state.store.count_rows("personal_access_tokens").await.unwrap();
        // The attacker plants their pre-session cookie in the victim's browser and posts
        // the PAT form with the token minted for it.
        let forged = plain
            .post(app.url("/-/user_settings/personal_access_tokens"))
            .header("cookie", format!("doorward_session={session}; doorward_csrf={attacker_cookie}"))
            .form(&[("authenticity_token", attacker_token.as_str()), ("name", "stolen"), ("scopes[]", "api")])
            .send()
            .await
            .unwrap();
        assert_eq!(forged.status(), 403);
        // A cross-site Origin is refused even with the right token.
        let page = plain
            .get(app.url("/-/user_settings/personal_access_tokens"))
            .header("cookie", format!("doorward_session={session}; doorward_csrf={attacker_cookie}"))
            .send()
            .await
            .unwrap();
        let real_token = crate::support::csrf_from(&page.text().await.unwrap());
        for origin in ["https://evil.example", "null"] {
            let res = plain
                .post(app.url("/-/user_settings/personal_access_tokens"))
                .header("cookie", format!("doorward_session={session}; doorward_csrf={attacker_cookie}"))
                .header("origin", origin)
                .form(&[("authenticity_token", real_token.as_str()), ("name", "x"), ("scopes[]", "api")])
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 403, "{origin}");
        }
        assert_eq!(app.state.store.count_rows("personal_access_tokens").await.unwrap(), pats_before);
        let expiry = time::OffsetDateTime::from_unix_timestamp(app.clock.now() + 30 * 86_400)
            .unwrap()
            .date()
            .to_string();
        // The session-bound token, from our own origin, works whatever pre-session cookie
        // the browser holds.
        let res = plain
            .post(app.url("/-/user_settings/personal_access_tokens"))
            .header("cookie", format!("doorward_session={session}; doorward_csrf={attacker_cookie}"))
            .header("origin", app.url("").trim_end_matches('/'))
            .form(&[("authenticity_token", real_token.as_str()), ("name", "mine"), ("scopes[]", "api"), ("expires_at", &expiry)])
            .send()
            .await
            .unwrap();
        assert!(res.status().is_success() || res.status().is_redirection(), "{}", res.status());
        assert_eq!(app.state.store.count_rows("personal_access_tokens").await.unwrap(), pats_before + 1);
    }
}
