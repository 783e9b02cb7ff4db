//! The stylesheet and script of the pages, compiled into the binary and served under names that
//! carry a hash of their content, so browsers may keep them for a year and still never run an old
//! copy after an upgrade.

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

/// One embedded file.
pub(crate) struct Asset {
    /// The served name, `app.<hash>.css`.
    pub(crate) name: String,
    body: &'static str,
    content_type: &'static str,
}

impl Asset {
    fn new(stem: &str, extension: &str, body: &'static str, content_type: &'static str) -> Asset {
        let digest = Sha256::digest(body.as_bytes());
        Asset {
            name: format!("{stem}.{}.{extension}", hex::encode(&digest[..8])),
            body,
            content_type,
        }
    }

    /// Where the pages link it.
    pub(crate) fn url(&self) -> String {
        format!("/assets/{}", self.name)
    }
}

/// The stylesheet.
pub(crate) static CSS: LazyLock<Asset> = LazyLock::new(|| {
    Asset::new(
        "app",
        "css",
        include_str!("assets/app.css"),
        "text/css; charset=utf-8",
    )
});

/// The script (search suggestions, one device card at a time).
pub(crate) static JS: LazyLock<Asset> = LazyLock::new(|| {
    Asset::new(
        "app",
        "js",
        include_str!("assets/app.js"),
        "text/javascript; charset=utf-8",
    )
});

/// `GET /assets/{name}`: an embedded file, cacheable for a year (its name changes with its content).
pub(crate) async fn serve(Path(name): Path<String>) -> Response {
    let Some(asset) = [&*CSS, &*JS].into_iter().find(|asset| asset.name == name) else {
        return (StatusCode::NOT_FOUND, "no such file\n").into_response();
    };
    (
        [
            (header::CONTENT_TYPE, asset.content_type),
            (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
        ],
        asset.body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_the_content_hash() {
        assert!(CSS.name.starts_with("app.") && CSS.name.ends_with(".css"));
        assert_eq!(CSS.name.len(), "app..css".len() + 16);
        assert_ne!(CSS.name, JS.name);
        assert!(CSS.url().starts_with("/assets/app."));
    }
}
