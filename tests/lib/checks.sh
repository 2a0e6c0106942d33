# Checks and reporting shared by the shell tests (tests/compose, tests/quickstart,
# tests/swarm): each prints `ok`/`FAIL` lines, numbered phases, and "N passed, M failed"
# as its last line. Source it; it defines no traps and runs nothing.

T0=$SECONDS
PASSED=0 FAILED=0
ok() { PASSED=$((PASSED + 1)); echo "ok   $*"; }
bad() { FAILED=$((FAILED + 1)); echo "FAIL $*"; }
check() { # check "description" command...
  local d=$1
  shift
  if "$@"; then ok "$d"; else bad "$d"; fi
}
say() { printf '\n== [%3ds] %s\n' $((SECONDS - T0)) "$*"; }
die() { bad "$*"; exit 1; }
jqt() { jq -e "$@" >/dev/null 2>&1; } # jqt FILTER... FILE: JSON test, quiet
ms() { date +%s%3N; }

wait_until() { # wait_until SECONDS command...: true once command succeeds, false at the limit
  local limit=$(($1 * 5)) i
  shift
  for ((i = 0; i < limit; i++)); do
    if "$@"; then return 0; fi
    sleep 0.2
  done
  return 1
}

# The last lines of every test, from its EXIT trap: `finish "LABEL" RC` prints the time
# taken and the count, and exits non-zero when a check failed or RC is.
finish() {
  local label=$1 rc=$2
  echo
  echo "$label: $((SECONDS - T0)) s"
  echo "$PASSED passed, $FAILED failed"
  if [ "$FAILED" -gt 0 ] && [ "$rc" = 0 ]; then rc=1; fi
  exit "$rc"
}

# cases_through_traefik HOST PORT: the requests of tests/cases/malformed.json and
# oversized.json (each over-long head 20 times in a row) sent by tests/cases/send.py to
# Traefik's web entry point at HOST:PORT; one check per file, its failures listed.
cases_through_traefik() {
  local suite out rc
  for suite in malformed oversized; do
    out=$(python3 "$(dirname "${BASH_SOURCE[0]}")/../cases/send.py" "$suite" --host "$1" --port "$2" --via traefik 2>&1)
    rc=$?
    grep -v -e '^ok ' -e '^{' <<<"$out" | sed 's/^/  /'
    check "tests/cases/$suite.json through Traefik, every answer as the file says: $(tail -n 1 <<<"$out")" test "$rc" = 0
  done
}
