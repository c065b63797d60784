//! The processes under test: Doorward (`doorward serve`) and the hello-world baseline
//! (`doorward-bench hello`), each a child process on its own loopback port.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use axum::http::{Request, StatusCode};

use crate::load::{self, Body};

/// A free loopback port (bound, read, released; the child binds it a moment later).
pub fn free_addr() -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?)
}

/// A running child server.
pub struct Process {
    child: Child,
    pub pid: u32,
    pub addr: SocketAddr,
    /// Where its stdout and stderr go.
    pub log: PathBuf,
    /// Just before `spawn`.
    pub spawned_at: Instant,
}

impl Process {
    /// Starts `program args` with `env` added to a copy of our environment from which every
    /// `DOORWARD_*` variable was removed (so the caller's settings cannot skew a run).
    pub fn spawn(
        program: &Path,
        args: &[&str],
        env: &[(String, String)],
        addr: SocketAddr,
        log: PathBuf,
    ) -> anyhow::Result<Process> {
        let out = std::fs::File::create(&log)
            .with_context(|| format!("cannot create {}", log.display()))?;
        let mut cmd = Command::new(program);
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out);
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("DOORWARD_") {
                cmd.env_remove(k);
            }
        }
        cmd.envs(env.iter().map(|(k, v)| (k, v)));
        let spawned_at = Instant::now();
        let child = cmd
            .spawn()
            .with_context(|| format!("cannot start {}", program.display()))?;
        Ok(Process {
            pid: child.id(),
            child,
            addr,
            log,
            spawned_at,
        })
    }

    /// Polls `path` until it answers 200; returns the time since the process was spawned.
    pub async fn wait_ready(&mut self, path: &str, timeout: Duration) -> anyhow::Result<Duration> {
        let give_up = self.spawned_at + timeout;
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "the server exited ({status}) before it was ready; its log ({}):\n{}",
                    self.log.display(),
                    self.log_tail()
                );
            }
            if Instant::now() > give_up {
                bail!(
                    "the server was not ready within {timeout:?}; its log:\n{}",
                    self.log_tail()
                );
            }
            if let Ok(mut sender) = load::connect(self.addr).await {
                let req = Request::get(path).body(Body::new())?;
                if let Ok(Ok((parts, _))) =
                    tokio::time::timeout(Duration::from_secs(5), load::exchange(&mut sender, req))
                        .await
                    && parts.status == StatusCode::OK
                {
                    return Ok(self.spawned_at.elapsed());
                }
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    /// SIGTERM (graceful: in-flight requests finish, SQLite closes cleanly), then SIGKILL
    /// after 15 s.
    pub async fn stop(&mut self) -> anyhow::Result<()> {
        if self.child.try_wait()?.is_some() {
            return Ok(());
        }
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status();
        let until = Instant::now() + Duration::from_secs(15);
        while Instant::now() < until {
            if self.child.try_wait()?.is_some() {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }

    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The baseline: the smallest axum server, on the same runtime settings as Doorward's
/// (`#[tokio::main]`: a multi-threaded runtime with one worker per core). It answers every
/// GET `/` with a 13-byte text body.
pub fn hello_main(listen: SocketAddr) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let app = axum::Router::new().route("/", axum::routing::get(|| async { "Hello, World!" }));
        let listener = tokio::net::TcpListener::bind(listen).await?;
        axum::serve(listener, app).await?;
        Ok(())
    })
}
