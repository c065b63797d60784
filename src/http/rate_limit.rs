//! A per-key request limit kept in memory on each node: a fixed one-minute window per
//! client address (or per account, for mailed links). For endpoints anyone may call without credentials (dynamic client
//! registration), where the cost of a request is a row in the database. Each node counts
//! its own requests, so N nodes allow up to N times the limit; the bound it gives is on
//! what one address can make one node do.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

/// Addresses remembered at most; past this, windows that have ended are dropped, and if
/// none have, the map is cleared (a flood from many addresses then briefly passes).
const MAX_ADDRESSES: usize = 100_000;

#[derive(Debug)]
pub struct RateLimit<K = IpAddr> {
    per_minute: u32,
    windows: Mutex<HashMap<K, (i64, u32)>>,
}

impl<K: std::hash::Hash + Eq> RateLimit<K> {
    pub fn per_minute(per_minute: u32) -> RateLimit<K> {
        RateLimit {
            per_minute,
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// Counts a request from `ip` at `now` (Unix seconds). `Err(seconds)`: refused, and
    /// how long until the window ends (for `Retry-After`).
    pub fn check(&self, ip: K, now: i64) -> Result<(), i64> {
        let minute = now.div_euclid(60);
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        if windows.len() >= MAX_ADDRESSES && !windows.contains_key(&ip) {
            windows.retain(|_, (m, _)| *m == minute);
            if windows.len() >= MAX_ADDRESSES {
                windows.clear();
            }
        }
        let entry = windows.entry(ip).or_insert((minute, 0));
        if entry.0 != minute {
            *entry = (minute, 0);
        }
        if entry.1 >= self.per_minute {
            return Err(60 - now.rem_euclid(60));
        }
        entry.1 += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_address_gets_its_own_window_per_minute() {
        let limit: RateLimit = RateLimit::per_minute(3);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        for _ in 0..3 {
            assert!(limit.check(a, 600).is_ok());
        }
        assert_eq!(limit.check(a, 610), Err(50));
        assert!(limit.check(b, 610).is_ok());
        assert!(limit.check(a, 660).is_ok(), "a new minute starts afresh");
    }
}
