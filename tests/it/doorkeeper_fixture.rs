//! The doorkeeper fixture of the import tests (issue 16): a real Rails + doorkeeper app in
//! tests/fixtures/doorkeeper/ builds a GitLab-shaped database through real OAuth flows and
//! writes a manifest of its plaintexts; and the requests the tests make with them.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Value, json};

use crate::cli::{doorward, stdout_json};
use crate::support::{TestApp, pg_admin_url};

/// A doorkeeper database built by the fixture app, and its manifest.
pub struct Fixture {
    _dir: tempfile::TempDir,
    pub url: String,
    pub sqlite_path: Option<PathBuf>,
    pub manifest: Value,
}

async fn run_fixture(url: &str, dir: &Path) -> Value {
    let manifest = dir.join("manifest.json");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/doorkeeper/build.rb");
    let out = tokio::process::Command::new("ruby")
        .arg(script)
        .args(["--database", url, "--manifest"])
        .arg(&manifest)
        .output()
        .await
        .expect("ruby (scripts/test installs it with tests/fixtures/doorkeeper/install-deps)");
    assert!(
        out.status.success(),
        "the doorkeeper fixture failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&std::fs::read(manifest).unwrap()).unwrap()
}

pub async fn sqlite_fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gitlab.sqlite3");
    let url = format!("sqlite://{}", path.display());
    let manifest = run_fixture(&url, dir.path()).await;
    Fixture {
        _dir: dir,
        url,
        sqlite_path: Some(path),
        manifest,
    }
}

/// The fixture in a database of its own on the test PostgreSQL server, named in a URL
/// with a password (the server trusts local connections and ignores it) that the report
/// must mask.
pub async fn postgres_fixture() -> Fixture {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let dir = tempfile::tempdir().unwrap();
    let mut url = url::Url::parse(&pg_admin_url()).unwrap();
    url.set_path(&format!(
        "gitlabhq_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    ));
    let manifest = run_fixture(url.as_str(), dir.path()).await;
    url.set_password(Some("hunter2-not-logged")).unwrap();
    Fixture {
        _dir: dir,
        url: url.to_string(),
        sqlite_path: None,
        manifest,
    }
}

pub fn import(app: &TestApp, from: &str, dry_run: bool) -> Value {
    let mut args = vec!["--json", "import", "doorkeeper", "--from", from];
    if dry_run {
        args.push("--dry-run");
    }
    stdout_json(&doorward(app, &args, None))
}

pub fn counts(found: u64, imported: u64, existing: u64, skipped: u64) -> Value {
    json!({"found": found, "imported": imported, "existing": existing, "skipped": skipped})
}

pub fn items<'a>(manifest: &'a Value, key: &str) -> &'a Vec<Value> {
    manifest[key].as_array().unwrap()
}

pub fn application(manifest: &Value, id: &Value) -> Value {
    items(manifest, "applications")
        .iter()
        .find(|a| &a["id"] == id)
        .unwrap()
        .clone()
}

pub async fn bearer(app: &TestApp, path: &str, token: &str) -> reqwest::Response {
    reqwest::Client::new()
        .get(app.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

/// A token request authenticated as the source application: its plaintext secret by HTTP
/// Basic (or in the body when `in_body`), or `client_id` alone for a public client.
pub async fn token_request(
    app: &TestApp,
    client: &Value,
    form: &[(&str, &str)],
    in_body: bool,
) -> reqwest::Response {
    let uid = client["uid"].as_str().unwrap();
    let secret = client["secret"].as_str().unwrap();
    let mut form: Vec<(&str, &str)> = form.to_vec();
    let mut req = reqwest::Client::new().post(app.url("/oauth/token"));
    if client["confidential"] == false {
        form.push(("client_id", uid));
    } else if in_body {
        form.extend([("client_id", uid), ("client_secret", secret)]);
    } else {
        req = req.basic_auth(uid, Some(secret));
    }
    req.form(&form).send().await.unwrap()
}

/// Owners whose tokens the checks below refresh and use: not blocked, pending or 2FA.
pub fn usable_owner(token: &Value) -> bool {
    !matches!(token["resource_owner_id"].as_i64(), Some(3..=5))
}
