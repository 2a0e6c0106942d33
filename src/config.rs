//! Configuration: every setting comes from one environment variable, read once at start-up
//! with envy into [`Settings`]. The table in [`VARS`] is the single source for `--help` and
//! for naming the variable when a value does not parse.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use tracing_subscriber::EnvFilter;

/// Every variable scaleout reads: name, default, meaning. `--help` prints this table.
pub const VARS: &[(&str, &str, &str)] = &[
    (
        "REDIS_URL",
        "redis://127.0.0.1:6379",
        "Redis to keep all state in (ignored when REDIS_SENTINELS is set)",
    ),
    (
        "REDIS_SENTINELS",
        "unset",
        "comma-separated host:port Sentinels; set: follow the primary they name",
    ),
    (
        "REDIS_MASTER_NAME",
        "scaleout",
        "the name the Sentinels monitor the primary under",
    ),
    (
        "REDIS_WAIT_REPLICAS",
        "0",
        "after each write, WAIT for this many replicas (0: off); fewer acks: 503",
    ),
    (
        "REDIS_WAIT_TIMEOUT_MS",
        "100",
        "how long that WAIT may take, in milliseconds (1 to 500)",
    ),
    (
        "LISTEN_ADDR",
        "0.0.0.0:8080",
        "address app/web listen on (port 0 picks a free one)",
    ),
    (
        "INSTANCE_NAME",
        "the hostname",
        "name reported as served_by and in /instances",
    ),
    (
        "DRAIN_SECS",
        "5",
        "after SIGTERM: seconds to keep serving with /healthz at 503",
    ),
    (
        "SESSION_TTL_SECS",
        "86400",
        "idle lifetime of a session (cookie Max-Age, Redis TTL)",
    ),
    ("LOG_FORMAT", "json", "json (one object a line) or pretty"),
    (
        "RUST_LOG",
        "info,ntex=warn",
        "log filter, tracing-subscriber EnvFilter syntax",
    ),
    ("WORKERS", "CPU count", "HTTP worker threads of app and web"),
    (
        "WEB_ROOT",
        "/srv/www",
        "web: the built frontend (dist/) to serve",
    ),
    (
        "JOB_WORK_MS",
        "500",
        "worker: simulated work per job, in milliseconds",
    ),
    (
        "JOB_MAX_ATTEMPTS",
        "3",
        "worker: attempts before a job goes to the dead-letter list",
    ),
    (
        "JOB_VISIBILITY_SECS",
        "30",
        "worker: lease on a claimed job; a worker renews it while it works",
    ),
    (
        "JOB_DEAD_MAX",
        "1000",
        "worker: longest the dead-letter list jobs:dead may grow",
    ),
];

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Json,
    Pretty,
}

/// The whole configuration, typed. Field names are the variables' names in lower case.
#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    #[serde(default = "defaults::redis_url")]
    pub redis_url: String,
    /// Empty: standalone mode on `redis_url`. Parsed by [`Settings::sentinels`].
    #[serde(default)]
    pub redis_sentinels: String,
    #[serde(default = "defaults::redis_master_name")]
    pub redis_master_name: String,
    #[serde(default)]
    pub redis_wait_replicas: u32,
    #[serde(default = "defaults::redis_wait_timeout_ms")]
    pub redis_wait_timeout_ms: u64,
    #[serde(default = "defaults::listen_addr")]
    pub listen_addr: SocketAddr,
    #[serde(default = "defaults::instance_name")]
    pub instance_name: String,
    #[serde(default = "defaults::drain_secs")]
    pub drain_secs: u64,
    #[serde(default = "defaults::session_ttl_secs")]
    pub session_ttl_secs: u64,
    #[serde(default = "defaults::log_format")]
    pub log_format: LogFormat,
    #[serde(default = "defaults::rust_log")]
    pub rust_log: String,
    #[serde(default = "defaults::workers")]
    pub workers: usize,
    #[serde(default = "defaults::web_root")]
    pub web_root: PathBuf,
    #[serde(default = "defaults::job_work_ms")]
    pub job_work_ms: u64,
    #[serde(default = "defaults::job_max_attempts")]
    pub job_max_attempts: u32,
    #[serde(default = "defaults::job_visibility_secs")]
    pub job_visibility_secs: u64,
    #[serde(default = "defaults::job_dead_max")]
    pub job_dead_max: u64,
}

impl Settings {
    /// Reads the process environment. The error is one line that names the variable.
    pub fn from_env() -> Result<Self, String> {
        Self::from_vars(std::env::vars())
    }

    /// Reads the given variables (tests pass their own); unknown variables are ignored.
    pub fn from_vars(vars: impl Iterator<Item = (String, String)>) -> Result<Self, String> {
        let vars: Vec<(String, String)> = vars
            .filter(|(k, _)| VARS.iter().any(|(name, ..)| name == k))
            .collect();
        let settings: Self = envy::from_iter(vars.iter().cloned()).map_err(|e| {
            let msg = e.to_string();
            if msg.contains("provided by") {
                return msg;
            }
            // serde's own messages (enums, addresses) do not say which variable was wrong:
            // find it by reading each variable on its own.
            match vars
                .iter()
                .find(|pair| envy::from_iter::<_, Self>(std::iter::once((*pair).clone())).is_err())
            {
                Some((k, v)) => format!("{msg} (value '{v}' provided by {k})"),
                None => msg,
            }
        })?;
        settings.validate()?;
        Ok(settings)
    }

    fn validate(&self) -> Result<(), String> {
        let checks = [
            (
                self.session_ttl_secs == 0,
                "SESSION_TTL_SECS must be at least 1",
            ),
            (
                self.instance_name.is_empty(),
                "INSTANCE_NAME must not be empty",
            ),
            (
                self.instance_name.len() > 128,
                "INSTANCE_NAME must be at most 128 bytes",
            ),
            (self.drain_secs > 3600, "DRAIN_SECS must be at most 3600"),
            (self.workers == 0, "WORKERS must be at least 1"),
            (
                self.job_max_attempts == 0,
                "JOB_MAX_ATTEMPTS must be at least 1",
            ),
            (
                self.job_visibility_secs == 0,
                "JOB_VISIBILITY_SECS must be at least 1",
            ),
            (self.job_dead_max == 0, "JOB_DEAD_MAX must be at least 1"),
            (
                self.redis_master_name.is_empty(),
                "REDIS_MASTER_NAME must not be empty",
            ),
            (
                self.redis_wait_replicas > MAX_WAIT_REPLICAS,
                "REDIS_WAIT_REPLICAS must be at most 16",
            ),
            (
                !(1..=MAX_WAIT_TIMEOUT_MS).contains(&self.redis_wait_timeout_ms),
                "REDIS_WAIT_TIMEOUT_MS must be from 1 to 500",
            ),
        ];
        if let Some((_, msg)) = checks.iter().find(|(bad, _)| *bad) {
            return Err((*msg).to_string());
        }
        // Parsed here, not where they are used, so a typo exits 2 at start-up with one line
        // naming the variable, instead of a run-time failure (REDIS_URL) or a silent
        // fallback to another filter (RUST_LOG).
        redis::IntoConnectionInfo::into_connection_info(self.redis_url.as_str())
            .map_err(|e| format!("REDIS_URL is not a Redis URL ({e})"))?;
        self.sentinels()?;
        EnvFilter::try_new(&self.rust_log)
            .map_err(|e| format!("RUST_LOG is not a valid filter ({e})"))?;
        Ok(())
    }

    /// The Sentinels to ask for the primary, as `host:port`; empty in standalone mode.
    /// The error names the variable and the entry that is not a `host:port`.
    pub fn sentinels(&self) -> Result<Vec<String>, String> {
        if self.redis_sentinels.trim().is_empty() {
            return Ok(Vec::new());
        }
        self.redis_sentinels
            .split(',')
            .map(str::trim)
            .map(|entry| match entry.rsplit_once(':') {
                Some((host, port))
                    if !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0) =>
                {
                    Ok(entry.to_string())
                }
                _ => Err(format!(
                    "REDIS_SENTINELS: '{entry}' is not host:port (a comma-separated list)"
                )),
            })
            .collect()
    }

    pub fn drain(&self) -> Duration {
        Duration::from_secs(self.drain_secs)
    }

    /// `--help` text for a subcommand: its usage line, then every variable.
    pub fn help(usage: &str) -> String {
        let mut out = format!("{usage}\n\nEnvironment (defaults in brackets):\n");
        for (name, default, meaning) in VARS {
            out.push_str(&format!("  {name:<20} {meaning} [{default}]\n"));
        }
        out
    }
}

/// A WAIT for more replicas than this is a typo: nobody runs that many.
const MAX_WAIT_REPLICAS: u32 = 16;
/// WAIT runs inside a request, whose Redis calls are bounded by `store::CALL_TIMEOUT`
/// (800 ms): the write and its WAIT must fit in it.
const MAX_WAIT_TIMEOUT_MS: u64 = 500;

mod defaults {
    use super::LogFormat;
    use std::net::SocketAddr;
    use std::path::PathBuf;

    pub fn redis_url() -> String {
        "redis://127.0.0.1:6379".into()
    }
    pub fn redis_master_name() -> String {
        "scaleout".into()
    }
    pub fn redis_wait_timeout_ms() -> u64 {
        100
    }
    pub fn listen_addr() -> SocketAddr {
        SocketAddr::from(([0, 0, 0, 0], 8080))
    }
    /// The hostname, which in a container is its id: what the seed showed as `served_by`.
    pub fn instance_name() -> String {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .or_else(|| std::env::var("HOSTNAME").ok())
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "scaleout".into())
    }
    pub fn drain_secs() -> u64 {
        5
    }
    pub fn session_ttl_secs() -> u64 {
        86_400
    }
    pub fn log_format() -> LogFormat {
        LogFormat::Json
    }
    /// ntex logs every worker start at info; keep those out of the way.
    pub fn rust_log() -> String {
        "info,ntex=warn".into()
    }
    pub fn workers() -> usize {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    }
    pub fn web_root() -> PathBuf {
        "/srv/www".into()
    }
    pub fn job_work_ms() -> u64 {
        500
    }
    pub fn job_max_attempts() -> u32 {
        3
    }
    pub fn job_visibility_secs() -> u64 {
        30
    }
    pub fn job_dead_max() -> u64 {
        1000
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> impl Iterator<Item = (String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<Vec<_>>()
            .into_iter()
    }

    #[test]
    fn defaults_apply() {
        let s = Settings::from_vars(vars(&[])).unwrap();
        assert_eq!(s.redis_url, "redis://127.0.0.1:6379");
        assert_eq!(s.listen_addr.port(), 8080);
        assert_eq!(s.drain_secs, 5);
        assert_eq!(s.log_format, LogFormat::Json);
        assert_eq!(s.sentinels().unwrap(), Vec::<String>::new());
        assert_eq!(s.redis_master_name, "scaleout");
        assert_eq!(s.redis_wait_replicas, 0);
        assert_eq!(s.redis_wait_timeout_ms, 100);
    }

    #[test]
    fn sentinels_are_a_list() {
        let s = Settings::from_vars(vars(&[(
            "REDIS_SENTINELS",
            "127.0.0.1:26379, sentinel-2:26379",
        )]))
        .unwrap();
        assert_eq!(
            s.sentinels().unwrap(),
            ["127.0.0.1:26379", "sentinel-2:26379"]
        );
    }

    #[test]
    fn errors_name_the_variable() {
        for (k, v) in [
            ("DRAIN_SECS", "soon"),
            ("LOG_FORMAT", "xml"),
            ("LISTEN_ADDR", "nowhere"),
            ("SESSION_TTL_SECS", "0"),
            ("REDIS_URL", "http://127.0.0.1:6379"),
            ("REDIS_URL", "not a url"),
            ("RUST_LOG", "info,scaleout=loud"),
            ("REDIS_SENTINELS", "127.0.0.1"),
            ("REDIS_SENTINELS", "127.0.0.1:26379,:26380"),
            ("REDIS_SENTINELS", "127.0.0.1:99999"),
            ("REDIS_MASTER_NAME", ""),
            ("REDIS_WAIT_REPLICAS", "-1"),
            ("REDIS_WAIT_REPLICAS", "17"),
            ("REDIS_WAIT_TIMEOUT_MS", "0"),
            ("REDIS_WAIT_TIMEOUT_MS", "900"),
        ] {
            let err = Settings::from_vars(vars(&[(k, v)])).unwrap_err();
            assert!(err.contains(k), "{err}");
        }
    }
}
