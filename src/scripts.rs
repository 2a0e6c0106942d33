//! Every Lua script scaleout runs, each in its own file under `src/scripts/`, compiled in
//! with `include_str!`. Scripts make each change of state one atomic step (see
//! [`crate::jobs::queue`] and [`crate::store`]).
//!
//! Each script touches only keys passed in `KEYS`, never a key name it builds itself, so
//! [`crate::keys`] stays the one place that names keys (and a script would run unchanged
//! where keys must be declared, as on a Redis Cluster). A script that visits keys found
//! in the data (the jobs a list holds, the consumers a set holds) therefore has its
//! caller read those first and pass their keys. Each such script re-checks what it was
//! told against the data before it acts, so a change in between cannot make it act on
//! stale facts: either each step checks the current state of the key it was given (an
//! item no longer in its list is skipped), or the script returns nil having changed
//! nothing and the caller reads again (`jobs::queue`'s `retry_while_changed`).
//!
//! Shared Lua helpers (`dead.lua`, `release.lua`, `lengths.lua`) are files too, put in
//! front of the scripts that use them with `concat!` at compile time.

use std::sync::LazyLock;

use redis::{Script, ScriptInvocation};

use crate::keys;

/// One script's text: its helper files, then its own file.
macro_rules! script {
    ($($file:literal),+) => {
        LazyLock::new(|| Script::new(concat!($(include_str!(concat!("scripts/", $file))),+)))
    };
}

/// Counts a hit on a session and on the global counter.
pub static HIT: LazyLock<Script> = script!("hit.lua");
/// Creates a job and queues its id, unless that id exists.
pub static ENQUEUE: LazyLock<Script> = script!("enqueue.lua");
/// Turns an item BLMOVE moved into a worker's processing list into a claim.
pub static CLAIM: LazyLock<Script> = script!("claim.lua");
/// Extends a claim's lease.
pub static RENEW: LazyLock<Script> = script!("renew.lua");
/// Marks a claimed job done.
pub static COMPLETE: LazyLock<Script> = script!("complete.lua");
/// Records a failed attempt: a retry later, or the dead-letter list.
pub static FAIL: LazyLock<Script> = script!("dead.lua", "fail.lua");
/// Takes back the jobs of dead or stuck workers.
pub static RECLAIM: LazyLock<Script> = script!("dead.lua", "release.lua", "reclaim.lua");
/// Returns a worker's own processing list to the queue, and (un)registers it.
pub static RETURN_OWN: LazyLock<Script> = script!("dead.lua", "release.lua", "return_own.lua");
/// Moves due retries back to the queue.
pub static PROMOTE: LazyLock<Script> = script!("promote.lua");
/// The recent jobs and the lengths.
pub static OVERVIEW: LazyLock<Script> = script!("lengths.lua", "overview.lua");
/// The fleet-wide job counters and the lengths.
pub static STATS: LazyLock<Script> = script!("lengths.lua", "stats.lua");

/// Passes the keys and arguments `lengths.lua` expects first ([`OVERVIEW`], [`STATS`]):
/// the lists, then the `consumers` the caller read and each one's processing list.
pub fn lengths_keys(call: &mut ScriptInvocation<'_>, consumers: &[impl AsRef<str>]) {
    call.key(keys::JOBS)
        .key(keys::DELAYED)
        .key(keys::DEAD)
        .key(keys::CONSUMERS)
        .arg(consumers.len());
    for worker in consumers {
        let worker = worker.as_ref();
        call.key(keys::processing(worker)).arg(worker);
    }
}

#[cfg(test)]
mod tests {
    /// Every script file, read from the source tree, with comments stripped.
    fn scripts() -> Vec<(String, String)> {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/scripts");
        let mut files: Vec<(String, String)> = std::fs::read_dir(dir)
            .expect("src/scripts")
            .map(|entry| entry.expect("a directory entry").path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "lua"))
            .map(|path| {
                let text = std::fs::read_to_string(&path).expect("a script");
                let code = text
                    .lines()
                    .map(|line| line.split("--").next().unwrap_or_default())
                    .collect::<Vec<_>>()
                    .join("\n");
                (path.display().to_string(), code)
            })
            .collect();
        files.sort();
        files
    }

    /// The rule of this module, checked on the text: a command's key is never a literal
    /// name or an argument (it comes from KEYS), and `..` only builds messages (a chain
    /// with a literal that has a space in it), never a key name out of a prefix.
    #[test]
    fn no_script_names_a_key() {
        let files = scripts();
        assert!(files.len() >= 10, "{files:?}");
        for (path, code) in &files {
            for call in code.split("redis.call(").skip(1) {
                let key = call.split(',').nth(1).unwrap_or_default().trim();
                assert!(
                    !key.starts_with('\'') && !key.starts_with("ARGV"),
                    "{path}: a key from a literal or ARGV: redis.call({call:.60}"
                );
            }
            for line in code.lines().filter(|line| line.contains("..")) {
                let literals: Vec<&str> = line.split('\'').skip(1).step_by(2).collect();
                assert!(
                    literals.iter().any(|literal| literal.contains(' ')),
                    "{path}: builds a name with '..': {line}"
                );
            }
        }
    }

    /// Each file is in use: loaded by a script in this module.
    #[test]
    fn every_file_is_loaded() {
        let module = include_str!("scripts.rs");
        for (path, _) in scripts() {
            let name = path.rsplit('/').next().unwrap();
            assert!(module.contains(&format!("\"{name}\"")), "{name} unused");
        }
    }
}
