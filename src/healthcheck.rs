//! `scaleout healthcheck [URL]`: one HTTP/1.1 GET so a distroless image, which has no
//! shell and no curl, can still have a Docker HEALTHCHECK. Exit status 0 means 200.

use std::time::Duration;

use crate::http_client::{self, Client};

/// The whole probe (resolving aside): connecting, asking and reading the answer.
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
    /// No answer: refused, timed out, reset, or not HTTP.
    #[error("{url}: {source}")]
    Http {
        url: String,
        source: http_client::Error,
    },
    #[error("{url} answered {code}")]
    Status { url: String, code: u16 },
}

/// Probes `url` (http only) and says whether it answered 200.
pub async fn probe(url: &str) -> Result<(), ProbeError> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| ProbeError::NotHttp(url.to_owned()))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let addr = tokio::net::lookup_host(authority)
        .await
        .map_err(|source| ProbeError::Resolve {
            authority: authority.to_owned(),
            source,
        })?
        .next()
        .ok_or_else(|| ProbeError::NoAddress(authority.to_owned()))?;
    let response = Client::new(addr, authority.to_owned(), TIMEOUT)
        .get(path, &[("Connection", "close")])
        .await
        .map_err(|source| ProbeError::Http {
            url: url.to_owned(),
            source,
        })?;
    match response.status {
        200 => Ok(()),
        code => Err(ProbeError::Status {
            url: url.to_owned(),
            code,
        }),
    }
}
