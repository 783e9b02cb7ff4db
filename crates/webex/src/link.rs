//! `Link` header pagination (RFC 8288): Webex lists answer at most `max` items and point to the next
//! page with `Link: <https://webexapis.com/v1/webhooks?cursor=…>; rel="next"`.

use reqwest::header::{HeaderMap, LINK};

/// The target of the first `rel="next"` link in any `Link` header, as written (maybe relative).
pub(crate) fn next_link(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(LINK)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find_map(parse_next)
}

/// The `rel="next"` target of one `Link` header value.
fn parse_next(value: &str) -> Option<String> {
    let mut rest = value;
    loop {
        rest = rest.trim_start_matches(|c: char| c == ',' || c.is_whitespace());
        let after_open = rest.strip_prefix('<')?;
        let close = after_open.find('>')?;
        let target = after_open[..close].trim();
        rest = &after_open[close + 1..];
        // The parameters run to the next comma outside a quoted string.
        let mut in_quotes = false;
        let mut params_end = rest.len();
        for (i, c) in rest.char_indices() {
            match c {
                '"' => in_quotes = !in_quotes,
                ',' if !in_quotes => {
                    params_end = i;
                    break;
                }
                _ => {}
            }
        }
        let params = &rest[..params_end];
        rest = &rest[params_end..];
        if !target.is_empty() && params.split(';').any(is_rel_next) {
            return Some(target.to_owned());
        }
        if rest.is_empty() {
            return None;
        }
    }
}

/// Whether one `;`-separated parameter is `rel=next` (the value may list several relations).
fn is_rel_next(param: &str) -> bool {
    let Some((key, value)) = param.split_once('=') else {
        return false;
    };
    key.trim().eq_ignore_ascii_case("rel")
        && value
            .trim()
            .trim_matches('"')
            .split_ascii_whitespace()
            .any(|rel| rel.eq_ignore_ascii_case("next"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webex_style_next() {
        assert_eq!(
            parse_next(r#"<https://webexapis.com/v1/webhooks?max=100&cursor=abc>; rel="next""#)
                .as_deref(),
            Some("https://webexapis.com/v1/webhooks?max=100&cursor=abc")
        );
    }

    #[test]
    fn next_among_others() {
        let value = r#"<https://a/x?p=1>; rel="prev", <https://a/x?p=3,4>;title="a, b"; rel=next"#;
        assert_eq!(parse_next(value).as_deref(), Some("https://a/x?p=3,4"));
        assert_eq!(
            parse_next(r#"</v1/x?c=1>; rel="first next""#).as_deref(),
            Some("/v1/x?c=1")
        );
    }

    #[test]
    fn no_next_or_garbage() {
        for value in [
            "",
            r#"<https://a/x>; rel="prev""#,
            "garbage",
            "<unclosed; rel=next",
            r#"<>; rel="next""#,
            r#"<https://a/x>; rel"#,
            ",,,",
            r#"<https://a/x>; rel="nextpage""#,
        ] {
            assert_eq!(parse_next(value), None, "{value:?}");
        }
    }
}
