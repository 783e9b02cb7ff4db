//! `multipart/form-data` bodies (RFC 7578) of `POST /messages` with a file, read with `multer`.
//!
//! What the double records is what the client sent: the part's file name (RFC 8187 `filename*` when
//! given, as clients write non-ASCII names), its `Content-Type` header as written, and the exact bytes.

use std::borrow::Cow;

use axum::body::{Body, Bytes};
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::http::HeaderMap;

/// Most parts one body may have.
const MAX_PARTS: usize = 100;

/// One part of a multipart body.
#[derive(Debug, Clone, PartialEq)]
pub struct FormPart {
    /// The `name` of its `Content-Disposition`.
    pub name: String,
    /// Its file name (`filename*` decoded, else `filename`), if it is a file.
    pub file_name: Option<String>,
    /// Its `Content-Type` header, as written.
    pub content_type: Option<String>,
    /// Its exact bytes.
    pub data: Vec<u8>,
}

/// Why a body could not be read as a form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FormError {
    /// The content type names no boundary.
    NoBoundary,
    /// The body does not follow the format.
    Malformed(String),
}

/// Splits a `multipart/form-data` body (with the request's `Content-Type`) into its parts, at most
/// 100 of them.
pub async fn read_parts(
    content_type: &str,
    body: impl Into<Bytes>,
) -> Result<Vec<FormPart>, FormError> {
    let boundary = multer::parse_boundary(content_type).map_err(|_| FormError::NoBoundary)?;
    let malformed = |err: multer::Error| FormError::Malformed(err.to_string());
    let mut form = multer::Multipart::new(Body::from(body.into()).into_data_stream(), boundary);
    let mut parts = Vec::new();
    while let Some(field) = form.next_field().await.map_err(malformed)? {
        if parts.len() == MAX_PARTS {
            return Err(FormError::Malformed(format!("more than {MAX_PARTS} parts")));
        }
        let name = field
            .name()
            .map(str::to_owned)
            .ok_or_else(|| FormError::Malformed("a part has no name".to_owned()))?;
        let file_name =
            extended_file_name(field.headers()).or_else(|| field.file_name().map(str::to_owned));
        let content_type = field
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .map(|value| value.trim().to_owned());
        let data = field.bytes().await.map_err(malformed)?.to_vec();
        parts.push(FormPart {
            name,
            file_name,
            content_type,
            data,
        });
    }
    Ok(parts)
}

/// The RFC 8187 `filename*=utf-8''percent%20encoded` parameter, decoded.
fn extended_file_name(headers: &HeaderMap) -> Option<String> {
    let disposition = headers.get(CONTENT_DISPOSITION)?.to_str().ok()?;
    let value = disposition.split(';').find_map(|param| {
        let (key, value) = param.split_once('=')?;
        key.trim()
            .eq_ignore_ascii_case("filename*")
            .then_some(value.trim())
    })?;
    let (charset, rest) = value.split_once('\'')?;
    let (_language, encoded) = rest.split_once('\'')?;
    if !charset.eq_ignore_ascii_case("utf-8") {
        return None;
    }
    percent_encoding::percent_decode_str(encoded)
        .decode_utf8()
        .ok()
        .map(Cow::into_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn parts(content_type: &str, body: &'static [u8]) -> Result<Vec<FormPart>, FormError> {
        read_parts(content_type, Bytes::from_static(body)).await
    }

    #[tokio::test]
    async fn fields_and_file_with_exact_bytes() {
        let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"roomId\"\r\n\r\nR1\r\n--XyZ\r\nContent-Disposition: form-data; name=\"files\"; filename=\"a \\\"b\\\".png\"\r\nContent-Type: image/png\r\n\r\n\x89PNG\r\n--X\r\n--XyZ--\r\n";
        let parts = parts("multipart/form-data; boundary=XyZ", body)
            .await
            .expect("parses");
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].name, "roomId");
        assert_eq!(parts[0].data, b"R1");
        assert_eq!(parts[0].file_name, None);
        assert_eq!(parts[1].file_name.as_deref(), Some("a \"b\".png"));
        assert_eq!(parts[1].content_type.as_deref(), Some("image/png"));
        assert_eq!(parts[1].data, b"\x89PNG\r\n--X");
    }

    #[tokio::test]
    async fn extended_file_names_are_decoded() {
        let body = b"--B\r\nContent-Disposition: form-data; name=\"files\"; filename*=UTF-8''caf%C3%A9%20plan.png\r\nContent-Type: image/png; x=1\r\n\r\nx\r\n--B--\r\n";
        let parts = parts("Multipart/Form-Data; boundary=\"B\"", body)
            .await
            .expect("parses");
        assert_eq!(parts[0].file_name.as_deref(), Some("café plan.png"));
        assert_eq!(parts[0].content_type.as_deref(), Some("image/png; x=1"));
    }

    #[tokio::test]
    async fn garbage_is_an_error_not_a_panic() {
        for body in [
            &b""[..],
            b"--B",
            b"--B\r\n",
            b"--B\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\nx",
            b"--B\r\nContent-Disposition: form-data\r\n\r\nx\r\n--B--",
            b"--B\r\nno colon\r\n\r\nx\r\n--B--",
            b"--Bjunk",
            b"garbage",
        ] {
            assert!(
                matches!(
                    parts("multipart/form-data; boundary=B", body).await,
                    Err(FormError::Malformed(_))
                ),
                "{body:?}"
            );
        }
        for content_type in [
            "multipart/form-data",
            "text/plain; boundary=B",
            "multipart/",
        ] {
            assert!(
                matches!(
                    parts(content_type, b"--B--\r\n").await,
                    Err(FormError::NoBoundary)
                ),
                "{content_type}"
            );
        }
    }

    #[tokio::test]
    async fn too_many_parts() {
        let part = "--B\r\nContent-Disposition: form-data; name=\"text\"\r\n\r\nx\r\n";
        let body = format!("{}--B--\r\n", part.repeat(MAX_PARTS + 1));
        let result = read_parts("multipart/form-data; boundary=B", Bytes::from(body)).await;
        assert!(matches!(result, Err(FormError::Malformed(m)) if m.contains("parts")));
    }
}
