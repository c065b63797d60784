//! Sending the queued mail: a worker on every node claims due messages from the queue
//! (`store::mail_queue`) one at a time and hands them to the transport built once from the
//! settings: an SMTP server (`DOORWARD_SMTP_URL`) or, with none configured, one `.eml` file
//! per message in `<data dir>/outbox/`.
//!
//! A claim leases the row for [`LEASE`] seconds with a conditional UPDATE, so two nodes never
//! take the same message; a whole SMTP exchange is bounded by [`SEND_TIMEOUT`], well under the
//! lease, so a message is never still being sent when another node may take it. A failure
//! is retried after [`backoff`] (2, 5, 10, 20, 40, then every 60 seconds), so mail queued while
//! the server was down leaves within a minute of it coming back; after [`GIVE_UP_AFTER`] or
//! [`MAX_ATTEMPTS`] the message is dropped with an error in the log. `Mailer::send` wakes the
//! worker of its node at once; the others poll every [`POLL`].
//!
//! The SMTP password (in the URL or `DOORWARD_SMTP_PASSWORD`) is never logged, nor the URL.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use lettre::address::Envelope;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use crate::config::Config;
use crate::domain::secret::{self, SecretString};
use crate::state::AppState;
use crate::store::mail_queue::QueuedMail;

/// How often each node looks for due mail (besides being woken by `Mailer::send`).
const POLL: Duration = Duration::from_secs(1);
/// Bound on each SMTP read or write (connect, greeting, every command).
const IO_TIMEOUT: Duration = Duration::from_secs(30);
/// Bound on one whole SMTP exchange, from connecting to the answer after DATA.
const SEND_TIMEOUT: Duration = Duration::from_secs(60);
/// A claimed message is not taken by another node for this long (seconds): longer than
/// [`SEND_TIMEOUT`], so it cannot be sent twice.
const LEASE: i64 = 120;
/// Seconds after queueing past which a message that still fails is dropped.
pub const GIVE_UP_AFTER: i64 = 86_400;
/// Attempts after which a message that still fails is dropped (about a day at 60 s).
pub const MAX_ATTEMPTS: i64 = 1_500;

/// Seconds to wait after the `attempts`-th failed attempt: 2, 5, 10, 20, 40, then 60.
pub fn backoff(attempts: i64) -> i64 {
    match attempts {
        ..=1 => 2,
        2 => 5,
        3 => 10,
        4 => 20,
        5 => 40,
        _ => 60,
    }
}

/// Whether a message that failed its `attempts`-th attempt is dropped rather than retried.
pub fn gives_up(attempts: i64, created_at: i64, now: i64) -> bool {
    attempts >= MAX_ATTEMPTS || now - created_at >= GIVE_UP_AFTER
}

/// How the connection to the SMTP server is protected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Security {
    /// `smtp://`: plain SMTP, no TLS at all.
    None,
    /// `smtp://…?tls=required`: STARTTLS, refusing to go on without it.
    StartTls,
    /// `smtps://`: TLS from the first byte.
    Implicit,
}

/// What `DOORWARD_SMTP_URL` (and `DOORWARD_SMTP_PASSWORD`) say. `Debug` shows no password.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SmtpParams {
    /// A host name, or an IP address without brackets.
    pub host: String,
    pub port: u16,
    pub security: Security,
    /// User and password for AUTH; only when the URL names a user.
    pub credentials: Option<(String, SecretString)>,
}

impl SmtpParams {
    /// Reads the URL: default ports 25 (`smtp://`), 587 (`?tls=required`) and 465
    /// (`smtps://`); user and password percent-decoded from the user info, the password
    /// from `password` when the URL has none. Errors never repeat the URL.
    pub fn parse(raw: &str, password: Option<&SecretString>) -> anyhow::Result<SmtpParams> {
        let url = url::Url::parse(raw).map_err(|e| anyhow::anyhow!("not a URL ({e})"))?;
        let tls = url
            .query_pairs()
            .find(|(k, _)| k == "tls")
            .map(|(_, v)| v.into_owned());
        let security = match (url.scheme(), tls.as_deref()) {
            ("smtp", None | Some("none")) => Security::None,
            ("smtp", Some("required")) => Security::StartTls,
            ("smtps", None | Some("required")) => Security::Implicit,
            ("smtps", Some(_)) => anyhow::bail!("smtps:// always uses TLS"),
            (scheme, _) => anyhow::bail!("unknown scheme {scheme}: (expected smtp or smtps)"),
        };
        let host = match url.host() {
            Some(url::Host::Domain(d)) if !d.is_empty() => d.to_string(),
            Some(url::Host::Ipv4(a)) => a.to_string(),
            Some(url::Host::Ipv6(a)) => a.to_string(),
            _ => anyhow::bail!("the SMTP URL has no host"),
        };
        let port = url.port().unwrap_or(match security {
            Security::None => 25,
            Security::StartTls => 587,
            Security::Implicit => 465,
        });
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8()
                .map(|s| s.into_owned())
                .map_err(|_| anyhow::anyhow!("the SMTP URL's user info is not UTF-8"))
        };
        let credentials = match url.username() {
            "" => None,
            user => {
                let password = match url.password() {
                    Some(p) => SecretString::new(decode(p)?),
                    None => password.cloned().context(
                        "the SMTP URL names a user but there is no password \
                         (in the URL or DOORWARD_SMTP_PASSWORD)",
                    )?,
                };
                Some((decode(user)?, password))
            }
        };
        Ok(SmtpParams {
            host,
            port,
            security,
            credentials,
        })
    }
}

/// Where mail goes, built once from the settings.
pub enum Transport {
    Smtp {
        client: AsyncSmtpTransport<Tokio1Executor>,
        from: Address,
    },
    /// No SMTP server: one RFC 5322 file per message in this directory.
    Outbox(PathBuf),
}

impl Transport {
    pub fn from_config(config: &Config) -> anyhow::Result<Transport> {
        let mail = &config.accounts.mail;
        let Some(url) = &mail.smtp_url else {
            let dir = config.data_dir.join("outbox");
            tracing::info!(path = %dir.display(), "no DOORWARD_SMTP_URL: mail is written to the outbox directory");
            return Ok(Transport::Outbox(dir));
        };
        let params =
            SmtpParams::parse(url, mail.smtp_password.as_ref()).context("DOORWARD_SMTP_URL")?;
        if params.credentials.is_none() && mail.smtp_password.is_some() {
            tracing::warn!(
                "DOORWARD_SMTP_PASSWORD is set but DOORWARD_SMTP_URL names no user: not authenticating"
            );
        }
        let tls = || -> anyhow::Result<TlsParameters> {
            let mut builder = TlsParameters::builder(params.host.clone());
            if let Some(path) = &config.outbound_ca_file {
                let pem = std::fs::read(path)
                    .with_context(|| format!("cannot read {}", path.display()))?;
                builder =
                    builder
                        .add_root_certificate(Certificate::from_pem(&pem).with_context(|| {
                            format!("no PEM certificate in {}", path.display())
                        })?);
            }
            Ok(builder.build()?)
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&params.host)
            .port(params.port)
            .timeout(Some(IO_TIMEOUT))
            .tls(match params.security {
                Security::None => Tls::None,
                Security::StartTls => Tls::Required(tls()?),
                Security::Implicit => Tls::Wrapper(tls()?),
            });
        if let Some(name) = hello_name(&config.external_url) {
            builder = builder.hello_name(name);
        }
        if let Some((user, password)) = &params.credentials {
            builder = builder.credentials(Credentials::new(
                user.clone(),
                password.expose().to_string(),
            ));
        }
        tracing::info!(host = %params.host, port = params.port, security = ?params.security,
            auth = params.credentials.is_some(), "mail is sent to the SMTP server");
        Ok(Transport::Smtp {
            client: builder.build(),
            from: mail.from.parse().context("DOORWARD_MAIL_FROM")?,
        })
    }

    /// Sends one message; `Err` says why it did not go, and whether it ever can.
    async fn send(&self, mail: &QueuedMail) -> Result<(), Failure> {
        match self {
            Transport::Smtp { client, from } => {
                let to: Address = mail.recipient.parse().map_err(|e| {
                    Failure::Permanent(format!("the recipient is not an address ({e})"))
                })?;
                let envelope = Envelope::new(Some(from.clone()), vec![to])
                    .map_err(|e| Failure::Permanent(e.to_string()))?;
                match tokio::time::timeout(
                    SEND_TIMEOUT,
                    client.send_raw(&envelope, mail.message.as_bytes()),
                )
                .await
                {
                    Ok(Ok(_)) => Ok(()),
                    Ok(Err(e)) => Err(Failure::Retry(e.to_string())),
                    Err(_) => Err(Failure::Retry(format!(
                        "no answer within {} s",
                        SEND_TIMEOUT.as_secs()
                    ))),
                }
            }
            Transport::Outbox(dir) => write_outbox(dir, mail)
                .await
                .map_err(|e| Failure::Retry(format!("cannot write to the outbox: {e:#}"))),
        }
    }
}

enum Failure {
    /// Worth trying again later.
    Retry(String),
    /// Can never succeed (a recipient that is no address).
    Permanent(String),
}

/// The EHLO name: the external URL's host, when it is a domain name.
fn hello_name(external_url: &str) -> Option<ClientId> {
    let url = url::Url::parse(external_url).ok()?;
    match url.host()? {
        url::Host::Domain(d) if d.parse::<IpAddr>().is_err() => Some(ClientId::Domain(d.into())),
        _ => None,
    }
}

/// Writes `mail` whole as `<dir>/<created_at>-<id>-<random>.eml` (owner-only): first to a
/// hidden temporary name in the same directory, synced, then renamed, so a reader never sees
/// half a message.
async fn write_outbox(dir: &std::path::Path, mail: &QueuedMail) -> anyhow::Result<()> {
    use tokio::io::AsyncWriteExt;
    let mut dirs = tokio::fs::DirBuilder::new();
    dirs.recursive(true);
    #[cfg(unix)]
    dirs.mode(0o700);
    dirs.create(dir)
        .await
        .with_context(|| format!("cannot create {}", dir.display()))?;
    let name = format!(
        "{}-{}-{}.eml",
        mail.created_at,
        mail.id,
        hex::encode(secret::random_bytes::<4>())
    );
    let temporary = dir.join(format!(".{name}.tmp"));
    let mut options = tokio::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(0o600);
    let written = async {
        let mut file = options.open(&temporary).await?;
        file.write_all(mail.message.as_bytes()).await?;
        file.sync_all().await?;
        tokio::fs::rename(&temporary, dir.join(&name)).await
    }
    .await;
    if let Err(e) = written {
        let _ = tokio::fs::remove_file(&temporary).await;
        return Err(e).with_context(|| format!("cannot write {}", dir.join(&name).display()));
    }
    tracing::debug!(id = mail.id, path = %dir.join(&name).display(), "mail written to the outbox");
    Ok(())
}

/// Sends queued mail for as long as the server runs.
pub async fn deliver_forever(state: AppState) {
    let transport = loop {
        match Transport::from_config(&state.config) {
            Ok(t) => break t,
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), "cannot set up mail delivery; trying again in a minute");
                tokio::time::sleep(Duration::from_secs(60)).await;
            }
        }
    };
    loop {
        loop {
            let now = state.clock.now();
            match state.store.claim_mail(now, LEASE).await {
                Ok(Some(mail)) => deliver(&state, &transport, mail).await,
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the mail queue");
                    break;
                }
            }
        }
        tokio::select! {
            () = state.mailer.queued.notified() => {}
            () = tokio::time::sleep(POLL) => {}
        }
    }
}

async fn deliver(state: &AppState, transport: &Transport, mail: QueuedMail) {
    let outcome = transport.send(&mail).await;
    let now = state.clock.now();
    let (id, attempts) = (mail.id, mail.attempts);
    let store = &state.store;
    // A message given up leaves the queue like a sent one.
    let result = match outcome {
        Ok(()) => {
            tracing::info!(id, attempts, "mail sent");
            store.mail_sent(id).await
        }
        Err(Failure::Permanent(why)) => {
            tracing::error!(id, attempts, error = %why, "mail dropped: it cannot be sent");
            store.mail_sent(id).await
        }
        Err(Failure::Retry(why)) if gives_up(attempts, mail.created_at, now) => {
            tracing::error!(id, attempts, error = %why, "mail dropped after failing for too long");
            store.mail_sent(id).await
        }
        Err(Failure::Retry(why)) => {
            let wait = backoff(attempts);
            tracing::warn!(id, attempts, retry_in_seconds = wait, error = %why, "mail not sent; will retry");
            store.mail_failed(id, now + wait, &why).await
        }
    };
    if let Err(e) = result {
        tracing::warn!(id, error = %e, "cannot update the mail queue");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_starts_short_and_stays_under_a_minute() {
        let waits: Vec<i64> = (1..=8).map(backoff).collect();
        assert_eq!(waits, [2, 5, 10, 20, 40, 60, 60, 60]);
        assert!((1..10_000).all(|n| backoff(n) <= 60));
        // Well inside the lease: the next attempt never races a send still running.
        assert!(SEND_TIMEOUT.as_secs() < u64::try_from(LEASE).unwrap_or(0));
    }

    #[test]
    fn delivery_gives_up_after_a_day_or_too_many_attempts() {
        assert!(!gives_up(1, 1000, 1002));
        assert!(!gives_up(MAX_ATTEMPTS - 1, 0, GIVE_UP_AFTER - 1));
        assert!(gives_up(MAX_ATTEMPTS, 0, 10));
        assert!(gives_up(3, 0, GIVE_UP_AFTER));
        // Retrying every 60 s, the attempt count alone also ends it about a day later.
        let total: i64 = (1..MAX_ATTEMPTS).map(backoff).sum();
        assert!((GIVE_UP_AFTER..2 * GIVE_UP_AFTER).contains(&total));
    }

    fn parse(url: &str, password: Option<&str>) -> anyhow::Result<SmtpParams> {
        SmtpParams::parse(url, password.map(SecretString::new).as_ref())
    }

    fn creds(p: &SmtpParams) -> Option<(&str, &str)> {
        p.credentials
            .as_ref()
            .map(|(u, pw)| (u.as_str(), pw.expose()))
    }

    #[test]
    fn plain_smtp_url() -> anyhow::Result<()> {
        let p = parse("smtp://mail.example.com:2525", None)?;
        assert_eq!(
            (p.host.as_str(), p.port, p.security),
            ("mail.example.com", 2525, Security::None)
        );
        assert_eq!(creds(&p), None);
        assert_eq!(parse("smtp://mail.example.com", None)?.port, 25);
        assert_eq!(
            parse("smtp://mail.example.com?tls=none", None)?.security,
            Security::None
        );
        let v6 = parse("smtp://[::1]:25", None)?;
        assert_eq!(v6.host, "::1");
        Ok(())
    }

    #[test]
    fn starttls_required_and_implicit_tls_urls() -> anyhow::Result<()> {
        let p = parse("smtp://mail.example.com?tls=required", None)?;
        assert_eq!((p.security, p.port), (Security::StartTls, 587));
        let p = parse("smtp://mail.example.com:2587?tls=required", None)?;
        assert_eq!((p.security, p.port), (Security::StartTls, 2587));
        let p = parse("smtps://mail.example.com", None)?;
        assert_eq!((p.security, p.port), (Security::Implicit, 465));
        let p = parse("smtps://10.0.0.7:2465", None)?;
        assert_eq!(
            (p.host.as_str(), p.security, p.port),
            ("10.0.0.7", Security::Implicit, 2465)
        );
        assert!(parse("smtps://mail.example.com?tls=none", None).is_err());
        assert!(parse("http://mail.example.com", None).is_err());
        Ok(())
    }

    #[test]
    fn credentials_come_percent_decoded_from_the_url_or_the_password_setting() -> anyhow::Result<()>
    {
        let p = parse(
            "smtp://mailer%40example.com:p%40ss%3Aw%2Frd@mail.example.com",
            None,
        )?;
        assert_eq!(creds(&p), Some(("mailer@example.com", "p@ss:w/rd")));
        // The password setting fills in what the URL leaves out...
        let p = parse(
            "smtp://mailer@mail.example.com?tls=required",
            Some("s3cret"),
        )?;
        assert_eq!(creds(&p), Some(("mailer", "s3cret")));
        // ...but the URL's own password wins.
        let p = parse("smtp://mailer:inline@mail.example.com", Some("s3cret"))?;
        assert_eq!(creds(&p), Some(("mailer", "inline")));
        // No user in the URL: no AUTH, whatever the password setting.
        assert_eq!(
            creds(&parse("smtp://mail.example.com", Some("s3cret"))?),
            None
        );
        // A user without any password is a mistake, said without echoing the URL.
        let err = parse("smtp://mailer@mail.example.com", None)
            .err()
            .map(|e| format!("{e:#}"))
            .unwrap_or_default();
        assert!(
            err.contains("no password") && !err.contains("mail.example.com"),
            "{err}"
        );
        Ok(())
    }

    #[test]
    fn debug_output_never_shows_the_password() -> anyhow::Result<()> {
        let p = parse("smtp://mailer:hunter2@mail.example.com", None)?;
        let shown = format!("{p:?}");
        assert!(
            !shown.contains("hunter2") && shown.contains("mailer"),
            "{shown}"
        );
        Ok(())
    }
}
