#!/usr/bin/env bash
# make test-k8s: the Helm chart deploy/helm/scaleout, checked with no network.
#
#   1. tests/k8s/static.py under `unshare -n` (no network at all; kubectl and helm would
#      otherwise try localhost:8080, the stacks' port): helm lint --strict, helm template
#      of every ci/*-values.yaml for Kubernetes 1.30 and 1.37, kubernetes-validate
#      --strict, checkov, render_checks.py, and the broken values files of tests/k8s/broken/.
#   2. the images (deploy/images/build.sh: the scaleout images from $SCALEOUT_BIN,
#      the Redis stand-in), then tests/k8s/podman.py under `unshare -n -m`: a network
#      namespace with only loopback, and an /etc/hosts of its own where the Redis Service
#      name is 127.0.0.1; `podman kube play` of the rendered pods, the seed flows,
#      `podman kube down`, nothing left.
# Needs: .ci/deps k8s (podman, catatonit, and the tools of .ci/k8s-tools), Docker (for the
# images), root (unshare). Docker and podman run holding /tmp/scaleout-docker.lock.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"

if [ "${1:-}" = --podman-inner ]; then
  # In the new network and mount namespaces. PODMAN_BASE is the storage of this run:
  # if podman.py dies before its own teardown, remove what it left.
  base=$2
  cleanup() {
    if [ -d "$base/root" ]; then
      P=(podman --root "$base/root" --runroot "$base/run" --tmpdir "$base/tmp")
      CONTAINERS_CONF=$base/containers.conf "${P[@]}" pod rm -af -t 0 >/dev/null 2>&1 || true
      CONTAINERS_CONF=$base/containers.conf "${P[@]}" system reset --force >/dev/null 2>&1 || true
    fi
    rm -rf "$base" "$base.hosts"
  }
  trap cleanup EXIT
  printf '127.0.0.1 localhost\n127.0.0.1 scaleout-redis\n' >"$base.hosts"
  mount --bind "$base.hosts" /etc/hosts
  ip link set lo up
  PODMAN_BASE=$base "$PY" -m tests.k8s.podman
  exit
fi

start=$EPOCHREALTIME
since() { # seconds since an $EPOCHREALTIME, to a tenth
  local us=$((${EPOCHREALTIME/./} - ${1/./}))
  echo "$((us / 1000000)).$((us / 100000 % 10))"
}
dir=$(.ci/k8s-tools)
export K8S_TOOLS=$dir/bin PY=$dir/venv/bin/python

echo "== static checks (no network)"
unshare -n "$PY" -m tests.k8s.static

deploy/docker/dockerd-up.sh
deploy/docker/compose-plugin.sh >/dev/null
: "${SCALEOUT_BIN:?SCALEOUT_BIN: the static release binary (make test-k8s sets it)}"
base=$(mktemp -d "${TMPDIR:-/tmp}/scaleout-podman.XXXXXX")
trap 'rm -rf "$base" "$base.hosts"' EXIT
# The Docker lock (what flock /tmp/scaleout-docker.lock CMD takes), held by this shell
# alone for the images and the podman run: no child keeps the descriptor (9>&-), so no
# container that outlives us could hold the lock.
asked=$EPOCHREALTIME
exec 9>/tmp/scaleout-docker.lock
flock 9
waited=$(since "$asked")
echo "== images (after $waited s waiting for the Docker lock)"
t=$EPOCHREALTIME
deploy/images/build.sh 9>&-
echo "images: $(since "$t") s"
echo "== podman kube play (loopback only)"
unshare -n -m "$0" --podman-inner "$base" 9>&-
flock -u 9
echo "test-k8s: done in $(since "$start") s, $waited s of it waiting for the Docker lock"
