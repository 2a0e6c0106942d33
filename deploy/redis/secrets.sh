#!/bin/sh
# Creates the Redis passwords of a stack, once: DIR/redis-<user>-password for the users with
# a password in deploy/redis/*.acl (admin, app, worker, replication, sentinel), each 48 random
# hex digits from /dev/urandom. A file that exists is kept as it is (its password too): run it
# before every start. Needs head, od, tr, mkdir, chmod, mv (coreutils), nothing else.
#
#   deploy/redis/secrets.sh DIR [MODE]
#
# DIR is created if missing and set to 0700: no other user of the host can open its files.
# MODE (default 0600) is every file's mode, set on existing files too: 0644 where processes
# of other users read them through bind mounts that keep the host's owner and mode (Docker
# Compose's file secrets, read in the containers by uid 65534 and 999).
# Prints where the passwords are and how many it created.
set -eu

dir=${1:?usage: secrets.sh DIR [MODE]}
mode=${2:-0600}
case $mode in 0[0-7][0-7][0-7]) ;; *) echo "secrets.sh: MODE must be like 0600, not $mode" >&2; exit 2 ;; esac

mkdir -p "$dir"
chmod 0700 "$dir"
umask 077
created=0
for user in admin app worker replication sentinel; do
  file="$dir/redis-$user-password"
  if [ ! -e "$file" ]; then
    pw=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
    [ ${#pw} -eq 48 ] || { echo "secrets.sh: could not read 24 random bytes from /dev/urandom" >&2; exit 1; }
    # written whole under another name, then renamed: never a half-written file
    printf '%s\n' "$pw" >"$file.tmp.$$"
    mv "$file.tmp.$$" "$file"
    created=$((created + 1))
  fi
  chmod "$mode" "$file"
done
abs=$(cd "$dir" && pwd)
echo "Redis passwords: $abs/redis-{admin,app,worker,replication,sentinel}-password ($created created, $((5 - created)) kept; admin is the operator's login: redis-cli --user admin --askpass)"
