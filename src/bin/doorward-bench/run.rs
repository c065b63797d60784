//! One benchmark run: the baseline, then each backend: start, seed, W1–W7, restart, bulk
//! load, the large-table runs and the mix.

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::str::FromStr;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use axum::body::Bytes;
use axum::http::header::{self, HeaderValue};
use axum::http::response::Parts;
use axum::http::{Method, Request, StatusCode};
use doorward::domain::clock::Clock;
use doorward::domain::scope::ScopeSet;
use doorward::domain::secret;
use doorward::oauth::issue::{MintedTokens, TokenOwner, new_family};
use doorward::store::{Backend, Store, StoreOptions};
use serde_json::{Value, json};

use crate::load::{self, Body, Outcome, Plan, Rng, Workload};
use crate::report::{self, Measured};
use crate::server::{Process, free_addr};
use crate::workloads::{self as wl, TokenPair};
use crate::{Args, Settings};

const ROOT_PASSWORD: &str = "bench-root-password-0123456789";
const SECRET_KEY: &str = "doorward-bench-secret-key-0123456789abcdef";
const REDIRECT_URI: &str = "http://127.0.0.1:9/callback";
/// Doorward's default access token lifetime; bulk rows expire like issued ones.
const ACCESS_TOKEN_LIFETIME: i64 = 7200;
/// How many tokens W4 and W5 pick from at random, on the small and the large table alike.
const TOKEN_SAMPLE: usize = 1_000;
/// Connections used to mint codes through /oauth/authorize.
const MINT_CONNECTIONS: usize = 32;

pub async fn bench(args: Args) -> anyhow::Result<bool> {
    let s = Settings::from_args(&args);
    if cfg!(debug_assertions) && !s.smoke {
        eprintln!(
            "warning: this is a debug build; its numbers mean nothing. Use `cargo run --release --bin doorward-bench`."
        );
    }
    let bin = match &args.doorward_bin {
        Some(p) => p.clone(),
        None => build_doorward()?,
    };
    let self_exe = std::env::current_exe()?;
    let work = std::env::temp_dir().join(format!("doorward-bench-{}", std::process::id()));
    std::fs::create_dir_all(&work)?;
    // Removed on every way out, errors included, unless --keep.
    let _scratch = Scratch {
        path: work.clone(),
        keep: s.keep,
    };
    let machine = crate::procfs::machine();
    println!(
        "doorward-bench: {} cores, {}; doorward at {}; scratch {}",
        machine["cores"],
        machine["cpu_model"].as_str().unwrap_or("?"),
        bin.display(),
        work.display()
    );

    let started = time::OffsetDateTime::now_utc();
    let load_at_start = crate::procfs::load_average();
    if load_at_start > 0.5 {
        eprintln!(
            "warning: the 1-minute load average is {load_at_start:.2}: other work on this machine will skew the numbers (see other% in the table)"
        );
    }
    let system_before = crate::procfs::system_cpu_seconds().unwrap_or_default();
    let own_before = crate::procfs::cpu_seconds(std::process::id()).unwrap_or(0.0);
    let argon2_started = Instant::now();
    let argon2 = argon2_rates(s.argon2_duration).await?;
    let argon2_other = ((crate::procfs::system_cpu_seconds().unwrap_or_default().0
        - system_before.0)
        - (crate::procfs::cpu_seconds(std::process::id()).unwrap_or(0.0) - own_before))
        .max(0.0)
        / argon2_started.elapsed().as_secs_f64()
        * 100.0;
    println!(
        "argon2id (m=19456, t=2, p=1) on {} threads: {:.1} hashes/s raw (buffer reused), {:.1} hashes/s allocating 19 MiB per hash (other CPU meanwhile: {argon2_other:.0} %)",
        argon2.threads, argon2.raw, argon2.allocating
    );

    let (baseline, ceiling) = run_baseline(&self_exe, &work, &s).await?;

    let mut backends = Vec::new();
    if !args.no_sqlite {
        let dir = work.join("sqlite");
        std::fs::create_dir_all(&dir)?;
        let url = format!(
            "sqlite://{}",
            dir.join("data").join("doorward.db").display()
        );
        backends
            .push(run_backend(&bin, Backend::Sqlite, &url, &dir, &s, &ceiling, argon2.raw).await?);
    }
    if let Some(admin) = &args.postgres {
        let dir = work.join("postgres");
        std::fs::create_dir_all(&dir)?;
        let (url, name) = create_pg_database(admin).await?;
        let result = run_backend(
            &bin,
            Backend::Postgres,
            &url,
            &dir,
            &s,
            &ceiling,
            argon2.raw,
        )
        .await;
        drop_pg_database(admin, &name).await;
        backends.push(result?);
    }

    let errors: u64 = baseline.iter().map(|m| m.outcome.errors).sum::<u64>()
        + backends
            .iter()
            .flat_map(|b| b.runs.iter())
            .map(|m| m.outcome.errors)
            .sum::<u64>();
    let doc = json!({
        "format": 1,
        "started_at": started.unix_timestamp(),
        "command": std::env::args().collect::<Vec<_>>().join(" "),
        "smoke": s.smoke,
        "build": if cfg!(debug_assertions) { "debug" } else { "release" },
        "git": git_describe(),
        "machine": machine,
        "load_average_at_start": load_at_start,
        "settings": {
            "duration_s": s.duration.as_secs_f64(),
            "connections": s.connections,
            "mix_duration_s": s.mix_duration.as_secs_f64(),
            "mix_connections": s.mix_connections,
            "small_table": s.small_table,
            "large_table": s.large_table,
            "password_burst": s.password_burst,
            "users": s.users,
            "only": s.only,
            "server_env": s.server_env.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>(),
        },
        "load_generator": "doorward-bench's own (src/bin/doorward-bench/client.rs): minimal HTTP/1.1 keep-alive connections, closed loop, one tokio task per connection, in the harness process (multi-threaded tokio runtime, one worker per core)",
        "argon2": {
            "params": "argon2id m=19456 t=2 p=1",
            "threads": argon2.threads,
            "raw_hashes_per_s": argon2.raw,
            "raw_method": "argon2::Argon2::hash_password_into_with_memory into a block buffer allocated once per thread",
            "allocating_hashes_per_s": argon2.allocating,
            "allocating_method": "doorward::domain::password::hash_blocking (allocates the 19 MiB per hash, as the server's verify does)",
            "other_cpu_percent": argon2_other,
        },
        "baseline": baseline.iter().map(|m| m.to_json()).collect::<Vec<_>>(),
        "backends": backends.iter().map(|b| b.to_json()).collect::<Vec<_>>(),
        "total_errors": errors,
    });
    println!();
    println!(
        "cpu%, gen%, other%: CPU of the server, of the load generator and of everything else on the machine, in % of one core ({} cores)",
        machine["cores"]
    );
    report::print_table(&baseline, &backends);
    for b in &backends {
        report::print_backend_summary(b);
    }
    let path = report::write_json(&args.out, &started, s.smoke, &doc)?;
    println!("\nJSON: {}", path.display());
    if s.keep {
        println!("kept the data directories and logs in {}", work.display());
    }
    if errors > 0 {
        eprintln!("{errors} request(s) failed; see error_samples in the JSON");
    }
    Ok(!s.smoke || errors == 0)
}

/// The run's scratch directory (data directories, server logs).
struct Scratch {
    path: PathBuf,
    keep: bool,
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// `cargo build --bin doorward` in this binary's profile; returns the binary beside us.
fn build_doorward() -> anyhow::Result<PathBuf> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "--bin", "doorward", "--manifest-path", manifest]);
    if !cfg!(debug_assertions) {
        cmd.arg("--release");
    }
    println!("building: {cmd:?}");
    let status = cmd.status().context("cannot run cargo")?;
    if !status.success() {
        bail!("building doorward failed");
    }
    let exe = std::env::current_exe()?;
    let bin = exe
        .parent()
        .context("no directory for this executable")?
        .join("doorward");
    if !bin.exists() {
        bail!("{} was not built", bin.display());
    }
    Ok(bin)
}

fn git_describe() -> Value {
    let dir = env!("CARGO_MANIFEST_DIR");
    let out = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .current_dir(dir)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    json!({
        "commit": out(&["rev-parse", "HEAD"]),
        "dirty": out(&["status", "--porcelain", "--untracked-files=no"]).map(|s| !s.is_empty()),
    })
}

/// Argon2id hashes per second on all cores at Doorward's parameters (m=19456 KiB, t=2,
/// p=1), measured two ways in this process:
/// - `raw`: the `argon2` crate hashing into a 19 MiB block buffer each thread allocated
///   once (pure computation; the rate W6 is judged against);
/// - `allocating`: Doorward's own `hash_blocking`, which allocates (and frees) the 19 MiB
///   for every hash, as each verification in the server does.
#[derive(Clone, Copy, Debug)]
pub struct Argon2Rates {
    pub raw: f64,
    pub allocating: f64,
    pub threads: usize,
}

async fn argon2_rates(duration: Duration) -> anyhow::Result<Argon2Rates> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let raw = tokio::task::spawn_blocking(move || {
        hash_rate(threads, duration, |i| {
            let params = argon2::Params::new(19 * 1024, 2, 1, Some(32))
                .map_err(|e| anyhow::anyhow!("argon2 parameters: {e}"))?;
            let hasher = argon2::Argon2::new(
                argon2::Algorithm::Argon2id,
                argon2::Version::V0x13,
                params.clone(),
            );
            let mut blocks = vec![argon2::Block::default(); params.block_count()];
            let password = format!("bench-password-{i}");
            let salt = secret::random_bytes::<16>();
            let mut out = [0u8; 32];
            Ok(Box::new(move || {
                hasher
                    .hash_password_into_with_memory(
                        password.as_bytes(),
                        &salt,
                        &mut out,
                        &mut blocks,
                    )
                    .is_ok()
            }) as Box<dyn FnMut() -> bool + Send>)
        })
    })
    .await??;
    let allocating = tokio::task::spawn_blocking(move || {
        hash_rate(threads, duration, |i| {
            let password = format!("bench-password-{i}");
            Ok(
                Box::new(move || doorward::domain::password::hash_blocking(&password).is_ok())
                    as Box<dyn FnMut() -> bool + Send>,
            )
        })
    })
    .await??;
    Ok(Argon2Rates {
        raw,
        allocating,
        threads,
    })
}

type HashFn = Box<dyn FnMut() -> bool + Send>;

/// Runs `make(i)()` on `threads` threads for `duration`; successful calls per second.
fn hash_rate(
    threads: usize,
    duration: Duration,
    make: impl Fn(usize) -> anyhow::Result<HashFn>,
) -> anyhow::Result<f64> {
    let mut work = Vec::new();
    for i in 0..threads {
        let mut f = make(i)?;
        // One warm-up hash (first touch of the buffer), outside the clock.
        f();
        work.push(f);
    }
    let start = Instant::now();
    let deadline = start + duration;
    let handles: Vec<_> = work
        .into_iter()
        .map(|mut f| {
            std::thread::spawn(move || {
                let mut n = 0u64;
                while Instant::now() < deadline {
                    if f() {
                        n += 1;
                    }
                }
                (n, Instant::now())
            })
        })
        .collect();
    let mut total = 0;
    let mut end = start;
    for h in handles {
        let (n, t) = h
            .join()
            .map_err(|_| anyhow::anyhow!("hash thread panicked"))?;
        total += n;
        end = end.max(t);
    }
    Ok(total as f64 / (end - start).as_secs_f64())
}

async fn run_baseline(
    self_exe: &Path,
    work: &Path,
    s: &Settings,
) -> anyhow::Result<(Vec<Measured>, BTreeMap<usize, f64>)> {
    let addr = free_addr()?;
    let mut p = Process::spawn(
        self_exe,
        &["hello", "--listen", &addr.to_string()],
        &[],
        addr,
        work.join("hello.log"),
    )?;
    p.wait_ready("/", Duration::from_secs(30)).await?;
    println!("{}", report::header());
    let mut conns = s.connections.clone();
    if !conns.contains(&s.mix_connections) {
        conns.push(s.mix_connections);
    }
    let mut out = Vec::new();
    let mut ceiling = BTreeMap::new();
    for c in conns {
        let o = load::run(
            addr,
            Arc::new(wl::Hello),
            &Plan::timed(c, s.duration),
            p.pid,
        )
        .await?;
        ceiling.insert(c, o.rate());
        let m = Measured::new(
            "baseline",
            "ceiling",
            "hello world (axum, GET /)",
            c,
            None,
            o,
        );
        m.print_line();
        out.push(m);
    }
    p.stop().await?;
    Ok((out, ceiling))
}

/// Everything measured on one backend.
pub struct BackendRun {
    pub backend: &'static str,
    pub startup: Value,
    pub seeding: Value,
    pub runs: Vec<Measured>,
    pub argon2_rate: f64,
}

impl BackendRun {
    pub fn to_json(&self) -> Value {
        json!({
            "backend": self.backend,
            "startup": self.startup,
            "seeding": self.seeding,
            "runs": self.runs.iter().map(|m| m.to_json()).collect::<Vec<_>>(),
            "targets": report::targets(self).iter().map(|t| t.to_json()).collect::<Vec<_>>(),
        })
    }
}

/// The seeded world a backend's workloads use.
struct World {
    addr: std::net::SocketAddr,
    conf_basic: HeaderValue,
    conf_id: i64,
    public_id: i64,
    root_id: i64,
    user_ids: Vec<i64>,
    users: Vec<(String, String)>,
    cookie: HeaderValue,
    verifier: String,
    authorize_path: String,
}

#[allow(clippy::too_many_arguments)]
async fn run_backend(
    bin: &Path,
    backend: Backend,
    url: &str,
    dir: &Path,
    s: &Settings,
    ceiling: &BTreeMap<usize, f64>,
    argon2_rate: f64,
) -> anyhow::Result<BackendRun> {
    let name = match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };
    println!("\n== {name} ==");
    let addr = free_addr()?;
    let env: Vec<(String, String)> = [
        ("DOORWARD_LISTEN", addr.to_string()),
        ("DOORWARD_DATA_DIR", dir.join("data").display().to_string()),
        ("DOORWARD_DATABASE_URL", url.to_string()),
        ("DOORWARD_ROOT_PASSWORD", ROOT_PASSWORD.to_string()),
        ("DOORWARD_SECRET_KEY", SECRET_KEY.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .chain(s.server_env.iter().cloned())
    .collect();
    let mut log_no = 0;
    let mut start = |dir: &Path| -> anyhow::Result<Process> {
        log_no += 1;
        Process::spawn(
            bin,
            &["serve"],
            &env,
            addr,
            dir.join(format!("doorward-{log_no}.log")),
        )
    };
    let ready_timeout = Duration::from_secs(120);

    // A fresh start.
    let mut p = start(dir)?;
    let ready_fresh = p.wait_ready("/-/readiness", ready_timeout).await?;
    tokio::time::sleep(s.settle).await;
    let idle_fresh = crate::procfs::status_kb(p.pid, "VmRSS").unwrap_or(0);
    println!(
        "started on a fresh database: ready in {:.1} ms, idle RSS {:.1} MiB",
        ms(ready_fresh),
        idle_fresh as f64 / 1024.0
    );

    // Seeding through the CLI and the API.
    let seed_started = Instant::now();
    let world = seed(bin, &env, &p, s).await?;
    let seed_api = seed_started.elapsed();
    let mut runs: Vec<Measured> = Vec::new();
    let sqlite_file = dir.join("data").join("doorward.db");
    let mut record = |mut m: Measured| {
        if backend == Backend::Sqlite {
            // The database and its write-ahead log as the run left them (the server is
            // still up, so the WAL is as large as the run made it).
            let size = |suffix: &str| {
                let mut path = sqlite_file.clone().into_os_string();
                path.push(suffix);
                std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
            };
            m.db_bytes = Some((size(""), size("-wal")));
        }
        m.print_line();
        runs.push(m);
    };
    let ratio_base = |c: usize| ceiling.get(&c).copied();

    // The small table: tokens issued through the real code flow.
    let t = Instant::now();
    let codes = mint_codes(
        &p,
        &world,
        Some(s.small_table as usize),
        Duration::from_secs(600),
        16,
    )
    .await?
    .0;
    let (pairs, _) = exchange_codes(&p, &world, codes, Duration::from_secs(600), 16).await?;
    if pairs.len() as u64 != s.small_table {
        bail!(
            "the code flow issued {} tokens, not {}",
            pairs.len(),
            s.small_table
        );
    }
    let small_seed = t.elapsed();
    let small_rows = count_tokens(backend, url).await?;
    println!(
        "seeded {} users, 2 applications, {} token pairs through the code flow ({:.1} s); oauth_access_tokens has {small_rows} rows",
        world.users.len(),
        pairs.len(),
        (seed_api + small_seed).as_secs_f64()
    );
    let small_tokens: Vec<String> = pairs.iter().map(|p| p.access_token.clone()).collect();
    let pool: wl::RefreshPool = Arc::new(Mutex::new(
        pairs
            .iter()
            .filter_map(|p| p.refresh_token.clone())
            .collect::<VecDeque<_>>(),
    ));

    // W4 and W5 on the small table.
    let bearer_small = Arc::new(wl::BearerUser {
        tokens: sample(&small_tokens)
            .iter()
            .map(|t| wl::bearer(t))
            .collect(),
    });
    let introspect_small = Arc::new(wl::Introspect::new(
        world.conf_basic.clone(),
        &sample(&small_tokens),
    ));
    for &c in s.connections.iter().filter(|_| s.wants("W4")) {
        let o = load::run(
            addr,
            bearer_small.clone(),
            &Plan::timed(c, s.duration),
            p.pid,
        )
        .await?;
        record(
            Measured::new(
                name,
                "W4",
                "bearer: GET /api/v4/user",
                c,
                Some(small_rows),
                o,
            )
            .ceiling(ratio_base(c)),
        );
    }
    for &c in s.connections.iter().filter(|_| s.wants("W5")) {
        let o = load::run(
            addr,
            introspect_small.clone(),
            &Plan::timed(c, s.duration),
            p.pid,
        )
        .await?;
        record(
            Measured::new(name, "W5", "POST /oauth/introspect", c, Some(small_rows), o)
                .ceiling(ratio_base(c)),
        );
    }

    // W1.
    let cc = Arc::new(wl::ClientCredentials {
        basic: world.conf_basic.clone(),
    });
    for &c in s.connections.iter().filter(|_| s.wants("W1")) {
        let rows = count_tokens(backend, url).await?;
        let o = load::run(addr, cc.clone(), &Plan::timed(c, s.duration), p.pid).await?;
        record(
            Measured::new(name, "W1", "client_credentials (Basic)", c, Some(rows), o)
                .ceiling(ratio_base(c)),
        );
    }

    // W3: codes minted through /oauth/authorize just before each run, then exchanged.
    let mint_conns = MINT_CONNECTIONS.min(*s.connections.iter().max().unwrap_or(&32));
    for &c in s.connections.iter().filter(|_| s.wants("W3")) {
        let (codes, minted) = mint_codes(&p, &world, None, s.duration, mint_conns).await?;
        let n = codes.len();
        let mint_rate = minted.rate();
        record(
            Measured::new(
                name,
                "W3a",
                "GET /oauth/authorize (mints W3's codes)",
                mint_conns,
                None,
                minted,
            )
            .ceiling(ratio_base(mint_conns)),
        );
        let rows = count_tokens(backend, url).await?;
        let (issued, o) = exchange_codes(&p, &world, codes, s.duration, c).await?;
        let mut note = format!("{n} codes minted at {mint_rate:.0}/s through /oauth/authorize");
        if o.exhausted {
            note.push_str(&format!("; ran out after {:.1} s", o.elapsed.as_secs_f64()));
        }
        if let Ok(mut pool) = pool.lock() {
            pool.extend(issued.into_iter().filter_map(|p| p.refresh_token));
        }
        record(
            Measured::new(
                name,
                "W3",
                "authorization_code exchange (Basic, PKCE S256)",
                c,
                Some(rows),
                o,
            )
            .ceiling(ratio_base(c))
            .note(note),
        );
    }

    // W2: refresh rotation from the pool.
    let refresh = Arc::new(wl::Refresh {
        basic: world.conf_basic.clone(),
        pool: pool.clone(),
    });
    for &c in s.connections.iter().filter(|_| s.wants("W2")) {
        let rows = count_tokens(backend, url).await?;
        let size = pool.lock().map(|p| p.len()).unwrap_or(0);
        let o = load::run(addr, refresh.clone(), &Plan::timed(c, s.duration), p.pid).await?;
        record(
            Measured::new(name, "W2", "refresh_token rotation (Basic)", c, Some(rows), o)
                .ceiling(ratio_base(c))
                .note(format!("FIFO pool of {size} unused refresh tokens from the code flow; each answer's new refresh token joins the back")),
        );
    }

    // W6: the password grant, against the raw Argon2id rate.
    let password = Arc::new(wl::Password::new(world.conf_basic.clone(), &world.users));
    for &c in s.connections.iter().filter(|_| s.wants("W6")) {
        let o = load::run(addr, password.clone(), &Plan::timed(c, s.duration), p.pid).await?;
        let pct = 100.0 * o.rate() / argon2_rate;
        record(
            Measured::new(name, "W6", "password grant (Argon2id verify)", c, None, o)
                .ceiling(ratio_base(c))
                .note(format!(
                    "{pct:.0} % of the raw Argon2id rate ({argon2_rate:.1}/s)"
                )),
        );
    }
    let burst = Plan {
        connections: s.password_burst,
        duration: Duration::from_secs(900),
        per_connection: Some(1),
        bucket: None,
    };
    if s.wants("W6") {
        let o = load::run(addr, password.clone(), &burst, p.pid).await?;
        record(
            Measured::new(
                name,
                "W6b",
                "password grant, one attempt per connection, all at once",
                s.password_burst,
                None,
                o,
            )
            .note(format!("{} concurrent attempts", s.password_burst)),
        );
    }

    // A restart on the existing database.
    p.stop().await?;
    let mut p = start(dir)?;
    let ready_existing = p.wait_ready("/-/readiness", ready_timeout).await?;
    tokio::time::sleep(s.settle).await;
    let idle_existing = crate::procfs::status_kb(p.pid, "VmRSS").unwrap_or(0);
    let rows_before_bulk = count_tokens(backend, url).await?;
    println!(
        "restarted on the existing database ({rows_before_bulk} token rows): ready in {:.1} ms, idle RSS {:.1} MiB",
        ms(ready_existing),
        idle_existing as f64 / 1024.0
    );
    p.stop().await?;

    // The large table: bulk rows through the store's own insert, with the server stopped.
    // At least a sample's worth, so W4 and W5 always have live tokens spread over the table
    // (the small table's tokens have been rotated away by W2 by now).
    let large = s.wants("W4") || s.wants("W5") || s.wants("W7");
    let need = if large {
        s.large_table
            .saturating_sub(rows_before_bulk.max(0) as u64)
            .max(TOKEN_SAMPLE as u64)
    } else {
        0
    };
    let bulk = bulk_tokens(backend, url, need, &world).await?;
    let large_rows = count_tokens(backend, url).await?;
    let mut p = start(dir)?;
    let ready_large = p.wait_ready("/-/readiness", ready_timeout).await?;
    tokio::time::sleep(2 * s.settle).await;
    let idle_large = crate::procfs::status_kb(p.pid, "VmRSS").unwrap_or(0);
    println!(
        "restarted with {large_rows} token rows: ready in {:.1} ms, idle RSS {:.1} MiB",
        ms(ready_large),
        idle_large as f64 / 1024.0
    );
    let large_tokens = bulk.sample.clone();
    let bearer_large = Arc::new(wl::BearerUser {
        tokens: large_tokens.iter().map(|t| wl::bearer(t)).collect(),
    });
    let introspect_large = Arc::new(wl::Introspect::new(world.conf_basic.clone(), &large_tokens));
    for &c in s.connections.iter().filter(|_| s.wants("W4")) {
        let o = load::run(
            addr,
            bearer_large.clone(),
            &Plan::timed(c, s.duration),
            p.pid,
        )
        .await?;
        record(
            Measured::new(
                name,
                "W4",
                "bearer: GET /api/v4/user",
                c,
                Some(large_rows),
                o,
            )
            .ceiling(ratio_base(c)),
        );
    }
    for &c in s.connections.iter().filter(|_| s.wants("W5")) {
        let o = load::run(
            addr,
            introspect_large.clone(),
            &Plan::timed(c, s.duration),
            p.pid,
        )
        .await?;
        record(
            Measured::new(name, "W5", "POST /oauth/introspect", c, Some(large_rows), o)
                .ceiling(ratio_base(c)),
        );
    }

    // W7: the mix, on the large table.
    let mix = Arc::new(wl::Mix {
        parts: vec![
            (70, bearer_large.clone() as Arc<dyn Workload>),
            (20, cc.clone() as Arc<dyn Workload>),
            (10, refresh.clone() as Arc<dyn Workload>),
        ],
    });
    let plan = Plan {
        connections: s.mix_connections,
        duration: s.mix_duration,
        per_connection: None,
        bucket: Some(s.mix_duration / 6),
    };
    if s.wants("W7") {
        let rows = count_tokens(backend, url).await?;
        let o = load::run(addr, mix, &plan, p.pid).await?;
        record(
            Measured::new(
                name,
                "W7",
                "mix: 70 % W4, 20 % W1, 10 % W2",
                s.mix_connections,
                Some(rows),
                o,
            )
            .ceiling(ratio_base(s.mix_connections)),
        );
    }
    p.stop().await?;

    Ok(BackendRun {
        backend: name,
        startup: json!({
            "ready_fresh_ms": ms(ready_fresh),
            "idle_rss_fresh_kib": idle_fresh,
            "ready_existing_ms": ms(ready_existing),
            "existing_rows": rows_before_bulk,
            "idle_rss_existing_kib": idle_existing,
            "ready_existing_large_ms": ms(ready_large),
            "existing_large_rows": large_rows,
            "idle_rss_existing_large_kib": idle_large,
        }),
        seeding: json!({
            "admin_token": "doorward token create --user root --scopes api --json (the CLI)",
            "users": format!("{} users through POST /api/v4/users", world.users.len()),
            "applications": "a confidential and a public trusted application through POST /api/v4/applications",
            "small_table": format!("{} token pairs through GET /oauth/authorize (signed in through /users/sign_in) and POST /oauth/token (authorization_code)", s.small_table),
            "small_table_rows": small_rows,
            "large_table": format!(
                "{} rows bulk-inserted with the server stopped, each minted by doorward::oauth::issue::MintedTokens (what the token endpoint mints) and written by {}",
                bulk.inserted, bulk.method
            ),
            "large_table_rows": large_rows,
            "bulk_rows_per_s": bulk.inserted as f64 / bulk.took.as_secs_f64().max(1e-9),
            "bulk_seconds": bulk.took.as_secs_f64(),
            "seed_seconds": (seed_api + small_seed).as_secs_f64(),
        }),
        runs,
        argon2_rate,
    })
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// At most [`TOKEN_SAMPLE`] tokens, spread evenly over `tokens`.
fn sample(tokens: &[String]) -> Vec<String> {
    let step = (tokens.len() / TOKEN_SAMPLE).max(1);
    tokens
        .iter()
        .step_by(step)
        .take(TOKEN_SAMPLE)
        .cloned()
        .collect()
}

/// One request on a new connection.
async fn call(addr: std::net::SocketAddr, req: Request<Body>) -> anyhow::Result<(Parts, Bytes)> {
    let mut sender = load::connect(addr).await?;
    load::exchange(&mut sender, req).await
}

fn json_post(path: &str, token: &str, body: &Value) -> anyhow::Result<Request<Body>> {
    Ok(Request::builder()
        .method(Method::POST)
        .uri(path)
        .header(header::CONTENT_TYPE, "application/json")
        .header("private-token", token)
        .body(Bytes::from(serde_json::to_vec(body)?))?)
}

fn expect(parts: &Parts, body: &Bytes, status: StatusCode, what: &str) -> anyhow::Result<()> {
    if parts.status != status {
        bail!(
            "{what}: {} instead of {status}: {}",
            parts.status,
            String::from_utf8_lossy(body)
        );
    }
    Ok(())
}

/// Users, applications, the admin token and a signed-in session, all through the CLI and
/// the API.
async fn seed(
    bin: &Path,
    env: &[(String, String)],
    p: &Process,
    s: &Settings,
) -> anyhow::Result<World> {
    let addr = p.addr;
    // The admin token, through the CLI, against the running server's database.
    let out = Command::new(bin)
        .args([
            "token", "create", "--user", "root", "--scopes", "api", "--name", "bench", "--json",
        ])
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .context("cannot run doorward token create")?;
    if !out.status.success() {
        bail!(
            "doorward token create failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let admin: Value = serde_json::from_slice(&out.stdout).context("token create --json output")?;
    let admin = admin["token"]
        .as_str()
        .context("no token in the CLI's output")?
        .to_string();

    let (parts, body) = call(
        addr,
        Request::get("/api/v4/user")
            .header("private-token", &admin)
            .body(Body::new())?,
    )
    .await?;
    expect(&parts, &body, StatusCode::OK, "GET /api/v4/user")?;
    let root_id = serde_json::from_slice::<Value>(&body)?["id"]
        .as_i64()
        .context("root has no id")?;

    let mut users = Vec::new();
    let mut user_ids = Vec::new();
    for i in 0..s.users {
        let username = format!("bench-user-{i}");
        let password = format!(
            "bench-password-{i}-{}",
            secret::base64url(&secret::random_bytes::<6>())
        );
        let (parts, body) = call(
            addr,
            json_post(
                "/api/v4/users",
                &admin,
                &json!({
                    "username": username,
                    "email": format!("{username}@bench.example"),
                    "name": format!("Bench User {i}"),
                    "password": password,
                }),
            )?,
        )
        .await?;
        expect(&parts, &body, StatusCode::CREATED, "POST /api/v4/users")?;
        user_ids.push(
            serde_json::from_slice::<Value>(&body)?["id"]
                .as_i64()
                .context("user without id")?,
        );
        users.push((username, password));
    }

    let mut apps = Vec::new();
    for confidential in [true, false] {
        let (parts, body) = call(
            addr,
            json_post(
                "/api/v4/applications",
                &admin,
                &json!({
                    "name": if confidential { "bench confidential" } else { "bench public" },
                    "redirect_uri": REDIRECT_URI,
                    "scopes": "api read_user read_api",
                    "confidential": confidential,
                    "trusted": true,
                }),
            )?,
        )
        .await?;
        expect(&parts, &body, StatusCode::OK, "POST /api/v4/applications")?;
        apps.push(serde_json::from_slice::<Value>(&body)?);
    }
    let conf_client_id = apps[0]["application_id"]
        .as_str()
        .context("application_id")?
        .to_string();
    let conf_secret = apps[0]["secret"].as_str().context("secret")?.to_string();

    // Sign in as root through the form, as a browser does.
    let mut jar = BTreeMap::new();
    let (parts, body) = call(addr, Request::get("/users/sign_in").body(Body::new())?).await?;
    expect(&parts, &body, StatusCode::OK, "GET /users/sign_in")?;
    absorb_cookies(&mut jar, &parts);
    let html = String::from_utf8_lossy(&body);
    let marker = "name=\"authenticity_token\" value=\"";
    let at = html
        .find(marker)
        .context("no CSRF field on the sign-in page")?
        + marker.len();
    let csrf = html[at..].split('"').next().unwrap_or_default().to_string();
    let form = wl::form(&[
        ("authenticity_token", &csrf),
        ("username", "root"),
        ("password", ROOT_PASSWORD),
    ]);
    let (parts, body) = call(
        addr,
        Request::post("/users/sign_in")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::COOKIE, cookie_header(&jar))
            .body(Bytes::from(form))?,
    )
    .await?;
    expect(&parts, &body, StatusCode::SEE_OTHER, "POST /users/sign_in")?;
    absorb_cookies(&mut jar, &parts);
    if !jar.contains_key("doorward_session") {
        bail!("signing in set no session cookie");
    }

    let verifier = secret::base64url(&secret::random_bytes::<32>());
    let challenge = secret::base64url(&secret::hash(&verifier));
    let authorize_path = format!(
        "/oauth/authorize?{}",
        wl::form(&[
            ("client_id", &conf_client_id),
            ("redirect_uri", REDIRECT_URI),
            ("response_type", "code"),
            ("state", "bench"),
            ("scope", "api"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ])
    );
    Ok(World {
        addr,
        conf_basic: wl::basic(&conf_client_id, &conf_secret),
        conf_id: apps[0]["id"].as_i64().context("application id")?,
        public_id: apps[1]["id"].as_i64().context("application id")?,
        root_id,
        user_ids,
        users,
        cookie: HeaderValue::from_str(&cookie_header(&jar))?,
        verifier,
        authorize_path,
    })
}

fn absorb_cookies(jar: &mut BTreeMap<String, String>, parts: &Parts) {
    for v in parts.headers.get_all(header::SET_COOKIE) {
        if let Ok(text) = v.to_str()
            && let Some((name, value)) = text.split(';').next().and_then(|kv| kv.split_once('='))
        {
            jar.insert(name.trim().to_string(), value.trim().to_string());
        }
    }
}

fn cookie_header(jar: &BTreeMap<String, String>) -> String {
    jar.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Codes from `GET /oauth/authorize` (a trusted application: straight back with a code):
/// `limit` of them, or as many as `duration` allows.
async fn mint_codes(
    p: &Process,
    world: &World,
    limit: Option<usize>,
    duration: Duration,
    connections: usize,
) -> anyhow::Result<(Vec<String>, Outcome)> {
    let codes = Arc::new(Mutex::new(Vec::new()));
    let w = Arc::new(wl::Authorize {
        cookie: world.cookie.clone(),
        path: world.authorize_path.clone(),
        codes: codes.clone(),
        limit,
        issued: AtomicUsize::new(0),
    });
    let o = load::run(world.addr, w, &Plan::timed(connections, duration), p.pid).await?;
    if o.errors > 0 {
        bail!("minting codes failed: {:?}", o.error_samples);
    }
    let codes = std::mem::take(&mut *codes.lock().map_err(|_| anyhow::anyhow!("poisoned"))?);
    Ok((codes, o))
}

/// Exchanges `codes` at the token endpoint for up to `duration` (or until they run out).
async fn exchange_codes(
    p: &Process,
    world: &World,
    codes: Vec<String>,
    duration: Duration,
    connections: usize,
) -> anyhow::Result<(Vec<TokenPair>, Outcome)> {
    let issued = Arc::new(Mutex::new(Vec::new()));
    let w = Arc::new(wl::CodeExchange {
        basic: world.conf_basic.clone(),
        codes,
        next_code: AtomicUsize::new(0),
        redirect_uri: REDIRECT_URI.to_string(),
        verifier: world.verifier.clone(),
        issued: issued.clone(),
    });
    let o = load::run(world.addr, w, &Plan::timed(connections, duration), p.pid).await?;
    let pairs = std::mem::take(&mut *issued.lock().map_err(|_| anyhow::anyhow!("poisoned"))?);
    Ok((pairs, o))
}

/// Rows in `oauth_access_tokens`, read directly.
async fn count_tokens(backend: Backend, url: &str) -> anyhow::Result<i64> {
    const SQL: &str = "SELECT COUNT(*) FROM oauth_access_tokens";
    Ok(match backend {
        Backend::Sqlite => {
            let opts = sqlx::sqlite::SqliteConnectOptions::from_str(url)?.read_only(true);
            let pool = sqlx::sqlite::SqlitePoolOptions::new()
                .max_connections(1)
                .connect_with(opts)
                .await?;
            let n: i64 = sqlx::query_scalar(SQL).fetch_one(&pool).await?;
            pool.close().await;
            n
        }
        Backend::Postgres => {
            let pool = sqlx::postgres::PgPoolOptions::new()
                .max_connections(1)
                .connect(url)
                .await?;
            let n: i64 = sqlx::query_scalar(SQL).fetch_one(&pool).await?;
            pool.close().await;
            n
        }
    })
}

struct Bulk {
    inserted: u64,
    /// How the rows were written, for the report.
    method: String,
    took: Duration,
    /// Access tokens in clear, spread evenly over the inserted rows, owned by root through
    /// the confidential application (W4 and W5 pick from them).
    sample: Vec<String>,
}

/// Rows to insert per SQLite transaction in the bulk path.
const BULK_BATCH: usize = 1_000;

/// The statement of `doorward::store::oauth::INSERT_TOKEN` (crate-private there), which
/// `Store::insert_token` runs: the SQLite bulk path sends exactly this text.
const INSERT_TOKEN: &str = "INSERT INTO oauth_access_tokens \
     (token_hash, refresh_token_hash, application_id, user_id, grant_id, family, scopes, created_at, expires_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id";

/// The `i`-th bulk row: minted as the token endpoint mints a token pair
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

impl RowMaker {
    fn make(&self, i: u64, rng: &mut Rng) -> (MintedTokens, [u8; 16], i64, i64, bool) {
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
        (MintedTokens::new(true), new_family(), app, user, sampled)
    }

    fn clear_access_token(&self, tokens: MintedTokens) -> String {
        tokens
            .response(&self.scopes, self.now, ACCESS_TOKEN_LIFETIME)
            .access_token
    }
}

/// `need` token rows, each minted as the token endpoint mints them, with the server
/// stopped. PostgreSQL: `Store::insert_token` itself, eight writers. SQLite (one write lock,
/// and ~4,000 single-row commits per second): the first row through `Store::insert_token`,
/// the rest with the same statement in transactions of 1,000 rows.
async fn bulk_tokens(
    backend: Backend,
    url: &str,
    need: u64,
    world: &World,
) -> anyhow::Result<Bulk> {
    let writers: u64 = match backend {
        Backend::Sqlite => 1,
        Backend::Postgres => 8,
    };
    let method = match backend {
        Backend::Sqlite => format!(
            "doorward::store::Store::insert_token for the first row, then its INSERT statement in {BULK_BATCH}-row transactions (BEGIN IMMEDIATE), one writer"
        ),
        Backend::Postgres => format!("doorward::store::Store::insert_token, {writers} writers"),
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
            max_connections: writers as u32,
            acquire_timeout: Duration::from_secs(60),
        },
    )?;
    let started = Instant::now();
    let done = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let progress = {
        let done = done.clone();
        move |n: u64| {
            let before = done.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
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
            let mut tasks = tokio::task::JoinSet::new();
            for w in 0..writers {
                let (store, maker, progress) = (store.clone(), maker.clone(), progress.clone());
                tasks.spawn(async move {
                    let mut rng = Rng::new(w + 7);
                    let mut sample = Vec::new();
                    let mut i = w;
                    while i < need {
                        let (tokens, family, app, user, sampled) = maker.make(i, &mut rng);
                        let owner = TokenOwner {
                            application_id: Some(app),
                            user_id: Some(user),
                            grant_id: None,
                            family: &family,
                            scopes: "api",
                        };
                        store
                            .insert_token(&tokens.row(&owner, maker.now, ACCESS_TOKEN_LIFETIME))
                            .await?;
                        if sampled {
                            sample.push(maker.clear_access_token(tokens));
                        }
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
            let (tokens, family, app, user, sampled) = maker.make(0, &mut rng);
            let owner = TokenOwner {
                application_id: Some(app),
                user_id: Some(user),
                grant_id: None,
                family: &family,
                scopes: "api",
            };
            store
                .insert_token(&tokens.row(&owner, maker.now, ACCESS_TOKEN_LIFETIME))
                .await?;
            if sampled {
                sample.push(maker.clear_access_token(tokens));
            }
            progress(1);
            // ...and the rest with the same statement, many rows per transaction.
            let opts = sqlx::sqlite::SqliteConnectOptions::from_str(url)?
                .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
                .synchronous(sqlx::sqlite::SqliteSynchronous::Normal)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(5));
            let pool = sqlx::sqlite::SqlitePoolOptions::new()
                .max_connections(1)
                .connect_with(opts)
                .await?;
            let mut i = 1;
            while i < need {
                let end = (i + BULK_BATCH as u64).min(need);
                let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
                for j in i..end {
                    let (tokens, family, app, user, sampled) = maker.make(j, &mut rng);
                    let owner = TokenOwner {
                        application_id: Some(app),
                        user_id: Some(user),
                        grant_id: None,
                        family: &family,
                        scopes: "api",
                    };
                    let t = tokens.row(&owner, maker.now, ACCESS_TOKEN_LIFETIME);
                    let _id: i64 = sqlx::query_scalar(INSERT_TOKEN)
                        .bind(t.token_hash)
                        .bind(t.refresh_token_hash)
                        .bind(t.application_id)
                        .bind(t.user_id)
                        .bind(t.grant_id)
                        .bind(t.family)
                        .bind(t.scopes)
                        .bind(t.created_at)
                        .bind(t.expires_at)
                        .fetch_one(&mut *tx)
                        .await?;
                    if sampled {
                        sample.push(maker.clear_access_token(tokens));
                    }
                }
                tx.commit().await?;
                progress(end - i);
                i = end;
            }
            pool.close().await;
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

async fn create_pg_database(admin: &str) -> anyhow::Result<(String, String)> {
    let name = format!(
        "doorward_bench_{}_{}",
        std::process::id(),
        hex::encode(secret::random_bytes::<3>())
    );
    let pool = sqlx::PgPool::connect(admin)
        .await
        .context("cannot reach PostgreSQL")?;
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&pool)
        .await?;
    pool.close().await;
    let mut url = url::Url::parse(admin)?;
    url.set_path(&name);
    Ok((url.to_string(), name))
}

async fn drop_pg_database(admin: &str, name: &str) {
    if let Ok(pool) = sqlx::PgPool::connect(admin).await {
        let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
        )))
        .execute(&pool)
        .await;
        pool.close().await;
    }
}
