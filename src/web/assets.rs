//! The web app's own static files, embedded in the binary and served under content-hashed
//! names (`/assets/app.3f2a9c1b7d.css`): a new release changes the name, so browsers may keep
//! each file for a year (`Cache-Control: immutable`). Gzip is applied by the router's
//! compression layer when the browser accepts it.

use std::collections::HashMap;
use std::sync::OnceLock;

use axum::extract::Path;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

/// The files: name, content type, bytes.
const FILES: &[(&str, &str, &[u8])] = &[
    (
        "app.css",
        "text/css; charset=utf-8",
        include_bytes!("assets/app.css"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("assets/app.js"),
    ),
    (
        "call.js",
        "text/javascript; charset=utf-8",
        include_bytes!("assets/call.js"),
    ),
    (
        "dashboard.js",
        "text/javascript; charset=utf-8",
        include_bytes!("assets/dashboard.js"),
    ),
    (
        "import.js",
        "text/javascript; charset=utf-8",
        include_bytes!("assets/import.js"),
    ),
    (
        "upload.js",
        "text/javascript; charset=utf-8",
        include_bytes!("assets/upload.js"),
    ),
    (
        "favicon.svg",
        "image/svg+xml",
        include_bytes!("assets/favicon.svg"),
    ),
    // Third-party, from npm (vendor/MANIFEST.tsv; scripts/vendor-web.sh).
    (
        "htmx.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("assets/vendor/htmx.min.js"),
    ),
    (
        "wavesurfer.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("assets/vendor/wavesurfer.min.js"),
    ),
    (
        "wavesurfer.regions.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("assets/vendor/wavesurfer.regions.min.js"),
    ),
    (
        "wavesurfer.timeline.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("assets/vendor/wavesurfer.timeline.min.js"),
    ),
    (
        "uPlot.iife.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("assets/vendor/uPlot.iife.min.js"),
    ),
    (
        "uPlot.min.css",
        "text/css; charset=utf-8",
        include_bytes!("assets/vendor/uPlot.min.css"),
    ),
];

struct Asset {
    content_type: &'static str,
    bytes: &'static [u8],
}

struct Table {
    /// Plain name -> hashed URL.
    urls: HashMap<&'static str, String>,
    /// Hashed file name -> file.
    files: HashMap<String, Asset>,
}

fn table() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut urls = HashMap::new();
        let mut files = HashMap::new();
        for (name, content_type, bytes) in FILES {
            let hash = hex::encode(Sha256::digest(bytes));
            let (stem, ext) = name.rsplit_once('.').unwrap_or((name, ""));
            let hashed = format!("{stem}.{}.{ext}", &hash[..10]);
            urls.insert(*name, format!("/assets/{hashed}"));
            files.insert(
                hashed,
                Asset {
                    content_type,
                    bytes,
                },
            );
        }
        Table { urls, files }
    })
}

/// The URL of an asset by its plain name (`app.css`); the plain name for an unknown one (the
/// page then shows it missing, and the page tests fail).
pub fn url(name: &str) -> String {
    table()
        .urls
        .get(name)
        .cloned()
        .unwrap_or_else(|| format!("/assets/{name}"))
}

/// `GET /assets/{name}`.
pub async fn serve(Path(name): Path<String>) -> Response {
    let Some(asset) = table().files.get(&name) else {
        return (StatusCode::NOT_FOUND, "no such asset").into_response();
    };
    (
        [
            (CONTENT_TYPE, HeaderValue::from_static(asset.content_type)),
            (
                CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=31536000, immutable"),
            ),
        ],
        asset.bytes,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The vendored front-end files are exactly the bytes `scripts/vendor-web.sh` took from the
    /// npm registry (checked offline against the manifest it wrote), and each one the app
    /// serves is in the manifest with its licence.
    #[test]
    fn vendored_files_match_the_manifest() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/web/assets/vendor");
        let manifest = std::fs::read_to_string(dir.join("MANIFEST.tsv")).expect("manifest");
        let mut lines = manifest.lines();
        assert_eq!(
            lines.next(),
            Some("file\tpackage\tversion\tnpm_integrity\tpath_in_package\tsha256\tlicense")
        );
        let mut listed = Vec::new();
        for line in lines {
            let cols: Vec<&str> = line.split('\t').collect();
            assert_eq!(cols.len(), 7, "manifest line {line:?}");
            let (file, integrity, sha, license) = (cols[0], cols[3], cols[5], cols[6]);
            assert!(
                integrity.starts_with("sha512-"),
                "{file}: npm integrity {integrity}"
            );
            assert!(!license.is_empty(), "{file}: no licence");
            let bytes = std::fs::read(dir.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
            assert_eq!(
                hex::encode(Sha256::digest(&bytes)),
                sha,
                "{file} differs from what the manifest records: run scripts/vendor-web.sh"
            );
            listed.push(file.to_string());
        }
        for (name, _, _) in FILES {
            let vendored = dir.join(name).exists();
            assert!(
                !vendored || listed.iter().any(|l| l == name),
                "{name} is served but not in the manifest"
            );
        }
        for served in FILES.iter().filter(|(n, _, _)| n.contains(".min.")) {
            let license = served.0.split('.').next().unwrap_or_default();
            assert!(
                listed
                    .iter()
                    .any(|l| l.starts_with(license) && l.ends_with("LICENSE")),
                "no licence file beside {}",
                served.0
            );
        }
    }

    #[test]
    fn names_carry_the_content_hash_and_resolve_back() {
        let url = url("htmx.min.js");
        assert!(url.starts_with("/assets/htmx.min."), "{url}");
        let name = url.trim_start_matches("/assets/");
        assert!(table().files.contains_key(name));
    }
}
