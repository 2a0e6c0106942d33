//! Where Redis is: the one place that dials it. Every connection the app and the worker
//! hold (request traffic, the worker's blocking claim, heartbeats, keep-warm) comes from a
//! [`Connector`], so following a failover is done once, here.
//!
//! Standalone (`REDIS_URL`): one address for the life of the process, as before.
//!
//! Sentinel (`REDIS_SENTINELS`): the primary is whatever the Sentinels name. The redis
//! crate cannot be trusted to follow it: its `SentinelClient` resolves the primary once and
//! never again (redis-rs issue #1438), and a `ConnectionManager` reconnects only on I/O
//! errors, so a connection to a demoted primary answers READONLY to every write, forever.
//! So [`Connector::check`] (run every 250 ms by `Store::keep_warm`, and at once when a call
//! failed with READONLY or a lost connection: [`Connector::suspect`]) asks any answering
//! Sentinel for the primary's address and, when it changed, drops the old connections at
//! once (no write may reach a demoted primary that restarts as a master for a moment),
//! checks that `ROLE` on the new address says master, and only then hands out connections
//! to it. In between, calls fail fast with "no primary", which the routes answer with
//! their usual JSON 503.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{PoisonError, RwLock};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};
use redis::{RedisError, RedisResult};

use crate::config::Settings;
use crate::fleet::now_ms;
use crate::jobs::queue::BLOCK;

/// How long one Sentinel gets to answer before the next one is asked.
const SENTINEL_TIMEOUT: Duration = Duration::from_millis(250);

/// Hands out connections to the current primary.
pub struct Connector {
    source: Source,
    current: RwLock<Option<Primary>>,
    /// `ROLE` on the current address said master at the last check (standalone: always).
    on_primary: AtomicBool,
    /// Unix ms of the last switch to a new primary; 0: none seen by this process.
    last_switch_ms: AtomicU64,
    /// Woken by [`Connector::suspect`], awaited by the keep-warm loop.
    wake: tokio::sync::Notify,
}

enum Source {
    Url,
    Sentinels {
        sentinels: Vec<String>,
        master: String,
        /// The index of the Sentinel that answered last: asked first next time.
        preferred: AtomicUsize,
        /// A connection to that Sentinel, kept between checks.
        conn: tokio::sync::Mutex<Option<MultiplexedConnection>>,
    },
}

/// The connections to one Redis server.
#[derive(Clone)]
struct Primary {
    addr: String,
    /// Request traffic, heartbeats, job scripts: answers within well under a second.
    conn: ConnectionManager,
    /// The worker's BLMOVE, which blocks for up to [`BLOCK`]: a longer response timeout,
    /// and its own connection so it does not hold up the others.
    blocking: ConnectionManager,
}

impl Primary {
    /// Prepares both connections without dialing: the first call connects, so a process
    /// starts (and answers `/healthz`) even while Redis is down. Must run inside a tokio
    /// runtime.
    fn lazy(addr: String, client: &redis::Client) -> RedisResult<Self> {
        let quick = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_millis(250)))
            .set_response_timeout(Some(Duration::from_millis(500)))
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_millis(200));
        let blocking = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_millis(500)))
            .set_response_timeout(Some(BLOCK + Duration::from_secs(1)))
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_millis(200));
        Ok(Self {
            addr,
            conn: ConnectionManager::new_lazy_with_config(client.clone(), quick)?,
            blocking: ConnectionManager::new_lazy_with_config(client.clone(), blocking)?,
        })
    }
}

/// What `/redis` shows of the connector.
pub struct View {
    pub mode: &'static str,
    pub primary: Option<String>,
    pub on_primary: bool,
    pub sentinels: Vec<String>,
    pub master_name: Option<String>,
    pub last_switch_ms: Option<u64>,
}

impl Connector {
    /// Standalone on `REDIS_URL`, or following the primary `REDIS_SENTINELS` name. Dials
    /// nothing yet. Must run inside a tokio runtime.
    pub fn new(settings: &Settings) -> Result<Self, String> {
        let sentinels = settings.sentinels()?;
        let (source, current) = if sentinels.is_empty() {
            let client = redis::Client::open(settings.redis_url.as_str())
                .map_err(|e| format!("REDIS_URL: {e}"))?;
            let addr = client.get_connection_info().addr().to_string();
            let primary = Primary::lazy(addr, &client).map_err(|e| e.to_string())?;
            (Source::Url, Some(primary))
        } else {
            let source = Source::Sentinels {
                sentinels,
                master: settings.redis_master_name.clone(),
                preferred: AtomicUsize::new(0),
                conn: tokio::sync::Mutex::new(None),
            };
            (source, None)
        };
        Ok(Self {
            on_primary: AtomicBool::new(matches!(source, Source::Url)),
            source,
            current: RwLock::new(current),
            last_switch_ms: AtomicU64::new(0),
            wake: tokio::sync::Notify::new(),
        })
    }

    /// A connection to the primary for request-sized calls. Fails at once (an I/O error,
    /// so callers treat it as "unavailable") while no primary is known.
    pub fn conn(&self) -> RedisResult<ConnectionManager> {
        self.primary(|p| p.conn.clone())
    }

    /// A connection to the primary for the worker's blocking BLMOVE.
    pub fn blocking(&self) -> RedisResult<ConnectionManager> {
        self.primary(|p| p.blocking.clone())
    }

    /// `pick` applied to the current primary (a cheap clone: this runs for every call).
    fn primary<T>(&self, pick: impl FnOnce(&Primary) -> T) -> RedisResult<T> {
        let current = self.current.read().unwrap_or_else(PoisonError::into_inner);
        current.as_ref().map(pick).ok_or_else(|| {
            RedisError::from(std::io::Error::new(
                std::io::ErrorKind::NotConnected,
                "no redis primary known: the sentinels have not named one that says ROLE master",
            ))
        })
    }

    /// Whether the address in use said it is the primary at the last check.
    pub fn on_primary(&self) -> bool {
        self.on_primary.load(Ordering::Relaxed)
    }

    /// A call failed as "unavailable" (a lost connection, READONLY, a timeout): in
    /// Sentinel mode, check the primary now rather than at the next tick.
    pub fn suspect(&self) {
        if matches!(self.source, Source::Sentinels { .. }) {
            self.wake.notify_one();
        }
    }

    /// Returns when [`Connector::suspect`] was called (or at once if it was since the
    /// last time).
    pub async fn suspected(&self) {
        self.wake.notified().await;
    }

    /// One check of the connection: standalone, a PING (which also makes the
    /// `ConnectionManager` reconnect after an outage); with Sentinels, follow the primary
    /// they name, as the module doc describes.
    pub async fn check(&self) -> RedisResult<()> {
        let Source::Sentinels {
            sentinels,
            master,
            preferred,
            conn,
        } = &self.source
        else {
            let mut conn = self.conn()?;
            return redis::cmd("PING").query_async(&mut conn).await;
        };
        let named = ask_sentinels(sentinels, master, preferred, conn).await;
        let current = self
            .current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let had_one = current.is_some();
        match current.filter(|c| named.as_ref().is_err() || named.as_ref().ok() == Some(&c.addr)) {
            // The Sentinels name it (or none answered): is it still the master?
            Some(current) => {
                let master = role(current.conn.clone()).await;
                self.on_primary
                    .store(matches!(master, Ok(true)), Ordering::Relaxed);
                master.map(drop)
            }
            None => self.switch(named?, had_one).await,
        }
    }

    /// Leaves the old primary at once, and follows `addr` once `ROLE` there says master.
    async fn switch(&self, addr: String, had_one: bool) -> RedisResult<()> {
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = None;
        self.on_primary.store(false, Ordering::Relaxed);
        let client = redis::Client::open(format!("redis://{addr}"))?;
        let primary = Primary::lazy(addr.clone(), &client)?;
        if !role(primary.conn.clone()).await? {
            return Err(RedisError::from(std::io::Error::other(format!(
                "the sentinels name {addr}, but it is not a master (yet)"
            ))));
        }
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Some(primary);
        self.on_primary.store(true, Ordering::Relaxed);
        if had_one {
            self.last_switch_ms.store(now_ms(), Ordering::Relaxed);
        }
        tracing::info!(primary = %addr, "following the redis primary the sentinels name");
        Ok(())
    }

    /// Each configured Sentinel and whether it answers PING now (none in standalone).
    pub async fn sentinels_up(&self) -> Vec<(String, bool)> {
        let Source::Sentinels { sentinels, .. } = &self.source else {
            return Vec::new();
        };
        let mut up = Vec::with_capacity(sentinels.len());
        for addr in sentinels {
            let ping = async {
                let client = redis::Client::open(format!("redis://{addr}"))?;
                let mut conn = client.get_multiplexed_async_connection().await?;
                redis::cmd("PING").query_async::<()>(&mut conn).await
            };
            let answered = matches!(
                tokio::time::timeout(SENTINEL_TIMEOUT, ping).await,
                Ok(Ok(()))
            );
            up.push((addr.clone(), answered));
        }
        up
    }

    pub fn view(&self) -> View {
        let current = self.current.read().unwrap_or_else(PoisonError::into_inner);
        let (mode, sentinels, master_name) = match &self.source {
            Source::Url => ("standalone", Vec::new(), None),
            Source::Sentinels {
                sentinels, master, ..
            } => ("sentinel", sentinels.clone(), Some(master.clone())),
        };
        View {
            mode,
            primary: current.as_ref().map(|p| p.addr.clone()),
            on_primary: self.on_primary(),
            sentinels,
            master_name,
            last_switch_ms: Some(self.last_switch_ms.load(Ordering::Relaxed)).filter(|&t| t > 0),
        }
    }
}

/// Whether `ROLE` says master.
async fn role(mut conn: ConnectionManager) -> RedisResult<bool> {
    let reply: Vec<redis::Value> = redis::cmd("ROLE").query_async(&mut conn).await?;
    Ok(matches!(reply.first(), Some(redis::Value::BulkString(role)) if role == b"master"))
}

/// The primary's `host:port` from the first Sentinel that answers, starting with the one
/// that answered last time (its connection is kept).
async fn ask_sentinels(
    sentinels: &[String],
    master: &str,
    preferred: &AtomicUsize,
    kept: &tokio::sync::Mutex<Option<MultiplexedConnection>>,
) -> RedisResult<String> {
    let mut kept = kept.lock().await;
    let first = preferred.load(Ordering::Relaxed);
    let mut last_error = None;
    for i in (0..sentinels.len()).map(|k| (first + k) % sentinels.len()) {
        let ask = async {
            let mut conn = match kept.take().filter(|_| i == first) {
                Some(conn) => conn,
                None => {
                    let client = redis::Client::open(format!("redis://{}", sentinels[i]))?;
                    client.get_multiplexed_async_connection().await?
                }
            };
            let addr: Option<(String, u16)> = redis::cmd("SENTINEL")
                .arg("GET-MASTER-ADDR-BY-NAME")
                .arg(master)
                .query_async(&mut conn)
                .await?;
            Ok::<_, RedisError>((conn, addr))
        };
        match tokio::time::timeout(SENTINEL_TIMEOUT, ask).await {
            Ok(Ok((conn, Some((host, port))))) => {
                *kept = Some(conn);
                preferred.store(i, Ordering::Relaxed);
                // An IPv6 address needs brackets in a URL.
                return Ok(if host.contains(':') {
                    format!("[{host}]:{port}")
                } else {
                    format!("{host}:{port}")
                });
            }
            Ok(Ok((_, None))) => {
                last_error = Some(format!("sentinel {} does not know {master}", sentinels[i]));
            }
            Ok(Err(e)) => last_error = Some(format!("sentinel {}: {e}", sentinels[i])),
            Err(_) => last_error = Some(format!("sentinel {}: no answer", sentinels[i])),
        }
    }
    Err(RedisError::from(std::io::Error::other(
        last_error.unwrap_or_else(|| "no sentinel configured".into()),
    )))
}
