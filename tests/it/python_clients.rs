//! Existing Python clients of GitLab, unchanged, against Doorward. `scripts/test` installs
//! them into a virtual environment and sets `DOORWARD_TEST_PYTHON`.

use std::process::Command;

use crate::both_backends;

pub fn python() -> String {
    std::env::var("DOORWARD_TEST_PYTHON")
        .expect("DOORWARD_TEST_PYTHON is not set: run the suite with scripts/test, which installs python-gitlab")
}

pub fn run_script(script: &str, args: &[&str]) {
    let path = format!("{}/tests/python/{script}", env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(python())
        .arg(path)
        .args(args)
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "{script} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

both_backends! {
    async fn python_gitlab_manages_users(app: TestApp) {
        let token = app.token_for("root", "api").await;
        let base = app.base.clone();
        tokio::task::spawn_blocking(move || run_script("python_gitlab_users.py", &[&base, &token])).await.unwrap();
    }
}

both_backends! {
    async fn python_gitlab_manages_applications(app: TestApp) {
        let token = app.token_for("root", "api").await;
        let base = app.base.clone();
        tokio::task::spawn_blocking(move || run_script("python_gitlab_applications.py", &[&base, &token])).await.unwrap();
        assert!(app.state.store.applications_of_owner(None).await.unwrap().is_empty(), "the script deleted what it made");
    }
}

both_backends! {
    async fn python_gitlab_lists_and_revokes_personal_access_tokens(app: TestApp) {
        let token = app.token_for("root", "api").await;
        let alice_id = app.create_user("alice", "alice-password").await["id"].as_i64().unwrap();
        for i in 0..3 {
            crate::personal_access_tokens::issue(&app, alice_id, &format!("alice-{i}"), "api").await;
        }
        let base = app.base.clone();
        let script_token = token.clone();
        let alice = alice_id.to_string();
        tokio::task::spawn_blocking(move || run_script("python_gitlab_pats.py", &[&base, &script_token, &alice])).await.unwrap();
        let root = app.state.store.personal_access_tokens_of_user(1).await.unwrap();
        assert!(root[0].revoked, "the script's token revoked itself");
        let alices = app.state.store.personal_access_tokens_of_user(alice_id).await.unwrap();
        assert_eq!(alices.iter().map(|t| t.revoked).collect::<Vec<_>>(), [true, true, false]);
    }
}

both_backends! {
    async fn python_gitlab_manages_groups_and_members(app: TestApp) {
        let token = app.token_for("root", "api").await;
        let member = app.create_user("mia", "mia-password-1").await["id"].as_i64().unwrap().to_string();
        let base = app.base.clone();
        tokio::task::spawn_blocking(move || run_script("python_gitlab_groups.py", &[&base, &token, &member])).await.unwrap();
        assert_eq!(app.state.store.count_rows("groups").await.unwrap(), 0, "the script deleted what it made");
    }
}
