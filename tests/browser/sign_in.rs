use thirtyfour::By;

use crate::both_backends;
use crate::driver::Browser;
use crate::support::ROOT_PASSWORD;

both_backends! {
    async fn a_person_signs_in_sees_the_profile_and_signs_out(app: TestApp) {
        let browser = Browser::start().await;
        let d = &browser.driver;
        // Asking for a protected page leads to sign-in and back.
        d.goto(app.url("/-/user_settings/profile")).await.unwrap();
        assert!(d.current_url().await.unwrap().as_str().contains("/users/sign_in?return_to="));

        d.find(By::Id("username")).await.unwrap().send_keys("root").await.unwrap();
        d.find(By::Id("password")).await.unwrap().send_keys("wrong-password").await.unwrap();
        browser.click_and_load(d.find(By::Css("button[type=submit]")).await.unwrap()).await;
        browser.wait_for_path("/users/sign_in").await;
        let alert = d.find(By::Css(".flash.error")).await.unwrap().text().await.unwrap();
        assert_eq!(alert, "Invalid login or password.");
        assert_eq!(d.find(By::Id("username")).await.unwrap().value().await.unwrap().as_deref(), Some("root"));

        d.find(By::Id("password")).await.unwrap().send_keys(ROOT_PASSWORD).await.unwrap();
        browser.click_and_load(d.find(By::Css("button[type=submit]")).await.unwrap()).await;
        browser.wait_for_path("/-/user_settings/profile").await;
        let username = d.find(By::Id("profile-username")).await.unwrap().text().await.unwrap();
        assert_eq!(username, "root");
        // The stylesheet loaded under the page's Content-Security-Policy.
        let background = d.find(By::Css("header.bar")).await.unwrap().css_value("background-color").await.unwrap();
        assert_eq!(background, "rgba(255, 255, 255, 1)");
        browser.screenshot(&format!("profile-{:?}", app.backend)).await;

        // Edit the profile through the form.
        let name = d.find(By::Id("name")).await.unwrap();
        name.clear().await.unwrap();
        name.send_keys("Ada <Admin>").await.unwrap();
        browser.click_and_load(d.find(By::Css("form[action='/-/user_settings/profile'] button")).await.unwrap()).await;
        let error = d.find(By::Css(".flash.error")).await.unwrap().text().await.unwrap();
        assert!(error.contains("Name cannot contain HTML tags"), "{error}");

        browser.click_and_load(d.find(By::Css("header form button")).await.unwrap()).await;
        browser.wait_for_path("/users/sign_in").await;
        d.goto(app.url("/-/user_settings/profile")).await.unwrap();
        browser.wait_for_path("/users/sign_in").await;
        browser.quit().await;
    }
}
