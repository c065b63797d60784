//! The group pages in a real browser: create a group and a subgroup, add and change a
//! member by username, see levels and expiry dates, edit, leave, and markup shown as text.

use thirtyfour::By;

use crate::both_backends;
use crate::driver::Browser;
use crate::support::ROOT_PASSWORD;

async fn fill(browser: &Browser, id: &str, value: &str) {
    let field = browser.driver.find(By::Id(id)).await.unwrap();
    field.clear().await.unwrap();
    field.send_keys(value).await.unwrap();
}

async fn text(browser: &Browser, css: &str) -> String {
    browser
        .driver
        .find(By::Css(css))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// Waits until the element at `css` reads `expected`: a form that posts and redirects back
/// to the same page leaves the URL unchanged, so only the content tells the new page has
/// loaded (reading the old one meanwhile may find it gone: a stale element).
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
    async fn a_person_manages_groups_and_members_in_the_browser(app: TestApp) {
        app.create_user("bea", "bea-password-1").await;
        let browser = Browser::start().await;
        let d = &browser.driver;
        d.goto(app.url("/dashboard/groups")).await.unwrap();
        browser.wait_for_path("/users/sign_in").await;
        fill(&browser, "username", "root").await;
        fill(&browser, "password", ROOT_PASSWORD).await;
        browser.click_and_load(d.find(By::Css("button[type=submit]")).await.unwrap()).await;
        browser.wait_for_path("/dashboard/groups").await;
        assert!(text(&browser, "#no-groups").await.contains("not a member"));

        // A group.
        browser.click_and_load(d.find(By::LinkText("New group")).await.unwrap()).await;
        browser.wait_for_path("/groups/new").await;
        fill(&browser, "name", "Acme <Corp>").await;
        fill(&browser, "path", "acme").await;
        browser.click_and_load(d.find(By::Css("#new-group button[type=submit]")).await.unwrap()).await;
        // Markup in a name is refused, and shown back as text (the form again, at /groups).
        browser.wait_for_path("/groups").await;
        assert!(text(&browser, ".flash.error").await.contains("HTML"));
        fill(&browser, "name", "Acme").await;
        fill(&browser, "description", "<script>alert(1)</script> the company").await;
        browser.click_and_load(d.find(By::Css("#new-group button[type=submit]")).await.unwrap()).await;
        browser.wait_for_path("/groups/acme").await;
        assert_eq!(text(&browser, "#group-full-path").await, "acme");
        assert_eq!(text(&browser, "#my-level").await, "Owner");
        assert!(text(&browser, "#group-description").await.contains("<script>"), "escaped, shown as text");

        // A subgroup.
        browser.click_and_load(d.find(By::Id("new-subgroup")).await.unwrap()).await;
        browser.wait_for_path("/groups/new").await;
        fill(&browser, "name", "Infra").await;
        fill(&browser, "path", "infra").await;
        browser.click_and_load(d.find(By::Css("#new-group button[type=submit]")).await.unwrap()).await;
        browser.wait_for_path("/groups/acme/infra").await;
        assert_eq!(text(&browser, "#group-full-path").await, "acme/infra");

        // Add a member by username, as Developer, expiring on a date.
        d.goto(app.url("/groups/acme")).await.unwrap();
        fill(&browser, "username", "bea").await;
        d.find(By::Css("#access_level option[value='30']")).await.unwrap().click().await.unwrap();
        d.execute("document.getElementById('expires_at').value = '2999-12-31'", vec![]).await.unwrap();
        browser.click_and_load(d.find(By::Css("#add-member button[type=submit]")).await.unwrap()).await;
        wait_text(&browser, "tr[data-username=bea] .level", "Developer").await;
        assert_eq!(text(&browser, "tr[data-username=bea] .expires").await, "2999-12-31");
        // Change the level to Maintainer.
        d.find(By::Css("tr[data-username=bea] select option[value='40']")).await.unwrap().click().await.unwrap();
        browser.click_and_load(d.find(By::Css("tr[data-username=bea] .change-member button")).await.unwrap()).await;
        wait_text(&browser, "tr[data-username=bea] .level", "Maintainer").await;
        browser.screenshot(&format!("group-{:?}", app.backend)).await;

        // The subgroup lists bea as inherited in the API; the dashboard lists both groups.
        d.goto(app.url("/dashboard/groups")).await.unwrap();
        let listed = text(&browser, "#my-groups").await;
        assert!(listed.contains("acme/infra"), "{listed}");

        // Edit the group: rename its path, which moves the subgroup too.
        d.goto(app.url("/groups/acme/-/edit")).await.unwrap();
        fill(&browser, "path", "acme-corp").await;
        browser.click_and_load(d.find(By::Css("#edit-group button[type=submit]")).await.unwrap()).await;
        browser.wait_for_path("/groups/acme-corp").await;
        d.goto(app.url("/groups/acme-corp/infra")).await.unwrap();
        assert_eq!(text(&browser, "#group-full-path").await, "acme-corp/infra");

        // The last Owner cannot leave.
        d.goto(app.url("/groups/acme-corp")).await.unwrap();
        browser.click_and_load(d.find(By::Id("leave-group")).await.unwrap()).await;
        browser.wait_for_path("/groups/acme-corp/-/leave").await;
        let body = text(&browser, "main").await;
        assert!(body.contains("at least one Owner"), "{body}");
        browser.quit().await;
    }
}
