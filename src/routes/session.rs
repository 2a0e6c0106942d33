//! `GET /`: the seed's demo. The `sid` cookie names a session whose counter lives in
//! Redis, so whichever replica answers, the count goes on.

use cookie::{Cookie, SameSite};
use ntex::http::header;
use ntex::web::{HttpRequest, HttpResponse, types::State};
use serde::Serialize;
use uuid::Uuid;

/// The session cookie's name; `scaleout load` and the tests send it back.
pub const COOKIE: &str = "sid";

use super::AppState;
use crate::error::ApiError;

/// The answer of `GET /`.
#[derive(Serialize)]
#[cfg_attr(test, derive(ts_rs::TS), ts(rename = "SessionResponse"))]
pub(super) struct Visit<'a> {
    served_by: &'a str,
    session_id: Uuid,
    session_count: i64,
    global_count: i64,
    new_session: bool,
}

pub async fn index(req: HttpRequest, state: State<AppState>) -> Result<HttpResponse, ApiError> {
    let (sid, new_session) = match session_cookie(&req) {
        Some(sid) => (sid, false),
        None => (Uuid::new_v4(), true),
    };
    let ttl = state.settings.session_ttl_secs;
    let (session_count, global_count) = state.store.hit(&sid, ttl).await?;
    let mut res = HttpResponse::Ok();
    res.header(header::CACHE_CONTROL, "no-store");
    // Sent on every visit, not only the first: the Redis TTL slides with each hit, so the
    // cookie's Max-Age must slide too, or an active user loses it TTL after the first visit.
    res.cookie(
        Cookie::build((COOKIE, sid.to_string()))
            .path("/")
            .http_only(true)
            .same_site(SameSite::Lax)
            .max_age(cookie::time::Duration::seconds(ttl as i64)),
    );
    Ok(res.json(&Visit {
        served_by: state.instance(),
        session_id: sid,
        session_count,
        global_count,
        new_session,
    }))
}

/// The first [`COOKIE`] that holds a UUID. Read leniently, by hand: one malformed cookie
/// from another app on the same host, or a stale malformed `sid` set for another path or
/// domain (the browser then sends several), must not cost the user their session.
fn session_cookie(req: &HttpRequest) -> Option<Uuid> {
    req.headers()
        .get_all(header::COOKIE)
        .filter_map(|h| h.to_str().ok())
        .flat_map(|h| h.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(|(name, _)| *name == COOKIE)
        .find_map(|(_, value)| Uuid::try_parse(value.trim_matches('"')).ok())
}
