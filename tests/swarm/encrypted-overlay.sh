#!/usr/bin/env bash
# Does Docker's encrypted overlay (IPsec ESP between the nodes) work on this machine's
# kernel? A measurement, not part of make test: two Docker engines in network namespaces
# (tests/swarm/nodes.sh), a swarm, then for an overlay network without and with
# `--opt encrypted`: Redis on node 2, a redis-cli on node 1 writes a marker through it while
# tcpdump captures the VXLAN (UDP 4789) and ESP packets on node 1's link (the host end of
# its veth: a capture on the bridge misses what the bridge forwards between its ports). Prints, for
# each network, whether the client got its answer, the packets captured, whether the marker
# is readable in them, the nodes' xfrm states, and Docker's log lines about the SAs.
#
#   tests/swarm/encrypted-overlay.sh        (as root; needs what tests/swarm/run.sh needs,
#                                            tcpdump, and the redis:8.2-alpine image on the
#                                            default engine: deploy/images/build.sh)
#
# Last line: "encrypted overlay: works" or "encrypted overlay: does not work (...)".
# Exits 0 when it measured, 1 when the setup failed. Removes everything it made.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PREFIX=sso-enc NET=192.168.233 NODES="1 2"
LOGDIR=/tmp/scaleout-swarm-enc-logs
rm -rf "$LOGDIR"
mkdir -p "$LOGDIR"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/scaleout-enc.XXXXXX")
# shellcheck source=tests/lib/checks.sh
. "$ROOT/tests/lib/checks.sh"
# shellcheck source=tests/swarm/nodes.sh
. "$ROOT/tests/swarm/nodes.sh"
IMAGE=redis:8.2-alpine

TCPDUMP_PID=""
cleanup() {
  if [ -n "$TCPDUMP_PID" ]; then kill "$TCPDUMP_PID" 2>/dev/null; fi
  nodes_down
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 124' INT TERM

[ "$(id -u)" = 0 ] || die "needs root"
for c in dockerd containerd nsenter unshare ip iptables tcpdump "$DOCKER"; do
  command -v "$c" >/dev/null || die "missing command: $c"
done
"$DOCKER" image inspect "$IMAGE" >/dev/null 2>&1 || die "no $IMAGE on the default engine (deploy/images/build.sh standins)"
echo "kernel $(uname -r): CONFIG_INET_ESP=$(zcat /proc/config.gz 2>/dev/null | sed -n 's/^CONFIG_INET_ESP=//p;s/^# CONFIG_INET_ESP is not set/unset/p' || echo '?')," \
  "rfc4106(gcm(aes)) in /proc/crypto: $(grep -c 'rfc4106(gcm(aes))' /proc/crypto)"

nodes_up || die "starting the engines (logs: $LOGDIR)"
"$DOCKER" save "$IMAGE" >"$TMP/image.tar" || die "docker save $IMAGE"
for i in $NODES; do DKT=120 dk "$i" load -q -i "$TMP/image.tar" >/dev/null || die "loading the image on node $i"; done
dk 1 swarm init --advertise-addr "$(node_ip 1)" >/dev/null || die "swarm init"
dk 2 swarm join --token "$(dk 1 swarm join-token -q manager)" --advertise-addr "$(node_ip 2)" "$(node_ip 1):2377" >/dev/null || die "swarm join"

pong() { [ "$(dk 2 exec "$1" redis-cli ping 2>/dev/null)" = PONG ]; }

# probe NAME [network create options...]: prints the figures; sets ANSWERED=1 if the
# client on node 1 got its marker back from Redis on node 2
probe() {
  local net=$1 marker="marker-$1-$RANDOM$RANDOM" c out t rc
  shift
  ANSWERED=0
  say "overlay network '$net' ${*:-(no options)}"
  dk 1 network create -d overlay --attachable "$@" "$net" >/dev/null || die "network create $net"
  tcpdump -i "v-$PREFIX-1" -n -U -s 0 -Z root -w "$TMP/$net.pcap" 'udp port 4789 or ip proto 50' 2>"$TMP/tcpdump.err" &
  TCPDUMP_PID=$!
  wait_until 10 grep -q 'listening on' "$TMP/tcpdump.err" || die "tcpdump did not start"
  dk 2 run -d --name "redis-$net" --network "$net" "$IMAGE" redis-server --protected-mode no >/dev/null || die "redis on node 2"
  wait_until 20 pong "redis-$net" || die "redis on node 2 not up"
  t=$(ms)
  c=$(dk 1 run -d --network "$net" "$IMAGE" redis-cli -h "redis-$net" set probe "$marker") || die "client on node 1"
  # redis-cli has no connect timeout: wait for its exit at most 15 s
  if rc=$(DKT=15 dk 1 wait "$c"); then
    out=$(dk 1 logs "$c" 2>&1)
    [ "$rc" = 0 ] && [ "$out" = OK ] && ANSWERED=1
    echo "  client on node 1 -> Redis on node 2: exit $rc after $(($(ms) - t)) ms: $out"
  else
    echo "  client on node 1 -> Redis on node 2: no answer within 15 s"
  fi
  dk 1 rm -f "$c" >/dev/null
  dk 2 rm -f "redis-$net" >/dev/null
  kill "$TCPDUMP_PID"
  wait "$TCPDUMP_PID" 2>/dev/null
  TCPDUMP_PID=""
  cp "$TMP/$net.pcap" "$LOGDIR/"
  echo "  captured on node 1's link: $(tcpdump -r "$TMP/$net.pcap" -n 'udp port 4789' 2>/dev/null | grep -c VXLAN) VXLAN packets, $(tcpdump -r "$TMP/$net.pcap" -n 'ip proto 50' 2>/dev/null | grep -c .) ESP packets; the marker readable in $(grep -acF "$marker" "$TMP/$net.pcap") of them"
  for i in $NODES; do
    echo "  node $i: $(ip -n "$(node_name "$i")" xfrm state | grep -c '^src') xfrm states, $(ip -n "$(node_name "$i")" xfrm policy | grep -c '^src') xfrm policies"
  done
}

probe plain
plain_ok=$ANSWERED
probe encrypted --opt encrypted
enc_ok=$ANSWERED
say "Docker's log lines about the encrypted network's SAs (node 1; keys cut out)"
grep -h 'Failed Adding' "$LOGDIR/n1-dockerd.log" | sed -E 's/Key: 0x[0-9a-f]+/Key: .../g; s/.*msg="([^{]*)\{.*(: [^"]*)"$/  \1...\2/' | sort | uniq -c | head -n 5

echo
[ "$plain_ok" = 1 ] || die "the plain overlay does not carry traffic between the nodes: nothing measured"
if [ "$enc_ok" = 1 ]; then
  echo "encrypted overlay: works"
else
  echo "encrypted overlay: does not work (the plain overlay does; the encrypted one carried no answer between the nodes)"
fi
