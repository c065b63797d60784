//! Each node caches users' group claims (a user in a thousand groups would otherwise cost a
//! thousand-row query per UserInfo answer). The cache never outlives a change: whichever
//! node makes it, UserInfo everywhere shows it within a second, and a membership stops
//! counting at its expiry without any write.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::both_backends;
use crate::groups_api::Api;
use crate::support::TestApp;
use crate::support::oauth::{AppSpec, register, token_request};

/// The bound: "a membership change shows in UserInfo within 1 s".
const WITHIN: Duration = Duration::from_secs(1);

async fn userinfo(node: &TestApp, access: &str) -> Value {
    let res = reqwest::Client::new()
        .get(node.url("/oauth/userinfo"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

fn groups(info: &Value) -> Vec<String> {
    info["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g.as_str().unwrap().to_string())
        .collect()
}

/// Polls `node`'s UserInfo until its `groups` are `expected`; fails after [`WITHIN`].
async fn until_groups(node: &TestApp, access: &str, expected: &[&str], what: &str) -> Value {
    let started = Instant::now();
    loop {
        let info = userinfo(node, access).await;
        if groups(&info) == expected {
            eprintln!("{what}: seen after {:?}", started.elapsed());
            return info;
        }
        assert!(
            started.elapsed() < WITHIN,
            "{what}: still {:?} after {:?}",
            groups(&info),
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn openid_access_token(app: &TestApp, username: &str) -> String {
    let client = register(
        app,
        AppSpec {
            scopes: "openid read_user",
            ..AppSpec::default()
        },
    )
    .await;
    let res = token_request(
        app,
        &[
            ("grant_type", "password"),
            ("username", username),
            ("password", &format!("{username}-password-1")),
            ("scope", "openid read_user"),
        ],
        Some((&client.client_id, &client.secret)),
    )
    .await;
    assert_eq!(res.status(), 200);
    let tokens: Value = res.json().await.unwrap();
    tokens["access_token"].as_str().unwrap().to_string()
}

fn cached_claims(node: &TestApp) -> usize {
    node.state
        .store
        .token_cache()
        .expect("cache on")
        .cached_group_claims()
}

both_backends! {
    async fn every_change_made_on_one_node_reaches_userinfo_on_another_within_a_second(a: TestApp) {
        let b = a.another_node(&[]).await;
        let cora = a.create_user("cora", "cora-password-1").await["id"].as_i64().unwrap();
        let access = openid_access_token(&a, "cora").await;
        let root = Api::of(&a, "root", "api").await;
        let acme = root.group("acme", None, "private").await["id"].as_i64().unwrap();

        // Node b answers, and then holds cora's claims in its cache (once the eviction
        // for the group created just before has reached it, which may clear a first fill).
        until_groups(&b, &access, &[], "no groups").await;
        let started = Instant::now();
        while cached_claims(&b) != 1 {
            assert!(started.elapsed() < WITHIN, "node b never cached the claims");
            tokio::time::sleep(Duration::from_millis(20)).await;
            userinfo(&b, &access).await;
        }

        // A membership added, changed, a subgroup created, the group renamed, the subgroup
        // deleted, the membership removed: all on node a, all seen by node b.
        assert_eq!(root.add_member(acme, cora, 30).await.0, 201);
        let info = until_groups(&b, &access, &["acme"], "member added").await;
        assert_eq!(info["https://gitlab.org/claims/groups/developer"], json!(["acme"]));

        assert_eq!(root.put(&format!("/groups/{acme}/members/{cora}"), json!({"access_level": 40})).await.0, 200);
        let started = Instant::now();
        while userinfo(&b, &access).await["https://gitlab.org/claims/groups/maintainer"] != json!(["acme"]) {
            assert!(started.elapsed() < WITHIN, "level change not seen");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }

        let infra = root.group("infra", Some(acme), "private").await["id"].as_i64().unwrap();
        until_groups(&b, &access, &["acme", "acme/infra"], "subgroup created").await;

        assert_eq!(root.put(&format!("/groups/{acme}"), json!({"path": "acme-corp"})).await.0, 200);
        until_groups(&b, &access, &["acme-corp", "acme-corp/infra"], "group renamed").await;

        let deleted = root.delete(&format!("/groups/{infra}")).await.0;
        assert!(deleted == 202 || deleted == 204, "{deleted}");
        until_groups(&b, &access, &["acme-corp"], "subgroup deleted").await;

        // Changes made on node b reach node a the same way.
        let root_b = Api::of(&b, "root", "api").await;
        assert_eq!(root_b.delete(&format!("/groups/{acme}/members/{cora}")).await.0, 204);
        until_groups(&a, &access, &[], "member removed").await;
        // And the node that made a change never answers with the old claims.
        assert_eq!(root_b.add_member(acme, cora, 10).await.0, 201);
        assert_eq!(groups(&userinfo(&b, &access).await), ["acme-corp"]);
    }

    async fn a_cached_membership_stops_counting_at_its_expiry(app: TestApp) {
        // Ten seconds before midnight UTC: a membership expiring "tomorrow" has ten left.
        let now = app.clock.now();
        let midnight = (now / 86_400 + 1) * 86_400;
        app.clock.advance(midnight - now - 10);
        let cora = app.create_user("cora", "cora-password-1").await["id"].as_i64().unwrap();
        let access = openid_access_token(&app, "cora").await;
        let root = Api::of(&app, "root", "api").await;
        let acme = root.group("acme", None, "private").await["id"].as_i64().unwrap();
        let ops = root.group("ops", None, "private").await["id"].as_i64().unwrap();
        assert_eq!(root.add_member(acme, cora, 30).await.0, 201);
        let tomorrow = doorward::domain::clock::date(midnight);
        let (status, body) = root
            .post(&format!("/groups/{ops}/members"), json!({"user_id": cora, "access_level": 30, "expires_at": tomorrow}))
            .await;
        assert_eq!(status, 201, "{body}");

        // The claims come to be served from the cache. On PostgreSQL a poll may apply this
        // test's own invalidations again while another transaction in the cluster holds
        // back the snapshot horizon (`store::invalidations`, `Cursor::Xmin`), emptying the
        // cache once more: under a loaded test run that can come after the first fill.
        let started = Instant::now();
        loop {
            assert_eq!(groups(&userinfo(&app, &access).await), ["acme", "ops"]);
            assert_eq!(groups(&userinfo(&app, &access).await), ["acme", "ops"]);
            if cached_claims(&app) == 1 {
                break;
            }
            assert!(started.elapsed() < WITHIN, "the claims are never served from the cache");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }

        // Past midnight nothing was written, yet the cached claims are not served.
        app.clock.advance(11);
        let info = userinfo(&app, &access).await;
        assert_eq!(groups(&info), ["acme"]);
        assert_eq!(info["https://gitlab.org/claims/groups/developer"], json!(["acme"]));
    }
}
