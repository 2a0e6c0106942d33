# shellcheck shell=bash
# Docker engines of their own for the Swarm tests, sourced by tests/swarm/run.sh.
#
# Each node is one network namespace (its own address on a host bridge) holding a
# containerd and a dockerd with their own data root, exec root, socket and pid file. Nothing
# here touches the default Docker socket, /var/lib/docker or the host's /run/containerd, so
# the compose test's engine runs undisturbed next to them.
#
# Why it is done this way (each point was a failure first):
# - `nsenter --net` + `unshare --mount --uts`, not `ip netns exec`: the latter remounts /sys
#   and dockerd dies with "Devices cgroup isn't mounted" (cgroup v1).
# - One containerd per engine, in a private mount namespace with a tmpfs over /run:
#   containerd 1.6 puts shim sockets under /run/containerd/s/ whatever its --state says, and
#   Traefik needs the node's engine at /var/run/docker.sock.
# - dockerd 20.10 has no --deprecated-key-path flag: it goes into each engine's daemon.json.
# - Every task tries to pull its image first, even with --resolve-image never:
#   DOCKER_SERVICE_PREFER_OFFLINE_IMAGE=1 in dockerd's environment skips that.
# - Each node's resolv.conf names the bridge address, where nothing answers: unknown names
#   fail fast and no lookup leaves the machine.
# - The host's FORWARD chain (policy DROP wherever Docker runs, bridge netfilter on) drops
#   node-to-node frames unless they are accepted; anything else the nodes send is dropped.
#
# The caller sets: PREFIX (names: netns PREFIX-nI, bridge br-PREFIX, socket /run/PREFIX/nI.sock),
# NET (first three octets of the /24), NODES ("1" or "1 2 3"), LOGDIR. It defines say().

DOCKER=${SWARM_DOCKER:-/usr/bin/docker} # Debian's 20.10 client: the same version as dockerd
VAR=/var/lib/$PREFIX                    # data roots (overlay2 needs a non-overlay filesystem)
RUN=/run/$PREFIX                        # exec roots, sockets, pid files (short: socket path limit)
BR=br-$PREFIX
HOSTIP=$NET.1

node_ip() { echo "$NET.1$1"; }
node_sock() { echo "$RUN/n$1.sock"; }
node_name() { echo "$PREFIX-n$1"; }
# the only way the tests talk to an engine
dk() {
  local n=$1
  shift
  timeout "${DKT:-60}" "$DOCKER" -H "unix://$(node_sock "$n")" "$@"
}

# alive = exists and is not a zombie (PID 1 here reaps orphans only every ~2 s)
alive() {
  [ -n "${1:-}" ] && [ -r "/proc/$1/stat" ] || return 1
  local st
  st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 1
  [ -n "$st" ] && [ "$st" != Z ]
}
pid_of() { cat "$RUN/n$1/$2.pid" 2>/dev/null || true; }

stop_pid() { # stop_pid PID GRACE_SECONDS: SIGTERM, then SIGKILL after the grace
  local p=$1 i
  alive "$p" || return 0
  kill -TERM "$p" 2>/dev/null || true
  for ((i = 0; i < $2 * 5; i++)); do alive "$p" || return 0; sleep 0.2; done
  kill -KILL "$p" 2>/dev/null || true
  for ((i = 0; i < 25; i++)); do alive "$p" || return 0; sleep 0.2; done
}

net_up() {
  ip link add "$BR" type bridge
  ip addr add "$HOSTIP/24" dev "$BR"
  ip link set "$BR" up
  local i
  for i in $NODES; do
    ip netns add "$(node_name "$i")"
    ip link add "v-$PREFIX-$i" type veth peer name eth0 netns "$(node_name "$i")"
    ip link set "v-$PREFIX-$i" master "$BR" up
    ip -n "$(node_name "$i")" link set lo up
    ip -n "$(node_name "$i")" addr add "$(node_ip "$i")/24" dev eth0
    ip -n "$(node_name "$i")" link set eth0 up
    ip -n "$(node_name "$i")" route add default via "$HOSTIP"
  done
  iptables -I FORWARD 1 -i "$BR" -o "$BR" -m comment --comment "$PREFIX" -j ACCEPT
  iptables -I FORWARD 2 -i "$BR" ! -o "$BR" -m comment --comment "$PREFIX" -j DROP
}

node_configs() {
  local i=$1 r=$RUN/n$1 v=$VAR/n$1
  mkdir -p "$r/exec" "$r/containerd" "$v/docker" "$v/containerd"
  echo "nameserver $HOSTIP" >"$r/resolv.conf"
  printf '{"deprecated-key-path": "%s"}\n' "$v/key.json" >"$r/daemon.json"
  cat >"$r/containerd.toml" <<EOF
version = 2
root = "$v/containerd"
state = "$r/containerd"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.aufs", "io.containerd.tracing.processor.v1.otlp",
  "io.containerd.internal.v1.tracing"]
[grpc]
  address = "$r/containerd.sock"
[ttrpc]
  address = ""
[debug]
  address = ""
[metrics]
  address = ""
EOF
}

# A `sleep infinity` that owns the node's mount and UTS namespaces inside its netns; the
# node's daemons join it. Its /run is a private tmpfs: the node's engine answers on its own
# /var/run/docker.sock there (what stack.yaml mounts into Traefik), containerd puts its shim
# sockets in its own /run/containerd, and the host's /run is never written. Only $RUN is
# carried over, so the host still sees each node's socket, pid files and exec root.
# Started directly with `&` so that $! is its PID (nsenter and unshare exec, not fork).
start_holder() {
  local i=$1 r=$RUN/n$1 keep=$VAR/n$1/run
  mkdir -p "$keep"
  nsenter --net="/run/netns/$(node_name "$i")" -- unshare --mount --uts --propagation slave -- /bin/sh -c "
    set -e
    hostname $(node_name "$i")
    mount --bind $RUN $keep
    mount -t tmpfs -o mode=0755,size=64m $PREFIX-run /run
    mkdir -p $RUN
    mount --move $keep $RUN
    mount --bind $r/resolv.conf /etc/resolv.conf
    touch $r/holder.ready
    exec sleep infinity" </dev/null >"$LOGDIR/n$i-holder.log" 2>&1 &
  echo $! >"$r/holder.pid"
  disown $! # no "Killed" line from bash when a test crashes the node
}

start_containerd() {
  local i=$1 r=$RUN/n$1
  nsenter -t "$(pid_of "$i" holder)" --net --mount --uts -- containerd --config "$r/containerd.toml" \
    </dev/null >>"$LOGDIR/n$i-containerd.log" 2>&1 &
  echo $! >"$r/containerd.pid"
  disown $! # no "Killed" line from bash when a test crashes the node
}

start_dockerd() {
  local i=$1 r=$RUN/n$1 v=$VAR/n$1
  DOCKER_SERVICE_PREFER_OFFLINE_IMAGE=1 \
    nsenter -t "$(pid_of "$i" holder)" --net --mount --uts -- dockerd \
    --config-file "$r/daemon.json" \
    -H "unix://$(node_sock "$i")" \
    -H unix:///var/run/docker.sock \
    --data-root "$v/docker" \
    --exec-root "$r/exec" \
    --pidfile "$r/dockerd-own.pid" \
    --containerd "$r/containerd.sock" \
    --cgroup-parent "/$PREFIX-n$i" \
    --storage-driver overlay2 \
    --dns "$HOSTIP" \
    --shutdown-timeout 5 \
    </dev/null >>"$LOGDIR/n$i-dockerd.log" 2>&1 &
  echo $! >"$r/dockerd.pid"
  disown $!
}

ready_file() { [ -e "$1" ]; }
ctrd_up() { [ -S "$RUN/n$1/containerd.sock" ] && timeout 5 ctr --address "$RUN/n$1/containerd.sock" version >/dev/null 2>&1; }
engine_up() { # the API answers; fails at once if dockerd died
  alive "$(pid_of "$1" dockerd)" || return 2
  DKT=5 dk "$1" version >/dev/null 2>&1
}

nodes_up() { # net, holders, containerds, dockerds; false if any is not up in time
  local i
  mkdir -p "$RUN" "$VAR"
  net_up
  for i in $NODES; do node_configs "$i"; start_holder "$i"; done
  for i in $NODES; do wait_until 10 ready_file "$RUN/n$i/holder.ready" || { say "holder n$i did not start"; return 1; }; done
  for i in $NODES; do start_containerd "$i"; done
  for i in $NODES; do wait_until 30 ctrd_up "$i" || { say "containerd n$i did not start"; return 1; }; done
  for i in $NODES; do start_dockerd "$i"; done
  for i in $NODES; do
    wait_until 90 engine_up "$i" || { say "dockerd n$i did not start:"; tail -n 5 "$LOGDIR/n$i-dockerd.log"; return 1; }
  done
}

node_cgroup_pids() { cat /sys/fs/cgroup/pids/"$PREFIX-n$1"/*/cgroup.procs 2>/dev/null || true; }
node_shim_pids() { # shims of node $1 only: those started with its containerd's socket
  local a="$RUN/n$1/containerd.sock " p
  for p in /proc/[0-9]*; do
    tr '\0' ' ' 2>/dev/null <"$p/cmdline" | grep -q -- "containerd-shim.* -address $a" && echo "${p#/proc/}"
  done
  return 0
}

# A crash of node $1: its containers, shims, containerd and dockerd all get SIGKILL at once.
node_crash() {
  local p
  for p in $(node_cgroup_pids "$1") $(node_shim_pids "$1") "$(pid_of "$1" containerd)" "$(pid_of "$1" dockerd)"; do
    [ -n "$p" ] && kill -KILL "$p" 2>/dev/null
  done
  return 0
}

node_stop() { # dockerd first (it stops its containers), then whatever is left of the node
  local i=$1 r=$RUN/n$1 p
  stop_pid "$(pid_of "$i" dockerd)" 30
  for p in $(node_cgroup_pids "$i"); do kill -KILL "$p" 2>/dev/null || true; done
  for p in $(node_shim_pids "$i"); do stop_pid "$p" 5; done
  stop_pid "$(pid_of "$i" containerd)" 15
  if [ -e "/run/netns/$(node_name "$i")" ]; then # e.g. docker-proxy
    for p in $(ip netns pids "$(node_name "$i")" 2>/dev/null); do
      [ "$p" = "$(pid_of "$i" holder)" ] || stop_pid "$p" 5
    done
  fi
  stop_pid "$(pid_of "$i" holder)" 5
}

# Everything nodes_up made, by PID and by name; safe to call more than once.
nodes_down() {
  local i p h
  for i in $NODES; do # SIGTERM every engine at once: each stops its own containers
    p=$(pid_of "$i" dockerd)
    if alive "$p"; then kill -TERM "$p" 2>/dev/null || true; fi
  done
  for i in $NODES; do [ -d "$RUN/n$i" ] && node_stop "$i"; done
  for i in $NODES; do
    for h in /sys/fs/cgroup/*/"$PREFIX-n$i"; do
      [ -d "$h" ] && find "$h" -depth -type d -exec rmdir {} \; 2>/dev/null
    done
    ip netns del "$(node_name "$i")" 2>/dev/null
  done
  ip link del "$BR" 2>/dev/null
  while iptables -D FORWARD -i "$BR" -o "$BR" -m comment --comment "$PREFIX" -j ACCEPT 2>/dev/null; do :; done
  while iptables -D FORWARD -i "$BR" ! -o "$BR" -m comment --comment "$PREFIX" -j DROP 2>/dev/null; do :; done
  if findmnt -rn -o TARGET | grep -qE "^($VAR|$RUN)(/|$)"; then
    say "mounts left under $VAR or $RUN: not removing them"
  else
    rm -rf "$VAR" "$RUN"
  fi
  return 0
}

# "daemons MiB / containers MiB": summed RSS of the node's own processes (holder, containerd,
# dockerd, shims, proxies: everything in its netns) and of its containers (its cgroups)
node_rss() {
  local d c
  d=$(for p in $(ip netns pids "$(node_name "$1")" 2>/dev/null); do cat "/proc/$p/status" 2>/dev/null; done | awk '/^VmRSS:/ {s += $2} END {printf "%.0f", s / 1024}')
  c=$(for p in $(node_cgroup_pids "$1"); do cat "/proc/$p/status" 2>/dev/null; done | awk '/^VmRSS:/ {s += $2} END {printf "%.0f", s / 1024}')
  echo "$d MiB / $c MiB"
}
