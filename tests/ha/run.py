#!/usr/bin/env python3
"""Redis high availability, end to end: real redis-server processes (a primary, 2 replicas,
3 Sentinels with down-after-milliseconds 1000), real Traefik, 3 app replicas and 1 worker,
all on loopback, started by `HA=1 deploy/local.sh up 3`.

Runs the same scenario twice, on a fresh stack each time: with REDIS_WAIT_REPLICAS=1, then
without WAIT. Under `scaleout load` and 4 probing browsers through Traefik, while 200 jobs
are enqueued around it, the primary is SIGKILLed. Measured and checked:
  - time from the kill to the first 200 (goal < 5 s), only JSON 503s in between;
  - sessions whose count went back, jobs acknowledged (202) that never end `done`:
    0 with WAIT (checked), a figure without;
  - the old primary restarts, is a replica within seconds, and answers no write with
    READONLY (its INFO errorstats), all probes 200 from 2 s after it is back;
  - one Sentinel SIGKILLed under load: every request still 200;
  - every Redis and Sentinel answers NOAUTH without a login and WRONGPASS to `default`;
    no password in the stack's logs, the load output, /redis, /metrics or `ps`.
Prints the figures and a last line `N passed, M failed`; exit 1 on any failure.

Run from the repository root: `python3 -m tests.ha.run` (`make test-ha`). Environment:
SCALEOUT_BIN (default target/release/scaleout), HA_ONLY=wait|nowait runs one of the two.
Python 3 standard library only; imports tests.e2e.run's stack and clients.
"""

import os
import sys
import tempfile
import threading
import time
import traceback

from tests.e2e import run as e2e
from tests.e2e.run import Client, Failure, Load, Probes, check, classify_breaks, log, now_ms, summary, wait_for

JOBS = 200
FIGURES = []  # (title, dict)


def readonly_errors(stack, port):
    """How many commands this Redis refused with READONLY since it started."""
    for line in e2e.admin_cli(stack, port, "INFO", "errorstats").splitlines():
        if line.startswith("errorstat_READONLY:count="):
            return int(line.split("=", 1)[1])
    return 0


def steady(stack):
    """3 s of load and probes while nothing happens: the load's summary, the probes' statuses."""
    probes = Probes(stack, n=4, gap=0.02)
    load = Load(stack, 3, concurrency=8)
    try:
        res = summary(load.result())
    finally:
        load.stop()
        probes.stop()
    return res, {r[2] for r in probes.requests()}


def marks(out):
    """local.sh's `key=value ...` line as a dict."""
    return dict(kv.split("=", 1) for kv in out.split() if "=" in kv)


def node_ports(stack):
    run = os.path.join(stack.env["STACK_DIR"], "run")
    return {n: int(open(os.path.join(run, f"{n}.port")).read())
            for n in ("redis", "redis-r1", "redis-r2", "sentinel-1", "sentinel-2", "sentinel-3")}


class Enqueuer:
    """Enqueues JOBS jobs, one every `gap` s, from its own browser; keeps the acknowledged
    (202) ids and counts the 503s."""

    def __init__(self, stack, gap):
        self.client = Client(stack.base)
        self.gap = gap
        self.acked, self.refused, self.other = [], 0, []
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        for i in range(JOBS):
            st, body, _ = self.client.get(f"/api/enqueue?job=ha-{i}", timeout=5)
            if st == 202 and isinstance(body, dict):
                self.acked.append(body["id"])
            elif st == 503 and isinstance(body, dict) and "error" in body:
                self.refused += 1
            else:
                self.other.append((st, body))
            time.sleep(self.gap)

    def join(self):
        self.thread.join(60)


def not_replicated(stack):
    """scaleout_redis_writes_not_replicated_total, summed over the replicas."""
    total = 0
    for addr, *_ in stack.replicas().values():
        st, body, _ = Client(f"http://{addr}").get("/metrics")
        for line in (body if isinstance(body, str) else "").splitlines():
            if line.startswith("scaleout_redis_writes_not_replicated_total "):
                total += int(float(line.split()[1]))
    return total


def failover(stack, wait):
    """The whole scenario on one stack; returns the figures."""
    ports = node_ports(stack)
    logins = e2e.check_logins_refused(stack)
    c = Client(stack.base)
    st, tier, _ = c.get("/api/redis")
    check(st == 200 and tier.get("mode") == "sentinel" and tier.get("primary"), f"/api/redis: {st} {tier!r}")
    check(len(tier["replicas"]) == 2 and all(s["up"] for s in tier["sentinels"]),
          f"/api/redis before the kill: {tier!r}")
    old_primary = int(tier["primary"].rsplit(":", 1)[1])

    load = Load(stack, 12, concurrency=8)
    probes = Probes(stack, n=4, gap=0.02)
    jobs = Enqueuer(stack, gap=0.04)  # 200 jobs over ~8 s: ~2 s before the kill, ~6 s after
    try:
        time.sleep(2.0)
        killed = marks(stack.cmd("kill-node", "primary"))
        check(killed["node"] == "redis", f"the first primary is node 'redis', killed {killed!r}")
        t_kill = int(killed["killed_ms"])
        time.sleep(7.0)
        jobs.join()
        res = summary(load.result())
    finally:
        load.stop()
        probes.stop()

    reqs = probes.requests()
    after = [r for r in reqs if r[0] >= t_kill]
    first_200 = next((r[1] - t_kill for r in sorted(after, key=lambda r: r[1]) if r[2] == 200), None)
    bad = [(r[0] - t_kill, r[2], r[3]) for r in reqs if r[2] not in (200, 503) or (r[2] == 503 and not r[3])]
    n503 = sum(1 for r in reqs if r[2] == 503)
    back, jumps = probes.session_problems()
    lost, over, unknown = classify_breaks(res)

    # Every acknowledged job ends done (or is lost).
    def settled():
        states = {}
        for jid in jobs.acked:
            st, body, _ = c.get(f"/api/jobs/{jid}")
            states[jid] = body.get("status") if st == 200 and isinstance(body, dict) else f"http {st}"
        pending = [s for s in states.values() if s in ("queued", "processing", "failed")]
        return None if pending else states

    states = wait_for("the acknowledged jobs to settle", settled, 60, 0.5)
    jobs_lost = sum(1 for s in states.values() if s != "done")
    st, tier, _ = c.get("/api/redis")
    check(st == 200 and tier.get("primary") and int(tier["primary"].rsplit(":", 1)[1]) != old_primary,
          f"/api/redis after the failover: {tier!r}")
    new_primary = tier["primary"]
    last_failover = tier.get("last_failover_ms")

    # The old primary comes back: a replica, and no write reaches it.
    t_back = int(marks(stack.cmd("start-node", "redis"))["started_ms"])
    wait_for("the old primary to be a replica", lambda: e2e.admin_cli(stack, ports["redis"], "ROLE").startswith("slave"), 10)
    role_ms = now_ms() - t_back
    time.sleep(max(0.0, 2.0 - role_ms / 1000))
    res_back, back_statuses = steady(stack)
    readonly = readonly_errors(stack, ports["redis"])

    # One Sentinel down: no effect.
    stack.cmd("kill-node", "sentinel-1")
    res_sentinel, sentinel_statuses = steady(stack)
    stack.cmd("start-node", "sentinel-1")
    e2e.snapshot_ps()
    texts_searched = e2e.check_no_password(stack)

    figures = {
        "kill_to_first_200_ms": first_200,
        "probe_requests": len(reqs), "probe_503": n503,
        "load": {k: res[k] for k in ("requests", "by_status", "broken_sessions", "p99_ms", "max_ms")},
        "sessions_went_back": lost + unknown + len(back),
        "session_count_jumped": over + jumps,
        "jobs_enqueue_acknowledged": len(jobs.acked), "jobs_enqueue_503": jobs.refused,
        "jobs_acknowledged_not_done": jobs_lost,
        "jobs_not_done_states": sorted({s for s in states.values() if s != "done"}),
        "writes_not_replicated_503": not_replicated(stack),
        "new_primary": new_primary, "last_failover_ms_after_kill": (last_failover or 0) - t_kill,
        "old_primary_replica_after_ms": role_ms,
        "old_primary_readonly_answers": readonly,
        "after_return": {"statuses": sorted(back_statuses), "load": res_back["by_status"]},
        "one_sentinel_down": {"statuses": sorted(sentinel_statuses), "load": res_sentinel["by_status"]},
        "logins_refused": {n: f"{v['unauthenticated']} / {v['default']}" for n, v in logins.items()},
        "texts_searched_for_passwords": texts_searched,
    }
    FIGURES.append((f"SIGKILL the primary, REDIS_WAIT_REPLICAS={wait}", figures))

    check(first_200 is not None and first_200 < 5000, f"kill to first 200: {first_200} ms (goal < 5000)")
    check(not bad, f"non-JSON-503 failures around the failover: {bad[:5]}")
    check(set(res["by_status"]) <= {"200", "503"}, f"load saw {res['by_status']}")
    check(not jobs.other, f"enqueue answers other than 202/JSON 503: {jobs.other[:5]}")
    check(readonly == 0, f"the returned old primary answered {readonly} writes with READONLY")
    check(back_statuses == {200} and set(res_back["by_status"]) == {"200"},
          f"after the old primary returned: {back_statuses} {res_back['by_status']}")
    check(sentinel_statuses == {200} and set(res_sentinel["by_status"]) == {"200"},
          f"with one Sentinel down: {sentinel_statuses} {res_sentinel['by_status']}")
    if wait:
        check(lost + unknown + len(back) == 0, f"session counts went back: {res['broken_examples']} {back[:5]}")
        check(jobs_lost == 0, f"{jobs_lost} acknowledged jobs not done: "
              f"{[(j, s) for j, s in states.items() if s != 'done'][:5]}")
        check(len(jobs.acked) > 0, "no job acknowledged")


def scenario(wait):
    def go():
        web_root = None
        if not os.path.isdir(os.path.join(e2e.ROOT, "frontend", "dist")):
            web_root = tempfile.mkdtemp(prefix="scaleout-ha-www-")
            with open(os.path.join(web_root, "index.html"), "w") as f:
                f.write("<!doctype html><title>scaleout</title>\n")
        stack = e2e.Stack()
        stack.env.update(HA="1", JOB_WORK_MS="10", REDIS_WAIT_REPLICAS=str(wait))
        if web_root:
            stack.env["WEB_ROOT"] = web_root
        ok = False
        try:
            t0 = time.monotonic()
            stack.up(3)
            log(f"HA stack up in {time.monotonic() - t0:.1f}s (REDIS_WAIT_REPLICAS={wait})")
            failover(stack, wait)
            ok = True
        finally:
            if not ok:
                stack.keep_logs()
            stack.down()
            if os.environ.get("E2E_KEEP") != "1":
                import shutil
                shutil.rmtree(stack.dir, ignore_errors=True)
                if web_root:
                    shutil.rmtree(web_root, ignore_errors=True)
    return go


SCENARIOS = [
    ("wait", "failover with REDIS_WAIT_REPLICAS=1", scenario(1)),
    ("nowait", "failover without WAIT", scenario(0)),
]


def main():
    only = set(filter(None, os.environ.get("HA_ONLY", "").split(",")))
    if not os.access(e2e.BIN, os.X_OK):
        print(f"ha: {e2e.BIN} missing: cargo build --release", file=sys.stderr)
        return 2
    passed, failed = [], []
    for key, title, fn in SCENARIOS:
        if only and key not in only:
            continue
        log(f"--- {title}")
        t = time.monotonic()
        try:
            fn()
            passed.append(title)
            log(f"PASS {title} ({time.monotonic() - t:.1f}s)")
        except Failure as e:
            failed.append(title)
            log(f"FAIL {title}: {e}")
        except Exception:  # noqa: BLE001 - report and go on
            failed.append(title)
            log(f"FAIL {title}: unexpected error\n{traceback.format_exc()}")
    print("\n===== measured figures =====")
    for name, f in FIGURES:
        print(f"-- {name}")
        for k, v in f.items():
            print(f"   {k:<32} {v}")
    print("============================\n")
    return e2e.verdict(passed, failed)


if __name__ == "__main__":
    sys.exit(main())
