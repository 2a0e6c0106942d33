#!/usr/bin/env python3
"""The chart's offline checks (run by tests/k8s/run.sh under `unshare -n`: no network):

  1. helm lint --strict, for every ci/*-values.yaml and Kubernetes 1.30 and 1.37;
  2. helm template of each, for both versions;
  3. kubernetes-validate --strict on each render (the schemas of that version);
  4. checkov (--skip-download) on the renders: no failed check; the skips are annotations
     with reasons (render_checks.check_waivers);
  5. render_checks on each render, and its self-test (every check catches a break);
  6. every deliberately broken values file in tests/k8s/broken/ makes the step it names
     fail, after the steps before it passed.

Tools come from $K8S_TOOLS (the bin/ of .ci/k8s-tools). Prints one line per step and a
closing 'N passed, N failed'.
"""

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

from tests.k8s import render_checks
from tests.k8s.report import Report

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy/helm/scaleout"
BROKEN = ROOT / "tests/k8s/broken"
TOOLS = Path(os.environ["K8S_TOOLS"])
KUBE_VERSIONS = ("1.30.0", "1.37.0")
RELEASE, NAMESPACE = "scaleout", "scaleout"

report = Report()


def run(*cmd):
    """(exit code, output) of a tool; kubectl/helm must not find a server: none is asked."""
    p = subprocess.run([str(TOOLS / cmd[0]), *cmd[1:]], capture_output=True, text=True,
                       env={**os.environ, "KUBECONFIG": "/dev/null"})
    out = "\n".join(l for l in (p.stdout + p.stderr).splitlines() if "found symbolic link" not in l)
    return p.returncode, out


def lint(values, kube):
    code, out = run("helm", "lint", "--strict", str(CHART), "-f", str(values), "--kube-version", kube)
    return [] if code == 0 else [l.strip() for l in out.splitlines() if "[ERROR]" in l or l.startswith("- at")] or [out[-2000:]]


def template(values, kube, path):
    code, out = run("helm", "template", RELEASE, str(CHART), "-n", NAMESPACE, "-f", str(values),
                    "--kube-version", kube)
    if code != 0:
        return [out[-2000:]]
    path.write_text(out)
    return []


def docs_of(path):
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def validate(path, kube):
    code, out = run("kubernetes-validate", "--strict", "--quiet", "-k", kube, str(path))
    errors = [l.split(" did not validate for resource ")[-1] for l in out.splitlines() if l.startswith("ERROR")]
    return [] if code == 0 else errors or [out[-2000:]]


def checkov(paths):
    """(failures, its summary line)."""
    args = ["checkov", "--skip-download", "--quiet", "--compact", "--framework", "kubernetes"]
    for p in paths:
        args += ["-f", str(p)]
    code, out = run(*args)
    summary = next((l.strip() for l in out.splitlines() if l.startswith("Passed checks:")), "")
    fails = [l for l in out.splitlines() if "Check:" in l or "FAILED" in l][:40] or [out[-2000:]]
    return ([] if code == 0 else fails), summary


STEPS = ("lint", "template", "validate", "checkov", "render")


def pipeline(values, tmp, stop_after=None):
    """Runs every step on one values file, for both Kubernetes versions; returns
    {step: failures} for the steps it ran (it stops at the first failing step)."""
    seen = {"notes": {}}
    renders = []
    for step in STEPS:
        fails = []
        for kube in KUBE_VERSIONS:
            out = tmp / f"{values.stem}-{kube}.yaml"
            if step == "lint":
                fails += lint(values, kube)
            elif step == "template":
                fails += template(values, kube, out)
                renders.append(out)
            elif step == "validate":
                fails += validate(out, kube)
            elif step == "render":
                fails += render_checks.check(docs_of(out))
        if step == "checkov":
            fails, seen["notes"]["checkov"] = checkov(renders)
        if step == "template" and not fails:
            seen["notes"]["template"] = f"{len(docs_of(renders[-1]))} objects"
        seen[step] = fails
        if fails or step == stop_after:
            break
    return seen


def main():
    with tempfile.TemporaryDirectory(prefix="scaleout-k8s-") as t:
        tmp = Path(t)
        ci = sorted((CHART / "ci").glob("*-values.yaml"))
        assert ci, "no ci/*-values.yaml"
        for values in ci:
            seen = pipeline(values, tmp)
            for step in STEPS:
                note = seen["notes"].get(step)
                report(f"{step:<8} ci/{values.name} (Kubernetes {', '.join(KUBE_VERSIONS)}){': ' + note if note else ''}",
                       seen.get(step, ["not reached"]))
        default = docs_of(tmp / f"default-values-{KUBE_VERSIONS[-1]}.yaml")
        report("render_checks self-test: each check passes, and fails on its deliberate break",
               render_checks.self_test(default))

        # Broken values files: `# breaks: STEP` names the step that must fail.
        for values in sorted(BROKEN.glob("*-values.yaml")):
            first = values.read_text().splitlines()[0]
            want = first.removeprefix("# breaks: ").split()[0]
            assert first.startswith("# breaks: ") and want in STEPS, f"{values.name}: first line must be '# breaks: <step>'"
            seen = pipeline(values, tmp, stop_after=want)
            before = [s for s in STEPS[: STEPS.index(want)] if seen.get(s)]
            fails = []
            if before:
                fails.append(f"fails early, at {before}: {seen[before[0]][:2]}")
            elif not seen.get(want):
                fails.append(f"{want} passed a broken values file")
            why = (seen.get(want) or ["-"])[0].splitlines()[0]
            report(f"broken   {values.name}: {want} fails ({why[:110]})", fails)
    return report.close("static checks")


if __name__ == "__main__":
    sys.exit(main())
