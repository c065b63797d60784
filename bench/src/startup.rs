//! Starting Doorward for one backend: the same environment and port every time, a log per
//! start, and what each start measures (time to readiness, idle RSS).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::Settings;
use crate::server::{Process, free_addr};

/// The root password Doorward creates root with on first start (the seeding signs in).
pub const ROOT_PASSWORD: &str = "bench-root-password-0123456789";
const SECRET_KEY: &str = "doorward-bench-secret-key-0123456789abcdef";
/// How long a start may take before the run gives up.
const READY_TIMEOUT: Duration = Duration::from_secs(120);

/// Starts `doorward serve` on one database, as often as the run needs.
pub struct Launcher {
    bin: PathBuf,
    dir: PathBuf,
    pub addr: SocketAddr,
    /// The servers' environment (also the CLI's, which must reach the same database).
    pub env: Vec<(String, String)>,
    starts: usize,
}

/// A server that is up, and what its start measured.
pub struct Started {
    pub process: Process,
    /// From `spawn` to the first `200` from `/-/readiness`.
    pub ready: Duration,
    /// `VmRSS` after idling, in KiB.
    pub idle_rss_kib: u64,
}

impl Launcher {
    /// A server on a free loopback port, with its data directory under `dir` and its
    /// database at `url`, plus the run's `--server-env`.
    pub fn new(bin: &Path, url: &str, dir: &Path, s: &Settings) -> anyhow::Result<Launcher> {
        let addr = free_addr()?;
        let env = [
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
        Ok(Launcher {
            bin: bin.to_path_buf(),
            dir: dir.to_path_buf(),
            addr,
            env,
            starts: 0,
        })
    }

    /// Starts the server (log `doorward-<n>.log`), waits until it is ready, lets it idle
    /// for `settle` and reads its RSS.
    pub async fn start(&mut self, settle: Duration) -> anyhow::Result<Started> {
        self.starts += 1;
        let mut process = Process::spawn(
            &self.bin,
            &["serve"],
            &self.env,
            self.addr,
            self.dir.join(format!("doorward-{}.log", self.starts)),
        )?;
        let ready = process.wait_ready("/-/readiness", READY_TIMEOUT).await?;
        tokio::time::sleep(settle).await;
        let idle_rss_kib = crate::procfs::status_kb(process.pid, "VmRSS").unwrap_or(0);
        Ok(Started {
            process,
            ready,
            idle_rss_kib,
        })
    }
}

impl Started {
    /// `<what>: ready in … ms, idle RSS … MiB`.
    pub fn describe(&self, what: &str) -> String {
        format!(
            "{what}: ready in {:.1} ms, idle RSS {:.1} MiB",
            ms(self.ready),
            self.idle_rss_kib as f64 / 1024.0
        )
    }
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
