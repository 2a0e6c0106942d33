//! Query-string parsing that rejects what it cannot read (bad percent-encoding, non-UTF-8)
//! instead of silently replacing it, and the shared checks on user-supplied keys.

use std::borrow::Cow;
use std::time::{Duration, Instant};

use ntex::http::header;
use ntex::util::BytesMut;
use ntex::web::{HttpRequest, types::Payload};
use percent_encoding::percent_decode_str;

use crate::error::ApiError;

/// Longest key accepted, in bytes.
pub const MAX_KEY: usize = 256;
/// Largest value accepted in a body, in bytes. (A `/set` URL cannot carry that much: a
/// request head over 32 KiB is refused with 431 before the app sees it, see `startup`.)
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

/// A value as stored: any text, but no control characters other than tab, newline and
/// carriage return (a multi-line value is fine; a NUL or an escape sequence is not).
pub fn value(value: &str) -> Result<&str, ApiError> {
    if value
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
    {
        return Err(ApiError::bad_request("value contains control characters"));
    }
    Ok(value)
}

/// A request body that sends nothing for this long is given up with 408.
const BODY_STALL: Duration = Duration::from_secs(2);
/// A whole body gets this long: the largest accepted, 64 KiB, needs only ~2.2 KB/s.
const BODY_DEADLINE: Duration = Duration::from_secs(30);

/// Reads a request body (`what`, for the error) of at most [`MAX_VALUE`] bytes; a larger one
/// is refused with 413 as soon as it is announced or seen, without buffering the rest.
/// A body that stalls for [`BODY_STALL`], or is still unfinished after [`BODY_DEADLINE`],
/// is answered 408; ntex then closes the connection, since the rest of the body was never
/// read. (ntex's own payload read rate was tried first: it counts buffered bytes, not
/// received ones, and cut off a steady 8 KB/s upload after 4 s.)
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
    let deadline = Instant::now() + BODY_DEADLINE;
    let mut buf = BytesMut::new();
    loop {
        let wait = BODY_STALL.min(deadline.saturating_duration_since(Instant::now()));
        let chunk = match tokio::time::timeout(wait, body.recv()).await {
            Ok(Some(chunk)) => chunk,
            Ok(None) => return Ok(buf),
            Err(_) => {
                return Err(ApiError::Timeout(format!(
                    "{what} stopped arriving before it was complete"
                )));
            }
        };
        let chunk = chunk.map_err(|_| ApiError::bad_request("could not read the request body"))?;
        if buf.len() + chunk.len() > MAX_VALUE {
            return Err(too_large());
        }
        buf.extend_from_slice(&chunk);
    }
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
        assert!(value("two\nlines\tand a tab").is_ok());
        assert!(value("a\0b").is_err());
        assert!(value("\u{1b}[31m").is_err());
    }
}
