"""Checks of the chart's rendered manifests against each other and against the app's own
sources: selectors, probes, ports, drain and grace period, resources, settings.

check(docs) returns the list of failures (empty: all hold). MUTATIONS breaks a good render
once per check, so the self-test shows that every check can fail.
"""

import copy
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _read(rel):
    return (ROOT / rel).read_text()


# ---- facts from the app's sources (their one home)
def app_routes():
    """The app's routes (src/routes/mod.rs) and the web server's (src/web.rs)."""
    app = set(re.findall(r'resource\(\s*"([^"{}]+)"', _read("src/routes/mod.rs")))
    web = set(re.findall(r'web::resource\("([^"]+)"\)', _read("src/web.rs")))
    assert "/readyz" in app and "/healthz" in web, "route lists not found in the sources"
    return {"app": app, "web": web}


def settings():
    """Every variable config::VARS names (src/config.rs)."""
    names = set(re.findall(r'var\(\s*"([A-Z0-9_]+)"', _read("src/config.rs")))
    assert "LISTEN_ADDR" in names and "DRAIN_SECS" in names, "config::VARS not found"
    return names


def finish_secs():
    """After the drain, the app waits FINISH_SECS + 1 for in-flight requests (startup.rs)."""
    m = re.search(r"const FINISH_SECS: u16 = (\d+);", _read("src/startup.rs"))
    assert m, "FINISH_SECS not found in src/startup.rs"
    assert "u64::from(FINISH_SECS) + 1" in _read("src/startup.rs"), "the finish wait changed"
    return int(m.group(1)) + 1


def cargo_version():
    return re.search(r'^version = "([^"]+)"', _read("Cargo.toml"), re.M).group(1)


ROUTES = app_routes()
SETTINGS = settings()
FINISH = finish_secs()
# scaleout containers: image name -> the subcommand it must run
IMAGES = {"scaleout-app": "app", "scaleout-worker": "worker", "scaleout-web": "web"}


# ---- helpers over the rendered objects
def workloads(docs):
    for d in docs:
        if d["kind"] in ("Deployment", "StatefulSet"):
            yield d, d["spec"]["template"]
        elif d["kind"] == "Pod":
            yield d, d


def matches(selector, labels):
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for e in selector.get("matchExpressions") or []:
        val = labels.get(e["key"])
        op = e["operator"]
        if op == "In" and val not in e["values"]:
            return False
        if op == "NotIn" and val in e["values"]:
            return False
        if op == "Exists" and val is None:
            return False
        if op == "DoesNotExist" and val is not None:
            return False
    return True


def env_of(c):
    return {e["name"]: e.get("value") for e in c.get("env") or []}


def scaleout_containers(docs):
    """(workload, container, subcommand) for every container running a scaleout image."""
    for w, tpl in workloads(docs):
        for c in tpl["spec"]["containers"]:
            image = c["image"].rsplit("/", 1)[-1].split(":")[0]
            if image in IMAGES:
                yield w, c, IMAGES[image]


def port_of(addr):
    return int(str(addr).rsplit(":", 1)[1])


def probe_url(probe):
    cmd = probe["exec"]["command"]
    if cmd[:2] != ["/bin/scaleout", "healthcheck"] or len(cmd) != 3:
        return None
    m = re.fullmatch(r"http://127\.0\.0\.1:(\d+)(/.*)", cmd[2])
    return (int(m.group(1)), m.group(2)) if m else None


# ---- the checks: each returns a list of failures
def check_selectors(docs):
    out = []
    pods = [(w, tpl["metadata"].get("labels") or {}) for w, tpl in workloads(docs)]
    for w, tpl in workloads(docs):
        if w["kind"] == "Pod":
            continue
        labels = tpl["metadata"].get("labels") or {}
        if not matches(w["spec"]["selector"], labels):
            out.append(f"{w['kind']} {w['metadata']['name']}: selector does not match its pod labels")
        for t in tpl["spec"].get("topologySpreadConstraints") or []:
            if not matches(t["labelSelector"], labels):
                out.append(f"{w['metadata']['name']}: topology spread selects other pods")
    for d in docs:
        name, kind = d["metadata"]["name"], d["kind"]
        if kind == "Service":
            hits = [w for w, labels in pods if matches({"matchLabels": d["spec"]["selector"]}, labels)]
            if len(hits) != 1:
                out.append(f"Service {name} selects {len(hits)} workloads")
                continue
            (w,) = hits
            tpl = w if w["kind"] == "Pod" else w["spec"]["template"]
            ports = {p.get("name"): p["containerPort"] for c in tpl["spec"]["containers"] for p in c.get("ports") or []}
            for p in d["spec"]["ports"]:
                if p["targetPort"] not in ports:
                    out.append(f"Service {name}: targetPort {p['targetPort']} is no container port of {w['metadata']['name']}")
        elif kind == "PodDisruptionBudget":
            if not any(matches(d["spec"]["selector"], labels) for w, labels in pods if w["kind"] != "Pod"):
                out.append(f"PDB {name} selects no workload")
        elif kind == "NetworkPolicy":
            if not any(matches(d["spec"]["podSelector"], labels) for _, labels in pods):
                out.append(f"NetworkPolicy {name} selects no pod")
        elif kind == "HorizontalPodAutoscaler":
            ref = d["spec"]["scaleTargetRef"]
            if not any(x["kind"] == ref["kind"] and x["metadata"]["name"] == ref["name"] for x in docs):
                out.append(f"HPA {name} scales {ref['kind']} {ref['name']}, which is not rendered")
            target = [x for x in docs if x["kind"] == ref["kind"] and x["metadata"]["name"] == ref["name"]]
            if target and "replicas" in target[0]["spec"]:
                out.append(f"HPA {name}: {ref['name']} also sets replicas (each apply would reset the HPA)")
        elif kind == "StatefulSet":
            svc = [x for x in docs if x["kind"] == "Service" and x["metadata"]["name"] == d["spec"]["serviceName"]]
            if not svc or svc[0]["spec"].get("clusterIP") != "None":
                out.append(f"StatefulSet {name}: serviceName {d['spec']['serviceName']} is no headless Service")
        elif kind == "Ingress":
            for rule in d["spec"]["rules"]:
                for p in rule["http"]["paths"]:
                    b = p["backend"]["service"]
                    svc = [x for x in docs if x["kind"] == "Service" and x["metadata"]["name"] == b["name"]]
                    if not svc or b["port"]["name"] not in {q["name"] for q in svc[0]["spec"]["ports"]}:
                        out.append(f"Ingress {name}: backend {b['name']}:{b['port']['name']} is no Service port")
    return out


def check_probes(docs):
    """Probes of scaleout containers: liveness /healthz, readiness a real route of that
    server (app: /readyz), on the port it listens on."""
    out = []
    for w, c, sub in scaleout_containers(docs):
        name = f"{w['metadata']['name']}/{c['name']}"
        if sub == "worker" or w["kind"] == "Pod":
            continue
        for kind, want in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz" if sub == "app" else "/healthz")):
            probe = c.get(kind)
            url = probe_url(probe) if probe else None
            if not url:
                out.append(f"{name}: no {kind} running scaleout healthcheck")
                continue
            port, path = url
            if path not in ROUTES[sub]:
                out.append(f"{name}: {kind} path {path} is no route of `scaleout {sub}`")
            if path != want:
                out.append(f"{name}: {kind} checks {path}, not {want}")
            if port != port_of(env_of(c).get("LISTEN_ADDR", "0.0.0.0:8080")):
                out.append(f"{name}: {kind} port {port} is not the LISTEN_ADDR port")
    return out


def check_ports(docs):
    out = []
    for w, c, sub in scaleout_containers(docs):
        if sub == "worker" or w["kind"] == "Pod":
            continue
        listen = port_of(env_of(c).get("LISTEN_ADDR", "0.0.0.0:8080"))
        ports = [p["containerPort"] for p in c.get("ports") or []]
        if ports != [listen]:
            out.append(f"{w['metadata']['name']}: container ports {ports}, LISTEN_ADDR port {listen}")
        ann = w["spec"]["template"]["metadata"].get("annotations") or {}
        if sub == "app" and ann.get("prometheus.io/port") != str(listen):
            out.append(f"{w['metadata']['name']}: prometheus.io/port is not {listen}")
    return out


def check_drain(docs):
    """A stopping app/web pod drains DRAIN_SECS, then finishes in-flight requests for
    FINISH s: the grace period covers both (no SIGKILL mid-drain), and liveness cannot
    kill a draining pod (it answers 503 on /healthz throughout)."""
    out = []
    for w, c, sub in scaleout_containers(docs):
        if sub == "worker" or w["kind"] == "Pod":
            continue
        spec = w["spec"]["template"]["spec"]
        drain = int(env_of(c).get("DRAIN_SECS", "5"))
        need = drain + FINISH
        grace = spec.get("terminationGracePeriodSeconds", 30)
        if grace <= need:
            out.append(f"{w['metadata']['name']}: grace {grace}s <= drain {drain}s + finish {FINISH}s")
        live = c["livenessProbe"]
        if live["periodSeconds"] * live["failureThreshold"] <= need:
            out.append(f"{w['metadata']['name']}: liveness fails after {live['periodSeconds'] * live['failureThreshold']}s, inside the {need}s drain")
        if c.get("lifecycle", {}).get("preStop"):
            out.append(f"{w['metadata']['name']}: a preStop hook delays SIGTERM, so the drain starts late")
    return out


def check_resources(docs):
    out = []
    for w, tpl in workloads(docs):
        for c in tpl["spec"]["containers"] + (tpl["spec"].get("initContainers") or []):
            r = c.get("resources") or {}
            for part in ("requests", "limits"):
                for what in ("cpu", "memory"):
                    if what not in (r.get(part) or {}):
                        out.append(f"{w['metadata']['name']}/{c['name']}: no {part}.{what}")
    return out


def check_settings(docs):
    """scaleout containers: every variable is one config::VARS knows (a typo is silently
    ignored by the app), the subcommand matches the image, and no secret is an env value."""
    out = []
    for w, c, sub in scaleout_containers(docs):
        name = f"{w['metadata']['name']}/{c['name']}"
        for e in c.get("env") or []:
            if e["name"] not in SETTINGS:
                out.append(f"{name}: {e['name']} is no setting of scaleout (config::VARS)")
            if "secretKeyRef" in (e.get("valueFrom") or {}):
                out.append(f"{name}: {e['name']} takes a secret as an env value (files only)")
        cmd = c.get("command") or []
        if w["kind"] != "Pod" and cmd != ["/bin/scaleout", sub]:
            out.append(f"{name}: runs {cmd}, not /bin/scaleout {sub}")
        mounts = {m["mountPath"] for m in c.get("volumeMounts") or []}
        for k, v in env_of(c).items():
            if k.endswith("_FILE") and not any(str(v).startswith(m + "/") for m in mounts):
                out.append(f"{name}: {k}={v} is on no mounted volume")
    return out


def check_redis_probes(docs):
    """redis-cli exits 0 even on an error reply (NOAUTH, LOADING): a probe running it must
    compare its answer, or it can never fail."""
    out = []
    for w, tpl in workloads(docs):
        for c in tpl["spec"]["containers"]:
            for kind in ("livenessProbe", "readinessProbe", "startupProbe"):
                cmd = (c.get(kind) or {}).get("exec", {}).get("command") or []
                text = " ".join(cmd)
                if "redis-cli" in text and not (cmd[:2] == ["sh", "-c"] and re.search(r'" = (PONG|OK) \]', text)):
                    out.append(f"{w['metadata']['name']}/{c['name']}: {kind} takes redis-cli's exit status: {cmd}")
    return out


def check_version(docs):
    out = []
    for d in docs:
        v = (d["metadata"].get("labels") or {}).get("app.kubernetes.io/version")
        if v is not None and v != cargo_version():
            out.append(f"{d['kind']} {d['metadata']['name']}: version label {v}, Cargo.toml {cargo_version()}")
    return out


def check_waivers(docs):
    """Every checkov skip names a check and gives a reason."""
    out = []
    for d in docs:
        for k, v in (d["metadata"].get("annotations") or {}).items():
            if k.startswith("checkov.io/skip") and not re.fullmatch(r"CKV2?_K8S_\d+=.{20,}", v):
                out.append(f"{d['kind']} {d['metadata']['name']}: {k} has no reason")
    return out


CHECKS = [check_selectors, check_probes, check_ports, check_drain, check_resources,
          check_settings, check_redis_probes, check_version, check_waivers]


def check(docs):
    return [f"{f.__name__}: {msg}" for f in CHECKS for msg in f(docs)]


# ---- one deliberate break per check, for the self-test
def _find(docs, kind, suffix):
    return next(d for d in docs if d["kind"] == kind and d["metadata"]["name"].endswith(suffix))


def _app(docs):
    return _find(docs, "Deployment", "-app")["spec"]["template"]["spec"]["containers"][0]


def _set_env(c, name, value):
    for e in c["env"]:
        if e["name"] == name:
            e["value"] = value


def _m_selectors(docs):
    _find(docs, "Service", "-web")["spec"]["selector"]["app.kubernetes.io/component"] = "wbe"


def _m_probes(docs):
    _app(docs)["readinessProbe"]["exec"]["command"][2] = "http://127.0.0.1:8080/ready"


def _m_ports(docs):
    _app(docs)["ports"][0]["containerPort"] = 8081


def _m_drain(docs):
    _set_env(_app(docs), "DRAIN_SECS", "30")


def _m_resources(docs):
    del _find(docs, "Deployment", "-worker")["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]


def _m_settings(docs):
    _app(docs)["env"].append({"name": "REDIS_PASWORD_FILE", "value": "/run/secrets/x"})


def _m_redis_probes(docs):
    c = _find(docs, "StatefulSet", "-redis")["spec"]["template"]["spec"]["containers"][0]
    c["livenessProbe"]["exec"]["command"] = ["redis-cli", "-p", "6379", "ping"]


def _m_version(docs):
    _find(docs, "Service", "-app")["metadata"]["labels"]["app.kubernetes.io/version"] = "9.9.9"


def _m_waivers(docs):
    _find(docs, "Deployment", "-app")["metadata"]["annotations"]["checkov.io/skip9"] = "CKV_K8S_20"


MUTATIONS = {check_selectors: _m_selectors, check_probes: _m_probes, check_ports: _m_ports,
             check_drain: _m_drain, check_resources: _m_resources, check_settings: _m_settings,
             check_redis_probes: _m_redis_probes, check_version: _m_version, check_waivers: _m_waivers}


def self_test(docs):
    """Each check passes on docs and fails on its mutation; returns failures."""
    out = []
    assert set(MUTATIONS) == set(CHECKS)
    for f in CHECKS:
        if f(docs):
            out.append(f"{f.__name__} fails on the good render: {f(docs)}")
        broken = copy.deepcopy(docs)
        MUTATIONS[f](broken)
        if not f(broken):
            out.append(f"{f.__name__} does not catch its deliberate break")
    return out
