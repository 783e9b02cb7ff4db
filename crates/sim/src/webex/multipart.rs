//! `multipart/form-data` bodies (RFC 7578) of `POST /messages` with a file.

/// One part of a multipart body.
pub(super) struct Part {
    pub(super) name: String,
    pub(super) file_name: Option<String>,
    pub(super) content_type: Option<String>,
    pub(super) data: Vec<u8>,
}

/// The `boundary` parameter of a `multipart/form-data` content type.
pub(super) fn multipart_boundary(content_type: &str) -> Option<String> {
    let mut pieces = content_type.split(';');
    let mime = pieces.next()?.trim();
    if !mime.eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    pieces.find_map(|p| {
        let (key, value) = p.split_once('=')?;
        if !key.trim().eq_ignore_ascii_case("boundary") {
            return None;
        }
        let value = value.trim();
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(value);
        (!value.is_empty() && value.len() <= 200).then(|| value.to_owned())
    })
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || haystack.len() < needle.len() {
        return None;
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Splits a `multipart/form-data` body (RFC 7578) into its parts.
pub(super) fn parse_multipart(body: &[u8], boundary: &str) -> Result<Vec<Part>, String> {
    let delimiter = format!("--{boundary}").into_bytes();
    let mut next_delimiter = b"\r\n".to_vec();
    next_delimiter.extend_from_slice(&delimiter);

    let mut pos = if body.starts_with(&delimiter) {
        0
    } else {
        find(body, &next_delimiter).ok_or("no boundary found")? + 2
    };
    let mut parts = Vec::new();
    loop {
        pos += delimiter.len();
        let rest = body.get(pos..).unwrap_or_default();
        if rest.starts_with(b"--") {
            return Ok(parts);
        }
        // transport padding, then the line break that ends the delimiter line
        let padding = rest
            .iter()
            .take_while(|b| **b == b' ' || **b == b'\t')
            .count();
        pos += padding;
        if !body.get(pos..).unwrap_or_default().starts_with(b"\r\n") {
            return Err("a boundary line does not end with CRLF".to_owned());
        }
        pos += 2;
        let rest = body.get(pos..).unwrap_or_default();
        let (head, content_start) = if rest.starts_with(b"\r\n") {
            (&rest[..0], pos + 2)
        } else {
            let end = find(rest, b"\r\n\r\n").ok_or("a part's headers do not end")?;
            (&rest[..end], pos + end + 4)
        };
        let head = std::str::from_utf8(head).map_err(|_| "a part's headers are not UTF-8")?;
        let content = body.get(content_start..).unwrap_or_default();
        let end = find(content, &next_delimiter).ok_or("the closing boundary is missing")?;
        parts.push(part_from(head, content[..end].to_vec())?);
        pos = content_start + end + 2;
        if parts.len() > 100 {
            return Err("more than 100 parts".to_owned());
        }
    }
}

fn part_from(head: &str, data: Vec<u8>) -> Result<Part, String> {
    let mut disposition = None;
    let mut content_type = None;
    for line in head.split("\r\n") {
        let Some((name, value)) = line.split_once(':') else {
            return Err(format!("bad part header line {line:?}"));
        };
        if name.trim().eq_ignore_ascii_case("content-disposition") {
            disposition = Some(value.trim().to_owned());
        } else if name.trim().eq_ignore_ascii_case("content-type") {
            content_type = Some(value.trim().to_owned());
        }
    }
    let disposition = disposition.ok_or("a part has no Content-Disposition")?;
    let params = disposition_params(&disposition)?;
    let mut name = None;
    let mut file_name = None;
    let mut file_name_ext = None;
    for (key, value) in params {
        match key.to_ascii_lowercase().as_str() {
            "name" => name = Some(value),
            "filename" => file_name = Some(value),
            "filename*" => file_name_ext = decode_ext_value(&value),
            _ => {}
        }
    }
    Ok(Part {
        name: name.ok_or("a part has no name")?,
        file_name: file_name_ext.or(file_name),
        content_type,
        data,
    })
}

/// The parameters of `form-data; name="x"; filename="y"` (values unquoted and unescaped).
fn disposition_params(value: &str) -> Result<Vec<(String, String)>, String> {
    let mut chars = value.chars().peekable();
    let kind: String = chars.by_ref().take_while(|c| *c != ';').collect();
    if !kind.trim().eq_ignore_ascii_case("form-data") {
        return Err(format!("Content-Disposition {value:?} is not form-data"));
    }
    let mut params = Vec::new();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace() || *c == ';') {
            chars.next();
        }
        if chars.peek().is_none() {
            return Ok(params);
        }
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        let key = key.trim().to_owned();
        let mut val = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            let mut closed = false;
            while let Some(c) = chars.next() {
                match c {
                    '\\' => val.extend(chars.next()),
                    '"' => {
                        closed = true;
                        break;
                    }
                    _ => val.push(c),
                }
            }
            if !closed {
                return Err(format!("unterminated quoted value in {value:?}"));
            }
        } else {
            while let Some(c) = chars.peek().copied() {
                if c == ';' {
                    break;
                }
                val.push(c);
                chars.next();
            }
            val = val.trim().to_owned();
        }
        if key.is_empty() {
            return Err(format!("a parameter without a name in {value:?}"));
        }
        params.push((key, val));
    }
}

/// Decodes an RFC 8187 `utf-8''percent%20encoded` value.
fn decode_ext_value(value: &str) -> Option<String> {
    let (charset, rest) = value.split_once('\'')?;
    let (_, encoded) = rest.split_once('\'')?;
    if !charset.eq_ignore_ascii_case("utf-8") {
        return None;
    }
    let bytes = encoded.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = encoded.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multipart_parses_fields_and_file() {
        let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"roomId\"\r\n\r\nR1\r\n--XyZ\r\nContent-Disposition: form-data; name=\"files\"; filename=\"a \\\"b\\\".png\"\r\nContent-Type: image/png\r\n\r\n\x89PNG\r\n--X\r\n--XyZ--\r\n";
        let parts = parse_multipart(body, "XyZ").expect("parses");
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].name, "roomId");
        assert_eq!(parts[0].data, b"R1");
        assert_eq!(parts[1].file_name.as_deref(), Some("a \"b\".png"));
        assert_eq!(parts[1].content_type.as_deref(), Some("image/png"));
        assert_eq!(parts[1].data, b"\x89PNG\r\n--X");
    }

    #[test]
    fn multipart_garbage_is_an_error_not_a_panic() {
        for body in [
            &b""[..],
            b"--B",
            b"--B\r\n",
            b"--B\r\nContent-Disposition: form-data\r\n\r\nx",
            b"--B\r\nno colon\r\n\r\nx\r\n--B--",
            b"--B\r\nContent-Disposition: form-data; name=\"x\r\n\r\nx\r\n--B--",
            b"--Bjunk",
            b"\r\n--B\r\n\r\n\r\n--B--",
        ] {
            assert!(parse_multipart(body, "B").is_err(), "{body:?}");
        }
        assert_eq!(
            parse_multipart(b"preamble\r\n--B--", "B")
                .expect("empty")
                .len(),
            0
        );
    }

    #[test]
    fn boundary_and_ext_values() {
        assert_eq!(
            multipart_boundary("multipart/form-data; boundary=\"a b\"").as_deref(),
            Some("a b")
        );
        assert_eq!(
            multipart_boundary("Multipart/Form-Data;boundary=abc").as_deref(),
            Some("abc")
        );
        assert_eq!(multipart_boundary("multipart/form-data"), None);
        assert_eq!(multipart_boundary("text/plain; boundary=x"), None);
        assert_eq!(
            decode_ext_value("UTF-8''caf%C3%A9.png").as_deref(),
            Some("café.png")
        );
        assert_eq!(decode_ext_value("utf-8''bad%"), None);
    }
}
