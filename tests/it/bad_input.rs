//! Malformed, oversized and hostile input gets a clear 4xx and changes nothing.

use serde_json::Value;

use crate::both_backends;
use crate::support::ROOT_PASSWORD;

both_backends! {
    async fn api_bodies_that_cannot_be_read_get_4xx_json(app: TestApp) {
        let admin = app.token_for("root", "api").await;
        let post = |content_type: &'static str, body: Vec<u8>| {
            reqwest::Client::new()
                .post(app.url("/api/v4/users"))
                .header("PRIVATE-TOKEN", &admin)
                .header("content-type", content_type)
                .body(body)
                .send()
        };
        let cases: Vec<(&str, Vec<u8>, u16)> = vec![
            ("application/json", b"{\"username\": ".to_vec(), 400),
            ("application/json", b"[1,2,3]".to_vec(), 400),
            ("application/x-www-form-urlencoded", b"username=%FF%FE&email=a@b.co&name=x&password=password-1".to_vec(), 400),
            ("application/x-www-form-urlencoded", b"username=a&username=b&email=a@b.co&name=x&password=password-1".to_vec(), 400),
            ("text/plain", b"hello".to_vec(), 415),
            ("application/json", vec![b' '; 70 * 1024], 413),
        ];
        for (ct, body, status) in cases {
            let res = post(ct, body).await.unwrap();
            assert_eq!(res.status().as_u16(), status, "{ct}");
            let json: Value = res.json().await.unwrap();
            assert!(json["message"].is_string(), "{json}");
        }
        assert_eq!(app.state.store.count_users().await.unwrap(), 1);
    }

    async fn page_forms_that_cannot_be_read_get_an_error_page(app: TestApp) {
        let token = app.csrf_token(&app.client, "/users/sign_in").await;
        let send = |body: String, ct: &'static str| {
            app.client.post(app.url("/users/sign_in")).header("content-type", ct).body(body).send()
        };
        let cases = vec![
            (format!("authenticity_token={token}&username=root"), "application/x-www-form-urlencoded", 400),
            (format!("authenticity_token={token}&username=root&password=x&admin=1"), "application/x-www-form-urlencoded", 400),
            (format!("authenticity_token={token}&username=%C0%AF&password=x"), "application/x-www-form-urlencoded", 400),
            ("{\"username\":\"root\"}".to_string(), "application/json", 415),
            ("x".repeat(100 * 1024), "application/x-www-form-urlencoded", 413),
        ];
        for (body, ct, status) in cases {
            let res = send(body, ct).await.unwrap();
            assert_eq!(res.status().as_u16(), status);
            let html = res.text().await.unwrap();
            assert!(html.contains("<!doctype html>"), "an HTML error page");
        }
        // None of that counted as a failed sign-in or signed anyone in.
        assert_eq!(app.sign_in_with(&app.client, "root", ROOT_PASSWORD).await.status(), 303);
    }

    async fn sql_looking_and_markup_input_is_inert(app: TestApp) {
        for login in ["' OR '1'='1", "root'--", "root\" OR \"\"=\"", "<script>alert(1)</script>"] {
            let res = app.sign_in_with(&app.client, login, "' OR '1'='1").await;
            assert_eq!(res.status(), 401, "{login}");
            let html = res.text().await.unwrap();
            assert!(!html.contains("<script>alert(1)</script>"), "echoed input is escaped");
        }
        let admin = app.token_for("root", "api").await;
        let res = reqwest::Client::new()
            .get(app.url("/api/v4/users?username=root'%20OR%20'1'='1"))
            .header("PRIVATE-TOKEN", &admin)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(res.json::<Vec<Value>>().await.unwrap().len(), 0);
    }
}

both_backends! {
    async fn a_body_arriving_late_for_a_handler_that_ignores_it_keeps_the_connection(app: TestApp) {
        // python-gitlab's `user.block()` sends `{}` after the headers; the handler has no use
        // for it. The connection must stay usable for the next request.
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let admin = app.token_for("root", "api").await;
        let alice = app.create_user("alice", "alice-password").await;
        let addr = app.base.trim_start_matches("http://").to_string();
        let mut conn = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let head = format!(
            "POST /api/v4/users/{}/block HTTP/1.1\r\nHost: {addr}\r\nPRIVATE-TOKEN: {admin}\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n",
            alice["id"]
        );
        conn.write_all(head.as_bytes()).await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        conn.write_all(b"{}").await.unwrap();
        let mut buf = vec![0u8; 8192];
        let n = conn.read(&mut buf).await.unwrap();
        assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 201"));
        let get = format!("GET /api/v4/user HTTP/1.1\r\nHost: {addr}\r\nPRIVATE-TOKEN: {admin}\r\n\r\n");
        conn.write_all(get.as_bytes()).await.unwrap();
        let n = conn.read(&mut buf).await.unwrap();
        assert!(n > 0, "the server closed the connection");
        assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    }
}
