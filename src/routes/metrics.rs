//! `GET /metrics`: Prometheus text. The one route that is not JSON, because Prometheus
//! reads this format only.

use std::sync::atomic::Ordering;

use ntex::web::{HttpResponse, types::State};

use super::AppState;
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
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(out)
}
