//! Issue 12's account lifecycle seen from outside: mail read from a real SMTP server
//! (`support::smtp`), links followed as a user would, on both backends.

mod confirmation;
mod notices;
mod password_reset;
mod sessions;
mod sign_up;

use std::time::Duration;

use serde_json::Value;

use crate::support::smtp::ReceivedMail;
use crate::support::{TestApp, oauth};

/// How long a test waits for a mail: the worker sends within a second or two.
pub const MAIL_WAIT: Duration = Duration::from_secs(15);

/// Runs each test on SQLite and PostgreSQL with a fresh SMTP sink and a server mailing to
/// it, with the extra settings given.
#[macro_export]
macro_rules! with_mail {
    ($(async fn $name:ident($app:ident, $sink:ident) [$($k:literal = $v:literal),*] $body:block)*) => {$(
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            async fn case(backend: doorward::store::Backend) {
                let $sink = $crate::support::smtp::SmtpSink::start(
                    $crate::support::smtp::SmtpOptions::default(),
                ).await;
                let url = $sink.url();
                let $app = $crate::support::TestApp::spawn_with(
                    backend,
                    &[("DOORWARD_SMTP_URL", url.as_str()), ("DOORWARD_MAIL_FROM", "noreply@doorward.test") $(, ($k, $v))*],
                ).await;
                $body
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
    )*};
}

/// The one link in `mail` whose path starts with `path`.
pub fn link_to(mail: &ReceivedMail, path: &str) -> String {
    let links: Vec<String> = mail
        .links()
        .into_iter()
        .filter(|l| l.contains(path))
        .collect();
    assert_eq!(
        links.len(),
        1,
        "one {path} link expected in {:?}",
        mail.text()
    );
    links[0].clone()
}

/// Creates a user through the admin API with `extra` fields; returns its JSON.
pub async fn api_create_user(app: &TestApp, username: &str, extra: Value) -> Value {
    let admin = app.token_for("root", "api").await;
    let mut body = serde_json::json!({
        "username": username,
        "email": format!("{username}@example.com"),
        "name": format!("User {username}"),
        "password": format!("{username}-password-1"),
    });
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    let res = reqwest::Client::new()
        .post(app.url("/api/v4/users"))
        .header("PRIVATE-TOKEN", admin)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201, "creating {username}");
    res.json().await.unwrap()
}

/// `GET /api/v4/users/:id` as root.
pub async fn api_user(app: &TestApp, id: i64) -> Value {
    let admin = app.token_for("root", "api").await;
    reqwest::Client::new()
        .get(app.url(&format!("/api/v4/users/{id}")))
        .header("PRIVATE-TOKEN", admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// The id_token claims and UserInfo of `username` for scopes `openid email`, through the
/// password grant of a confidential client.
pub async fn email_claims(app: &TestApp, username: &str, password: &str) -> (Value, Value) {
    let client = oauth::register(
        app,
        oauth::AppSpec {
            scopes: "api read_user openid email",
            ..oauth::AppSpec::default()
        },
    )
    .await;
    let res = oauth::token_request(
        app,
        &[
            ("grant_type", "password"),
            ("username", username),
            ("password", password),
            ("scope", "openid email"),
        ],
        Some((&client.client_id, &client.secret)),
    )
    .await;
    assert_eq!(res.status(), 200, "password grant for {username}");
    let body: Value = res.json().await.unwrap();
    let id_token = body["id_token"].as_str().unwrap();
    let payload = id_token.split('.').nth(1).unwrap();
    use base64::Engine;
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    let userinfo: Value = reqwest::Client::new()
        .get(app.url("/oauth/userinfo"))
        .bearer_auth(body["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    (claims, userinfo)
}

/// Audit events with `action`, newest first, straight from the store.
pub async fn audit_actions(app: &TestApp, action: &str) -> Vec<Value> {
    let (events, _) = app
        .state
        .store
        .list_audit_events(&Default::default(), 1000, 0)
        .await
        .unwrap();
    events
        .into_iter()
        .filter(|e| e.action == action)
        .map(|e| serde_json::from_str(&e.details).unwrap())
        .collect()
}
