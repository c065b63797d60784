//! The futures of the hot request paths stay small (issue 15). Each layer a request goes
//! through moves its future, so a cold path awaited inline (imported tokens, DPoP proofs,
//! client assertions, id_tokens, the writer-less store fallback) makes every request copy
//! kilobytes: on the W4 bearer path, memory copies were 17 % of the instructions. Those
//! paths are boxed (`Box::pin`) where they are awaited; these bounds catch one awaited
//! inline again (before: 4.6 KiB for `bearer::validate`, 7.1 KiB for the token endpoint).
//! Sizes differ between compilers and profiles; the bounds leave room for that.

#![cfg(test)]

use axum::extract::State;
use axum::http::HeaderMap;
use axum::http::request::Parts;

use crate::api::auth::Caller;
use crate::http::client_ip::ClientIp;
use crate::oauth::params::BodyParams;
use crate::state::AppState;

/// The size of what `_f` returns, for an async fn taking `(&AppState, &str, i64)`.
fn validate_future<'a, F, R>(_f: F) -> usize
where
    F: FnOnce(&'a AppState, &'a str, i64) -> R,
{
    size_of::<R>()
}

fn extractor_future<'a, F, R>(_f: F) -> usize
where
    F: FnOnce(&'a mut Parts, &'a AppState) -> R,
{
    size_of::<R>()
}

fn handler_future<F, A, B, C, D, R>(_f: F) -> usize
where
    F: FnOnce(A, B, C, D) -> R,
{
    size_of::<R>()
}

#[test]
fn hot_path_futures_stay_small() {
    let bearer = validate_future(crate::oauth::bearer::validate);
    let caller =
        extractor_future(<Caller as axum::extract::FromRequestParts<AppState>>::from_request_parts);
    let introspect = handler_future::<_, State<AppState>, axum::http::Uri, HeaderMap, BodyParams, _>(
        crate::oauth::introspect::introspect,
    );
    let token = handler_future::<_, State<AppState>, ClientIp, HeaderMap, BodyParams, _>(
        crate::oauth::token::token,
    );
    assert!(
        bearer <= 2048,
        "bearer::validate's future is {bearer} bytes"
    );
    assert!(
        caller <= 3072,
        "the API caller extractor's future is {caller} bytes"
    );
    assert!(
        introspect <= 4096,
        "the introspection handler's future is {introspect} bytes"
    );
    assert!(
        token <= 5120,
        "the token endpoint's future is {token} bytes"
    );
}
