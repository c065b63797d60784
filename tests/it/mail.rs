//! Mail delivery (issue 12): from the queue to a real SMTP server (aiosmtpd, `support::smtp`)
//! in plain SMTP, with AUTH, STARTTLS and implicit TLS; retries while the server is down or
//! answers 451; one delivery per message with two nodes; the outbox directory without SMTP;
//! the queue surviving a restart. The letters themselves are other tests' business.

use std::time::{Duration, Instant};

use doorward::mail::Letter;
use doorward::store::Backend;
use doorward::store::mail_queue::MailQueueEntry;

use crate::support::TestApp;
use crate::support::smtp::{ReceivedMail, SmtpOptions, SmtpSink, free_port};

const FROM: &str = "noreply@doorward.test";

/// Runs `async fn name(backend: Backend)` once on each backend.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name(doorward::store::Backend::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name(doorward::store::Backend::Postgres).await
            }
        }
    )*};
}

on_both_backends!(
    plain_smtp_delivers_within_seconds,
    auth_with_credentials_in_the_url,
    auth_with_the_password_setting,
    starttls_required_with_the_outbound_ca,
    an_untrusted_certificate_gets_no_mail,
    implicit_tls,
    mail_waits_while_the_server_is_down,
    temporary_failures_are_retried,
    two_nodes_send_each_mail_once,
    without_smtp_mail_goes_to_the_outbox,
    queued_mail_survives_a_restart,
);

/// Queues one letter to `to` the way request handlers do; it must not wait for delivery.
async fn send(app: &TestApp, to: &str) {
    let started = Instant::now();
    app.state
        .mailer
        .send(
            &app.state.store,
            app.clock.now(),
            to,
            "Ada",
            &Letter::PasswordChanged,
        )
        .await
        .unwrap();
    let took = started.elapsed();
    assert!(took < Duration::from_secs(2), "send took {took:?}");
}

async fn entries(app: &TestApp) -> Vec<MailQueueEntry> {
    app.state.store.mail_queue_entries().await.unwrap()
}

/// Polls until `done` holds of the queue; panics after `timeout` with the queue.
async fn wait_for_queue(
    app: &TestApp,
    timeout: Duration,
    what: &str,
    done: impl Fn(&[MailQueueEntry]) -> bool,
) -> Vec<MailQueueEntry> {
    let deadline = Instant::now() + timeout;
    loop {
        let queue = entries(app).await;
        if done(&queue) {
            return queue;
        }
        assert!(
            Instant::now() < deadline,
            "{what} not within {timeout:?}: {queue:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn wait_until_empty(app: &TestApp) {
    wait_for_queue(app, Duration::from_secs(10), "empty queue", |q| {
        q.is_empty()
    })
    .await;
}

/// Waits until the one queued message failed at least `n` times.
async fn wait_for_failures(app: &TestApp, n: i64) -> MailQueueEntry {
    let queue = wait_for_queue(app, Duration::from_secs(30), "failed attempts", |q| {
        q.first()
            .is_some_and(|e| e.attempts >= n && e.last_error.is_some())
    })
    .await;
    queue[0].clone()
}

async fn app_with(backend: Backend, settings: &[(&str, &str)]) -> TestApp {
    let mut all = vec![("DOORWARD_MAIL_FROM", FROM)];
    all.extend_from_slice(settings);
    TestApp::spawn_with(backend, &all).await
}

fn assert_is_the_letter(mail: &ReceivedMail, to: &str) {
    assert_eq!(mail.rcpt_to, [to]);
    assert_eq!(mail.mail_from, FROM);
    assert!(mail.from().contains(FROM), "From: {}", mail.from());
    assert!(mail.to().contains(to), "To: {}", mail.to());
    assert_eq!(mail.subject(), "Password changed");
    assert!(!mail.text().trim().is_empty() && !mail.html().trim().is_empty());
}

async fn plain_smtp_delivers_within_seconds(backend: Backend) {
    let sink = SmtpSink::start(SmtpOptions::default()).await;
    let app = app_with(backend, &[("DOORWARD_SMTP_URL", &sink.url())]).await;
    send(&app, "ada@example.com").await;
    let mail = sink
        .wait_for("ada@example.com", Duration::from_secs(5))
        .await;
    assert_is_the_letter(&mail, "ada@example.com");
    assert_eq!(mail.auth_login, None);
    assert!(!mail.tls);
    wait_until_empty(&app).await;
    assert_eq!(sink.messages().len(), 1);
    assert!(
        !app.data_dir.path().join("outbox").exists(),
        "with SMTP configured, nothing goes to the outbox"
    );
}

async fn auth_with_credentials_in_the_url(backend: Backend) {
    // Reserved characters in both, percent-encoded in the URL.
    let (user, password) = ("mailer@doorward.test", "p@ss:w/rd %?#");
    let sink = SmtpSink::start(SmtpOptions::default().auth(user, password)).await;
    let url = sink.url_with_credentials(user, password);
    assert!(!url.contains(password), "{url}");
    let app = app_with(backend, &[("DOORWARD_SMTP_URL", &url)]).await;
    send(&app, "ada@example.com").await;
    let mail = sink
        .wait_for("ada@example.com", Duration::from_secs(10))
        .await;
    assert_eq!(mail.auth_login.as_deref(), Some(user));
    assert_is_the_letter(&mail, "ada@example.com");
}

async fn auth_with_the_password_setting(backend: Backend) {
    let sink = SmtpSink::start(SmtpOptions::default().auth("mailer", "s3cret-from-env")).await;
    let url = format!("smtp://mailer@127.0.0.1:{}", sink.port());
    let app = app_with(
        backend,
        &[
            ("DOORWARD_SMTP_URL", &url),
            ("DOORWARD_SMTP_PASSWORD", "s3cret-from-env"),
        ],
    )
    .await;
    send(&app, "ada@example.com").await;
    let mail = sink
        .wait_for("ada@example.com", Duration::from_secs(10))
        .await;
    assert_eq!(mail.auth_login.as_deref(), Some("mailer"));
}

async fn starttls_required_with_the_outbound_ca(backend: Backend) {
    let sink = SmtpSink::start(SmtpOptions::default().starttls().auth("mailer", "pw")).await;
    let ca = sink.ca_file().display().to_string();
    let url = sink.url_with_credentials("mailer", "pw");
    assert!(url.ends_with("?tls=required"), "{url}");
    let app = app_with(
        backend,
        &[
            ("DOORWARD_SMTP_URL", &url),
            ("DOORWARD_OUTBOUND_CA_FILE", &ca),
        ],
    )
    .await;
    send(&app, "ada@example.com").await;
    let mail = sink
        .wait_for("ada@example.com", Duration::from_secs(10))
        .await;
    assert!(mail.tls, "delivered without STARTTLS");
    assert_eq!(mail.auth_login.as_deref(), Some("mailer"));
    assert_is_the_letter(&mail, "ada@example.com");
}

async fn an_untrusted_certificate_gets_no_mail(backend: Backend) {
    // The sink's CA is not in DOORWARD_OUTBOUND_CA_FILE: its certificate must be refused.
    let sink = SmtpSink::start(SmtpOptions::default().starttls()).await;
    let app = app_with(backend, &[("DOORWARD_SMTP_URL", &sink.url())]).await;
    send(&app, "ada@example.com").await;
    let failed = wait_for_failures(&app, 1).await;
    assert!(sink.messages().is_empty());
    let error = failed.last_error.unwrap_or_default();
    assert!(error.contains("certificate"), "{error}");
}

async fn implicit_tls(backend: Backend) {
    let sink = SmtpSink::start(SmtpOptions::default().implicit_tls()).await;
    let ca = sink.ca_file().display().to_string();
    let url = sink.url();
    assert!(url.starts_with("smtps://"), "{url}");
    let app = app_with(
        backend,
        &[
            ("DOORWARD_SMTP_URL", &url),
            ("DOORWARD_OUTBOUND_CA_FILE", &ca),
        ],
    )
    .await;
    send(&app, "ada@example.com").await;
    let mail = sink
        .wait_for("ada@example.com", Duration::from_secs(10))
        .await;
    assert!(mail.tls, "delivered without TLS");
    assert_is_the_letter(&mail, "ada@example.com");
}

async fn mail_waits_while_the_server_is_down(backend: Backend) {
    let port = free_port();
    let url = format!("smtp://127.0.0.1:{port}");
    let app = app_with(backend, &[("DOORWARD_SMTP_URL", &url)]).await;
    // Nothing listens: the request side still returns at once (checked in `send`).
    send(&app, "ada@example.com").await;
    let failed = wait_for_failures(&app, 1).await;
    assert_eq!(failed.recipient, "ada@example.com");
    // The server comes up on the same port; the queued mail arrives within a minute.
    let sink = SmtpSink::start(SmtpOptions::default().port(port)).await;
    let up = Instant::now();
    let mail = sink
        .wait_for("ada@example.com", Duration::from_secs(60))
        .await;
    assert!(up.elapsed() < Duration::from_secs(60));
    assert_is_the_letter(&mail, "ada@example.com");
    wait_until_empty(&app).await;
    assert_eq!(sink.messages().len(), 1);
}

async fn temporary_failures_are_retried(backend: Backend) {
    let sink = SmtpSink::start(SmtpOptions::default().temporary_failure()).await;
    let app = app_with(backend, &[("DOORWARD_SMTP_URL", &sink.url())]).await;
    send(&app, "ada@example.com").await;
    // Answered 451 twice: the second time was a retry.
    let deadline = Instant::now() + Duration::from_secs(30);
    while sink.rejected_count() < 2 {
        assert!(Instant::now() < deadline, "no retry after a 451");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let failed = wait_for_failures(&app, 2).await;
    assert!(
        failed
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("451")),
        "{failed:?}"
    );
    sink.set_temporary_failure(false);
    let mail = sink
        .wait_for("ada@example.com", Duration::from_secs(30))
        .await;
    assert_is_the_letter(&mail, "ada@example.com");
    wait_until_empty(&app).await;
    assert_eq!(sink.messages().len(), 1);
}

async fn two_nodes_send_each_mail_once(backend: Backend) {
    let sink = SmtpSink::start(SmtpOptions::default()).await;
    let settings = [
        ("DOORWARD_SMTP_URL", sink.url()),
        ("DOORWARD_MAIL_FROM", FROM.into()),
    ];
    let settings: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let a = TestApp::spawn_with(backend, &settings).await;
    let b = a.another_node(&settings).await;
    // Queued on both nodes at once, so both workers are woken and drain the same queue.
    let recipients: Vec<String> = (0..20).map(|i| format!("user{i}@example.com")).collect();
    let queue_on = |node: &'static str| {
        let (node, parity) = if node == "a" { (&a, 0) } else { (&b, 1) };
        let recipients = &recipients;
        async move {
            for to in recipients.iter().skip(parity).step_by(2) {
                send(node, to).await;
            }
        }
    };
    tokio::join!(queue_on("a"), queue_on("b"));
    sink.wait_for_count(20, Duration::from_secs(30)).await;
    wait_until_empty(&a).await;
    // A second copy would be sent by a node that claimed a row already claimed: give any
    // such send the time to arrive.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let messages = sink.messages();
    let mut got: Vec<String> = messages.iter().flat_map(|m| m.rcpt_to.clone()).collect();
    got.sort();
    let mut want = recipients.clone();
    want.sort();
    assert_eq!(got, want, "each mail exactly once");
    let mut ids: Vec<&str> = messages
        .iter()
        .filter_map(|m| m.header("Message-ID"))
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 20);
}

async fn without_smtp_mail_goes_to_the_outbox(backend: Backend) {
    let app = app_with(backend, &[]).await;
    let outbox = app.data_dir.path().join("outbox");
    for to in ["ada@example.com", "bob@example.com", "cy@example.com"] {
        send(&app, to).await;
    }
    wait_until_empty(&app).await;
    let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(&outbox)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert_eq!(
        files.len(),
        3,
        "one file per message, no leftovers: {files:?}"
    );
    let mut seen = Vec::new();
    for file in &files {
        assert_eq!(file.extension().unwrap(), "eml", "{file:?}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(file).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "readable by others: {file:?}");
        }
        let raw = std::fs::read_to_string(file).unwrap();
        let mail = ReceivedMail::parse(&raw);
        // Whole: every header, both parts, the closing boundary.
        assert!(mail.from().contains(FROM), "From: {}", mail.from());
        assert_eq!(mail.subject(), "Password changed");
        assert!(mail.header("Message-ID").is_some() && mail.header("Date").is_some());
        assert!(!mail.text().is_empty() && !mail.html().is_empty());
        assert!(raw.trim_end().ends_with("--"), "cut short: {file:?}");
        seen.push(mail.to().to_string());
    }
    for to in ["ada@example.com", "bob@example.com", "cy@example.com"] {
        assert!(
            seen.iter().any(|s| s.contains(to)),
            "{to} missing: {seen:?}"
        );
    }
}

async fn queued_mail_survives_a_restart(backend: Backend) {
    // The first server cannot deliver: its SMTP server is down.
    let dead = format!("smtp://127.0.0.1:{}", free_port());
    let mut first = app_with(backend, &[("DOORWARD_SMTP_URL", &dead)]).await;
    send(&first, "ada@example.com").await;
    wait_for_failures(&first, 1).await;
    // Stop it, keeping its database (SQLite's file lives in its data directory).
    let kept = std::mem::replace(&mut first.data_dir, tempfile::tempdir().unwrap());
    let database = first.database_url.clone();
    let state = first.state.clone();
    first.stop().await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while state.store.mail_queue_len().await.is_ok() {
        assert!(Instant::now() < deadline, "the first server does not stop");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A new server on the same database, with a working SMTP server, sends it.
    let sink = SmtpSink::start(SmtpOptions::default()).await;
    let second = app_with(
        backend,
        &[
            ("DOORWARD_DATABASE_URL", &database),
            ("DOORWARD_SMTP_URL", &sink.url()),
        ],
    )
    .await;
    let mail = sink
        .wait_for("ada@example.com", Duration::from_secs(30))
        .await;
    assert_is_the_letter(&mail, "ada@example.com");
    wait_until_empty(&second).await;
    drop(kept);
}

// The parser of `support::smtp`, which other tests rely on to read links.

#[test]
fn the_parser_reads_what_lettre_builds() {
    let message = lettre::Message::builder()
        .from("Doorward <doorward@example.com>".parse().unwrap())
        .to("Ada Lovelace <ada@example.com>".parse().unwrap())
        .subject("Réinitialisation — a long subject line that lettre will fold and encode")
        .multipart(lettre::message::MultiPart::alternative_plain_html(
            format!(
                "Bonjour Ada,\nReset: https://doorward.example/users/password/edit?reset_password_token=abc.\n{}\n(see http://example.org/x)",
                "é".repeat(100)
            ),
            "<p><a href=\"https:&#x2f;&#x2f;doorward.example&#47;a?b=1&amp;c=2\">réinitialiser</a> &copy;</p>".to_string(),
        ))
        .unwrap();
    let mail = ReceivedMail::parse(&String::from_utf8(message.formatted()).unwrap());
    assert_eq!(
        mail.subject(),
        "Réinitialisation — a long subject line that lettre will fold and encode"
    );
    assert!(
        mail.from().contains("doorward@example.com"),
        "{}",
        mail.from()
    );
    assert!(mail.text().contains(&"é".repeat(100)), "{}", mail.text());
    assert_eq!(
        mail.links(),
        [
            "https://doorward.example/users/password/edit?reset_password_token=abc",
            "http://example.org/x"
        ]
    );
    assert!(mail.html().contains("réinitialiser"), "{}", mail.html());
    assert_eq!(mail.html_links(), ["https://doorward.example/a?b=1&c=2"]);
}

#[test]
fn the_parser_decodes_quoted_printable_and_base64_bodies() {
    let raw = "Content-Type: multipart/alternative; boundary=\"XX\"\r\n\r\n\
        --XX\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n\
        caf=C3=A9 https://ex.example/a?b=3D1&c=\r\n=3D2 end\r\nline two\r\n\
        --XX\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n\
        PHA+Y2Fmw6k8L3A+\r\n--XX--\r\n";
    let mail = ReceivedMail::parse(raw);
    assert_eq!(
        mail.text(),
        "café https://ex.example/a?b=1&c=2 end\nline two"
    );
    assert_eq!(mail.links(), ["https://ex.example/a?b=1&c=2"]);
    assert_eq!(mail.html(), "<p>café</p>");
}
