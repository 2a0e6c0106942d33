//! Prometheus text, the one format that is not JSON, because Prometheus reads only this.
//! Two routes, so that adding up series over replicas gives the truth:
//!
//! - `GET /metrics`: this process only (requests, latency, Redis errors). Scrape every
//!   replica; `sum()` over them is the fleet's total.
//! - `GET /metrics/fleet`: job counters and queue lengths, read from Redis, so every
//!   replica would report the same numbers. Scrape it once (through Traefik), not per
//!   replica; the `scaleout_fleet_` prefix marks these series.

use std::sync::atomic::Ordering;

use ntex::web::{HttpResponse, types::State};

use super::AppState;
use crate::error::ApiError;
use crate::jobs::queue;
use crate::metrics::unlabelled;

pub async fn metrics(state: State<AppState>) -> HttpResponse {
    let mut out = String::with_capacity(4096);
    state.metrics.render(&mut out);
    unlabelled(
        &mut out,
        "scaleout_draining",
        "gauge",
        "1 once this replica received SIGTERM.",
        u8::from(state.drain.is_draining()),
    );
    unlabelled(
        &mut out,
        "scaleout_requests_handled_total",
        "counter",
        "Requests served by this replica, all routes.",
        state.metrics.handled.load(Ordering::Relaxed),
    );
    prometheus_text(out)
}

/// Fleet-wide job figures. Without Redis there are none to give: the usual JSON 503.
pub async fn fleet(state: State<AppState>) -> Result<HttpResponse, ApiError> {
    let mut out = String::with_capacity(1024);
    queue::stats(&state.store).await?.render(&mut out);
    Ok(prometheus_text(out))
}

fn prometheus_text(body: String) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(body)
}
