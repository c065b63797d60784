//! Starts chromedriver and a headless Chromium session. Both must be installed
//! (`scripts/test` installs Debian's `chromium` and `chromium-driver`); a missing browser
//! fails the test rather than skipping it.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use thirtyfour::{ChromiumLikeCapabilities, DesiredCapabilities, WebDriver, WebElement};

pub struct Browser {
    pub driver: WebDriver,
    chromedriver: Child,
    _profile: tempfile::TempDir,
}

fn which(var: &str, default: &str) -> String {
    let path = std::env::var(var)
        .ok()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| default.to_string());
    assert!(
        std::path::Path::new(&path).exists(),
        "{path} not found: install Debian's chromium and chromium-driver (scripts/test does) or set {var}"
    );
    path
}

impl Browser {
    pub async fn start() -> Browser {
        let chromedriver_bin = which("DOORWARD_CHROMEDRIVER", "/usr/bin/chromedriver");
        let chromium_bin = which("DOORWARD_CHROMIUM", "/usr/bin/chromium");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let chromedriver = Command::new(chromedriver_bin)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let profile = tempfile::tempdir().unwrap();
        let mut caps = DesiredCapabilities::chrome();
        caps.set_binary(&chromium_bin).unwrap();
        for arg in [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1200,900",
        ] {
            caps.add_arg(arg).unwrap();
        }
        caps.add_arg(&format!("--user-data-dir={}", profile.path().display()))
            .unwrap();
        let driver = WebDriver::new(format!("http://127.0.0.1:{port}"), caps)
            .await
            .expect("start a Chromium session");
        Browser {
            driver,
            chromedriver,
            _profile: profile,
        }
    }

    /// Clicks a link or a submit button and waits (up to 10 s) until the page it leads to
    /// has loaded. A click returns before the navigation it starts has finished, and a form
    /// that posts to its own path (a wrong password, a flash message) leaves the URL as it
    /// was, so waiting for a path alone can read the old page: the old document is marked,
    /// and the wait ends when a document without the mark is complete.
    pub async fn click_and_load(&self, element: WebElement) {
        self.driver
            .execute("window.__doorwardOldPage = true;", Vec::new())
            .await
            .unwrap();
        element.click().await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let loaded = self
                .driver
                .execute(
                    "return window.__doorwardOldPage === undefined && document.readyState === 'complete';",
                    Vec::new(),
                )
                .await
                .map(|ret| ret.json().as_bool() == Some(true))
                // A script that runs while the old document unloads may fail; try again.
                .unwrap_or(false);
            if loaded {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the click did not load a new page"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits (up to 10 s) until the page's path is `path`: a click that submits a form
    /// returns before the navigation it starts has finished.
    pub async fn wait_for_path(&self, path: &str) -> url::Url {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let url = self.driver.current_url().await.unwrap();
            if url.path() == path {
                return url;
            }
            assert!(
                Instant::now() < deadline,
                "still at {url} instead of {path}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Saves a screenshot under `target/browser-screenshots/` for a person to look at.
    pub async fn screenshot(&self, name: &str) {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/browser-screenshots");
        let _ = std::fs::create_dir_all(&dir);
        let _ = self
            .driver
            .screenshot(&dir.join(format!("{name}.png")))
            .await;
    }

    pub async fn quit(mut self) {
        let _ = self.driver.clone().quit().await;
        let _ = self.chromedriver.kill();
        let _ = self.chromedriver.wait();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.chromedriver.kill();
    }
}
