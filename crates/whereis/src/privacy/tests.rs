//! The rules one by one, then together over a real (in-memory SQLite) store, with the clock moved
//! by hand: every window is checked at its edges.

use std::sync::atomic::AtomicBool;

use super::*;

/// Unix milliseconds of an RFC 3339 instant.
fn at(instant: &str) -> i64 {
    instant
        .parse::<jiff::Timestamp>()
        .expect("a valid instant")
        .as_millisecond()
}

/// Monday 7 December 2026, 10:00 UTC.
const MONDAY_10: &str = "2026-12-07T10:00:00Z";

fn hours(text: &str) -> Hours {
    Hours::parse(text, Weekdays::MONDAY_TO_FRIDAY).expect("valid hours")
}

fn config() -> PrivacyConfig {
    PrivacyConfig::default()
}

fn office_hours() -> PrivacyConfig {
    PrivacyConfig {
        working_hours: Some(hours("08:00-18:30")),
        ..config()
    }
}

fn chosen() -> PersonSettings {
    PersonSettings::default()
}

fn requester(email: &str) -> Requester {
    Requester::new(email, Channel::Chat)
}

fn entry(username: &str, email: &str) -> Entry {
    Entry {
        username: username.into(),
        display_name: username.into(),
        email: Some(email.into()),
        ..Entry::default()
    }
}

#[test]
fn keys_ignore_case_and_domain() {
    assert_eq!(Privacy::key("CORP\\JDoe"), "jdoe");
    assert_eq!(Privacy::key(" jdoe "), "jdoe");
}

#[test]
fn requesters_are_lower_case_and_keep_their_id_across_channels() {
    let r = Requester::new(" Jane.Doe@Example.com ", Channel::Chat);
    assert_eq!(r.id, "jane.doe@example.com");
    assert_eq!(r.to_string(), "jane.doe@example.com (chat)");
    let panel = r.through(Channel::Favourites);
    assert_eq!(panel.id, r.id);
    assert_eq!(panel.to_string(), "jane.doe@example.com (favourites)");
}

#[test]
fn channels_have_audit_names() {
    let names: Vec<&str> = [
        Channel::Chat,
        Channel::Cli,
        Channel::Api,
        Channel::Web,
        Channel::WebRoster,
        Channel::Favourites,
    ]
    .into_iter()
    .map(Channel::as_str)
    .collect();
    assert_eq!(
        names,
        ["chat", "cli", "api", "web", "web-roster", "favourites"]
    );
}

#[test]
fn refusals_say_only_what_they_may() {
    let who = || "jdoe".to_owned();
    assert_eq!(
        Refusal::NotAvailable(who()).to_string(),
        "jdoe is not available"
    );
    assert_eq!(
        Refusal::OutsideHours(who()).to_string(),
        "jdoe is not shown outside working hours"
    );
    assert_eq!(
        Refusal::NotOptedIn(who()).to_string(),
        "jdoe has not opted in to whereis"
    );
    let outcomes = [
        (Refusal::OptedOut(who()), Some(Outcome::OptedOut)),
        (Refusal::NotOptedIn(who()), Some(Outcome::NotOptedIn)),
        (Refusal::NotAvailable(who()), Some(Outcome::NotShared)),
        (Refusal::OutsideHours(who()), Some(Outcome::OutsideHours)),
        (Refusal::RateLimited(3), Some(Outcome::RateLimited)),
        (Refusal::StoreUnavailable("down".into()), None),
    ];
    for (refusal, outcome) in outcomes {
        assert_eq!(refusal.outcome(), outcome, "{refusal}");
    }
}

#[test]
fn clocks() {
    let clock = ManualClock::at_ms(1_999);
    assert_eq!((clock.now_ms(), clock.now()), (1_999, 1));
    clock.advance_ms(1);
    assert_eq!((clock.now_ms(), clock.now()), (2_000, 2));
    clock.set_ms(-1);
    assert_eq!(clock.now(), -1, "before 1970 rounds down, not towards zero");
    let system = SystemClock.now_ms();
    assert!(system > at("2026-01-01T00:00:00Z"), "{system}");
    assert!((SystemClock.now() - now()).abs() <= 1);
    assert!((now_ms() / 1000 - now()).abs() <= 1);
}

#[test]
fn precisions_read_and_order() {
    assert_eq!(Precision::parse(" Floor "), Some(Precision::Floor));
    assert_eq!(Precision::parse("EXACT"), Some(Precision::Exact));
    assert_eq!(Precision::parse("building"), Some(Precision::Building));
    assert_eq!(Precision::parse("room"), None);
    assert!(Precision::Building < Precision::Floor && Precision::Floor < Precision::Exact);
    for precision in Precision::ALL {
        assert_eq!(Precision::parse(&precision.to_string()), Some(precision));
    }
    assert_eq!(Consent::OptOut.as_str(), "opt-out");
    assert_eq!(Consent::OptIn.as_str(), "opt-in");
    assert_eq!(Consent::default(), Consent::OptOut);
}

#[test]
fn weekdays() {
    assert_eq!(Weekdays::parse(["mon-fri"]), Ok(Weekdays::MONDAY_TO_FRIDAY));
    assert_eq!(
        Weekdays::parse(["Mon", "tue", "wed", "thu", "fri", "sat", "sun"]),
        Ok(Weekdays::ALL)
    );
    let weekend = Weekdays::parse(["sat-sun"]).expect("a range");
    assert_eq!(weekend.to_string(), "sat,sun");
    assert_eq!(format!("{weekend:?}"), "Weekdays(sat,sun)");
    assert!(weekend.contains(5) && weekend.contains(6) && !weekend.contains(4));
    assert!(!Weekdays::ALL.contains(7), "there is no eighth day");
    assert!(!Weekdays::ALL.contains(8) && !Weekdays::ALL.contains(u8::MAX));
    assert!(weekend.and(Weekdays::MONDAY_TO_FRIDAY).is_empty());
    assert!(!weekend.is_empty());
    assert_eq!(
        Weekdays::parse(["mon-wed", "fri"]).map(|d| d.to_string()),
        Ok("mon,tue,wed,fri".to_owned())
    );
    assert_eq!(
        Weekdays::parse(["mon-mon"]).map(|d| d.to_string()),
        Ok("mon".to_owned())
    );
    assert!(Weekdays::parse(["fri-mon"]).is_err(), "backwards");
    assert!(Weekdays::parse(["funday"]).is_err());
    assert!(Weekdays::parse(["mon-xyz"]).is_err());
    assert!(Weekdays::parse(Vec::<&str>::new()).is_err());
}

#[test]
fn hours_read_as_written() {
    let h = hours("08:00-18:30");
    assert_eq!(
        (h.start, h.end, h.days),
        (480, 1110, Weekdays::MONDAY_TO_FRIDAY)
    );
    assert_eq!(h.to_string(), "08:00-18:30 mon,tue,wed,thu,fri");
    let h = Hours::parse(" 9:05-24:00  sat,sun ", Weekdays::ALL).expect("valid");
    assert_eq!((h.start, h.end), (545, 1440));
    assert_eq!(h.to_string(), "09:05-24:00 sat,sun");
    assert_eq!(
        Hours::parse(&h.to_string(), Weekdays::ALL),
        Ok(h),
        "what is shown reads back"
    );
    assert_eq!(hours("00:00-00:01").end, 1);
    assert_eq!(hours("08:59-23:59").start, 539);
    for bad in [
        "18:00-08:00",
        "08:00-08:00",
        "8-9",
        "08:00",
        "08:60-09:00",
        "07:60-09:00",
        "25:00-26:00",
        "08:00-24:01",
        "08:0-09:00",
        "123:00-124:00",
        ":30-09:00",
        "aa:bb-09:00",
        "+8:00-09:00",
        "08:+5-09:00",
        "08:00-09:00 someday",
    ] {
        assert!(
            Hours::parse(bad, Weekdays::ALL).is_err(),
            "{bad:?} should be refused"
        );
    }
}

#[test]
fn hours_open_and_close_on_the_minute() {
    let h = hours("08:00-18:30");
    assert!(!h.is_open(0, 479));
    assert!(h.is_open(0, 480));
    assert!(h.is_open(0, 1109));
    assert!(!h.is_open(0, 1110));
    assert!(h.is_open(4, 600), "Friday");
    assert!(!h.is_open(5, 600), "Saturday");
    assert!(!hours("00:00-24:00").is_never());
    assert!(hours("00:00-24:00").is_open(0, 1439));
}

#[test]
fn a_persons_hours_never_widen_the_organisations() {
    let org = hours("08:00-18:30");
    let wider = Hours::parse("07:00-20:00", Weekdays::ALL).expect("valid");
    assert_eq!(wider.within(&org), org);
    let narrower = Hours::parse("09:00-17:00 mon,sat", Weekdays::ALL).expect("valid");
    let both = narrower.within(&org);
    assert_eq!(both.to_string(), "09:00-17:00 mon");
    let apart = Hours::parse("19:00-20:00", Weekdays::ALL).expect("valid");
    assert!(apart.within(&org).is_never());
    let weekend = Hours::parse("09:00-17:00 sat", Weekdays::ALL).expect("valid");
    assert!(weekend.within(&org).is_never());
    assert!(!narrower.within(&org).is_never());
}

#[test]
fn local_time_in_a_time_zone() {
    let utc = jiff::tz::TimeZone::UTC;
    assert_eq!(local_day_minute(at(MONDAY_10), &utc), Some((0, 600)));
    let zurich = jiff::tz::TimeZone::get("Europe/Zurich").expect("bundled");
    assert_eq!(local_day_minute(at(MONDAY_10), &zurich), Some((0, 660)));
    assert_eq!(
        local_day_minute(at("2026-12-13T23:59:59Z"), &utc),
        Some((6, 1439))
    );
    assert_eq!(local_day_minute(i64::MAX, &utc), None);
}

#[test]
fn findability_is_the_persons_choice_else_the_default() {
    let opt_in = PrivacyConfig {
        consent: Consent::OptIn,
        ..config()
    };
    let with = |findable| PersonSettings {
        findable,
        ..chosen()
    };
    assert_eq!(findable(&config(), &with(None)), Ok(()));
    assert_eq!(findable(&config(), &with(Some(true))), Ok(()));
    assert_eq!(
        findable(&config(), &with(Some(false))),
        Err(Outcome::OptedOut)
    );
    assert_eq!(findable(&opt_in, &with(None)), Err(Outcome::NotOptedIn));
    assert_eq!(findable(&opt_in, &with(Some(true))), Ok(()));
    assert_eq!(
        findable(&opt_in, &with(Some(false))),
        Err(Outcome::OptedOut)
    );
}

#[test]
fn audiences() {
    let nosy = requester("nosy@example.com");
    let jane = requester("jane@example.com");
    let blocked = PersonSettings {
        blocked: vec!["nosy@example.com".into()],
        ..chosen()
    };
    assert_eq!(audience(&chosen(), &nosy, false), Audience::Allowed);
    assert_eq!(audience(&blocked, &nosy, false), Audience::Denied);
    assert_eq!(audience(&blocked, &jane, false), Audience::Allowed);
    assert_eq!(
        audience(&blocked, &nosy, true),
        Audience::Allowed,
        "oneself"
    );
    let named = PersonSettings {
        restricted: true,
        shared_with: vec!["jane@example.com".into()],
        ..chosen()
    };
    assert_eq!(audience(&named, &jane, false), Audience::Allowed);
    assert_eq!(audience(&named, &nosy, false), Audience::Denied);
    assert_eq!(audience(&named, &nosy, true), Audience::Allowed);
    let team = PersonSettings {
        share_team: true,
        ..named.clone()
    };
    assert_eq!(audience(&team, &nosy, false), Audience::IfTeammate);
    assert_eq!(audience(&team, &jane, false), Audience::Allowed);
    let team_but_blocked = PersonSettings {
        blocked: vec!["nosy@example.com".into()],
        ..team
    };
    assert_eq!(audience(&team_but_blocked, &nosy, false), Audience::Denied);
    // Sharing with the team means nothing while the audience is everyone.
    let open_team = PersonSettings {
        share_team: true,
        ..chosen()
    };
    assert_eq!(audience(&open_team, &nosy, false), Audience::Allowed);
}

#[test]
fn teams() {
    let target = Target {
        username: "jdoe".into(),
        email: Some("jdoe@example.com".into()),
        team: Some("Network".into()),
        manager: Some("boss".into()),
        timezone: None,
    };
    let mut viewer = entry("asmith", "asmith@example.com");
    assert!(!teammates(&viewer, &target));
    viewer.team = Some(" network ".into());
    assert!(teammates(&viewer, &target), "same team, any case");
    viewer.team = Some("Sales".into());
    assert!(!teammates(&viewer, &target));
    viewer.manager = Some("BOSS".into());
    assert!(teammates(&viewer, &target), "same manager");
    let boss = entry("boss", "the.boss@example.com");
    assert!(teammates(&boss, &target), "the manager, by username");
    let by_email = Target {
        manager: Some("the.boss@example.com".into()),
        ..target.clone()
    };
    assert!(teammates(&entry("b", "the.boss@example.com"), &by_email));
    let blank = Target {
        team: Some(" ".into()),
        manager: None,
        ..target
    };
    let mut other = entry("x", "x@example.com");
    other.team = Some(" ".into());
    assert!(!teammates(&other, &blank), "blank teams are no team");
}

#[test]
fn targets() {
    let mut e = entry("CORP\\JDoe", " JDoe@Example.com ");
    e.timezone = Some("Europe/Zurich".into());
    let target = Target::from_entry(&e);
    assert_eq!(target.username, "jdoe");
    assert_eq!(target.email.as_deref(), Some("jdoe@example.com"));
    assert_eq!(target.timezone.as_deref(), Some("Europe/Zurich"));
    assert!(target.is(&requester("JDoe@example.com")));
    assert!(!target.is(&requester("jane@example.com")));
    let bare = Target::username("CORP\\JDoe");
    assert_eq!(bare.username, "jdoe");
    assert!(
        !bare.is(&requester("jdoe@example.com")),
        "no email, nobody is them"
    );
}

#[test]
fn windows_combine() {
    let own = |text: &str| PersonSettings {
        hours: Some(text.into()),
        ..chosen()
    };
    assert_eq!(window(&config(), &chosen()), None);
    assert_eq!(
        window(&office_hours(), &chosen()),
        Some(hours("08:00-18:30"))
    );
    assert_eq!(
        window(&config(), &own("09:00-17:00")).map(|h| h.to_string()),
        Some("09:00-17:00 mon,tue,wed,thu,fri,sat,sun".to_owned())
    );
    assert_eq!(
        window(&office_hours(), &own("07:00-12:00")).map(|h| h.to_string()),
        Some("08:00-12:00 mon,tue,wed,thu,fri".to_owned())
    );
    let broken = window(&office_hours(), &own("whenever")).expect("a window");
    assert!(
        broken.is_never(),
        "an unreadable choice shows less, not more"
    );
}

#[test]
fn working_hours_open_and_close_on_the_minute() {
    let config = office_hours();
    let open = |instant: &str| open_at(&config, &chosen(), None, at(instant));
    assert!(!open("2026-12-07T07:59:59.999Z"));
    assert!(open("2026-12-07T08:00:00Z"));
    assert!(open("2026-12-07T18:29:59.999Z"));
    assert!(!open("2026-12-07T18:30:00Z"));
    assert!(!open("2026-12-05T10:00:00Z"), "Saturday");
    // The person's own time zone moves the window; an unknown one falls back to the organisation's.
    let zurich = |instant: &str| open_at(&config, &chosen(), Some("Europe/Zurich"), at(instant));
    assert!(!zurich("2026-12-07T06:59:59Z"));
    assert!(zurich("2026-12-07T07:00:00Z"));
    assert!(!zurich("2026-12-07T17:30:00Z"));
    assert!(open_at(
        &config,
        &chosen(),
        Some("Mars/Olympus"),
        at(MONDAY_10)
    ));
    assert!(!open_at(
        &config,
        &chosen(),
        Some("Mars/Olympus"),
        at("2026-12-07T07:00:00Z")
    ));
    // The organisation's time zone when the person has none.
    let tokyo = PrivacyConfig {
        timezone: jiff::tz::TimeZone::get("Asia/Tokyo").expect("bundled"),
        ..office_hours()
    };
    assert!(
        open_at(&tokyo, &chosen(), None, at("2026-12-06T23:00:00Z")),
        "08:00 Monday in Tokyo"
    );
    assert!(
        !open_at(&tokyo, &chosen(), None, at(MONDAY_10)),
        "19:00 in Tokyo"
    );
    assert!(open_at(
        &PrivacyConfig::default(),
        &chosen(),
        None,
        at("2026-12-05T03:00:00Z")
    ));
}

#[test]
fn precision_is_the_coarser_of_both() {
    let floor_max = PrivacyConfig {
        max_precision: Precision::Floor,
        ..config()
    };
    let own = |text: &str| PersonSettings {
        precision: Some(text.into()),
        ..chosen()
    };
    assert_eq!(precision(&config(), &chosen()), Precision::Exact);
    assert_eq!(precision(&floor_max, &chosen()), Precision::Floor);
    assert_eq!(precision(&config(), &own("floor")), Precision::Floor);
    assert_eq!(precision(&floor_max, &own("exact")), Precision::Floor);
    assert_eq!(precision(&floor_max, &own("building")), Precision::Building);
    assert_eq!(precision(&config(), &own("nonsense")), Precision::Building);
}

#[test]
fn changes_are_reported() {
    let before = chosen();
    let mut after = chosen();
    assert_eq!(changed(&before, &after), Change::Unchanged);
    after.share_team = true;
    assert_eq!(changed(&before, &after), Change::Done);
}

#[test]
fn audit_rows_show_the_precision() {
    let mut row = AuditEntry {
        at: 86_400,
        requester: "jane@example.com".into(),
        target: "jdoe".into(),
        channel: "chat".into(),
        outcome: Outcome::Found,
        sources: vec!["cmx".into()],
        found_by: vec!["cmx".into()],
        devices: 1,
        precision: Some("floor".into()),
    };
    let line = audit_line(&row);
    assert!(
        line.starts_with("1970-01-02 00:00:00 UTC  jane@example.com"),
        "{line}"
    );
    assert!(
        line.contains(" found ") && line.contains(" floor ") && line.ends_with("cmx"),
        "{line}"
    );
    assert_eq!(audit_json(&row)["precision"], "floor");
    row.precision = None;
    row.outcome = Outcome::NotShared;
    assert!(
        audit_line(&row).contains(" not shared    -"),
        "{}",
        audit_line(&row)
    );
    assert!(audit_json(&row)["precision"].is_null());
}

#[test]
fn since() {
    let now = 1_000_000;
    assert_eq!(parse_since("30m", now), Some(now - 1800));
    assert_eq!(parse_since("2h", now), Some(now - 7200));
    assert_eq!(parse_since("1d", now), Some(now - 86_400));
    assert_eq!(parse_since("0d", now), Some(now));
    assert_eq!(parse_since("-1d", now), None);
    assert_eq!(parse_since("1w", now), None);
    assert_eq!(
        parse_since("2026-11-01", now),
        Some(at("2026-11-01T00:00:00Z") / 1000)
    );
}

// ---- over the store ----

/// The rules of `config` over a fresh in-memory store, on a clock at Monday 10:00 UTC.
async fn rules(config: PrivacyConfig) -> (Privacy, Arc<ManualClock>) {
    let store = Store::open("sqlite::memory:")
        .await
        .expect("an in-memory store");
    let clock = Arc::new(ManualClock::at_ms(at(MONDAY_10)));
    let privacy = Privacy::with_clock(store, config, clock.clone());
    (privacy, clock)
}

async fn last_audit(privacy: &Privacy) -> AuditEntry {
    privacy
        .store()
        .audit(&AuditFilter::default())
        .await
        .expect("the audit log")
        .into_iter()
        .next()
        .expect("an audit row")
}

async fn no_viewer() -> Option<Entry> {
    None
}

/// An audit row: `requester` found jdoe through chat at `at` (Unix seconds).
fn found(at: i64, requester: &str) -> AuditEntry {
    AuditEntry {
        at,
        requester: requester.into(),
        target: "jdoe".into(),
        channel: "chat".into(),
        outcome: Outcome::Found,
        sources: Vec::new(),
        found_by: Vec::new(),
        devices: 1,
        precision: Some("exact".into()),
    }
}

#[tokio::test]
async fn the_hourly_limit_frees_a_slot_exactly_an_hour_later() {
    let (privacy, clock) = rules(PrivacyConfig {
        rate_limit_per_hour: 1,
        ..config()
    })
    .await;
    let jane = requester("jane@example.com");
    let target = Target::username("jdoe");
    assert_eq!(
        privacy.check(&jane, &target, no_viewer).await,
        Ok(Precision::Exact)
    );
    clock.advance_ms(3_600_000 - 1);
    assert_eq!(
        privacy.check(&jane, &target, no_viewer).await,
        Err(Refusal::RateLimited(1))
    );
    assert_eq!(last_audit(&privacy).await.outcome, Outcome::RateLimited);
    clock.advance_ms(1);
    assert_eq!(
        privacy.check(&jane, &target, no_viewer).await,
        Ok(Precision::Exact)
    );
    // Another requester has an allowance of their own.
    assert!(privacy
        .check(&requester("bob@example.com"), &target, no_viewer)
        .await
        .is_ok());
}

#[tokio::test]
async fn a_refusal_is_audited_and_still_uses_the_allowance() {
    let (privacy, _) = rules(PrivacyConfig {
        rate_limit_per_hour: 1,
        ..config()
    })
    .await;
    privacy.opt_out("CORP\\JDoe").await.expect("saved");
    let jane = requester("jane@example.com");
    assert_eq!(
        privacy
            .check(&jane, &Target::username("jdoe"), no_viewer)
            .await,
        Err(Refusal::OptedOut("jdoe".into()))
    );
    let row = last_audit(&privacy).await;
    assert_eq!(
        (
            row.outcome,
            row.target.as_str(),
            row.precision.as_deref(),
            row.at
        ),
        (Outcome::OptedOut, "jdoe", None, at(MONDAY_10) / 1000)
    );
    assert_eq!(
        privacy
            .check(&jane, &Target::username("asmith"), no_viewer)
            .await,
        Err(Refusal::RateLimited(1))
    );
}

#[tokio::test]
async fn opt_in_by_policy_and_changing_the_policy_exposes_nobody() {
    let (opt_in, _) = rules(PrivacyConfig {
        consent: Consent::OptIn,
        ..config()
    })
    .await;
    let jane = requester("jane@example.com");
    let jdoe = Target::username("jdoe");
    assert_eq!(
        opt_in.check(&jane, &jdoe, no_viewer).await,
        Err(Refusal::NotOptedIn("jdoe".into()))
    );
    assert_eq!(last_audit(&opt_in).await.outcome, Outcome::NotOptedIn);
    opt_in.opt_in("jdoe").await.expect("saved");
    assert!(opt_in.check(&jane, &jdoe, no_viewer).await.is_ok());
    opt_in.opt_out("asmith").await.expect("saved");
    // The same store under the other policy: the choice made stays.
    let opt_out = Privacy::with_clock(
        opt_in.store().clone(),
        config(),
        Arc::new(ManualClock::at_ms(at(MONDAY_10))),
    );
    assert_eq!(
        opt_out
            .check(&jane, &Target::username("asmith"), no_viewer)
            .await,
        Err(Refusal::OptedOut("asmith".into()))
    );
    assert!(opt_out.check(&jane, &jdoe, no_viewer).await.is_ok());
    assert!(opt_out
        .check(&jane, &Target::username("nobody-chose"), no_viewer)
        .await
        .is_ok());
}

#[tokio::test]
async fn the_audience_refuses_as_not_available_and_asks_for_the_team_only_when_needed() {
    let (privacy, _) = rules(config()).await;
    let jdoe = Target {
        username: "jdoe".into(),
        email: Some("jdoe@example.com".into()),
        team: Some("network".into()),
        ..Target::default()
    };
    privacy
        .block("jdoe", "Nosy@Example.com")
        .await
        .expect("saved");
    let nosy = requester("nosy@example.com");
    assert_eq!(
        privacy.check(&nosy, &jdoe, no_viewer).await,
        Err(Refusal::NotAvailable("jdoe".into()))
    );
    assert_eq!(last_audit(&privacy).await.outcome, Outcome::NotShared);
    assert_eq!(privacy.share_with_team("jdoe").await, Ok(Change::Done));
    assert_eq!(privacy.share_with_team("jdoe").await, Ok(Change::Unchanged));
    let asked = AtomicBool::new(false);
    let colleague = || async {
        asked.store(true, Ordering::SeqCst);
        let mut viewer = entry("asmith", "asmith@example.com");
        viewer.team = Some("Network".into());
        Some(viewer)
    };
    let asmith = requester("asmith@example.com");
    assert_eq!(
        privacy.check(&asmith, &jdoe, colleague).await,
        Ok(Precision::Exact)
    );
    assert!(
        asked.load(Ordering::SeqCst),
        "the team rule asked who the viewer is"
    );
    assert_eq!(
        privacy
            .check(&requester("sales@example.com"), &jdoe, no_viewer)
            .await,
        Err(Refusal::NotAvailable("jdoe".into()))
    );
    // Named people need no directory, and jdoe herself always may.
    privacy
        .share_with("jdoe", "jane@example.com")
        .await
        .expect("saved");
    let never = || async { panic!("the directory was asked for a named person") };
    assert!(privacy
        .check(&requester("jane@example.com"), &jdoe, never)
        .await
        .is_ok());
    assert!(privacy
        .check(&requester("jdoe@example.com"), &jdoe, never)
        .await
        .is_ok());
    // Blocked beats the team.
    assert_eq!(
        privacy.check(&nosy, &jdoe, colleague).await,
        Err(Refusal::NotAvailable("jdoe".into()))
    );
    assert_eq!(privacy.share_with_everyone("jdoe").await, Ok(Change::Done));
    assert!(privacy
        .check(&requester("sales@example.com"), &jdoe, no_viewer)
        .await
        .is_ok());
    assert!(
        privacy.check(&nosy, &jdoe, no_viewer).await.is_err(),
        "still blocked"
    );
    assert_eq!(
        privacy.unblock("jdoe", "nosy@example.com").await,
        Ok(Change::Done)
    );
    assert_eq!(
        privacy.unblock("jdoe", "nosy@example.com").await,
        Ok(Change::Unchanged)
    );
    assert!(privacy.check(&nosy, &jdoe, no_viewer).await.is_ok());
}

#[tokio::test]
async fn outside_working_hours_nobody_is_located() {
    let (privacy, clock) = rules(office_hours()).await;
    let jane = requester("jane@example.com");
    let jdoe = Target::username("jdoe");
    clock.set_ms(at("2026-12-07T18:30:00Z"));
    assert_eq!(
        privacy.check(&jane, &jdoe, no_viewer).await,
        Err(Refusal::OutsideHours("jdoe".into()))
    );
    assert_eq!(last_audit(&privacy).await.outcome, Outcome::OutsideHours);
    clock.set_ms(at("2026-12-07T18:29:59Z"));
    assert!(privacy.check(&jane, &jdoe, no_viewer).await.is_ok());
    // jdoe narrows her window to the morning.
    let window = privacy
        .set_hours("jdoe", Some(hours("07:00-12:00")))
        .await
        .expect("saved");
    assert_eq!(
        window.map(|h| h.to_string()),
        Some("08:00-12:00 mon,tue,wed,thu,fri".into())
    );
    assert_eq!(
        privacy.check(&jane, &jdoe, no_viewer).await,
        Err(Refusal::OutsideHours("jdoe".into()))
    );
    // The next morning (the clock only moves forward, as the rate limit expects): open up to
    // 11:59, closed from 12:00.
    clock.set_ms(at("2026-12-08T11:59:00Z"));
    assert!(privacy.check(&jane, &jdoe, no_viewer).await.is_ok());
    clock.set_ms(at("2026-12-08T12:00:00Z"));
    assert_eq!(
        privacy.check(&jane, &jdoe, no_viewer).await,
        Err(Refusal::OutsideHours("jdoe".into()))
    );
    assert_eq!(
        privacy.set_hours("jdoe", None).await,
        Ok(Some(hours("08:00-18:30")))
    );
}

#[tokio::test]
async fn lookups_are_answered_at_the_allowed_precision_and_audited_with_it() {
    let (privacy, _) = rules(PrivacyConfig {
        max_precision: Precision::Floor,
        ..config()
    })
    .await;
    let jane = requester("jane@example.com");
    let jdoe = Target::username("jdoe");
    assert_eq!(
        privacy.check(&jane, &jdoe, no_viewer).await,
        Ok(Precision::Floor)
    );
    assert_eq!(
        privacy.set_precision("jdoe", Some(Precision::Exact)).await,
        Ok(Precision::Floor),
        "never finer than the organisation allows"
    );
    assert_eq!(
        privacy
            .set_precision("jdoe", Some(Precision::Building))
            .await,
        Ok(Precision::Building)
    );
    assert_eq!(
        privacy.check(&jane, &jdoe, no_viewer).await,
        Ok(Precision::Building)
    );
    let answered = |devices, sources: &[&str], found: &[&str]| Answered {
        sources: sources.iter().map(|s| s.to_string()).collect(),
        found_by: found.iter().map(|s| s.to_string()).collect(),
        devices,
    };
    let cases = [
        (answered(2, &["cmx"], &["cmx"]), Outcome::Found),
        (answered(0, &["cmx"], &[]), Outcome::NotFound),
        (answered(0, &[], &[]), Outcome::Failed),
    ];
    for (answer, outcome) in cases {
        let expected = answer.clone();
        privacy
            .record_lookup(&jane, "CORP\\JDoe", answer, Precision::Building)
            .await;
        let row = last_audit(&privacy).await;
        assert_eq!(row.outcome, outcome);
        assert_eq!(row.target, "jdoe");
        assert_eq!(row.precision.as_deref(), Some("building"));
        assert_eq!(
            (row.sources, row.found_by, row.devices),
            (expected.sources, expected.found_by, expected.devices)
        );
    }
}

#[tokio::test]
async fn who_looked_for_me_covers_exactly_thirty_days() {
    let (privacy, _) = rules(config()).await;
    let now = at(MONDAY_10) / 1000;
    let store = privacy.store();
    store
        .record(&found(now - 30 * 86_400, "edge@example.com"))
        .await
        .expect("written");
    store
        .record(&found(now - 30 * 86_400 - 1, "old@example.com"))
        .await
        .expect("written");
    store
        .record(&found(now, "new@example.com"))
        .await
        .expect("written");
    let who: Vec<String> = privacy
        .who_looked_for("CORP\\JDoe")
        .await
        .expect("read")
        .into_iter()
        .map(|e| e.requester)
        .collect();
    assert_eq!(who, ["new@example.com", "edge@example.com"]);
}

#[tokio::test]
async fn the_audit_purge_removes_exactly_what_is_past_the_retention() {
    let (privacy, _) = rules(PrivacyConfig {
        audit_retention_days: 10,
        ..config()
    })
    .await;
    let now = at(MONDAY_10) / 1000;
    let row = |at: i64| found(at, "jane@example.com");
    privacy
        .store()
        .record(&row(now - 10 * 86_400))
        .await
        .expect("written");
    privacy
        .store()
        .record(&row(now - 10 * 86_400 - 1))
        .await
        .expect("written");
    assert_eq!(privacy.purge().await, Ok(1));
    let left = privacy
        .store()
        .audit(&AuditFilter::default())
        .await
        .expect("read");
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].at, now - 10 * 86_400);
}

#[tokio::test]
async fn the_purge_frees_rate_limit_rows_only_once_the_allowance_is_full() {
    let (privacy, clock) = rules(PrivacyConfig {
        rate_limit_per_hour: 1,
        ..config()
    })
    .await;
    let jane = requester("jane@example.com");
    privacy.reserve(&jane, "jdoe").await.expect("granted");
    clock.advance_ms(3_600_000 - 1);
    privacy.purge().await.expect("purged");
    assert_eq!(
        privacy.reserve(&jane, "jdoe").await,
        Err(Refusal::RateLimited(1)),
        "the row was kept"
    );
    clock.advance_ms(1);
    privacy.purge().await.expect("purged");
    assert!(privacy.reserve(&jane, "jdoe").await.is_ok());
}

#[tokio::test]
async fn named_lists_and_favourites_are_bounded() {
    let (privacy, _) = rules(config()).await;
    for i in 0..MAX_NAMED_PEOPLE {
        let email = format!("p{i}@example.com");
        let done = if i % 2 == 0 {
            privacy.share_with("jdoe", &email).await
        } else {
            privacy.block("jdoe", &email).await
        };
        assert_eq!(done, Ok(Change::Done));
    }
    assert_eq!(
        privacy.share_with("jdoe", "one.more@example.com").await,
        Ok(Change::TooMany(MAX_NAMED_PEOPLE))
    );
    assert_eq!(
        privacy.block("jdoe", "one.more@example.com").await,
        Ok(Change::TooMany(MAX_NAMED_PEOPLE))
    );
    // Moving someone from one list to the other needs no room.
    assert_eq!(
        privacy.block("jdoe", "p0@example.com").await,
        Ok(Change::Done)
    );
    assert_eq!(
        privacy.share_with("jdoe", "p1@example.com").await,
        Ok(Change::Done)
    );
    assert_eq!(
        privacy.share_with("jdoe", "p1@example.com").await,
        Ok(Change::Unchanged)
    );
    assert_eq!(
        privacy.unshare("jdoe", "P1@example.com").await,
        Ok(Change::Done)
    );
    assert_eq!(
        privacy.unshare("jdoe", "p1@example.com").await,
        Ok(Change::Unchanged)
    );
    let settings = privacy.settings("jdoe").await.expect("read");
    assert!(settings.restricted);
    assert!(settings.blocked.contains(&"p0@example.com".to_owned()));
    assert!(!settings.shared_with.contains(&"p0@example.com".to_owned()));
    assert_eq!(
        settings.shared_with.len() + settings.blocked.len(),
        MAX_NAMED_PEOPLE - 1
    );

    let jane = requester("jane@example.com");
    for i in 0..MAX_FAVOURITES {
        assert_eq!(
            privacy.star(&jane, &format!("u{i}")).await,
            Ok(Change::Done)
        );
    }
    assert_eq!(privacy.star(&jane, "u0").await, Ok(Change::Unchanged));
    assert_eq!(
        privacy.star(&jane, "one-more").await,
        Ok(Change::TooMany(MAX_FAVOURITES))
    );
    assert_eq!(privacy.unstar(&jane, "CORP\\U0").await, Ok(Change::Done));
    assert_eq!(privacy.unstar(&jane, "u0").await, Ok(Change::Unchanged));
    assert_eq!(privacy.star(&jane, "one-more").await, Ok(Change::Done));
    let list = privacy.favourites(&jane).await.expect("read");
    assert_eq!(list.len(), MAX_FAVOURITES);
    assert_eq!(list.first().map(String::as_str), Some("u1"));
    assert_eq!(list.last().map(String::as_str), Some("one-more"));
    assert!(privacy
        .favourites(&requester("bob@example.com"))
        .await
        .expect("read")
        .is_empty());
}

#[tokio::test]
async fn settings_changed_at_once_all_land() {
    let (privacy, _) = rules(config()).await;
    let privacy = Arc::new(privacy);
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let privacy = Arc::clone(&privacy);
            tokio::spawn(async move { privacy.block("jdoe", &format!("n{i}@example.com")).await })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.expect("joined"), Ok(Change::Done));
    }
    assert_eq!(
        privacy.settings("jdoe").await.expect("read").blocked.len(),
        20
    );
}

#[tokio::test]
async fn stats_count_people_in_and_out() {
    let (privacy, _) = rules(config()).await;
    privacy.opt_out("a").await.expect("saved");
    privacy.opt_out("b").await.expect("saved");
    privacy.opt_in("c").await.expect("saved");
    let stats = privacy.stats().await.expect("stats");
    assert_eq!((stats.opted_out_people, stats.opted_in_people), (2, 1));
    assert!(privacy.store().is_opted_out("a").await.expect("read"));
    assert!(!privacy.store().is_opted_out("c").await.expect("read"));
    assert!(format!("{privacy:?}").contains("ManualClock"));
}

/// Every combination of the rules, against what the rules say in words: the limit first, then
/// findability, then the audience, then the hours; the precision is the coarser of both.
#[tokio::test]
async fn the_rules_compose() {
    #[derive(Debug, Clone, Copy)]
    enum Who {
        Everyone,
        Blocked,
        Named,
        TeamMember,
        TeamOutsider,
    }
    let store = Store::open("sqlite::memory:").await.expect("a store");
    let mut case = 0;
    for consent in [Consent::OptOut, Consent::OptIn] {
        for chosen_findable in [None, Some(true), Some(false)] {
            for who in [
                Who::Everyone,
                Who::Blocked,
                Who::Named,
                Who::TeamMember,
                Who::TeamOutsider,
            ] {
                for (hours, open) in [
                    (None, true),
                    (Some("08:00-18:30"), true),
                    (Some("11:00-12:00"), false),
                ] {
                    for (max, own) in [
                        (Precision::Exact, None),
                        (Precision::Exact, Some(Precision::Floor)),
                        (Precision::Floor, Some(Precision::Exact)),
                        (Precision::Floor, Some(Precision::Building)),
                    ] {
                        case += 1;
                        let config = PrivacyConfig {
                            consent,
                            working_hours: hours.map(self::hours),
                            max_precision: max,
                            rate_limit_per_hour: 1,
                            ..config()
                        };
                        let privacy = Privacy::with_clock(
                            store.clone(),
                            config,
                            Arc::new(ManualClock::at_ms(at(MONDAY_10))),
                        );
                        let target = format!("t{case}");
                        let viewer = format!("v{case}@example.com");
                        privacy
                            .change_settings(&target, |s| {
                                s.findable = chosen_findable;
                                s.precision = own.map(|p| p.as_str().to_owned());
                                match who {
                                    Who::Everyone => {}
                                    Who::Blocked => s.blocked = vec![viewer.clone()],
                                    Who::Named => {
                                        s.restricted = true;
                                        s.shared_with = vec![viewer.clone()];
                                    }
                                    Who::TeamMember | Who::TeamOutsider => {
                                        s.restricted = true;
                                        s.share_team = true;
                                    }
                                }
                            })
                            .await
                            .expect("saved");
                        let team_entry = move || async move {
                            let mut entry = entry("v", "v@example.com");
                            entry.team = Some(
                                if matches!(who, Who::TeamMember) {
                                    "red"
                                } else {
                                    "blue"
                                }
                                .into(),
                            );
                            Some(entry)
                        };
                        let subject = Target {
                            username: target.clone(),
                            team: Some("red".into()),
                            ..Target::default()
                        };
                        let requester = requester(&viewer);
                        let got = privacy.check(&requester, &subject, team_entry).await;
                        let findable = chosen_findable.unwrap_or(consent == Consent::OptOut);
                        let in_audience =
                            matches!(who, Who::Everyone | Who::Named | Who::TeamMember);
                        let expected = if !findable {
                            Err(if chosen_findable == Some(false) {
                                Refusal::OptedOut(target.clone())
                            } else {
                                Refusal::NotOptedIn(target.clone())
                            })
                        } else if !in_audience {
                            Err(Refusal::NotAvailable(target.clone()))
                        } else if !open {
                            Err(Refusal::OutsideHours(target.clone()))
                        } else {
                            Ok(own.map_or(max, |own| own.min(max)))
                        };
                        let why = format!(
                            "{consent:?} {chosen_findable:?} {who:?} {hours:?} {max:?} {own:?}"
                        );
                        assert_eq!(got, expected, "{why}");
                        // Whatever the outcome, it used the hour's only lookup.
                        assert_eq!(
                            privacy.check(&requester, &subject, team_entry).await,
                            Err(Refusal::RateLimited(1)),
                            "{why}"
                        );
                    }
                }
            }
        }
    }
    assert_eq!(case, 2 * 3 * 5 * 3 * 4);
}

#[tokio::test]
async fn the_purge_forgets_webhook_ids_after_a_day_and_sign_ins_after_their_lifetime() {
    let (privacy, clock) = rules(config()).await;
    let store = privacy.store();
    let now = clock.now();
    let day = 86_400;
    let lifetime = i64::try_from(crate::oidc::LOGIN_LIFETIME.as_secs()).expect("seconds");
    for (id, received) in [("past", now - day - 1), ("edge", now - day)] {
        assert_eq!(store.first_delivery(id, received).await, Ok(true));
    }
    let login = |state: &str| crate::store::PendingLogin {
        state: state.into(),
        nonce: "nonce".into(),
        verifier: "verifier".into(),
        return_to: "/".into(),
    };
    for (state, started) in [("past", now - lifetime - 1), ("edge", now - lifetime)] {
        store
            .save_login(&login(state), started)
            .await
            .expect("saved");
    }
    privacy.purge().await.expect("purged");
    // A webhook delivered again more than a day later counts as new; within the day, as a repeat.
    assert_eq!(store.first_delivery("past", now).await, Ok(true));
    assert_eq!(store.first_delivery("edge", now).await, Ok(false));
    // Taken with no lower bound, so only the purge can have removed a sign-in.
    let kept = |state: &'static str| async move {
        store.take_login(state, i64::MIN).await.map(|l| l.is_some())
    };
    assert_eq!(kept("past").await, Ok(false));
    assert_eq!(kept("edge").await, Ok(true));
}

#[test]
fn store_failures_are_counted_by_kind() {
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    metrics::with_local_recorder(&recorder, || {
        store_error(&StoreError::Unavailable("down".into()));
        store_error(&StoreError::Query("bad".into()));
        store_error(&StoreError::Query("bad".into()));
        let refusal = unavailable(&StoreError::Migration("old".into()));
        assert_eq!(
            refusal.to_string(),
            "whereis cannot check its privacy rules right now (store migration failed: old); \
             no lookup was made"
        );
    });
    let text = handle.render();
    let counted = |kind: &str| format!("{}{{kind=\"{kind}\"}}", crate::metrics::STORE_ERRORS);
    assert!(
        text.contains(&format!("{} 1", counted("unavailable"))),
        "{text}"
    );
    assert!(text.contains(&format!("{} 2", counted("query"))), "{text}");
    assert!(
        text.contains(&format!("{} 1", counted("migration"))),
        "{text}"
    );
}

#[tokio::test]
async fn the_rules_show_their_store_and_clock_when_debugged() {
    let (privacy, _) = rules(config()).await;
    let shown = format!("{privacy:?}");
    assert!(shown.starts_with("Privacy {"), "{shown}");
    assert!(shown.contains("ManualClock"), "{shown}");
}

#[tokio::test]
async fn the_purge_task_applies_the_retention_at_once_and_stops_when_told() {
    let (privacy, _) = rules(PrivacyConfig {
        audit_retention_days: 1,
        ..config()
    })
    .await;
    let privacy = Arc::new(privacy);
    let old = found(privacy.clock().now() - 2 * 86_400, "jane@example.com");
    privacy.store().record(&old).await.expect("written");
    let stop = CancellationToken::new();
    Arc::clone(&privacy).spawn_purge(stop.clone());
    let purged = async {
        loop {
            let left = privacy.store().audit(&AuditFilter::default()).await;
            if left.as_ref().is_ok_and(Vec::is_empty) {
                return;
            }
            tokio::task::yield_now().await;
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(30), purged)
        .await
        .expect("the row past the retention is purged when the task starts");
    stop.cancel();
}

#[tokio::test]
async fn the_rules_keep_the_configuration_they_were_given() {
    let (privacy, _) = rules(PrivacyConfig {
        rate_limit_per_hour: 7,
        ..office_hours()
    })
    .await;
    assert_eq!(privacy.config().rate_limit_per_hour, 7);
    assert_eq!(privacy.config().working_hours, office_hours().working_hours);
}
