//! `scaleout healthcheck [URL]`: a tiny HTTP/1.1 GET so a distroless image, which has no
//! shell and no curl, can still have a Docker HEALTHCHECK. Exit status 0 means 200.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(2);

/// Why a probe did not pass; `healthcheck` prints it after `unhealthy: `.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("{0}: only http:// URLs are supported")]
    NotHttp(String),
    #[error("{authority}: {source}")]
    Resolve {
        authority: String,
        source: std::io::Error,
    },
    #[error("{0}: no address")]
    NoAddress(String),
    /// Connecting, sending or reading failed (refused, timed out, reset).
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error("{url} answered {code}")]
    Status { url: String, code: String },
    #[error("{0}: not an HTTP response")]
    NotAnHttpResponse(String),
}

/// Probes `url` (http only) and says whether it answered 200.
pub fn probe(url: &str) -> Result<(), ProbeError> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| ProbeError::NotHttp(url.to_owned()))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let addr = authority
        .to_socket_addrs()
        .map_err(|source| ProbeError::Resolve {
            authority: authority.to_owned(),
            source,
        })?
        .next()
        .ok_or_else(|| ProbeError::NoAddress(authority.to_owned()))?;
    let mut stream = TcpStream::connect_timeout(&addr, TIMEOUT)?;
    stream.set_read_timeout(Some(TIMEOUT))?;
    stream.set_write_timeout(Some(TIMEOUT))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n"
    )?;
    let mut head = [0u8; 64];
    let n = stream.read(&mut head)?;
    let status_line = String::from_utf8_lossy(&head[..n]);
    match status_line.split_whitespace().nth(1) {
        Some("200") => Ok(()),
        Some(code) => Err(ProbeError::Status {
            url: url.to_owned(),
            code: code.to_owned(),
        }),
        None => Err(ProbeError::NotAnHttpResponse(url.to_owned())),
    }
}
