//! Two-factor authentication through the pages: set-up, sign-in with a code or a recovery
//! code, replay, throttling, expiry, disabling, and the secret at rest. Codes are computed
//! at `app.clock.now()`, the server's own (shared, movable) time.

use doorward::domain::two_factor::{self, TotpSecret};

use crate::both_backends;
use crate::support::{TestApp, location};

const PASSWORD: &str = "alice-password-123";
const PAGE: &str = "/-/profile/two_factor_auth";

/// The text between `start` and the next `end` in `html`.
fn between(html: &str, start: &str, end: &str) -> String {
    let from = html
        .find(start)
        .unwrap_or_else(|| panic!("{start:?} not in {html}"))
        + start.len();
    html[from..].split(end).next().unwrap().to_string()
}

fn cookie_names(res: &reqwest::Response) -> Vec<String> {
    res.headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect()
}

/// POSTs `fields` (plus this browser's CSRF token, read from `form_page`) to `path`.
async fn post(
    app: &TestApp,
    client: &reqwest::Client,
    form_page: &str,
    path: &str,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    let token = app.csrf_token(client, form_page).await;
    let mut form = vec![("authenticity_token", token.as_str())];
    form.extend_from_slice(fields);
    client.post(app.url(path)).form(&form).send().await.unwrap()
}

/// A new browser signed in as `username` with the password only.
async fn signed_in(app: &TestApp, username: &str) -> reqwest::Client {
    let client = app.new_browser();
    let res = app.sign_in_with(&client, username, PASSWORD).await;
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), "/");
    client
}

fn code_now(app: &TestApp, secret: &TotpSecret) -> String {
    two_factor::code_at(secret, app.clock.now()).unwrap()
}

/// Starts set-up in `client` and returns the secret the page shows.
async fn begin_setup(app: &TestApp, client: &reqwest::Client) -> TotpSecret {
    let res = post(app, client, PAGE, "/-/profile/two_factor_auth/setup", &[]).await;
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), PAGE);
    let page = client
        .get(app.url(PAGE))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let base32 = between(&page, "id=\"two-factor-secret\">", "<");
    assert_eq!(base32.len(), 32, "{base32}");
    TotpSecret::from_base32(&base32).unwrap()
}

/// Enables two-factor authentication for the user signed in in `client`; returns the
/// secret and the recovery codes shown.
async fn enable(app: &TestApp, client: &reqwest::Client) -> (TotpSecret, Vec<String>) {
    let (secret, codes, _) = enable_with_code(app, client).await;
    (secret, codes)
}

/// `enable`, also returning the code that confirmed set-up (the clock may have reached the
/// next 30-second window since, so computing it again could give another code).
async fn enable_with_code(
    app: &TestApp,
    client: &reqwest::Client,
) -> (TotpSecret, Vec<String>, String) {
    let secret = begin_setup(app, client).await;
    let code = code_now(app, &secret);
    let res = post(
        app,
        client,
        PAGE,
        PAGE,
        &[("pin_code", &code), ("current_password", PASSWORD)],
    )
    .await;
    assert_eq!(res.status(), 200);
    let page = res.text().await.unwrap();
    assert!(
        page.contains("Two-factor authentication is enabled."),
        "{page}"
    );
    let list = between(&page, "<ul id=\"recovery-codes\" class=\"codes\">", "</ul>");
    let codes: Vec<String> = list
        .split("<code>")
        .skip(1)
        .map(|c| c.split("</code>").next().unwrap().to_string())
        .collect();
    assert_eq!(codes.len(), 10, "{list}");
    (secret, codes, code)
}

/// Password step in a fresh browser: returns the browser and the response.
async fn password_step(
    app: &TestApp,
    username: &str,
    return_to: Option<&str>,
) -> (reqwest::Client, reqwest::Response) {
    let client = app.new_browser();
    let mut fields = vec![("username", username), ("password", PASSWORD)];
    if let Some(r) = return_to {
        fields.push(("return_to", r));
    }
    let res = post(app, &client, "/users/sign_in", "/users/sign_in", &fields).await;
    (client, res)
}

/// Submits a code; the CSRF token comes from the sign-in page, which exists whether or not
/// the challenge still does.
async fn submit_code(app: &TestApp, client: &reqwest::Client, code: &str) -> reqwest::Response {
    let fields = [("otp_attempt", code)];
    post(app, client, "/users/sign_in", "/users/two_factor", &fields).await
}

async fn is_signed_in(app: &TestApp, client: &reqwest::Client) -> bool {
    let res = client
        .get(app.url("/-/user_settings/profile"))
        .send()
        .await
        .unwrap();
    res.status() == 200
}

async fn api_two_factor_enabled(app: &TestApp, username: &str) -> bool {
    let token = app.token_for(username, "read_user").await;
    let user: serde_json::Value = reqwest::Client::new()
        .get(app.url("/api/v4/user"))
        .header("PRIVATE-TOKEN", token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    user["two_factor_enabled"].as_bool().unwrap()
}

both_backends! {
    async fn enabling_needs_the_password_and_a_right_code_and_ends_other_sessions(app: TestApp) {
        app.create_user("alice", PASSWORD).await;
        let client = signed_in(&app, "alice").await;
        let elsewhere = signed_in(&app, "alice").await;
        let page = client.get(app.url(PAGE)).send().await.unwrap().text().await.unwrap();
        assert!(page.contains("<strong>Disabled</strong>"), "{page}");
        assert!(page.contains("id=\"two-factor-setup\""));
        assert!(!api_two_factor_enabled(&app, "alice").await);

        let secret = begin_setup(&app, &client).await;
        let page = client.get(app.url(PAGE)).send().await.unwrap().text().await.unwrap();
        // Reloading shows the same key, its QR code (an SVG data: URI) and otpauth URI.
        assert!(page.contains(&secret.base32()));
        assert!(page.contains("src=\"data:image&#x2f;svg+xml;base64,"), "{page}");
        let uri = between(&page, "id=\"two-factor-uri\">", "<").replace("&#x2f;", "/").replace("&amp;", "&");
        assert_eq!(uri, format!("otpauth://totp/Doorward:alice%40127.0.0.1?secret={}&issuer=Doorward", secret.base32()));

        let right = code_now(&app, &secret);
        let wrong = if right == "000000" { "111111" } else { "000000" };
        let res = post(&app, &client, PAGE, PAGE, &[("pin_code", wrong), ("current_password", PASSWORD)]).await;
        assert_eq!(res.status(), 422);
        assert!(res.text().await.unwrap().contains("Invalid pin code."));
        let res = post(&app, &client, PAGE, PAGE, &[("pin_code", &right), ("current_password", "not-the-password")]).await;
        assert_eq!(res.status(), 422);
        assert!(res.text().await.unwrap().contains("Current password is invalid."));
        assert!(!api_two_factor_enabled(&app, "alice").await);

        let res = post(&app, &client, PAGE, PAGE, &[("pin_code", &right), ("current_password", PASSWORD)]).await;
        assert_eq!(res.status(), 200);
        let page = res.text().await.unwrap();
        assert!(page.contains("<strong>Enabled</strong>"));
        assert_eq!(page.matches("<li><code>").count(), 10, "{page}");
        assert!(api_two_factor_enabled(&app, "alice").await);

        // Shown once: the page now only counts them.
        let page = client.get(app.url(PAGE)).send().await.unwrap().text().await.unwrap();
        assert!(!page.contains("id=\"recovery-codes\""));
        assert!(page.contains("id=\"recovery-codes-left\">10<"), "{page}");
        let profile = client.get(app.url("/-/user_settings/profile")).send().await.unwrap().text().await.unwrap();
        assert!(profile.contains("Enabled: sign-in asks for a code"), "{profile}");
        assert!(!is_signed_in(&app, &elsewhere).await, "the other session survived");
    }

    async fn sign_in_asks_for_the_code_before_any_session_exists(app: TestApp) {
        app.create_user("alice", PASSWORD).await;
        let (secret, _) = enable(&app, &signed_in(&app, "alice").await).await;
        app.clock.advance(30);

        let (client, res) = password_step(&app, "alice", Some("/-/user_settings/profile?tab=2fa")).await;
        assert_eq!(res.status(), 303);
        assert_eq!(location(&res), "/users/two_factor");
        let cookies = cookie_names(&res);
        assert!(!cookies.iter().any(|c| c.starts_with("doorward_session=")), "{cookies:?}");
        let challenge = cookies.iter().find(|c| c.starts_with("doorward_two_factor=")).expect("challenge cookie");
        assert!(challenge.contains("HttpOnly") && challenge.contains("SameSite=Lax"), "{challenge}");
        assert!(!is_signed_in(&app, &client).await);

        let page = client.get(app.url("/users/two_factor")).send().await.unwrap().text().await.unwrap();
        assert!(page.contains("name=\"otp_attempt\""));
        assert!(page.contains("recovery codes"));

        let right = code_now(&app, &secret);
        let wrong = if right == "123456" { "654321" } else { "123456" };
        let res = submit_code(&app, &client, wrong).await;
        assert_eq!(res.status(), 401);
        assert!(res.text().await.unwrap().contains("Invalid two-factor code."));
        assert!(!is_signed_in(&app, &client).await);

        let res = submit_code(&app, &client, &right).await;
        assert_eq!(res.status(), 303);
        assert_eq!(location(&res), "/-/user_settings/profile?tab=2fa");
        let cookies = cookie_names(&res);
        assert!(cookies.iter().any(|c| c.starts_with("doorward_session=")), "{cookies:?}");
        assert!(cookies.iter().any(|c| c.starts_with("doorward_two_factor=;")), "{cookies:?}");
        assert!(is_signed_in(&app, &client).await);
        // The challenge is spent.
        let res = client.get(app.url("/users/two_factor")).send().await.unwrap();
        assert_eq!(location(&res), "/users/sign_in");
    }

    async fn a_code_is_accepted_once(app: TestApp) {
        app.create_user("alice", PASSWORD).await;
        let (secret, _, confirm_code) = enable_with_code(&app, &signed_in(&app, "alice").await).await;
        // The code that confirmed set-up is spent already.
        let (client, _) = password_step(&app, "alice", None).await;
        assert_eq!(submit_code(&app, &client, &confirm_code).await.status(), 401);

        app.clock.advance(30);
        let code = code_now(&app, &secret);
        assert_eq!(submit_code(&app, &client, &code).await.status(), 303);
        let (other, _) = password_step(&app, "alice", None).await;
        let res = submit_code(&app, &other, &code).await;
        assert_eq!(res.status(), 401, "a replayed code was accepted");
        assert!(!is_signed_in(&app, &other).await);

        app.clock.advance(30);
        assert_eq!(submit_code(&app, &other, &code_now(&app, &secret)).await.status(), 303);
    }

    async fn a_recovery_code_signs_in_once(app: TestApp) {
        app.create_user("alice", PASSWORD).await;
        let (_, codes) = enable(&app, &signed_in(&app, "alice").await).await;
        let (client, _) = password_step(&app, "alice", None).await;
        // Typed by hand: upper case, spaces instead of dashes.
        let typed = codes[3].to_uppercase().replace('-', " ");
        let res = submit_code(&app, &client, &typed).await;
        assert_eq!(res.status(), 303);
        assert!(is_signed_in(&app, &client).await);
        let page = client.get(app.url(PAGE)).send().await.unwrap().text().await.unwrap();
        assert!(page.contains("id=\"recovery-codes-left\">9<"), "{page}");

        let (other, _) = password_step(&app, "alice", None).await;
        assert_eq!(submit_code(&app, &other, &codes[3]).await.status(), 401);
        assert_eq!(submit_code(&app, &other, &codes[4]).await.status(), 303);
    }

    async fn wrong_codes_end_the_challenge_and_lock_the_account_codes(app: TestApp) {
        app.create_user("alice", PASSWORD).await;
        let (secret, _) = enable(&app, &signed_in(&app, "alice").await).await;
        app.clock.advance(30);
        let wrong = |app: &TestApp| {
            let right = code_now(app, &secret);
            if right == "999999" { "999998".to_string() } else { "999999".to_string() }
        };

        let (client, _) = password_step(&app, "alice", None).await;
        for _ in 0..2 {
            assert_eq!(submit_code(&app, &client, &wrong(&app)).await.status(), 401);
        }
        let res = submit_code(&app, &client, &wrong(&app)).await;
        assert_eq!(res.status(), 401);
        assert!(res.text().await.unwrap().contains("Too many invalid two-factor codes. Sign in again."));
        // The challenge is gone: even the right code needs the password again.
        let res = submit_code(&app, &client, &code_now(&app, &secret)).await;
        assert_eq!(res.status(), 401);
        assert!(res.text().await.unwrap().contains("Your sign-in has expired."));

        // Failures count per user across challenges: the fifth locks codes.
        let (client, _) = password_step(&app, "alice", None).await;
        for _ in 0..2 {
            assert_eq!(submit_code(&app, &client, &wrong(&app)).await.status(), 401);
        }
        let (client, _) = password_step(&app, "alice", None).await;
        let res = submit_code(&app, &client, &code_now(&app, &secret)).await;
        assert_eq!(res.status(), 429);
        assert!(res.text().await.unwrap().contains("Too many invalid two-factor codes. Try again in 10 minutes."));
        assert!(!is_signed_in(&app, &client).await);

        app.clock.advance(601);
        let (client, _) = password_step(&app, "alice", None).await;
        assert_eq!(submit_code(&app, &client, &code_now(&app, &secret)).await.status(), 303);
    }

    async fn a_challenge_expires_after_five_minutes(app: TestApp) {
        app.create_user("alice", PASSWORD).await;
        let (secret, _) = enable(&app, &signed_in(&app, "alice").await).await;
        let (client, _) = password_step(&app, "alice", None).await;
        app.clock.advance(301);
        let res = submit_code(&app, &client, &code_now(&app, &secret)).await;
        assert_eq!(res.status(), 401);
        assert!(res.text().await.unwrap().contains("Your sign-in has expired. Sign in again."));
        assert!(!is_signed_in(&app, &client).await);
        let res = client.get(app.url("/users/two_factor")).send().await.unwrap();
        assert_eq!(location(&res), "/users/sign_in");
    }

    async fn disabling_needs_the_password_and_a_code(app: TestApp) {
        app.create_user("alice", PASSWORD).await;
        let client = signed_in(&app, "alice").await;
        let (secret, codes) = enable(&app, &client).await;
        let elsewhere = {
            app.clock.advance(30);
            let (other, _) = password_step(&app, "alice", None).await;
            assert_eq!(submit_code(&app, &other, &code_now(&app, &secret)).await.status(), 303);
            other
        };
        app.clock.advance(30);
        let disable = "/-/profile/two_factor_auth/disable";
        let code = code_now(&app, &secret);
        let res = post(&app, &client, PAGE, disable, &[("current_password", "not-the-password"), ("otp_attempt", &code)]).await;
        assert_eq!(res.status(), 422);
        assert!(res.text().await.unwrap().contains("Current password is invalid."));
        let res = post(&app, &client, PAGE, disable, &[("current_password", PASSWORD), ("otp_attempt", "000000x")]).await;
        assert_eq!(res.status(), 422);
        assert!(res.text().await.unwrap().contains("Invalid two-factor code."));
        assert!(api_two_factor_enabled(&app, "alice").await);

        // New recovery codes need the same; the old ones stop working.
        let res = post(&app, &client, PAGE, "/-/profile/two_factor_auth/codes", &[("current_password", PASSWORD), ("otp_attempt", &codes[0])]).await;
        assert_eq!(res.status(), 200);
        assert_eq!(res.text().await.unwrap().matches("<li><code>").count(), 10);
        let res = post(&app, &client, PAGE, disable, &[("current_password", PASSWORD), ("otp_attempt", &codes[1])]).await;
        assert_eq!(res.status(), 422);

        let res = post(&app, &client, PAGE, disable, &[("current_password", PASSWORD), ("otp_attempt", &code)]).await;
        assert_eq!(res.status(), 200);
        let page = res.text().await.unwrap();
        assert!(page.contains("Two-factor authentication has been disabled."), "{page}");
        assert!(page.contains("<strong>Disabled</strong>"));
        assert!(!api_two_factor_enabled(&app, "alice").await);
        assert!(is_signed_in(&app, &client).await);
        assert!(!is_signed_in(&app, &elsewhere).await, "the other session survived");
        let user = app.state.store.user_by_login("alice").await.unwrap().unwrap();
        assert!(app.state.store.two_factor_by_user(user.id).await.unwrap().is_none());

        // The password alone signs in again.
        let res = app.sign_in_with(&app.new_browser(), "alice", PASSWORD).await;
        assert_eq!(location(&res), "/");
    }

    async fn the_secret_is_encrypted_at_rest_for_one_user_only(app: TestApp) {
        let alice = app.create_user("alice", PASSWORD).await["id"].as_i64().unwrap();
        let bob = app.create_user("bob", PASSWORD).await["id"].as_i64().unwrap();
        let (secret, codes) = enable(&app, &signed_in(&app, "alice").await).await;

        let record = app.state.store.two_factor_by_user(alice).await.unwrap().unwrap();
        let stored = &record.secret_encrypted;
        assert!(record.confirmed_at.is_some());
        let contains = |needle: &[u8]| stored.windows(needle.len()).any(|w| w == needle);
        assert!(!contains(secret.base32().as_bytes()));
        assert!(!contains(secret.as_bytes()));
        assert_eq!(two_factor::decrypt_secret(&app.state.totp_key, alice, stored), Some(secret.clone()));
        assert_eq!(two_factor::decrypt_secret(&app.state.totp_key, bob, stored), None);
        assert_eq!(two_factor::decrypt_secret(&[0u8; 32], alice, stored), None);

        // Moved onto bob's account, the ciphertext does not decrypt: the page fails closed.
        let bob_client = signed_in(&app, "bob").await;
        begin_setup(&app, &bob_client).await;
        let moved = "UPDATE user_two_factor SET secret_encrypted = $1 WHERE user_id = $2";
        let hashes = "SELECT code_hash FROM two_factor_recovery_codes WHERE user_id = $1 ORDER BY id";
        let stored_hashes: Vec<Vec<u8>> = match app.backend {
            doorward::store::Backend::Sqlite => {
                let pool = sqlx::SqlitePool::connect(&app.database_url).await.unwrap();
                sqlx::query(moved).bind(stored).bind(bob).execute(&pool).await.unwrap();
                sqlx::query_scalar(hashes).bind(alice).fetch_all(&pool).await.unwrap()
            }
            doorward::store::Backend::Postgres => {
                let pool = sqlx::PgPool::connect(&app.database_url).await.unwrap();
                sqlx::query(moved).bind(stored).bind(bob).execute(&pool).await.unwrap();
                sqlx::query_scalar(hashes).bind(alice).fetch_all(&pool).await.unwrap()
            }
        };
        let res = bob_client.get(app.url(PAGE)).send().await.unwrap();
        assert_eq!(res.status(), 500);

        // Recovery codes are stored as SHA-256 only.
        let expected: Vec<Vec<u8>> = codes
            .iter()
            .map(|c| two_factor::recovery_code_hash(c).unwrap().to_vec())
            .collect();
        assert_eq!(stored_hashes, expected);
    }
}
