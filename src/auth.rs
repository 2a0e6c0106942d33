//! Who scaleout is to Redis and to the Sentinels: an ACL user, its password, and TLS.
//!
//! A password only ever comes from a file (a Docker, Swarm or Kubernetes secret), never
//! from an environment value, which `docker inspect` and `/proc/*/environ` show. It is
//! kept in a [`Password`], which has no `Display` and a redacted `Debug`, so no log line,
//! error or page can print it; redis-rs redacts it in its own `Debug` output.
//!
//! Rotation: a [`Login`] reads its file at every keep-warm check, and dials again as soon
//! as it holds another password; so an operator who gives the user a second password,
//! writes it into the file and then removes the old one rotates with no restart and no
//! failed request, and one who changes the ACL first gets fast 503s until the file
//! follows (see docs/security.md).
//!
//! TLS uses the redis crate's rustls support with the ring provider: the CA (and the
//! optional client certificate) are read once at start-up; a file that cannot be read is
//! a configuration error naming its variable.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};

use redis::{ErrorKind, IntoConnectionInfo, RedisError, RedisResult, TlsCertificates};

use crate::config::Settings;

/// A password as read from its file. Neither printed nor compared outside this module.
#[derive(Clone, PartialEq, Eq)]
struct Password(String);

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// An ACL user and the file its password is read from (both optional).
pub struct Login {
    /// Named in logs; `default` when unset.
    user: String,
    /// The variable that names the file, for log lines.
    variable: &'static str,
    file: Option<String>,
    password: Mutex<Option<Password>>,
    /// Set while the file cannot be read, so that is logged once, not at every check.
    unreadable: AtomicBool,
    /// Set while logins fail, so the refusal is logged once, not at every retry.
    refusing: AtomicBool,
}

impl Login {
    fn new(user: &str, variable: &'static str, file: &str) -> Self {
        let login = Self {
            user: if user.is_empty() { "default" } else { user }.to_owned(),
            variable,
            file: (!file.is_empty()).then(|| file.to_owned()),
            password: Mutex::new(None),
            unreadable: AtomicBool::new(false),
            refusing: AtomicBool::new(false),
        };
        login.changed();
        login
    }

    /// Reads the password file again (every keep-warm check does: 4 small reads a second
    /// per HTTP worker thread). True when it now holds another password than before, which the
    /// caller then dials with. A file that cannot be read, or is empty, keeps the old
    /// password; that is logged once, until it can be read again.
    pub fn changed(&self) -> bool {
        let Some(file) = &self.file else {
            return false;
        };
        let read = std::fs::read_to_string(file).map(|text| {
            let first = text.lines().next().map(str::trim).unwrap_or_default();
            (!first.is_empty()).then(|| Password(first.to_owned()))
        });
        let Ok(Some(read)) = read else {
            if !self.unreadable.swap(true, Ordering::Relaxed) {
                let why = read
                    .err()
                    .map_or("it is empty".to_owned(), |e| e.to_string());
                tracing::warn!(user = %self.user, file, "{} cannot be used: {why}", self.variable);
            }
            return false;
        };
        self.unreadable.store(false, Ordering::Relaxed);
        let mut password = self.password.lock().unwrap_or_else(PoisonError::into_inner);
        if password.as_ref() == Some(&read) {
            return false;
        }
        let first = password.is_none();
        *password = Some(read);
        if !first {
            tracing::info!(user = %self.user, "{} changed: logging in with it", self.variable);
        }
        true
    }

    /// The server at `addr` refused this login ([`refused`]): logged once until a login
    /// works again, naming the user and the server, never the password.
    pub fn refused_by(&self, addr: &str) {
        if !self.refusing.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                user = %self.user,
                server = addr,
                "redis refused the login; retrying, with {} read again each time",
                self.variable
            );
        }
    }

    /// A login worked: the next refusal is news again.
    pub fn accepted(&self) {
        if self.refusing.swap(false, Ordering::Relaxed) {
            tracing::info!(user = %self.user, "redis accepted the login");
        }
    }

    /// `info` logging in as this user, and without the `CLIENT SETINFO` calls (the ACL
    /// allows only the commands scaleout uses).
    fn apply(&self, info: redis::ConnectionInfo) -> redis::ConnectionInfo {
        let mut settings = info.redis_settings().clone().set_skip_set_lib_name();
        if self.user != "default" {
            settings = settings.set_username(&self.user);
        }
        if let Some(Password(p)) = &*self.password.lock().unwrap_or_else(PoisonError::into_inner) {
            settings = settings.set_password(p);
        }
        info.set_redis_settings(settings)
    }
}

/// How to dial one kind of server (Redis, or the Sentinels): a login and, with TLS, the
/// certificates.
pub struct Dialer {
    pub login: Login,
    tls: Option<TlsCertificates>,
}

impl Dialer {
    /// The dialers for Redis and for the Sentinels. The error names the variable at fault.
    pub fn from_settings(settings: &Settings) -> Result<(Self, Self), String> {
        let tls = tls(settings)?;
        let redis = Self {
            login: Login::new(
                &settings.redis_username,
                "REDIS_PASSWORD_FILE",
                &settings.redis_password_file,
            ),
            tls: tls.clone(),
        };
        let sentinel = Self {
            login: Login::new(
                &settings.redis_sentinel_username,
                "REDIS_SENTINEL_PASSWORD_FILE",
                &settings.redis_sentinel_password_file,
            ),
            tls,
        };
        Ok((redis, sentinel))
    }

    /// Whether connections named by `host:port` use TLS (Sentinel mode: a CA is set).
    fn scheme(&self) -> &'static str {
        if self.tls.is_some() {
            "rediss"
        } else {
            "redis"
        }
    }

    /// A client for `host:port`, with TLS when this dialer has a CA.
    pub fn client_for(&self, addr: &str) -> RedisResult<redis::Client> {
        self.client(&format!("{}://{addr}", self.scheme()))
    }

    /// A client for a `redis://` or `rediss://` URL, logging in with the current password.
    pub fn client(&self, url: &str) -> RedisResult<redis::Client> {
        let info = self.login.apply(url.into_connection_info()?);
        match (
            &self.tls,
            matches!(info.addr(), redis::ConnectionAddr::TcpTls { .. }),
        ) {
            (Some(certs), true) => redis::Client::build_with_tls(info, certs.clone()),
            _ => redis::Client::open(info),
        }
    }
}

/// The CA and client certificate files, read once; `None` without `REDIS_TLS_CA_FILE`
/// (a `rediss://` URL then verifies against the system's CAs).
fn tls(settings: &Settings) -> Result<Option<TlsCertificates>, String> {
    let read = |variable: &str, path: &str| {
        std::fs::read(path).map_err(|e| format!("{variable}: cannot read {path}: {e}"))
    };
    if settings.redis_tls_ca_file.is_empty() {
        return Ok(None);
    }
    let client_tls = if settings.redis_tls_cert_file.is_empty() {
        None
    } else {
        Some(redis::ClientTlsConfig {
            client_cert: read("REDIS_TLS_CERT_FILE", &settings.redis_tls_cert_file)?,
            client_key: read("REDIS_TLS_KEY_FILE", &settings.redis_tls_key_file)?,
        })
    };
    Ok(Some(TlsCertificates {
        client_tls,
        root_cert: Some(read("REDIS_TLS_CA_FILE", &settings.redis_tls_ca_file)?),
    }))
}

/// Whether Redis (or a Sentinel) refused to let this connection in: a wrong password, a
/// disabled user, or no login where one is required.
pub fn refused(error: &RedisError) -> bool {
    error.kind() == ErrorKind::AuthenticationFailed
        || matches!(error.code(), Some("NOAUTH" | "WRONGPASS"))
}
