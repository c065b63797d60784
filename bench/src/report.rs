//! The table, the targets (issue 6, with the write and table-size targets of issue 15), and
//! the JSON file.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::backend::BackendRun;
use crate::db::PgWal;
use crate::load::{Outcome, percent_of};

/// One measured run.
pub struct Measured {
    pub backend: String,
    /// W1…W8, W3a (code minting), W6b (the burst), W8a/W8b (UserInfo, id_token), or
    /// `ceiling`.
    pub id: String,
    pub label: String,
    pub connections: usize,
    /// Rows in `oauth_access_tokens` when the run started, where it matters.
    pub table_rows: Option<i64>,
    pub outcome: Outcome,
    /// The baseline's requests/s at the same connection count.
    pub ceiling: Option<f64>,
    pub note: String,
    /// SQLite only: (database file, WAL file `<db>-wal`) sizes in bytes right after the run
    /// (JSON `sqlite_db_mb`, `sqlite_wal_mb`; the table's `WAL MB`).
    pub db_bytes: Option<(u64, u64)>,
    /// The same workload for a control input, measured just before in the same run (W8:
    /// the user in no group).
    pub control: Option<VsControl>,
    /// PostgreSQL only: the WAL writes, flushes and bytes during the run.
    pub pg_wal: Option<PgWal>,
}

/// What a run is compared with: the same workload for a control input in the same run.
#[derive(Clone, Debug)]
pub struct VsControl {
    /// The comparison, e.g. `in 1,000 groups / in none`.
    pub what: String,
    pub rate: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub server_cpu_us: f64,
}

impl VsControl {
    pub fn of(control: &Measured, what: String) -> VsControl {
        let o = &control.outcome;
        VsControl {
            what,
            rate: o.rate(),
            p50_ms: o.quantile_ms(0.5),
            p99_ms: o.quantile_ms(0.99),
            server_cpu_us: o.server_cpu_us_per_request(),
        }
    }
}

/// Bytes in a megabyte, as the targets count them (MB, not MiB).
const MB: f64 = 1_000_000.0;

pub fn mb(kib: u64) -> f64 {
    kib as f64 * 1024.0 / MB
}

impl Measured {
    pub fn new(
        backend: &str,
        id: &str,
        label: &str,
        connections: usize,
        table_rows: Option<i64>,
        outcome: Outcome,
    ) -> Measured {
        Measured {
            backend: backend.into(),
            id: id.into(),
            label: label.into(),
            connections,
            table_rows,
            outcome,
            ceiling: None,
            note: String::new(),
            db_bytes: None,
            control: None,
            pg_wal: None,
        }
    }

    pub fn ceiling(mut self, ceiling: Option<f64>) -> Measured {
        self.ceiling = ceiling;
        self
    }

    pub fn note(mut self, note: String) -> Measured {
        self.note = note;
        self
    }

    pub fn versus(mut self, control: VsControl) -> Measured {
        self.control = Some(control);
        self
    }

    /// Requests/s as a fraction of the control's, and the latency quantiles as multiples
    /// of the control's.
    pub fn vs_control(&self) -> Option<(f64, f64, f64)> {
        let c = self.control.as_ref()?;
        let o = &self.outcome;
        let times = |a: f64, b: f64| if b > 0.0 { a / b } else { 0.0 };
        Some((
            times(o.rate(), c.rate),
            times(o.quantile_ms(0.5), c.p50_ms),
            times(o.quantile_ms(0.99), c.p99_ms),
        ))
    }

    /// The table's line under a run with a control: `what: 52.3 % of the control's req/s…`.
    fn control_line(&self) -> Option<String> {
        let c = self.control.as_ref()?;
        let (rate, p50, p99) = self.vs_control()?;
        Some(format!(
            "{}: {:.1} % of the req/s ({:.0} vs {:.0}), p50 ×{:.2}, p99 ×{:.2} ({:.2} vs {:.2} ms), server CPU {:.0} vs {:.0} µs/request",
            c.what,
            rate * 100.0,
            self.outcome.rate(),
            c.rate,
            p50,
            p99,
            self.outcome.quantile_ms(0.99),
            c.p99_ms,
            self.outcome.server_cpu_us_per_request(),
            c.server_cpu_us,
        ))
    }

    /// Requests/s as a fraction of the baseline's at the same connection count.
    pub fn ratio(&self) -> Option<f64> {
        self.ceiling
            .filter(|c| *c > 0.0)
            .map(|c| self.outcome.rate() / c)
    }

    fn columns(&self) -> String {
        let o = &self.outcome;
        format!(
            "{:<8} {:<4} {:<48} {:>5} {:>9} {:>10.0} {:>7} {:>8.2} {:>8.2} {:>8.2} {:>6} {:>6.0} {:>6.0} {:>6.0} {:>7.1} {:>7} {:>7.0} {:>7} {:>7}",
            self.backend,
            self.id,
            truncate(&self.label, 48),
            self.connections,
            self.table_rows
                .map(|r| r.to_string())
                .unwrap_or_else(|| "-".into()),
            o.rate(),
            self.ratio()
                .map(|r| format!("{:.1}%", r * 100.0))
                .unwrap_or_else(|| "-".into()),
            o.quantile_ms(0.5),
            o.quantile_ms(0.99),
            o.corrected_quantile_ms(0.99),
            o.errors,
            o.server_cpu_percent(),
            o.client_cpu_percent(),
            o.other_cpu_percent(),
            mb(o.server_peak_rss_kb),
            self.db_bytes
                .map(|(_, wal)| format!("{:.1}", wal as f64 / MB))
                .unwrap_or_else(|| "-".into()),
            o.server_cpu_us_per_request(),
            o.server_bytes_per_request()
                .map(|b| format!("{b:.0}"))
                .unwrap_or_else(|| "-".into()),
            self.wal_bytes_per_request()
                .map(|b| format!("{b:.0}"))
                .unwrap_or_else(|| "-".into()),
        )
    }

    /// WAL bytes per correct answer: SQLite's as its token writer wrote them, PostgreSQL's
    /// from `pg_stat_wal`.
    pub fn wal_bytes_per_request(&self) -> Option<f64> {
        let o = &self.outcome;
        o.wal_bytes_per_request().or_else(|| {
            self.pg_wal
                .as_ref()
                .filter(|_| o.ok > 0)
                .map(|w| w.bytes as f64 / o.ok as f64)
        })
    }

    pub fn print_line(&self) {
        println!("{}", self.columns());
        if !self.note.is_empty() {
            println!("{:>14}{}", "", self.note);
        }
        if let Some(line) = self.control_line() {
            println!("{:>14}{line}", "");
        }
        if let Some((db, wal)) = self.db_bytes
            && wal > 64 * 1024 * 1024
        {
            println!(
                "{:>14}SQLite database {:.0} MB, WAL {:.0} MB after the run",
                "",
                db as f64 / MB,
                wal as f64 / MB
            );
        }
        if let Some(wal) = self.pg_wal.filter(|_| self.outcome.ok > 0) {
            let per_100 = |n: i64| n as f64 * 100.0 / self.outcome.ok as f64;
            println!(
                "{:>14}PostgreSQL WAL per 100 requests: {:.1} writes, {:.1} flushes, {:.0} bytes",
                "",
                per_100(wal.writes),
                per_100(wal.flushes),
                per_100(wal.bytes)
            );
        }
        for e in self.outcome.error_samples.iter().take(2) {
            println!("{:>14}error: {}", "", truncate(e, 160));
        }
    }

    pub fn to_json(&self) -> Value {
        let o = &self.outcome;
        let mut v = json!({
            "workload": self.id,
            "label": self.label,
            "connections": self.connections,
            "table_rows": self.table_rows,
            "requests_ok": o.ok,
            "errors": o.errors,
            "elapsed_s": o.elapsed.as_secs_f64(),
            "requests_per_s": o.rate(),
            "ratio_to_ceiling": self.ratio(),
            "p50_ms": o.quantile_ms(0.50),
            "p90_ms": o.quantile_ms(0.90),
            "p99_ms": o.quantile_ms(0.99),
            "max_ms": o.quantile_ms(1.0),
            "p99_corrected_ms": o.corrected_quantile_ms(0.99),
            "p99_9_corrected_ms": o.corrected_quantile_ms(0.999),
            "server_cpu_percent": o.server_cpu_percent(),
            "load_generator_cpu_percent": o.client_cpu_percent(),
            "other_cpu_percent": o.other_cpu_percent(),
            "steal_percent": o.steal_percent(),
            "server_peak_rss_mb": mb(o.server_peak_rss_kb),
            "peak_rss_exact": o.peak_is_exact,
            "inputs_exhausted": o.exhausted,
            "note": self.note,
            "sqlite_db_mb": self.db_bytes.map(|(db, _)| db as f64 / MB),
            "sqlite_wal_mb": self.db_bytes.map(|(_, wal)| wal as f64 / MB),
            "error_samples": o.error_samples,
            "server_cpu_us_per_request": o.server_cpu_us_per_request(),
            "server_cpu_s_per_1000_requests": o.server_cpu_us_per_request() / 1000.0,
            "server_bytes_written_per_request": o.server_bytes_per_request(),
            "sqlite_wal_bytes_per_request": o.wal_bytes_per_request(),
        });
        if let Some(wal) = self.pg_wal.filter(|_| o.ok > 0) {
            let per_100 = |n: i64| n as f64 * 100.0 / o.ok as f64;
            v["postgres_wal_writes_per_100_requests"] = json!(per_100(wal.writes));
            v["postgres_wal_flushes_per_100_requests"] = json!(per_100(wal.flushes));
            v["postgres_wal_bytes_per_request"] = json!(wal.bytes as f64 / o.ok as f64);
        }
        if let (Some(c), Some((rate, p50, p99))) = (&self.control, self.vs_control()) {
            v["vs_control"] = json!({
                "what": c.what,
                "control_requests_per_s": c.rate,
                "control_p50_ms": c.p50_ms,
                "control_p99_ms": c.p99_ms,
                "control_server_cpu_us_per_request": c.server_cpu_us,
                "ratio_requests_per_s": rate,
                "ratio_p50": p50,
                "ratio_p99": p99,
            });
        }
        if !o.buckets.is_empty() {
            let width = o.elapsed.as_secs_f64() / o.buckets.len().max(1) as f64;
            v["buckets"] = json!({
                "requests": o.buckets,
                "requests_per_s": o.buckets.iter().map(|n| *n as f64 / width).collect::<Vec<_>>(),
                "server_rss_mb": o.bucket_rss_kb.iter().map(|k| mb(*k)).collect::<Vec<_>>(),
                "server_cpu_us_per_request": o.bucket_server_cpu_us(),
                "load_generator_cpu_percent": o.bucket_cpu.iter().map(|c| percent_of(c.generator_s, width)).collect::<Vec<_>>(),
                "other_cpu_percent": o.bucket_cpu.iter().map(|c| percent_of(c.other_s(), width)).collect::<Vec<_>>(),
                "steal_percent": o.bucket_cpu.iter().map(|c| percent_of(c.steal_s, width)).collect::<Vec<_>>(),
            });
        }
        v
    }
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        s.chars().take(n - 1).chain(['…']).collect()
    }
}

pub fn header() -> String {
    format!(
        "{:<8} {:<4} {:<48} {:>5} {:>9} {:>10} {:>7} {:>8} {:>8} {:>8} {:>6} {:>6} {:>6} {:>6} {:>7} {:>7} {:>7} {:>7} {:>7}",
        "backend",
        "id",
        "workload",
        "conns",
        "rows",
        "req/s",
        "%ceil",
        "p50 ms",
        "p99 ms",
        "p99c ms",
        "errors",
        "cpu%",
        "gen%",
        "other%",
        "peak MB",
        "WAL MB",
        "CPU µs",
        "B/req",
        "WAL B"
    )
}

pub fn print_table(baseline: &[Measured], backends: &[BackendRun]) {
    println!("{}", header());
    for m in baseline {
        println!("{}", m.columns());
    }
    for b in backends {
        for m in &b.runs {
            println!("{}", m.columns());
            if let Some(line) = m.control_line() {
                println!("{:>14}{line}", "");
            }
        }
    }
}

pub fn print_backend_summary(b: &BackendRun) {
    println!(
        "\n{} targets (issue 6; W8: issue 11; writes and table size: issue 15):",
        b.backend
    );
    for t in crate::targets::targets(b) {
        let mark = match t.met {
            Some(true) => "met   ",
            Some(false) => "MISSED",
            None => "report",
        };
        println!(
            "  {mark}  {:<44} {:<40} {}",
            truncate(&t.name, 44),
            truncate(&t.goal, 40),
            t.measured
        );
    }
    for m in b.runs.iter().filter(|m| !m.outcome.buckets.is_empty()) {
        let o = &m.outcome;
        let width = o.elapsed.as_secs_f64() / o.buckets.len().max(1) as f64;
        let rates: Vec<String> = o
            .buckets
            .iter()
            .map(|n| format!("{:.0}", *n as f64 / width))
            .collect();
        let rss: Vec<String> = o
            .bucket_rss_kb
            .iter()
            .map(|k| format!("{:.1}", mb(*k)))
            .collect();
        let cpu: Vec<String> = o
            .bucket_server_cpu_us()
            .iter()
            .map(|us| format!("{us:.1}"))
            .collect();
        println!(
            "  {} per {:.1}-second bucket: req/s [{}], server RSS MB [{}], server CPU µs/request [{}]",
            m.id,
            width,
            rates.join(", "),
            rss.join(", "),
            cpu.join(", ")
        );
    }
}

/// Writes `doc` to `<dir>/<UTC time>[-smoke].json` (through a temporary file).
pub fn write_json(
    dir: &Path,
    started: &time::OffsetDateTime,
    smoke: bool,
    doc: &Value,
) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let stamp = started.format(time::macros::format_description!(
        "[year][month][day]-[hour][minute][second]"
    ))?;
    let name = format!("{stamp}{}.json", if smoke { "-smoke" } else { "" });
    let path = dir.join(name);
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_string_pretty(doc)? + "\n")?;
    std::fs::rename(&tmp, &path)?;
    Ok(path)
}
