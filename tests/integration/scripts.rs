//! The Lua scripts' guards against a real Redis: a script that visits keys found in the
//! data is told them by its caller (see `scaleout::scripts`), so it must refuse, changing
//! nothing, when the data changed after the caller read it; and what it was told must be
//! enough to keep the dead-letter list's promise even when it shrinks by many ids at once.

use std::time::Duration;

use redis::{AsyncCommands, Value};
use scaleout::{keys, scripts};

use crate::common::{Redis, Scaleout, password, wait_for};

async fn connection(redis: &Redis) -> redis::aio::MultiplexedConnection {
    redis
        .client_as(Some(("admin", &password("admin"))))
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

#[tokio::test]
async fn lengths_refuse_a_consumers_set_that_changed_since_it_was_read() {
    let redis = Redis::start();
    let mut conn = connection(&redis).await;
    let () = conn.sadd(keys::CONSUMERS, "w1").await.unwrap();
    let () = conn.rpush(keys::processing("w1"), "a").await.unwrap();
    let stats = |consumers: &[&str]| {
        let mut call = scripts::STATS.prepare_invoke();
        scripts::lengths_keys(&mut call, consumers);
        call.key(keys::JOB_STATS);
        call
    };
    // Read before w1 registered: w1's job would be counted nowhere.
    let stale: Value = stats(&[]).invoke_async(&mut conn).await.unwrap();
    assert_eq!(stale, Value::Nil);
    let stale: Value = stats(&["w0"]).invoke_async(&mut conn).await.unwrap();
    assert_eq!(stale, Value::Nil);
    let (_, lengths): (Vec<Option<u64>>, (u64, u64, u64, u64)) =
        stats(&["w1"]).invoke_async(&mut conn).await.unwrap();
    assert_eq!(lengths, (0, 1, 0, 0));
}

#[tokio::test]
async fn a_burial_refuses_a_dead_list_tail_that_changed_and_changes_nothing() {
    let redis = Redis::start();
    let mut conn = connection(&redis).await;
    let job = keys::job("j1");
    let () = conn
        .hset_multiple(
            &job,
            &[("id", "j1"), ("status", "processing"), ("token", "t")],
        )
        .await
        .unwrap();
    let () = conn.rpush(keys::processing("w1"), "j1").await.unwrap();
    let () = conn.rpush(keys::DEAD, "old").await.unwrap();
    // The caller read an empty tail from index 0 (dead max 1, one burial), but "old" is
    // there now: burying would trim "old" without its hash in KEYS.
    let fail = |tail: &[&str]| {
        let mut call = scripts::FAIL.prepare_invoke();
        call.key(keys::processing("w1"))
            .key(&job)
            .key(keys::JOB_STATS)
            .key(keys::DELAYED)
            .key(keys::DEAD)
            .arg(0)
            .arg(tail.len())
            .arg("j1")
            .arg("t")
            .arg(1)
            .arg("boom")
            .arg("")
            .arg(1);
        for id in tail {
            call.key(keys::job(id)).arg(*id);
        }
        call
    };
    let stale: Value = fail(&[]).invoke_async(&mut conn).await.unwrap();
    assert_eq!(stale, Value::Nil);
    let status: String = conn.hget(&job, "status").await.unwrap();
    assert_eq!(status, "processing", "nothing changed");
    assert_eq!(redis.int(&["LLEN", &keys::processing("w1")]), 1);

    let () = conn.hset(keys::job("old"), "status", "dead").await.unwrap();
    let done: u8 = fail(&["old"]).invoke_async(&mut conn).await.unwrap();
    assert_eq!(done, 1);
    let dead: Vec<String> = conn.lrange(keys::DEAD, 0, -1).await.unwrap();
    assert_eq!(dead, ["j1"]);
    assert_eq!(
        redis.int(&["EXISTS", &keys::job("old")]),
        0,
        "trimmed with its id"
    );
}

/// A lowered `JOB_DEAD_MAX` trims many ids in one burial: the worker must read, and pass,
/// the whole tail, and every trimmed id's hash goes with it.
#[tokio::test]
async fn a_lowered_dead_max_trims_many_ids_and_their_hashes_at_once() {
    let redis = Redis::start();
    let mut conn = connection(&redis).await;
    let old: Vec<String> = (1..=5).map(|i| format!("d{i}")).collect();
    for id in &old {
        let () = conn.hset(keys::job(id), "status", "dead").await.unwrap();
        let () = conn.lpush(keys::DEAD, id).await.unwrap();
    }
    let url = redis.url();
    let _worker = Scaleout::spawn(
        "worker",
        &[
            ("REDIS_URL", url.as_str()),
            ("INSTANCE_NAME", "w1"),
            ("JOB_WORK_MS", "10"),
            ("JOB_MAX_ATTEMPTS", "1"),
            ("JOB_DEAD_MAX", "2"),
        ],
    );
    let () = conn.hset(keys::job("x"), "status", "queued").await.unwrap();
    let () = conn.hset(keys::job("x"), "name", "fail-x").await.unwrap();
    let () = conn.rpush(keys::JOBS, "x").await.unwrap();
    wait_for("the job to die", Duration::from_secs(10), || {
        (redis.int(&["HGET", keys::JOB_STATS, "dead"]) == 1).then_some(())
    });
    let dead: Vec<String> = conn.lrange(keys::DEAD, 0, -1).await.unwrap();
    assert_eq!(dead, ["x", "d5"]);
    for id in ["d1", "d2", "d3", "d4"] {
        assert_eq!(redis.int(&["EXISTS", &keys::job(id)]), 0, "{id} kept");
    }
    for id in ["x", "d5"] {
        assert_eq!(
            redis.cmd(&["HGET", &keys::job(id), "status"]).as_deref(),
            Some("dead")
        );
    }
}
