//! Settings of the account lifecycle (issue 12): mail delivery, sign-up, mailed links and
//! audit retention. Read by [`super::Config::load_with`] like every other key.

use super::{ConfigError, Source};
use crate::domain::secret::SecretString;

/// Who may create an account at `/users/sign_up` (`DOORWARD_SIGNUP`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignUp {
    /// Only administrators create accounts (the default).
    Closed,
    /// Anyone; the account is active at once (its address unconfirmed until the mail's link).
    Open,
    /// Anyone, but the account waits in GitLab's `blocked_pending_approval` state until an
    /// administrator approves it.
    Approval,
}

/// How mail leaves: to an SMTP server, or (no `DOORWARD_SMTP_URL`) into `<data dir>/outbox/`.
#[derive(Clone, Debug)]
pub struct MailSettings {
    /// `smtp://host:port` (plain, `?tls=required` for STARTTLS) or `smtps://host:port`;
    /// credentials in the URL's user info.
    pub smtp_url: Option<String>,
    /// The SMTP password when it is not in the URL (`DOORWARD_SMTP_PASSWORD`).
    pub smtp_password: Option<SecretString>,
    /// The bare address of the `From` header (`DOORWARD_MAIL_FROM`).
    pub from: String,
}

#[derive(Clone, Debug)]
pub struct AccountSettings {
    pub mail: MailSettings,
    pub sign_up: SignUp,
    /// When not empty, sign-up accepts only addresses at these domains (lowercase).
    pub sign_up_domains: Vec<String>,
    /// Confirmation links work this long (seconds; GitLab: 3 days).
    pub confirmation_lifetime: i64,
    /// Password-reset links work this long (seconds; 1 hour by default).
    pub reset_password_lifetime: i64,
    /// Audit events older than this many days are purged (0: kept for ever).
    pub audit_event_retention_days: i64,
}

/// The file keys of these settings, as in [`super::FileConfig`].
pub(super) struct FileKeys {
    pub smtp_url: Option<String>,
    pub smtp_password: Option<String>,
    pub mail_from: Option<String>,
    pub signup: Option<String>,
    pub signup_domains: Option<Vec<String>>,
    pub confirmation_lifetime: Option<i64>,
    pub reset_password_lifetime: Option<i64>,
    pub audit_event_retention_days: Option<i64>,
}

pub(super) fn load(
    src: &Source<'_>,
    f: FileKeys,
    external_url: &str,
) -> Result<AccountSettings, ConfigError> {
    let smtp_url = src.get("smtp_url", f.smtp_url);
    if let Some(url) = &smtp_url {
        check_smtp_url(url)?;
    }
    let host = url::Url::parse(external_url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        // An IP address is no mail domain (`doorward@127.0.0.1` is not an address).
        .filter(|h| h.chars().any(|c| c.is_ascii_alphabetic()) && !h.contains(':'))
        .unwrap_or_else(|| "localhost".into());
    let from = src
        .get("mail_from", f.mail_from)
        .unwrap_or_else(|| format!("doorward@{host}"));
    if from.parse::<lettre::Address>().is_err() {
        return Err(ConfigError::Value {
            key: "DOORWARD_MAIL_FROM".into(),
            message: format!(
                "expected a bare e-mail address such as doorward@example.com, got {from:?}"
            ),
        });
    }
    let sign_up = match src.get("signup", f.signup).as_deref().map(str::trim) {
        None | Some("closed") => SignUp::Closed,
        Some("open") => SignUp::Open,
        Some("approval") => SignUp::Approval,
        Some(other) => {
            return Err(ConfigError::Value {
                key: "DOORWARD_SIGNUP".into(),
                message: format!("expected closed, open or approval, got {other:?}"),
            });
        }
    };
    let sign_up_domains = match (src.env)("DOORWARD_SIGNUP_DOMAINS").filter(|v| !v.is_empty()) {
        Some(list) => list.split(',').map(str::to_string).collect(),
        None => f.signup_domains.unwrap_or_default(),
    }
    .into_iter()
    .map(|d| d.trim().trim_start_matches('@').to_ascii_lowercase())
    .filter(|d| !d.is_empty())
    .collect();
    Ok(AccountSettings {
        mail: MailSettings {
            smtp_url,
            smtp_password: src
                .get("smtp_password", f.smtp_password)
                .map(SecretString::new),
            from,
        },
        sign_up,
        sign_up_domains,
        confirmation_lifetime: src
            .number("confirmation_lifetime", f.confirmation_lifetime, 60)?
            .unwrap_or(3 * 86_400),
        reset_password_lifetime: src
            .number("reset_password_lifetime", f.reset_password_lifetime, 60)?
            .unwrap_or(3_600),
        audit_event_retention_days: src
            .number(
                "audit_event_retention_days",
                f.audit_event_retention_days,
                0,
            )?
            .unwrap_or(365),
    })
}

/// `smtp://` or `smtps://` with a host; `tls` only `required` (STARTTLS) or `none`.
fn check_smtp_url(raw: &str) -> Result<(), ConfigError> {
    let bad = |message: String| ConfigError::Value {
        key: "DOORWARD_SMTP_URL".into(),
        message,
    };
    // Never echo the URL: it may carry the password.
    let url = url::Url::parse(raw).map_err(|e| bad(format!("not a URL ({e})")))?;
    if !matches!(url.scheme(), "smtp" | "smtps") {
        return Err(bad("must start with smtp:// or smtps://".into()));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("has no host".into()));
    }
    for (key, value) in url.query_pairs() {
        match (&*key, &*value) {
            ("tls", "required" | "none") => {}
            _ => {
                return Err(bad(format!(
                    "unknown option {key}={value} (only tls=required)"
                )));
            }
        }
    }
    Ok(())
}
