//! Seeding through the real interfaces: the admin token with the CLI, users and
//! applications through the API, root signed in through the form, and tokens through the
//! code flow (`GET /oauth/authorize`, then `POST /oauth/token`), which W3 uses too.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, bail};
use axum::body::Bytes;
use axum::http::header::{self, HeaderValue};
use axum::http::response::Parts;
use axum::http::{Method, Request, StatusCode};
use doorward::domain::secret;
use serde_json::{Value, json};

use crate::Settings;
use crate::load::{self, Body, Outcome, Plan};
use crate::server::Process;
use crate::startup::ROOT_PASSWORD;
use crate::workloads::{self as wl, TokenPair};

pub const REDIRECT_URI: &str = "http://127.0.0.1:9/callback";
/// Connections that issue the small table's tokens.
const SMALL_TABLE_CONNECTIONS: usize = 16;

/// The seeded world a backend's workloads use.
pub struct World {
    pub addr: std::net::SocketAddr,
    /// Root's personal access token (scope `api`), from the CLI.
    pub admin: String,
    pub conf_basic: HeaderValue,
    pub conf_id: i64,
    pub public_id: i64,
    pub root_id: i64,
    pub user_ids: Vec<i64>,
    pub users: Vec<(String, String)>,
    cookie: HeaderValue,
    verifier: String,
    authorize_path: String,
}

/// One request on a new connection.
pub async fn call(
    addr: std::net::SocketAddr,
    req: Request<Body>,
) -> anyhow::Result<(Parts, Bytes)> {
    let mut sender = load::connect(addr).await?;
    load::exchange(&mut sender, req).await
}

pub fn json_post(path: &str, token: &str, body: &Value) -> anyhow::Result<Request<Body>> {
    Ok(Request::builder()
        .method(Method::POST)
        .uri(path)
        .header(header::CONTENT_TYPE, "application/json")
        .header("private-token", token)
        .body(Bytes::from(serde_json::to_vec(body)?))?)
}

pub fn expect(parts: &Parts, body: &Bytes, status: StatusCode, what: &str) -> anyhow::Result<()> {
    if parts.status != status {
        bail!(
            "{what}: {} instead of {status}: {}",
            parts.status,
            String::from_utf8_lossy(body)
        );
    }
    Ok(())
}

/// Users, applications, the admin token and a signed-in session, all through the CLI and
/// the API.
pub async fn seed(
    bin: &Path,
    env: &[(String, String)],
    p: &Process,
    s: &Settings,
) -> anyhow::Result<World> {
    let addr = p.addr;
    // The admin token, through the CLI, against the running server's database.
    let out = Command::new(bin)
        .args([
            "token", "create", "--user", "root", "--scopes", "api", "--name", "bench", "--json",
        ])
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .context("cannot run doorward token create")?;
    if !out.status.success() {
        bail!(
            "doorward token create failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let admin: Value = serde_json::from_slice(&out.stdout).context("token create --json output")?;
    let admin = admin["token"]
        .as_str()
        .context("no token in the CLI's output")?
        .to_string();

    let (parts, body) = call(
        addr,
        Request::get("/api/v4/user")
            .header("private-token", &admin)
            .body(Body::new())?,
    )
    .await?;
    expect(&parts, &body, StatusCode::OK, "GET /api/v4/user")?;
    let root_id = serde_json::from_slice::<Value>(&body)?["id"]
        .as_i64()
        .context("root has no id")?;

    let mut users = Vec::new();
    let mut user_ids = Vec::new();
    for i in 0..s.users {
        let username = format!("bench-user-{i}");
        let password = format!(
            "bench-password-{i}-{}",
            secret::base64url(&secret::random_bytes::<6>())
        );
        let (parts, body) = call(
            addr,
            json_post(
                "/api/v4/users",
                &admin,
                &json!({
                    "username": username,
                    "email": format!("{username}@bench.example"),
                    "name": format!("Bench User {i}"),
                    "password": password,
                }),
            )?,
        )
        .await?;
        expect(&parts, &body, StatusCode::CREATED, "POST /api/v4/users")?;
        user_ids.push(
            serde_json::from_slice::<Value>(&body)?["id"]
                .as_i64()
                .context("user without id")?,
        );
        users.push((username, password));
    }

    let mut apps = Vec::new();
    for confidential in [true, false] {
        let (parts, body) = call(
            addr,
            json_post(
                "/api/v4/applications",
                &admin,
                &json!({
                    "name": if confidential { "bench confidential" } else { "bench public" },
                    "redirect_uri": REDIRECT_URI,
                    "scopes": "api read_user read_api",
                    "confidential": confidential,
                    "trusted": true,
                }),
            )?,
        )
        .await?;
        expect(&parts, &body, StatusCode::OK, "POST /api/v4/applications")?;
        apps.push(serde_json::from_slice::<Value>(&body)?);
    }
    let conf_client_id = apps[0]["application_id"]
        .as_str()
        .context("application_id")?
        .to_string();
    let conf_secret = apps[0]["secret"].as_str().context("secret")?.to_string();

    // Sign in as root through the form, as a browser does.
    let mut jar = BTreeMap::new();
    let (parts, body) = call(addr, Request::get("/users/sign_in").body(Body::new())?).await?;
    expect(&parts, &body, StatusCode::OK, "GET /users/sign_in")?;
    absorb_cookies(&mut jar, &parts);
    let html = String::from_utf8_lossy(&body);
    let marker = "name=\"authenticity_token\" value=\"";
    let at = html
        .find(marker)
        .context("no CSRF field on the sign-in page")?
        + marker.len();
    let csrf = html[at..].split('"').next().unwrap_or_default().to_string();
    let form = wl::form(&[
        ("authenticity_token", &csrf),
        ("username", "root"),
        ("password", ROOT_PASSWORD),
    ]);
    let (parts, body) = call(
        addr,
        Request::post("/users/sign_in")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::COOKIE, cookie_header(&jar))
            .body(Bytes::from(form))?,
    )
    .await?;
    expect(&parts, &body, StatusCode::SEE_OTHER, "POST /users/sign_in")?;
    absorb_cookies(&mut jar, &parts);
    if !jar.contains_key("doorward_session") {
        bail!("signing in set no session cookie");
    }

    let verifier = secret::base64url(&secret::random_bytes::<32>());
    let challenge = secret::base64url(&secret::hash(&verifier));
    let authorize_path = format!(
        "/oauth/authorize?{}",
        wl::form(&[
            ("client_id", &conf_client_id),
            ("redirect_uri", REDIRECT_URI),
            ("response_type", "code"),
            ("state", "bench"),
            ("scope", "api"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ])
    );
    Ok(World {
        addr,
        admin,
        conf_basic: wl::basic(&conf_client_id, &conf_secret),
        conf_id: apps[0]["id"].as_i64().context("application id")?,
        public_id: apps[1]["id"].as_i64().context("application id")?,
        root_id,
        user_ids,
        users,
        cookie: HeaderValue::from_str(&cookie_header(&jar))?,
        verifier,
        authorize_path,
    })
}

fn absorb_cookies(jar: &mut BTreeMap<String, String>, parts: &Parts) {
    for v in parts.headers.get_all(header::SET_COOKIE) {
        if let Ok(text) = v.to_str()
            && let Some((name, value)) = text.split(';').next().and_then(|kv| kv.split_once('='))
        {
            jar.insert(name.trim().to_string(), value.trim().to_string());
        }
    }
}

fn cookie_header(jar: &BTreeMap<String, String>) -> String {
    jar.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Codes from `GET /oauth/authorize` (a trusted application: straight back with a code):
/// `limit` of them, or as many as `duration` allows.
pub async fn mint_codes(
    p: &Process,
    world: &World,
    limit: Option<usize>,
    duration: Duration,
    connections: usize,
) -> anyhow::Result<(Vec<String>, Outcome)> {
    let codes = Arc::new(Mutex::new(Vec::new()));
    let w = Arc::new(wl::Authorize {
        cookie: world.cookie.clone(),
        path: world.authorize_path.clone(),
        codes: codes.clone(),
        limit,
        issued: AtomicUsize::new(0),
    });
    let o = load::run(world.addr, w, &Plan::timed(connections, duration), p.pid).await?;
    if o.errors > 0 {
        bail!("minting codes failed: {:?}", o.error_samples);
    }
    let codes = std::mem::take(&mut *codes.lock().map_err(|_| anyhow::anyhow!("poisoned"))?);
    Ok((codes, o))
}

/// Exchanges `codes` at the token endpoint for up to `duration` (or until they run out).
pub async fn exchange_codes(
    p: &Process,
    world: &World,
    codes: Vec<String>,
    duration: Duration,
    connections: usize,
) -> anyhow::Result<(Vec<TokenPair>, Outcome)> {
    let issued = Arc::new(Mutex::new(Vec::new()));
    let w = Arc::new(wl::CodeExchange {
        basic: world.conf_basic.clone(),
        codes,
        next_code: AtomicUsize::new(0),
        redirect_uri: REDIRECT_URI.to_string(),
        verifier: world.verifier.clone(),
        issued: issued.clone(),
    });
    let o = load::run(world.addr, w, &Plan::timed(connections, duration), p.pid).await?;
    let pairs = std::mem::take(&mut *issued.lock().map_err(|_| anyhow::anyhow!("poisoned"))?);
    Ok((pairs, o))
}

/// The small table: `s.small_table` token pairs issued through the code flow.
pub async fn small_table(
    p: &Process,
    world: &World,
    s: &Settings,
) -> anyhow::Result<Vec<TokenPair>> {
    let long = Duration::from_secs(600);
    let codes = mint_codes(
        p,
        world,
        Some(s.small_table as usize),
        long,
        SMALL_TABLE_CONNECTIONS,
    )
    .await?
    .0;
    let (pairs, _) = exchange_codes(p, world, codes, long, SMALL_TABLE_CONNECTIONS).await?;
    if pairs.len() as u64 != s.small_table {
        bail!(
            "the code flow issued {} tokens, not {}",
            pairs.len(),
            s.small_table
        );
    }
    Ok(pairs)
}
