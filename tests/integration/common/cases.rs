//! The request cases of `tests/cases/*.json`, one list that this suite sends to the app
//! directly and `tests/cases/send.py` sends through Traefik. How a case becomes bytes is
//! written in `malformed.json`'s `about`; [`request`] and `send.py`'s `build` follow it.

use std::path::Path;

use serde_json::Value;

/// `tests/cases/NAME.json`.
pub fn file(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/cases/{name}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The file's `cases`.
pub fn list(doc: &Value) -> &[Value] {
    doc["cases"].as_array().expect("a `cases` list")
}

/// The raw request of a case, sent to the app directly (no `/api` prefix).
pub fn request(case: &Value) -> Vec<u8> {
    if let Some(raw) = case["raw"].as_str() {
        return expand(raw);
    }
    let target = case["target"].as_str().expect("a `target` or a `raw`");
    let method = case["method"].as_str().unwrap_or("GET");
    let mut head = vec![
        [
            format!("{method} ").as_bytes(),
            &expand(target),
            b" HTTP/1.1",
        ]
        .concat(),
        b"Host: t".to_vec(),
    ];
    let headers: Vec<&str> = case["headers"]
        .as_array()
        .map(|h| {
            h.iter()
                .map(|h| h.as_str().expect("a header line"))
                .collect()
        })
        .unwrap_or_default();
    head.extend(headers.iter().map(|h| expand(h)));
    if let Some(run) = case.get("header_run") {
        let value = expand(run["value"].as_str().expect("header_run.value"));
        let count = run["count"].as_u64().expect("header_run.count");
        head.extend((0..count).map(|i| [format!("X-H{i}: ").as_bytes(), &value].concat()));
    }
    let names_length = headers
        .iter()
        .any(|h| h.to_ascii_lowercase().starts_with("content-length:"));
    let body = match case["body"].as_str().map(expand) {
        Some(body) if case["chunked"] == true => {
            head.push(b"Transfer-Encoding: chunked".to_vec());
            [
                format!("{:x}\r\n", body.len()).as_bytes(),
                &body,
                b"\r\n0\r\n\r\n",
            ]
            .concat()
        }
        Some(body) => {
            if !names_length {
                head.push(format!("Content-Length: {}", body.len()).into_bytes());
            }
            body
        }
        None => Vec::new(),
    };
    if case["keep_open"] != true {
        head.push(b"Connection: close".to_vec());
    }
    [head.join(&b"\r\n"[..]), b"\r\n\r\n".to_vec(), body].concat()
}

/// `{N*c}` stands for c N times; every character is one byte (U+0000..U+00FF).
fn expand(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        out.extend(bytes(&rest[..open]));
        let after = &rest[open + 1..];
        let digits = after.len() - after.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        let mut tail = after[digits..].chars();
        match (
            after[..digits].parse::<usize>(),
            tail.next(),
            tail.next(),
            tail.next(),
        ) {
            (Ok(n), Some('*'), Some(c), Some('}')) => {
                out.extend(bytes(&c.to_string()).repeat(n));
                rest = tail.as_str();
            }
            _ => {
                out.push(b'{');
                rest = after;
            }
        }
    }
    out.extend(bytes(rest));
    out
}

fn bytes(text: &str) -> Vec<u8> {
    text.chars()
        .map(|c| u8::try_from(u32::from(c)).unwrap_or_else(|_| panic!("{c:?} is not one byte")))
        .collect()
}
