//! Issue 10, defect 6: clients that connect and then send slowly or not at all (slowloris)
//! are cut off in time, the server keeps answering everyone else meanwhile, and no more
//! than `DOORWARD_MAX_CONNECTIONS` connections are served at once.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::both_backends;
use crate::support::TestApp;

const TIMEOUTS: &[(&str, &str)] = &[
    ("DOORWARD_HEADER_READ_TIMEOUT_MS", "1000"),
    ("DOORWARD_BODY_READ_TIMEOUT_MS", "1000"),
    ("DOORWARD_KEEP_ALIVE_TIMEOUT_MS", "2000"),
];

async fn connect(app: &TestApp) -> TcpStream {
    let addr = app.base.trim_start_matches("http://").to_string();
    TcpStream::connect(addr).await.unwrap()
}

/// Reads until the server closes the connection (or resets it); what it sent, and whether
/// it closed within `within`.
async fn read_until_closed(stream: &mut TcpStream, within: Duration) -> (String, bool) {
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return (String::from_utf8_lossy(&received).into_owned(), false),
            Ok(Ok(0)) | Ok(Err(_)) => {
                return (String::from_utf8_lossy(&received).into_owned(), true);
            }
            Ok(Ok(n)) => received.extend_from_slice(&buf[..n]),
        }
    }
}

async fn health_status(app: &TestApp, timeout: Duration) -> Option<u16> {
    reqwest::Client::new()
        .get(app.url("/-/health"))
        .timeout(timeout)
        .send()
        .await
        .ok()
        .map(|r| r.status().as_u16())
}

both_backends! {
    async fn half_sent_requests_are_closed_in_time_while_others_are_served(app: TestApp) {
        let app = TestApp::spawn_with(app.backend, TIMEOUTS).await;
        let opened = Instant::now();
        // 300 clients that send half a request line and stop, 20 that send nothing.
        let mut stalled = Vec::new();
        for i in 0..320 {
            let mut s = connect(&app).await;
            if i < 300 {
                s.write_all(b"GET /-/health HT").await.unwrap();
            }
            stalled.push(s);
        }
        // Ten that keep trickling their headers, a byte every 100 ms: still cut at 1 s.
        let mut tricklers = Vec::new();
        for _ in 0..10 {
            let mut s = connect(&app).await;
            tricklers.push(tokio::spawn(async move {
                let started = Instant::now();
                for b in b"GET /-/health HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" {
                    if s.write_all(&[*b]).await.is_err() {
                        return started.elapsed();
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                panic!("a trickling client was never cut off");
            }));
        }
        // Meanwhile everyone else is answered promptly.
        for _ in 0..20 {
            let started = Instant::now();
            assert_eq!(health_status(&app, Duration::from_secs(5)).await, Some(200));
            assert!(started.elapsed() < Duration::from_millis(800), "{:?}", started.elapsed());
        }
        // Every stalled connection is closed soon after the 1 s header deadline.
        for s in &mut stalled {
            let left = Duration::from_secs(4).saturating_sub(opened.elapsed());
            let (_, closed) = read_until_closed(s, left).await;
            assert!(closed, "a stalled connection is still open after {:?}", opened.elapsed());
        }
        let all_closed_after = opened.elapsed();
        assert!(all_closed_after >= Duration::from_millis(900), "closed too early: {all_closed_after:?}");
        for t in tricklers {
            let cut_after = t.await.unwrap();
            assert!(cut_after < Duration::from_secs(3), "trickler cut after {cut_after:?}");
        }
        eprintln!("320 stalled connections closed within {all_closed_after:?}");
        assert_eq!(health_status(&app, Duration::from_secs(5)).await, Some(200));
    }

    async fn a_trickled_body_gets_408_and_a_slow_request_503(app: TestApp) {
        let app = TestApp::spawn_with(app.backend, TIMEOUTS).await;
        let head = format!(
            "POST /oauth/token HTTP/1.1\r\nHost: {}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\ngrant_type=",
            app.base.trim_start_matches("http://")
        );
        let mut s = connect(&app).await;
        s.write_all(head.as_bytes()).await.unwrap();
        let started = Instant::now();
        let (answer, closed) = read_until_closed(&mut s, Duration::from_secs(4)).await;
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
        assert!(answer.contains("\"invalid_request\""), "{answer}");
        assert!(answer.to_ascii_lowercase().contains("cache-control: no-store"), "{answer}");
        assert!(closed, "the connection stays open after the 408");
        assert!(started.elapsed() >= Duration::from_millis(900), "{:?}", started.elapsed());

        // A whole-request deadline shorter than the body's: the request is answered 503 in
        // the API's format when it runs out, whatever the request is doing.
        let app = TestApp::spawn_with(
            app.backend,
            &[("DOORWARD_REQUEST_TIMEOUT_MS", "500"), ("DOORWARD_BODY_READ_TIMEOUT_MS", "5000")],
        )
        .await;
        let mut s = connect(&app).await;
        s.write_all(b"POST /api/v4/users HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 50\r\n\r\n{").await.unwrap();
        let (answer, closed) = read_until_closed(&mut s, Duration::from_secs(4)).await;
        assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
        assert!(answer.contains("{\"message\":"), "{answer}");
        assert!(closed);
    }

    async fn idle_keep_alive_connections_are_closed_after_their_own_timeout(app: TestApp) {
        let app = TestApp::spawn_with(app.backend, TIMEOUTS).await;
        let mut s = connect(&app).await;
        let request = b"GET /-/health HTTP/1.1\r\nHost: x\r\n\r\n";
        let mut buf = [0u8; 4096];
        s.write_all(request).await.unwrap();
        let n = s.read(&mut buf).await.unwrap();
        assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
        // Idle for longer than the header deadline but within the keep-alive one: still
        // open, and the next request on it is answered.
        tokio::time::sleep(Duration::from_millis(1400)).await;
        s.write_all(request).await.unwrap();
        let n = s.read(&mut buf).await.unwrap();
        assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
        let idle_from = Instant::now();
        let (_, closed) = read_until_closed(&mut s, Duration::from_secs(5)).await;
        assert!(closed, "an idle connection is never closed");
        let idle = idle_from.elapsed();
        assert!(idle >= Duration::from_millis(1800) && idle < Duration::from_millis(3500), "closed after {idle:?}");
    }

    async fn no_more_connections_than_the_cap_are_served(app: TestApp) {
        let app = TestApp::spawn_with(
            app.backend,
            &[("DOORWARD_MAX_CONNECTIONS", "10"), ("DOORWARD_HEADER_READ_TIMEOUT_MS", "30000")],
        )
        .await;
        let mut held = Vec::new();
        for _ in 0..10 {
            let mut s = connect(&app).await;
            s.write_all(b"GET /-/health HT").await.unwrap();
            held.push(s);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        // The eleventh waits in the backlog...
        assert_eq!(health_status(&app, Duration::from_millis(700)).await, None);
        // ...and is served as soon as a slot frees.
        drop(held.pop());
        assert_eq!(health_status(&app, Duration::from_secs(5)).await, Some(200));
    }
}
