//! Configuration: every setting comes from one environment variable, read once at start-up
//! with envy into [`Settings`]. The table [`VARS`] is the one home of each variable's name,
//! default, meaning and rule: `--help`, the defaults and docs/configuration.md's table
//! (checked by a test) all come from it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use tracing_subscriber::filter::Targets;

use DefaultValue::{Computed, Text, Unset};

/// Every variable scaleout reads, as `(name, default, meaning, rule)`. The value is parsed
/// by the type of its [`Settings`] field (the field is the name in lower case); `rule` is
/// what it must meet beyond that. A default is text parsed like a value the user gave, so
/// it cannot disagree with the parser. `meaning` is Markdown: docs/configuration.md shows it as is,
/// `--help` without the backticks.
pub const VARS: &[Var] = &[
    var(
        "REDIS_URL",
        Text("redis://127.0.0.1:6379"),
        "Redis to keep all state in (ignored when `REDIS_SENTINELS` is set)",
        Rule::RedisUrl,
    ),
    var(
        "REDIS_SENTINELS",
        Unset,
        "comma-separated `host:port` Sentinels: follow the primary they name (see docs/redis-ha.md)",
        Rule::HostPorts,
    ),
    var(
        "REDIS_MASTER_NAME",
        Text("scaleout"),
        "the name the Sentinels monitor the primary under",
        Rule::Name,
    ),
    var(
        "REDIS_USERNAME",
        Unset,
        "ACL user to log in to Redis as (unset: the `default` user)",
        Rule::Parses,
    ),
    var(
        "REDIS_PASSWORD_FILE",
        Unset,
        "file holding that user's password (a Docker, Swarm or Kubernetes secret), read again every 250 ms, so a changed password is used without a restart; unset: no password",
        Rule::Parses,
    ),
    var(
        "REDIS_SENTINEL_USERNAME",
        Unset,
        "ACL user to log in to the Sentinels as (unset: the `default` user)",
        Rule::Parses,
    ),
    var(
        "REDIS_SENTINEL_PASSWORD_FILE",
        Unset,
        "file holding the Sentinel user's password, read again before the Sentinels are asked; unset: no password",
        Rule::Parses,
    ),
    var(
        "REDIS_TLS_CA_FILE",
        Unset,
        "CA certificate (PEM) to verify Redis and the Sentinels against; set: every connection uses TLS (`REDIS_URL` must be `rediss://`); unset: TLS only for a `rediss://` `REDIS_URL`, verified against the system's CAs",
        Rule::File,
    ),
    var(
        "REDIS_TLS_CERT_FILE",
        Unset,
        "client certificate (PEM) for a Redis that asks for one; with `REDIS_TLS_KEY_FILE`",
        Rule::File,
    ),
    var(
        "REDIS_TLS_KEY_FILE",
        Unset,
        "the client certificate's private key (PEM)",
        Rule::File,
    ),
    var(
        "REDIS_WAIT_REPLICAS",
        Text("0"),
        // More is a typo: nobody runs that many replicas.
        "after each write, `WAIT` for this many replicas (`0`: off); fewer acknowledgements: 503",
        Rule::AtMost(16),
    ),
    var(
        "REDIS_WAIT_TIMEOUT_MS",
        Text("100"),
        // WAIT runs inside a request, whose Redis calls are bounded by
        // `store::CALL_TIMEOUT` (800 ms): the write and its WAIT must fit in it.
        "how long that `WAIT` may take (1 to 400: it must end within the 500 ms a Redis command may take)",
        Rule::Within(1, 400),
    ),
    var(
        "LISTEN_ADDR",
        Text("0.0.0.0:8080"),
        "address `app`/`web` listen on (port 0 picks a free one)",
        Rule::Parses,
    ),
    var(
        "INSTANCE_NAME",
        Computed("the hostname", hostname),
        "name reported as `served_by` and in `/instances` (in a container: its id)",
        Rule::Name,
    ),
    var(
        "DRAIN_SECS",
        Text("5"),
        "after SIGTERM: seconds to keep serving with `/healthz` at 503",
        Rule::AtMost(3600),
    ),
    var(
        "SESSION_TTL_SECS",
        Text("86400"),
        "idle lifetime of a session (cookie Max-Age and Redis TTL)",
        Rule::AtLeast(1),
    ),
    var(
        "LOG_FORMAT",
        Text("json"),
        "`json` (one object a line) or `pretty`",
        Rule::Parses,
    ),
    var(
        "RUST_LOG",
        // ntex logs every worker start at info; keep those out of the way.
        Text("info,ntex=warn"),
        "log filter: a level, then `target=level` pairs (tracing-subscriber `Targets`)",
        Rule::LogFilter,
    ),
    var(
        "WORKERS",
        Computed("CPU count", cpu_count),
        "HTTP worker threads of `app` and `web`",
        Rule::AtLeast(1),
    ),
    var(
        "WEB_ROOT",
        Text("/srv/www"),
        "`web`: the built frontend (`dist/`) to serve",
        Rule::Parses,
    ),
    var(
        "JOB_WORK_MS",
        Text("500"),
        "`worker`: simulated work per job, in milliseconds",
        Rule::Parses,
    ),
    var(
        "JOB_MAX_ATTEMPTS",
        Text("3"),
        "`worker`: attempts before a job goes to the dead-letter list",
        Rule::AtLeast(1),
    ),
    var(
        "JOB_VISIBILITY_SECS",
        Text("30"),
        "`worker`: lease on a claimed job; the worker renews it while it works",
        Rule::AtLeast(1),
    ),
    var(
        "JOB_DEAD_MAX",
        Text("1000"),
        "`worker`: longest the dead-letter list `jobs:dead` may grow",
        Rule::AtLeast(1),
    ),
];

/// One row of [`VARS`]: name, default, meaning, rule. A tuple, so callers can take just
/// the name with `(name, ..)`.
pub type Var = (&'static str, DefaultValue, &'static str, Rule);

const fn var(name: &'static str, default: DefaultValue, meaning: &'static str, rule: Rule) -> Var {
    (name, default, meaning, rule)
}

/// A variable's value when it is not set.
#[derive(Debug, Clone, Copy)]
pub enum DefaultValue {
    /// This text, parsed as if the user had set it.
    Text(&'static str),
    /// Worked out at start-up: how `--help` describes it, and how to work it out.
    Computed(&'static str, fn() -> String),
    /// Empty, shown as "unset": the feature is off.
    Unset,
}

impl DefaultValue {
    fn value(self) -> String {
        match self {
            Self::Text(text) => text.to_owned(),
            Self::Computed(_, compute) => compute(),
            Self::Unset => String::new(),
        }
    }

    /// How `--help` and docs/configuration.md show it: fixed text in backticks, a computed one described.
    fn shown(self) -> String {
        match self {
            Self::Text(text) => format!("`{text}`"),
            Self::Computed(description, _) => description.to_owned(),
            Self::Unset => "unset".to_owned(),
        }
    }
}

/// What a value must meet beyond parsing as its field's type, checked at start-up so a
/// typo exits 2 with one line naming the variable, instead of a run-time failure
/// (REDIS_URL) or a silent fallback to another filter (RUST_LOG).
#[derive(Debug, Clone, Copy)]
pub enum Rule {
    /// Nothing beyond parsing.
    Parses,
    /// A number at least this.
    AtLeast(u64),
    /// A number at most this.
    AtMost(u64),
    /// A number from the first to the second.
    Within(u64, u64),
    /// A name: 1 to 128 bytes.
    Name,
    /// A URL redis-rs can connect to.
    RedisUrl,
    /// A tracing-subscriber `Targets` filter.
    LogFilter,
    /// Empty, or a comma-separated list of `host:port` (see [`host_ports`]).
    HostPorts,
    /// Empty, or a file that can be read now (a certificate: read once, at start-up).
    File,
}

impl Rule {
    fn check(self, name: &'static str, value: &str) -> Result<(), ConfigError> {
        let broken = |rule: &str| {
            Err(ConfigError::Rule {
                name,
                rule: rule.to_owned(),
            })
        };
        // Numbers already parsed as their field's type, so they parse here too.
        let number = || value.trim().parse::<u64>().unwrap_or_default();
        match self {
            Self::Parses => Ok(()),
            Self::AtLeast(min) if number() < min => broken(&format!("be at least {min}")),
            Self::AtMost(max) if number() > max => broken(&format!("be at most {max}")),
            Self::Within(min, max) if !(min..=max).contains(&number()) => {
                broken(&format!("be from {min} to {max}"))
            }
            Self::Name if value.is_empty() => broken("not be empty"),
            Self::Name if value.len() > 128 => broken("be at most 128 bytes"),
            Self::RedisUrl => match redis::IntoConnectionInfo::into_connection_info(value) {
                Err(source) => Err(ConfigError::RedisUrl { name, source }),
                // A secret is never an environment value: it would show in `docker inspect`.
                Ok(info) if info.redis_settings().password().is_some() => {
                    broken("not hold a password (put it in the file REDIS_PASSWORD_FILE names)")
                }
                Ok(_) => Ok(()),
            },
            Self::LogFilter => value
                .parse::<Targets>()
                .map(drop)
                .map_err(|source| ConfigError::LogFilter { name, source }),
            Self::HostPorts => host_ports(name, value).map(drop),
            Self::File if !value.is_empty() => match std::fs::File::open(value) {
                Ok(_) => Ok(()),
                Err(e) => broken(&format!("name a file that can be read ({value}: {e})")),
            },
            _ => Ok(()),
        }
    }
}

/// Why the configuration was refused: one line that names the variable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A value does not parse as its field's type (envy's message, naming the variable).
    #[error("{0}")]
    Parse(String),
    /// A value parses but breaks its [`Rule`].
    #[error("{name} must {rule}")]
    Rule { name: &'static str, rule: String },
    #[error("{name} is not a Redis URL ({source})")]
    RedisUrl {
        name: &'static str,
        source: redis::RedisError,
    },
    #[error("{name} is not a valid filter ({source})")]
    LogFilter {
        name: &'static str,
        source: tracing_subscriber::filter::ParseError,
    },
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Json,
    Pretty,
}

/// The whole configuration, typed. Field names are the variables' names in lower case;
/// there are no serde defaults: every variable has a value, its own or its default.
#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    pub redis_url: String,
    /// Empty: standalone mode on `redis_url`. Parsed by [`Settings::sentinels`].
    pub redis_sentinels: String,
    pub redis_master_name: String,
    /// Empty: unset, as for every path and name below. See [`crate::auth`].
    pub redis_username: String,
    pub redis_password_file: String,
    pub redis_sentinel_username: String,
    pub redis_sentinel_password_file: String,
    pub redis_tls_ca_file: String,
    pub redis_tls_cert_file: String,
    pub redis_tls_key_file: String,
    pub redis_wait_replicas: u32,
    pub redis_wait_timeout_ms: u64,
    pub listen_addr: SocketAddr,
    pub instance_name: String,
    pub drain_secs: u64,
    pub session_ttl_secs: u64,
    pub log_format: LogFormat,
    pub rust_log: String,
    pub workers: usize,
    pub web_root: PathBuf,
    pub job_work_ms: u64,
    pub job_max_attempts: u32,
    pub job_visibility_secs: u64,
    pub job_dead_max: u64,
}

impl Settings {
    /// Reads the process environment. The error is one line that names the variable.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(std::env::vars())
    }

    /// Reads the given variables (tests pass their own); unknown variables are ignored.
    pub fn from_vars(vars: impl Iterator<Item = (String, String)>) -> Result<Self, ConfigError> {
        let given: Vec<(String, String)> = vars
            .filter(|(k, _)| VARS.iter().any(|(name, ..)| name == k))
            .collect();
        let values = with_defaults(&given);
        let settings: Self = envy::from_iter(values.iter().cloned()).map_err(|e| {
            let msg = e.to_string();
            if msg.contains("provided by") {
                return ConfigError::Parse(msg);
            }
            // serde's own messages (enums, addresses) do not say which variable was wrong:
            // find it by reading each given variable on its own, among the defaults.
            let culprit = given.iter().find(|pair| {
                envy::from_iter::<_, Self>(with_defaults(std::slice::from_ref(*pair))).is_err()
            });
            ConfigError::Parse(match culprit {
                Some((k, v)) => format!("{msg} (value '{v}' provided by {k})"),
                None => msg,
            })
        })?;
        for ((name, _, _, rule), (_, value)) in VARS.iter().zip(&values) {
            rule.check(name, value)?;
        }
        settings.check_tls()?;
        Ok(settings)
    }

    /// The TLS settings that only make sense together.
    fn check_tls(&self) -> Result<(), ConfigError> {
        let plain_url = !self.redis_url.starts_with("rediss://");
        if !self.redis_tls_ca_file.is_empty() && self.redis_sentinels.is_empty() && plain_url {
            return Err(ConfigError::Rule {
                name: "REDIS_URL",
                rule: "be a rediss:// URL when REDIS_TLS_CA_FILE is set".into(),
            });
        }
        if self.redis_tls_cert_file.is_empty() != self.redis_tls_key_file.is_empty() {
            return Err(ConfigError::Rule {
                name: "REDIS_TLS_CERT_FILE",
                rule: "come with REDIS_TLS_KEY_FILE (both or neither)".into(),
            });
        }
        Ok(())
    }

    /// The Sentinels to ask for the primary, as `host:port`; empty in standalone mode.
    /// [`Settings::from_vars`] has checked them already; the error is for a `Settings`
    /// made another way.
    pub fn sentinels(&self) -> Result<Vec<String>, ConfigError> {
        host_ports("REDIS_SENTINELS", &self.redis_sentinels)
    }

    pub fn drain(&self) -> Duration {
        Duration::from_secs(self.drain_secs)
    }

    /// `--help` text for a subcommand: its usage line, then every variable.
    pub fn help(usage: &str) -> String {
        let mut out = format!("{usage}\n\nEnvironment (defaults in brackets):\n");
        for (name, default, meaning, _) in VARS {
            let plain = |s: &str| s.replace('`', "");
            out.push_str(&format!(
                "  {name:<21} {} [{}]\n",
                plain(meaning),
                plain(&default.shown())
            ));
        }
        out
    }

    /// docs/configuration.md's settings table, which a test keeps equal to this.
    pub fn markdown_table() -> String {
        let mut out = String::from("| variable | default | meaning |\n|---|---|---|\n");
        for (name, default, meaning, _) in VARS {
            out.push_str(&format!("| `{name}` | {} | {meaning} |\n", default.shown()));
        }
        out
    }
}

/// `list` split at commas into `host:port` entries (a port from 1 up); empty: none. The
/// error names variable `name` and the first entry that is not a `host:port`.
fn host_ports(name: &'static str, list: &str) -> Result<Vec<String>, ConfigError> {
    if list.trim().is_empty() {
        return Ok(Vec::new());
    }
    list.split(',')
        .map(str::trim)
        .map(|entry| match entry.rsplit_once(':') {
            Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0) => {
                Ok(entry.to_owned())
            }
            _ => Err(ConfigError::Rule {
                name,
                rule: format!("be a comma-separated list of host:port ('{entry}' is not)"),
            }),
        })
        .collect()
}

/// Every variable in [`VARS`] order: the given value, else the default.
fn with_defaults(given: &[(String, String)]) -> Vec<(String, String)> {
    VARS.iter()
        .map(|(name, default, ..)| {
            let value = given
                .iter()
                .find(|(k, _)| k == name)
                .map_or_else(|| default.value(), |(_, v)| v.clone());
            (name.to_string(), value)
        })
        .collect()
}

/// The hostname, which in a container is its id: what the seed showed as `served_by`.
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "scaleout".into())
}

fn cpu_count() -> String {
    std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .to_string()
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
            ("REDIS_WAIT_TIMEOUT_MS", "450"),
            ("REDIS_URL", "redis://app:hunter2@127.0.0.1:6379"),
            // Readable, but without REDIS_TLS_KEY_FILE.
            (
                "REDIS_TLS_CERT_FILE",
                concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"),
            ),
            ("REDIS_TLS_CA_FILE", "/nonexistent/ca.crt"),
        ] {
            let err = Settings::from_vars(vars(&[(k, v)]))
                .unwrap_err()
                .to_string();
            assert!(err.contains(k), "{err}");
            assert!(
                !err.contains("secret"),
                "the error shows the password: {err}"
            );
        }
        let ca = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"); // any readable file
        let err = Settings::from_vars(vars(&[("REDIS_TLS_CA_FILE", ca)])).unwrap_err();
        assert!(err.to_string().contains("REDIS_URL"), "{err}");
    }

    /// docs/configuration.md's settings table is generated from [`VARS`]: when they
    /// differ, this prints the table to paste.
    #[test]
    fn docs_table_is_the_settings_table() {
        let doc = include_str!("../docs/configuration.md");
        let table = Settings::markdown_table();
        assert!(
            doc.contains(&table),
            "docs/configuration.md's settings table differs from config::VARS; it should read:\n\n{table}"
        );
    }
}
