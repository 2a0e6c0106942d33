//! A small HTTP/1.1 client on one tokio socket, for a peer it must not trust.
//!
//! Why hand-written: the load tool needs exactly one keep-alive connection per virtual
//! user, to see every failure as it happened (a reset, a timeout, a garbled answer), and
//! nothing else; `healthcheck` needs one request. Why so many limits: the server under
//! load may be broken or hostile, and the tool must report that, never panic or let the
//! server decide how much memory it uses. Every length the server sends is checked before
//! it is used, nothing is allocated ahead of the bytes that actually arrive, and each line,
//! the header count and the body are bounded.

use std::fmt::{self, Write as _};
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// The longest status, header or chunk-size line accepted, in bytes.
pub const MAX_LINE: u64 = 8 * 1024;
/// The most header lines accepted in one response.
pub const MAX_HEADERS: usize = 100;
/// The largest body accepted: far above any JSON answer of this project, far below what
/// would hurt the machine running the load (one body per virtual user at a time).
pub const MAX_BODY: u64 = 8 * 1024 * 1024;

/// Why a request got no usable answer. A person reads these in the load report.
#[derive(Debug)]
pub enum Error {
    /// No connection, or the connection broke (reset, closed early).
    Io(std::io::Error),
    /// No complete answer within the timeout.
    Timeout(Duration),
    /// The bytes that came back are not an HTTP/1.1 answer we accept.
    Malformed(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                f.write_str("connection closed before a complete answer")
            }
            Error::Io(e) => write!(f, "{e}"),
            Error::Timeout(t) => write!(f, "no complete answer within {t:?}"),
            Error::Malformed(why) => write!(f, "malformed answer: {why}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Io(e)
    }
}

fn malformed(why: impl Into<String>) -> Error {
    Error::Malformed(why.into())
}

/// One answer, read in full.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    /// Header names lower-cased, values trimmed, in the order received.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// Every value of the header `name` (lower-case).
    pub fn header<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// One keep-alive connection to `addr`, opened on demand and dropped after any error,
/// so the next request starts clean.
pub struct Client {
    addr: SocketAddr,
    host: String,
    timeout: Duration,
    conn: Option<BufReader<TcpStream>>,
}

impl Client {
    /// `host` is sent as the `Host` header; `timeout` bounds each request as a whole.
    pub fn new(addr: SocketAddr, host: String, timeout: Duration) -> Self {
        Self {
            addr,
            host,
            timeout,
            conn: None,
        }
    }

    /// `GET path` with `headers` added. After an error the connection is closed.
    pub async fn get(&mut self, path: &str, headers: &[(&str, &str)]) -> Result<Response, Error> {
        let result = match tokio::time::timeout(self.timeout, self.exchange(path, headers)).await {
            Ok(result) => result,
            Err(_) => Err(Error::Timeout(self.timeout)),
        };
        if result.is_err() {
            self.conn = None;
        }
        result
    }

    async fn exchange(&mut self, path: &str, headers: &[(&str, &str)]) -> Result<Response, Error> {
        let io = match &mut self.conn {
            Some(io) => io,
            None => {
                let stream = TcpStream::connect(self.addr).await?;
                stream.set_nodelay(true)?;
                self.conn.insert(BufReader::new(stream))
            }
        };
        let mut request = format!("GET {path} HTTP/1.1\r\nHost: {}\r\n", self.host);
        for (name, value) in headers {
            let _ = write!(request, "{name}: {value}\r\n");
        }
        request.push_str("\r\n");
        io.get_mut().write_all(request.as_bytes()).await?;

        let (response, keep_alive) = read_response(io).await?;
        if !keep_alive {
            self.conn = None;
        }
        Ok(response)
    }
}

/// Reads one answer; also says whether the connection may carry another.
async fn read_response(io: &mut BufReader<TcpStream>) -> Result<(Response, bool), Error> {
    let line = read_line(io).await?;
    let status = parse_status(&line)?;
    let mut headers = Vec::new();
    loop {
        let line = read_line(io).await?;
        if line.is_empty() {
            break;
        }
        if headers.len() == MAX_HEADERS {
            return Err(malformed(format!("more than {MAX_HEADERS} headers")));
        }
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| malformed(format!("header line without a colon: {}", snippet(&line))))?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
    }
    let mut response = Response {
        status,
        headers,
        body: Vec::new(),
    };
    let chunked = response
        .header("transfer-encoding")
        .any(|v| v.eq_ignore_ascii_case("chunked"));
    let mut keep_alive = !response
        .header("connection")
        .any(|v| v.eq_ignore_ascii_case("close"));
    if matches!(status, 100..=199 | 204 | 304) {
        // No body by definition (RFC 9112, section 6.3).
    } else if chunked {
        response.body = read_chunked(io).await?;
    } else if let Some(length) = content_length(&response)? {
        if length > MAX_BODY {
            return Err(malformed(format!(
                "Content-Length {length} is over the {MAX_BODY}-byte limit"
            )));
        }
        // `take` + `read_to_end` grows the buffer with the bytes that arrive, so a
        // length the server does not honour costs nothing.
        (&mut *io)
            .take(length)
            .read_to_end(&mut response.body)
            .await?;
        if response.body.len() as u64 != length {
            return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof).into());
        }
    } else {
        // Neither length nor chunks: the body ends when the server closes.
        (&mut *io)
            .take(MAX_BODY + 1)
            .read_to_end(&mut response.body)
            .await?;
        if response.body.len() as u64 > MAX_BODY {
            return Err(malformed(format!("body over the {MAX_BODY}-byte limit")));
        }
        keep_alive = false;
    }
    Ok((response, keep_alive))
}

/// `HTTP/1.1 200 OK` -> 200. Only three-digit codes, as RFC 9110 defines them.
fn parse_status(line: &str) -> Result<u16, Error> {
    let bad = || malformed(format!("bad status line: {}", snippet(line)));
    let mut parts = line.splitn(3, ' ');
    let version = parts.next().unwrap_or("");
    let code = parts.next().unwrap_or("");
    if !version.starts_with("HTTP/1.") || code.len() != 3 {
        return Err(bad());
    }
    code.parse()
        .ok()
        .filter(|c| (100..600).contains(c))
        .ok_or_else(bad)
}

/// The one `Content-Length`, if any; disagreeing or unparsable values are an error.
fn content_length(response: &Response) -> Result<Option<u64>, Error> {
    let mut length = None;
    for value in response.header("content-length") {
        let n: u64 = value
            .parse()
            .map_err(|_| malformed(format!("bad Content-Length: {}", snippet(value))))?;
        if length.is_some_and(|l| l != n) {
            return Err(malformed("two different Content-Length headers"));
        }
        length = Some(n);
    }
    Ok(length)
}

/// A chunked body, every size checked against what is left of [`MAX_BODY`].
async fn read_chunked(io: &mut BufReader<TcpStream>) -> Result<Vec<u8>, Error> {
    let mut body = Vec::new();
    loop {
        let line = read_line(io).await?;
        let digits = line.split(';').next().unwrap_or("").trim();
        let size = u64::from_str_radix(digits, 16)
            .ok()
            // from_str_radix takes a leading '+'; HTTP does not.
            .filter(|_| digits.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or_else(|| malformed(format!("bad chunk size: {}", snippet(&line))))?;
        if size > MAX_BODY - body.len() as u64 {
            return Err(malformed(format!(
                "chunk of {size} bytes takes the body over the {MAX_BODY}-byte limit"
            )));
        }
        if size == 0 {
            // Trailers, if any, end with an empty line.
            while !read_line(io).await?.is_empty() {}
            return Ok(body);
        }
        let before = body.len();
        (&mut *io).take(size).read_to_end(&mut body).await?;
        if (body.len() - before) as u64 != size {
            return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof).into());
        }
        if !read_line(io).await?.is_empty() {
            return Err(malformed("chunk longer than its size"));
        }
    }
}

/// One line without its CRLF (or bare LF), at most [`MAX_LINE`] bytes, UTF-8.
async fn read_line(io: &mut BufReader<TcpStream>) -> Result<String, Error> {
    let mut line = Vec::new();
    (&mut *io)
        .take(MAX_LINE)
        .read_until(b'\n', &mut line)
        .await?;
    if line.last() != Some(&b'\n') {
        return Err(if line.len() as u64 == MAX_LINE {
            malformed(format!("a line longer than {MAX_LINE} bytes"))
        } else {
            std::io::Error::from(std::io::ErrorKind::UnexpectedEof).into()
        });
    }
    line.pop();
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    String::from_utf8(line).map_err(|_| malformed("a line that is not UTF-8"))
}

/// The start of what the server sent, quoted, for an error message a person reads.
fn snippet(text: &str) -> String {
    let cut: String = text.chars().take(40).collect();
    format!("{cut:?}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines() {
        assert_eq!(parse_status("HTTP/1.1 200 OK").unwrap(), 200);
        assert_eq!(parse_status("HTTP/1.0 503").unwrap(), 503);
        for bad in [
            "",
            "garbage",
            "HTTP/1.1 2000 OK",
            "HTTP/1.1 -20 X",
            "SSH-2.0 200",
        ] {
            assert!(parse_status(bad).is_err(), "{bad}");
        }
    }
}
