#!/usr/bin/env python3
"""End-to-end tests through the real Traefik, real Redis and the real binary (host mode).

Starts the stack with deploy/local.sh on free loopback ports, then:
  1. the seed README's curl flows through /api/ (sessions, round robin, jobs, set/get)
  2. scale 3 -> 5 under `scaleout load`: no failure, no broken session, new replicas
     get traffic within 5 s of their start
  3. scale 5 -> 2 under load: no failure, no broken session
  4. SIGKILL one replica under load: failures counted (retry keeps them ~0), the fleet
     heals, no session broken
  5. restart Redis under load (2 s outage): only 503s and only during the outage,
     200 within 2 s of Redis returning, no session counter goes back
  6. keys that need percent-encoding round-trip through /api/kv/{key} and ?key=; the
     ones Traefik refuses in a path (%2F, %5C) work through the query
  7. the requests of tests/cases/malformed.json and oversized.json (tests/integration/api.rs sends the
     same to the app) through Traefik: each answered as the file says, every over-long head
     20 times in a row; 408 for a stalled body
  8. Redis (ACL from deploy/redis, passwords in the stack's secret files) answers NOAUTH
     without a login and WRONGPASS to the default user
  9. under load, the app's Redis password is rotated the zero-downtime way (a second
     password, the file, the old one removed: no failed request) and the hard way
     (replaced at once, the file written after the refusal): only fast JSON 503s, no session
     broken, the refusal logged naming user and server
 10. the same for the worker while jobs are enqueued: every acknowledged job done
 11. no password (old or new) in the stack's logs, the load output, /redis, /metrics, `ps`
Prints the measured figures and a last line `N passed, M failed`; exit 1 on any failure.

Run from the repository root: `python3 -m tests.e2e.run` (`make test-e2e`).
Environment: SCALEOUT_BIN (default target/release/scaleout), E2E_KEEP=1 keeps the state
dir, E2E_ONLY=name[,name] runs some scenarios only (seed, scale_up, scale_down, kill, redis,
keys, hostile, auth, rotate_app, rotate_worker, secrets).
Python 3 standard library only.
"""

import http.cookiejar
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LOCAL = os.path.join(ROOT, "deploy", "local.sh")
BIN = os.path.abspath(os.environ.get("SCALEOUT_BIN", os.path.join(ROOT, "target", "release", "scaleout")))
DRAIN_SECS = 2
DEADLINE = time.monotonic() + float(os.environ.get("E2E_TIMEOUT", "480"))  # whole run


def now_ms():
    return int(time.time() * 1000)


def log(msg):
    print(f"{time.strftime('%H:%M:%S')} e2e: {msg}", flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Failure(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise Failure(msg)


# ------------------------------------------------------------------ the stack
class Stack:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="scaleout-e2e-")
        self.port = free_port()
        self.dash = free_port()
        while self.dash == self.port:
            self.dash = free_port()
        self.env = dict(
            os.environ,
            STACK_DIR=os.path.join(self.dir, "stack"),
            STACK_PORT=str(self.port),
            STACK_DASH_PORT=str(self.dash),
            SCALEOUT_BIN=BIN,
            DRAIN_SECS=str(DRAIN_SECS),
            JOB_WORK_MS=os.environ.get("JOB_WORK_MS", "100"),
        )
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc = None
        self.output = []
        self.up_log = open(os.path.join(self.dir, "local-up.log"), "w")

    def up(self, n):
        self.proc = subprocess.Popen(
            [LOCAL, "up", str(n)], env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True, text=True)
        threading.Thread(target=self._reader, daemon=True).start()
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if any("scaleout is up" in line for line in self.output):
                return
            if self.proc.poll() is not None:
                raise Failure("local.sh up exited:\n" + "".join(self.output[-30:]))
            time.sleep(0.2)
        raise Failure("stack not up in 90 s:\n" + "".join(self.output[-30:]))

    def _reader(self):
        for line in self.proc.stdout:
            self.output.append(line)
            self.up_log.write(line)
            self.up_log.flush()

    def cmd(self, *args, timeout=60):
        r = subprocess.run([LOCAL, *args], env=self.env, capture_output=True, text=True, timeout=timeout)
        self.up_log.write(f"--- local.sh {' '.join(args)} (rc={r.returncode})\n{r.stderr}{r.stdout}")
        self.up_log.flush()
        if r.returncode != 0:
            raise Failure(f"local.sh {' '.join(args)} failed ({r.returncode}):\n{r.stderr[-2000:]}")
        return r.stdout

    def replicas(self):
        """name -> (addr, traefik state) from `local.sh status`."""
        out = self.cmd("status", timeout=20)
        res = {}
        for line in out.splitlines():
            f = line.split()
            if f and f[0].startswith("app-"):
                res[f[0]] = (f[2], f[3], f[-1])
        return res

    def down(self):
        try:
            subprocess.run([LOCAL, "down"], env=self.env, capture_output=True, timeout=60)
        except Exception as e:  # noqa: BLE001 - cleanup must go on
            log(f"local.sh down: {e}")
        if self.proc and self.proc.poll() is None:
            for sig, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, 5)):
                try:
                    os.killpg(self.proc.pid, sig)
                    self.proc.wait(wait)
                    break
                except (ProcessLookupError, subprocess.TimeoutExpired):
                    continue

    def keep_logs(self):
        dest = os.path.join(ROOT, "tests", "artifacts", "e2e-" + time.strftime("%Y%m%d-%H%M%S"))
        try:
            os.makedirs(dest, exist_ok=True)
            logs = os.path.join(self.dir, "stack", "logs")
            if os.path.isdir(logs):
                shutil.copytree(logs, os.path.join(dest, "logs"), dirs_exist_ok=True)
            shutil.copy(os.path.join(self.dir, "local-up.log"), dest)
            log(f"logs kept in {dest}")
        except OSError as e:
            log(f"could not keep logs: {e}")


# ------------------------------------------------------------------ HTTP helpers
class Client:
    """One browser: its own cookie jar, no proxy."""

    def __init__(self, base):
        self.base = base
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}), urllib.request.HTTPCookieProcessor(self.jar))

    def get(self, path, timeout=5):
        """-> (status, body as JSON or text, headers); status 0 on a transport error."""
        try:
            with self.opener.open(self.base + path, timeout=timeout) as r:
                return r.status, _decode(r.read()), r.headers
        except urllib.error.HTTPError as e:
            return e.code, _decode(e.read()), e.headers
        except (OSError, urllib.error.URLError) as e:
            return 0, str(e), {}


def _decode(raw):
    text = raw.decode("utf-8", "replace")
    try:
        return json.loads(text)
    except ValueError:
        return text


def wait_for(what, fn, timeout, interval=0.1):
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() > deadline:
            raise Failure(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


# ------------------------------------------------------------------ the load tool
OUTPUTS = []  # (what, text): everything the run collected, searched for passwords at the end


class Load:
    """`scaleout load --json` in the background."""

    def __init__(self, stack, seconds, concurrency=16):
        self.argv = [BIN, "load", "--url", stack.base + "/api/", "--concurrency", str(concurrency),
                     "--duration", f"{seconds}s", "--json"]
        self.t_start = now_ms()
        self.proc = subprocess.Popen(self.argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, start_new_session=True)
        self.seconds = seconds

    def result(self):
        try:
            out, err = self.proc.communicate(timeout=self.seconds + 30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            raise Failure("scaleout load did not finish")
        OUTPUTS.append(("scaleout load output", out + err))
        res = None
        for chunk in (out.strip(), *reversed(out.strip().splitlines())):
            try:
                res = json.loads(chunk)
                break
            except ValueError:
                continue
        if not isinstance(res, dict):
            raise Failure(f"scaleout load: no JSON on stdout (rc={self.proc.returncode}): "
                          f"{out[-500:]!r} {err[-500:]!r}")
        res["_rc"] = self.proc.returncode
        return res

    def stop(self):
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def field(d, *names, default=None):
    for n in names:
        if n in d:
            return d[n]
    return default


def summary(res):
    """The figures we report from `scaleout load --json`."""
    served = {name: (v.get("requests", 0) if isinstance(v, dict) else v)
              for name, v in (res.get("served_by") or {}).items()}
    return {
        "requests": res.get("requests", 0),
        "failures": res.get("failures", 0),
        "by_status": res.get("by_status", {}),
        "transport_errors": res.get("transport_errors", 0),
        "broken_sessions": res.get("broken_sessions", 0),
        "broken_examples": res.get("broken_examples", [])[:3],
        "broken_examples_all": res.get("broken_examples", []),
        "served_by": served,
        "first_ms": {name: v.get("first_ms") for name, v in (res.get("served_by") or {}).items()
                     if isinstance(v, dict)},
        "rps": round(res.get("rps", 0)),
        "p50_ms": res.get("p50_ms"),
        "p99_ms": res.get("p99_ms"),
        "max_ms": res.get("max_ms"),
        "rc": res.get("_rc"),
    }


def classify_breaks(res):
    """Split the load tool's broken sessions: (lost = session replaced or counter went back,
    over = counter rose by more than the requests could explain, unknown = not described).
    Examples look like 'user 5: session_count 240 after 238 (+0 unsure) at 3077 ms' or
    'user 5: session X replaced by Y at 3077 ms'; there is one per broken user, at most 5."""
    lost = over = 0
    for e in res["broken_examples_all"]:
        m = re.search(r"session_count (-?\d+) after (-?\d+)", e)
        if m and int(m.group(1)) > int(m.group(2)):
            over += 1
        else:
            lost += 1
    unknown = res["broken_sessions"] - lost - over
    return lost, over, unknown


# ------------------------------------------------------------------ scenarios
FIGURES = []  # (scenario, dict)


def scenario_seed(stack):
    c = Client(stack.base)
    seen, counts, sids = [], [], set()
    for i in range(6):
        st, body, hdr = c.get("/api/")
        check(st == 200, f"GET /api/ #{i + 1}: status {st}: {body!r}")
        check(isinstance(body, dict), f"GET /api/: not JSON: {body!r}")
        if i == 0:
            check(body.get("new_session") is True, f"first request: new_session should be true: {body}")
            check("sid" in {ck.name for ck in c.jar}, "no sid cookie set")
        else:
            check(body.get("new_session") is False, f"request {i + 1}: new_session should be false: {body}")
        check(hdr.get("X-Content-Type-Options") == "nosniff", "security headers missing on /api/")
        seen.append(body["served_by"])
        counts.append(body["session_count"])
        sids.add(body["session_id"])
    check(len(sids) == 1, f"session_id changed: {sids}")
    check(all(b - a == 1 for a, b in zip(counts, counts[1:])), f"session_count not +1 each time: {counts}")
    check(set(seen) == {"app-1", "app-2", "app-3"}, f"6 requests did not visit all 3 replicas: {seen}")
    log(f"6 requests: served_by {seen}, session_count {counts}")

    # A second browser gets its own session; global_count is shared.
    c2 = Client(stack.base)
    st, b2, _ = c2.get("/api/")
    check(st == 200 and b2["session_id"] not in sids and b2["session_count"] == 1, f"second browser: {b2}")

    # Jobs: enqueue 3, all done.
    ids = []
    for i in range(1, 4):
        st, body, _ = c.get(f"/api/enqueue?job=test-{i}")
        check(st == 202, f"enqueue test-{i}: {st} {body!r}")
        ids.append(body["id"])

    def all_done():
        states = [c.get(f"/api/jobs/{i}")[1] for i in ids]
        return states if all(isinstance(s, dict) and s.get("status") == "done" for s in states) else None

    done = wait_for("3 jobs done", all_done, 20, 0.2)
    log("jobs: " + ", ".join(f"{d['name']}={d['status']} by {d.get('worker')}" for d in done))

    # Shared key/value: any replica answers the same.
    st, body, _ = c.get("/api/set?key=color&value=blue")
    check(st == 200 and body.get("value") == "blue", f"set: {st} {body!r}")
    # 6 requests hold a full round-robin round, so all 3 replicas answer.
    got = [c.get("/api/get?key=color") for _ in range(6)]
    check(all(g[0] == 200 and g[1].get("value") == "blue" for g in got), f"get: {got}")
    check(len({g[1]["served_by"] for g in got}) == 3, "get was not served by all 3 replicas")
    st, body, _ = c.get("/api/get?key=no-such-key-e2e")
    check(st == 404 and isinstance(body, dict) and "error" in body, f"missing key: {st} {body!r}")

    # Routing edges: /api exactly, /apifoo is not the API, / is the page, dashboard.
    st, body, _ = c.get("/api")
    check(st == 200 and isinstance(body, dict) and "served_by" in body, f"GET /api: {st} {body!r}")
    st, body, _ = c.get("/apifoo")
    check(not (isinstance(body, dict) and "served_by" in body), f"/apifoo reached the API: {body!r}")
    st, body, hdr = c.get("/")
    if os.path.isdir(os.path.join(ROOT, "frontend", "dist")):
        check(st == 200 and "html" in hdr.get("Content-Type", ""), f"GET /: {st} {hdr.get('Content-Type')}")
    st, body, _ = Client(f"http://127.0.0.1:{stack.dash}").get("/api/http/routers")
    check(st == 200 and isinstance(body, list), f"dashboard API: {st}")


class Probes:
    """A few browsers through Traefik, each a request every `gap` s, full timeline kept:
    (start ms, end ms, status, JSON body or None) per request."""

    def __init__(self, stack, n=4, gap=0.05):
        self.stack, self.gap = stack, gap
        self.stop_ev = threading.Event()
        self.timelines = [[] for _ in range(n)]
        self.threads = [threading.Thread(target=self._run, args=(tl,), daemon=True)
                        for tl in self.timelines]
        for t in self.threads:
            t.start()

    def _run(self, tl):
        c = Client(self.stack.base)
        while not self.stop_ev.is_set():
            t0 = now_ms()
            st, body, _ = c.get("/api/", timeout=5)
            tl.append((t0, now_ms(), st, body if isinstance(body, dict) else None))
            time.sleep(self.gap)

    def stop(self):
        self.stop_ev.set()
        for t in self.threads:
            t.join(10)

    def requests(self):
        return sorted((r for tl in self.timelines for r in tl), key=lambda r: r[0])

    def first_seen(self, name):
        return next((r[1] for r in self.requests() if r[3] and r[3].get("served_by") == name), None)

    def session_problems(self):
        """(went back / changed id, jumped by more than 1) over each probe's 200s."""
        back, jumps = [], 0
        for tl in self.timelines:
            prev = None
            for _, _, st, body in tl:
                if st != 200 or not body:
                    continue
                if prev is not None:
                    if body["session_id"] != prev["session_id"] or body["session_count"] <= prev["session_count"]:
                        back.append((prev["session_count"], body["session_count"]))
                    elif body["session_count"] != prev["session_count"] + 1:
                        jumps += 1
                prev = body
        return back, jumps


def started_at(stack):
    """Instance name -> started_at (unix ms), from /api/instances."""
    st, body, _ = Client(stack.base).get("/api/instances")
    check(st == 200 and isinstance(body, dict), f"/api/instances: {st} {body!r}")
    return {i["name"]: i.get("started_at") for i in body.get("instances", []) if i.get("role") == "app"}


def scale_scenario(stack, target):
    """Load + probes while scaling to `target`."""
    before = set(stack.replicas())
    load = Load(stack, 10)
    probes = Probes(stack, n=2)
    try:
        time.sleep(2.5)
        t0 = now_ms()
        stack.cmd("scale", str(target))
        t_scaled = now_ms()
        after = stack.replicas()
        new = sorted(set(after) - before, key=lambda n: int(n.split("-")[1]))
        starts = started_at(stack) if new else {}
        res = summary(load.result())
    finally:
        load.stop()
        probes.stop()
    # How long after its start did each new replica answer its first request (of the
    # load tool: its served_by[name].first_ms counts from the tool's start)?
    first, first_probe = {}, {}
    for n in new:
        start = starts.get(n) or t0
        f = res["first_ms"].get(n)
        first[n] = None if f is None else load.t_start + f - start
        seen = probes.first_seen(n)
        first_probe[n] = None if seen is None else seen - start
    res["new_replica_first_probe_ms"] = first_probe
    back, jumps = probes.session_problems()
    res["probe_requests"] = len(probes.requests())
    res["probe_sessions_broken"] = len(back) + jumps
    return res, new, first, t_scaled - t0, after


def scenario_scale_up(stack):
    res, new, first, took, after = scale_scenario(stack, 5)
    FIGURES.append(("scale 3 -> 5", dict(res, scale_cmd_ms=took, new_replica_first_request_ms=first)))
    check(len(after) == 5, f"expected 5 replicas, got {sorted(after)}")
    check(res["failures"] == 0, f"failed requests during scale up: {res['by_status']}")
    check(res["broken_sessions"] == 0, f"broken sessions during scale up: {res['broken_sessions']}")
    check(res["probe_sessions_broken"] == 0, "a probe's session broke during scale up")
    for n in new:
        check(res["served_by"].get(n, 0) > 0, f"{n} received no load traffic: {res['served_by']}")
        check(first[n] is not None and first[n] <= 5000, f"{n}: first request {first[n]} ms after start")
    check(res["rc"] == 0, f"scaleout load exit status {res['rc']}")


def scenario_scale_down(stack):
    res, _, _, took, after = scale_scenario(stack, 2)
    FIGURES.append(("scale 5 -> 2", dict(res, scale_cmd_ms=took)))
    check(sorted(after) == ["app-1", "app-2"], f"expected app-1, app-2, got {sorted(after)}")
    check(res["failures"] == 0, f"failed requests during scale down: {res['by_status']}")
    check(res["broken_sessions"] == 0, f"broken sessions during scale down: {res['broken_sessions']}")
    check(res["probe_sessions_broken"] == 0, "a probe's session broke during scale down")
    check(res["rc"] == 0, f"scaleout load exit status {res['rc']}")


def scenario_kill(stack):
    stack.cmd("scale", "3")
    before = stack.replicas()
    load = Load(stack, 10)
    try:
        time.sleep(3)
        victim = stack.cmd("kill-replica").strip().splitlines()[-1]
        t_kill = time.monotonic()
        check(victim in before, f"kill-replica named {victim!r}")

        def healed():
            r = stack.replicas()
            ok = (len(r) == 3 and r.get(victim, ("", "", ""))[0] != before[victim][0]
                  and all(v[1] == "running" and v[2] == "traefik=UP" for v in r.values()))
            return r if ok else None

        wait_for("the fleet to heal", healed, 15, 0.2)
        heal_ms = int((time.monotonic() - t_kill) * 1000)
        res = summary(load.result())
    finally:
        load.stop()
    lost, over, unknown = classify_breaks(res)
    FIGURES.append(("SIGKILL 1 of 3", dict(res, victim=victim, healed_after_ms=heal_ms,
                                           sessions_lost=lost + unknown, sessions_overcounted=over)))
    # A SIGKILLed process takes the requests it was handling with it: those fail with 502,
    # or are sent again and may then be counted twice (the replica may have applied them
    # before it died; docs/guarantees.md: at-least-once), which classify_breaks reports as
    # overcounted, allowed here. At most one in flight per virtual user, plus one each for
    # requests put on the dead replica's keep-alive connections before Traefik noticed:
    # 2 x concurrency.
    check(res["failures"] <= 2 * 16, f"too many failed requests after the kill: {res['by_status']}")
    check(lost + unknown == 0, f"sessions lost or reset after the kill: {res['broken_examples']}")


def scenario_redis(stack):
    probes = Probes(stack, n=4)
    load = Load(stack, 9, concurrency=8)
    try:
        time.sleep(2.5)
        c = Client(stack.base)
        st, body, _ = c.get("/api/")
        g_before = body.get("global_count", 0) if st == 200 else 0
        t_cmd = now_ms()
        out = stack.cmd("restart-redis", "2")
        marks = dict(kv.split("=", 1) for kv in out.split() if "=" in kv)
        up_ms = int(marks["redis_up_ms"])
        time.sleep(3.5)
        st, body, _ = c.get("/api/")
        res = summary(load.result())
    finally:
        load.stop()
        probes.stop()

    reqs = probes.requests()
    n503 = sum(1 for r in reqs if r[2] == 503)
    other = [r[2] for r in reqs if r[2] not in (200, 503)]
    outside = [(r[0] - t_cmd, r[2]) for r in reqs if r[2] == 503 and (r[0] < t_cmd - 200 or r[1] > up_ms + 2000)]
    first_ok_after = []
    for tl in probes.timelines:
        first_ok_after.append(next((r[1] - up_ms for r in tl if r[2] == 200 and r[0] >= up_ms), None))
    back, jumps = probes.session_problems()
    FIGURES.append(("Redis restart (2 s down)", dict(
        res, redis_outage_ms=up_ms - t_cmd, probe_requests=len(reqs), probe_503=n503,
        probe_first_200_after_return_ms=first_ok_after, session_counter_went_back=len(back),
        session_counter_jumped=jumps)))
    check({str(k) for k in res["by_status"]} <= {"200", "503"},
          f"load saw statuses other than 200/503: {res['by_status']}")
    check(not other, f"probes saw statuses other than 200/503: {other[:10]}")
    check(n503 > 0, "no 503 seen during a 2 s Redis outage: the outage was not observed")
    check(not outside, f"503s outside the outage (+2 s): {outside[:5]}")
    check(all(x is not None and x <= 2000 for x in first_ok_after),
          f"first 200 after Redis returned (ms): {first_ok_after}")
    check(not back, f"session counters went back (probes): {back[:5]}")
    lost, over, unknown = classify_breaks(res)
    check(lost + unknown == 0, f"load: sessions lost or counters went back: {res['broken_examples']}")
    check(st == 200 and body.get("global_count", 0) > g_before,
          f"global_count after restart {body!r} not above {g_before} (data lost?)")


# ------------------------------------------------------------------ keys and hostile input
def raw_request(stack, data, timeout=10, stall=False):
    """Sends raw bytes to Traefik -> (status, body bytes, seconds); status 0 if no answer.
    Keeps what arrived before a reset. With stall, waits for the answer without closing."""
    t = time.monotonic()
    buf = b""
    with socket.create_connection(("127.0.0.1", stack.port), timeout=timeout) as s:
        try:
            s.sendall(data)
        except OSError:
            pass
        try:
            while b"\r\n\r\n" not in buf or not stall:
                d = s.recv(65536)
                if not d:
                    break
                buf += d
        except OSError:
            pass
    took = time.monotonic() - t
    m = re.match(rb"HTTP/1\.[01] (\d{3})", buf)
    return (int(m.group(1)) if m else 0), buf.partition(b"\r\n\r\n")[2], took


# Keys with characters that need encoding: (key, path segment, query value).
KEYS = [("a&b", "a%26b", "a%26b"), ("a+b", "a%2Bb", "a%2Bb"), ("100%", "100%25", "100%25"),
        ("a%41", "a%2541", "a%2541"), ("a b", "a%20b", "a%20b"), ("é", "%C3%A9", "%C3%A9"),
        ("k?x#y;z", "k%3Fx%23y%3Bz", "k%3Fx%23y%3Bz")]
# Refused by Traefik in a path (encodedCharacters in traefik.yml), fine in a query.
PATH_REFUSED = [("a/b", "a%2Fb"), ("a\\b", "a%5Cb")]


def scenario_keys(stack):
    c = Client(stack.base)
    for i, (key, seg, q) in enumerate(KEYS):
        req = urllib.request.Request(f"{stack.base}/api/kv/{seg}", data=f"v{i}".encode(), method="PUT")
        try:
            with c.opener.open(req, timeout=5) as r:
                st, body = r.status, _decode(r.read())
        except urllib.error.HTTPError as e:
            st, body = e.code, _decode(e.read())
        check(st == 200 and body.get("key") == key, f"PUT /api/kv/{seg}: {st} {body!r}")
        st, body, _ = c.get(f"/api/get?key={q}")
        check(st == 200 and body.get("key") == key and body.get("value") == f"v{i}",
              f"/api/get?key={q} after PUT /api/kv/{seg}: {st} {body!r}")
        st, body, _ = c.get(f"/api/kv/{seg}")
        check(st == 200 and body.get("key") == key, f"GET /api/kv/{seg}: {st} {body!r}")
    for key, enc in PATH_REFUSED:
        st, body, _ = c.get(f"/api/kv/{enc}")
        check(st == 400, f"GET /api/kv/{enc}: Traefik should refuse it with 400, got {st} {body!r}")
        st, body, _ = c.get(f"/api/set?key={enc}&value=ok")
        check(st == 200 and body.get("key") == key, f"/api/set?key={enc}: {st} {body!r}")
        st, body, _ = c.get(f"/api/get?key={enc}")
        check(st == 200 and body.get("value") == "ok", f"/api/get?key={enc}: {st} {body!r}")
    FIGURES.append(("keys", {"round_trips": len(KEYS), "refused_in_path": [e for _, e in PATH_REFUSED]}))


CASES = os.path.join(ROOT, "tests", "cases", "send.py")


def send_cases(stack, suite):
    """tests/cases/send.py SUITE through Traefik -> its JSON summary; each case's line is
    logged, and any answer other than the expected one fails the scenario."""
    p = subprocess.run([sys.executable, CASES, suite, "--port", str(stack.port), "--via", "traefik"],
                       capture_output=True, text=True, timeout=300)
    lines = p.stdout.strip().splitlines()
    for line in lines[:-1]:
        log(f"  {line}")
    check(p.returncode == 0 and lines, f"{suite} cases through Traefik (rc {p.returncode}):\n"
          + "\n".join(line for line in lines if not line.startswith("ok")) + p.stderr[-2000:])
    return json.loads(lines[-1])


def scenario_hostile(stack):
    # The malformed requests of tests/cases/malformed.json, once each, and the over-long
    # heads of oversized.json, each `runs` (20) times in a row: every answer as expected.
    malformed = send_cases(stack, "malformed")
    oversized = send_cases(stack, "oversized")
    # A body that stops: the app answers 408 after 2 s of silence; Traefik relays it
    # once its own readTimeout (5 s) ends its wait for the rest of the body.
    st, body, took = raw_request(
        stack, b"PUT /api/kv/a HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n0123456789", timeout=15, stall=True)
    check(st == 408 and took < 8, f"stalled body: {st} after {took:.1f}s {body[:80]!r}")
    c = Client(stack.base)
    check(c.get("/api/healthz")[0] == 200, "the app stopped serving after the hostile run")
    FIGURES.append(("hostile", {"malformed": malformed["by_status"], "oversized": oversized["by_status"],
                                "oversized_runs_per_case": oversized["runs"],
                                "slowest_answer_s": max(malformed["slowest_s"], oversized["slowest_s"]),
                                "stalled_body_s": round(took, 1)}))


# ------------------------------------------------------------------ Redis logins
PASSWORDS = set()  # every password the run made or replaced: none may show up anywhere


def secret_file(stack, user):
    return os.path.join(stack.env["STACK_DIR"], "secrets", f"redis-{user}-password")


def secret(stack, user):
    with open(secret_file(stack, user)) as f:
        pw = f.read().strip()
    PASSWORDS.add(pw)
    return pw


def write_secret(stack, user, pw):
    """Replaces USER's password file at once (rename), as a secret store would."""
    path = secret_file(stack, user)
    with open(path + ".new", "w") as f:
        f.write(pw + "\n")
    os.replace(path + ".new", path)


def new_password():
    pw = os.urandom(24).hex()
    PASSWORDS.add(pw)
    return pw


def redis_cli(port, *args, env=None):
    """redis-cli's stdout and stderr together (it exits 0 on an error reply too)."""
    r = subprocess.run(["redis-cli", "--no-auth-warning", "-p", str(port), *args], capture_output=True,
                       text=True, timeout=10, env=env)
    return (r.stdout + r.stderr).strip()


def admin_cli(stack, port, *args):
    """redis-cli as `admin`, the password in REDISCLI_AUTH (never an argument: `ps` shows those)."""
    return redis_cli(port, "--user", "admin", *args, env=dict(os.environ, REDISCLI_AUTH=secret(stack, "admin")))


def redis_nodes(stack):
    """name -> port of every Redis server and Sentinel of the stack."""
    run = os.path.join(stack.env["STACK_DIR"], "run")
    ports = {f[:-5]: int(open(os.path.join(run, f)).read()) for f in os.listdir(run) if f.endswith(".port")}
    if not ports:
        with open(os.path.join(stack.env["STACK_DIR"], "stack.env")) as f:
            ports = {"redis": int(re.search(r"^REDIS_PORT=(\d+)$", f.read(), re.M).group(1))}
    return ports


def snapshot_ps():
    OUTPUTS.append(("ps -eo args", subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout))


def check_logins_refused(stack):
    """On every Redis and Sentinel: no command without a login, no login as `default`;
    the nopass healthcheck user and admin (with its password) do get in, so the refusals
    are the ACL's, not a dead server's. -> {node: answers}"""
    seen = {}
    for name, port in sorted(redis_nodes(stack).items()):
        anon = redis_cli(port, "PING")
        default = redis_cli(port, "--user", "default", "--pass", "not-the-password", "PING")
        health = redis_cli(port, "--user", "healthcheck", "--pass", "x", "PING")
        whoami = admin_cli(stack, port, "ACL", "WHOAMI")
        seen[name] = {"unauthenticated": anon.split()[0], "default": "WRONGPASS" if "WRONGPASS" in default else default[:40],
                      "healthcheck": health, "admin": whoami}
        check(anon.startswith("NOAUTH"), f"{name} (port {port}): PING without a login answered {anon!r}")
        check("WRONGPASS" in default, f"{name} (port {port}): login as default answered {default!r}")
        check(health == "PONG" and whoami == "admin", f"{name} (port {port}): healthcheck {health!r}, admin {whoami!r}")
    return seen


def scenario_auth(stack):
    seen = check_logins_refused(stack)
    FIGURES.append(("Redis logins", {n: f"{v['unauthenticated']} / {v['default']}" for n, v in seen.items()}))


def refusals(stack, role, offsets, text="refused the login"):
    """The `redis refused the login` lines (or those with TEXT) logged by ROLE's processes
    after `offsets` (log name -> byte offset): [(instance log, user, server)]."""
    found = []
    logs = os.path.join(stack.env["STACK_DIR"], "logs")
    for name in sorted(os.listdir(logs)):
        if not (name.startswith(role + "-") or name == role + ".log"):
            continue
        with open(os.path.join(logs, name), "rb") as f:
            f.seek(offsets.get(name, 0))
            for line in f.read().decode("utf-8", "replace").splitlines():
                if text not in line:
                    continue
                try:
                    obj = json.loads(line)
                except ValueError:
                    continue
                flds = obj.get("fields", obj)
                found.append((name, flds.get("user"), flds.get("server")))
    return found


def log_offsets(stack):
    logs = os.path.join(stack.env["STACK_DIR"], "logs")
    return {n: os.path.getsize(os.path.join(logs, n)) for n in os.listdir(logs)}


def connected(stack, port, user):
    """How many connections USER has on the Redis at PORT."""
    out = admin_cli(stack, port, "CLIENT", "LIST")  # (Redis 7.0 has no CLIENT LIST USER)
    return sum(1 for line in out.splitlines() if f" user={user} " in f" {line} ")


def rotate(stack, user, procs, want_conns, ready=lambda: True):
    """Changes USER's password twice while its PROCS processes run: the zero-downtime way
    (a second password, the file, each process reads it and dials with it, the old one
    removed), then the hard way (the password replaced at once, connections killed, the
    file written only after the refusal). Logged in again: WANT_CONNS connections as USER
    and READY(). -> timings (unix ms), figures, the refusals logged, the Redis port."""
    port = redis_nodes(stack)["redis"]
    old, new, new2 = secret(stack, user), new_password(), new_password()
    t = {"soft_start": now_ms()}
    soft_offsets = log_offsets(stack)
    check(admin_cli(stack, port, "ACL", "SETUSER", user, ">" + new) == "OK", "ACL SETUSER >NEW")
    write_secret(stack, user, new)
    wait_for(f"each of {user}'s processes to read the new password",
             lambda: len(refusals(stack, user, soft_offsets, "PASSWORD_FILE changed")) >= procs, 10)
    check(admin_cli(stack, port, "ACL", "SETUSER", user, "<" + old) == "OK", "ACL SETUSER <OLD")
    time.sleep(0.5)
    check(not refusals(stack, user, soft_offsets), f"{user} was refused during the zero-downtime rotation")
    t["soft_end"] = now_ms()
    snapshot_ps()
    time.sleep(1.5)
    offsets = log_offsets(stack)
    t["hard_start"] = now_ms()
    check(admin_cli(stack, port, "ACL", "SETUSER", user, "resetpass", ">" + new2) == "OK", "ACL SETUSER resetpass")
    kill3 = admin_cli(stack, port, "CLIENT", "KILL", "USER", user)
    # The processes find out (a refused login, logged) before the file changes.
    wait_for(f"{user}'s processes to log the refusal", lambda: refusals(stack, user, offsets), 10)
    t["refused"] = now_ms()
    time.sleep(0.5)
    write_secret(stack, user, new2)
    t["file_written"] = now_ms()
    wait_for(f"{user} logged in with the file's new password",
             lambda: connected(stack, port, user) >= want_conns and ready(), 15, 0.02)
    t["healed"] = now_ms()
    snapshot_ps()
    return t, {"killed_connections": kill3}, refusals(stack, user, offsets), port


def scenario_rotate_app(stack):
    replicas = stack.replicas()
    probes = Probes(stack, n=4, gap=0.02)
    load = Load(stack, 14, concurrency=16)
    try:
        time.sleep(2.0)
        # Each replica holds at least one connection and answers /readyz again.
        t, fig, refused, port = rotate(stack, "app", len(replicas), len(replicas), lambda: all(
            Client(f"http://{addr}").get("/readyz", timeout=1)[0] == 200 for addr, *_ in replicas.values()))
        time.sleep(max(0.0, (load.t_start + 13000 - now_ms()) / 1000))
        res = summary(load.result())
    finally:
        load.stop()
        probes.stop()
    reqs = probes.requests()
    slow_or_bad = [(r[0] - t["soft_start"], r[2], round(r[1] - r[0])) for r in reqs
                   if r[2] != 200 and not (r[2] == 503 and r[3] and "error" in r[3] and r[1] - r[0] < 1000)]
    soft = [r for r in reqs if t["soft_start"] <= r[0] <= t["soft_end"]]
    hard = [r for r in reqs if t["hard_start"] <= r[0] <= t["healed"] + 1000]
    first_ok = next((r[1] for r in sorted(reqs, key=lambda r: r[1]) if r[2] == 200 and r[0] >= t["file_written"]), None)
    back, jumps = probes.session_problems()
    servers = {s for _, _, s in refused}
    FIGURES.append(("rotate the app's password under load", dict(
        res, **fig, probe_requests=len(reqs),
        soft_probe_503=sum(1 for r in soft if r[2] == 503), soft_probe_requests=len(soft),
        soft_ms=t["soft_end"] - t["soft_start"],
        hard_probe_503=sum(1 for r in hard if r[2] == 503), hard_probe_requests=len(hard),
        hard_refused_after_ms=t["refused"] - t["hard_start"],
        file_to_first_200_ms=None if first_ok is None else first_ok - t["file_written"],
        file_to_all_replicas_ready_ms=t["healed"] - t["file_written"],
        refusals_logged=len(refused), refusal_servers=sorted(servers))))
    check(set(res["by_status"]) <= {"200", "503"} and res["transport_errors"] == 0,
          f"load saw statuses other than 200/503: {res['by_status']}")
    check(res["max_ms"] < 1000, f"a load request took {res['max_ms']} ms: the 503s are not fast")
    soft_failed = [r[2] for r in soft if r[2] != 200]
    check(not soft_failed, f"the zero-downtime rotation failed {len(soft_failed)} probe requests: {soft_failed[:5]}")
    check(not slow_or_bad, f"probe answers other than 200 or a fast JSON 503: {slow_or_bad[:5]}")
    check(res["broken_sessions"] == 0 and not back and not jumps,
          f"broken sessions: load {res['broken_examples']}, probes {back[:5]} {jumps}")
    check(refused and all(u == "app" for _, u, _ in refused) and servers == {f"127.0.0.1:{port}"},
          f"the replicas' refusal lines name another user or server: {refused[:5]}")
    check(first_ok is not None, "no 200 after the new password was written")


def scenario_rotate_worker(stack):
    c = Client(stack.base)
    acked, other = [], []
    stop = threading.Event()

    def enqueue():
        i = 0
        while not stop.is_set():
            st, body, _ = c.get(f"/api/enqueue?job=rotate-{i}", timeout=5)
            if st == 202 and isinstance(body, dict):
                acked.append((now_ms(), body["id"]))
            else:
                other.append((st, body))
            i += 1
            time.sleep(0.1)

    def state(jid):
        st, body, _ = c.get(f"/api/jobs/{jid}")
        return body.get("status") if st == 200 and isinstance(body, dict) else f"http {st}"

    thread = threading.Thread(target=enqueue, daemon=True)
    thread.start()
    try:
        time.sleep(1.5)
        # The worker holds two connections: requests and scripts, and its blocking BLMOVE.
        t, fig, refused, port = rotate(stack, "worker", 1, 2)
        time.sleep(2.0)
    finally:
        stop.set()
        thread.join(10)

    def settled():
        states = {jid: state(jid) for _, jid in acked}
        return None if any(s in ("queued", "processing", "failed") for s in states.values()) else states

    states = wait_for("every acknowledged job to end", settled, 60, 0.5)
    after_heal = [jid for at, jid in acked if at > t["healed"]]
    not_done = {j: s for j, s in states.items() if s != "done"}
    FIGURES.append(("rotate the worker's password while jobs run", dict(
        **fig, jobs_acknowledged=len(acked), jobs_acknowledged_after_heal=len(after_heal),
        jobs_not_done=len(not_done), enqueue_other_answers=len(other),
        hard_refused_after_ms=t["refused"] - t["hard_start"],
        file_to_logged_in_ms=t["healed"] - t["file_written"], refusals_logged=len(refused))))
    check(not other, f"enqueue answers other than 202: {other[:5]}")
    check(not not_done, f"acknowledged jobs not done: {list(not_done.items())[:5]}")
    check(after_heal, "no job enqueued after the worker logged in again")
    check(refused and all(u == "worker" and s == f"127.0.0.1:{port}" for _, u, s in refused),
          f"the worker's refusal lines name another user or server: {refused[:5]}")


def check_no_password(stack):
    """Every password of the run (the stack's secret files now, and each one replaced) in
    nothing the run collected: the stack's logs and output, the load tool's output, the
    app's /redis and /metrics (through Traefik and from each replica), `ps -eo args`. ->
    how many texts were searched."""
    for f in os.listdir(os.path.join(stack.env["STACK_DIR"], "secrets")):
        if f.endswith("-password"):
            secret(stack, f[len("redis-"):-len("-password")])
    check(len(PASSWORDS) >= 5 and all(len(p) >= 32 for p in PASSWORDS), f"{len(PASSWORDS)} passwords collected")
    texts = list(OUTPUTS)
    snapshot_ps()
    texts.append(OUTPUTS[-1])
    c = Client(stack.base)
    for path in ("/api/redis", "/api/metrics"):
        st, body, _ = c.get(path)
        check(st == 200, f"{path}: {st}")
        texts.append((path, json.dumps(body) if isinstance(body, dict) else str(body)))
    for name, (addr, *_) in stack.replicas().items():
        for path in ("/redis", "/metrics", "/instances"):
            st, body, _ = Client(f"http://{addr}").get(path)
            texts.append((f"{name} {path}", json.dumps(body) if isinstance(body, dict) else str(body)))
    texts.append(("local.sh output", "".join(stack.output)))
    logs = os.path.join(stack.env["STACK_DIR"], "logs")
    for name in sorted(os.listdir(logs)):
        with open(os.path.join(logs, name), "rb") as f:
            texts.append((f"logs/{name}", f.read().decode("utf-8", "replace")))
    leaks = sorted({what for what, text in texts for pw in PASSWORDS if pw in text})
    check(not leaks, f"a password appears in: {leaks}")
    return len(texts)


def scenario_secrets(stack):
    n = check_no_password(stack)
    FIGURES.append(("passwords in what the run collected", {"passwords": len(PASSWORDS), "texts_searched": n,
                                                            "found": 0}))


SCENARIOS = [
    ("seed", "seed README flows through /api/", scenario_seed),
    ("scale_up", "scale 3 -> 5 under load", scenario_scale_up),
    ("scale_down", "scale 5 -> 2 under load", scenario_scale_down),
    ("kill", "SIGKILL a replica under load", scenario_kill),
    ("redis", "restart Redis under load", scenario_redis),
    ("keys", "keys with & + % space é through /api, / and \\ refused in paths", scenario_keys),
    ("hostile", "malformed and over-long requests through Traefik, as tests/cases/ expect", scenario_hostile),
    ("auth", "Redis refuses a client without a login and the default user", scenario_auth),
    ("rotate_app", "rotate the app's Redis password under load: JSON 503s at most, no session broken",
     scenario_rotate_app),
    ("rotate_worker", "rotate the worker's Redis password while jobs run: none lost", scenario_rotate_worker),
    ("secrets", "no password in the logs, the load output, /redis, /metrics, ps", scenario_secrets),
]


MAIN_FIGURES = ("requests", "failures", "broken_sessions", "by_status", "rps", "p50_ms", "p99_ms",
                "max_ms", "served_by")


def verdict(passed, failed):
    """A run's last lines, each failed test then "N passed, M failed"; its exit status."""
    for t in failed:
        print(f"FAILED: {t}")
    print(f"{len(passed)} passed, {len(failed)} failed")
    return 1 if failed else 0


def print_figures():
    print("\n===== measured figures (scaleout load unless named probe_*) =====")
    for name, f in FIGURES:
        print(f"-- {name}")
        for k in MAIN_FIGURES:
            if k in f:
                print(f"   {k:<30} {f[k]}")
        for k, v in f.items():
            if k in MAIN_FIGURES or k in ("rc", "first_ms", "broken_examples_all") or (
                    k == "broken_examples" and not v):
                continue
            print(f"   {k:<30} {v}")
    print("==================================================================\n")


def main():
    for tool in ("traefik", "redis-server", "curl"):
        if not shutil.which(tool):
            print(f"e2e: {tool} not on PATH", file=sys.stderr)
            return 2
    if not os.access(BIN, os.X_OK):
        print(f"e2e: {BIN} missing: cargo build --release", file=sys.stderr)
        return 2
    only = set(filter(None, os.environ.get("E2E_ONLY", "").split(",")))
    stack = Stack()
    passed, failed = [], []

    def on_signal(sig, _frame):
        raise KeyboardInterrupt(f"signal {sig}")

    signal.signal(signal.SIGTERM, on_signal)
    try:
        log(f"starting the stack: 3 replicas, entry {stack.base}/, dashboard 127.0.0.1:{stack.dash}")
        t0 = time.monotonic()
        stack.up(3)
        log(f"stack up in {time.monotonic() - t0:.1f}s (state in {stack.dir})")
        for key, title, fn in SCENARIOS:
            if only and key not in only:
                continue
            if time.monotonic() > DEADLINE:
                failed.append(title)
                log(f"FAIL {title}: no time left")
                continue
            log(f"--- {title}")
            t = time.monotonic()
            try:
                fn(stack)
                passed.append(title)
                log(f"PASS {title} ({time.monotonic() - t:.1f}s)")
            except Failure as e:
                failed.append(title)
                log(f"FAIL {title}: {e}")
            except Exception:  # noqa: BLE001 - report and go on with the next scenario
                failed.append(title)
                log(f"FAIL {title}: unexpected error\n{traceback.format_exc()}")
    except (Failure, KeyboardInterrupt) as e:
        failed.append("stack")
        log(f"FAIL: {e}")
    finally:
        if failed:
            stack.keep_logs()
        log("stopping the stack")
        stack.down()
        if os.environ.get("E2E_KEEP") != "1":
            shutil.rmtree(stack.dir, ignore_errors=True)
    print_figures()
    return verdict(passed, failed)


if __name__ == "__main__":
    sys.exit(main())
