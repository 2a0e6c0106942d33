//! Every Redis key scaleout touches, in one place. User input only ever lands under `kv:`
//! (and job names only inside job hashes), so no request can reach a counter or the queue.

/// Per-session hit counter, with a sliding TTL.
pub fn session(sid: &uuid::Uuid) -> String {
    format!("session:{sid}")
}

/// Requests served across every replica and user.
pub const GLOBAL_COUNT: &str = "counter:global";

/// Shared key/value entries written by `/set` and `PUT /kv/{key}`.
pub fn kv(key: &str) -> String {
    format!("kv:{key}")
}

/// One hash per live instance (app or worker), expiring unless its heartbeat renews it.
pub fn instance(name: &str) -> String {
    format!("instance:{name}")
}

/// Sorted set of instance names by last heartbeat (ms), to list the fleet in one call.
pub const INSTANCES: &str = "instances";

/// The queue itself. The seed's README pushes plain strings here with RPUSH.
pub const JOBS: &str = "jobs";

/// Jobs a worker has claimed and not yet finished: where a crash leaves them.
pub fn processing(worker: &str) -> String {
    format!("jobs:processing:{worker}")
}

/// Workers that own a processing list, so the reclaimer can find orphans.
pub const CONSUMERS: &str = "jobs:consumers";

/// Failed jobs waiting for their retry time (score = due, ms).
pub const DELAYED: &str = "jobs:delayed";

/// Jobs that used up their attempts.
pub const DEAD: &str = "jobs:dead";

/// Ids of the most recent jobs, newest first, trimmed.
pub const RECENT: &str = "jobs:recent";

/// One hash per job: name, status, attempts, worker, timestamps, last error.
pub fn job(id: &str) -> String {
    format!("{JOB_PREFIX}{id}")
}

/// [`job`] for an id read back from a list as bytes: a string pushed by hand need not be
/// UTF-8, and the worker that claims it looks for a job of that id first.
pub fn job_of_item(item: &[u8]) -> Vec<u8> {
    [JOB_PREFIX.as_bytes(), item].concat()
}

const JOB_PREFIX: &str = "job:";

/// Fleet-wide job counters (processed, failed, dead) for `/metrics`.
pub const JOB_STATS: &str = "stats:jobs";
