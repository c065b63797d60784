//! The command line: `serve`, `migrate`, `user create|list`, `token create`, `keys
//! rotate|list`, `import doorkeeper`. Commands other
//! than `serve` work on the same database whether or not a server is running on it.

use std::ffi::OsString;
use std::io::Read;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use serde_json::json;

use crate::accounts::{self, AccountError};
use crate::app::{Server, shutdown_signal};
use crate::bootstrap;
use crate::config::Config;
use crate::domain::audit::{Action, AuditEvent};
use crate::domain::clock::{Clock, iso8601};
use crate::domain::password::PasswordHasher;
use crate::domain::scope::ScopeSet;
use crate::domain::secret::{self, SecretString};
use crate::domain::user::{NewUser, Profile};
use crate::oidc::keys;
use crate::oidc::signing_keys::Alg;
use crate::store::{Store, StoreError};

#[derive(Parser, Debug)]
#[command(
    name = "doorward",
    version,
    about = "A GitLab-compatible OAuth 2.0 and OpenID Connect provider"
)]
pub struct Cli {
    /// TOML configuration file; DOORWARD_* environment variables override it.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Print machine-readable JSON.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the HTTP server.
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Manage users.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage personal access tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Manage the OpenID Connect signing keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Import users, applications and tokens from another server's database.
    #[command(subcommand)]
    Import(ImportCommand),
}

#[derive(Subcommand, Debug)]
enum ImportCommand {
    /// From a GitLab (or any doorkeeper) database: users, applications, access and refresh
    /// tokens, all still working (docs/migrating-from-gitlab.md).
    Doorkeeper(ImportDoorkeeper),
}

#[derive(Args, Debug)]
struct ImportDoorkeeper {
    /// The source: sqlite:///<absolute path> or postgres://user:password@host:port/database.
    /// Opened read-only.
    #[arg(long, value_name = "DATABASE_URL")]
    from: String,
    /// Read and check everything and print the report, writing nothing.
    #[arg(long)]
    dry_run: bool,
}

#[derive(Subcommand, Debug)]
enum KeysCommand {
    /// Add a new signing key that signs from now on; older keys stay published until the
    /// id_tokens they signed have expired. Running servers pick it up within seconds.
    Rotate(KeysRotate),
    /// List the signing keys and their status.
    List,
}

#[derive(Args, Debug)]
struct KeysRotate {
    /// Signing algorithm of the new key.
    #[arg(long, default_value = "RS256", value_parser = ["RS256", "ES256"])]
    alg: String,
}

#[derive(Subcommand, Debug)]
enum UserCommand {
    /// Create a user. Without --password-stdin a random password is generated and printed.
    Create(UserCreate),
    /// List users.
    List,
}

#[derive(Args, Debug)]
struct UserCreate {
    #[arg(long)]
    username: String,
    #[arg(long)]
    email: String,
    /// Display name (defaults to the username).
    #[arg(long)]
    name: Option<String>,
    /// Make the user an administrator.
    #[arg(long)]
    admin: bool,
    /// Read the password from standard input (first line).
    #[arg(long)]
    password_stdin: bool,
}

#[derive(Subcommand, Debug)]
enum TokenCommand {
    /// Create a personal access token and print it (shown only this once).
    Create(TokenCreate),
}

#[derive(Args, Debug)]
struct TokenCreate {
    /// Username or email of the token's owner.
    #[arg(long)]
    user: String,
    /// Comma- or space-separated scopes, e.g. api,read_user.
    #[arg(long)]
    scopes: String,
    /// Token name.
    #[arg(long, default_value = "cli")]
    name: String,
    /// Days until the token expires (GitLab's maximum, 365, by default).
    #[arg(long, default_value_t = 365, value_parser = clap::value_parser!(i64).range(1..=3650))]
    expires_in_days: i64,
}

/// Parses `args` and runs the command.
pub async fn run(
    args: impl IntoIterator<Item = impl Into<OsString> + Clone>,
) -> anyhow::Result<()> {
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e)
            if matches!(
                e.kind(),
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion
            ) =>
        {
            print!("{e}");
            return Ok(());
        }
        Err(e) => bail!(
            "{}",
            e.to_string()
                .lines()
                .next()
                .unwrap_or("invalid arguments")
                .trim_start_matches("error: ")
        ),
    };
    let config = Config::load(cli.config.as_deref())?;
    crate::logging::init(&config.log_level, config.log_format);
    match cli.command {
        Command::Serve => {
            let server = Server::build(config, Clock::system()).await?;
            server.run(shutdown_signal()).await
        }
        Command::Migrate => {
            bootstrap::open_store(&config).await?;
            print_out(cli.json, json!({"migrated": true}), "migrations applied");
            Ok(())
        }
        Command::User(UserCommand::Create(args)) => user_create(&config, cli.json, args).await,
        Command::User(UserCommand::List) => user_list(&config, cli.json).await,
        Command::Token(TokenCommand::Create(args)) => token_create(&config, cli.json, args).await,
        Command::Keys(KeysCommand::Rotate(args)) => keys_rotate(&config, cli.json, args).await,
        Command::Keys(KeysCommand::List) => keys_list(&config, cli.json).await,
        Command::Import(ImportCommand::Doorkeeper(args)) => {
            crate::import::doorkeeper(&config, cli.json, &args.from, args.dry_run).await
        }
    }
}

fn print_out(json: bool, value: serde_json::Value, human: &str) {
    if json {
        println!("{value}");
    } else {
        println!("{human}");
    }
}

/// The store of a CLI command, migrated and with the root account ensured, exactly as a
/// server start would leave it.
async fn open(config: &Config) -> anyhow::Result<Store> {
    Ok(bootstrap::prepare(config, &Clock::system()).await?.store)
}

fn account_error(e: AccountError) -> anyhow::Error {
    match e {
        AccountError::Store(StoreError::Conflict(field)) => {
            anyhow::anyhow!("{field} has already been taken")
        }
        other => anyhow::anyhow!("{other}"),
    }
}

async fn user_create(config: &Config, json: bool, args: UserCreate) -> anyhow::Result<()> {
    let (password, generated) = if args.password_stdin {
        let mut input = String::new();
        std::io::stdin()
            .read_to_string(&mut input)
            .context("cannot read the password from standard input")?;
        let first = input.lines().next().unwrap_or_default().to_string();
        if first.is_empty() {
            bail!("no password on standard input");
        }
        (SecretString::new(first), false)
    } else {
        (
            SecretString::new(secret::base64url(&secret::random_bytes::<18>())),
            true,
        )
    };
    let store = open(config).await?;
    let new_user = NewUser {
        name: args.name.clone().unwrap_or_else(|| args.username.clone()),
        username: args.username,
        email: args.email,
        is_admin: args.admin,
        profile: Profile::default(),
        confirmed: true,
        state: crate::domain::user::STATE_ACTIVE,
    };
    let hasher = PasswordHasher::new(1)?;
    let audit = AuditEvent::about_user(Action::UserCreated, None, 0, &new_user.username)
        .with("by", "command line");
    let user = accounts::create_user(
        &store,
        &hasher,
        &Clock::system(),
        &new_user,
        &password,
        Some(&audit),
    )
    .await
    .map_err(account_error)?;
    let shown = generated.then(|| password.expose().to_string());
    let mut value = json!({"id": user.id, "username": user.username, "email": user.email, "name": user.name, "is_admin": user.is_admin});
    if let Some(p) = &shown {
        value["password"] = json!(p);
    }
    let mut human = format!("created user {} (id {})", user.username, user.id);
    if let Some(p) = &shown {
        human.push_str(&format!("\npassword: {p}"));
    }
    print_out(json, value, &human);
    Ok(())
}

async fn user_list(config: &Config, json: bool) -> anyhow::Result<()> {
    let store = open(config).await?;
    let mut all = Vec::new();
    let mut offset = 0;
    loop {
        let (page, _) = store.list_users(&Default::default(), 500, offset).await?;
        let done = page.len() < 500;
        offset += 500;
        all.extend(page);
        if done {
            break;
        }
    }
    if json {
        let list: Vec<_> = all
            .iter()
            .map(|u| json!({"id": u.id, "username": u.username, "email": u.email, "name": u.name, "state": u.state, "is_admin": u.is_admin, "created_at": iso8601(u.created_at)}))
            .collect();
        println!("{}", serde_json::Value::Array(list));
    } else {
        println!(
            "{:<6} {:<24} {:<32} {:<8} ADMIN",
            "ID", "USERNAME", "EMAIL", "STATE"
        );
        for u in &all {
            println!(
                "{:<6} {:<24} {:<32} {:<8} {}",
                u.id,
                u.username,
                u.email,
                u.state,
                if u.is_admin { "yes" } else { "no" }
            );
        }
    }
    Ok(())
}

async fn token_create(config: &Config, json: bool, args: TokenCreate) -> anyhow::Result<()> {
    let scopes =
        ScopeSet::parse_non_empty(&args.scopes).map_err(|e| anyhow::anyhow!("--scopes: {e}"))?;
    let store = open(config).await?;
    let user = store
        .user_by_login(&args.user)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no user {:?}", args.user))?;
    let clock = Clock::system();
    let expires_at = clock.now() + args.expires_in_days * 86_400;
    let audit = AuditEvent::about_user(
        Action::PersonalAccessTokenCreated,
        None,
        user.id,
        &user.username,
    )
    .with("by", "command line");
    let (token, record) = accounts::issue_personal_access_token(
        &store,
        &clock,
        user.id,
        &args.name,
        &scopes,
        Some(expires_at),
        &audit,
    )
    .await
    .map_err(account_error)?;
    let value = json!({
        "id": record.id,
        "name": record.name,
        "user": user.username,
        "scopes": scopes.names(),
        "expires_at": crate::domain::clock::date(expires_at),
        "token": token.expose(),
    });
    print_out(json, value, token.expose());
    Ok(())
}

async fn keys_rotate(config: &Config, json: bool, args: KeysRotate) -> anyhow::Result<()> {
    let alg = Alg::parse(&args.alg).ok_or_else(|| anyhow::anyhow!("--alg: RS256 or ES256"))?;
    let prepared = bootstrap::prepare(config, &Clock::system()).await?;
    let now = Clock::system().now();
    let kid = keys::rotate(&prepared.store, &prepared.master_key, alg, now).await?;
    print_out(
        json,
        json!({"kid": kid, "alg": alg.as_str(), "created_at": iso8601(now)}),
        &format!(
            "new {} signing key {kid}; running servers sign with it within seconds",
            alg.as_str()
        ),
    );
    Ok(())
}

async fn keys_list(config: &Config, json: bool) -> anyhow::Result<()> {
    let store = open(config).await?;
    let now = Clock::system().now();
    let list = keys::list(&store, now, config.id_token_lifetime).await?;
    if json {
        let keys: Vec<_> = list
            .iter()
            .map(|k| {
                json!({
                    "kid": k.kid,
                    "alg": k.alg,
                    "status": k.status,
                    "created_at": iso8601(k.created_at),
                    "published_until": k.published_until.map(iso8601),
                })
            })
            .collect();
        println!("{}", serde_json::Value::Array(keys));
    } else {
        println!("{:<44} {:<6} {:<10} CREATED", "KID", "ALG", "STATUS");
        for k in &list {
            println!(
                "{:<44} {:<6} {:<10} {}",
                k.kid,
                k.alg,
                k.status,
                iso8601(k.created_at)
            );
        }
    }
    Ok(())
}
