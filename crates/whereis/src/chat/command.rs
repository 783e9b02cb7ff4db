//! What a chat message asks for. The same commands serve every channel, so the rules cannot drift.

/// A parsed chat command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Usage.
    Help,
    /// Stop being locatable.
    OptOut,
    /// Be locatable again.
    OptIn,
    /// Lookup counters (admins only).
    Stats,
    /// The requester's own audit trail.
    WhoLookedForMe,
    /// Find someone: a username or a full name.
    Find(String),
    /// Nothing was asked (an empty message, or only the bot's name).
    Empty,
}

impl Command {
    /// Parses the text of a message whose mention of the bot is already removed. A leading
    /// `whereis` (as people type in direct rooms too) is ignored.
    pub fn parse(text: &str) -> Command {
        let text = text.trim();
        let text = strip_leading_word(text, "whereis").unwrap_or(text);
        let text = text.trim().trim_end_matches(['?', '!', '.']).trim();
        let words: Vec<String> = text.split_whitespace().map(str::to_lowercase).collect();
        let joined = words.join(" ");
        match joined.as_str() {
            "" => Command::Empty,
            "help" | "/help" | "usage" | "hello" | "hi" => Command::Help,
            "optout" | "opt-out" | "opt out" => Command::OptOut,
            "optin" | "opt-in" | "opt in" => Command::OptIn,
            "stats" | "/stats" => Command::Stats,
            "who looked for me"
            | "who looked me up"
            | "who looked for me?"
            | "who is looking for me"
            | "wholookedforme" => Command::WhoLookedForMe,
            _ => Command::Find(words_of(text)),
        }
    }
}

/// `text` without a leading `word` (any case), when it starts with it as a whole word.
pub(crate) fn strip_leading_word<'a>(text: &'a str, word: &str) -> Option<&'a str> {
    let head = text.get(..word.len())?;
    let rest = text.get(word.len()..)?;
    if head.eq_ignore_ascii_case(word) && (rest.is_empty() || rest.starts_with(char::is_whitespace))
    {
        Some(rest.trim_start())
    } else {
        None
    }
}

/// Collapses inner whitespace (so "Jane   Doe" is "Jane Doe").
fn words_of(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands() {
        assert_eq!(Command::parse("help"), Command::Help);
        assert_eq!(Command::parse("  HELP? "), Command::Help);
        assert_eq!(Command::parse("whereis help"), Command::Help);
        assert_eq!(Command::parse("opt out"), Command::OptOut);
        assert_eq!(Command::parse("optin"), Command::OptIn);
        assert_eq!(Command::parse("Stats"), Command::Stats);
        assert_eq!(
            Command::parse("Who looked for me?"),
            Command::WhoLookedForMe
        );
        assert_eq!(Command::parse(""), Command::Empty);
        assert_eq!(Command::parse("whereis"), Command::Empty);
    }

    #[test]
    fn finds() {
        assert_eq!(Command::parse("jdoe"), Command::Find("jdoe".into()));
        assert_eq!(Command::parse("whereis jdoe"), Command::Find("jdoe".into()));
        assert_eq!(
            Command::parse("WhereIs jdoe?"),
            Command::Find("jdoe".into())
        );
        assert_eq!(
            Command::parse("Jane   Doe"),
            Command::Find("Jane Doe".into())
        );
        assert_eq!(
            Command::parse("whereisjdoe"),
            Command::Find("whereisjdoe".into())
        );
        assert_eq!(
            Command::parse("CORP\\jdoe"),
            Command::Find("CORP\\jdoe".into())
        );
    }

    #[test]
    fn leading_words_respect_char_boundaries() {
        assert_eq!(strip_leading_word("wé", "whereis"), None);
        assert_eq!(strip_leading_word("ééééééééé", "whereis"), None);
    }
}
