//! Prometheus metrics: request counts and latency histograms per route, and database pool
//! figures. The recorder belongs to this server's state, not to a process-wide global, so
//! several servers in one process (tests) keep separate figures.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};

pub struct Metrics {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
    /// The handles of each route's series, registered once: a request then costs two
    /// atomic updates, not label strings and registry lookups of its own.
    series: RwLock<HashMap<Box<str>, Vec<RouteSeries>>>,
}

/// One route's counter and histogram for one method and status.
struct RouteSeries {
    method: Method,
    status: u16,
    requests: metrics::Counter,
    duration: metrics::Histogram,
}

/// How often pending latency samples are folded into their buckets: at 30,000 requests a
/// second, about 3 MB wait in between.
pub const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// Latency buckets in seconds, fine-grained below 10 ms where token endpoints live.
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

impl Metrics {
    pub fn new() -> Metrics {
        // Only an empty bucket list is refused, and ours is not empty.
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Full("http_request_duration_seconds".into()),
                LATENCY_BUCKETS,
            )
            .unwrap_or_else(|_| PrometheusBuilder::new())
            .build_recorder();
        let handle = recorder.handle();
        Metrics {
            recorder,
            handle,
            series: RwLock::default(),
        }
    }

    /// Counts a request of `method` to `route` that answered `status` after `seconds`.
    fn record(&self, method: &Method, route: &str, status: u16, seconds: f64) {
        let find = |series: &HashMap<Box<str>, Vec<RouteSeries>>| {
            series
                .get(route)
                .and_then(|list| {
                    list.iter()
                        .find(|s| s.status == status && s.method == method)
                })
                .map(|known| {
                    known.requests.increment(1);
                    known.duration.record(seconds);
                })
        };
        // Readers share the lock; only a series' first request takes it alone.
        if find(&self.series.read().unwrap_or_else(|e| e.into_inner())).is_some() {
            return;
        }
        let mut series = self.series.write().unwrap_or_else(|e| e.into_inner());
        if find(&series).is_some() {
            return;
        }
        let (method_label, route_label) = (method.as_str().to_owned(), route.to_owned());
        let (requests, duration) = self.with(|| {
            (
                metrics::counter!("http_requests_total", "method" => method_label.clone(), "route" => route_label.clone(), "status" => status.to_string()),
                metrics::histogram!("http_request_duration_seconds", "method" => method_label, "route" => route_label),
            )
        });
        requests.increment(1);
        duration.record(seconds);
        series.entry(route.into()).or_default().push(RouteSeries {
            method: method.clone(),
            status,
            requests,
            duration,
        });
    }

    /// Folds the latency samples recorded since the last call into their histogram buckets.
    /// The recorder keeps every sample until then (a scrape of `/-/metrics` does it too):
    /// without a scrape, memory grew by about 20 bytes a request (issue 15's ten-minute W7:
    /// 114 to 476 MB).
    pub fn run_upkeep(&self) {
        self.handle.run_upkeep();
    }

    /// Runs [`Metrics::run_upkeep`] every [`UPKEEP_INTERVAL`], for as long as the server runs.
    pub async fn upkeep_forever(self: Arc<Self>) {
        self.upkeep_every(UPKEEP_INTERVAL).await;
    }

    async fn upkeep_every(self: Arc<Self>, period: Duration) {
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tick.tick().await;
            self.run_upkeep();
        }
    }

    /// Runs `f` with this server's recorder as the `metrics` macros' target.
    pub fn with<T>(&self, f: impl FnOnce() -> T) -> T {
        metrics::with_local_recorder(&self.recorder, f)
    }

    /// Everything recorded, in the Prometheus text format.
    pub fn render(&self) -> String {
        self.handle.render()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Route middleware (installed with `route_layer`, so the matched route is known).
pub async fn track(State(metrics): State<Arc<Metrics>>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    // Extension methods are counted together: a client cannot make new series at will.
    let method = match *req.method() {
        Method::GET
        | Method::POST
        | Method::PUT
        | Method::DELETE
        | Method::PATCH
        | Method::HEAD
        | Method::OPTIONS => req.method().clone(),
        _ => Method::from_bytes(b"OTHER").unwrap_or_default(),
    };
    let route = req.extensions().get::<MatchedPath>().cloned();
    let res = next.run(req).await;
    let route = route.as_ref().map_or("unmatched", MatchedPath::as_str);
    metrics.record(
        &method,
        route,
        res.status().as_u16(),
        start.elapsed().as_secs_f64(),
    );
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Net bytes this thread has allocated, counted by [`counting::Counting`].
    fn net_bytes() -> isize {
        counting::NET.with(std::cell::Cell::get)
    }

    #[tokio::test]
    async fn the_upkeep_task_frees_the_pending_latency_samples() {
        let metrics = Arc::new(Metrics::new());
        // The route's series, registered before measuring.
        metrics.record(&Method::GET, "/api/v4/user", 200, 0.001);
        metrics.run_upkeep();
        let before = net_bytes();
        for _ in 0..100_000 {
            metrics.record(&Method::GET, "/api/v4/user", 200, 0.001);
        }
        let pending = net_bytes() - before;
        assert!(pending > 500_000, "100,000 samples held {pending} bytes");
        // The task runs on this (current-thread) runtime, so its frees count here. The
        // drained blocks are freed once later requests move crossbeam's epoch on, as traffic
        // does on a server: 1,000 more requests, and another upkeep.
        let task = tokio::spawn(metrics.clone().upkeep_every(Duration::from_millis(10)));
        tokio::time::sleep(Duration::from_millis(50)).await;
        for _ in 0..1_000 {
            metrics.record(&Method::GET, "/api/v4/user", 200, 0.001);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        task.abort();
        let kept = net_bytes() - before;
        assert!(kept < 100_000, "{kept} bytes still held after the upkeep");
        assert!(
            metrics
                .render()
                .contains("http_request_duration_seconds_count")
        );
    }

    /// The test binary's allocator: the system's, counting each thread's net allocation.
    #[allow(unsafe_code, reason = "a global allocator is an unsafe trait")]
    mod counting {
        use std::alloc::{GlobalAlloc, Layout, System};
        use std::cell::Cell;

        thread_local! {
            pub(super) static NET: Cell<isize> = const { Cell::new(0) };
        }

        fn add(bytes: usize, sign: isize) {
            let bytes = isize::try_from(bytes).unwrap_or(isize::MAX);
            let _ = NET.try_with(|net| net.set(net.get() + sign * bytes));
        }

        pub(super) struct Counting;

        // SAFETY: every call is forwarded to `System` unchanged; the counter is a
        // thread-local `Cell` with no destructor, which does not allocate.
        unsafe impl GlobalAlloc for Counting {
            unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
                add(layout.size(), 1);
                // SAFETY: the caller's contract is `System.alloc`'s.
                unsafe { System.alloc(layout) }
            }

            unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
                add(layout.size(), -1);
                // SAFETY: the caller's contract is `System.dealloc`'s.
                unsafe { System.dealloc(ptr, layout) }
            }

            unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
                add(layout.size(), -1);
                add(new_size, 1);
                // SAFETY: the caller's contract is `System.realloc`'s.
                unsafe { System.realloc(ptr, layout, new_size) }
            }
        }

        #[global_allocator]
        static COUNTING: Counting = Counting;
    }
}
