//! `scaleout load`: a load generator that checks what this project claims, not just speed.
//!
//! Each virtual user keeps its own cookie jar and keep-alive connection, like a browser
//! tab. Besides requests/s and latency percentiles it reports every non-2xx by status,
//! how the replicas shared the traffic (and when each was first seen), and a session
//! check: a user's `session_count` must rise by exactly one per request it sent (a
//! failed request may or may not have counted, so it widens the allowed step by one).
//! A lost or reset session is a broken session. Exit status 1 on any failed request or
//! broken session, so scripts and CI can rely on it.
//!
//! The HTTP/1.1 client is hand-written on a tokio socket: it needs exactly one
//! connection per user and nothing else, and must report every failure as it happened.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

pub const USAGE: &str = "\
Usage: scaleout load --url URL [options]

Sends GET requests from concurrent virtual users, each with its own cookie jar, and
checks every user's session. Exit status 1 if any request failed or any session broke.

Options:
  --url URL            http://host:port/path to load (required)
  --concurrency N      virtual users [32]
  --duration D         how long, e.g. 10s, 500ms, 2m [10s]
  --requests N         stop after N requests in all (instead of --duration)
  --timeout D          per-request timeout [5s]
  --no-cookies         send no cookie: every request starts a new session
  --json               print the report as JSON";

/// What the user asked for.
#[derive(Debug, Clone)]
pub struct Options {
    pub host: String,
    pub addr: SocketAddr,
    pub path: String,
    pub concurrency: usize,
    pub duration: Duration,
    pub requests: Option<u64>,
    pub timeout: Duration,
    pub cookies: bool,
    pub json: bool,
}

impl Options {
    pub fn parse(args: &[String]) -> Result<Self, String> {
        let mut url = None;
        let mut opts = Options {
            host: String::new(),
            addr: SocketAddr::from(([127, 0, 0, 1], 80)),
            path: "/".into(),
            concurrency: 32,
            duration: Duration::from_secs(10),
            requests: None,
            timeout: Duration::from_secs(5),
            cookies: true,
            json: false,
        };
        let mut it = args.iter();
        while let Some(flag) = it.next() {
            let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
            match flag.as_str() {
                "--url" => url = Some(value()?.clone()),
                "--concurrency" | "-c" => opts.concurrency = number(flag, value()?)?,
                "--duration" | "-d" => opts.duration = duration(value()?)?,
                "--requests" | "-n" => opts.requests = Some(number(flag, value()?)?),
                "--timeout" => opts.timeout = duration(value()?)?,
                "--no-cookies" => opts.cookies = false,
                "--json" => opts.json = true,
                other => return Err(format!("unknown option {other}")),
            }
        }
        if opts.concurrency == 0 {
            return Err("--concurrency must be at least 1".into());
        }
        let url = url.ok_or("--url is required")?;
        let rest = url
            .strip_prefix("http://")
            .ok_or("--url must start with http://")?;
        let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        opts.path = if path.is_empty() {
            "/".into()
        } else {
            path.into()
        };
        let with_port = if host.contains(':') {
            host.to_string()
        } else {
            format!("{host}:80")
        };
        opts.addr = std::net::ToSocketAddrs::to_socket_addrs(&with_port)
            .map_err(|e| format!("{host}: {e}"))?
            .next()
            .ok_or_else(|| format!("{host}: no address"))?;
        opts.host = host.to_string();
        Ok(opts)
    }
}

fn number<T: std::str::FromStr>(flag: &str, v: &str) -> Result<T, String> {
    v.parse()
        .map_err(|_| format!("{flag}: '{v}' is not a number"))
}

/// `10s`, `500ms`, `2m`, or bare seconds.
fn duration(v: &str) -> Result<Duration, String> {
    let bad = || format!("'{v}' is not a duration (try 10s, 500ms, 2m)");
    let (n, unit) = v.split_at(v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len()));
    let n: u64 = n.parse().map_err(|_| bad())?;
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "" | "s" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        _ => Err(bad()),
    }
}

/// How one replica shared the traffic.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Replica {
    pub requests: u64,
    /// Milliseconds from the start of the run to this replica's first and last answer.
    pub first_ms: u64,
    pub last_ms: u64,
}

/// The whole run's figures; `--json` prints exactly this.
#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub requests: u64,
    pub ok: u64,
    /// Non-2xx answers and transport errors (as status 0).
    pub failures: u64,
    pub by_status: BTreeMap<u16, u64>,
    pub transport_errors: u64,
    pub first_failure_ms: Option<u64>,
    pub last_failure_ms: Option<u64>,
    pub seconds: f64,
    pub rps: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub served_by: BTreeMap<String, Replica>,
    pub sessions_checked: u64,
    pub broken_sessions: u64,
    /// The first few broken-session events, for a person to read.
    pub broken_examples: Vec<String>,
}

impl Report {
    pub fn passed(&self) -> bool {
        self.failures == 0 && self.broken_sessions == 0
    }

    pub fn human(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "requests     {} in {:.1}s, {:.0} req/s",
            self.requests, self.seconds, self.rps
        );
        let _ = writeln!(
            out,
            "latency      p50 {:.2} ms  p90 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
            self.p50_ms, self.p90_ms, self.p99_ms, self.max_ms
        );
        let _ = writeln!(out, "failed       {}", self.failures);
        for (status, n) in &self.by_status {
            if !(200..300).contains(status) {
                let label = if *status == 0 {
                    "transport".to_string()
                } else {
                    status.to_string()
                };
                let _ = writeln!(out, "  {label:<10} {n}");
            }
        }
        let _ = writeln!(out, "served_by");
        for (name, r) in &self.served_by {
            let share = 100.0 * r.requests as f64 / self.ok.max(1) as f64;
            let _ = writeln!(
                out,
                "  {name:<24} {:>8} ({share:.1}%)  first at {:.1}s",
                r.requests,
                r.first_ms as f64 / 1000.0
            );
        }
        let _ = writeln!(
            out,
            "sessions     {} checked, {} broken",
            self.sessions_checked, self.broken_sessions
        );
        for e in &self.broken_examples {
            let _ = writeln!(out, "  {e}");
        }
        let _ = write!(
            out,
            "result       {}",
            if self.passed() { "PASS" } else { "FAIL" }
        );
        out
    }
}

/// One virtual user's view of its session.
#[derive(Default)]
struct Session {
    sid: Option<String>,
    count: i64,
    /// Failed requests since the last good answer: each may or may not have counted.
    unsure: i64,
}

/// What one user saw; merged into the [`Report`] at the end.
#[derive(Default)]
struct Tally {
    latencies_us: Vec<u32>,
    by_status: BTreeMap<u16, u64>,
    failures_ms: Vec<u64>,
    served_by: BTreeMap<String, Replica>,
    checked: bool,
    broken: Vec<String>,
}

pub async fn run(opts: Options) -> Report {
    let start = Instant::now();
    let deadline = start + opts.duration;
    let sent = std::rc::Rc::new(std::cell::Cell::new(0u64));
    let users: Vec<_> = (0..opts.concurrency)
        .map(|user| {
            let opts = opts.clone();
            let sent = sent.clone();
            ntex::rt::spawn(async move {
                let budget = || match opts.requests {
                    Some(n) => {
                        let taken = sent.get() < n;
                        sent.set(sent.get() + u64::from(taken));
                        taken
                    }
                    None => Instant::now() < deadline,
                };
                user_loop(user, &opts, start, budget).await
            })
        })
        .collect();
    let mut report = Report::default();
    let mut latencies = Vec::new();
    let mut failures = Vec::new();
    for user in users {
        let Ok(t) = user.await else { continue };
        latencies.extend(t.latencies_us);
        failures.extend(t.failures_ms);
        for (status, n) in t.by_status {
            *report.by_status.entry(status).or_default() += n;
        }
        for (name, r) in t.served_by {
            let e = report.served_by.entry(name).or_insert(Replica {
                first_ms: u64::MAX,
                ..Replica::default()
            });
            e.requests += r.requests;
            e.first_ms = e.first_ms.min(r.first_ms);
            e.last_ms = e.last_ms.max(r.last_ms);
        }
        report.sessions_checked += u64::from(t.checked);
        report.broken_sessions += u64::from(!t.broken.is_empty());
        report.broken_examples.extend(t.broken.into_iter().take(1));
    }
    report.broken_examples.truncate(5);
    report.seconds = start.elapsed().as_secs_f64();
    report.requests = latencies.len() as u64;
    report.ok = report
        .by_status
        .iter()
        .filter(|(s, _)| (200..300).contains(*s))
        .map(|(_, n)| n)
        .sum();
    report.failures = report.requests - report.ok;
    report.transport_errors = report.by_status.get(&0).copied().unwrap_or(0);
    report.first_failure_ms = failures.iter().min().copied();
    report.last_failure_ms = failures.iter().max().copied();
    report.rps = report.requests as f64 / report.seconds.max(1e-9);
    latencies.sort_unstable();
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p).ceil() as usize).saturating_sub(1))
            .map_or(0.0, |us| f64::from(*us) / 1000.0)
    };
    (report.p50_ms, report.p90_ms, report.p99_ms) = (pct(0.50), pct(0.90), pct(0.99));
    report.max_ms = latencies.last().map_or(0.0, |us| f64::from(*us) / 1000.0);
    report
}

async fn user_loop(
    user: usize,
    opts: &Options,
    start: Instant,
    mut budget: impl FnMut() -> bool,
) -> Tally {
    let mut tally = Tally::default();
    let mut session = Session::default();
    let mut conn: Option<BufReader<TcpStream>> = None;
    while budget() {
        let began = Instant::now();
        let cookie = session.sid.as_deref().filter(|_| opts.cookies);
        let result = tokio::time::timeout(opts.timeout, request(&mut conn, opts, cookie)).await;
        let elapsed = began.elapsed();
        tally
            .latencies_us
            .push(elapsed.as_micros().min(u32::MAX as u128) as u32);
        let at_ms = start.elapsed().as_millis() as u64;
        let (status, body, set_sid) = match result {
            Ok(Ok(answer)) => answer,
            _ => {
                conn = None;
                (0, Vec::new(), None)
            }
        };
        *tally.by_status.entry(status).or_default() += 1;
        if !(200..300).contains(&status) {
            tally.failures_ms.push(at_ms);
            session.unsure += 1;
            continue;
        }
        // A 2xx that is not JSON (a static file, or something garbled): it proves
        // nothing about the session, so the next step may be one larger.
        let Ok(visit) = serde_json::from_slice::<serde_json::Value>(&body) else {
            session.unsure += 1;
            continue;
        };
        if let Some(name) = visit["served_by"].as_str() {
            let r = tally.served_by.entry(name.to_string()).or_insert(Replica {
                first_ms: at_ms,
                ..Replica::default()
            });
            r.requests += 1;
            r.last_ms = at_ms;
        }
        if opts.cookies
            && let (Some(sid), Some(count)) = (
                visit["session_id"].as_str(),
                visit["session_count"].as_i64(),
            )
        {
            tally.checked = true;
            if let Some(known) = &session.sid
                && known != sid
            {
                tally.broken.push(format!(
                    "user {user}: session {known} replaced by {sid} at {at_ms} ms"
                ));
            } else if count < session.count + 1 || count > session.count + 1 + session.unsure {
                tally.broken.push(format!(
                    "user {user}: session_count {count} after {} (+{} unsure) at {at_ms} ms",
                    session.count, session.unsure
                ));
            }
            session.sid = set_sid.or(Some(sid.to_string()));
            session.count = count;
            session.unsure = 0;
        }
    }
    tally
}

/// One GET on the user's keep-alive connection (opened on demand). Returns the status,
/// the body and a new `sid` if the server set one.
async fn request(
    conn: &mut Option<BufReader<TcpStream>>,
    opts: &Options,
    sid: Option<&str>,
) -> std::io::Result<(u16, Vec<u8>, Option<String>)> {
    if conn.is_none() {
        let stream = TcpStream::connect(opts.addr).await?;
        stream.set_nodelay(true)?;
        *conn = Some(BufReader::new(stream));
    }
    let io = conn.as_mut().expect("connected above");
    let mut req = format!("GET {} HTTP/1.1\r\nHost: {}\r\n", opts.path, opts.host);
    if let Some(sid) = sid {
        let _ = write!(req, "Cookie: sid={sid}\r\n");
    }
    req.push_str("\r\n");
    io.get_mut().write_all(req.as_bytes()).await?;

    let mut line = String::new();
    if io.read_line(&mut line).await? == 0 {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other("bad status line"))?;
    let (mut length, mut chunked, mut close, mut set_sid) = (0usize, false, false, None);
    loop {
        line.clear();
        io.read_line(&mut line).await?;
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        let Some((name, value)) = header.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match name.to_ascii_lowercase().as_str() {
            "content-length" => length = value.parse().unwrap_or(0),
            "transfer-encoding" => chunked = value.eq_ignore_ascii_case("chunked"),
            "connection" => close = value.eq_ignore_ascii_case("close"),
            "set-cookie" => {
                if let Some(v) = value.strip_prefix("sid=") {
                    set_sid = v.split(';').next().map(str::to_string);
                }
            }
            _ => {}
        }
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            line.clear();
            io.read_line(&mut line).await?;
            let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16)
                .map_err(|_| std::io::Error::other("bad chunk size"))?;
            let mut chunk = vec![0; size + 2];
            io.read_exact(&mut chunk).await?;
            if size == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..size]);
        }
    } else {
        body.resize(length, 0);
        io.read_exact(&mut body).await?;
    }
    if close {
        *conn = None;
    }
    Ok((status, body, set_sid))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_options() {
        let args: Vec<String> =
            "--url http://127.0.0.1:8080/api/ --concurrency 4 --duration 500ms --json"
                .split(' ')
                .map(String::from)
                .collect();
        let o = Options::parse(&args).unwrap();
        assert_eq!(
            (o.host.as_str(), o.path.as_str()),
            ("127.0.0.1:8080", "/api/")
        );
        assert_eq!(
            (o.concurrency, o.duration, o.json),
            (4, Duration::from_millis(500), true)
        );
        assert!(Options::parse(&["--url".into(), "https://x/".into()]).is_err());
        assert!(duration("10x").is_err());
        assert_eq!(duration("2m").unwrap(), Duration::from_secs(120));
    }
}
