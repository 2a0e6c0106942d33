//! Shared key/value: the seed's `/set` and `/get`, and a REST form `PUT/GET /kv/{key}`.
//! Any replica answers the same, because the data lives in Redis.

use ntex::web::{HttpRequest, HttpResponse, types::Payload, types::State};
use serde::Serialize;

use super::params::{self, MAX_KEY, Query};
use super::{AppState, ok};
use crate::error::ApiError;

#[derive(Serialize)]
struct Entry<'a> {
    key: &'a str,
    value: &'a str,
    served_by: &'a str,
}

pub async fn set(req: HttpRequest, state: State<AppState>) -> Result<HttpResponse, ApiError> {
    let query = Query::parse(req.query_string())?;
    let key = params::required(query.get("key"), "key", MAX_KEY)?;
    let value = query
        .get("value")
        .ok_or_else(|| ApiError::bad_request("missing value"))?;
    store(&state, key, params::value(value)?).await
}

pub async fn get(req: HttpRequest, state: State<AppState>) -> Result<HttpResponse, ApiError> {
    let query = Query::parse(req.query_string())?;
    let key = params::required(query.get("key"), "key", MAX_KEY)?;
    load(&state, key).await
}

pub async fn get_path(req: HttpRequest, state: State<AppState>) -> Result<HttpResponse, ApiError> {
    let key = path_key(&req)?;
    load(&state, &key).await
}

pub async fn put_path(
    req: HttpRequest,
    state: State<AppState>,
    body: Payload,
) -> Result<HttpResponse, ApiError> {
    let key = path_key(&req)?;
    let body = params::read_body(&req, body, "value").await?;
    let value = std::str::from_utf8(&body)
        .map_err(|_| ApiError::bad_request("value is not valid UTF-8"))?;
    store(&state, &key, params::value(value)?).await
}

async fn store(state: &AppState, key: &str, value: &str) -> Result<HttpResponse, ApiError> {
    state.store.kv_set(key, value).await?;
    Ok(ok(&Entry {
        key,
        value,
        served_by: state.instance(),
    }))
}

async fn load(state: &AppState, key: &str) -> Result<HttpResponse, ApiError> {
    match state.store.kv_get(key).await? {
        Some(value) => Ok(ok(&Entry {
            key,
            value: &value,
            served_by: state.instance(),
        })),
        None => Err(ApiError::NotFound("key not found".into())),
    }
}

/// The `{key}` path segment, checked like a query key. ntex's router has already
/// percent-decoded it (a segment that does not decode to UTF-8 matches no route), so it
/// must not be decoded again: `a%2526b` is the key `a%26b`, not `a&b`. A `+` in a path is
/// a plus, not a space (that form rule holds for query strings only).
fn path_key(req: &HttpRequest) -> Result<String, ApiError> {
    params::required(req.match_info().get("key"), "key", MAX_KEY).map(str::to_owned)
}
