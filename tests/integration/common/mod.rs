//! Test harness: real processes, no mocks. [`Redis`] runs its own `redis-server` on a free
//! port; [`Scaleout`] runs the real binary on port 0 and learns the address from its
//! `listening` log line. Both are killed on drop, so a failing test leaves nothing behind.
//!
//! Auth is on, as in every stack: each Redis and Sentinel starts through
//! `deploy/redis/entrypoint.sh` with the generated ACL (no login as `default`) and this test
//! process's random passwords ([`secrets`]); each `scaleout` process logs in as its role's
//! user (`app`, or `worker`) unless the test sets `REDIS_USERNAME` itself; the harness's
//! own commands log in as `admin`.
//!
//! Every wait is a poll through one loop ([`poll_with`]): [`until`] in async code,
//! [`wait_for`] in blocking code, [`poll`] where giving up is not a failure.

pub mod cases;
pub mod http;

use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// How long every poll of the suite pauses between two checks.
const POLL_EVERY: Duration = Duration::from_millis(20);

/// The suite's one polling loop: `check` at once, then again after each `pause` of
/// [`POLL_EVERY`], until it gives `Some`, or `None` once `timeout` has passed (a zero
/// `timeout` checks once). [`poll`] and [`until`] pause on the runtime, [`wait_for`]
/// blocks the thread.
async fn poll_with<T>(
    timeout: Duration,
    mut check: impl AsyncFnMut() -> Option<T>,
    pause: impl AsyncFn(Duration),
) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        pause(POLL_EVERY).await;
    }
}

/// How every poll that must succeed fails.
fn timed_out(what: &str, timeout: Duration) -> ! {
    panic!("timed out after {timeout:?} waiting for {what}")
}

/// Polls an async `check` on the test's runtime; `None` if it never gave `Some`.
pub async fn poll<T>(timeout: Duration, check: impl AsyncFnMut() -> Option<T>) -> Option<T> {
    poll_with(timeout, check, async |pause| {
        tokio::time::sleep(pause).await
    })
    .await
}

/// [`poll`], failing the test on timeout.
pub async fn until<T>(what: &str, timeout: Duration, check: impl AsyncFnMut() -> Option<T>) -> T {
    poll(timeout, check)
        .await
        .unwrap_or_else(|| timed_out(what, timeout))
}

/// [`until`] for a blocking `check`, from sync code (which may run inside a test's
/// runtime): the thread sleeps between checks.
pub fn wait_for<T>(what: &str, timeout: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let polled = poll_with(
        timeout,
        async || check(),
        async |pause| std::thread::sleep(pause),
    );
    // Nothing in it awaits anything that can be pending: one poll runs it to the end.
    let mut polled = std::pin::pin!(polled);
    match polled
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(found) => found.unwrap_or_else(|| timed_out(what, timeout)),
        Poll::Pending => unreachable!("a blocking poll never yields"),
    }
}

/// Waits until `app`'s `/readyz` answers `status`, for at most `within` (zero: it must now).
pub async fn until_ready(app: &Scaleout, status: u16, within: Duration) {
    until(&format!("/readyz to answer {status}"), within, async || {
        (http::get(app.addr(), "/readyz").await.status == status).then_some(())
    })
    .await
}

/// The secret files of this test process, `redis-<user>-password`, with random passwords.
pub fn secrets() -> &'static std::path::Path {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("redis-secrets-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("secrets dir");
        for user in ["app", "worker", "admin", "replication", "sentinel"] {
            std::fs::write(dir.join(format!("redis-{user}-password")), random_hex())
                .expect("a secret file");
        }
        dir
    })
}

/// The password file of `user` in [`secrets`].
pub fn password_file(user: &str) -> PathBuf {
    secrets().join(format!("redis-{user}-password"))
}

/// `user`'s password, as the secret file holds it.
pub fn password(user: &str) -> String {
    std::fs::read_to_string(password_file(user)).expect("a secret file")
}

/// 32 random hex digits (uuid's v4 randomness, already a dependency).
pub fn random_hex() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// The variables that make a `scaleout` process log in as `user`, to Redis and to the
/// Sentinels.
pub fn login_env(user: &str) -> Vec<(String, String)> {
    let file = password_file(user).display().to_string();
    [
        ("REDIS_USERNAME", user.to_owned()),
        ("REDIS_PASSWORD_FILE", file.clone()),
        ("REDIS_SENTINEL_USERNAME", user.to_owned()),
        ("REDIS_SENTINEL_PASSWORD_FILE", file),
    ]
    .map(|(k, v)| (k.to_owned(), v))
    .to_vec()
}

/// [`login_env`] for the user a subcommand runs as in every stack: `worker`, else `app`.
pub fn role_login(command: &str) -> Vec<(String, String)> {
    login_env(if command == "worker" { "worker" } else { "app" })
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A private redis-server for one test: a primary, a replica, or a Sentinel.
pub struct Redis {
    child: Option<Child>,
    pub port: u16,
    dir: PathBuf,
    /// Arguments after the common ones: `--replicaof …` for a replica.
    extra: Vec<String>,
    /// A Sentinel's config file (it must be writable: Sentinel rewrites it).
    sentinel_conf: Option<PathBuf>,
    /// With TLS only ([`Redis::start_tls`]): the CA its certificate is signed by.
    ca: Option<PathBuf>,
}

impl Redis {
    pub fn start() -> Self {
        Self::start_with(Vec::new(), None)
    }

    /// A server that speaks TLS only, on its one port, with `dir`'s `server.crt` and
    /// `server.key` (for 127.0.0.1) signed by `dir`'s `ca.crt`; clients need no certificate.
    pub fn start_tls(dir: &std::path::Path) -> Self {
        let file = |name: &str| dir.join(name).display().to_string();
        let mut redis = Self::start_with(Vec::new(), None);
        redis.stop();
        redis.extra = vec![
            "--tls-port".into(),
            redis.port.to_string(),
            "--port".into(),
            "0".into(),
            "--tls-cert-file".into(),
            file("server.crt"),
            "--tls-key-file".into(),
            file("server.key"),
            "--tls-ca-cert-file".into(),
            file("ca.crt"),
            "--tls-auth-clients".into(),
            "no".into(),
        ];
        redis.ca = Some(dir.join("ca.crt"));
        redis.spawn();
        redis
    }

    /// A replica of `primary`.
    pub fn replica_of(primary: &Redis) -> Self {
        let args = ["--replicaof", "127.0.0.1", &primary.port.to_string()];
        Self::start_with(args.map(String::from).to_vec(), None)
    }

    /// A Sentinel monitoring `primary` as `name`, quorum 1, down-after 1000 ms.
    pub fn sentinel(primary: &Redis, name: &str) -> Self {
        let conf = format!(
            "sentinel monitor {name} 127.0.0.1 {} 1\n\
             sentinel down-after-milliseconds {name} 1000\n\
             sentinel failover-timeout {name} 5000\n",
            primary.port
        );
        Self::start_with(Vec::new(), Some(conf))
    }

    fn start_with(extra: Vec<String>, sentinel_conf: Option<String>) -> Self {
        let port = free_port();
        let dir =
            std::env::temp_dir().join(format!("scaleout-redis-{port}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("redis dir");
        let sentinel_conf = sentinel_conf.map(|text| {
            let path = dir.join("sentinel.conf");
            let text = format!("port {port}\nbind 127.0.0.1\ndir {}\n{text}", dir.display());
            std::fs::write(&path, text).expect("sentinel.conf");
            path
        });
        let mut redis = Self {
            child: None,
            port,
            dir,
            extra,
            sentinel_conf,
            ca: None,
        };
        redis.spawn();
        redis
    }

    fn spawn(&mut self) {
        let mut cmd = Command::new("sh");
        cmd.arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/deploy/redis/entrypoint.sh"
        ))
        .env("SCALEOUT_SECRETS", secrets())
        .env("SCALEOUT_RUN", &self.dir);
        if let Some(conf) = &self.sentinel_conf {
            cmd.arg("sentinel").arg(conf);
        } else {
            cmd.arg("server")
                .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
                // Every write goes to the append-only file before Redis answers, so a
                // killed and restarted server has all it acknowledged; no fsync (that
                // only matters if the machine fails), so a busy disk delays no answer.
                .args(["--save", "", "--appendonly", "yes", "--appendfsync", "no"])
                .arg("--dir")
                .arg(&self.dir)
                .args(&self.extra);
        }
        let child = cmd
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server on PATH (apt-get install redis-server)");
        self.child = Some(child);
        wait_for("redis to answer PING", Duration::from_secs(10), || {
            (self.cmd(&["PING"]).as_deref() == Some("+PONG")).then_some(())
        });
    }

    pub fn url(&self) -> String {
        let scheme = if self.ca.is_some() { "rediss" } else { "redis" };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Kills the server (its data survives in the append-only file).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port, with the same data.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// A client that logs in with `login` (see [`login`]); `None`: no login at all.
    pub fn client_as(&self, login: Option<(&str, &str)>) -> redis::Client {
        let mut info = redis::IntoConnectionInfo::into_connection_info(self.url()).unwrap();
        if let Some((user, password)) = login {
            let settings = info
                .redis_settings()
                .clone()
                .set_username(user)
                .set_password(password);
            info = info.set_redis_settings(settings);
        }
        match &self.ca {
            Some(ca) => {
                let certs = redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(std::fs::read(ca).expect("the CA file")),
                };
                redis::Client::build_with_tls(info, certs).expect("a TLS client")
            }
            None => redis::Client::open(info).expect("a client"),
        }
    }

    /// Sends one command, on a fresh connection made with the `redis` crate as `admin` (so
    /// a restarted server is simply reached again), and returns its reply as one line in
    /// the shape `redis-cli --no-raw` users know: `+PONG`, `:3`, a bulk string's content,
    /// `$-1` for nil, or `-CODE detail` for an error reply. `None` if the server is
    /// unreachable.
    pub fn cmd(&self, args: &[&str]) -> Option<String> {
        let admin = password("admin");
        self.cmd_as(Some(("admin", &admin)), args)
    }

    /// [`Redis::cmd`] logging in with `login` (`None`: without logging in). A refused
    /// login comes back as `-AUTH …`.
    pub fn cmd_as(&self, login: Option<(&str, &str)>, args: &[&str]) -> Option<String> {
        let mut conn = match self.connection_as(login) {
            Ok(conn) => conn,
            Err(e) if e.kind() == redis::ErrorKind::AuthenticationFailed => {
                return Some(format!("-AUTH {e}"));
            }
            Err(_) => return None,
        };
        let mut cmd = redis::cmd(args[0]);
        for arg in &args[1..] {
            cmd.arg(*arg);
        }
        match cmd.query::<redis::Value>(&mut conn) {
            Ok(value) => Some(one_line(&value)),
            Err(e) => e
                .code()
                .map(|code| format!("-{code} {}", e.detail().unwrap_or_default())),
        }
    }

    /// Whether `n` replicas receive the replication stream. A new replica starts from a
    /// copy, and the primary streams it later writes only once it has reported in, up to a
    /// second later; meanwhile it acknowledges what the copy held and nothing newer. So a
    /// `WAIT` on a connection that wrote nothing, or after a write the copy held, can
    /// count a replica that will not acknowledge the next write in time. Here: a write,
    /// `WAIT`, and a second write, made only once the first was acknowledged (a blocked
    /// `WAIT` holds the connection's next command), then `WAIT` again.
    pub fn replicated(&self, n: usize) -> bool {
        let mut pipe = redis::pipe();
        for _ in 0..2 {
            pipe.cmd("SET")
                .arg("scaleout-test:replicated")
                .arg(1)
                .arg("PX")
                .arg(1000)
                .ignore()
                .cmd("WAIT")
                .arg(n)
                .arg(100);
        }
        let admin = password("admin");
        let acks = self
            .connection_as(Some(("admin", &admin)))
            .ok()
            .and_then(|mut conn| pipe.query::<(usize, usize)>(&mut conn).ok());
        matches!(acks, Some((first, second)) if first >= n && second >= n)
    }

    /// A fresh blocking connection logging in with `login`, each wait bounded by 2 s.
    fn connection_as(&self, login: Option<(&str, &str)>) -> redis::RedisResult<redis::Connection> {
        let conn = self
            .client_as(login)
            .get_connection_with_timeout(Duration::from_secs(2))?;
        conn.set_read_timeout(Some(Duration::from_secs(2)))?;
        Ok(conn)
    }

    /// An integer reply (`:N`) or a number in a bulk string; 0 for nil.
    pub fn int(&self, args: &[&str]) -> i64 {
        let reply = self.cmd(args).expect("redis reply");
        reply.trim_start_matches(':').parse().unwrap_or(0)
    }
}

/// A reply as [`Redis::cmd`] returns it. Arrays are not needed by any test: they come back
/// as `*N`, their length.
fn one_line(value: &redis::Value) -> String {
    use redis::Value;
    match value {
        Value::Nil => "$-1".into(),
        Value::Int(n) => format!(":{n}"),
        Value::BulkString(bytes) => String::from_utf8_lossy(bytes).into_owned(),
        Value::SimpleString(s) => format!("+{s}"),
        Value::Okay => "+OK".into(),
        Value::Array(items) | Value::Set(items) => format!("*{}", items.len()),
        other => format!("{other:?}"),
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One `scaleout` process (app, worker or web), its log lines collected as they come.
pub struct Scaleout {
    child: Child,
    pub addr: Option<SocketAddr>,
    logs: Arc<Mutex<Vec<String>>>,
    /// The threads that copy its stdout and stderr into `logs`.
    readers: Vec<std::thread::JoinHandle<()>>,
}

impl Scaleout {
    /// Starts a server subcommand on a free port and waits for it to listen.
    pub fn server(command: &str, env: &[(&str, &str)]) -> Self {
        let mut s = Self::spawn(command, env);
        let addr = wait_for("the listening log line", Duration::from_secs(15), || {
            s.logged("listening")
                .iter()
                .find_map(|v| v["addr"].as_str()?.parse().ok())
        });
        s.addr = Some(addr);
        s
    }

    /// Starts any subcommand without waiting for anything. It logs in to Redis as its
    /// role's user unless `env` names one.
    pub fn spawn(command: &str, env: &[(&str, &str)]) -> Self {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_scaleout"));
        cmd.arg(command)
            .env_clear()
            .env("LISTEN_ADDR", "127.0.0.1:0")
            .env("LOG_FORMAT", "json")
            .env("WORKERS", "2");
        if !env.iter().any(|(k, _)| *k == "REDIS_USERNAME") {
            cmd.envs(role_login(command));
        }
        cmd.envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn scaleout");
        let logs = Arc::new(Mutex::new(Vec::new()));
        let readers = [
            Box::new(child.stdout.take().unwrap()) as Box<dyn Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ]
        .into_iter()
        .map(|stream| {
            let logs = logs.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    logs.lock().unwrap().push(line);
                }
            })
        })
        .collect();
        Self {
            child,
            addr: None,
            logs,
            readers,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr.expect("a server"))
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr.expect("a server")
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn logs(&self) -> Vec<String> {
        self.logs.lock().unwrap().clone()
    }

    /// Its JSON log lines with this `message`, oldest first.
    pub fn logged(&self, message: &str) -> Vec<serde_json::Value> {
        self.logs()
            .iter()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .filter(|v| v["message"] == message)
            .collect()
    }

    pub fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .args([&format!("-{sig}"), &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success(), "kill -{sig} failed");
    }

    /// Waits for the process to exit by itself, and for its last log lines.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let status = wait_for("the process to exit", timeout, || {
            self.child.try_wait().ok().flatten()
        });
        // Its pipes are closed now: the readers reach the end and stop.
        for reader in std::mem::take(&mut self.readers) {
            let _ = reader.join();
        }
        status
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Scaleout {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
