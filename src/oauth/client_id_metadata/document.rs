//! Client ID metadata documents: which `client_id`s are acceptable document URLs, and
//! which answers are acceptable documents (draft-ietf-oauth-client-id-metadata-document
//! §3, §4.1). No I/O: the fetching and caching are in the parent module.

use serde_json::{Map, Value};
use url::{Host, Url};

use crate::domain::net::{Reach, is_loopback_name};
use crate::domain::redirect_uri;

/// As for registered applications (`domain::redirect_uri::parse_list`).
const MAX_REDIRECT_URIS: usize = 20;
const MAX_URL_LENGTH: usize = 2000;

/// Why a `client_id` URL cannot be used. The text is for people (an error page, the
/// `error_description` of an OAuth error, the log).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CimdError {
    /// The `client_id` is not an acceptable metadata document URL (§3).
    #[error("the client_id is not a valid client metadata document URL: {0}")]
    InvalidUrl(String),
    /// Its host is, or resolves to, an address Doorward does not call (§6.5).
    #[error("the client metadata document at {url} is not fetched: {reason}")]
    Refused { url: String, reason: String },
    /// The fetch failed: network, TLS, time, size, status or redirect (§4).
    #[error("the client metadata document at {url} could not be fetched: {reason}")]
    Fetch { url: String, reason: String },
    /// The answer is not an acceptable document (§4.1).
    #[error("the client metadata document at {url} is invalid: {reason}")]
    Invalid { url: String, reason: String },
}

/// A fetched and checked document: what Doorward keeps of it. The client is public
/// (`token_endpoint_auth_method` is `none`); unknown members are dropped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientMetadataDocument {
    /// The document's URL, equal to its `client_id` member.
    pub client_id: String,
    /// At least one; each `https`, or `http` on a loopback host.
    pub redirect_uris: Vec<String>,
    pub client_name: Option<String>,
    /// An `http(s)` URL.
    pub client_uri: Option<String>,
    /// An `http(s)` URL.
    pub logo_uri: Option<String>,
    /// Space-separated, as sent; not checked against the scope catalogue here.
    pub scope: Option<String>,
    /// As listed; `["authorization_code"]` when absent (RFC 7591 §2).
    pub grant_types: Vec<String>,
    /// As listed; `["code"]` when absent (RFC 7591 §2).
    pub response_types: Vec<String>,
}

/// True when `client_id` is meant as a metadata document URL (it starts with `https://` or
/// `http://`), so it goes to [`ClientIdMetadataDocuments::get`], which refuses the
/// unacceptable ones with a reason, instead of the applications table. Doorward's own
/// client IDs are never URLs (§6.9: generated IDs must not start with `https://`).
pub fn is_metadata_document_url(client_id: &str) -> bool {
    let starts = |prefix: &str| {
        client_id
            .get(..prefix.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(prefix))
    };
    starts("https://") || starts("http://")
}

/// Checks a `client_id` as a document URL (§3, §6.5) without any network: the URL to
/// fetch, or why not. IP literals are checked here in whatever spelling the parser turned
/// them into; names are checked when resolved (`http::outgoing`).
pub fn validate_url(client_id: &str, allow_loopback: bool) -> Result<Url, CimdError> {
    let invalid = |m: &str| Err(CimdError::InvalidUrl(m.into()));
    if client_id.len() > MAX_URL_LENGTH {
        return invalid("it is longer than 2000 characters");
    }
    if client_id
        .chars()
        .any(|c| c.is_whitespace() || c.is_control())
    {
        return invalid("it contains spaces or control characters");
    }
    let Ok(url) = Url::parse(client_id) else {
        return invalid("it is not an absolute URL");
    };
    if url.scheme() != "https" {
        return invalid("it must use https");
    }
    if !url.username().is_empty() || url.password().is_some() {
        return invalid("it must not contain a user name or password");
    }
    if url.fragment().is_some() || client_id.contains('#') {
        return invalid("it must not contain a fragment");
    }
    if has_dot_segment(client_id) {
        return invalid("its path must not contain . or .. segments");
    }
    if url.path() == "/" || url.path().is_empty() {
        return invalid("it must have a path, such as https://app.example/client.json");
    }
    let reach = match allow_loopback {
        true => Reach::GlobalAndLoopback,
        false => Reach::Global,
    };
    let refused = |host: String| CimdError::Refused {
        url: client_id.into(),
        reason: format!("{host} is not a public address"),
    };
    match url.host() {
        Some(Host::Ipv4(ip)) if !reach.allows(ip.into()) => return Err(refused(ip.to_string())),
        Some(Host::Ipv6(ip)) if !reach.allows(ip.into()) => return Err(refused(ip.to_string())),
        Some(Host::Domain(d)) if !allow_loopback && is_loopback_name(d) => {
            return Err(refused(d.to_string()));
        }
        Some(_) => {}
        None => return invalid("it has no host"),
    }
    if url.as_str() != client_id {
        return Err(CimdError::InvalidUrl(format!(
            "it must be written in its normalized form, {url}"
        )));
    }
    Ok(url)
}

/// True when the path of the (unparsed) URL has a `.` or `..` segment, percent-encoded or
/// not; the parser would silently remove them.
fn has_dot_segment(raw: &str) -> bool {
    let after_scheme = raw.split_once("://").map_or(raw, |(_, rest)| rest);
    let Some(slash) = after_scheme.find('/') else {
        return false;
    };
    let path = &after_scheme[slash..];
    let path = path.split(['?', '#']).next().unwrap_or_default();
    path.split('/').any(|segment| {
        let s = segment.to_ascii_lowercase().replace("%2e", ".");
        s == "." || s == ".."
    })
}

/// Checks a document's body (§4.1) for the URL it was fetched from: the document, or the
/// reason it is refused.
pub fn parse_document(client_id: &str, body: &[u8]) -> Result<ClientMetadataDocument, String> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| format!("it is not valid JSON ({e})"))?;
    let Value::Object(doc) = value else {
        return Err("it is not a JSON object".into());
    };
    match doc.get("client_id") {
        Some(Value::String(id)) if id == client_id => {}
        Some(Value::String(id)) => {
            return Err(format!(
                "its client_id {id:?} is not the document's URL {client_id:?}"
            ));
        }
        Some(_) => return Err("its client_id is not a string".into()),
        None => return Err("it has no client_id".into()),
    }
    for forbidden in ["client_secret", "client_secret_expires_at"] {
        if doc.contains_key(forbidden) {
            return Err(format!(
                "it contains {forbidden}; a metadata document cannot carry a shared secret"
            ));
        }
    }
    match doc.get("token_endpoint_auth_method") {
        None | Some(Value::Null) => {}
        Some(Value::String(m)) if m == "none" => {}
        Some(Value::String(m)) if m.starts_with("client_secret") => {
            return Err(format!(
                "its token_endpoint_auth_method {m} relies on a shared secret, which a \
                 metadata document cannot establish; use none"
            ));
        }
        Some(Value::String(m)) => {
            return Err(format!(
                "its token_endpoint_auth_method {m} is not supported; use none (a public \
                 client with PKCE)"
            ));
        }
        Some(_) => return Err("its token_endpoint_auth_method is not a string".into()),
    }
    let redirect_uris = strings(&doc, "redirect_uris")?.unwrap_or_default();
    if redirect_uris.is_empty() {
        return Err("it lists no redirect_uris".into());
    }
    if redirect_uris.len() > MAX_REDIRECT_URIS {
        return Err(format!(
            "it lists more than {MAX_REDIRECT_URIS} redirect_uris"
        ));
    }
    for uri in &redirect_uris {
        check_redirect_uri(uri).map_err(|m| format!("its redirect URI {uri:?} {m}"))?;
    }
    let client_uri = string(&doc, "client_uri")?;
    let logo_uri = string(&doc, "logo_uri")?;
    for (name, uri) in [("client_uri", &client_uri), ("logo_uri", &logo_uri)] {
        if let Some(uri) = uri
            && !Url::parse(uri).is_ok_and(|u| matches!(u.scheme(), "https" | "http"))
        {
            return Err(format!("its {name} is not an http(s) URL"));
        }
    }
    Ok(ClientMetadataDocument {
        client_id: client_id.into(),
        redirect_uris,
        client_name: string(&doc, "client_name")?,
        client_uri,
        logo_uri,
        scope: string(&doc, "scope")?,
        grant_types: strings(&doc, "grant_types")?
            .unwrap_or_else(|| vec!["authorization_code".into()]),
        response_types: strings(&doc, "response_types")?.unwrap_or_else(|| vec!["code".into()]),
    })
}

/// Absolute, no fragment, no user information; `https`, or `http` on a loopback host
/// (127.0.0.0/8, `[::1]`, `localhost`, any port). Private-use schemes are refused: a
/// document anyone can publish must not claim a native app's scheme.
fn check_redirect_uri(uri: &str) -> Result<(), String> {
    redirect_uri::validate(uri, false).map_err(|e| e.to_string())?;
    match Url::parse(uri).map(|u| u.scheme().to_string()).as_deref() {
        Ok("https" | "http") => Ok(()),
        _ => Err("must use https (or http on a loopback address)".into()),
    }
}

/// An optional string member (null counts as absent).
fn string(doc: &Map<String, Value>, name: &str) -> Result<Option<String>, String> {
    match doc.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(format!("its {name} is not a string")),
    }
}

/// An optional array-of-strings member (null counts as absent).
fn strings(doc: &Map<String, Value>, name: &str) -> Result<Option<Vec<String>>, String> {
    let bad = || format!("its {name} is not an array of strings");
    match doc.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map(str::to_string).ok_or_else(bad))
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(_) => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "https://app.example.com/oauth/client.json";

    fn doc(extra: &str) -> String {
        format!(r#"{{"client_id":"{ID}","redirect_uris":["https://app.example.com/cb"]{extra}}}"#)
    }

    fn refused(client_id: &str, allow_loopback: bool) -> bool {
        matches!(
            validate_url(client_id, allow_loopback),
            Err(CimdError::Refused { .. })
        )
    }

    #[test]
    fn which_client_ids_are_urls() {
        assert!(is_metadata_document_url(ID));
        assert!(is_metadata_document_url("HTTPS://app.example.com/x"));
        assert!(is_metadata_document_url("http://app.example.com/x"));
        for no in ["", "abc123", "https:/x", "ftp://x/y", "https", "é"] {
            assert!(!is_metadata_document_url(no), "{no}");
        }
    }

    #[test]
    fn acceptable_urls() {
        for ok in [
            ID,
            "https://app.example.com/client",
            "https://app.example.com:8443/c?tenant=1",
            "https://app.example.com/.well-known/client",
        ] {
            assert_eq!(
                validate_url(ok, false).map(String::from),
                Ok(ok.to_string()),
                "{ok}"
            );
        }
        assert!(validate_url("https://127.0.0.1:8443/client", true).is_ok());
        assert!(validate_url("https://[::1]/client", true).is_ok());
        assert!(validate_url("https://localhost:3000/client", true).is_ok());
    }

    #[test]
    fn unacceptable_urls_say_why() {
        for (url, why) in [
            ("http://app.example.com/client", "https"),
            ("https://app.example.com/", "path"),
            ("https://app.example.com", "path"),
            ("https://app.example.com/c#x", "fragment"),
            ("https://app.example.com/c#", "fragment"),
            ("https://u:p@app.example.com/c", "user name"),
            ("https://u@app.example.com/c", "user name"),
            ("https://app.example.com/a/../c", ". or .."),
            ("https://app.example.com/./c", ". or .."),
            ("https://app.example.com/a/%2E%2e/c", ". or .."),
            ("https://APP.example.com/c", "normalized"),
            ("https://app.example.com:443/c", "normalized"),
            ("https://app.example.com/a b", "spaces"),
            ("/client.json", "absolute"),
            (r"https://app.example.com\c", "normalized"),
            ("https://app.example.com/c\n", "control"),
        ] {
            let e = validate_url(url, false).unwrap_err();
            assert!(matches!(e, CimdError::InvalidUrl(_)), "{url}: {e}");
            assert!(e.to_string().contains(why), "{url}: {e}");
        }
    }

    #[test]
    fn non_public_hosts_are_refused_in_any_spelling() {
        for url in [
            "https://127.0.0.1/x",
            "https://2130706433/x",
            "https://0x7f.1/x",
            "https://0177.0.0.1/x",
            "https://[::ffff:127.0.0.1]/x",
            "https://[::1]/x",
            "https://localhost/x",
            "https://app.localhost/x",
            "https://10.1.2.3/x",
            "https://172.16.0.1/x",
            "https://192.168.0.1/x",
            "https://169.254.169.254/latest/meta-data",
            "https://100.64.0.1/x",
            "https://0.0.0.0/x",
            "https://[fd00::1]/x",
            "https://[fe80::1]/x",
            "https://[::]/x",
        ] {
            assert!(refused(url, false), "{url}: {:?}", validate_url(url, false));
        }
        // The loopback allowance is loopback only.
        for url in [
            "https://10.1.2.3/x",
            "https://169.254.169.254/x",
            "https://[fd00::1]/x",
            "https://[::ffff:10.0.0.1]/x",
        ] {
            assert!(refused(url, true), "{url}");
        }
        // Another spelling of a loopback address is still refused with the allowance on:
        // a client_id compares as a string, so only the parser's own form is accepted.
        for url in ["https://2130706433/x", "https://0x7f.1/x"] {
            assert!(validate_url(url, true).is_err(), "{url}");
        }
        assert!(validate_url("http://127.0.0.1/x", true).is_err());
    }

    #[test]
    fn a_good_document() {
        let d = parse_document(ID, doc("").as_bytes()).unwrap();
        assert_eq!(d.client_id, ID);
        assert_eq!(d.redirect_uris, vec!["https://app.example.com/cb"]);
        assert_eq!(d.grant_types, vec!["authorization_code"]);
        assert_eq!(d.response_types, vec!["code"]);
        assert_eq!(d.client_name, None);

        let full = doc(
            r#","client_name":"App","client_uri":"https://app.example.com","logo_uri":"https://app.example.com/l.png","scope":"read_user openid","grant_types":["authorization_code","refresh_token"],"response_types":["code"],"token_endpoint_auth_method":"none","software_id":"x","contacts":["a@b"]"#,
        );
        let d = parse_document(ID, full.as_bytes()).unwrap();
        assert_eq!(d.client_name.as_deref(), Some("App"));
        assert_eq!(d.scope.as_deref(), Some("read_user openid"));
        assert_eq!(d.grant_types, vec!["authorization_code", "refresh_token"]);
        assert_eq!(d.logo_uri.as_deref(), Some("https://app.example.com/l.png"));

        let loopback = format!(
            r#"{{"client_id":"{ID}","redirect_uris":["http://127.0.0.1/cb","http://localhost:3000/cb","http://[::1]:9/cb","https://x.example/cb"]}}"#
        );
        assert!(parse_document(ID, loopback.as_bytes()).is_ok());
    }

    #[test]
    fn bad_documents_say_why() {
        let cases: Vec<(String, &str)> = vec![
            ("not json".into(), "not valid JSON"),
            ("[]".into(), "not a JSON object"),
            (r#"{"redirect_uris":["https://a.example/cb"]}"#.into(), "no client_id"),
            (
                r#"{"client_id":"https://app.example.com/oauth/client.json/","redirect_uris":["https://a.example/cb"]}"#
                    .into(),
                "is not the document's URL",
            ),
            (
                r#"{"client_id":"https://other.example/c","redirect_uris":["https://a.example/cb"]}"#.into(),
                "is not the document's URL",
            ),
            (format!(r#"{{"client_id":"{ID}"}}"#), "no redirect_uris"),
            (format!(r#"{{"client_id":"{ID}","redirect_uris":[]}}"#), "no redirect_uris"),
            (format!(r#"{{"client_id":"{ID}","redirect_uris":"https://a.example/cb"}}"#), "array of strings"),
            (format!(r#"{{"client_id":"{ID}","redirect_uris":[1]}}"#), "array of strings"),
            (format!(r#"{{"client_id":"{ID}","redirect_uris":["http://a.example/cb"]}}"#), "must use https"),
            (format!(r#"{{"client_id":"{ID}","redirect_uris":["https://a.example/cb#f"]}}"#), "fragment"),
            (format!(r#"{{"client_id":"{ID}","redirect_uris":["https://u@a.example/cb"]}}"#), "user information"),
            (format!(r#"{{"client_id":"{ID}","redirect_uris":["/cb"]}}"#), "absolute"),
            (format!(r#"{{"client_id":"{ID}","redirect_uris":["com.example.app:/cb"]}}"#), "must use https"),
            (format!(r#"{{"client_id":"{ID}","redirect_uris":["javascript:alert(1)"]}}"#), "forbidden"),
            (doc(r#","token_endpoint_auth_method":"client_secret_basic""#), "shared secret"),
            (doc(r#","token_endpoint_auth_method":"client_secret_post""#), "shared secret"),
            (doc(r#","token_endpoint_auth_method":"client_secret_jwt""#), "shared secret"),
            (doc(r#","token_endpoint_auth_method":"private_key_jwt""#), "not supported"),
            (doc(r#","token_endpoint_auth_method":7"#), "not a string"),
            (doc(r#","client_secret":"s3cret""#), "client_secret"),
            (doc(r#","client_secret_expires_at":0"#), "client_secret_expires_at"),
            (doc(r#","client_name":["App"]"#), "client_name is not a string"),
            (doc(r#","logo_uri":"javascript:alert(1)""#), "logo_uri is not an http(s) URL"),
            (doc(r#","grant_types":"authorization_code""#), "grant_types"),
        ];
        for (body, why) in cases {
            let e = parse_document(ID, body.as_bytes()).unwrap_err();
            assert!(e.contains(why), "{body}: {e}");
        }
        let many: Vec<String> = (0..21)
            .map(|i| format!("\"https://a.example/{i}\""))
            .collect();
        let body = format!(
            r#"{{"client_id":"{ID}","redirect_uris":[{}]}}"#,
            many.join(",")
        );
        assert!(
            parse_document(ID, body.as_bytes())
                .unwrap_err()
                .contains("more than 20")
        );
    }
}
