//! The web pages of `serve` and `demo`, rendered on the server from templates compiled into the
//! binary: the search (`/`, `/?q=`), the requester's own privacy page (`/me`), the directory
//! suggestions behind the search box (`/api/v1/people`), the embedded stylesheet and script
//! (`/assets/…`), and the security headers of every response. Every lookup goes through
//! [`Finder::find`](crate::lookup::Finder::find) on [`Channel::Web`], under the same privacy rules as
//! every other channel.

mod assets;
mod me;
mod roster;

use std::sync::LazyLock;

use axum::extract::{Extension, Query, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use minijinja::Environment;
use serde::{Deserialize, Serialize};

use crate::directory::Entry;
use crate::lookup::FindError;
use crate::privacy::{Channel, Precision, Refusal, Requester};
use crate::report::{describe_device, DeviceReport, FindReport, Outcome};
use crate::server::{error, identify, map_link, AppState};

/// The address of the app's stylesheet (content-hashed), for pages outside `web` that share it.
#[cfg(feature = "demo")]
pub(crate) fn app_css_url() -> String {
    assets::CSS.url()
}

/// The Content-Security-Policy of every response: nothing inline, nothing from elsewhere.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// Most entries `/api/v1/people` answers with.
pub const MAX_SUGGESTIONS: usize = 10;

/// Longest query the pages and suggestions accept (longer ones are cut, never an error page).
const MAX_QUERY_CHARS: usize = 200;

/// The page routes and `/api/v1/people`, each behind [`identify`]; `/assets/…` is public.
pub(crate) fn routes(state: &AppState) -> Router<AppState> {
    let pages = Router::new()
        .route("/", get(search_page))
        .route("/me", get(me::me_page))
        .route("/me/optout", post(me::me_opt_out))
        .route("/me/optin", post(me::me_opt_in))
        .route("/me/precision", post(me::me_precision))
        .route("/me/hours", post(me::me_hours))
        .route("/me/share", post(me::me_share))
        .route("/favourites", get(me::favourites_page))
        .route("/favourites/star", post(me::star))
        .route("/favourites/unstar", post(me::unstar))
        .route("/buildings", get(roster::building_form))
        .route("/buildings/{name}", get(roster::roster_page))
        .route_layer(middleware::from_fn_with_state(state.clone(), identify))
        // Outside `identify`: its JSON refusals become pages a person can read.
        .route_layer(middleware::from_fn(refusals_as_pages));
    let api = Router::new()
        .route("/api/v1/people", get(people))
        .route_layer(middleware::from_fn_with_state(state.clone(), identify));
    Router::new()
        .merge(pages)
        .merge(api)
        .route("/assets/{name}", get(assets::serve))
}

/// Adds the security headers to every response of the app (pages, API, assets, health).
pub async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

/// The templates, compiled once (a broken template is caught by the unit tests below).
static TEMPLATES: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    for (name, source) in [
        ("base.html", include_str!("templates/base.html")),
        ("search.html", include_str!("templates/search.html")),
        ("me.html", include_str!("templates/me.html")),
        ("message.html", include_str!("templates/message.html")),
        ("roster.html", include_str!("templates/roster.html")),
        ("favourites.html", include_str!("templates/favourites.html")),
    ] {
        if let Err(err) = env.add_template(name, source) {
            tracing::error!(template = name, error = %err, "a page template does not compile");
        }
    }
    env
});

/// What every page shows around its content.
#[derive(Serialize)]
struct Layout {
    /// The signed-in requester's email, when known.
    email: Option<String>,
    css: String,
    js: String,
    /// Which navigation entry is the current page.
    current: &'static str,
    title: String,
    /// The CSRF token of the sign-out form, shown when a session can be ended (`auth = "oidc"`).
    sign_out: Option<String>,
}

impl Layout {
    fn new(requester: Option<&Requester>, current: &'static str, title: String) -> Layout {
        Layout {
            email: requester.map(|r| r.id.clone()),
            css: assets::CSS.url(),
            js: assets::JS.url(),
            current,
            title,
            sign_out: None,
        }
    }

    /// Adds the sign-out form when the requester signed in with a session (left out when the token
    /// cannot be made: the page still works).
    async fn with_sign_out(mut self, state: &AppState, requester: &Requester) -> Layout {
        if matches!(state.auth.mode(), crate::config::WebAuth::Oidc(_)) {
            match state.auth.csrf_token(requester).await {
                Ok(token) => self.sign_out = Some(token),
                Err(err) => tracing::warn!(error = %err, "no sign-out form: cannot make its token"),
            }
        }
        self
    }
}

/// Renders `template` with `context` as a page with `status`; never cached (it names people).
fn page(status: StatusCode, template: &str, context: minijinja::Value) -> Response {
    let rendered = TEMPLATES
        .get_template(template)
        .and_then(|t| t.render(context));
    match rendered {
        Ok(html) => (status, [(header::CACHE_CONTROL, "no-store")], Html(html)).into_response(),
        Err(err) => {
            tracing::error!(template, error = %err, "cannot render a page");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "whereis could not draw this page; the error is in its log\n",
            )
                .into_response()
        }
    }
}

/// A page that only says something: a refusal, an error, a sign-in hint.
#[derive(Serialize)]
struct MessageView {
    heading: String,
    text: String,
    /// A link to offer, `(href, label)`.
    link: Option<(String, String)>,
}

fn message_page(
    status: StatusCode,
    requester: Option<&Requester>,
    heading: &str,
    text: String,
    link: Option<(&str, &str)>,
) -> Response {
    page(
        status,
        "message.html",
        minijinja::context! {
            layout => Layout::new(requester, "", heading.to_owned()),
            message => MessageView {
                heading: heading.to_owned(),
                text,
                link: link.map(|(href, label)| (href.to_owned(), label.to_owned())),
            },
        },
    )
}

/// Turns the JSON refusals of [`identify`] (401 no requester, 503 cannot check) into pages; a
/// page's own answers (HTML) pass untouched.
async fn refusals_as_pages(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !is_json
        || !matches!(
            status,
            StatusCode::UNAUTHORIZED | StatusCode::SERVICE_UNAVAILABLE
        )
    {
        return response;
    }
    let challenge = response.headers().get(header::WWW_AUTHENTICATE).cloned();
    let reason = axum::body::to_bytes(response.into_body(), 64 * 1024)
        .await
        .ok()
        .and_then(|body| serde_json::from_slice::<serde_json::Value>(&body).ok())
        .and_then(|doc| doc["error"].as_str().map(str::to_owned))
        .unwrap_or_default();
    let mut page = if status == StatusCode::UNAUTHORIZED {
        message_page(
            status,
            None,
            "Please sign in",
            sentence(&format!(
                "whereis needs to know who you are before it finds anyone. {reason}"
            )),
            Some(("/login", "Sign in")),
        )
    } else {
        message_page(
            status,
            None,
            "Try again in a moment",
            sentence(&reason),
            Some(("/", "Reload")),
        )
    };
    if let Some(challenge) = challenge {
        page.headers_mut()
            .insert(header::WWW_AUTHENTICATE, challenge);
    }
    page
}

/// The requester of a page: the one [`identify`] found, on the web channel.
fn on_the_web(requester: Requester) -> Requester {
    Requester {
        channel: Channel::Web,
        ..requester
    }
}

/// Words the messages shown on pages start with, capitalised there; any other first word may be a
/// username or a name ("jdoe has opted out") and is left as it is.
const SENTENCE_STARTS: &[&str] = &[
    "a", "an", "no", "nobody", "not", "please", "the", "this", "that", "try", "you", "your",
];

/// A message as the start of a paragraph: trimmed, a leading common word capitalised.
fn sentence(text: &str) -> String {
    let text = text.trim();
    let first_word = text
        .split(|c: char| !c.is_alphabetic())
        .next()
        .unwrap_or("");
    if !SENTENCE_STARTS.contains(&first_word) {
        return text.to_owned();
    }
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[derive(Debug, Deserialize)]
struct SearchParams {
    q: Option<String>,
}

/// A query as the pages take it: trimmed, at most [`MAX_QUERY_CHARS`] characters.
fn clean_query(q: Option<String>) -> String {
    q.unwrap_or_default()
        .trim()
        .chars()
        .take(MAX_QUERY_CHARS)
        .collect()
}

/// One device as its card shows it.
#[derive(Serialize)]
struct Card {
    number: usize,
    total: usize,
    mac: String,
    /// Where, in a few words: "Building 5 · Level 3".
    place: String,
    /// The building, for the link to its roster.
    building: Option<String>,
    roster_url: Option<String>,
    /// The report's sentence up to its details ("jdoe is ASSOCIATED to CORP in …, seen 12 s ago").
    sentence: String,
    /// MAC, manufacturer, IP.
    details: String,
    source: String,
    stale: bool,
    map: Option<MapView>,
    map_error: Option<String>,
}

#[derive(Serialize)]
struct MapView {
    url: String,
    width: u32,
    height: u32,
    alt: String,
    /// Whether the map shows the device (below `exact` precision it is the plan alone).
    marked: bool,
    /// The marker's centre in percent of the width and height, for the script's zoom.
    marker_x: String,
    marker_y: String,
}

/// Someone a query could mean.
#[derive(Serialize)]
struct Candidate {
    username: String,
    display_name: String,
    email: Option<String>,
}

impl From<Entry> for Candidate {
    fn from(entry: Entry) -> Candidate {
        Candidate {
            username: entry.username,
            display_name: entry.display_name,
            email: entry.email,
        }
    }
}

/// What the search page shows below the box.
#[derive(Serialize, Default)]
struct Results {
    /// Who was looked for: "Jane Doe (jdoe)".
    who: Option<String>,
    cards: Vec<Card>,
    candidates: Vec<Candidate>,
    /// An outcome without devices: (heading, text).
    message: Option<(String, String)>,
    /// Set beside the devices: failed sources, an unreachable directory.
    notes: Vec<String>,
}

impl Results {
    fn message(heading: &str, text: String) -> Results {
        Results {
            message: Some((heading.to_owned(), sentence(&text))),
            ..Results::default()
        }
    }
}

/// `GET /` and `GET /?q=QUERY`: the search box, and with a query the lookup's result.
async fn search_page(
    State(state): State<AppState>,
    Extension(requester): Extension<Requester>,
    Query(params): Query<SearchParams>,
) -> Response {
    let requester = on_the_web(requester);
    let query = clean_query(params.q);
    let (status, results) = if query.is_empty() {
        (StatusCode::OK, None)
    } else {
        let (status, results) = search(&state, &query, &requester).await;
        (status, Some(results))
    };
    let title = if query.is_empty() {
        "whereis".to_owned()
    } else {
        format!("{query} — whereis")
    };
    let layout = Layout::new(Some(&requester), "search", title)
        .with_sign_out(&state, &requester)
        .await;
    page(
        status,
        "search.html",
        minijinja::context! {
            layout => layout,
            query => query,
            results => results,
            roster => state.finder.web().building_roster,
        },
    )
}

/// Runs the lookup and says what it found, with the status the API would answer.
async fn search(state: &AppState, query: &str, requester: &Requester) -> (StatusCode, Results) {
    match state.finder.find(query, requester).await {
        Ok(mut report) => {
            let maps = futures::future::join_all(
                report.devices.iter().map(|entry| map_link(state, entry)),
            )
            .await;
            for (entry, map) in report.devices.iter_mut().zip(maps) {
                entry.set_map(map);
            }
            let outcome = state.finder.outcome(&report);
            found(&report, outcome)
        }
        Err(FindError::Ambiguous { query, candidates }) => (
            StatusCode::OK,
            Results {
                message: Some((
                    "Several people match".to_owned(),
                    format!("“{query}” could be any of these. Who do you mean?"),
                )),
                candidates: candidates.into_iter().map(Candidate::from).collect(),
                ..Results::default()
            },
        ),
        Err(
            err @ FindError::Refused(
                Refusal::OptedOut(_)
                | Refusal::NotOptedIn(_)
                | Refusal::NotAvailable(_)
                | Refusal::OutsideHours(_),
            ),
        ) => (
            StatusCode::FORBIDDEN,
            Results::message("Not available", err.to_string()),
        ),
        Err(err @ FindError::Refused(Refusal::RateLimited(_))) => (
            StatusCode::TOO_MANY_REQUESTS,
            Results::message("Too many lookups", err.to_string()),
        ),
        Err(err @ FindError::NotAllowed(_)) => (
            StatusCode::FORBIDDEN,
            Results::message("Not allowed", err.to_string()),
        ),
        Err(
            err @ (FindError::Refused(Refusal::StoreUnavailable(_))
            | FindError::DirectoryUnavailable(_)),
        ) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Results::message("Try again later", err.to_string()),
        ),
        Err(err @ FindError::NoSuchPerson(_)) => (
            StatusCode::NOT_FOUND,
            Results::message("Nobody by that name", err.to_string()),
        ),
        Err(err @ FindError::BadQuery(_)) => (
            StatusCode::BAD_REQUEST,
            Results::message("That is not a name or username", err.to_string()),
        ),
    }
}

/// The result of a lookup that ran.
fn found(report: &FindReport, outcome: Outcome) -> (StatusCode, Results) {
    let person = &report.person;
    let who = match &person.display_name {
        Some(name) => format!("{name} ({})", person.username),
        None => person.username.clone(),
    };
    let failed: Vec<String> = report
        .errors
        .iter()
        .map(|failure| format!("{}: {}", failure.source, failure.error))
        .collect();
    if outcome == Outcome::AllSourcesFailed {
        return (
            StatusCode::BAD_GATEWAY,
            Results {
                who: Some(who),
                message: Some((
                    "No location server answered".to_owned(),
                    format!(
                        "whereis could not ask any location server, so it cannot tell where {} is ({}).",
                        person.username,
                        failed.join("; ")
                    ),
                )),
                ..Results::default()
            },
        );
    }
    let mut notes = Vec::new();
    if !failed.is_empty() {
        notes.push(format!(
            "Not every location server answered, so there may be more: {}.",
            failed.join("; ")
        ));
    }
    if let Some(error) = &report.directory_error {
        notes.push(format!(
            "The directory is unavailable ({error}); {} was looked up as a username.",
            person.username
        ));
    }
    match report.precision {
        Precision::Exact => {}
        Precision::Floor => notes.push(format!(
            "{} is shown to the floor only: the plan has no marker.",
            person.username
        )),
        Precision::Building => notes.push(format!(
            "{} is shown to the building only.",
            person.username
        )),
    }
    let name = person.display_name.as_deref().unwrap_or(&person.username);
    let total = report.devices.len();
    let cards = report
        .devices
        .iter()
        .enumerate()
        .map(|(i, entry)| card(name, entry, i + 1, total))
        .collect();
    let message = (outcome == Outcome::NotFound).then(|| {
        (
            "Not found".to_owned(),
            format!(
                "{} was not found on any location server: no device of theirs is on the wireless network right now.",
                person.username
            ),
        )
    });
    (
        StatusCode::OK,
        Results {
            who: Some(who),
            cards,
            message,
            notes,
            ..Results::default()
        },
    )
}

fn card(name: &str, entry: &DeviceReport, number: usize, total: usize) -> Card {
    let device = &entry.device;
    let text = describe_device(name, device);
    let via = format!(", via {}", device.source);
    let (sentence, details) = match text.split_once(" — ") {
        Some((sentence, details)) => (sentence.to_owned(), details.to_owned()),
        // A coarsened device has no details: the sentence ends with the source, shown on its own.
        None => (
            text.strip_suffix(&via).unwrap_or(&text).to_owned(),
            String::new(),
        ),
    };
    // The details end with ", via SOURCE": the card shows the source on its own.
    let details = details
        .strip_suffix(&via)
        .unwrap_or(details.as_str())
        .to_owned();
    let place = match (&device.building, &device.floor) {
        (Some(building), Some(floor)) => format!("{building} · {floor}"),
        (Some(building), None) => building.clone(),
        _ if !device.hierarchy.is_empty() => device.hierarchy.replace('>', " · "),
        _ => "Unnamed location".to_owned(),
    };
    let marked = entry.precision == Precision::Exact;
    let map = match &entry.map {
        Some(Some(info)) => info.url.as_ref().map(|url| MapView {
            url: url.clone(),
            width: info.width,
            height: info.height,
            alt: if marked {
                format!("Floor plan of {place} with the device marked")
            } else {
                format!("Floor plan of {place}")
            },
            marked,
            marker_x: percent(info.marker[0], info.width),
            marker_y: percent(info.marker[1], info.height),
        }),
        _ => None,
    };
    Card {
        number,
        total,
        mac: device.mac.clone(),
        place,
        building: device.building.clone(),
        roster_url: device.building.as_deref().map(roster::roster_url),
        sentence,
        details,
        source: device.source.clone(),
        stale: device.stale,
        map,
        map_error: entry.map_error.clone(),
    }
}

/// `part` of `whole` in percent, two decimals ("0.00" for an empty whole).
fn percent(part: u32, whole: u32) -> String {
    if whole == 0 {
        return "0.00".to_owned();
    }
    format!("{:.2}", f64::from(part) * 100.0 / f64::from(whole))
}

/// `GET /api/v1/people?q=`: who the search box could mean, at most [`MAX_SUGGESTIONS`] of
/// `{username, display_name, email}` — directory entries only, never a location.
async fn people(
    State(state): State<AppState>,
    Extension(requester): Extension<Requester>,
    Query(params): Query<SearchParams>,
) -> Response {
    if !state.finder.allowed(&requester) {
        return error(
            StatusCode::FORBIDDEN,
            FindError::NotAllowed(state.finder.privacy().config().allowed_domains.clone())
                .to_string(),
        );
    }
    let query = clean_query(params.q);
    match suggest(&state, &query).await {
        Ok(entries) => Json(serde_json::json!({
            "people": entries.into_iter().map(Candidate::from).collect::<Vec<_>>(),
        }))
        .into_response(),
        Err(err) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the directory is unavailable: {err}"),
        ),
    }
}

/// The directory entries `query` could mean (none without a directory or a query).
async fn suggest(
    state: &AppState,
    query: &str,
) -> Result<Vec<Entry>, crate::directory::DirectoryError> {
    let Some(directory) = state.finder.directory() else {
        return Ok(Vec::new());
    };
    if query.is_empty() {
        return Ok(Vec::new());
    }
    directory.suggest(query, MAX_SUGGESTIONS).await
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    pub(super) fn layout() -> Layout {
        Layout::new(
            Some(&Requester::new("jane.doe@example.com", Channel::Web)),
            "search",
            "whereis".to_owned(),
        )
    }

    pub(super) fn render(template: &str, context: minijinja::Value) -> String {
        TEMPLATES
            .get_template(template)
            .and_then(|t| t.render(context))
            .unwrap_or_else(|err| panic!("{template}: {err:#}"))
    }

    #[test]
    fn every_template_renders_and_escapes() {
        let search = render(
            "search.html",
            minijinja::context! {
                layout => layout(),
                query => "<script>x</script>",
                results => Results::message("Nobody by that name", "<b>x</b>".to_owned()),
            },
        );
        assert!(search.contains("&lt;script&gt;"), "{search}");
        assert!(!search.contains("<b>x</b>"), "{search}");
        assert!(search.contains("jane.doe@example.com"), "{search}");
        let message = render(
            "message.html",
            minijinja::context! {
                layout => layout(),
                message => MessageView { heading: "H".into(), text: "T".into(), link: Some(("/login".into(), "Sign in".into())) },
            },
        );
        // minijinja escapes `/` as `&#x2f;` in HTML (browsers read it back as `/`).
        assert!(message.contains("href=\"&#x2f;login\""), "{message}");
    }

    #[test]
    fn queries_are_trimmed_and_bounded() {
        assert_eq!(clean_query(Some("  jdoe ".into())), "jdoe");
        assert_eq!(clean_query(None), "");
        assert_eq!(
            clean_query(Some("é".repeat(500))).chars().count(),
            MAX_QUERY_CHARS
        );
    }

    #[test]
    fn marker_percentages() {
        assert_eq!(percent(150, 300), "50.00");
        assert_eq!(percent(1, 3), "33.33");
        assert_eq!(percent(5, 0), "0.00");
    }

    #[test]
    fn sentences_start_with_a_capital_but_names_stay_as_written() {
        assert_eq!(sentence(" you have "), "You have");
        assert_eq!(
            sentence("the directory is unavailable"),
            "The directory is unavailable"
        );
        assert_eq!(
            sentence("bwong has opted out of whereis"),
            "bwong has opted out of whereis"
        );
        assert_eq!(
            sentence("whereis is only available"),
            "whereis is only available"
        );
        assert_eq!(sentence("theo was not found"), "theo was not found");
        assert_eq!(sentence(""), "");
    }
}
