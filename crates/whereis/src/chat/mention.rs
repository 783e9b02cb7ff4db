//! Removing the bot's @mention from a group-space message.
//!
//! In a group space Webex only sends the bot messages that mention it, and the mention is part of the
//! text ("whereis jdoe"). The reliable marker is the `html` field's
//! `<spark-mention data-object-id="BOT_ID">…</spark-mention>`; without it, a leading display name (or its
//! first word) is removed from `text`.

/// The text of a message without the bot's mention.
pub fn strip_mention(text: &str, html: Option<&str>, bot_id: &str, bot_name: &str) -> String {
    if let Some(mentioned) = html.and_then(|html| mention_text(html, bot_id)) {
        if let Some(rest) = remove_first_ci(text, &mentioned) {
            return rest;
        }
    }
    let first_word = bot_name.split_whitespace().next().unwrap_or(bot_name);
    for name in [bot_name, first_word] {
        if !name.is_empty() {
            if let Some(rest) = strip_prefix_ci(text.trim_start(), name) {
                if rest.is_empty() || rest.starts_with(char::is_whitespace) {
                    return rest.trim().to_owned();
                }
            }
        }
    }
    text.trim().to_owned()
}

/// The visible text of the `<spark-mention>` of `person_id` in `html`.
fn mention_text(html: &str, person_id: &str) -> Option<String> {
    let mut rest = html;
    while let Some(start) = rest.find("<spark-mention") {
        let tag = &rest[start..];
        let close = tag.find('>')?;
        let attributes = &tag[..close];
        let body = &tag[close + 1..];
        let end = body.find("</spark-mention>")?;
        if attributes.contains(&format!("data-object-id=\"{person_id}\"")) {
            return Some(decode_entities(&body[..end]));
        }
        rest = &body[end..];
    }
    None
}

fn decode_entities(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&nbsp;", " ")
        .replace("&amp;", "&")
}

/// `text` with the first case-insensitive occurrence of `needle` removed.
fn remove_first_ci(text: &str, needle: &str) -> Option<String> {
    if needle.trim().is_empty() {
        return None;
    }
    let indices: Vec<usize> = text
        .char_indices()
        .map(|(i, _)| i)
        .chain([text.len()])
        .collect();
    for &start in &indices {
        if let Some(rest) = text
            .get(start..)
            .and_then(|tail| strip_prefix_ci(tail, needle))
        {
            let end = text.len() - rest.len();
            let joined = format!("{} {}", &text[..start], &text[end..]);
            return Some(joined.split_whitespace().collect::<Vec<_>>().join(" "));
        }
    }
    None
}

/// `text` after `prefix`, compared without regard to case.
fn strip_prefix_ci<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let mut chars = text.char_indices();
    for expected in prefix.chars() {
        let (_, actual) = chars.next()?;
        if !actual.to_lowercase().eq(expected.to_lowercase()) {
            return None;
        }
    }
    let consumed = chars.next().map(|(i, _)| i).unwrap_or(text.len());
    text.get(consumed..)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOT: &str = "Y2lzY29zcGFyazovL3VzL1BFT1BMRS9ib3QtaWQ";

    #[test]
    fn html_mention_is_removed() {
        let html = format!(
            "<p><spark-mention data-object-type=\"person\" data-object-id=\"{BOT}\">whereis</spark-mention> jdoe</p>"
        );
        assert_eq!(
            strip_mention("whereis jdoe", Some(&html), BOT, "whereis"),
            "jdoe"
        );
        // The mention need not come first.
        let html = format!(
            "<p>hey <spark-mention data-object-id=\"{BOT}\">WhereIs Bot</spark-mention> Jane Doe</p>"
        );
        assert_eq!(
            strip_mention("hey WhereIs Bot Jane Doe", Some(&html), BOT, "WhereIs Bot"),
            "hey Jane Doe"
        );
    }

    #[test]
    fn another_persons_mention_is_kept() {
        let html = "<p><spark-mention data-object-id=\"someone-else\">Jane</spark-mention> ok</p>";
        assert_eq!(
            strip_mention("Jane ok", Some(html), BOT, "whereis"),
            "Jane ok"
        );
    }

    #[test]
    fn display_name_fallback_any_case() {
        assert_eq!(strip_mention("WHEREIS jdoe", None, BOT, "whereis"), "jdoe");
        assert_eq!(
            strip_mention("Whereis Bot jdoe", None, BOT, "Whereis Bot"),
            "jdoe"
        );
        assert_eq!(
            strip_mention("Whereis jdoe", None, BOT, "Whereis Bot"),
            "jdoe"
        );
        assert_eq!(
            strip_mention("whereisjdoe", None, BOT, "whereis"),
            "whereisjdoe"
        );
        assert_eq!(strip_mention("jdoe", None, BOT, "whereis"), "jdoe");
    }

    #[test]
    fn odd_html_never_panics() {
        for html in [
            "<spark-mention",
            "<spark-mention>",
            "<spark-mention data-object-id=\"x\">é",
            "<<<>>>",
        ] {
            let _ = strip_mention("é whereis ü", Some(html), "x", "whereis");
        }
        assert_eq!(strip_prefix_ci("ÉCOLE x", "école"), Some(" x"));
    }
}
