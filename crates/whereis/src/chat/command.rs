//! What a chat message asks for. The same commands serve every channel, so the rules cannot drift.

use crate::privacy::{Hours, Precision, Weekdays};
use crate::settings::{is_email, ShareChange};

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
    /// The requester's own settings (`settings`, `who can find me`).
    MySettings,
    /// `precision exact|floor|building|default`.
    Precision(Option<Precision>),
    /// `hours 09:00-17:00 [mon-thu]`, `hours default`.
    Hours(Option<Hours>),
    /// `share with …`, `unshare …`, `block …`, `unblock …`.
    Share(ShareChange),
    /// `star jdoe`.
    Star(String),
    /// `unstar jdoe`.
    Unstar(String),
    /// `favourites`: who of the starred colleagues is in.
    Favourites,
    /// A settings command with arguments it cannot use: the usage to answer with.
    Usage(String),
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
            "settings" | "my settings" | "privacy" | "who can find me" | "who may find me" => {
                Command::MySettings
            }
            "favourites" | "favorites" | "favs" | "starred" => Command::Favourites,
            _ => settings_command(&words).unwrap_or_else(|| Command::Find(words_of(text))),
        }
    }
}

const PRECISION_USAGE: &str =
    "Say \"precision floor\" (building and floor, no marker), \"precision building\", \"precision exact\" or \"precision default\".";
const HOURS_USAGE: &str =
    "Say \"hours 09:00-17:00\", optionally with days (\"hours 09:00-17:00 mon-thu\"), or \"hours default\".";
const SHARE_USAGE: &str =
    "Say \"share with team\", \"share with everyone\", \"share with jane.doe@example.com\", \"unshare …\", \"block …\" or \"unblock …\" (with an email address).";

/// The settings commands, from the message's lower-cased words; `None` when it is none of them.
fn settings_command(words: &[String]) -> Option<Command> {
    let (first, rest) = words.split_first()?;
    let rest: Vec<&str> = rest.iter().map(String::as_str).collect();
    let email = |change: fn(String) -> ShareChange| match rest.as_slice() {
        [email] if is_email(email) => Command::Share(change(email.trim().to_owned())),
        _ => Command::Usage(SHARE_USAGE.to_owned()),
    };
    Some(match (first.as_str(), rest.as_slice()) {
        ("precision", [word]) if *word == "default" => Command::Precision(None),
        ("precision", [word]) => match Precision::parse(word) {
            Some(precision) => Command::Precision(Some(precision)),
            None => Command::Usage(PRECISION_USAGE.to_owned()),
        },
        ("precision", _) => Command::Usage(PRECISION_USAGE.to_owned()),
        ("hours", ["default"]) => Command::Hours(None),
        ("hours", []) => Command::MySettings,
        ("hours", words) => match Hours::parse(&words.join(" "), Weekdays::ALL) {
            Ok(hours) => Command::Hours(Some(hours)),
            Err(why) => Command::Usage(format!("{why}. {HOURS_USAGE}")),
        },
        ("share", ["with", "team"]) | ("share", ["with", "my", "team"]) => {
            Command::Share(ShareChange::Team)
        }
        ("share", ["with", "everyone"]) | ("share", ["with", "everybody"]) => {
            Command::Share(ShareChange::Everyone)
        }
        ("share", ["with", email]) if is_email(email) => {
            Command::Share(ShareChange::With(email.trim().to_owned()))
        }
        ("share", _) => Command::Usage(SHARE_USAGE.to_owned()),
        ("unshare", _) => email(ShareChange::Unshare),
        ("block", _) => email(ShareChange::Block),
        ("unblock", _) => email(ShareChange::Unblock),
        ("star", words) if !words.is_empty() => Command::Star(words.join(" ")),
        ("unstar", words) if !words.is_empty() => Command::Unstar(words.join(" ")),
        _ => return None,
    })
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
    fn settings_commands() {
        assert_eq!(
            Command::parse("precision floor"),
            Command::Precision(Some(Precision::Floor))
        );
        assert_eq!(
            Command::parse("Precision Building"),
            Command::Precision(Some(Precision::Building))
        );
        assert_eq!(
            Command::parse("precision default"),
            Command::Precision(None)
        );
        assert!(matches!(
            Command::parse("precision metre"),
            Command::Usage(_)
        ));
        assert_eq!(
            Command::parse("hours 09:00-17:00 mon-thu"),
            Command::Hours(Some(
                Hours::parse("09:00-17:00 mon,tue,wed,thu", Weekdays::ALL).unwrap()
            ))
        );
        assert_eq!(Command::parse("hours default"), Command::Hours(None));
        assert!(matches!(
            Command::parse("hours 18:00-08:00"),
            Command::Usage(_)
        ));
        assert_eq!(
            Command::parse("share with team"),
            Command::Share(ShareChange::Team)
        );
        assert_eq!(
            Command::parse("share with everyone"),
            Command::Share(ShareChange::Everyone)
        );
        assert_eq!(
            Command::parse("share with Jane.Doe@Example.com"),
            Command::Share(ShareChange::With("jane.doe@example.com".into()))
        );
        assert_eq!(
            Command::parse("block nosy@example.com"),
            Command::Share(ShareChange::Block("nosy@example.com".into()))
        );
        assert_eq!(
            Command::parse("unblock nosy@example.com"),
            Command::Share(ShareChange::Unblock("nosy@example.com".into()))
        );
        assert_eq!(
            Command::parse("unshare jane@example.com"),
            Command::Share(ShareChange::Unshare("jane@example.com".into()))
        );
        assert!(matches!(Command::parse("block nosy"), Command::Usage(_)));
        assert!(matches!(Command::parse("share with"), Command::Usage(_)));
        assert_eq!(Command::parse("who can find me?"), Command::MySettings);
        assert_eq!(
            Command::parse("star Jane Doe"),
            Command::Star("jane doe".into())
        );
        assert_eq!(
            Command::parse("unstar jdoe"),
            Command::Unstar("jdoe".into())
        );
        assert_eq!(Command::parse("favourites"), Command::Favourites);
        assert_eq!(Command::parse("favorites"), Command::Favourites);
        // A lone word that names a command's verb is still a person.
        assert_eq!(Command::parse("star"), Command::Find("star".into()));
        assert_eq!(Command::parse("block"), Command::Usage(SHARE_USAGE.into()));
    }

    #[test]
    fn leading_words_respect_char_boundaries() {
        assert_eq!(strip_leading_word("wé", "whereis"), None);
        assert_eq!(strip_leading_word("ééééééééé", "whereis"), None);
    }
}
