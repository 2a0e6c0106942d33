//! `scaleout web`: serves the built dashboard (`WEB_ROOT`, Vite's `dist/`) so the images
//! need no nginx. Hashed assets are cached for a year, `index.html` is revalidated, a
//! precompressed `.br`/`.gz` sibling is sent when the client accepts it (`q=0` refuses),
//! unknown extensionless paths fall back to `index.html` (the single-page app), and no
//! request path can leave `WEB_ROOT`: `..` segments are refused, and only files whose
//! canonical path lies under the canonical root are loaded, which also stops symlinks
//! that point outside.
//!
//! The whole root is read into memory once, at start-up: it cannot change inside an image,
//! the dashboard is a few hundred KB, and requests then make no filesystem calls at all.
//! Each file's ETag is a hash of its bytes, so a new build under the same names (same
//! sizes, same mtimes, as in a Nix image) is never answered 304 with the old page.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hasher};
use std::io;
use std::net::TcpListener;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use ntex::http::{Method, StatusCode, header};
use ntex::util::Bytes;
use ntex::web::{self, App, HttpRequest, HttpResponse, types::State};
use percent_encoding::percent_decode_str;
use serde_json::json;

use crate::config::Settings;
use crate::shutdown::Drain;
use crate::startup::Application;

/// One file of the root, as it will be sent.
struct File {
    bytes: Bytes,
    /// Quoted, from the content: `"<len>-<hash>"`.
    etag: String,
}

impl File {
    fn new(bytes: Vec<u8>) -> Self {
        // SipHash with fixed keys: the same bytes give the same tag in every replica
        // running this binary; a different build of the file gives another one.
        let mut h = DefaultHasher::new();
        h.write(&bytes);
        let etag = format!("\"{:x}-{:016x}\"", bytes.len(), h.finish());
        Self {
            bytes: bytes.into(),
            etag,
        }
    }
}

/// Every file under the root, by relative path with `/` separators (`assets/x.js`).
type Files = HashMap<String, File>;

#[derive(Clone)]
struct WebState {
    files: Arc<Files>,
    drain: Drain,
}

/// Loads `WEB_ROOT`, binds and starts the static server; run it with
/// [`Application::run_until_stopped`].
pub fn build(settings: Settings) -> io::Result<Application> {
    let named = |e: io::Error| {
        io::Error::new(
            e.kind(),
            format!("WEB_ROOT {}: {e}", settings.web_root.display()),
        )
    };
    let root = settings.web_root.canonicalize().map_err(named)?;
    let mut files = Files::new();
    load(&root, &root, &mut files).map_err(named)?;
    if !files.contains_key("index.html") {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("WEB_ROOT {} has no index.html", root.display()),
        ));
    }
    tracing::info!(
        files = files.len(),
        bytes = files.values().map(|f| f.bytes.len()).sum::<usize>(),
        "web root loaded"
    );
    let state = WebState {
        files: Arc::new(files),
        drain: Drain::default(),
    };
    let drain = state.drain.clone();
    let listener = TcpListener::bind(settings.listen_addr)?;
    let factory = async move || {
        App::new()
            .state(state.clone())
            .service(web::resource("/healthz").to(healthz))
            .default_service(web::to(serve))
    };
    Application::start(factory, listener, Arc::new(settings), drain, None)
}

/// Reads every regular file under `dir` into `files`. A symlink is followed only when its
/// target is a file under `root`; symlinked directories are not entered (no loops).
fn load(root: &Path, dir: &Path, files: &mut Files) -> io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let kind = entry.file_type()?;
        if kind.is_dir() {
            load(root, &path, files)?;
            continue;
        }
        let Ok(real) = path.canonicalize() else {
            continue;
        };
        if !real.starts_with(root) || !real.is_file() {
            continue;
        }
        let Some(name) = path
            .strip_prefix(root)
            .ok()
            .and_then(Path::to_str)
            .map(|n| n.replace(std::path::MAIN_SEPARATOR, "/"))
        else {
            continue;
        };
        files.insert(name, File::new(std::fs::read(&real)?));
    }
    Ok(())
}

async fn healthz(state: State<WebState>) -> HttpResponse {
    state.drain.health()
}

fn error(status: StatusCode, message: &str) -> HttpResponse {
    HttpResponse::build(status).json(&json!({ "error": message }))
}

async fn serve(req: HttpRequest, state: State<WebState>) -> HttpResponse {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
    }
    let relative = match safe_relative(req.path()) {
        Ok(p) => p,
        Err(msg) => return error(StatusCode::BAD_REQUEST, msg),
    };
    let Some((name, spa)) = resolve(&state.files, &relative) else {
        return error(StatusCode::NOT_FOUND, "not found");
    };
    let accept = req
        .headers()
        .get_all(header::ACCEPT_ENCODING)
        .filter_map(|v| v.to_str().ok())
        .collect::<Vec<_>>()
        .join(",");
    let (file, encoding) = [("br", "br"), ("gzip", "gz")]
        .into_iter()
        .filter(|(enc, _)| accepts(&accept, enc))
        .find_map(|(enc, ext)| {
            state
                .files
                .get(&format!("{name}.{ext}"))
                .map(|f| (f, Some(enc)))
        })
        .unwrap_or((&state.files[name], None));
    let mut res = HttpResponse::Ok();
    res.content_type(mime(name))
        .header(header::CACHE_CONTROL, cache_control(name, spa))
        .header(header::ETAG, file.etag.as_str())
        .header(header::VARY, "Accept-Encoding")
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    if let Some(enc) = encoding {
        res.header(header::CONTENT_ENCODING, enc);
    }
    let fresh = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == file.etag));
    if fresh {
        return res.status(StatusCode::NOT_MODIFIED).finish();
    }
    // For HEAD, ntex sends the headers of this body (its length) and not the body.
    res.body(file.bytes.clone())
}

/// Whether an `Accept-Encoding` value accepts `enc`: named (or `*`) with a q-value above 0.
/// An explicit entry wins over `*`, so `*, br;q=0` refuses br.
fn accepts(header: &str, enc: &str) -> bool {
    let mut wildcard = None;
    for entry in header.split(',') {
        let mut parts = entry.split(';');
        let name = parts.next().unwrap_or("").trim();
        let q = parts
            .filter_map(|p| p.trim().strip_prefix("q="))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        if name.eq_ignore_ascii_case(enc) {
            return q > 0.0;
        }
        if name == "*" {
            wildcard = Some(q > 0.0);
        }
    }
    wildcard.unwrap_or(false)
}

/// The request path as a relative path of plain segments, or why it is refused.
fn safe_relative(path: &str) -> Result<PathBuf, &'static str> {
    let decoded = percent_decode_str(path)
        .decode_utf8()
        .map_err(|_| "path is not valid UTF-8")?;
    if decoded.contains('\0') || decoded.contains('\\') {
        return Err("path contains a forbidden character");
    }
    let mut out = PathBuf::new();
    for component in Path::new(decoded.as_ref()).components() {
        match component {
            Component::Normal(seg) => out.push(seg),
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir | Component::Prefix(_) => return Err("path leaves the web root"),
        }
    }
    Ok(out)
}

/// The name of the file to send and whether it is the single-page-app fallback.
fn resolve<'f>(files: &'f Files, relative: &Path) -> Option<(&'f str, bool)> {
    let name = relative.to_str()?.replace(std::path::MAIN_SEPARATOR, "/");
    let index = if name.is_empty() {
        "index.html".to_string()
    } else {
        format!("{name}/index.html")
    };
    for candidate in [name.as_str(), index.as_str()] {
        if let Some((key, _)) = files.get_key_value(candidate) {
            return Some((key.as_str(), false));
        }
    }
    // A client-side route (no extension) gets the app; a missing asset is a real 404.
    if relative.extension().is_none() {
        return files
            .get_key_value("index.html")
            .map(|(k, _)| (k.as_str(), true));
    }
    None
}

/// Vite fingerprints everything under `assets/`: those never change under one name.
fn cache_control(name: &str, spa: bool) -> &'static str {
    if !spa && name.starts_with("assets/") {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    }
}

fn mime(name: &str) -> &'static str {
    let ext = Path::new(name)
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("");
    match ext.to_ascii_lowercase().as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "webmanifest" => "application/manifest+json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "avif" => "image/avif",
        "ico" => "image/x-icon",
        "woff" => "font/woff",
        "woff2" => "font/woff2",
        "ttf" => "font/ttf",
        "txt" => "text/plain; charset=utf-8",
        "xml" => "application/xml",
        "wasm" => "application/wasm",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_paths_that_climb() {
        assert!(safe_relative("/../etc/passwd").is_err());
        assert!(safe_relative("/assets/%2e%2e/%2e%2e/etc/passwd").is_err());
        assert!(safe_relative("/a/%00").is_err());
        assert!(safe_relative("/a\\..\\b").is_err());
        assert_eq!(
            safe_relative("/assets/app.js").unwrap(),
            PathBuf::from("assets/app.js")
        );
        assert_eq!(safe_relative("/./x//y").unwrap(), PathBuf::from("x/y"));
    }

    #[test]
    fn caches_only_fingerprinted_assets_for_long() {
        assert_eq!(
            cache_control("assets/i-abc.js", false),
            "public, max-age=31536000, immutable"
        );
        assert_eq!(cache_control("index.html", false), "no-cache");
        assert_eq!(cache_control("assets/route", true), "no-cache");
    }

    #[test]
    fn honours_q_values_in_accept_encoding() {
        assert!(accepts("gzip, br", "br"));
        assert!(accepts("gzip;q=0.5", "gzip"));
        assert!(!accepts("br;q=0, gzip", "br"));
        assert!(!accepts("br; q=0.0", "br"));
        assert!(accepts("*", "br"));
        assert!(!accepts("*, br;q=0", "br"));
        assert!(!accepts("identity", "gzip"));
    }
}
