#!/usr/bin/env python3
"""The chart's app, worker, web and Redis pods, run for real by `podman kube play` on
loopback (tests/k8s/run.sh runs this under `unshare -n`, loopback only), then the seed
flows against the app pod, and `podman kube down` leaving nothing behind.

The render is tests/k8s/podman-values.yaml (plus $PODMAN_VALUES, more values files
separated by spaces) with --skip-tests. podman 4.3 differs from a cluster in three ways,
adapted here and nowhere else:
  - it plays no StatefulSet: Redis's becomes what the StatefulSet controller makes of
    ordinal 0, a Pod <name>-0 with a PersistentVolumeClaim <claim>-<name>-0;
  - with hostNetwork it refuses container ports ("PortMappings can only be used with
    Bridge"): they are dropped (on a cluster they only document the port there);
  - it runs no readiness probe and, without systemd, no liveness probe: this script runs
    every probe command of every container itself, with `podman exec`.
Service, NetworkPolicy, PDB, ServiceAccount objects mean nothing to podman and are left
out. Podman keeps its storage in $PODMAN_BASE, emptied at the end.

Closing line: 'N passed, N failed'.
"""

import copy
import http.cookiejar
import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import yaml

from tests.k8s import render_checks
from tests.k8s.report import Report

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy/helm/scaleout"
TOOLS = Path(os.environ["K8S_TOOLS"])
IMAGES = ["scaleout-app:latest", "scaleout-worker:latest", "scaleout-web:latest", "redis:8.2-alpine"]
PLAYED = ("Secret", "ConfigMap", "PersistentVolumeClaim", "Pod", "Deployment")
report = Report()


class Podman:
    def __init__(self, base):
        self.base = base
        conf = base / "containers.conf"
        conf.write_text(
            "[containers]\n"
            'default_ulimits = ["nofile=10000:10000", "nproc=10000:10000"]\n'
            "[engine]\n"
            'cgroup_manager = "cgroupfs"\n'
            'events_logger = "file"\n'
        )
        (base / "tmp").mkdir()
        self.env = {**os.environ, "CONTAINERS_CONF": str(conf)}
        self.args = ["podman", "--root", str(base / "root"), "--runroot", str(base / "run"),
                     "--tmpdir", str(base / "tmp")]

    def __call__(self, *args, check=True, stdin=None, timeout=120):
        p = subprocess.run(self.args + list(args), env=self.env, stdin=stdin, capture_output=True,
                           text=stdin is None, timeout=timeout)
        out = p.stdout if isinstance(p.stdout, str) else p.stdout.decode()
        err = p.stderr if isinstance(p.stderr, str) else p.stderr.decode()
        # Without systemd podman cannot add healthcheck timers; it says so on every start.
        err = "\n".join(l for l in err.splitlines() if "systemd" not in l)
        if check and p.returncode != 0:
            raise RuntimeError(f"podman {' '.join(args)}: exit {p.returncode}: {err.strip()[-1500:]}")
        return p.returncode, out, err

    def names(self, *what):
        field = "{{.Names}}" if what[0] == "ps" else "{{.Name}}"
        _, out, _ = self(*what, "--format", field, check=False)
        return sorted(l for l in out.split() if l)


def render():
    values = [ROOT / "tests/k8s/podman-values.yaml"] + [Path(v) for v in os.environ.get("PODMAN_VALUES", "").split()]
    cmd = [str(TOOLS / "helm"), "template", "scaleout", str(CHART), "-n", "scaleout", "--skip-tests"]
    for v in values:
        cmd += ["-f", str(v)]
    p = subprocess.run(cmd, capture_output=True, text=True, check=True, env={**os.environ, "KUBECONFIG": "/dev/null"})
    return [d for d in yaml.safe_load_all(p.stdout) if d], values


def for_podman(docs):
    """The played objects, in the order podman needs them (Redis first)."""
    docs = copy.deepcopy(docs)
    out = []
    for d in docs:
        if d["kind"] in ("Secret", "ConfigMap", "Deployment"):
            out.append(d)
        elif d["kind"] == "StatefulSet":
            name = d["metadata"]["name"] + "-0"
            tpl = d["spec"]["template"]
            spec = dict(tpl["spec"])
            spec["volumes"] = list(spec.get("volumes") or [])
            for claim in d["spec"].get("volumeClaimTemplates") or []:
                pvc = f"{claim['metadata']['name']}-{name}"
                out.append({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                            "metadata": {"name": pvc, "namespace": d["metadata"]["namespace"]},
                            "spec": claim["spec"]})
                spec["volumes"].append({"name": claim["metadata"]["name"], "persistentVolumeClaim": {"claimName": pvc}})
            out.append({"apiVersion": "v1", "kind": "Pod",
                        "metadata": {"name": name, "namespace": d["metadata"]["namespace"],
                                     "labels": tpl["metadata"]["labels"]},
                        "spec": spec})
    out.sort(key=lambda d: PLAYED.index(d["kind"]))
    for d in out:
        spec = pod_spec(d)
        if spec and spec.get("hostNetwork"):
            for c in spec["containers"]:
                c.pop("ports", None)
    return out


def pod_spec(d):
    return d["spec"]["template"]["spec"] if d["kind"] == "Deployment" else d["spec"] if d["kind"] == "Pod" else None


def env_of(c):
    return {e["name"]: e.get("value") for e in c.get("env") or []}


def get(url, jar=None, timeout=3):
    """(status, parsed JSON body or text) of a GET."""
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar)) if jar is not None else urllib.request.build_opener()
    try:
        with opener.open(url, timeout=timeout) as r:
            body = r.read().decode()
            status = r.status
    except urllib.error.HTTPError as e:
        body, status = e.read().decode(), e.code
    except (urllib.error.URLError, OSError) as e:  # no answer: a failed check, not a crash
        return None, {"error": str(e)}
    try:
        return status, json.loads(body)
    except ValueError:
        return status, {"text": body}


def wait_for(what, probe, limit=30.0):
    """Polls probe() (true when done) every 0.2 s for at most limit seconds."""
    end = time.monotonic() + limit
    while time.monotonic() < end:
        if probe():
            return None
        time.sleep(0.2)
    return f"{what}: not within {limit:.0f} s"


def main():
    docs, values = render()
    print(f"render: {' '.join(str(v.relative_to(ROOT)) if v.is_relative_to(ROOT) else str(v) for v in values)}")
    report("the podman render passes render_checks too", render_checks.check(docs))
    # the port each container listens on, before for_podman drops the container ports
    ports = {}
    for d in docs:
        if d["kind"] in ("Deployment", "StatefulSet"):
            name = d["metadata"]["name"] + ("-0" if d["kind"] == "StatefulSet" else "")
            for c in d["spec"]["template"]["spec"]["containers"]:
                ports[(name, c["name"])] = (c.get("ports") or [{}])[0].get("containerPort")
    play = for_podman(docs)
    deploy = {d["metadata"]["name"]: d for d in play if d["kind"] == "Deployment"}
    app = next(d for n, d in deploy.items() if n.endswith("-app"))
    web = next(d for n, d in deploy.items() if n.endswith("-web"))
    worker = next(d for n, d in deploy.items() if n.endswith("-worker"))
    app_c = pod_spec(app)["containers"][0]
    web_c = pod_spec(web)["containers"][0]
    base_url = f"http://{env_of(app_c)['LISTEN_ADDR']}"
    web_url = f"http://{env_of(web_c)['LISTEN_ADDR']}"
    auth = any(d["kind"] == "Secret" for d in play)
    print(f"pods: {', '.join(d['metadata']['name'] for d in play if d['kind'] in ('Pod', 'Deployment'))}; Redis auth {'on' if auth else 'off'}")

    base = Path(os.environ["PODMAN_BASE"])  # an empty directory of run.sh's
    pm = Podman(base)
    play_file = base / "play.yaml"
    play_file.write_text(yaml.safe_dump_all(play, sort_keys=False))
    try:
        saver = subprocess.Popen(["docker", "save", *IMAGES], stdout=subprocess.PIPE)
        pm("load", stdin=saver.stdout)
        report(f"images loaded from Docker: {', '.join(IMAGES)}", [] if saver.wait() == 0 else ["docker save failed"])

        t0 = time.monotonic()
        pm("kube", "play", str(play_file))
        fail = wait_for("app /readyz 200", lambda: get(base_url + "/readyz")[0] == 200)
        fail = fail or wait_for("web /healthz 200", lambda: get(web_url + "/healthz")[0] == 200)
        pods = pm.names("pod", "ps")
        containers = pm.names("ps")
        logs = []
        if fail:  # what each container said last
            for c in pm.names("ps", "-a"):
                _, out, err = pm("logs", "--tail", "3", c, check=False)
                logs += [f"{c}: {line}" for line in (out + err).splitlines()]
        report(f"kube play: app ready (/readyz 200) and web healthy in {time.monotonic() - t0:.1f} s", [fail, *logs] if fail else [])

        # every probe of every played container, run in it; and again against a port
        # nothing listens on, where it must fail
        fails, ran = [], 0
        for d in play:
            spec = pod_spec(d)
            if not spec:
                continue
            pod = next((p for p in pods if p == d["metadata"]["name"] or p.startswith(d["metadata"]["name"] + "-pod")), None)
            for c in spec["containers"]:
                ctr = f"{pod}-{c['name']}"
                if ctr not in containers:
                    fails.append(f"{ctr} is not running (running: {containers})")
                    continue
                for kind in ("livenessProbe", "readinessProbe"):
                    if c.get(kind):
                        ran += 1
                        cmd = c[kind]["exec"]["command"]
                        code, out, err = pm("exec", ctr, *cmd, check=False)
                        if code != 0:
                            fails.append(f"{ctr} {kind} {cmd}: exit {code} {out.strip()} {err.strip()}")
                        port = ports[(d["metadata"]["name"], c["name"])]
                        elsewhere = [re.sub(rf"(?<![0-9]){port}(?![0-9])", "1", a) for a in cmd]
                        if elsewhere == cmd or pm("exec", ctr, *elsewhere, check=False)[0] == 0:
                            fails.append(f"{ctr} {kind} passes on port 1 too: {elsewhere}")
        report(f"{ran} probes, run in their containers, pass (and fail against port 1)", fails if ran else ["no probe ran"])
        running = subprocess.run(["pgrep", "-f", f"{base}/(root|run)"], capture_output=True, text=True).stdout.split()
        report(f"while up, {len(running)} processes (conmon) name the storage: the 'nothing left' check sees them",
               [] if running else ["pgrep finds none"])

        if auth:
            redis = next(c for c in containers if "-redis-0-" in c)
            port = next(p for (pod, _), p in ports.items() if pod.endswith("-redis-0"))
            _, anon, _ = pm("exec", redis, "redis-cli", "-p", str(port), "ping", check=False)
            # redis-cli reports the failed AUTH on stderr and goes on unauthenticated
            _, out, err = pm("exec", redis, "redis-cli", "-p", str(port), "--user", "app", "--pass", "wrong", "--no-auth-warning", "ping", check=False)
            wrong = out + err
            fails = []
            if "NOAUTH" not in anon:
                fails.append(f"a client without credentials got {anon.strip()!r}, not NOAUTH")
            if "WRONGPASS" not in wrong:
                fails.append(f"user app with a wrong password got {wrong.strip()!r}, not WRONGPASS")
            report("Redis refuses a client without credentials (NOAUTH) and a wrong password (WRONGPASS)", fails)

        # the seed flows, against the app pod
        jar = http.cookiejar.CookieJar()
        s1, b1 = get(base_url + "/", jar)
        s2, b2 = get(base_url + "/", jar)
        fails = []
        if (s1, s2) != (200, 200) or b1.get("session_count") != 1 or b2.get("session_count") != 2:
            fails.append(f"GET / twice: {s1} {b1}, {s2} {b2}")
        elif not b2.get("served_by"):
            fails.append(f"no served_by: {b2}")
        report(f"GET / twice with a cookie jar: session_count 1, 2; served_by {b2.get('served_by') if isinstance(b2, dict) else '?'}", fails)

        s, b = get(base_url + "/set?key=k8s-check&value=from-podman")
        g, v = get(base_url + "/get?key=k8s-check")
        report("/set then /get of a key", [] if (s, g) == (200, 200) and v.get("value") == "from-podman" else [f"/set {s} {b}; /get {g} {v}"])

        s, b = get(base_url + "/enqueue?job=k8s-check")
        fails = [] if s == 202 and b.get("id") else [f"/enqueue: {s} {b}"]
        job = {}
        if not fails:
            def done():
                nonlocal job
                _, job = get(base_url + f"/jobs/{b['id']}")
                return job.get("status") == "done"
            t0 = time.monotonic()
            fail = wait_for(f"job {b['id']} done", done)
            fails = [f"{fail}: {job}"] if fail else []
            if not fails and not str(job.get("worker", "")).startswith(worker["metadata"]["name"]):
                fails.append(f"done by {job.get('worker')}, not the worker pod {worker['metadata']['name']}-*")
        report(f"a job enqueued on the app pod is done by the worker pod ({job.get('worker')}, {time.monotonic() - t0:.1f} s)" if job else "a job enqueued on the app pod is done by the worker pod", fails)
    finally:
        # kube down, then what it leaves by design: the PVC's volume (a cluster keeps a
        # StatefulSet's claims too), and the volumes and secrets podman made of the
        # ConfigMap and the Secret. Then nothing may be left.
        code, out, err = pm("kube", "down", str(play_file), check=False, timeout=60)
        report("podman kube down", [] if code == 0 else [err.strip()])
        left = {"pods": pm.names("pod", "ps", "-a"), "containers": pm.names("ps", "-a")}
        kept = sorted(d["metadata"]["name"] for d in play if d["kind"] in ("PersistentVolumeClaim", "ConfigMap", "Secret"))
        for v in set(pm.names("volume", "ls")) & set(kept):
            pm("volume", "rm", v, check=False)
        _, secrets, _ = pm("secret", "ls", "--format", "{{.Name}}", check=False)
        for name in set(secrets.split()) & set(kept):
            pm("secret", "rm", name, check=False)
        left["volumes"] = pm.names("volume", "ls")
        _, secrets, _ = pm("secret", "ls", "--format", "{{.Name}}", check=False)
        left["secrets"] = secrets.split()
        # conmon and the containers' processes name the storage directories
        procs = subprocess.run(["pgrep", "-f", f"{base}/(root|run)"], capture_output=True, text=True).stdout.split()
        left["processes"] = procs
        report(f"nothing left: no pod, container, volume, secret, process (after removing what kube down keeps: {', '.join(kept)})",
               [f"{k}: {v}" for k, v in left.items() if v])
        pm("system", "reset", "--force", check=False)
        for p in base.iterdir():
            shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink()
    return report.close("podman run")


if __name__ == "__main__":
    sys.exit(main())
