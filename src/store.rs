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
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use std::sync::Arc;

use crate::metrics::Metrics;
use crate::{keys, scripts};

/// The longest any request waits on Redis before answering 503.
pub const CALL_TIMEOUT: Duration = Duration::from_millis(800);

/// How often [`Store::keep_warm`] checks the connection.
const WARM_EVERY: Duration = Duration::from_millis(250);

#[derive(Clone)]
pub struct Store {
    conn: ConnectionManager,
    metrics: Arc<Metrics>,
}

impl Store {
    /// Prepares a connection without dialing: the first call connects, so a replica starts
    /// (and answers `/healthz`) even while Redis is down. Must run inside a tokio runtime.
    pub fn connect_lazy(url: &str, metrics: Arc<Metrics>) -> redis::RedisResult<Self> {
        let client = redis::Client::open(url)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_millis(250)))
            .set_response_timeout(Some(Duration::from_millis(500)))
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_millis(200));
        Ok(Self {
            conn: ConnectionManager::new_lazy_with_config(client, config)?,
            metrics,
        })
    }

    /// A handle for callers that build their own commands (fleet, jobs).
    pub fn conn(&self) -> ConnectionManager {
        self.conn.clone()
    }

    /// Pings Redis every [`WARM_EVERY`] for as long as the worker thread runs. A
    /// `ConnectionManager` notices a lost connection only when a call fails, so without
    /// this the first request after an outage would fail too; with it, the connection is
    /// back within a beat of Redis returning, even with no traffic.
    pub async fn keep_warm(self) {
        loop {
            let mut conn = self.conn();
            let ping = async move { redis::cmd("PING").query_async::<String>(&mut conn).await };
            let _ = self.background(Background::KeepWarm, ping).await;
            tokio::time::sleep(WARM_EVERY).await;
        }
    }

    pub async fn ping(&self) -> Result<(), RedisFailure> {
        let mut conn = self.conn();
        self.bounded("PING", async move {
            redis::cmd("PING").query_async::<String>(&mut conn).await
        })
        .await?;
        Ok(())
    }

    /// Returns `(session_count, global_count)` after counting this request.
    pub async fn hit(&self, sid: &uuid::Uuid, ttl_secs: u64) -> Result<(i64, i64), RedisFailure> {
        let mut conn = self.conn();
        let mut call = scripts::HIT.prepare_invoke();
        call.key(keys::session(sid))
            .key(keys::GLOBAL_COUNT)
            .arg(ttl_secs);
        self.bounded(
            "hit script",
            async move { call.invoke_async(&mut conn).await },
        )
        .await
    }

    pub async fn kv_set(&self, key: &str, value: &str) -> Result<(), RedisFailure> {
        let mut conn = self.conn();
        let (k, v) = (keys::kv(key), value.to_owned());
        self.bounded("SET", async move { conn.set::<_, _, ()>(k, v).await })
            .await
    }

    pub async fn kv_get(&self, key: &str) -> Result<Option<String>, RedisFailure> {
        let mut conn = self.conn();
        let k = keys::kv(key);
        self.bounded("GET", async move { conn.get(k).await }).await
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
    /// nobody would notice otherwise.
    pub fn failed(&self, command: &'static str, failure: RedisFailure) -> RedisFailure {
        self.metrics.redis_failed(failure.kind());
        match &failure {
            RedisFailure::Unavailable(error) => {
                tracing::debug!(command, error, "redis unavailable");
            }
            RedisFailure::OutOfMemory(error) => {
                tracing::warn!(command, error, "redis out of memory: write refused");
            }
            RedisFailure::Other(error) => {
                tracing::error!(command, error, "redis command failed");
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

/// The background loops that talk to Redis, for [`Store::background`].
#[derive(Debug, Clone, Copy)]
pub enum Background {
    KeepWarm,
    Heartbeat,
}

impl Background {
    pub const ALL: [Self; 2] = [Self::KeepWarm, Self::Heartbeat];

    /// The `task` label in `/metrics`.
    pub fn label(self) -> &'static str {
        match self {
            Self::KeepWarm => "keep_warm",
            Self::Heartbeat => "heartbeat",
        }
    }
}

/// Why a Redis call failed, in the kinds callers must treat differently: the error of the
/// whole Redis layer (store, fleet, jobs). The one place that maps them to HTTP answers is
/// `From<RedisFailure> for ApiError`; the worker backs off on any of them.
#[derive(Debug, thiserror::Error)]
pub enum RedisFailure {
    /// The connection is down or slow, or Redis said it cannot serve right now (LOADING,
    /// BUSY, MASTERDOWN, READONLY, TRYAGAIN): the same call may well work in a moment.
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
}

/// The kinds of [`RedisFailure`], as `kind` labels in `/metrics`.
#[derive(Debug, Clone, Copy)]
pub enum FailureKind {
    Unavailable,
    OutOfMemory,
    Other,
}

impl FailureKind {
    pub const ALL: [Self; 3] = [Self::Unavailable, Self::OutOfMemory, Self::Other];

    pub fn label(self) -> &'static str {
        match self {
            Self::Unavailable => "unavailable",
            Self::OutOfMemory => "out_of_memory",
            Self::Other => "other",
        }
    }
}

impl RedisFailure {
    pub fn kind(&self) -> FailureKind {
        match self {
            Self::Unavailable(_) => FailureKind::Unavailable,
            Self::OutOfMemory(_) => FailureKind::OutOfMemory,
            Self::Other(_) => FailureKind::Other,
        }
    }
}

/// Error codes with which Redis says "not now" rather than "never".
const NOT_NOW: [&str; 5] = ["LOADING", "BUSY", "MASTERDOWN", "READONLY", "TRYAGAIN"];

impl From<redis::RedisError> for RedisFailure {
    fn from(err: redis::RedisError) -> Self {
        let text = err.to_string();
        match err.code() {
            Some("OOM") => Self::OutOfMemory(text),
            Some(code) if NOT_NOW.contains(&code) => Self::Unavailable(text),
            _ if err.is_io_error() || err.is_connection_dropped() || err.is_timeout() => {
                Self::Unavailable(text)
            }
            _ => Self::Other(text),
        }
    }
}
