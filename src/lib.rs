//! Doorward: a GitLab-compatible OAuth 2.0 and OpenID Connect provider.
//!
//! `app` builds the server from a [`config::Config`]; `domain` holds the rules without I/O;
//! `store` holds all SQL; `web`, `api` and `http` are the HTTP faces. See
//! `docs/architecture.md` for how a request flows through them.

pub mod accounts;
pub mod api;
pub mod app;
pub mod applications;
pub mod bootstrap;
pub mod cli;
pub mod config;
pub mod domain;
mod future_sizes;
pub mod groups;
pub mod http;
pub mod import;
mod job_threads;
pub mod logging;
pub mod mail;
pub mod oauth;
pub mod oidc;
#[cfg(test)]
mod proptests;
pub mod state;
pub mod store;
pub mod two_factor;
pub mod web;
