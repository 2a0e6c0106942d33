//! Black-box tests of `scaleout web`: MIME types, caching, precompression, the SPA
//! fallback, HEAD, revalidation, and traversal attempts that must never leave WEB_ROOT.

use std::path::PathBuf;

use crate::common::Scaleout;
use crate::common::http::{self, get, raw};

/// A throwaway WEB_ROOT shaped like Vite's dist/, plus a secret outside it.
struct Site {
    dir: PathBuf,
}

impl Site {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!(
            "scaleout-web-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        let root = dir.join("dist");
        std::fs::create_dir_all(root.join("assets")).unwrap();
        std::fs::write(
            root.join("index.html"),
            "<!doctype html><title>scaleout</title>",
        )
        .unwrap();
        std::fs::write(root.join("assets/index-abc123.js"), "console.log(1)").unwrap();
        std::fs::write(root.join("assets/index-abc123.js.br"), "BROTLI").unwrap();
        std::fs::write(root.join("assets/index-abc123.js.gz"), "GZIP").unwrap();
        std::fs::write(root.join("assets/style-def456.css"), "body{}").unwrap();
        std::fs::write(root.join("favicon.svg"), "<svg/>").unwrap();
        std::fs::write(dir.join("secret.txt"), "TOP SECRET").unwrap();
        std::os::unix::fs::symlink(dir.join("secret.txt"), root.join("leak.txt")).unwrap();
        std::os::unix::fs::symlink(&dir, root.join("up")).unwrap();
        Self { dir }
    }

    fn root(&self) -> String {
        self.dir.join("dist").display().to_string()
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn request(method: &str, path: &str, extra: &str) -> Vec<u8> {
    format!("{method} {path} HTTP/1.1\r\nHost: t\r\n{extra}Connection: close\r\n\r\n").into_bytes()
}

#[tokio::test]
async fn serves_files_with_types_and_cache_headers() {
    let site = Site::new();
    let web = Scaleout::server("web", &[("WEB_ROOT", &site.root())]);

    let index = get(web.addr(), "/").await;
    assert_eq!(index.status, 200);
    assert_eq!(
        index.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(index.header("cache-control"), Some("no-cache"));
    assert!(String::from_utf8_lossy(&index.body).contains("<title>scaleout"));

    let js = get(web.addr(), "/assets/index-abc123.js").await;
    assert_eq!(
        js.header("content-type"),
        Some("text/javascript; charset=utf-8")
    );
    assert_eq!(
        js.header("cache-control"),
        Some("public, max-age=31536000, immutable")
    );
    assert_eq!(js.body, b"console.log(1)");
    assert_eq!(
        get(web.addr(), "/assets/style-def456.css")
            .await
            .header("content-type"),
        Some("text/css; charset=utf-8")
    );
    assert_eq!(
        get(web.addr(), "/favicon.svg").await.header("content-type"),
        Some("image/svg+xml")
    );

    let health = get(web.addr(), "/healthz").await;
    assert_eq!(
        (health.status, health.json()["status"].clone()),
        (200, "ok".into())
    );
}

#[tokio::test]
async fn precompressed_head_and_revalidation() {
    let site = Site::new();
    let web = Scaleout::server("web", &[("WEB_ROOT", &site.root())]);
    let path = "/assets/index-abc123.js";

    let br = raw(
        web.addr(),
        &request("GET", path, "Accept-Encoding: gzip, br\r\n"),
    )
    .await
    .unwrap();
    assert_eq!(
        (br.header("content-encoding"), br.body.as_slice()),
        (Some("br"), &b"BROTLI"[..])
    );
    assert_eq!(
        br.header("content-type"),
        Some("text/javascript; charset=utf-8")
    );
    assert_eq!(br.header("vary"), Some("Accept-Encoding"));
    let gz = raw(
        web.addr(),
        &request("GET", path, "Accept-Encoding: gzip\r\n"),
    )
    .await
    .unwrap();
    assert_eq!(
        (gz.header("content-encoding"), gz.body.as_slice()),
        (Some("gzip"), &b"GZIP"[..])
    );
    let plain = get(web.addr(), path).await;
    assert_eq!(
        (plain.header("content-encoding"), plain.body.as_slice()),
        (None, &b"console.log(1)"[..])
    );

    let head = raw(web.addr(), &request("HEAD", path, "")).await.unwrap();
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-length"), Some("14"));
    assert!(head.body.is_empty());

    let etag = plain.header("etag").expect("an ETag").to_string();
    let again = raw(
        web.addr(),
        &request("GET", path, &format!("If-None-Match: {etag}\r\n")),
    )
    .await
    .unwrap();
    assert_eq!(again.status, 304);
    assert!(again.body.is_empty());
}

#[tokio::test]
async fn spa_fallback_only_for_routes() {
    let site = Site::new();
    let web = Scaleout::server("web", &[("WEB_ROOT", &site.root())]);
    let route = get(web.addr(), "/jobs/recent").await;
    assert_eq!(route.status, 200);
    assert_eq!(
        route.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(route.header("cache-control"), Some("no-cache"));
    let missing = get(web.addr(), "/assets/gone-000.js").await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json()["error"], "not found");
    let post = raw(web.addr(), &request("POST", "/", "Content-Length: 0\r\n"))
        .await
        .unwrap();
    assert_eq!(post.status, 405);
}

#[tokio::test]
async fn traversal_never_leaves_the_root() {
    let site = Site::new();
    let web = Scaleout::server("web", &[("WEB_ROOT", &site.root())]);
    let attempts = [
        "/../secret.txt",
        "/assets/../../secret.txt",
        "/%2e%2e/secret.txt",
        "/%2E%2E%2Fsecret.txt",
        "/assets/%2e%2e/%2e%2e/secret.txt",
        "/..%2fsecret.txt",
        "/..%5csecret.txt",
        "/leak.txt",
        "/up/secret.txt",
        "/%00/index.html",
        "/%FF%FE",
    ];
    for path in attempts {
        let res = raw(web.addr(), &request("GET", path, "")).await.unwrap();
        assert!(
            matches!(res.status, 400 | 404),
            "{path} answered {}",
            res.status
        );
        assert!(
            !String::from_utf8_lossy(&res.body).contains("TOP SECRET"),
            "{path} leaked"
        );
    }
}

#[test]
fn refuses_to_start_without_an_index() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_scaleout"))
        .arg("web")
        .env("WEB_ROOT", "/nonexistent-web-root")
        .env("LISTEN_ADDR", "127.0.0.1:0")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("WEB_ROOT"));
}

/// An upgrade that keeps every name, size and mtime (Vite's hashed names keep
/// `index.html` the same length; a Nix image gives every file the same mtime) must not
/// be answered 304 with the old page: the ETag follows the bytes.
#[tokio::test]
async fn etag_follows_content_not_size_and_mtime() {
    let site = Site::new();
    let index = site.dir.join("dist/index.html");
    let old_page = get_with(&site, "/", "").await;
    let etag = old_page.header("etag").expect("an ETag").to_string();

    let mtime = std::fs::metadata(&index).unwrap().modified().unwrap();
    let new_bytes = "<!doctype html><title>scaleOUT</title>";
    assert_eq!(new_bytes.len(), old_page.body.len(), "same size");
    std::fs::write(&index, new_bytes).unwrap();
    std::fs::File::options()
        .write(true)
        .open(&index)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    assert_eq!(
        std::fs::metadata(&index).unwrap().modified().unwrap(),
        mtime
    );

    let revalidated = get_with(&site, "/", &format!("If-None-Match: {etag}\r\n")).await;
    assert_eq!(revalidated.status, 200, "a new page under an old ETag");
    assert_eq!(revalidated.body, new_bytes.as_bytes());
    assert_ne!(revalidated.header("etag"), Some(etag.as_str()));
}

/// `q=0` refuses an encoding: the next accepted one, or the plain file, is sent.
#[tokio::test]
async fn accept_encoding_q_zero_is_a_refusal() {
    let site = Site::new();
    let web = Scaleout::server("web", &[("WEB_ROOT", &site.root())]);
    let path = "/assets/index-abc123.js";
    for (accept, encoding, body) in [
        ("br;q=0, gzip", Some("gzip"), &b"GZIP"[..]),
        ("br;q=0, gzip;q=0", None, &b"console.log(1)"[..]),
        ("gzip;q=0.5, br;q=1.0", Some("br"), &b"BROTLI"[..]),
        ("*;q=0", None, &b"console.log(1)"[..]),
        ("*", Some("br"), &b"BROTLI"[..]),
    ] {
        let res = raw(
            web.addr(),
            &request("GET", path, &format!("Accept-Encoding: {accept}\r\n")),
        )
        .await
        .unwrap();
        assert_eq!(
            (res.header("content-encoding"), res.body.as_slice()),
            (encoding, body),
            "Accept-Encoding: {accept}"
        );
    }
}

/// One GET against a fresh `scaleout web` on the site as it is now on disk.
async fn get_with(site: &Site, path: &str, extra: &str) -> http::Response {
    let web = Scaleout::server("web", &[("WEB_ROOT", &site.root())]);
    raw(web.addr(), &request("GET", path, extra)).await.unwrap()
}
