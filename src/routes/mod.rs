//! The HTTP API of `scaleout app`, one file per feature. Paths are as the app sees them;
//! Traefik strips the `/api` prefix the browser uses.

#[cfg(test)]
mod contract;
mod fleet;
mod health;
mod jobs;
mod kv;
mod metrics;
mod params;
mod redis;
mod session;

use std::sync::Arc;

use ntex::web::{self, DefaultError, HttpResponse, ServiceConfig, WebServiceFactory};

use crate::config::Settings;
use crate::error::ApiError;
use crate::metrics::{Metrics, RouteLabel};
use crate::shutdown::Drain;
use crate::store::Store;

pub use session::COOKIE;

/// What every handler can reach. One per HTTP worker thread (each has its own Redis
/// connection); the settings, metrics and drain flag are shared by all of them.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub settings: Arc<Settings>,
    pub metrics: Arc<Metrics>,
    pub drain: Drain,
}

impl AppState {
    /// The name every response reports as `served_by`.
    pub fn instance(&self) -> &str {
        &self.settings.instance_name
    }
}

/// Registers every route.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(resource("/", [web::get().to(session::index)]))
        .service(resource("/healthz", [web::get().to(health::healthz)]))
        .service(resource("/readyz", [web::get().to(health::readyz)]))
        .service(resource("/set", [web::get().to(kv::set)]))
        .service(resource("/get", [web::get().to(kv::get)]))
        .service(resource(
            "/kv/{key}",
            [web::get().to(kv::get_path), web::put().to(kv::put_path)],
        ))
        .service(resource("/instances", [web::get().to(fleet::instances)]))
        .service(resource("/enqueue", [web::get().to(jobs::enqueue)]))
        .service(resource(
            "/jobs",
            [web::get().to(jobs::list), web::post().to(jobs::create)],
        ))
        .service(resource("/jobs/{id}", [web::get().to(jobs::show)]))
        .service(resource("/redis", [web::get().to(redis::tier)]))
        .service(resource("/metrics", [web::get().to(metrics::metrics)]))
        .service(resource("/metrics/fleet", [web::get().to(metrics::fleet)]));
}

/// One path and its routes. It answers 405 (as JSON) for methods it lacks, and marks each
/// request it takes with its pattern ([`RouteLabel`], a guard): the label of the request
/// metrics, so the router is the one list of routes and metrics cannot name another.
fn resource<const N: usize>(
    path: &'static str,
    routes: [web::Route<DefaultError>; N],
) -> impl WebServiceFactory<DefaultError> {
    web::resource(path)
        .route(routes)
        .default_service(web::to(method_not_allowed))
        .guard(RouteLabel(path))
}

pub async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound("no such route".into()))
}

async fn method_not_allowed() -> Result<HttpResponse, ApiError> {
    Err(ApiError::MethodNotAllowed)
}

/// A 200 JSON response.
fn ok(body: &impl serde::Serialize) -> HttpResponse {
    HttpResponse::Ok().json(body)
}
