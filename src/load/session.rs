//! The session check: what makes this a test of the project's claim, not a benchmark.
//!
//! Each virtual user keeps one cookie jar, like a browser tab. Every answer to a visit
//! carries `session_id` and `session_count`; the count must rise by exactly one per request
//! the user sent. A failed request may or may not have been counted (the replica may have
//! counted it and then died), so each one widens the next allowed step by one. A session
//! id that changes, or a count outside that window, is a broken session.

use serde_json::Value;

use crate::http_client::Response;
use crate::routes::COOKIE;

/// One virtual user's view of its session.
#[derive(Debug, Default)]
pub struct Session {
    sid: Option<String>,
    count: i64,
    /// Requests since the last checked answer that may or may not have counted.
    unsure: i64,
}

/// What one answer said about the session.
#[derive(Debug, PartialEq)]
pub enum Check {
    /// Not a visit (no `session_id` and `session_count`): it proves nothing.
    NotAVisit,
    Held,
    /// Broken, with a line for a person to read.
    Broken(String),
}

impl Session {
    /// The `sid` cookie to send, once the server has given one.
    pub fn sid(&self) -> Option<&str> {
        self.sid.as_deref()
    }

    /// A request whose effect is unknown: it failed, or its answer proved nothing.
    pub fn unsure(&mut self) {
        self.unsure = self.unsure.saturating_add(1);
    }

    /// Checks a 2xx answer already parsed as JSON.
    pub fn check(&mut self, user: usize, at_ms: u64, visit: &Value, response: &Response) -> Check {
        let (Some(sid), Some(count)) = (
            visit["session_id"].as_str(),
            visit["session_count"].as_i64(),
        ) else {
            self.unsure();
            return Check::NotAVisit;
        };
        // i128: the count comes from the server, and a hostile one must not overflow us.
        let step = i128::from(count) - i128::from(self.count);
        let check = match &self.sid {
            Some(known) if known != sid => Check::Broken(format!(
                "user {user}: session {known} replaced by {sid} at {at_ms} ms"
            )),
            _ if step < 1 || step > 1 + i128::from(self.unsure) => Check::Broken(format!(
                "user {user}: session_count {count} after {} (+{} unsure) at {at_ms} ms",
                self.count, self.unsure
            )),
            _ => Check::Held,
        };
        self.sid = set_sid(response)
            .or_else(|| Some(sid.to_string()))
            .filter(|sid| is_cookie_value(sid));
        self.count = count;
        self.unsure = 0;
        check
    }
}

/// Only what RFC 6265 allows in a cookie value is sent back: the id comes from the server,
/// and one with a CR, LF or `;` would rewrite our own request. Anything else is dropped,
/// so the next answer starts a new session and the check calls it broken.
fn is_cookie_value(sid: &str) -> bool {
    sid.bytes()
        .all(|b| b.is_ascii_graphic() && !matches!(b, b'"' | b',' | b';' | b'\\'))
}

/// The session id a `Set-Cookie` header gives, if any.
fn set_sid(response: &Response) -> Option<String> {
    response.set_cookie(COOKIE).map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn answer() -> Response {
        Response {
            status: 200,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    #[test]
    fn a_count_must_rise_by_one_plus_the_unsure_requests() {
        let mut s = Session::default();
        let visit = |count: i64| json!({"session_id": "a", "session_count": count});
        assert_eq!(s.check(0, 0, &visit(1), &answer()), Check::Held);
        assert_eq!(s.sid(), Some("a"));
        s.unsure();
        assert_eq!(s.check(0, 0, &visit(3), &answer()), Check::Held);
        assert!(matches!(
            s.check(0, 0, &visit(3), &answer()),
            Check::Broken(_)
        ));
        assert!(matches!(
            s.check(0, 0, &visit(i64::MIN), &answer()),
            Check::Broken(_)
        ));
        assert!(matches!(
            s.check(0, 0, &visit(i64::MAX), &answer()),
            Check::Broken(_)
        ));
        let other = json!({"session_id": "b", "session_count": i64::MAX});
        assert!(matches!(s.check(0, 0, &other, &answer()), Check::Broken(_)));
        assert_eq!(
            s.check(0, 0, &json!({"ok": 1}), &answer()),
            Check::NotAVisit
        );
        let injected = json!({"session_id": "b\r\nX-Evil: 1", "session_count": 1});
        assert!(matches!(
            s.check(0, 0, &injected, &answer()),
            Check::Broken(_)
        ));
        assert_eq!(s.sid(), None, "not sent back");
    }
}
