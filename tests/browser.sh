#!/usr/bin/env bash
# The dashboard's browser test (frontend/e2e) against a real host-mode stack: Traefik,
# three app replicas, a worker, `scaleout web`, Redis, all on loopback on free ports.
# Everything started here is stopped on exit, whether the test passed or not.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
dir=$(mktemp -d)
export STACK_DIR=$dir/stack STACK_PORT=$(free_port) STACK_DASH_PORT=$(free_port)
deploy/local.sh up 3 >"$dir/stack.log" 2>&1 &
stack=$!
cleanup() {
  deploy/local.sh down >/dev/null 2>&1 || true
  kill "$stack" 2>/dev/null || true
  wait "$stack" 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT

base=http://localhost:$STACK_PORT
for _ in $(seq 1 300); do   # up to 30 s
  if curl -fs -o /dev/null "$base/api/readyz" && curl -fs -o /dev/null "$base/"; then
    break
  fi
  kill -0 "$stack" 2>/dev/null || { cat "$dir/stack.log"; echo "browser.sh: the stack died" >&2; exit 1; }
  sleep 0.1
done
curl -fsS -o /dev/null "$base/api/readyz" || { cat "$dir/stack.log"; echo "browser.sh: stack not ready in 30 s" >&2; exit 1; }
(cd frontend && BASE_URL=$base npm run --silent test:e2e)
