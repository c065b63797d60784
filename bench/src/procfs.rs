//! What the benchmark reads about a server process from `/proc` (Linux only): CPU time from
//! `/proc/<pid>/stat`, resident memory from `/proc/<pid>/status`.

use std::sync::OnceLock;

/// Clock ticks per second of the `stat` times (`getconf CLK_TCK`, almost always 100).
fn ticks_per_second() -> f64 {
    static TICKS: OnceLock<f64> = OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// User plus system CPU time of `pid` so far, in seconds (all its threads).
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may contain spaces: count fields after it.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 and 15 of stat (utime, stime) are the 12th and 13th after the name.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / ticks_per_second())
}

/// Machine-wide CPU time so far, from `/proc/stat`: (busy, steal) in seconds, where busy
/// is everything but idle and iowait (steal included) over all cores.
pub fn system_cpu_seconds() -> Option<(f64, f64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().next()?.strip_prefix("cpu ")?;
    let v: Vec<f64> = line
        .split_whitespace()
        .filter_map(|f| f.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest time is already in user)
    let total: f64 = v.iter().take(8).sum();
    let idle = v.get(3)? + v.get(4)?;
    let steal = *v.get(7).unwrap_or(&0.0);
    Some((
        (total - idle) / ticks_per_second(),
        steal / ticks_per_second(),
    ))
}

/// The 1-minute load average.
pub fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0)
}

/// A `kB` line of `/proc/<pid>/status` (`VmRSS`, `VmHWM`), in KiB.
pub fn status_kb(pid: u32, key: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|line| {
        let value = line.strip_prefix(key)?.strip_prefix(':')?;
        value.split_whitespace().next()?.parse().ok()
    })
}

/// Resets the process's peak RSS (VmHWM) to its current RSS, so the next reading is the
/// peak of what follows. False when the kernel does not allow it.
pub fn reset_peak_rss(pid: u32) -> bool {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok()
}

/// The machine, for the report: core count, CPU model, kernel, memory.
pub fn machine() -> serde_json::Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    let mem_kb = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        })
        .unwrap_or(0);
    serde_json::json!({
        "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "cpu_model": model,
        "kernel": kernel,
        "memory_mib": mem_kb / 1024,
    })
}

/// Bytes the threads of `pid` named `name` have passed to `write` and similar calls so far
/// (`wchar` of `/proc/<pid>/task/<tid>/io`); `None` when there is no such thread. Doorward's
/// SQLite token writer (`doorward-writer`) writes nothing but WAL frames (and 8-byte
/// wake-ups of the tasks it answers), so its count is the WAL written by the hot writes.
pub fn thread_written_bytes(pid: u32, name: &str) -> Option<u64> {
    let mut total = None;
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))
        .ok()?
        .flatten()
    {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if comm.trim_end() != name {
            continue;
        }
        total = Some(total.unwrap_or(0) + wchar(&task.path().join("io"))?);
    }
    total
}

/// Bytes `pid` has passed to `write` and similar calls so far (`wchar` of `/proc/<pid>/io`):
/// for Doorward under load, the database's WAL and checkpoint writes (SQLite) or its
/// protocol traffic to PostgreSQL, and log lines.
pub fn written_bytes(pid: u32) -> Option<u64> {
    wchar(std::path::Path::new(&format!("/proc/{pid}/io")))
}

/// The `wchar:` line of a `/proc/…/io` file.
fn wchar(io: &std::path::Path) -> Option<u64> {
    std::fs::read_to_string(io)
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("wchar:"))
        .and_then(|v| v.trim().parse().ok())
}
