//! Micro-benchmarks of the pure functions on Doorward's hot paths (`cargo bench`), with
//! divan. Under `cargo test --all-targets` each runs once, as a test.

use axum::http::{HeaderMap, HeaderValue, header};
use divan::{Bencher, black_box};
use doorward::domain::pkce::{self, Method};
use doorward::domain::scope::ScopeSet;
use doorward::domain::secret;
use doorward::domain::user::User;
use doorward::oauth::client_auth;
use doorward::oauth::issue::MintedTokens;
use doorward::oauth::params::Params;
use doorward::oidc::id_token::{self, Subject};
use doorward::oidc::signing_keys::{self, Alg, SigningKey};

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

/// An id_token as the token endpoint issues one (`oidc::id_token::attach` without the key
/// cache): its claims for `openid profile email` with a nonce, then the compact JWS signed
/// by a key generated as `oidc::keys` generates it (RS256: RSA 2048; ES256: P-256).
#[divan::bench(args = [Alg::Rs256, Alg::Es256])]
fn id_token_sign(bencher: Bencher, alg: Alg) {
    let pem = signing_keys::generate(alg).unwrap_or_else(|e| panic!("generating a key: {e}"));
    let key = SigningKey::from_pem(alg, &pem).unwrap_or_else(|e| panic!("loading the key: {e}"));
    let user = bench_user();
    let scopes = ScopeSet::parse("openid profile email").unwrap_or_default();
    let access_token = secret::generate(secret::ACCESS_TOKEN_PREFIX);
    let client_id = secret::generate_client_id();
    let subject = Subject {
        user: &user,
        client_id: &client_id,
        auth_time: 1_760_000_000,
        nonce: Some("n-0S6_WzA2Mj"),
        browser_session: None,
    };
    bencher.bench(|| {
        let claims = id_token::claims(
            black_box("https://doorward.example"),
            black_box(&subject),
            black_box(&scopes),
            black_box(access_token.expose()),
            black_box("yNs2tEVxx0QhD8S3kIjYPQ"),
            black_box(1_760_000_100),
            black_box(120),
        );
        key.sign(&claims).unwrap_or_else(|e| panic!("signing: {e}"))
    });
}

fn bench_user() -> User {
    User {
        id: 42,
        username: "ada".into(),
        email: "ada@example.com".into(),
        name: "Ada Lovelace".into(),
        password_hash: String::new(),
        is_admin: false,
        state: "active".into(),
        public_email: String::new(),
        website_url: "https://ada.example".into(),
        bio: String::new(),
        location: String::new(),
        organization: String::new(),
        job_title: String::new(),
        created_at: 1_700_000_000,
        updated_at: 1_700_000_000,
        last_sign_in_at: None,
        current_sign_in_at: None,
        two_factor_enabled: false,
        confirmed_at: None,
        unconfirmed_email: None,
    }
}
