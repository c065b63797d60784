//! The admin area (`/admin`): administrators only; the user list's search and filters;
//! create, edit, block, unblock, approve, reject, password reset, two-factor recovery and
//! sessions, each doing what it says and leaving its audit event; applications of every
//! owner; the audit event page; forged forms, markup and malformed ids.

use doorward::domain::audit::{Action, AuditEvent};
use doorward::domain::user::{NewUser, Profile, STATE_PENDING_APPROVAL, User};
use doorward::store::audit_events::{AuditEventFilter, StoredAuditEvent};

use crate::both_backends;
use crate::support::{TestApp, location};

const PASSWORD: &str = "user-password-123";
const CONFIRMATION: &str = "Confirmation instructions";
const RESET: &str = "Reset password instructions";

/// GETs `path` in the main client (root, once signed in): status and body.
async fn page(app: &TestApp, path: &str) -> (u16, String) {
    page_in(app, &app.client, path).await
}

async fn page_in(app: &TestApp, client: &reqwest::Client, path: &str) -> (u16, String) {
    let res = client.get(app.url(path)).send().await.unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

/// POSTs `fields` with the main client's CSRF token.
async fn post(app: &TestApp, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
    post_in(app, &app.client, path, fields).await
}

async fn post_in(
    app: &TestApp,
    client: &reqwest::Client,
    path: &str,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    let token = app.csrf_token(client, "/-/user_settings/profile").await;
    let mut form = vec![("authenticity_token", token.as_str())];
    form.extend_from_slice(fields);
    client.post(app.url(path)).form(&form).send().await.unwrap()
}

async fn user(app: &TestApp, username: &str) -> Option<User> {
    app.state.store.user_by_username(username).await.unwrap()
}

/// A user made through the admin API; returns its id.
async fn made(app: &TestApp, username: &str) -> i64 {
    app.create_user(username, PASSWORD).await["id"]
        .as_i64()
        .unwrap()
}

/// A sign-up waiting for approval, stored as sign-up stores one.
async fn pending(app: &TestApp, username: &str) -> User {
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
}

/// Turns two-factor authentication on for `user_id` straight in the store.
async fn with_two_factor(app: &TestApp, user_id: i64) {
    let store = &app.state.store;
    let now = app.clock.now();
    assert!(
        store
            .begin_two_factor_setup(user_id, b"sealed", now)
            .await
            .unwrap()
    );
    let audit = AuditEvent::about_user(Action::TwoFactorEnabled, Some(user_id), user_id, "x");
    assert!(
        store
            .confirm_two_factor(user_id, 1, &[], b"", &audit, now)
            .await
            .unwrap()
    );
}

/// The events about user `id`, newest first.
async fn events_about(app: &TestApp, id: i64) -> Vec<StoredAuditEvent> {
    let filter = AuditEventFilter {
        entity_type: Some("User".into()),
        entity_id: Some(id),
        ..AuditEventFilter::default()
    };
    app.state
        .store
        .list_audit_events(&filter, 100, 0)
        .await
        .unwrap()
        .0
}

/// The newest event about user `id` is `action`, by root, naming the user.
async fn assert_event(app: &TestApp, id: i64, action: &str) {
    let events = events_about(app, id).await;
    let e = events
        .iter()
        .find(|e| e.action == action)
        .unwrap_or_else(|| panic!("no {action} event about {id}: {events:?}"));
    assert_eq!(e.author_id, Some(1), "{e:?}");
    let details: serde_json::Value = serde_json::from_str(&e.details).unwrap();
    assert_eq!(details["action"], action);
    assert_eq!(details["target_id"], id);
    assert_eq!(details["ip_address"], "127.0.0.1");
}

/// Usernames listed on a user list page, in order.
fn listed(html: &str) -> Vec<String> {
    html.split("<tr data-username=\"")
        .skip(1)
        .map(|s| s.split('"').next().unwrap().to_string())
        .collect()
}

/// The subjects of the outbox messages (one `.eml` file each) to `to`, once one of them is
/// `wait_for` (or 10 s have passed).
async fn subjects_to(app: &TestApp, to: &str, wait_for: &str) -> Vec<String> {
    let outbox = app.data_dir.path().join("outbox");
    let started = std::time::Instant::now();
    loop {
        let subjects: Vec<String> = std::fs::read_dir(&outbox)
            .map(|dir| {
                dir.filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok())
                    .filter(|m| m.lines().any(|l| l.starts_with("To:") && l.contains(to)))
                    .filter_map(|m| {
                        m.lines()
                            .find_map(|l| l.strip_prefix("Subject: ").map(str::to_string))
                    })
                    .collect()
            })
            .unwrap_or_default();
        if subjects.iter().any(|s| s == wait_for)
            || started.elapsed() > std::time::Duration::from_secs(10)
        {
            return subjects;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

both_backends! {
    async fn the_admin_area_is_for_administrators_only(app: TestApp) {
        let res = app.get("/admin/users").await;
        assert_eq!(res.status(), 303, "signed out: sent to sign in");
        assert_eq!(location(&res), "/users/sign_in?return_to=/admin/users");

        made(&app, "alice").await;
        let alice = app.new_browser();
        assert_eq!(app.sign_in_with(&alice, "alice", PASSWORD).await.status(), 303);
        for path in ["/admin", "/admin/users", "/admin/users/root", "/admin/users/new",
                     "/admin/applications", "/admin/audit_events"] {
            let (status, body) = page_in(&app, &alice, path).await;
            assert_eq!(status, 404, "{path}: {body}");
        }
        let (_, profile) = page_in(&app, &alice, "/-/user_settings/profile").await;
        assert!(!profile.contains("href=\"/admin\""), "no Admin link for others");
        // A non-admin's well-formed, correctly tokened post changes nothing.
        let res = post_in(&app, &alice, "/admin/users/root/block", &[]).await;
        assert_eq!(res.status(), 404);
        assert!(user(&app, "root").await.unwrap().is_active());

        app.sign_in_root().await;
        let res = app.get("/admin").await;
        assert_eq!(location(&res), "/admin/users");
        let (status, body) = page(&app, "/admin/users").await;
        assert_eq!(status, 200);
        assert!(body.contains("href=\"/admin\""), "the Admin link in the nav");
        assert_eq!(listed(&body), ["alice", "root"]);
    }

    async fn the_user_list_searches_and_filters(app: TestApp) {
        app.sign_in_root().await;
        made(&app, "alice").await;
        let bob = made(&app, "bob").await;
        pending(&app, "carol").await;
        let dave = made(&app, "dave").await;
        let erin = made(&app, "erin").await;
        assert_eq!(post(&app, "/admin/users/dave/block", &[]).await.status(), 303);
        let res = post(&app, "/admin/users/bob", &[("name", "Bob"), ("email", "bob@example.com"), ("admin", "1")]).await;
        assert_eq!(res.status(), 303, "{}", res.text().await.unwrap());
        assert!(user(&app, "bob").await.unwrap().is_admin, "{bob}");
        with_two_factor(&app, erin).await;

        let (_, body) = page(&app, "/admin/users").await;
        assert!(body.contains("id=\"user-search\"") && body.contains("name=\"search_query\""));
        assert_eq!(listed(&body), ["erin", "dave", "carol", "bob", "alice", "root"]);
        for (query, expected) in [
            ("search_query=ALI", vec!["alice"]),
            ("search_query=bob%40example", vec!["bob"]),
            ("search_query=User+d", vec!["dave"]),
            ("search_query=nobody", vec![]),
            ("filter=active", vec!["erin", "bob", "alice", "root"]),
            ("filter=blocked", vec!["dave"]),
            ("filter=blocked_pending_approval", vec!["carol"]),
            ("filter=admins", vec!["bob", "root"]),
            ("filter=two_factor_enabled", vec!["erin"]),
            ("filter=two_factor_disabled", vec!["dave", "carol", "bob", "alice", "root"]),
            ("filter=admins&search_query=ro", vec!["root"]),
            ("filter=no-such-filter", vec!["erin", "dave", "carol", "bob", "alice", "root"]),
        ] {
            let (status, body) = page(&app, &format!("/admin/users?{query}")).await;
            assert_eq!(status, 200, "{query}");
            assert_eq!(listed(&body), expected, "{query}");
        }
        assert_eq!(dave, user(&app, "dave").await.unwrap().id);
        let (status, _) = page(&app, &format!("/admin/users?search_query={}", "x".repeat(256))).await;
        assert_eq!(status, 400);
        let (status, _) = page(&app, "/admin/users?page=zero").await;
        assert_eq!(status, 400);
    }

    async fn an_administrator_creates_users_who_are_mailed_their_links(app: TestApp) {
        app.sign_in_root().await;
        let (status, form) = page(&app, "/admin/users/new").await;
        assert_eq!(status, 200);
        assert!(form.contains("name=\"skip_confirmation\""));
        let res = post(&app, "/admin/users", &[
            ("username", "newbie"), ("name", "New Bie"), ("email", "newbie@example.com"), ("admin", "1"),
        ]).await;
        assert_eq!(res.status(), 303);
        assert_eq!(location(&res), "/admin/users/newbie?notice=created");
        let newbie = user(&app, "newbie").await.unwrap();
        assert!(newbie.is_admin && newbie.is_active());
        assert_eq!(newbie.confirmed_at, None, "waits for the confirmation link");
        assert_event(&app, newbie.id, "user_created").await;
        let mut mails = subjects_to(&app, "newbie@example.com", RESET).await;
        mails.sort();
        assert_eq!(mails, [CONFIRMATION, RESET], "a confirmation and a password link");

        let res = post(&app, "/admin/users", &[
            ("username", "vouched"), ("name", "Vouched"), ("email", "vouched@example.com"), ("skip_confirmation", "1"),
        ]).await;
        assert_eq!(res.status(), 303);
        let vouched = user(&app, "vouched").await.unwrap();
        assert!(vouched.confirmed_at.is_some() && !vouched.is_admin);
        let mails = subjects_to(&app, "vouched@example.com", RESET).await;
        assert_eq!(mails, [RESET], "only the password link");

        // Bad input: the form again with the reasons, nothing stored.
        let users_before = app.state.store.count_users().await.unwrap();
        for (fields, reason) in [
            (vec![("username", "x1"), ("name", "<b>Bold</b>"), ("email", "x1@example.com")], "Name cannot contain HTML tags"),
            (vec![("username", &"y".repeat(300)), ("name", "Long"), ("email", "x3@example.com")], "Username is too long"),
            (vec![("username", "newbie"), ("name", "Again"), ("email", "again@example.com")], "Username has already been taken"),
            (vec![("username", "x4"), ("name", "Mail"), ("email", "not-an-address")], "Email is invalid"),
        ] {
            let res = post(&app, "/admin/users", &fields).await;
            assert_eq!(res.status(), 422, "{fields:?}");
            let body = res.text().await.unwrap();
            assert!(body.contains(reason), "{reason}: {body}");
            assert!(!body.contains("<b>Bold"), "markup echoed as text only");
        }
        // A NUL never reaches the store (PostgreSQL cannot hold one): the form is unreadable.
        let res = post(&app, "/admin/users", &[("username", "x2"), ("name", "Nul\0Name"), ("email", "x2@example.com")]).await;
        assert_eq!(res.status(), 400);
        assert_eq!(app.state.store.count_users().await.unwrap(), users_before);
    }

    async fn an_administrator_edits_name_email_and_the_admin_flag(app: TestApp) {
        app.sign_in_root().await;
        let alice = made(&app, "alice").await;
        let (status, form) = page(&app, "/admin/users/alice/edit").await;
        assert_eq!(status, 200);
        assert!(form.contains("value=\"User alice\""), "{form}");
        let res = post(&app, "/admin/users/alice", &[
            ("name", "Alice Adams"), ("email", "alice@example.com"), ("admin", "1"),
        ]).await;
        assert_eq!(location(&res), "/admin/users/alice?notice=updated");
        let a = user(&app, "alice").await.unwrap();
        assert_eq!((a.name.as_str(), a.is_admin), ("Alice Adams", true));
        assert_event(&app, alice, "user_updated").await;

        // A new address waits for its link; with "skip confirmation" it is used at once.
        post(&app, "/admin/users/alice", &[("name", "Alice Adams"), ("email", "alice@new.example"), ("admin", "1")]).await;
        let a = user(&app, "alice").await.unwrap();
        assert_eq!((a.email.as_str(), a.unconfirmed_email.as_deref()), ("alice@example.com", Some("alice@new.example")));
        assert_event(&app, alice, "email_change_requested").await;
        post(&app, "/admin/users/alice", &[
            ("name", "Alice Adams"), ("email", "alice@vouched.example"), ("skip_confirmation", "1"),
        ]).await;
        let a = user(&app, "alice").await.unwrap();
        assert_eq!(a.email, "alice@vouched.example");
        assert!(a.confirmed_at.is_some() && a.unconfirmed_email.is_none() && !a.is_admin);

        // No administrator removes their own rights; bad input is refused, nothing changes.
        let res = post(&app, "/admin/users/root", &[("name", "Root"), ("email", "root@example.com")]).await;
        assert_eq!(res.status(), 422);
        assert!(user(&app, "root").await.unwrap().is_admin);
        let res = post(&app, "/admin/users/alice", &[("name", "<i>x</i>"), ("email", "alice@vouched.example")]).await;
        assert_eq!(res.status(), 422);
        assert_eq!(user(&app, "alice").await.unwrap().name, "Alice Adams");
        let res = post(&app, "/admin/users/alice", &[("name", "A"), ("email", "a@example.com"), ("bogus", "1")]).await;
        assert_eq!(res.status(), 400, "unknown fields are refused");
    }

    async fn blocking_signs_the_user_out_and_unblocking_lets_them_back(app: TestApp) {
        app.sign_in_root().await;
        let alice_id = made(&app, "alice").await;
        let alice = app.new_browser();
        app.sign_in_with(&alice, "alice", PASSWORD).await;
        assert_eq!(page_in(&app, &alice, "/-/user_settings/profile").await.0, 200);

        let res = post(&app, "/admin/users/alice/block", &[]).await;
        assert_eq!(location(&res), "/admin/users/alice?notice=blocked");
        assert_eq!(user(&app, "alice").await.unwrap().state, "blocked");
        assert_eq!(page_in(&app, &alice, "/-/user_settings/profile").await.0, 303, "signed out");
        assert_event(&app, alice_id, "user_blocked").await;
        let (_, body) = page(&app, "/admin/users/alice").await;
        assert!(body.contains("data-state=\"blocked\"") && body.contains("id=\"unblock-user\""));

        let res = post(&app, "/admin/users/alice/unblock", &[]).await;
        assert_eq!(location(&res), "/admin/users/alice?notice=unblocked");
        assert!(user(&app, "alice").await.unwrap().is_active());
        assert_event(&app, alice_id, "user_unblocked").await;
        assert_eq!(app.sign_in_with(&alice, "alice", PASSWORD).await.status(), 303);

        // Refusals change nothing and record nothing.
        let before = events_about(&app, alice_id).await.len();
        assert_eq!(post(&app, "/admin/users/alice/unblock", &[]).await.status(), 400);
        assert_eq!(post(&app, "/admin/users/root/block", &[]).await.status(), 400, "not oneself");
        assert!(user(&app, "root").await.unwrap().is_active());
        assert_eq!(events_about(&app, alice_id).await.len(), before);
    }

    async fn pending_sign_ups_are_approved_or_rejected(app: TestApp) {
        app.sign_in_root().await;
        let carol = pending(&app, "carol").await;
        let dan = pending(&app, "dan").await;
        let (_, body) = page(&app, "/admin/users/carol").await;
        assert!(body.contains("id=\"approve-user\"") && body.contains("id=\"reject-user\""));
        assert!(!body.contains("id=\"unblock-user\""), "pending users are approved, not unblocked");

        let res = post(&app, "/admin/users/carol/approve", &[]).await;
        assert_eq!(location(&res), "/admin/users/carol?notice=approved");
        assert!(user(&app, "carol").await.unwrap().is_active());
        assert_event(&app, carol.id, "user_approved").await;
        let mails = subjects_to(&app, "carol@example.com", "Welcome to Doorward!").await;
        assert_eq!(mails, ["Welcome to Doorward!"]);
        assert_eq!(post(&app, "/admin/users/carol/approve", &[]).await.status(), 400, "once");
        assert_eq!(post(&app, "/admin/users/carol/reject", &[]).await.status(), 400, "not pending");
        assert!(user(&app, "carol").await.is_some());

        let res = post(&app, "/admin/users/dan/reject", &[]).await;
        assert_eq!(location(&res), "/admin/users?filter=blocked_pending_approval");
        assert!(user(&app, "dan").await.is_none(), "rejected sign-ups are deleted");
        assert_event(&app, dan.id, "user_rejected").await;
    }

    async fn two_factor_is_disabled_and_a_password_reset_sent(app: TestApp) {
        app.sign_in_root().await;
        let erin = made(&app, "erin").await;
        with_two_factor(&app, erin).await;
        let browser = app.new_browser();
        let res = app.sign_in_with(&browser, "erin", PASSWORD).await;
        assert_eq!(location(&res), "/users/two_factor", "a code is asked for");
        let (_, body) = page(&app, "/admin/users/erin").await;
        assert!(body.contains("Disable two-factor authentication"));

        let res = post(&app, "/admin/users/erin/disable_two_factor", &[]).await;
        assert_eq!(location(&res), "/admin/users/erin?notice=two_factor_disabled");
        assert!(!user(&app, "erin").await.unwrap().two_factor_enabled);
        assert_event(&app, erin, "two_factor_disabled").await;
        let res = app.sign_in_with(&app.new_browser(), "erin", PASSWORD).await;
        assert_eq!(location(&res), "/", "the password alone signs in now");
        assert_eq!(post(&app, "/admin/users/erin/disable_two_factor", &[]).await.status(), 400);

        let res = post(&app, "/admin/users/erin/send_password_reset", &[]).await;
        assert_eq!(location(&res), "/admin/users/erin?notice=reset_sent");
        let mails = subjects_to(&app, "erin@example.com", RESET).await;
        assert!(mails.iter().any(|m| m == "Two-factor authentication disabled"), "{mails:?}");
        assert!(mails.iter().any(|m| m == RESET), "{mails:?}");
        let actions: Vec<String> = events_about(&app, erin).await.into_iter().map(|e| e.action).collect();
        assert!(actions.contains(&"password_reset_requested".to_string()), "{actions:?}");
    }

    async fn sessions_are_listed_and_ended_one_or_all(app: TestApp) {
        app.sign_in_root().await;
        let alice_id = made(&app, "alice").await;
        let (first, second, third) = (app.new_browser(), app.new_browser(), app.new_browser());
        for b in [&first, &second, &third] {
            app.sign_in_with(b, "alice", PASSWORD).await;
        }
        let (_, body) = page(&app, "/admin/users/alice").await;
        let marker = "/admin/users/alice/sessions/";
        let ids: Vec<String> = body.split(marker).skip(1)
            .map(|s| s.split('/').next().unwrap().to_string()).collect();
        assert_eq!(ids.len(), 3, "{body}");

        // The most recent first: ending it signs the third browser out only.
        let res = post(&app, &format!("{marker}{}/revoke", ids[0]), &[]).await;
        assert_eq!(location(&res), "/admin/users/alice?notice=session_ended");
        assert_eq!(page_in(&app, &third, "/-/user_settings/profile").await.0, 303);
        assert_eq!(page_in(&app, &first, "/-/user_settings/profile").await.0, 200);
        assert_event(&app, alice_id, "session_revoked").await;
        // Another user's session, a malformed id, an ended one: 404.
        let root_sessions = app.state.store.user_sessions(1, app.clock.now()).await.unwrap();
        let root_session = format!("{marker}{}/revoke", root_sessions[0].id);
        for path in [root_session.as_str(), "/admin/users/alice/sessions/abc/revoke", &format!("{marker}{}/revoke", ids[0])] {
            assert_eq!(post(&app, path, &[]).await.status(), 404, "{path}");
        }
        let res = post(&app, "/admin/users/alice/end_sessions", &[]).await;
        assert_eq!(location(&res), "/admin/users/alice?notice=sessions_ended");
        for b in [&first, &second] {
            assert_eq!(page_in(&app, b, "/-/user_settings/profile").await.0, 303);
        }
        assert!(app.state.store.user_sessions(alice_id, app.clock.now()).await.unwrap().is_empty());
        assert_eq!(page(&app, "/admin/users").await.0, 200, "root's own session lives on");
    }

    async fn the_user_page_shows_tokens_and_authorized_applications(app: TestApp) {
        app.sign_in_root().await;
        made(&app, "alice").await;
        app.token_for("alice", "read_user").await;
        let (status, body) = page(&app, "/admin/users/alice").await;
        assert_eq!(status, 200);
        assert!(body.contains("id=\"tokens\"") && body.contains("read_user"), "{body}");
        assert!(body.contains("id=\"no-authorized-applications\""));
        assert!(body.contains("id=\"no-sessions\""));
    }

    async fn forged_forms_change_nothing(app: TestApp) {
        app.sign_in_root().await;
        let alice = made(&app, "alice").await;
        // The mail queue drains by itself meanwhile (alice's confirmation mail): not counted.
        let rows = || async {
            let mut all = app.state.store.count_all_rows().await.unwrap();
            all.retain(|(table, _)| table != "mail_queue");
            all
        };
        let before = rows().await;
        for (path, fields) in [
            ("/admin/users/alice/block", vec![]),
            ("/admin/users", vec![("username", "forged"), ("name", "F"), ("email", "f@example.com")]),
            ("/admin/users/alice", vec![("name", "Forged"), ("email", "alice@example.com")]),
            ("/admin/applications", vec![("name", "Forged"), ("redirect_uri", "https://f.example/cb"), ("scopes[]", "api")]),
        ] {
            let mut form = vec![("authenticity_token", "forged-token")];
            form.extend(fields.iter().copied());
            let res = app.client.post(app.url(path)).form(&form).send().await.unwrap();
            assert_eq!(res.status(), 403, "{path}");
            let without: Vec<_> = fields.clone();
            let res = app.client.post(app.url(path)).form(&without).send().await.unwrap();
            assert_eq!(res.status(), 403, "{path} without a token");
        }
        // A right token from another site's page is refused by its Origin.
        let token = app.csrf_token(&app.client, "/admin/users").await;
        let res = app.client.post(app.url("/admin/users/alice/block"))
            .header("Origin", "https://evil.example")
            .form(&[("authenticity_token", token.as_str())]).send().await.unwrap();
        assert_eq!(res.status(), 403);
        assert_eq!(rows().await, before);
        assert!(user(&app, "alice").await.unwrap().is_active());
        assert!(events_about(&app, alice).await.iter().all(|e| e.action != "user_blocked"));
    }

    async fn markup_is_shown_as_text_and_bad_ids_are_404(app: TestApp) {
        app.sign_in_root().await;
        // Names written before validation existed, or by other tools, are still escaped.
        let new_user = NewUser {
            username: "mallory".into(),
            email: "mallory@example.com".into(),
            name: "<script>alert(1)</script>".into(),
            is_admin: false,
            profile: Profile::default(),
            confirmed: true,
            state: "active",
        };
        app.state.store.create_user(&new_user, "x", app.clock.now(), None).await.unwrap();
        for path in ["/admin/users", "/admin/users/mallory", "/admin/users/mallory/edit"] {
            let (status, body) = page(&app, path).await;
            assert_eq!(status, 200, "{path}");
            assert!(!body.contains("<script>alert"), "{path}");
            assert!(body.contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt;"), "{path}");
        }
        let (_, body) = page(&app, "/admin/users?search_query=%22%3E%3Cimg+src%3Dx%3E").await;
        assert!(!body.contains("<img src=x>") && body.contains("&quot;&gt;&lt;img src=x&gt;"));
        for path in ["/admin/users/nobody", "/admin/users/nobody/edit", "/admin/applications/999",
                     "/admin/applications/abc", "/admin/applications/-1", "/admin/nothing"] {
            assert_eq!(page(&app, path).await.0, 404, "{path}");
        }
        for path in ["/admin/users/nobody/block", "/admin/users/mallory/frobnicate",
                     "/admin/applications/abc/delete", "/admin/applications/99999999999999999999/renew_secret"] {
            assert_eq!(post(&app, path, &[]).await.status(), 404, "{path}");
        }
        assert_eq!(page(&app, "/admin/audit_events?entity_id=abc").await.0, 400);
    }

    async fn applications_of_every_owner_are_listed_and_instance_ones_managed(app: TestApp) {
        use crate::support::oauth::{self, AppSpec};
        app.sign_in_root().await;
        let alice = made(&app, "alice").await;
        let owned = oauth::register(&app, AppSpec { owner: Some(alice), ..AppSpec::default() }).await;
        let root = app.token_for("root", "api").await;
        let group: serde_json::Value = reqwest::Client::new().post(app.url("/api/v4/groups"))
            .header("PRIVATE-TOKEN", &root).json(&serde_json::json!({"name": "Acme", "path": "acme"}))
            .send().await.unwrap().json().await.unwrap();
        let settings = doorward::domain::application::validate_settings(
            "Acme Portal", "https://acme.example/cb", "read_user", true, false, false).unwrap();
        app.state.store.create_application(
            "acme-client-id", &[0; 32], &settings, false,
            doorward::domain::application::ApplicationOwner::Group(group["id"].as_i64().unwrap()),
            &crate::support::test_audit(), app.clock.now()).await.unwrap();

        // An instance-wide one, trusted, made here: its secret shown once.
        let (status, form) = page(&app, "/admin/applications/new").await;
        assert_eq!(status, 200);
        assert!(form.contains("name=\"trusted\""));
        let res = post(&app, "/admin/applications", &[
            ("name", "Wiki"), ("redirect_uri", "https://wiki.example/cb"), ("scopes[]", "openid"),
            ("scopes[]", "read_user"), ("confidential", "1"), ("trusted", "1"),
        ]).await;
        assert_eq!(res.status(), 200);
        assert_eq!(res.headers()["cache-control"], "no-store");
        let body = res.text().await.unwrap();
        let secret = body.split("id=\"application-secret\" class=\"secret\">").nth(1).unwrap()
            .split('<').next().unwrap().to_string();
        assert!(secret.starts_with("dwoas-"), "{secret}");
        let wiki = app.state.store.applications_of_owner(None).await.unwrap().pop().unwrap();
        assert!(wiki.trusted && wiki.name == "Wiki");
        let wiki_page = format!("/admin/applications/{}", wiki.id);
        let (_, shown) = page(&app, &wiki_page).await;
        assert!(!shown.contains(&secret), "shown once");

        let (_, list) = page(&app, "/admin/applications").await;
        for (name, owner) in [("Wiki", "Instance-wide"), ("Acme Portal", "acme"), ("Test Client", "alice")] {
            let row = list.split("<tr data-owner-kind=").find(|r| r.contains(&format!(">{name}</a>")))
                .unwrap_or_else(|| panic!("{name} missing: {list}"));
            assert!(row.contains(owner), "{name}: {row}");
        }

        // Edit (no longer trusted), renew, delete: each recorded.
        let res = post(&app, &wiki_page, &[
            ("name", "Wiki 2"), ("redirect_uri", "https://wiki.example/cb"), ("scopes[]", "openid"), ("confidential", "1"),
        ]).await;
        assert_eq!(res.status(), 200);
        let wiki2 = app.state.store.application_by_id(wiki.id).await.unwrap().unwrap();
        assert!(!wiki2.trusted && wiki2.name == "Wiki 2");
        let res = post(&app, &wiki_page, &[("name", "Wiki"), ("redirect_uri", "not a uri"), ("scopes[]", "openid")]).await;
        assert_eq!(res.status(), 422);
        let res = post(&app, &format!("{wiki_page}/renew_secret"), &[]).await;
        let body = res.text().await.unwrap();
        assert!(body.contains("id=\"application-secret\"") && !body.contains(&secret));
        assert_ne!(app.state.store.application_by_id(wiki.id).await.unwrap().unwrap().secret_hash, wiki.secret_hash);
        // Others' applications are their owners' to edit; an administrator may delete them.
        let alice_page = format!("/admin/applications/{}", owned.id);
        let res = post(&app, &alice_page, &[("name", "Taken"), ("redirect_uri", "https://x.example/cb"), ("scopes[]", "api")]).await;
        assert_eq!(res.status(), 403);
        assert_eq!(post(&app, &format!("{alice_page}/renew_secret"), &[]).await.status(), 403);
        let res = post(&app, &format!("{alice_page}/delete"), &[]).await;
        assert_eq!(location(&res), "/admin/applications?notice=deleted");
        assert!(app.state.store.application_by_id(owned.id).await.unwrap().is_none());

        let filter = AuditEventFilter { entity_type: Some("Application".into()), ..AuditEventFilter::default() };
        let events = app.state.store.list_audit_events(&filter, 100, 0).await.unwrap().0;
        let mine: Vec<(&str, i64)> = events.iter().filter(|e| e.author_id == Some(1))
            .map(|e| (e.action.as_str(), e.entity_id)).collect();
        assert_eq!(mine, [
            ("application_deleted", owned.id),
            ("application_secret_renewed", wiki.id),
            ("application_updated", wiki.id),
            ("application_created", wiki.id),
        ]);
        assert!(events.iter().all(|e| e.author_id != Some(1) || e.ip_address == "127.0.0.1"));
    }

    async fn a_users_authorized_applications_are_shown(app: TestApp) {
        use crate::support::oauth::{self, AppSpec};
        app.sign_in_root().await;
        let client = oauth::register(&app, AppSpec::default()).await;
        let code = oauth::code_for(&app, &client, &[]).await;
        let res = oauth::token_request(&app, &[
            ("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", &client.redirect_uri),
        ], Some((&client.client_id, &client.secret))).await;
        assert_eq!(res.status(), 200);
        let (_, body) = page(&app, "/admin/users/root").await;
        let table = body.split("id=\"authorized-applications\"").nth(1).expect("a table");
        assert!(table.contains(&format!("/admin/applications/{}\">Test Client</a>", client.id)), "{table}");
        assert!(body.contains("id=\"sessions\""), "root's own sessions");
    }

    async fn the_audit_event_page_lists_newest_first_and_filters(app: TestApp) {
        app.sign_in_root().await;
        let alice = made(&app, "alice").await;
        let bob = made(&app, "bob").await;
        post(&app, "/admin/users/alice/block", &[]).await;
        post(&app, "/admin/users/bob/block", &[]).await;
        post(&app, "/admin/users/alice/unblock", &[]).await;
        let (status, body) = page(&app, &format!("/admin/audit_events?entity_type=User&entity_id={alice}")).await;
        assert_eq!(status, 200);
        let rows: Vec<&str> = body.split("<tr data-action=\"").skip(1).map(|r| r.split('"').next().unwrap()).collect();
        assert_eq!(&rows[..2], ["user_unblocked", "user_blocked"], "{rows:?}");
        assert!(!body.contains(">bob<"), "only alice's");
        assert!(body.contains("href=\"&#x2f;admin&#x2f;users&#x2f;root\"") || body.contains("/admin/users/root\">root</a>"));
        let (_, all) = page(&app, "/admin/audit_events").await;
        let all_rows: Vec<&str> = all.split("<tr data-action=\"").skip(1).map(|r| r.split('"').next().unwrap()).collect();
        assert_eq!(&all_rows[..3], ["user_unblocked", "user_blocked", "user_blocked"]);
        let (_, bobs) = page(&app, &format!("/admin/audit_events?entity_id={bob}&entity_type=User")).await;
        assert!(bobs.contains("user_blocked") && !bobs.contains("user_unblocked"));
        for bad in ["entity_id=1x", "page=-1", "page=abc"] {
            assert_eq!(page(&app, &format!("/admin/audit_events?{bad}")).await.0, 400, "{bad}");
        }
        let (_, none) = page(&app, "/admin/audit_events?entity_type=Nothing").await;
        assert!(none.contains("id=\"no-audit-events\""));
    }

    async fn nul_and_broken_utf8_in_paths_and_queries_never_reach_the_store(app: TestApp) {
        app.sign_in_root().await;
        made(&app, "alice").await;
        for path in [
            "/admin/users/ali%00ce", "/admin/users/%FF%FE", "/admin/users?search_query=a%00b",
            "/admin/users?search_query=%FF", "/admin/users?filter=%00", "/admin/audit_events?entity_type=U%00",
            "/admin/audit_events?entity_id=%00", "/admin/applications/1%00", "/admin/users/alice/edit?x=%00",
        ] {
            let status = page(&app, path).await.0;
            assert!((400..500).contains(&status), "{path}: {status}");
        }
        for path in ["/admin/users/ali%00ce/block", "/admin/users/alice/sessions/1%00/revoke", "/admin/applications/%00/delete"] {
            let status = post(&app, path, &[]).await.status().as_u16();
            assert!((400..500).contains(&status), "{path}: {status}");
        }
        assert!(user(&app, "alice").await.unwrap().is_active());
    }
}
