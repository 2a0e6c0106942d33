//! The HTTP boundary's one error type. Every variant maps to a status and renders as
//! `{"error": "<sentence>"}`, so clients never see a plain-text or empty error body.

use std::fmt;

use ntex::http::StatusCode;
use ntex::web::{DefaultError, HttpRequest, HttpResponse, WebResponseError};

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
    /// Redis did not answer in time, or refused: fast 503 so the caller can retry elsewhere.
    RedisUnavailable,
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
        }
    }
}

impl From<redis::RedisError> for ApiError {
    fn from(err: redis::RedisError) -> Self {
        // Debug, not warn: during an outage every request fails this way. The outage
        // itself is logged once by the heartbeat, and counted in /metrics.
        tracing::debug!(error = %err, "redis call failed");
        Self::RedisUnavailable
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
            Self::RedisUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn error_response(&self, _: &HttpRequest) -> HttpResponse {
        let mut res = HttpResponse::build(self.status_code());
        if matches!(self, Self::RedisUnavailable) {
            res.header("retry-after", "1");
        }
        res.json(&serde_json::json!({ "error": self.to_string() }))
    }
}
