//! The console's static files, built into the binary: the stylesheet and the vendored htmx
//! (2.0.11, BSD Zero Clause, `crates/server/assets/htmx.LICENSE`). Each is served under a name
//! that carries a hash of its content, with a year-long immutable cache header: a new binary
//! with a changed file changes the name.

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

struct Asset {
    name: &'static str,
    /// `stem-HASH.ext`.
    served_as: String,
    content_type: &'static str,
    body: &'static [u8],
}

static ASSETS: LazyLock<Vec<Asset>> = LazyLock::new(|| {
    let files: [(&str, &str, &[u8]); 2] = [
        (
            "console.css",
            "text/css; charset=utf-8",
            include_bytes!("../../assets/console.css"),
        ),
        (
            "htmx.min.js",
            "text/javascript; charset=utf-8",
            include_bytes!("../../assets/htmx.min.js"),
        ),
    ];
    files
        .into_iter()
        .map(|(name, content_type, body)| {
            let hash = hex::encode(&Sha256::digest(body)[..6]);
            let (stem, ext) = name.split_once('.').unwrap_or((name, ""));
            Asset {
                name,
                served_as: format!("{stem}-{hash}.{ext}"),
                content_type,
                body,
            }
        })
        .collect()
});

/// The URL of a static file by its plain name.
pub(crate) fn url(name: &str) -> String {
    ASSETS
        .iter()
        .find(|a| a.name == name)
        .map_or_else(String::new, |a| format!("/console/assets/{}", a.served_as))
}

/// `GET /console/assets/{file}`: only the current hashed names exist.
pub(crate) async fn serve(Path(file): Path<String>) -> Response {
    match ASSETS.iter().find(|a| a.served_as == file) {
        Some(a) => (
            [
                (header::CONTENT_TYPE, a.content_type),
                (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
            ],
            a.body,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "no such file").into_response(),
    }
}
