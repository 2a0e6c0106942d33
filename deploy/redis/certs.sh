#!/bin/sh
# Creates, once, what a Redis that speaks TLS only needs, with openssl: a CA of its own and a
# server certificate it signs. Files that exist are kept; a missing server certificate or key
# is made again from the CA. Needs openssl, mkdir, chmod, mv.
#
#   deploy/redis/certs.sh DIR NAME...
#
# DIR (created if missing, mode 0700) gets
#   redis-tls-ca.crt   the CA certificate: clients verify Redis against it (REDIS_TLS_CA_FILE)
#   redis-tls-ca.key   the CA's key: stays in DIR, never shipped; signs a renewed certificate
#   redis-tls.crt      the server certificate, for the DNS names NAME... (e.g. redis)
#   redis-tls.key      its key
# Keys are EC P-256, mode 0600. The CA is valid 10 years, the server certificate 825 days:
# renew it by deleting redis-tls.crt and redis-tls.key and running this again.
# Prints where the files are and what it created.
set -eu

dir=${1:?usage: certs.sh DIR NAME...}
shift
[ $# -gt 0 ] || { echo "certs.sh: name at least one DNS name for the server certificate" >&2; exit 2; }

mkdir -p "$dir"
chmod 0700 "$dir"
umask 077
cd "$dir"
ec="-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes"
created=
if [ ! -s redis-tls-ca.crt ] || [ ! -s redis-tls-ca.key ]; then
  # shellcheck disable=SC2086 # $ec is several words
  openssl req -x509 $ec -days 3650 -subj "/CN=scaleout Redis CA" \
    -keyout redis-tls-ca.key.tmp -out redis-tls-ca.crt.tmp 2>/dev/null
  mv redis-tls-ca.key.tmp redis-tls-ca.key
  mv redis-tls-ca.crt.tmp redis-tls-ca.crt
  rm -f redis-tls.crt redis-tls.key # signed by a CA that is gone
  created="$created redis-tls-ca.crt redis-tls-ca.key"
fi
if [ ! -s redis-tls.crt ] || [ ! -s redis-tls.key ]; then
  san="DNS:$1"
  shift
  for n in "$@"; do san="$san,DNS:$n"; done
  printf 'subjectAltName=%s\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n' "$san" >redis-tls.ext.tmp
  # shellcheck disable=SC2086
  openssl req $ec -subj "/CN=${san#DNS:}" -keyout redis-tls.key.tmp -out redis-tls.csr.tmp 2>/dev/null
  openssl x509 -req -in redis-tls.csr.tmp -CA redis-tls-ca.crt -CAkey redis-tls-ca.key -CAcreateserial \
    -days 825 -extfile redis-tls.ext.tmp -out redis-tls.crt.tmp 2>/dev/null
  rm -f redis-tls.csr.tmp redis-tls.ext.tmp redis-tls-ca.srl
  mv redis-tls.key.tmp redis-tls.key
  mv redis-tls.crt.tmp redis-tls.crt
  created="$created redis-tls.crt redis-tls.key"
fi
chmod 0600 redis-tls-ca.key redis-tls.key
echo "Redis TLS: $(pwd)/redis-tls{-ca.crt,-ca.key,.crt,.key} (created:${created:- none})"
