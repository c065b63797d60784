use thirtyfour::By;

use crate::both_backends;
use crate::driver::Browser;
use crate::support::ROOT_PASSWORD;
use crate::support::oauth::{AppSpec, register};

/// A stand-in for the client application: a page at /callback that shows what it got.
async fn client_site() -> String {
    let app = axum::Router::new().route(
        "/callback",
        axum::routing::get(|uri: axum::http::Uri| async move {
            axum::response::Html(format!(
                "<p id=\"received\">{}</p>",
                uri.query().unwrap_or_default()
            ))
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/callback")
}

both_backends! {
    async fn a_person_signs_in_consents_and_returns_to_the_client(app: TestApp) {
        let redirect = client_site().await;
        let client = register(&app, AppSpec { redirect_uris: &redirect, ..AppSpec::default() }).await;
        let browser = Browser::start().await;
        let d = &browser.driver;
        let query = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs([("client_id", client.client_id.as_str()), ("redirect_uri", redirect.as_str()), ("response_type", "code"), ("state", "abc123"), ("scope", "read_user openid")])
            .finish();
        d.goto(app.url(&format!("/oauth/authorize?{query}"))).await.unwrap();
        // Not signed in: the sign-in page first.
        browser.wait_for_path("/users/sign_in").await;
        d.find(By::Id("username")).await.unwrap().send_keys("root").await.unwrap();
        d.find(By::Id("password")).await.unwrap().send_keys(ROOT_PASSWORD).await.unwrap();
        browser.click_and_load(d.find(By::Css("button[type=submit]")).await.unwrap()).await;

        // Then straight back to the consent page.
        browser.wait_for_path("/oauth/authorize").await;
        assert_eq!(d.find(By::Id("app-name")).await.unwrap().text().await.unwrap(), "Test Client");
        assert_eq!(d.find(By::Id("redirect-host")).await.unwrap().text().await.unwrap(), "127.0.0.1");
        let scopes = d.find(By::Id("scopes")).await.unwrap().text().await.unwrap();
        assert!(scopes.contains("read_user") && scopes.contains("openid"), "{scopes}");
        browser.screenshot(&format!("consent-{:?}", app.backend)).await;
        browser.click_and_load(d.find(By::Id("authorize")).await.unwrap()).await;

        // The browser lands on the client with a code and the state.
        let url = browser.wait_for_path("/callback").await;
        assert_eq!(url.as_str().split('?').next().unwrap(), redirect);
        let pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
        let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        assert!(get("code").unwrap().starts_with("dwac-"));
        assert_eq!(get("state").as_deref(), Some("abc123"));
        assert_eq!(get("iss").as_deref(), Some(app.base.as_str()));

        // Deny on a second request.
        let query = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs([("client_id", client.client_id.as_str()), ("redirect_uri", redirect.as_str()), ("response_type", "code"), ("state", "second"), ("scope", "api")])
            .finish();
        d.goto(app.url(&format!("/oauth/authorize?{query}"))).await.unwrap();
        browser.click_and_load(d.find(By::Id("deny")).await.unwrap()).await;
        let url = browser.wait_for_path("/callback").await;
        let pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
        assert!(pairs.contains(&("error".into(), "access_denied".into())), "{url}");
        assert!(pairs.contains(&("state".into(), "second".into())));
        assert!(!pairs.iter().any(|(k, _)| k == "code"));
        browser.quit().await;
    }
}
