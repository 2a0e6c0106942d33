//! Liveness and readiness. `/healthz` never touches Redis: it says whether this process
//! wants traffic (it turns 503 while draining). `/readyz` also checks Redis: that it
//! answers, and (with Sentinels) that what it talks to said `ROLE` master at the last
//! check, so a replica stuck on a demoted primary is not ready.

use ntex::web::{HttpResponse, types::State};
use serde_json::json;

use super::AppState;

pub async fn healthz(state: State<AppState>) -> HttpResponse {
    state.drain.health()
}

pub async fn readyz(state: State<AppState>) -> HttpResponse {
    let reason = if state.drain.is_draining() {
        Some(("draining", "shutting down"))
    } else if state.store.ping().await.is_err() {
        Some(("unavailable", "redis unavailable"))
    } else if !state.store.connector().on_primary() {
        Some(("unavailable", "redis is not the primary"))
    } else {
        None
    };
    match reason {
        None => HttpResponse::Ok().json(&json!({ "status": "ready" })),
        Some((status, reason)) => {
            HttpResponse::ServiceUnavailable().json(&json!({ "status": status, "reason": reason }))
        }
    }
}
