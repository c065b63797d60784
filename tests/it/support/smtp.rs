//! A real SMTP server for the tests: `tests/python/smtp_sink.py` (aiosmtpd, in the venv of
//! `scripts/test`, named by `DOORWARD_TEST_PYTHON`) on 127.0.0.1, and what it received, parsed.
//!
//! ```ignore
//! let sink = SmtpSink::start(SmtpOptions::default()).await;
//! let app = TestApp::spawn_with(backend, &[("DOORWARD_SMTP_URL", &sink.url())]).await;
//! // ... something that mails ada@example.com ...
//! let mail = sink.wait_for("ada@example.com", Duration::from_secs(10)).await;
//! assert_eq!(mail.subject(), "Reset password instructions");
//! let link = mail.links().into_iter().find(|l| l.contains("/users/password/edit")).unwrap();
//! ```
//!
//! Options: AUTH required with a user and password ([`SmtpOptions::auth`]), STARTTLS
//! required ([`SmtpOptions::starttls`]) or implicit TLS ([`SmtpOptions::implicit_tls`]) with a
//! certificate for 127.0.0.1 made here, signed by a test CA whose PEM is
//! [`SmtpSink::ca_file`] (for `DOORWARD_OUTBOUND_CA_FILE`), a fixed port
//! ([`SmtpOptions::port`], with [`free_port`]), and answering every DATA with `451`
//! ([`SmtpOptions::temporary_failure`], switchable with [`SmtpSink::set_temporary_failure`]).
//!
//! The server process dies with the [`SmtpSink`] (or when this test process exits).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine;
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use tokio::io::AsyncBufReadExt;

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/smtp_sink.py");
/// The file whose presence makes the sink answer `451` (see smtp_sink.py).
const FAIL_FLAG: &str = "temporary-failure";

/// How the sink protects connections.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SinkTls {
    #[default]
    None,
    /// STARTTLS offered and required before MAIL (`smtp://…?tls=required`).
    StartTls,
    /// TLS from the first byte (`smtps://`).
    Implicit,
}

/// What the sink does; `SmtpOptions::default()` is plain SMTP, no AUTH, any free port.
#[derive(Clone, Debug, Default)]
pub struct SmtpOptions {
    /// 0: any free port.
    pub port: u16,
    /// AUTH (PLAIN or LOGIN) with this user and password required before MAIL.
    pub auth: Option<(String, String)>,
    pub tls: SinkTls,
    /// Start answering every DATA with `451 4.3.0`.
    pub temporary_failure: bool,
}

impl SmtpOptions {
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }
    pub fn auth(mut self, user: &str, password: &str) -> Self {
        self.auth = Some((user.into(), password.into()));
        self
    }
    pub fn starttls(mut self) -> Self {
        self.tls = SinkTls::StartTls;
        self
    }
    pub fn implicit_tls(mut self) -> Self {
        self.tls = SinkTls::Implicit;
        self
    }
    pub fn temporary_failure(mut self) -> Self {
        self.temporary_failure = true;
        self
    }
}

/// A port on 127.0.0.1 that nothing listens on right now (to start a sink on later).
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local address").port()
}

/// A running SMTP server. Dropping it kills the process.
pub struct SmtpSink {
    child: Option<tokio::process::Child>,
    port: u16,
    tls: SinkTls,
    dir: tempfile::TempDir,
    /// Sequence numbers already returned by [`SmtpSink::wait_for`].
    taken: Mutex<HashSet<u64>>,
}

impl SmtpSink {
    /// Starts the server and waits until it accepts connections. Panics when
    /// `DOORWARD_TEST_PYTHON` is unset or the server does not come up.
    pub async fn start(options: SmtpOptions) -> SmtpSink {
        let python = std::env::var("DOORWARD_TEST_PYTHON").expect(
            "DOORWARD_TEST_PYTHON is not set: run the suite with scripts/test, which installs aiosmtpd",
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let mut command = tokio::process::Command::new(python);
        command.arg(SCRIPT).arg("--dir").arg(dir.path());
        command.arg("--port").arg(options.port.to_string());
        if let Some((user, password)) = &options.auth {
            command.args(["--user", user, "--password", password]);
        }
        if options.tls != SinkTls::None {
            let (cert, key) = write_certificates(dir.path());
            command.arg(match options.tls {
                SinkTls::StartTls => "--starttls",
                _ => "--implicit-tls",
            });
            command.arg("--cert").arg(cert).arg("--key").arg(key);
        }
        if options.temporary_failure {
            command.arg("--temporary-failure");
        }
        let stderr = std::fs::File::create(dir.path().join("stderr.log")).expect("stderr.log");
        let mut child = command
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(stderr)
            .kill_on_drop(true)
            .spawn()
            .expect("cannot start tests/python/smtp_sink.py");
        let stdout = child.stdout.take().expect("stdout");
        let mut first = String::new();
        let mut stdout = tokio::io::BufReader::new(stdout);
        let read = stdout.read_line(&mut first);
        let ready = tokio::time::timeout(Duration::from_secs(30), read).await;
        let port = match ready {
            Ok(Ok(_)) => first.trim().parse::<u16>().ok(),
            _ => None,
        };
        let Some(port) = port else {
            let _ = child.kill().await;
            panic!(
                "the SMTP sink did not start (port line {first:?}):\n{}",
                diagnostics(dir.path())
            );
        };
        SmtpSink {
            child: Some(child),
            port,
            tls: options.tls,
            dir,
            taken: Mutex::new(HashSet::new()),
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The `DOORWARD_SMTP_URL` reaching this sink as configured: `smtp://127.0.0.1:PORT`,
    /// with `?tls=required` for STARTTLS, or `smtps://127.0.0.1:PORT`. No credentials: add
    /// them with [`SmtpSink::url_with_credentials`] or `DOORWARD_SMTP_PASSWORD`.
    pub fn url(&self) -> String {
        match self.tls {
            SinkTls::None => format!("smtp://127.0.0.1:{}", self.port),
            SinkTls::StartTls => format!("smtp://127.0.0.1:{}?tls=required", self.port),
            SinkTls::Implicit => format!("smtps://127.0.0.1:{}", self.port),
        }
    }

    /// [`SmtpSink::url`] with `user` and `password` percent-encoded in its user info.
    pub fn url_with_credentials(&self, user: &str, password: &str) -> String {
        let mut url = url::Url::parse(&self.url()).expect("sink URL");
        url.set_username(user).expect("user");
        url.set_password(Some(password)).expect("password");
        url.to_string()
    }

    /// The PEM of the CA that signed the sink's certificate (TLS modes only), for
    /// `DOORWARD_OUTBOUND_CA_FILE`.
    pub fn ca_file(&self) -> PathBuf {
        let path = self.dir.path().join("ca.pem");
        assert!(path.exists(), "the sink has no TLS, hence no CA file");
        path
    }

    /// Every message received so far, in order of arrival.
    pub fn messages(&self) -> Vec<ReceivedMail> {
        let mut names: Vec<PathBuf> = std::fs::read_dir(self.dir.path())
            .expect("sink directory")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        names.sort();
        names
            .iter()
            .map(|p| ReceivedMail::from_record(&std::fs::read_to_string(p).expect("message")))
            .collect()
    }

    /// Waits for the oldest message whose envelope recipients include `to` (case-insensitive)
    /// and that no earlier `wait_for` returned, so waiting twice gives the second such mail.
    /// Panics after `timeout`, saying what did arrive.
    pub async fn wait_for(&self, to: &str, timeout: Duration) -> ReceivedMail {
        let deadline = Instant::now() + timeout;
        loop {
            {
                let mut taken = self.taken.lock().unwrap();
                let found = self.messages().into_iter().find(|m| {
                    !taken.contains(&m.seq) && m.rcpt_to.iter().any(|r| r.eq_ignore_ascii_case(to))
                });
                if let Some(mail) = found {
                    taken.insert(mail.seq);
                    return mail;
                }
            }
            if Instant::now() >= deadline {
                panic!(
                    "no mail to {to} within {timeout:?}; received: {:?}, rejected with 451: {}\n{}",
                    self.messages()
                        .iter()
                        .map(|m| (m.rcpt_to.clone(), m.subject().to_string()))
                        .collect::<Vec<_>>(),
                    self.rejected_count(),
                    diagnostics(self.dir.path())
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until at least `count` messages arrived; returns them all.
    pub async fn wait_for_count(&self, count: usize, timeout: Duration) -> Vec<ReceivedMail> {
        let deadline = Instant::now() + timeout;
        loop {
            let messages = self.messages();
            if messages.len() >= count {
                return messages;
            }
            if Instant::now() >= deadline {
                panic!(
                    "{} of {count} messages within {timeout:?}\n{}",
                    messages.len(),
                    diagnostics(self.dir.path())
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// While on, every DATA is answered `451 4.3.0` (and counted in [`Self::rejected_count`]).
    pub fn set_temporary_failure(&self, on: bool) {
        let flag = self.dir.path().join(FAIL_FLAG);
        if on {
            std::fs::write(flag, b"").expect("fail flag");
        } else if flag.exists() {
            std::fs::remove_file(flag).expect("fail flag");
        }
    }

    /// How many DATA commands were answered `451` so far.
    pub fn rejected_count(&self) -> usize {
        std::fs::read_to_string(self.dir.path().join("rejected.log"))
            .map(|s| s.lines().count())
            .unwrap_or(0)
    }

    /// Stops the server and waits until it is gone (its port is free again). What it
    /// received stays readable.
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.start_kill();
        }
    }
}

/// The sink's log and standard error, for panic messages.
fn diagnostics(dir: &Path) -> String {
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap_or_default();
    let tail = |s: String| {
        let lines: Vec<&str> = s.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    };
    format!(
        "--- sink.log ---\n{}\n--- stderr ---\n{}",
        tail(read("sink.log")),
        tail(read("stderr.log"))
    )
}

/// A test CA (`ca.pem`) and a certificate for 127.0.0.1 and localhost signed by it
/// (`cert.pem`, `key.pem`) in `dir`; returns the certificate's and key's paths.
fn write_certificates(dir: &Path) -> (PathBuf, PathBuf) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
        .unwrap()
        .signed_by(&leaf_key, &issuer)
        .unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(dir.join("ca.pem"), ca_cert.pem()).unwrap();
    std::fs::write(&cert, leaf.pem()).unwrap();
    std::fs::write(&key, leaf_key.serialize_pem()).unwrap();
    (cert, key)
}

/// One message as the sink received it, parsed.
#[derive(Clone, Debug)]
pub struct ReceivedMail {
    /// Order of arrival at the sink (1, 2, …).
    pub seq: u64,
    /// The envelope: `MAIL FROM` and `RCPT TO`.
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    /// The user that authenticated, when AUTH was used.
    pub auth_login: Option<String>,
    /// Whether the session was encrypted (STARTTLS or implicit TLS).
    pub tls: bool,
    /// The message as sent (CRLF line ends).
    pub raw: String,
    /// Top-level headers in order, unfolded, encoded words (RFC 2047) decoded.
    pub headers: Vec<(String, String)>,
    /// The decoded `text/plain` part (LF line ends), if any.
    pub text: Option<String>,
    /// The decoded `text/html` part (LF line ends), if any.
    pub html: Option<String>,
}

impl ReceivedMail {
    fn from_record(json: &str) -> ReceivedMail {
        let record: serde_json::Value = serde_json::from_str(json).expect("sink record");
        let text = |k: &str| record[k].as_str().map(str::to_string);
        let mut mail = ReceivedMail::parse(&text("data").unwrap_or_default());
        mail.seq = record["seq"].as_u64().unwrap_or(0);
        mail.mail_from = text("mail_from").unwrap_or_default();
        mail.rcpt_to = record["rcpt_tos"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        mail.auth_login = text("auth_login");
        mail.tls = record["tls"].as_bool().unwrap_or(false);
        mail
    }

    /// Parses an RFC 5322 message (an `.eml` file, say); the envelope fields stay empty.
    /// Handles nested multiparts and 7bit, 8bit, quoted-printable and base64 bodies.
    pub fn parse(raw: &str) -> ReceivedMail {
        let (headers, body) = split_head(raw);
        let mut mail = ReceivedMail {
            seq: 0,
            mail_from: String::new(),
            rcpt_to: Vec::new(),
            auth_login: None,
            tls: false,
            raw: raw.to_string(),
            headers: headers.clone(),
            text: None,
            html: None,
        };
        collect_parts(&headers, body, &mut mail);
        mail
    }

    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }

    pub fn subject(&self) -> &str {
        self.header("Subject").unwrap_or_default()
    }

    /// The `From` header (e.g. `"Doorward" <doorward@example.com>`).
    pub fn from(&self) -> &str {
        self.header("From").unwrap_or_default()
    }

    /// The `To` header.
    pub fn to(&self) -> &str {
        self.header("To").unwrap_or_default()
    }

    /// The text part; panics when there is none.
    pub fn text(&self) -> &str {
        self.text
            .as_deref()
            .expect("the mail has no text/plain part")
    }

    /// The HTML part; panics when there is none.
    pub fn html(&self) -> &str {
        self.html
            .as_deref()
            .expect("the mail has no text/html part")
    }

    /// Every absolute `http://` or `https://` URL in the text part, in order, without
    /// trailing punctuation.
    pub fn links(&self) -> Vec<String> {
        links_in(self.text.as_deref().unwrap_or_default())
    }

    /// Every `href` of the HTML part that is an absolute http(s) URL, character references
    /// (`&amp;`, `&#x2f;`, …) decoded.
    pub fn html_links(&self) -> Vec<String> {
        let html = self.html.as_deref().unwrap_or_default();
        html.split("href=\"")
            .skip(1)
            .filter_map(|rest| rest.split('"').next())
            .map(unescape_html)
            .filter(|href| href.starts_with("http://") || href.starts_with("https://"))
            .collect()
    }
}

/// Decodes HTML character references: `&amp;` `&lt;` `&gt;` `&quot;` `&apos;` and numeric
/// ones (`&#39;`, `&#x2f;`); anything else stays as it is.
pub fn unescape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let decoded = rest.find(';').filter(|&end| end <= 10).and_then(|end| {
            let name = &rest[1..end];
            let c = match name {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                _ => match name.strip_prefix('#') {
                    Some(n) => match n.strip_prefix(['x', 'X']) {
                        Some(hex) => u32::from_str_radix(hex, 16).ok(),
                        None => n.parse().ok(),
                    }
                    .and_then(char::from_u32),
                    None => None,
                },
            };
            c.map(|c| (c, end))
        });
        match decoded {
            Some((c, end)) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn links_in(text: &str) -> Vec<String> {
    let mut links = Vec::new();
    let mut rest = text;
    while let Some(start) = [rest.find("https://"), rest.find("http://")]
        .into_iter()
        .flatten()
        .min()
    {
        let candidate = &rest[start..];
        let end = candidate
            .find(|c: char| c.is_whitespace() || matches!(c, '<' | '>' | '"' | '\''))
            .unwrap_or(candidate.len());
        let link = candidate[..end].trim_end_matches(['.', ',', ';', ':', '!', '?', ')', ']']);
        links.push(link.to_string());
        rest = &candidate[end..];
    }
    links
}

fn find_header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Headers (unfolded, decoded) and the body after the first empty line.
fn split_head(entity: &str) -> (Vec<(String, String)>, &str) {
    let (head, body) = match entity.find("\r\n\r\n") {
        Some(i) => (&entity[..i], &entity[i + 4..]),
        None => match entity.find("\n\n") {
            Some(i) => (&entity[..i], &entity[i + 2..]),
            None => (entity, ""),
        },
    };
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in head.lines() {
        if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = headers.last_mut() {
                value.push(' ');
                value.push_str(line.trim());
            }
        } else if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_string(), value.trim().to_string()));
        }
    }
    for (_, value) in &mut headers {
        *value = decode_words(value);
    }
    (headers, body)
}

/// A parameter of a header value (`boundary`, `charset`), unquoted.
fn parameter(value: &str, name: &str) -> Option<String> {
    value.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().trim_matches('"').to_string())
    })
}

fn collect_parts(headers: &[(String, String)], body: &str, mail: &mut ReceivedMail) {
    let content_type = find_header(headers, "Content-Type").unwrap_or("text/plain");
    let media = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if media.starts_with("multipart/") {
        let Some(boundary) = parameter(content_type, "boundary") else {
            return;
        };
        let delimiter = format!("--{boundary}");
        let mut parts: Vec<String> = Vec::new();
        let mut current: Option<Vec<&str>> = None;
        for line in body.split('\n') {
            let line = line.strip_suffix('\r').unwrap_or(line);
            if line == delimiter || line == format!("{delimiter}--") {
                if let Some(lines) = current.take() {
                    parts.push(lines.join("\r\n"));
                }
                if line != delimiter {
                    break;
                }
                current = Some(Vec::new());
            } else if let Some(lines) = &mut current {
                lines.push(line);
            }
        }
        for part in parts {
            let (part_headers, part_body) = split_head(&part);
            collect_parts(&part_headers, part_body, mail);
        }
        return;
    }
    let encoding = find_header(headers, "Content-Transfer-Encoding")
        .unwrap_or("7bit")
        .trim()
        .to_ascii_lowercase();
    let bytes = match encoding.as_str() {
        "quoted-printable" => decode_quoted_printable(body),
        "base64" => base64::engine::general_purpose::STANDARD
            .decode(body.split_whitespace().collect::<String>())
            .expect("a base64 body"),
        _ => body.as_bytes().to_vec(),
    };
    let decoded = String::from_utf8_lossy(&bytes).replace("\r\n", "\n");
    match media.as_str() {
        "text/plain" if mail.text.is_none() => mail.text = Some(decoded),
        "text/html" if mail.html.is_none() => mail.html = Some(decoded),
        _ => {}
    }
}

/// RFC 2045 §6.7: `=XX` escapes and `=` soft line breaks.
fn decode_quoted_printable(body: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len());
    let lines: Vec<&str> = body.split('\n').collect();
    for (i, line) in lines.iter().enumerate() {
        let line = line
            .strip_suffix('\r')
            .unwrap_or(line)
            .trim_end_matches([' ', '\t']);
        let (line, soft) = match line.strip_suffix('=') {
            Some(l) => (l, true),
            None => (line, false),
        };
        let bytes = line.as_bytes();
        let mut j = 0;
        while j < bytes.len() {
            if bytes[j] == b'='
                && let Some(byte) = bytes
                    .get(j + 1..j + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(byte);
                j += 3;
            } else {
                out.push(bytes[j]);
                j += 1;
            }
        }
        if !soft && i + 1 < lines.len() {
            out.extend_from_slice(b"\r\n");
        }
    }
    out
}

/// RFC 2047 encoded words (`=?utf-8?b?…?=`, `=?utf-8?q?…?=`); whitespace between two
/// adjacent encoded words is dropped.
fn decode_words(value: &str) -> String {
    let mut out = String::new();
    let mut rest = value;
    let mut after_word = false;
    while let Some(start) = rest.find("=?") {
        let (before, candidate) = rest.split_at(start);
        let decoded = candidate[2..].splitn(3, '?').collect::<Vec<_>>();
        let word = match decoded.as_slice() {
            [charset, encoding, tail] => tail.find("?=").map(|end| {
                let payload = &tail[..end];
                let bytes = if encoding.eq_ignore_ascii_case("b") {
                    base64::engine::general_purpose::STANDARD
                        .decode(payload)
                        .unwrap_or_default()
                } else {
                    decode_quoted_printable(&payload.replace('_', " "))
                };
                let consumed = 2 + charset.len() + 1 + encoding.len() + 1 + end + 2;
                (String::from_utf8_lossy(&bytes).into_owned(), consumed)
            }),
            _ => None,
        };
        let Some((text, consumed)) = word else {
            out.push_str(before);
            out.push_str("=?");
            rest = &candidate[2..];
            after_word = false;
            continue;
        };
        if !(after_word && before.trim().is_empty()) {
            out.push_str(before);
        }
        out.push_str(&text);
        rest = &candidate[consumed..];
        after_word = true;
    }
    out.push_str(rest);
    out
}
