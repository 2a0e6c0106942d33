#!/usr/bin/env bash
# The quick start, as a new user runs it: from a clean clone (git clone of this repository's
# committed HEAD into a temporary directory),
#
# 1. `make up`: the Makefile picks how to build the images (here: not with Debian's old Nix,
#    which cannot evaluate the flake, but from the musl build), makes the Redis passwords
#    (.secrets/, saying where) and starts the compose stack; then the README's curl flows
#    through http://localhost:8080 (cookie jar: one session, count 1 then 2; served_by
#    rotates over the 3 replicas; set/get; enqueue -> job done); a second `make up` keeps
#    the passwords; then `make down`;
# 2. `make local` in the background (in its own process group, like a terminal), the same
#    flows, then Ctrl-C (SIGINT to that group): every process it started is gone, 8080 free.
#
# The two upstream images, traefik and redis, cannot be pulled here: local stand-ins are
# built first (deploy/images/build.sh standins), as in the compose test. Printed:
# the time from each command to a healthy stack. The last line is "N passed, M failed".
# Everything it started or built is stopped or removed on exit, failure and timeout included;
# scaleout-*:latest images that existed before are set aside and tagged back.
#
# Needs: a Docker engine with compose v2 (make test-quickstart starts them), git, curl, jq,
# python3, what .ci/deps installs; ports 8080 and 8081 free (the quick start's own ports).
# Environment:
#   QUICKSTART_TARGET_DIR  cargo's output directory for the clone's builds. Default: a
#                       temporary one seeded with a copy of this repository's musl release
#                       build (target/<arch>-unknown-linux-musl and target/release) when there
#                       is one, so the clone recompiles only the scaleout crate, not its
#                       dependencies. A copy, not the repository's own target/: a build from
#                       the clone records the clone's (newer) file times there, and a later
#                       build in the repository would then take an edited file for unchanged.
#   QUICKSTART_REF      the commit to clone (default HEAD)
#   QUICKSTART_TIMEOUT  hard limit for the whole run (default 1500 s)
set -uo pipefail

if [ -z "${QUICKSTART_UNDER_TIMEOUT:-}" ]; then
  export QUICKSTART_UNDER_TIMEOUT=1
  # SIGTERM at the limit runs the cleanup trap; SIGKILL 120 s later if that hangs.
  exec timeout -k 120 "${QUICKSTART_TIMEOUT:-1500}" "$0" "$@"
fi

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT" || exit 1

# shellcheck source=tests/lib/checks.sh
. "$ROOT/tests/lib/checks.sh"

PROJECT=scaleout # compose.yaml's `name:`: what `make up` runs
VOLUME=${PROJECT}_redis-data
PORT=8080 DPORT=8081
BASE="http://localhost:$PORT"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/scaleout-quickstart.XXXXXX")
CLONE="$TMP/scaleout"
BUILT_LOG="$TMP/built-images"
: >"$BUILT_LOG"
JAR="$TMP/jar"
SEED_TARGET=${CARGO_TARGET_DIR:-$ROOT/target} # this repository's builds
export CARGO_TARGET_DIR=${QUICKSTART_TARGET_DIR:-$TMP/target}
STACK_UP=0 VOLUME_EXISTED=1 LOCAL_PID="" SCALEOUT_SAVED=0 IMAGES_OURS=0
SAVED_TAG="quickstart-saved-$$"

# make as a user runs it: not as a sub-make of `make test-quickstart`
umake() { env -u MAKELEVEL -u MAKEFLAGS -u MFLAGS -u SCALEOUT_BIN make "$@"; }
dc() { timeout 120 docker compose -p "$PROJECT" -f "$CLONE/compose.yaml" "$@"; }
local_running() { [ -n "$LOCAL_PID" ] && kill -0 "$LOCAL_PID" 2>/dev/null; }
# stop `make local` as Ctrl-C would: SIGINT to its process group; wait at most $1 s
stop_local() {
  local i
  local_running || return 0
  kill -INT -- "-$LOCAL_PID" 2>/dev/null
  for ((i = 0; i < $1 * 5; i++)); do local_running || return 0; sleep 0.2; done
  return 1
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if local_running; then
    say "cleanup: stopping make local"
    stop_local 30 || {
      STACK_DIR="$CLONE/.stack" "$CLONE/deploy/local.sh" down >/dev/null 2>&1
      kill -KILL -- "-$LOCAL_PID" 2>/dev/null
    }
  fi
  if [ "$STACK_UP" = 1 ]; then
    if [ "$FAILED" -gt 0 ]; then
      say "diagnostics (a check failed)"
      dc ps -a 2>&1 | sed 's/^/  /'
      dc logs --no-color --tail=20 2>&1 | sed 's/^/  /' | tail -n 120
    fi
    say "cleanup: docker compose down"
    dc down --remove-orphans --timeout 5 >/dev/null 2>&1
  fi
  [ "$VOLUME_EXISTED" = 1 ] || docker volume rm "$VOLUME" >/dev/null 2>&1
  # the images `make up` built, the stand-ins built here; then what was set aside
  local t
  for t in app worker web; do
    [ "$IMAGES_OURS" = 1 ] || break
    docker rmi "scaleout-$t:latest" >/dev/null 2>&1
    if [ "$SCALEOUT_SAVED" = 1 ]; then
      docker tag "scaleout-$t:$SAVED_TAG" "scaleout-$t:latest" 2>/dev/null
      docker rmi "scaleout-$t:$SAVED_TAG" >/dev/null 2>&1
    fi
  done
  while read -r t; do [ -z "$t" ] || docker rmi "$t" >/dev/null 2>&1; done <"$BUILT_LOG"
  rm -rf "$TMP"
  finish "quickstart test" "$rc"
}
trap cleanup EXIT
trap 'bad "interrupted or timed out (limit ${QUICKSTART_TIMEOUT:-1500} s)"; exit 124' INT TERM

# The README's curl flows through $BASE. $1: what served_by must rotate over (sorted names),
# $2: the worker's name.
get() { # get PATH [curl args...]: body in $TMP/body, status on stdout
  local p=$1
  shift
  curl -sS -m 5 -o "$TMP/body" -w '%{http_code}' "$@" "$BASE$p" 2>>"$TMP/curl.err" || echo 000
}
flows() {
  local apps=$1 worker=$2 code sid served=() n
  : >"$JAR"
  code=$(get /api/ -c "$JAR" -b "$JAR")
  sid=$(jq -r .session_id "$TMP/body" 2>/dev/null)
  check "curl -c jar -b jar $BASE/api/ -> 200, new session, session_count 1 (got $code)" \
    jqt '.new_session == true and .session_count == 1' "$TMP/body"
  served+=("$(jq -r .served_by "$TMP/body" 2>/dev/null)")
  code=$(get /api/ -c "$JAR" -b "$JAR")
  check "again -> 200, same session_id, session_count 2 (got $code)" \
    jqt --arg s "$sid" '.session_id == $s and .session_count == 2 and .new_session == false' "$TMP/body"
  served+=("$(jq -r .served_by "$TMP/body" 2>/dev/null)")
  for n in 3 4 5 6; do
    get /api/ -c "$JAR" -b "$JAR" >/dev/null
    served+=("$(jq -r .served_by "$TMP/body" 2>/dev/null)")
  done
  echo "  served_by: ${served[*]}"
  check "served_by rotates over the 3 replicas in 6 requests" \
    test "$(printf '%s\n' "${served[@]}" | sort -u)" = "$apps"

  code=$(get "/api/set?key=color&value=blue")
  check "set color=blue -> 200 (got $code)" test "$code" = 200
  local kv=1 kv_served=()
  for n in 1 2 3; do
    [ "$(get "/api/get?key=color")" = 200 ] && jq -e '.value == "blue"' "$TMP/body" >/dev/null || kv=0
    kv_served+=("$(jq -r .served_by "$TMP/body" 2>/dev/null)")
  done
  check "get color -> blue, from ${kv_served[*]}" test "$kv" = 1

  local id=""
  code=$(get "/api/enqueue?job=test-1")
  [ "$code" = 202 ] && id=$(jq -r '.id // empty' "$TMP/body")
  check "enqueue test-1 -> 202 with an id (got $code)" test -n "$id"
  job_done() { [ "$(get "/api/jobs/$id")" = 200 ] && jq -e --arg w "$worker" '.status == "done" and .worker == $w' "$TMP/body" >/dev/null; }
  if [ -n "$id" ] && wait_until 30 job_done; then
    ok "job test-1 done by the worker ($worker) within 30 s"
  else
    bad "job test-1 done by the worker ($worker) within 30 s: $(head -c 300 "$TMP/body")"
  fi
}

# ---------------------------------------------------------------------------------------
say "preflight"
for c in git make docker curl jq python3; do command -v "$c" >/dev/null || die "missing command: $c"; done
docker info >/dev/null 2>&1 || die "no Docker engine answers (deploy/docker/dockerd-up.sh starts one)"
docker compose version >/dev/null 2>&1 || die "no docker compose v2 (deploy/docker/compose-plugin.sh)"
# free = Docker's proxy could bind it on every address (a listener on 127.0.0.1 conflicts too)
port_free() { python3 -c 'import socket,sys; socket.socket().bind(("0.0.0.0", int(sys.argv[1])))' "$1" 2>/dev/null; }
for p in $PORT $DPORT; do
  port_free "$p" || die "port $p is in use: the quick start serves on it (http://localhost:8080, dashboard 8081); stop what listens there first"
done
[ -z "$(docker ps -aq --filter "label=com.docker.compose.project=$PROJECT")" ] ||
  die "a compose project '$PROJECT' already has containers on this engine: stop it first (docker compose down)"
if docker network inspect scaleout >/dev/null 2>&1; then
  die "a Docker network 'scaleout' exists (another scaleout stack or test): stop that stack first"
fi
docker volume inspect "$VOLUME" >/dev/null 2>&1 || VOLUME_EXISTED=0
echo "engine $(docker version -f '{{.Server.Version}}'), $(docker compose version)"
echo "nix: $(nix --version 2>/dev/null || echo 'not installed')"
if [ -z "${QUICKSTART_TARGET_DIR:-}" ]; then
  mkdir -p "$CARGO_TARGET_DIR"
  musl="$(uname -m)-unknown-linux-musl"
  if [ -d "$SEED_TARGET/$musl/release" ]; then
    t=$(ms)
    mkdir -p "$CARGO_TARGET_DIR/$musl"
    cp -a "$SEED_TARGET/$musl/release" "$CARGO_TARGET_DIR/$musl/" &&
      { [ ! -d "$SEED_TARGET/release" ] || cp -a "$SEED_TARGET/release" "$CARGO_TARGET_DIR/"; } ||
      die "copying the musl release build to $CARGO_TARGET_DIR"
    echo "cargo target dir $CARGO_TARGET_DIR: seeded with a copy of $SEED_TARGET/{$musl/release,release} ($(($(ms) - t)) ms)"
  else
    echo "cargo target dir $CARGO_TARGET_DIR: empty (no musl release build in $SEED_TARGET): a full build"
  fi
else
  echo "cargo target dir $CARGO_TARGET_DIR"
fi

# `make up` builds the images only when they are missing: set existing ones aside.
if docker image inspect scaleout-app:latest scaleout-worker:latest scaleout-web:latest >/dev/null 2>&1; then
  for t in app worker web; do
    docker tag "scaleout-$t:latest" "scaleout-$t:$SAVED_TAG" && docker rmi "scaleout-$t:latest" >/dev/null
  done
  SCALEOUT_SAVED=1
  echo "existing scaleout-*:latest images set aside as :$SAVED_TAG"
fi
for t in app worker web; do docker rmi "scaleout-$t:latest" >/dev/null 2>&1; done
IMAGES_OURS=1 # from here on, scaleout-*:latest are the ones this test made

say "stand-ins for the upstream traefik and redis images (they cannot be pulled here)"
BUILT_LOG="$BUILT_LOG" deploy/images/build.sh standins 2>"$TMP/standins.err" || {
  cat "$TMP/standins.err"
  die "building the stand-ins"
}

say "a clean clone"
git clone -q "$ROOT" "$CLONE" || die "git clone"
if [ -n "${QUICKSTART_REF:-}" ]; then git -C "$CLONE" checkout -q "$QUICKSTART_REF" || die "checkout $QUICKSTART_REF"; fi
echo "$(git -C "$CLONE" log -1 --format='%h %s') in $CLONE"
# Every target that runs the release binary rebuilds it first when the source changed
# (`make bench` once measured whatever binary was left in target/).
for t in load bench test-e2e test-ha; do
  check "make $t builds the release binary first" \
    bash -c "make -n -C '$CLONE' $t 2>/dev/null | grep -q '^cargo build --release'"
done

# ---------------------------------------------------------------------------------------
say "1. make up (from the clean clone)"
want_path=$(cd "$CLONE" && .ci/nix-usable 2>/dev/null) && nix_ok=1 || nix_ok=0
echo "  .ci/nix-usable: $want_path"
STACK_UP=1
t=$(ms)
(cd "$CLONE" && umake up) >"$TMP/up.log" 2>&1
rc=$?
up_ms=$(($(ms) - t))
grep -E '^(make up|release|build-images|deps|Redis passwords):|Finished|scaleout is up' "$TMP/up.log" | sed 's/^/  /'
if [ "$rc" != 0 ]; then
  tail -n 30 "$TMP/up.log" | sed 's/^/  | /'
  die "make up (exit $rc after $((up_ms / 1000)) s)"
fi
ok "make up: stack healthy $((up_ms / 1000)) s after the command (images built, compose up --wait)"
if [ "$nix_ok" = 0 ]; then
  check "make up said it builds without Nix, and why" grep -q '^make up: building the images without Nix (' "$TMP/up.log"
fi
check "make up said where the Redis passwords are: $CLONE/.secrets/, 5 created" \
  grep -qF "Redis passwords: $CLONE/.secrets/redis-{admin,app,worker,replication,sentinel}-password (5 created, 0 kept" "$TMP/up.log"
# (the passwords stay in this shell: never an argument of a command, which ps would show)
secret_files() { (cd "$CLONE/.secrets" && stat -c '%a %n' . redis-*-password && cat redis-*-password) 2>&1; }
secrets_before=$(secret_files)
secrets_ok() {
  [ "$(grep -c '^644 redis-[a-z]*-password$' <<<"$secrets_before")" = 5 ] && grep -qx '700 \.' <<<"$secrets_before" &&
    [ "$(grep -cE '^[0-9a-f]{48}$' <<<"$secrets_before")" = 5 ] && [ -z "$(git -C "$CLONE" status --porcelain)" ]
}
check "5 password files of 48 hex digits, 0644 in a 0700 directory, git-ignored" secrets_ok

cids() { docker ps -q --filter "label=com.docker.compose.project=$PROJECT" --filter "label=com.docker.compose.service=$1"; }
app_hosts=$(cids app | xargs -r docker inspect -f '{{.Config.Hostname}}' | sort)
worker_host=$(cids worker | xargs -r docker inspect -f '{{.Config.Hostname}}')
check "3 app containers and a worker run" test "$(wc -l <<<"$app_hosts")" = 3 -a -n "$worker_host"
traefik_up() { curl -sf -m 3 "http://127.0.0.1:$DPORT/api/http/services/app@docker" | jq -e '[.serverStatus // {} | to_entries[] | select(.value == "UP")] | length == 3' >/dev/null 2>&1; }
check "Traefik sees the 3 replicas UP" wait_until 30 traefik_up
flows "$app_hosts" "$worker_host"

say "make up again: the passwords are kept"
(cd "$CLONE" && umake up) >"$TMP/up2.log" 2>&1
rc=$?
grep -E '^Redis passwords:|scaleout is up' "$TMP/up2.log" | sed 's/^/  /'
secrets_kept() { [ "$rc" = 0 ] && grep -qF "(0 created, 5 kept" "$TMP/up2.log" && [ "$(secret_files)" = "$secrets_before" ]; }
check "second make up: exit 0 (got $rc), '0 created, 5 kept', the same files" secrets_kept

say "make down"
(cd "$CLONE" && umake down) >"$TMP/down.log" 2>&1
rc=$?
check "make down: exit 0 (got $rc), no container of '$PROJECT' left" \
  test "$rc" = 0 -a -z "$(docker ps -aq --filter "label=com.docker.compose.project=$PROJECT")"
STACK_UP=0
check "port $PORT free again" wait_until 10 port_free "$PORT"

# ---------------------------------------------------------------------------------------
say "2. make local (from the same clone, in the background)"
t=$(ms)
# setsid: its own process group, as in a terminal; Ctrl-C = SIGINT to that group
# (the subshell execs setsid, so $! is make's pid and its process group's id)
(cd "$CLONE" && exec setsid env -u MAKELEVEL -u MAKEFLAGS -u MFLAGS -u SCALEOUT_BIN make local) >"$TMP/local.log" 2>&1 &
LOCAL_PID=$!
local_ready() { grep -q 'scaleout is up' "$TMP/local.log"; }
if ! wait_until 900 bash -c 'grep -q "scaleout is up" "$1" || ! kill -0 "$2" 2>/dev/null' _ "$TMP/local.log" "$LOCAL_PID" || ! local_ready; then
  tail -n 30 "$TMP/local.log" | sed 's/^/  | /'
  die "make local did not report 'scaleout is up'"
fi
local_ms=$(($(ms) - t))
grep -E '^(release|deps):|Finished|scaleout is up' "$TMP/local.log" | sed 's/^/  /'
ok "make local: stack healthy $((local_ms / 1000)) s after the command"
flows "$(printf 'app-%s\n' 1 2 3)" "worker-1"

say "Ctrl-C (SIGINT to make local's process group)"
mapfile -t pids < <(cat "$CLONE"/.stack/run/*.pid 2>/dev/null)
echo "  processes it started: ${#pids[@]} ($(cd "$CLONE/.stack/run" && ls ./*.pid | xargs -n1 basename | sed 's/\.pid$//' | tr '\n' ' '))"
t=$(ms)
check "make local exits within 30 s of Ctrl-C" stop_local 30
echo "  stopped in $(($(ms) - t)) ms"
# gone: no such process, or a zombie (it has exited; its reaping is up to init, since
# local.sh started it in its own session)
left=()
still_running() {
  local p st
  left=()
  for p in "${pids[@]}"; do
    st=$(sed -E 's/.*\) ([A-Za-z]).*/\1/' "/proc/$p/stat" 2>/dev/null) || continue
    [ "$st" = Z ] || left+=("$p:$(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | cut -c1-60)")
  done
  [ "${#left[@]}" -gt 0 ]
}
all_gone() { ! still_running; }
wait_until 10 all_gone
check "every process it started has exited (${#pids[@]} checked${left:+; still running: ${left[*]}})" test "${#left[@]}" = 0
check "port $PORT free again" port_free "$PORT"

echo
echo "time to a healthy stack: make up $((up_ms / 1000)) s, make local $((local_ms / 1000)) s (clean clone; cargo target dir $CARGO_TARGET_DIR)"
