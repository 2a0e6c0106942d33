//! The live fleet: every app and worker process renews a small hash in Redis each second,
//! so any replica can answer `/instances` for all of them. A process that dies simply stops
//! renewing and drops out after [`TTL_MS`]; one that stops cleanly removes itself.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;

use crate::clock::now_ms;
use crate::keys;
use crate::metrics::Background;
use crate::store::{RedisFailure, Store};

/// How often each process renews its entry.
pub const BEAT: Duration = Duration::from_secs(1);
/// How long an entry lives without renewal.
pub const TTL_MS: u64 = 5_000;

/// The newest heartbeat time (unix ms) at which an entry counts as gone at `now`.
fn stale_before(now: u64) -> u64 {
    now.saturating_sub(TTL_MS)
}

/// What kind of process an entry describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS), ts(rename = "InstanceRole"))]
#[serde(rename_all = "lowercase")]
pub enum Role {
    App,
    Worker,
}

impl Role {
    /// The name in the heartbeat hash: the same as in JSON.
    fn as_str(self) -> &'static str {
        match self {
            Self::App => "app",
            Self::Worker => "worker",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        [Self::App, Self::Worker]
            .into_iter()
            .find(|role| role.as_str() == s)
    }
}

/// What one process says about itself.
pub struct Member {
    pub name: String,
    pub role: Role,
    pub started_at: u64,
    /// Requests served (app) or jobs processed (worker).
    pub handled: Arc<AtomicU64>,
    pub draining: Arc<AtomicBool>,
}

/// One live process, as `/instances` shows it. Timestamps are unix ms.
#[derive(Debug, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct Instance {
    pub name: String,
    pub role: Role,
    pub started_at: u64,
    pub last_seen: u64,
    pub handled: u64,
    pub draining: bool,
}

impl Member {
    /// Writes this process's entry once, and drops the entries of processes that stopped
    /// renewing theirs: trimming here keeps the `instances` set bounded by the live fleet
    /// even if nobody ever reads `/instances`.
    pub async fn beat(&self, store: &Store) -> Result<(), RedisFailure> {
        let now = now_ms();
        let key = keys::instance(&self.name);
        let mut pipe = redis::pipe();
        pipe.hset_multiple(
            &key,
            &[
                ("name", self.name.clone()),
                ("role", self.role.as_str().to_owned()),
                ("started_at", self.started_at.to_string()),
                ("last_seen", now.to_string()),
                ("handled", self.handled.load(Ordering::Relaxed).to_string()),
                (
                    "draining",
                    u8::from(self.draining.load(Ordering::Relaxed)).to_string(),
                ),
            ],
        )
        .ignore()
        .pexpire(&key, TTL_MS as i64)
        .ignore()
        .zadd(keys::INSTANCES, &self.name, now)
        .ignore()
        .zrembyscore(keys::INSTANCES, "-inf", stale_before(now))
        .ignore();
        let conn = store.conn();
        store
            .background(Background::Heartbeat, async move {
                pipe.query_async::<()>(&mut conn?).await
            })
            .await
    }

    /// Removes this process's entry: a clean exit leaves the fleet at once.
    pub async fn leave(&self, store: &Store) {
        let mut pipe = redis::pipe();
        pipe.del(keys::instance(&self.name))
            .ignore()
            .zrem(keys::INSTANCES, &self.name)
            .ignore();
        let conn = store.conn();
        let _ = store
            .bounded(
                "leave",
                async move { pipe.query_async::<()>(&mut conn?).await },
            )
            .await;
    }

    /// Renews the entry every [`BEAT`] until the task is dropped. Failures are logged once
    /// per outage, not once per beat.
    pub async fn run(self: Arc<Self>, store: Store) {
        let mut healthy = true;
        loop {
            match self.beat(&store).await {
                Ok(()) if !healthy => {
                    tracing::info!("heartbeat restored");
                    healthy = true;
                }
                Err(RedisFailure::Other(error)) if healthy => {
                    tracing::error!(command = "heartbeat", error, "heartbeat failed");
                    healthy = false;
                }
                Err(failure) if healthy => {
                    tracing::warn!(error = %failure, "heartbeat failed");
                    healthy = false;
                }
                _ => {}
            }
            tokio::time::sleep(BEAT).await;
        }
    }
}

/// Every live instance, apps first, then by name. Drops the names whose heartbeat is
/// older than the TTL and reads the rest (one atomic step), then reads their hashes: an
/// entry that expired or left in between is skipped, one that joined shows next time.
pub async fn list(store: &Store) -> Result<Vec<Instance>, RedisFailure> {
    let mut pipe = redis::pipe();
    pipe.atomic()
        .zrembyscore(keys::INSTANCES, "-inf", stale_before(now_ms()))
        .ignore()
        .zrange(keys::INSTANCES, 0, -1);
    let conn = store.conn();
    let (names,): (Vec<String>,) = store
        .bounded("ZRANGE", async move { pipe.query_async(&mut conn?).await })
        .await?;
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let mut pipe = redis::pipe();
    for name in &names {
        pipe.hgetall(keys::instance(name));
    }
    let conn = store.conn();
    let rows: Vec<Vec<(String, String)>> = store
        .bounded("HGETALL", async move { pipe.query_async(&mut conn?).await })
        .await?;
    let mut fleet: Vec<Instance> = rows
        .into_iter()
        .filter(|fields| !fields.is_empty())
        .filter_map(Instance::from_fields)
        .collect();
    fleet.sort_by(|a, b| (a.role, &a.name).cmp(&(b.role, &b.name)));
    Ok(fleet)
}

impl Instance {
    /// `None` for a hash with no known role: no process wrote it, and the API promises
    /// a role to every entry.
    fn from_fields(fields: Vec<(String, String)>) -> Option<Self> {
        let mut role = None;
        let mut it = Instance {
            name: String::new(),
            role: Role::App,
            started_at: 0,
            last_seen: 0,
            handled: 0,
            draining: false,
        };
        for (k, v) in fields {
            match k.as_str() {
                "name" => it.name = v,
                "role" => role = Role::parse(&v),
                "started_at" => it.started_at = v.parse().unwrap_or(0),
                "last_seen" => it.last_seen = v.parse().unwrap_or(0),
                "handled" => it.handled = v.parse().unwrap_or(0),
                "draining" => it.draining = v == "1",
                _ => {}
            }
        }
        it.role = role?;
        Some(it)
    }
}
