use crate::both_backends;
use crate::support::TestApp;

both_backends! {
    async fn probes_answer_as_gitlab_does(app: TestApp) {
        let res = app.get("/-/health").await;
        assert_eq!(res.status(), 200);
        assert_eq!(res.text().await.unwrap(), "Doorward OK");

        let live: serde_json::Value = app.get("/-/liveness").await.json().await.unwrap();
        assert_eq!(live["status"], "ok");

        let res = app.get("/-/readiness").await;
        assert_eq!(res.status(), 200);
        let ready: serde_json::Value = res.json().await.unwrap();
        assert_eq!(ready["status"], "ok");
        assert_eq!(ready["db_check"][0]["status"], "ok");
    }

    async fn metrics_count_requests_per_route_and_show_the_pool(app: TestApp) {
        app.get("/-/health").await;
        app.get("/users/sign_in").await;
        let res = app.get("/-/metrics").await;
        assert_eq!(res.status(), 200);
        assert!(res.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
        let text = res.text().await.unwrap();
        assert!(text.contains("http_requests_total{method=\"GET\",route=\"/-/health\",status=\"200\"} 1"), "{text}");
        assert!(text.contains("http_request_duration_seconds_bucket{method=\"GET\",route=\"/users/sign_in\""), "{text}");
        assert!(text.contains("db_pool_connections{"), "{text}");
    }

    async fn every_page_carries_the_security_headers(app: TestApp) {
        for path in ["/users/sign_in", "/no/such/page", "/api/v4/user"] {
            let res = app.get(path).await;
            let h = res.headers();
            assert_eq!(h["x-frame-options"], "DENY", "{path}");
            assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
            assert_eq!(h["referrer-policy"], "same-origin", "{path}");
            let csp = h["content-security-policy"].to_str().unwrap();
            assert!(csp.contains("frame-ancestors 'none'") && csp.contains("default-src 'none'"), "{path}: {csp}");
        }
    }

    async fn unknown_paths_are_404_as_a_page_or_json(app: TestApp) {
        let res = app.get("/no/such/page").await;
        assert_eq!(res.status(), 404);
        assert!(res.text().await.unwrap().contains("Page not found"));
        let res = app.get("/api/v4/nothing-here").await;
        assert_eq!(res.status(), 404);
        let body: serde_json::Value = res.json().await.unwrap();
        assert_eq!(body["message"], "404 Not Found");
    }
}

/// A database outage: readiness and requests answer 503 quickly, and everything recovers
/// when the database returns. Simulated on PostgreSQL by renaming the database away.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_gives_503_and_the_server_recovers() {
    let app = TestApp::spawn(doorward::store::Backend::Postgres).await;
    let token = app.token_for("root", "api").await;
    app.sign_in_root().await;
    let db = url::Url::parse(&app.database_url)
        .unwrap()
        .path()
        .trim_start_matches('/')
        .to_string();
    let admin = sqlx::PgPool::connect(&crate::support::pg_admin_url())
        .await
        .unwrap();
    let terminate =
        format!("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{db}'");
    // Take the database away: close every connection and rename it.
    for _ in 0..20 {
        sqlx::query(sqlx::AssertSqlSafe(terminate.clone()))
            .execute(&admin)
            .await
            .unwrap();
        if sqlx::query(sqlx::AssertSqlSafe(format!(
            "ALTER DATABASE {db} RENAME TO {db}_away"
        )))
        .execute(&admin)
        .await
        .is_ok()
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }

    let started = std::time::Instant::now();
    let res = app.get("/-/readiness").await;
    assert_eq!(res.status(), 503);
    let res = reqwest::Client::new()
        .get(app.url("/api/v4/user"))
        .header("PRIVATE-TOKEN", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 503);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["message"], "503 Service Unavailable");
    let res = app.get("/-/user_settings/profile").await;
    assert_eq!(res.status(), 503);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(15),
        "503s must come quickly"
    );
    // Liveness does not depend on the database.
    assert_eq!(app.get("/-/liveness").await.status(), 200);

    sqlx::query(sqlx::AssertSqlSafe(format!(
        "ALTER DATABASE {db}_away RENAME TO {db}"
    )))
    .execute(&admin)
    .await
    .unwrap();
    let mut ready = false;
    for _ in 0..50 {
        if app.get("/-/readiness").await.status() == 200 {
            ready = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert!(ready, "readiness recovers");
    let res = reqwest::Client::new()
        .get(app.url("/api/v4/user"))
        .header("PRIVATE-TOKEN", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}
