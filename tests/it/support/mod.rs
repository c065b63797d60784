//! The test harness: a real Doorward server on an ephemeral port, on a fresh SQLite file or
//! a fresh PostgreSQL database, and an HTTP client that keeps cookies and does not follow
//! redirects (so tests see every `Location`).

#![allow(dead_code)]

pub mod client_jwt;
pub mod dpop;
pub mod oauth;
pub mod smtp;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use doorward::app::Server;
use doorward::config::Config;
use doorward::domain::clock::Clock;
use doorward::domain::scope::ScopeSet;
use doorward::state::AppState;
use doorward::store::Backend;

pub const ROOT_PASSWORD: &str = "root-password-for-tests";
pub const SECRET_KEY: &str = "0123456789abcdef0123456789abcdef-test-master-key";

/// Runs each listed test once on SQLite and once on PostgreSQL.
#[macro_export]
macro_rules! both_backends {
    ($(async fn $name:ident($app:ident: TestApp) $body:block)*) => {$(
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            async fn case($app: $crate::support::TestApp) $body
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                case($crate::support::TestApp::spawn(doorward::store::Backend::Sqlite).await).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                case($crate::support::TestApp::spawn(doorward::store::Backend::Postgres).await).await
            }
        }
    )*};
}

/// The superuser URL of the test PostgreSQL server. Absent, the PostgreSQL half of the
/// suite fails loudly rather than skipping: `scripts/test` sets it up.
pub fn pg_admin_url() -> String {
    std::env::var("DOORWARD_TEST_PG_URL").expect(
        "DOORWARD_TEST_PG_URL is not set: run the suite with scripts/test, which starts PostgreSQL",
    )
}

/// Creates an empty PostgreSQL database and returns its URL.
pub async fn fresh_pg_database() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let admin = pg_admin_url();
    let name = format!(
        "doorward_test_{}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst),
        hex::encode(doorward::domain::secret::random_bytes::<4>())
    );
    let pool = sqlx::PgPool::connect(&admin)
        .await
        .expect("cannot reach the test PostgreSQL");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&pool)
        .await
        .expect("cannot create a test database");
    pool.close().await;
    let mut url = url::Url::parse(&admin).expect("bad DOORWARD_TEST_PG_URL");
    url.set_path(&name);
    url.to_string()
}

/// A database URL of `backend`, fresh, with its data directory.
pub async fn fresh_database(backend: Backend, dir: &std::path::Path) -> String {
    match backend {
        Backend::Sqlite => format!("sqlite://{}", dir.join("doorward.db").display()),
        Backend::Postgres => fresh_pg_database().await,
    }
}

pub struct TestApp {
    pub base: String,
    pub backend: Backend,
    pub state: AppState,
    pub clock: Clock,
    /// A cookie-keeping client (a browser).
    pub client: reqwest::Client,
    pub data_dir: tempfile::TempDir,
    pub database_url: String,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> TestApp {
        Self::spawn_with(backend, &[]).await
    }

    /// Starts a server with extra `DOORWARD_*` settings.
    pub async fn spawn_with(backend: Backend, extra_env: &[(&str, &str)]) -> TestApp {
        // DOORWARD_TEST_LOG=debug shows the servers' logs while debugging a test.
        if let Ok(level) = std::env::var("DOORWARD_TEST_LOG") {
            doorward::logging::init(&level, doorward::config::LogFormat::Human);
        }
        let data_dir = tempfile::tempdir().expect("tempdir");
        let database_url = fresh_database(backend, data_dir.path()).await;
        Self::start(backend, data_dir, database_url, extra_env).await
    }

    /// A server on a database prepared beforehand (`fresh_database` in `data_dir`), which
    /// it migrates to the current schema on start.
    pub async fn spawn_on(
        backend: Backend,
        data_dir: tempfile::TempDir,
        database_url: String,
    ) -> TestApp {
        Self::start(backend, data_dir, database_url, &[]).await
    }

    /// A second server (node) on this one's database, with its own data directory.
    pub async fn another_node(&self, extra_env: &[(&str, &str)]) -> TestApp {
        let data_dir = tempfile::tempdir().expect("tempdir");
        Self::start(self.backend, data_dir, self.database_url.clone(), extra_env).await
    }

    async fn start(
        backend: Backend,
        data_dir: tempfile::TempDir,
        database_url: String,
        extra_env: &[(&str, &str)],
    ) -> TestApp {
        let mut env: HashMap<String, String> = HashMap::from([
            ("DOORWARD_LISTEN".into(), "127.0.0.1:0".into()),
            (
                "DOORWARD_DATA_DIR".into(),
                data_dir.path().display().to_string(),
            ),
            ("DOORWARD_DATABASE_URL".into(), database_url.clone()),
            ("DOORWARD_ROOT_PASSWORD".into(), ROOT_PASSWORD.into()),
            ("DOORWARD_SECRET_KEY".into(), SECRET_KEY.into()),
            ("DOORWARD_DB_MAX_CONNECTIONS".into(), "5".into()),
        ]);
        for (k, v) in extra_env {
            env.insert(k.to_string(), v.to_string());
        }
        let config = Config::load_with(None, &|k| env.get(k).cloned()).expect("test configuration");
        let clock = Clock::system();
        let server = Server::build(config, clock.clone())
            .await
            .expect("server starts");
        let base = format!("http://{}", server.local_addr());
        let state = server.state().clone();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = server
                .run(async move {
                    let _ = rx.await;
                })
                .await;
        });
        TestApp {
            base,
            backend,
            state,
            clock,
            client: browser(),
            data_dir,
            database_url,
            shutdown: Some(tx),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// A new client with its own cookie jar (another browser).
    pub fn new_browser(&self) -> reqwest::Client {
        browser()
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request")
    }

    /// The CSRF token of the form on the page at `path` (fetching it also sets the cookie).
    pub async fn csrf_token(&self, client: &reqwest::Client, path: &str) -> String {
        let html = client
            .get(self.url(path))
            .send()
            .await
            .expect("request")
            .text()
            .await
            .expect("body");
        csrf_from(&html)
    }

    /// Signs `client` in through the form; returns the POST's response.
    pub async fn sign_in_with(
        &self,
        client: &reqwest::Client,
        login: &str,
        password: &str,
    ) -> reqwest::Response {
        let token = self.csrf_token(client, "/users/sign_in").await;
        client
            .post(self.url("/users/sign_in"))
            .form(&[
                ("authenticity_token", token.as_str()),
                ("username", login),
                ("password", password),
            ])
            .send()
            .await
            .expect("request")
    }

    /// Signs the main client in as `root`.
    pub async fn sign_in_root(&self) {
        let res = self.sign_in_with(&self.client, "root", ROOT_PASSWORD).await;
        assert_eq!(res.status(), 303, "root sign-in failed");
    }

    /// A personal access token for `username` with `scopes`, made the way the CLI makes them.
    pub async fn token_for(&self, username: &str, scopes: &str) -> String {
        let store = &self.state.store;
        let user = store
            .user_by_login(username)
            .await
            .unwrap()
            .expect("user exists");
        let scopes = ScopeSet::parse_non_empty(scopes).unwrap();
        let expires = self.clock.now() + 30 * 86_400;
        let (token, _) = doorward::accounts::issue_personal_access_token(
            store,
            &self.clock,
            user.id,
            "test",
            &scopes,
            Some(expires),
            &doorward::domain::audit::AuditEvent::about_user(
                doorward::domain::audit::Action::PersonalAccessTokenCreated,
                None,
                user.id,
                &user.username,
            ),
        )
        .await
        .unwrap();
        token.expose().to_string()
    }

    /// Creates a user through the admin API; returns its JSON.
    pub async fn create_user(&self, username: &str, password: &str) -> serde_json::Value {
        let admin = self.token_for("root", "api").await;
        let res = reqwest::Client::new()
            .post(self.url("/api/v4/users"))
            .header("PRIVATE-TOKEN", admin)
            .json(&serde_json::json!({
                "username": username,
                "email": format!("{username}@example.com"),
                "name": format!("User {username}"),
                "password": password,
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201, "creating {username}");
        res.json().await.unwrap()
    }

    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// An audit event for tests that call store methods directly.
pub fn test_audit() -> doorward::domain::audit::AuditEvent {
    doorward::domain::audit::AuditEvent::about_user(
        doorward::domain::audit::Action::UserUpdated,
        None,
        0,
        "test",
    )
}

pub fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// The value of the first `authenticity_token` field in `html`.
pub fn csrf_from(html: &str) -> String {
    let marker = "name=\"authenticity_token\" value=\"";
    let start = html.find(marker).expect("page has a CSRF field") + marker.len();
    html[start..]
        .split('"')
        .next()
        .unwrap_or_default()
        .to_string()
}

pub fn location(res: &reqwest::Response) -> String {
    res.headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default()
}
