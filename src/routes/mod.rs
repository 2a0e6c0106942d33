//! The HTTP API of `scaleout app`, one file per feature. Paths are as the app sees them;
//! Traefik strips the `/api` prefix the browser uses.

mod fleet;
mod health;
mod jobs;
mod kv;
mod metrics;
mod params;
mod redis;
mod session;

use std::sync::Arc;

use ntex::web::{self, HttpResponse, ServiceConfig};

use crate::config::Settings;
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::shutdown::Drain;
use crate::store::Store;

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

/// Registers every route. Each resource answers 405 (as JSON) for methods it lacks.
pub fn configure(cfg: &mut ServiceConfig) {
    let get = |path: &str, route: web::Route| {
        web::resource(path)
            .route(route)
            .default_service(web::to(method_not_allowed))
    };
    cfg.service(get("/", web::get().to(session::index)))
        .service(get("/healthz", web::get().to(health::healthz)))
        .service(get("/readyz", web::get().to(health::readyz)))
        .service(get("/set", web::get().to(kv::set)))
        .service(get("/get", web::get().to(kv::get)))
        .service(
            web::resource("/kv/{key}")
                .route(web::get().to(kv::get_path))
                .route(web::put().to(kv::put_path))
                .default_service(web::to(method_not_allowed)),
        )
        .service(get("/instances", web::get().to(fleet::instances)))
        .service(get("/enqueue", web::get().to(jobs::enqueue)))
        .service(
            web::resource("/jobs")
                .route(web::get().to(jobs::list))
                .route(web::post().to(jobs::create))
                .default_service(web::to(method_not_allowed)),
        )
        .service(get("/jobs/{id}", web::get().to(jobs::show)))
        .service(get("/redis", web::get().to(redis::tier)))
        .service(get("/metrics", web::get().to(metrics::metrics)))
        .service(get("/metrics/fleet", web::get().to(metrics::fleet)));
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
