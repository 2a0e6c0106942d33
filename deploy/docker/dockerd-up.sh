#!/usr/bin/env bash
# Make sure a Docker engine answers on this machine; start `dockerd` if none does.
#
#   deploy/docker/dockerd-up.sh            # idempotent; exits 0 once `docker info` works
#
# Meant for CI machines and sandboxes without systemd (Debian: `apt-get install -y docker.io`).
# If an engine already answers (Docker Desktop, systemd's docker.service, a previous run),
# nothing is started. Otherwise, as root, it starts dockerd in the background (log in
# $DOCKERD_LOG, default /tmp/dockerd.log) and waits at most $DOCKERD_WAIT seconds per attempt.
# Extra flags can be forced with DOCKERD_FLAGS="...". With no flags forced it tries, in order:
#   1. no flags (overlay2 storage, iptables NAT: what works on an ordinary kernel),
#   2. --storage-driver=vfs (kernels or filesystems without overlayfs, e.g. nested overlay),
#   3. --storage-driver=vfs --iptables=false --ip6tables=false (no netfilter in the sandbox;
#      published ports still work through docker-proxy).
# The flags that worked are printed on the last line, e.g. "dockerd up (flags: none)".
set -euo pipefail

LOG=${DOCKERD_LOG:-/tmp/dockerd.log}
WAIT=${DOCKERD_WAIT:-60}

engine_answers() { timeout 10 docker info >/dev/null 2>&1; }

if ! command -v docker >/dev/null 2>&1; then
  echo "dockerd-up: no docker CLI on PATH (Debian: apt-get install -y docker.io)" >&2
  exit 1
fi

if engine_answers; then
  echo "dockerd-up: engine already running ($(docker version -f '{{.Server.Version}}' 2>/dev/null))"
  exit 0
fi

if ! command -v dockerd >/dev/null 2>&1; then
  echo "dockerd-up: no engine answers and dockerd is not installed (apt-get install -y docker.io)" >&2
  exit 1
fi
if [ "$(id -u)" != 0 ]; then
  echo "dockerd-up: no engine answers and starting dockerd needs root" >&2
  exit 1
fi

try_start() { # $@ = dockerd flags; returns 0 once `docker info` works
  # A pid file left by a dockerd that is gone makes the next one refuse to start.
  for pidfile in /var/run/docker.pid /var/run/docker/containerd/containerd.pid; do
    if [ -f "$pidfile" ] && ! kill -0 "$(cat "$pidfile" 2>/dev/null)" 2>/dev/null; then
      rm -f "$pidfile"
    fi
  done
  echo "dockerd-up: starting dockerd $* (log: $LOG)"
  echo "=== dockerd $* ($(date -u +%FT%TZ))" >>"$LOG"
  # setsid: the daemon must outlive this script and the shell that ran it.
  setsid dockerd "$@" >>"$LOG" 2>&1 </dev/null &
  local pid=$! i
  for ((i = 0; i < WAIT; i++)); do
    if engine_answers; then return 0; fi
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "dockerd-up: dockerd exited; last log lines:" >&2
      tail -n 15 "$LOG" >&2
      return 1
    fi
    sleep 1
  done
  echo "dockerd-up: dockerd did not answer within ${WAIT}s; stopping it" >&2
  tail -n 15 "$LOG" >&2
  kill "$pid" 2>/dev/null || true
  for ((i = 0; i < 15; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
  kill -9 "$pid" 2>/dev/null || true
  return 1
}

if [ -n "${DOCKERD_FLAGS:-}" ]; then
  # shellcheck disable=SC2086 # word splitting of the user's flags is intended
  try_start $DOCKERD_FLAGS && { echo "dockerd up (flags: $DOCKERD_FLAGS)"; exit 0; }
  exit 1
fi

if try_start; then echo "dockerd up (flags: none)"; exit 0; fi
if try_start --storage-driver=vfs; then echo "dockerd up (flags: --storage-driver=vfs)"; exit 0; fi
if try_start --storage-driver=vfs --iptables=false --ip6tables=false; then
  echo "dockerd up (flags: --storage-driver=vfs --iptables=false --ip6tables=false)"
  exit 0
fi
echo "dockerd-up: could not start a Docker engine; see $LOG" >&2
exit 1
