//! Helpers for OAuth tests: registering applications, walking a browser through
//! `/oauth/authorize`, and an HTTP client for the `oauth2` crate built on reqwest.

use doorward::domain::application::validate_settings;
use doorward::domain::secret;

use super::{ROOT_PASSWORD, TestApp, location};

pub const REDIRECT: &str = "https://client.example/callback";

/// A registered application and its credentials.
#[derive(Clone, Debug)]
pub struct Client {
    pub id: i64,
    pub client_id: String,
    pub secret: String,
    pub redirect_uri: String,
}

pub struct AppSpec<'a> {
    pub confidential: bool,
    pub trusted: bool,
    pub require_pkce: bool,
    pub scopes: &'a str,
    pub redirect_uris: &'a str,
    pub owner: Option<i64>,
}

impl Default for AppSpec<'_> {
    fn default() -> Self {
        AppSpec {
            confidential: true,
            trusted: false,
            require_pkce: false,
            scopes: "api read_user openid",
            redirect_uris: REDIRECT,
            owner: Some(1),
        }
    }
}

/// Registers an application straight through the store (the management UI and API have
/// their own tests).
pub async fn register(app: &TestApp, spec: AppSpec<'_>) -> Client {
    let settings = validate_settings(
        "Test Client",
        spec.redirect_uris,
        spec.scopes,
        spec.confidential,
        spec.require_pkce,
        false,
    )
    .expect("valid application");
    let client_id = secret::generate_client_id();
    let client_secret = secret::generate(secret::APPLICATION_SECRET_PREFIX).into_inner();
    let stored = app
        .state
        .store
        .create_application(
            &client_id,
            &secret::hash(&client_secret),
            &settings,
            spec.trusted,
            spec.owner,
            &crate::support::test_audit(),
            app.clock.now(),
        )
        .await
        .unwrap();
    Client {
        id: stored.id,
        client_id,
        secret: client_secret,
        redirect_uri: spec
            .redirect_uris
            .split_whitespace()
            .next()
            .unwrap()
            .to_string(),
    }
}

/// A browser signed in as root.
pub async fn signed_in_browser(app: &TestApp) -> reqwest::Client {
    let browser = app.new_browser();
    assert_eq!(
        app.sign_in_with(&browser, "root", ROOT_PASSWORD)
            .await
            .status(),
        303
    );
    browser
}

/// `GET /oauth/authorize` with these query parameters.
pub async fn authorize(
    app: &TestApp,
    browser: &reqwest::Client,
    params: &[(&str, &str)],
) -> reqwest::Response {
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish();
    browser
        .get(app.url(&format!("/oauth/authorize?{query}")))
        .send()
        .await
        .unwrap()
}

/// The hidden fields of the consent form in `html`, unescaped.
pub fn consent_fields(html: &str) -> Vec<(String, String)> {
    let mut fields = Vec::new();
    // Only the consent form: the layout has its own forms (sign-out).
    let start = html
        .find("action=\"/oauth/authorize\"")
        .expect("a consent form");
    let mut rest = &html[start..];
    let end = rest.find("</form>").unwrap_or(rest.len());
    rest = &rest[..end];
    while let Some(i) = rest.find("<input type=\"hidden\" name=\"") {
        rest = &rest[i + 27..];
        let name = rest.split('"').next().unwrap().to_string();
        let v = rest.find("value=\"").unwrap() + 7;
        let value = unescape(rest[v..].split('"').next().unwrap());
        fields.push((name, value));
    }
    fields
}

pub fn unescape(s: &str) -> String {
    s.replace("&#x2f;", "/")
        .replace("&#x27;", "'")
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// Posts the consent form of `page` with `decision` (`authorize` or `deny`).
pub async fn decide(
    app: &TestApp,
    browser: &reqwest::Client,
    page: &str,
    decision: &str,
) -> reqwest::Response {
    post_consent(app, browser, &consent_fields(page), decision).await
}

/// POSTs consent `fields` (as shown, or edited) with `decision`.
pub async fn post_consent(
    app: &TestApp,
    browser: &reqwest::Client,
    fields: &[(String, String)],
    decision: &str,
) -> reqwest::Response {
    let mut fields = fields.to_vec();
    fields.push(("decision".into(), decision.into()));
    browser
        .post(app.url("/oauth/authorize"))
        .form(&fields)
        .send()
        .await
        .unwrap()
}

/// The query (or fragment) parameters of a redirect's `Location`.
pub fn redirect_params(res: &reqwest::Response) -> Vec<(String, String)> {
    let loc = location(res);
    let url = url::Url::parse(&loc).unwrap_or_else(|_| panic!("not an absolute redirect: {loc:?}"));
    match url.fragment() {
        Some(f) if url.query().is_none() => url::form_urlencoded::parse(f.as_bytes())
            .into_owned()
            .collect(),
        _ => url.query_pairs().into_owned().collect(),
    }
}

pub fn param<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Runs the whole browser part of the code flow as root and returns the code.
pub async fn code_for(app: &TestApp, client: &Client, extra: &[(&str, &str)]) -> String {
    let browser = signed_in_browser(app).await;
    let mut params = vec![
        ("client_id", client.client_id.as_str()),
        ("redirect_uri", client.redirect_uri.as_str()),
        ("response_type", "code"),
        ("state", "xyz"),
    ];
    params.extend_from_slice(extra);
    let res = authorize(app, &browser, &params).await;
    let res = if res.status() == 200 {
        let page = res.text().await.unwrap();
        decide(app, &browser, &page, "authorize").await
    } else {
        res
    };
    assert_eq!(res.status(), 302, "expected a redirect to the client");
    let pairs = redirect_params(&res);
    assert_eq!(param(&pairs, "state"), Some("xyz"));
    param(&pairs, "code")
        .unwrap_or_else(|| panic!("no code in {pairs:?}"))
        .to_string()
}

/// POSTs a form to the token endpoint.
pub async fn token_request(
    app: &TestApp,
    form: &[(&str, &str)],
    basic: Option<(&str, &str)>,
) -> reqwest::Response {
    let mut req = reqwest::Client::new()
        .post(app.url("/oauth/token"))
        .form(form);
    if let Some((id, secret)) = basic {
        req = req.basic_auth(id, Some(secret));
    }
    req.send().await.unwrap()
}

/// The `oauth2` crate's HTTP client, on reqwest 0.13, never following redirects.
pub async fn http_client(
    request: oauth2::HttpRequest,
) -> Result<oauth2::HttpResponse, reqwest::Error> {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let mut builder = client.request(request.method().clone(), request.uri().to_string());
    for (name, value) in request.headers() {
        builder = builder.header(name, value);
    }
    let res = builder.body(request.body().clone()).send().await?;
    let mut out = oauth2::http::Response::builder().status(res.status());
    for (name, value) in res.headers() {
        out = out.header(name, value);
    }
    let body = res.bytes().await?.to_vec();
    Ok(out.body(body).expect("valid response"))
}

/// RFC 7662 introspection of `token` by `caller` (HTTP Basic): the JSON answer.
pub async fn introspect(app: &TestApp, caller: &Client, token: &str) -> serde_json::Value {
    reqwest::Client::new()
        .post(app.url("/oauth/introspect"))
        .basic_auth(&caller.client_id, Some(&caller.secret))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}
