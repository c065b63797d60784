//! The load generator: a fixed number of keep-alive HTTP/1.1 connections (one tokio task
//! per connection), each sending its next request as soon as
//! the previous answer has been read (a closed loop, like `wrk` and `oha`), for a fixed time
//! or until a workload's pool of single-use inputs (codes, refresh tokens) runs dry.
//!
//! Every connection is opened before the clock starts. Latency is measured per request from
//! just before it is written to when its whole body has been read. The connections are
//! [`crate::client::Conn`]s, a deliberately small HTTP/1.1 client.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::body::Bytes;
use axum::http::Request;
use axum::http::response::Parts;

pub use crate::client::Body;
use crate::client::Conn;
use crate::{latency, procfs};

/// What the connections send, and what counts as a correct answer.
pub trait Workload: Send + Sync + 'static {
    /// The next request and a tag handed back to [`Workload::check`]; `None` when the
    /// workload's pool of inputs is exhausted (the connection stops).
    fn next(&self, rng: &mut Rng) -> Option<(Request<Body>, u8)>;
    /// `Err` (a short description) when the answer is not the expected one.
    fn check(&self, tag: u8, parts: &Parts, body: &Bytes) -> Result<(), String>;
}

/// A small, fast PRNG (xorshift64*), one per connection; picking tokens needs no more.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n` (n > 0; the modulo bias is irrelevant here).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
}

/// How to drive one run.
#[derive(Clone, Debug)]
pub struct Plan {
    pub connections: usize,
    pub duration: Duration,
    /// Stop each connection after this many requests (W6's "1,000 concurrent attempts").
    pub per_connection: Option<u64>,
    /// Width of the throughput buckets (W7's flatness check).
    pub bucket: Option<Duration>,
}

impl Plan {
    pub fn timed(connections: usize, duration: Duration) -> Plan {
        Plan {
            connections,
            duration,
            per_connection: None,
            bucket: None,
        }
    }
}

/// The name of Doorward's SQLite token writer thread (`store::writer`).
const WAL_WRITER: &str = "doorward-writer";

/// What a run measured, on the client and on the server process.
#[derive(Clone, Debug, Default)]
pub struct Outcome {
    /// Answers that passed the workload's check.
    pub ok: u64,
    /// Wrong answers plus transport failures.
    pub errors: u64,
    pub elapsed: Duration,
    /// Latencies of every answered request, in microseconds, sorted.
    pub latencies_us: Vec<u32>,
    /// The connections that sent them (for the coordinated-omission correction).
    pub connections: u64,
    /// Correct answers per bucket (when the plan has buckets).
    pub buckets: Vec<u64>,
    /// Server RSS at the end of each bucket, in KiB.
    pub bucket_rss_kb: Vec<u64>,
    /// CPU time in each bucket (server, generator, machine), to tell a server that slows
    /// down from a machine that does.
    pub bucket_cpu: Vec<CpuTimes>,
    /// The first few errors, for diagnosis.
    pub error_samples: Vec<String>,
    /// True when the run ended because the workload's inputs ran out.
    pub exhausted: bool,
    /// CPU times over the run: the server's (user + system), the load generator's (this
    /// process), everything else on the machine (other processes, the kernel's own threads:
    /// a run with much of it was disturbed) and the time the hypervisor gave our virtual
    /// CPUs to someone else.
    pub cpu: CpuTimes,
    /// Bytes the server wrote (`procfs::written_bytes`) over the run; `None` where `/proc`
    /// does not say.
    pub server_written_bytes: Option<u64>,
    /// Of those, the bytes of SQLite's WAL that the token writer wrote
    /// (`procfs::thread_written_bytes`); `None` on PostgreSQL, whose WAL is the database's.
    pub server_wal_bytes: Option<u64>,
    /// Server peak RSS during the run (VmHWM after resetting it), in KiB.
    pub server_peak_rss_kb: u64,
    /// False when the kernel refused to reset VmHWM; the peak is then sampled (every 20 ms).
    pub peak_is_exact: bool,
}

impl Outcome {
    pub fn rate(&self) -> f64 {
        let s = self.elapsed.as_secs_f64();
        if s > 0.0 { self.ok as f64 / s } else { 0.0 }
    }

    /// The `q` quantile of latency, in milliseconds, over the answers as measured.
    pub fn quantile_ms(&self, q: f64) -> f64 {
        f64::from(latency::quantile_us(&self.latencies_us, q)) / 1000.0
    }

    /// The `q` quantile of latency, in milliseconds, corrected for coordinated omission as
    /// `wrk` corrects it (`crate::latency`): what a client arriving at a steady rate would
    /// have seen, stalls included.
    pub fn corrected_quantile_ms(&self, q: f64) -> f64 {
        let e = latency::expected_interval_us(
            u64::try_from(self.elapsed.as_micros()).unwrap_or(u64::MAX),
            self.latencies_us.len() as u64,
            self.connections,
        );
        f64::from(latency::corrected_quantile_us(
            &self.latencies_us,
            e.unwrap_or(0),
            q,
        )) / 1000.0
    }

    /// Server CPU time per correct answer in each bucket, in microseconds.
    pub fn bucket_server_cpu_us(&self) -> Vec<f64> {
        self.bucket_cpu
            .iter()
            .zip(&self.buckets)
            .map(|(c, n)| {
                if *n > 0 {
                    c.server_s * 1e6 / *n as f64
                } else {
                    0.0
                }
            })
            .collect()
    }

    /// Server CPU time per correct answer, in microseconds.
    pub fn server_cpu_us_per_request(&self) -> f64 {
        if self.ok > 0 {
            self.cpu.server_s * 1e6 / self.ok as f64
        } else {
            0.0
        }
    }

    /// Bytes the server wrote per correct answer (for an issuing workload, per token).
    pub fn server_bytes_per_request(&self) -> Option<f64> {
        self.server_written_bytes
            .filter(|_| self.ok > 0)
            .map(|b| b as f64 / self.ok as f64)
    }

    /// WAL bytes the SQLite token writer wrote per correct answer.
    pub fn wal_bytes_per_request(&self) -> Option<f64> {
        self.server_wal_bytes
            .filter(|_| self.ok > 0)
            .map(|b| b as f64 / self.ok as f64)
    }

    /// Server CPU as a percentage of one core.
    pub fn server_cpu_percent(&self) -> f64 {
        self.percent(self.cpu.server_s)
    }

    /// Load-generator CPU as a percentage of one core.
    pub fn client_cpu_percent(&self) -> f64 {
        self.percent(self.cpu.generator_s)
    }

    /// CPU of everything else, as a percentage of one core.
    pub fn other_cpu_percent(&self) -> f64 {
        self.percent(self.cpu.other_s())
    }

    pub fn steal_percent(&self) -> f64 {
        self.percent(self.cpu.steal_s)
    }

    fn percent(&self, cpu_s: f64) -> f64 {
        percent_of(cpu_s, self.elapsed.as_secs_f64())
    }
}

/// `cpu_s` seconds of CPU time in `wall_s` seconds, as a percentage of one core.
pub fn percent_of(cpu_s: f64, wall_s: f64) -> f64 {
    if wall_s > 0.0 {
        100.0 * cpu_s / wall_s
    } else {
        0.0
    }
}

/// CPU seconds of the server, of the load generator and of the whole machine (busy, and
/// stolen by the hypervisor): cumulative when read, a bucket's own after [`CpuTimes::since`].
#[derive(Clone, Copy, Debug, Default)]
pub struct CpuTimes {
    pub server_s: f64,
    pub generator_s: f64,
    pub machine_busy_s: f64,
    pub steal_s: f64,
}

impl CpuTimes {
    pub fn read(server: u32) -> CpuTimes {
        let (machine_busy_s, steal_s) = procfs::system_cpu_seconds().unwrap_or_default();
        CpuTimes {
            server_s: procfs::cpu_seconds(server).unwrap_or(0.0),
            generator_s: procfs::cpu_seconds(std::process::id()).unwrap_or(0.0),
            machine_busy_s,
            steal_s,
        }
    }

    /// The times between `earlier` and `self`; none below zero (a figure that could not be
    /// read, say of a server that has exited, counts as 0).
    pub fn since(&self, earlier: &CpuTimes) -> CpuTimes {
        let delta = |now: f64, then: f64| (now - then).max(0.0);
        CpuTimes {
            server_s: delta(self.server_s, earlier.server_s),
            generator_s: delta(self.generator_s, earlier.generator_s),
            machine_busy_s: delta(self.machine_busy_s, earlier.machine_busy_s),
            steal_s: delta(self.steal_s, earlier.steal_s),
        }
    }

    /// Everything but the server and the generator (for PostgreSQL runs, the database).
    pub fn other_s(&self) -> f64 {
        (self.machine_busy_s - self.server_s - self.generator_s).max(0.0)
    }
}

/// Opens one keep-alive HTTP/1.1 connection.
pub async fn connect(addr: SocketAddr) -> anyhow::Result<Conn> {
    Conn::open(addr)
        .await
        .with_context(|| format!("connecting to {addr}"))
}

/// Sends one request on `conn` and reads the whole answer.
pub async fn exchange(conn: &mut Conn, req: Request<Body>) -> anyhow::Result<(Parts, Bytes)> {
    Ok(conn.send(&req).await?)
}

#[derive(Default)]
struct ConnStats {
    ok: u64,
    errors: u64,
    latencies_us: Vec<u32>,
    buckets: Vec<u64>,
    error_samples: Vec<String>,
    exhausted: bool,
    finished: Option<Instant>,
}

/// Runs `workload` against `addr` as `plan` says, measuring the server process `server`.
pub async fn run(
    addr: SocketAddr,
    workload: Arc<dyn Workload>,
    plan: &Plan,
    server: u32,
) -> anyhow::Result<Outcome> {
    // Open every connection first, a few at a time, so the clock measures only requests.
    let mut senders = Vec::with_capacity(plan.connections);
    for chunk in (0..plan.connections).collect::<Vec<_>>().chunks(64) {
        let opened =
            futures_join_all(chunk.iter().map(|_| connect(addr)).collect::<Vec<_>>()).await;
        for s in opened {
            senders.push(s?);
        }
    }

    let peak_is_exact = procfs::reset_peak_rss(server);
    let cpu_before = CpuTimes::read(server);
    let written_before = procfs::written_bytes(server);
    let wal_before = procfs::thread_written_bytes(server, WAL_WRITER);
    let t0 = Instant::now();
    let deadline = t0 + plan.duration;

    // The RSS sampler: the peak when VmHWM cannot be reset, and RSS and CPU times at each
    // bucket's end.
    let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
    let bucket = plan.bucket;
    let sampler = tokio::spawn(async move {
        let mut peak = 0u64;
        let mut at_buckets = Vec::new();
        let mut cpu_at_buckets = Vec::new();
        let mut bucket_start = cpu_before;
        let mut next_bucket = bucket.map(|b| t0 + b);
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    let rss = procfs::status_kb(server, "VmRSS").unwrap_or(0);
                    peak = peak.max(rss);
                    if let (Some(nb), Some(b)) = (next_bucket, bucket)
                        && Instant::now() >= nb
                    {
                        at_buckets.push(rss);
                        let cpu = CpuTimes::read(server);
                        cpu_at_buckets.push(cpu.since(&bucket_start));
                        bucket_start = cpu;
                        next_bucket = Some(nb + b);
                    }
                }
                _ = &mut stop_rx => break,
            }
        }
        (peak, at_buckets, cpu_at_buckets)
    });

    let mut tasks = tokio::task::JoinSet::new();
    for (i, sender) in senders.into_iter().enumerate() {
        let workload = workload.clone();
        let plan = plan.clone();
        tasks.spawn(async move {
            connection(addr, sender, workload, &plan, t0, deadline, i as u64 + 1).await
        });
    }
    let mut all = Vec::with_capacity(plan.connections);
    while let Some(done) = tasks.join_next().await {
        all.push(done?);
    }
    let end = all
        .iter()
        .filter_map(|c| c.finished)
        .max()
        .unwrap_or_else(Instant::now);
    let cpu = CpuTimes::read(server).since(&cpu_before);
    let written_after = procfs::written_bytes(server);
    let wal_after = procfs::thread_written_bytes(server, WAL_WRITER);
    let hwm = procfs::status_kb(server, "VmHWM").unwrap_or(0);
    let _ = stop_tx.send(());
    let (sampled_peak, bucket_rss_kb, bucket_cpu) = sampler.await.unwrap_or_default();

    let mut out = Outcome {
        elapsed: end.saturating_duration_since(t0),
        cpu,
        server_written_bytes: written_before
            .zip(written_after)
            .map(|(before, after)| after.saturating_sub(before)),
        server_wal_bytes: wal_before
            .zip(wal_after)
            .map(|(before, after)| after.saturating_sub(before)),
        server_peak_rss_kb: if peak_is_exact { hwm } else { sampled_peak },
        peak_is_exact,
        bucket_rss_kb,
        bucket_cpu,
        connections: plan.connections as u64,
        ..Outcome::default()
    };
    for c in all {
        out.ok += c.ok;
        out.errors += c.errors;
        out.latencies_us.extend(c.latencies_us);
        out.exhausted |= c.exhausted;
        if out.buckets.len() < c.buckets.len() {
            out.buckets.resize(c.buckets.len(), 0);
        }
        for (i, n) in c.buckets.iter().enumerate() {
            out.buckets[i] += n;
        }
        for e in c.error_samples {
            if out.error_samples.len() < 5 {
                out.error_samples.push(e);
            }
        }
    }
    out.latencies_us.sort_unstable();
    if let Some(b) = plan.bucket {
        // Only whole buckets: the tail after the deadline holds the last answers only.
        let whole = (plan.duration.as_secs_f64() / b.as_secs_f64()).round() as usize;
        out.buckets.resize(whole, 0);
        out.bucket_rss_kb.truncate(whole);
        out.bucket_cpu.truncate(whole);
    }
    Ok(out)
}

async fn connection(
    addr: SocketAddr,
    mut sender: Conn,
    workload: Arc<dyn Workload>,
    plan: &Plan,
    t0: Instant,
    deadline: Instant,
    seed: u64,
) -> ConnStats {
    let mut rng = Rng::new(seed);
    let mut stats = ConnStats::default();
    let mut sent = 0u64;
    loop {
        if Instant::now() >= deadline || plan.per_connection.is_some_and(|n| sent >= n) {
            break;
        }
        let Some((req, tag)) = workload.next(&mut rng) else {
            stats.exhausted = true;
            break;
        };
        sent += 1;
        if sender.closed {
            match connect(addr).await {
                Ok(s) => sender = s,
                Err(e) => {
                    stats.errors += 1;
                    if stats.error_samples.len() < 2 {
                        stats.error_samples.push(format!("reconnect: {e:#}"));
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            }
        }
        let started = Instant::now();
        let result = exchange(&mut sender, req).await;
        let done = Instant::now();
        match result {
            Ok((parts, body)) => {
                stats
                    .latencies_us
                    .push(u32::try_from((done - started).as_micros()).unwrap_or(u32::MAX));
                match workload.check(tag, &parts, &body) {
                    Ok(()) => {
                        stats.ok += 1;
                        if let Some(b) = plan.bucket {
                            let i = ((done - t0).as_secs_f64() / b.as_secs_f64()) as usize;
                            if stats.buckets.len() <= i {
                                stats.buckets.resize(i + 1, 0);
                            }
                            stats.buckets[i] += 1;
                        }
                    }
                    Err(e) => {
                        stats.errors += 1;
                        if stats.error_samples.len() < 2 {
                            stats.error_samples.push(e);
                        }
                    }
                }
            }
            Err(e) => {
                stats.errors += 1;
                if stats.error_samples.len() < 2 {
                    stats.error_samples.push(format!("transport: {e:#}"));
                }
                // The connection is gone: open another and go on.
                match connect(addr).await {
                    Ok(s) => sender = s,
                    Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
                }
            }
        }
    }
    stats.finished = Some(Instant::now());
    stats
}

/// Awaits all futures concurrently, keeping their order (a tiny `join_all`).
pub async fn futures_join_all<F>(futures: Vec<F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let mut set = tokio::task::JoinSet::new();
    for (i, f) in futures.into_iter().enumerate() {
        set.spawn(async move { (i, f.await) });
    }
    let mut out: Vec<Option<F::Output>> = Vec::new();
    out.resize_with(set.len(), || None);
    while let Some(Ok((i, v))) = set.join_next().await {
        out[i] = Some(v);
    }
    out.into_iter().flatten().collect()
}
