//! Scenario files: errors name the file and what is wrong.

use std::io::Write;

use whereis_sim::{Scenario, SimError, Unit};

const GOOD: &str = r#"
[[servers]]
name = "cmx-a"
kind = "cmx"
username = "api"
password = "pw"

[[campuses]]
name = "Main Campus"
[[campuses.buildings]]
name = "Building 1"
[[campuses.buildings.floors]]
name = "Level 2"
floor_ref_id = "723413320329068650"
width = 80.0
length = 40.0
unit = "METER"
image = "l2.png"

[[people]]
username = "jdoe"
display_name = "Jane Doe"
[[people.devices]]
mac = "00:11:22:33:44:55"
identity = "CORP\\jdoe"
servers = ["cmx-a"]
floor = "Main Campus>Building 1>Level 2"
x = 10.0
y = 20.0
"#;

fn write_temp(text: &str) -> tempfile::NamedTempFile {
    let mut file = tempfile::Builder::new()
        .prefix("scenario-")
        .suffix(".toml")
        .tempfile()
        .expect("temp file");
    file.write_all(text.as_bytes()).expect("write");
    file
}

fn file_error(text: &str) -> (String, String) {
    let file = write_temp(text);
    let name = file.path().display().to_string();
    let err = Scenario::from_file(file.path()).expect_err("rejected");
    (err.to_string(), name)
}

#[test]
fn good_file_loads() {
    let file = write_temp(GOOD);
    let s = Scenario::from_file(file.path()).expect("valid");
    assert_eq!(s.campuses[0].buildings[0].floors[0].unit, Unit::Meter);
    assert_eq!(
        s.people[0].devices[0].identity.as_deref(),
        Some("CORP\\jdoe")
    );
}

#[test]
fn unknown_field_names_the_key_and_the_file() {
    let (msg, file) = file_error(&GOOD.replace("y = 20.0", "y = 20.0\nfloor_name = \"x\""));
    assert!(msg.contains("floor_name"), "{msg}");
    assert!(msg.contains(&file), "{msg}");
}

#[test]
fn unknown_floor_names_the_floor() {
    let (msg, file) = file_error(&GOOD.replace(
        "floor = \"Main Campus>Building 1>Level 2\"",
        "floor = \"Main Campus>Building 1>Level 3\"",
    ));
    assert!(
        msg.contains("unknown floor \"Main Campus>Building 1>Level 3\""),
        "{msg}"
    );
    assert!(msg.contains("\"jdoe\""), "{msg}");
    assert!(msg.contains(&file), "{msg}");
}

#[test]
fn unknown_server_names_the_server() {
    let (msg, _) = file_error(&GOOD.replace("servers = [\"cmx-a\"]", "servers = [\"cmx-b\"]"));
    assert!(msg.contains("unknown server \"cmx-b\""), "{msg}");
    assert!(msg.contains("cmx-a"), "lists the known servers: {msg}");
}

#[test]
fn missing_file_is_a_read_error() {
    let err =
        Scenario::from_file(std::path::Path::new("/no/such/scenario.toml")).expect_err("missing");
    assert!(matches!(err, SimError::Read { .. }));
    assert!(err.to_string().contains("/no/such/scenario.toml"));
}

#[test]
fn all_problems_are_reported_at_once() {
    let text = GOOD
        .replace("servers = [\"cmx-a\"]", "servers = [\"cmx-b\"]")
        .replace("x = 10.0", "x = 10.0\nip = [\"not-an-ip\"]");
    match Scenario::from_toml_str(&text) {
        Err(SimError::Invalid { problems, .. }) => assert_eq!(problems.len(), 2, "{problems:?}"),
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[test]
fn builtin_demo_matches_the_brief() {
    let s = Scenario::builtin_demo();
    let kinds: Vec<&str> = s.servers.iter().map(|x| x.kind.as_str()).collect();
    assert_eq!(kinds, ["cmx", "cmx", "cmx-v2", "mse", "spaces", "meraki"]);
    assert_eq!(s.campuses.len(), 2);
    assert!(s.campuses.iter().map(|c| c.buildings.len()).sum::<usize>() >= 3);
    let jdoe = s
        .people
        .iter()
        .find(|p| p.username == "jdoe")
        .expect("jdoe");
    assert_eq!(jdoe.display_name, "Jane Doe");
    assert!(s.people.iter().any(|p| p.devices.len() == 3));
    assert!(s
        .people
        .iter()
        .flat_map(|p| &p.devices)
        .any(|d| d.status == "PROBING"));
}

#[test]
fn builtin_demo_is_an_office_worth_a_roster() {
    let s = Scenario::builtin_demo();
    let buildings: Vec<_> = s.campuses.iter().flat_map(|c| &c.buildings).collect();
    assert!(buildings.len() >= 3, "{} buildings", buildings.len());
    let floors = buildings.iter().map(|b| b.floors.len()).sum::<usize>();
    assert!(floors >= 8, "{floors} floors");
    assert!(s.people.len() >= 40, "{} people", s.people.len());
    let opted_out: Vec<&str> = s
        .people
        .iter()
        .filter(|p| p.opted_out)
        .map(|p| p.username.as_str())
        .collect();
    assert_eq!(opted_out.len(), 1, "{opted_out:?}");
    let walkers = s
        .people
        .iter()
        .filter(|p| p.devices.iter().any(|d| !d.moves.is_empty()))
        .count();
    assert!(walkers >= 3, "{walkers} people move");
    let crossing = s.people.iter().flat_map(|p| &p.devices).any(|d| {
        let buildings: std::collections::HashSet<&str> = d
            .stops()
            .filter_map(|(floor, _, _)| floor.split('>').nth(1))
            .collect();
        buildings.len() > 1
    });
    assert!(crossing, "someone walks from one building to another");
    assert!(s.people.iter().filter(|p| p.devices.len() >= 2).count() >= 8);
    // Full-name search has something to choose between: shared first names, accents.
    let mut first_names: Vec<&str> = s
        .people
        .iter()
        .filter_map(|p| p.display_name.split(' ').next())
        .collect();
    first_names.sort_unstable();
    let shared = first_names.windows(2).filter(|w| w[0] == w[1]).count();
    assert!(shared >= 3, "{first_names:?}");
    assert!(
        s.people
            .iter()
            .filter(|p| !p.display_name.is_ascii())
            .count()
            >= 5
    );
    let mut names: Vec<&str> = s.people.iter().map(|p| p.display_name.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), s.people.len(), "full names are unique");
}
