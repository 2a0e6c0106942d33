//! `scaleout worker`: claims one job at a time, does it, and reports how it went. Meanwhile
//! it sends heartbeats (so `/instances` lists it and other workers can tell it is alive)
//! and helps keep the queue healthy: every worker reclaims the jobs of dead or stuck
//! workers and moves due retries back to the queue.
//!
//! While it works on a job it renews the claim's lease every third of `JOB_VISIBILITY_SECS`
//! ([`hold`]), so however long the job takes it stays this worker's; if a renewal finds the
//! claim gone (the worker froze or lost Redis past the lease, and another took the job),
//! it drops the job at once.
//!
//! A Redis outage is expected, not fatal: every failing step waits a bounded, growing,
//! jittered delay ([`Backoff`]) instead of retrying hot, and the worker carries on once
//! Redis answers. SIGTERM stops claiming, lets the current job finish, and exits 0.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::queue::{self, Claim, Consumer, Outcome};
use super::{Limits, jitter, retry_delay};
use crate::clock::now_ms;
use crate::config::Settings;
use crate::fleet::{Member, Role};
use crate::metrics::Metrics;
use crate::shutdown::{Drain, Signals};
use crate::store::{RedisFailure, Store};

/// How often each worker runs the reclaimer and requeues due retries.
const UPKEEP: Duration = Duration::from_secs(1);
/// First and longest wait between tries while Redis fails, before [`jitter`].
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(2);

/// Why the worker, or one step of its loop, failed: its own error, apart from the API's.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// `REDIS_URL` or `REDIS_SENTINELS` cannot be used: the worker cannot start. The
    /// text names the variable.
    #[error("{0}")]
    Connect(String),
    /// SIGTERM and SIGINT cannot be caught: the worker could not stop cleanly.
    #[error("catching SIGTERM and SIGINT: {0}")]
    Signals(std::io::Error),
    /// A step failed on Redis: the loop backs off, registers again and carries on.
    #[error(transparent)]
    Redis(#[from] RedisFailure),
}

/// Runs the worker until SIGTERM or SIGINT, then finishes the current job and leaves.
pub async fn run(settings: Settings) -> Result<(), WorkerError> {
    let store = Store::connect_lazy(&settings, Arc::new(Metrics::default()))
        .map_err(WorkerError::Connect)?;
    let limits = Limits::from_settings(&settings);
    let consumer = Consumer::new(&settings.instance_name, limits, store.clone());
    let drain = Drain::default();
    let member = Arc::new(Member {
        name: settings.instance_name.clone(),
        role: Role::Worker,
        started_at: now_ms(),
        handled: Arc::default(),
        draining: drain.flag(),
    });
    let (stop_tx, stop) = watch::channel(false);
    let mut signals = Signals::catch().map_err(WorkerError::Signals)?;
    let signals = ntex::rt::spawn(async move {
        let signal = signals.next().await;
        drain.start();
        tracing::info!(
            signal,
            "stopping: claiming no more jobs, finishing the current one"
        );
        let _ = stop_tx.send(true);
    });
    let heartbeat = ntex::rt::spawn(member.clone().run(store.clone()));
    let keep_warm = ntex::rt::spawn(store.clone().keep_warm());
    let upkeep = ntex::rt::spawn(upkeep(store.clone(), limits));
    tracing::info!(
        instance = %settings.instance_name,
        work_ms = settings.job_work_ms,
        max_attempts = settings.job_max_attempts,
        visibility_secs = settings.job_visibility_secs,
        dead_max = settings.job_dead_max,
        "worker started"
    );
    let mut worker = Worker {
        consumer,
        member: member.clone(),
        store: store.clone(),
        work: Duration::from_millis(settings.job_work_ms),
        stop,
        backoff: Backoff::default(),
    };
    worker.run().await;
    upkeep.cancel();
    heartbeat.cancel();
    keep_warm.cancel();
    signals.cancel();
    match worker.consumer.retire().await {
        Ok(0) => {}
        Ok(jobs) => tracing::info!(jobs, "returned a job claimed while stopping to the queue"),
        Err(_) => tracing::warn!("could not deregister: other workers will reclaim what is left"),
    }
    member.leave(&store).await;
    tracing::info!("stopped");
    Ok(())
}

struct Worker {
    consumer: Consumer,
    member: Arc<Member>,
    store: Store,
    /// Simulated work per job (`JOB_WORK_MS`).
    work: Duration,
    /// Turns true on SIGTERM/SIGINT.
    stop: watch::Receiver<bool>,
    backoff: Backoff,
}

impl Worker {
    fn stopping(&self) -> bool {
        *self.stop.borrow()
    }

    /// Claims and processes jobs until asked to stop.
    async fn run(&mut self) {
        // Registering also requeues what a previous run under this name left behind; after
        // a failed claim it requeues the item that may be stranded in our processing list.
        let mut register = true;
        while !self.stopping() {
            if register {
                match self.register().await {
                    Ok(()) => register = false,
                    Err(_) => {
                        self.pause().await;
                        continue;
                    }
                }
            }
            match self.next().await {
                Ok(Some(claim)) => {
                    self.backoff.succeeded();
                    self.process(claim).await;
                }
                Ok(None) => self.backoff.succeeded(),
                Err(_) => {
                    register = true;
                    self.pause().await;
                }
            }
        }
    }

    async fn register(&mut self) -> Result<(), WorkerError> {
        // Beat first: the reclaimer forgets consumers without a heartbeat.
        self.member.beat(&self.store).await?;
        let returned = self.consumer.register().await?;
        if returned > 0 {
            tracing::info!(
                jobs = returned,
                "requeued jobs left in this worker's processing list"
            );
        }
        self.backoff.succeeded();
        Ok(())
    }

    /// The next claimed job; `None` if the queue stayed empty for a while, or if a stop
    /// was asked for meanwhile (then the item taken is requeued on the way out).
    async fn next(&mut self) -> Result<Option<Claim>, WorkerError> {
        let Some(item) = self.consumer.take().await? else {
            return Ok(None);
        };
        if self.stopping() {
            return Ok(None);
        }
        Ok(self.consumer.claim(&item).await?)
    }

    async fn process(&mut self, claim: Claim) {
        let started = Instant::now();
        let limits = *self.consumer.limits();
        let mut lease_until = started + limits.lease;
        let result = tokio::select! {
            result = work(&claim.name, self.work) => Some(result),
            () = hold(&self.consumer, &claim, &mut lease_until) => None,
        };
        let ms = started.elapsed().as_millis() as u64;
        let (job, id, by, attempt) = (&claim.name, &claim.id, self.consumer.name(), claim.attempt);
        let Some(result) = result else {
            tracing::warn!(job, id, by, attempt, ms, "{CLAIM_LOST}");
            return;
        };
        let delay = retry_delay(claim.attempt);
        let outcome = match result {
            Ok(()) => Outcome::Done,
            Err(error) if claim.attempt >= limits.max_attempts => Outcome::Dead { error },
            Err(error) => Outcome::Retry {
                error,
                at_ms: now_ms() + delay.as_millis() as u64,
            },
        };
        let recorded = self.record(&claim, &outcome, lease_until).await;
        let (job, id, by) = (&claim.name, &claim.id, self.consumer.name());
        match (recorded, &outcome) {
            (Some(true), Outcome::Done) => {
                tracing::info!(job, id, by, attempt, ms, "processed");
            }
            (Some(true), Outcome::Retry { error, .. }) => {
                let retry_in_ms = delay.as_millis() as u64;
                tracing::warn!(job, id, by, attempt, ms, error, retry_in_ms, "failed");
            }
            (Some(true), Outcome::Dead { error }) => {
                tracing::warn!(job, id, by, attempt, ms, error, "dead");
            }
            (Some(false), _) => tracing::warn!(job, id, by, attempt, "{CLAIM_LOST}"),
            (None, _) => tracing::warn!(
                job,
                id,
                by,
                attempt,
                "result not recorded (redis unavailable): the job will be reclaimed and run again"
            ),
        }
        if recorded == Some(true) {
            self.member.handled.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Reports an outcome, retrying through a Redis outage until the claim's lease runs
    /// out (`deadline`): after that the job is reclaimable anyway. `None` if it never got
    /// through.
    async fn record(
        &mut self,
        claim: &Claim,
        outcome: &Outcome,
        deadline: Instant,
    ) -> Option<bool> {
        loop {
            match self.consumer.finish(claim, outcome).await {
                Ok(recorded) => {
                    self.backoff.succeeded();
                    return Some(recorded);
                }
                Err(_) => {
                    let delay = self.backoff.failed();
                    if Instant::now() + delay >= deadline {
                        return None;
                    }
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }

    /// Waits out the next backoff step, or less if a stop is asked for.
    async fn pause(&mut self) {
        let delay = self.backoff.failed();
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            _ = self.stop.wait_for(|stop| *stop) => {}
        }
    }
}

/// Logged when a worker learns that its job was reclaimed.
const CLAIM_LOST: &str = "claim lost: the job was reclaimed and runs again elsewhere";

/// Renews the claim's lease every third of the lease while the job runs, and moves
/// `lease_until` with each renewal. Returns only when the claim is lost; a renewal that
/// fails (Redis unreachable) is tried again at the next tick, so one missed renewal does
/// not cost the claim.
async fn hold(consumer: &Consumer, claim: &Claim, lease_until: &mut Instant) {
    let lease = consumer.limits().lease;
    loop {
        tokio::time::sleep(lease / 3).await;
        let asked = Instant::now();
        match consumer.renew(claim).await {
            Ok(true) => *lease_until = asked + lease,
            Ok(false) => return,
            Err(_) => tracing::debug!(id = %claim.id, "lease not renewed: redis unavailable"),
        }
    }
}

/// The simulated job: takes `duration`; a job whose name starts with `fail` then fails,
/// to show retries and the dead-letter list.
async fn work(name: &str, duration: Duration) -> Result<(), String> {
    tokio::time::sleep(duration).await;
    if name.starts_with("fail") {
        Err("deliberate failure: the job's name starts with \"fail\"".into())
    } else {
        Ok(())
    }
}

/// Every [`UPKEEP`]: reclaims the jobs of dead or stuck workers and requeues due retries.
/// Every worker runs this; the scripts are atomic, so running them at once is harmless. A
/// failure waits for the next pass (the main loop reports outages).
async fn upkeep(store: Store, limits: Limits) {
    loop {
        tokio::time::sleep(UPKEEP).await;
        if let Ok((requeued, dead)) = queue::reclaim(&store, &limits).await
            && requeued + dead > 0
        {
            tracing::info!(
                jobs = requeued + dead,
                dead,
                "reclaimed jobs of dead or stuck workers"
            );
        }
        if let Ok(jobs @ 1..) = queue::promote_due(&store).await {
            tracing::debug!(jobs, "retries due: back in the queue");
        }
    }
}

/// The wait before the next try while Redis fails: [`BACKOFF_MIN`], doubling up to
/// [`BACKOFF_MAX`], so an outage costs next to no CPU and recovery is noticed within
/// seconds; each wait is [`jitter`]ed, so workers that lost Redis together do not come
/// back in lockstep. Logs the start and the end of an outage once each, not every try.
#[derive(Default)]
struct Backoff {
    /// The current step, before jitter.
    current: Option<Duration>,
}

impl Backoff {
    fn failed(&mut self) -> Duration {
        let next = match self.current {
            None => {
                tracing::warn!("redis unavailable: backing off");
                BACKOFF_MIN
            }
            Some(delay) => (delay * 2).min(BACKOFF_MAX),
        };
        self.current = Some(next);
        jitter(next)
    }

    fn succeeded(&mut self) {
        if self.current.take().is_some() {
            tracing::info!("redis reachable again: resuming");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_a_bound_with_jitter_and_resets() {
        let steps = [100, 200, 400, 800, 1600, 2000, 2000];
        for _ in 0..100 {
            let mut backoff = Backoff::default();
            for step in steps {
                let delay = backoff.failed().as_millis();
                assert!(
                    (step / 2..=step).contains(&delay),
                    "{delay} ms at step {step}"
                );
            }
            backoff.succeeded();
            assert!(backoff.failed() <= BACKOFF_MIN);
        }
        // Jittered: workers that lost Redis together do not all retry at the same moment.
        let firsts: std::collections::HashSet<Duration> =
            (0..100).map(|_| Backoff::default().failed()).collect();
        assert!(firsts.len() > 1, "always {firsts:?}");
    }

    #[tokio::test]
    async fn only_fail_names_fail() {
        assert!(work("test-1", Duration::ZERO).await.is_ok());
        assert!(work("fail-1", Duration::ZERO).await.is_err());
        assert!(work("failure", Duration::ZERO).await.is_err());
        assert!(work("no-fail", Duration::ZERO).await.is_ok());
    }
}
