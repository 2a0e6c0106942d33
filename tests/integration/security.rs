//! Nobody gets into Redis uninvited: the generated ACL (deploy/redis/*.acl) on real
//! redis-server and Sentinel processes, the app's login with a password file that can be
//! wrong, missing or rotated, and TLS with certificates made here by `openssl`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::common::http::{get, send};
use crate::common::{Redis, Scaleout, password, random_hex, until_ready, wait_for};

fn app(redis: &Redis, extra: &[(&str, &str)]) -> Scaleout {
    let url = redis.url();
    let mut env = vec![("REDIS_URL", url.as_str()), ("INSTANCE_NAME", "app-sec")];
    env.extend_from_slice(extra);
    Scaleout::server("app", &env)
}

/// `user`'s own password, as [`Redis::cmd_as`] takes it.
fn login(user: &str) -> Option<(&str, String)> {
    Some((user, password(user)))
}

fn reply(redis: &Redis, user: &str, args: &[&str]) -> String {
    let (user, pass) = login(user).unwrap();
    redis
        .cmd_as(Some((user, &pass)), args)
        .expect("redis answers")
}

#[test]
fn nobody_gets_in_without_a_password_nor_as_default() {
    let primary = Redis::start();
    let sentinel = Redis::sentinel(&primary, "scaleout");
    for server in [&primary, &sentinel] {
        let anonymous = server.cmd_as(None, &["PING"]).expect("an answer");
        assert!(anonymous.starts_with("-NOAUTH"), "{anonymous}");
        for guess in ["", "default", "redis", &password("admin")] {
            let as_default = server
                .cmd_as(Some(("default", guess)), &["PING"])
                .expect("an answer");
            assert!(as_default.starts_with("-AUTH"), "{as_default}");
        }
        let wrong = server
            .cmd_as(Some(("app", "not-the-password")), &["PING"])
            .expect("an answer");
        assert!(wrong.starts_with("-AUTH"), "{wrong}");
        assert_eq!(reply(server, "app", &["PING"]), "+PONG");
    }
}

#[test]
fn each_user_may_do_only_what_its_role_needs() {
    let redis = Redis::start();
    let denied = |user: &str, args: &[&str]| {
        let r = reply(&redis, user, args);
        assert!(r.starts_with("-NOPERM"), "{user} {args:?}: {r}");
    };
    for user in ["app", "worker"] {
        denied(user, &["FLUSHALL"]);
        denied(user, &["CONFIG", "GET", "*"]);
        denied(user, &["KEYS", "*"]);
        // DEBUG is off in every server; ACL DRYRUN shows the ACL refuses it anyway.
        let dry = redis.cmd(&["ACL", "DRYRUN", user, "DEBUG", "SLEEP", "0"]);
        assert!(
            dry.as_deref().is_some_and(|d| d.contains("no permissions")),
            "{dry:?}"
        );
        denied(user, &["SCRIPT", "FLUSH"]);
        denied(user, &["ACL", "LIST"]);
        denied(user, &["EVAL", "return 1", "0"]);
        // A key outside every pattern in keys.rs.
        denied(user, &["HGETALL", "somebody-else:x"]);
    }
    // The worker never touches a session, a counter or a key/value entry.
    denied("worker", &["HGETALL", "session:x"]);
    denied("worker", &["HGETALL", "kv:x"]);
    denied("worker", &["LLEN", "counter:global"]);
    denied("worker", &["GET", "jobs"]);
    // The app's own keys are its to use.
    assert_eq!(reply(&redis, "app", &["SET", "kv:x", "1"]), "+OK");
    assert_eq!(reply(&redis, "app", &["GET", "kv:x"]), "1");
    // On a Sentinel, clients may only ask where the primary is.
    let sentinel = Redis::sentinel(&redis, "scaleout");
    for user in ["app", "worker"] {
        let addr = reply(
            &sentinel,
            user,
            &["SENTINEL", "GET-MASTER-ADDR-BY-NAME", "scaleout"],
        );
        assert_eq!(addr, "*2", "{user}: host and port");
        for args in [
            &["SENTINEL", "MASTERS"][..],
            &["SENTINEL", "FAILOVER", "scaleout"],
            &["SENTINEL", "SET", "scaleout", "quorum", "9"],
            &["SENTINEL", "REPLICAS", "scaleout"],
            &["ACL", "LIST"],
        ] {
            let r = reply(&sentinel, user, args);
            assert!(r.starts_with("-NOPERM"), "{user} {args:?}: {r}");
        }
    }
}

/// A password file in a directory of its own.
struct PasswordFile(PathBuf);

impl PasswordFile {
    fn new(name: &str) -> Self {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("password-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir.join("password"))
    }

    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }

    fn write(&self, password: &str) {
        std::fs::write(&self.0, format!("{password}\n")).unwrap();
    }
}

impl Drop for PasswordFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(self.0.parent().unwrap());
    }
}

/// The app logging in as `app` with the password `file` holds.
fn app_reading(redis: &Redis, file: &PasswordFile) -> Scaleout {
    app(
        redis,
        &[
            ("REDIS_USERNAME", "app"),
            ("REDIS_PASSWORD_FILE", file.path()),
        ],
    )
}

/// No log line, page or metric the app shows holds any of `secrets`.
async fn shows_none_of(app: &Scaleout, secrets: &[&str]) {
    let mut seen = app.logs().join("\n");
    for path in ["/redis", "/metrics", "/readyz", "/"] {
        seen.push_str(&get(app.addr(), path).await.text());
    }
    for secret in secrets {
        assert!(
            !seen.contains(secret),
            "a password shows in the app's output"
        );
    }
}

#[tokio::test]
async fn a_wrong_or_missing_password_is_a_503_that_heals_when_the_file_is_fixed() {
    let redis = Redis::start();
    let file = PasswordFile::new("wrong");
    let wrong = random_hex();
    file.write(&wrong);
    let app = app_reading(&redis, &file);
    let res = get(app.addr(), "/").await;
    assert_eq!(res.status, 503, "{}", res.text());
    assert_eq!(res.json()["error"], "redis unavailable");
    until_ready(&app, 503, Duration::ZERO).await;
    let refusal = wait_for("the refusal in the log", Duration::from_secs(5), || {
        app.logs()
            .into_iter()
            .find(|l| l.contains("redis refused the login"))
    });
    let line: serde_json::Value = serde_json::from_str(&refusal).unwrap();
    assert_eq!(line["user"], "app", "{refusal}");
    assert_eq!(line["server"], redis.addr(), "{refusal}");

    // Fixed: the next retry reads the file again.
    file.write(&password("app"));
    until_ready(&app, 200, Duration::from_secs(5)).await;
    assert_eq!(get(app.addr(), "/").await.status, 200);

    // Missing, then there (a secret mounted late).
    std::fs::remove_file(&file.0).unwrap();
    drop(app);
    let app = app_reading(&redis, &file);
    until_ready(&app, 503, Duration::ZERO).await;
    file.write(&password("app"));
    until_ready(&app, 200, Duration::from_secs(5)).await;
    shows_none_of(&app, &[&wrong, &password("app"), &password("admin")]).await;
}

/// An app logged in as `app` with its password in a file of its own, and a session.
struct Rotating {
    redis: Redis,
    file: PasswordFile,
    app: Scaleout,
    old: String,
    sid: String,
}

impl Rotating {
    async fn start(name: &str) -> Self {
        let redis = Redis::start();
        let file = PasswordFile::new(name);
        let old = password("app");
        file.write(&old);
        let app = app_reading(&redis, &file);
        let first = get(app.addr(), "/").await;
        assert_eq!(first.status, 200);
        let sid = first.sid().unwrap();
        Self {
            redis,
            file,
            app,
            old,
            sid,
        }
    }
}

#[tokio::test]
async fn a_rotated_password_is_read_again_without_a_restart() {
    let Rotating {
        redis,
        file,
        app,
        old,
        sid,
    } = Rotating::start("rotated").await;

    // The hard way: the old password stops working at once, and every connection must
    // log in again; only then does the file change.
    let new = random_hex();
    let setuser = ["ACL", "SETUSER", "app", "resetpass", &format!(">{new}")];
    assert_eq!(redis.cmd(&setuser).as_deref(), Some("+OK"));
    redis
        .cmd(&["CLIENT", "KILL", "USER", "app"])
        .expect("killed");
    let during = send(app.addr(), "GET", "/", Some(&sid), None)
        .await
        .unwrap();
    assert!(
        during.status == 503 || during.status == 200,
        "{}",
        during.status
    );
    until_ready(&app, 503, Duration::from_secs(5)).await;
    file.write(&new);
    until_ready(&app, 200, Duration::from_secs(5)).await;
    let after = send(app.addr(), "GET", "/", Some(&sid), None)
        .await
        .unwrap();
    assert_eq!(after.status, 200);
    let counted = after.json()["session_count"].as_i64().unwrap();
    assert!(counted >= 2, "the session goes on: {counted}");
    assert!(
        app.logs()
            .iter()
            .any(|l| l.contains("REDIS_PASSWORD_FILE changed")),
        "the app says it logged in with the new password"
    );
    shows_none_of(&app, &[&old, &new]).await;
}

#[tokio::test]
async fn a_second_password_rotates_with_no_failed_request() {
    let Rotating {
        redis,
        file,
        app,
        old,
        sid,
    } = Rotating::start("second").await;
    let addr = app.addr();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = {
        let (stop, sid) = (stop.clone(), sid.clone());
        tokio::spawn(async move {
            let mut statuses = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let res = send(addr, "GET", "/", Some(&sid), None).await;
                statuses.push(res.map_or(0, |r| r.status));
            }
            statuses
        })
    };

    // Both passwords work; the file changes; the app dials with the new one.
    let new = random_hex();
    assert_eq!(
        redis
            .cmd(&["ACL", "SETUSER", "app", &format!(">{new}")])
            .as_deref(),
        Some("+OK")
    );
    file.write(&new);
    wait_for(
        "the app to read the new password",
        Duration::from_secs(5),
        || {
            app.logs()
                .iter()
                .any(|l| l.contains("REDIS_PASSWORD_FILE changed"))
                .then_some(())
        },
    );
    // The old one goes.
    assert_eq!(
        redis
            .cmd(&["ACL", "SETUSER", "app", &format!("<{old}")])
            .as_deref(),
        Some("+OK")
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let statuses = load.await.unwrap();
    let failed: Vec<u16> = statuses.iter().copied().filter(|&s| s != 200).collect();
    assert!(statuses.len() > 20, "requests made: {}", statuses.len());
    assert!(
        failed.is_empty(),
        "{} of {} requests failed: {failed:?}",
        failed.len(),
        statuses.len()
    );
    // Every connection made to log in again logs in with the new password: no refusal.
    redis
        .cmd(&["CLIENT", "KILL", "USER", "app"])
        .expect("killed");
    until_ready(&app, 200, Duration::from_secs(5)).await;
    let after = send(addr, "GET", "/", Some(&sid), None).await.unwrap();
    assert_eq!(after.status, 200);
    assert!(
        !app.logs().iter().any(|l| l.contains("refused the login")),
        "no login was refused"
    );
    shows_none_of(&app, &[&old, &new]).await;
}

/// A CA, a server certificate it signed for 127.0.0.1, and a second CA that signed
/// nothing here, made with `openssl`.
struct Certs(PathBuf);

impl Certs {
    fn new() -> Self {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
            "certs-{}-{}",
            std::process::id(),
            random_hex()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let openssl = |args: &[&str]| {
            let out = Command::new("openssl")
                .args(args)
                .current_dir(&dir)
                .output()
                .expect("openssl on PATH");
            assert!(out.status.success(), "openssl {args:?}: {out:?}");
        };
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        for ca in ["ca", "other-ca"] {
            let (key, crt, subj) = (
                format!("{ca}.key"),
                format!("{ca}.crt"),
                format!("/CN={ca}"),
            );
            let mut args = vec!["req", "-x509", "-days", "1", "-subj", &subj];
            args.extend(ec);
            args.extend(["-keyout", &key, "-out", &crt]);
            openssl(&args);
        }
        let mut req = vec!["req", "-subj", "/CN=127.0.0.1", "-keyout", "server.key"];
        req.extend(ec);
        req.extend(["-out", "server.csr"]);
        openssl(&req);
        std::fs::write(dir.join("san.cnf"), "subjectAltName=IP:127.0.0.1\n").unwrap();
        openssl(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "1",
            "-extfile",
            "san.cnf",
            "-out",
            "server.crt",
        ]);
        Self(dir)
    }

    fn path(&self, name: &str) -> String {
        self.0.join(name).display().to_string()
    }

    fn dir(&self) -> &Path {
        &self.0
    }
}

impl Drop for Certs {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[tokio::test]
async fn tls_only_redis_refuses_plaintext_serves_the_app_and_rejects_a_wrong_ca() {
    let certs = Certs::new();
    let redis = Redis::start_tls(certs.dir());
    assert_eq!(redis.cmd(&["PING"]).as_deref(), Some("+PONG"), "over TLS");

    // A plaintext client on the TLS port gets no answer.
    let plain = redis::Client::open(format!("redis://127.0.0.1:{}", redis.port)).unwrap();
    let refused = plain
        .get_connection_with_timeout(Duration::from_secs(2))
        .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c));
    assert!(refused.is_err(), "plaintext answered: {refused:?}");

    let ca = certs.path("ca.crt");
    let app = app(&redis, &[("REDIS_TLS_CA_FILE", &ca)]);
    until_ready(&app, 200, Duration::from_secs(10)).await;
    let first = get(app.addr(), "/").await;
    assert_eq!(first.status, 200, "{}", first.text());
    let sid = first.sid().unwrap();
    let second = send(app.addr(), "GET", "/", Some(&sid), None)
        .await
        .unwrap();
    assert_eq!(second.json()["session_count"], 2);

    // A server certificate from another CA: not ready, and the log says why.
    let other = certs.path("other-ca.crt");
    let doubting = self::app(&redis, &[("REDIS_TLS_CA_FILE", &other)]);
    until_ready(&doubting, 503, Duration::ZERO).await;
    assert_eq!(get(doubting.addr(), "/").await.status, 503);
    wait_for(
        "the certificate error in the log",
        Duration::from_secs(10),
        || {
            doubting
                .logs()
                .into_iter()
                .find(|l| l.to_lowercase().contains("certificate"))
        },
    );

    // A CA file that cannot be read is a configuration error: exit 2, naming it.
    let mut broken = Scaleout::spawn(
        "app",
        &[
            ("REDIS_URL", &redis.url()),
            ("REDIS_TLS_CA_FILE", "/nonexistent/ca.crt"),
        ],
    );
    let status = broken.wait_exit(Duration::from_secs(5));
    assert_eq!(status.code(), Some(2));
    assert!(
        broken
            .logs()
            .iter()
            .any(|l| l.contains("REDIS_TLS_CA_FILE")),
        "{:?}",
        broken.logs()
    );
}
