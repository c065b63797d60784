//! Prometheus metrics: request counts and latency histograms per route, and database pool
//! figures. The recorder belongs to this server's state, not to a process-wide global, so
//! several servers in one process (tests) keep separate figures.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Instant;

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
