//! Several `doorward serve` processes on one PostgreSQL database behave as one service, and
//! a process stops cleanly on SIGTERM.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{ROOT_PASSWORD, SECRET_KEY, browser, fresh_pg_database, location};

struct Node {
    child: Child,
    base: String,
}

impl Node {
    fn start(database_url: &str, data_dir: &std::path::Path) -> Node {
        Node::start_with(database_url, data_dir, &[])
    }

    fn start_with(database_url: &str, data_dir: &std::path::Path, env: &[(&str, &str)]) -> Node {
        let port = free_port();
        let child = Command::new(env!("CARGO_BIN_EXE_doorward"))
            .arg("serve")
            .envs(env.iter().copied())
            .env("DOORWARD_LISTEN", format!("127.0.0.1:{port}"))
            .env("DOORWARD_DATABASE_URL", database_url)
            .env("DOORWARD_DATA_DIR", data_dir)
            .env("DOORWARD_SECRET_KEY", SECRET_KEY)
            .env("DOORWARD_ROOT_PASSWORD", ROOT_PASSWORD)
            .env("DOORWARD_LOG_LEVEL", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start doorward serve");
        Node {
            child,
            base: format!("http://127.0.0.1:{port}"),
        }
    }

    async fn wait_ready(&self) -> Duration {
        let started = Instant::now();
        let client = reqwest::Client::new();
        while started.elapsed() < Duration::from_secs(30) {
            let res = client
                .get(format!("{}/-/readiness", self.base))
                .send()
                .await;
            if res.is_ok_and(|r| r.status() == 200) {
                return started.elapsed();
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("node at {} never became ready", self.base);
    }

    fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let killed = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(killed.success());
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "SIGTERM did not stop the node");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_on_one_postgres_share_sessions_and_stop_cleanly() {
    let database_url = fresh_pg_database().await;
    let dir_a = tempfile::tempdir().unwrap();
    let dir_b = tempfile::tempdir().unwrap();
    // Both start at once against an empty database: migrations and the root account
    // must be created exactly once.
    let mut a = Node::start(&database_url, dir_a.path());
    let mut b = Node::start(&database_url, dir_b.path());
    a.wait_ready().await;
    b.wait_ready().await;

    // Sign in on node A...
    let client = browser();
    let page = client
        .get(format!("{}/users/sign_in", a.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let token = crate::support::csrf_from(&page);
    let res = client
        .post(format!("{}/users/sign_in", a.base))
        .form(&[
            ("authenticity_token", token.as_str()),
            ("username", "root"),
            ("password", ROOT_PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let session_cookie = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_string())
        .find(|c| c.starts_with("doorward_session="))
        .unwrap();
    let csrf_cookie = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_string())
        .find(|c| c.starts_with("doorward_csrf="))
        .unwrap();
    let cookies = format!("{session_cookie}; {csrf_cookie}");

    // ...and use the session on node B, including a CSRF-protected form.
    let plain = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let res = plain
        .get(format!("{}/-/user_settings/profile", b.base))
        .header("cookie", &cookies)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let page = res.text().await.unwrap();
    assert!(page.contains("id=\"profile-username\">root<"));
    let form_token = crate::support::csrf_from(&page);

    // Sign out on B; the session is gone on A too.
    let res = plain
        .post(format!("{}/users/sign_out", b.base))
        .header("cookie", &cookies)
        .form(&[("authenticity_token", form_token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let res = plain
        .get(format!("{}/-/user_settings/profile", a.base))
        .header("cookie", &cookies)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert!(location(&res).starts_with("/users/sign_in"));

    // SIGTERM stops a node cleanly and quickly; the other keeps serving.
    let status = a.terminate();
    assert!(status.success(), "exit status {status:?}");
    assert_eq!(
        plain
            .get(format!("{}/-/readiness", b.base))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    // A restart on the same database is ready quickly (no first-start work left to do).
    let restarted = Node::start(&database_url, dir_a.path());
    let took = restarted.wait_ready().await;
    assert!(took < Duration::from_secs(10), "ready after {took:?}");
    assert!(b.terminate().success());
}

/// DPoP proofs and client assertions are single use across nodes (RFC 9449 §11.1, RFC 7523
/// §3): their `jti`s are recorded in the shared database, not in one node's memory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proofs_and_assertions_are_single_use_across_nodes() {
    use crate::support::client_jwt::{self, KID, KeyClient};
    use crate::support::dpop::DpopKey;
    use serde_json::{Value, json};

    let database_url = fresh_pg_database().await;
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    // One service behind one name: proofs and assertions name the external URL.
    let issuer = "http://doorward.test";
    let env = [("DOORWARD_EXTERNAL_URL", issuer)];
    let a = Node::start_with(&database_url, dir_a.path(), &env);
    a.wait_ready().await;
    let b = Node::start_with(&database_url, dir_b.path(), &env);
    b.wait_ready().await;

    let admin = Command::new(env!("CARGO_BIN_EXE_doorward"))
        .args(["token", "create", "--user", "root", "--scopes", "api"])
        .env("DOORWARD_DATABASE_URL", &database_url)
        .env("DOORWARD_DATA_DIR", dir_a.path())
        .env("DOORWARD_SECRET_KEY", SECRET_KEY)
        .output()
        .unwrap();
    assert!(
        admin.status.success(),
        "{}",
        String::from_utf8_lossy(&admin.stderr)
    );
    let admin = String::from_utf8(admin.stdout).unwrap().trim().to_string();
    let key = DpopKey::generate();
    let http = reqwest::Client::new();
    let created: Value = http
        .post(format!("{}/api/v4/applications", a.base))
        .header("PRIVATE-TOKEN", &admin)
        .json(
            &json!({"name": "Two nodes", "redirect_uri": "https://n.example/cb", "scopes": "api",
            "token_endpoint_auth_method": "private_key_jwt", "jwks": client_jwt::jwks(&key, KID)}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let client = KeyClient {
        client_id: created["application_id"].as_str().unwrap().to_string(),
        redirect_uri: "https://n.example/cb".into(),
        key,
        created,
    };
    let proof_key = DpopKey::generate();
    let token_url = format!("{issuer}/oauth/token");
    let request = |node: &Node, assertion: &str, proof: &str| {
        let mut form = vec![
            ("grant_type", "client_credentials".to_string()),
            ("scope", "api".to_string()),
        ];
        form.extend(KeyClient::auth_fields(assertion));
        http.post(format!("{}/oauth/token", node.base))
            .header("DPoP", proof)
            .form(&form)
            .send()
    };
    let (assertion, proof) = (
        client.assertion(issuer),
        proof_key.proof("POST", &token_url, None),
    );
    let res = request(&a, &assertion, &proof).await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap()["token_type"], "DPoP");
    // The same assertion on the other node: replay.
    let res = request(&b, &assertion, &proof_key.proof("POST", &token_url, None))
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(
        res.json::<Value>().await.unwrap()["error"],
        "invalid_client"
    );
    // The same proof on the other node, with a fresh assertion: replay.
    let res = request(&b, &client.assertion(issuer), &proof)
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(
        res.json::<Value>().await.unwrap()["error"],
        "invalid_dpop_proof"
    );
    // Both fresh: fine on the other node.
    let res = request(
        &b,
        &client.assertion(issuer),
        &proof_key.proof("POST", &token_url, None),
    )
    .await
    .unwrap();
    assert_eq!(res.status(), 200);
}
