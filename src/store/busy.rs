//! Waiting for SQLite's locks in small steps, on the connections of the write path.
//!
//! SQLite's own busy handler (`sqlite3_busy_timeout`) sleeps 1, 2, 5, 10, 15, 20, 25… ms
//! between tries (`sqliteDefaultBusyCallback`), so a lock held for 4 ms costs the waiter 8
//! and one held for 9 ms costs 18. The token writer waits like that whenever the WAL's
//! RESTART checkpoint holds the write lock, and the checkpoint waits like that for the
//! readers still inside the log: both stalls grew to the next step, and a client arriving
//! at a steady rate met them (docs/performance.md, "The benchmark's p99 and wrk's").
//! Here the first [`FINE_TRIES`] waits are [`FINE_STEP`] each, then a millisecond each,
//! for about [`BUDGET`] in all, as before. [`wait_briefly`] is for the checkpoint that may
//! give up and try again a round later.

use std::time::Duration;

use rusqlite::Connection;

/// The short waits that cover a lock held for the usual few milliseconds.
const FINE_STEP: Duration = Duration::from_micros(50);
const FINE_TRIES: i32 = 200;
/// [`wait_briefly`]'s tries: about two milliseconds of them.
const BRIEF_TRIES: i32 = 40;
/// The longer waits after those, and the whole time before SQLite reports busy.
const COARSE_STEP: Duration = Duration::from_millis(1);
const BUDGET: Duration = Duration::from_secs(5);

/// Installs the handler on `conn` (it replaces any `busy_timeout`).
pub fn wait_in_small_steps(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_handler(Some(retry))
}

/// Installs a handler that gives up after about two milliseconds of small waits.
pub fn wait_briefly(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_handler(Some(retry_briefly))
}

fn retry_briefly(prior: i32) -> bool {
    wait(prior, BRIEF_TRIES, 0)
}

/// SQLite calls this with the number of earlier calls for the same lock; `false` gives up.
fn retry(prior: i32) -> bool {
    let coarse_tries = (BUDGET.as_millis() / COARSE_STEP.as_millis()) as i32;
    wait(prior, FINE_TRIES, coarse_tries)
}

/// Sleeps for the `prior`-th try: [`FINE_STEP`] for the first `fine_tries`, [`COARSE_STEP`]
/// for the `coarse_tries` after them; `false` (give up) after all of them.
fn wait(prior: i32, fine_tries: i32, coarse_tries: i32) -> bool {
    if prior >= fine_tries + coarse_tries {
        return false;
    }
    std::thread::sleep(if prior < fine_tries {
        FINE_STEP
    } else {
        COARSE_STEP
    });
    true
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    /// How long `waiter` takes to start writing while `holder` keeps the write lock for
    /// `held`: the best of a few tries, so a slow moment of the machine does not count.
    fn wait_for_a_lock_held(
        waiter: &Connection,
        mut holder: Connection,
        held: Duration,
    ) -> Duration {
        let mut best = Duration::MAX;
        for _ in 0..5 {
            holder.execute_batch("BEGIN IMMEDIATE").unwrap();
            let started = Instant::now();
            let release = std::thread::spawn(move || {
                std::thread::sleep(held);
                holder.execute_batch("COMMIT").unwrap();
                holder
            });
            waiter.execute_batch("BEGIN IMMEDIATE").unwrap();
            best = best.min(started.elapsed());
            waiter.execute_batch("COMMIT").unwrap();
            holder = release.join().unwrap();
        }
        best
    }

    #[test]
    fn a_lock_held_for_four_milliseconds_costs_the_waiter_about_that() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let holder = Connection::open(&path).unwrap();
        holder.execute_batch("PRAGMA journal_mode = WAL").unwrap();
        let waiter = Connection::open(&path).unwrap();
        wait_in_small_steps(&waiter).unwrap();
        // SQLite's default handler would try at 1, 3 and 8 ms: never before 8 ms.
        let waited = wait_for_a_lock_held(&waiter, holder, Duration::from_millis(4));
        assert!(
            waited < Duration::from_micros(6_500),
            "waited {waited:?} for a lock held 4 ms"
        );
    }

    #[test]
    fn the_handler_gives_up_after_its_budget() {
        let coarse = (BUDGET.as_millis() / COARSE_STEP.as_millis()) as i32;
        assert!(retry(0));
        assert!(retry(FINE_TRIES + coarse - 1));
        assert!(!retry(FINE_TRIES + coarse));
        assert!(retry_briefly(BRIEF_TRIES - 1));
        assert!(!retry_briefly(BRIEF_TRIES));
    }
}
