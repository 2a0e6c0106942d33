//! Query-string parsing that rejects what it cannot read (bad percent-encoding, non-UTF-8)
//! instead of silently replacing it, and the shared checks on user-supplied keys.

use std::borrow::Cow;

use ntex::http::header;
use ntex::util::BytesMut;
use ntex::web::{HttpRequest, types::Payload};
use percent_encoding::percent_decode_str;

use crate::error::ApiError;

/// Longest key accepted, in bytes.
pub const MAX_KEY: usize = 256;
/// Largest value accepted in a body, in bytes. (A `/set` URL cannot carry that much: the
/// HTTP parser refuses a URI over 64 KiB with 400 before the app sees it.)
pub const MAX_VALUE: usize = 64 * 1024;

pub struct Query(Vec<(String, String)>);

impl Query {
    pub fn parse(raw: &str) -> Result<Self, ApiError> {
        let mut pairs = Vec::new();
        for part in raw.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = part.split_once('=').unwrap_or((part, ""));
            pairs.push((decode(k)?, decode(v)?));
        }
        Ok(Self(pairs))
    }

    /// The first value of `name`, if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

fn decode(raw: &str) -> Result<String, ApiError> {
    let spaced: Cow<str> = if raw.contains('+') {
        raw.replace('+', " ").into()
    } else {
        raw.into()
    };
    percent_decode_str(&spaced)
        .decode_utf8()
        .map(Cow::into_owned)
        .map_err(|_| ApiError::bad_request("query string is not valid UTF-8"))
}

/// A non-empty `name` of at most `max` bytes; `what` names it in the error.
pub fn required<'q>(value: Option<&'q str>, what: &str, max: usize) -> Result<&'q str, ApiError> {
    match value {
        None | Some("") => Err(ApiError::bad_request(format!("missing {what}"))),
        Some(v) if v.len() > max => Err(ApiError::bad_request(format!(
            "{what} is longer than {max} bytes"
        ))),
        Some(v) if v.chars().any(char::is_control) => Err(ApiError::bad_request(format!(
            "{what} contains control characters"
        ))),
        Some(v) => Ok(v),
    }
}

/// Reads a request body (`what`, for the error) of at most [`MAX_VALUE`] bytes; a larger one is refused with 413
/// as soon as it is announced or seen, without buffering the rest.
pub async fn read_body(
    req: &HttpRequest,
    mut body: Payload,
    what: &str,
) -> Result<BytesMut, ApiError> {
    let too_large = || ApiError::TooLarge(format!("{what} is larger than {MAX_VALUE} bytes"));
    let announced = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if announced.is_some_and(|n| n > MAX_VALUE) {
        return Err(too_large());
    }
    let mut buf = BytesMut::new();
    while let Some(chunk) = body.recv().await {
        let chunk = chunk.map_err(|_| ApiError::bad_request("could not read the request body"))?;
        if buf.len() + chunk.len() > MAX_VALUE {
            return Err(too_large());
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_and_rejects() {
        let q = Query::parse("key=a%20b&value=x+y&key=second&flag").unwrap();
        assert_eq!(q.get("key"), Some("a b"));
        assert_eq!(q.get("value"), Some("x y"));
        assert_eq!(q.get("flag"), Some(""));
        assert!(Query::parse("key=%FF").is_err());
        assert!(required(Some(""), "key", 4).is_err());
        assert!(required(Some("12345"), "key", 4).is_err());
        assert!(required(Some("a\nb"), "key", 4).is_err());
    }
}
