//! The load tool's flags. It takes flags, not settings: it runs against a server, not as
//! one, so nothing here belongs in `config.rs`.

use std::net::SocketAddr;
use std::time::Duration;

pub const USAGE: &str = "\
Usage: scaleout load --url URL [options]

Sends GET requests from concurrent virtual users, each with its own cookie jar, and
checks every user's session. Exit status 1 if any request failed, any session broke,
no request was sent, or (with cookies) no session could be checked.

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
        "m" => n.checked_mul(60).map(Duration::from_secs).ok_or_else(bad),
        _ => Err(bad()),
    }
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
        assert!(duration("99999999999999999999m").is_err());
        assert!(duration(&format!("{}m", u64::MAX / 2)).is_err());
        assert_eq!(duration("2m").unwrap(), Duration::from_secs(120));
    }
}
