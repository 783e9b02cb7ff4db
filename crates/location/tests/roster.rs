//! "Who is in Building 5?" over real HTTP: every kind of source lists a building's clients from the
//! simulator (CMX v3 floor by floor, CMX v2 and MSE page by page), and the Locator merges them as a
//! lookup does. Failures stay with their source: a dead server, a broken page, a server without a
//! client list, a list longer than the page limit.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use futures::future::{self, BoxFuture};
use whereis_location::wire::ParseError;
use whereis_location::{
    Credentials, HttpSource, ListPaging, LocationSource, Locator, LocatorSettings, Lookup, Probe,
    Secret, SourceAnswer, SourceError, SourceKind, SourceSettings,
};
use whereis_sim::{Fault, RecordedRequest, Scenario, ServerHandle, Simulator};

/// Three servers over two campuses. Building 5 has clients on all three; the v2 server and the MSE
/// each hold five clients, so pages of two take three requests.
const OFFICE: &str = r#"
[[servers]]
name = "cmx-a"
kind = "cmx"
username = "api"
password = "a-password"

[[servers]]
name = "cmx-old"
kind = "cmx-v2"
username = "admin"
password = "old-password"

[[servers]]
name = "mse-a"
kind = "mse"
username = "mse"
password = "mse-password"

[[campuses]]
name = "HQ"
[[campuses.buildings]]
name = "Building 5"
[[campuses.buildings.floors]]
name = "Level 1"
floor_ref_id = "11"
width = 300.0
length = 150.0
image = "b5-1.png"
[[campuses.buildings.floors]]
name = "Level 3"
floor_ref_id = "13"
width = 300.0
length = 150.0
image = "b5-3.png"
[[campuses.buildings]]
name = "Building 9"
[[campuses.buildings.floors]]
name = "Ground"
floor_ref_id = "21"
width = 240.0
length = 120.0
image = "b9-0.png"

[[campuses]]
name = "River"
[[campuses.buildings]]
name = "Tower A"
[[campuses.buildings.floors]]
name = "Floor 12"
floor_ref_id = "31"
width = 80.0
length = 40.0
unit = "METER"
image = "ta-12.png"

[[people]]
username = "jdoe"
display_name = "Jane Doe"
[[people.devices]]
mac = "00:00:00:00:05:01"
identity = "CORP\\jdoe"
servers = ["cmx-a"]
floor = "HQ>Building 5>Level 3"
x = 120.0
y = 40.0
last_heard_seconds = 12
[[people.devices]]
mac = "00:00:00:00:05:02"
servers = ["cmx-old"]
floor = "HQ>Building 5>Level 1"
x = 20.0
y = 30.0
last_heard_seconds = 30

[[people]]
username = "akumar"
display_name = "Anil Kumar"
[[people.devices]]
mac = "00:00:00:00:05:03"
identity = "CORP\\akumar"
servers = ["cmx-a"]
floor = "HQ>Building 5>Level 3"
x = 200.0
y = 100.0
last_heard_seconds = 300
[[people.devices]]
mac = "00:00:00:00:05:03"
identity = "CORP\\akumar"
servers = ["cmx-old"]
floor = "HQ>Building 5>Level 3"
x = 204.0
y = 97.0
last_heard_seconds = 8

[[people]]
username = "guest"
display_name = "A guest phone without 802.1X"
[[people.devices]]
mac = "00:00:00:00:05:04"
identity = ""
servers = ["cmx-old"]
floor = "HQ>Building 5>Level 1"
x = 50.0
y = 50.0
last_heard_seconds = 3

[[people]]
username = "mgarcia"
display_name = "María García"
[[people.devices]]
mac = "00:00:00:00:09:01"
servers = ["cmx-old"]
floor = "HQ>Building 9>Ground"
x = 10.0
y = 10.0
[[people.devices]]
mac = "00:00:00:00:05:05"
servers = ["mse-a"]
floor = "HQ>Building 5>Level 3"
x = 11.0
y = 12.0
last_heard_seconds = 50

[[people]]
username = "tnguyen"
display_name = "Thu Nguyen"
[[people.devices]]
mac = "00:00:00:00:05:06"
servers = ["cmx-old"]
floor = "HQ>Building 5>Level 3"
x = 55.0
y = 18.0
last_heard_seconds = 60

[[people]]
username = "bsmith"
display_name = "Bob Smith"
[[people.devices]]
mac = "00:00:00:00:09:02"
identity = "CORP\\bsmith"
servers = ["cmx-a"]
floor = "HQ>Building 9>Ground"
x = 35.0
y = 20.0
[[people.devices]]
mac = "00:00:00:00:05:07"
identity = "CORP\\bsmith"
servers = ["mse-a"]
floor = "HQ>Building 5>Level 1"
x = 250.0
y = 110.0
last_heard_seconds = 40

[[people]]
username = "lchen"
display_name = "Li Chen"
[[people.devices]]
mac = "00:00:00:00:31:01"
servers = ["mse-a"]
floor = "River>Tower A>Floor 12"
x = 52.0
y = 24.0
[[people.devices]]
mac = "00:00:00:00:31:02"
servers = ["mse-a"]
floor = "River>Tower A>Floor 12"
x = 12.0
y = 30.0

[[people]]
username = "oolsen"
display_name = "Ole Olsen"
[[people.devices]]
mac = "00:00:00:00:05:08"
identity = "CORP\\oolsen"
servers = ["mse-a"]
floor = "HQ>Building 5>Level 1"
x = 40.0
y = 12.5
last_heard_seconds = 45

# Walks from Building 5 to Building 9 to Tower A, one stop per answer that includes the laptop.
[[people]]
username = "walker"
display_name = "Wei Zhang"
[[people.devices]]
mac = "00:00:00:00:77:01"
servers = ["cmx-a"]
floor = "HQ>Building 5>Level 1"
x = 10.0
y = 10.0
last_heard_seconds = 1
[[people.devices.moves]]
floor = "HQ>Building 9>Ground"
x = 20.0
y = 20.0
[[people.devices.moves]]
floor = "River>Tower A>Floor 12"
x = 30.0
y = 30.0
"#;

const PAGES_OF_TWO: ListPaging = ListPaging {
    page_size: 2,
    max_pages: 50,
};

async fn office() -> Simulator {
    let scenario = Scenario::from_toml_str(OFFICE).expect("the office scenario is valid");
    Simulator::start(scenario).await.expect("simulator starts")
}

fn server<'a>(sim: &'a Simulator, name: &str) -> &'a ServerHandle {
    sim.server(name).expect("server in the scenario")
}

/// A source of `kind` for the simulated server `name` (the kind need not be the server's own).
fn source(sim: &Simulator, name: &str, kind: SourceKind, paging: ListPaging) -> Arc<HttpSource> {
    let server = server(sim, name);
    let source = HttpSource::new(SourceSettings {
        name: name.to_owned(),
        kind,
        url: server.base_url(),
        credentials: Credentials {
            username: server.username().to_owned(),
            password: Secret::new(server.password()),
        },
        v3_credentials: None,
        ca_file: None,
        insecure_skip_tls_verify: false,
        priority: 0,
        timeout: Duration::from_secs(5),
        image_timeout: Duration::from_secs(5),
        network: whereis_net::Network::direct(),
    })
    .expect("source");
    Arc::new(source.with_list_paging(paging))
}

/// The three servers as configured sources, in scenario order.
fn sources(sim: &Simulator, paging: ListPaging) -> Vec<Arc<dyn LocationSource>> {
    vec![
        source(sim, "cmx-a", SourceKind::Cmx, paging),
        source(sim, "cmx-old", SourceKind::CmxV2, paging),
        source(sim, "mse-a", SourceKind::Mse, paging),
    ]
}

fn locator(sources: Vec<Arc<dyn LocationSource>>, deadline: Duration) -> Locator {
    Locator::new(
        sources,
        LocatorSettings {
            username_variants: vec!["{user}".into(), "CORP\\{user}".into()],
            deadline,
            max_age: Duration::from_secs(900),
        },
    )
}

/// (mac, identity, source) of every device, sorted.
fn roster(lookup: &Lookup) -> BTreeSet<(String, String, String)> {
    lookup
        .devices
        .iter()
        .map(|d| {
            (
                d.mac.clone(),
                d.identity.clone().unwrap_or_default(),
                d.source.clone(),
            )
        })
        .collect()
}

fn macs(devices: &[whereis_location::Device]) -> BTreeSet<&str> {
    devices.iter().map(|d| d.mac.as_str()).collect()
}

fn entry(mac: &str, identity: &str, source: &str) -> (String, String, String) {
    (mac.to_owned(), identity.to_owned(), source.to_owned())
}

/// The client-list requests a server received (path and query), in order.
fn list_requests(server: &ServerHandle) -> Vec<String> {
    server
        .requests()
        .into_iter()
        .filter(|r: &RecordedRequest| r.path.contains("/clients"))
        .map(|r| match r.query {
            Some(query) => format!("{}?{query}", r.path),
            None => r.path,
        })
        .collect()
}

#[tokio::test]
async fn a_building_roster_merges_every_source_one_device_per_mac() {
    let sim = office().await;
    let locator = locator(sources(&sim, PAGES_OF_TWO), Duration::from_secs(10));

    let lookup = locator.list_building("  building 5 ").await;

    assert_eq!(lookup.errors, []);
    assert_eq!(
        roster(&lookup),
        BTreeSet::from([
            entry("00:00:00:00:05:01", "CORP\\jdoe", "cmx-a"),
            entry("00:00:00:00:05:02", "jdoe", "cmx-old"),
            // Seen by two servers: the fresher fix (cmx-old, 8 s) wins.
            entry("00:00:00:00:05:03", "CORP\\akumar", "cmx-old"),
            entry("00:00:00:00:05:05", "mgarcia", "mse-a"),
            entry("00:00:00:00:05:06", "tnguyen", "cmx-old"),
            entry("00:00:00:00:05:07", "CORP\\bsmith", "mse-a"),
            entry("00:00:00:00:05:08", "CORP\\oolsen", "mse-a"),
            entry("00:00:00:00:77:01", "walker", "cmx-a"),
        ]),
        "the guest phone has no identity and names nobody; Building 9 and Tower A stay out"
    );
    let ages: Vec<Option<u64>> = lookup.devices.iter().map(|d| d.last_seen_seconds).collect();
    assert!(
        ages.windows(2).all(|w| w[0] <= w[1]),
        "most recently seen first: {ages:?}"
    );
    assert!(
        lookup.devices.iter().all(|d| d.floor_width.is_some()),
        "v3 devices get their floor from the map configuration"
    );

    // v3 does not page: the building's two floors are asked for by id, nothing else.
    assert_eq!(
        list_requests(server(&sim, "cmx-a")),
        [
            "/api/location/v3/clients?floorRefId=11",
            "/api/location/v3/clients?floorRefId=13"
        ]
    );
    // v2 and MSE: five clients each, pages of two.
    assert_eq!(
        list_requests(server(&sim, "cmx-old")),
        [
            "/api/location/v2/clients?page=1&pageSize=2",
            "/api/location/v2/clients?page=2&pageSize=2",
            "/api/location/v2/clients?page=3&pageSize=2",
            "/api/location/v2/clients?page=4&pageSize=2",
        ],
        "a short page need not be the last (a server may cap the page size): the empty one is"
    );
    assert_eq!(
        list_requests(server(&sim, "mse-a")),
        [
            "/api/contextaware/v1/location/clients?page=1&pageSize=2",
            "/api/contextaware/v1/location/clients?page=2&pageSize=2",
            "/api/contextaware/v1/location/clients?page=3&pageSize=2",
        ]
    );
}

#[tokio::test]
async fn the_v2_list_is_read_page_by_page_and_only_the_building_kept() {
    let sim = office().await;
    let old = source(&sim, "cmx-old", SourceKind::CmxV2, PAGES_OF_TWO);

    let devices = old.list_building("Building 5").await.expect("listed");

    assert_eq!(
        macs(&devices),
        BTreeSet::from([
            "00:00:00:00:05:02",
            "00:00:00:00:05:03",
            "00:00:00:00:05:04",
            "00:00:00:00:05:06"
        ]),
        "from all three pages; mgarcia's Building 9 laptop left out"
    );
    let guest = devices
        .iter()
        .find(|d| d.mac == "00:00:00:00:05:04")
        .expect("guest phone");
    assert_eq!(guest.identity, None, "a source lists what it sees");
    assert_eq!(list_requests(server(&sim, "cmx-old")).len(), 4);
}

#[tokio::test]
async fn a_full_last_page_is_followed_by_an_empty_one() {
    let sim = office().await;
    let old = source(
        &sim,
        "cmx-old",
        SourceKind::CmxV2,
        ListPaging {
            page_size: 5,
            max_pages: 50,
        },
    );

    let devices = old.list_building("BUILDING 9").await.expect("listed");

    assert_eq!(macs(&devices), BTreeSet::from(["00:00:00:00:09:01"]));
    assert_eq!(
        list_requests(server(&sim, "cmx-old")),
        [
            "/api/location/v2/clients?page=1&pageSize=5",
            "/api/location/v2/clients?page=2&pageSize=5",
        ],
        "a full page may not be the last: the next one is empty (204)"
    );
}

#[tokio::test]
async fn the_mse_list_is_read_up_to_its_last_page() {
    let sim = office().await;
    let mse = source(&sim, "mse-a", SourceKind::Mse, PAGES_OF_TWO);

    let devices = mse.list_building("Tower A").await.expect("listed");

    assert_eq!(
        macs(&devices),
        BTreeSet::from(["00:00:00:00:31:01", "00:00:00:00:31:02"])
    );
    assert!(devices
        .iter()
        .all(|d| d.identity.as_deref() == Some("lchen")));
    assert_eq!(
        list_requests(server(&sim, "mse-a")).len(),
        3,
        "totalPages is 3: no fourth request"
    );
}

#[tokio::test]
async fn a_building_the_map_configuration_does_not_know_is_looked_for_in_the_whole_v3_list() {
    let sim = office().await;
    let cmx = source(&sim, "cmx-a", SourceKind::Cmx, PAGES_OF_TWO);

    let devices = cmx.list_building("Building 12").await.expect("listed");

    assert!(devices.is_empty(), "{devices:?}");
    assert_eq!(
        list_requests(server(&sim, "cmx-a")),
        ["/api/location/v3/clients"]
    );
}

#[tokio::test]
async fn a_cmx_without_v3_lists_through_v2() {
    let sim = office().await;
    let cmx = source(&sim, "cmx-old", SourceKind::Cmx, PAGES_OF_TWO);

    let devices = cmx.list_building("Building 5").await.expect("listed");

    assert_eq!(devices.len(), 4);
    let asked = list_requests(server(&sim, "cmx-old"));
    let (v3, v2) = asked.split_at(asked.len() - 4);
    assert!(
        !v3.is_empty()
            && v3
                .iter()
                .all(|r| r.starts_with("/api/location/v3/clients?floorRefId=")),
        "{asked:?}"
    );
    assert!(
        v2.iter()
            .all(|r| r.starts_with("/api/location/v2/clients?page=")),
        "{asked:?}"
    );
    // The 404 is remembered, as for lookups: the next list goes straight to v2.
    cmx.list_building("Building 5").await.expect("listed");
    let again = list_requests(server(&sim, "cmx-old"));
    assert_eq!(again.len(), asked.len() + 4, "{again:?}");
    assert!(
        again[asked.len()..]
            .iter()
            .all(|r| r.starts_with("/api/location/v2/")),
        "{again:?}"
    );
}

#[tokio::test]
async fn a_person_walking_between_buildings_is_in_each_roster_in_turn() {
    let sim = office().await;
    let cmx = source(&sim, "cmx-a", SourceKind::Cmx, PAGES_OF_TWO);
    let walker = "00:00:00:00:77:01";
    let has_walker = |devices: &[whereis_location::Device]| devices.iter().any(|d| d.mac == walker);

    let b5 = cmx.list_building("Building 5").await.expect("listed");
    assert!(has_walker(&b5), "starts in Building 5");
    let b5 = cmx.list_building("Building 5").await.expect("listed");
    assert!(!has_walker(&b5), "then has gone on");
    let b9 = cmx.list_building("Building 9").await.expect("listed");
    let seen = b9.iter().find(|d| d.mac == walker).expect("in Building 9");
    assert_eq!((seen.x, seen.y), (20.0, 20.0));
    let tower = cmx.list_building("Tower A").await.expect("listed");
    assert!(has_walker(&tower), "and on to Tower A");
}

#[tokio::test]
async fn a_failing_source_is_named_and_the_others_still_answer() {
    let sim = office().await;
    server(&sim, "mse-a").set_fault(Fault::Http500);
    let locator = locator(sources(&sim, PAGES_OF_TWO), Duration::from_secs(10));

    let lookup = locator.list_building("Building 5").await;

    assert_eq!(lookup.errors.len(), 1, "{:?}", lookup.errors);
    assert_eq!(lookup.errors[0].source, "mse-a");
    assert!(
        lookup.errors[0].error.contains("500"),
        "{}",
        lookup.errors[0].error
    );
    let sources: BTreeSet<&str> = lookup.devices.iter().map(|d| d.source.as_str()).collect();
    assert_eq!(sources, BTreeSet::from(["cmx-a", "cmx-old"]));
    assert_eq!(lookup.devices.len(), 5);
}

#[tokio::test]
async fn a_hanging_source_is_cut_off_at_the_deadline() {
    let sim = office().await;
    server(&sim, "cmx-old").set_fault(Fault::Hang);
    let locator = locator(sources(&sim, PAGES_OF_TWO), Duration::from_millis(500));

    let lookup = locator.list_building("Building 5").await;

    assert_eq!(lookup.errors.len(), 1, "{:?}", lookup.errors);
    assert_eq!(lookup.errors[0].source, "cmx-old");
    assert_eq!(
        lookup.errors[0].error,
        "no answer within the 500 ms lookup deadline"
    );
    // akumar's laptop is still listed, from the other server that sees it.
    let akumar = lookup
        .devices
        .iter()
        .find(|d| d.mac == "00:00:00:00:05:03")
        .expect("akumar's laptop");
    assert_eq!(akumar.source, "cmx-a");
    assert_eq!(lookup.devices.len(), 6);
}

#[tokio::test]
async fn a_malformed_page_is_a_parse_error_for_its_source_alone() {
    let sim = office().await;
    server(&sim, "cmx-old").set_page_fault(2, Fault::MalformedJson);
    server(&sim, "mse-a").set_page_fault(3, Fault::MalformedJson);

    let old = source(&sim, "cmx-old", SourceKind::CmxV2, PAGES_OF_TWO);
    let err = old
        .list_building("Building 5")
        .await
        .expect_err("page 2 is broken");
    assert!(
        matches!(err, SourceError::Parse(ParseError::Json(_))),
        "{err:?}"
    );
    assert_eq!(err.kind(), "parse");
    let mse = source(&sim, "mse-a", SourceKind::Mse, PAGES_OF_TWO);
    let err = mse
        .list_building("Building 5")
        .await
        .expect_err("page 3 is broken");
    assert!(err.to_string().starts_with("malformed JSON"), "{err}");

    let locator = locator(sources(&sim, PAGES_OF_TWO), Duration::from_secs(10));
    let lookup = locator.list_building("Building 5").await;
    let failed: BTreeSet<&str> = lookup.errors.iter().map(|e| e.source.as_str()).collect();
    assert_eq!(failed, BTreeSet::from(["cmx-old", "mse-a"]));
    assert!(lookup.devices.iter().all(|d| d.source == "cmx-a"));
    assert_eq!(lookup.devices.len(), 3);
}

#[tokio::test]
async fn a_truncated_page_is_an_error_not_a_shorter_list() {
    let sim = office().await;
    server(&sim, "cmx-old").set_page_fault(2, Fault::TruncatedBody);
    let old = source(&sim, "cmx-old", SourceKind::CmxV2, PAGES_OF_TWO);

    let err = old
        .list_building("Building 5")
        .await
        .expect_err("page 2 cut off");

    assert_eq!(err.kind(), "truncated", "{err}");
}

#[tokio::test]
async fn a_server_without_a_client_list_is_unsupported() {
    let sim = office().await;
    // An MSE client pointed at a CMX, and the other way round: the list path answers 404.
    let mse_at_cmx = source(&sim, "cmx-old", SourceKind::Mse, PAGES_OF_TWO);
    let err = mse_at_cmx.list_building("Building 5").await.unwrap_err();
    assert!(matches!(err, SourceError::Unsupported(_)), "{err:?}");
    assert_eq!(err.kind(), "unsupported");
    let cmx_at_mse = source(&sim, "mse-a", SourceKind::CmxV2, PAGES_OF_TWO);
    let err = cmx_at_mse.list_building("Building 5").await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "not supported: no CMX v2 client list (404 Not Found)"
    );
}

/// A source that can locate but has no client list: the trait's default.
struct LocateOnly;

impl LocationSource for LocateOnly {
    fn name(&self) -> &str {
        "locate-only"
    }
    fn priority(&self) -> i32 {
        0
    }
    fn locate<'a>(
        &'a self,
        _identity: &'a str,
    ) -> BoxFuture<'a, Result<SourceAnswer, SourceError>> {
        Box::pin(future::ready(Ok(SourceAnswer::default())))
    }
    fn probe(&self) -> BoxFuture<'_, Result<Probe, SourceError>> {
        Box::pin(future::ready(Err(SourceError::Setup("not probed".into()))))
    }
}

#[tokio::test]
async fn a_source_kind_without_lists_is_listed_as_unsupported_beside_the_answers() {
    let sim = office().await;
    let mut sources = sources(&sim, PAGES_OF_TWO);
    sources.push(Arc::new(LocateOnly));
    let locator = locator(sources, Duration::from_secs(10));

    let lookup = locator.list_building("Building 5").await;

    assert_eq!(lookup.devices.len(), 8);
    assert_eq!(lookup.errors.len(), 1);
    assert_eq!(lookup.errors[0].source, "locate-only");
    assert!(
        lookup.errors[0].error.starts_with("not supported: "),
        "{}",
        lookup.errors[0].error
    );
}

#[tokio::test]
async fn a_list_longer_than_the_page_limit_is_refused_not_cut() {
    let sim = office().await;
    let short = ListPaging {
        page_size: 1,
        max_pages: 2,
    };
    let old = source(&sim, "cmx-old", SourceKind::CmxV2, short);
    assert_eq!(
        old.list_building("Building 5").await.unwrap_err(),
        SourceError::TooManyPages {
            pages: 2,
            page_size: 1
        }
    );
    assert_eq!(
        list_requests(server(&sim, "cmx-old")).len(),
        3,
        "the page after the limit is asked for: the list might have ended exactly there"
    );

    let mse = source(&sim, "mse-a", SourceKind::Mse, short);
    let err = mse.list_building("Building 5").await.unwrap_err();
    assert_eq!(err.kind(), "too_many_pages");
    assert_eq!(
        list_requests(server(&sim, "mse-a")).len(),
        1,
        "totalPages on the first page already says the list is too long"
    );
}

#[tokio::test]
async fn an_empty_building_name_asks_nobody() {
    let sim = office().await;
    let locator = locator(sources(&sim, PAGES_OF_TWO), Duration::from_secs(10));

    let lookup = locator.list_building(" \t ").await;

    assert_eq!(lookup, Lookup::default());
    assert!(sim.servers().iter().all(|s| s.request_count() == 0));
    let old = source(&sim, "cmx-old", SourceKind::CmxV2, PAGES_OF_TWO);
    assert_eq!(old.list_building("").await.unwrap_err().kind(), "invalid");
}

#[tokio::test]
async fn the_demo_office_has_a_building_5_roster_from_both_cmx_servers() {
    let sim = Simulator::start(Scenario::builtin_demo())
        .await
        .expect("demo starts");
    let sources: Vec<Arc<dyn LocationSource>> =
        sim.servers()
            .iter()
            .filter_map(|server| {
                let kind = match server.kind() {
                    whereis_sim::ServerKind::Cmx => SourceKind::Cmx,
                    whereis_sim::ServerKind::CmxV2 => SourceKind::CmxV2,
                    whereis_sim::ServerKind::Mse => SourceKind::Mse,
                    // Answered from the live table the stream and the posts fill, not over HTTP.
                    whereis_sim::ServerKind::Meraki | whereis_sim::ServerKind::Spaces => {
                        return None
                    }
                };
                Some(source(&sim, server.name(), kind, ListPaging::default())
                    as Arc<dyn LocationSource>)
            })
            .collect();
    let locator = locator(sources, Duration::from_secs(10));

    let lookup = locator.list_building("Building 5").await;

    assert_eq!(lookup.errors, []);
    let people: BTreeSet<String> = lookup
        .devices
        .iter()
        .filter_map(|d| d.identity.as_deref())
        .filter_map(|identity| locator.username_of(identity))
        .map(|user| user.as_str().to_owned())
        .collect();
    for expected in ["jdoe", "bsmith", "akumar", "mgarcia", "hlarsen"] {
        assert!(people.contains(expected), "{expected} in {people:?}");
    }
    assert!(people.len() >= 12, "{people:?}");
    let sources: BTreeSet<&str> = lookup.devices.iter().map(|d| d.source.as_str()).collect();
    assert_eq!(sources, BTreeSet::from(["cmx-north", "cmx-south"]));
}

#[tokio::test]
async fn a_list_that_fills_the_page_limit_exactly_is_complete() {
    let sim = office().await;
    let exact = ListPaging {
        page_size: 5,
        max_pages: 1,
    };
    let old = source(&sim, "cmx-old", SourceKind::CmxV2, exact);

    let devices = old.list_building("Building 5").await.expect("listed");

    assert_eq!(devices.len(), 4);
    assert_eq!(list_requests(server(&sim, "cmx-old")).len(), 2);
}

/// A CMX whose v3 API refuses the `floorRefId` filter (400), as a version without it would:
/// answers by request line, records what it was asked.
async fn cmx_without_floor_filter() -> (String, Arc<std::sync::Mutex<Vec<String>>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const MAPS: &str = r#"{"campuses":[{"name":"HQ","buildingList":[{"name":"Building 5","floorList":[
        {"name":"Level 1","aesUidString":"11","dimension":{"length":150,"width":300,"unit":"FEET"},
         "image":{"imageName":"b5-1.png"}}]}]}]}"#;
    const CLIENTS: &str = r#"[
        {"deviceId":"00:00:00:00:05:01","locationMapHierarchy":"HQ>Building 5>Level 1",
         "locationCoordinate":{"x":1,"y":2,"unit":"FEET"},"floorRefId":"11","username":"CORP\\jdoe"},
        {"deviceId":"00:00:00:00:09:01","locationMapHierarchy":"HQ>Building 9>Ground",
         "locationCoordinate":{"x":3,"y":4,"unit":"FEET"},"floorRefId":"21","username":"mgarcia"}]"#;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    let asked = Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = Arc::clone(&asked);
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut head = Vec::new();
            let mut buf = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            let line = String::from_utf8_lossy(&head)
                .lines()
                .next()
                .unwrap_or_default()
                .to_owned();
            let target = line.split(' ').nth(1).unwrap_or_default().to_owned();
            log.lock().expect("log").push(target.clone());
            let (status, body) = if target.starts_with("/api/config/v1/maps") {
                ("200 OK", MAPS)
            } else if target.contains("floorRefId") {
                (
                    "400 Bad Request",
                    r#"{"success":false,"error":{"message":"Unknown filter parameter being used"}}"#,
                )
            } else if target.starts_with("/api/location/v3/clients") {
                ("200 OK", CLIENTS)
            } else {
                ("404 Not Found", "")
            };
            let answer = format!(
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(answer.as_bytes()).await;
        }
    });
    (url, asked)
}

#[tokio::test]
async fn a_v3_api_refusing_the_floor_filter_is_read_whole() {
    let (url, asked) = cmx_without_floor_filter().await;
    let source = HttpSource::new(SourceSettings {
        name: "cmx-10-3".to_owned(),
        kind: SourceKind::Cmx,
        url,
        credentials: Credentials {
            username: "api".to_owned(),
            password: Secret::new("password"),
        },
        v3_credentials: None,
        ca_file: None,
        insecure_skip_tls_verify: false,
        priority: 0,
        timeout: Duration::from_secs(5),
        image_timeout: Duration::from_secs(5),
        network: whereis_net::Network::direct(),
    })
    .expect("source");

    let devices = source.list_building("Building 5").await.expect("listed");

    assert_eq!(macs(&devices), BTreeSet::from(["00:00:00:00:05:01"]));
    assert_eq!(devices[0].floor_width, Some(300.0));
    let asked = asked.lock().expect("log").clone();
    assert_eq!(
        asked,
        [
            "/api/config/v1/maps",
            "/api/location/v3/clients?floorRefId=11",
            "/api/location/v3/clients"
        ]
    );
}
