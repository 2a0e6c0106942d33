//! The API contract, once. Every JSON body the servers send is a Rust type (next to the
//! handler that sends it); this test writes the dashboard's TypeScript from those types into
//! `frontend/src/api/generated.ts`, and fails when the committed file differs. Rewrite it
//! with `UPDATE_CONTRACT=1 cargo test --lib contract`.
//!
//! The file holds two things generated from the same types: the TypeScript declarations,
//! and `schema`, a small runtime table of each type's fields that `decode.ts` checks
//! responses against, so no field is written by hand on the TypeScript side.
//!
//! Why ts-rs (12.x) rather than specta or typeshare: ts-rs is stable (specta 2 is still a
//! release candidate after years), works as a derive plus a plain `cargo test` with no
//! build script and no network (typeshare needs its own CLI installed and parses source
//! files), follows serde's attributes (`rename_all`, `flatten`, `skip_serializing_if`),
//! declares MSRV 1.78, and is actively maintained. It is a dev-dependency behind
//! `cfg_attr(test)`: the release binary neither builds nor contains it.
//!
//! ts-rs has no field-level reflection, so `schema` is read back from the type expressions
//! ts-rs writes (`inline`). The reader knows only the forms this API uses and panics on
//! anything else, so a new kind of field cannot slip through unchecked.

use std::fmt::Write;
use std::path::Path;

use ts_rs::{Config, TS};

use super::fleet::Fleet;
use super::health::{Readiness, ReadyStatus};
use super::jobs::{Overview, Submitted};
use super::kv::Entry;
use super::redis::{Replica, Sentinel, Tier};
use super::session::Visit;
use crate::connector::Mode;
use crate::error::ErrorBody;
use crate::fleet::{Instance, Role};
use crate::jobs::{Job, Status};
use crate::shutdown::{Health, HealthStatus};

const OUT: &str = "frontend/src/api/generated.ts";

/// One type of the contract as ts-rs sees it.
struct Declared {
    name: String,
    docs: String,
    decl: String,
    inline: String,
}

impl Declared {
    fn of<T: TS>(cfg: &Config) -> Self {
        Self {
            name: T::name(cfg),
            docs: T::docs().unwrap_or_default(),
            decl: T::decl(cfg),
            inline: T::inline(cfg),
        }
    }
}

/// Every type the dashboard may read, in the order the file lists them.
fn contract() -> Vec<Declared> {
    // JSON numbers: u64 timestamps and counts stay far below 2^53.
    let cfg = &Config::new().with_large_int("number");
    vec![
        Declared::of::<Visit<'static>>(cfg),
        Declared::of::<Role>(cfg),
        Declared::of::<Instance>(cfg),
        Declared::of::<Fleet<'static>>(cfg),
        Declared::of::<Entry<'static>>(cfg),
        Declared::of::<Submitted<'static>>(cfg),
        Declared::of::<Status>(cfg),
        Declared::of::<Job>(cfg),
        Declared::of::<Overview<'static>>(cfg),
        Declared::of::<HealthStatus>(cfg),
        Declared::of::<Health>(cfg),
        Declared::of::<ReadyStatus>(cfg),
        Declared::of::<Readiness>(cfg),
        Declared::of::<Mode>(cfg),
        Declared::of::<Replica>(cfg),
        Declared::of::<Sentinel>(cfg),
        Declared::of::<Tier<'static>>(cfg),
        Declared::of::<ErrorBody<'static>>(cfg),
    ]
}

/// The whole of `generated.ts`.
fn render(types: &[Declared]) -> String {
    let mut out = String::from(
        "// Generated from the Rust response types by src/routes/contract.rs: do not edit.\n\
         // `UPDATE_CONTRACT=1 cargo test --lib contract` rewrites it. Timestamps are unix ms.\n\
         import type { Shape } from './decode'\n",
    );
    for t in types {
        let _ = write!(out, "\n{}export {}\n", t.docs, pretty(&t.decl));
    }
    out.push_str("\n/** Every type by name: what `decode(name, ...)` returns. */\nexport interface ApiTypes {\n");
    for t in types {
        let _ = writeln!(out, "  {0}: {0}", t.name);
    }
    out.push_str(
        "}\n\n/** The runtime shape of each type, for decode.ts. */\nexport const schema = {\n",
    );
    let names: Vec<&str> = types.iter().map(|t| t.name.as_str()).collect();
    for t in types {
        let _ = writeln!(out, "  {}: {},", t.name, shape(&t.inline, &names));
    }
    out.push_str("} as const satisfies Record<keyof ApiTypes, Shape>\n");
    out
}

/// ts-rs writes each field doc as a multi-line block in the middle of a one-line type;
/// here each doc shrinks to one `/** ... */` before its field, and the type stays on one
/// line (a line per field would make same-shaped types look like copies of each other).
fn pretty(decl: &str) -> String {
    let Some((head, body)) = decl.split_once("= {") else {
        return decl.to_owned();
    };
    let body = body.trim_end().strip_suffix("};").expect("an object type");
    let fields: Vec<String> = split_top(body)
        .into_iter()
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .map(|part| {
            let (doc, field) = part.rsplit_once("*/").unwrap_or(("", part));
            let doc: Vec<&str> = doc
                .lines()
                .map(|l| {
                    l.trim()
                        .trim_start_matches("/**")
                        .trim_start_matches('*')
                        .trim()
                })
                .filter(|l| !l.is_empty())
                .collect();
            if doc.is_empty() {
                field.trim().to_owned()
            } else {
                format!("/** {} */ {}", doc.join(" "), field.trim())
            }
        })
        .collect();
    format!("{head}= {{ {} }};", fields.join(", "))
}

/// A type expression as a `Shape`: an object's fields, or a union of string literals.
fn shape(inline: &str, names: &[&str]) -> String {
    let ts = strip_comments(inline);
    let ts = ts.trim();
    if let Some(body) = ts.strip_prefix('{').and_then(|b| b.strip_suffix('}')) {
        let fields: Vec<String> = split_top(body)
            .into_iter()
            .map(str::trim)
            .filter(|f| !f.is_empty())
            .map(|f| {
                let (name, ty) = f.split_once(':').unwrap_or_else(|| panic!("field {f:?}"));
                match name.trim().strip_suffix('?') {
                    Some(name) => format!("{name}: {{ optional: {} }}", field(ty, names)),
                    None => format!("{}: {}", name.trim(), field(ty, names)),
                }
            })
            .collect();
        format!("{{ fields: {{ {} }} }}", fields.join(", "))
    } else {
        format!("{{ oneOf: [{}] }}", literals(ts))
    }
}

/// One field's type: a primitive, a named type of the contract, an array, or nullable.
fn field(ty: &str, names: &[&str]) -> String {
    let ty = ty.trim();
    if let Some(inner) = ty.strip_suffix("| null") {
        return format!("{{ nullable: {} }}", field(inner, names));
    }
    if let Some(inner) = ty.strip_prefix("Array<").and_then(|t| t.strip_suffix('>')) {
        return format!("{{ array: {} }}", field(inner, names));
    }
    match ty {
        "string" | "number" | "boolean" => format!("'{ty}'"),
        name if names.contains(&name) => format!("{{ ref: '{name}' }}"),
        other => panic!("no schema form for the TypeScript type {other:?}: extend contract.rs"),
    }
}

/// Splits an object body at its fields' commas, not at commas nested in `<>` or `{}` or
/// inside a doc comment.
fn split_top(body: &str) -> Vec<&str> {
    let (mut parts, mut depth, mut start, mut skip_to) = (Vec::new(), 0i32, 0, 0);
    for (i, c) in body.char_indices() {
        if i < skip_to {
            continue;
        }
        if body[i..].starts_with("/*") {
            skip_to = i + body[i..].find("*/").expect("closed comment") + 2;
            continue;
        }
        match c {
            '<' | '{' | '(' => depth += 1,
            '>' | '}' | ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&body[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&body[start..]);
    parts
}

/// `"a" | "b"` as `'a', 'b'`.
fn literals(union: &str) -> String {
    union
        .split('|')
        .map(|lit| {
            let lit = lit.trim();
            let value = lit
                .strip_prefix('"')
                .and_then(|l| l.strip_suffix('"'))
                .filter(|l| !l.contains(['"', '\'', '\\']))
                .unwrap_or_else(|| panic!("not a plain string literal: {lit:?}"));
            format!("'{value}'")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Drops the `/** ... */` doc comments ts-rs writes inside object types.
fn strip_comments(ts: &str) -> String {
    let mut out = String::with_capacity(ts.len());
    let mut rest = ts;
    while let Some(start) = rest.find("/*") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find("*/").expect("closed comment");
        rest = &rest[start + end + 2..];
    }
    out.push_str(rest);
    out
}

#[test]
fn generated_typescript_is_current() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(OUT);
    let fresh = render(&contract());
    if std::env::var_os("UPDATE_CONTRACT").is_some() {
        std::fs::write(&path, &fresh).expect("write generated.ts");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == fresh,
        "{OUT} is stale: the Rust response types changed. Run \
         `UPDATE_CONTRACT=1 cargo test --lib contract` and commit the result."
    );
}

#[test]
fn schema_reads_every_form_the_api_uses() {
    let names = ["Job"];
    assert_eq!(
        shape(
            "{ /** doc, with a comma */ a: string, b?: Job, c: Array<Job>, d: number | null, }",
            &names
        ),
        "{ fields: { a: 'string', b: { optional: { ref: 'Job' } }, c: { array: { ref: 'Job' } }, d: { nullable: 'number' } } }"
    );
    assert_eq!(
        shape(r#""app" | "worker""#, &names),
        "{ oneOf: ['app', 'worker'] }"
    );
}

#[test]
#[should_panic(expected = "no schema form")]
fn schema_refuses_what_it_cannot_check() {
    shape("{ a: Record<string, number>, }", &[]);
}
