//! Many token requests at once: on SQLite they share transactions (group commit), on
//! PostgreSQL they run side by side; either way each gets its own answer, and a single-use
//! credential presented many times at once has exactly one winner.

use serde_json::Value;

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
