//! The queue's Redis side. Each change of a job's state is one atomic command or Lua
//! script, so a job is always in exactly one place: the queue `jobs`, one worker's
//! processing list, the retry set `jobs:delayed`, the dead-letter list `jobs:dead`, or done.
//!
//! Queue items are job ids whose details live in the `job:<id>` hash. An item with no such
//! hash is a plain string someone pushed by hand (`redis-cli RPUSH jobs x`, as the seed's
//! README does): the worker that claims it makes it a job named after the string, with a
//! fresh id.
//!
//! Claims are fenced: claiming writes a random token into the job's hash, completing or
//! failing requires that token, and reclaiming a job deletes it. So a worker that was
//! presumed dead, or froze, can no longer finish a job that is back in the queue or
//! already someone else's; it learns that its claim was lost.
//!
//! Claims are leases: claiming sets `lease_until`, the worker renews it while it works
//! ([`Consumer::renew`]), and the reclaimer takes back only jobs whose lease ran out or
//! whose worker's heartbeat is gone. A run lost that way was an attempt: on the last one
//! the job goes to the dead-letter list rather than back to the queue.
//!
//! The scripts live in [`crate::scripts`] and touch only the keys passed to them: a step
//! that visits the jobs in a list or the workers in a set first reads them here, then
//! passes their keys, and the script checks again what it was told (see that module).

use redis::{AsyncCommands, ScriptInvocation};

use super::{FINISHED_TTL, Job, Lengths, Limits, MAX_NAME, RECENT, Stats, new_id};
use crate::clock::now_ms;
use crate::connector::BLOCK;
use crate::store::{RedisFailure, Store};
use crate::{keys, scripts};

/// A job hash as `HGETALL` returns it; values are bytes (see [`Job`]).
type Fields = Vec<(String, Vec<u8>)>;
/// What `lengths.lua` returns: queue, processing, delayed, dead.
type LengthsReply = (u64, u64, u64, u64);

/// How many due retries one upkeep pass moves back to the queue, to keep scripts short.
const PROMOTE_BATCH: isize = 100;

/// How often [`retry_while_changed`] reads again before it gives up.
const MAX_READS: usize = 5;

/// Runs `once` (read what a script needs, then run the script on it) again while the
/// script refuses what was read: `None` means the data changed in between and the script
/// did nothing. Another try almost always succeeds, since the data read (a consumers set,
/// a dead list's tail) changes rarely; data that keeps changing fails as unavailable
/// ("try again"), counted and logged by the store under `command` like any other failed
/// call. Here, not in `scripts`, because it is the queue's scripts that refuse stale
/// reads, and it needs the store, which `scripts` sits below.
async fn retry_while_changed<T>(
    store: &Store,
    command: &'static str,
    mut once: impl AsyncFnMut() -> Result<Option<T>, RedisFailure>,
) -> Result<T, RedisFailure> {
    for _ in 0..MAX_READS {
        if let Some(done) = once().await? {
            return Ok(done);
        }
    }
    let failure = RedisFailure::Unavailable(format!(
        "the data the script needs changed {MAX_READS} times while it was read"
    ));
    Err(store.failed(command, failure))
}

/// The end of the dead-letter list that a script's burials could push off it, read
/// before the script runs so it can delete those jobs' hashes (see `dead.lua`).
struct DeadTail {
    /// Index of the first id read; -1 when nothing was read because nothing is buried.
    from: isize,
    ids: Vec<Vec<u8>>,
}

impl DeadTail {
    /// Reads the ids that `burials` burials could trim off a list kept to `dead_max`:
    /// each burial pushes every id one place further, so those from `dead_max - burials`.
    async fn read(store: &Store, dead_max: u64, burials: usize) -> Result<Self, RedisFailure> {
        if burials == 0 {
            return Ok(Self {
                from: -1,
                ids: Vec::new(),
            });
        }
        let from = isize::try_from(dead_max.saturating_sub(burials as u64)).unwrap_or(isize::MAX);
        let conn = store.conn();
        let ids = store
            .bounded(
                "LRANGE",
                async move { conn?.lrange(keys::DEAD, from, -1).await },
            )
            .await?;
        Ok(Self { from, ids })
    }

    /// Passes the tail's start and length: a burying script's first two arguments.
    fn pass_span(&self, call: &mut ScriptInvocation<'_>) {
        call.arg(self.from).arg(self.ids.len());
    }

    /// Passes the tail's ids and their hashes: a burying script's last keys and arguments.
    fn pass_ids(&self, call: &mut ScriptInvocation<'_>) {
        for id in &self.ids {
            call.key(keys::job_of_item(id)).arg(id);
        }
    }
}

/// What became of a newly submitted job.
pub enum Enqueued {
    /// Queued; the queue's length includes it.
    New { queue_length: u64 },
    /// A job with this id already exists; nothing was queued.
    Existing { queue_length: u64, job: Job },
}

/// Creates job `id` named `name` and appends it to the queue.
pub async fn enqueue(store: &Store, id: &str, name: &str) -> Result<Enqueued, RedisFailure> {
    let conn = store.conn();
    let mut call = scripts::ENQUEUE.prepare_invoke();
    call.key(keys::job(id))
        .key(keys::JOBS)
        .key(keys::RECENT)
        .arg(id)
        .arg(name)
        .arg(now_ms())
        .arg(RECENT);
    let (created, queue_length, fields): (u8, u64, Fields) = store
        .written("enqueue script", async move {
            call.invoke_async(&mut conn?).await
        })
        .await?;
    Ok(if created == 1 {
        Enqueued::New { queue_length }
    } else {
        Enqueued::Existing {
            queue_length,
            job: Job::from_fields(fields),
        }
    })
}

/// One job, if its hash exists.
pub async fn job(store: &Store, id: &str) -> Result<Option<Job>, RedisFailure> {
    let conn = store.conn();
    let key = keys::job(id);
    let fields: Fields = store
        .bounded("HGETALL", async move { conn?.hgetall(key).await })
        .await?;
    Ok((!fields.is_empty()).then(|| Job::from_fields(fields)))
}

/// The most recent jobs, newest first (those whose hash has expired are left out), and
/// the lengths. The recent ids are read first, then each job's fields: a job enqueued in
/// between shows on the next call.
pub async fn overview(store: &Store) -> Result<(Vec<Job>, Lengths), RedisFailure> {
    let (jobs, lengths): (Vec<Fields>, LengthsReply) =
        retry_while_changed(store, "overview script", async || {
            let mut pipe = redis::pipe();
            pipe.smembers(keys::CONSUMERS)
                .lrange(keys::RECENT, 0, RECENT as isize - 1);
            let conn = store.conn();
            let (consumers, recent): (Vec<String>, Vec<Vec<u8>>) = store
                .bounded("SMEMBERS, LRANGE", async move {
                    pipe.query_async(&mut conn?).await
                })
                .await?;
            let mut call = scripts::OVERVIEW.prepare_invoke();
            scripts::lengths_keys(&mut call, &consumers);
            for id in &recent {
                call.key(keys::job_of_item(id));
            }
            let conn = store.conn();
            store
                .bounded("overview script", async move {
                    call.invoke_async(&mut conn?).await
                })
                .await
        })
        .await?;
    let jobs = jobs.into_iter().map(Job::from_fields).collect();
    Ok((jobs, lengths_from(lengths)))
}

/// The fleet-wide counters and lengths.
pub async fn stats(store: &Store) -> Result<Stats, RedisFailure> {
    let (counters, lengths): (Vec<Option<u64>>, LengthsReply) =
        retry_while_changed(store, "stats script", async || {
            let consumers = consumers(store).await?;
            let mut call = scripts::STATS.prepare_invoke();
            scripts::lengths_keys(&mut call, &consumers);
            call.key(keys::JOB_STATS);
            let conn = store.conn();
            store
                .bounded("stats script", async move {
                    call.invoke_async(&mut conn?).await
                })
                .await
        })
        .await?;
    let counter = |i: usize| counters.get(i).copied().flatten().unwrap_or(0);
    Ok(Stats {
        processed: counter(0),
        failed: counter(1),
        dead: counter(2),
        lengths: lengths_from(lengths),
    })
}

/// The workers registered as consumers, each owning a processing list.
async fn consumers(store: &Store) -> Result<Vec<String>, RedisFailure> {
    let conn = store.conn();
    store
        .bounded(
            "SMEMBERS",
            async move { conn?.smembers(keys::CONSUMERS).await },
        )
        .await
}

fn lengths_from((queue, processing, delayed, dead): LengthsReply) -> Lengths {
    Lengths {
        queue_length: queue,
        processing_length: processing,
        delayed_length: delayed,
        dead_length: dead,
    }
}

/// Takes back the jobs of workers that stopped sending heartbeats, and jobs whose lease
/// ran out: to the queue, or to `jobs:dead` when `limits.max_attempts` is used up. Any
/// worker may run it at any time. Returns how many were requeued and how many went dead.
///
/// Reads the consumers and their processing lists, then runs the script on what it read;
/// the script checks each item's list, heartbeat and lease as they are then, so a job or a
/// worker that appeared in between is simply left for the next pass.
pub async fn reclaim(store: &Store, limits: &Limits) -> Result<(u64, u64), RedisFailure> {
    retry_while_changed(store, "reclaim script", async || {
        let consumers = consumers(store).await?;
        let lists: Vec<Vec<Vec<u8>>> = if consumers.is_empty() {
            Vec::new()
        } else {
            let mut pipe = redis::pipe();
            for worker in &consumers {
                pipe.lrange(keys::processing(worker), 0, -1);
            }
            let conn = store.conn();
            store
                .bounded("LRANGE", async move { pipe.query_async(&mut conn?).await })
                .await?
        };
        let burials = lists.iter().map(Vec::len).sum();
        let tail = DeadTail::read(store, limits.dead_max, burials).await?;
        let mut call = scripts::RECLAIM.prepare_invoke();
        call.key(keys::CONSUMERS)
            .key(keys::JOBS)
            .key(keys::DEAD)
            .key(keys::JOB_STATS);
        tail.pass_span(&mut call);
        call.arg(now_ms())
            .arg(limits.max_attempts)
            .arg(limits.dead_max)
            .arg(consumers.len());
        for (worker, items) in consumers.iter().zip(&lists) {
            call.key(keys::instance(worker))
                .key(keys::processing(worker))
                .arg(worker)
                .arg(items.len());
            for item in items {
                call.key(keys::job_of_item(item)).arg(item);
            }
        }
        tail.pass_ids(&mut call);
        let conn = store.conn();
        store
            .written("reclaim script", async move {
                call.invoke_async(&mut conn?).await
            })
            .await
    })
    .await
}

/// Moves failed jobs whose retry time has come back to the queue. Any worker may run it.
pub async fn promote_due(store: &Store) -> Result<u64, RedisFailure> {
    let now = now_ms();
    let conn = store.conn();
    let due: Vec<Vec<u8>> = store
        .bounded("ZRANGEBYSCORE", async move {
            conn?
                .zrangebyscore_limit(keys::DELAYED, "-inf", now, 0, PROMOTE_BATCH)
                .await
        })
        .await?;
    if due.is_empty() {
        return Ok(0);
    }
    let mut call = scripts::PROMOTE.prepare_invoke();
    call.key(keys::DELAYED).key(keys::JOBS).arg(now);
    for id in &due {
        call.key(keys::job_of_item(id)).arg(id);
    }
    let conn = store.conn();
    store
        .written("promote script", async move {
            call.invoke_async(&mut conn?).await
        })
        .await
}

/// A job a worker holds, with the token that proves the claim when it reports back.
#[derive(Debug, Clone)]
pub struct Claim {
    pub id: String,
    pub name: String,
    /// 1 on the first claim; reclaimed and retried runs count up.
    pub attempt: u32,
    token: String,
}

/// How an attempt ended.
#[derive(Debug, Clone)]
pub enum Outcome {
    Done,
    /// Failed; run it again after `at_ms` (unix ms).
    Retry {
        error: String,
        at_ms: u64,
    },
    /// Failed with no attempt left.
    Dead {
        error: String,
    },
}

/// One worker's end of the queue: its processing list. BLMOVE blocks for up to
/// [`BLOCK`], longer than a request connection's response timeout, so it goes out on the
/// store's blocking connection ([`Store::blocking`]).
pub struct Consumer {
    name: String,
    processing: String,
    limits: Limits,
    store: Store,
}

impl Consumer {
    /// Prepares the consumer `name` (the worker's instance name).
    pub fn new(name: &str, limits: Limits, store: Store) -> Self {
        Self {
            name: name.to_owned(),
            processing: keys::processing(name),
            limits,
            store,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Waits up to [`BLOCK`] for the next item and moves it, atomically, into this
    /// worker's processing list, where a crash cannot lose it. `None` if the queue stayed
    /// empty. Call [`Consumer::register`] first, so the reclaimer knows this list, and
    /// follow with [`Consumer::claim`].
    pub async fn take(&self) -> Result<Option<Vec<u8>>, RedisFailure> {
        let conn = self.store.blocking();
        let blmove = async move {
            redis::cmd("BLMOVE")
                .arg(keys::JOBS)
                .arg(&self.processing)
                .arg("LEFT")
                .arg("RIGHT")
                .arg(BLOCK.as_secs_f64())
                .query_async(&mut conn?)
                .await
        };
        blmove
            .await
            .map_err(|e| self.store.failed("BLMOVE", e.into()))
    }

    /// Claims an item [`Consumer::take`] returned: marks its job processing by this worker
    /// under a fresh token and a lease of `limits.lease`. `None` if a reclaimer took the
    /// item back in between.
    pub async fn claim(&self, item: &[u8]) -> Result<Option<Claim>, RedisFailure> {
        let token = uuid::Uuid::new_v4().simple().to_string();
        let conn = self.store.conn();
        let mut call = scripts::CLAIM.prepare_invoke();
        let now = now_ms();
        let fresh = new_id();
        call.key(&self.processing)
            .key(keys::CONSUMERS)
            .key(keys::RECENT)
            .key(keys::DEAD)
            .key(keys::job_of_item(item))
            .key(keys::job(&fresh))
            .arg(item)
            .arg(&self.name)
            .arg(&token)
            .arg(now)
            .arg(&fresh)
            .arg(MAX_NAME)
            .arg(RECENT)
            .arg(now + self.lease_ms());
        let claimed: Option<(String, Vec<u8>, u32)> = self
            .store
            .written("claim script", async move {
                call.invoke_async(&mut conn?).await
            })
            .await?;
        Ok(claimed.map(|(id, name, attempt)| Claim {
            id,
            name: String::from_utf8_lossy(&name).into_owned(),
            attempt,
            token,
        }))
    }

    /// Extends the claim's lease to `limits.lease` from now. `false` means the claim was
    /// lost (the lease ran out and the job was reclaimed): stop working on it.
    pub async fn renew(&self, claim: &Claim) -> Result<bool, RedisFailure> {
        let conn = self.store.conn();
        let mut call = scripts::RENEW.prepare_invoke();
        call.key(keys::job(&claim.id))
            .arg(&claim.token)
            .arg(now_ms() + self.lease_ms());
        let renewed: u8 = self
            .store
            .written("renew script", async move {
                call.invoke_async(&mut conn?).await
            })
            .await?;
        Ok(renewed == 1)
    }

    fn lease_ms(&self) -> u64 {
        self.limits.lease.as_millis() as u64
    }

    /// Records how an attempt ended. `false` means the claim was lost (the job was
    /// reclaimed) and nothing was recorded: the job will run again elsewhere.
    pub async fn finish(&self, claim: &Claim, outcome: &Outcome) -> Result<bool, RedisFailure> {
        let recorded = match outcome {
            Outcome::Done => self.complete(claim).await?,
            Outcome::Retry { error, at_ms } => self.fail(claim, error, Some(*at_ms)).await?,
            Outcome::Dead { error } => self.fail(claim, error, None).await?,
        };
        Ok(recorded == 1)
    }

    async fn complete(&self, claim: &Claim) -> Result<u8, RedisFailure> {
        let conn = self.store.conn();
        let mut call = scripts::COMPLETE.prepare_invoke();
        call.key(&self.processing)
            .key(keys::job(&claim.id))
            .key(keys::JOB_STATS)
            .arg(&claim.id)
            .arg(&claim.token)
            .arg(now_ms())
            .arg(FINISHED_TTL.as_secs());
        self.store
            .written("complete script", async move {
                call.invoke_async(&mut conn?).await
            })
            .await
    }

    /// Records a failed attempt: retried at `retry_at` (unix ms), or dead if `None`.
    async fn fail(
        &self,
        claim: &Claim,
        error: &str,
        retry_at: Option<u64>,
    ) -> Result<u8, RedisFailure> {
        retry_while_changed(&self.store, "fail script", async || {
            let burials = usize::from(retry_at.is_none());
            let tail = DeadTail::read(&self.store, self.limits.dead_max, burials).await?;
            let mut call = scripts::FAIL.prepare_invoke();
            call.key(&self.processing)
                .key(keys::job(&claim.id))
                .key(keys::JOB_STATS)
                .key(keys::DELAYED)
                .key(keys::DEAD);
            tail.pass_span(&mut call);
            call.arg(&claim.id)
                .arg(&claim.token)
                .arg(now_ms())
                .arg(error)
                .arg(retry_at.map(|at| at.to_string()).unwrap_or_default())
                .arg(self.limits.dead_max);
            tail.pass_ids(&mut call);
            let conn = self.store.conn();
            self.store
                .written(
                    "fail script",
                    async move { call.invoke_async(&mut conn?).await },
                )
                .await
        })
        .await
    }

    /// Registers this worker as a consumer and returns to the queue anything left in its
    /// processing list: by a previous run under the same name, or by a failed claim. Only
    /// call it between jobs. Returns how many jobs went back.
    pub async fn register(&self) -> Result<u64, RedisFailure> {
        // After an outage the blocking connection's first command fails and starts its
        // reconnect; let that be this PING rather than the next BLMOVE.
        if let Ok(mut conn) = self.store.blocking() {
            let _ = redis::cmd("PING").query_async::<()>(&mut conn).await;
        }
        let why = format!("worker {} lost: it restarted or lost redis", self.name);
        self.return_own(&why, true).await
    }

    /// Leaves the consumers, returning anything still in the processing list first.
    pub async fn retire(&self) -> Result<u64, RedisFailure> {
        let why = format!("worker {} stopped before recording a result", self.name);
        self.return_own(&why, false).await
    }

    /// Reads this worker's processing list, then runs the script on it; the script
    /// checks that the list is still what was read (a BLMOVE that timed out here may still
    /// have moved an item there), and the read is repeated if not.
    async fn return_own(&self, why: &str, register: bool) -> Result<u64, RedisFailure> {
        retry_while_changed(&self.store, "return script", async || {
            let conn = self.store.conn();
            let list = self.processing.clone();
            let items: Vec<Vec<u8>> = self
                .store
                .bounded("LRANGE", async move { conn?.lrange(list, 0, -1).await })
                .await?;
            let tail = DeadTail::read(&self.store, self.limits.dead_max, items.len()).await?;
            let mut call = scripts::RETURN_OWN.prepare_invoke();
            call.key(&self.processing)
                .key(keys::JOBS)
                .key(keys::CONSUMERS)
                .key(keys::DEAD)
                .key(keys::JOB_STATS);
            tail.pass_span(&mut call);
            call.arg(now_ms())
                .arg(why)
                .arg(&self.name)
                .arg(if register { "1" } else { "0" })
                .arg(self.limits.max_attempts)
                .arg(self.limits.dead_max)
                .arg(items.len());
            for item in &items {
                call.key(keys::job_of_item(item)).arg(item);
            }
            tail.pass_ids(&mut call);
            let conn = self.store.conn();
            self.store
                .written("return script", async move {
                    call.invoke_async(&mut conn?).await
                })
                .await
        })
        .await
    }
}
