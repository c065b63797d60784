//! GitLab's group claims, read by a real OpenID Connect relying party (the `openidconnect`
//! crate with GitLab's claims as its additional claims): `groups_direct` in the id_token,
//! `groups` and the three `https://gitlab.org/claims/groups/*` claims in UserInfo.

use openidconnect::core::{
    CoreClient, CoreGenderClaim, CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm,
};
use openidconnect::{
    AccessToken, AdditionalClaims, ClientId, ClientSecret, IdToken, Nonce, UserInfoClaims,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::both_backends;
use crate::groups_api::Api;
use crate::oidc::discover;
use crate::support::TestApp;
use crate::support::oauth::{AppSpec, Client, http_client, register, token_request};

/// GitLab's id_token claim.
#[derive(Clone, Debug, Deserialize, Serialize)]
struct GitLabIdClaims {
    groups_direct: Vec<String>,
}
impl AdditionalClaims for GitLabIdClaims {}

/// GitLab's UserInfo claims.
#[derive(Clone, Debug, Deserialize, Serialize)]
struct GitLabUserInfo {
    groups: Vec<String>,
    #[serde(rename = "https://gitlab.org/claims/groups/owner", default)]
    owner: Option<Vec<String>>,
    #[serde(rename = "https://gitlab.org/claims/groups/maintainer", default)]
    maintainer: Option<Vec<String>>,
    #[serde(rename = "https://gitlab.org/claims/groups/developer", default)]
    developer: Option<Vec<String>>,
}
impl AdditionalClaims for GitLabUserInfo {}

type GitLabIdToken = IdToken<
    GitLabIdClaims,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
>;

async fn tokens(app: &TestApp, client: &Client, username: &str) -> Value {
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
    res.json().await.unwrap()
}

/// The verified `groups_direct` of an id_token, through the crate's verifier (signature
/// against the JWKS, issuer, audience, expiry).
async fn groups_direct(app: &TestApp, client: &Client, id_token: &str) -> Vec<String> {
    let rp = CoreClient::from_provider_metadata(
        discover(app).await,
        ClientId::new(client.client_id.clone()),
        Some(ClientSecret::new(client.secret.clone())),
    );
    let token: GitLabIdToken = id_token.parse().unwrap();
    let claims = token
        .claims(&rp.id_token_verifier(), |_: Option<&Nonce>| Ok(()))
        .expect("a valid id_token");
    claims.additional_claims().groups_direct.clone()
}

async fn userinfo(app: &TestApp, client: &Client, access: &str) -> GitLabUserInfo {
    let rp = CoreClient::from_provider_metadata(
        discover(app).await,
        ClientId::new(client.client_id.clone()),
        Some(ClientSecret::new(client.secret.clone())),
    );
    let info: UserInfoClaims<GitLabUserInfo, CoreGenderClaim> = rp
        .user_info(AccessToken::new(access.to_string()), None)
        .unwrap()
        .request_async(&http_client)
        .await
        .expect("userinfo");
    info.additional_claims().clone()
}

both_backends! {
    async fn group_claims_are_gitlabs_and_follow_membership_changes(app: TestApp) {
        let cora = app.create_user("cora", "cora-password-1").await["id"].as_i64().unwrap();
        let client = register(&app, AppSpec { scopes: "openid read_user", ..AppSpec::default() }).await;

        // No groups yet: empty arrays, and the level claims omitted.
        let t = tokens(&app, &client, "cora").await;
        assert!(groups_direct(&app, &client, t["id_token"].as_str().unwrap()).await.is_empty());
        let raw_id: Value = {
            use base64::Engine;
            let payload = t["id_token"].as_str().unwrap().split('.').nth(1).unwrap();
            serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
        };
        assert_eq!(raw_id["groups_direct"], json!([]));
        assert!(raw_id.get("groups").is_none(), "groups is a UserInfo claim only");
        let access = t["access_token"].as_str().unwrap().to_string();
        let info = userinfo(&app, &client, &access).await;
        assert!(info.groups.is_empty());
        assert!(info.owner.is_none() && info.maintainer.is_none() && info.developer.is_none());

        let root = Api::of(&app, "root", "api").await;
        let acme = root.group("acme", None, "private").await["id"].as_i64().unwrap();
        let infra = root.group("infra", Some(acme), "private").await["id"].as_i64().unwrap();
        root.group("oncall", Some(infra), "private").await;
        let ops = root.group("ops", None, "private").await["id"].as_i64().unwrap();
        let guests = root.group("guests", None, "private").await["id"].as_i64().unwrap();
        let minimal = root.group("minimal", None, "private").await["id"].as_i64().unwrap();
        assert_eq!(root.add_member(acme, cora, 30).await.0, 201);
        assert_eq!(root.add_member(infra, cora, 50).await.0, 201);
        assert_eq!(root.add_member(ops, cora, 40).await.0, 201);
        assert_eq!(root.add_member(guests, cora, 10).await.0, 201);
        assert_eq!(root.add_member(minimal, cora, 5).await.0, 201);

        // UserInfo: the same access token sees the change on its next answer.
        let info = userinfo(&app, &client, &access).await;
        assert_eq!(info.groups, ["acme", "acme/infra", "acme/infra/oncall", "guests", "ops"]);
        assert_eq!(info.owner.as_deref(), Some(&["acme/infra".to_string()][..]));
        assert_eq!(info.maintainer.as_deref(), Some(&["ops".to_string()][..]));
        assert_eq!(info.developer.as_deref(), Some(&["acme".to_string()][..]));
        // `min_access_level=10` lists exactly the `groups` claim.
        let cora_api = Api::of(&app, "cora", "read_api").await;
        let (_, listed) = cora_api.get("/groups?min_access_level=10&order_by=path").await;
        let mut listed: Vec<String> = listed.as_array().unwrap().iter().map(|g| g["full_path"].as_str().unwrap().to_string()).collect();
        listed.sort();
        assert_eq!(listed, info.groups);

        // The id_token: direct memberships only, on the next refresh.
        let refreshed = token_request(
            &app,
            &[("grant_type", "refresh_token"), ("refresh_token", t["refresh_token"].as_str().unwrap())],
            Some((&client.client_id, &client.secret)),
        )
        .await;
        assert_eq!(refreshed.status(), 200);
        let refreshed: Value = refreshed.json().await.unwrap();
        let direct = groups_direct(&app, &client, refreshed["id_token"].as_str().unwrap()).await;
        assert_eq!(direct, ["acme", "acme/infra", "guests", "ops"]);

        // An expired membership counts for nothing; removing one shows at once.
        let today = doorward::domain::clock::date(app.clock.now());
        assert_eq!(root.put(&format!("/groups/{ops}/members/{cora}"), json!({"expires_at": today})).await.0, 200);
        assert_eq!(root.delete(&format!("/groups/{acme}/members/{cora}")).await.0, 204);
        let access = refreshed["access_token"].as_str().unwrap();
        let info = userinfo(&app, &client, access).await;
        // Expires at 00:00 UTC of today: already expired.
        assert_eq!(info.groups, ["acme/infra", "acme/infra/oncall", "guests"]);
        assert!(info.maintainer.is_none() && info.developer.is_none());

        // A blocked user gets no claims at all.
        let res = reqwest::Client::new()
            .post(app.url(&format!("/api/v4/users/{cora}/block")))
            .header("PRIVATE-TOKEN", root.token.as_ref().unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201);
        let res = reqwest::Client::new().get(app.url("/oauth/userinfo")).bearer_auth(access).send().await.unwrap();
        assert_eq!(res.status(), 401);

        // Discovery lists the claims.
        let doc: Value = reqwest::get(app.url("/.well-known/openid-configuration")).await.unwrap().json().await.unwrap();
        let supported = doc["claims_supported"].as_array().unwrap();
        for claim in ["groups", "groups_direct", "https://gitlab.org/claims/groups/owner"] {
            assert!(supported.iter().any(|c| c == claim), "{claim}");
        }
    }
}
