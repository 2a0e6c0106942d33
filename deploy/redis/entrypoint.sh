#!/bin/sh
# Starts a Redis server or a Sentinel with the ACL users of deploy/redis/*.acl and their
# passwords, read from secret files, so no password is ever an argument (`ps`) or an
# environment value (`docker inspect`). POSIX sh and its builtins only: the redis images
# have sh, redis-server and redis-cli, nothing else.
#
#   entrypoint.sh server [redis-server options...]
#   entrypoint.sh sentinel CONF [redis-server options...]
#
# server:   writes $SCALEOUT_RUN/users.acl (users.acl plus each user's password) and
#           $SCALEOUT_RUN/auth.conf (masteruser/masterauth, so the server can be a replica,
#           now or after a failover), then runs redis-server with both.
# sentinel: CONF is the Sentinel's own file (written once by the stack, then by Sentinel
#           itself); its user lines and its credentials for Redis (auth-user/auth-pass) and
#           for the other Sentinels (sentinel-user/sentinel-pass) are replaced on every
#           start, so a changed secret takes effect at the next restart.
#
# Environment (none of it secret):
#   SCALEOUT_SECRETS  directory of the secret files redis-<user>-password (/run/secrets)
#   SCALEOUT_RUN      where the server's generated files go, a tmpfs (/run/redis)
#   SCALEOUT_ACL_DIR  where users.acl and sentinel.acl are (this script's directory)
# A user whose secret file is missing keeps its rules but no password: it cannot log in.
set -eu

secrets=${SCALEOUT_SECRETS:-/run/secrets}
run=${SCALEOUT_RUN:-/run/redis}
case $0 in */*) here=${0%/*} ;; *) here=. ;; esac
acl_dir=${SCALEOUT_ACL_DIR:-$here}

die() {
  echo "entrypoint: $*" >&2
  exit 1
}

# password USER: the content of USER's secret file (first line), or nothing.
password() {
  pw=
  [ -r "$secrets/redis-$1-password" ] || return 0
  IFS= read -r pw <"$secrets/redis-$1-password" || [ -n "$pw" ] || true
  # Redis reads ACL lines as space-separated words; a password is one word.
  case $pw in *[!A-Za-z0-9._~+=-]*) die "the secret of user $1 has a character other than A-Z a-z 0-9 . _ ~ + = -" ;; esac
  printf '%s' "$pw"
}

# users RULES: every user line of RULES, with the user's password when it has a secret.
users() {
  while IFS= read -r line; do
    case $line in
      "user "*) ;;
      *) continue ;;
    esac
    rest=${line#user }
    name=${rest%% *}
    pw=$(password "$name")
    if [ -n "$pw" ]; then
      printf 'user %s >%s %s\n' "$name" "$pw" "${rest#"$name" }"
    else
      printf '%s\n' "$line"
    fi
  done <"$1"
}

mode=${1:-}
[ $# -gt 0 ] && shift
umask 077
case $mode in
  server)
    users "$acl_dir/users.acl" >"$run/users.acl"
    : >"$run/auth.conf"
    pw=$(password replication)
    if [ -n "$pw" ]; then
      printf 'masteruser replication\nmasterauth %s\n' "$pw" >"$run/auth.conf"
    fi
    exec redis-server "$run/auth.conf" "$@" --aclfile "$run/users.acl"
    ;;
  sentinel)
    conf=${1:?usage: entrypoint.sh sentinel CONF [options...]}
    shift
    [ -s "$conf" ] || die "$conf is missing or empty: write the Sentinel's monitor lines first"
    kept= master=
    while IFS= read -r line; do
      case $line in
        "user "* | "sentinel auth-user "* | "sentinel auth-pass "* | \
          "sentinel sentinel-user "* | "sentinel sentinel-pass "*) continue ;;
        "sentinel monitor "*)
          rest=${line#sentinel monitor }
          master=${rest%% *}
          ;;
      esac
      kept="$kept$line
"
    done <"$conf"
    [ -n "$master" ] || die "$conf has no 'sentinel monitor' line"
    new=$(
      printf '%s' "$kept"
      users "$acl_dir/sentinel.acl"
      pw=$(password sentinel)
      if [ -n "$pw" ]; then
        printf 'sentinel auth-user %s sentinel\nsentinel auth-pass %s %s\n' "$master" "$master" "$pw"
        printf 'sentinel sentinel-user sentinel\nsentinel sentinel-pass %s\n' "$pw"
      fi
    )
    printf '%s\n' "$new" >"$conf"
    exec redis-server "$conf" --sentinel "$@"
    ;;
  *) die "usage: entrypoint.sh server [options...] | sentinel CONF [options...]" ;;
esac
