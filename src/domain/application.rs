//! OAuth applications (clients): what makes a valid registration.

use super::redirect_uri;
use super::scope::ScopeSet;
use super::user::{FieldErrors, validate_text};

/// An application as stored. `redirect_uris` keeps GitLab's newline-separated form.
#[derive(Clone, PartialEq, Eq)]
pub struct Application {
    pub id: i64,
    /// The OAuth `client_id` (GitLab's "Application ID").
    pub uid: String,
    pub secret_hash: Vec<u8>,
    pub name: String,
    pub redirect_uri: String,
    /// The scopes the application may request (a name since removed from the catalogue
    /// is dropped when the row is read, so it grants nothing).
    pub scopes: ScopeSet,
    pub confidential: bool,
    pub trusted: bool,
    pub require_pkce: bool,
    /// RFC 9126 §6 `require_pushed_authorization_requests`: only pushed requests.
    pub require_par: bool,
    /// The user who registered it; `None` for group and instance-wide applications.
    pub owner_id: Option<i64>,
    /// The group that owns it (GitLab's group applications), managed by its Owners.
    pub group_id: Option<i64>,
    /// Where to POST logout tokens (OpenID Connect Back-Channel Logout 1.0 §2.2).
    pub backchannel_logout_uri: Option<String>,
    /// Whether the logout token must carry `sid` (Doorward's always do).
    pub backchannel_logout_session_required: bool,
    /// SHA-256 of the RFC 7592 registration access token: set exactly for applications
    /// registered dynamically (RFC 7591), which nobody has vetted.
    pub registration_token_hash: Option<Vec<u8>>,
    /// The `token_endpoint_auth_method` a dynamic registration asked for (RFC 7591 §2), or
    /// `private_key_jwt` for any client that registered keys.
    pub token_endpoint_auth_method: Option<String>,
    /// RFC 7591 §2 `jwks`: the client's public keys as JSON text (validated when saved).
    pub jwks: Option<String>,
    /// RFC 7591 §2 `jwks_uri`: where the client's public keys are fetched from.
    pub jwks_uri: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("id", &self.id)
            .field("uid", &self.uid)
            .field("name", &self.name)
            .field("confidential", &self.confidential)
            .finish_non_exhaustive()
    }
}

/// Who owns a new application: the instance (the admin API), a user (their settings
/// page) or a group (its settings page).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApplicationOwner {
    Instance,
    User(i64),
    Group(i64),
}

impl ApplicationOwner {
    /// `(owner_id, group_id)` as stored.
    pub fn columns(self) -> (Option<i64>, Option<i64>) {
        match self {
            ApplicationOwner::Instance => (None, None),
            ApplicationOwner::User(id) => (Some(id), None),
            ApplicationOwner::Group(id) => (None, Some(id)),
        }
    }
}

/// `None` is the instance, `Some(user id)` a user: the form the older call sites use.
impl From<Option<i64>> for ApplicationOwner {
    fn from(owner_id: Option<i64>) -> Self {
        owner_id.map_or(ApplicationOwner::Instance, ApplicationOwner::User)
    }
}

impl Application {
    /// Registered through the admin API: neither a user's nor a group's, nor registered
    /// dynamically by anyone at all.
    pub fn is_instance_wide(&self) -> bool {
        self.owner_id.is_none() && self.group_id.is_none() && !self.is_dynamic()
    }

    /// Registered by RFC 7591 dynamic registration (or, later, any unvetted client).
    pub fn is_dynamic(&self) -> bool {
        self.registration_token_hash.is_some()
    }

    /// Whether the application may use `grant_type` at the token endpoint. Dynamically
    /// registered clients get only the code and refresh grants: anyone can register one,
    /// so a client-credentials or password token would be a token for anyone (the
    /// doorkeeper-openid_connect CVE-2026-44476 class).
    pub fn may_use_grant(&self, grant_type: &str) -> bool {
        !self.is_dynamic() || matches!(grant_type, "authorization_code" | "refresh_token")
    }

    /// RFC 7523 §2.2: the client authenticates with a JWT signed by a key it registered,
    /// never with a secret.
    pub fn uses_private_key_jwt(&self) -> bool {
        self.token_endpoint_auth_method.as_deref() == Some(PRIVATE_KEY_JWT)
    }

    /// Where the client's keys come from, as registered.
    pub fn keys(&self) -> ClientKeySource {
        match (&self.jwks, &self.jwks_uri) {
            (Some(jwks), _) => ClientKeySource::Jwks(jwks.clone()),
            (None, Some(uri)) => ClientKeySource::JwksUri(uri.clone()),
            (None, None) => ClientKeySource::None,
        }
    }

    /// The `token_endpoint_auth_method` the client uses (RFC 7591 §2; `client_secret_basic`
    /// for a confidential client that registered none, as GitLab's clients use it).
    pub fn auth_method(&self) -> &str {
        match self.token_endpoint_auth_method.as_deref() {
            Some(method) => method,
            None if self.confidential => "client_secret_basic",
            None => "none",
        }
    }

    pub fn redirect_uris(&self) -> Vec<String> {
        self.redirect_uri
            .split_whitespace()
            .map(str::to_string)
            .collect()
    }
}

/// RFC 7523 §2.2's `token_endpoint_auth_method`.
pub const PRIVATE_KEY_JWT: &str = "private_key_jwt";

/// The public keys a client registered (RFC 7591 §2: `jwks` or `jwks_uri`, never both).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum ClientKeySource {
    /// No keys: the client authenticates with a secret, or is public.
    #[default]
    None,
    /// A JWK Set, validated, as compact JSON text.
    Jwks(String),
    /// An `https` URL the set is fetched from.
    JwksUri(String),
}

impl ClientKeySource {
    pub fn jwks(&self) -> Option<&str> {
        match self {
            ClientKeySource::Jwks(text) => Some(text),
            _ => None,
        }
    }

    pub fn jwks_uri(&self) -> Option<&str> {
        match self {
            ClientKeySource::JwksUri(uri) => Some(uri),
            _ => None,
        }
    }

    /// Checks a registration's `jwks` (JSON text) and `jwks_uri`: exactly one of them for
    /// `private_key_jwt` (RFC 7591 §2), neither for another method. `allow_local` admits
    /// `http` and loopback or private hosts for `jwks_uri` (development instances).
    pub fn validate(
        private_key_jwt: bool,
        jwks: &str,
        jwks_uri: &str,
        allow_local: bool,
    ) -> Result<ClientKeySource, (&'static str, String)> {
        let (jwks, jwks_uri) = (jwks.trim(), jwks_uri.trim());
        match (private_key_jwt, jwks.is_empty(), jwks_uri.is_empty()) {
            (false, true, true) => Ok(ClientKeySource::None),
            (false, _, _) => Err((
                "jwks",
                "is only for the private_key_jwt token_endpoint_auth_method".into(),
            )),
            (true, true, true) => {
                Err(("jwks", "or jwks_uri is required for private_key_jwt".into()))
            }
            (true, false, false) => Err(("jwks", "and jwks_uri cannot both be given".into())),
            (true, false, true) => super::client_keys::ClientKeys::parse(jwks)
                .map(|keys| ClientKeySource::Jwks(keys.to_json()))
                .map_err(|why| ("jwks", why)),
            (true, true, false) if jwks_uri.chars().any(char::is_control) => {
                Err(("jwks_uri", "must not contain control characters".into()))
            }
            (true, true, false) => check_backchannel_uri(jwks_uri, allow_local)
                .map(|()| ClientKeySource::JwksUri(jwks_uri.to_string()))
                .map_err(|why| ("jwks_uri", why.to_string())),
        }
    }
}

/// A validated registration (create or update).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApplicationSettings {
    pub name: String,
    /// Newline-separated, each validated.
    pub redirect_uri: String,
    pub scopes: ScopeSet,
    pub confidential: bool,
    pub require_pkce: bool,
    /// RFC 9126 §6; `false` from [`validate_settings`], set by the callers that offer it.
    pub require_par: bool,
    pub backchannel_logout_uri: Option<String>,
    pub backchannel_logout_session_required: bool,
    /// The keys of a `private_key_jwt` client; `None` from [`validate_settings`].
    pub keys: ClientKeySource,
}

impl ApplicationSettings {
    /// The stored `token_endpoint_auth_method` these settings imply: `private_key_jwt` when
    /// keys are registered (such a client is confidential and has no usable secret).
    pub fn auth_method_column(&self) -> Option<&'static str> {
        (self.keys != ClientKeySource::None).then_some(PRIVATE_KEY_JWT)
    }

    /// Adds the authentication method a form or API call names (`""` keeps the
    /// `confidential` choice): `private_key_jwt` with its `jwks` or `jwks_uri`, or a secret
    /// method (confidential), or `none` (public).
    pub fn with_auth_method(
        mut self,
        method: &str,
        jwks: &str,
        jwks_uri: &str,
        allow_local: bool,
    ) -> Result<ApplicationSettings, FieldErrors> {
        let mut errors = FieldErrors::default();
        let method = method.trim();
        match method {
            "" | PRIVATE_KEY_JWT | "client_secret_basic" | "client_secret_post" => {}
            "none" => self.confidential = false,
            _ => errors.add(
                "token_endpoint_auth_method",
                "must be client_secret_basic, client_secret_post, private_key_jwt or none",
            ),
        }
        if matches!(
            method,
            PRIVATE_KEY_JWT | "client_secret_basic" | "client_secret_post"
        ) {
            self.confidential = true;
        }
        match ClientKeySource::validate(method == PRIVATE_KEY_JWT, jwks, jwks_uri, allow_local) {
            Ok(keys) => self.keys = keys,
            Err((field, why)) => errors.add(field, why),
        }
        if errors.is_empty() {
            Ok(self)
        } else {
            Err(errors)
        }
    }

    /// Adds the Back-Channel Logout registration (§2.2): an absolute `https` URI without
    /// a fragment; `http` and loopback or private hosts only when the instance allows
    /// local ones (`allow_local`). Blank means none.
    pub fn with_backchannel_logout(
        mut self,
        uri: &str,
        session_required: bool,
        allow_local: bool,
    ) -> Result<ApplicationSettings, FieldErrors> {
        let uri = uri.trim();
        self.backchannel_logout_session_required = session_required;
        if uri.is_empty() {
            self.backchannel_logout_uri = None;
            return Ok(self);
        }
        let mut errors = FieldErrors::default();
        match check_backchannel_uri(uri, allow_local) {
            Ok(()) => self.backchannel_logout_uri = Some(uri.to_string()),
            Err(why) => errors.add("backchannel_logout_uri", why),
        }
        if errors.is_empty() {
            Ok(self)
        } else {
            Err(errors)
        }
    }
}

fn check_backchannel_uri(uri: &str, allow_local: bool) -> Result<(), &'static str> {
    let parsed = url::Url::parse(uri).map_err(|_| "must be an absolute URI")?;
    if parsed.fragment().is_some() {
        return Err("must not contain a fragment");
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err("must not contain credentials");
    }
    match parsed.scheme() {
        "https" => {}
        "http" if allow_local => {}
        _ => return Err("must use https"),
    }
    let local = match parsed.host() {
        None => return Err("must name a host"),
        Some(url::Host::Domain(d)) => {
            let d = d.to_ascii_lowercase();
            d == "localhost" || d.ends_with(".localhost")
        }
        Some(url::Host::Ipv4(ip)) => !super::net::is_global(ip.into()),
        Some(url::Host::Ipv6(ip)) => !super::net::is_global(ip.into()),
    };
    if local && !allow_local {
        return Err("must not name a loopback or private address");
    }
    Ok(())
}

/// Validates the fields of a registration form or API call.
pub fn validate_settings(
    name: &str,
    redirect_uris: &str,
    scopes: &str,
    confidential: bool,
    require_pkce: bool,
    allow_http: bool,
) -> Result<ApplicationSettings, FieldErrors> {
    let mut errors = FieldErrors::default();
    let name = name.trim();
    validate_text("name", name, true, &mut errors);
    let uris = match redirect_uri::parse_list(redirect_uris, allow_http) {
        Ok(list) => list,
        Err((uri, e)) => {
            let what = if uri.is_empty() {
                e.to_string()
            } else {
                format!("{uri} {e}")
            };
            errors.add("redirect_uri", what);
            Vec::new()
        }
    };
    let scopes = match ScopeSet::parse_non_empty(scopes) {
        Ok(s) => s,
        Err(e) => {
            errors.add("scopes", e.to_string());
            ScopeSet::default()
        }
    };
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(ApplicationSettings {
        name: name.to_string(),
        redirect_uri: uris.join("\n"),
        scopes,
        confidential,
        require_pkce,
        require_par: false,
        backchannel_logout_uri: None,
        backchannel_logout_session_required: false,
        keys: ClientKeySource::None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_validated_together() {
        let ok = validate_settings(
            "App",
            "https://a.example/cb\nhttp://127.0.0.1/cb",
            "read_user openid",
            true,
            false,
            false,
        )
        .unwrap();
        assert_eq!(ok.redirect_uri, "https://a.example/cb\nhttp://127.0.0.1/cb");
        assert_eq!(ok.scopes.to_string(), "read_user openid");
        let errs =
            validate_settings("", "http://a.example/cb", "bogus", true, false, false).unwrap_err();
        let fields: Vec<&str> = errs.0.iter().map(|(f, _)| *f).collect();
        assert_eq!(fields, ["name", "redirect_uri", "scopes"]);
    }
}
