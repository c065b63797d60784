//! RFC 7591 client metadata: what a dynamic registration (or an RFC 7592 update) may ask
//! for. Anyone may register, so the rules are narrow: redirect URIs that cannot send a
//! code anywhere dangerous, the code flow only, and scopes a user can reasonably grant to
//! an unvetted client (never `sudo`, `admin_mode` or the like).

use serde_json::Value;

use super::redirect_uri::{self, RedirectUriError};
use super::scope::ScopeSet;
use super::user::{FieldErrors, validate_text};

/// The scopes a dynamically registered client may hold (issue 13); a registration that
/// names no `scope` may request any of them.
pub const REGISTRABLE_SCOPES: &str = "api read_api read_user openid profile email";

/// RFC 7591 §2 `token_endpoint_auth_method`, as far as Doorward offers it to dynamic
/// clients.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthMethod {
    ClientSecretBasic,
    ClientSecretPost,
    /// RFC 7523 §2.2: a JWT signed by a key the client registered (`jwks` or `jwks_uri`).
    PrivateKeyJwt,
    /// A public client (PKCE, no secret).
    None,
}

impl AuthMethod {
    pub fn parse(s: &str) -> Option<AuthMethod> {
        Some(match s {
            "client_secret_basic" => AuthMethod::ClientSecretBasic,
            "client_secret_post" => AuthMethod::ClientSecretPost,
            "private_key_jwt" => AuthMethod::PrivateKeyJwt,
            "none" => AuthMethod::None,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::ClientSecretBasic => "client_secret_basic",
            AuthMethod::ClientSecretPost => "client_secret_post",
            AuthMethod::PrivateKeyJwt => "private_key_jwt",
            AuthMethod::None => "none",
        }
    }

    /// Whether the client authenticates (with a secret or a key): not a public client.
    pub fn is_confidential(self) -> bool {
        self != AuthMethod::None
    }

    /// Whether the client gets a secret.
    pub fn has_secret(self) -> bool {
        matches!(
            self,
            AuthMethod::ClientSecretBasic | AuthMethod::ClientSecretPost
        )
    }
}

/// The grant types every dynamic client has (the only ones it may use).
pub const GRANT_TYPES: [&str; 2] = ["authorization_code", "refresh_token"];

/// Validated client metadata.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientMetadata {
    pub redirect_uris: Vec<String>,
    pub token_endpoint_auth_method: AuthMethod,
    pub client_name: Option<String>,
    /// The registered scopes (all of [`REGISTRABLE_SCOPES`] when none were named).
    pub scopes: ScopeSet,
    /// RFC 9126 §6 `require_pushed_authorization_requests` (default false).
    pub require_par: bool,
    /// RFC 7591 §2 `jwks`, as JSON text (checked with the method by
    /// [`ClientKeySource::validate`](super::application::ClientKeySource::validate)).
    pub jwks: Option<String>,
    /// RFC 7591 §2 `jwks_uri`.
    pub jwks_uri: Option<String>,
}

/// RFC 7591 §3.2.2: a refused registration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegistrationError {
    /// `invalid_redirect_uri` or `invalid_client_metadata`.
    pub error: &'static str,
    pub description: String,
}

impl RegistrationError {
    pub fn metadata(description: impl Into<String>) -> RegistrationError {
        RegistrationError {
            error: "invalid_client_metadata",
            description: description.into(),
        }
    }

    fn redirect(description: impl Into<String>) -> RegistrationError {
        RegistrationError {
            error: "invalid_redirect_uri",
            description: description.into(),
        }
    }
}

/// Reads a registration request's JSON (RFC 7591 §2, §3.1). Unknown members are ignored
/// (§2: "the authorization server MUST ignore any client metadata it does not
/// understand"); known ones with a wrong type or value refuse the whole registration.
pub fn parse(body: &Value) -> Result<ClientMetadata, RegistrationError> {
    let Value::Object(m) = body else {
        return Err(RegistrationError::metadata(
            "The registration must be a JSON object.",
        ));
    };
    let text = |name: &str| -> Result<Option<&str>, RegistrationError> {
        match m.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            Some(_) => Err(RegistrationError::metadata(format!(
                "{name} must be a string."
            ))),
        }
    };
    let list = |name: &str| -> Result<Option<Vec<&str>>, RegistrationError> {
        match m.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| v.as_str())
                .collect::<Option<Vec<&str>>>()
                .map(Some)
                .ok_or_else(|| {
                    RegistrationError::metadata(format!("{name} must be an array of strings."))
                }),
            Some(_) => Err(RegistrationError::metadata(format!(
                "{name} must be an array of strings."
            ))),
        }
    };

    let redirect_uris = match m.get("redirect_uris") {
        None | Some(Value::Null) => {
            return Err(RegistrationError::redirect("redirect_uris is required."));
        }
        Some(Value::Array(items)) => {
            let uris: Option<Vec<&str>> = items.iter().map(|v| v.as_str()).collect();
            uris.ok_or_else(|| {
                RegistrationError::redirect("redirect_uris must be an array of strings.")
            })?
        }
        Some(_) => {
            return Err(RegistrationError::redirect(
                "redirect_uris must be an array of strings.",
            ));
        }
    };
    if redirect_uris.is_empty() {
        return Err(RegistrationError::redirect(
            "redirect_uris must name at least one URI.",
        ));
    }
    if redirect_uris.len() > 20 {
        return Err(RegistrationError::redirect(
            "redirect_uris lists too many URIs (at most 20).",
        ));
    }
    let mut unique: Vec<String> = Vec::with_capacity(redirect_uris.len());
    for uri in redirect_uris {
        // Every URI must be acceptable, even beside a good one: the client chooses which
        // one a code goes to.
        check_redirect_uri(uri)
            .map_err(|e| RegistrationError::redirect(format!("{uri:?} {e}.")))?;
        if !unique.iter().any(|u| u == uri) {
            unique.push(uri.to_string());
        }
    }

    let token_endpoint_auth_method = match text("token_endpoint_auth_method")? {
        // §2: the default is client_secret_basic.
        None => AuthMethod::ClientSecretBasic,
        Some(s) => AuthMethod::parse(s).ok_or_else(|| {
            RegistrationError::metadata(format!(
                "token_endpoint_auth_method {s:?} is not supported (client_secret_basic, client_secret_post, private_key_jwt or none)."
            ))
        })?,
    };
    let grants = list("grant_types")?.unwrap_or_default();
    let response_types = list("response_types")?.unwrap_or_default();
    check_grants_and_response_types(&grants, &response_types)
        .map_err(RegistrationError::metadata)?;
    let scopes = registrable_scopes(text("scope")?).map_err(RegistrationError::metadata)?;
    let client_name = match text("client_name")?
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        None => None,
        Some(name) => {
            let mut errors = FieldErrors::default();
            validate_text("client_name", name, false, &mut errors);
            if let Some((_, why)) = errors.0.first() {
                return Err(RegistrationError::metadata(format!("client_name {why}.")));
            }
            Some(name.to_string())
        }
    };
    let require_par = match m.get("require_pushed_authorization_requests") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            return Err(RegistrationError::metadata(
                "require_pushed_authorization_requests must be a boolean.",
            ));
        }
    };
    let jwks = match m.get("jwks") {
        None | Some(Value::Null) => None,
        Some(set @ Value::Object(_)) => Some(set.to_string()),
        Some(_) => {
            return Err(RegistrationError::metadata(
                "jwks must be a JWK Set object.",
            ));
        }
    };
    Ok(ClientMetadata {
        redirect_uris: unique,
        token_endpoint_auth_method,
        client_name,
        scopes,
        require_par,
        jwks,
        jwks_uri: text("jwks_uri")?.map(str::to_string),
    })
}

/// The grant and response types an unvetted client (registered, or named by a metadata
/// document) may list: only the code flow and refresh. `Err` says why, for people.
pub fn check_grants_and_response_types<S: AsRef<str>>(
    grant_types: &[S],
    response_types: &[S],
) -> Result<(), String> {
    if let Some(other) = grant_types
        .iter()
        .find(|g| !GRANT_TYPES.contains(&g.as_ref()))
    {
        return Err(format!(
            "grant_types {:?} is not available to dynamically registered clients (authorization_code and refresh_token only).",
            other.as_ref()
        ));
    }
    if response_types.iter().any(|t| t.as_ref() != "code") {
        return Err("response_types must be [\"code\"].".into());
    }
    Ok(())
}

/// The scopes an unvetted client holds: those of its `scope` (a subset of
/// [`REGISTRABLE_SCOPES`]), or all of those when it names none.
pub fn registrable_scopes(scope: Option<&str>) -> Result<ScopeSet, String> {
    let allowed = ScopeSet::from_stored(REGISTRABLE_SCOPES);
    let Some(text) = scope.map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok(allowed);
    };
    if let Some(other) = text
        .split(' ')
        .find(|n| !n.is_empty() && !allowed.contains(n))
    {
        return Err(format!(
            "scope {other:?} cannot be granted to a dynamically registered client (allowed: {REGISTRABLE_SCOPES})."
        ));
    }
    ScopeSet::parse(text).map_err(|e| e.to_string())
}

/// Issue 13's rule for dynamic clients: absolute, no fragment, no user information;
/// `https` anywhere, `http` only on a loopback host (RFC 8252 §7.3), private-use schemes
/// of native apps (§7.1); never `javascript:`, `data:` and the like. No instance setting
/// widens it: `DOORWARD_ALLOW_HTTP_REDIRECT_URIS` is for applications someone vetted.
pub fn check_redirect_uri(uri: &str) -> Result<(), RedirectUriError> {
    redirect_uri::validate(uri, false)
}

/// A client with no `client_name` is shown by where its codes go.
pub fn default_name(redirect_uri: &str) -> String {
    let host = url::Url::parse(redirect_uri)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_else(|| "unknown host".to_string());
    format!("Dynamic client for {host}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn err(body: Value) -> RegistrationError {
        parse(&body).unwrap_err()
    }

    #[test]
    fn the_mcp_sdks_registration_is_accepted_with_defaults_filled() {
        let m = parse(&json!({
            "redirect_uris": ["http://127.0.0.1:53682/callback", "http://localhost/cb", "https://app.example/cb"],
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "client_name": "Claude",
            "application_type": "native",
            "unknown_member": {"ignored": true},
        }))
        .unwrap();
        assert_eq!(m.token_endpoint_auth_method, AuthMethod::None);
        assert_eq!(m.scopes.to_string(), REGISTRABLE_SCOPES);
        assert_eq!(m.redirect_uris.len(), 3);
        let m =
            parse(&json!({"redirect_uris": ["https://a.example/cb"], "scope": "read_user openid"}))
                .unwrap();
        assert_eq!(m.token_endpoint_auth_method, AuthMethod::ClientSecretBasic);
        assert_eq!(m.scopes.to_string(), "read_user openid");
        assert_eq!(m.client_name, None);
    }

    #[test]
    fn dangerous_or_malformed_redirect_uris_refuse_the_whole_registration() {
        for bad in [
            "javascript:alert(1)",
            "data:text/html,x",
            "/relative",
            "http://app.example/cb",
            "http://10.0.0.1/cb",
            "https://app.example/cb#frag",
            "https://user@app.example/cb",
            "https://app.example/\u{0}",
        ] {
            let e = err(json!({"redirect_uris": ["https://good.example/cb", bad]}));
            assert_eq!(e.error, "invalid_redirect_uri", "{bad}");
        }
        assert_eq!(err(json!({})).error, "invalid_redirect_uri");
        assert_eq!(
            err(json!({"redirect_uris": []})).error,
            "invalid_redirect_uri"
        );
        assert_eq!(
            err(json!({"redirect_uris": "https://a.example/cb"})).error,
            "invalid_redirect_uri"
        );
        assert!(
            parse(&json!({"redirect_uris": ["http://[::1]:8080/cb", "com.example.app:/cb"]}))
                .is_ok()
        );
    }

    #[test]
    fn other_grants_methods_response_types_and_admin_scopes_are_invalid_metadata() {
        let ok = json!(["https://a.example/cb"]);
        for body in [
            json!({"redirect_uris": ok, "scope": "sudo"}),
            json!({"redirect_uris": ok, "scope": "api admin_mode"}),
            json!({"redirect_uris": ok, "scope": "nonsense"}),
            json!({"redirect_uris": ok, "token_endpoint_auth_method": "client_secret_jwt"}),
            json!({"redirect_uris": ok, "jwks": "{}"}),
            json!({"redirect_uris": ok, "token_endpoint_auth_method": 5}),
            json!({"redirect_uris": ok, "grant_types": ["client_credentials"]}),
            json!({"redirect_uris": ok, "grant_types": ["authorization_code", "password"]}),
            json!({"redirect_uris": ok, "response_types": ["token"]}),
            json!({"redirect_uris": ok, "client_name": "<script>"}),
            json!({"redirect_uris": ok, "client_name": "a\u{0}b"}),
            json!([1, 2]),
        ] {
            assert_eq!(
                parse(&body).unwrap_err().error,
                "invalid_client_metadata",
                "{body}"
            );
        }
    }
}
