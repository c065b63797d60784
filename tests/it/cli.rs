//! The `doorward` binary's commands, run as a separate process on the same database as a
//! running server.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

use crate::both_backends;
use crate::support::{SECRET_KEY, TestApp};

pub(crate) fn doorward(app: &TestApp, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_doorward"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DOORWARD_DATABASE_URL", &app.database_url)
        .env("DOORWARD_DATA_DIR", app.data_dir.path())
        .env("DOORWARD_SECRET_KEY", SECRET_KEY)
        .env("DOORWARD_LOG_LEVEL", "error")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run doorward");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    drop(child.stdin.take());
    child.wait_with_output().unwrap()
}

pub(crate) fn stdout_json(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

both_backends! {
    async fn users_and_tokens_made_by_the_cli_work_on_a_running_server(app: TestApp) {
        let out = doorward(&app, &["user", "create", "--username", "ivy", "--email", "ivy@example.com", "--name", "Ivy", "--password-stdin", "--json"], Some("ivy-password\n"));
        let ivy = stdout_json(&out);
        assert_eq!(ivy["username"], "ivy");
        assert!(ivy.get("password").is_none(), "a given password is not echoed");
        assert_eq!(app.sign_in_with(&app.client, "ivy", "ivy-password").await.status(), 303);

        let out = doorward(&app, &["token", "create", "--user", "ivy", "--scopes", "read_user,read_api", "--name", "laptop", "--expires-in-days", "7", "--json"], None);
        let created = stdout_json(&out);
        let token = created["token"].as_str().unwrap().to_string();
        assert!(token.starts_with("dwpat-"));
        assert_eq!(created["scopes"], serde_json::json!(["read_api", "read_user"]));
        let res = reqwest::Client::new().get(app.url("/api/v4/user")).header("PRIVATE-TOKEN", &token).send().await.unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(res.json::<Value>().await.unwrap()["username"], "ivy");

        // Without --json the token alone is printed, ready for a script.
        let out = doorward(&app, &["token", "create", "--user", "ivy", "--scopes", "api"], None);
        let plain = String::from_utf8(out.stdout).unwrap();
        assert!(plain.trim().starts_with("dwpat-") && plain.trim().lines().count() == 1);

        let out = doorward(&app, &["user", "create", "--username", "jack", "--email", "jack@example.com", "--admin", "--json"], None);
        let jack = stdout_json(&out);
        assert_eq!(jack["is_admin"], true);
        let generated = jack["password"].as_str().unwrap();
        assert_eq!(app.sign_in_with(&app.new_browser(), "jack", generated).await.status(), 303);

        let list = stdout_json(&doorward(&app, &["user", "list", "--json"], None));
        let names: Vec<&str> = list.as_array().unwrap().iter().map(|u| u["username"].as_str().unwrap()).collect();
        assert_eq!(names, ["root", "ivy", "jack"]);
        let table = doorward(&app, &["user", "list"], None);
        assert!(String::from_utf8(table.stdout).unwrap().contains("ivy@example.com"));
    }

    async fn cli_errors_are_one_line_and_a_failure_exit(app: TestApp) {
        let cases: Vec<(Vec<&str>, Option<&str>, &str)> = vec![
            (vec!["user", "create", "--username", "root", "--email", "x@example.com"], None, "username has already been taken"),
            (vec!["user", "create", "--username", "k", "--email", "k@example.com"], None, "Username is too short"),
            (vec!["user", "create", "--username", "kim", "--email", "kim@example.com", "--password-stdin"], Some("short\n"), "Password is too short"),
            (vec!["token", "create", "--user", "root", "--scopes", "api,bogus"], None, "unknown scope: bogus"),
            (vec!["token", "create", "--user", "nobody", "--scopes", "api"], None, "no user \"nobody\""),
            (vec!["token", "create", "--user", "root", "--scopes", "openid"], None, "not available for personal access tokens"),
            (vec!["frobnicate"], None, "unrecognized subcommand"),
        ];
        for (args, stdin, expected) in cases {
            let out = doorward(&app, &args, stdin);
            assert!(!out.status.success(), "{args:?}");
            let err = String::from_utf8(out.stderr).unwrap();
            assert!(err.starts_with("error: ") && err.contains(expected), "{args:?}: {err}");
            assert_eq!(err.trim_end().lines().count(), 1, "{err}");
            assert!(!err.contains("panicked"));
        }
    }

    async fn migrate_is_idempotent(app: TestApp) {
        for _ in 0..2 {
            let out = doorward(&app, &["migrate", "--json"], None);
            assert_eq!(stdout_json(&out)["migrated"], true);
        }
    }
}

#[test]
fn a_fresh_start_creates_the_data_directory_and_the_root_password_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_doorward"))
        .args(["user", "list", "--json"])
        .current_dir(dir.path())
        .env_remove("DOORWARD_DATABASE_URL")
        .env_remove("DOORWARD_ROOT_PASSWORD")
        .env_remove("DOORWARD_SECRET_KEY")
        .env_remove("DOORWARD_DATA_DIR")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let data = dir.path().join("doorward-data");
    assert!(data.join("doorward.db").exists());
    let pw_file = data.join("initial_root_password");
    let text = std::fs::read_to_string(&pw_file).unwrap();
    let password = text
        .lines()
        .find_map(|l| l.strip_prefix("Password: "))
        .unwrap();
    assert!(password.len() >= 20);
    // The log shows the password once, on this first start.
    assert!(String::from_utf8_lossy(&out.stderr).contains(password));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&pw_file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(
        std::fs::metadata(data.join("secret_key"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    let out = Command::new(env!("CARGO_BIN_EXE_doorward"))
        .args(["user", "list"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains(password),
        "printed only on the first start"
    );
    // WAL mode is a property of the database file.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mode: String = rt.block_on(async {
        let url = format!("sqlite://{}", data.join("doorward.db").display());
        let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
        sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(&pool)
            .await
            .unwrap()
    });
    assert_eq!(mode, "wal");
}
