//! Configuration: an optional TOML file, then `DOORWARD_*` environment variables (which win),
//! then defaults. Every key has the same name in both places: `external_url` in the file is
//! `DOORWARD_EXTERNAL_URL` in the environment.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::domain::secret::SecretString;

pub mod accounts;
pub use accounts::{AccountSettings, SignUp};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Human,
    Json,
}

/// The resolved configuration of one Doorward process.
#[derive(Clone, Debug)]
pub struct Config {
    pub listen: SocketAddr,
    /// Public base URL without a trailing slash; the OAuth issuer.
    pub external_url: String,
    pub database_url: String,
    /// Where the SQLite database, the generated key and the initial root password live.
    pub data_dir: PathBuf,
    pub secret_key: Option<SecretString>,
    pub root_password: Option<SecretString>,
    pub log_level: String,
    pub log_format: LogFormat,
    /// A session unused for this long ends (seconds).
    pub session_idle_timeout: i64,
    /// A session ends this long after sign-in whatever its use (seconds).
    pub session_lifetime: i64,
    /// Peers whose `X-Forwarded-For` is believed when keying rate limits.
    pub trusted_proxies: Vec<IpAddr>,
    /// At most this many Argon2id hashes run at once (19 MiB each).
    pub password_hash_concurrency: usize,
    pub db_max_connections: u32,
    /// Lifetime of OAuth access tokens in seconds (GitLab: 7200).
    pub access_token_lifetime: i64,
    /// Require PKCE (S256) from every application, not only those that ask for it.
    pub require_pkce: bool,
    /// Accept plain `http://` redirect URIs on non-loopback hosts at registration.
    pub allow_http_redirect_uris: bool,
    /// Offer the implicit grant (`response_type=token`); off by default (RFC 9700 §2.1.2).
    pub implicit_grant: bool,
    /// Let public clients use the password grant with only their `client_id`.
    pub password_grant_public_clients: bool,
    /// Lifetime of OpenID Connect id_tokens in seconds (GitLab: 120).
    pub id_token_lifetime: i64,
    /// Validated access tokens and applications are kept in memory this long at most
    /// (seconds); 0 turns the cache off. Revocations reach it through the invalidation log.
    pub token_cache_ttl: u64,
    /// How often each node reads the invalidation log (milliseconds): the longest a
    /// revocation made on another node can go unnoticed here.
    pub cache_poll_interval_ms: u64,
    /// Connection limits (src/http/connections.rs), against clients that open connections
    /// and send slowly or not at all (slowloris). Milliseconds, except the cap.
    pub connections: ConnectionSettings,
    /// Let back-channel logout URIs name loopback and private addresses, over plain http
    /// too (tests, single-machine trials); off, such URIs are refused at registration and
    /// never called.
    pub backchannel_logout_allow_loopback: bool,
    /// OAuth Client ID Metadata Documents: an `https` URL as `client_id` names a document
    /// Doorward fetches (`oauth::client_id_metadata`); off, such a client_id is unknown.
    pub client_id_metadata_documents: bool,
    /// Let client metadata document URLs name loopback addresses (tests); never another
    /// private range, never plain http.
    pub cimd_allow_loopback: bool,
    /// A PEM file of trust anchors for outgoing HTTPS, beside the system's roots.
    pub outbound_ca_file: Option<PathBuf>,
    /// RFC 7591 dynamic client registration at `/oauth/register` (and RFC 7592 management);
    /// off, those paths are 404 and discovery has no `registration_endpoint`.
    pub dynamic_client_registration: bool,
    /// Dynamically registered clients that never got a code or a token are deleted this
    /// many days after registering (0: never).
    pub dynamic_client_purge_after_days: i64,
    /// RFC 9126: every authorization request must be pushed to `/oauth/par` first (always,
    /// under the FAPI 2.0 profile).
    pub require_par: bool,
    /// `DOORWARD_SECURITY_PROFILE`: `default`, or `fapi2` for the FAPI 2.0 Security
    /// Profile's rules on OAuth clients and their tokens (docs/fapi.md).
    pub security_profile: SecurityProfile,
    /// Mail, sign-up, mailed links and audit retention (`config::accounts`).
    pub accounts: AccountSettings,
}

/// Which security profile the OAuth endpoints follow.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SecurityProfile {
    /// GitLab-compatible OAuth 2.0 and OpenID Connect, with the current security BCP.
    #[default]
    Default,
    /// The FAPI 2.0 Security Profile: PAR, `private_key_jwt`, PKCE S256, DPoP-bound tokens.
    Fapi2,
}

/// How long the server waits for each part of a request, and how many connections it
/// serves at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectionSettings {
    /// From a connection's first byte of a request (or from accepting it) to the end of the
    /// request's headers.
    pub header_read_timeout_ms: u64,
    /// From the end of the headers to the end of the body.
    pub body_read_timeout_ms: u64,
    /// How long an idle keep-alive connection is kept between requests.
    pub keep_alive_timeout_ms: u64,
    /// From the end of the headers to the answer (body read included).
    pub request_timeout_ms: u64,
    /// Connections served at once; more wait in the listen backlog until one closes.
    pub max_connections: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the configuration file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid configuration file {path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("invalid {key}: {message}")]
    Value { key: String, message: String },
}

/// The file's keys; all optional. Unknown keys are an error, so typos do not pass silently.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<String>,
    external_url: Option<String>,
    database_url: Option<String>,
    data_dir: Option<String>,
    secret_key: Option<String>,
    root_password: Option<String>,
    log_level: Option<String>,
    log_format: Option<String>,
    session_idle_timeout: Option<i64>,
    session_lifetime: Option<i64>,
    trusted_proxies: Option<Vec<String>>,
    password_hash_concurrency: Option<i64>,
    db_max_connections: Option<i64>,
    access_token_lifetime: Option<i64>,
    require_pkce: Option<bool>,
    allow_http_redirect_uris: Option<bool>,
    implicit_grant: Option<bool>,
    password_grant_public_clients: Option<bool>,
    id_token_lifetime: Option<i64>,
    token_cache_ttl: Option<i64>,
    cache_poll_interval_ms: Option<i64>,
    header_read_timeout_ms: Option<i64>,
    body_read_timeout_ms: Option<i64>,
    keep_alive_timeout_ms: Option<i64>,
    request_timeout_ms: Option<i64>,
    max_connections: Option<i64>,
    backchannel_logout_allow_loopback: Option<bool>,
    client_id_metadata_documents: Option<bool>,
    cimd_allow_loopback: Option<bool>,
    outbound_ca_file: Option<String>,
    dynamic_client_registration: Option<bool>,
    dynamic_client_purge_after_days: Option<i64>,
    require_par: Option<bool>,
    security_profile: Option<String>,
    smtp_url: Option<String>,
    smtp_password: Option<String>,
    mail_from: Option<String>,
    signup: Option<String>,
    signup_domains: Option<Vec<String>>,
    confirmation_lifetime: Option<i64>,
    reset_password_lifetime: Option<i64>,
    audit_event_retention_days: Option<i64>,
}

/// Reads one setting: the environment first, then the file.
struct Source<'a> {
    env: &'a dyn Fn(&str) -> Option<String>,
}

impl Source<'_> {
    fn get(&self, key: &str, file: Option<String>) -> Option<String> {
        (self.env)(&format!("DOORWARD_{}", key.to_ascii_uppercase()))
            .filter(|v| !v.is_empty())
            .or(file)
    }

    fn number<T: std::str::FromStr>(
        &self,
        key: &str,
        file: Option<i64>,
        min: i64,
    ) -> Result<Option<T>, ConfigError> {
        let Some(text) = self.get(key, file.map(|n| n.to_string())) else {
            return Ok(None);
        };
        let bad = || ConfigError::Value {
            key: key.into(),
            message: format!("expected a whole number of at least {min}, got {text:?}"),
        };
        let n: i64 = text.trim().parse().map_err(|_| bad())?;
        if n < min {
            return Err(bad());
        }
        text.trim().parse().map(Some).map_err(|_| bad())
    }

    fn flag(&self, key: &str, file: Option<bool>) -> Result<bool, ConfigError> {
        self.flag_or(key, file, false)
    }

    /// A flag whose default (when set nowhere) is `default`.
    fn flag_or(&self, key: &str, file: Option<bool>, default: bool) -> Result<bool, ConfigError> {
        match self
            .get(key, file.map(|b| b.to_string()))
            .as_deref()
            .map(str::trim)
        {
            None => Ok(default),
            Some("true" | "1" | "yes" | "on") => Ok(true),
            Some("false" | "0" | "no" | "off") => Ok(false),
            Some(other) => Err(ConfigError::Value {
                key: format!("DOORWARD_{}", key.to_ascii_uppercase()),
                message: format!("expected true or false, got {other:?}"),
            }),
        }
    }
}

impl Config {
    /// Loads the configuration from the process environment and an optional file.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        Self::load_with(file, &|k| std::env::var(k).ok())
    }

    /// Like [`Config::load`] with an explicit environment (tests).
    pub fn load_with(
        file: Option<&Path>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let file_config = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.into(),
                    source,
                })?;
                toml::from_str::<FileConfig>(&text).map_err(|e| ConfigError::File {
                    path: path.into(),
                    message: e.message().to_string(),
                })?
            }
            None => FileConfig::default(),
        };
        let src = Source { env };
        let f = file_config;

        let listen_text = src
            .get("listen", f.listen)
            .unwrap_or_else(|| "127.0.0.1:8080".into());
        let listen: SocketAddr = listen_text.parse().map_err(|_| ConfigError::Value {
            key: "DOORWARD_LISTEN".into(),
            message: format!("expected address:port such as 127.0.0.1:8080, got {listen_text:?}"),
        })?;

        let external_url = match src.get("external_url", f.external_url) {
            Some(u) => normalize_external_url(&u)?,
            None => format!("http://{listen}"),
        };

        let data_dir = PathBuf::from(
            src.get("data_dir", f.data_dir)
                .unwrap_or_else(|| "doorward-data".into()),
        );
        let database_url = src
            .get("database_url", f.database_url)
            .unwrap_or_else(|| format!("sqlite://{}", data_dir.join("doorward.db").display()));
        if crate::store::Backend::of_url(&database_url).is_none() {
            return Err(ConfigError::Value {
                key: "DOORWARD_DATABASE_URL".into(),
                message: "must start with sqlite: or postgres://".into(),
            });
        }

        let log_format = match src.get("log_format", f.log_format).as_deref() {
            None | Some("human") => LogFormat::Human,
            Some("json") => LogFormat::Json,
            Some(other) => {
                return Err(ConfigError::Value {
                    key: "DOORWARD_LOG_FORMAT".into(),
                    message: format!("expected human or json, got {other:?}"),
                });
            }
        };

        let trusted_proxies = match (src.env)("DOORWARD_TRUSTED_PROXIES").filter(|v| !v.is_empty())
        {
            Some(list) => list
                .split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect(),
            None => f.trusted_proxies.unwrap_or_default(),
        }
        .iter()
        .map(|s| {
            s.parse::<IpAddr>().map_err(|_| ConfigError::Value {
                key: "DOORWARD_TRUSTED_PROXIES".into(),
                message: format!("{s:?} is not an IP address"),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;

        let secret_key = src.get("secret_key", f.secret_key).map(SecretString::new);
        if let Some(key) = &secret_key {
            crate::domain::secret::MasterKey::from_config(key.expose()).map_err(|m| {
                ConfigError::Value {
                    key: "DOORWARD_SECRET_KEY".into(),
                    message: m.into(),
                }
            })?;
        }

        let security_profile = match src
            .get("security_profile", f.security_profile)
            .as_deref()
            .map(str::trim)
        {
            None | Some("default") => SecurityProfile::Default,
            Some("fapi2") => SecurityProfile::Fapi2,
            Some(other) => {
                return Err(ConfigError::Value {
                    key: "DOORWARD_SECURITY_PROFILE".into(),
                    message: format!("expected default or fapi2, got {other:?}"),
                });
            }
        };
        let fapi2 = security_profile == SecurityProfile::Fapi2;
        let accounts = accounts::load(
            &src,
            accounts::FileKeys {
                smtp_url: f.smtp_url,
                smtp_password: f.smtp_password,
                mail_from: f.mail_from,
                signup: f.signup,
                signup_domains: f.signup_domains,
                confirmation_lifetime: f.confirmation_lifetime,
                reset_password_lifetime: f.reset_password_lifetime,
                audit_event_retention_days: f.audit_event_retention_days,
            },
            &external_url,
        )?;
        let default_hashes = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
            .max(2);
        Ok(Config {
            listen,
            external_url,
            database_url,
            data_dir,
            secret_key,
            root_password: src
                .get("root_password", f.root_password)
                .map(SecretString::new),
            log_level: src
                .get("log_level", f.log_level)
                .unwrap_or_else(|| "info".into()),
            log_format,
            session_idle_timeout: src
                .number("session_idle_timeout", f.session_idle_timeout, 60)?
                .unwrap_or(7 * 86_400),
            session_lifetime: src
                .number("session_lifetime", f.session_lifetime, 60)?
                .unwrap_or(30 * 86_400),
            trusted_proxies,
            password_hash_concurrency: src
                .number("password_hash_concurrency", f.password_hash_concurrency, 1)?
                .unwrap_or(default_hashes),
            db_max_connections: src
                .number("db_max_connections", f.db_max_connections, 1)?
                .unwrap_or(16),
            access_token_lifetime: src
                .number("access_token_lifetime", f.access_token_lifetime, 60)?
                .unwrap_or(7200),
            require_pkce: src.flag("require_pkce", f.require_pkce)?,
            allow_http_redirect_uris: src
                .flag("allow_http_redirect_uris", f.allow_http_redirect_uris)?,
            // FAPI 2.0 §5.3.2.2: response_type=code only.
            implicit_grant: src.flag("implicit_grant", f.implicit_grant)? && !fapi2,
            password_grant_public_clients: src.flag(
                "password_grant_public_clients",
                f.password_grant_public_clients,
            )?,
            id_token_lifetime: src
                .number("id_token_lifetime", f.id_token_lifetime, 30)?
                .unwrap_or(120),
            token_cache_ttl: src
                .number("token_cache_ttl", f.token_cache_ttl, 0)?
                .unwrap_or(60),
            cache_poll_interval_ms: src
                .number("cache_poll_interval_ms", f.cache_poll_interval_ms, 10)?
                .unwrap_or(100),
            connections: ConnectionSettings {
                header_read_timeout_ms: src
                    .number("header_read_timeout_ms", f.header_read_timeout_ms, 100)?
                    .unwrap_or(10_000),
                body_read_timeout_ms: src
                    .number("body_read_timeout_ms", f.body_read_timeout_ms, 100)?
                    .unwrap_or(10_000),
                keep_alive_timeout_ms: src
                    .number("keep_alive_timeout_ms", f.keep_alive_timeout_ms, 100)?
                    .unwrap_or(60_000),
                request_timeout_ms: src
                    .number("request_timeout_ms", f.request_timeout_ms, 100)?
                    .unwrap_or(30_000),
                max_connections: src
                    .number("max_connections", f.max_connections, 1)?
                    .unwrap_or(4096),
            },
            backchannel_logout_allow_loopback: src.flag(
                "backchannel_logout_allow_loopback",
                f.backchannel_logout_allow_loopback,
            )?,
            // Metadata document clients are public clients, which FAPI 2.0 has none of.
            client_id_metadata_documents: src.flag_or(
                "client_id_metadata_documents",
                f.client_id_metadata_documents,
                true,
            )? && !fapi2,
            cimd_allow_loopback: src.flag("cimd_allow_loopback", f.cimd_allow_loopback)?,
            outbound_ca_file: src
                .get("outbound_ca_file", f.outbound_ca_file)
                .map(PathBuf::from),
            dynamic_client_registration: src.flag_or(
                "dynamic_client_registration",
                f.dynamic_client_registration,
                true,
            )?,
            dynamic_client_purge_after_days: src
                .number(
                    "dynamic_client_purge_after_days",
                    f.dynamic_client_purge_after_days,
                    0,
                )?
                .unwrap_or(30),
            // FAPI 2.0 §5.3.2.2: only pushed authorization requests.
            require_par: src.flag("require_par", f.require_par)? || fapi2,
            security_profile,
            accounts,
        })
    }

    /// Whether the FAPI 2.0 Security Profile's rules apply (docs/fapi.md).
    pub fn fapi2(&self) -> bool {
        self.security_profile == SecurityProfile::Fapi2
    }

    /// True when the public URL is https, so cookies must be `Secure`.
    pub fn is_https(&self) -> bool {
        self.external_url.starts_with("https://")
    }
}

/// The external URL must be an absolute http(s) URL with no query or fragment; a trailing
/// slash is dropped because the issuer is compared as an exact string.
fn normalize_external_url(raw: &str) -> Result<String, ConfigError> {
    let err = |m: &str| ConfigError::Value {
        key: "DOORWARD_EXTERNAL_URL".into(),
        message: m.into(),
    };
    let url = url::Url::parse(raw.trim())
        .map_err(|_| err("must be an absolute URL such as https://id.example.com"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(err("must be an http or https URL with a host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(err("must not have a query or fragment"));
    }
    Ok(raw.trim().trim_end_matches('/').to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn load(env: &[(&str, &str)], file: Option<&str>) -> Result<Config, ConfigError> {
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("doorward.toml");
        if let Some(text) = file {
            std::fs::write(&path, text).unwrap();
        }
        Config::load_with(file.map(|_| path.as_path()), &|k| env.get(k).cloned())
    }

    #[test]
    fn defaults_need_no_setup() {
        let c = load(&[], None).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.external_url, "http://127.0.0.1:8080");
        assert_eq!(c.database_url, "sqlite://doorward-data/doorward.db");
        assert_eq!(c.log_format, LogFormat::Human);
        assert_eq!(c.access_token_lifetime, 7200);
        assert_eq!(c.id_token_lifetime, 120);
        assert!(!c.require_pkce && !c.allow_http_redirect_uris);
    }

    #[test]
    fn flags_come_from_either_place() {
        let c = load(
            &[("DOORWARD_REQUIRE_PKCE", "true")],
            Some("allow_http_redirect_uris = true\n"),
        )
        .unwrap();
        assert!(c.require_pkce && c.allow_http_redirect_uris);
    }

    #[test]
    fn environment_wins_over_the_file() {
        let file = "listen = \"127.0.0.1:9000\"\nexternal_url = \"https://id.example.com/\"\nlog_format = \"json\"\n";
        let c = load(&[("DOORWARD_LISTEN", "0.0.0.0:9100")], Some(file)).unwrap();
        assert_eq!(c.listen.to_string(), "0.0.0.0:9100");
        assert_eq!(c.external_url, "https://id.example.com");
        assert!(c.is_https());
        assert_eq!(c.log_format, LogFormat::Json);
    }

    #[test]
    fn bad_values_name_the_setting() {
        let e = load(&[("DOORWARD_LISTEN", "nope")], None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("DOORWARD_LISTEN"), "{e}");
        let e = load(&[("DOORWARD_SECRET_KEY", "short")], None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("DOORWARD_SECRET_KEY"), "{e}");
        let e = load(&[("DOORWARD_EXTERNAL_URL", "ftp://x")], None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("DOORWARD_EXTERNAL_URL"), "{e}");
        let e = load(&[], Some("lisen = \"x\"")).unwrap_err().to_string();
        assert!(e.contains("unknown field"), "{e}");
        let e = load(&[("DOORWARD_SESSION_IDLE_TIMEOUT", "-5")], None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("session_idle_timeout"), "{e}");
    }
}
