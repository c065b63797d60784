//! The OpenID Connect parameters of an authorization request (Core §3.1.2.1): `prompt`,
//! `max_age` and `login_hint` (`nonce` travels with the code). Pure decisions; the
//! authorization endpoint acts on them.
//!
//! A fresh sign-in (`prompt=login`, or a session older than `max_age`) sends the browser
//! to the sign-in form with `prompt=login`, which then asks for credentials even with a
//! session, and back to the same request with a `signed_in_after` marker: a session that
//! started after that moment satisfies the request, so the round trip cannot loop. The
//! marker only ever relaxes what the relying party asked for on this one request; a client
//! that cares checks `auth_time` in the id_token (Core §3.1.2.1), which is always sent.

use crate::oauth::error::{ErrorCode, OAuthError};
use crate::oauth::params::Params;
use crate::web::error::urlencode;

/// The marker parameter added to the request the sign-in form returns to.
pub const SIGNED_IN_AFTER: &str = "signed_in_after";

/// The OpenID Connect parameters of one authorization request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OidcParams {
    /// `prompt=none`: answer without any page, or with an error.
    pub none: bool,
    /// `prompt=login`: authenticate again.
    pub login: bool,
    /// `prompt=consent`: ask for consent even if it was given before.
    pub consent: bool,
    /// `max_age`: the sign-in must be at most this many seconds old.
    pub max_age: Option<i64>,
    /// `login_hint`: the username to prefill on the sign-in form.
    pub login_hint: Option<String>,
    /// Our marker: a sign-in at or after this time is fresh enough.
    pub signed_in_after: Option<i64>,
}

fn invalid(description: String) -> OAuthError {
    OAuthError::with_description(ErrorCode::InvalidRequest, description)
}

/// Reads `prompt`, `max_age`, `login_hint` and our marker. Unsupported prompt values
/// (`select_account`, `create`) and `none` combined with another value are errors
/// (Core §3.1.2.1, §3.1.2.6).
pub fn parse(params: &Params) -> Result<OidcParams, OAuthError> {
    let mut out = OidcParams::default();
    if let Some(prompt) = params.get("prompt") {
        for value in prompt.split(' ').filter(|v| !v.is_empty()) {
            match value {
                "none" => out.none = true,
                "login" => out.login = true,
                "consent" => out.consent = true,
                // Core §3.1.2.1 lets an OP refuse values it does not support; only what
                // works is accepted (docs/compatibility.md).
                other => {
                    return Err(invalid(format!(
                        "The prompt value {other} is not supported; use none, login or consent."
                    )));
                }
            }
        }
        // Core §3.1.2.1: none with any other value is an error.
        if out.none && (out.login || out.consent) {
            return Err(invalid(
                "The prompt value none cannot be combined with other values.".into(),
            ));
        }
    }
    // Core §3.1.2.1: max_age is a number of seconds.
    if let Some(text) = params.get("max_age") {
        let age = text
            .parse::<i64>()
            .ok()
            .filter(|a| *a >= 0)
            .ok_or_else(|| invalid("The max_age parameter must be a number of seconds.".into()))?;
        out.max_age = Some(age);
    }
    // Core §3.1.2.1: only a hint, so an overlong one is dropped rather than refused.
    out.login_hint = params
        .get("login_hint")
        .filter(|h| h.len() <= 255)
        .map(str::to_string);
    out.signed_in_after = params.get(SIGNED_IN_AFTER).and_then(|t| t.parse().ok());
    Ok(out)
}

impl OidcParams {
    /// True when a session that started at `signed_in_at` is not good enough at `now`: Core
    /// §3.1.2.1's prompt=login, or more than max_age seconds elapsed.
    pub fn needs_fresh_sign_in(&self, signed_in_at: i64, now: i64) -> bool {
        if self.signed_in_after.is_some_and(|t| signed_in_at >= t) {
            return false;
        }
        self.login || self.max_age.is_some_and(|age| now - signed_in_at > age)
    }
}

/// The sign-in page for this request: back to `query` (the authorization request's query
/// string) afterwards; with `fresh_after`, credentials are asked even with a session and the
/// marker is set to that time.
pub fn sign_in_url(query: &str, login_hint: Option<&str>, fresh_after: Option<i64>) -> String {
    let return_query = match fresh_after {
        // The request exactly as it came.
        None => query.to_string(),
        Some(t) => {
            let mut q = url::form_urlencoded::Serializer::new(String::new());
            for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
                if k != SIGNED_IN_AFTER {
                    q.append_pair(&k, &v);
                }
            }
            q.append_pair(SIGNED_IN_AFTER, &t.to_string());
            q.finish()
        }
    };
    let mut target = format!(
        "/users/sign_in?return_to={}",
        urlencode(&format!("/oauth/authorize?{return_query}"))
    );
    if let Some(hint) = login_hint {
        target.push_str(&format!("&login_hint={}", urlencode(hint)));
    }
    if fresh_after.is_some() {
        target.push_str("&prompt=login");
    }
    target
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(q: &str) -> Params {
        Params::from_form(q.as_bytes()).unwrap()
    }

    #[test]
    fn prompt_values_are_checked() {
        let p = parse(&params("prompt=login%20consent&max_age=60&login_hint=ada")).unwrap();
        assert!(p.login && p.consent && !p.none);
        assert_eq!(p.max_age, Some(60));
        assert_eq!(p.login_hint.as_deref(), Some("ada"));
        assert!(parse(&params("prompt=select_account")).is_err());
        assert!(parse(&params("prompt=none%20login")).is_err());
        assert!(parse(&params("max_age=-1")).is_err());
        assert!(parse(&params("max_age=soon")).is_err());
    }

    #[test]
    fn a_sign_in_after_the_marker_satisfies_login_and_max_age() {
        let p = parse(&params("prompt=login")).unwrap();
        assert!(p.needs_fresh_sign_in(1000, 1000));
        let p = parse(&params("prompt=login&signed_in_after=1000")).unwrap();
        assert!(p.needs_fresh_sign_in(999, 1001));
        assert!(!p.needs_fresh_sign_in(1000, 1001));
        let p = parse(&params("max_age=0")).unwrap();
        assert!(p.needs_fresh_sign_in(1000, 1001));
        assert!(!p.needs_fresh_sign_in(1001, 1001));
        let p = parse(&params("max_age=0&signed_in_after=1000")).unwrap();
        assert!(!p.needs_fresh_sign_in(1000, 1005));
        assert!(
            !parse(&params(""))
                .unwrap()
                .needs_fresh_sign_in(0, 1_000_000)
        );
    }

    #[test]
    fn the_sign_in_url_returns_to_the_request_with_one_marker() {
        let url = sign_in_url(
            "client_id=a&prompt=login&signed_in_after=5",
            Some("ada"),
            Some(9),
        );
        let pairs: Vec<(String, String)> =
            url::form_urlencoded::parse(url.strip_prefix("/users/sign_in?").unwrap().as_bytes())
                .into_owned()
                .collect();
        assert_eq!(
            pairs,
            [
                (
                    "return_to".to_string(),
                    "/oauth/authorize?client_id=a&prompt=login&signed_in_after=9".to_string()
                ),
                ("login_hint".to_string(), "ada".to_string()),
                ("prompt".to_string(), "login".to_string()),
            ]
        );
    }
}
