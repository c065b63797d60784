//! `doorward import doorkeeper --from <URL> [--dry-run] [--json]` (issue 16): brings the
//! users, applications and tokens of a GitLab (or any doorkeeper) database to Doorward so
//! that every client id, secret, token and password keeps working. The source is read by
//! `store::doorkeeper_source`, decided on by `domain::doorkeeper_import` and written, in one
//! transaction, by `store::doorkeeper_import`. docs/migrating-from-gitlab.md is the guide.

use serde_json::json;

use crate::bootstrap;
use crate::config::Config;
use crate::domain::clock::Clock;
use crate::domain::doorkeeper_import::{Counts, ImportCounts};
use crate::store::doorkeeper_source;

/// Runs the import and prints its report: one JSON object with `json`, else a summary.
pub async fn doorkeeper(
    config: &Config,
    json: bool,
    from: &str,
    dry_run: bool,
) -> anyhow::Result<()> {
    // The source first: a source that cannot be read changes nothing, not even the target's
    // migrations.
    let source = doorkeeper_source::read(from).await?;
    let clock = Clock::system();
    let store = bootstrap::prepare(config, &clock).await?.store;
    let counts = store
        .import_doorkeeper(&source, dry_run, clock.now())
        .await?;
    let source_url = doorkeeper_source::masked(from);
    if json {
        println!("{}", report_json(&source_url, dry_run, &counts));
    } else {
        print!("{}", report_text(&source_url, dry_run, &counts));
    }
    Ok(())
}

fn report_json(source: &str, dry_run: bool, counts: &ImportCounts) -> serde_json::Value {
    json!({
        "source": source,
        "dry_run": dry_run,
        "users": counts.users,
        "applications": counts.applications,
        "access_tokens": counts.access_tokens,
        "access_grants": counts.access_grants,
        "openid_requests": counts.openid_requests,
        "device_grants": counts.device_grants,
        "conflicts": counts.conflicts,
    })
}

fn report_text(source: &str, dry_run: bool, counts: &ImportCounts) -> String {
    let line = |name: &str, c: &Counts| {
        format!(
            "  {name:<16} {:>8} found {:>8} imported {:>8} existing {:>8} skipped\n",
            c.found, c.imported, c.existing, c.skipped
        )
    };
    let mut out = if dry_run {
        format!("Dry run: nothing was written. Importing {source} would give:\n")
    } else {
        format!("Imported from {source}:\n")
    };
    out += &line("users", &counts.users);
    out += &line("applications", &counts.applications);
    out += &line("access tokens", &counts.access_tokens);
    out += &line("access grants", &counts.access_grants);
    out += &line("openid requests", &counts.openid_requests);
    out += &line("device grants", &counts.device_grants);
    if counts.access_grants.found + counts.openid_requests.found + counts.device_grants.found > 0 {
        out += "  (authorization codes, OpenID requests and device grants are not imported: clients mid-flow start again)\n";
    }
    if counts.conflicts.is_empty() {
        out += "No conflicts.\n";
    } else {
        out += &format!(
            "{} conflicts (these users and their tokens were not imported; their applications came in without an owner):\n",
            counts.conflicts.len()
        );
        for c in &counts.conflicts {
            let why = c.reason.describe();
            out += &format!("  {} {} ({}): {why}\n", c.table, c.source_id, c.username);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::doorkeeper_import::{Conflict, ConflictReason};

    #[test]
    fn the_json_report_has_the_issues_shape() {
        let mut counts = ImportCounts {
            access_grants: Counts::skipped_all(2),
            ..ImportCounts::default()
        };
        counts.users.imported();
        counts.users.skipped();
        counts.conflicts.push(Conflict {
            table: "users",
            source_id: 40,
            username: "carol".into(),
            reason: ConflictReason::Username,
        });
        let value = report_json("sqlite:///a.db", true, &counts);
        assert_eq!(value["dry_run"], true);
        assert_eq!(
            value["users"],
            json!({"found": 2, "imported": 1, "existing": 0, "skipped": 1})
        );
        assert_eq!(value["access_grants"]["skipped"], 2);
        assert_eq!(
            value["conflicts"],
            json!([{"table": "users", "source_id": 40, "username": "carol", "reason": "username"}])
        );
        let text = report_text("sqlite:///a.db", true, &counts);
        assert!(text.starts_with("Dry run"), "{text}");
        assert!(text.contains("users 40 (carol): the username belongs to another Doorward user"));
    }
}
