//! `scaleout web`: serves the built dashboard (`WEB_ROOT`, Vite's `dist/`) so the images
//! need no nginx. Hashed assets are cached for a year, `index.html` is revalidated, a
//! precompressed `.br`/`.gz` sibling is sent when the client accepts it, unknown
//! extensionless paths fall back to `index.html` (the single-page app), and no request
//! path can leave `WEB_ROOT`: `..` segments are refused before touching the disk and
//! every resolved file is checked to lie under the canonical root, which also stops
//! symlinks that point outside.

use std::io;
use std::net::TcpListener;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::time::UNIX_EPOCH;

use ntex::http::{Method, StatusCode, header};
use ntex::web::{self, App, HttpRequest, HttpResponse, HttpServer, types::State};
use percent_encoding::percent_decode_str;
use serde_json::json;

use crate::config::Settings;
use crate::shutdown::Drain;
use crate::startup::Application;

#[derive(Clone)]
struct WebState {
    /// Canonical `WEB_ROOT`.
    root: Arc<PathBuf>,
    drain: Drain,
}

/// Binds and starts the static server; run it with [`Application::run_until_stopped`].
pub fn build(settings: Settings) -> io::Result<Application> {
    let root = settings.web_root.canonicalize().map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("WEB_ROOT {}: {e}", settings.web_root.display()),
        )
    })?;
    if !root.join("index.html").is_file() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("WEB_ROOT {} has no index.html", root.display()),
        ));
    }
    let state = WebState {
        root: Arc::new(root),
        drain: Drain::default(),
    };
    let drain = state.drain.clone();
    let listener = TcpListener::bind(settings.listen_addr)?;
    let server = HttpServer::new(async move || {
        App::new()
            .state(state.clone())
            .service(web::resource("/healthz").to(healthz))
            .default_service(web::to(serve))
    });
    Application::start(server, listener, Arc::new(settings), drain, None)
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
    let Some((file, spa)) = resolve(&state.root, &relative) else {
        return error(StatusCode::NOT_FOUND, "not found");
    };
    let accepts = |enc: &str| {
        req.headers()
            .get_all(header::ACCEPT_ENCODING)
            .filter_map(|v| v.to_str().ok())
            .any(|v| {
                v.split(',')
                    .any(|e| e.trim().split(';').next() == Some(enc))
            })
    };
    let (body_path, encoding) = [("br", "br"), ("gzip", "gz")]
        .into_iter()
        .filter(|(enc, _)| accepts(enc))
        .map(|(enc, ext)| (sibling(&file, ext), Some(enc)))
        .find(|(p, _)| p.is_file())
        .unwrap_or((file.clone(), None));
    let Ok(meta) = std::fs::metadata(&body_path) else {
        return error(StatusCode::NOT_FOUND, "not found");
    };
    let etag = format!(
        "\"{:x}-{:x}{}\"",
        meta.len(),
        meta.modified()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_secs()),
        encoding.unwrap_or("")
    );
    let mut res = HttpResponse::Ok();
    res.content_type(mime(&file))
        .header(header::CACHE_CONTROL, cache_control(&relative, spa))
        .header(header::ETAG, etag.as_str())
        .header(header::VARY, "Accept-Encoding")
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    if let Some(enc) = encoding {
        res.header(header::CONTENT_ENCODING, enc);
    }
    let fresh = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    if fresh {
        return res.status(StatusCode::NOT_MODIFIED).finish();
    }
    // For HEAD, ntex sends the headers of this body (its length) and not the body.
    match tokio::fs::read(&body_path).await {
        Ok(bytes) => res.body(bytes),
        Err(_) => error(StatusCode::NOT_FOUND, "not found"),
    }
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

/// The file to send and whether it is the single-page-app fallback. Both the file and
/// the root are canonical, so a symlink out of the root is caught here.
fn resolve(root: &Path, relative: &Path) -> Option<(PathBuf, bool)> {
    let inside = |p: PathBuf| {
        let real = p.canonicalize().ok()?;
        (real.starts_with(root) && real.is_file()).then_some(real)
    };
    let candidate = root.join(relative);
    if let Some(file) = inside(candidate.clone()) {
        return Some((file, false));
    }
    if candidate.is_dir()
        && let Some(file) = inside(candidate.join("index.html"))
    {
        return Some((file, false));
    }
    // A client-side route (no extension) gets the app; a missing asset is a real 404.
    if relative.extension().is_none() {
        return inside(root.join("index.html")).map(|f| (f, true));
    }
    None
}

fn sibling(file: &Path, ext: &str) -> PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(".");
    name.push(ext);
    PathBuf::from(name)
}

/// Vite fingerprints everything under `assets/`: those never change under one name.
fn cache_control(relative: &Path, spa: bool) -> &'static str {
    if !spa && relative.starts_with("assets") {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    }
}

fn mime(file: &Path) -> &'static str {
    let ext = file.extension().and_then(|e| e.to_str()).unwrap_or("");
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
            cache_control(Path::new("assets/i-abc.js"), false),
            "public, max-age=31536000, immutable"
        );
        assert_eq!(cache_control(Path::new("index.html"), false), "no-cache");
        assert_eq!(cache_control(Path::new("assets/route"), true), "no-cache");
    }
}
