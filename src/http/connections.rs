//! The connection loop: hyper's HTTP/1.1 server driven directly (axum::serve has no
//! deadlines and no connection cap), so that clients that connect and then send slowly or
//! not at all (slowloris) cannot hold connections and file descriptors forever.
//!
//! Each connection has one watchdog with Go's `net/http` semantics:
//! - a new connection, or one whose client has started sending the next request, must
//!   finish the request's headers within `header_read_timeout`;
//! - an idle keep-alive connection (previous answer sent, nothing new received) is closed
//!   after `keep_alive_timeout` (RFC 9112 §9.8 lets a server close an idle connection at
//!   any time);
//! - while a request is being handled the watchdog waits: the body-read and whole-request
//!   deadlines are the router's (`app::buffer_request_body`, `app::request_deadline`),
//!   which answer 408/503 in the endpoint's own format.
//!
//! At most `max_connections` connections are served at once; the next ones wait in the
//! kernel's listen backlog (they are not refused) until one closes.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tower::Service;

use crate::config::ConnectionSettings;

/// Serves `router` on `listener` until `shutdown` completes, then stops accepting, lets
/// the requests in flight finish and closes idle connections.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    settings: ConnectionSettings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let slots = Arc::new(Semaphore::new(settings.max_connections));
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    // The watchdog below owns the header deadline (hyper's own would also cut idle
    // keep-alive connections at the same moment).
    http.timer(TokioTimer::new())
        .header_read_timeout(None)
        .keep_alive(true);
    let deadlines = Deadlines::from(settings);
    tokio::pin!(shutdown);
    loop {
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot,
            () = &mut shutdown => break,
        };
        let Ok(slot) = slot else { break };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, or a connection reset before it was
                    // accepted: pause briefly instead of spinning, then go on.
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let clock = Arc::new(ConnectionClock::new());
        let io = TokioIo::new(WatchedStream {
            stream,
            clock: clock.clone(),
        });
        let service = ConnectionService {
            router: router.clone(),
            peer,
            clock: clock.clone(),
        };
        let connection = graceful.watch(http.serve_connection(io, service));
        tokio::spawn(async move {
            tokio::select! {
                _ = connection => {}
                () = clock.expired(deadlines) => {
                    tracing::debug!(%peer, "closing a connection that sent nothing in time");
                }
            }
            drop(slot);
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// The connection-level deadlines.
#[derive(Clone, Copy, Debug)]
struct Deadlines {
    header_read: Duration,
    keep_alive: Duration,
}

impl From<ConnectionSettings> for Deadlines {
    fn from(s: ConnectionSettings) -> Deadlines {
        Deadlines {
            header_read: Duration::from_millis(s.header_read_timeout_ms),
            keep_alive: Duration::from_millis(s.keep_alive_timeout_ms),
        }
    }
}

/// What the watchdog needs to know about one connection, shared by its stream (bytes
/// received) and its service (requests started and answered). Times are milliseconds
/// since the connection was accepted.
struct ConnectionClock {
    accepted: Instant,
    /// Requests being handled now.
    in_flight: AtomicU32,
    /// When the request being received started (its first byte), plus one; 0 while none
    /// is. A new connection counts as having started one.
    head_started: AtomicU64,
    /// When the connection last became idle (its last answer was handed to hyper).
    idle_since: AtomicU64,
}

impl ConnectionClock {
    fn new() -> ConnectionClock {
        ConnectionClock {
            accepted: Instant::now(),
            in_flight: AtomicU32::new(0),
            head_started: AtomicU64::new(1),
            idle_since: AtomicU64::new(0),
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.accepted.elapsed().as_millis()).unwrap_or(u64::MAX - 1)
    }

    /// Bytes arrived: if nothing is in flight, they begin the next request's head.
    fn received(&self) {
        if self.in_flight.load(Ordering::Acquire) == 0 {
            let _ = self.head_started.compare_exchange(
                0,
                self.now() + 1,
                Ordering::AcqRel,
                Ordering::Acquire,
            );
        }
    }

    fn request_started(&self) {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.head_started.store(0, Ordering::Release);
    }

    fn request_answered(&self) {
        self.idle_since.store(self.now(), Ordering::Release);
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
    }

    /// When the connection is overdue (ms since accepted), or `None` while a request is
    /// being handled.
    fn deadline(&self, d: Deadlines) -> Option<u64> {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return None;
        }
        let millis = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX / 2);
        match self.head_started.load(Ordering::Acquire) {
            0 => Some(self.idle_since.load(Ordering::Acquire) + millis(d.keep_alive)),
            started => Some(started - 1 + millis(d.header_read)),
        }
    }

    /// Resolves when the connection has outlived its current deadline.
    async fn expired(&self, d: Deadlines) {
        loop {
            let now = self.now();
            let wait = match self.deadline(d) {
                Some(deadline) if deadline <= now => return,
                Some(deadline) => deadline - now,
                // Handling a request: look again after a header timeout's worth.
                None => u64::try_from(d.header_read.as_millis()).unwrap_or(1000),
            };
            tokio::time::sleep(Duration::from_millis(wait.max(1))).await;
        }
    }
}

/// The accepted TCP stream, telling the clock when bytes arrive.
struct WatchedStream {
    stream: TcpStream,
    clock: Arc<ConnectionClock>,
}

impl AsyncRead for WatchedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.stream).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.clock.received();
        }
        polled
    }
}

impl AsyncWrite for WatchedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// The router for one connection: adds the peer address (`ConnectInfo`, as axum::serve
/// did) and tells the clock when each request starts and is answered.
#[derive(Clone)]
struct ConnectionService {
    router: Router,
    peer: SocketAddr,
    clock: Arc<ConnectionClock>,
}

/// Marks a request answered when dropped, so a request whose connection died mid-way is
/// not counted as in flight forever.
struct InFlight(Arc<ConnectionClock>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.request_answered();
    }
}

impl hyper::service::Service<hyper::Request<Incoming>> for ConnectionService {
    type Response = axum::response::Response;
    type Error = Infallible;
    type Future =
        Pin<Box<dyn Future<Output = Result<axum::response::Response, Infallible>> + Send>>;

    fn call(&self, mut req: hyper::Request<Incoming>) -> Self::Future {
        self.clock.request_started();
        let in_flight = InFlight(self.clock.clone());
        req.extensions_mut().insert(ConnectInfo(self.peer));
        // Router is always ready (its poll_ready is Ready), so calling it directly is safe.
        let answer = self.router.clone().call(req.map(axum::body::Body::new));
        Box::pin(async move {
            let res = answer.await;
            drop(in_flight);
            res
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: Deadlines = Deadlines {
        header_read: Duration::from_millis(1000),
        keep_alive: Duration::from_millis(5000),
    };

    #[test]
    fn a_new_connection_must_send_its_headers_in_time() {
        let c = ConnectionClock::new();
        assert_eq!(c.deadline(D), Some(1000));
    }

    #[test]
    fn no_deadline_while_a_request_is_handled_then_the_keep_alive_one() {
        let c = ConnectionClock::new();
        c.received();
        c.request_started();
        assert_eq!(c.deadline(D), None);
        // Bytes of a pipelined request while one is in flight start no head deadline.
        c.received();
        c.request_answered();
        let idle = c.idle_since.load(Ordering::Acquire);
        assert_eq!(c.deadline(D), Some(idle + 5000));
        // The next request's first byte starts the header deadline.
        c.received();
        let started = c.head_started.load(Ordering::Acquire) - 1;
        assert_eq!(c.deadline(D), Some(started + 1000));
    }
}
