//! A minimal HTTP/1.1 client connection for the load generator: one TCP stream, one task,
//! a request written in one `write`, the answer read into a reused buffer. It speaks only
//! what the benchmark needs (keep-alive, `Content-Length` or chunked bodies), and costs the
//! generator far less CPU than a general-purpose client, which matters when generator and
//! server share two cores.

use std::io;
use std::net::SocketAddr;

use axum::body::Bytes;
use axum::http::response::Parts;
use axum::http::{HeaderName, HeaderValue, Request, Response, StatusCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Request bodies are plain bytes.
pub type Body = Bytes;

pub struct Conn {
    stream: TcpStream,
    host: String,
    out: Vec<u8>,
    buf: Vec<u8>,
    /// The server said `Connection: close`: the next request needs a new connection.
    pub closed: bool,
}

fn bad(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

impl Conn {
    pub async fn open(addr: SocketAddr) -> io::Result<Conn> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Conn {
            stream,
            host: addr.to_string(),
            out: Vec::with_capacity(1024),
            buf: Vec::with_capacity(16 * 1024),
            closed: false,
        })
    }

    /// Sends `req` and reads the whole answer.
    pub async fn send(&mut self, req: &Request<Body>) -> io::Result<(Parts, Bytes)> {
        if self.closed {
            return Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "the server closed the connection",
            ));
        }
        self.out.clear();
        let target = req
            .uri()
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/");
        self.out.extend_from_slice(req.method().as_str().as_bytes());
        self.out.push(b' ');
        self.out.extend_from_slice(target.as_bytes());
        self.out.extend_from_slice(b" HTTP/1.1\r\n");
        if !req.headers().contains_key("host") {
            self.out.extend_from_slice(b"host: ");
            self.out.extend_from_slice(self.host.as_bytes());
            self.out.extend_from_slice(b"\r\n");
        }
        for (k, v) in req.headers() {
            self.out.extend_from_slice(k.as_str().as_bytes());
            self.out.extend_from_slice(b": ");
            self.out.extend_from_slice(v.as_bytes());
            self.out.extend_from_slice(b"\r\n");
        }
        let body = req.body();
        if !body.is_empty() || req.method() == axum::http::Method::POST {
            self.out.extend_from_slice(b"content-length: ");
            self.out
                .extend_from_slice(body.len().to_string().as_bytes());
            self.out.extend_from_slice(b"\r\n");
        }
        self.out.extend_from_slice(b"\r\n");
        self.out.extend_from_slice(body);
        self.stream.write_all(&self.out).await?;
        self.read_response().await
    }

    async fn fill(&mut self) -> io::Result<()> {
        if self.buf.capacity() - self.buf.len() < 4096 {
            self.buf.reserve(16 * 1024);
        }
        let n = self.stream.read_buf(&mut self.buf).await?;
        if n == 0 {
            self.closed = true;
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the server closed the connection",
            ));
        }
        Ok(())
    }

    async fn read_response(&mut self) -> io::Result<(Parts, Bytes)> {
        self.buf.clear();
        let head_end = loop {
            if let Some(i) = find(&self.buf, b"\r\n\r\n") {
                break i + 4;
            }
            self.fill().await?;
        };
        let head = std::str::from_utf8(&self.buf[..head_end - 4])
            .map_err(|_| bad("response head is not UTF-8"))?;
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let code: u16 = status_line
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| bad(format!("bad status line {status_line:?}")))?;
        let mut builder = Response::builder().status(code);
        let mut length: Option<usize> = None;
        let mut chunked = false;
        for line in lines {
            let (name, value) = line
                .split_once(':')
                .ok_or_else(|| bad(format!("bad header line {line:?}")))?;
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                length = Some(value.parse().map_err(|_| bad("bad content-length"))?);
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = value.eq_ignore_ascii_case("chunked");
            } else if name.eq_ignore_ascii_case("connection") && value.eq_ignore_ascii_case("close")
            {
                self.closed = true;
            }
            builder = builder.header(
                HeaderName::from_bytes(name.as_bytes()).map_err(|_| bad("bad header name"))?,
                HeaderValue::from_str(value).map_err(|_| bad("bad header value"))?,
            );
        }
        let (parts, ()) = builder
            .body(())
            .map_err(|e| bad(e.to_string()))?
            .into_parts();
        let no_body = parts.status == StatusCode::NO_CONTENT
            || parts.status == StatusCode::NOT_MODIFIED
            || parts.status.is_informational();
        let body = if no_body {
            Bytes::new()
        } else if chunked {
            self.read_chunked(head_end).await?
        } else {
            let len = length.ok_or_else(|| bad("neither content-length nor chunked"))?;
            while self.buf.len() < head_end + len {
                self.fill().await?;
            }
            Bytes::copy_from_slice(&self.buf[head_end..head_end + len])
        };
        Ok((parts, body))
    }

    async fn read_chunked(&mut self, mut at: usize) -> io::Result<Bytes> {
        let mut body = Vec::new();
        loop {
            let line_end = loop {
                if let Some(i) = find(&self.buf[at..], b"\r\n") {
                    break at + i;
                }
                self.fill().await?;
            };
            let size_text =
                std::str::from_utf8(&self.buf[at..line_end]).map_err(|_| bad("bad chunk size"))?;
            let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
                .map_err(|_| bad("bad chunk size"))?;
            at = line_end + 2;
            // The chunk and its CRLF (for the last chunk: the empty trailer's CRLF).
            while self.buf.len() < at + size + 2 {
                self.fill().await?;
            }
            body.extend_from_slice(&self.buf[at..at + size]);
            at += size + 2;
            if size == 0 {
                return Ok(Bytes::from(body));
            }
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
