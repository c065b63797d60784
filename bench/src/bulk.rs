//! The bulk path to the large table: token rows minted as the token endpoint mints them and
//! written, with the server stopped, by the store's own insert (or its statement, in
//! batches, on SQLite).

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use doorward::domain::clock::Clock;
use doorward::domain::scope::ScopeSet;
use doorward::domain::secret::new_family;
use doorward::oauth::issue::{MintedTokens, TokenOwner};
use doorward::store::access_tokens::NewToken;
use doorward::store::{Backend, Store, StoreOptions};

use crate::drive::TOKEN_SAMPLE;
use crate::load::Rng;
use crate::seed::World;

/// Doorward's default access token lifetime; bulk rows expire like issued ones.
const ACCESS_TOKEN_LIFETIME: i64 = 7200;
/// Rows to insert per SQLite transaction in the bulk path.
const BULK_BATCH: u64 = 10_000;

/// The columns `Store::insert_token` writes for a bulk row (the product's statement is
/// crate-private; the RFC 8707 and DPoP columns are NULL for these rows).
const INSERT_TOKEN: &str = "INSERT INTO oauth_access_tokens \
     (token_hash, refresh_token_hash, application_id, user_id, grant_id, family, scopes, created_at, expires_at) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)";

/// Concurrent inserting tasks on PostgreSQL: the store's group-commit writer puts what
/// they send at once into one transaction.
const PG_WRITERS: u64 = 256;

pub struct Bulk {
    pub inserted: u64,
    /// How the rows were written, for the report.
    pub method: String,
    pub took: Duration,
    /// Access tokens in clear, spread evenly over the inserted rows, owned by root through
    /// the confidential application (W4 and W5 pick from them).
    pub sample: Vec<String>,
}

/// Makes the `i`-th bulk row: minted as the token endpoint mints a token pair
/// (`MintedTokens::new(true)`, a fresh refresh chain), owned by a random seeded user through
/// one of the two applications; every `every`-th is root's through the confidential
/// application and its access token is kept.
struct RowMaker {
    every: u64,
    owners: Vec<i64>,
    conf: i64,
    public: i64,
    root: i64,
    now: i64,
    scopes: ScopeSet,
}

/// One bulk row before it is written.
struct Row {
    tokens: MintedTokens,
    family: [u8; 16],
    app: i64,
    user: i64,
    sampled: bool,
}

impl RowMaker {
    fn make(&self, i: u64, rng: &mut Rng) -> Row {
        let sampled = i.is_multiple_of(self.every);
        let (app, user) = if sampled {
            (self.conf, self.root)
        } else {
            (
                if i.is_multiple_of(2) {
                    self.conf
                } else {
                    self.public
                },
                self.owners[rng.below(self.owners.len())],
            )
        };
        Row {
            tokens: MintedTokens::new(true),
            family: new_family(),
            app,
            user,
            sampled,
        }
    }

    /// What `Store::insert_token` writes for `row`.
    fn new_token<'a>(&self, row: &'a Row) -> NewToken<'a> {
        let owner = TokenOwner {
            application_id: Some(row.app),
            user_id: Some(row.user),
            grant_id: None,
            family: &row.family,
            scopes: "api",
            resources: None,
            audience: None,
            dpop_jkt: None,
        };
        row.tokens.row(&owner, self.now, ACCESS_TOKEN_LIFETIME)
    }

    /// The access token in clear of a sampled row, for W4 and W5.
    fn keep(&self, row: Row, sample: &mut Vec<String>) {
        if row.sampled {
            sample.push(
                row.tokens
                    .response(&self.scopes, self.now, ACCESS_TOKEN_LIFETIME)
                    .access_token,
            );
        }
    }

    /// Makes row `i` and writes it with `Store::insert_token`.
    async fn insert(
        &self,
        store: &Store,
        i: u64,
        rng: &mut Rng,
        sample: &mut Vec<String>,
    ) -> anyhow::Result<()> {
        let row = self.make(i, rng);
        store.insert_token(&self.new_token(&row)).await?;
        self.keep(row, sample);
        Ok(())
    }
}

/// `need` token rows, each minted as the token endpoint mints them, with the server
/// stopped. PostgreSQL: `Store::insert_token` itself, from [`PG_WRITERS`] tasks at once.
/// SQLite (one write lock): the first row through `Store::insert_token`, the rest with the
/// same columns through rusqlite in transactions of [`BULK_BATCH`] rows (10^7 rows in a few
/// minutes).
pub async fn bulk_tokens(
    backend: Backend,
    url: &str,
    need: u64,
    world: &World,
) -> anyhow::Result<Bulk> {
    let method = match backend {
        Backend::Sqlite => format!(
            "doorward::store::Store::insert_token for the first row, then its INSERT statement through rusqlite in {BULK_BATCH}-row transactions (BEGIN IMMEDIATE), one writer"
        ),
        Backend::Postgres => format!(
            "doorward::store::Store::insert_token from {PG_WRITERS} tasks (the store's group-commit writer batches them)"
        ),
    };
    if need == 0 {
        return Ok(Bulk {
            inserted: 0,
            method,
            took: Duration::ZERO,
            sample: Vec::new(),
        });
    }
    println!("bulk-inserting {need} token rows ({method})...");
    let maker = Arc::new(RowMaker {
        every: (need / TOKEN_SAMPLE as u64).max(1),
        owners: world
            .user_ids
            .iter()
            .copied()
            .chain([world.root_id])
            .collect(),
        conf: world.conf_id,
        public: world.public_id,
        root: world.root_id,
        now: Clock::system().now(),
        scopes: ScopeSet::parse("api").unwrap_or_default(),
    });
    let store = Store::connect(
        url,
        &StoreOptions {
            max_connections: 8,
            acquire_timeout: Duration::from_secs(60),
        },
    )?;
    let started = Instant::now();
    let done = Arc::new(AtomicU64::new(0));
    let progress = {
        let done = done.clone();
        move |n: u64| {
            let before = done.fetch_add(n, Ordering::Relaxed);
            if (before + n) / 100_000 > before / 100_000 {
                println!(
                    "  {} rows, {:.0} rows/s",
                    before + n,
                    (before + n) as f64 / started.elapsed().as_secs_f64()
                );
            }
        }
    };
    let mut sample = Vec::new();
    match backend {
        Backend::Postgres => {
            let writers = PG_WRITERS;
            let mut tasks = tokio::task::JoinSet::new();
            for w in 0..writers {
                let (store, maker, progress) = (store.clone(), maker.clone(), progress.clone());
                tasks.spawn(async move {
                    let mut rng = Rng::new(w + 7);
                    let mut sample = Vec::new();
                    let mut i = w;
                    while i < need {
                        maker.insert(&store, i, &mut rng, &mut sample).await?;
                        progress(1);
                        i += writers;
                    }
                    anyhow::Ok(sample)
                });
            }
            while let Some(r) = tasks.join_next().await {
                sample.extend(r??);
            }
        }
        Backend::Sqlite => {
            let mut rng = Rng::new(7);
            // Row 0 through the store's own function...
            maker.insert(&store, 0, &mut rng, &mut sample).await?;
            progress(1);
            // ...and the rest with the same columns, many rows per transaction.
            let path = sqlx::sqlite::SqliteConnectOptions::from_str(url)?
                .get_filename()
                .to_path_buf();
            let maker = maker.clone();
            let rest = tokio::task::spawn_blocking(move || {
                sqlite_rows(&path, &maker, need, &mut rng, progress)
            })
            .await??;
            sample.extend(rest);
        }
    }
    let took = started.elapsed();
    store.close().await;
    println!(
        "  {need} rows in {:.1} s ({:.0} rows/s)",
        took.as_secs_f64(),
        need as f64 / took.as_secs_f64()
    );
    sample.truncate(TOKEN_SAMPLE);
    Ok(Bulk {
        inserted: need,
        method,
        took,
        sample,
    })
}

/// Rows 1 to `need` on SQLite, straight through rusqlite; returns the sampled access tokens.
fn sqlite_rows(
    path: &std::path::Path,
    maker: &RowMaker,
    need: u64,
    rng: &mut Rng,
    progress: impl Fn(u64),
) -> anyhow::Result<Vec<String>> {
    let mut conn = rusqlite::Connection::open(path)?;
    conn.execute_batch("PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;")?;
    let mut sample = Vec::new();
    let mut i = 1;
    while i < need {
        let end = (i + BULK_BATCH).min(need);
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        {
            let mut insert = tx.prepare_cached(INSERT_TOKEN)?;
            for j in i..end {
                let row = maker.make(j, rng);
                let t = maker.new_token(&row);
                insert.execute(rusqlite::params![
                    t.token_hash,
                    t.refresh_token_hash,
                    t.application_id,
                    t.user_id,
                    t.grant_id,
                    t.family,
                    t.scopes,
                    t.created_at,
                    t.expires_at,
                ])?;
                maker.keep(row, &mut sample);
            }
        }
        tx.commit()?;
        progress(end - i);
        i = end;
    }
    Ok(sample)
}
