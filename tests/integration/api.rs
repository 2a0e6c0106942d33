//! Black-box tests of `scaleout app` against a real Redis: every route, every error,
//! malformed input, concurrency, a Redis outage, and the SIGTERM drain.

use std::time::{Duration, Instant};

use crate::common::http::{self, get, send};
use crate::common::{Redis, Scaleout, cases, password, poll, until, wait_for};

fn app(redis: &Redis, extra: &[(&str, &str)]) -> Scaleout {
    let url = redis.url();
    let mut env = vec![("REDIS_URL", url.as_str()), ("INSTANCE_NAME", "app-test")];
    env.extend_from_slice(extra);
    Scaleout::server("app", &env)
}

#[tokio::test]
async fn sessions_count_per_cookie_and_globally() {
    let redis = Redis::start();
    let app = app(&redis, &[("SESSION_TTL_SECS", "600")]);

    let first = get(app.addr(), "/").await;
    assert_eq!(first.status, 200);
    assert_eq!(first.header("content-type"), Some("application/json"));
    let cookie = first.header("set-cookie").expect("a new session sets sid");
    for part in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=600"] {
        assert!(cookie.contains(part), "{cookie} lacks {part}");
    }
    let sid = first.sid().unwrap();
    let body = first.json();
    assert_eq!(body["served_by"], "app-test");
    assert_eq!(body["session_id"], sid.as_str());
    assert_eq!(body["session_count"], 1);
    assert_eq!(body["global_count"], 1);
    assert_eq!(body["new_session"], true);

    let second = send(app.addr(), "GET", "/", Some(&sid), None)
        .await
        .unwrap();
    // The cookie slides with the Redis TTL: re-issued, same id, fresh Max-Age.
    let cookie = second
        .header("set-cookie")
        .expect("a known session's cookie is re-issued");
    for part in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=600"] {
        assert!(cookie.contains(part), "{cookie} lacks {part}");
    }
    assert_eq!(second.sid().as_deref(), Some(sid.as_str()));
    let body = second.json();
    assert_eq!(body["session_id"], sid.as_str());
    assert_eq!(body["session_count"], 2);
    assert_eq!(body["global_count"], 2);

    let other = get(app.addr(), "/").await.json();
    assert_ne!(other["session_id"], sid.as_str());
    assert_eq!(other["session_count"], 1);
    assert_eq!(other["global_count"], 3);

    let ttl = redis.int(&["TTL", &format!("session:{sid}")]);
    assert!((1..=600).contains(&ttl), "sliding TTL set, got {ttl}");
}

#[tokio::test]
async fn shared_key_value_round_trips() {
    let redis = Redis::start();
    let app = app(&redis, &[]);
    let set = get(app.addr(), "/set?key=color&value=blue").await;
    assert_eq!(set.status, 200);
    assert_eq!(set.json()["value"], "blue");
    let got = get(app.addr(), "/get?key=color").await.json();
    assert_eq!(
        (got["key"].as_str(), got["value"].as_str()),
        (Some("color"), Some("blue"))
    );
    assert_eq!(got["served_by"], "app-test");

    let put = send(
        app.addr(),
        "PUT",
        "/kv/a%20b",
        None,
        Some("x & y \"quoted\"".as_bytes()),
    )
    .await
    .unwrap();
    assert_eq!(put.status, 200);
    let got = get(app.addr(), "/kv/a%20b").await.json();
    assert_eq!(got["key"], "a b");
    assert_eq!(got["value"], "x & y \"quoted\"");
    assert_eq!(
        get(app.addr(), "/get?key=a+b").await.json()["value"],
        "x & y \"quoted\""
    );

    let missing = get(app.addr(), "/get?key=nope").await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json()["error"], "key not found");
    assert_eq!(get(app.addr(), "/kv/nope").await.status, 404);

    // User keys are namespaced: they cannot reach a counter or the queue.
    get(app.addr(), "/set?key=counter:global&value=7").await;
    get(app.addr(), "/set?key=jobs&value=x").await;
    assert_eq!(
        redis.cmd(&["EXISTS", "counter:global"]).as_deref(),
        Some(":0")
    );
    assert_eq!(redis.cmd(&["EXISTS", "jobs"]).as_deref(), Some(":0"));
    assert_eq!(
        redis.cmd(&["EXISTS", "kv:counter:global"]).as_deref(),
        Some(":1")
    );
}

/// Keys are percent-decoded exactly once, the same way in the path and in the query:
/// what was stored under one form is found under the other, and in Redis under `kv:<key>`.
#[tokio::test]
async fn keys_are_decoded_exactly_once() {
    let redis = Redis::start();
    let app = app(&redis, &[]);
    // (key, as a path segment, as a query value)
    let keys = [
        ("a&b", "a%26b", "a%26b"),
        ("a+b", "a+b", "a%2Bb"),
        ("a+b", "a%2Bb", "a%2Bb"),
        ("100%", "100%25", "100%25"),
        ("a%41", "a%2541", "a%2541"),
        ("a b", "a%20b", "a+b"),
        ("a/b", "a%2Fb", "a%2Fb"),
        ("é", "%C3%A9", "%C3%A9"),
        ("k?x=1#f", "k%3Fx=1%23f", "k%3Fx%3D1%23f"),
    ];
    for (i, (key, path, query)) in keys.iter().enumerate() {
        let value = format!("v{i}");
        let put = send(
            app.addr(),
            "PUT",
            &format!("/kv/{path}"),
            None,
            Some(value.as_bytes()),
        )
        .await
        .unwrap();
        assert_eq!(
            (put.status, put.json()["key"].clone()),
            (200, (*key).into())
        );
        let got = get(app.addr(), &format!("/get?key={query}")).await;
        assert_eq!(
            got.status, 200,
            "{key}: stored via /kv/{path}, read via ?key={query}"
        );
        assert_eq!(
            (got.json()["key"].clone(), got.json()["value"].clone()),
            ((*key).into(), value.clone().into())
        );
        assert_eq!(
            redis.cmd(&["GET", &format!("kv:{key}")]).as_deref(),
            Some(value.as_str()),
            "{key}"
        );
        let set = get(app.addr(), &format!("/set?key={query}&value=w{i}")).await;
        assert_eq!(set.json()["key"], *key);
        let back = get(app.addr(), &format!("/kv/{path}")).await.json();
        assert_eq!(
            (back["key"].as_str(), back["value"].clone()),
            (Some(*key), format!("w{i}").into())
        );
    }
    assert_eq!(
        redis.cmd(&["EXISTS", "kv:a"]).as_deref(),
        Some(":0"),
        "a%26b must not be cut at the decoded &"
    );
}

/// Control characters are refused in values as in keys (400 JSON), by `/set` and `PUT
/// /kv`; tab, newline and carriage return are ordinary text in a value.
#[tokio::test]
async fn values_with_control_characters_are_refused() {
    let redis = Redis::start();
    let app = app(&redis, &[]);
    for bad in ["a%00b", "%1B%5B31m", "x%7Fy", "%C2%85"] {
        let res = get(app.addr(), &format!("/set?key=k&value={bad}")).await;
        assert_eq!(res.status, 400, "/set value {bad}");
        assert_eq!(res.json()["error"], "value contains control characters");
    }
    for bad in [&b"a\0b"[..], b"\x1b[31m", b"bell\x07"] {
        let res = send(app.addr(), "PUT", "/kv/k", None, Some(bad))
            .await
            .unwrap();
        assert_eq!(res.status, 400, "PUT value {bad:?}");
        assert_eq!(res.json()["error"], "value contains control characters");
    }
    assert_eq!(redis.cmd(&["EXISTS", "kv:k"]).as_deref(), Some(":0"));
    let text = "two\r\nlines\tand a tab";
    let ok = send(app.addr(), "PUT", "/kv/k", None, Some(text.as_bytes()))
        .await
        .unwrap();
    assert_eq!((ok.status, ok.json()["value"].clone()), (200, text.into()));
    assert_eq!(get(app.addr(), "/set?key=k&value=a%0Ab").await.status, 200);
}

/// A body that stops arriving is answered 408 within a few seconds and its connection
/// closed, instead of holding the connection (and a slot) forever.
#[tokio::test]
async fn a_stalled_request_body_gets_408_and_the_connection_is_freed() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let redis = Redis::start();
    let app = app(&redis, &[]);
    let mut conn = tokio::net::TcpStream::connect(app.addr()).await.unwrap();
    conn.write_all(b"PUT /kv/a HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n0123456789")
        .await
        .unwrap();
    let started = Instant::now();
    let mut reply = Vec::new();
    tokio::time::timeout(Duration::from_secs(8), conn.read_to_end(&mut reply))
        .await
        .expect("an answer and a closed connection within 8 s")
        .unwrap();
    let waited = started.elapsed();
    let reply = String::from_utf8_lossy(&reply);
    assert!(reply.starts_with("HTTP/1.1 408"), "{reply}");
    assert!(
        reply.contains("\"error\":\"value stopped arriving"),
        "{reply}"
    );
    assert!(waited < Duration::from_secs(5), "answered after {waited:?}");
    assert_eq!(redis.cmd(&["EXISTS", "kv:a"]).as_deref(), Some(":0"));

    // A slow but steady body is not a stalled one: 2 KiB in 100-byte pieces over ~3 s.
    let mut conn = tokio::net::TcpStream::connect(app.addr()).await.unwrap();
    conn.write_all(
        b"PUT /kv/a HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: 2000\r\n\r\n",
    )
    .await
    .unwrap();
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(150)).await;
        conn.write_all(&[b'v'; 100]).await.unwrap();
    }
    let mut reply = Vec::new();
    conn.read_to_end(&mut reply).await.unwrap();
    assert!(String::from_utf8_lossy(&reply).starts_with("HTTP/1.1 200"));
}

/// A connection that is open but has not sent its first request yet waits as long as an
/// idle keep-alive one. Traefik dials connections it does not use at once (a dial that
/// loses the race to a freed idle connection is pooled); with ntex's 1 s default the app
/// answered such a connection 408 after a second, and a request Traefik sent on it at that
/// moment got the 408 (seen in the swarm test, while scaling 3 -> 5 -> 2 under load).
#[tokio::test]
async fn a_fresh_connection_may_wait_before_its_first_request() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let redis = Redis::start();
    let app = app(&redis, &[]);
    let mut conn = tokio::net::TcpStream::connect(app.addr()).await.unwrap();
    // Idle time is what is under test: ntex's timer wheel fires the old 1 s limit by 2 s.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    conn.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut reply = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), conn.read_to_end(&mut reply))
        .await
        .expect("an answer within 5 s")
        .unwrap();
    let reply = String::from_utf8_lossy(&reply);
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
}

/// Sends `request` and reads what comes back, keeping what arrived before a reset: a
/// server that refuses a huge request early closes with unread input, which resets.
async fn send_huge(addr: std::net::SocketAddr, request: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    let _ = conn.write_all(request).await;
    let mut reply = Vec::new();
    let mut buf = [0u8; 4096];
    let read = async {
        while let Ok(n) = conn.read(&mut buf).await {
            if n == 0 {
                break;
            }
            reply.extend_from_slice(&buf[..n]);
        }
    };
    tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .expect("an answer within 10 s");
    String::from_utf8_lossy(&reply).into_owned()
}

/// Every over-long head in tests/cases/oversized.json (URLs of 33 KiB to 1 MiB, huge
/// headers) gets the same answer on each of its runs: 431 with the JSON error, never a bare
/// 400 or a dropped connection, however large; the app goes on serving.
#[tokio::test]
async fn an_over_long_head_gets_431_every_time() {
    let redis = Redis::start();
    let app = app(&redis, &[]);
    let doc = cases::file("oversized");
    let runs = doc["runs"].as_u64().expect("runs");
    let status = format!("HTTP/1.1 {} ", doc["status"]);
    let error = serde_json::json!({ "error": doc["app_error"] }).to_string();
    for case in cases::list(&doc) {
        let what = case["what"].as_str().expect("what");
        let request = cases::request(case);
        for run in 1..=runs {
            let reply = send_huge(app.addr(), &request).await;
            assert!(
                reply.starts_with(&status) && reply.ends_with(&error),
                "{what} ({} bytes), run {run} of {runs}: {:?}",
                request.len(),
                &reply[..reply.len().min(120)]
            );
        }
        assert_eq!(
            get(app.addr(), "/healthz").await.status,
            200,
            "after {what}"
        );
    }
    let fits = get(
        app.addr(),
        &format!("/set?key=a&value={}", "v".repeat(30 * 1024)),
    )
    .await;
    assert_eq!(fits.status, 200);
}

#[tokio::test]
async fn health_readiness_fleet_and_metrics() {
    let redis = Redis::start();
    let app = app(&redis, &[]);
    let health = get(app.addr(), "/healthz").await;
    assert_eq!(
        (health.status, health.json()["status"].clone()),
        (200, "ok".into())
    );
    let ready = get(app.addr(), "/readyz").await;
    assert_eq!(
        (ready.status, ready.json()["status"].clone()),
        (200, "ready".into())
    );

    get(app.addr(), "/").await;
    let instances = get(app.addr(), "/instances").await.json();
    let me = instances["instances"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == "app-test")
        .cloned()
        .expect("the app lists itself");
    assert_eq!(me["role"], "app");
    assert_eq!(me["draining"], false);
    assert!(me["handled"].as_u64().is_some() && me["started_at"].as_u64().unwrap() > 0);

    let metrics = get(app.addr(), "/metrics").await;
    assert_eq!(metrics.status, 200);
    assert!(
        metrics
            .header("content-type")
            .unwrap()
            .starts_with("text/plain")
    );
    let text = metrics.text();
    assert!(
        text.contains("scaleout_http_requests_total{route=\"/\",status=\"200\"} 1"),
        "{text}"
    );
    assert!(text.contains("scaleout_http_request_duration_seconds_bucket{le=\"+Inf\"}"));
    assert!(text.contains("scaleout_redis_errors_total{kind=\"other\"} 0"));
}

/// Request metrics carry the pattern of the route the router matched. A path that only
/// looks like a route (`/jobs/a/b`, a `/kv/` key that is not UTF-8) matched none: `other`.
#[tokio::test]
async fn metrics_label_requests_with_the_route_that_matched() {
    let redis = Redis::start();
    let app = app(&redis, &[]);
    for (method, path) in [
        ("GET", "/kv/missing"),
        ("GET", "/jobs/123"),
        ("DELETE", "/jobs"),
        ("GET", "/jobs/a/b"),
        ("GET", "/kv/%FF"),
        ("GET", "/etc/passwd"),
    ] {
        send(app.addr(), method, path, None, None).await.unwrap();
    }
    // Two requests on one connection: the second matched no route and must not inherit
    // the first one's label.
    http::raw(
        app.addr(),
        b"GET /kv/missing HTTP/1.1\r\nHost: t\r\n\r\n\
          GET /nope HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    )
    .await
    .unwrap();
    let text = get(app.addr(), "/metrics").await.text();
    for series in [
        "{route=\"/kv/{key}\",status=\"404\"} 2",
        "{route=\"/jobs/{id}\",status=\"404\"} 1",
        "{route=\"/jobs\",status=\"405\"} 1",
        "{route=\"other\",status=\"404\"} 4",
    ] {
        assert!(
            text.contains(&format!("scaleout_http_requests_total{series}")),
            "no {series} in\n{text}"
        );
    }
}

/// Each case of tests/cases/malformed.json (tests/cases/send.py sends the same through
/// Traefik) gets its status with a JSON error, and the app goes on serving.
#[tokio::test]
async fn malformed_requests_get_json_4xx_and_the_app_keeps_serving() {
    let redis = Redis::start();
    let app = app(&redis, &[]);
    let doc = cases::file("malformed");
    let cases = cases::list(&doc);
    assert!(
        cases.len() >= 30,
        "at least 30 malformed requests, have {}",
        cases.len()
    );
    for case in cases {
        let what = case["what"].as_str().expect("what");
        let res = http::raw(app.addr(), &cases::request(case))
            .await
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(
            u64::from(res.status),
            case["status"].as_u64().expect("status"),
            "{what}: {}",
            String::from_utf8_lossy(&res.body)
        );
        assert_eq!(
            res.header("content-type"),
            Some("application/json"),
            "{what}"
        );
        assert!(
            res.json()["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{what}"
        );
        assert_eq!(
            get(app.addr(), "/healthz").await.status,
            200,
            "still serving after: {what}"
        );
    }
    println!("malformed requests checked: {}", cases.len());
}

#[tokio::test]
async fn bad_session_cookies_get_a_fresh_session() {
    let redis = Redis::start();
    let app = app(&redis, &[]);
    let cookies = [
        "sid=not-a-uuid",
        "sid=",
        "sid=12345678-1234-1234-1234-1234567890zz",
        "sid=../../etc/passwd",
        "sid=%00%FF",
        "garbage without equals; sid=also-bad",
        "sid=\"unterminated",
    ];
    for cookie in cookies {
        let req =
            format!("GET / HTTP/1.1\r\nHost: t\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n");
        let res = http::raw(app.addr(), req.as_bytes()).await.unwrap();
        assert_eq!(res.status, 200, "{cookie}");
        let body = res.json();
        assert_eq!(body["new_session"], true, "{cookie}");
        assert_eq!(body["session_count"], 1, "{cookie}");
        assert_eq!(
            res.sid().as_deref(),
            body["session_id"].as_str(),
            "{cookie}"
        );
    }
    // A valid sid next to someone else's malformed cookie is still recognised.
    let sid = get(app.addr(), "/").await.sid().unwrap();
    let req = format!(
        "GET / HTTP/1.1\r\nHost: t\r\nCookie: junk; sid={sid}; x=\"\r\nConnection: close\r\n\r\n"
    );
    let body = http::raw(app.addr(), req.as_bytes()).await.unwrap().json();
    assert_eq!(
        (body["session_id"].as_str(), body["session_count"].as_i64()),
        (Some(sid.as_str()), Some(2))
    );
}

#[tokio::test]
async fn the_first_valid_sid_cookie_wins() {
    let redis = Redis::start();
    let app = app(&redis, &[]);
    let sid = get(app.addr(), "/").await.sid().unwrap();
    let other = get(app.addr(), "/").await.sid().unwrap();
    // A malformed `sid` first (say, one set for another path), in one header or in two;
    // then the valid one, then another valid one that must not win.
    for cookies in [
        format!("Cookie: sid=not-a-uuid; sid={sid}; sid={other}\r\n"),
        format!("Cookie: sid=\r\nCookie: sid={sid}\r\nCookie: sid={other}\r\n"),
    ] {
        let req = format!("GET / HTTP/1.1\r\nHost: t\r\n{cookies}Connection: close\r\n\r\n");
        let res = http::raw(app.addr(), req.as_bytes()).await.unwrap();
        assert_eq!(res.sid().as_deref(), Some(sid.as_str()), "{cookies}");
        assert_eq!(res.json()["new_session"], false, "{cookies}");
    }
    assert_eq!(redis.int(&["GET", &format!("session:{sid}")]), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_requests_on_one_session_count_exactly() {
    let redis = Redis::start();
    let app = app(&redis, &[]);
    let sid = get(app.addr(), "/").await.sid().unwrap();
    let addr = app.addr();
    let tasks: Vec<_> = (0..1000)
        .map(|_| {
            let sid = sid.clone();
            tokio::spawn(async move { send(addr, "GET", "/", Some(&sid), None).await })
        })
        .collect();
    let mut ok = 0;
    for t in tasks {
        let res = t.await.unwrap().expect("request");
        assert_eq!(res.status, 200);
        ok += 1;
    }
    assert_eq!(ok, 1000);
    let last = send(addr, "GET", "/", Some(&sid), None)
        .await
        .unwrap()
        .json();
    assert_eq!(last["session_count"], 1002, "1 + 1000 + this one");
    assert_eq!(last["global_count"], 1002);
}

#[tokio::test]
async fn redis_outage_fails_fast_and_heals_without_restart() {
    let mut redis = Redis::start();
    let app = app(&redis, &[]);
    let first = get(app.addr(), "/").await;
    assert_eq!(first.status, 200, "{}", first.text());
    let sid = first.sid().unwrap();

    redis.stop();
    for path in ["/", "/get?key=a", "/set?key=a&value=1", "/instances"] {
        let started = Instant::now();
        let res = send(app.addr(), "GET", path, Some(&sid), None)
            .await
            .unwrap();
        assert_eq!(res.status, 503, "{path}");
        assert_eq!(res.json()["error"], "redis unavailable", "{path}");
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{path} took {:?}",
            started.elapsed()
        );
    }
    assert_eq!(
        get(app.addr(), "/healthz").await.status,
        200,
        "the process is alive"
    );
    let ready = get(app.addr(), "/readyz").await;
    assert_eq!(ready.status, 503);
    assert_eq!(ready.json()["reason"], "redis unavailable");

    redis.restart();
    let back = Instant::now();
    let healed = until("the app to heal", Duration::from_secs(2), async || {
        let res = send(app.addr(), "GET", "/", Some(&sid), None)
            .await
            .unwrap();
        (res.status == 200).then_some(res)
    })
    .await;
    println!("healed {:?} after Redis returned", back.elapsed());
    assert_eq!(
        healed.json()["session_count"],
        2,
        "the session survived (append-only file)"
    );
    assert_eq!(get(app.addr(), "/readyz").await.status, 200);
}

#[tokio::test]
async fn sigterm_drains_then_exits_zero() {
    let redis = Redis::start();
    let mut app = app(&redis, &[("DRAIN_SECS", "2")]);
    let addr = app.addr();
    app.signal("TERM");
    let signalled = Instant::now();
    until(
        "/healthz to answer 503",
        Duration::from_secs(1),
        async || (get(addr, "/healthz").await.status == 503).then_some(()),
    )
    .await;
    // Still serving normally while draining.
    while signalled.elapsed() < Duration::from_millis(1500) {
        assert_eq!(get(addr, "/").await.status, 200);
        let health = get(addr, "/healthz").await;
        assert_eq!(
            (health.status, health.json()["status"].clone()),
            (503, "draining".into())
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let status = app.wait_exit(Duration::from_secs(10));
    assert!(status.success(), "exit status {status}");
    assert!(
        signalled.elapsed() >= Duration::from_secs(2),
        "left before DRAIN_SECS"
    );
    let logs = app.logs().join("\n");
    for phase in ["draining", "drain over", "stopped"] {
        assert!(logs.contains(phase), "log lacks {phase}: {logs}");
    }
}

/// The first JSON log line of `process` with this level and message, if any.
fn log_line(process: &Scaleout, level: &str, message: &str) -> Option<serde_json::Value> {
    let lines = process.logged(message);
    lines.into_iter().find(|v| v["level"] == level)
}

/// The value of one series in Prometheus text, e.g. `scaleout_x{kind="other"}`.
fn series(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

async fn metrics_text(app: &Scaleout, path: &str) -> String {
    let res = get(app.addr(), path).await;
    assert_eq!(res.status, 200, "{path}");
    res.text()
}

#[tokio::test]
async fn a_wrong_type_key_is_a_500_logged_at_error_not_an_outage() {
    let redis = Redis::start();
    let app = app(&redis, &[]);
    assert_eq!(
        redis.cmd(&["LPUSH", "kv:listy", "x"]).as_deref(),
        Some(":1")
    );

    let res = get(app.addr(), "/get?key=listy").await;
    assert_eq!(res.status, 500);
    assert!(
        res.header("retry-after").is_none(),
        "retrying will not help"
    );
    let error = res.json()["error"].as_str().unwrap().to_string();
    assert!(error.starts_with("internal error"), "{error}");
    let line = wait_for("the error log line", Duration::from_secs(5), || {
        log_line(&app, "ERROR", "redis command failed")
    });
    assert_eq!(line["command"], "GET", "{line}");
    assert!(
        line["error"].as_str().unwrap().contains("WRONGTYPE"),
        "{line}"
    );

    let text = metrics_text(&app, "/metrics").await;
    assert_eq!(
        series(&text, "scaleout_redis_errors_total{kind=\"other\"}"),
        Some(1.0)
    );
    assert_eq!(
        series(&text, "scaleout_redis_errors_total{kind=\"unavailable\"}"),
        Some(0.0)
    );
    assert_eq!(
        get(app.addr(), "/get?key=fine").await.status,
        404,
        "still serving"
    );
}

#[tokio::test]
async fn a_full_redis_answers_503_saying_it_is_out_of_memory() {
    let redis = Redis::start();
    let app = app(&redis, &[]);
    assert_eq!(get(app.addr(), "/set?key=a&value=1").await.status, 200);
    assert_eq!(
        redis.cmd(&["CONFIG", "SET", "maxmemory", "1"]).as_deref(),
        Some("+OK")
    );

    for (method, path, body) in [
        ("GET", "/set?key=b&value=2", None),
        ("PUT", "/kv/b", Some(&b"2"[..])),
        ("GET", "/", None),
        ("GET", "/enqueue?job=x", None),
    ] {
        let res = send(app.addr(), method, path, None, body).await.unwrap();
        assert_eq!(res.status, 503, "{method} {path}");
        assert_eq!(res.header("retry-after"), Some("1"), "{method} {path}");
        let error = res.json()["error"].as_str().unwrap().to_string();
        assert!(error.contains("out of memory"), "{method} {path}: {error}");
    }
    assert_eq!(
        get(app.addr(), "/get?key=a").await.status,
        200,
        "reads still work"
    );
    let text = metrics_text(&app, "/metrics").await;
    assert_eq!(
        series(&text, "scaleout_redis_errors_total{kind=\"out_of_memory\"}"),
        Some(4.0)
    );
    assert!(log_line(&app, "WARN", "redis out of memory: write refused").is_some());

    assert_eq!(
        redis.cmd(&["CONFIG", "SET", "maxmemory", "0"]).as_deref(),
        Some("+OK")
    );
    assert_eq!(get(app.addr(), "/set?key=b&value=2").await.status, 200);
}

#[tokio::test]
async fn a_busy_redis_is_unavailable_not_an_internal_error() {
    use std::io::Write;
    let redis = Redis::start();
    let app = app(&redis, &[("RUST_LOG", "info,scaleout=debug")]);
    assert_eq!(
        redis
            .cmd(&["CONFIG", "SET", "lua-time-limit", "50"])
            .as_deref(),
        Some("+OK")
    );
    // A script that never ends: after 50 ms Redis answers everyone else BUSY.
    let mut blocker = std::net::TcpStream::connect(("127.0.0.1", redis.port)).unwrap();
    let script = "while true do end";
    let password = password("admin");
    write!(
        blocker,
        "*3\r\n$4\r\nAUTH\r\n$5\r\nadmin\r\n${}\r\n{password}\r\n\
         *3\r\n$4\r\nEVAL\r\n${}\r\n{script}\r\n$1\r\n0\r\n",
        password.len(),
        script.len()
    )
    .unwrap();
    wait_for("Redis to answer BUSY", Duration::from_secs(5), || {
        redis.cmd(&["GET", "x"]).filter(|r| r.starts_with("-BUSY"))
    });

    let res = get(app.addr(), "/get?key=a").await;
    assert_eq!(res.status, 503);
    assert_eq!(res.header("retry-after"), Some("1"));
    assert_eq!(res.json()["error"], "redis unavailable");
    let line = wait_for("the debug line", Duration::from_secs(5), || {
        log_line(&app, "DEBUG", "redis unavailable")
    });
    assert!(line["error"].as_str().unwrap().contains("BUSY"), "{line}");
    assert!(log_line(&app, "ERROR", "redis command failed").is_none());

    assert_eq!(redis.cmd(&["SCRIPT", "KILL"]).as_deref(), Some("+OK"));
    until(
        "the app to serve again",
        Duration::from_secs(2),
        async || (get(app.addr(), "/get?key=a").await.status == 404).then_some(()),
    )
    .await;
}

#[tokio::test]
async fn the_heartbeat_trims_stale_instances_without_anyone_listing_them() {
    let redis = Redis::start();
    assert_eq!(
        redis.cmd(&["ZADD", "instances", "1", "ghost"]).as_deref(),
        Some(":1")
    );
    let _app = app(&redis, &[]);
    // Nobody calls /instances: only the app's own heartbeat can remove the ghost.
    wait_for("the stale member to go", Duration::from_secs(5), || {
        (redis.cmd(&["ZSCORE", "instances", "ghost"]).as_deref() == Some("$-1")).then_some(())
    });
    assert_eq!(
        redis.int(&["ZCARD", "instances"]),
        1,
        "the app itself stays"
    );
}

#[tokio::test]
async fn keep_warm_pings_during_an_outage_are_not_request_errors() {
    let mut redis = Redis::start();
    let app = app(&redis, &[]);
    redis.stop();
    let text = wait_for_metrics(&app, |text| {
        series(
            text,
            "scaleout_redis_background_failures_total{task=\"keep_warm\"}",
        )
        .is_some_and(|n| n >= 4.0)
    })
    .await;
    for kind in ["unavailable", "out_of_memory", "other"] {
        let name = format!("scaleout_redis_errors_total{{kind=\"{kind}\"}}");
        assert_eq!(series(&text, &name), Some(0.0), "{text}");
    }
    assert_eq!(get(app.addr(), "/get?key=a").await.status, 503);
    let text = metrics_text(&app, "/metrics").await;
    assert_eq!(
        series(&text, "scaleout_redis_errors_total{kind=\"unavailable\"}"),
        Some(1.0),
        "one request, one error"
    );
}

/// Polls `/metrics` (for 10 s at most) until `done` holds; returns that text.
async fn wait_for_metrics(app: &Scaleout, done: impl Fn(&str) -> bool) -> String {
    let mut text = String::new();
    let found = poll(Duration::from_secs(10), async || {
        text = metrics_text(app, "/metrics").await;
        done(&text).then(|| text.clone())
    })
    .await;
    found.unwrap_or_else(|| panic!("metrics never got there:\n{text}"))
}

/// Runs `promtool check metrics` on `text`; `false` (with a message) if promtool is absent.
fn promtool_accepts(what: &str, text: &str) -> bool {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let Ok(mut child) = child else {
        eprintln!("SKIPPED: promtool not found (apt-get install prometheus; .ci/deps does)");
        return false;
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool rejects {what}: {}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    true
}

#[tokio::test]
async fn metrics_split_per_process_and_fleet_wide_and_pass_promtool() {
    let redis = Redis::start();
    let app = app(&redis, &[]);
    get(app.addr(), "/").await;
    get(app.addr(), "/enqueue?job=a").await;
    get(app.addr(), "/nowhere").await;

    let local = metrics_text(&app, "/metrics").await;
    let fleet = metrics_text(&app, "/metrics/fleet").await;
    // Per-process series only in /metrics, so a sum() over replicas is the fleet's total;
    // the fleet-wide ones, the same on every replica, only under their own prefix and path.
    assert!(!local.contains("jobs"), "{local}");
    for line in fleet.lines().filter(|l| !l.starts_with('#')) {
        assert!(line.starts_with("scaleout_fleet_"), "{line}");
    }
    assert_eq!(
        series(&fleet, "scaleout_fleet_jobs_queue_length"),
        Some(1.0)
    );
    for text in [&local, &fleet] {
        for line in text.lines().filter(|l| l.starts_with("# TYPE")) {
            let name = line.split_whitespace().nth(2).unwrap();
            if name.ends_with("_total") {
                assert!(line.ends_with(" counter"), "{line}");
            }
        }
    }
    if promtool_accepts("/metrics", &local) {
        promtool_accepts("/metrics/fleet", &fleet);
    }
}
