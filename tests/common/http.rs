//! A deliberately small HTTP/1.1 client over raw sockets: tests need to send exactly the
//! bytes they choose (odd methods, bad encodings, huge URLs), which real clients refuse to.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    /// The `sid` value from Set-Cookie, if any.
    pub fn sid(&self) -> Option<String> {
        let cookie = self.header("set-cookie")?;
        let value = cookie.strip_prefix("sid=")?;
        Some(value.split(';').next()?.to_string())
    }
}

/// Sends raw request bytes (with `Connection: close` expected in them) and reads the reply.
pub async fn raw(addr: SocketAddr, request: &[u8]) -> std::io::Result<Response> {
    let io = async {
        let mut s = TcpStream::connect(addr).await?;
        // A server may answer (413) and stop reading before the request is all sent.
        let _ = s.write_all(request).await;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await?;
        Ok::<_, std::io::Error>(buf)
    };
    let buf = tokio::time::timeout(Duration::from_secs(10), io)
        .await
        .map_err(|_| std::io::Error::other("timed out"))??;
    parse(&buf).ok_or_else(|| {
        std::io::Error::other(format!("bad response: {:?}", String::from_utf8_lossy(&buf)))
    })
}

/// A request with a method, path and optional cookie/body.
pub async fn send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    cookie: Option<&str>,
    body: Option<&[u8]>,
) -> std::io::Result<Response> {
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if let Some(sid) = cookie {
        req.push_str(&format!("Cookie: sid={sid}\r\n"));
    }
    let mut bytes = req.into_bytes();
    if let Some(body) = body {
        bytes.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
        bytes.extend_from_slice(body);
    } else {
        bytes.extend_from_slice(b"\r\n");
    }
    raw(addr, &bytes).await
}

pub async fn get(addr: SocketAddr, path: &str) -> Response {
    send(addr, "GET", path, None, None).await.expect("GET")
}

fn parse(buf: &[u8]) -> Option<Response> {
    let split = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&buf[..split]).ok()?;
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    Some(Response {
        status,
        headers,
        body: buf[split + 4..].to_vec(),
    })
}
