//! The Locator as a user sees it: which identities each server is asked for, that they are asked at
//! once under one deadline, and the merged answer (one device per MAC, freshest first, failures listed
//! by source name). Sources are small in-test implementations of the public `LocationSource` trait.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::{self, BoxFuture};
use tokio::sync::Barrier;
use tokio::time::Instant;
use whereis_location::wire::cmx_v2;
use whereis_location::{
    Device, InvalidUsername, LocationSource, Locator, LocatorSettings, Lookup, Probe, SourceAnswer,
    SourceError, SourceFailure, Username,
};

type Answer =
    Box<dyn Fn(&str) -> BoxFuture<'static, Result<SourceAnswer, SourceError>> + Send + Sync>;

/// A location source whose answer to each identity is given by a closure; it records what it was asked.
struct Fake {
    name: String,
    priority: i32,
    answer: Answer,
    asked: Mutex<Vec<String>>,
}

impl Fake {
    fn new(
        name: &str,
        priority: i32,
        answer: impl Fn(&str) -> BoxFuture<'static, Result<SourceAnswer, SourceError>>
            + Send
            + Sync
            + 'static,
    ) -> Arc<Fake> {
        Arc::new(Fake {
            name: name.to_owned(),
            priority,
            answer: Box::new(answer),
            asked: Mutex::new(Vec::new()),
        })
    }

    /// A source that answers every identity at once with the same devices.
    fn answering(name: &str, priority: i32, devices: Vec<Device>) -> Arc<Fake> {
        Fake::new(name, priority, move |_| ready(found(devices.clone())))
    }

    fn asked(&self) -> Vec<String> {
        let mut asked = self.asked.lock().unwrap().clone();
        asked.sort();
        asked
    }
}

impl LocationSource for Fake {
    fn name(&self) -> &str {
        &self.name
    }

    fn priority(&self) -> i32 {
        self.priority
    }

    fn locate<'a>(&'a self, identity: &'a str) -> BoxFuture<'a, Result<SourceAnswer, SourceError>> {
        self.asked.lock().unwrap().push(identity.to_owned());
        (self.answer)(identity)
    }

    fn probe(&self) -> BoxFuture<'_, Result<Probe, SourceError>> {
        Box::pin(future::ready(Err(SourceError::Setup(
            "not probed in these tests".into(),
        ))))
    }
}

fn ready(
    result: Result<SourceAnswer, SourceError>,
) -> BoxFuture<'static, Result<SourceAnswer, SourceError>> {
    Box::pin(future::ready(result))
}

fn found(devices: Vec<Device>) -> Result<SourceAnswer, SourceError> {
    Ok(SourceAnswer {
        devices,
        rejected: Vec::new(),
    })
}

fn nothing() -> Result<SourceAnswer, SourceError> {
    found(Vec::new())
}

/// A device as a source reports it (`source` and `priority` set, as the trait's contract says).
fn device(source: &str, priority: i32, mac: &str, last_seen: Option<u64>) -> Device {
    let body = format!(
        r#"[{{"macAddress":"{mac}","mapCoordinate":{{"x":10,"y":20,"unit":"FEET"}},
             "mapInfo":{{"mapHierarchyString":"HQ>Building 5>Level 3"}},"dot11Status":"ASSOCIATED"}}]"#
    );
    let mut parsed = cmx_v2::parse(body.as_bytes()).expect("test device");
    assert_eq!(parsed.devices.len(), 1, "{:?}", parsed.rejected);
    let mut device = parsed.devices.remove(0);
    device.source = source.to_owned();
    device.priority = priority;
    device.last_seen_seconds = last_seen;
    device
}

const VARIANTS: [&str; 3] = ["{user}", "CORP\\{user}", "corp\\{user}"];

fn locator(sources: &[Arc<Fake>], variants: &[&str], deadline_ms: u64, max_age_s: u64) -> Locator {
    let sources: Vec<Arc<dyn LocationSource>> = sources
        .iter()
        .map(|s| Arc::clone(s) as Arc<dyn LocationSource>)
        .collect();
    Locator::new(
        sources,
        LocatorSettings {
            username_variants: variants.iter().map(|v| (*v).to_owned()).collect(),
            deadline: Duration::from_millis(deadline_ms),
            max_age: Duration::from_secs(max_age_s),
        },
    )
}

fn user(text: &str) -> Username {
    Username::parse(text).expect("valid username")
}

/// (source, mac, last seen) of each device, in the order the lookup gives them.
fn summary(lookup: &Lookup) -> Vec<(&str, &str, Option<u64>)> {
    lookup
        .devices
        .iter()
        .map(|d| (d.source.as_str(), d.mac.as_str(), d.last_seen_seconds))
        .collect()
}

fn error_of<'a>(lookup: &'a Lookup, source: &str) -> &'a str {
    lookup
        .errors
        .iter()
        .find(|failure| failure.source == source)
        .map(|failure| failure.error.as_str())
        .unwrap_or_else(|| panic!("no error listed for {source}: {:?}", lookup.errors))
}

// ---------------------------------------------------------------------------------------------------
// (a) Fan-out: every source × every variant at once.

#[tokio::test(start_paused = true)]
async fn every_source_and_variant_is_asked_at_once() {
    const SOURCES: usize = 3;
    // Nobody gets past the barrier until all 3 × 3 requests are in flight together. A locator that
    // asked one at a time would leave the first request waiting here until the lookup's deadline.
    let barrier = Arc::new(Barrier::new(SOURCES * VARIANTS.len()));
    let sources: Vec<Arc<Fake>> = (0..SOURCES)
        .map(|i| {
            let barrier = Arc::clone(&barrier);
            let name = format!("cmx-{i}");
            Fake::new(&name.clone(), 1, move |identity| {
                let barrier = Arc::clone(&barrier);
                let variant = ["jdoe", "CORP\\jdoe", "corp\\jdoe"]
                    .iter()
                    .position(|v| *v == identity)
                    .expect("a known variant");
                let mac = format!("02:00:00:00:{i:02x}:{variant:02x}");
                let name = name.clone();
                Box::pin(async move {
                    barrier.wait().await;
                    found(vec![device(&name, 1, &mac, Some(5))])
                })
            })
        })
        .collect();
    let locator = locator(&sources, &VARIANTS, 2000, 900);

    let started = Instant::now();
    let lookup = locator.locate(&user("jdoe")).await;

    assert_eq!(
        lookup.errors,
        Vec::<SourceFailure>::new(),
        "requests were not all in flight at once"
    );
    assert_eq!(lookup.devices.len(), SOURCES * VARIANTS.len());
    assert_eq!(
        started.elapsed(),
        Duration::ZERO,
        "no time passes when every source answers at once"
    );
    for source in &sources {
        assert_eq!(source.asked(), ["CORP\\jdoe", "corp\\jdoe", "jdoe"]);
    }
}

// ---------------------------------------------------------------------------------------------------
// (b) A source that never answers.

#[tokio::test(start_paused = true)]
async fn a_silent_source_is_cut_off_at_the_deadline_without_hiding_the_others() {
    let north = Fake::answering(
        "cmx-north",
        1,
        vec![device("cmx-north", 1, "00:11:22:33:44:01", Some(4))],
    );
    let dead = Fake::new("mse-legacy", 2, |_| Box::pin(future::pending()));
    let south = Fake::answering(
        "cmx-south",
        3,
        vec![device("cmx-south", 3, "00:11:22:33:44:02", Some(9))],
    );
    let locator = locator(&[north, dead.clone(), south], &VARIANTS, 2000, 900);

    let started = Instant::now();
    let lookup = locator.locate(&user("jdoe")).await;
    let waited = started.elapsed();

    assert!(
        waited >= Duration::from_millis(2000) && waited < Duration::from_millis(2100),
        "the lookup returned after {waited:?}, not at its 2 s deadline"
    );
    assert_eq!(
        summary(&lookup),
        [
            ("cmx-north", "00:11:22:33:44:01", Some(4)),
            ("cmx-south", "00:11:22:33:44:02", Some(9)),
        ]
    );
    assert_eq!(
        lookup.errors,
        [SourceFailure {
            source: "mse-legacy".into(),
            error: "no answer within the 2000 ms lookup deadline".into(),
        }],
        "one entry for the dead source, its three variants' failures said once"
    );
    assert!(error_of(&lookup, "mse-legacy").contains("deadline"));
    assert_eq!(
        dead.asked().len(),
        3,
        "the dead source was asked every variant"
    );
    assert!(lookup.any_source_answered(3));
}

#[tokio::test(start_paused = true)]
async fn when_every_source_is_silent_the_lookup_still_ends_and_says_so() {
    let a = Fake::new("a", 1, |_| Box::pin(future::pending()));
    let b = Fake::new("b", 1, |_| Box::pin(future::pending()));
    let locator = locator(&[a, b], &VARIANTS, 500, 900);

    let lookup = locator.locate(&user("jdoe")).await;

    assert!(lookup.devices.is_empty());
    assert_eq!(
        lookup
            .errors
            .iter()
            .map(|f| f.source.as_str())
            .collect::<Vec<_>>(),
        ["a", "b"],
        "errors in configuration order"
    );
    for failure in &lookup.errors {
        assert_eq!(failure.error, "no answer within the 500 ms lookup deadline");
    }
    assert!(
        !lookup.any_source_answered(2),
        "\"not found\" is not trustworthy"
    );
}

// ---------------------------------------------------------------------------------------------------
// (c) One device per MAC.

#[tokio::test]
async fn the_fresher_fix_of_a_device_wins() {
    let mac = "00:11:22:33:44:55";
    let a = Fake::answering("a", 1, vec![device("a", 1, mac, Some(30))]);
    let b = Fake::answering("b", 2, vec![device("b", 2, mac, Some(5))]);
    let lookup = locator(&[a, b], &VARIANTS, 2000, 900)
        .locate(&user("jdoe"))
        .await;
    assert_eq!(summary(&lookup), [("b", mac, Some(5))]);
    assert!(lookup.errors.is_empty());
}

#[tokio::test]
async fn a_known_age_beats_an_unknown_one() {
    let mac = "00:11:22:33:44:55";
    let a = Fake::answering("a", 1, vec![device("a", 1, mac, None)]);
    let b = Fake::answering("b", 9, vec![device("b", 9, mac, Some(600))]);
    let lookup = locator(&[a, b], &VARIANTS, 2000, 900)
        .locate(&user("jdoe"))
        .await;
    assert_eq!(summary(&lookup), [("b", mac, Some(600))]);
}

#[tokio::test]
async fn equal_age_goes_to_the_lower_priority_whatever_the_order() {
    let mac = "00:11:22:33:44:55";
    for flipped in [false, true] {
        let primary = Fake::answering("primary", 1, vec![device("primary", 1, mac, Some(10))]);
        let backup = Fake::answering("backup", 2, vec![device("backup", 2, mac, Some(10))]);
        let sources = if flipped {
            [primary, backup]
        } else {
            [backup, primary]
        };
        let lookup = locator(&sources, &VARIANTS, 2000, 900)
            .locate(&user("jdoe"))
            .await;
        assert_eq!(
            summary(&lookup),
            [("primary", mac, Some(10))],
            "flipped: {flipped}"
        );
    }
}

#[tokio::test]
async fn equal_age_and_priority_go_to_the_source_configured_first() {
    let mac = "00:11:22:33:44:55";
    let first = Fake::answering("first", 1, vec![device("first", 1, mac, Some(10))]);
    let second = Fake::answering("second", 1, vec![device("second", 1, mac, Some(10))]);
    let lookup = locator(&[first, second], &VARIANTS, 2000, 900)
        .locate(&user("jdoe"))
        .await;
    assert_eq!(summary(&lookup), [("first", mac, Some(10))]);
}

#[tokio::test]
async fn the_same_device_found_under_several_variants_is_listed_once() {
    // The fake answers every variant with the same device.
    let a = Fake::answering("a", 1, vec![device("a", 1, "00:11:22:33:44:55", Some(3))]);
    let lookup = locator(std::slice::from_ref(&a), &VARIANTS, 2000, 900)
        .locate(&user("jdoe"))
        .await;
    assert_eq!(a.asked().len(), 3);
    assert_eq!(summary(&lookup), [("a", "00:11:22:33:44:55", Some(3))]);
}

// ---------------------------------------------------------------------------------------------------
// (d) Order and (e) staleness.

#[tokio::test]
async fn devices_come_most_recently_seen_first_unknown_last() {
    let a = Fake::answering(
        "a",
        1,
        vec![
            device("a", 1, "00:00:00:00:00:50", Some(50)),
            device("a", 1, "00:00:00:00:00:ff", None),
        ],
    );
    let b = Fake::answering(
        "b",
        2,
        vec![
            device("b", 2, "00:00:00:00:00:03", Some(3)),
            device("b", 2, "00:00:00:00:00:10", Some(10)),
        ],
    );
    let lookup = locator(&[a, b], &VARIANTS, 2000, 900)
        .locate(&user("jdoe"))
        .await;
    assert_eq!(
        summary(&lookup),
        [
            ("b", "00:00:00:00:00:03", Some(3)),
            ("b", "00:00:00:00:00:10", Some(10)),
            ("a", "00:00:00:00:00:50", Some(50)),
            ("a", "00:00:00:00:00:ff", None),
        ]
    );
}

#[tokio::test]
async fn devices_older_than_max_age_are_flagged_stale() {
    let a = Fake::answering(
        "a",
        1,
        vec![
            device("a", 1, "00:00:00:00:00:00", Some(0)),
            device("a", 1, "00:00:00:00:09:00", Some(900)),
            device("a", 1, "00:00:00:00:09:01", Some(901)),
            device("a", 1, "00:00:00:00:ff:ff", None),
        ],
    );
    let lookup = locator(&[a], &VARIANTS, 2000, 900)
        .locate(&user("jdoe"))
        .await;
    let stale: Vec<(&str, bool)> = lookup
        .devices
        .iter()
        .map(|d| (d.mac.as_str(), d.stale))
        .collect();
    assert_eq!(
        stale,
        [
            ("00:00:00:00:00:00", false),
            ("00:00:00:00:09:00", false), // exactly max_age: not older
            ("00:00:00:00:09:01", true),
            ("00:00:00:00:ff:ff", true), // unknown age cannot be vouched for
        ]
    );
}

// ---------------------------------------------------------------------------------------------------
// (f) Username variants.

fn recording(name: &str) -> Arc<Fake> {
    Fake::new(name, 1, |_| ready(nothing()))
}

#[tokio::test]
async fn each_variant_is_asked_of_every_source() {
    let a = recording("a");
    let b = recording("b");
    let locator = locator(&[a.clone(), b.clone()], &VARIANTS, 2000, 900);
    assert_eq!(
        locator.identities(&user("jdoe")),
        ["jdoe", "CORP\\jdoe", "corp\\jdoe"]
    );
    let lookup = locator.locate(&user("jdoe")).await;
    assert!(lookup.devices.is_empty() && lookup.errors.is_empty());
    assert!(lookup.any_source_answered(2));
    for source in [a, b] {
        assert_eq!(source.asked(), ["CORP\\jdoe", "corp\\jdoe", "jdoe"]);
    }
}

#[tokio::test]
async fn repeated_variants_are_asked_once() {
    let a = recording("a");
    let variants = ["{user}", "CORP\\{user}", "{user}", "CORP\\{user}"];
    locator(std::slice::from_ref(&a), &variants, 2000, 900)
        .locate(&user("jdoe"))
        .await;
    assert_eq!(a.asked(), ["CORP\\jdoe", "jdoe"]);
}

#[tokio::test]
async fn a_username_typed_with_a_domain_is_asked_only_as_typed() {
    for typed in ["CORP\\jdoe", "corp\\jdoe", "OTHER\\jdoe"] {
        let a = recording("a");
        locator(std::slice::from_ref(&a), &VARIANTS, 2000, 900)
            .locate(&user(typed))
            .await;
        assert_eq!(a.asked(), [typed]);
    }
}

#[tokio::test]
async fn without_variants_the_username_is_asked_as_typed() {
    let a = recording("a");
    locator(std::slice::from_ref(&a), &[], 2000, 900)
        .locate(&user("jdoe"))
        .await;
    assert_eq!(a.asked(), ["jdoe"]);
}

// ---------------------------------------------------------------------------------------------------
// (g) What counts as a username.

#[test]
fn usernames_are_trimmed_single_words() {
    assert_eq!(user("  jdoe\n").as_str(), "jdoe");
    assert_eq!(user("CORP\\jdoe").as_str(), "CORP\\jdoe");
    assert_eq!(user("jürgen.müller").as_str(), "jürgen.müller");
    let longest = "a".repeat(Username::MAX_LEN);
    assert_eq!(user(&longest).as_str(), longest);
    assert_eq!(user("jdoe").to_string(), "jdoe");
}

#[test]
fn nothing_typed_is_empty() {
    for text in ["", "   ", "\t\n", "\u{a0}"] {
        let err = Username::parse(text).unwrap_err();
        assert_eq!(err, InvalidUsername::Empty, "{text:?}");
        assert_eq!(err.to_string(), "no username given");
    }
}

#[test]
fn a_full_name_is_refused_with_a_hint() {
    for text in ["Jane Doe", "Jane  Doe", "jane\u{a0}doe", "Jürgen Müller"] {
        let err = Username::parse(text).unwrap_err();
        assert_eq!(err, InvalidUsername::FullName(text.to_owned()), "{text:?}");
        assert!(err.to_string().contains("full name"), "{err}");
    }
}

#[test]
fn control_characters_are_invalid_and_not_echoed_raw() {
    for text in [
        "jd\u{0}oe",
        "jd\u{7}oe",
        "jane\tdoe",
        "jd\u{1b}[31moe",
        "j\u{7f}doe",
    ] {
        let err = Username::parse(text).unwrap_err();
        assert!(
            matches!(err, InvalidUsername::Invalid(_)),
            "{text:?} gave {err:?}"
        );
        let message = err.to_string();
        assert!(message.contains("not a valid username"), "{message}");
        assert!(
            !message.chars().any(char::is_control),
            "the message repeats a control character: {message:?}"
        );
    }
}

#[test]
fn an_invalid_username_is_quoted_once_and_keeps_its_letters() {
    let message = Username::parse("jürgen\u{7}").unwrap_err().to_string();
    assert!(
        !message.contains("\\\\"),
        "backslashes doubled by escaping twice: {message}"
    );
    assert!(
        message.contains("jürgen"),
        "a non-ASCII letter is shown escaped: {message}"
    );
}

#[test]
fn invisible_and_bidi_characters_are_not_a_username() {
    for text in ["jdoe\u{200b}", "jd\u{202e}eod", "\u{feff}jdoe"] {
        assert!(
            matches!(Username::parse(text), Err(InvalidUsername::Invalid(_))),
            "{text:?} accepted: {:?}",
            Username::parse(text)
        );
    }
}

#[test]
fn over_long_input_is_invalid_and_shown_shortened() {
    let long = "a".repeat(Username::MAX_LEN + 1);
    let err = Username::parse(&long).unwrap_err();
    assert!(matches!(err, InvalidUsername::Invalid(_)), "{err:?}");
    assert!(
        err.to_string().len() < 100,
        "the whole input is echoed: {err}"
    );
    // Length counts characters, not bytes.
    assert!(Username::parse(&"é".repeat(Username::MAX_LEN)).is_ok());
    assert!(Username::parse(&"é".repeat(Username::MAX_LEN + 1)).is_err());
}

// ---------------------------------------------------------------------------------------------------
// (h) Unusable records and (i) partial failures.

#[tokio::test]
async fn unusable_records_are_listed_by_source_and_good_devices_kept() {
    // A real v2 answer with one good record and one whose coordinate is a string.
    let body = br#"[{"macAddress":"00:11:22:33:44:55","mapCoordinate":{"x":1,"y":2},
                     "statistics":{"maxDetectedRssi":{"lastHeardInSeconds":7}}},
                    {"macAddress":"00:11:22:33:44:66","mapCoordinate":{"x":"one","y":2}}]"#;
    let cmx = Fake::new("cmx-north", 1, move |identity| {
        if identity != "CORP\\jdoe" {
            return ready(nothing());
        }
        let parsed = cmx_v2::parse(body).expect("body parses");
        let devices = parsed
            .devices
            .into_iter()
            .map(|mut d| {
                d.source = "cmx-north".into();
                d.priority = 1;
                d
            })
            .collect();
        ready(Ok(SourceAnswer {
            devices,
            rejected: parsed.rejected,
        }))
    });
    let healthy = Fake::answering(
        "cmx-south",
        2,
        vec![device("cmx-south", 2, "00:11:22:33:44:77", Some(1))],
    );
    let lookup = locator(&[cmx, healthy], &VARIANTS, 2000, 900)
        .locate(&user("jdoe"))
        .await;

    assert_eq!(
        summary(&lookup),
        [
            ("cmx-south", "00:11:22:33:44:77", Some(1)),
            ("cmx-north", "00:11:22:33:44:55", Some(7)),
        ]
    );
    assert_eq!(lookup.errors.len(), 1, "{:?}", lookup.errors);
    let error = error_of(&lookup, "cmx-north");
    assert!(error.contains("00:11:22:33:44:66"), "{error}");
    assert!(error.contains("mapCoordinate.x"), "{error}");
}

#[tokio::test]
async fn the_same_unusable_record_under_several_variants_is_listed_once() {
    let body = br#"[{"macAddress":"00:11:22:33:44:66","mapCoordinate":{"x":"one","y":2}}]"#;
    let cmx = Fake::new("cmx", 1, move |_| {
        let parsed = cmx_v2::parse(body).expect("body parses");
        ready(Ok(SourceAnswer {
            devices: Vec::new(),
            rejected: parsed.rejected,
        }))
    });
    let lookup = locator(&[cmx], &VARIANTS, 2000, 900)
        .locate(&user("jdoe"))
        .await;
    let error = error_of(&lookup, "cmx");
    assert_eq!(error.matches("00:11:22:33:44:66").count(), 1, "{error}");
}

#[tokio::test]
async fn a_source_failing_for_one_variant_keeps_what_it_found_for_another() {
    let mse = Fake::new("mse-legacy", 1, |identity| match identity {
        "CORP\\jdoe" => ready(found(vec![device(
            "mse-legacy",
            1,
            "00:11:22:33:44:55",
            Some(12),
        )])),
        "corp\\jdoe" => ready(Err(SourceError::Timeout(2000))),
        _ => ready(nothing()),
    });
    let cmx = Fake::new("cmx", 2, |identity| match identity {
        "jdoe" => ready(Err(SourceError::Unauthorized(401))),
        "CORP\\jdoe" => ready(Err(SourceError::Status("500 Internal Server Error".into()))),
        _ => ready(found(vec![device("cmx", 2, "00:11:22:33:44:99", Some(2))])),
    });
    let lookup = locator(&[mse, cmx], &VARIANTS, 2000, 900)
        .locate(&user("jdoe"))
        .await;

    assert_eq!(
        summary(&lookup),
        [
            ("cmx", "00:11:22:33:44:99", Some(2)),
            ("mse-legacy", "00:11:22:33:44:55", Some(12)),
        ]
    );
    assert_eq!(error_of(&lookup, "mse-legacy"), "timed out after 2000 ms");
    let cmx_error = error_of(&lookup, "cmx");
    assert!(
        cmx_error.contains("credentials rejected (HTTP 401)"),
        "{cmx_error}"
    );
    assert!(
        cmx_error.contains("HTTP 500 Internal Server Error"),
        "{cmx_error}"
    );
    assert_eq!(lookup.errors.len(), 2);
}

// ---------------------------------------------------------------------------------------------------
// The answer as `find --json` prints it (the JSON document the README describes).

#[tokio::test]
async fn the_lookup_serialises_to_the_documented_json() {
    let ok = Fake::answering(
        "cmx-north",
        1,
        vec![device("cmx-north", 1, "00:11:22:33:44:55", Some(12))],
    );
    let failing = Fake::new("mse-legacy", 2, |_| ready(Err(SourceError::Timeout(2000))));
    let lookup = locator(&[ok, failing], &VARIANTS, 2000, 900)
        .locate(&user("jdoe"))
        .await;
    let json = serde_json::to_value(&lookup).expect("serialises");

    assert_eq!(
        json["errors"],
        serde_json::json!([{"source": "mse-legacy", "error": "timed out after 2000 ms"}])
    );
    let device = &json["devices"][0];
    for (key, value) in [
        ("source", serde_json::json!("cmx-north")),
        ("api", serde_json::json!("cmx-v2")),
        ("mac", serde_json::json!("00:11:22:33:44:55")),
        ("status", serde_json::json!("ASSOCIATED")),
        ("hierarchy", serde_json::json!("HQ>Building 5>Level 3")),
        ("campus", serde_json::json!("HQ")),
        ("building", serde_json::json!("Building 5")),
        ("floor", serde_json::json!("Level 3")),
        ("x", serde_json::json!(10.0)),
        ("y", serde_json::json!(20.0)),
        ("unit", serde_json::json!("FEET")),
        ("last_seen_seconds", serde_json::json!(12)),
    ] {
        assert_eq!(device[key], value, "{key} in {device}");
    }
    for key in ["ip", "ssid", "floor_width", "floor_length", "confidence"] {
        assert!(device.get(key).is_some(), "{key} missing from {device}");
    }
    for internal in ["priority", "floor_plan", "floor_ref_id"] {
        assert!(
            device.get(internal).is_none(),
            "{internal} leaks into {device}"
        );
    }
}

#[tokio::test]
async fn the_longest_configurable_deadline_does_not_break_lookups() {
    // `timeout_ms` is a u64 in the configuration.
    let a = Fake::answering("a", 1, vec![device("a", 1, "00:11:22:33:44:55", Some(1))]);
    let lookup = locator(&[a], &VARIANTS, u64::MAX, 900)
        .locate(&user("jdoe"))
        .await;
    assert_eq!(lookup.devices.len(), 1);
    assert!(lookup.errors.is_empty());
}
