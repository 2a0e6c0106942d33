//! Background jobs: a reliable queue on plain Redis lists, in the style of Sidekiq Pro's
//! super_fetch. The promise is at-least-once: a job that was enqueued runs to completion
//! (or lands in the dead-letter list) even if workers crash, but it may run more than once,
//! so job handlers must be idempotent.
//!
//! How a job moves (every step is one atomic Redis command or Lua script, see [`queue`]):
//!
//! ```text
//! enqueue ─▶ jobs ─BLMOVE─▶ jobs:processing:<worker> ─complete─▶ done (expires in 24 h)
//!             ▲ ▲                     │         │
//!             │ └──── reclaimed ◀─────┤         ├─fail, last attempt─▶ jobs:dead (bounded)
//!             │   (heartbeat gone, or │         │                          ▲
//!             │    lease not renewed) └─────────┼── lost on last attempt ──┘
//!             │                                 └─fail─▶ jobs:delayed (backoff)
//!             │                                              │
//!             └─────────────────── when due ─────────────────┘
//! ```
//!
//! A claim is a lease: the worker renews it while it works, and only a claim whose lease
//! ran out (the worker froze or lost Redis) or whose worker's heartbeat is gone is taken
//! back. Every claim counts as an attempt, so a job whose worker dies on each one still
//! ends in `jobs:dead` after [`Limits::max_attempts`].
//!
//! - [`queue`]: the Redis side: enqueue, claim, complete/fail, reclaim, listings.
//! - [`worker`]: the `scaleout worker` loop that drives it.

pub mod queue;
pub mod worker;

use std::time::Duration;

use nanorand::Rng;
use serde::Serialize;

use crate::config::Settings;
use crate::metrics::unlabelled;

/// Longest job name accepted, in bytes (a string pushed by hand is cut to this).
pub const MAX_NAME: usize = 256;
/// Longest job id accepted, in characters.
pub const MAX_ID: usize = 64;
/// How many jobs `GET /jobs` shows.
pub const RECENT: usize = 50;
/// How long a done job's hash is kept for `GET /jobs/{id}`. A dead job's hash has no TTL:
/// it lives exactly as long as its id is in the bounded `jobs:dead` list.
pub const FINISHED_TTL: Duration = Duration::from_secs(24 * 60 * 60);
/// First retry delay; each further failure doubles it, up to [`RETRY_MAX`] (before jitter).
pub const RETRY_BASE: Duration = Duration::from_secs(1);
/// Longest retry delay.
pub const RETRY_MAX: Duration = Duration::from_secs(5 * 60);

/// The rules a worker applies to the queue, from its settings. Every worker of a fleet
/// should share them: any worker may reclaim (and so dead-letter) another's job.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// How long a claim holds without renewal (`JOB_VISIBILITY_SECS`).
    pub lease: Duration,
    /// Claims a job gets before it goes to `jobs:dead` (`JOB_MAX_ATTEMPTS`).
    pub max_attempts: u32,
    /// Longest `jobs:dead` may grow; older ids, and their hashes, go (`JOB_DEAD_MAX`).
    pub dead_max: u64,
}

impl Limits {
    pub fn from_settings(settings: &Settings) -> Self {
        Self {
            lease: Duration::from_secs(settings.job_visibility_secs),
            max_attempts: settings.job_max_attempts,
            dead_max: settings.job_dead_max,
        }
    }
}

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS), ts(rename = "JobStatus"))]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// In the `jobs` list, waiting for a worker.
    Queued,
    /// Claimed by a worker, in its processing list.
    Processing,
    Done,
    /// Failed, waiting in `jobs:delayed` for its retry.
    Failed,
    /// Failed on its last attempt: in the dead-letter list `jobs:dead`.
    Dead,
}

impl Status {
    fn parse(s: &str) -> Self {
        match s {
            "processing" => Self::Processing,
            "done" => Self::Done,
            "failed" => Self::Failed,
            "dead" => Self::Dead,
            _ => Self::Queued,
        }
    }
}

/// A job as the API shows it: the public fields of its `job:<id>` hash.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct Job {
    pub id: String,
    pub name: String,
    pub status: Status,
    /// How many times a worker has claimed it (a reclaimed run counts too).
    pub attempts: u32,
    /// The worker that has it or last had it.
    pub worker: Option<String>,
    pub enqueued_at: u64,
    pub updated_at: u64,
    pub last_error: Option<String>,
}

impl Job {
    /// Builds a job from `HGETALL` output. Values are read as bytes because a name pushed
    /// by hand need not be UTF-8; anything unreadable is replaced, never an error.
    fn from_fields(fields: Vec<(String, Vec<u8>)>) -> Self {
        let mut job = Job {
            id: String::new(),
            name: String::new(),
            status: Status::Queued,
            attempts: 0,
            worker: None,
            enqueued_at: 0,
            updated_at: 0,
            last_error: None,
        };
        for (k, v) in fields {
            let v = String::from_utf8_lossy(&v);
            match k.as_str() {
                "id" => job.id = v.into_owned(),
                "name" => job.name = v.into_owned(),
                "status" => job.status = Status::parse(&v),
                "attempts" => job.attempts = v.parse().unwrap_or(0),
                "worker" => job.worker = Some(v.into_owned()),
                "enqueued_at" => job.enqueued_at = v.parse().unwrap_or(0),
                "updated_at" => job.updated_at = v.parse().unwrap_or(0),
                "last_error" => job.last_error = Some(v.into_owned()),
                _ => {}
            }
        }
        job
    }
}

/// How many jobs are where, across the fleet.
#[derive(Debug, Clone, Copy, Default, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct Lengths {
    pub queue_length: u64,
    /// Claimed and not yet finished, summed over every worker's processing list.
    pub processing_length: u64,
    /// Failed and waiting for their retry time.
    pub delayed_length: u64,
    pub dead_length: u64,
}

/// Fleet-wide job counters for `/metrics/fleet`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Stats {
    pub processed: u64,
    /// Failed attempts, including each job's last one.
    pub failed: u64,
    pub dead: u64,
    pub lengths: Lengths,
}

impl Stats {
    /// Prometheus text for the counters and queue lengths.
    pub fn render(&self, out: &mut String) {
        let l = &self.lengths;
        for (name, kind, help, value) in [
            (
                "scaleout_fleet_jobs_processed_total",
                "counter",
                "Jobs completed, fleet-wide.",
                self.processed,
            ),
            (
                "scaleout_fleet_jobs_failed_total",
                "counter",
                "Job attempts that failed, fleet-wide.",
                self.failed,
            ),
            (
                "scaleout_fleet_jobs_dead_total",
                "counter",
                "Jobs moved to the dead-letter list, fleet-wide.",
                self.dead,
            ),
            (
                "scaleout_fleet_jobs_queue_length",
                "gauge",
                "Jobs waiting in the queue.",
                l.queue_length,
            ),
            (
                "scaleout_fleet_jobs_processing_length",
                "gauge",
                "Jobs claimed by a worker and not yet finished.",
                l.processing_length,
            ),
            (
                "scaleout_fleet_jobs_delayed_length",
                "gauge",
                "Failed jobs waiting for their retry.",
                l.delayed_length,
            ),
            (
                "scaleout_fleet_jobs_dead_length",
                "gauge",
                "Jobs in the dead-letter list.",
                l.dead_length,
            ),
        ] {
            unlabelled(out, name, kind, help, value);
        }
    }
}

/// Whether a client-chosen id is acceptable: it becomes part of a Redis key and a URL path,
/// so only 1 to [`MAX_ID`] characters of `[A-Za-z0-9_-]`.
pub fn valid_id(id: &str) -> bool {
    (1..=MAX_ID).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A fresh job id.
pub fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// How long a job waits after failing attempt `attempt` (1-based): [`RETRY_BASE`]
/// doubling per attempt, capped at [`RETRY_MAX`], then [`jitter`]ed, so jobs that failed
/// together (say, on the same outage of a service they call) do not all retry at once.
pub fn retry_delay(attempt: u32) -> Duration {
    let doublings = attempt.saturating_sub(1).min(20);
    jitter(RETRY_BASE.saturating_mul(1 << doublings).min(RETRY_MAX))
}

/// A random delay between half of `delay` and `delay` ("equal jitter"): spread enough that
/// workers which failed together do not retry in lockstep, never longer than `delay`, so
/// every documented cap holds, and never under half of it, so backing off still backs off.
pub fn jitter(delay: Duration) -> Duration {
    let ms = delay.as_millis().min(u128::from(u64::MAX)) as u64;
    Duration::from_millis(nanorand::tls_rng().generate_range(ms / 2..=ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_checked() {
        assert!(valid_id("job-1_A"));
        assert!(valid_id(&new_id()));
        assert!(valid_id(&"a".repeat(MAX_ID)));
        for bad in ["", "a b", "a:b", "é", "../x", &"a".repeat(MAX_ID + 1)] {
            assert!(!valid_id(bad), "{bad:?} accepted");
        }
    }

    #[test]
    fn retry_delay_doubles_up_to_the_cap_with_jitter() {
        for (attempt, secs) in [
            (1, 1),
            (2, 2),
            (3, 4),
            (4, 8),
            (9, 256),
            (10, 300),
            (1000, 300),
        ] {
            let ceiling = Duration::from_secs(secs);
            for _ in 0..100 {
                let delay = retry_delay(attempt);
                assert!(
                    delay >= ceiling / 2 && delay <= ceiling,
                    "attempt {attempt}: {delay:?}"
                );
            }
        }
        let firsts: std::collections::HashSet<Duration> =
            (0..100).map(|_| retry_delay(1)).collect();
        assert!(firsts.len() > 1, "always {firsts:?}");
    }

    #[test]
    fn jitter_spreads_over_the_upper_half() {
        let delay = Duration::from_secs(1);
        let samples: Vec<Duration> = (0..1000).map(|_| jitter(delay)).collect();
        assert!(samples.iter().all(|d| *d >= delay / 2 && *d <= delay));
        let (min, max) = (samples.iter().min().unwrap(), samples.iter().max().unwrap());
        // 1000 uniform draws: each bound is missed with probability 0.9^1000.
        assert!(*min < Duration::from_millis(600), "lowest {min:?}");
        assert!(*max > Duration::from_millis(900), "highest {max:?}");
        assert_eq!(jitter(Duration::ZERO), Duration::ZERO);
    }

    #[test]
    fn jobs_read_from_hash_fields() {
        let fields = [
            ("id", "j1"),
            ("name", "test-1"),
            ("status", "failed"),
            ("attempts", "2"),
            ("worker", "w1"),
            ("enqueued_at", "10"),
            ("updated_at", "20"),
            ("last_error", "boom"),
            ("token", "secret"),
        ];
        let job = Job::from_fields(
            fields
                .iter()
                .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
                .collect(),
        );
        let json = serde_json::to_value(&job).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "id": "j1", "name": "test-1", "status": "failed", "attempts": 2,
                "worker": "w1", "enqueued_at": 10, "updated_at": 20, "last_error": "boom",
            })
        );
        let fresh = Job::from_fields(vec![("name".into(), b"\xffx".to_vec())]);
        assert_eq!(fresh.name, "\u{fffd}x");
        assert_eq!(fresh.worker, None);
        assert_eq!(fresh.status, Status::Queued);
    }
}
