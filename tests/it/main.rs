//! Black-box integration tests: a real server on a real socket, on SQLite and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

mod accounts;
mod admin_pages;
mod api_users;
mod applications_api;
mod applications_pages;
mod audit_events_api;
mod backchannel_logout;
mod bad_input;
mod cli;
mod client_id_metadata;
mod concurrent_issuance;
mod connections;
mod dpop;
mod dynamic_registration;
mod fapi;
mod group_applications;
mod group_claims;
mod group_claims_cache;
mod groups_api;
mod health;
mod import_doorkeeper;
mod mail;
mod malformed_requests;
mod mcp_sdk;
mod nodes;
mod oauth_code_flow;
mod oauth_errors;
mod oauth_grants;
mod oidc;
mod oidc_sessions;
mod outside_review;
mod par;
mod password_pool;
mod personal_access_tokens;
mod personal_access_tokens_api;
mod private_key_jwt;
mod python_clients;
mod request_object;
mod resource_indicators;
mod sign_in;
mod token_cache;
mod two_factor;
