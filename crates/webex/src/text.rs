//! Message size limits.

/// The most bytes Webex accepts in a message's `text` or `markdown`.
pub const MAX_MESSAGE_BYTES: usize = 7439;

/// The marker put where a too-long message was cut.
const ELLIPSIS: &str = "…";

/// `text` unchanged when it fits in [`MAX_MESSAGE_BYTES`], otherwise cut at a char boundary and ended
/// with "…" so that the result fits.
///
/// Markdown cut in the middle may leave a construct (a code fence, a link) open; Webex renders that
/// as plain text, which is acceptable for an over-long answer.
pub fn truncate_message(text: &str) -> String {
    if text.len() <= MAX_MESSAGE_BYTES {
        return text.to_owned();
    }
    let mut cut = MAX_MESSAGE_BYTES - ELLIPSIS.len();
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    let mut out = String::with_capacity(cut + ELLIPSIS.len());
    out.push_str(&text[..cut]);
    out.push_str(ELLIPSIS);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_text_unchanged() {
        assert_eq!(truncate_message(""), "");
        assert_eq!(truncate_message("hello"), "hello");
        let exact = "a".repeat(MAX_MESSAGE_BYTES);
        assert_eq!(truncate_message(&exact), exact);
    }

    #[test]
    fn long_ascii_cut_with_ellipsis() {
        let out = truncate_message(&"a".repeat(MAX_MESSAGE_BYTES + 1));
        assert_eq!(out.len(), MAX_MESSAGE_BYTES);
        assert!(out.ends_with('…'));
    }

    #[test]
    fn multibyte_cut_on_char_boundary() {
        for text in [
            "é".repeat(5000),
            "😀".repeat(3000),
            format!("a{}", "€".repeat(4000)),
        ] {
            let out = truncate_message(&text);
            assert!(out.len() <= MAX_MESSAGE_BYTES, "{}", out.len());
            assert!(out.len() > MAX_MESSAGE_BYTES - 8);
            assert!(out.ends_with('…'));
            assert!(text.starts_with(out.trim_end_matches('…')));
        }
    }
}
