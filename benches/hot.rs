//! Micro-benchmarks of the pure functions on Doorward's hot paths (`cargo bench`), with
//! divan. Under `cargo test --all-targets` each runs once, as a test.
//!
//! JWT signing is not here yet: OpenID Connect id_tokens are being built; it joins this file
//! when they land (see docs/performance.md).

use axum::http::{HeaderMap, HeaderValue, header};
use divan::{Bencher, black_box};
use doorward::domain::pkce::{self, Method};
use doorward::domain::scope::ScopeSet;
use doorward::domain::secret;
use doorward::oauth::client_auth;
use doorward::oauth::issue::MintedTokens;
use doorward::oauth::params::Params;

fn main() {
    divan::main();
}

/// A new access token: 32 random bytes from the OS, base64url, behind its prefix.
#[divan::bench]
fn token_generate() -> secret::SecretString {
    secret::generate(black_box(secret::ACCESS_TOKEN_PREFIX))
}

/// SHA-256 of a token, the form it is stored and looked up in.
#[divan::bench]
fn token_hash(bencher: Bencher) {
    let token = secret::generate(secret::ACCESS_TOKEN_PREFIX);
    bencher.bench(|| secret::hash(black_box(token.expose())));
}

/// What every issuing grant does before its INSERT: an access and a refresh token, and
/// their hashes.
#[divan::bench]
fn token_pair_mint() -> MintedTokens {
    MintedTokens::new(black_box(true))
}

/// Client credentials from `Authorization: Basic` (base64, then form-decoding each half).
#[divan::bench]
fn basic_header_parse(bencher: Bencher) {
    let mut headers = HeaderMap::new();
    let client_id = secret::generate_client_id();
    let client_secret = secret::generate(secret::APPLICATION_SECRET_PREFIX);
    let encoded = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        format!("{client_id}:{}", client_secret.expose()),
    );
    let value = HeaderValue::from_str(&format!("Basic {encoded}")).unwrap_or_else(|_| {
        unreachable!("base64 is a valid header value");
    });
    headers.insert(header::AUTHORIZATION, value);
    let params = Params::from_form(b"grant_type=client_credentials&scope=api")
        .unwrap_or_else(|_| unreachable!("a valid form"));
    bencher.bench(|| client_auth::presented(black_box(&headers), black_box(&params)));
}

/// The body of a token request, form-decoded into parameters.
#[divan::bench]
fn token_request_form_parse() -> bool {
    Params::from_form(black_box(
        b"grant_type=authorization_code&code=dwac-0123456789abcdefghijklmnopqrstuvwxyzABCDEFG&redirect_uri=https%3A%2F%2Fclient.example%2Fcallback&code_verifier=dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
    ))
    .is_ok()
}

/// Scope strings as OAuth sends them.
#[divan::bench(args = ["api", "read_user openid profile email", "api read_api read_user read_repository write_repository openid"])]
fn scope_parse(text: &str) -> bool {
    ScopeSet::parse(black_box(text)).is_ok()
}

/// PKCE S256 (SHA-256 and base64url of the verifier, compared in constant time) and plain.
#[divan::bench(args = [Method::S256, Method::Plain])]
fn pkce_verify(bencher: Bencher, method: Method) {
    // RFC 7636 Appendix B.
    let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    let challenge = match method {
        Method::S256 => "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        Method::Plain => verifier,
    };
    bencher.bench(|| {
        let ok = pkce::verify(black_box(method), black_box(challenge), black_box(verifier));
        assert!(ok);
        ok
    });
}
