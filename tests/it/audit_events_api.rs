//! GitLab's `POST /users/:id/approve|reject` and `GET /audit_events[/:id]`: statuses as
//! GitLab documents them, the events' shape, filters and pagination headers, administrators
//! only; the retention purge; python-gitlab's `gl.audit_events` unchanged.

use doorward::domain::audit::{Action, AuditEvent};
use doorward::domain::user::{NewUser, Profile, STATE_PENDING_APPROVAL};
use serde_json::{Value, json};

use crate::both_backends;
use crate::support::TestApp;

fn api() -> reqwest::Client {
    reqwest::Client::new()
}

async fn pending(app: &TestApp, username: &str) -> i64 {
    let new_user = NewUser {
        username: username.into(),
        email: format!("{username}@example.com"),
        name: format!("Pending {username}"),
        is_admin: false,
        profile: Profile::default(),
        confirmed: true,
        state: STATE_PENDING_APPROVAL,
    };
    app.state
        .store
        .create_user(&new_user, "not-a-hash", app.clock.now(), None)
        .await
        .unwrap()
        .id
}

async fn call(app: &TestApp, token: &str, path: &str) -> (u16, Value) {
    let res = api()
        .post(app.url(path))
        .header("PRIVATE-TOKEN", token)
        .send()
        .await
        .unwrap();
    (
        res.status().as_u16(),
        res.json().await.unwrap_or(Value::Null),
    )
}

async fn get(app: &TestApp, token: &str, path: &str) -> reqwest::Response {
    api()
        .get(app.url(path))
        .header("PRIVATE-TOKEN", token)
        .send()
        .await
        .unwrap()
}

/// The `details.action` of each listed event.
fn actions(events: &Value) -> Vec<String> {
    events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["details"]["action"].as_str().unwrap().to_string())
        .collect()
}

both_backends! {
    async fn sign_ups_are_approved_and_rejected_as_gitlab_answers(app: TestApp) {
        let root = app.token_for("root", "api").await;
        let carol = pending(&app, "carol").await;
        let (status, body) = call(&app, &root, &format!("/api/v4/users/{carol}/approve")).await;
        assert_eq!((status, body), (201, json!({"message": "Success"})));
        let (status, body) = call(&app, &root, &format!("/api/v4/users/{carol}/approve")).await;
        assert_eq!(status, 409, "already active");
        assert_eq!(body["message"], "The user you are trying to approve is not pending approval");
        let (status, _) = call(&app, &root, &format!("/api/v4/users/{carol}/reject")).await;
        assert_eq!(status, 409, "not pending");
        let shown: Value = get(&app, &root, &format!("/api/v4/users/{carol}")).await.json().await.unwrap();
        assert_eq!(shown["state"], "active");

        let bob = app.create_user("bob", "bob-password-1").await["id"].as_i64().unwrap();
        assert_eq!(call(&app, &root, &format!("/api/v4/users/{bob}/block")).await.0, 201);
        let (status, _) = call(&app, &root, &format!("/api/v4/users/{bob}/approve")).await;
        assert_eq!(status, 403, "blocked by an administrator");
        let (status, body) = call(&app, &root, &format!("/api/v4/users/{bob}/reject")).await;
        assert_eq!((status, body["message"].as_str()), (409, Some("This user does not have a pending request")));

        let dan = pending(&app, "dan").await;
        let (status, body) = call(&app, &root, &format!("/api/v4/users/{dan}/reject")).await;
        assert_eq!((status, body), (200, json!({"message": "Success"})));
        assert_eq!(get(&app, &root, &format!("/api/v4/users/{dan}")).await.status(), 404, "deleted");
        for path in ["/api/v4/users/9999/approve", "/api/v4/users/abc/reject", "/api/v4/users/9999/reject"] {
            assert_eq!(call(&app, &root, path).await.0, 404, "{path}");
        }

        // Administrators only, with a token that may write.
        let erin = pending(&app, "erin").await;
        let bobs = app.token_for("bob", "api").await;
        assert_eq!(call(&app, &bobs, &format!("/api/v4/users/{erin}/approve")).await.0, 403, "bob is blocked");
        app.create_user("fay", "fay-password-1").await;
        let fay = app.token_for("fay", "api").await;
        assert_eq!(call(&app, &fay, &format!("/api/v4/users/{erin}/approve")).await.0, 403);
        assert_eq!(call(&app, &fay, &format!("/api/v4/users/{erin}/reject")).await.0, 403);
        let read_only = app.token_for("root", "read_api").await;
        assert_eq!(call(&app, &read_only, &format!("/api/v4/users/{erin}/approve")).await.0, 403);
        assert_eq!(app.state.store.user_by_id(erin).await.unwrap().unwrap().state, STATE_PENDING_APPROVAL);

        let events: Value = get(&app, &root, "/api/v4/audit_events?entity_type=User").await.json().await.unwrap();
        let found = actions(&events);
        assert!(found.contains(&"user_approved".to_string()) && found.contains(&"user_rejected".to_string()), "{found:?}");
        assert_eq!(found.iter().filter(|a| *a == "user_approved").count(), 1, "one approval recorded");
    }

    async fn audit_events_are_listed_newest_first_in_gitlabs_shape(app: TestApp) {
        let root = app.token_for("root", "api").await;
        let alice = app.create_user("alice", "alice-password").await["id"].as_i64().unwrap();
        call(&app, &root, &format!("/api/v4/users/{alice}/block")).await;
        call(&app, &root, &format!("/api/v4/users/{alice}/unblock")).await;

        let res = get(&app, &root, &format!("/api/v4/audit_events?entity_type=User&entity_id={alice}")).await;
        assert_eq!(res.status(), 200);
        let events: Value = res.json().await.unwrap();
        let found = actions(&events);
        assert_eq!(&found[..2], ["user_unblocked", "user_blocked"], "{found:?}");
        let e = &events[1];
        assert_eq!(e["author_id"], 1);
        assert_eq!(e["entity_id"], alice);
        assert_eq!(e["entity_type"], "User");
        assert_eq!(e["details"]["target_id"], alice);
        assert_eq!(e["details"]["target_type"], "User");
        assert_eq!(e["details"]["target_details"], "alice");
        assert_eq!(e["details"]["author_name"], "root");
        assert_eq!(e["details"]["ip_address"], "127.0.0.1");
        let created = e["created_at"].as_str().unwrap();
        assert!(created.ends_with(".000Z") && created.len() == 24, "{created}");
        assert!(events[0]["id"].as_i64() > events[1]["id"].as_i64(), "newest first");

        let one = get(&app, &root, &format!("/api/v4/audit_events/{}", e["id"])).await;
        assert_eq!(one.status(), 200);
        assert_eq!(&one.json::<Value>().await.unwrap(), e);
        for path in ["/api/v4/audit_events/999999", "/api/v4/audit_events/abc"] {
            let res = get(&app, &root, path).await;
            assert_eq!(res.status(), 404, "{path}");
        }
    }

    async fn audit_events_filter_and_paginate(app: TestApp) {
        let root = app.token_for("root", "api").await;
        let alice = app.create_user("alice", "alice-password").await["id"].as_i64().unwrap();
        for _ in 0..3 {
            call(&app, &root, &format!("/api/v4/users/{alice}/block")).await;
            call(&app, &root, &format!("/api/v4/users/{alice}/unblock")).await;
        }
        let query = format!("entity_type=User&entity_id={alice}");
        let res = get(&app, &root, &format!("/api/v4/audit_events?{query}&per_page=2&page=2")).await;
        let h = res.headers().clone();
        let total: i64 = h["x-total"].to_str().unwrap().parse().unwrap();
        assert!(total >= 6, "{total}");
        assert_eq!(h["x-page"], "2");
        assert_eq!(h["x-per-page"], "2");
        assert_eq!(h["x-prev-page"], "1");
        assert_eq!(h["x-next-page"], "3");
        assert_eq!(h["x-total-pages"], ((total + 1) / 2).to_string().as_str());
        let link = h["link"].to_str().unwrap();
        assert!(link.contains(&format!("entity_id={alice}")) && link.contains("rel=\"next\""), "{link}");
        let page: Value = res.json().await.unwrap();
        assert_eq!(actions(&page), ["user_unblocked", "user_blocked"]);

        let other: Value = get(&app, &root, "/api/v4/audit_events?entity_type=Application").await.json().await.unwrap();
        assert_eq!(other, json!([]));
        let later: Value = get(&app, &root, "/api/v4/audit_events?created_after=2999-01-01T00:00:00Z").await.json().await.unwrap();
        assert_eq!(later, json!([]));
        let earlier: Value = get(&app, &root, "/api/v4/audit_events?created_before=2000-01-01").await.json().await.unwrap();
        assert_eq!(earlier, json!([]));
        let since: Value = get(&app, &root, &format!("/api/v4/audit_events?{query}&created_after=2000-01-01T00:00:00%2B02:00")).await.json().await.unwrap();
        assert_eq!(since.as_array().unwrap().len() as i64, total);
        for bad in ["created_after=yesterday", "created_before=2024-13-01", "entity_id=abc", "per_page=x", "colour=red"] {
            let res = get(&app, &root, &format!("/api/v4/audit_events?{bad}")).await;
            assert_eq!(res.status(), 400, "{bad}");
        }
    }

    async fn only_administrators_read_audit_events(app: TestApp) {
        app.create_user("alice", "alice-password").await;
        let alice = app.token_for("alice", "api").await;
        assert_eq!(get(&app, &alice, "/api/v4/audit_events").await.status(), 403);
        assert_eq!(get(&app, &alice, "/api/v4/audit_events/1").await.status(), 403);
        let read_user = app.token_for("root", "read_user").await;
        assert_eq!(get(&app, &read_user, "/api/v4/audit_events").await.status(), 403, "needs read_api");
        assert_eq!(api().get(app.url("/api/v4/audit_events")).send().await.unwrap().status(), 401);
        let read_api = app.token_for("root", "read_api").await;
        assert_eq!(get(&app, &read_api, "/api/v4/audit_events").await.status(), 200);
    }

    async fn old_audit_events_are_purged_in_batches(app: TestApp) {
        let store = &app.state.store;
        let now = app.clock.now();
        let event = AuditEvent::about_user(Action::UserBlocked, Some(1), 1, "root");
        let before = store.count_rows("audit_events").await.unwrap();
        for _ in 0..1_050 {
            store.record_audit_event(&event, now - 400 * 86_400).await.unwrap();
        }
        store.record_audit_event(&event, now - 300 * 86_400).await.unwrap();
        // The server's own maintenance task may purge some of them meanwhile, with the same
        // code: what counts is that more than one batch went, and nothing younger.
        let purged = doorward::bootstrap::purge_old_audit_events(&app.state).await;
        assert!(purged <= 1_050, "{purged}");
        assert_eq!(store.count_rows("audit_events").await.unwrap(), before + 1, "younger ones stay");
    }

    async fn a_zero_retention_keeps_audit_events(app: TestApp) {
        let kept = TestApp::spawn_with(app.backend, &[("DOORWARD_AUDIT_EVENT_RETENTION_DAYS", "0")]).await;
        let event = AuditEvent::about_user(Action::UserBlocked, Some(1), 1, "root");
        let ancient = |store: doorward::store::Store| async move {
            let filter = doorward::store::audit_events::AuditEventFilter {
                created_before: Some(86_400),
                ..Default::default()
            };
            store.list_audit_events(&filter, 10, 0).await.unwrap().1
        };
        kept.state.store.record_audit_event(&event, 0).await.unwrap();
        assert_eq!(doorward::bootstrap::purge_old_audit_events(&kept.state).await, 0);
        assert_eq!(ancient(kept.state.store.clone()).await, 1, "kept for ever");
        app.state.store.record_audit_event(&event, 0).await.unwrap();
        doorward::bootstrap::purge_old_audit_events(&app.state).await;
        assert_eq!(ancient(app.state.store.clone()).await, 0, "the default purges it");
    }
}

both_backends! {
    async fn python_gitlab_reads_audit_events(app: TestApp) {
        let token = app.token_for("root", "api").await;
        let alice = app.create_user("alice", "alice-password").await["id"].as_i64().unwrap();
        call(&app, &token, &format!("/api/v4/users/{alice}/block")).await;
        let base = app.base.clone();
        let alice = alice.to_string();
        tokio::task::spawn_blocking(move || {
            crate::python_clients::run_script("python_gitlab_audit_events.py", &[&base, &token, &alice])
        })
        .await
        .unwrap();
    }
}
