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
