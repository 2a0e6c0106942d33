//! Black-box tests of the job queue against a real Redis: `/enqueue` and the jobs routes
//! on the real `scaleout app`, the real `scaleout worker` processes (killed, stopped and
//! cut off from Redis), and the claim fencing at the Redis level through the library.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use nanorand::Rng;
use redis::AsyncCommands;
use scaleout::clock::now_ms;
use scaleout::config::Settings;
use scaleout::fleet::{Member, Role};
use scaleout::jobs::queue::{self, Consumer, Enqueued, Outcome};
use scaleout::jobs::{Job, Limits, MAX_NAME, Status};
use scaleout::keys;
use scaleout::metrics::Metrics;
use scaleout::store::{RedisFailure, Store};
use serde_json::Value;

use crate::common::http::{self, get, send};
use crate::common::{Redis, Scaleout, login_env, poll, until};

/// The test's own handle on the queue, through the library, as `admin`: it plays the app
/// and the worker at once (the processes the tests start log in as their own users).
fn store(redis: &Redis) -> Store {
    let vars = [("REDIS_URL".to_string(), redis.url())];
    let settings =
        Settings::from_vars(vars.into_iter().chain(login_env("admin"))).expect("a redis url");
    Store::connect_lazy(&settings, Arc::new(Metrics::default())).expect("a redis url")
}

/// A handle on the queue like [`store`], that WAITs for `replicas` after every write
/// (for at most 20 ms).
/// A store whose every write waits for 1 replica for at most `timeout_ms`.
fn waiting_store(redis: &Redis, timeout_ms: u64) -> Store {
    let vars = [
        ("REDIS_URL", redis.url()),
        ("REDIS_WAIT_REPLICAS", "1".to_string()),
        ("REDIS_WAIT_TIMEOUT_MS", timeout_ms.to_string()),
    ];
    let vars = vars.into_iter().map(|(k, v)| (k.to_string(), v));
    let settings = Settings::from_vars(vars.chain(login_env("admin"))).expect("valid settings");
    Store::connect_lazy(&settings, Arc::new(Metrics::default())).expect("a redis url")
}

/// A worker process with short simulated work unless `extra` says otherwise.
fn worker(redis: &Redis, name: &str, extra: &[(&str, &str)]) -> Scaleout {
    let url = redis.url();
    let mut env = vec![
        ("REDIS_URL", url.as_str()),
        ("INSTANCE_NAME", name),
        ("JOB_WORK_MS", "20"),
    ];
    env.extend_from_slice(extra);
    Scaleout::spawn("worker", &env)
}

fn app(redis: &Redis) -> Scaleout {
    let url = redis.url();
    Scaleout::server(
        "app",
        &[("REDIS_URL", url.as_str()), ("INSTANCE_NAME", "app-1")],
    )
}

async fn enqueue(store: &Store, name: &str) -> String {
    let id = scaleout::jobs::new_id();
    let created = queue::enqueue(store, &id, name).await.expect("enqueue");
    assert!(matches!(created, Enqueued::New { .. }));
    id
}

async fn job(store: &Store, id: &str) -> Job {
    queue::job(store, id)
        .await
        .expect("redis answers")
        .expect("the job exists")
}

async fn reaches(store: &Store, id: &str, status: Status, timeout: Duration) -> Job {
    until(&format!("job {id} to be {status:?}"), timeout, async || {
        let job = queue::job(store, id).await.ok().flatten()?;
        (job.status == status).then_some(job)
    })
    .await
}

async fn first_logged(process: &Scaleout, message: &str, timeout: Duration) -> Value {
    until(&format!("a '{message}' log line"), timeout, async || {
        process.logged(message).into_iter().next()
    })
    .await
}

#[tokio::test]
async fn an_enqueued_job_is_processed_and_shown_everywhere() {
    let redis = Redis::start();
    let app = app(&redis);
    let worker = worker(&redis, "worker-1", &[]);

    let res = get(app.addr(), "/enqueue?job=test-1").await;
    assert_eq!(res.status, 202);
    assert_eq!(res.header("content-type"), Some("application/json"));
    let body = res.json();
    assert_eq!(body["enqueued"], "test-1");
    assert_eq!(body["queue_length"], 1);
    assert_eq!(body["served_by"], "app-1");
    let id = body["id"].as_str().expect("an id").to_string();

    let done = until("the job to be done", Duration::from_secs(10), async || {
        let job = get(app.addr(), &format!("/jobs/{id}")).await.json();
        (job["status"] == "done").then_some(job)
    })
    .await;
    assert_eq!(done["name"], "test-1");
    assert_eq!(done["worker"], "worker-1");
    assert_eq!(done["attempts"], 1);
    assert_eq!(done["last_error"], Value::Null);
    assert!(done["enqueued_at"].as_u64().unwrap() <= done["updated_at"].as_u64().unwrap());

    let line = first_logged(&worker, "processed", Duration::from_secs(5)).await;
    assert_eq!(
        (&line["job"], &line["id"], &line["by"], &line["attempt"]),
        (
            &Value::from("test-1"),
            &Value::from(id.as_str()),
            &Value::from("worker-1"),
            &Value::from(1)
        )
    );
    assert!(line["ms"].as_u64().unwrap() >= 20, "{line}");

    let list = get(app.addr(), "/jobs").await.json();
    assert_eq!(list["jobs"][0]["id"], id.as_str());
    assert_eq!(list["jobs"][0]["status"], "done");
    for field in ["queue_length", "processing_length", "dead_length"] {
        assert_eq!(list[field], 0, "{field}");
    }

    let fleet = until(
        "the worker in /instances",
        Duration::from_secs(5),
        async || {
            let body = get(app.addr(), "/instances").await.json();
            body["instances"]
                .as_array()?
                .iter()
                .find(|i| i["name"] == "worker-1" && i["handled"] == 1)
                .cloned()
        },
    )
    .await;
    assert_eq!(fleet["role"], "worker");

    let metrics = get(app.addr(), "/metrics/fleet").await.text();
    for line in [
        "scaleout_fleet_jobs_processed_total 1",
        "scaleout_fleet_jobs_failed_total 0",
        "scaleout_fleet_jobs_dead_total 0",
        "scaleout_fleet_jobs_queue_length 0",
    ] {
        assert!(metrics.contains(line), "{line} missing from:\n{metrics}");
    }
}

#[tokio::test]
async fn plain_strings_pushed_by_hand_are_jobs() {
    let redis = Redis::start();
    let store = store(&redis);
    let worker = worker(&redis, "worker-1", &[]);
    let long = "y".repeat(MAX_NAME + 100);
    assert_eq!(redis.cmd(&["RPUSH", "jobs", "x"]).as_deref(), Some(":1"));
    redis.cmd(&["RPUSH", "jobs", &long]);

    let ids: Vec<String> = until(
        "both to be processed",
        Duration::from_secs(10),
        async || {
            let lines = worker.logged("processed");
            (lines.len() == 2).then(|| {
                lines
                    .iter()
                    .map(|l| l["id"].as_str().unwrap().to_string())
                    .collect()
            })
        },
    )
    .await;
    let x = job(&store, &ids[0]).await;
    assert_eq!((x.name.as_str(), x.status), ("x", Status::Done));
    assert_eq!(x.worker.as_deref(), Some("worker-1"));
    assert!(
        scaleout::jobs::valid_id(&x.id),
        "a fresh id, not the string"
    );
    let y = job(&store, &ids[1]).await;
    assert_eq!(y.name, "y".repeat(MAX_NAME), "cut to the name limit");

    let (recent, lengths) = queue::overview(&store).await.unwrap();
    let recent: Vec<&str> = recent.iter().map(|j| j.id.as_str()).collect();
    assert_eq!(recent, [ids[1].as_str(), ids[0].as_str()]);
    assert_eq!(lengths.queue_length + lengths.processing_length, 0);
}

#[tokio::test]
async fn a_killed_workers_job_is_reclaimed_by_another() {
    let redis = Redis::start();
    let store = store(&redis);
    let mut a = worker(&redis, "worker-a", &[("JOB_WORK_MS", "60000")]);
    let id = enqueue(&store, "slow").await;
    let held = reaches(&store, &id, Status::Processing, Duration::from_secs(10)).await;
    assert_eq!(held.worker.as_deref(), Some("worker-a"));

    a.signal("KILL");
    a.wait_exit(Duration::from_secs(5));
    let b = worker(&redis, "worker-b", &[]);
    // worker-a's heartbeat expires after 5 s; then worker-b's reclaimer returns its job.
    let done = reaches(&store, &id, Status::Done, Duration::from_secs(15)).await;
    assert_eq!(done.worker.as_deref(), Some("worker-b"));
    assert_eq!(done.attempts, 2);
    assert!(
        done.last_error
            .as_deref()
            .unwrap_or("")
            .contains("worker-a"),
        "{done:?}"
    );
    assert_eq!(b.logged("reclaimed jobs of dead or stuck workers").len(), 1);
    assert_eq!(redis.int(&["LLEN", "jobs:processing:worker-a"]), 0);
    assert_eq!(redis.int(&["SISMEMBER", "jobs:consumers", "worker-a"]), 0);
}

#[tokio::test]
async fn nothing_is_lost_across_200_jobs_with_two_workers_and_random_kills() {
    const JOBS: usize = 200;
    const KILLS: usize = 10;
    let redis = Redis::start();
    let store = store(&redis);
    let ids: Vec<String> = (0..JOBS).map(|i| format!("job-{i:03}")).collect();
    for id in &ids {
        let created = queue::enqueue(&store, id, id).await.unwrap();
        assert!(matches!(created, Enqueued::New { .. }));
    }

    // A job may be interrupted more than once; it must still complete, not go dead.
    let env = [("JOB_WORK_MS", "30"), ("JOB_MAX_ATTEMPTS", "100")];
    let mut names = ["w0".to_string(), "w1".to_string()];
    let mut live: Vec<Scaleout> = names.iter().map(|n| worker(&redis, n, &env)).collect();
    let mut killed = Vec::new();
    let mut rng = nanorand::WyRand::new();
    let mut kills_mid_job = 0;
    while killed.len() < KILLS && redis.int(&["LLEN", "jobs"]) > 0 {
        tokio::time::sleep(Duration::from_millis(rng.generate_range(20..150))).await;
        let victim = rng.generate_range(0..live.len());
        let processing = format!("jobs:processing:{}", names[victim]);
        // Kill it while it holds a job, if it gets one soon.
        let busy = poll(Duration::from_secs(2), async || {
            (redis.int(&["LLEN", &processing]) > 0).then_some(())
        })
        .await;
        live[victim].signal("KILL");
        live[victim].wait_exit(Duration::from_secs(5));
        kills_mid_job += usize::from(busy.is_some());
        // Half the restarts keep the name (the new process requeues what the old one held),
        // half take a new one (another worker's reclaimer must notice the dead heartbeat).
        if killed.len() % 2 == 1 {
            names[victim] = format!("w{victim}-{}", killed.len());
        }
        let restarted = worker(&redis, &names[victim], &env);
        killed.push(std::mem::replace(&mut live[victim], restarted));
    }
    assert!(
        killed.len() >= 5,
        "only {} kills before the queue ran dry",
        killed.len()
    );

    let stats = until(
        "every job to complete",
        Duration::from_secs(30),
        async || {
            let stats = queue::stats(&store).await.ok()?;
            (stats.processed as usize >= JOBS).then_some(stats)
        },
    )
    .await;
    assert_eq!(
        stats.processed as usize, JOBS,
        "each job is completed exactly once"
    );
    assert_eq!((stats.failed, stats.dead), (0, 0));
    let l = stats.lengths;
    let left = (
        l.queue_length,
        l.processing_length,
        l.delayed_length,
        l.dead_length,
    );
    assert_eq!(left, (0, 0, 0, 0));

    let mut runs = 0;
    let mut reclaimed = 0;
    for id in &ids {
        let job = job(&store, id).await;
        assert_eq!(job.status, Status::Done, "{job:?}");
        assert!(job.worker.is_some(), "{job:?}");
        runs += job.attempts as usize;
        reclaimed += usize::from(job.attempts > 1);
    }
    assert!(reclaimed >= 1, "no kill interrupted a job");
    // The log line follows the completion, so a kill can land in between and lose it.
    let logged_ids: HashSet<String> = live
        .iter()
        .chain(&killed)
        .flat_map(|w| w.logged("processed"))
        .map(|l| l["id"].as_str().unwrap().to_string())
        .collect();
    assert!(logged_ids.iter().all(|id| ids.contains(id)));
    assert!(
        logged_ids.len() + killed.len() >= JOBS,
        "{} completions logged",
        logged_ids.len()
    );
    eprintln!(
        "{JOBS} jobs, {} kills ({kills_mid_job} mid-job), {reclaimed} jobs reclaimed, \
         {runs} claims in all, 0 lost, {} completions logged",
        killed.len(),
        logged_ids.len()
    );
}

#[tokio::test]
async fn a_reclaimed_claim_cannot_be_completed_by_the_old_claimant() {
    let redis = Redis::start();
    let store = store(&redis);
    let hour = Duration::from_secs(3600);
    let limits = Limits {
        lease: hour,
        max_attempts: 3,
        dead_max: 1000,
    };
    let consumer = async |name: &str, lease: Duration| {
        let limits = Limits { lease, ..limits };
        let consumer = Consumer::new(name, limits, store.clone());
        consumer.register().await.unwrap();
        consumer
    };
    let a = consumer("worker-a", hour).await;
    let b = consumer("worker-b", hour).await;

    let id = enqueue(&store, "fenced").await;
    let item = a.take().await.unwrap().expect("an item");
    assert_eq!(item, id.as_bytes());
    let old = a.claim(&item).await.unwrap().expect("a claim");
    assert_eq!((old.id.as_str(), old.attempt), (id.as_str(), 1));

    // worker-a never sent a heartbeat: the reclaimer takes it for dead.
    assert_eq!(queue::reclaim(&store, &limits).await.unwrap(), (1, 0));
    let back = job(&store, &id).await;
    assert_eq!(
        (back.status, back.worker.as_deref()),
        (Status::Queued, None)
    );
    assert!(
        !a.finish(&old, &Outcome::Done).await.unwrap(),
        "back in the queue"
    );

    let item = b.take().await.unwrap().expect("the item again");
    let new = b.claim(&item).await.unwrap().expect("a claim");
    assert_eq!(new.attempt, 2);
    assert!(
        !a.finish(&old, &Outcome::Done).await.unwrap(),
        "someone else's"
    );
    let dead = Outcome::Dead {
        error: "late".into(),
    };
    assert!(
        !a.finish(&old, &dead).await.unwrap(),
        "cannot fail it either"
    );
    assert!(b.finish(&new, &Outcome::Done).await.unwrap());
    assert!(!b.finish(&new, &Outcome::Done).await.unwrap(), "only once");
    let done = job(&store, &id).await;
    assert_eq!(
        (done.status, done.worker.as_deref()),
        (Status::Done, Some("worker-b"))
    );
    let stats = queue::stats(&store).await.unwrap();
    assert_eq!((stats.processed, stats.failed, stats.dead), (1, 0, 0));

    // A live worker keeps its job while its lease holds; a lease that ran out loses it.
    let c = consumer("worker-c", Duration::ZERO).await;
    let member = Member {
        name: "worker-c".into(),
        role: Role::Worker,
        started_at: now_ms(),
        handled: Arc::default(),
        draining: Arc::default(),
    };
    member.beat(&store).await.unwrap();
    let id = enqueue(&store, "slow").await;
    let item = c.take().await.unwrap().expect("an item");
    let slow = c.claim(&item).await.unwrap().expect("a claim");
    assert_eq!(queue::reclaim(&store, &limits).await.unwrap(), (1, 0));
    let back = job(&store, &id).await;
    assert!(back.last_error.unwrap().contains("lease"));
    assert!(!c.finish(&slow, &Outcome::Done).await.unwrap());
    assert!(
        !c.renew(&slow).await.unwrap(),
        "a lost claim is not renewed"
    );
    let e = consumer("worker-e", hour).await;
    Member {
        name: "worker-e".into(),
        ..member
    }
    .beat(&store)
    .await
    .unwrap();
    let item = e.take().await.unwrap().expect("an item");
    let held = e.claim(&item).await.unwrap().expect("a claim");
    assert!(e.renew(&held).await.unwrap());
    assert_eq!(
        queue::reclaim(&store, &limits).await.unwrap(),
        (0, 0),
        "alive, lease held"
    );
    // Back to the queue for the next check (the lease is an hour long).
    assert_eq!(e.retire().await.unwrap(), 1);

    // An item reclaimed between BLMOVE and the claim is not claimed.
    let d = consumer("worker-d", hour).await;
    let item = d.take().await.unwrap().expect("an item");
    assert_eq!(queue::reclaim(&store, &limits).await.unwrap(), (1, 0));
    assert!(d.claim(&item).await.unwrap().is_none());
    assert_eq!(job(&store, &id).await.status, Status::Queued);
    assert_eq!(redis.int(&["LLEN", "jobs"]), 1);

    // A run lost on the last attempt ends the job in jobs:dead, whether the reclaimer
    // finds it (lease ran out) or a restarted worker finds it in its own list.
    let f = consumer("worker-f", Duration::ZERO).await;
    let item = f.take().await.unwrap().expect("an item");
    assert_eq!(f.claim(&item).await.unwrap().expect("a claim").attempt, 3);
    assert_eq!(queue::reclaim(&store, &limits).await.unwrap(), (0, 1));
    let dead = job(&store, &id).await;
    assert_eq!(dead.status, Status::Dead);
    assert!(
        dead.last_error.unwrap().contains("attempt 3 of 3"),
        "says it was the last"
    );
    let once = Limits {
        max_attempts: 1,
        ..limits
    };
    let g = Consumer::new("worker-g", once, store.clone());
    g.register().await.unwrap();
    let other = enqueue(&store, "other").await;
    let item = g.take().await.unwrap().expect("an item");
    g.claim(&item).await.unwrap().expect("a claim");
    assert_eq!(g.register().await.unwrap(), 1, "as a restart would");
    let lost = job(&store, &other).await;
    assert_eq!(lost.status, Status::Dead);
    assert!(lost.last_error.unwrap().contains("worker-g lost"));
    let mut conn = store.conn().unwrap();
    let letters: Vec<String> = conn.lrange(keys::DEAD, 0, -1).await.unwrap();
    assert_eq!(letters, [other, id]);
    assert_eq!(redis.int(&["LLEN", "jobs"]), 0);
    assert_eq!(queue::stats(&store).await.unwrap().dead, 2);
}

#[tokio::test]
async fn a_failing_job_retries_with_backoff_then_goes_dead() {
    let redis = Redis::start();
    let store = store(&redis);
    let worker = worker(&redis, "worker-1", &[("JOB_WORK_MS", "10")]);
    let started = Instant::now();
    let id = enqueue(&store, "fail-on-purpose").await;

    let dead = reaches(&store, &id, Status::Dead, Duration::from_secs(15)).await;
    let elapsed = started.elapsed();
    assert_eq!(dead.attempts, 3, "JOB_MAX_ATTEMPTS defaults to 3");
    assert!(dead.last_error.unwrap().contains("deliberate"));
    assert!(
        elapsed >= Duration::from_millis(1500),
        "at least 0.5 s + 1 s of jittered backoff, took {elapsed:?}"
    );

    let failures = worker.logged("failed");
    let retries: Vec<(u64, u64)> = failures
        .iter()
        .map(|l| {
            (
                l["attempt"].as_u64().unwrap(),
                l["retry_in_ms"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(retries.len(), 2, "{retries:?}");
    // 1 s then 2 s, each jittered down by up to half.
    for ((attempt, ms), (want, ceiling)) in retries.into_iter().zip([(1, 1000), (2, 2000)]) {
        assert_eq!(attempt, want);
        assert!((ceiling / 2..=ceiling).contains(&ms), "{ms} ms");
    }
    let last = first_logged(&worker, "dead", Duration::from_secs(5)).await;
    assert_eq!(
        (&last["id"], &last["attempt"]),
        (&Value::from(id.as_str()), &Value::from(3))
    );

    let mut conn = store.conn().unwrap();
    let letters: Vec<String> = conn.lrange(keys::DEAD, 0, -1).await.unwrap();
    assert_eq!(letters, [id]);
    let stats = queue::stats(&store).await.unwrap();
    assert_eq!((stats.processed, stats.failed, stats.dead), (0, 3, 1));
    assert_eq!(
        redis.int(&["TTL", &keys::job(&letters[0])]),
        -1,
        "a listed dead job's details are kept"
    );
}

#[tokio::test]
async fn sigterm_mid_job_finishes_it_and_exits_zero() {
    let redis = Redis::start();
    let store = store(&redis);
    let mut worker = worker(&redis, "worker-1", &[("JOB_WORK_MS", "1500")]);
    let current = enqueue(&store, "current").await;
    let next = enqueue(&store, "next").await;
    reaches(
        &store,
        &current,
        Status::Processing,
        Duration::from_secs(10),
    )
    .await;

    worker.signal("TERM");
    let status = worker.wait_exit(Duration::from_secs(10));
    assert!(status.success(), "{status:?}");
    assert_eq!(job(&store, &current).await.status, Status::Done);
    assert_eq!(
        job(&store, &next).await.status,
        Status::Queued,
        "not claimed"
    );
    assert_eq!(redis.int(&["LLEN", "jobs"]), 1);

    let order: Vec<String> = worker
        .logs()
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|v| v["message"].as_str().map(str::to_string))
        .filter(|m| m.starts_with("stopping") || m == "processed" || m == "stopped")
        .collect();
    assert_eq!(order.len(), 3, "{order:?}");
    assert!(order[0].starts_with("stopping") && order[1] == "processed" && order[2] == "stopped");
    assert_eq!(
        redis.int(&["EXISTS", "instance:worker-1"]),
        0,
        "left the fleet"
    );
    assert_eq!(redis.int(&["SISMEMBER", "jobs:consumers", "worker-1"]), 0);
}

#[tokio::test]
async fn the_worker_logs_a_wrong_type_queue_at_error() {
    let redis = Redis::start();
    assert_eq!(
        redis.cmd(&["SET", "jobs", "not a list"]).as_deref(),
        Some("+OK")
    );
    let url = redis.url();
    let worker = Scaleout::spawn(
        "worker",
        &[("REDIS_URL", url.as_str()), ("INSTANCE_NAME", "worker-1")],
    );
    let line = until(
        "the worker's error log line",
        Duration::from_secs(10),
        async || {
            let failed = worker.logged("redis command failed");
            failed.into_iter().find(|v| v["level"] == "ERROR")
        },
    )
    .await;
    assert_eq!(line["command"], "BLMOVE", "{line}");
    assert!(
        line["error"].as_str().unwrap().contains("WRONGTYPE"),
        "{line}"
    );
}

/// CPU seconds (user + system) a process has used, from /proc.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc stat");
    // Fields after the parenthesised name; utime and stime are the 14th and 15th overall.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    let out = std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .expect("getconf");
    let per_sec: f64 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    ticks as f64 / per_sec
}

#[tokio::test]
async fn a_redis_outage_costs_no_cpu_and_the_worker_resumes() {
    let mut redis = Redis::start();
    let store = store(&redis);
    let mut worker = worker(&redis, "worker-1", &[]);
    let id = enqueue(&store, "before").await;
    reaches(&store, &id, Status::Done, Duration::from_secs(10)).await;

    redis.stop();
    first_logged(
        &worker,
        "redis unavailable: backing off",
        Duration::from_secs(5),
    )
    .await;
    let window = Duration::from_secs(3);
    let cpu = cpu_seconds(worker.pid());
    tokio::time::sleep(window).await; // the measurement itself, not a wait for readiness
    let share = (cpu_seconds(worker.pid()) - cpu) / window.as_secs_f64();
    assert!(
        share < 0.10,
        "worker used {:.1}% CPU while Redis was down",
        share * 100.0
    );
    assert!(worker.is_running());

    redis.restart();
    let id = until(
        "an enqueue after the restart",
        Duration::from_secs(5),
        async || {
            let id = scaleout::jobs::new_id();
            queue::enqueue(&store, &id, "after").await.ok().map(|_| id)
        },
    )
    .await;
    reaches(&store, &id, Status::Done, Duration::from_secs(10)).await;
    first_logged(
        &worker,
        "redis reachable again: resuming",
        Duration::from_secs(1),
    )
    .await;
}

#[tokio::test]
async fn job_routes_reject_bad_input_and_enqueue_idempotently() {
    let mut redis = Redis::start();
    let app = app(&redis);
    let long_id = format!(r#"{{"name":"x","id":"{}"}}"#, "a".repeat(65));
    let long_name = format!(r#"{{"name":"{}"}}"#, "n".repeat(MAX_NAME + 1));
    let long_query = format!("/enqueue?job={}", "n".repeat(MAX_NAME + 1));
    let cases: Vec<(&str, &str, Option<&[u8]>, u16)> = vec![
        ("GET", "/enqueue", None, 400),
        ("GET", "/enqueue?job=", None, 400),
        ("GET", "/enqueue?name=x", None, 400),
        ("GET", &long_query, None, 400),
        ("GET", "/enqueue?job=%FF", None, 400),
        ("GET", "/enqueue?job=a%0Ab", None, 400),
        ("POST", "/enqueue?job=x", None, 405),
        ("POST", "/jobs", Some(b"not json"), 400),
        ("POST", "/jobs", Some(b""), 400),
        ("POST", "/jobs", Some(b"{}"), 400),
        ("POST", "/jobs", Some(br#"{"name":""}"#), 400),
        ("POST", "/jobs", Some(br#"{"name":5}"#), 400),
        ("POST", "/jobs", Some(br#"["x"]"#), 400),
        ("POST", "/jobs", Some(br#"{"name":"x","id":"a b"}"#), 400),
        ("POST", "/jobs", Some(br#"{"name":"x","id":"a:b"}"#), 400),
        ("POST", "/jobs", Some(br#"{"name":"x","id":""}"#), 400),
        ("POST", "/jobs", Some(long_id.as_bytes()), 400),
        ("POST", "/jobs", Some(long_name.as_bytes()), 400),
        ("DELETE", "/jobs", None, 405),
        ("PUT", "/jobs/abc", None, 405),
        ("GET", "/jobs/unknown", None, 404),
        ("GET", "/jobs/bad%20id", None, 400),
        ("GET", "/jobs/a:b", None, 400),
    ];
    for (method, path, body, status) in cases {
        let res = send(app.addr(), method, path, None, body).await.unwrap();
        let shown = &path[..path.len().min(40)];
        assert_eq!(res.status, status, "{method} {shown}");
        assert!(res.json()["error"].is_string(), "{method} {shown}");
    }

    // A body over 64 KiB is refused as soon as it is announced, before it is sent.
    let announced = format!(
        "POST /jobs HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n",
        64 * 1024 + 1
    );
    let res = http::raw(app.addr(), announced.as_bytes()).await.unwrap();
    assert_eq!(res.status, 413);
    assert!(res.json()["error"].is_string());

    let at_limit = format!("/enqueue?job={}", "n".repeat(MAX_NAME));
    assert_eq!(get(app.addr(), &at_limit).await.status, 202);
    let post = |body: &'static str| send(app.addr(), "POST", "/jobs", None, Some(body.as_bytes()));
    let first = post(r#"{"name":"report","id":"order-42"}"#).await.unwrap();
    assert_eq!(first.status, 202);
    assert_eq!(first.json()["queue_length"], 2);
    for retry in [
        r#"{"name":"report","id":"order-42"}"#,
        r#"{"name":"other","id":"order-42"}"#,
    ] {
        let again = post(retry).await.unwrap();
        assert_eq!(again.status, 200, "an existing id is not queued twice");
        let body = again.json();
        assert_eq!(
            (&body["id"], &body["enqueued"]),
            (&"order-42".into(), &"report".into())
        );
        assert_eq!(body["queue_length"], 2);
        assert_eq!(body["job"]["status"], "queued");
    }
    let shown = get(app.addr(), "/jobs/order-42").await;
    assert_eq!(shown.status, 200);
    let expected = serde_json::json!({
        "id": "order-42", "name": "report", "status": "queued", "attempts": 0,
        "worker": null, "last_error": null,
    });
    let body = shown.json();
    for (field, value) in expected.as_object().unwrap() {
        assert_eq!(&body[field], value, "{field}");
    }
    let list = get(app.addr(), "/jobs").await.json();
    assert_eq!(list["jobs"].as_array().unwrap().len(), 2);
    assert_eq!(list["jobs"][0]["id"], "order-42", "newest first");
    assert_eq!(list["queue_length"], 2);
    assert_eq!(redis.int(&["LLEN", "jobs"]), 2);

    // Redis down: the job routes fail fast, /metrics still shows what is local.
    redis.stop();
    let started = Instant::now();
    let res = get(app.addr(), "/enqueue?job=x").await;
    assert_eq!(
        (res.status, res.json()["error"].clone()),
        (503, "redis unavailable".into())
    );
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(get(app.addr(), "/jobs").await.status, 503);
    let metrics = get(app.addr(), "/metrics").await;
    assert_eq!(metrics.status, 200);
    let text = metrics.text();
    assert!(text.contains("scaleout_http_requests_total"));
    assert!(!text.contains("scaleout_fleet_jobs"));
    assert_eq!(get(app.addr(), "/metrics/fleet").await.status, 503);
}

#[tokio::test]
async fn a_job_whose_worker_is_killed_on_every_attempt_goes_dead_after_the_last() {
    let redis = Redis::start();
    let store = store(&redis);
    let slow = [("JOB_WORK_MS", "60000")];
    let id = enqueue(&store, "doomed").await;
    // Attempts 1 and 2 end in a SIGKILL and a restart under the same name (which returns
    // what the old process held at start-up); attempt 3 ends in a SIGKILL that another
    // worker's reclaimer notices when the heartbeat expires.
    let mut w = worker(&redis, "worker-a", &slow);
    for attempt in 1..=3 {
        until(
            &format!("attempt {attempt} to be claimed"),
            Duration::from_secs(10),
            async || {
                let job = queue::job(&store, &id).await.ok().flatten()?;
                (job.status == Status::Processing && job.attempts == attempt).then_some(())
            },
        )
        .await;
        w.signal("KILL");
        w.wait_exit(Duration::from_secs(5));
        let next = if attempt < 3 { "worker-a" } else { "worker-b" };
        w = worker(&redis, next, &slow);
    }

    let dead = reaches(&store, &id, Status::Dead, Duration::from_secs(15)).await;
    assert_eq!(dead.attempts, 3, "JOB_MAX_ATTEMPTS defaults to 3");
    let error = dead.last_error.unwrap_or_default();
    assert!(
        error.contains("worker-a") && error.contains("lost"),
        "{error}"
    );
    let mut conn = store.conn().unwrap();
    let letters: Vec<String> = conn.lrange(keys::DEAD, 0, -1).await.unwrap();
    assert_eq!(letters, [id.as_str()]);
    assert_eq!(redis.int(&["LLEN", "jobs"]), 0, "not claimed a 4th time");
    assert_eq!(redis.int(&["LLEN", "jobs:processing:worker-b"]), 0);
    let stats = queue::stats(&store).await.unwrap();
    assert_eq!((stats.processed, stats.dead), (0, 1));
    assert_eq!(job(&store, &id).await.attempts, 3);
}

#[tokio::test]
async fn a_live_worker_renews_its_lease_so_a_long_job_runs_once() {
    let redis = Redis::start();
    let store = store(&redis);
    // Each job takes twice the visibility timeout.
    let env = [("JOB_WORK_MS", "4000"), ("JOB_VISIBILITY_SECS", "2")];
    let a = worker(&redis, "worker-a", &env);
    let id = enqueue(&store, "long").await;
    reaches(&store, &id, Status::Processing, Duration::from_secs(10)).await;
    // An idle second worker whose reclaimer would take the job if the lease lapsed.
    let b = worker(&redis, "worker-b", &env);

    let done = reaches(&store, &id, Status::Done, Duration::from_secs(15)).await;
    assert_eq!(done.attempts, 1, "{done:?}");
    assert_eq!(done.worker.as_deref(), Some("worker-a"));
    assert_eq!(done.last_error, None);
    let stats = queue::stats(&store).await.unwrap();
    assert_eq!(stats.processed, 1);
    for w in [&a, &b] {
        assert!(
            w.logged("reclaimed jobs of dead or stuck workers")
                .is_empty()
        );
    }
}

#[tokio::test]
async fn a_worker_that_stops_renewing_loses_its_claim_and_gives_the_job_up() {
    let redis = Redis::start();
    let store = store(&redis);
    let a = worker(
        &redis,
        "worker-a",
        &[("JOB_WORK_MS", "60000"), ("JOB_VISIBILITY_SECS", "1")],
    );
    let id = enqueue(&store, "stalled").await;
    reaches(&store, &id, Status::Processing, Duration::from_secs(10)).await;
    a.signal("STOP"); // alive but frozen: its heartbeat (5 s) outlives its lease (1 s)
    let b = worker(&redis, "worker-b", &[("JOB_VISIBILITY_SECS", "1")]);

    let done = reaches(&store, &id, Status::Done, Duration::from_secs(10)).await;
    assert_eq!(
        (done.worker.as_deref(), done.attempts),
        (Some("worker-b"), 2)
    );
    let error = done.last_error.unwrap_or_default();
    assert!(
        error.contains("worker-a") && error.contains("lease"),
        "{error}"
    );
    assert_eq!(b.logged("reclaimed jobs of dead or stuck workers").len(), 1);

    a.signal("CONT");
    // Its next renewal finds the claim gone: it stops the job instead of running it on.
    let lost = first_logged(
        &a,
        "claim lost: the job was reclaimed and runs again elsewhere",
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(lost["id"], id.as_str());
    let stats = queue::stats(&store).await.unwrap();
    assert_eq!(stats.processed, 1);
    assert_eq!(job(&store, &id).await.worker.as_deref(), Some("worker-b"));
}

#[tokio::test]
async fn the_dead_list_is_bounded_and_keeps_the_details_of_what_it_lists() {
    let redis = Redis::start();
    let store = store(&redis);
    let _w = worker(
        &redis,
        "worker-1",
        &[
            ("JOB_WORK_MS", "10"),
            ("JOB_MAX_ATTEMPTS", "1"),
            ("JOB_DEAD_MAX", "2"),
        ],
    );
    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(enqueue(&store, &format!("fail-{i}")).await);
    }
    until("3 dead jobs", Duration::from_secs(10), async || {
        let stats = queue::stats(&store).await.ok()?;
        (stats.dead == 3).then_some(())
    })
    .await;

    let mut conn = store.conn().unwrap();
    let letters: Vec<String> = conn.lrange(keys::DEAD, 0, -1).await.unwrap();
    assert_eq!(letters, [ids[2].clone(), ids[1].clone()], "newest first");
    assert!(
        queue::job(&store, &ids[0]).await.unwrap().is_none(),
        "trimmed off the list: its hash is gone too"
    );
    for id in &letters {
        assert_eq!(job(&store, id).await.status, Status::Dead);
        assert_eq!(redis.int(&["TTL", &keys::job(id)]), -1, "kept while listed");
    }
}

/// Whether a step made its change but was not confirmed: no replica acknowledged it.
fn not_replicated<T>(result: Result<T, RedisFailure>) -> bool {
    matches!(
        result,
        Err(RedisFailure::NotReplicated { acks: 0, wanted: 1 })
    )
}

/// With `REDIS_WAIT_REPLICAS`, every job state change is confirmed only once replicas
/// acknowledged it: with none there, each step made its change on the primary but
/// answers "not replicated"; once a replica is in sync, the same steps succeed.
#[tokio::test]
async fn every_job_state_change_waits_for_the_replicas_asked_for() {
    let redis = Redis::start();
    let plain = store(&redis);
    // With no replica: short enough that a step with two WAITs still ends inside the
    // 800 ms call bound as "not replicated" (400 ms did not, once).
    let waiting = waiting_store(&redis, 200);
    let limits = Limits {
        lease: Duration::from_secs(3600),
        max_attempts: 3,
        dead_max: 1000,
    };

    let id = scaleout::jobs::new_id();
    assert!(not_replicated(queue::enqueue(&waiting, &id, "wait").await));
    assert_eq!(job(&plain, &id).await.status, Status::Queued, "made anyway");
    let consumer = Consumer::new("worker-w", limits, waiting.clone());
    assert!(not_replicated(consumer.register().await));
    let item = consumer.take().await.unwrap().expect("the item");
    let claim = consumer.claim(&item).await;
    assert!(not_replicated(claim), "claim");
    assert_eq!(job(&plain, &id).await.status, Status::Processing);
    assert!(not_replicated(queue::reclaim(&waiting, &limits).await));
    assert!(not_replicated(consumer.retire().await), "requeue");

    // A replica in sync: the same steps are confirmed.
    let _replica = Redis::replica_of(&redis);
    until(
        "the replica to be in sync",
        Duration::from_secs(10),
        async || redis.replicated(1).then_some(()),
    )
    .await;
    // The longest allowed: a replica in sync must not miss it on a busy machine (20 ms
    // did, under load).
    let waiting = waiting_store(&redis, 400);
    let consumer = Consumer::new("worker-w", limits, waiting.clone());
    enqueue(&waiting, "wait again").await;
    consumer.register().await.expect("registered");
    let mut claimed = None;
    while claimed.is_none() {
        let item = consumer.take().await.unwrap().expect("an item");
        claimed = consumer.claim(&item).await.expect("claimed");
    }
    let claim = claimed.unwrap();
    assert!(consumer.renew(&claim).await.expect("renewed"));
    assert!(consumer.finish(&claim, &Outcome::Done).await.expect("done"));
    assert_eq!(
        queue::reclaim(&waiting, &limits).await.expect("ran"),
        (0, 0)
    );
}
