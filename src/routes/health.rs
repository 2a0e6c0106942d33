//! Liveness and readiness. `/healthz` never touches Redis: it says whether this process
//! wants traffic (it turns 503 while draining). `/readyz` also checks Redis: that it
//! answers, and (with Sentinels) that what it talks to said `ROLE` master at the last
//! check, so a replica stuck on a demoted primary is not ready.

use ntex::web::{HttpResponse, types::State};
use serde::Serialize;

use super::AppState;

/// The body of `/readyz`.
#[derive(Serialize)]
#[cfg_attr(test, derive(ts_rs::TS), ts(rename = "ReadyResponse"))]
pub(super) struct Readiness {
    status: ReadyStatus,
    /// Why not ready, in words.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    reason: Option<&'static str>,
}

#[derive(Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "lowercase")]
pub(super) enum ReadyStatus {
    Ready,
    /// Received SIGTERM.
    Draining,
    /// Redis does not answer.
    Unavailable,
}

pub async fn healthz(state: State<AppState>) -> HttpResponse {
    state.drain.health()
}

pub async fn readyz(state: State<AppState>) -> HttpResponse {
    let (status, reason) = if state.drain.is_draining() {
        (ReadyStatus::Draining, "shutting down")
    } else if state.store.ping().await.is_err() {
        (ReadyStatus::Unavailable, "redis unavailable")
    } else if !state.store.connector().on_primary() {
        (ReadyStatus::Unavailable, "redis is not the primary")
    } else {
        return HttpResponse::Ok().json(&Readiness {
            status: ReadyStatus::Ready,
            reason: None,
        });
    };
    HttpResponse::ServiceUnavailable().json(&Readiness {
        status,
        reason: Some(reason),
    })
}
