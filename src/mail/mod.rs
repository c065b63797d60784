//! Mail: the letters Doorward sends (confirmation, password reset, security notices), made
//! from templates while a request is served and queued in the database (`store::mail_queue`);
//! `delivery` sends them from the queue, so a slow or absent mail server never holds up or
//! fails a request, and a restart loses nothing.
//!
//! Every link is built on `DOORWARD_EXTERNAL_URL`, never on the request's `Host` or forwarded
//! headers: a forged host must not turn a reset mail into a link to the attacker (ZITADEL's
//! CVE-2023-49097 class).

pub mod delivery;

use lettre::message::{Mailbox, MultiPart};
use minijinja::{Environment, UndefinedBehavior, context};

use crate::config::Config;
use crate::store::{Store, StoreError};

/// One letter and what it says. Values are escaped in the HTML part.
#[derive(Clone, Debug)]
pub enum Letter<'a> {
    /// Confirm an address: of a new account, or a new address of an existing one.
    Confirmation {
        link: &'a str,
        email: &'a str,
    },
    /// A password-reset link, with where the request came from.
    ResetPassword {
        link: &'a str,
        requested_from: &'a str,
        valid_minutes: i64,
    },
    PasswordChanged,
    TwoFactorDisabled,
    /// Names the token, never its value.
    PersonalAccessTokenCreated {
        token_name: &'a str,
    },
    /// Sent to the old address; no link in it.
    EmailChanged {
        new_email: &'a str,
    },
    /// A pending sign-up was approved (no confirmation or reset link in it).
    AccountApproved,
    /// A sign-up that made no account, told to the address it gave: the username was
    /// taken (`username_taken`), or the address already has an account. The page said the
    /// same as for a sign-up that worked, so that it tells nobody who is registered.
    SignUpNotCompleted {
        username_taken: bool,
        username: &'a str,
    },
}

impl Letter<'_> {
    fn template(&self) -> &'static str {
        match self {
            Letter::Confirmation { .. } => "confirmation",
            Letter::ResetPassword { .. } => "reset_password",
            Letter::PasswordChanged => "password_changed",
            Letter::TwoFactorDisabled => "two_factor_disabled",
            Letter::PersonalAccessTokenCreated { .. } => "personal_access_token_created",
            Letter::EmailChanged { .. } => "email_changed",
            Letter::AccountApproved => "account_approved",
            Letter::SignUpNotCompleted { .. } => "sign_up_not_completed",
        }
    }

    fn subject(&self) -> &'static str {
        match self {
            Letter::Confirmation { .. } => "Confirmation instructions",
            Letter::ResetPassword { .. } => "Reset password instructions",
            Letter::PasswordChanged => "Password changed",
            Letter::TwoFactorDisabled => "Two-factor authentication disabled",
            Letter::PersonalAccessTokenCreated { .. } => {
                "A new personal access token has been created"
            }
            Letter::EmailChanged { .. } => "Email changed",
            Letter::AccountApproved => "Welcome to Doorward!",
            Letter::SignUpNotCompleted { .. } => "Your registration",
        }
    }

    fn context(&self) -> minijinja::Value {
        match *self {
            Letter::Confirmation { link, email } => {
                context! { link, link_html => link_value(link), email }
            }
            Letter::ResetPassword {
                link,
                requested_from,
                valid_minutes,
            } => context! { link, link_html => link_value(link), requested_from, valid_minutes },
            Letter::PersonalAccessTokenCreated { token_name } => context! { token_name },
            Letter::EmailChanged { new_email } => context! { new_email },
            Letter::SignUpNotCompleted {
                username_taken,
                username,
            } => context! { username_taken, username },
            Letter::PasswordChanged | Letter::TwoFactorDisabled | Letter::AccountApproved => {
                context! {}
            }
        }
    }
}

/// A link as the HTML templates get it (`link_html`; the text ones get `link` as it is): minijinja's HTML escaping would write every `/` as
/// `&#x2f;`, valid HTML that naive mail readers and scanners mangle. Links are made here from
/// the external URL and a base64url token, so escaping the characters that matter in an
/// attribute (`&`, `<`, `>`, `"`, `'`) and marking the result safe is exact.
fn link_value(link: &str) -> minijinja::Value {
    let mut escaped = String::with_capacity(link.len());
    for c in link.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            c => escaped.push(c),
        }
    }
    minijinja::Value::from_safe_string(escaped)
}

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("cannot make the message: {0}")]
    Build(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

const TEMPLATES: &[(&str, &str)] = &[
    (
        "layout.html",
        include_str!("../../templates/mail/layout.html"),
    ),
    (
        "confirmation.txt",
        include_str!("../../templates/mail/confirmation.txt"),
    ),
    (
        "confirmation.html",
        include_str!("../../templates/mail/confirmation.html"),
    ),
    (
        "reset_password.txt",
        include_str!("../../templates/mail/reset_password.txt"),
    ),
    (
        "reset_password.html",
        include_str!("../../templates/mail/reset_password.html"),
    ),
    (
        "password_changed.txt",
        include_str!("../../templates/mail/password_changed.txt"),
    ),
    (
        "password_changed.html",
        include_str!("../../templates/mail/password_changed.html"),
    ),
    (
        "two_factor_disabled.txt",
        include_str!("../../templates/mail/two_factor_disabled.txt"),
    ),
    (
        "two_factor_disabled.html",
        include_str!("../../templates/mail/two_factor_disabled.html"),
    ),
    (
        "personal_access_token_created.txt",
        include_str!("../../templates/mail/personal_access_token_created.txt"),
    ),
    (
        "personal_access_token_created.html",
        include_str!("../../templates/mail/personal_access_token_created.html"),
    ),
    (
        "email_changed.txt",
        include_str!("../../templates/mail/email_changed.txt"),
    ),
    (
        "email_changed.html",
        include_str!("../../templates/mail/email_changed.html"),
    ),
    (
        "account_approved.txt",
        include_str!("../../templates/mail/account_approved.txt"),
    ),
    (
        "account_approved.html",
        include_str!("../../templates/mail/account_approved.html"),
    ),
    (
        "sign_up_not_completed.txt",
        include_str!("../../templates/mail/sign_up_not_completed.txt"),
    ),
    (
        "sign_up_not_completed.html",
        include_str!("../../templates/mail/sign_up_not_completed.html"),
    ),
];

/// Makes letters into RFC 5322 messages and queues them.
pub struct Mailer {
    from: Mailbox,
    external_url: String,
    /// The domain of Message-IDs: the external URL's host.
    host: String,
    env: Environment<'static>,
    /// Woken by [`Mailer::send`] so this node's `delivery` worker sends at once.
    pub(crate) queued: tokio::sync::Notify,
}

impl Mailer {
    pub fn new(config: &Config) -> anyhow::Result<Mailer> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        // minijinja escapes by file name: `.html` escaped, `.txt` verbatim.
        for (name, source) in TEMPLATES {
            env.add_template(name, source)?;
        }
        let from: lettre::Address = config.accounts.mail.from.parse()?;
        let host = url::Url::parse(&config.external_url)?
            .host_str()
            .unwrap_or("localhost")
            .to_string();
        Ok(Mailer {
            from: Mailbox::new(Some("Doorward".into()), from),
            external_url: config.external_url.clone(),
            host,
            env,
            queued: tokio::sync::Notify::new(),
        })
    }

    /// An absolute link on the external URL; `path_and_query` starts with `/`.
    pub fn link(&self, path_and_query: &str) -> String {
        format!("{}{path_and_query}", self.external_url)
    }

    /// Makes the message of `letter` to `name <to>`, as it will be sent.
    pub fn compose(&self, to: &str, name: &str, letter: &Letter<'_>) -> Result<String, MailError> {
        let build = |e: &dyn std::fmt::Display| MailError::Build(e.to_string());
        let address: lettre::Address = to.parse().map_err(|e| build(&e))?;
        let ctx = context! { name, instance => &self.external_url, ..letter.context() };
        let render = |ext: &str| {
            self.env
                .get_template(&format!("{}.{ext}", letter.template()))
                .and_then(|t| t.render(&ctx))
                .map_err(|e| build(&format!("{e:#}")))
        };
        let message = lettre::Message::builder()
            .from(self.from.clone())
            .to(Mailbox::new(Some(name.to_string()), address))
            .subject(letter.subject())
            .message_id(Some(format!(
                "<{}@{}>",
                hex::encode(crate::domain::secret::random_bytes::<16>()),
                self.host
            )))
            .multipart(MultiPart::alternative_plain_html(
                render("txt")?,
                render("html")?,
            ))
            .map_err(|e| build(&e))?;
        // The builder encodes every header and part as ASCII (quoted-printable or base64).
        String::from_utf8(message.formatted()).map_err(|e| build(&e))
    }

    /// Makes and queues `letter`; the delivery worker sends it within seconds.
    pub async fn send(
        &self,
        store: &Store,
        now: i64,
        to: &str,
        name: &str,
        letter: &Letter<'_>,
    ) -> Result<(), MailError> {
        let message = self.compose(to, name, letter)?;
        store.enqueue_mail(to, &message, now).await?;
        self.queued.notify_one();
        tracing::info!(template = letter.template(), "mail queued");
        Ok(())
    }
}
