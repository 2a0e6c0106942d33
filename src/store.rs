//! Redis access for request traffic: one lazily connecting, self-healing connection per HTTP
//! worker, and the bounded-time calls the routes make.
//!
//! The redis crate's `ConnectionManager` reconnects after Redis restarts (a bare
//! multiplexed connection never does). Its retries and timeouts are tuned so that a request
//! fails in well under a second while Redis is down instead of hanging, and every call is
//! also wrapped in [`CALL_TIMEOUT`] as a last bound.
//!
//! A failed call is a [`RedisFailure`] of one kind: unavailable (retry soon), out of
//! memory (an operator must act) or other (a bug; retrying will not help). Each kind is
//! logged and answered differently, so a WRONGTYPE never passes for an outage.

use std::time::Duration;

use redis::AsyncCommands;
use redis::aio::ConnectionManager;

use std::sync::Arc;

use crate::config::Settings;
use crate::connector::{Connector, Link};
use crate::metrics::{Background, FailureKind, Metrics};
use crate::{keys, scripts};

/// The longest any request waits on Redis before answering 503.
pub const CALL_TIMEOUT: Duration = Duration::from_millis(800);

/// How often [`Store::keep_warm`] checks the connection.
const WARM_EVERY: Duration = Duration::from_millis(250);
/// The shortest gap between two checks, however many failed calls ask for one.
const RECHECK_GAP: Duration = Duration::from_millis(50);

#[derive(Clone)]
pub struct Store {
    /// This thread's connections to the primary (clones of a store share them).
    link: Arc<Link>,
    metrics: Arc<Metrics>,
    /// `REDIS_WAIT_REPLICAS` and `REDIS_WAIT_TIMEOUT_MS`: see [`Store::written`].
    wait_replicas: u32,
    wait_timeout_ms: u64,
}

impl Store {
    /// A store with connections of its own to the primary `connector` knows. Dials
    /// nothing: the first call connects, so a replica starts (and answers `/healthz`) even
    /// while Redis is down. Every thread that serves requests makes its own.
    pub fn new(connector: Arc<Connector>, settings: &Settings, metrics: Arc<Metrics>) -> Self {
        Self {
            link: Arc::new(Link::new(connector)),
            metrics,
            wait_replicas: settings.redis_wait_replicas,
            wait_timeout_ms: settings.redis_wait_timeout_ms,
        }
    }

    /// A store with a connector of its own (a process with one store: the worker, tests).
    /// The error names the variable at fault.
    pub fn connect_lazy(settings: &Settings, metrics: Arc<Metrics>) -> Result<Self, String> {
        let connector = Arc::new(Connector::new(settings)?);
        Ok(Self::new(connector, settings, metrics))
    }

    /// A connection to the primary, for callers that build their own commands (fleet,
    /// jobs); an error while no primary is known. Use it inside the bounded future, as
    /// `&mut conn?`, so that error is counted and answered like any other.
    pub fn conn(&self) -> redis::RedisResult<ConnectionManager> {
        self.link.conn()
    }

    /// The connection for the worker's blocking BLMOVE (see [`Link::blocking`]).
    pub fn blocking(&self) -> redis::RedisResult<ConnectionManager> {
        self.link.blocking()
    }

    pub fn connector(&self) -> &Connector {
        self.link.connector()
    }

    /// Checks the connection ([`Link::check`]) every [`WARM_EVERY`], or sooner when a call
    /// failed in a way that suggests a failover, for as long as the task runs. A
    /// `ConnectionManager` notices a lost connection only when a call fails, so without
    /// this the first request after an outage would fail too; with it, the connection is
    /// back within a beat of Redis returning, even with no traffic. With Sentinels, this
    /// is also what follows the primary (see [`Connector::follow`]).
    pub async fn keep_warm(self) {
        loop {
            let check = self.link.check();
            let _ = self.background(Background::KeepWarm, check).await;
            // However many calls fail, at most one check per RECHECK_GAP.
            tokio::time::sleep(RECHECK_GAP).await;
            tokio::select! {
                () = tokio::time::sleep(WARM_EVERY - RECHECK_GAP) => {}
                () = self.connector().suspected() => {}
            }
        }
    }

    pub async fn ping(&self) -> Result<(), RedisFailure> {
        let conn = self.conn();
        self.bounded("PING", async move {
            redis::cmd("PING").query_async::<String>(&mut conn?).await
        })
        .await?;
        Ok(())
    }

    /// The primary's `INFO replication` text (its replicas and their offsets).
    pub async fn replication_info(&self) -> Result<String, RedisFailure> {
        let conn = self.conn();
        self.bounded("INFO", async move {
            redis::cmd("INFO")
                .arg("replication")
                .query_async(&mut conn?)
                .await
        })
        .await
    }

    /// Returns `(session_count, global_count)` after counting this request.
    pub async fn hit(&self, sid: &uuid::Uuid, ttl_secs: u64) -> Result<(i64, i64), RedisFailure> {
        let conn = self.conn();
        let mut call = scripts::HIT.prepare_invoke();
        call.key(keys::session(sid))
            .key(keys::GLOBAL_COUNT)
            .arg(ttl_secs);
        self.written(
            "hit script",
            async move { call.invoke_async(&mut conn?).await },
        )
        .await
    }

    pub async fn kv_set(&self, key: &str, value: &str) -> Result<(), RedisFailure> {
        let conn = self.conn();
        let (k, v) = (keys::kv(key), value.to_owned());
        self.written("SET", async move { conn?.set::<_, _, ()>(k, v).await })
            .await
    }

    pub async fn kv_get(&self, key: &str) -> Result<Option<String>, RedisFailure> {
        let conn = self.conn();
        let k = keys::kv(key);
        self.bounded("GET", async move { conn?.get(k).await }).await
    }

    /// Runs one Redis call for a request (or a job step) with [`CALL_TIMEOUT`]. A failure
    /// is counted by kind in `/metrics`, logged as its kind deserves (see
    /// [`Store::failed`]), and returned as the Redis layer's error: the HTTP boundary
    /// turns it into an answer, the worker into a backoff. `command` names the call in
    /// that log line: the Redis command, or the script.
    pub async fn bounded<T>(
        &self,
        command: &'static str,
        call: impl Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, RedisFailure> {
        attempt(call)
            .await
            .map_err(|failure| self.failed(command, failure))
    }

    /// Like [`Store::bounded`] for a call that changes state. With `REDIS_WAIT_REPLICAS`
    /// = N it is followed by `WAIT N REDIS_WAIT_TIMEOUT_MS` on the same connection, and
    /// succeeds only if N replicas acknowledged it: replication is asynchronous, and a
    /// write only the primary had is lost when a replica takes over.
    pub async fn written<T>(
        &self,
        command: &'static str,
        call: impl Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, RedisFailure> {
        if self.wait_replicas == 0 {
            return self.bounded(command, call).await;
        }
        // Taken before the call: the connection the write goes out on (WAIT waits for
        // the replication offset of the connection's own last write).
        let conn = self.conn();
        let value = self.bounded(command, call).await?;
        let (replicas, timeout_ms) = (self.wait_replicas, self.wait_timeout_ms);
        let acks: u32 = self
            .bounded("WAIT", async move {
                redis::cmd("WAIT")
                    .arg(replicas)
                    .arg(timeout_ms)
                    .query_async(&mut conn?)
                    .await
            })
            .await?;
        if acks < replicas {
            let failure = RedisFailure::NotReplicated {
                acks,
                wanted: replicas,
            };
            return Err(self.failed(command, failure));
        }
        Ok(value)
    }

    /// Like [`Store::bounded`] for the background loops (keep-warm, heartbeat): counted
    /// apart from request failures, so an outage with no traffic does not look like
    /// requests failing, and not logged here (each loop logs an outage once).
    pub async fn background<T>(
        &self,
        task: Background,
        call: impl Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, RedisFailure> {
        let result = attempt(call).await;
        if result.is_err() {
            self.metrics.background_failed(task);
        }
        result
    }

    /// Counts and logs a failed call, and hands it back. An outage is
    /// logged at debug (every request fails during one; the heartbeat reports it once),
    /// a full Redis at warn, anything else at error: that is a bug or a tampered key, and
    /// nobody would notice otherwise. A write not replicated in time has its own counter
    /// and a debug line (it comes in bursts while a replica is away).
    pub fn failed(&self, command: &'static str, failure: RedisFailure) -> RedisFailure {
        if let Some(kind) = failure.kind() {
            self.metrics.redis_failed(kind);
        }
        match &failure {
            RedisFailure::Unavailable(error) => {
                // READONLY, a lost connection, a timeout: perhaps a failover.
                self.connector().suspect();
                tracing::debug!(command, error, "redis unavailable");
            }
            RedisFailure::OutOfMemory(error) => {
                tracing::warn!(command, error, "redis out of memory: write refused");
            }
            RedisFailure::Other(error) => {
                tracing::error!(command, error, "redis command failed");
            }
            RedisFailure::NotReplicated { acks, wanted } => {
                self.metrics.not_replicated();
                tracing::debug!(command, acks, wanted, "write not replicated in time");
            }
        }
        failure
    }
}

/// Runs one Redis call with [`CALL_TIMEOUT`], classifying a failure.
async fn attempt<T>(call: impl Future<Output = redis::RedisResult<T>>) -> Result<T, RedisFailure> {
    match tokio::time::timeout(CALL_TIMEOUT, call).await {
        Ok(result) => result.map_err(RedisFailure::from),
        Err(_) => Err(RedisFailure::Unavailable(format!(
            "no answer within {CALL_TIMEOUT:?}"
        ))),
    }
}

/// Why a Redis call failed, in the kinds callers must treat differently: the error of the
/// whole Redis layer (store, fleet, jobs). The one place that maps them to HTTP answers is
/// `From<RedisFailure> for ApiError`; the worker backs off on any of them.
#[derive(Debug, thiserror::Error)]
pub enum RedisFailure {
    /// The connection is down or slow, or Redis said it cannot serve right now (LOADING,
    /// BUSY, MASTERDOWN, READONLY, TRYAGAIN, NOREPLICAS): the same call may well work in a
    /// moment.
    #[error("{0}")]
    Unavailable(String),
    /// Redis is at `maxmemory` and refused a write (OOM). Reads still work; writes do
    /// once memory is freed or raised.
    #[error("{0}")]
    OutOfMemory(String),
    /// Anything else: WRONGTYPE, a script error, a reply we cannot read. Retrying will not
    /// help; it is a bug or a key changed by hand.
    #[error("{0}")]
    Other(String),
    /// `REDIS_WAIT_REPLICAS` is set and fewer replicas acknowledged a write in time (see
    /// [`Store::written`]): the write was made on the primary but may be lost in a
    /// failover, so it is not confirmed. Not a failed call: counted apart from the rest.
    #[error("write not replicated: {acks} of {wanted} replicas acknowledged in time")]
    NotReplicated { acks: u32, wanted: u32 },
}

impl RedisFailure {
    /// The `kind` label of a failed call; none for [`RedisFailure::NotReplicated`], which
    /// has a counter of its own.
    pub fn kind(&self) -> Option<FailureKind> {
        match self {
            Self::Unavailable(_) => Some(FailureKind::Unavailable),
            Self::OutOfMemory(_) => Some(FailureKind::OutOfMemory),
            Self::Other(_) => Some(FailureKind::Other),
            Self::NotReplicated { .. } => None,
        }
    }
}

/// Error codes with which Redis says "not now" rather than "never". NOREPLICAS: a primary
/// with `min-replicas-to-write` that lost its replicas (compose.ha.yaml).
const NOT_NOW: [&str; 6] = [
    "LOADING",
    "BUSY",
    "MASTERDOWN",
    "READONLY",
    "TRYAGAIN",
    "NOREPLICAS",
];

impl From<redis::RedisError> for RedisFailure {
    fn from(err: redis::RedisError) -> Self {
        let text = err.to_string();
        match err.code() {
            Some("OOM") => Self::OutOfMemory(text),
            Some(code) if NOT_NOW.contains(&code) => Self::Unavailable(text),
            // A wrong or rotated password: the keep-warm check reads the file again.
            _ if crate::auth::refused(&err) => Self::Unavailable(text),
            _ if err.is_io_error() || err.is_connection_dropped() || err.is_timeout() => {
                Self::Unavailable(text)
            }
            _ => Self::Other(text),
        }
    }
}
