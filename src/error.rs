//! The HTTP boundary's one error type. Every variant maps to a status and renders as
//! `{"error": "<sentence>"}`, so clients never see a plain-text or empty error body.

use std::fmt;

use ntex::http::StatusCode;
use ntex::web::{DefaultError, HttpRequest, HttpResponse, WebResponseError};
use serde::Serialize;

use crate::store::RedisFailure;

/// Every error body, of every server: one sentence for a human.
#[derive(Serialize)]
#[cfg_attr(test, derive(ts_rs::TS), ts(rename = "ErrorResponse"))]
pub struct ErrorBody<'a> {
    pub error: &'a str,
}

#[derive(Debug)]
pub enum ApiError {
    /// The request is malformed: a missing or invalid parameter.
    BadRequest(String),
    /// The thing asked for does not exist.
    NotFound(String),
    /// The path exists but not for this method.
    MethodNotAllowed,
    /// A body or value over its limit.
    TooLarge(String),
    /// A request body that stopped arriving (408): the connection is then closed.
    Timeout(String),
    /// Redis is unreachable, slow, or says it cannot serve now: a fast 503 with
    /// `Retry-After`, so the caller retries (Traefik may send it elsewhere).
    RedisUnavailable,
    /// Redis is full and refused a write: 503 with `Retry-After`, and a message that says
    /// so, because an operator has to act (raise `maxmemory`, free keys).
    RedisOutOfMemory,
    /// `REDIS_WAIT_REPLICAS` is set and fewer replicas acknowledged a write in time: it
    /// may be lost in a failover, so it is not confirmed. 503 with `Retry-After`.
    NotReplicated,
    /// A failure retrying cannot fix (a WRONGTYPE, a script error): 500. The details are
    /// in the error-level log line, not in the response.
    Internal,
}

impl ApiError {
    pub fn bad_request(msg: impl Into<String>) -> Self {
        Self::BadRequest(msg.into())
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadRequest(m) | Self::NotFound(m) | Self::TooLarge(m) | Self::Timeout(m) => {
                f.write_str(m)
            }
            Self::MethodNotAllowed => f.write_str("method not allowed"),
            Self::RedisUnavailable => f.write_str("redis unavailable"),
            Self::RedisOutOfMemory => {
                f.write_str("redis is out of memory: writes are refused until memory is freed")
            }
            Self::NotReplicated => f.write_str("write not replicated"),
            Self::Internal => f.write_str("internal error: a redis command failed (see the log)"),
        }
    }
}

/// The one place a Redis failure becomes an HTTP answer. Logging and counting happen
/// before, in [`crate::store::Store::failed`].
impl From<RedisFailure> for ApiError {
    fn from(failure: RedisFailure) -> Self {
        match failure {
            RedisFailure::Unavailable(_) => Self::RedisUnavailable,
            RedisFailure::OutOfMemory(_) => Self::RedisOutOfMemory,
            RedisFailure::Other(_) => Self::Internal,
            RedisFailure::NotReplicated { .. } => Self::NotReplicated,
        }
    }
}

impl WebResponseError<DefaultError> for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Timeout(_) => StatusCode::REQUEST_TIMEOUT,
            Self::RedisUnavailable | Self::RedisOutOfMemory | Self::NotReplicated => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self, _: &HttpRequest) -> HttpResponse {
        let mut res = HttpResponse::build(self.status_code());
        if matches!(
            self,
            Self::RedisUnavailable | Self::RedisOutOfMemory | Self::NotReplicated
        ) {
            res.header("retry-after", "1");
        }
        res.json(&ErrorBody {
            error: &self.to_string(),
        })
    }
}
