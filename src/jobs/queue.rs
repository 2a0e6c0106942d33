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
//! Scripts that visit many jobs or workers build key names from the prefixes in
//! [`keys`] (e.g. `keys::job("")` is `job:`), passed as arguments, so that file stays
//! the one place that names keys.

use std::sync::LazyLock;
use std::time::Duration;

use redis::{AsyncCommands, Script};

use super::{FINISHED_TTL, Job, Lengths, Limits, MAX_NAME, RECENT, Stats, new_id};
use crate::error::ApiError;
use crate::fleet::now_ms;
use crate::keys;
use crate::store::Store;

/// How long one claim waits on an empty queue. Short, so a worker notices SIGTERM within
/// about a second; the blocking connection's response timeout is above it.
pub const BLOCK: Duration = Duration::from_secs(1);

/// A job hash as `HGETALL` returns it; values are bytes (see [`Job`]).
type Fields = Vec<(String, Vec<u8>)>;
/// What [`LENGTHS_FN`] returns: queue, processing, delayed, dead.
type LengthsReply = (u64, u64, u64, u64);

/// How many due retries one upkeep pass moves back to the queue, to keep scripts short.
const PROMOTE_BATCH: usize = 100;

/// Puts a job in the dead-letter list, which keeps at most `max` ids (an id at most once):
/// the ids trimmed off its end take their hashes with them, and a listed job's hash has no
/// TTL, so every listed id has its details and no dead job's details outlive its id.
/// Shared by the scripts that fail and reclaim jobs.
const BURY_FN: &str = r"
local function bury(dead, id, key, prefix, max)
  redis.call('HSET', key, 'status', 'dead')
  redis.call('PERSIST', key)
  redis.call('LREM', dead, 0, id)
  redis.call('LPUSH', dead, id)
  while redis.call('LLEN', dead) > max do
    local old = prefix .. redis.call('RPOP', dead)
    if redis.call('HGET', old, 'status') == 'dead' then
      redis.call('DEL', old)
    end
  end
end
";

/// Takes an item out of a processing list and deletes its claim token, so the worker that
/// had it can no longer complete or fail it. A job that was claimed lost its run, which
/// counted as an attempt: on the last one it goes to the dead-letter list; anything else
/// goes back to the head of the queue. Returns 1 if the job went dead. Shared by the
/// scripts that reclaim; `why` becomes the job's `last_error`.
const RELEASE_FN: &str = r"
local function release(list, item, queue, dead, stats, prefix, now, why, max_attempts, dead_max)
  redis.call('LREM', list, 1, item)
  local key = prefix .. item
  if redis.call('EXISTS', key) == 0 then
    redis.call('LPUSH', queue, item)
    return 0
  end
  local claimed = redis.call('HEXISTS', key, 'token') == 1
  local attempts = tonumber(redis.call('HGET', key, 'attempts')) or 0
  redis.call('HDEL', key, 'token', 'lease_until')
  if claimed and attempts >= max_attempts then
    redis.call('HSET', key, 'updated_at', now, 'last_error',
               why .. '; that was attempt ' .. attempts .. ' of ' .. max_attempts)
    bury(dead, item, key, prefix, dead_max)
    redis.call('HINCRBY', stats, 'dead', 1)
    return 1
  end
  redis.call('HSET', key, 'status', 'queued', 'updated_at', now, 'last_error', why)
  redis.call('HDEL', key, 'worker')
  redis.call('LPUSH', queue, item)
  return 0
end
";

/// Queue, processing, delayed and dead lengths. Expects KEYS[1..4] = queue, delayed set,
/// dead list, consumers set, and ARGV[1] = the processing-list prefix.
const LENGTHS_FN: &str = r"
local function lengths()
  local processing = 0
  for _, worker in ipairs(redis.call('SMEMBERS', KEYS[4])) do
    processing = processing + redis.call('LLEN', ARGV[1] .. worker)
  end
  return {redis.call('LLEN', KEYS[1]), processing,
          redis.call('ZCARD', KEYS[2]), redis.call('LLEN', KEYS[3])}
end
";

/// Creates a job and queues its id, unless a job with that id exists (a client retrying
/// with the same id): then returns the existing one and queues nothing.
static ENQUEUE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
-- KEYS: job hash, queue, recent list. ARGV: id, name, now, recent length
if redis.call('EXISTS', KEYS[1]) == 1 then
  return {0, redis.call('LLEN', KEYS[2]), redis.call('HGETALL', KEYS[1])}
end
redis.call('HSET', KEYS[1], 'id', ARGV[1], 'name', ARGV[2], 'status', 'queued',
           'attempts', 0, 'enqueued_at', ARGV[3], 'updated_at', ARGV[3])
local length = redis.call('RPUSH', KEYS[2], ARGV[1])
redis.call('LPUSH', KEYS[3], ARGV[1])
redis.call('LTRIM', KEYS[3], 0, ARGV[4] - 1)
return {1, length, {}}
",
    )
});

/// Turns an item BLMOVE put in this worker's processing list into a claim.
static CLAIM: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
-- KEYS: processing list, consumers set, recent list, dead list
-- ARGV: item, worker, token, now, fresh id, name limit, job prefix, recent length,
--       lease until (ms)
if not redis.call('LPOS', KEYS[1], ARGV[1]) then
  return false -- a reclaimer took it back since BLMOVE: not ours any more
end
local id = ARGV[1]
local key = ARGV[7] .. id
if redis.call('EXISTS', key) == 0 then
  -- a plain string pushed by hand: a new job named after it
  id = ARGV[5]
  key = ARGV[7] .. id
  redis.call('HSET', key, 'id', id, 'name', string.sub(ARGV[1], 1, tonumber(ARGV[6])),
             'attempts', 0, 'enqueued_at', ARGV[4])
  redis.call('LREM', KEYS[1], 1, ARGV[1])
  redis.call('RPUSH', KEYS[1], id)
  redis.call('LPUSH', KEYS[3], id)
  redis.call('LTRIM', KEYS[3], 0, ARGV[8] - 1)
end
if redis.call('HGET', key, 'status') == 'dead' then
  redis.call('LREM', KEYS[4], 0, id) -- a dead job's id pushed by hand: live again
end
local attempt = redis.call('HINCRBY', key, 'attempts', 1)
redis.call('HSET', key, 'status', 'processing', 'worker', ARGV[2], 'token', ARGV[3],
           'lease_until', ARGV[9], 'updated_at', ARGV[4])
redis.call('PERSIST', key) -- live again if a done job's id was pushed by hand
redis.call('SADD', KEYS[2], ARGV[2])
return {id, redis.call('HGET', key, 'name') or id, attempt}
",
    )
});

/// Marks a claimed job done, if the claim still holds.
static COMPLETE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
-- KEYS: processing list, job hash, stats hash. ARGV: id, token, now, ttl seconds
if redis.call('HGET', KEYS[2], 'token') ~= ARGV[2] then
  return 0
end
redis.call('LREM', KEYS[1], 1, ARGV[1])
redis.call('HSET', KEYS[2], 'status', 'done', 'updated_at', ARGV[3])
redis.call('HDEL', KEYS[2], 'token', 'lease_until')
redis.call('EXPIRE', KEYS[2], ARGV[4])
redis.call('HINCRBY', KEYS[3], 'processed', 1)
return 1
",
    )
});

/// Records a failed attempt, if the claim still holds: the job waits in the delayed set
/// for its retry, or goes to the dead-letter list when no retry is left.
static FAIL: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r"{BURY_FN}
-- KEYS: processing list, job hash, stats hash, delayed set, dead list
-- ARGV: id, token, now, error, retry at (ms; empty: no retry left), job prefix, dead max
if redis.call('HGET', KEYS[2], 'token') ~= ARGV[2] then
  return 0
end
redis.call('LREM', KEYS[1], 1, ARGV[1])
redis.call('HSET', KEYS[2], 'last_error', ARGV[4], 'updated_at', ARGV[3])
redis.call('HDEL', KEYS[2], 'token', 'lease_until')
redis.call('HINCRBY', KEYS[3], 'failed', 1)
local retry_at = tonumber(ARGV[5])
if retry_at then
  redis.call('HSET', KEYS[2], 'status', 'failed')
  redis.call('ZADD', KEYS[4], retry_at, ARGV[1])
else
  bury(KEYS[5], ARGV[1], KEYS[2], ARGV[6], tonumber(ARGV[7]))
  redis.call('HINCRBY', KEYS[3], 'dead', 1)
end
return 1
"
    ))
});

/// Takes back the jobs of workers whose heartbeat expired, and jobs whose lease ran out
/// (their worker stopped renewing it): to the queue, or to the dead-letter list if that
/// was their last attempt. Forgets workers that are gone and own nothing.
static RECLAIM: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r"{BURY_FN}{RELEASE_FN}
-- KEYS: consumers set, queue, dead list, stats hash
-- ARGV: now, instance prefix, processing prefix, job prefix, max attempts, dead max
local now = tonumber(ARGV[1])
local max_attempts, dead_max = tonumber(ARGV[5]), tonumber(ARGV[6])
local requeued, dead = 0, 0
for _, worker in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local list = ARGV[3] .. worker
  local alive = redis.call('EXISTS', ARGV[2] .. worker) == 1
  for _, item in ipairs(redis.call('LRANGE', list, 0, -1)) do
    local lease = tonumber(redis.call('HGET', ARGV[4] .. item, 'lease_until'))
    local why
    if not alive then
      why = 'worker ' .. worker .. ' lost: it stopped sending heartbeats'
    elseif lease and now >= lease then
      why = 'worker ' .. worker .. ' lost its lease: it stopped renewing its claim'
    end
    if why then
      local buried = release(list, item, KEYS[2], KEYS[3], KEYS[4], ARGV[4], ARGV[1], why,
                             max_attempts, dead_max)
      dead = dead + buried
      requeued = requeued + 1 - buried
    end
  end
  if not alive and redis.call('LLEN', list) == 0 then
    redis.call('SREM', KEYS[1], worker)
  end
end
return {{requeued, dead}}
"
    ))
});

/// Returns everything in one worker's own processing list to the queue, and registers the
/// worker as a consumer (or, when it leaves, unregisters it).
static RETURN_OWN: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r"{BURY_FN}{RELEASE_FN}
-- KEYS: processing list, queue, consumers set, dead list, stats hash
-- ARGV: now, why, job prefix, worker, '1' to register or '0' to leave, max attempts,
--       dead max
local items = redis.call('LRANGE', KEYS[1], 0, -1)
for _, item in ipairs(items) do
  release(KEYS[1], item, KEYS[2], KEYS[4], KEYS[5], ARGV[3], ARGV[1], ARGV[2],
          tonumber(ARGV[6]), tonumber(ARGV[7]))
end
if ARGV[5] == '1' then
  redis.call('SADD', KEYS[3], ARGV[4])
else
  redis.call('SREM', KEYS[3], ARGV[4])
end
return #items
"
    ))
});

/// Extends a claim's lease, if the claim still holds.
static RENEW: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
-- KEYS: job hash. ARGV: token, lease until (ms)
if redis.call('HGET', KEYS[1], 'token') ~= ARGV[1] then
  return 0
end
redis.call('HSET', KEYS[1], 'lease_until', ARGV[2])
return 1
",
    )
});

/// Moves failed jobs whose retry time has come back to the tail of the queue.
static PROMOTE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
-- KEYS: delayed set, queue. ARGV: now, job prefix, batch size
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[3])
for _, id in ipairs(due) do
  redis.call('ZREM', KEYS[1], id)
  redis.call('RPUSH', KEYS[2], id)
  local key = ARGV[2] .. id
  if redis.call('EXISTS', key) == 1 then
    redis.call('HSET', key, 'status', 'queued', 'updated_at', ARGV[1])
  end
end
return #due
",
    )
});

/// The most recent jobs and the lengths, for `GET /jobs`.
static OVERVIEW: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r"{LENGTHS_FN}
-- KEYS[5]: recent list. ARGV[2]: job prefix, ARGV[3]: how many
local jobs = {{}}
for _, id in ipairs(redis.call('LRANGE', KEYS[5], 0, ARGV[3] - 1)) do
  local fields = redis.call('HGETALL', ARGV[2] .. id)
  if #fields > 0 then table.insert(jobs, fields) end
end
return {{jobs, lengths()}}
"
    ))
});

/// The fleet-wide counters and the lengths, for `/metrics/fleet`.
static STATS: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r"{LENGTHS_FN}
-- KEYS[5]: stats hash
return {{redis.call('HMGET', KEYS[5], 'processed', 'failed', 'dead'), lengths()}}
"
    ))
});

/// What became of a newly submitted job.
pub enum Enqueued {
    /// Queued; the queue's length includes it.
    New { queue_length: u64 },
    /// A job with this id already exists; nothing was queued.
    Existing { queue_length: u64, job: Job },
}

/// Creates job `id` named `name` and appends it to the queue.
pub async fn enqueue(store: &Store, id: &str, name: &str) -> Result<Enqueued, ApiError> {
    let conn = store.conn();
    let mut call = ENQUEUE.prepare_invoke();
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
pub async fn job(store: &Store, id: &str) -> Result<Option<Job>, ApiError> {
    let conn = store.conn();
    let key = keys::job(id);
    let fields: Fields = store
        .bounded("HGETALL", async move { conn?.hgetall(key).await })
        .await?;
    Ok((!fields.is_empty()).then(|| Job::from_fields(fields)))
}

/// The most recent jobs, newest first (those whose hash has expired are left out), and
/// the lengths.
pub async fn overview(store: &Store) -> Result<(Vec<Job>, Lengths), ApiError> {
    let conn = store.conn();
    let mut call = OVERVIEW.prepare_invoke();
    with_lengths_keys(&mut call);
    call.key(keys::RECENT).arg(keys::job("")).arg(RECENT);
    let (jobs, lengths): (Vec<Fields>, LengthsReply) = store
        .bounded("overview script", async move {
            call.invoke_async(&mut conn?).await
        })
        .await?;
    let jobs = jobs.into_iter().map(Job::from_fields).collect();
    Ok((jobs, lengths_from(lengths)))
}

/// The fleet-wide counters and lengths.
pub async fn stats(store: &Store) -> Result<Stats, ApiError> {
    let conn = store.conn();
    let mut call = STATS.prepare_invoke();
    with_lengths_keys(&mut call);
    call.key(keys::JOB_STATS);
    let (counters, lengths): (Vec<Option<u64>>, LengthsReply) = store
        .bounded("stats script", async move {
            call.invoke_async(&mut conn?).await
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

/// The keys and argument [`LENGTHS_FN`] expects first.
fn with_lengths_keys(call: &mut redis::ScriptInvocation<'_>) {
    call.key(keys::JOBS)
        .key(keys::DELAYED)
        .key(keys::DEAD)
        .key(keys::CONSUMERS)
        .arg(keys::processing(""));
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
pub async fn reclaim(store: &Store, limits: &Limits) -> Result<(u64, u64), ApiError> {
    let conn = store.conn();
    let mut call = RECLAIM.prepare_invoke();
    call.key(keys::CONSUMERS)
        .key(keys::JOBS)
        .key(keys::DEAD)
        .key(keys::JOB_STATS)
        .arg(now_ms())
        .arg(keys::instance(""))
        .arg(keys::processing(""))
        .arg(keys::job(""))
        .arg(limits.max_attempts)
        .arg(limits.dead_max);
    store
        .written("reclaim script", async move {
            call.invoke_async(&mut conn?).await
        })
        .await
}

/// Moves failed jobs whose retry time has come back to the queue. Any worker may run it.
pub async fn promote_due(store: &Store) -> Result<u64, ApiError> {
    let conn = store.conn();
    let mut call = PROMOTE.prepare_invoke();
    call.key(keys::DELAYED)
        .key(keys::JOBS)
        .arg(now_ms())
        .arg(keys::job(""))
        .arg(PROMOTE_BATCH);
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
    pub async fn take(&self) -> Result<Option<Vec<u8>>, ApiError> {
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
    pub async fn claim(&self, item: &[u8]) -> Result<Option<Claim>, ApiError> {
        let token = uuid::Uuid::new_v4().simple().to_string();
        let conn = self.store.conn();
        let mut call = CLAIM.prepare_invoke();
        let now = now_ms();
        call.key(&self.processing)
            .key(keys::CONSUMERS)
            .key(keys::RECENT)
            .key(keys::DEAD)
            .arg(item)
            .arg(&self.name)
            .arg(&token)
            .arg(now)
            .arg(new_id())
            .arg(MAX_NAME)
            .arg(keys::job(""))
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
    pub async fn renew(&self, claim: &Claim) -> Result<bool, ApiError> {
        let conn = self.store.conn();
        let mut call = RENEW.prepare_invoke();
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
    pub async fn finish(&self, claim: &Claim, outcome: &Outcome) -> Result<bool, ApiError> {
        let conn = self.store.conn();
        let mut call = match outcome {
            Outcome::Done => COMPLETE.prepare_invoke(),
            Outcome::Retry { .. } | Outcome::Dead { .. } => FAIL.prepare_invoke(),
        };
        call.key(&self.processing)
            .key(keys::job(&claim.id))
            .key(keys::JOB_STATS)
            .arg(&claim.id)
            .arg(&claim.token)
            .arg(now_ms());
        match outcome {
            Outcome::Done => {
                call.arg(FINISHED_TTL.as_secs());
            }
            Outcome::Retry { error, at_ms } => {
                call.key(keys::DELAYED)
                    .key(keys::DEAD)
                    .arg(error)
                    .arg(at_ms);
            }
            Outcome::Dead { error } => {
                call.key(keys::DELAYED).key(keys::DEAD).arg(error).arg("");
            }
        }
        if !matches!(outcome, Outcome::Done) {
            call.arg(keys::job("")).arg(self.limits.dead_max);
        }
        let recorded: u8 = self
            .store
            .written("finish script", async move {
                call.invoke_async(&mut conn?).await
            })
            .await?;
        Ok(recorded == 1)
    }

    /// Registers this worker as a consumer and returns to the queue anything left in its
    /// processing list: by a previous run under the same name, or by a failed claim. Only
    /// call it between jobs. Returns how many jobs went back.
    pub async fn register(&self) -> Result<u64, ApiError> {
        // After an outage the blocking connection's first command fails and starts its
        // reconnect; let that be this PING rather than the next BLMOVE.
        if let Ok(mut conn) = self.store.blocking() {
            let _ = redis::cmd("PING").query_async::<()>(&mut conn).await;
        }
        let why = format!("worker {} lost: it restarted or lost redis", self.name);
        self.return_own(&why, true).await
    }

    /// Leaves the consumers, returning anything still in the processing list first.
    pub async fn retire(&self) -> Result<u64, ApiError> {
        let why = format!("worker {} stopped before recording a result", self.name);
        self.return_own(&why, false).await
    }

    async fn return_own(&self, why: &str, register: bool) -> Result<u64, ApiError> {
        let conn = self.store.conn();
        let mut call = RETURN_OWN.prepare_invoke();
        call.key(&self.processing)
            .key(keys::JOBS)
            .key(keys::CONSUMERS)
            .key(keys::DEAD)
            .key(keys::JOB_STATS)
            .arg(now_ms())
            .arg(why)
            .arg(keys::job(""))
            .arg(&self.name)
            .arg(if register { "1" } else { "0" })
            .arg(self.limits.max_attempts)
            .arg(self.limits.dead_max);
        self.store
            .written("return script", async move {
                call.invoke_async(&mut conn?).await
            })
            .await
    }
}
