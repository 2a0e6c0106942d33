//! `GET /metrics`: Prometheus text. The one route that is not JSON, because Prometheus
//! reads this format only.

use std::sync::atomic::Ordering;

use ntex::web::{HttpResponse, types::State};

use super::AppState;
use crate::jobs::queue;
use crate::metrics::gauge;

pub async fn metrics(state: State<AppState>) -> HttpResponse {
    let mut out = String::with_capacity(4096);
    state.metrics.render(&mut out);
    gauge(
        &mut out,
        "scaleout_draining",
        "gauge",
        "1 once this replica received SIGTERM.",
        u8::from(state.drain.is_draining()),
    );
    gauge(
        &mut out,
        "scaleout_requests_handled_total",
        "counter",
        "Requests served by this replica, all routes.",
        state.metrics.handled.load(Ordering::Relaxed),
    );
    // Fleet-wide job figures live in Redis; without it, the local metrics still answer.
    if let Ok(stats) = queue::stats(&state.store).await {
        stats.render(&mut out);
    }
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(out)
}
