//! The layering of `src/`, written once ([`LAYERS`]) and checked on the source text: a
//! module may use only the modules listed before it. So nothing low depends on something
//! high (a constant of the job queue cannot set the connector's timeouts), and the
//! modules form no circle.
//!
//! What counts as a use: every path in the code (imports and inline paths alike) that
//! starts with `crate::`, `super::` or `self::`, or with a child module the file declares.
//! Comments (doc links included), strings and character literals are skipped.

use std::collections::BTreeSet;

/// Every module of `src/`, bottom to top, in the groups of the layering. A module may use
/// itself and the modules before it (in an earlier group, or earlier in its own). A file
/// belongs to the longest entry its module path starts with: `routes::kv` is part of
/// `routes`, while `jobs::queue` is an entry of its own, which `jobs` may not use. Within
/// a group the order matters only where one uses another.
const LAYERS: &[&[&str]] = &[
    // Leaves: each uses no module of scaleout, or only config or keys.
    &[
        "config",
        "keys",
        "clock",
        "metrics",
        "shutdown",
        "http_client",
        "telemetry",
        "auth",
        "scripts",
        "acl",
        "layers",
    ],
    // Where Redis is, then the bounded calls on it.
    &["connector"],
    &["store"],
    // What is kept in Redis.
    &["fleet", "jobs", "jobs::queue"],
    // The HTTP API on top of it, and the worker loop.
    &["error", "routes", "jobs::worker"],
    // The processes.
    &["startup", "web", "load", "healthcheck"],
    &["cli"],
];

/// A module's path from the crate root, `["jobs", "queue"]`.
type Path = Vec<String>;

/// [`LAYERS`] as one list, bottom first, each entry split into its path.
fn order() -> Vec<Path> {
    LAYERS
        .iter()
        .flat_map(|group| group.iter())
        .map(|name| name.split("::").map(str::to_owned).collect())
        .collect()
}

/// The index in [`order`] of the longest entry that `path` starts with.
fn place(order: &[Path], path: &[String]) -> Option<usize> {
    (0..order.len())
        .filter(|&i| path.starts_with(&order[i]))
        .max_by_key(|&i| order[i].len())
}

#[derive(Debug, PartialEq)]
enum Token {
    Ident(String),
    /// `::`
    PathSep,
    Punct(char),
}

/// The code's tokens, as far as paths need: identifiers, `::` and single punctuation.
/// Comments, strings (raw and byte ones too), character literals and lifetimes are
/// dropped.
fn tokens(text: &str) -> Vec<Token> {
    let chars: Vec<char> = text.chars().collect();
    let at = |i: usize| chars.get(i).copied().unwrap_or('\0');
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '/' && at(i + 1) == '/' {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && at(i + 1) == '*' {
            let mut depth = 0;
            loop {
                if i >= chars.len() {
                    break;
                } else if chars[i] == '/' && at(i + 1) == '*' {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && at(i + 1) == '/' {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if c == '"' {
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                i += if chars[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
        } else if c == '\'' {
            // A character literal ('x', '\n', '\u{..}'), or a lifetime ('a), dropped alike.
            if at(i + 1) == '\\' {
                i += 2;
                while i < chars.len() && chars[i] != '\'' {
                    i += 1;
                }
                i += 1;
            } else if at(i + 2) == '\'' {
                i += 3;
            } else {
                i += 1;
                while at(i).is_alphanumeric() || at(i) == '_' {
                    i += 1;
                }
            }
        } else if c.is_alphabetic() || c == '_' || c.is_ascii_digit() {
            let start = i;
            while at(i).is_alphanumeric() || at(i) == '_' {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let hashes = chars[i..].iter().take_while(|&&h| h == '#').count();
            if matches!(word.as_str(), "r" | "br") && at(i + hashes) == '"' {
                // A raw string: up to the quote followed by as many hashes.
                i += hashes + 1;
                while i < chars.len()
                    && !(chars[i] == '"' && chars[i + 1..].iter().take(hashes).all(|&h| h == '#'))
                {
                    i += 1;
                }
                i += hashes + 1;
            } else if word != "b" || !matches!(at(i), '"' | '\'') {
                // (A byte string's or byte's `b` is dropped; its quote comes next.)
                out.push(Token::Ident(word));
            }
        } else if c == ':' && at(i + 1) == ':' {
            out.push(Token::PathSep);
            i += 2;
        } else {
            if !c.is_whitespace() {
                out.push(Token::Punct(c));
            }
            i += 1;
        }
    }
    out
}

/// The paths of the use tree that starts at `tokens[*i]`, each after `prefix`, with
/// `*i` moved past it: `a::b` is one, `a::{b, c::{self, d}}` three, `a::*` is `a`.
fn tree(tokens: &[Token], i: &mut usize, mut prefix: Path, out: &mut Vec<Path>) {
    loop {
        match tokens.get(*i) {
            Some(Token::Ident(name)) => {
                if name != "self" {
                    prefix.push(name.clone());
                }
                *i += 1;
                if tokens.get(*i) == Some(&Token::PathSep) {
                    *i += 1;
                    continue;
                }
            }
            Some(Token::Punct('{')) => {
                *i += 1;
                while !matches!(tokens.get(*i), None | Some(Token::Punct('}'))) {
                    tree(tokens, i, prefix.clone(), out);
                    if tokens.get(*i) == Some(&Token::Ident("as".into())) {
                        *i += 2;
                    }
                    if tokens.get(*i) == Some(&Token::Punct(',')) {
                        *i += 1;
                    }
                }
                *i += 1;
                return;
            }
            Some(Token::Punct('*')) => *i += 1,
            _ => {}
        }
        out.push(prefix);
        return;
    }
}

/// Every module path the code of the file of module `file` names, resolved from the crate
/// root (inline modules such as `mod tests { use super::*; }` taken into account).
fn uses(file: &[String], text: &str) -> Vec<Path> {
    let tokens = tokens(text);
    let ident = |i: usize| match tokens.get(i) {
        Some(Token::Ident(name)) => Some(name.as_str()),
        _ => None,
    };
    // The child modules this file declares (`mod queue;`): a path may start with one.
    let children: BTreeSet<&str> = (0..tokens.len())
        .filter(|&i| ident(i) == Some("mod") && tokens.get(i + 2) == Some(&Token::Punct(';')))
        .filter_map(|i| ident(i + 1))
        .collect();
    let mut out = Vec::new();
    // The inline modules we are in, each with the brace depth its body opened at.
    let mut inline: Vec<(String, usize)> = Vec::new();
    let mut depth = 0_usize;
    let mut i = 0;
    while i < tokens.len() {
        let here: Path = file
            .iter()
            .cloned()
            .chain(inline.iter().map(|(name, _)| name.clone()))
            .collect();
        match &tokens[i] {
            Token::Punct('{') => depth += 1,
            Token::Punct('}') => {
                depth = depth.saturating_sub(1);
                inline.retain(|&(_, opened)| opened <= depth);
            }
            Token::Ident(word) if word == "mod" => {
                if let (Some(name), Some(Token::Punct('{'))) = (ident(i + 1), tokens.get(i + 2)) {
                    depth += 1;
                    inline.push((name.to_owned(), depth));
                    i += 3;
                    continue;
                }
            }
            Token::Ident(word)
                if tokens.get(i + 1) == Some(&Token::PathSep)
                    && (i == 0 || tokens[i - 1] != Token::PathSep) =>
            {
                let mut base = match word.as_str() {
                    "crate" => Vec::new(),
                    "self" | "super" => here.clone(),
                    child if inline.is_empty() && children.contains(child) => {
                        let mut base = here.clone();
                        base.push(child.to_owned());
                        base
                    }
                    _ => {
                        i += 1;
                        continue;
                    }
                };
                i += 1;
                let mut rest = Vec::new();
                if word == "super" {
                    base.pop();
                }
                while tokens.get(i) == Some(&Token::PathSep) {
                    i += 1;
                    if ident(i) == Some("super") {
                        base.pop();
                        i += 1;
                    } else {
                        tree(&tokens, &mut i, Vec::new(), &mut rest);
                        break;
                    }
                }
                out.extend(rest.into_iter().map(|path| {
                    let mut full = base.clone();
                    full.extend(path);
                    full
                }));
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    out
}

/// What is wrong with the file `name` (its path under `src/`) of module `file`: each use
/// of a module not before it in [`LAYERS`], or of a path that is no module listed there.
fn check(order: &[Path], name: &str, file: &[String], text: &str) -> Vec<String> {
    let Some(own) = place(order, file) else {
        return vec![format!(
            "{name}: module {} is not in LAYERS",
            file.join("::")
        )];
    };
    let mut seen = BTreeSet::new();
    let mut wrong = Vec::new();
    for path in uses(file, text) {
        let Some(used) = place(order, &path) else {
            wrong.push(format!(
                "{name}: uses {}, which is in no layer",
                path.join("::")
            ));
            continue;
        };
        if used > own && seen.insert(used) {
            wrong.push(format!(
                "{name}: {} uses {}, which LAYERS puts above it",
                order[own].join("::"),
                order[used].join("::"),
            ));
        }
    }
    wrong
}

/// Every `.rs` file under `dir` but the crate roots, with its module path.
fn files(src: &std::path::Path, dir: &std::path::Path, out: &mut Vec<(String, Path)>) {
    for entry in std::fs::read_dir(dir).expect("a directory of src/") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            files(src, &path, out);
            continue;
        }
        let relative = path.strip_prefix(src).expect("under src/");
        let name = relative.display().to_string();
        if relative.extension().is_none_or(|ext| ext != "rs")
            || name == "lib.rs"
            || name == "main.rs"
        {
            continue;
        }
        let mut module: Path = relative
            .with_extension("")
            .iter()
            .map(|part| part.to_string_lossy().into_owned())
            .collect();
        if module.last().is_some_and(|last| last == "mod") {
            module.pop();
        }
        out.push((name, module));
    }
}

#[test]
fn no_module_uses_one_above_it() {
    let src = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/src"));
    let mut all = Vec::new();
    files(src, src, &mut all);
    all.sort();
    assert!(all.len() >= 30, "{all:?}");
    let order = order();
    let mut wrong = Vec::new();
    for (name, module) in &all {
        let text = std::fs::read_to_string(src.join(name)).expect("a source file");
        wrong.extend(check(&order, name, module, &text));
    }
    for entry in &order {
        if !all.iter().any(|(_, module)| module == entry) {
            wrong.push(format!(
                "LAYERS lists {}, which has no file",
                entry.join("::")
            ));
        }
    }
    assert!(wrong.is_empty(), "\n{}", wrong.join("\n"));
}

/// The check finds an upward use however it is written, and nothing in comments or
/// strings.
#[test]
fn the_check_sees_upward_uses() {
    let order = order();
    let module = |name: &str| -> Path { name.split("::").map(str::to_owned).collect() };
    let text = r#"
        //! [`crate::cli`] in a doc comment, /* crate::web */ and "crate::startup" are no uses.
        use crate::config::Settings;
        use crate::{keys, jobs::{Job, queue::{self, BLOCK as B}}};
        fn f<'a>(x: &'a str) -> char { let _ = crate::fleet::list; '"' }
        mod tests { use super::*; use super::super::error::ApiError; }
    "#;
    assert_eq!(
        check(&order, "connector.rs", &module("connector"), text),
        [
            "connector.rs: connector uses jobs, which LAYERS puts above it",
            "connector.rs: connector uses jobs::queue, which LAYERS puts above it",
            "connector.rs: connector uses fleet, which LAYERS puts above it",
            "connector.rs: connector uses error, which LAYERS puts above it",
        ]
    );
    // A submodule file's `super` is its parent; a declared child counts as a use.
    let worker = "use super::queue::Claim; use super::Limits; use crate::cli::run;";
    assert_eq!(
        check(&order, "jobs/worker.rs", &module("jobs::worker"), worker),
        ["jobs/worker.rs: jobs::worker uses cli, which LAYERS puts above it"]
    );
    let jobs = "pub mod queue; fn f() { queue::stats(); }";
    assert_eq!(
        check(&order, "jobs/mod.rs", &module("jobs"), jobs),
        ["jobs/mod.rs: jobs uses jobs::queue, which LAYERS puts above it"]
    );
    assert_eq!(
        check(
            &order,
            "routes/kv.rs",
            &module("routes::kv"),
            "use crate::nowhere;"
        ),
        ["routes/kv.rs: uses nowhere, which is in no layer"]
    );
    assert!(
        check(
            &order,
            "routes/kv.rs",
            &module("routes::kv"),
            "use super::AppState;"
        )
        .is_empty()
    );
}
