//! `scaleout load` must notice what it claims to check: failures and broken sessions,
//! and must survive a server that answers nonsense (counted failures, never a panic).

use std::process::Command;
use std::time::Duration;

use crate::common::{Redis, Scaleout, wait_for};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

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
    let child = load(&app.url("/"), &["-c", "4", "--duration", "8s"]);
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

/// A server that answers every request head with the same bytes, however wrong. It lives
/// on the test's runtime, so it ends with the test.
async fn bad_server(answer: &'static [u8]) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                // The client sends one GET head at a time and waits for the answer.
                while let Ok(n @ 1..) = socket.read(&mut buf).await {
                    if buf[..n].windows(4).any(|w| w == b"\r\n\r\n")
                        && socket.write_all(answer).await.is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    format!("http://{addr}/api/")
}

/// Runs `scaleout load --json` to its end (killed if the test fails first): exit code,
/// report, stderr.
async fn load_async(url: &str, args: &[&str]) -> (i32, serde_json::Value, String) {
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_scaleout"))
        .args(["load", "--url", url, "--json", "--timeout", "2s"])
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("scaleout load");
    let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("load ends within 30 s")
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let json = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("a JSON report ({e}); stderr: {stderr}"));
    (out.status.code().expect("an exit code"), json, stderr)
}

/// Every one of 20 requests to `answer` must be a counted failure: exit 1, no panic.
async fn every_request_fails(answer: &'static [u8]) -> serde_json::Value {
    let url = bad_server(answer).await;
    let (code, r, stderr) = load_async(&url, &["-c", "2", "-n", "20"]).await;
    let shown = String::from_utf8_lossy(&answer[..answer.len().min(80)]);
    assert!(!stderr.contains("panicked"), "{shown:?}: {stderr}");
    assert_eq!(code, 1, "{shown:?}: {r}");
    assert_eq!(
        (&r["requests"], &r["failures"], &r["transport_errors"]),
        (&20.into(), &20.into(), &20.into()),
        "{shown:?}: {r}"
    );
    assert_eq!(r["failed_users"], 0, "{shown:?}: {r}");
    assert!(
        stderr.contains("FAIL: 20 of 20 requests failed"),
        "{stderr}"
    );
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_chunk_size_is_a_failure_not_a_panic() {
    let r = every_request_fails(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\nabc\r\n0\r\n\r\n",
    )
    .await;
    assert!(
        r["error_examples"][0]
            .as_str()
            .unwrap()
            .contains("chunk of"),
        "{r}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_content_length_is_a_failure_not_an_allocation() {
    for answer in [
        &b"HTTP/1.1 200 OK\r\nContent-Length: 18446744073709551615\r\n\r\n{}"[..],
        // 100 MB: today's client allocated it for every request before reading a byte.
        b"HTTP/1.1 200 OK\r\nContent-Length: 100000000\r\n\r\n{}",
    ] {
        let r = every_request_fails(answer).await;
        let example = r["error_examples"][0].as_str().unwrap();
        assert!(example.contains("over the 8388608-byte limit"), "{r}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_answers_are_failures() {
    for answer in [
        // Each of these three was a 200 to today's client.
        &b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n"[..],
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n+3\r\nabc\r\n0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
        b"garbage\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\nabc\r\n0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}",
        b"HTTP/1.1 2000 OK\r\nContent-Length: 2\r\n\r\n{}",
        b"HTTP/1.1 200 \xff\xfe\r\nContent-Length: 2\r\n\r\n{}",
    ] {
        every_request_fails(answer).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_header_line_without_end_is_cut_off() {
    static ANSWER: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    let answer = ANSWER.get_or_init(|| {
        let mut a = b"HTTP/1.1 200 OK\r\nX-Long: ".to_vec();
        a.resize(1024 * 1024, b'a');
        a
    });
    let r = every_request_fails(answer).await;
    assert!(
        r["error_examples"][0]
            .as_str()
            .unwrap()
            .contains("a line longer than"),
        "{r}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_that_checked_no_session_fails() {
    for answer in [
        &b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"[..],
        b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n{\"ok\":true}",
    ] {
        let url = bad_server(answer).await;
        let (code, r, stderr) = load_async(&url, &["-c", "2", "-n", "20"]).await;
        assert_eq!(code, 1, "{r}");
        assert_eq!(
            (&r["ok"], &r["sessions_checked"]),
            (&20.into(), &0.into()),
            "{r}"
        );
        assert!(stderr.contains("FAIL: no session was checked"), "{stderr}");
        // Without cookies there is no session to check: the same run passes.
        let (code, r, _) = load_async(&url, &["-c", "2", "-n", "20", "--no-cookies"]).await;
        assert_eq!(code, 0, "{r}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_that_sent_no_request_fails() {
    let url = bad_server(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}").await;
    for args in [&["-n", "0"][..], &["--duration", "0s", "--no-cookies"]] {
        let (code, r, stderr) = load_async(&url, args).await;
        assert_eq!((code, &r["requests"]), (1, &0.into()), "{r}");
        assert!(stderr.contains("FAIL: no request was sent"), "{stderr}");
    }
}
