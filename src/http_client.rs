//! The project's one HTTP/1.1 client, for a peer it must not trust: `scaleout load`'s
//! virtual users, `scaleout healthcheck`, and the Rust tests all send through it.
//!
//! Why hand-written: the load tool needs exactly one keep-alive connection per virtual
//! user, to see every failure as it happened (a reset, a timeout, a garbled answer), and
//! nothing else; the tests need to send exactly the bytes they choose (odd methods, bad
//! encodings, huge URLs), which a real client refuses to; `healthcheck` needs one request.
//! `ntex::client` does none of the first two. Why so many limits: the server under load
//! may be broken or hostile, and the tool must report that, never panic or let the server
//! decide how much memory it uses. Every length the server sends is checked before it is
//! used, nothing is allocated ahead of the bytes that actually arrive, and each line, the
//! header count and the body are bounded.

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
    /// The first value of the header `name` (any case).
    pub fn header<'a>(&'a self, name: &'a str) -> Option<&'a str> {
        self.header_values(name).next()
    }

    /// Every value of the header `name` (any case), in the order received.
    pub fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The value a `Set-Cookie` header gives the cookie `name`, if one does.
    pub fn set_cookie(&self, name: &str) -> Option<&str> {
        self.header_values("set-cookie").find_map(|v| {
            let (n, rest) = v.split_once('=')?;
            (n.trim() == name).then(|| rest.split(';').next().unwrap_or("").trim())
        })
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

    /// `GET path` with `headers` added.
    pub async fn get(&mut self, path: &str, headers: &[(&str, &str)]) -> Result<Response, Error> {
        self.send("GET", path, headers, None).await
    }

    /// `method path` with `headers` added, and `body` with its `Content-Length` if given.
    pub async fn send(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Result<Response, Error> {
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {}\r\n", self.host);
        for (name, value) in headers {
            let _ = write!(head, "{name}: {value}\r\n");
        }
        if let Some(body) = body {
            let _ = write!(head, "Content-Length: {}\r\n", body.len());
        }
        head.push_str("\r\n");
        let mut request = head.into_bytes();
        request.extend_from_slice(body.unwrap_or_default());
        self.raw(&request).await
    }

    /// Sends `request` exactly as given and reads one answer (none of its body if the
    /// request is a `HEAD`). After an error the connection is closed.
    pub async fn raw(&mut self, request: &[u8]) -> Result<Response, Error> {
        let result = match tokio::time::timeout(self.timeout, self.exchange(request)).await {
            Ok(result) => result,
            Err(_) => Err(Error::Timeout(self.timeout)),
        };
        if result.is_err() {
            self.conn = None;
        }
        result
    }

    async fn exchange(&mut self, request: &[u8]) -> Result<Response, Error> {
        let io = match &mut self.conn {
            Some(io) => io,
            None => {
                let stream = TcpStream::connect(self.addr).await?;
                stream.set_nodelay(true)?;
                self.conn.insert(BufReader::new(stream))
            }
        };
        // A server may answer early (413, 431) and close before it has read everything:
        // then its answer, if one arrives, is what counts, not the failed write.
        let written = io.get_mut().write_all(request).await;
        let (response, keep_alive) = match read_response(io, request.starts_with(b"HEAD ")).await {
            Ok(answer) => answer,
            Err(e) => return Err(written.err().map_or(e, Error::Io)),
        };
        if !keep_alive || written.is_err() {
            self.conn = None;
        }
        Ok(response)
    }
}

/// Reads one answer (to a `HEAD` if `head`); also says whether the connection may carry
/// another.
async fn read_response(
    io: &mut BufReader<TcpStream>,
    head: bool,
) -> Result<(Response, bool), Error> {
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
        .header_values("transfer-encoding")
        .any(|v| v.eq_ignore_ascii_case("chunked"));
    let mut keep_alive = !response
        .header_values("connection")
        .any(|v| v.eq_ignore_ascii_case("close"));
    if head || matches!(status, 100..=199 | 204 | 304) {
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
    for value in response.header_values("content-length") {
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
    use tokio::net::TcpListener;

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

    #[test]
    fn headers_in_any_case_and_cookies_by_name() {
        let response = Response {
            status: 200,
            headers: [
                ("set-cookie", "theme=dark; Path=/"),
                ("set-cookie", "sid=abc; HttpOnly"),
                ("x-a", "1"),
                ("x-a", "2"),
            ]
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .into(),
            body: Vec::new(),
        };
        assert_eq!(response.header("X-A"), Some("1"));
        assert_eq!(
            response.header_values("x-a").collect::<Vec<_>>(),
            ["1", "2"]
        );
        assert_eq!(response.set_cookie("sid"), Some("abc"));
        assert_eq!(response.set_cookie("theme"), Some("dark"));
        assert_eq!(response.set_cookie("si"), None);
    }

    /// A server that accepts `connections` connections, one after the other, and answers
    /// each request head it reads with the next of `answers`; it records every request.
    async fn scripted(
        connections: usize,
        answers: &'static [&'static [u8]],
    ) -> (SocketAddr, tokio::task::JoinHandle<Vec<String>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let mut answers = answers.iter();
            let mut requests = Vec::new();
            for _ in 0..connections {
                let (stream, _) = listener.accept().await.unwrap();
                let mut io = BufReader::new(stream);
                'conn: loop {
                    let mut head = String::new();
                    loop {
                        let mut line = String::new();
                        if io.read_line(&mut line).await.unwrap() == 0 {
                            break 'conn;
                        }
                        head.push_str(&line);
                        if line == "\r\n" {
                            break;
                        }
                    }
                    requests.push(head);
                    let Some(answer) = answers.next() else { break };
                    io.get_mut().write_all(answer).await.unwrap();
                }
            }
            requests
        });
        (addr, server)
    }

    fn client(addr: SocketAddr) -> Client {
        Client::new(addr, "test".into(), Duration::from_secs(5))
    }

    #[tokio::test]
    async fn one_connection_carries_every_kind_of_body() {
        let (addr, server) = scripted(
            1,
            &[
                b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\nT: 1\r\n\r\n",
                b"HTTP/1.1 200 OK\r\nContent-Length: 14\r\n\r\n",
                b"HTTP/1.1 204 No Content\r\n\r\n",
            ],
        )
        .await;
        let mut c = client(addr);
        let first = c.get("/a", &[("Cookie", "sid=1")]).await.unwrap();
        assert_eq!((first.status, first.body.as_slice()), (200, &b"hello"[..]));
        assert_eq!(c.get("/b", &[]).await.unwrap().body, b"abcde");
        let head = c.raw(b"HEAD /c HTTP/1.1\r\nHost: t\r\n\r\n").await.unwrap();
        assert_eq!(
            (head.header("content-length"), head.body.len()),
            (Some("14"), 0)
        );
        let put = c.send("PUT", "/d", &[], Some(b"")).await.unwrap();
        assert_eq!(put.status, 204);
        drop(c);
        let requests = server.await.unwrap();
        assert_eq!(requests.len(), 4, "all on one connection: {requests:?}");
        assert_eq!(
            requests[0],
            "GET /a HTTP/1.1\r\nHost: test\r\nCookie: sid=1\r\n\r\n"
        );
        assert!(
            requests[3].contains("Content-Length: 0\r\n"),
            "{}",
            requests[3]
        );
    }

    #[tokio::test]
    async fn a_closed_or_failed_connection_is_not_reused() {
        let (addr, server) = scripted(
            3,
            &[
                b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
                b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
                b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
            ],
        )
        .await;
        let mut c = client(addr);
        assert_eq!(c.get("/", &[]).await.unwrap().status, 200);
        let garbled = c.get("/", &[]).await.unwrap_err();
        assert!(
            garbled.to_string().contains("bad Content-Length"),
            "{garbled}"
        );
        assert_eq!(c.get("/", &[]).await.unwrap().body, b"ok");
        drop(c);
        assert_eq!(server.await.unwrap().len(), 3);
    }

    #[tokio::test]
    async fn no_answer_in_time_is_a_timeout() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut c = Client::new(
            listener.local_addr().unwrap(),
            "t".into(),
            Duration::from_millis(200),
        );
        // The kernel accepts the connection; nobody ever answers.
        let err = c.get("/", &[]).await.unwrap_err();
        assert!(matches!(err, Error::Timeout(_)), "{err}");
    }
}
