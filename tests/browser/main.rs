//! Real-browser tests: headless Chromium, driven over WebDriver by chromedriver, against a
//! real Doorward server on SQLite and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../it/support/mod.rs"]
mod support;

mod accounts;
mod admin;
mod consent;
mod driver;
mod groups;
mod sign_in;
mod two_factor;
