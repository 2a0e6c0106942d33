#!/usr/bin/env bash
# Traefik's static configuration, written once: static/base.yml (entry points, API, ping,
# logs, the file provider) plus the provider of each way of running (static/docker.yml,
# static/swarm.yml; host mode has the file provider only).
#
#   traefik/render.sh compose | swarm    print traefik.yml (compose.yaml) / traefik-swarm.yml
#                                        (stack.yaml); both are committed renderings
#   traefik/render.sh host WEB DASHBOARD DYNAMIC_DIR LOG_LEVEL
#                                        print host mode's (deploy/local.sh writes it)
#   traefik/render.sh --write            rewrite traefik.yml and traefik-swarm.yml
#   traefik/render.sh --check            fail when either differs from its rendering, or a
#                                        rendering lacks the entry point's limits
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
STATIC=$HERE/static

die() { echo "render.sh: $*" >&2; exit 1; }

# sed replacement text for a literal value (| is the delimiter).
literal() { printf '%s' "$1" | sed -e 's/[\\|&]/\\&/g'; }

header() {
  case $1 in
    compose) cat <<'EOF'
# Traefik v3 static configuration for the Docker / compose stack. Rendered by
# traefik/render.sh from traefik/static/base.yml and traefik/static/docker.yml: edit
# those, then run traefik/render.sh --write (make test-traefik fails while this is stale).
#
# compose.yaml mounts:
#   ./traefik/traefik.yml -> /etc/traefik/traefik.yml   (read-only)
#   ./traefik/dynamic     -> /etc/traefik/dynamic       (read-only)
#   /var/run/docker.sock  -> /var/run/docker.sock       (read-only)
# and publishes 8080:80 (web) and 127.0.0.1:8081:8081 (dashboard).
EOF
      ;;
    swarm) cat <<'EOF'
# Traefik v3 static configuration for the Docker Swarm stack (stack.yaml). Rendered by
# traefik/render.sh from traefik/static/base.yml and traefik/static/swarm.yml: edit
# those, then run traefik/render.sh --write (make test-traefik fails while this is stale).
#
# stack.yaml ships this file and dynamic/*.yml as Swarm configs named by their content
# (the Makefile's TRAEFIK_CONFIG_HASH). The dashboard entry point is not published:
# Swarm would bind a published port on every address (it ignores a `127.0.0.1:` prefix),
# so it stays inside the container.
EOF
      ;;
    host) cat <<'EOF'
# Host mode's Traefik static configuration, rendered by traefik/render.sh (run by
# deploy/local.sh) from traefik/static/base.yml: loopback ports, file provider only.
EOF
      ;;
  esac
}

# render MODE WEB DASHBOARD DYNAMIC_DIR LOG_LEVEL
render() {
  local mode=$1 web=$2 dash=$3 dyn=$4 level=$5 out
  [[ $(grep -E '^[A-Za-z]' "$STATIC/base.yml" | tail -n 1) == "providers:" ]] ||
    die "static/base.yml: providers: must be its last section (the modes' providers go under it)"
  out=$(
    header "$mode"
    echo
    # base.yml without its own opening comment (up to the first blank line)
    sed -e '1,/^$/d' \
      -e "s|@WEB_ADDRESS@|$(literal "$web")|" \
      -e "s|@DASHBOARD_ADDRESS@|$(literal "$dash")|" \
      -e "s|@DYNAMIC_DIR@|$(literal "$dyn")|" \
      -e "s|@LOG_LEVEL@|$(literal "$level")|" \
      "$STATIC/base.yml"
    case $mode in
      compose) sed -e 's/^/  /' "$STATIC/docker.yml" ;;
      swarm) sed -e 's/^/  /' "$STATIC/swarm.yml" ;;
    esac
  )
  if grep -q '@[A-Z_]*@' <<<"$out"; then die "$mode: a value was left unset: $(grep -o '@[A-Z_]*@' <<<"$out" | sort -u | tr '\n' ' ')"; fi
  printf '%s\n' "$out"
}

# The ways that run in containers: the same ports, the dynamic files mounted at one place.
render_container() { render "$1" ":80" ":8081" /etc/traefik/dynamic INFO; }

file_of() { case $1 in compose) echo "$HERE/traefik.yml" ;; swarm) echo "$HERE/traefik-swarm.yml" ;; esac; }

check() {
  local mode file rendered failed=0
  for mode in compose swarm host; do
    if [[ $mode == host ]]; then
      rendered=$(render host 127.0.0.1:8080 127.0.0.1:8081 /tmp/dynamic INFO)
    else
      rendered=$(render_container "$mode")
      file=$(file_of "$mode")
      if ! diff -u "$file" - <<<"$rendered" >&2; then
        echo "render.sh: ${file#"$HERE/../"} is stale: run traefik/render.sh --write" >&2
        failed=1
      fi
    fi
    # What src/startup.rs relies on, in every way of running.
    for want in 'maxHeaderBytes: 16384' 'readTimeout: 5s'; do
      grep -q "^ *$want\$" <<<"$rendered" || { echo "render.sh: $mode: no '$want'" >&2; failed=1; }
    done
  done
  ((failed == 0)) && echo "render.sh: traefik.yml and traefik-swarm.yml are current; every way has the entry point's limits"
  return "$failed"
}

case ${1:-} in
  compose | swarm) render_container "$1" ;;
  host)
    (($# == 5)) || die "usage: render.sh host WEB DASHBOARD DYNAMIC_DIR LOG_LEVEL"
    render host "$2" "$3" "$4" "$5"
    ;;
  --write) for m in compose swarm; do render_container "$m" >"$(file_of "$m")"; done ;;
  --check) check ;;
  *) sed -n '2,12p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
