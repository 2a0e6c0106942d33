//! Jobs: the seed's `GET /enqueue?job=NAME`, a JSON `POST /jobs` (idempotent when the
//! client chooses the id), and the status routes. The worker side is [`crate::jobs`].

use ntex::web::{HttpRequest, HttpResponse, types::Payload, types::State};
use serde::{Deserialize, Serialize};

use super::params::{self, Query};
use super::{AppState, ok};
use crate::error::ApiError;
use crate::jobs::queue::{self, Enqueued};
use crate::jobs::{Job, Lengths, MAX_ID, MAX_NAME, new_id, valid_id};

/// The body of `POST /jobs`. Both fields optional here, so a missing name gets our own
/// error sentence rather than serde's.
#[derive(Deserialize)]
struct NewJob {
    name: Option<String>,
    id: Option<String>,
}

pub async fn enqueue(req: HttpRequest, state: State<AppState>) -> Result<HttpResponse, ApiError> {
    let query = Query::parse(req.query_string())?;
    let name = params::required(query.get("job"), "job", MAX_NAME)?;
    submit(&state, &new_id(), name).await
}

pub async fn create(
    req: HttpRequest,
    state: State<AppState>,
    body: Payload,
) -> Result<HttpResponse, ApiError> {
    let body = params::read_body(&req, body, "body").await?;
    let new: NewJob = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request(format!(
            "body must be a JSON object like {{\"name\": \"...\"}} (error at line {}, column {})",
            e.line(),
            e.column()
        ))
    })?;
    let name = params::required(new.name.as_deref(), "name", MAX_NAME)?;
    let id = match new.id {
        Some(id) => checked_id(&id)?.to_owned(),
        None => new_id(),
    };
    submit(&state, &id, name).await
}

/// The answer of `GET /enqueue` and `POST /jobs`.
#[derive(Serialize)]
#[cfg_attr(test, derive(ts_rs::TS), ts(rename = "EnqueueResponse"))]
pub(super) struct Submitted<'a> {
    /// The job's name.
    enqueued: &'a str,
    id: &'a str,
    queue_length: u64,
    served_by: &'a str,
    /// The job that already had this id, when nothing was queued.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    job: Option<&'a Job>,
}

/// The answer of `GET /jobs`: the most recent jobs and where all the others are.
#[derive(Serialize)]
#[cfg_attr(test, derive(ts_rs::TS), ts(rename = "JobsResponse"))]
pub(super) struct Overview<'a> {
    jobs: Vec<Job>,
    #[serde(flatten)]
    #[cfg_attr(test, ts(flatten))]
    lengths: Lengths,
    served_by: &'a str,
}

/// 202 with the new job, or 200 with the existing one when the id is taken: a client
/// retrying a request it is unsure about never queues a duplicate.
async fn submit(state: &AppState, id: &str, name: &str) -> Result<HttpResponse, ApiError> {
    let served_by = state.instance();
    Ok(match queue::enqueue(&state.store, id, name).await? {
        Enqueued::New { queue_length } => HttpResponse::Accepted().json(&Submitted {
            enqueued: name,
            id,
            queue_length,
            served_by,
            job: None,
        }),
        Enqueued::Existing { queue_length, job } => ok(&Submitted {
            enqueued: &job.name,
            id,
            queue_length,
            served_by,
            job: Some(&job),
        }),
    })
}

pub async fn show(req: HttpRequest, state: State<AppState>) -> Result<HttpResponse, ApiError> {
    let id = checked_id(req.match_info().get("id").unwrap_or(""))?;
    match queue::job(&state.store, id).await? {
        Some(job) => Ok(ok(&job)),
        None => Err(ApiError::NotFound("job not found".into())),
    }
}

pub async fn list(state: State<AppState>) -> Result<HttpResponse, ApiError> {
    let (jobs, lengths) = queue::overview(&state.store).await?;
    Ok(ok(&Overview {
        jobs,
        lengths,
        served_by: state.instance(),
    }))
}

fn checked_id(id: &str) -> Result<&str, ApiError> {
    if valid_id(id) {
        Ok(id)
    } else {
        Err(ApiError::bad_request(format!(
            "id must be 1 to {MAX_ID} characters of A-Z, a-z, 0-9, '-' and '_'"
        )))
    }
}
