//! The admin area in a real browser: an administrator signs in, follows the Admin link,
//! finds a user by search, blocks them and unblocks them, and the page shows each state.

use thirtyfour::By;

use crate::both_backends;
use crate::driver::Browser;
use crate::support::ROOT_PASSWORD;

async fn fill(browser: &Browser, id: &str, value: &str) {
    let field = browser.driver.find(By::Id(id)).await.unwrap();
    field.clear().await.unwrap();
    field.send_keys(value).await.unwrap();
}

/// Waits until the element at `css` reads `expected` (a form that posts and redirects back
/// to the same page changes only the content).
async fn wait_text(browser: &Browser, css: &str, expected: &str) {
    let started = std::time::Instant::now();
    loop {
        if let Ok(el) = browser.driver.find(By::Css(css)).await
            && let Ok(t) = el.text().await
            && t == expected
        {
            return;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "{css} never read {expected:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

both_backends! {
    async fn an_administrator_finds_blocks_and_unblocks_a_user(app: TestApp) {
        app.create_user("bea", "bea-password-1").await;
        app.create_user("ben", "ben-password-1").await;
        let browser = Browser::start().await;
        let d = &browser.driver;
        d.goto(app.url("/admin/users")).await.unwrap();
        browser.wait_for_path("/users/sign_in").await;
        fill(&browser, "username", "root").await;
        fill(&browser, "password", ROOT_PASSWORD).await;
        browser.click_and_load(d.find(By::Css("button[type=submit]")).await.unwrap()).await;
        browser.wait_for_path("/admin/users").await;

        // The Admin link leads back here from anywhere in the admin area.
        browser.click_and_load(d.find(By::Id("admin-link")).await.unwrap()).await;
        browser.wait_for_path("/admin/users").await;

        // Search.
        fill(&browser, "search_query", "bea").await;
        browser.click_and_load(d.find(By::Css("#user-search button[type=submit]")).await.unwrap()).await;
        wait_text(&browser, "#users tbody tr:only-child .state", "Active").await;
        let rows = d.find_all(By::Css("#users tbody tr")).await.unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].attr("data-username").await.unwrap().as_deref(), Some("bea"));
        assert!(d.current_url().await.unwrap().as_str().contains("search_query=bea"));

        // Block.
        browser.click_and_load(d.find(By::Css("#users tbody tr a")).await.unwrap()).await;
        browser.wait_for_path("/admin/users/bea").await;
        assert_eq!(d.find(By::Id("user-state")).await.unwrap().text().await.unwrap(), "Active");
        browser.click_and_load(d.find(By::Id("block-user")).await.unwrap()).await;
        wait_text(&browser, "#user-state", "Blocked").await;
        let notice = d.find(By::Css(".flash.notice")).await.unwrap().text().await.unwrap();
        assert!(notice.contains("blocked"), "{notice}");
        browser.screenshot(&format!("admin-blocked-{:?}", app.backend)).await;
        assert_eq!(app.state.store.user_by_username("bea").await.unwrap().unwrap().state, "blocked");

        // The list shows it under its filter.
        d.goto(app.url("/admin/users?filter=blocked")).await.unwrap();
        wait_text(&browser, "#users tbody tr[data-username=bea] .state", "Blocked").await;
        assert_eq!(d.find_all(By::Css("#users tbody tr")).await.unwrap().len(), 1);

        // Unblock.
        browser.click_and_load(d.find(By::Css("#users tbody tr a")).await.unwrap()).await;
        browser.wait_for_path("/admin/users/bea").await;
        browser.click_and_load(d.find(By::Id("unblock-user")).await.unwrap()).await;
        wait_text(&browser, "#user-state", "Active").await;
        assert!(d.find(By::Id("block-user")).await.is_ok());
        assert!(app.state.store.user_by_username("bea").await.unwrap().unwrap().is_active());
        browser.quit().await;
    }
}
