//! Process-local request metrics and their Prometheus text rendering.
//!
//! Hand-written rather than a metrics crate: a handful of atomics and one small map cover
//! what `/metrics` needs, and the [`Track`] middleware records every response, including
//! the 404s and 405s that never reach a handler.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use ntex::http::RequestHead;
use ntex::service::{Middleware, Service, ServiceCtx, cfg::SharedCfg};
use ntex::web::guard::Guard;
use ntex::web::{WebRequest, WebResponse};
use std::sync::Arc;

/// The background loops that talk to Redis, as `task` labels in `/metrics`: the store
/// counts their failures with it (`Store::background`). Label sets belong to the metrics
/// they label, below the store that records into them.
#[derive(Debug, Clone, Copy)]
pub enum Background {
    KeepWarm,
    Heartbeat,
}

impl Background {
    pub const ALL: [Self; 2] = [Self::KeepWarm, Self::Heartbeat];

    pub fn label(self) -> &'static str {
        match self {
            Self::KeepWarm => "keep_warm",
            Self::Heartbeat => "heartbeat",
        }
    }
}

/// The kinds of a failed Redis call (the store's `RedisFailure::kind`), as `kind` labels
/// in `/metrics`. Here rather than in the store for the same reason as [`Background`].
#[derive(Debug, Clone, Copy)]
pub enum FailureKind {
    Unavailable,
    OutOfMemory,
    Other,
}

impl FailureKind {
    pub const ALL: [Self; 3] = [Self::Unavailable, Self::OutOfMemory, Self::Other];

    pub fn label(self) -> &'static str {
        match self {
            Self::Unavailable => "unavailable",
            Self::OutOfMemory => "out_of_memory",
            Self::Other => "other",
        }
    }
}

/// Upper bounds of the latency histogram, in seconds.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

#[derive(Default)]
pub struct Metrics {
    /// Requests by (route pattern, status).
    requests: Mutex<BTreeMap<(&'static str, u16), u64>>,
    /// Cumulative counts per bucket, plus one for +Inf.
    latency: [AtomicU64; BUCKETS.len() + 1],
    latency_sum_us: AtomicU64,
    /// Requests served, all routes: what `/instances` reports as `handled`.
    pub handled: Arc<AtomicU64>,
    /// Failed Redis calls made for requests, by [`FailureKind`].
    redis_errors: [AtomicU64; FailureKind::ALL.len()],
    /// Failed calls of the background loops, by [`Background`] task: apart from the
    /// above, so an idle replica during an outage shows no request failures.
    background_failures: [AtomicU64; Background::ALL.len()],
    /// Writes answered 503 because fewer than `REDIS_WAIT_REPLICAS` acknowledged them.
    not_replicated: AtomicU64,
}

impl Metrics {
    pub fn record(&self, route: &'static str, status: u16, seconds: f64) {
        *self
            .requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry((route, status))
            .or_default() += 1;
        for (i, bound) in BUCKETS.iter().enumerate() {
            if seconds <= *bound {
                self.latency[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.latency[BUCKETS.len()].fetch_add(1, Ordering::Relaxed);
        self.latency_sum_us
            .fetch_add((seconds * 1e6) as u64, Ordering::Relaxed);
        self.handled.fetch_add(1, Ordering::Relaxed);
    }

    pub fn redis_failed(&self, kind: FailureKind) {
        self.redis_errors[kind as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub fn not_replicated(&self) {
        self.not_replicated.fetch_add(1, Ordering::Relaxed);
    }

    pub fn background_failed(&self, task: Background) {
        self.background_failures[task as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Prometheus text exposition format, version 0.0.4.
    pub fn render(&self, out: &mut String) {
        out.push_str("# HELP scaleout_http_requests_total HTTP requests by route and status.\n");
        out.push_str("# TYPE scaleout_http_requests_total counter\n");
        let requests = self.requests.lock().unwrap_or_else(|e| e.into_inner());
        for ((route, status), n) in requests.iter() {
            let _ = writeln!(
                out,
                "scaleout_http_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}"
            );
        }
        drop(requests);
        out.push_str("# HELP scaleout_http_request_duration_seconds Time to answer a request.\n");
        out.push_str("# TYPE scaleout_http_request_duration_seconds histogram\n");
        for (i, bound) in BUCKETS.iter().enumerate() {
            let n = self.latency[i].load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "scaleout_http_request_duration_seconds_bucket{{le=\"{bound}\"}} {n}"
            );
        }
        let count = self.latency[BUCKETS.len()].load(Ordering::Relaxed);
        let sum = self.latency_sum_us.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(
            out,
            "scaleout_http_request_duration_seconds_bucket{{le=\"+Inf\"}} {count}\n\
             scaleout_http_request_duration_seconds_sum {sum}\n\
             scaleout_http_request_duration_seconds_count {count}"
        );
        counters(
            out,
            "scaleout_redis_errors_total",
            "Redis calls made for requests that failed, by kind.",
            "kind",
            FailureKind::ALL
                .map(|kind| (kind.label(), &self.redis_errors[kind as usize]))
                .into_iter(),
        );
        counters(
            out,
            "scaleout_redis_background_failures_total",
            "Failed Redis calls of the keep-warm pings and heartbeats.",
            "task",
            Background::ALL
                .map(|task| (task.label(), &self.background_failures[task as usize]))
                .into_iter(),
        );
        unlabelled(
            out,
            "scaleout_redis_writes_not_replicated_total",
            "counter",
            "Writes answered 503 because fewer than REDIS_WAIT_REPLICAS replicas acknowledged them.",
            self.not_replicated.load(Ordering::Relaxed),
        );
    }
}

/// Writes one series with no labels, of the Prometheus type `kind` (a `counter` or a
/// `gauge`), with its HELP and TYPE lines.
pub fn unlabelled(
    out: &mut String,
    name: &str,
    kind: &str,
    help: &str,
    value: impl std::fmt::Display,
) {
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
    );
}

/// Writes a counter with one series per value of `label`.
fn counters<'a>(
    out: &mut String,
    name: &str,
    help: &str,
    label: &str,
    series: impl Iterator<Item = (&'a str, &'a AtomicU64)>,
) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
    for (value, n) in series {
        let n = n.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}{{{label}=\"{value}\"}} {n}");
    }
}

/// The pattern of the resource the router matched, which [`crate::routes`] attaches to
/// each request. A request that matched none is labelled `other`: a fixed label set, so a
/// scan of random paths cannot blow up the metric's cardinality.
#[derive(Clone, Copy)]
pub struct RouteLabel(pub &'static str);

/// A guard that always admits. The router asks a resource's guards only after its pattern
/// matched the path, so this runs for exactly the resource that takes the request, before
/// its routes and its 405, and marks the request there. (A resource filter or middleware
/// would do the same, but their service chain made the release binary 24 KiB larger.)
impl Guard for RouteLabel {
    fn check(&self, head: &RequestHead) -> bool {
        head.extensions_mut().insert(*self);
        true
    }
}

/// Middleware that times every request and records it in [`Metrics`].
pub struct Track(pub Arc<Metrics>);

impl<S> Middleware<S, SharedCfg> for Track {
    type Service = TrackService<S>;

    fn create(&self, service: S, _: SharedCfg) -> Self::Service {
        TrackService {
            service,
            metrics: self.0.clone(),
        }
    }
}

pub struct TrackService<S> {
    service: S,
    metrics: Arc<Metrics>,
}

impl<S, E> Service<WebRequest<E>> for TrackService<S>
where
    S: Service<WebRequest<E>, Response = WebResponse>,
{
    type Response = WebResponse;
    type Error = S::Error;

    ntex::forward_poll!(service);
    ntex::forward_ready!(service);
    ntex::forward_shutdown!(service);

    async fn call(
        &self,
        req: WebRequest<E>,
        ctx: ServiceCtx<'_, Self>,
    ) -> Result<Self::Response, Self::Error> {
        let start = Instant::now();
        let res = ctx.call(&self.service, req).await?;
        let route = res
            .request()
            .extensions()
            .get::<RouteLabel>()
            .map_or("other", |label| label.0);
        let status = res.status().as_u16();
        self.metrics
            .record(route, status, start.elapsed().as_secs_f64());
        Ok(res)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counts_and_buckets() {
        let m = Metrics::default();
        m.record("/", 200, 0.002);
        m.record("/", 200, 0.3);
        m.record("other", 404, 0.0001);
        let mut out = String::new();
        m.render(&mut out);
        assert!(out.contains("scaleout_http_requests_total{route=\"/\",status=\"200\"} 2"));
        assert!(out.contains("scaleout_http_requests_total{route=\"other\",status=\"404\"} 1"));
        assert!(out.contains("scaleout_http_request_duration_seconds_bucket{le=\"0.0025\"} 2"));
        assert!(out.contains("scaleout_http_request_duration_seconds_count 3"));
        assert_eq!(m.handled.load(Ordering::Relaxed), 3);
    }
}
