//! The password grant: the raw Argon2id rate W6 is judged against, measured in this
//! process, and W6 itself (timed runs, then W6b: one attempt per connection, all at once,
//! for the server's peak memory).

use std::sync::Arc;
use std::time::{Duration, Instant};

use doorward::domain::secret;

use crate::drive::{Rows, Runs};
use crate::load::Plan;
use crate::report::Measured;
use crate::seed::World;
use crate::server::Process;
use crate::workloads as wl;

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

pub async fn argon2_rates(duration: Duration) -> anyhow::Result<Argon2Rates> {
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

/// W6: the password grant for the seeded users, against the raw Argon2id rate; then W6b.
pub async fn password_grant(
    runs: &mut Runs<'_>,
    p: &Process,
    world: &World,
    argon2_rate: f64,
) -> anyhow::Result<()> {
    let s = runs.s;
    let password = Arc::new(wl::Password::new(world.conf_basic.clone(), &world.users));
    let label = "password grant (Argon2id verify)";
    let note = |m: &Measured| {
        let pct = 100.0 * m.outcome.rate() / argon2_rate;
        format!("{pct:.0} % of the raw Argon2id rate ({argon2_rate:.1}/s)")
    };
    runs.sweep(p, "W6", label, Rows::Irrelevant, password.clone(), note)
        .await?;
    if !s.wants("W6") {
        return Ok(());
    }
    let burst = Plan {
        connections: s.password_burst,
        duration: Duration::from_secs(900),
        per_connection: Some(1),
        bucket: None,
    };
    let label = "password grant, one attempt per connection, all at once";
    let m = runs
        .measure(p, "W6b", label, Rows::Irrelevant, password, &burst)
        .await?;
    // No ratio to the ceiling: one request per connection is not a throughput run.
    runs.record(
        m.ceiling(None)
            .note(format!("{} concurrent attempts", s.password_burst)),
    );
    Ok(())
}
