//! Signals and draining. Traefik keeps routing to a replica until it exits or fails its
//! health check, not when it receives SIGTERM; so on SIGTERM a server first turns
//! `/healthz` to 503 and keeps serving for `DRAIN_SECS`, long enough for the proxy to stop
//! sending it traffic, and only then stops accepting and finishes what is in flight.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use ntex::web::HttpResponse;
use serde::Serialize;
use tokio::signal::unix::{Signal, SignalKind, signal};

/// The body of `/healthz`.
#[derive(Serialize)]
#[cfg_attr(test, derive(ts_rs::TS), ts(rename = "HealthResponse"))]
pub struct Health {
    pub status: HealthStatus,
}

#[derive(Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    /// Wants traffic.
    Ok,
    /// Received SIGTERM: route elsewhere.
    Draining,
}

/// Whether this process has been asked to stop. Shared by every worker thread.
#[derive(Clone, Default)]
pub struct Drain(Arc<AtomicBool>);

impl Drain {
    pub fn start(&self) {
        self.0.store(true, Ordering::Release);
    }

    pub fn is_draining(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }

    /// The `/healthz` answer of every server: what Traefik's health check reads to stop
    /// routing here. It never touches Redis: it says whether this process wants traffic.
    pub fn health(&self) -> HttpResponse {
        if self.is_draining() {
            HttpResponse::ServiceUnavailable().json(&Health {
                status: HealthStatus::Draining,
            })
        } else {
            HttpResponse::Ok().json(&Health {
                status: HealthStatus::Ok,
            })
        }
    }

    /// The flag itself, for the fleet heartbeat.
    pub fn flag(&self) -> Arc<AtomicBool> {
        self.0.clone()
    }
}

/// SIGTERM and SIGINT, caught from the moment this is made. A server makes it before it
/// says it is listening (and the worker before it says it started): a handler installed
/// only when first awaited left a moment in which a stop signal killed the process
/// outright, with no drain.
pub struct Signals {
    term: Signal,
    int: Signal,
}

impl Signals {
    pub fn catch() -> io::Result<Self> {
        Ok(Self {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    /// Resolves on the next SIGTERM or SIGINT and names it.
    pub async fn next(&mut self) -> &'static str {
        tokio::select! {
            _ = self.term.recv() => "SIGTERM",
            _ = self.int.recv() => "SIGINT",
        }
    }

    /// The drain phase: waits `period`, or less if a second signal asks to hurry.
    pub async fn drain_period(&mut self, period: Duration) {
        tokio::select! {
            () = tokio::time::sleep(period) => {}
            sig = self.next() => tracing::warn!(signal = sig, "second signal: skipping the rest of the drain"),
        }
    }
}
