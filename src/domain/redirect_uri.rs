//! Redirect URIs: what may be registered, and whether a requested URI matches a registered
//! one. Matching is by exact string (RFC 9700 §4.1.3), except that a loopback IP literal
//! may use any port (RFC 8252 §7.3), because native apps listen on an ephemeral port.

use std::net::IpAddr;

use url::{Host, Url};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RedirectUriError {
    #[error("must be a valid URI")]
    Invalid,
    #[error("must be an absolute URI")]
    NotAbsolute,
    #[error("cannot contain a fragment")]
    Fragment,
    #[error("cannot contain user information")]
    UserInfo,
    #[error("uses a scheme that is forbidden by the server")]
    ForbiddenScheme,
    #[error(
        "must use https (http is allowed only for loopback addresses such as http://127.0.0.1)"
    )]
    InsecureHttp,
    #[error("can't be blank")]
    Blank,
    #[error("lists too many URIs (at most 20)")]
    TooMany,
    #[error("cannot be out-of-band (urn:ietf:wg:oauth:2.0:oob); use a loopback or private-use URI")]
    OutOfBand,
}

/// Schemes that execute or embed content instead of naming a place to go back to.
const FORBIDDEN_SCHEMES: &[&str] = &["javascript", "data", "vbscript", "file", "blob", "about"];

/// Checks one URI for registration. `allow_http` lets non-loopback `http` through (an
/// instance setting; https is the safe default because codes travel in the URL).
pub fn validate(raw: &str, allow_http: bool) -> Result<(), RedirectUriError> {
    if raw.is_empty()
        || raw.len() > 2000
        || raw.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(RedirectUriError::Invalid);
    }
    let url = Url::parse(raw).map_err(|e| match e {
        url::ParseError::RelativeUrlWithoutBase => RedirectUriError::NotAbsolute,
        _ => RedirectUriError::Invalid,
    })?;
    if url.fragment().is_some() || raw.contains('#') {
        return Err(RedirectUriError::Fragment);
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(RedirectUriError::UserInfo);
    }
    let scheme = url.scheme();
    if FORBIDDEN_SCHEMES.contains(&scheme) {
        return Err(RedirectUriError::ForbiddenScheme);
    }
    // Out-of-band codes are shown on a page for the user to copy; RFC 8252 §7 replaced
    // them with loopback and private-use redirects, and nothing here would show the code.
    if scheme == "urn"
        && url
            .path()
            .to_ascii_lowercase()
            .starts_with("ietf:wg:oauth:2.0:oob")
    {
        return Err(RedirectUriError::OutOfBand);
    }
    match scheme {
        "https" => {}
        "http" => {
            if url.host().is_none() {
                return Err(RedirectUriError::Invalid);
            }
            if !allow_http && !is_loopback_host(&url) {
                return Err(RedirectUriError::InsecureHttp);
            }
        }
        // Private-use schemes of native apps (RFC 8252 §7.1), e.g. com.example.app:/cb.
        _ => {
            if url.cannot_be_a_base() && url.path().is_empty() {
                return Err(RedirectUriError::Invalid);
            }
        }
    }
    Ok(())
}

/// Splits the registration field (one URI per line, or space-separated) and validates each.
pub fn parse_list(text: &str, allow_http: bool) -> Result<Vec<String>, (String, RedirectUriError)> {
    let uris: Vec<String> = text.split_whitespace().map(str::to_string).collect();
    if uris.is_empty() {
        return Err((String::new(), RedirectUriError::Blank));
    }
    if uris.len() > 20 {
        return Err((String::new(), RedirectUriError::TooMany));
    }
    for uri in &uris {
        validate(uri, allow_http).map_err(|e| (uri.clone(), e))?;
    }
    let mut unique = Vec::with_capacity(uris.len());
    for uri in uris {
        if !unique.contains(&uri) {
            unique.push(uri);
        }
    }
    Ok(unique)
}

fn is_loopback_host(url: &Url) -> bool {
    match url.host() {
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        Some(Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

fn loopback_ip_literal(url: &Url) -> Option<IpAddr> {
    match url.host()? {
        Host::Ipv4(ip) if ip.is_loopback() => Some(IpAddr::V4(ip)),
        Host::Ipv6(ip) if ip.is_loopback() => Some(IpAddr::V6(ip)),
        _ => None,
    }
}

/// The registered URI that `requested` matches, if any: an exact string match, or for a
/// registered `http` loopback IP literal, the same URI with any port. User information in
/// the requested URI never matches (doorkeeper #1878: `http://attacker@127.0.0.1/cb`).
pub fn find_match<'a>(registered: &'a [String], requested: &str) -> Option<&'a str> {
    if let Some(exact) = registered.iter().find(|r| r.as_str() == requested) {
        return Some(exact);
    }
    let req = Url::parse(requested).ok()?;
    if req.scheme() != "http"
        || !req.username().is_empty()
        || req.password().is_some()
        || req.fragment().is_some()
    {
        return None;
    }
    let req_ip = loopback_ip_literal(&req)?;
    registered.iter().map(String::as_str).find(|r| {
        Url::parse(r).ok().is_some_and(|reg| {
            reg.scheme() == "http"
                && loopback_ip_literal(&reg) == Some(req_ip)
                && reg.path() == req.path()
                && reg.query() == req.query()
        })
    })
}

/// The origin to allow in a consent page's CSP `form-action`, so the browser may follow the
/// redirect to the client after the form is posted: `https://host:port`, or `scheme:` for a
/// native app's private-use scheme.
pub fn csp_source(uri: &str) -> Option<String> {
    let url = Url::parse(uri).ok()?;
    match url.scheme() {
        "http" | "https" => Some(url.origin().ascii_serialization()),
        scheme
            if scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')) =>
        {
            Some(format!("{scheme}:"))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registration_rules() {
        for ok in [
            "https://app.example.com/callback",
            "https://app.example.com/cb?tenant=1",
            "http://127.0.0.1/cb",
            "http://[::1]:8000/cb",
            "http://localhost:3000/auth/gitlab/callback",
            "com.example.app:/oauth2redirect",
            "myapp://callback",
        ] {
            assert_eq!(validate(ok, false), Ok(()), "{ok}");
        }
        assert_eq!(
            validate("http://app.example.com/cb", false),
            Err(RedirectUriError::InsecureHttp)
        );
        assert_eq!(validate("http://app.example.com/cb", true), Ok(()));
        assert_eq!(
            validate("https://app.example.com/cb#x", false),
            Err(RedirectUriError::Fragment)
        );
        assert_eq!(
            validate("/relative", false),
            Err(RedirectUriError::NotAbsolute)
        );
        assert_eq!(
            validate("javascript:alert(1)", false),
            Err(RedirectUriError::ForbiddenScheme)
        );
        assert_eq!(
            validate("data:text/html,hi", false),
            Err(RedirectUriError::ForbiddenScheme)
        );
        assert_eq!(
            validate("urn:ietf:wg:oauth:2.0:oob", false),
            Err(RedirectUriError::OutOfBand)
        );
        assert_eq!(
            validate("urn:ietf:wg:oauth:2.0:oob:auto", true),
            Err(RedirectUriError::OutOfBand)
        );
        assert_eq!(
            validate("https://u:p@app.example.com/", false),
            Err(RedirectUriError::UserInfo)
        );
        assert_eq!(
            validate("https://a b/", false),
            Err(RedirectUriError::Invalid)
        );
    }

    #[test]
    fn lists_split_on_lines_and_dedupe() {
        let list = parse_list(
            "https://a.example/cb\r\nhttps://b.example/cb\n\nhttps://a.example/cb",
            false,
        )
        .unwrap();
        assert_eq!(list, vec!["https://a.example/cb", "https://b.example/cb"]);
        assert_eq!(
            parse_list("  ", false),
            Err((String::new(), RedirectUriError::Blank))
        );
        assert!(parse_list("https://ok.example/ http://bad.example/", false).is_err());
    }

    #[test]
    fn matching_is_exact_except_loopback_ports() {
        let reg = vec![
            "https://app.example.com/cb".to_string(),
            "http://127.0.0.1/native".to_string(),
        ];
        assert_eq!(
            find_match(&reg, "https://app.example.com/cb"),
            Some("https://app.example.com/cb")
        );
        for no in [
            "https://app.example.com/cb/",
            "https://APP.example.com/cb",
            "https://app.example.com/cb?x=1",
            "https://app.example.com/c",
            "https://app.example.com:443/cb",
            "http://app.example.com/cb",
            "http://attacker@127.0.0.1:5000/native",
            "http://127.0.0.1:5000/native/../x",
            "http://localhost:5000/native",
        ] {
            assert_eq!(find_match(&reg, no), None, "{no}");
        }
        assert_eq!(
            find_match(&reg, "http://127.0.0.1:51004/native"),
            Some("http://127.0.0.1/native")
        );
    }

    #[test]
    fn csp_sources() {
        assert_eq!(
            csp_source("https://app.example.com:8443/cb?x").as_deref(),
            Some("https://app.example.com:8443")
        );
        assert_eq!(
            csp_source("com.example.app:/cb").as_deref(),
            Some("com.example.app:")
        );
    }
}
