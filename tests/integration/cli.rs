//! The command line as a user meets it: arguments, `--help` and `--version`, exit codes,
//! the one-line errors for bad settings, `healthcheck` (its default target, its verdict
//! on a draining app), stop signals, and the allocator default the binary sets for itself.
//! Real processes; every one is killed if a check fails.

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::common::{Redis, Scaleout, role_login, wait_for};

/// What a finished `scaleout` run left: exit code, stdout, stderr.
struct Outcome {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Kills the child if the test fails (or it never exits) before it was reaped.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs `scaleout ARGS` in a clean environment plus `env`, and expects it to exit within
/// a few seconds: a command that should have refused its input but serves instead fails
/// here rather than hanging the suite.
fn run(args: &[&str], env: &[(&str, &str)]) -> Outcome {
    let child = Command::new(env!("CARGO_BIN_EXE_scaleout"))
        .args(args)
        .env_clear()
        .env("LISTEN_ADDR", "127.0.0.1:0")
        .env("REDIS_URL", "redis://127.0.0.1:1")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn scaleout");
    let mut child = Guard(child);
    let status = wait_for(
        &format!("`scaleout {}` to exit", args.join(" ")),
        Duration::from_secs(5),
        || child.0.try_wait().expect("try_wait"),
    );
    let mut stdout = String::new();
    let mut stderr = String::new();
    child
        .0
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    child
        .0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    Outcome {
        code: status.code(),
        stdout,
        stderr,
    }
}

#[test]
fn unknown_arguments_exit_2_with_the_usage() {
    for args in [
        &["app", "--port", "9000"][..],
        &["app", "9000"],
        &["worker", "--concurrency=4"],
        &["web", "dist"],
        &["healthcheck", "--verbose"],
        &["healthcheck", "http://127.0.0.1:1/healthz", "extra"],
    ] {
        let out = run(args, &[]);
        assert_eq!(out.code, Some(2), "{args:?}: {}", out.stderr);
        let usage = format!("Usage: scaleout {}", args[0]);
        assert!(out.stderr.contains(&usage), "{args:?}: {}", out.stderr);
        let unexpected = args[1..].iter().find(|a| out.stderr.contains(*a));
        assert!(unexpected.is_some(), "{args:?} not named: {}", out.stderr);
    }
}

#[test]
fn version_prints_the_version() {
    for flag in ["--version", "-V"] {
        let out = run(&[flag], &[]);
        assert_eq!(out.code, Some(0));
        assert_eq!(
            out.stdout.trim(),
            format!("scaleout {}", env!("CARGO_PKG_VERSION"))
        );
    }
}

#[test]
fn invalid_redis_settings_and_rust_log_exit_2_with_one_line_naming_them() {
    for (var, value) in [
        ("REDIS_URL", "http://127.0.0.1:6379"),
        ("REDIS_URL", "127.0.0.1:6379"),
        ("RUST_LOG", "info,scaleout=loud"),
        ("REDIS_SENTINELS", "127.0.0.1"),
        ("REDIS_SENTINELS", "127.0.0.1:26379,sentinel-2"),
        ("REDIS_MASTER_NAME", ""),
        ("REDIS_WAIT_REPLICAS", "many"),
        ("REDIS_WAIT_TIMEOUT_MS", "0"),
    ] {
        for command in ["app", "worker", "web"] {
            let out = run(&[command], &[(var, value)]);
            let what = format!("{command} with {var}={value}");
            assert_eq!(out.code, Some(2), "{what}: {}{}", out.stdout, out.stderr);
            assert_eq!(out.stderr.lines().count(), 1, "{what}: {}", out.stderr);
            assert!(out.stderr.contains(var), "{what}: {}", out.stderr);
            assert_eq!(out.stdout, "", "{what}: nothing logged");
        }
    }
}

#[test]
fn invalid_settings_exit_2_naming_the_variable() {
    for (var, value) in [
        ("DRAIN_SECS", "soon"),
        ("LOG_FORMAT", "xml"),
        ("LISTEN_ADDR", "here"),
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_scaleout"))
            .arg("app")
            .env(var, value)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{var}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.lines().count(), 1, "one line: {err}");
        assert!(err.contains(var), "{err}");
    }
}

#[test]
fn help_lists_every_setting() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_scaleout"))
        .args(["app", "--help"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for (name, ..) in scaleout::config::VARS {
        assert!(help.contains(name), "--help lacks {name}");
    }
}

#[tokio::test]
async fn healthcheck_command_follows_the_app() {
    let redis = Redis::start();
    let url = redis.url();
    let mut app = Scaleout::server("app", &[("REDIS_URL", url.as_str()), ("DRAIN_SECS", "3")]);
    let probe = |url: String| {
        std::process::Command::new(env!("CARGO_BIN_EXE_scaleout"))
            .args(["healthcheck", &url])
            .status()
            .unwrap()
            .code()
    };
    assert_eq!(probe(app.url("/healthz")), Some(0));
    app.signal("TERM");
    wait_for(
        "healthcheck to fail while draining",
        Duration::from_secs(2),
        || (probe(app.url("/healthz")) == Some(1)).then_some(()),
    );
    assert_eq!(
        probe("http://127.0.0.1:1/healthz".into()),
        Some(1),
        "nothing listening"
    );
    assert!(app.wait_exit(Duration::from_secs(10)).success());
}

/// A server bound to one loopback address other than 127.0.0.1 is healthy to a bare
/// `scaleout healthcheck` given the same LISTEN_ADDR.
#[test]
fn healthcheck_probes_the_host_of_listen_addr() {
    let redis = Redis::start();
    let url = redis.url();
    let app = Scaleout::server(
        "app",
        &[("REDIS_URL", url.as_str()), ("LISTEN_ADDR", "127.0.0.2:0")],
    );
    let listen = app.addr().to_string();
    assert!(listen.starts_with("127.0.0.2:"), "{listen}");
    let out = run(&["healthcheck"], &[("LISTEN_ADDR", listen.as_str())]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);

    // Anything but a 200 is unhealthy, and says what came back.
    let url = format!("http://{listen}/nope");
    let out = run(&["healthcheck", url.as_str()], &[]);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert_eq!(out.stderr.trim(), format!("unhealthy: {url} answered 404"));
}

/// `THP_enabled` in /proc/PID/status: 0 once mimalloc has called
/// `prctl(PR_SET_THP_DISABLE)`, which it does when its `allow_thp` option is off.
fn thp_enabled(env: &[(&str, &str)]) -> String {
    let app = Scaleout::server("app", env);
    let status = std::fs::read_to_string(format!("/proc/{}/status", app.pid())).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("THP_enabled:"))
        .expect("the kernel reports THP_enabled")
        .trim()
        .to_string()
}

#[test]
fn transparent_huge_pages_are_off_by_default_and_the_env_turns_them_on() {
    let redis = Redis::start();
    let url = redis.url();
    assert_eq!(thp_enabled(&[("REDIS_URL", url.as_str())]), "0", "default");
    // The flag is inherited: only where this test may use huge pages can the child.
    let ours = std::fs::read_to_string("/proc/self/status").unwrap();
    if ours
        .lines()
        .any(|l| l.starts_with("THP_enabled:") && l.ends_with('1'))
    {
        assert_eq!(
            thp_enabled(&[("REDIS_URL", url.as_str()), ("MIMALLOC_ALLOW_THP", "1")]),
            "1",
            "MIMALLOC_ALLOW_THP=1"
        );
    }
    assert_eq!(
        thp_enabled(&[("REDIS_URL", url.as_str()), ("MIMALLOC_ALLOW_THP", "0")]),
        "0",
        "MIMALLOC_ALLOW_THP=0"
    );
}

/// Starts `scaleout COMMAND` and sends SIGTERM the moment it logs `ready_line` (no `kill`
/// process in between: spawning one took long enough to hide the defect this guards).
/// Returns whether it then exited 0 and logged "stopped", with its log.
fn stop_at_once(command: &str, ready_line: &str, redis: &Redis) -> (bool, String) {
    use std::io::{BufRead, BufReader};
    let mut child = Guard(
        Command::new(env!("CARGO_BIN_EXE_scaleout"))
            .arg(command)
            .env_clear()
            .env("LISTEN_ADDR", "127.0.0.1:0")
            .env("REDIS_URL", redis.url())
            .envs(role_login(command))
            .env("INSTANCE_NAME", format!("{command}-stop"))
            .env("DRAIN_SECS", "0")
            .env("WORKERS", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn scaleout"),
    );
    let pid = libc::pid_t::try_from(child.0.id()).expect("a pid");
    let mut log = String::new();
    let mut lines = BufReader::new(child.0.stdout.take().expect("stdout"));
    while lines.read_line(&mut log).expect("read the log") > 0 {
        if log
            .lines()
            .last()
            .is_some_and(|line| line.contains(ready_line))
        {
            // SAFETY: kill(2) on our own child, which has not been reaped yet.
            assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0, "kill");
            break;
        }
    }
    // Exited first (bounded), so reading to the end cannot hang.
    let status = wait_for("the process to exit", Duration::from_secs(10), || {
        child.0.try_wait().ok().flatten()
    });
    lines.read_to_string(&mut log).expect("read the log");
    (status.success() && log.contains("stopped"), log)
}

/// A stop signal that arrives as soon as a server says it is listening (or the worker that
/// it started) is handled like any other: drain, finish, exit 0. Before, the handlers were
/// installed a moment later, and a signal in between killed the process outright: 19 of 30
/// apps and 28 of 30 workers, signalled from a script the moment the line appeared.
#[test]
fn a_stop_signal_right_after_start_drains() {
    let redis = Redis::start();
    for (command, ready_line) in [("app", "listening"), ("worker", "worker started")] {
        for attempt in 1..=5 {
            let (stopped, log) = stop_at_once(command, ready_line, &redis);
            assert!(
                stopped,
                "{command}, attempt {attempt}: killed, not stopped:\n{log}"
            );
        }
    }
}
