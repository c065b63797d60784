//! One benchmark run: the Argon2id rate, the baseline, then each backend (see
//! `backend.rs`), and the report: the table, the targets and the JSON document.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use doorward::store::Backend;
use serde_json::{Value, json};

use crate::backend::run_backend;
use crate::db::{create_pg_database, drop_pg_database};
use crate::load::{self, Plan};
use crate::password::argon2_rates;
use crate::report::{self, Measured};
use crate::server::{Process, free_addr};
use crate::workloads as wl;
use crate::{Args, Settings};

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
            "groups": s.groups,
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
            "allocating_method": "doorward::domain::password::hash_blocking (allocates its own 19 MiB per hash, as the server did before it pooled Argon2 buffers)",
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
    println!(
        "WAL MB: size of SQLite's write-ahead log (<db>-wal) right after the run; - where there is none (baseline, PostgreSQL)"
    );
    println!(
        "B/req: bytes the server passed to write() per answer (WAL, checkpoints, HTTP answers); WAL B: WAL bytes per answer (SQLite: the token writer's; PostgreSQL: pg_stat_wal)"
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

/// The workspace root (this package is `bench/` in it): its `Cargo.toml` is the product's.
const WORKSPACE_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

/// `cargo build -p doorward --bin doorward` in this binary's profile; returns the binary
/// beside us (both are in the workspace's one target directory).
fn build_doorward() -> anyhow::Result<PathBuf> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let manifest = format!("{WORKSPACE_DIR}/Cargo.toml");
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "-p", "doorward", "--bin", "doorward"]);
    cmd.arg("--manifest-path").arg(&manifest);
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
    let dir = WORKSPACE_DIR;
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
