//! Issue 12's account pages in a real browser, with mail read from a real SMTP server:
//! registering and confirming the address, "Forgot your password?", and revoking other
//! sessions from the active-sessions page.

use std::time::{Duration, Instant};

use thirtyfour::By;

use crate::driver::Browser;
use crate::support::smtp::{SmtpOptions, SmtpSink};
use crate::support::{TestApp, location};

/// How long a test waits for a mail: the worker sends within a second or two.
const MAIL_WAIT: Duration = Duration::from_secs(15);

/// Runs each test on SQLite and PostgreSQL with a fresh SMTP sink, a server mailing to it
/// and open sign-up.
macro_rules! with_mail {
    ($(async fn $name:ident($app:ident, $sink:ident) $body:block)*) => {$(
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            async fn case(backend: doorward::store::Backend) {
                let $sink = SmtpSink::start(SmtpOptions::default()).await;
                let url = $sink.url();
                let $app = TestApp::spawn_with(
                    backend,
                    &[("DOORWARD_SMTP_URL", url.as_str()), ("DOORWARD_SIGNUP", "open")],
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

async fn fill(browser: &Browser, id: &str, value: &str) {
    let field = browser.driver.find(By::Id(id)).await.unwrap();
    field.clear().await.unwrap();
    field.send_keys(value).await.unwrap();
}

async fn click(browser: &Browser, css: &str) {
    let element = browser.driver.find(By::Css(css)).await.unwrap();
    browser.click_and_load(element).await;
}

async fn count(browser: &Browser, css: &str) -> usize {
    browser.driver.find_all(By::Css(css)).await.unwrap().len()
}

/// Waits until the element at `css` contains `needle`; returns its text. A form that posts
/// to its own path leaves the URL unchanged, so only the content tells the answer arrived.
async fn wait_text(browser: &Browser, css: &str, needle: &str) -> String {
    let started = Instant::now();
    loop {
        if let Ok(el) = browser.driver.find(By::Css(css)).await
            && let Ok(t) = el.text().await
            && t.contains(needle)
        {
            return t;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{css} never contained {needle:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Fills and submits the sign-in form of the current page.
async fn submit_sign_in(browser: &Browser, login: &str, password: &str) {
    fill(browser, "username", login).await;
    fill(browser, "password", password).await;
    click(browser, "form[action='/users/sign_in'] button[type=submit]").await;
}

/// The link to `path` in the next mail to `to` that has one (skipping any other mail).
async fn mailed_link(app: &TestApp, sink: &SmtpSink, to: &str, path: &str) -> String {
    loop {
        let mail = sink.wait_for(to, MAIL_WAIT).await;
        let links: Vec<String> = mail
            .links()
            .into_iter()
            .filter(|l| l.contains(path))
            .collect();
        if let [link] = links.as_slice() {
            assert!(link.starts_with(&app.base), "{link} is not on {}", app.base);
            return link.clone();
        }
    }
}

/// A cookie-keeping client that does not follow redirects, named `agent` on the
/// active-sessions page.
fn client_named(agent: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(agent)
        .build()
        .unwrap()
}

/// Whether `client`'s session still opens the profile (a revoked one goes to sign-in).
async fn signed_in(app: &TestApp, client: &reqwest::Client) -> bool {
    let res = client
        .get(app.url("/-/user_settings/profile"))
        .send()
        .await
        .unwrap();
    match res.status().as_u16() {
        200 => true,
        303 | 302 => {
            assert!(
                location(&res).starts_with("/users/sign_in"),
                "{}",
                location(&res)
            );
            false
        }
        other => panic!("profile answered {other}"),
    }
}

with_mail! {
    async fn a_person_registers_confirms_the_address_and_signs_in(app, sink) {
        let browser = Browser::start().await;
        let d = &browser.driver;
        d.goto(app.url("/users/sign_in")).await.unwrap();
        click(&browser, "#register-link").await;
        browser.wait_for_path("/users/sign_up").await;
        fill(&browser, "name", "Dana Scully").await;
        fill(&browser, "username", "dana").await;
        fill(&browser, "email", "dana@example.com").await;
        fill(&browser, "password", "dana-password-1").await;
        click(&browser, "form[action='/users/sign_up'] button[type=submit]").await;
        let welcome = wait_text(&browser, "main", "Thank you for registering").await;
        assert!(welcome.contains("follow it to confirm your address"), "{welcome}");
        let status = d
            .execute("return performance.getEntriesByType('navigation')[0].responseStatus;", vec![])
            .await
            .unwrap()
            .json()
            .as_u64();
        assert_eq!(status, Some(201), "the sign-up answer");
        browser.screenshot(&format!("sign-up-{:?}", app.backend)).await;

        // Until the link is followed, the profile says the address is unconfirmed.
        let other = app.new_browser();
        assert_eq!(app.sign_in_with(&other, "dana", "dana-password-1").await.status(), 303);
        let profile = other.get(app.url("/-/user_settings/profile")).send().await.unwrap();
        assert!(profile.text().await.unwrap().contains("id=\"unconfirmed-email\""));

        let link = mailed_link(&app, &sink, "dana@example.com", "/users/confirmation?confirmation_token=").await;
        d.goto(&link).await.unwrap();
        let confirmed = wait_text(&browser, "main", "successfully confirmed").await;
        assert!(!confirmed.contains("invalid"), "{confirmed}");

        // The page's Sign in link, then the profile without the hint.
        click(&browser, "#message-link").await;
        browser.wait_for_path("/users/sign_in").await;
        submit_sign_in(&browser, "dana", "dana-password-1").await;
        browser.wait_for_path("/-/user_settings/profile").await;
        wait_text(&browser, "#profile-username", "dana").await;
        assert_eq!(count(&browser, "#unconfirmed-email").await, 0, "still shown as unconfirmed");
        assert_eq!(count(&browser, "#pending-email").await, 0);

        // The link works once.
        d.goto(&link).await.unwrap();
        let again = wait_text(&browser, "main", "invalid, already used or expired").await;
        assert!(!again.contains("successfully confirmed"), "{again}");
        browser.quit().await;
    }

    async fn a_person_resets_a_forgotten_password(app, sink) {
        app.create_user("erin", "erin-old-password").await;
        let browser = Browser::start().await;
        let d = &browser.driver;
        d.goto(app.url("/users/sign_in")).await.unwrap();
        click(&browser, "#forgot-password").await;
        browser.wait_for_path("/users/password/new").await;
        fill(&browser, "login", "erin").await;
        click(&browser, "form[action='/users/password'] button[type=submit]").await;
        browser.wait_for_path("/users/password").await;
        let known = wait_text(&browser, "main", "If your email address exists").await;

        // An unknown name gets the very same answer.
        d.goto(app.url("/users/password/new")).await.unwrap();
        fill(&browser, "login", "nobody-by-that-name").await;
        click(&browser, "form[action='/users/password'] button[type=submit]").await;
        browser.wait_for_path("/users/password").await;
        let unknown = wait_text(&browser, "main", "If your email address exists").await;
        assert_eq!(known, unknown);

        let link = mailed_link(&app, &sink, "erin@example.com", "/users/password/edit?reset_password_token=").await;
        d.goto(&link).await.unwrap();
        browser.wait_for_path("/users/password/edit").await;
        // Mismatched fields are refused, and the form comes back.
        fill(&browser, "password", "erin-new-password-2").await;
        fill(&browser, "password_confirmation", "erin-new-password-3").await;
        click(&browser, "form[action='/users/password/edit'] button[type=submit]").await;
        wait_text(&browser, ".flash.error", "doesn't match").await;
        fill(&browser, "password", "erin-new-password-2").await;
        fill(&browser, "password_confirmation", "erin-new-password-2").await;
        click(&browser, "form[action='/users/password/edit'] button[type=submit]").await;
        wait_text(&browser, "main", "Your password has been changed").await;
        browser.screenshot(&format!("password-changed-{:?}", app.backend)).await;

        // The old password is refused, the new one works.
        click(&browser, "#message-link").await;
        browser.wait_for_path("/users/sign_in").await;
        submit_sign_in(&browser, "erin", "erin-old-password").await;
        wait_text(&browser, ".flash.error", "Invalid login or password.").await;
        submit_sign_in(&browser, "erin", "erin-new-password-2").await;
        browser.wait_for_path("/-/user_settings/profile").await;
        wait_text(&browser, "#profile-username", "erin").await;

        // The link was single-use.
        d.goto(&link).await.unwrap();
        wait_text(&browser, "main", "invalid, already used or expired").await;
        assert_eq!(count(&browser, "#password_confirmation").await, 0);
        browser.quit().await;
    }

    async fn a_person_revokes_other_sessions(app, sink) {
        let _ = &sink;
        app.create_user("fay", "fay-password-1").await;
        let laptop = client_named("laptop-client");
        let phone = client_named("phone-client");
        for client in [&laptop, &phone] {
            assert_eq!(app.sign_in_with(client, "fay", "fay-password-1").await.status(), 303);
            assert!(signed_in(&app, client).await);
        }

        let browser = Browser::start().await;
        let d = &browser.driver;
        d.goto(app.url("/users/sign_in")).await.unwrap();
        submit_sign_in(&browser, "fay", "fay-password-1").await;
        browser.wait_for_path("/-/user_settings/profile").await;
        click(&browser, "#profile-sessions-link").await;
        browser.wait_for_path("/-/user_settings/active_sessions").await;
        let table = wait_text(&browser, "#active-sessions", "This browser").await;
        assert!(table.contains("laptop-client") && table.contains("phone-client"), "{table}");
        assert!(table.contains("Chrome"), "{table}");
        assert_eq!(count(&browser, "#active-sessions tr.session").await, 3);
        assert_eq!(count(&browser, "#active-sessions tr.session form button").await, 2, "no Revoke for this browser");
        browser.screenshot(&format!("active-sessions-{:?}", app.backend)).await;

        // Revoke the laptop's session by its own button.
        let rows = d.find_all(By::Css("#active-sessions tr.session")).await.unwrap();
        let mut laptop_row = None;
        for row in rows {
            if row.text().await.unwrap().contains("laptop-client") {
                laptop_row = Some(row);
            }
        }
        let laptop_row = laptop_row.expect("a row for the laptop");
        browser.click_and_load(laptop_row.find(By::Css("form button")).await.unwrap()).await;
        wait_text(&browser, ".flash.notice", "The session has been revoked.").await;
        let table = wait_text(&browser, "#active-sessions", "phone-client").await;
        assert!(!table.contains("laptop-client"), "{table}");
        assert_eq!(count(&browser, "#active-sessions tr.session").await, 2);
        assert!(!signed_in(&app, &laptop).await, "the revoked session still works");
        assert!(signed_in(&app, &phone).await, "the other session was revoked too");

        // Then every other session at once; this browser stays signed in.
        click(&browser, "#revoke-all-others").await;
        wait_text(&browser, ".flash.notice", "All other sessions have been revoked.").await;
        assert_eq!(count(&browser, "#active-sessions tr.session").await, 1);
        assert_eq!(count(&browser, "#revoke-all-others").await, 0);
        assert!(!signed_in(&app, &phone).await, "the phone's session still works");
        d.goto(app.url("/-/user_settings/profile")).await.unwrap();
        wait_text(&browser, "#profile-username", "fay").await;
        browser.quit().await;
    }
}
