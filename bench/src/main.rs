//! `doorward-bench`: Doorward's benchmark harness (see docs/performance.md).
//!
//! ```sh
//! cargo run --release -p doorward-bench -- [--duration 10] [--postgres URL] [--smoke]
//! ```
//!
//! It builds the `doorward` binary in the same profile as itself, starts it as a child
//! process on a fresh database, seeds it through the real API and CLI (plus one bulk path
//! for the 10^6-token table, through the store's own insert), starts the hello-world
//! baseline in the same run, drives workloads W1–W9 over keep-alive HTTP/1.1 on loopback
//! with its own load generator, and prints a table (also written as JSON under
//! `bench/results/`). It reports; it does not fail on missed targets. `--smoke` is a
//! five-second run with tiny numbers that exits non-zero if any request failed.
//!
//! The modules: `run` (the whole run and its JSON document), `backend` (everything on one
//! backend, in order), `startup` (starting Doorward: ready time, idle RSS), `seed` (the CLI,
//! the API, sign-in and the code flow), `drive` (recording runs; W1–W5 and the W7 mix),
//! `password` (the Argon2id rate and W6), `groups` (W8: 10,000 groups and the group claims
//! of UserInfo and the id_token), `dpop` (W9: DPoP proofs per request), `bulk` (the large
//! table), `db` (direct database access), `workloads` (each workload's requests and
//! checks), `load` and `client` (the load generator), `latency` (quantiles, raw and
//! corrected for coordinated omission as `wrk` corrects them), `server` (child processes,
//! the hello-world baseline), `procfs` (CPU and memory from /proc), `report` (the table,
//! the targets, the JSON file).

mod backend;
mod bulk;
mod client;
mod db;
mod dpop;
mod drive;
mod groups;
mod latency;
mod load;
mod password;
mod procfs;
mod report;
mod run;
mod seed;
mod server;
mod startup;
mod targets;
mod workloads;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "doorward-bench",
    about = "Benchmark Doorward against a hello-world baseline (see docs/performance.md)"
)]
pub struct Args {
    #[command(subcommand)]
    mode: Option<Mode>,
    /// Seconds of each measured run.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Connection counts; every workload runs at each.
    #[arg(long, value_delimiter = ',', default_value = "32,256")]
    pub connections: Vec<usize>,
    /// Seconds of the W7 mix.
    #[arg(long, default_value_t = 60.0)]
    pub mix_duration: f64,
    /// Connections of the W7 mix.
    #[arg(long, default_value_t = 32)]
    pub mix_connections: usize,
    /// Access tokens issued through the code flow for the small-table runs.
    #[arg(long, default_value_t = 1_000)]
    pub small_table: u64,
    /// Rows of oauth_access_tokens for the large-table runs (the rest bulk-inserted).
    #[arg(long, default_value_t = 1_000_000)]
    pub large_table: u64,
    /// Concurrent password-grant attempts in W6's memory test.
    #[arg(long, default_value_t = 1_000)]
    pub password_burst: usize,
    /// Seeded users (each created through the API, one Argon2id hash apiece).
    #[arg(long, default_value_t = 20)]
    pub users: usize,
    /// Groups seeded for W8 (rounded up to a multiple of 100); its user is a direct member
    /// of a tenth of them.
    #[arg(long, default_value_t = 10_000)]
    pub groups: usize,
    /// Also run on PostgreSQL: a superuser URL; a fresh database is created and dropped.
    #[arg(long, value_name = "URL")]
    pub postgres: Option<String>,
    /// Skip the SQLite run (with --postgres).
    #[arg(long)]
    pub no_sqlite: bool,
    /// A five-second run with tiny numbers; exits non-zero if anything fails.
    #[arg(long)]
    pub smoke: bool,
    /// The doorward binary to test (default: `cargo build` it in this binary's profile).
    #[arg(long, value_name = "PATH")]
    pub doorward_bin: Option<PathBuf>,
    /// Directory for the JSON results.
    #[arg(long, default_value = "bench/results", value_name = "DIR")]
    pub out: PathBuf,
    /// Keep each run's data directory and server logs (their path is printed).
    #[arg(long)]
    pub keep: bool,
    /// Extra environment for the Doorward processes (repeatable), e.g.
    /// `--server-env DOORWARD_DB_MAX_CONNECTIONS=4`; recorded in the JSON.
    #[arg(long, value_name = "KEY=VALUE", value_parser = parse_env_pair)]
    pub server_env: Vec<(String, String)>,
    /// Run only these workloads (e.g. `W4,W6`); seeding always runs. For investigations.
    #[arg(long, value_delimiter = ',', value_name = "IDS")]
    pub only: Vec<String>,
}

fn parse_env_pair(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .filter(|(k, _)| !k.is_empty())
        .ok_or_else(|| format!("expected KEY=VALUE, got {text:?}"))
}

#[derive(Subcommand, Debug)]
enum Mode {
    /// The hello-world baseline server (started by the benchmark itself).
    #[command(hide = true)]
    Hello {
        #[arg(long)]
        listen: SocketAddr,
    },
}

/// The resolved numbers of a run (the smoke run shrinks them all).
#[derive(Clone, Debug)]
pub struct Settings {
    pub duration: Duration,
    pub connections: Vec<usize>,
    pub mix_duration: Duration,
    pub mix_connections: usize,
    pub small_table: u64,
    pub large_table: u64,
    pub password_burst: usize,
    pub users: usize,
    /// W8's groups.
    pub groups: usize,
    pub argon2_duration: Duration,
    /// Idle time after a start before idle RSS is read (and the large-table runs begin).
    pub settle: Duration,
    pub smoke: bool,
    pub keep: bool,
    pub server_env: Vec<(String, String)>,
    pub only: Vec<String>,
}

impl Settings {
    /// Whether workload `id` (W1…W9) is to run.
    pub fn wants(&self, id: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|o| o.eq_ignore_ascii_case(id))
    }

    fn from_args(a: &Args) -> Settings {
        if a.smoke {
            Settings {
                duration: Duration::from_millis(100),
                connections: vec![2, 8],
                mix_duration: Duration::from_millis(600),
                mix_connections: 4,
                small_table: 50,
                large_table: 1_000,
                password_burst: 12,
                users: 2,
                groups: 200,
                argon2_duration: Duration::from_millis(100),
                settle: Duration::from_millis(100),
                smoke: true,
                keep: a.keep,
                server_env: a.server_env.clone(),
                only: a.only.clone(),
            }
        } else {
            Settings {
                duration: Duration::from_secs_f64(a.duration.max(0.1)),
                connections: a.connections.clone(),
                mix_duration: Duration::from_secs_f64(a.mix_duration.max(0.6)),
                mix_connections: a.mix_connections,
                small_table: a.small_table.max(1),
                large_table: a.large_table,
                password_burst: a.password_burst,
                users: a.users.max(1),
                groups: a.groups.max(1),
                argon2_duration: Duration::from_secs(3),
                settle: Duration::from_secs(1),
                smoke: false,
                keep: a.keep,
                server_env: a.server_env.clone(),
                only: a.only.clone(),
            }
        }
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(Mode::Hello { listen }) = args.mode {
        return match server::hello_main(listen) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("hello: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run::bench(args)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
