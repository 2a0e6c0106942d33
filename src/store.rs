//! Redis access for request traffic: one lazily connecting, self-healing connection per HTTP
//! worker, and the bounded-time calls the routes make.
//!
//! The redis crate's `ConnectionManager` reconnects after Redis restarts (a bare
//! multiplexed connection never does). Its retries and timeouts are tuned so that a request
//! fails in well under a second while Redis is down instead of hanging, and every call is
//! also wrapped in [`CALL_TIMEOUT`] as a last bound.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, Script};

use std::sync::atomic::Ordering;
use std::sync::{Arc, LazyLock};

use crate::error::ApiError;
use crate::keys;
use crate::metrics::Metrics;

/// The longest any request waits on Redis before answering 503.
pub const CALL_TIMEOUT: Duration = Duration::from_millis(800);

/// How often [`Store::keep_warm`] checks the connection.
const WARM_EVERY: Duration = Duration::from_millis(250);

/// Counts one hit on a session and on the global counter, atomically, in one round trip.
static HIT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local s = redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[1])
local g = redis.call('INCR', KEYS[2])
return {s, g}
",
    )
});

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
            let _ = self.ping().await;
            tokio::time::sleep(WARM_EVERY).await;
        }
    }

    pub async fn ping(&self) -> Result<(), ApiError> {
        let mut conn = self.conn();
        self.bounded(async move { redis::cmd("PING").query_async::<String>(&mut conn).await })
            .await?;
        Ok(())
    }

    /// Returns `(session_count, global_count)` after counting this request.
    pub async fn hit(&self, sid: &uuid::Uuid, ttl_secs: u64) -> Result<(i64, i64), ApiError> {
        let mut conn = self.conn();
        let mut call = HIT.prepare_invoke();
        call.key(keys::session(sid))
            .key(keys::GLOBAL_COUNT)
            .arg(ttl_secs);
        self.bounded(async move { call.invoke_async(&mut conn).await })
            .await
    }

    pub async fn kv_set(&self, key: &str, value: &str) -> Result<(), ApiError> {
        let mut conn = self.conn();
        let (k, v) = (keys::kv(key), value.to_owned());
        self.bounded(async move { conn.set::<_, _, ()>(k, v).await })
            .await
    }

    pub async fn kv_get(&self, key: &str) -> Result<Option<String>, ApiError> {
        let mut conn = self.conn();
        let k = keys::kv(key);
        self.bounded(async move { conn.get(k).await }).await
    }

    /// Runs one Redis call with [`CALL_TIMEOUT`]; any failure is counted and becomes a 503.
    pub async fn bounded<T>(
        &self,
        call: impl Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, ApiError> {
        let result = match tokio::time::timeout(CALL_TIMEOUT, call).await {
            Ok(result) => result.map_err(ApiError::from),
            Err(_) => {
                tracing::debug!("redis call timed out");
                Err(ApiError::RedisUnavailable)
            }
        };
        if result.is_err() {
            self.metrics.redis_errors.fetch_add(1, Ordering::Relaxed);
        }
        result
    }
}
