//! Least privilege, written once. This test writes the Redis ACL rules every stack loads
//! (`deploy/redis/users.acl` for each Redis server, `deploy/redis/sentinel.acl` for each
//! Sentinel) and fails when the committed files differ. Rewrite them with
//! `UPDATE_ACL=1 cargo test --lib acl`.
//!
//! What each role may touch comes from the code it runs: key patterns from [`crate::keys`]
//! (its functions called with `*`), and the commands of the Lua scripts it runs, read from
//! `src/scripts/` (Redis checks every `redis.call` inside a script against the caller's
//! ACL, keys included). The commands a role sends itself are listed here, next to the
//! role; a missing one shows as NOPERM in the test suite, which runs with these rules.
//!
//! The files hold no password. `deploy/redis/entrypoint.sh` adds each user's password
//! from its secret file (`redis-<user>-password`) when Redis or a Sentinel starts; a user
//! with no secret file cannot log in at all.

use std::collections::BTreeSet;

use crate::keys;

const USERS: &str = "deploy/redis/users.acl";
const SENTINEL_USERS: &str = "deploy/redis/sentinel.acl";

/// One client of Redis: its user name, what it sends itself, the scripts it runs, and the
/// key patterns it may touch. Read-only patterns (`%R~`) would not do for the app's
/// queue figures: Redis checks a script's KEYS as written to, whatever the script does.
struct Role {
    user: &'static str,
    commands: &'static [&'static str],
    scripts: &'static [&'static str],
    keys: Vec<String>,
}

/// Commands every connection sends: the keep-warm PING, `ROLE` (Sentinel mode), scripts (EVALSHA, and SCRIPT LOAD when Redis lost them),
/// `WAIT` after writes (`REDIS_WAIT_REPLICAS`), the fleet heartbeat and its atomic read.
const COMMON: &[&str] = &[
    "ping",
    "role",
    "evalsha",
    "script|load",
    "wait",
    "hmset",
    "pexpire",
    "zadd",
    "zremrangebyscore",
    "zrange",
    "del",
    "zrem",
    "hgetall",
    "multi",
    "exec",
    "smembers",
    "lrange",
];

fn roles() -> Vec<Role> {
    let session = keys::session(&uuid::Uuid::nil()).replace(&uuid::Uuid::nil().to_string(), "*");
    let fleet = [keys::instance("*"), keys::INSTANCES.to_owned()];
    let queue = [
        keys::JOBS.to_owned(),
        keys::job("*"),
        keys::RECENT.to_owned(),
    ];
    let worker_side = [
        keys::processing("*"),
        keys::CONSUMERS.to_owned(),
        keys::DELAYED.to_owned(),
        keys::DEAD.to_owned(),
        keys::JOB_STATS.to_owned(),
    ];
    vec![
        Role {
            user: "app",
            // /redis reads INFO replication; /set and /get.
            commands: &["info", "get", "set"],
            scripts: &["hit", "enqueue", "lengths", "overview", "stats"],
            // Its own keys, the fleet, the queue it adds to, and what the dashboard's
            // queue figures read.
            keys: [session, keys::GLOBAL_COUNT.to_owned(), keys::kv("*")]
                .into_iter()
                .chain(fleet.clone())
                .chain(queue.clone())
                .chain(worker_side.clone())
                .collect(),
        },
        Role {
            user: "worker",
            commands: &["blmove", "zrangebyscore"],
            scripts: &[
                "claim",
                "renew",
                "complete",
                "dead",
                "fail",
                "release",
                "reclaim",
                "return_own",
                "promote",
            ],
            // Never a session, a counter or a key/value entry.
            keys: fleet.into_iter().chain(queue).chain(worker_side).collect(),
        },
    ]
}

/// The commands a script file calls, lower case: `redis.call('HSET', ...)`.
fn script_commands(name: &str) -> BTreeSet<String> {
    let path = format!("{}/src/scripts/{name}.lua", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    text.split("redis.call(")
        .skip(1)
        .map(|call| {
            let quoted = call.trim_start();
            let quote = quoted.chars().next().expect("a command name");
            assert!(
                quote == '\'' || quote == '"',
                "{path}: redis.call without a literal name"
            );
            quoted[1..]
                .split(quote)
                .next()
                .expect("a closing quote")
                .to_lowercase()
        })
        .collect()
}

/// Every user line of a Redis server's ACL, `default` first.
fn server_rules() -> String {
    let mut out = header("Redis server");
    // `default` is on but has no password, so nobody can log in as it and a client that
    // does not log in gets NOAUTH. Not `off`: Redis replays the append-only file as
    // `default`, and with it off drops every transaction (each script's writes) on a
    // restart, silently (redis/redis#14541; 7.0 and 8.2 do it).
    out.push_str("user default on resetpass resetkeys resetchannels ~* &* +@all\n");
    out.push_str("user admin on ~* &* +@all\n");
    for role in roles() {
        let mut commands: BTreeSet<String> = COMMON
            .iter()
            .chain(role.commands)
            .map(|c| c.to_string())
            .collect();
        for script in role.scripts {
            commands.extend(script_commands(script));
        }
        let mut line = format!("user {} on resetkeys resetchannels -@all", role.user);
        for command in commands {
            line.push_str(&format!(" +{command}"));
        }
        for key in role.keys {
            line.push_str(&format!(" ~{key}"));
        }
        out.push_str(&line);
        out.push('\n');
    }
    // Replicas (masteruser) and Sentinels, with the commands Redis's own docs list for them.
    out.push_str("user replication on resetkeys resetchannels -@all +psync +replconf +ping\n");
    out.push_str(
        "user sentinel on resetkeys resetchannels &__sentinel__:hello -@all +multi +slaveof \
         +ping +exec +subscribe +config|rewrite +role +publish +info +client|setname \
         +client|kill +script|kill\n",
    );
    out.push_str(HEALTHCHECK);
    out
}

/// Every user line of a Sentinel's ACL: clients may only ask where the primary is.
fn sentinel_rules() -> String {
    let mut out = header("Sentinel");
    out.push_str("user default off resetkeys resetchannels -@all\n");
    out.push_str("user admin on ~* &* +@all\n");
    for role in roles() {
        out.push_str(&format!(
            "user {} on resetkeys resetchannels -@all +ping \
             +sentinel|get-master-addr-by-name\n",
            role.user
        ));
    }
    // Sentinels talk to each other as this user (sentinel-user).
    out.push_str("user sentinel on ~* &* +@all\n");
    out.push_str(HEALTHCHECK);
    out
}

/// Container health probes: PING and nothing else, so it needs no secret.
const HEALTHCHECK: &str = "user healthcheck on nopass resetkeys resetchannels -@all +ping\n";

fn header(what: &str) -> String {
    format!(
        "# The ACL of every {what} in every stack. Generated from src/keys.rs and \
         src/scripts/*.lua\n# by src/acl.rs: do not edit; `UPDATE_ACL=1 cargo test --lib acl` \
         rewrites it.\n# No passwords here: deploy/redis/entrypoint.sh adds them from the \
         secret files.\n"
    )
}

/// Compares a committed file with what the code says it must hold (or rewrites it).
fn check(path: &str, fresh: &str) {
    let full = format!("{}/{path}", env!("CARGO_MANIFEST_DIR"));
    if std::env::var_os("UPDATE_ACL").is_some() {
        std::fs::write(&full, fresh).expect("write the ACL file");
    }
    let committed = std::fs::read_to_string(&full).unwrap_or_default();
    assert!(
        committed == fresh,
        "{path} is stale: rewrite it with UPDATE_ACL=1 cargo test --lib acl"
    );
}

#[test]
fn acl_files_are_current() {
    check(USERS, &server_rules());
    check(SENTINEL_USERS, &sentinel_rules());
}

#[test]
fn script_commands_are_read_from_the_files() {
    let hit = script_commands("hit");
    assert_eq!(
        hit.into_iter().collect::<Vec<_>>(),
        ["expire", "incr"],
        "hit.lua calls INCR and EXPIRE"
    );
}

#[test]
fn every_script_belongs_to_a_role() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/scripts");
    let used: BTreeSet<&str> = roles().iter().flat_map(|r| r.scripts.to_vec()).collect();
    for entry in std::fs::read_dir(dir).expect("src/scripts") {
        let path = entry.expect("an entry").path();
        let name = path.file_stem().and_then(|s| s.to_str()).expect("a name");
        assert!(
            used.contains(name),
            "no role runs {name}.lua: add it to acl::roles"
        );
    }
}
