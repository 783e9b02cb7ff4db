//! The client lists of the demo scenario over real HTTP: v2 pages, v3 filters (and its 400 for an
//! unknown one), faults on one page, and devices that move on with each answer.

mod common;

use common::{get, get_json_accept};
use serde_json::Value;
use whereis_sim::{Fault, Scenario, Simulator};

async fn demo() -> Simulator {
    Simulator::start(Scenario::builtin_demo())
        .await
        .expect("demo starts")
}

fn macs(list: &Value, key: &str) -> Vec<String> {
    list.as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|c| c[key].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn v2_pages_cover_the_whole_list_once_in_order() {
    let sim = demo().await;
    let north = sim.server("cmx-north").expect("server");
    let all: Value = get(north, "/api/location/v2/clients")
        .await
        .json()
        .await
        .expect("json");
    let all = macs(&all, "macAddress");
    assert!(all.len() > 6, "{all:?}");

    let mut paged = Vec::new();
    for page in 1.. {
        let resp = get(
            north,
            &format!("/api/location/v2/clients?page={page}&pageSize=4"),
        )
        .await;
        if resp.status() == 204 {
            break;
        }
        assert_eq!(resp.status(), 200);
        let items: Value = resp.json().await.expect("json");
        let items = macs(&items, "macAddress");
        assert!(items.len() <= 4, "{items:?}");
        paged.extend(items);
    }
    assert_eq!(paged, all);
}

#[tokio::test]
async fn v3_filters_by_floor_and_hierarchy_and_refuses_unknown_parameters() {
    let sim = demo().await;
    let north = sim.server("cmx-north").expect("server");
    // Level 3 of Building 5 is 723413320329068650: Jane Doe's laptop is there.
    let floor: Value = get(
        north,
        "/api/location/v3/clients?floorRefId=723413320329068650",
    )
    .await
    .json()
    .await
    .expect("json");
    let items = floor.as_array().expect("array");
    assert!(items
        .iter()
        .all(|c| c["floorRefId"] == "723413320329068650"));
    assert!(macs(&floor, "deviceId").contains(&"00:11:22:33:44:55".to_owned()));

    let building: Value = get(
        north,
        "/api/location/v3/clients?mapHierarchy=HQ%20Campus%3EBuilding%205",
    )
    .await
    .json()
    .await
    .expect("json");
    let hierarchies: Vec<&str> = building
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|c| c["locationMapHierarchy"].as_str())
        .collect();
    assert!(hierarchies.len() > items.len(), "{hierarchies:?}");
    assert!(hierarchies
        .iter()
        .all(|h| h.starts_with("HQ Campus>Building 5>")));

    let resp = get(north, "/api/location/v3/clients?floorRefId=1").await;
    assert_eq!(resp.status(), 204, "no client on an unknown floor");
    let resp = get(north, "/api/location/v3/clients?page=1&pageSize=10").await;
    assert_eq!(resp.status(), 400, "v3 does not page");
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["success"], false);
}

#[tokio::test]
async fn a_page_fault_hits_only_its_page() {
    let sim = demo().await;
    let north = sim.server("cmx-north").expect("server");
    north.set_page_fault(2, Fault::Http500);
    let first = get(north, "/api/location/v2/clients?page=1&pageSize=2").await;
    assert_eq!(first.status(), 200);
    let second = get(north, "/api/location/v2/clients?pageSize=2&page=2").await;
    assert_eq!(second.status(), 500);
    let lookup = get(north, "/api/location/v3/clients?username=CORP%5Cjdoe").await;
    assert_eq!(
        lookup.status(),
        200,
        "requests without a page are untouched"
    );

    let mse = sim.server("mse-legacy").expect("server");
    mse.set_page_fault(1, Fault::MalformedJson);
    let resp = get_json_accept(mse, "/api/contextaware/v1/location/clients?page=1").await;
    assert!(resp.json::<Value>().await.is_err(), "not JSON");
    mse.clear_page_faults();
    let resp = get_json_accept(mse, "/api/contextaware/v1/location/clients?page=1").await;
    let list: Value = resp.json().await.expect("json again");
    assert!(list["Locations"]["entries"].is_array());

    // The server-wide fault still applies to pages without one of their own.
    north.set_fault(Fault::Unauthorized);
    let resp = get(north, "/api/location/v2/clients?page=1&pageSize=2").await;
    assert_eq!(resp.status(), 401);
}

#[tokio::test]
async fn a_walking_device_moves_on_with_each_answer_and_comes_round_again() {
    let sim = demo().await;
    let south = sim.server("cmx-south").expect("server");
    let (stops, identity) = {
        let walker = sim
            .scenario()
            .people
            .iter()
            .find(|p| p.username == "srossi")
            .expect("srossi walks in the demo");
        let device = &walker.devices[0];
        let stops: Vec<String> = device
            .stops()
            .map(|(floor, _, _)| floor.to_owned())
            .collect();
        (stops, walker.device_identity(device).to_owned())
    };
    assert_eq!(stops.len(), 3, "{stops:?}");
    let path = format!("/api/location/v2/clients?username={identity}");
    let mut seen = Vec::new();
    for _ in 0..stops.len() + 1 {
        let v: Value = get(south, &path).await.json().await.expect("json");
        seen.push(
            v[0]["mapInfo"]["mapHierarchyString"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        );
    }
    let mut expected = stops.clone();
    expected.push(stops[0].clone());
    assert_eq!(seen, expected);
    // v3 answers move it on too: it is one device, wherever it is asked about.
    let v: Value = get(
        south,
        &format!("/api/location/v3/clients?username={identity}"),
    )
    .await
    .json()
    .await
    .expect("json");
    assert_eq!(v[0]["locationMapHierarchy"], stops[1]);
}
