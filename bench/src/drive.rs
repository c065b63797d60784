//! Driving the workloads on one backend: each workload's inputs, its runs at every
//! connection count, and how each measured run is recorded (with, on SQLite, the sizes of
//! the database and its WAL as the run left them).

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use doorward::store::Backend;

use crate::Settings;
use crate::db::{PgWal, count_tokens, sqlite_sizes};
use crate::load::{self, Plan, Workload};
use crate::report::Measured;
use crate::seed::{self, World};
use crate::server::Process;
use crate::workloads::{self as wl, TokenPair};

/// How many tokens W4 and W5 pick from at random, on the small and the large table alike.
pub const TOKEN_SAMPLE: usize = 1_000;
/// Connections used to mint codes through /oauth/authorize.
const MINT_CONNECTIONS: usize = 32;

/// What a run's `rows` column shows: the rows of `oauth_access_tokens` when it started.
#[derive(Clone, Copy, Debug)]
pub enum Rows {
    /// Known without asking (nothing has written tokens since it was counted).
    Known(i64),
    /// Counted just before the run.
    Count,
    /// Not relevant to the workload.
    Irrelevant,
}

/// The measured runs of one backend, recorded (and printed) as they finish.
pub struct Runs<'a> {
    pub name: &'static str,
    pub backend: Backend,
    pub url: &'a str,
    /// SQLite's database file.
    sqlite_file: PathBuf,
    pub s: &'a Settings,
    /// The baseline's requests/s by connection count.
    ceiling: &'a BTreeMap<usize, f64>,
    pub list: Vec<Measured>,
}

impl<'a> Runs<'a> {
    pub fn new(
        backend: Backend,
        url: &'a str,
        sqlite_file: PathBuf,
        s: &'a Settings,
        ceiling: &'a BTreeMap<usize, f64>,
    ) -> Runs<'a> {
        Runs {
            name: match backend {
                Backend::Sqlite => "sqlite",
                Backend::Postgres => "postgres",
            },
            backend,
            url,
            sqlite_file,
            s,
            ceiling,
            list: Vec::new(),
        }
    }

    pub fn ceiling(&self, connections: usize) -> Option<f64> {
        self.ceiling.get(&connections).copied()
    }

    pub async fn count_tokens(&self) -> anyhow::Result<i64> {
        count_tokens(self.backend, self.url).await
    }

    async fn rows(&self, rows: Rows) -> anyhow::Result<Option<i64>> {
        Ok(match rows {
            Rows::Known(n) => Some(n),
            Rows::Count => Some(self.count_tokens().await?),
            Rows::Irrelevant => None,
        })
    }

    /// Prints `m` and keeps it; on SQLite, with the sizes of the database and its
    /// write-ahead log as the run left them (the server is still up, so the WAL is as large
    /// as the run made it).
    pub fn record(&mut self, mut m: Measured) {
        if self.backend == Backend::Sqlite {
            m.db_bytes = Some(sqlite_sizes(&self.sqlite_file));
        }
        m.print_line();
        self.list.push(m);
    }

    /// One run of `w` on `p` with `plan` (the baseline's figure at its connection count
    /// attached), not yet recorded.
    pub async fn measure(
        &self,
        p: &Process,
        id: &str,
        label: &str,
        rows: Rows,
        w: Arc<dyn Workload>,
        plan: &Plan,
    ) -> anyhow::Result<Measured> {
        let rows = self.rows(rows).await?;
        let postgres = self.backend == Backend::Postgres;
        let wal_before = if postgres {
            Some(PgWal::read(self.url).await?)
        } else {
            None
        };
        let o = load::run(p.addr, w, plan, p.pid).await?;
        let mut m = Measured::new(self.name, id, label, plan.connections, rows, o)
            .ceiling(self.ceiling(plan.connections));
        if let Some(before) = wal_before {
            m.pg_wal = Some(PgWal::read(self.url).await?.since(before));
        }
        Ok(m)
    }

    /// Workload `id`, when it is wanted, for `--duration` at each connection count; `note`
    /// annotates each run ([`no_note`] for none).
    pub async fn sweep(
        &mut self,
        p: &Process,
        id: &str,
        label: &str,
        rows: Rows,
        w: Arc<dyn Workload>,
        note: impl Fn(&Measured) -> String,
    ) -> anyhow::Result<()> {
        if !self.s.wants(id) {
            return Ok(());
        }
        let s = self.s;
        for &c in &s.connections {
            let m = self
                .measure(p, id, label, rows, w.clone(), &Plan::timed(c, s.duration))
                .await?;
            let text = note(&m);
            self.record(m.note(text));
        }
        Ok(())
    }
}

pub fn no_note(_: &Measured) -> String {
    String::new()
}

/// At most [`TOKEN_SAMPLE`] tokens, spread evenly over `tokens`.
pub fn sample(tokens: &[String]) -> Vec<String> {
    let step = (tokens.len() / TOKEN_SAMPLE).max(1);
    tokens
        .iter()
        .step_by(step)
        .take(TOKEN_SAMPLE)
        .cloned()
        .collect()
}

/// The reads, W4 and W5, on a table of `rows` token rows; `tokens` are live access tokens
/// of root's through the confidential application. Returns W4's workload (W7 reuses it).
pub async fn reads(
    runs: &mut Runs<'_>,
    p: &Process,
    world: &World,
    tokens: &[String],
    rows: i64,
) -> anyhow::Result<Arc<wl::BearerUser>> {
    let bearer = Arc::new(wl::BearerUser {
        tokens: tokens.iter().map(|t| wl::bearer(t)).collect(),
    });
    let introspect = Arc::new(wl::Introspect::new(world.conf_basic.clone(), tokens));
    let rows = Rows::Known(rows);
    let label = "bearer: GET /api/v4/user";
    runs.sweep(p, "W4", label, rows, bearer.clone(), no_note)
        .await?;
    let label = "POST /oauth/introspect";
    runs.sweep(p, "W5", label, rows, introspect, no_note)
        .await?;
    Ok(bearer)
}

/// W1: client_credentials. Returns its workload (W7 reuses it).
pub async fn client_credentials(
    runs: &mut Runs<'_>,
    p: &Process,
    world: &World,
) -> anyhow::Result<Arc<wl::ClientCredentials>> {
    let cc = Arc::new(wl::ClientCredentials {
        basic: world.conf_basic.clone(),
    });
    let label = "client_credentials (Basic)";
    runs.sweep(p, "W1", label, Rows::Count, cc.clone(), no_note)
        .await?;
    Ok(cc)
}

/// W3: codes minted through /oauth/authorize just before each run (W3a), then exchanged.
/// The refresh tokens issued join `pool`, for W2.
pub async fn code_exchange(
    runs: &mut Runs<'_>,
    p: &Process,
    world: &World,
    pool: &wl::RefreshPool,
) -> anyhow::Result<()> {
    let s = runs.s;
    let mint_conns = MINT_CONNECTIONS.min(*s.connections.iter().max().unwrap_or(&32));
    for &c in s.connections.iter().filter(|_| s.wants("W3")) {
        let (codes, minted) = seed::mint_codes(p, world, None, s.duration, mint_conns).await?;
        let n = codes.len();
        let mint_rate = minted.rate();
        runs.record(
            Measured::new(
                runs.name,
                "W3a",
                "GET /oauth/authorize (mints W3's codes)",
                mint_conns,
                None,
                minted,
            )
            .ceiling(runs.ceiling(mint_conns)),
        );
        let rows = runs.count_tokens().await?;
        let (issued, o) = seed::exchange_codes(p, world, codes, s.duration, c).await?;
        let mut note = format!("{n} codes minted at {mint_rate:.0}/s through /oauth/authorize");
        if o.exhausted {
            note.push_str(&format!("; ran out after {:.1} s", o.elapsed.as_secs_f64()));
        }
        if let Ok(mut pool) = pool.lock() {
            pool.extend(issued.into_iter().filter_map(|p| p.refresh_token));
        }
        runs.record(
            Measured::new(
                runs.name,
                "W3",
                "authorization_code exchange (Basic, PKCE S256)",
                c,
                Some(rows),
                o,
            )
            .ceiling(runs.ceiling(c))
            .note(note),
        );
    }
    Ok(())
}

/// The FIFO pool of never-presented refresh tokens W2 starts from.
pub fn refresh_pool(pairs: &[TokenPair]) -> wl::RefreshPool {
    Arc::new(Mutex::new(
        pairs
            .iter()
            .filter_map(|p| p.refresh_token.clone())
            .collect::<VecDeque<_>>(),
    ))
}

/// W2: refresh rotation from the pool. Returns its workload (W7 reuses it).
pub async fn refresh(
    runs: &mut Runs<'_>,
    p: &Process,
    world: &World,
    pool: &wl::RefreshPool,
) -> anyhow::Result<Arc<wl::Refresh>> {
    let s = runs.s;
    let refresh = Arc::new(wl::Refresh {
        basic: world.conf_basic.clone(),
        pool: pool.clone(),
        id_token: None,
    });
    for &c in s.connections.iter().filter(|_| s.wants("W2")) {
        let plan = Plan::timed(c, s.duration);
        let label = "refresh_token rotation (Basic)";
        let rows = runs.count_tokens().await?;
        let size = pool.lock().map(|p| p.len()).unwrap_or(0);
        let m = runs
            .measure(p, "W2", label, Rows::Known(rows), refresh.clone(), &plan)
            .await?;
        runs.record(m.note(format!("FIFO pool of {size} unused refresh tokens from the code flow; each answer's new refresh token joins the back")));
    }
    Ok(refresh)
}

/// W7: the mix of W4 (on the large table), W1 and W2, in six throughput buckets.
pub async fn mix(
    runs: &mut Runs<'_>,
    p: &Process,
    bearer: Arc<dyn Workload>,
    cc: Arc<dyn Workload>,
    refresh: Arc<dyn Workload>,
) -> anyhow::Result<()> {
    let s = runs.s;
    if !s.wants("W7") {
        return Ok(());
    }
    let mix = Arc::new(wl::Mix {
        parts: vec![(70, bearer), (20, cc), (10, refresh)],
    });
    let plan = Plan {
        connections: s.mix_connections,
        duration: s.mix_duration,
        per_connection: None,
        bucket: Some(s.mix_duration / 6),
    };
    let label = "mix: 70 % W4, 20 % W1, 10 % W2";
    let m = runs
        .measure(p, "W7", label, Rows::Count, mix, &plan)
        .await?;
    runs.record(m);
    Ok(())
}
