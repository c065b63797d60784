use doorward::domain::two_factor::{self, TotpSecret};
use thirtyfour::By;
use thirtyfour::prelude::ElementQueryable;

use crate::both_backends;
use crate::driver::Browser;
use crate::support::ROOT_PASSWORD;

both_backends! {
    async fn a_person_turns_on_two_factor_and_signs_in_with_a_code(app: TestApp) {
        let browser = Browser::start().await;
        let d = &browser.driver;
        d.goto(app.url("/users/sign_in")).await.unwrap();
        d.find(By::Id("username")).await.unwrap().send_keys("root").await.unwrap();
        d.find(By::Id("password")).await.unwrap().send_keys(ROOT_PASSWORD).await.unwrap();
        browser.click_and_load(d.find(By::Css("button[type=submit]")).await.unwrap()).await;
        browser.wait_for_path("/-/user_settings/profile").await;

        // From the navigation bar to the settings page, then set-up.
        browser.click_and_load(d.find(By::LinkText("Two-factor")).await.unwrap()).await;
        browser.wait_for_path("/-/profile/two_factor_auth").await;
        browser.click_and_load(d.find(By::Id("two-factor-setup")).await.unwrap()).await;
        let key = d.query(By::Id("two-factor-secret")).first().await.unwrap().text().await.unwrap();
        let secret = TotpSecret::from_base32(&key).expect("a base32 key on the page");
        // The QR code (an SVG data: URI) rendered under the Content-Security-Policy.
        let qr_width = d
            .execute("return document.getElementById('two-factor-qr').naturalWidth;", vec![])
            .await
            .unwrap()
            .json()
            .as_u64()
            .unwrap_or_default();
        assert!(qr_width > 0, "the QR code did not load");
        browser.screenshot(&format!("two-factor-setup-{:?}", app.backend)).await;

        let code = two_factor::code_at(&secret, app.clock.now()).unwrap();
        d.find(By::Id("pin_code")).await.unwrap().send_keys(&code).await.unwrap();
        d.find(By::Id("current_password")).await.unwrap().send_keys(ROOT_PASSWORD).await.unwrap();
        browser.click_and_load(d.find(By::Css("form[action='/-/profile/two_factor_auth'] button")).await.unwrap()).await;
        let codes = d.query(By::Css("#recovery-codes li")).all_from_selector_required().await.unwrap();
        assert_eq!(codes.len(), 10);
        let status = d.find(By::Id("two-factor-status")).await.unwrap().text().await.unwrap();
        assert_eq!(status, "Status: Enabled");

        // Sign out; signing in now takes the password, then a code.
        browser.click_and_load(d.find(By::Css("header form button")).await.unwrap()).await;
        browser.wait_for_path("/users/sign_in").await;
        d.find(By::Id("username")).await.unwrap().send_keys("root").await.unwrap();
        d.find(By::Id("password")).await.unwrap().send_keys(ROOT_PASSWORD).await.unwrap();
        browser.click_and_load(d.find(By::Css("button[type=submit]")).await.unwrap()).await;
        browser.wait_for_path("/users/two_factor").await;
        d.goto(app.url("/-/user_settings/profile")).await.unwrap();
        browser.wait_for_path("/users/sign_in").await;
        d.goto(app.url("/users/two_factor")).await.unwrap();
        browser.wait_for_path("/users/two_factor").await;

        // The set-up code is spent; the next window's code signs in.
        app.clock.advance(30);
        let code = two_factor::code_at(&secret, app.clock.now()).unwrap();
        d.find(By::Id("otp_attempt")).await.unwrap().send_keys(&code).await.unwrap();
        browser.click_and_load(d.find(By::Css("button[type=submit]")).await.unwrap()).await;
        browser.wait_for_path("/-/user_settings/profile").await;
        let username = d.find(By::Id("profile-username")).await.unwrap().text().await.unwrap();
        assert_eq!(username, "root");
        browser.screenshot(&format!("two-factor-signed-in-{:?}", app.backend)).await;
        browser.quit().await;
    }
}
