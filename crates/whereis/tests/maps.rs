//! Floor maps as a user sees them: a PNG per device with the marker where the device is, drawn from
//! the location server's own floor image, fetched once and cached in memory and on disk.

mod common;

use std::path::Path;
use std::sync::Arc;

use common::{device, find_json_with, Office};
use image::RgbImage;
use whereis::config::Config;
use whereis::lookup::Finder;
use whereis::privacy::Precision;
use whereis_floormap::MARKER_COLOR;

/// Wall colour of the simulator's generated plans (their outer border).
const SIM_WALL: [u8; 3] = [60, 64, 72];

fn open_png(path: &Path) -> RgbImage {
    image::open(path)
        .unwrap_or_else(|err| panic!("{}: {err}", path.display()))
        .to_rgb8()
}

fn close(a: [u8; 3], b: [u8; 3], tolerance: u8) -> bool {
    a.iter().zip(b).all(|(x, y)| x.abs_diff(y) <= tolerance)
}

fn image_requests(office: &Office, server: &str) -> usize {
    office
        .sim
        .server(server)
        .unwrap()
        .requests()
        .iter()
        .filter(|r| r.path.contains("/maps/imagesource/"))
        .count()
}

#[tokio::test(flavor = "multi_thread")]
async fn find_writes_a_png_per_device_with_the_marker_where_the_device_is() {
    let office = Office::start().await;
    let maps = office.dir.path().join("maps");
    let (code, doc) = find_json_with(
        "jdoe",
        &office.default_config(),
        &["--map-dir", maps.to_str().unwrap()],
    )
    .await;
    assert_eq!(code, 0, "{doc:#}");

    // Laptop: (120.5, 40) ft on a 300 × 150 ft floor; the simulator's plan is 2400 × 1200 px, drawn at 1600.
    let laptop = device(&doc, "00:11:22:33:44:55");
    let map = &laptop["map"];
    assert_eq!(map["width"], 1600, "{map}");
    assert_eq!(map["height"], 800, "{map}");
    let marker = [
        map["marker"][0].as_u64().unwrap(),
        map["marker"][1].as_u64().unwrap(),
    ];
    assert!(
        marker[0].abs_diff(642) <= 1 && marker[1].abs_diff(213) <= 1,
        "{marker:?}"
    );
    let png = open_png(Path::new(map["path"].as_str().unwrap()));
    assert_eq!(png.dimensions(), (1600, 800));
    assert_eq!(
        png.get_pixel(marker[0] as u32, marker[1] as u32).0,
        MARKER_COLOR
    );
    for (x, y) in [(0, 0), (1599, 799), (1599, 0), (0, 799)] {
        let pixel = png.get_pixel(x, y).0;
        assert!(
            close(pixel, SIM_WALL, 12),
            "corner ({x},{y}) is {pixel:?}, not the plan's wall"
        );
    }

    // Phone: a JPEG plan of an 80 × 40 m floor, (10, 20) m.
    let phone = device(&doc, "00:11:22:33:44:66");
    let map = &phone["map"];
    let png = open_png(Path::new(map["path"].as_str().unwrap()));
    let (w, h) = png.dimensions();
    assert_eq!(
        (map["width"].as_u64(), map["height"].as_u64()),
        (Some(u64::from(w)), Some(u64::from(h)))
    );
    let marker = [
        map["marker"][0].as_u64().unwrap(),
        map["marker"][1].as_u64().unwrap(),
    ];
    let expected = [
        (10.0 / 80.0 * f64::from(w)) as u64,
        (20.0 / 40.0 * f64::from(h)) as u64,
    ];
    assert!(
        marker[0].abs_diff(expected[0]) <= 1 && marker[1].abs_diff(expected[1]) <= 1,
        "{marker:?} vs {expected:?}"
    );
    assert_eq!(
        png.get_pixel(marker[0] as u32, marker[1] as u32).0,
        MARKER_COLOR
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn without_map_dir_there_is_no_map_field() {
    let office = Office::start().await;
    let (code, doc) = common::find_json("jdoe", &office.default_config()).await;
    assert_eq!(code, 0);
    assert!(
        device(&doc, "00:11:22:33:44:55").get("map").is_none(),
        "{doc:#}"
    );
    assert_eq!(
        image_requests(&office, "cmx-a"),
        0,
        "no image is fetched when no map is wanted"
    );
}

async fn finder(office: &Office, config: &Path) -> Finder {
    let _ = office;
    Finder::from_config(&Config::load(config).unwrap())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn second_lookup_on_the_same_floor_fetches_no_image() {
    let office = Office::start().await;
    let config = office.default_config();
    let finder = finder(&office, &config).await;
    let report = finder.find("asmith", &common::tester()).await.unwrap();
    // Two of asmith's devices are on the same cmx-a floor.
    for entry in &report.devices {
        finder.draw(&entry.device, Precision::Exact).await.unwrap();
    }
    assert_eq!(image_requests(&office, "cmx-a"), 1);
    let again = finder.find("asmith", &common::tester()).await.unwrap();
    for entry in &again.devices {
        finder.draw(&entry.device, Precision::Exact).await.unwrap();
    }
    assert_eq!(image_requests(&office, "cmx-a"), 1);
    assert_eq!(image_requests(&office, "mse-1"), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restart_reuses_the_disk_cache_and_a_corrupt_file_is_fetched_again() {
    let office = Office::start().await;
    let config = office.default_config();
    let laptop = {
        let finder = finder(&office, &config).await;
        let report = finder.find("jdoe", &common::tester()).await.unwrap();
        let laptop = report.devices[0].device.clone();
        finder.draw(&laptop, Precision::Exact).await.unwrap();
        laptop
    };
    assert_eq!(image_requests(&office, "cmx-a"), 1);

    // "Restart": a new finder over the same configuration and cache directory.
    let restarted = finder(&office, &config).await;
    restarted.draw(&laptop, Precision::Exact).await.unwrap();
    assert_eq!(
        image_requests(&office, "cmx-a"),
        1,
        "served from the disk cache"
    );

    // Corrupt every cached file: detected, deleted, fetched again, and the map still drawn.
    let cache = office.dir.path().join("map-cache");
    let files: Vec<_> = std::fs::read_dir(&cache)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(!files.is_empty(), "nothing in {}", cache.display());
    for file in &files {
        let mut bytes = std::fs::read(file).unwrap();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x55;
        std::fs::write(file, &bytes).unwrap();
    }
    let again = finder(&office, &config).await;
    let map = again.draw(&laptop, Precision::Exact).await.unwrap();
    assert_eq!(map.full.width, 1600);
    assert_eq!(image_requests(&office, "cmx-a"), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn twenty_concurrent_lookups_on_a_cold_floor_fetch_the_image_once() {
    let office = Office::start().await;
    let config = office.default_config();
    let finder = Arc::new(finder(&office, &config).await);
    let report = finder.find("jdoe", &common::tester()).await.unwrap();
    let laptop = Arc::new(report.devices[0].device.clone());
    let draws = (0..20).map(|_| {
        let finder = Arc::clone(&finder);
        let laptop = Arc::clone(&laptop);
        tokio::spawn(async move {
            finder
                .draw(&laptop, Precision::Exact)
                .await
                .map(|m| m.full.marker)
        })
    });
    let markers: Vec<_> = futures::future::join_all(draws).await;
    for marker in &markers {
        assert!(matches!(marker, Ok(Ok(_))), "{marker:?}");
    }
    assert_eq!(image_requests(&office, "cmx-a"), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_api_links_each_device_to_its_map() {
    let office = Office::start().await;
    let config = Config::load(&office.default_config()).unwrap();
    let finder = Finder::from_config(&config).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(whereis::server::serve(
        listener,
        whereis::server::router(Arc::new(finder), None),
        std::future::pending(),
    ));
    let doc: serde_json::Value = reqwest::get(format!("{base}/api/v1/locate?q=jdoe"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let map = &device(&doc, "00:11:22:33:44:55")["map"];
    let url = map["url"].as_str().unwrap_or_else(|| panic!("{doc:#}"));
    assert!(
        url.starts_with("/api/v1/maps/") && url.ends_with(".png"),
        "{url}"
    );
    let response = reqwest::get(format!("{base}{url}")).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "image/png");
    let bytes = response.bytes().await.unwrap();
    let png = image::load_from_memory(&bytes).unwrap().to_rgb8();
    assert_eq!(
        png.dimensions(),
        (
            map["width"].as_u64().unwrap() as u32,
            map["height"].as_u64().unwrap() as u32
        )
    );
    let marker = (
        map["marker"][0].as_u64().unwrap() as u32,
        map["marker"][1].as_u64().unwrap() as u32,
    );
    assert_eq!(png.get_pixel(marker.0, marker.1).0, MARKER_COLOR);

    let missing = reqwest::get(format!("{base}/api/v1/maps/0123456789abcdef01234567.png"))
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
}
