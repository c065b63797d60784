//! Many token requests at once: on both backends they share transactions (group commit;
//! on PostgreSQL several batches in flight); each gets its own answer, a single-use
//! credential presented many times at once has exactly one winner, and one faulty write in
//! a shared transaction fails alone.

use serde_json::Value;

use doorward::store::access_tokens::NewToken;

use crate::both_backends;
use crate::support::TestApp;
use crate::support::oauth::{AppSpec, REDIRECT, code_for, register, token_request};

both_backends! {
    async fn simultaneous_issuance_gives_every_request_its_own_token(app: TestApp) {
        let client = register(&app, AppSpec::default()).await;
        let answers = at_once(
            &app,
            100,
            &[("grant_type", "client_credentials"), ("scope", "api")],
            (&client.client_id, &client.secret),
        )
        .await;
        let mut tokens = Vec::new();
        for (status, body) in answers {
            assert_eq!(status, 200, "{body}");
            tokens.push(body["access_token"].as_str().unwrap().to_string());
        }
        tokens.sort();
        tokens.dedup();
        assert_eq!(tokens.len(), 100);
        // Every one of them is live: introspection knows each.
        for token in tokens.iter().step_by(9) {
            let res = reqwest::Client::new()
                .post(app.url("/oauth/introspect"))
                .basic_auth(&client.client_id, Some(&client.secret))
                .form(&[("token", token.as_str())])
                .send()
                .await
                .unwrap();
            let body: Value = res.json().await.unwrap();
            assert_eq!(body["active"], true, "{token}");
        }
    }

    async fn a_refresh_token_replayed_at_once_has_exactly_one_winner(app: TestApp) {
        let client = register(&app, AppSpec::default()).await;
        let code = code_for(&app, &client, &[("scope", "api")]).await;
        let res = token_request(
            &app,
            &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", REDIRECT)],
            Some((&client.client_id, &client.secret)),
        )
        .await;
        let first: Value = res.json().await.unwrap();
        let refresh = first["refresh_token"].as_str().unwrap();
        let statuses: Vec<u16> = at_once(
            &app,
            20,
            &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
            (&client.client_id, &client.secret),
        )
        .await
        .into_iter()
        .map(|(status, _)| status)
        .collect();
        assert_eq!(statuses.iter().filter(|&&s| s == 200).count(), 1, "{statuses:?}");
        assert!(statuses.iter().all(|&s| s == 200 || s == 400), "{statuses:?}");
    }

    async fn a_code_redeemed_at_once_has_exactly_one_winner(app: TestApp) {
        let client = register(&app, AppSpec::default()).await;
        let code = code_for(&app, &client, &[("scope", "api")]).await;
        let answers = at_once(
            &app,
            20,
            &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", REDIRECT)],
            (&client.client_id, &client.secret),
        )
        .await;
        let winners: Vec<&Value> = answers.iter().filter(|(s, _)| *s == 200).map(|(_, b)| b).collect();
        assert_eq!(winners.len(), 1, "{answers:?}");
        for (status, body) in &answers {
            assert!(*status == 200 || body["error"] == "invalid_grant", "{status} {body}");
        }
        // The winner's token is live (a replay of a code revokes what it issued, RFC 6749
        // §4.1.2, so it may be revoked by the losers; it must at least have been stored).
        let token = winners[0]["access_token"].as_str().unwrap();
        let stored = app.state.store.access_token_by_hash(&doorward::domain::secret::token_key(token)).await.unwrap();
        assert!(stored.is_some());
    }

    async fn one_faulty_token_write_among_many_fails_alone(app: TestApp) {
        let client = register(&app, AppSpec::default()).await;
        let application_id = app
            .state
            .store
            .application_by_uid(&client.client_id)
            .await
            .unwrap()
            .unwrap()
            .id;
        let store = app.state.store.clone();
        let mut set = tokio::task::JoinSet::new();
        for n in 0..60i64 {
            let store = store.clone();
            set.spawn(async move {
                // Every tenth row names an application that does not exist: a foreign-key
                // failure inside the transaction it shares with the others.
                let app_id = if n % 10 == 3 { 1_000_000 + n } else { application_id };
                let hash = doorward::domain::secret::token_key(&format!("faulty-batch-token-{n}"));
                let row = NewToken {
                    token_hash: &hash,
                    refresh_token_hash: None,
                    application_id: Some(app_id),
                    user_id: None,
                    grant_id: None,
                    family: &hash[..16],
                    scopes: "api",
                    created_at: 1,
                    expires_at: i64::MAX / 2,
                    resources: None,
                    audience: None,
                    dpop_jkt: None,
                };
                (n, store.insert_token(&row).await.is_ok())
            });
        }
        for (n, ok) in set.join_all().await {
            assert_eq!(ok, n % 10 != 3, "row {n}");
        }
    }

    async fn a_single_use_jwt_recorded_at_once_is_new_exactly_once(app: TestApp) {
        let store = app.state.store.clone();
        let mut set = tokio::task::JoinSet::new();
        for n in 0..40u8 {
            let store = store.clone();
            // Half present the same hash (a replay racing itself), half their own.
            let hash = if n % 2 == 0 { [255u8; 32] } else { [n; 32] };
            set.spawn(async move { (n, store.record_single_use_jwt(&hash, i64::MAX / 2).await.unwrap()) });
        }
        let answers = set.join_all().await;
        let shared_new = answers.iter().filter(|(n, new)| n % 2 == 0 && *new).count();
        assert_eq!(shared_new, 1, "{answers:?}");
        assert!(answers.iter().filter(|(n, _)| n % 2 == 1).all(|(_, new)| *new), "{answers:?}");
    }

    async fn the_purge_deletes_dead_tokens_in_batches_and_keeps_the_rest(app: TestApp) {
        let client = register(&app, AppSpec::default()).await;
        let application_id = app.state.store.application_by_uid(&client.client_id).await.unwrap().unwrap().id;
        let now = app.state.clock.now();
        let retention = doorward::bootstrap::OAUTH_RETENTION;
        let long_ago = now - retention - 10;
        // More dead rows than one purge statement deletes, of both kinds, and rows that
        // must stay: an expired token that carries a refresh token, a live one, and a token
        // revoked within the retention period.
        let mut hashes = Vec::new();
        for n in 0..2_600u32 {
            let kind = match n {
                0 => "expired-with-refresh",
                1 => "live",
                2 => "recently-revoked",
                n if n % 2 == 0 => "revoked-long-ago",
                _ => "expired-long-ago",
            };
            let hash = doorward::domain::secret::token_key(&format!("purge-{n}"));
            let refresh = doorward::domain::secret::token_key(&format!("purge-refresh-{n}"));
            let row = NewToken {
                token_hash: &hash,
                refresh_token_hash: (kind == "expired-with-refresh").then_some(&refresh[..]),
                application_id: Some(application_id),
                user_id: None,
                grant_id: None,
                family: &hash[..16],
                scopes: "api",
                created_at: long_ago - 7200,
                expires_at: if matches!(kind, "live" | "recently-revoked") { now + 7200 } else { long_ago },
                resources: None,
                audience: None,
                dpop_jkt: None,
            };
            let id = app.state.store.insert_token(&row).await.unwrap();
            let revoked_at = match kind {
                "revoked-long-ago" => Some(long_ago),
                "recently-revoked" => Some(now - 60),
                _ => None,
            };
            if let Some(at) = revoked_at {
                app.state.store.revoke_token(id, at).await.unwrap();
            }
            hashes.push((kind, hash));
        }
        doorward::bootstrap::purge_expired(&app.state).await;
        for (kind, hash) in &hashes {
            let found = app.state.store.access_token_by_hash(hash).await.unwrap().is_some();
            let kept = matches!(*kind, "expired-with-refresh" | "live" | "recently-revoked");
            assert_eq!(found, kept, "{kind}");
        }
    }
}

/// Sends `n` copies of one token request at once, each on its own task; returns the
/// responses' statuses and bodies in completion order.
async fn at_once(
    app: &TestApp,
    n: usize,
    form: &[(&str, &str)],
    client: (&str, &str),
) -> Vec<(u16, Value)> {
    let form: Vec<(String, String)> = form
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let (id, secret) = (client.0.to_string(), client.1.to_string());
    let mut set = tokio::task::JoinSet::new();
    let http = reqwest::Client::new();
    for _ in 0..n {
        let req = http
            .post(app.url("/oauth/token"))
            .basic_auth(&id, Some(&secret))
            .form(&form);
        set.spawn(async move {
            let res = req.send().await.unwrap();
            let status = res.status().as_u16();
            (status, res.json::<Value>().await.unwrap())
        });
    }
    set.join_all().await
}
