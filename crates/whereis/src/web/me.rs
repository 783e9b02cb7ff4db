//! The requester's own pages: `/me` (can colleagues find me, how precisely, when, who may, and who
//! looked) and `/favourites` (who of my starred colleagues is in). Every form carries the page's
//! CSRF token and acts on the requester's own username only ([`crate::settings`]).

use axum::extract::rejection::FormRejection;
use axum::extract::{Extension, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use serde::{Deserialize, Serialize};

use super::{message_page, on_the_web, page, sentence, Layout};
use crate::lookup::{FindError, IdentityError, SelfServiceError};
use crate::privacy::{Change, Hours, Precision, Requester, Weekdays};
use crate::server::AppState;
use crate::settings::{is_email, MySettings, ShareChange};

/// The settings as the privacy page shows them.
#[derive(Serialize)]
struct SettingsView {
    consent: &'static str,
    chosen_findable: Option<bool>,
    precision: &'static str,
    chosen_precision: Option<String>,
    max_precision: &'static str,
    /// The precisions a person may choose (up to the organisation's maximum), coarsest first.
    choices: Vec<&'static str>,
    hours: String,
    own_hours: String,
    org_hours: String,
    timezone: String,
    audience: String,
    restricted: bool,
    share_team: bool,
    shared_with: Vec<String>,
    blocked: Vec<String>,
}

impl SettingsView {
    fn of(settings: &MySettings) -> SettingsView {
        SettingsView {
            consent: settings.consent.as_str(),
            chosen_findable: settings.chosen.findable,
            precision: settings.precision.as_str(),
            chosen_precision: settings.chosen.precision.clone(),
            max_precision: settings.max_precision.as_str(),
            choices: Precision::ALL
                .into_iter()
                .filter(|p| *p <= settings.max_precision)
                .map(Precision::as_str)
                .collect(),
            hours: match settings.hours {
                None => "any time".to_owned(),
                Some(h) if h.is_never() => {
                    "never (your hours and the organisation's do not overlap)".to_owned()
                }
                Some(h) => h.to_string(),
            },
            own_hours: settings.chosen.hours.clone().unwrap_or_default(),
            org_hours: settings
                .org_hours
                .map_or("any time".to_owned(), |h| h.to_string()),
            timezone: settings.timezone.clone(),
            audience: settings.audience_text(),
            restricted: settings.chosen.restricted,
            share_team: settings.chosen.share_team,
            shared_with: settings.chosen.shared_with.clone(),
            blocked: settings.chosen.blocked.clone(),
        }
    }
}

/// One row of "who looked for me".
#[derive(Serialize)]
struct LookupRow {
    at: String,
    requester: String,
    channel: String,
    outcome: &'static str,
    /// How precisely an allowed lookup was answered; empty for a refusal.
    precision: String,
}

/// `GET /me`: whether the requester can be located, the switch, and who looked for them.
pub(super) async fn me_page(
    State(state): State<AppState>,
    Extension(requester): Extension<Requester>,
) -> Response {
    let requester = on_the_web(requester);
    let (username, lookups) = match state.finder.who_looked(&requester).await {
        Ok(found) => found,
        Err(err) => return self_service_page(&requester, err),
    };
    let settings = match state.finder.my_settings(&requester).await {
        Ok(settings) => settings,
        Err(err) => return self_service_page(&requester, err),
    };
    let csrf = match state.auth.csrf_token(&requester).await {
        Ok(token) => token,
        Err(err) => return self_service_page(&requester, SelfServiceError::Store(err)),
    };
    let rows: Vec<LookupRow> = lookups
        .iter()
        .map(|entry| LookupRow {
            at: chrono::DateTime::from_timestamp(entry.at, 0)
                .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
                .unwrap_or_else(|| entry.at.to_string()),
            requester: entry.requester.clone(),
            channel: entry.channel.clone(),
            outcome: entry.outcome.as_str(),
            precision: entry.precision.clone().unwrap_or_default(),
        })
        .collect();
    page(
        StatusCode::OK,
        "me.html",
        minijinja::context! {
            layout => Layout::new(Some(&requester), "me", "Your privacy — whereis".to_owned())
                .with_sign_out(&state, &requester)
                .await,
            username => username,
            opted_out => !settings.findable,
            settings => SettingsView::of(&settings),
            csrf => csrf,
            lookups => rows,
            window_days => crate::privacy::WHO_LOOKED_WINDOW_DAYS,
        },
    )
}

/// The page for a failed action on the requester's own record.
fn self_service_page(requester: &Requester, err: SelfServiceError) -> Response {
    let status = match &err {
        SelfServiceError::Identity(IdentityError::DirectoryUnavailable(_))
        | SelfServiceError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
        SelfServiceError::Identity(_) => StatusCode::FORBIDDEN,
    };
    message_page(
        status,
        Some(requester),
        "Your privacy settings are unavailable",
        sentence(&err.to_string()),
        Some(("/", "Back to search")),
    )
}

/// The body of every form on the privacy and favourites pages (each uses some of the fields).
#[derive(Debug, Default, Deserialize)]
pub(super) struct SettingsForm {
    csrf: Option<String>,
    /// `/me/precision`: `exact`, `floor`, `building` or `default`.
    precision: Option<String>,
    /// `/me/hours`: `09:00-17:00 mon-thu`, or empty for the organisation's.
    hours: Option<String>,
    /// `/me/share`: `everyone`, `team`, `with`, `unshare`, `block` or `unblock`.
    action: Option<String>,
    /// `/me/share`: the email it is about.
    email: Option<String>,
    /// `/favourites/star` and `/unstar`: who.
    who: Option<String>,
}

/// The requester of a page form (on the web channel) and its fields, once its CSRF token is found
/// to be the requester's; else the refusal page (403; 503 when the token cannot be checked).
async fn checked_form(
    state: &AppState,
    requester: Requester,
    form: Result<Form<SettingsForm>, FormRejection>,
) -> Result<(Requester, SettingsForm), Response> {
    let requester = on_the_web(requester);
    let form = form.map(|Form(form)| form).unwrap_or_default();
    match refuse_forgery(state, &requester, &form).await {
        Some(refusal) => Err(refusal),
        None => Ok((requester, form)),
    }
}

/// Checks a form's CSRF token: `None` when it is the requester's, else the refusal page (403; 503
/// when it cannot be checked).
async fn refuse_forgery(
    state: &AppState,
    requester: &Requester,
    form: &SettingsForm,
) -> Option<Response> {
    let token = form.csrf.clone().unwrap_or_default();
    match state.auth.csrf_valid(requester, &token).await {
        Ok(true) => None,
        Ok(false) => Some(message_page(
            StatusCode::FORBIDDEN,
            Some(requester),
            "Nothing was changed",
            "This form did not come from your whereis page, or it has expired. Open your privacy page again and use the button there.".to_owned(),
            Some(("/me", "Your privacy")),
        )),
        Err(err) => Some(self_service_page(requester, SelfServiceError::Store(err))),
    }
}

/// `POST /me/optout` (with the page's CSRF token): the requester stops being locatable.
pub(super) async fn me_opt_out(
    State(state): State<AppState>,
    Extension(requester): Extension<Requester>,
    form: Result<Form<SettingsForm>, FormRejection>,
) -> Response {
    let (requester, _) = match checked_form(&state, requester, form).await {
        Ok(checked) => checked,
        Err(refusal) => return refusal,
    };
    match state.finder.opt_out(&requester).await {
        Ok(_) => Redirect::to("/me").into_response(),
        Err(err) => self_service_page(&requester, err),
    }
}

/// `POST /me/optin` (with the page's CSRF token): the requester is locatable again.
pub(super) async fn me_opt_in(
    State(state): State<AppState>,
    Extension(requester): Extension<Requester>,
    form: Result<Form<SettingsForm>, FormRejection>,
) -> Response {
    let (requester, _) = match checked_form(&state, requester, form).await {
        Ok(checked) => checked,
        Err(refusal) => return refusal,
    };
    match state.finder.opt_in(&requester).await {
        Ok(_) => Redirect::to("/me").into_response(),
        Err(err) => self_service_page(&requester, err),
    }
}

/// `POST /me/precision`: the requester's own precision.
pub(super) async fn me_precision(
    State(state): State<AppState>,
    Extension(requester): Extension<Requester>,
    form: Result<Form<SettingsForm>, FormRejection>,
) -> Response {
    let (requester, form) = match checked_form(&state, requester, form).await {
        Ok(checked) => checked,
        Err(refusal) => return refusal,
    };
    let choice = match form.precision.as_deref().map(str::trim) {
        Some("default") => None,
        Some(text) => match Precision::parse(text) {
            Some(precision) => Some(precision),
            None => return bad_form(&requester, "Choose exact, floor or building."),
        },
        None => return bad_form(&requester, "Choose exact, floor or building."),
    };
    match state.finder.set_my_precision(&requester, choice).await {
        Ok(_) => Redirect::to("/me#precision").into_response(),
        Err(err) => self_service_page(&requester, err),
    }
}

/// `POST /me/hours`: the requester's own working hours (empty: the organisation's).
pub(super) async fn me_hours(
    State(state): State<AppState>,
    Extension(requester): Extension<Requester>,
    form: Result<Form<SettingsForm>, FormRejection>,
) -> Response {
    let (requester, form) = match checked_form(&state, requester, form).await {
        Ok(checked) => checked,
        Err(refusal) => return refusal,
    };
    let text = form.hours.unwrap_or_default();
    let hours = match text.trim() {
        "" => None,
        text => match Hours::parse(text, Weekdays::ALL) {
            Ok(hours) => Some(hours),
            Err(why) => {
                return bad_form(
                    &requester,
                    &format!("{why}. Write the hours as 09:00-17:00, optionally with days: 09:00-17:00 mon-thu."),
                )
            }
        },
    };
    match state.finder.set_my_hours(&requester, hours).await {
        Ok(_) => Redirect::to("/me#hours").into_response(),
        Err(err) => self_service_page(&requester, err),
    }
}

/// `POST /me/share`: who may find the requester.
pub(super) async fn me_share(
    State(state): State<AppState>,
    Extension(requester): Extension<Requester>,
    form: Result<Form<SettingsForm>, FormRejection>,
) -> Response {
    let (requester, form) = match checked_form(&state, requester, form).await {
        Ok(checked) => checked,
        Err(refusal) => return refusal,
    };
    let email = form.email.unwrap_or_default().trim().to_lowercase();
    let with_email =
        |change: fn(String) -> ShareChange| is_email(&email).then(|| change(email.clone()));
    let change = match form.action.as_deref() {
        Some("everyone") => Some(ShareChange::Everyone),
        Some("team") => Some(ShareChange::Team),
        Some("with") => with_email(ShareChange::With),
        Some("unshare") => with_email(ShareChange::Unshare),
        Some("block") => with_email(ShareChange::Block),
        Some("unblock") => with_email(ShareChange::Unblock),
        _ => None,
    };
    let Some(change) = change else {
        return bad_form(
            &requester,
            "Give a whole email address, such as jane.doe@example.com.",
        );
    };
    match state.finder.share(&requester, &change).await {
        Ok((Change::TooMany(max), _)) => bad_form(
            &requester,
            &format!(
                "You can name at most {max} people to share with or block; remove someone first."
            ),
        ),
        Ok(_) => Redirect::to("/me#audience").into_response(),
        Err(err) => self_service_page(&requester, err),
    }
}

/// One starred colleague on the favourites page.
#[derive(Serialize)]
struct FavouriteRow {
    username: String,
    name: String,
    places: Vec<String>,
    precision: &'static str,
}

/// `GET /favourites`: who of the requester's starred colleagues is in (each an audited lookup).
pub(super) async fn favourites_page(
    State(state): State<AppState>,
    Extension(requester): Extension<Requester>,
) -> Response {
    let requester = on_the_web(requester);
    let panel = match state.finder.favourites(&requester).await {
        Ok(panel) => panel,
        Err(err) => return find_failure_page(&requester, &err),
    };
    let csrf = match state.auth.csrf_token(&requester).await {
        Ok(token) => token,
        Err(err) => return self_service_page(&requester, SelfServiceError::Store(err)),
    };
    let present: Vec<FavouriteRow> = panel
        .present
        .iter()
        .map(|f| FavouriteRow {
            username: f.username.clone(),
            name: f.display_name.clone().unwrap_or_else(|| f.username.clone()),
            places: f.places.clone(),
            precision: f.precision.as_str(),
        })
        .collect();
    page(
        StatusCode::OK,
        "favourites.html",
        minijinja::context! {
            layout => Layout::new(Some(&requester), "favourites", "Favourites — whereis".to_owned())
                .with_sign_out(&state, &requester)
                .await,
            starred => panel.starred,
            present => present,
            rate_limited => panel.rate_limited,
            csrf => csrf,
        },
    )
}

/// `POST /favourites/star`: stars a colleague (a username or a name the directory knows).
pub(super) async fn star(
    State(state): State<AppState>,
    Extension(requester): Extension<Requester>,
    form: Result<Form<SettingsForm>, FormRejection>,
) -> Response {
    favourite(state, requester, form, true).await
}

/// `POST /favourites/unstar`: unstars a colleague.
pub(super) async fn unstar(
    State(state): State<AppState>,
    Extension(requester): Extension<Requester>,
    form: Result<Form<SettingsForm>, FormRejection>,
) -> Response {
    favourite(state, requester, form, false).await
}

async fn favourite(
    state: AppState,
    requester: Requester,
    form: Result<Form<SettingsForm>, FormRejection>,
    add: bool,
) -> Response {
    let (requester, form) = match checked_form(&state, requester, form).await {
        Ok(checked) => checked,
        Err(refusal) => return refusal,
    };
    let who = form.who.unwrap_or_default();
    let who = who.trim();
    if who.is_empty() {
        return bad_form(&requester, "Say whom to star: a username or a name.");
    }
    let done = if add {
        state.finder.star(&requester, who).await
    } else {
        state.finder.unstar(&requester, who).await
    };
    match done {
        Ok((_, Change::TooMany(max))) => bad_form(
            &requester,
            &format!("You can star at most {max} colleagues; unstar someone first."),
        ),
        Ok(_) => Redirect::to("/favourites").into_response(),
        Err(err) => find_failure_page(&requester, &err),
    }
}

/// A form whose fields cannot be used: nothing was changed.
fn bad_form(requester: &Requester, why: &str) -> Response {
    message_page(
        StatusCode::BAD_REQUEST,
        Some(requester),
        "Nothing was changed",
        sentence(why),
        Some(("/me", "Your privacy")),
    )
}

/// A favourites action that could not be done.
fn find_failure_page(requester: &Requester, err: &FindError) -> Response {
    let (status, text) = match err {
        FindError::Ambiguous { query, candidates } => (
            StatusCode::CONFLICT,
            format!(
                "“{query}” could be {}: star one of them by username.",
                candidates
                    .iter()
                    .map(|c| format!("{} ({})", c.display_name, c.username))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ),
        FindError::NotAllowed(_) => (StatusCode::FORBIDDEN, err.to_string()),
        FindError::Refused(_) | FindError::DirectoryUnavailable(_) => {
            (StatusCode::SERVICE_UNAVAILABLE, err.to_string())
        }
        _ => (StatusCode::BAD_REQUEST, err.to_string()),
    };
    message_page(
        status,
        Some(requester),
        "Favourites",
        sentence(&text),
        Some(("/favourites", "Your favourites")),
    )
}

#[cfg(test)]
mod tests {
    use super::super::tests::{layout, render};
    use super::*;
    use crate::privacy::Consent;
    use crate::store::PersonSettings;

    fn settings(chosen: PersonSettings) -> MySettings {
        MySettings {
            username: "jdoe".into(),
            chosen,
            findable: false,
            consent: Consent::OptIn,
            precision: Precision::Floor,
            max_precision: Precision::Floor,
            hours: Some(Hours::parse("08:00-18:30", Weekdays::MONDAY_TO_FRIDAY).expect("valid")),
            org_hours: None,
            timezone: "Europe/Zurich".into(),
        }
    }

    #[test]
    fn the_privacy_page_shows_every_setting_and_escapes_names() {
        let chosen = PersonSettings {
            restricted: true,
            share_team: true,
            shared_with: vec!["<jane>@example.com".into()],
            blocked: vec!["nosy@example.com".into()],
            ..PersonSettings::default()
        };
        let me = render(
            "me.html",
            minijinja::context! {
                layout => layout(), username => "jdoe", opted_out => true, csrf => "t0k",
                settings => SettingsView::of(&settings(chosen)),
                lookups => Vec::<String>::new(), window_days => 30,
            },
        );
        assert!(me.contains("name=\"csrf\" value=\"t0k\""), "{me}");
        assert!(me.contains("action=\"/me/optin\""), "{me}");
        assert!(
            me.contains("opt in, and you have not"),
            "opt-in wording: {me}"
        );
        assert!(me.contains("data-precision=\"floor\""), "{me}");
        assert!(
            !me.contains("value=\"exact\""),
            "nothing above the maximum is offered: {me}"
        );
        assert!(me.contains("08:00-18:30 mon,tue,wed,thu,fri"), "{me}");
        assert!(me.contains("&lt;jane&gt;@example.com"), "{me}");
        assert!(!me.contains("<jane>"), "{me}");
        assert!(me.contains("value=\"unblock\""), "{me}");
        let opted_out = render(
            "me.html",
            minijinja::context! {
                layout => layout(), username => "jdoe", opted_out => true, csrf => "t0k",
                settings => SettingsView::of(&settings(PersonSettings { findable: Some(false), ..PersonSettings::default() })),
                lookups => Vec::<String>::new(), window_days => 30,
            },
        );
        assert!(opted_out.contains("You have opted out"), "{opted_out}");
    }

    #[test]
    fn the_favourites_page_lists_who_is_in() {
        let page = render(
            "favourites.html",
            minijinja::context! {
                layout => layout(), csrf => "t0k",
                starred => vec!["jdoe", "asmith"],
                present => vec![FavouriteRow { username: "jdoe".into(), name: "Jane <Doe>".into(), places: vec!["Building 5, Level 3".into()], precision: "floor" }],
                rate_limited => true,
            },
        );
        assert!(page.contains("Jane &lt;Doe&gt;"), "{page}");
        assert!(page.contains("Building 5, Level 3"), "{page}");
        assert!(page.contains("1 of 2 starred"), "{page}");
        assert!(page.contains("hourly lookup limit"), "{page}");
        assert!(page.contains("action=\"/favourites/unstar\""), "{page}");
    }
}
