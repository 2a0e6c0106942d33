//! Where Redis is: the one place that dials it. Every connection the app and the worker
//! hold (request traffic, the worker's blocking claim, heartbeats, keep-warm) comes from a
//! [`Link`] to the process's one [`Connector`], so following a failover is done once, here.
//!
//! Standalone (`REDIS_URL`): one address for the life of the process, as before.
//!
//! Sentinel (`REDIS_SENTINELS`): the primary is whatever the Sentinels name. The redis
//! crate cannot be trusted to follow it: its `SentinelClient` resolves the primary once and
//! never again (redis-rs issue #1438), and a `ConnectionManager` reconnects only on I/O
//! errors, so a connection to a demoted primary answers READONLY to every write, forever.
//! So [`Connector::follow`] (run by every keep-warm loop every 250 ms, at most every
//! [`FOLLOW_GAP`] per process, and at once when a call failed with READONLY or a lost
//! connection: [`Connector::suspect`]) asks any answering Sentinel for the primary's
//! address. When it changed, the old primary is dropped at once (no write may reach a
//! demoted primary, or one that restarts as a master for a moment), `ROLE` on the new
//! address must say master, and only then is it published. In between, calls fail fast
//! with "no primary", which the routes answer with their usual JSON 503.
//!
//! Each HTTP worker thread keeps its own connections (its [`Link`]): one connection
//! shared by all threads would be driven by one of them. A link compares the connector's
//! generation (one atomic load) before every call and reconnects when it moved, so every
//! thread leaves an old primary as soon as any of them found the new one.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError, RwLock};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};
use redis::{RedisError, RedisResult};

use crate::auth::{self, Dialer};
use crate::clock::now_ms;
use crate::config::Settings;

/// The longest call a [`Link::blocking`] connection carries: the worker's BLMOVE, which
/// waits this long on an empty queue (short, so a worker notices SIGTERM within about a
/// second). It is defined here, next to the response timeout it sets (this plus a second),
/// and the queue blocks for exactly it, so the two cannot drift apart.
pub const BLOCK: Duration = Duration::from_secs(1);
/// How long one Sentinel, or a newly named primary, gets to answer.
const SENTINEL_TIMEOUT: Duration = Duration::from_millis(250);
/// However many threads check, the Sentinels are asked at most this often per process
/// (unless a failed call made someone suspect a failover).
const FOLLOW_GAP: Duration = Duration::from_millis(200);

/// The process's view of where the primary is.
pub struct Connector {
    source: Source,
    /// How to dial (and log in to) Redis, and the Sentinels.
    redis: Dialer,
    sentinel: Dialer,
    /// The primary to use; `None` while none is known.
    current: RwLock<Option<Target>>,
    /// Bumped on every change of `current`: links compare it before each call.
    generation: AtomicU64,
    /// `ROLE` on the current address said master at the last check (standalone: always).
    on_primary: AtomicBool,
    /// Unix ms of the last switch to a new primary; 0: none seen by this process.
    last_switch_ms: AtomicU64,
    /// Unix ms of the last time the Sentinels were asked; see [`FOLLOW_GAP`].
    last_follow_ms: AtomicU64,
    /// Set by [`Connector::suspect`]: ask the Sentinels at the next check, gap or not.
    suspected: AtomicBool,
    /// Wakes one keep-warm loop when something is suspected.
    wake: tokio::sync::Notify,
}

enum Source {
    /// `REDIS_URL`.
    Url(String),
    Sentinels {
        sentinels: Vec<String>,
        master: String,
        /// The index of the Sentinel that answered last: asked first next time.
        preferred: AtomicUsize,
        /// A connection to that Sentinel, kept between checks.
        kept: tokio::sync::Mutex<Option<MultiplexedConnection>>,
    },
}

/// A primary: its `host:port` and how to dial it.
#[derive(Clone)]
struct Target {
    addr: String,
    client: redis::Client,
}

/// Where Redis is: one server (`REDIS_URL`), or the primary the Sentinels name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(test, derive(ts_rs::TS), ts(rename = "RedisMode"))]
pub enum Mode {
    Standalone,
    Sentinel,
}

/// What `/redis` shows of the connector.
pub struct View {
    pub mode: Mode,
    pub primary: Option<String>,
    pub on_primary: bool,
    pub sentinels: Vec<String>,
    pub master_name: Option<String>,
    pub last_switch_ms: Option<u64>,
}

impl Connector {
    /// Standalone on `REDIS_URL`, or following the primary `REDIS_SENTINELS` name. Dials
    /// nothing. The error names the variable at fault.
    pub fn new(settings: &Settings) -> Result<Self, String> {
        let sentinels = settings.sentinels().map_err(|e| e.to_string())?;
        let (redis, sentinel) = Dialer::from_settings(settings)?;
        let (source, current) = if sentinels.is_empty() {
            let client = redis
                .client(&settings.redis_url)
                .map_err(|e| format!("REDIS_URL: {e}"))?;
            let addr = client.get_connection_info().addr().to_string();
            let url = settings.redis_url.clone();
            (Source::Url(url), Some(Target { addr, client }))
        } else {
            let source = Source::Sentinels {
                sentinels,
                master: settings.redis_master_name.clone(),
                preferred: AtomicUsize::new(0),
                kept: tokio::sync::Mutex::new(None),
            };
            (source, None)
        };
        Ok(Self {
            on_primary: AtomicBool::new(matches!(source, Source::Url(_))),
            source,
            redis,
            sentinel,
            current: RwLock::new(current),
            generation: AtomicU64::new(1),
            last_switch_ms: AtomicU64::new(0),
            last_follow_ms: AtomicU64::new(0),
            suspected: AtomicBool::new(false),
            wake: tokio::sync::Notify::new(),
        })
    }

    pub fn is_sentinel(&self) -> bool {
        matches!(self.source, Source::Sentinels { .. })
    }

    /// Whether the address in use said it is the primary at the last check.
    pub fn on_primary(&self) -> bool {
        self.on_primary.load(Ordering::Relaxed)
    }

    /// A call failed as "unavailable" (a lost connection, READONLY, a timeout): in
    /// Sentinel mode, ask the Sentinels now rather than at the next tick.
    pub fn suspect(&self) {
        if self.is_sentinel() {
            self.suspected.store(true, Ordering::Relaxed);
            self.wake.notify_one();
        }
    }

    /// Returns when [`Connector::suspect`] was called (or at once if it was since the
    /// last time).
    pub async fn suspected(&self) {
        self.wake.notified().await;
    }

    fn publish(&self, target: Option<Target>) {
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = target;
        self.generation.fetch_add(1, Ordering::Release);
    }

    /// With Sentinels, follows the primary they name, as the module doc describes;
    /// nothing in standalone mode, or if the Sentinels were asked less than
    /// [`FOLLOW_GAP`] ago and nothing is suspected.
    pub async fn follow(&self) -> RedisResult<()> {
        let Source::Sentinels {
            sentinels,
            master,
            preferred,
            kept,
        } = &self.source
        else {
            return Ok(());
        };
        let now = now_ms();
        let recent = now.saturating_sub(self.last_follow_ms.load(Ordering::Relaxed))
            < FOLLOW_GAP.as_millis() as u64;
        if recent && !self.suspected.swap(false, Ordering::Relaxed) {
            return Ok(());
        }
        self.last_follow_ms.store(now, Ordering::Relaxed);
        // A rotated Sentinel password: the kept connection logged in with the old one.
        if self.sentinel.login.changed() {
            *kept.lock().await = None;
        }
        let named = ask_sentinels(&self.sentinel, sentinels, master, preferred, kept).await?;
        let current = self
            .current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .map(|t| t.addr.clone());
        if current.as_deref() == Some(named.as_str()) {
            return Ok(());
        }
        // Leave the old primary at once; follow the new one once it says it is one.
        self.publish(None);
        self.on_primary.store(false, Ordering::Relaxed);
        let client = self.redis.client_for(&named)?;
        let role = async {
            let mut conn = client.get_multiplexed_async_connection().await?;
            is_master(&mut conn).await
        };
        let master = tokio::time::timeout(SENTINEL_TIMEOUT, role)
            .await
            .map_err(|_| not_master(&named, "no answer"))??;
        if !master {
            return Err(not_master(&named, "ROLE says replica"));
        }
        self.publish(Some(Target {
            addr: named.clone(),
            client,
        }));
        self.on_primary.store(true, Ordering::Relaxed);
        if current.is_some() {
            self.last_switch_ms.store(now_ms(), Ordering::Relaxed);
        }
        tracing::info!(primary = %named, "following the redis primary the sentinels name");
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
                let client = self.sentinel.client_for(addr)?;
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

    /// When the password file holds another password than the one in use, the current
    /// primary is dialed again with it (every link reconnects at its next call).
    fn reload_password(&self) {
        if !self.redis.login.changed() {
            return;
        }
        let current = self
            .current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let Some(Target { addr, .. }) = current else {
            return;
        };
        let client = match &self.source {
            Source::Url(url) => self.redis.client(url),
            Source::Sentinels { .. } => self.redis.client_for(&addr),
        };
        match client {
            Ok(client) => self.publish(Some(Target { addr, client })),
            Err(error) => tracing::warn!(%error, "redis: cannot dial with the new password"),
        }
    }

    pub fn view(&self) -> View {
        let current = self.current.read().unwrap_or_else(PoisonError::into_inner);
        let (mode, sentinels, master_name) = match &self.source {
            Source::Url(_) => (Mode::Standalone, Vec::new(), None),
            Source::Sentinels {
                sentinels, master, ..
            } => (Mode::Sentinel, sentinels.clone(), Some(master.clone())),
        };
        View {
            mode,
            primary: current.as_ref().map(|t| t.addr.clone()),
            on_primary: self.on_primary(),
            sentinels,
            master_name,
            last_switch_ms: Some(self.last_switch_ms.load(Ordering::Relaxed)).filter(|&t| t > 0),
        }
    }
}

/// One thread's connections to the connector's current primary, made again whenever the
/// connector's generation moves.
pub struct Link {
    connector: std::sync::Arc<Connector>,
    cached: Mutex<Option<Conns>>,
}

/// The connections to one primary.
#[derive(Clone)]
struct Conns {
    generation: u64,
    /// Request traffic, heartbeats, job scripts: answers within well under a second.
    conn: ConnectionManager,
    /// The worker's BLMOVE, which blocks for up to [`BLOCK`]: a longer response timeout,
    /// and its own connection so it does not hold up the others.
    blocking: ConnectionManager,
}

impl Link {
    pub fn new(connector: std::sync::Arc<Connector>) -> Self {
        Self {
            connector,
            cached: Mutex::new(None),
        }
    }

    pub fn connector(&self) -> &Connector {
        &self.connector
    }

    /// A connection to the primary for request-sized calls. Fails at once (an I/O error,
    /// so callers treat it as "unavailable") while no primary is known.
    pub fn conn(&self) -> RedisResult<ConnectionManager> {
        self.conns(|c| c.conn.clone())
    }

    /// A connection to the primary for the worker's blocking BLMOVE.
    pub fn blocking(&self) -> RedisResult<ConnectionManager> {
        self.conns(|c| c.blocking.clone())
    }

    /// `pick` applied to this link's connections to the current primary, which are
    /// prepared (without dialing: the first call connects) when the primary changed.
    /// Must run inside a tokio runtime.
    fn conns<T>(&self, pick: impl FnOnce(&Conns) -> T) -> RedisResult<T> {
        let generation = self.connector.generation.load(Ordering::Acquire);
        let mut cached = self.cached.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(conns) = cached.as_ref().filter(|c| c.generation == generation) {
            return Ok(pick(conns));
        }
        *cached = None;
        let current = self
            .connector
            .current
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        let target = current.as_ref().ok_or_else(|| {
            RedisError::from(std::io::Error::new(
                std::io::ErrorKind::NotConnected,
                "no redis primary known: the sentinels have not named one that says ROLE master",
            ))
        })?;
        let conns = Conns::lazy(generation, &target.client)?;
        let picked = pick(&conns);
        *cached = Some(conns);
        Ok(picked)
    }

    /// One check, for the keep-warm loop: follow the primary (Sentinel mode), then PING
    /// it (standalone; this also makes a `ConnectionManager` reconnect after an outage) or
    /// ask its `ROLE` (Sentinel: a demoted primary makes `/readyz` 503).
    pub async fn check(&self) -> RedisResult<()> {
        self.connector.reload_password();
        let checked = self.check_primary().await;
        match &checked {
            Ok(()) => self.connector.redis.login.accepted(),
            Err(e) if auth::refused(e) => {
                let addr = self.connector.view().primary.unwrap_or_default();
                self.connector.redis.login.refused_by(&addr);
            }
            Err(_) => {}
        }
        checked
    }

    async fn check_primary(&self) -> RedisResult<()> {
        self.connector.follow().await?;
        let mut conn = self.conn()?;
        if !self.connector.is_sentinel() {
            return redis::cmd("PING").query_async(&mut conn).await;
        }
        let master = is_master(&mut conn).await;
        self.connector
            .on_primary
            .store(matches!(master, Ok(true)), Ordering::Relaxed);
        master.map(drop)
    }
}

impl Conns {
    fn lazy(generation: u64, client: &redis::Client) -> RedisResult<Self> {
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
            generation,
            conn: ConnectionManager::new_lazy_with_config(client.clone(), quick)?,
            blocking: ConnectionManager::new_lazy_with_config(client.clone(), blocking)?,
        })
    }
}

/// Whether `ROLE` says master.
async fn is_master(conn: &mut impl redis::aio::ConnectionLike) -> RedisResult<bool> {
    let reply: Vec<redis::Value> = redis::cmd("ROLE").query_async(conn).await?;
    Ok(matches!(reply.first(), Some(redis::Value::BulkString(role)) if role == b"master"))
}

fn not_master(addr: &str, why: &str) -> RedisError {
    RedisError::from(std::io::Error::other(format!(
        "the sentinels name {addr}, but it is not a master yet ({why})"
    )))
}

/// The primary's `host:port` from the first Sentinel that answers, starting with the one
/// that answered last time (its connection is kept).
async fn ask_sentinels(
    dialer: &Dialer,
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
                    let client = dialer.client_for(&sentinels[i])?;
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
                dialer.login.accepted();
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
            Ok(Err(e)) => {
                // A refused login: the next follow reads the password file again.
                if auth::refused(&e) {
                    dialer.login.refused_by(&sentinels[i]);
                }
                last_error = Some(format!("sentinel {}: {e}", sentinels[i]));
            }
            Err(_) => last_error = Some(format!("sentinel {}: no answer", sentinels[i])),
        }
    }
    Err(RedisError::from(std::io::Error::other(
        last_error.unwrap_or_else(|| "no sentinel configured".into()),
    )))
}
