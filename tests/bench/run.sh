#!/usr/bin/env bash
# `make bench`: builds what the benchmark runs (the static scaleout binary and, beside it,
# the seed-go peer), then runs tests/bench/bench.py, which prints the tables and the
# targets and writes docs/bench.json, docs/bench.md and docs/bench.svg.
#
# Environment (all optional):
#   BENCH_SECS (3)  BENCH_WARMUP_SECS (1)  BENCH_REPS (5, at least 3)  BENCH_CONCURRENCY (32)
#   BENCH_STARTS (7)  BENCH_OUT_DIR (docs)  BENCH_WORK_DIR (target/bench: binaries, logs, stack)
#   SEED_GO_SRC   the seed-go peer's source (default ../shared/peers/seed-go next to the repo)
#   SCALEOUT_BIN  use this binary instead of building one
#   BENCH_ONLY    run only these phases (comma-separated: direct,startup,redis,wait,traefik,
#                 security,sizes); merged into BENCH_OUT_DIR's bench.json when it has one
#                 measured with the same BENCH_* settings (the other phases keep its figures)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
WORK=${BENCH_WORK_DIR:-$ROOT/target/bench}
mkdir -p "$WORK"
export BENCH_WORK_DIR=$WORK

if [[ -z ${SCALEOUT_BIN:-} ]]; then
  musl="$(uname -m)-unknown-linux-musl"
  cargo build --release --target "$musl" -q
  SCALEOUT_BIN=$ROOT/target/$musl/release/scaleout
fi
export SCALEOUT_BIN

# seed-go: the original app's rebuild, built here (never committed), rebuilt when its
# source is newer than the binary. Debian: golang-go + golang-github-gomodule-redigo-dev.
SEED_GO_SRC=${SEED_GO_SRC:-$ROOT/../shared/peers/seed-go}
export SEED_GO_BIN=$WORK/seed-go
if [[ -f $SEED_GO_SRC/main.go ]] && command -v go >/dev/null; then
  if [[ ! -x $SEED_GO_BIN || $SEED_GO_SRC/main.go -nt $SEED_GO_BIN ]]; then
    echo "bench: building seed-go from $SEED_GO_SRC" >&2
    (cd "$SEED_GO_SRC" && GO111MODULE=off GOPATH=/usr/share/gocode GOCACHE="$WORK/gocache" \
      GOFLAGS= go build -o "$SEED_GO_BIN" .)
  fi
else
  echo "bench: seed-go source or Go not found ($SEED_GO_SRC): comparisons with the original skipped" >&2
  rm -f "$SEED_GO_BIN"
fi

exec python3 "$ROOT/tests/bench/bench.py"
