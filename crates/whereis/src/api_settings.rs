//! The API of a person's own settings and favourites (the same actions as chat and the web,
//! [`crate::settings`]): `GET`/`POST /api/v1/me/settings`, `GET`/`POST /api/v1/favourites`,
//! `DELETE /api/v1/favourites/{who}`. Every route acts on the identified requester only.

use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use axum::{Json, Router};
use serde::Deserialize;

use crate::lookup::FindError;
use crate::privacy::{Change, Hours, Precision, Requester, Weekdays};
use crate::server::{error, self_service_error, AppState};
use crate::settings::{is_email, Favourites, MySettings, ShareChange};

/// The routes (behind `identify`, added by the caller).
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/me/settings",
            get(get_settings).post(change_settings),
        )
        .route(
            "/api/v1/favourites",
            get(get_favourites).post(add_favourite),
        )
        .route("/api/v1/favourites/{who}", delete(remove_favourite))
}

/// A change to one's settings: every field is optional; `precision` and `hours` take `"default"`
/// (or `""` for hours) to follow the organisation again; `share` is `everyone`, `team`, `with`,
/// `unshare`, `block` or `unblock`, the last four with `email`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SettingsChange {
    findable: Option<bool>,
    precision: Option<String>,
    hours: Option<String>,
    share: Option<String>,
    email: Option<String>,
}

/// `who`, for `POST /api/v1/favourites`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Star {
    who: String,
}

fn settings_json(settings: &MySettings) -> serde_json::Value {
    serde_json::json!({
        "username": settings.username,
        "findable": settings.findable,
        "default": settings.consent.as_str(),
        "chosen_findable": settings.chosen.findable,
        "precision": settings.precision,
        "max_precision": settings.max_precision,
        "chosen_precision": settings.chosen.precision,
        "hours": settings.hours.map(|h| h.to_string()),
        "organisation_hours": settings.org_hours.map(|h| h.to_string()),
        "own_hours": settings.chosen.hours,
        "timezone": settings.timezone,
        "audience": if settings.chosen.restricted { "chosen" } else { "everyone" },
        "share_with_team": settings.chosen.share_team,
        "shared_with": settings.chosen.shared_with,
        "blocked": settings.chosen.blocked,
    })
}

/// `GET /api/v1/me/settings`.
async fn get_settings(
    State(state): State<AppState>,
    Extension(requester): Extension<Requester>,
) -> Response {
    match state.finder.my_settings(&requester).await {
        Ok(settings) => Json(settings_json(&settings)).into_response(),
        Err(err) => self_service_error(err),
    }
}

/// `POST /api/v1/me/settings`: applies the fields given, in the order findable, precision, hours,
/// share; answers with the settings now in force. A field that cannot be used changes nothing.
async fn change_settings(
    State(state): State<AppState>,
    Extension(requester): Extension<Requester>,
    body: Result<Json<SettingsChange>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Ok(Json(change)) = body else {
        return error(
            StatusCode::BAD_REQUEST,
            "expected JSON with findable, precision, hours, share and email".to_owned(),
        );
    };
    let precision = match change.precision.as_deref().map(str::trim) {
        None => None,
        Some("default") => Some(None),
        Some(text) => match Precision::parse(text) {
            Some(p) => Some(Some(p)),
            None => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "precision: exact, floor, building or default".to_owned(),
                )
            }
        },
    };
    let hours = match change.hours.as_deref().map(str::trim) {
        None => None,
        Some("" | "default") => Some(None),
        Some(text) => match Hours::parse(text, Weekdays::ALL) {
            Ok(hours) => Some(Some(hours)),
            Err(why) => return error(StatusCode::BAD_REQUEST, format!("hours: {why}")),
        },
    };
    let email = change.email.unwrap_or_default().trim().to_lowercase();
    let share = match change.share.as_deref() {
        None => None,
        Some("everyone") => Some(ShareChange::Everyone),
        Some("team") => Some(ShareChange::Team),
        Some(action @ ("with" | "unshare" | "block" | "unblock")) if is_email(&email) => {
            Some(match action {
                "with" => ShareChange::With(email),
                "unshare" => ShareChange::Unshare(email),
                "block" => ShareChange::Block(email),
                _ => ShareChange::Unblock(email),
            })
        }
        Some(_) => {
            return error(
                StatusCode::BAD_REQUEST,
                "share: everyone, team, or with/unshare/block/unblock and a whole email".to_owned(),
            )
        }
    };
    let finder = &state.finder;
    let applied = async {
        match change.findable {
            Some(true) => drop(finder.opt_in(&requester).await?),
            Some(false) => drop(finder.opt_out(&requester).await?),
            None => {}
        }
        if let Some(precision) = precision {
            finder.set_my_precision(&requester, precision).await?;
        }
        if let Some(hours) = hours {
            finder.set_my_hours(&requester, hours).await?;
        }
        if let Some(share) = &share {
            if let (Change::TooMany(max), _) = finder.share(&requester, share).await? {
                return Ok(Err(max));
            }
        }
        finder.my_settings(&requester).await.map(Ok)
    };
    match applied.await {
        Ok(Ok(settings)) => Json(settings_json(&settings)).into_response(),
        Ok(Err(max)) => error(
            StatusCode::CONFLICT,
            format!("at most {max} people can be named to share with or block"),
        ),
        Err(err) => self_service_error(err),
    }
}

fn favourites_json(panel: &Favourites) -> serde_json::Value {
    serde_json::json!({
        "starred": panel.starred,
        "present": panel.present.iter().map(|f| serde_json::json!({
            "username": f.username,
            "display_name": f.display_name,
            "places": f.places,
            "precision": f.precision,
        })).collect::<Vec<_>>(),
        "rate_limited": panel.rate_limited,
    })
}

fn find_error(err: &FindError) -> Response {
    let status = match err {
        FindError::Ambiguous { .. } => StatusCode::CONFLICT,
        FindError::NotAllowed(_) => StatusCode::FORBIDDEN,
        FindError::Refused(_) | FindError::DirectoryUnavailable(_) => {
            StatusCode::SERVICE_UNAVAILABLE
        }
        FindError::NoSuchPerson(_) => StatusCode::NOT_FOUND,
        FindError::BadQuery(_) => StatusCode::BAD_REQUEST,
    };
    error(status, err.to_string())
}

/// `GET /api/v1/favourites`: who of the starred colleagues is in (each an audited lookup).
async fn get_favourites(
    State(state): State<AppState>,
    Extension(requester): Extension<Requester>,
) -> Response {
    match state.finder.favourites(&requester).await {
        Ok(panel) => Json(favourites_json(&panel)).into_response(),
        Err(err) => find_error(&err),
    }
}

/// `POST /api/v1/favourites` `{"who": "jdoe"}`: stars a colleague.
async fn add_favourite(
    State(state): State<AppState>,
    Extension(requester): Extension<Requester>,
    body: Result<Json<Star>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Ok(Json(star)) = body else {
        return error(
            StatusCode::BAD_REQUEST,
            "expected {\"who\": \"jdoe\"}".to_owned(),
        );
    };
    match state.finder.star(&requester, &star.who).await {
        Ok((_, Change::TooMany(max))) => error(
            StatusCode::CONFLICT,
            format!("at most {max} colleagues can be starred"),
        ),
        Ok((username, change)) => Json(serde_json::json!({
            "username": username,
            "starred": true,
            "changed": change == Change::Done,
        }))
        .into_response(),
        Err(err) => find_error(&err),
    }
}

/// `DELETE /api/v1/favourites/{who}`: unstars a colleague.
async fn remove_favourite(
    State(state): State<AppState>,
    Extension(requester): Extension<Requester>,
    Path(who): Path<String>,
) -> Response {
    match state.finder.unstar(&requester, &who).await {
        Ok((username, change)) => Json(serde_json::json!({
            "username": username,
            "starred": false,
            "changed": change == Change::Done,
        }))
        .into_response(),
        Err(err) => find_error(&err),
    }
}
