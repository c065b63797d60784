//! First-start and every-start preparation: the data directory, the master key, the
//! migrations and the `root` account; and the periodic purge of expired rows.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;

use crate::config::Config;
use crate::domain::clock::Clock;
use crate::domain::password;
use crate::domain::secret::{self, MasterKey, SecretString};
use crate::domain::user::{NewUser, Profile};
use crate::state::AppState;
use crate::store::{Backend, Store, StoreError, StoreOptions};

pub struct Prepared {
    pub store: Store,
    pub master_key: MasterKey,
}

/// Everything `serve` needs before it accepts connections. Also used by the CLI.
pub async fn prepare(config: &Config, clock: &Clock) -> anyhow::Result<Prepared> {
    let store = open_store(config).await?;
    let master_key = load_master_key(config)?;
    ensure_root_user(config, &store, clock).await?;
    crate::oidc::keys::ensure(&store, &master_key, clock.now(), config.id_token_lifetime)
        .await
        .context("cannot prepare the OpenID Connect signing key")?;
    Ok(Prepared { store, master_key })
}

/// Opens the database (creating the data directory for the default SQLite file) and
/// applies migrations, retrying for a while when the database is not reachable yet.
pub async fn open_store(config: &Config) -> anyhow::Result<Store> {
    if Backend::of_url(&config.database_url) == Some(Backend::Sqlite)
        && let Some(dir) = sqlite_parent_dir(&config.database_url)
    {
        create_private_dir(&dir)?;
    }
    let options = StoreOptions {
        max_connections: config.db_max_connections,
        ..StoreOptions::default()
    };
    let store = Store::connect(&config.database_url, &options).context("invalid database URL")?;
    let mut delay = Duration::from_millis(200);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        match store.migrate().await {
            Ok(()) => return Ok(store),
            Err(StoreError::Unavailable(e)) if tokio::time::Instant::now() < deadline => {
                tracing::warn!(error = %e, "database not reachable yet; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
            Err(e) => return Err(anyhow::anyhow!("cannot prepare the database: {e}")),
        }
    }
}

/// The directory holding a `sqlite:` database file, if the URL names one.
fn sqlite_parent_dir(url: &str) -> Option<std::path::PathBuf> {
    let path = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = path.split('?').next()?;
    if path.is_empty() || path == ":memory:" {
        return None;
    }
    Path::new(path)
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map(Path::to_path_buf)
}

/// `DOORWARD_SECRET_KEY`, or the key file in the data directory, created on first start.
fn load_master_key(config: &Config) -> anyhow::Result<MasterKey> {
    if let Some(material) = &config.secret_key {
        return MasterKey::from_config(material.expose()).map_err(anyhow::Error::msg);
    }
    let path = config.data_dir.join("secret_key");
    let material = match std::fs::read_to_string(&path) {
        Ok(text) => SecretString::new(text.trim()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            create_private_dir(&config.data_dir)?;
            let material = MasterKey::generate_material();
            write_private_file(&path, &format!("{}\n", material.expose()))?;
            if Backend::of_url(&config.database_url) == Some(Backend::Postgres) {
                tracing::warn!(
                    path = %path.display(),
                    "generated a master key; every node sharing this database must use the same one (set DOORWARD_SECRET_KEY)"
                );
            } else {
                tracing::info!(path = %path.display(), "generated the master key");
            }
            material
        }
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    MasterKey::from_config(material.expose())
        .map_err(|m| anyhow::anyhow!("{}: {m}", path.display()))
}

/// Creates `dir` (and its parents) if missing; a directory we create is private (0700),
/// since it holds the database, the master key and the initial root password.
fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder
        .create(dir)
        .with_context(|| format!("cannot create the data directory {}", dir.display()))
}

/// Writes `contents` to a new file readable only by its owner (mode 0600).
pub fn write_private_file(path: &Path, contents: &str) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    file.write_all(contents.as_bytes())?;
    Ok(())
}

/// On an empty database, creates the administrator `root` (as GitLab does). Without
/// `DOORWARD_ROOT_PASSWORD` the password is generated, logged once and written to
/// `initial_root_password` (mode 0600) in the data directory.
async fn ensure_root_user(config: &Config, store: &Store, clock: &Clock) -> anyhow::Result<()> {
    if store.count_users().await? > 0 {
        return Ok(());
    }
    let (password, generated) = match &config.root_password {
        Some(p) => (p.clone(), false),
        None => (
            SecretString::new(secret::base64url(&secret::random_bytes::<18>())),
            true,
        ),
    };
    password::validate_new_password(password.expose())
        .map_err(|e| anyhow::anyhow!("DOORWARD_ROOT_PASSWORD {e}"))?;
    let hash = {
        let p = password.clone();
        tokio::task::spawn_blocking(move || password::hash_blocking(p.expose())).await??
    };
    let root = NewUser {
        username: "root".into(),
        email: "admin@example.com".into(),
        name: "Administrator".into(),
        is_admin: true,
        profile: Profile::default(),
        confirmed: true,
        state: crate::domain::user::STATE_ACTIVE,
    };
    match store.create_user(&root, &hash, clock.now(), None).await {
        Ok(_) => {}
        // Another node created it first.
        Err(StoreError::Conflict(_)) => return Ok(()),
        Err(e) => return Err(e.into()),
    }
    if generated {
        create_private_dir(&config.data_dir)?;
        let path = config.data_dir.join("initial_root_password");
        write_private_file(
            &path,
            &format!(
                "# The password of the administrator account `root`, generated on first start.\n\
                 # It stays valid until changed; change it on the profile page after signing in,\n\
                 # then delete this file.\n\nPassword: {}\n",
                password.expose()
            ),
        )?;
        // Printed once, on this start only, as GitLab does; never logged again.
        tracing::warn!(
            username = "root",
            password = password.expose(),
            file = %path.display(),
            "created the administrator account with a generated password"
        );
    } else {
        tracing::info!(username = "root", "created the administrator account");
    }
    Ok(())
}

/// How long the maintenance loop sleeps between purges.
pub const MAINTENANCE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(300);

/// Purges expired rows every few minutes.
pub async fn maintenance_loop(state: AppState) {
    let mut tick = tokio::time::interval(MAINTENANCE_INTERVAL);
    loop {
        tick.tick().await;
        purge_expired(&state).await;
        purge_old_audit_events(&state).await;
    }
}

/// Deletes audit events older than `audit_event_retention_days` (0 keeps them for ever), in
/// bounded batches; returns how many went.
pub async fn purge_old_audit_events(state: &AppState) -> u64 {
    let days = state.config.accounts.audit_event_retention_days;
    if days <= 0 {
        return 0;
    }
    let before = state.clock.now() - days * 86_400;
    let purged = match state.store.purge_audit_events(before).await {
        Ok(n) => n,
        Err(e) => {
            tracing::warn!(error = %e, "purging old audit events failed");
            0
        }
    };
    if purged > 0 {
        tracing::debug!(rows = purged, "purged old audit events");
    }
    purged
}

/// How long used codes and dead tokens are kept (for audit) before they are deleted.
pub const OAUTH_RETENTION: i64 = 7 * 86_400;

/// One round of purging: every statement is an idempotent DELETE of rows past their
/// expiry, so nodes running it at the same moment do no harm.
pub async fn purge_expired(state: &AppState) {
    let now = state.clock.now();
    let store = &state.store;
    let idle_cutoff = now - state.config.session_idle_timeout;
    let results = [
        ("sessions", store.purge_sessions(now, idle_cutoff).await),
        (
            "sign-in throttles",
            store
                .purge_throttles(now, crate::domain::sign_in_throttle::WINDOW)
                .await,
        ),
        (
            "OAuth codes and tokens",
            store.purge_oauth(now, OAUTH_RETENTION).await,
        ),
        (
            "device grants",
            store.purge_device_grants(now, OAUTH_RETENTION).await,
        ),
        ("DPoP proofs", store.purge_dpop_proofs(now).await),
        (
            "pushed authorization requests",
            store.purge_pushed_requests(now - OAUTH_RETENTION).await,
        ),
        (
            "two-factor challenges",
            store.purge_two_factor_challenges(now).await,
        ),
        (
            "unused dynamically registered clients",
            match state.config.dynamic_client_purge_after_days {
                0 => Ok(0),
                days => store.purge_unused_registrations(now - days * 86_400).await,
            },
        ),
    ];
    for (what, result) in results {
        match result {
            Ok(0) => {}
            Ok(n) => tracing::debug!(rows = n, "purged expired {what}"),
            Err(e) => tracing::warn!(error = %e, "purging expired {what} failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::sqlite_parent_dir;
    use std::path::PathBuf;

    #[test]
    fn finds_the_sqlite_directory() {
        assert_eq!(
            sqlite_parent_dir("sqlite://doorward-data/doorward.db"),
            Some(PathBuf::from("doorward-data"))
        );
        assert_eq!(
            sqlite_parent_dir("sqlite:/var/lib/d/x.db?mode=rwc"),
            Some(PathBuf::from("/var/lib/d"))
        );
        assert_eq!(sqlite_parent_dir("sqlite::memory:"), None);
        assert_eq!(sqlite_parent_dir("sqlite://x.db"), None);
    }
}
