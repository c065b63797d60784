//! OAuth Client ID Metadata Documents, fetched from a real HTTPS server on loopback: a CA
//! and a certificate for 127.0.0.1/localhost made here (rcgen), served with rustls, the CA
//! given to the fetcher as `DOORWARD_OUTBOUND_CA_FILE` would. The fetcher is called
//! directly: documents are fetched, checked and cached as their `Cache-Control` says; bad
//! answers are errors with reasons; refused URLs never reach the server.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use doorward::oauth::client_id_metadata::{CimdError, CimdSettings, ClientIdMetadataDocuments};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

/// A document server: counts the requests for each path.
struct Server {
    port: u16,
    hits: Arc<Mutex<HashMap<String, usize>>>,
    ca_file: tempfile::NamedTempFile,
}

impl Server {
    fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.port)
    }

    fn hits(&self, path: &str) -> usize {
        self.hits.lock().unwrap().get(path).copied().unwrap_or(0)
    }

    fn total_hits(&self) -> usize {
        self.hits.lock().unwrap().values().sum()
    }

    fn fetcher(&self, allow_loopback: bool, timeout: Duration) -> ClientIdMetadataDocuments {
        fetcher(Some(self.ca_file.path()), allow_loopback, timeout).unwrap()
    }
}

fn fetcher(
    ca: Option<&Path>,
    allow_loopback: bool,
    timeout: Duration,
) -> anyhow::Result<ClientIdMetadataDocuments> {
    ClientIdMetadataDocuments::new(CimdSettings {
        allow_loopback,
        extra_roots: ca.map(Path::to_path_buf),
        connect_timeout: Duration::from_secs(5),
        timeout,
    })
}

async fn server() -> Server {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let leaf_key = KeyPair::generate().unwrap();
    let leaf_params =
        CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
    let leaf = leaf_params.signed_by(&leaf_key, &issuer).unwrap();

    let mut ca_file = tempfile::NamedTempFile::new().unwrap();
    std::io::Write::write_all(&mut ca_file, ca_cert.pem().as_bytes()).unwrap();

    let provider = Arc::new(tokio_rustls::rustls::crypto::aws_lc_rs::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der())),
        )
        .unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let hits: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
    let counter = hits.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, counter) = (acceptor.clone(), counter.clone());
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let Some((path, host)) = read_head(&mut tls).await else {
                    return;
                };
                *counter.lock().unwrap().entry(path.clone()).or_default() += 1;
                let _ = answer(&mut tls, &path, &host).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    Server {
        port,
        hits,
        ca_file,
    }
}

/// The request's path and `Host`.
async fn read_head<S: AsyncReadExt + Unpin>(stream: &mut S) -> Option<(String, String)> {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
        let n = stream.read(&mut buf).await.ok()?;
        if n == 0 {
            return None;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&head).to_string();
    let path = text.split_whitespace().nth(1)?.to_string();
    let host = text
        .lines()
        .find_map(|l| {
            l.strip_prefix("host: ")
                .or_else(|| l.strip_prefix("Host: "))
        })?
        .trim()
        .to_string();
    Some((path, host))
}

fn document(client_id: &str, extra: &str) -> String {
    format!(
        r#"{{"client_id":"{client_id}","client_name":"Test client","redirect_uris":["http://127.0.0.1/cb","https://app.example/cb"],"scope":"read_user","unknown_member":{{"x":1}}{extra}}}"#
    )
}

async fn answer<S: AsyncWriteExt + Unpin>(
    stream: &mut S,
    path: &str,
    host: &str,
) -> std::io::Result<()> {
    let me = format!("https://{host}{path}");
    let json = "application/json";
    let (status, headers, body, length): (&str, Vec<(&str, String)>, String, bool) = match path {
        "/good" => (
            "200 OK",
            vec![("Cache-Control", "public, max-age=60".into())],
            document(&me, ""),
            true,
        ),
        "/default" => ("200 OK", vec![], document(&me, ""), true),
        "/no-store" => (
            "200 OK",
            vec![("Cache-Control", "no-store".into())],
            document(&me, ""),
            true,
        ),
        "/mismatch" => (
            "200 OK",
            vec![],
            document("https://other.example/client", ""),
            true,
        ),
        "/secret-method" => (
            "200 OK",
            vec![],
            document(
                &me,
                r#","token_endpoint_auth_method":"client_secret_basic""#,
            ),
            true,
        ),
        "/client-secret" => (
            "200 OK",
            vec![],
            document(&me, r#","client_secret":"hunter2""#),
            true,
        ),
        "/html" => ("200 OK", vec![], "<html>hello</html>".into(), true),
        "/big" => (
            "200 OK",
            vec![],
            document(&me, &format!(r#","pad":"{}""#, "x".repeat(100_000))),
            true,
        ),
        "/big-unannounced" => (
            "200 OK",
            vec![],
            document(&me, &format!(r#","pad":"{}""#, "x".repeat(100_000))),
            false,
        ),
        "/redirect" => (
            "302 Found",
            vec![("Location", format!("https://{host}/good"))],
            String::new(),
            true,
        ),
        "/slow" => {
            tokio::time::sleep(Duration::from_secs(3)).await;
            ("200 OK", vec![], document(&me, ""), true)
        }
        // Any number of distinct good documents.
        p if p.starts_with("/n/") => ("200 OK", vec![], document(&me, ""), true),
        _ => ("404 Not Found", vec![], "not found".into(), true),
    };
    let mut head = format!("HTTP/1.1 {status}\r\nContent-Type: {json}\r\nConnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if length {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    stream.flush().await
}

const T: Duration = Duration::from_secs(10);

#[tokio::test]
async fn good_documents_are_fetched_and_cached_as_cache_control_says() {
    let s = server().await;
    let f = s.fetcher(true, T);
    let good = s.url("/good");

    let doc = f.get(&good, 1_000).await.unwrap();
    assert_eq!(doc.client_id, good);
    assert_eq!(doc.client_name.as_deref(), Some("Test client"));
    assert_eq!(
        doc.redirect_uris,
        vec!["http://127.0.0.1/cb", "https://app.example/cb"]
    );
    assert_eq!(doc.scope.as_deref(), Some("read_user"));
    assert_eq!(s.hits("/good"), 1);

    // max-age=60: kept for 60 seconds, then fetched again.
    let again = f.get(&good, 1_059).await.unwrap();
    assert_eq!(again, doc);
    assert_eq!(s.hits("/good"), 1, "a cached document is not fetched again");
    f.get(&good, 1_061).await.unwrap();
    assert_eq!(s.hits("/good"), 2);

    // No Cache-Control: five minutes.
    let default = s.url("/default");
    f.get(&default, 0).await.unwrap();
    f.get(&default, 299).await.unwrap();
    assert_eq!(s.hits("/default"), 1);
    f.get(&default, 301).await.unwrap();
    assert_eq!(s.hits("/default"), 2);

    // no-store: every use fetches.
    let no_store = s.url("/no-store");
    f.get(&no_store, 0).await.unwrap();
    f.get(&no_store, 0).await.unwrap();
    assert_eq!(s.hits("/no-store"), 2);

    // localhost is loopback too, with the allowance.
    let by_name = format!("https://localhost:{}/good", s.port);
    assert_eq!(f.get(&by_name, 0).await.unwrap().client_id, by_name);
}

#[tokio::test]
async fn bad_answers_are_errors_with_reasons_and_not_cached() {
    let s = server().await;
    let f = s.fetcher(true, T);
    for (path, invalid, why) in [
        ("/mismatch", true, "is not the document's URL"),
        ("/secret-method", true, "shared secret"),
        ("/client-secret", true, "client_secret"),
        ("/html", true, "not valid JSON"),
        ("/missing", false, "404 Not Found instead of 200 OK"),
        ("/big", false, "larger than 65536 bytes"),
        ("/big-unannounced", false, "larger than 65536 bytes"),
        ("/redirect", false, "redirects are not followed"),
    ] {
        let e = f.get(&s.url(path), 0).await.unwrap_err();
        let text = e.to_string();
        assert!(text.contains(why), "{path}: {text}");
        assert!(text.contains(&s.url(path)), "{path}: {text}");
        match invalid {
            true => assert!(matches!(e, CimdError::Invalid { .. }), "{path}: {e:?}"),
            false => assert!(matches!(e, CimdError::Fetch { .. }), "{path}: {e:?}"),
        }
        // Errors are not cached: the next use asks again.
        assert!(f.get(&s.url(path), 1).await.is_err());
        assert_eq!(s.hits(path), 2, "{path}");
    }
    assert_eq!(s.hits("/good"), 0, "the redirect was not followed");
}

#[tokio::test]
async fn a_slow_server_times_out() {
    let s = server().await;
    let f = s.fetcher(true, Duration::from_secs(1));
    let started = Instant::now();
    let e = f.get(&s.url("/slow"), 0).await.unwrap_err();
    assert!(matches!(e, CimdError::Fetch { .. }), "{e:?}");
    assert!(e.to_string().contains("did not answer in time"), "{e}");
    assert!(started.elapsed() < Duration::from_millis(2500));
}

#[tokio::test]
async fn an_untrusted_certificate_is_an_error() {
    let s = server().await;
    // Without the test CA, the server's certificate chains to nothing the system trusts
    // (or, on a machine with no system roots, no client can be built at all).
    if let Ok(f) = fetcher(None, true, T) {
        let e = f.get(&s.url("/good"), 0).await.unwrap_err();
        assert!(matches!(e, CimdError::Fetch { .. }), "{e:?}");
        assert!(e.to_string().to_lowercase().contains("certificate"), "{e}");
    }
}

#[tokio::test]
async fn refused_urls_never_reach_the_server() {
    let s = server().await;
    let strict = s.fetcher(false, T);
    let loopback = s.fetcher(true, T);
    let port = s.port;
    for (f, url, refused) in [
        (&loopback, format!("http://127.0.0.1:{port}/good"), false),
        (&loopback, format!("https://127.0.0.1:{port}/"), false),
        (&loopback, format!("https://127.0.0.1:{port}"), false),
        (
            &loopback,
            format!("https://u:p@127.0.0.1:{port}/good"),
            false,
        ),
        (&loopback, format!("https://127.0.0.1:{port}/good#x"), false),
        // Without the allowance, loopback in any form is refused before connecting.
        (&strict, format!("https://127.0.0.1:{port}/good"), true),
        (&strict, format!("https://localhost:{port}/good"), true),
        (
            &strict,
            format!("https://[::ffff:127.0.0.1]:{port}/good"),
            true,
        ),
        (&strict, format!("https://[::1]:{port}/good"), true),
        (&strict, format!("https://2130706433:{port}/good"), true),
        (&strict, format!("https://0x7f.1:{port}/good"), true),
        // With it, other private ranges and other spellings are still refused.
        (&loopback, format!("https://10.0.0.1:{port}/good"), true),
        (
            &loopback,
            "https://169.254.169.254/latest".to_string(),
            true,
        ),
        (&loopback, "https://[fd00::1]/x".to_string(), true),
        (&loopback, format!("https://2130706433:{port}/good"), false),
        (&loopback, "https://2130706433/x".to_string(), false),
    ] {
        let e = f.get(&url, 0).await.unwrap_err();
        match refused {
            true => assert!(matches!(e, CimdError::Refused { .. }), "{url}: {e:?}"),
            false => assert!(matches!(e, CimdError::InvalidUrl(_)), "{url}: {e:?}"),
        }
    }
    assert_eq!(s.total_hits(), 0);
    // The same server is reachable with the allowance: the refusals above were ours.
    loopback.get(&s.url("/good"), 0).await.unwrap();
    assert_eq!(s.total_hits(), 1);
}

/// Through HTTP: a client named by its metadata document URL gets a consent page marked
/// unverified, a code, and tokens with no secret; a bad document is an error page, never
/// a redirect; with documents turned off, the URL is an unknown client and never fetched.
#[tokio::test]
async fn a_metadata_document_client_completes_the_code_flow_on_sqlite() {
    metadata_document_client_flow(doorward::store::Backend::Sqlite).await;
}

#[tokio::test]
async fn a_metadata_document_client_completes_the_code_flow_on_postgres() {
    metadata_document_client_flow(doorward::store::Backend::Postgres).await;
}

async fn metadata_document_client_flow(backend: doorward::store::Backend) {
    use crate::support::oauth::{
        authorize, decide, param, redirect_params, signed_in_browser, token_request,
    };
    let docs = server().await;
    let ca = docs.ca_file.path().display().to_string();
    let app = crate::support::TestApp::spawn_with(
        backend,
        &[
            ("DOORWARD_CIMD_ALLOW_LOOPBACK", "true"),
            ("DOORWARD_OUTBOUND_CA_FILE", &ca),
        ],
    )
    .await;
    let meta: serde_json::Value = reqwest::get(app.url("/.well-known/oauth-authorization-server"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(meta["client_id_metadata_document_supported"], true);

    let client_id = docs.url("/good");
    let verifier = "v".repeat(50);
    let challenge = doorward::domain::secret::base64url(&<sha2::Sha256 as sha2::Digest>::digest(
        verifier.as_bytes(),
    ));
    let browser = signed_in_browser(&app).await;
    let params = [
        ("client_id", client_id.as_str()),
        ("redirect_uri", "https://app.example/cb"),
        ("response_type", "code"),
        ("scope", "read_user"),
        ("state", "st"),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    let res = authorize(&app, &browser, &params).await;
    assert_eq!(res.status(), 200);
    let page = res.text().await.unwrap();
    assert!(page.contains("id=\"unverified\"") && page.contains("Test client"));
    let res = decide(&app, &browser, &page, "authorize").await;
    assert_eq!(res.status(), 302);
    let code = param(&redirect_params(&res), "code").unwrap().to_string();
    // Authorizing again with the document unchanged writes nothing to the client's row.
    let row = app
        .state
        .store
        .application_by_uid(&client_id)
        .await
        .unwrap()
        .unwrap();
    app.clock.advance(5);
    assert_eq!(authorize(&app, &browser, &params).await.status(), 200);
    let again = app
        .state
        .store
        .application_by_uid(&client_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.updated_at, row.updated_at);
    let res = reqwest::Client::new()
        .post(app.url("/oauth/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", "https://app.example/cb"),
            ("client_id", client_id.as_str()),
            ("code_verifier", verifier.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let tokens: serde_json::Value = res.json().await.unwrap();
    assert!(
        tokens["access_token"]
            .as_str()
            .unwrap()
            .starts_with("dwat-")
    );
    // A metadata document client is a public, unvetted one: no client credentials.
    let res = token_request(
        &app,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &client_id),
        ],
        None,
    )
    .await;
    assert!(res.status().is_client_error());

    // A bad document: an error page naming the reason, never a redirect.
    for path in ["/mismatch", "/secret-method", "/html", "/missing"] {
        let url = docs.url(path);
        let mut bad = params;
        bad[0] = ("client_id", url.as_str());
        let res = authorize(&app, &browser, &bad).await;
        assert!(res.status().is_client_error(), "{path}: {}", res.status());
        assert!(res.headers().get("location").is_none(), "{path}");
    }
    // An unregistered redirect URI is refused as for any client.
    let mut bad = params;
    bad[1] = ("redirect_uri", "https://evil.example/cb");
    assert_eq!(authorize(&app, &browser, &bad).await.status(), 400);

    // Turned off: an unknown client, and the document server sees no request.
    let off = app
        .another_node(&[("DOORWARD_CLIENT_ID_METADATA_DOCUMENTS", "false")])
        .await;
    let meta: serde_json::Value = reqwest::get(off.url("/.well-known/oauth-authorization-server"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(meta.get("client_id_metadata_document_supported").is_none());
    let before = docs.total_hits();
    let browser = signed_in_browser(&off).await;
    // "/good" has a row from node one; it is not used either.
    let url = docs.url("/good");
    let mut other = params;
    other[0] = ("client_id", url.as_str());
    let res = authorize(&off, &browser, &other).await;
    assert!(res.status().is_client_error());
    assert_eq!(docs.total_hits(), before);
}

/// Anyone can name a new document URL, and each new one is an application row: a node
/// creates at most `NEW_CLIENTS_PER_MINUTE` of them a minute (503 page past that), while
/// clients it already knows keep working.
#[tokio::test]
async fn new_metadata_document_clients_are_limited_per_minute() {
    use crate::support::oauth::authorize;
    let docs = server().await;
    let ca = docs.ca_file.path().display().to_string();
    let app = crate::support::TestApp::spawn_with(
        doorward::store::Backend::Sqlite,
        &[
            ("DOORWARD_CIMD_ALLOW_LOOPBACK", "true"),
            ("DOORWARD_OUTBOUND_CA_FILE", &ca),
        ],
    )
    .await;
    let anonymous = app.new_browser();
    let request = |id: String| {
        let (app, browser) = (&app, &anonymous);
        async move {
            authorize(
                app,
                browser,
                &[
                    ("client_id", id.as_str()),
                    ("redirect_uri", "https://app.example/cb"),
                    ("response_type", "code"),
                ],
            )
            .await
            .status()
            .as_u16()
        }
    };
    let first = docs.url("/n/0");
    assert_eq!(
        request(first.clone()).await,
        302,
        "an anonymous visitor is sent to sign in"
    );
    let mut created = 1;
    let mut limited = false;
    // Enough to be limited even if the loop crosses one minute boundary.
    for i in 1..300 {
        match request(docs.url(&format!("/n/{i}"))).await {
            302 => created += 1,
            503 => {
                limited = true;
                break;
            }
            other => panic!("{other}"),
        }
    }
    assert!(limited, "never limited");
    assert!(
        created >= doorward::oauth::metadata_document_clients::NEW_CLIENTS_PER_MINUTE as usize,
        "{created}"
    );
    // A known client is not refused.
    assert_eq!(request(first).await, 302);
}
