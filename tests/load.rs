//! `scaleout load` must notice what it claims to check: failures and broken sessions.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{Redis, Scaleout, wait_for};

fn load(url: &str, args: &[&str]) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_scaleout"))
        .args(["load", "--url", url, "--json"])
        .args(args)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("scaleout load")
}

fn report(child: std::process::Child) -> (i32, serde_json::Value) {
    let out = child.wait_with_output().unwrap();
    let json = serde_json::from_slice(&out.stdout).expect("a JSON report");
    (out.status.code().unwrap(), json)
}

#[test]
fn clean_run_passes_with_every_session_checked() {
    let redis = Redis::start();
    let app = Scaleout::server(
        "app",
        &[("REDIS_URL", &redis.url()), ("INSTANCE_NAME", "solo")],
    );
    let (code, r) = report(load(&app.url("/"), &["-c", "8", "-n", "800"]));
    assert_eq!(code, 0, "{r}");
    assert_eq!(
        (r["requests"].as_u64(), r["ok"].as_u64()),
        (Some(800), Some(800))
    );
    assert_eq!(r["sessions_checked"], 8);
    assert_eq!(r["broken_sessions"], 0);
    assert_eq!(r["served_by"]["solo"]["requests"], 800);
    assert_eq!(redis.int(&["GET", "counter:global"]), 800);
}

#[test]
fn reset_sessions_and_failures_are_reported() {
    let mut redis = Redis::start();
    let app = Scaleout::server("app", &[("REDIS_URL", &redis.url())]);
    let child = load(&app.url("/"), &["-c", "4", "--duration", "3s"]);
    wait_for(
        "load to count some requests",
        Duration::from_secs(5),
        || (redis.int(&["GET", "counter:global"]) > 100).then_some(()),
    );
    // Wiping Redis resets every session's count: the tool must call that broken.
    redis.cmd(&["FLUSHALL"]);
    redis.stop();
    std::thread::sleep(Duration::from_millis(300));
    redis.restart();
    let (code, r) = report(child);
    assert_eq!(code, 1, "{r}");
    assert!(
        r["failures"].as_u64().unwrap() > 0,
        "503s while Redis was down: {r}"
    );
    assert!(r["by_status"]["503"].as_u64().unwrap() > 0, "{r}");
    assert!(r["broken_sessions"].as_u64().unwrap() > 0, "{r}");
}
