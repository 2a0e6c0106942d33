//! The tests' side of the project's one HTTP/1.1 client (`scaleout::http_client`): a fresh
//! connection per request, `Connection: close`, and the two things every test reads from
//! an answer, its JSON body and its session cookie. `raw` sends exactly the bytes a test
//! chooses (odd methods, bad encodings, huge URLs), which a real client refuses to.

use std::net::SocketAddr;
use std::ops::Deref;
use std::time::Duration;

use scaleout::http_client::{self, Client};

/// An answer, with the helpers tests read it through.
#[derive(Debug)]
pub struct Response(http_client::Response);

impl Deref for Response {
    type Target = http_client::Response;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl Response {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    /// The body as text (`/metrics`): it must be UTF-8.
    pub fn text(&self) -> String {
        String::from_utf8(self.body.clone()).expect("a UTF-8 body")
    }

    /// The session cookie's value from Set-Cookie, if any.
    pub fn sid(&self) -> Option<String> {
        self.set_cookie(scaleout::routes::COOKIE)
            .map(str::to_string)
    }
}

fn client(addr: SocketAddr) -> Client {
    Client::new(addr, addr.to_string(), Duration::from_secs(10))
}

/// Sends raw request bytes (with `Connection: close` expected in them) and reads the reply.
pub async fn raw(addr: SocketAddr, request: &[u8]) -> Result<Response, http_client::Error> {
    client(addr).raw(request).await.map(Response)
}

/// A request with a method, path and optional session cookie and body.
pub async fn send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    sid: Option<&str>,
    body: Option<&[u8]>,
) -> Result<Response, http_client::Error> {
    let cookie = sid.map(|sid| format!("{}={sid}", scaleout::routes::COOKIE));
    let mut headers = vec![("Connection", "close")];
    headers.extend(cookie.as_deref().map(|c| ("Cookie", c)));
    client(addr)
        .send(method, path, &headers, body)
        .await
        .map(Response)
}

pub async fn get(addr: SocketAddr, path: &str) -> Response {
    send(addr, "GET", path, None, None).await.expect("GET")
}
