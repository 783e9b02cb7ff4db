//! `/buildings/{name}`: everyone located in a building now (when `[web] building_roster = true`),
//! through [`Finder::roster`](crate::lookup::Finder) under the privacy rules; `/buildings?name=` is
//! the form's way there.

use axum::extract::{Extension, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::{Deserialize, Serialize};

use super::{message_page, page, sentence, Layout};
use crate::privacy::{Channel, Refusal, Requester};
use crate::report::format_age;
use crate::roster::{Roster, RosterError};
use crate::server::AppState;

/// One row of the roster table.
#[derive(Serialize)]
struct Row {
    username: String,
    name: String,
    floor: String,
    seen: String,
    stale: bool,
    devices: usize,
}

#[derive(Debug, Deserialize)]
pub(super) struct BuildingParams {
    name: Option<String>,
}

/// The roster's URL for `building` (its name percent-encoded as one path segment).
pub(super) fn roster_url(building: &str) -> String {
    format!(
        "/buildings/{}",
        percent_encoding::utf8_percent_encode(building, percent_encoding::NON_ALPHANUMERIC)
    )
}

/// `GET /buildings?name=…`: the search page's roster form, sent on to `/buildings/{name}`.
pub(super) async fn building_form(
    State(state): State<AppState>,
    Extension(requester): Extension<Requester>,
    Query(params): Query<BuildingParams>,
) -> Response {
    if let Some(off) = roster_off(&state, &requester) {
        return off;
    }
    let name = params.name.unwrap_or_default();
    match crate::roster::building_name(&name) {
        Ok(name) => Redirect::to(&roster_url(name)).into_response(),
        Err(err) => bad_building(&requester, &err),
    }
}

/// `GET /buildings/{name}`: the people located in the building, each linking to their lookup.
pub(super) async fn roster_page(
    State(state): State<AppState>,
    Extension(requester): Extension<Requester>,
    Path(building): Path<String>,
) -> Response {
    if let Some(off) = roster_off(&state, &requester) {
        return off;
    }
    let requester = Requester {
        channel: Channel::WebRoster,
        ..requester
    };
    let roster = match state.finder.roster(&building, &requester).await {
        Ok(roster) => roster,
        Err(err) => return refused(&requester, &err),
    };
    let status = if roster.all_sources_failed() {
        StatusCode::BAD_GATEWAY
    } else {
        StatusCode::OK
    };
    let notes = notes(&roster);
    let rows: Vec<Row> = roster
        .people
        .iter()
        .map(|person| Row {
            username: person.username.clone(),
            name: person
                .display_name
                .clone()
                .unwrap_or_else(|| person.username.clone()),
            floor: person.floor.clone().unwrap_or_else(|| "—".to_owned()),
            seen: match person.last_seen_seconds {
                Some(age) => format!("{} ago", format_age(age)),
                None => "unknown".to_owned(),
            },
            stale: person.stale,
            devices: person.devices,
        })
        .collect();
    let layout = Layout::new(
        Some(&requester),
        "roster",
        format!("Everyone in {} — whereis", roster.building),
    )
    .with_sign_out(&state, &requester)
    .await;
    page(
        status,
        "roster.html",
        minijinja::context! {
            layout => layout,
            building => roster.building,
            rows => rows,
            notes => notes,
            failed => roster.all_sources_failed(),
        },
    )
}

/// Which sources did not answer, said once above the table.
fn notes(roster: &Roster) -> Vec<String> {
    if roster.errors.is_empty() {
        return Vec::new();
    }
    let failed: Vec<String> = roster
        .errors
        .iter()
        .map(|failure| format!("{}: {}", failure.source, failure.error))
        .collect();
    let lead = if roster.all_sources_failed() {
        "No location server could list this building, so nobody can be shown"
    } else {
        "Not every location server answered, so there may be more people here"
    };
    vec![format!("{lead} ({}).", failed.join("; "))]
}

/// The page for a roster turned off by configuration (404, as if it did not exist).
fn roster_off(state: &AppState, requester: &Requester) -> Option<Response> {
    (!state.finder.web().building_roster).then(|| {
        message_page(
            StatusCode::NOT_FOUND,
            Some(requester),
            "No building lists here",
            "Listing everyone in a building is turned off on this whereis.".to_owned(),
            Some(("/", "Back to search")),
        )
    })
}

fn bad_building(requester: &Requester, err: &RosterError) -> Response {
    message_page(
        StatusCode::BAD_REQUEST,
        Some(requester),
        "That is not a building",
        sentence(&err.to_string()),
        Some(("/", "Back to search")),
    )
}

fn refused(requester: &Requester, err: &RosterError) -> Response {
    let (status, heading) = match err {
        RosterError::BadBuilding(_) => return bad_building(requester, err),
        RosterError::NotAllowed(_) => (StatusCode::FORBIDDEN, "Not allowed"),
        RosterError::Refused(Refusal::RateLimited(_)) => {
            (StatusCode::TOO_MANY_REQUESTS, "Too many lookups")
        }
        RosterError::Refused(_) => (StatusCode::SERVICE_UNAVAILABLE, "Try again later"),
    };
    message_page(
        status,
        Some(requester),
        heading,
        sentence(&err.to_string()),
        Some(("/", "Back to search")),
    )
}
