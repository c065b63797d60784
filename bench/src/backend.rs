//! Everything measured on one backend, in order: a fresh start, seeding, W4/W5 on the small
//! table, W1, W3, W2, W6, W8 (with its groups); a restart on the existing database; the
//! bulk load to the large table with the server stopped; a restart on it, W4/W5 and W1 on
//! the large table, and W7.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use doorward::store::Backend;
use serde_json::{Value, json};

use crate::Settings;
use crate::bulk::bulk_tokens;
use crate::drive::{self, Runs, TOKEN_SAMPLE};
use crate::groups::group_claims;
use crate::load::Workload;
use crate::password::password_grant;
use crate::report::Measured;
use crate::seed;
use crate::startup::{Launcher, ms};

/// Everything measured on one backend.
pub struct BackendRun {
    pub backend: &'static str,
    pub startup: Value,
    pub seeding: Value,
    pub runs: Vec<Measured>,
    pub argon2_rate: f64,
    /// W8's groups: how they were seeded, the claims' sizes and their parts' costs.
    pub group_claims: Value,
}

impl BackendRun {
    pub fn to_json(&self) -> Value {
        json!({
            "backend": self.backend,
            "startup": self.startup,
            "seeding": self.seeding,
            "runs": self.runs.iter().map(|m| m.to_json()).collect::<Vec<_>>(),
            "group_claims": self.group_claims,
            "targets": crate::targets::targets(self).iter().map(|t| t.to_json()).collect::<Vec<_>>(),
        })
    }
}

/// Runs everything on the database at `url` (data directory and logs under `dir`).
pub async fn run_backend(
    bin: &Path,
    backend: Backend,
    url: &str,
    dir: &Path,
    s: &Settings,
    ceiling: &BTreeMap<usize, f64>,
    argon2_rate: f64,
) -> anyhow::Result<BackendRun> {
    let sqlite_file = dir.join("data").join("doorward.db");
    let mut runs = Runs::new(backend, url, sqlite_file, s, ceiling);
    println!("\n== {} ==", runs.name);
    let mut launcher = Launcher::new(bin, url, dir, s)?;

    // A fresh start.
    let mut fresh = launcher.start(s.settle).await?;
    println!("{}", fresh.describe("started on a fresh database"));
    let p = &fresh.process;

    // Seeding through the CLI and the API, then the small table through the code flow.
    let seed_started = Instant::now();
    let world = seed::seed(bin, &launcher.env, p, s).await?;
    let seed_api = seed_started.elapsed();
    let t = Instant::now();
    let pairs = seed::small_table(p, &world, s).await?;
    let small_seed = t.elapsed();
    let small_rows = runs.count_tokens().await?;
    println!(
        "seeded {} users, 2 applications, {} token pairs through the code flow ({:.1} s); oauth_access_tokens has {small_rows} rows",
        world.users.len(),
        pairs.len(),
        (seed_api + small_seed).as_secs_f64()
    );
    let small_tokens: Vec<String> = pairs.iter().map(|p| p.access_token.clone()).collect();
    let small_sample = drive::sample(&small_tokens);
    let pool = drive::refresh_pool(&pairs);

    drive::reads(&mut runs, p, &world, &small_sample, small_rows).await?;
    crate::dpop::dpop_reads(&mut runs, p, &world).await?;
    let cc = drive::client_credentials(&mut runs, p, &world).await?;
    drive::code_exchange(&mut runs, p, &world, &pool).await?;
    let refresh = drive::refresh(&mut runs, p, &world, &pool).await?;
    password_grant(&mut runs, p, &world, argon2_rate).await?;
    let group_claims = group_claims(&mut runs, p, &world).await?;

    // A restart on the existing database.
    fresh.process.stop().await?;
    let mut existing = launcher.start(s.settle).await?;
    let rows_before_bulk = runs.count_tokens().await?;
    println!(
        "{}",
        existing.describe(&format!(
            "restarted on the existing database ({rows_before_bulk} token rows)"
        ))
    );
    existing.process.stop().await?;

    // The large table: bulk rows through the store's own insert, with the server stopped.
    // At least a sample's worth, so W4 and W5 always have live tokens spread over the table
    // (the small table's tokens have been rotated away by W2 by now).
    let large = s.wants("W4") || s.wants("W5") || s.wants("W7");
    let need = if large {
        s.large_table
            .saturating_sub(rows_before_bulk.max(0) as u64)
            .max(TOKEN_SAMPLE as u64)
    } else {
        0
    };
    let bulk = bulk_tokens(backend, url, need, &world).await?;
    let large_rows = runs.count_tokens().await?;
    let mut on_large = launcher.start(2 * s.settle).await?;
    println!(
        "{}",
        on_large.describe(&format!("restarted with {large_rows} token rows"))
    );
    let p = &on_large.process;
    let bearer = drive::reads(&mut runs, p, &world, &bulk.sample, large_rows).await?;
    // Issuance on the large table too: its cost must not grow with the table (issue 15).
    if s.wants("W1") {
        drive::client_credentials(&mut runs, p, &world).await?;
    }

    // W7: the mix, on the large table.
    drive::mix(
        &mut runs,
        p,
        bearer as Arc<dyn Workload>,
        cc as Arc<dyn Workload>,
        refresh as Arc<dyn Workload>,
    )
    .await?;
    on_large.process.stop().await?;

    Ok(BackendRun {
        backend: runs.name,
        startup: json!({
            "ready_fresh_ms": ms(fresh.ready),
            "idle_rss_fresh_kib": fresh.idle_rss_kib,
            "ready_existing_ms": ms(existing.ready),
            "existing_rows": rows_before_bulk,
            "idle_rss_existing_kib": existing.idle_rss_kib,
            "ready_existing_large_ms": ms(on_large.ready),
            "existing_large_rows": large_rows,
            "idle_rss_existing_large_kib": on_large.idle_rss_kib,
        }),
        seeding: json!({
            "admin_token": "doorward token create --user root --scopes api --json (the CLI)",
            "users": format!("{} users through POST /api/v4/users", world.users.len()),
            "applications": "a confidential and a public trusted application through POST /api/v4/applications",
            "small_table": format!("{} token pairs through GET /oauth/authorize (signed in through /users/sign_in) and POST /oauth/token (authorization_code)", s.small_table),
            "small_table_rows": small_rows,
            "large_table": format!(
                "{} rows bulk-inserted with the server stopped, each minted by doorward::oauth::issue::MintedTokens (what the token endpoint mints) and written by {}",
                bulk.inserted, bulk.method
            ),
            "large_table_rows": large_rows,
            "bulk_rows_per_s": bulk.inserted as f64 / bulk.took.as_secs_f64().max(1e-9),
            "bulk_seconds": bulk.took.as_secs_f64(),
            "seed_seconds": (seed_api + small_seed).as_secs_f64(),
        }),
        runs: runs.list,
        argon2_rate,
        group_claims,
    })
}
