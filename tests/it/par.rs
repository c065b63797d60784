//! RFC 9126 pushed authorization requests: `POST /oauth/par`, then `/oauth/authorize` with
//! the `request_uri`, through consent, to one code.

use reqwest::StatusCode;
use serde_json::Value;

use crate::both_backends;
use crate::support::oauth::{self, AppSpec, Client};
use crate::support::{TestApp, location};

const URN: &str = "urn:ietf:params:oauth:request_uri:";

/// Pushes `form` authenticated as `client` with HTTP Basic; returns the status and JSON.
async fn push(
    app: &TestApp,
    client: &Client,
    form: &[(&str, &str)],
) -> (StatusCode, Value, reqwest::header::HeaderMap) {
    let res = reqwest::Client::new()
        .post(app.url("/oauth/par"))
        .basic_auth(&client.client_id, Some(&client.secret))
        .form(form)
        .send()
        .await
        .unwrap();
    let (status, headers) = (res.status(), res.headers().clone());
    (status, res.json().await.unwrap_or(Value::Null), headers)
}

fn code_request(client: &Client) -> Vec<(&str, &str)> {
    vec![
        ("response_type", "code"),
        ("redirect_uri", client.redirect_uri.as_str()),
        ("scope", "read_user"),
        ("state", "pushed-state"),
    ]
}

both_backends! {
    async fn a_pushed_request_runs_through_consent_to_one_code(app: TestApp) {
        let client = oauth::register(&app, AppSpec::default()).await;
        let (status, body, headers) = push(&app, &client, &code_request(&client)).await;
        assert_eq!(status, 201, "{body}");
        assert_eq!(headers["cache-control"], "no-store");
        let request_uri = body["request_uri"].as_str().unwrap().to_string();
        assert!(request_uri.starts_with(URN) && request_uri.len() > URN.len() + 30, "{request_uri}");
        let expires_in = body["expires_in"].as_i64().unwrap();
        assert!(expires_in > 0 && expires_in <= 600);
        let (_, again, _) = push(&app, &client, &code_request(&client)).await;
        assert_ne!(again["request_uri"], body["request_uri"], "a new request_uri per push");

        // Signed out: sign-in first, and back to the same pushed request.
        let browser = app.new_browser();
        let res = oauth::authorize(&app, &browser, &[("client_id", &client.client_id), ("request_uri", &request_uri)]).await;
        assert_eq!(res.status(), 303);
        let sign_in = location(&res);
        assert!(sign_in.contains("request_uri"), "{sign_in}");
        assert_eq!(app.sign_in_with(&browser, "root", crate::support::ROOT_PASSWORD).await.status(), 303);

        // Parameters beside request_uri are never used (RFC 9126 §4).
        let res = oauth::authorize(&app, &browser, &[
            ("client_id", &client.client_id),
            ("request_uri", &request_uri),
            ("scope", "api"),
            ("redirect_uri", "https://evil.example/cb"),
            ("state", "forged"),
        ]).await;
        assert_eq!(res.status(), 200);
        let page = res.text().await.unwrap();
        assert!(page.contains("read_user") && !page.contains(">api<"), "the pushed scope is shown");
        let fields = oauth::consent_fields(&page);
        assert!(fields.iter().any(|(k, v)| k == "request_uri" && *v == request_uri));
        let res = oauth::post_consent(&app, &browser, &fields, "authorize").await;
        assert_eq!(res.status(), 302);
        let pairs = oauth::redirect_params(&res);
        assert!(location(&res).starts_with(&client.redirect_uri));
        assert_eq!(oauth::param(&pairs, "state"), Some("pushed-state"));
        assert_eq!(oauth::param(&pairs, "iss"), Some(app.base.as_str()));
        let code = oauth::param(&pairs, "code").unwrap().to_string();
        let res = oauth::token_request(&app, &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", &client.redirect_uri)], Some((&client.client_id, &client.secret))).await;
        assert_eq!(res.status(), 200);
        assert_eq!(res.json::<Value>().await.unwrap()["scope"], "read_user");

        // One code per request_uri: the consent form again, or the link again, give no
        // code and no second answer to the client for the same state, only our page.
        for res in [
            oauth::post_consent(&app, &browser, &fields, "authorize").await,
            oauth::authorize(&app, &browser, &[("client_id", &client.client_id), ("request_uri", &request_uri)]).await,
        ] {
            assert_used(res).await;
        }
    }

    async fn a_request_uri_is_only_for_its_client_and_its_time(app: TestApp) {
        let client = oauth::register(&app, AppSpec { trusted: true, ..AppSpec::default() }).await;
        let other = oauth::register(&app, AppSpec { trusted: true, ..AppSpec::default() }).await;
        let browser = oauth::signed_in_browser(&app).await;
        let (_, body, _) = push(&app, &client, &code_request(&client)).await;
        let request_uri = body["request_uri"].as_str().unwrap().to_string();
        for (client_id, uri) in [
            (other.client_id.as_str(), request_uri.as_str()),
            (client.client_id.as_str(), "urn:ietf:params:oauth:request_uri:nope"),
            (client.client_id.as_str(), "https://client.example/request.jwt"),
            (client.client_id.as_str(), &"x".repeat(3000)),
        ] {
            let res = oauth::authorize(&app, &browser, &[("client_id", client_id), ("request_uri", uri)]).await;
            assert_eq!(res.status(), 400, "{client_id} {uri}");
            assert!(location(&res).is_empty(), "never redirected");
        }
        // A trusted client skips consent: the code comes at once, then the request is spent.
        let res = oauth::authorize(&app, &browser, &[("client_id", &client.client_id), ("request_uri", &request_uri)]).await;
        assert_eq!(res.status(), 302);
        assert!(oauth::param(&oauth::redirect_params(&res), "code").is_some());
        let res = oauth::authorize(&app, &browser, &[("client_id", &client.client_id), ("request_uri", &request_uri)]).await;
        assert_used(res).await;
        // Another client naming it still gets our page, never a redirect.
        let res = oauth::authorize(&app, &browser, &[("client_id", &other.client_id), ("request_uri", &request_uri)]).await;
        assert_eq!(res.status(), 400);
        assert!(location(&res).is_empty());

        // Expired before it is started.
        let (_, body, _) = push(&app, &client, &code_request(&client)).await;
        app.clock.advance(body["expires_in"].as_i64().unwrap() + 1);
        let res = oauth::authorize(&app, &browser, &[("client_id", &client.client_id), ("request_uri", body["request_uri"].as_str().unwrap())]).await;
        assert_expired(&app, &client, &res);
    }

    async fn a_started_request_lives_through_a_slow_sign_in_and_consent(app: TestApp) {
        let client = oauth::register(&app, AppSpec::default()).await;
        let (_, body, _) = push(&app, &client, &code_request(&client)).await;
        let request_uri = body["request_uri"].as_str().unwrap().to_string();
        let lifetime = body["expires_in"].as_i64().unwrap();
        let link = [("client_id", client.client_id.as_str()), ("request_uri", request_uri.as_str())];
        // Started signed out: the sign-in form, then two-factor or a coffee, take longer
        // than the time the request had to be started in.
        let browser = app.new_browser();
        assert_eq!(oauth::authorize(&app, &browser, &link).await.status(), 303);
        app.clock.advance(lifetime + 60);
        assert_eq!(app.sign_in_with(&browser, "root", crate::support::ROOT_PASSWORD).await.status(), 303);
        let res = oauth::authorize(&app, &browser, &link).await;
        assert_eq!(res.status(), 200, "still usable once started");
        let fields = oauth::consent_fields(&res.text().await.unwrap());
        app.clock.advance(lifetime + 60);
        let res = oauth::post_consent(&app, &browser, &fields, "authorize").await;
        assert_eq!(res.status(), 302);
        let pairs = oauth::redirect_params(&res);
        assert!(oauth::param(&pairs, "code").is_some(), "{pairs:?}");
        assert_used(oauth::authorize(&app, &browser, &link).await).await;
    }

    async fn two_consents_at_once_get_one_code(app: TestApp) {
        let client = oauth::register(&app, AppSpec::default()).await;
        let browser = oauth::signed_in_browser(&app).await;
        let (_, body, _) = push(&app, &client, &code_request(&client)).await;
        let link = [("client_id", client.client_id.as_str()), ("request_uri", body["request_uri"].as_str().unwrap())];
        let res = oauth::authorize(&app, &browser, &link).await;
        let fields = oauth::consent_fields(&res.text().await.unwrap());
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..8 {
            let (browser, url) = (browser.clone(), app.url("/oauth/authorize"));
            let mut form = fields.clone();
            form.push(("decision".into(), "authorize".into()));
            set.spawn(async move { browser.post(url).form(&form).send().await.unwrap() });
        }
        let answers = set.join_all().await;
        // The losers get our page (they lost inside the transaction) or invalid_request_uri.
        let codes = answers.iter().filter(|res| res.status() == 302 && oauth::param(&oauth::redirect_params(res), "code").is_some()).count();
        assert_eq!(codes, 1, "one code per request_uri");
        assert_eq!(app.state.store.count_rows("oauth_grants").await.unwrap(), 1, "the losers stored nothing");
    }

    async fn clients_push_with_every_token_endpoint_method(app: TestApp) {
        let client = oauth::register(&app, AppSpec::default()).await;
        let http = reqwest::Client::new();
        // client_secret_post.
        let mut form = code_request(&client);
        form.push(("client_id", &client.client_id));
        form.push(("client_secret", &client.secret));
        let res = http.post(app.url("/oauth/par")).form(&form).send().await.unwrap();
        assert_eq!(res.status(), 201);
        // A bad client is 401 whatever else is wrong with the push (a repeated parameter).
        let mut form = code_request(&client);
        form.push(("state", "twice"));
        form.push(("client_id", &client.client_id));
        form.push(("client_secret", "wrong"));
        let res = http.post(app.url("/oauth/par")).form(&form).send().await.unwrap();
        assert_eq!(res.status(), 401);
        assert_eq!(res.json::<Value>().await.unwrap()["error"], "invalid_client");
    }

    async fn bad_pushes_are_refused_as_the_token_endpoint_refuses(app: TestApp) {
        let client = oauth::register(&app, AppSpec::default()).await;
        let public = oauth::register(&app, AppSpec { confidential: false, ..AppSpec::default() }).await;
        assert_eq!(app.get("/oauth/par").await.status(), 405);
        let http = reqwest::Client::new();
        let res = http.post(app.url("/oauth/par")).basic_auth(&client.client_id, Some("wrong")).form(&code_request(&client)).send().await.unwrap();
        assert_eq!(res.status(), 401);
        assert_eq!(res.json::<Value>().await.unwrap()["error"], "invalid_client");
        let res = http.post(app.url("/oauth/par")).form(&code_request(&client)).send().await.unwrap();
        assert_eq!(res.status(), 401);

        let mut with_uri = code_request(&client);
        with_uri.push(("request_uri", "urn:ietf:params:oauth:request_uri:abc"));
        let mut unregistered = code_request(&client);
        unregistered[1] = ("redirect_uri", "https://evil.example/cb");
        let mut bad_scope = code_request(&client);
        bad_scope[2] = ("scope", "sudo");
        let mut twice = code_request(&client);
        twice.push(("state", "again"));
        for (form, error) in [(with_uri, "invalid_request"), (unregistered, "invalid_request"), (bad_scope, "invalid_scope"), (twice, "invalid_request")] {
            let (status, body, _) = push(&app, &client, &form).await;
            assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some(error)), "{form:?}: {body}");
            assert!(body.get("request_uri").is_none());
        }
        let rows: i64 = sqlx_count(&app).await;
        assert_eq!(rows, 0, "nothing stored for a refused push");

        // A public client names itself; PKCE as at /oauth/authorize.
        let mut form = code_request(&public);
        form.push(("client_id", public.client_id.as_str()));
        form.push(("code_challenge", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"));
        form.push(("code_challenge_method", "S256"));
        let res = http.post(app.url("/oauth/par")).form(&form).send().await.unwrap();
        assert_eq!(res.status(), 201);
    }
}

both_backends! {
    async fn a_client_can_require_pushed_requests(app: TestApp) {
        let admin = app.token_for("root", "api").await;
        let res = reqwest::Client::new()
            .post(app.url("/api/v4/applications"))
            .header("PRIVATE-TOKEN", &admin)
            .json(&serde_json::json!({
                "name": "Strict", "redirect_uri": "https://strict.example/cb", "scopes": "read_user",
                "trusted": true, "require_pushed_authorization_requests": true,
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let created: Value = res.json().await.unwrap();
        assert_eq!(created["require_pushed_authorization_requests"], true);
        let client = Client {
            id: created["id"].as_i64().unwrap(),
            client_id: created["application_id"].as_str().unwrap().to_string(),
            secret: created["secret"].as_str().unwrap().to_string(),
            redirect_uri: "https://strict.example/cb".into(),
        };
        let browser = oauth::signed_in_browser(&app).await;
        let mut plain = vec![("client_id", client.client_id.as_str())];
        plain.extend(code_request(&client));
        let res = oauth::authorize(&app, &browser, &plain).await;
        let pairs = oauth::redirect_params(&res);
        assert_eq!(oauth::param(&pairs, "error"), Some("invalid_request"));
        assert!(oauth::param(&pairs, "code").is_none());
        let (_, body, _) = push(&app, &client, &code_request(&client)).await;
        let res = oauth::authorize(&app, &browser, &[("client_id", &client.client_id), ("request_uri", body["request_uri"].as_str().unwrap())]).await;
        assert!(oauth::param(&oauth::redirect_params(&res), "code").is_some());
        // Other clients are not affected (the instance does not require it).
        let relaxed = oauth::register(&app, AppSpec { trusted: true, ..AppSpec::default() }).await;
        let mut plain = vec![("client_id", relaxed.client_id.as_str())];
        plain.extend(code_request(&relaxed));
        let res = oauth::authorize(&app, &browser, &plain).await;
        assert!(oauth::param(&oauth::redirect_params(&res), "code").is_some());

        // RFC 9126 §6 client metadata at dynamic registration.
        let res = reqwest::Client::new()
            .post(app.url("/oauth/register"))
            .json(&serde_json::json!({"redirect_uris": ["https://dyn.example/cb"], "require_pushed_authorization_requests": true}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201);
        assert_eq!(res.json::<Value>().await.unwrap()["require_pushed_authorization_requests"], true);
        let res = reqwest::Client::new()
            .post(app.url("/oauth/register"))
            .json(&serde_json::json!({"redirect_uris": ["https://dyn.example/cb"], "require_pushed_authorization_requests": "yes"}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400);
    }
}

/// An expired request of the client's own: no code, `invalid_request_uri` back to its
/// redirect URI with the pushed `state` and `iss`.
fn assert_expired(app: &TestApp, client: &Client, res: &reqwest::Response) {
    assert_eq!(res.status(), 302, "{}", location(res));
    assert!(
        location(res).starts_with(&client.redirect_uri),
        "{}",
        location(res)
    );
    let pairs = oauth::redirect_params(res);
    assert_eq!(oauth::param(&pairs, "error"), Some("invalid_request_uri"));
    assert_eq!(oauth::param(&pairs, "state"), Some("pushed-state"));
    assert_eq!(oauth::param(&pairs, "iss"), Some(app.base.as_str()));
    assert!(oauth::param(&pairs, "code").is_none());
}

/// A request already answered with a code: `invalid_request_uri` on our page, no redirect.
async fn assert_used(res: reqwest::Response) {
    assert_eq!(res.status(), 400);
    assert!(location(&res).is_empty(), "no second answer to the client");
    assert!(res.text().await.unwrap().contains("invalid_request_uri"));
}

async fn sqlx_count(app: &TestApp) -> i64 {
    app.state
        .store
        .count_rows("pushed_authorization_requests")
        .await
        .unwrap()
}

mod required {
    use super::*;

    async fn case(backend: doorward::store::Backend) {
        let app = TestApp::spawn_with(backend, &[("DOORWARD_REQUIRE_PAR", "true")]).await;
        let doc: Value = reqwest::get(app.url("/.well-known/oauth-authorization-server"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(doc["require_pushed_authorization_requests"], true);
        assert_eq!(
            doc["pushed_authorization_request_endpoint"],
            app.url("/oauth/par")
        );
        let client = oauth::register(
            &app,
            AppSpec {
                trusted: true,
                ..AppSpec::default()
            },
        )
        .await;
        let browser = oauth::signed_in_browser(&app).await;
        let mut plain = vec![("client_id", client.client_id.as_str())];
        plain.extend(code_request(&client));
        let res = oauth::authorize(&app, &browser, &plain).await;
        assert_eq!(res.status(), 302);
        let pairs = oauth::redirect_params(&res);
        assert_eq!(oauth::param(&pairs, "error"), Some("invalid_request"));
        assert_eq!(oauth::param(&pairs, "iss"), Some(app.base.as_str()));
        assert!(oauth::param(&pairs, "code").is_none());
        let (_, body, _) = push(&app, &client, &code_request(&client)).await;
        let res = oauth::authorize(
            &app,
            &browser,
            &[
                ("client_id", &client.client_id),
                ("request_uri", body["request_uri"].as_str().unwrap()),
            ],
        )
        .await;
        assert!(oauth::param(&oauth::redirect_params(&res), "code").is_some());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        case(doorward::store::Backend::Sqlite).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        case(doorward::store::Backend::Postgres).await
    }
}
