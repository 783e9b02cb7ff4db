//! The answers to a person's settings and favourites commands in chat (`settings`, `precision`,
//! `hours`, `share with`, `block`, `star`, `favourites`, …); the actions are the web's too
//! ([`crate::settings`]).

use super::command::Command;
use crate::lookup::{FindError, Finder, SelfServiceError};
use crate::privacy::{Change, Precision, Requester};
use crate::settings::{Favourites, MySettings, ShareChange};

/// The reply to a settings or favourites command; `None` for any other command.
pub(super) async fn answer(
    finder: &Finder,
    requester: &Requester,
    command: &Command,
) -> Option<String> {
    Some(match command {
        Command::MySettings => match finder.my_settings(requester).await {
            Ok(settings) => settings.to_text(),
            Err(err) => failure(&err),
        },
        Command::Precision(choice) => match finder.set_my_precision(requester, *choice).await {
            Ok(settings) => precision_text(&settings, *choice),
            Err(err) => failure(&err),
        },
        Command::Hours(hours) => match finder.set_my_hours(requester, *hours).await {
            Ok(settings) => match (hours, settings.hours) {
                (_, Some(window)) if window.is_never() => format!(
                    "Done, but your hours and the organisation's ({}) do not overlap: nobody can locate you at any time. Send \"hours default\" to undo.",
                    settings.org_hours.map_or("any time".to_owned(), |h| h.to_string())
                ),
                (_, Some(window)) => format!(
                    "Done: you can be located {window} ({}), and not outside it.{}",
                    settings.timezone,
                    narrowed_note(&settings, *hours)
                ),
                (_, None) => "Done: you can be located at any time.".to_owned(),
            },
            Err(err) => failure(&err),
        },
        Command::Share(change) => match finder.share(requester, change).await {
            Ok((Change::TooMany(max), _)) => format!(
                "Sorry, you can name at most {max} people to share with or block; remove someone first."
            ),
            Ok((done, settings)) => share_text(change, &done, &settings),
            Err(err) => failure(&err),
        },
        Command::Star(query) => match finder.star(requester, query).await {
            Ok((username, Change::Done)) => format!(
                "Starred {username}. Send \"favourites\" to see who of your starred colleagues is in."
            ),
            Ok((username, Change::Unchanged)) => format!("{username} is already starred."),
            Ok((_, Change::TooMany(max))) => {
                format!("Sorry, you can star at most {max} colleagues; unstar someone first.")
            }
            Err(err) => find_failure(&err, "star"),
        },
        Command::Unstar(query) => match finder.unstar(requester, query).await {
            Ok((username, Change::Unchanged)) => format!("{username} was not starred."),
            Ok((username, _)) => format!("Unstarred {username}."),
            Err(err) => find_failure(&err, "unstar"),
        },
        Command::Favourites => match finder.favourites(requester).await {
            Ok(panel) => favourites_text(&panel),
            Err(err) => find_failure(&err, "star"),
        },
        Command::Usage(usage) => usage.clone(),
        _ => return None,
    })
}

fn failure(err: &SelfServiceError) -> String {
    super::self_service_failure(err)
}

fn find_failure(err: &FindError, verb: &str) -> String {
    match err {
        FindError::Ambiguous { query, candidates } => {
            let mut text = format!(
                "\"{query}\" could be {} people; say \"{verb}\" with the username:",
                candidates.len()
            );
            for entry in candidates {
                text.push_str(&format!("\n- {} ({})", entry.display_name, entry.username));
            }
            text
        }
        err => format!("Sorry, {err}."),
    }
}

fn precision_text(settings: &MySettings, choice: Option<Precision>) -> String {
    let what = match settings.precision {
        Precision::Exact => "your position on the floor plan",
        Precision::Floor => "your building and floor, and the floor plan without a marker",
        Precision::Building => "only your building",
    };
    let capped = match choice {
        Some(asked) if asked > settings.precision => format!(
            " (the organisation allows at most \"{}\")",
            settings.max_precision
        ),
        _ => String::new(),
    };
    format!("Done: colleagues who find you see {what}{capped}.")
}

fn narrowed_note(settings: &MySettings, asked: Option<crate::privacy::Hours>) -> String {
    match (asked, settings.hours) {
        (Some(asked), Some(in_force)) if asked != in_force => {
            " (Your hours can only narrow the organisation's, never widen them.)".to_owned()
        }
        _ => String::new(),
    }
}

fn share_text(change: &ShareChange, done: &Change, settings: &MySettings) -> String {
    let mut text = if *done == Change::Unchanged {
        "It was so already.".to_owned()
    } else {
        "Done.".to_owned()
    };
    match change {
        ShareChange::Block(email) => text.push_str(&format!(" {email} cannot find you.")),
        ShareChange::Unblock(email) => text.push_str(&format!(" {email} is no longer blocked.")),
        ShareChange::Unshare(email) => {
            text.push_str(&format!(" {email} is no longer on your list."))
        }
        ShareChange::Everyone | ShareChange::Team | ShareChange::With(_) => {}
    }
    text.push_str(&format!(
        " Who can find you now: {}.",
        settings.audience_text()
    ));
    text
}

fn favourites_text(panel: &Favourites) -> String {
    if panel.starred.is_empty() {
        return "You have not starred anyone yet: say \"star jdoe\" (or a name) to add a colleague."
            .to_owned();
    }
    let mut text = if panel.present.is_empty() {
        format!(
            "None of your {} starred colleagues is in right now (or they do not share their location with you).",
            panel.starred.len()
        )
    } else {
        let mut text = format!(
            "In now ({} of {} starred):",
            panel.present.len(),
            panel.starred.len()
        );
        for person in &panel.present {
            let name = person
                .display_name
                .as_deref()
                .map(|n| format!("{n} ({})", person.username))
                .unwrap_or_else(|| person.username.clone());
            text.push_str(&format!("\n- {name}: {}", person.places.join("; ")));
        }
        text
    };
    if panel.rate_limited {
        text.push_str("\n(You reached your hourly lookup limit: the rest were not looked up.)");
    }
    text
}
