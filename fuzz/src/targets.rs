//! The parsers that read bytes from outside, each with its seeds, the field names of its format, and
//! checks of what it returns (a failed check panics, so it is reported like a crash).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use chrono::{DateTime, TimeZone, Utc};
use whereis_floormap::decode::{decode, DecodeError};
use whereis_floormap::DecodeLimits;
use whereis_location::wire::maps::CatalogFloor;
use whereis_location::wire::{cmx_v2, cmx_v3, maps, mse, ParseError, Parsed};
use whereis_location::{normalize_mac, FloorPlan};
use whereis_sim::webex::read_parts;
use whereis_webex::{parse_envelope, Message, Person, Room, Webhook, WebhookEvent};

use crate::mutate::Syntax;

/// What a parser made of one input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Read as the format, with something usable in it (a device, a floor, a message, a config).
    Accepted,
    /// Read as the format, but nothing in it was usable (no records, only rejected records).
    Empty,
    /// Refused with a typed error.
    Refused,
}

/// One parser under test.
pub struct Target {
    /// Name on the command line and in reports.
    pub name: &'static str,
    /// What it parses, for `--list`.
    pub about: &'static str,
    /// The syntax of its input.
    pub syntax: Syntax,
    /// Seed files: (name, bytes).
    pub seeds: &'static [(&'static str, &'static [u8])],
    /// Seeds made when the run starts (for formats better encoded than stored, like images).
    pub made_seeds: fn() -> Vec<(&'static str, Vec<u8>)>,
    /// Field names and words of its format, for mutations and generated documents.
    pub keys: &'static [&'static str],
    /// Parses one input and checks the result.
    pub run: fn(&[u8]) -> Outcome,
}

impl Target {
    /// Every seed: the stored ones, then the made ones.
    pub fn all_seeds(&self) -> Vec<(&'static str, Vec<u8>)> {
        let mut seeds: Vec<(&'static str, Vec<u8>)> = self
            .seeds
            .iter()
            .map(|(name, bytes)| (*name, bytes.to_vec()))
            .collect();
        seeds.extend((self.made_seeds)());
        seeds
    }
}

/// For targets whose seeds are all stored.
pub fn no_made_seeds() -> Vec<(&'static str, Vec<u8>)> {
    Vec::new()
}

macro_rules! fixture {
    ($name:literal) => {
        (
            $name,
            include_bytes!(concat!("../../crates/location/tests/fixtures/", $name)) as &[u8],
        )
    };
}

macro_rules! webex_fixture {
    ($name:literal) => {
        (
            $name,
            include_bytes!(concat!("../../crates/webex/tests/fixtures/", $name)) as &[u8],
        )
    };
}

macro_rules! seed {
    ($name:literal) => {
        ($name, include_bytes!(concat!("../seeds/", $name)) as &[u8])
    };
}

/// Every recorded location payload: each parser also gets the others' shapes.
const LOCATION_SEEDS: &[(&str, &[u8])] = &[
    fixture!("cmx-v2-clients-sandbox.json"),
    fixture!("cmx-clients-floor-offset.json"),
    fixture!("cmx-v2-client-no-rssi-stats.json"),
    fixture!("cmx-v2-clients-placeholder-types.json"),
    fixture!("cmx-v1-clients-sandbox-80-devices-one-user.json"),
    fixture!("cmx-v3-clients-sandbox.json"),
    fixture!("mse-clients-list-paged.json"),
    seed!("mse-wireless-client-location.json"),
    fixture!("spaces-firehose-device-location-update.json"),
    fixture!("meraki-scanning-v3-wifi.json"),
    seed!("cmx-maps-catalog.json"),
    seed!("cmx-floor-info.json"),
    fixture!("spaces-firehose-device-location-update.json"),
    fixture!("spaces-locationupdate-notification.json"),
    fixture!("meraki-scanning-v3-wifi.json"),
    fixture!("meraki-floorplans-by-id.json"),
];

const WEBEX_SEEDS: &[(&str, &[u8])] = &[
    webex_fixture!("webex-webhook-message-created.json"),
    webex_fixture!("webex-message-group-mention.json"),
    seed!("webex-envelope-post.json"),
    seed!("webex-envelope-ack.json"),
    seed!("webex-envelope-typing.json"),
    seed!("webex-room.json"),
    seed!("webex-person.json"),
    seed!("webex-webhook.json"),
];

const MULTIPART_SEEDS: &[(&str, &[u8])] = &[
    seed!("multipart-file-and-fields.txt"),
    seed!("multipart-extended-file-name.txt"),
    seed!("multipart-escaped-name-no-type.txt"),
];

const CONFIG_SEEDS: &[(&str, &[u8])] = &[
    seed!("config-full.toml"),
    seed!("config-minimal.toml"),
    seed!("config-websocket-file-directory.toml"),
];

/// Field names of CMX v1/v2/v3, MSE and the map configuration, and words their values use.
const LOCATION_KEYS: &[&str] = &[
    "macAddress",
    "mapInfo",
    "MapInfo",
    "mapHierarchyString",
    "floorRefId",
    "floorDimension",
    "Dimension",
    "dimension",
    "length",
    "width",
    "offsetX",
    "offsetY",
    "unit",
    "image",
    "Image",
    "imageName",
    "mapCoordinate",
    "MapCoordinate",
    "x",
    "y",
    "confidenceFactor",
    "statistics",
    "Statistics",
    "currentServerTime",
    "lastLocatedTime",
    "maxDetectedRssi",
    "lastHeardInSeconds",
    "ipAddress",
    "userName",
    "ssId",
    "ssid",
    "dot11Status",
    "manufacturer",
    "deviceId",
    "locationMapHierarchy",
    "locationCoordinate",
    "associated",
    "username",
    "lastSeen",
    "WirelessClientLocation",
    "Locations",
    "entries",
    "campuses",
    "buildingList",
    "floorList",
    "name",
    "aesUidString",
    "aesUid",
    "hierarchyName",
];

const WEBEX_KEYS: &[&str] = &[
    "id",
    "name",
    "resource",
    "event",
    "actorId",
    "data",
    "roomId",
    "roomType",
    "personId",
    "personEmail",
    "mentionedPeople",
    "text",
    "markdown",
    "html",
    "parentId",
    "files",
    "created",
    "title",
    "type",
    "lastActivity",
    "emails",
    "displayName",
    "nickName",
    "firstName",
    "lastName",
    "orgId",
    "targetUrl",
    "filter",
    "secret",
    "status",
    "items",
    "eventType",
    "activity",
    "verb",
    "actor",
    "emailAddress",
    "target",
    "url",
    "tags",
    "object",
    "mentions",
    "published",
    "sequenceNumber",
];

const CONFIG_KEYS: &[&str] = &[
    "server",
    "listen",
    "public_url",
    "request_timeout_ms",
    "lookup",
    "username_variants",
    "timeout_ms",
    "deadline_ms",
    "max_age_seconds",
    "sources",
    "name",
    "kind",
    "url",
    "username",
    "password_env",
    "password_file",
    "v3_username",
    "v3_password_env",
    "v3_password_file",
    "ca_file",
    "insecure_skip_tls_verify",
    "priority",
    "webex",
    "token_env",
    "token_file",
    "mode",
    "webhook_secret_env",
    "webhook_secret_file",
    "api_base",
    "device_url",
    "max_backlog_minutes",
    "allow_unsigned_webhooks",
    "allowed_domains",
    "store",
    "url_env",
    "url_file",
    "directory",
    "path",
    "starttls",
    "bind_dn",
    "bind_password_env",
    "bind_password_file",
    "base_dn",
    "username_attribute",
    "privacy",
    "rate_limit_per_hour",
    "audit_retention_days",
    "notify_target",
    "admins",
    "maps",
    "display_width",
    "crop_size",
    "cache_dir",
    "memory_mb",
    "fetch_timeout_ms",
    "network",
    "proxy",
    "proxy_username",
    "proxy_password_env",
    "proxy_password_file",
    "no_proxy",
];

/// Pieces of `multipart/form-data` bodies and of their `Content-Type`.
const MULTIPART_KEYS: &[&str] = &[
    "\r\n",
    "\r\n\r\n",
    "--",
    "--a1b2c3d4e5f6",
    "--a1b2c3d4e5f6--",
    "--XyZ\r\n",
    "boundary=",
    "boundary=\"\"",
    "multipart/form-data; boundary=B\n",
    "Content-Disposition: form-data; name=\"files\"; filename=\"a.png\"\r\n",
    "Content-Disposition: form-data; name=\"text\"\r\n",
    "Content-Disposition: attachment\r\n",
    "Content-Type: image/png\r\n",
    "Content-Transfer-Encoding: base64\r\n",
    "filename*=UTF-8''caf%C3%A9.png",
    "filename*=utf-8''%FF%FE",
    "filename*=iso-8859-1'en'%A3",
    "filename*=UTF-8''%",
    "name=\"\"",
    "; ",
    "\\\"",
];

/// Chunk names of PNG and the words of JPEG headers.
const IMAGE_KEYS: &[&str] = &[
    "IHDR", "PLTE", "IDAT", "IEND", "tRNS", "gAMA", "cHRM", "sRGB", "iCCP", "sBIT", "pHYs", "tEXt",
    "zTXt", "iTXt", "acTL", "fcTL", "fdAT", "eXIf", "JFIF", "Exif", "Adobe",
];

/// Field names of the Cisco Spaces Firehose and the Meraki Scanning API.
const LIVE_KEYS: &[&str] = &[
    "recordUid",
    "recordTimestamp",
    "eventType",
    "DEVICE_LOCATION_UPDATE",
    "DEVICE_EXIT",
    "DEVICE_PRESENCE",
    "DEVICE_EXIT_EVENT",
    "KEEP_ALIVE",
    "deviceLocationUpdate",
    "deviceExit",
    "devicePresence",
    "presenceEventType",
    "device",
    "macAddress",
    "rawUserId",
    "location",
    "locationId",
    "inferredLocationTypes",
    "parent",
    "mapId",
    "xPos",
    "yPos",
    "confidenceFactor",
    "lastSeen",
    "ssid",
    "NaN",
    "version",
    "secret",
    "type",
    "data",
    "networkId",
    "observations",
    "clientMac",
    "userId",
    "ipv4",
    "locations",
    "floorPlanId",
    "floorPlanName",
    "variance",
    "time",
    "x",
    "y",
];

/// Every target, in report order.
pub static TARGETS: &[Target] = &[
    Target {
        name: "cmx-v2",
        about: "CMX Location API v2 client list (wire::cmx_v2::parse)",
        syntax: Syntax::Json,
        seeds: LOCATION_SEEDS,
        keys: LOCATION_KEYS,
        made_seeds: no_made_seeds,
        run: run_cmx_v2,
    },
    Target {
        name: "cmx-v3",
        about: "CMX Location API v3 flat client records (wire::cmx_v3::parse)",
        syntax: Syntax::Json,
        seeds: LOCATION_SEEDS,
        keys: LOCATION_KEYS,
        made_seeds: no_made_seeds,
        run: run_cmx_v3,
    },
    Target {
        name: "mse",
        about: "MSE Context Aware WirelessClientLocation and paged list (wire::mse::parse)",
        syntax: Syntax::Json,
        seeds: LOCATION_SEEDS,
        keys: LOCATION_KEYS,
        made_seeds: no_made_seeds,
        run: run_mse,
    },
    Target {
        name: "spaces-record",
        about: "Cisco Spaces Firehose record, one NDJSON line (wire::spaces::parse_record)",
        syntax: Syntax::Json,
        seeds: LOCATION_SEEDS,
        keys: LIVE_KEYS,
        made_seeds: no_made_seeds,
        run: run_spaces_record,
    },
    Target {
        name: "meraki-scanning",
        about: "Meraki Scanning API v3 post (wire::meraki::parse_scanning)",
        syntax: Syntax::Json,
        seeds: LOCATION_SEEDS,
        keys: LIVE_KEYS,
        made_seeds: no_made_seeds,
        run: run_meraki_scanning,
    },
    Target {
        name: "cmx-maps",
        about: "CMX map configuration (wire::maps::parse_catalog)",
        syntax: Syntax::Json,
        seeds: LOCATION_SEEDS,
        keys: LOCATION_KEYS,
        made_seeds: no_made_seeds,
        run: run_maps,
    },
    Target {
        name: "cmx-floor-info",
        about: "CMX floor information (wire::maps::parse_floor_info)",
        syntax: Syntax::Json,
        seeds: LOCATION_SEEDS,
        keys: LOCATION_KEYS,
        made_seeds: no_made_seeds,
        run: run_floor_info,
    },
    Target {
        name: "webex-event",
        about: "Webex webhook body (types::WebhookEvent, types::Webhook)",
        syntax: Syntax::Json,
        seeds: WEBEX_SEEDS,
        keys: WEBEX_KEYS,
        made_seeds: no_made_seeds,
        run: run_webex_event,
    },
    Target {
        name: "webex-message",
        about: "Webex message (types::Message)",
        syntax: Syntax::Json,
        seeds: WEBEX_SEEDS,
        keys: WEBEX_KEYS,
        made_seeds: no_made_seeds,
        run: run_webex_message,
    },
    Target {
        name: "webex-rest",
        about: "Webex rooms, people and webhooks (types::Room, Person, Webhook)",
        syntax: Syntax::Json,
        seeds: WEBEX_SEEDS,
        keys: WEBEX_KEYS,
        made_seeds: no_made_seeds,
        run: run_webex_rest,
    },
    Target {
        name: "webex-envelope",
        about: "Webex websocket frames (activity::parse_envelope)",
        syntax: Syntax::Json,
        seeds: WEBEX_SEEDS,
        keys: WEBEX_KEYS,
        made_seeds: no_made_seeds,
        run: run_webex_envelope,
    },
    Target {
        name: "config",
        about: "the configuration file (whereis::config::Config::parse)",
        syntax: Syntax::Toml,
        seeds: CONFIG_SEEDS,
        keys: CONFIG_KEYS,
        made_seeds: no_made_seeds,
        run: run_config,
    },
    Target {
        name: "multipart",
        about: "multipart/form-data bodies of POST /messages (whereis_sim::webex::read_parts); first line: the Content-Type",
        syntax: Syntax::Bytes,
        seeds: MULTIPART_SEEDS,
        keys: MULTIPART_KEYS,
        made_seeds: no_made_seeds,
        run: run_multipart,
    },
    Target {
        name: "floor-image",
        about: "floor images, PNG and JPEG (whereis_floormap::decode::decode, with limits)",
        syntax: Syntax::Bytes,
        seeds: &[],
        keys: IMAGE_KEYS,
        made_seeds: image_seeds,
        run: run_floor_image,
    },
];

/// The target with this name.
pub fn find(name: &str) -> Option<&'static Target> {
    TARGETS.iter().find(|target| target.name == name)
}

fn outcome(parsed: &Parsed) -> Outcome {
    if parsed.devices.is_empty() {
        Outcome::Empty
    } else {
        Outcome::Accepted
    }
}

/// What every location parser promises about the devices it returns.
fn check_parsed(result: Result<Parsed, ParseError>) -> Outcome {
    let parsed = match result {
        Ok(parsed) => parsed,
        Err(err) => {
            let _ = err.to_string();
            return Outcome::Refused;
        }
    };
    for device in &parsed.devices {
        assert_eq!(
            normalize_mac(&device.mac).as_deref(),
            Some(device.mac.as_str()),
            "device MAC is not normalised"
        );
        assert!(
            device.x.is_finite() && device.y.is_finite(),
            "coordinates not finite"
        );
        assert!(
            device.confidence.is_none_or(f64::is_finite),
            "confidence not finite"
        );
        if let Some(plan) = &device.floor_plan {
            check_plan(plan);
            assert_eq!(device.floor_width, Some(plan.width));
            assert_eq!(device.floor_length, Some(plan.length));
        }
        // What `find --json` and the API print.
        assert!(
            serde_json::to_string(device).is_ok(),
            "device not printable"
        );
    }
    for (i, rejected) in parsed.rejected.iter().enumerate() {
        assert!(rejected.index >= 1, "record index from 1");
        assert!(i == 0 || rejected.index > parsed.rejected[i - 1].index);
        let _ = rejected.to_string();
    }
    outcome(&parsed)
}

fn check_plan(plan: &FloorPlan) {
    assert!(
        plan.width.is_finite() && plan.width > 0.0,
        "floor width {}",
        plan.width
    );
    assert!(
        plan.length.is_finite() && plan.length > 0.0,
        "floor length {}",
        plan.length
    );
    assert!(plan.offset_x.is_finite() && plan.offset_y.is_finite());
    assert!(plan
        .image_name
        .as_deref()
        .is_none_or(|name| !name.trim().is_empty()));
}

fn check_floor(floor: &CatalogFloor) {
    check_plan(&floor.plan);
    assert!(!floor.hierarchy.is_empty(), "floor without a hierarchy");
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 1, 10, 0, 0)
        .single()
        .unwrap_or_default()
}

fn run_cmx_v2(input: &[u8]) -> Outcome {
    check_parsed(cmx_v2::parse(input))
}

fn run_cmx_v3(input: &[u8]) -> Outcome {
    check_parsed(cmx_v3::parse(input, now()))
}

fn run_mse(input: &[u8]) -> Outcome {
    check_parsed(mse::parse(input))
}

fn run_spaces_record(input: &[u8]) -> Outcome {
    use whereis_location::wire::spaces::{parse_record, FirehoseEvent};
    match parse_record(input) {
        Ok(record) => {
            match record.event {
                FirehoseEvent::Location(update) => {
                    assert_eq!(
                        normalize_mac(&update.mac).as_deref(),
                        Some(update.mac.as_str())
                    );
                    for value in [update.x, update.y, update.confidence]
                        .into_iter()
                        .flatten()
                    {
                        assert!(value.is_finite(), "a position is finite or absent");
                    }
                }
                FirehoseEvent::Exit { mac } => {
                    assert_eq!(normalize_mac(&mac).as_deref(), Some(mac.as_str()));
                }
                FirehoseEvent::KeepAlive | FirehoseEvent::Other(_) => {}
            }
            Outcome::Accepted
        }
        Err(err) => {
            let _ = err.to_string();
            Outcome::Refused
        }
    }
}

fn run_meraki_scanning(input: &[u8]) -> Outcome {
    match whereis_location::wire::meraki::parse_scanning(input) {
        Ok(post) if post.observations.is_empty() => Outcome::Empty,
        Ok(post) => {
            for observation in &post.observations {
                assert_eq!(
                    normalize_mac(&observation.mac).as_deref(),
                    Some(observation.mac.as_str())
                );
                if let Some(location) = &observation.location {
                    for value in [location.x, location.y, location.variance]
                        .into_iter()
                        .flatten()
                    {
                        assert!(value.is_finite(), "a position is finite or absent");
                    }
                }
            }
            Outcome::Accepted
        }
        Err(err) => {
            let _ = err.to_string();
            Outcome::Refused
        }
    }
}

fn run_maps(input: &[u8]) -> Outcome {
    match maps::parse_catalog(input) {
        Ok(floors) if floors.is_empty() => Outcome::Empty,
        Ok(floors) => {
            floors.iter().for_each(check_floor);
            Outcome::Accepted
        }
        Err(err) => {
            let _ = err.to_string();
            Outcome::Refused
        }
    }
}

fn run_floor_info(input: &[u8]) -> Outcome {
    // The hierarchy comes from a device record, so it is the server's text too.
    let hierarchy = match input.len() % 3 {
        0 => "HQ>Building 5>Level 3",
        1 => "",
        _ => ">>",
    };
    match maps::parse_floor_info(input, hierarchy) {
        Ok(Some(floor)) => {
            check_floor(&floor);
            Outcome::Accepted
        }
        Ok(None) => Outcome::Empty,
        Err(err) => {
            let _ = err.to_string();
            Outcome::Refused
        }
    }
}

/// A value that parsed, written back and parsed again, is the same value.
fn round_trip<T>(value: &T)
where
    T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let written = serde_json::to_vec(value);
    assert!(written.is_ok(), "cannot write back {value:?}");
    let again: Result<T, _> = serde_json::from_slice(&written.unwrap_or_default());
    assert_eq!(again.ok().as_ref(), Some(value), "round trip changed it");
}

fn run_webex_event(input: &[u8]) -> Outcome {
    let _ = serde_json::from_slice::<Webhook>(input).map(|hook| format!("{hook:?}"));
    match serde_json::from_slice::<WebhookEvent>(input) {
        Ok(event) => {
            round_trip(&event);
            Outcome::Accepted
        }
        Err(_) => Outcome::Refused,
    }
}

fn run_webex_message(input: &[u8]) -> Outcome {
    match serde_json::from_slice::<Message>(input) {
        Ok(message) => {
            let _ = message.created_at();
            round_trip(&message);
            Outcome::Accepted
        }
        Err(_) => Outcome::Refused,
    }
}

fn run_webex_rest(input: &[u8]) -> Outcome {
    let room = serde_json::from_slice::<Room>(input);
    let person = serde_json::from_slice::<Person>(input);
    let webhook = serde_json::from_slice::<Webhook>(input);
    if let Ok(room) = &room {
        // Times are written back with millisecond precision, so compare at that precision.
        let again: Result<Room, _> =
            serde_json::from_slice(&serde_json::to_vec(room).unwrap_or_default());
        let millis = |room: &Room| {
            (
                room.last_activity.map(|t| t.timestamp_millis()),
                room.created.map(|t| t.timestamp_millis()),
            )
        };
        assert_eq!(again.as_ref().ok().map(millis), Some(millis(room)));
    }
    if let Ok(person) = &person {
        round_trip(person);
    }
    if room.is_ok() || person.is_ok() || webhook.is_ok() {
        Outcome::Accepted
    } else {
        Outcome::Refused
    }
}

fn run_webex_envelope(input: &[u8]) -> Outcome {
    match parse_envelope(input) {
        Ok(envelope) => {
            if let Some(activity) = &envelope.activity {
                assert!(!activity.id.is_empty() && !activity.verb.is_empty());
                let _ = activity.is_one_on_one();
                let _ = whereis_webex::fallback_message_id(&activity.id);
            }
            if envelope.post().is_some() {
                Outcome::Accepted
            } else {
                Outcome::Empty
            }
        }
        Err(err) => {
            let _ = err.to_string();
            Outcome::Refused
        }
    }
}

/// Secret values the configuration target's environment and files hold: none may ever be printed.
const ENV_SECRET: &str = "Zq7-env-secret";
const FILE_SECRET: &str = "Fs9-file-secret";
const STORE_SECRET: &str = "Qm4-store-password";

/// The directory the configuration's relative paths resolve against: a secret file, an empty file,
/// a CA file, a CSV and a subdirectory (reading it as a file fails).
fn config_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("whereis-fuzz-config-{}", std::process::id()));
        let files = [
            ("secret", format!("{FILE_SECRET}\n")),
            ("empty", String::new()),
            (
                "ca.pem",
                "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n".into(),
            ),
            ("people.csv", "jdoe,Jane Doe,jane.doe@example.com\n".into()),
        ];
        let made = std::fs::create_dir_all(dir.join("subdir")).is_ok()
            && files
                .iter()
                .all(|(name, text)| std::fs::write(dir.join(name), text).is_ok());
        assert!(made, "cannot prepare {}", dir.display());
        dir
    })
}

/// Removes the configuration target's directory (when it was made).
pub fn clean_up() {
    let dir = std::env::temp_dir().join(format!("whereis-fuzz-config-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(dir);
}

fn config_env(name: &str) -> Option<String> {
    match name {
        "UNSET_VARIABLE" => None,
        "WHEREIS_STORE_URL" => Some(format!(
            "postgres://whereis:{STORE_SECRET}@127.0.0.1/whereis"
        )),
        "HTTPS_PROXY" | "https_proxy" => Some("http://127.0.0.1:3128".into()),
        "NO_PROXY" => Some("localhost,10.0.0.0/8".into()),
        "EMPTY" => Some(String::new()),
        _ if name.chars().all(|c| c.is_ascii_uppercase() || c == '_') => {
            Some(ENV_SECRET.to_owned())
        }
        _ => None,
    }
}

fn run_config(input: &[u8]) -> Outcome {
    // `Config::load` reads the file as UTF-8 text; other bytes never reach the parser.
    let Ok(text) = std::str::from_utf8(input) else {
        return Outcome::Refused;
    };
    let dir = config_dir();
    let result = whereis::config::Config::parse(text, &dir.join("whereis.toml"), dir, &config_env);
    let shown = match &result {
        Ok(config) => format!("{config:?}"),
        Err(err) => format!("{err} {err:?}"),
    };
    for secret in [ENV_SECRET, FILE_SECRET, STORE_SECRET] {
        assert!(
            text.contains(secret) || !shown.contains(secret),
            "a secret value was printed: {shown}"
        );
    }
    if result.is_ok() {
        Outcome::Accepted
    } else {
        Outcome::Refused
    }
}

fn run_multipart(input: &[u8]) -> Outcome {
    let (head, body) = match input.iter().position(|b| *b == b'\n') {
        Some(end) => (&input[..end], &input[end + 1..]),
        None => (input, &[][..]),
    };
    let content_type = String::from_utf8_lossy(head);
    // The body is all in memory: the stream never waits, so no runtime is needed.
    let read = futures::executor::block_on(read_parts(&content_type, body.to_vec()));
    match read {
        Ok(parts) => {
            assert!(parts.len() <= 100, "{} parts", parts.len());
            let data: usize = parts.iter().map(|part| part.data.len()).sum();
            assert!(data <= body.len(), "parts hold more bytes than the body");
            if parts.is_empty() {
                Outcome::Empty
            } else {
                Outcome::Accepted
            }
        }
        Err(err) => {
            let _ = format!("{err:?}");
            Outcome::Refused
        }
    }
}

/// Limits of the image target: the shape of the product's, smaller, so that a header announcing
/// the largest allowed image costs milliseconds, not seconds.
const IMAGE_LIMITS: DecodeLimits = DecodeLimits {
    max_width: 2048,
    max_height: 2048,
    max_alloc: 32 << 20,
};

/// Display width the image target scales to.
const IMAGE_DISPLAY_WIDTH: u32 = 160;

/// The message of the error `decode` returns when a decoder panicked inside its guard.
const DECODER_PANIC: &str = "the decoder failed on this image";

static CONTAINED_PANICS: AtomicU64 = AtomicU64::new(0);

/// Panics of the third-party decoders that `decode`'s own guard turned into errors (not counted as
/// panics of the run: the product survives them).
pub fn contained_decoder_panics() -> u64 {
    CONTAINED_PANICS.load(Ordering::Relaxed)
}

fn run_floor_image(input: &[u8]) -> Outcome {
    // Most byte mutations break a PNG chunk's CRC, which the decoder checks first; for every other
    // input the CRCs are made right again, so that mutations reach the pixel decoding.
    let repaired;
    let input = if input.len().is_multiple_of(2) && input.starts_with(PNG_SIGNATURE) {
        repaired = with_png_crcs(input);
        &repaired[..]
    } else {
        input
    };
    match decode(input, IMAGE_DISPLAY_WIDTH, &IMAGE_LIMITS) {
        Ok(image) => {
            let (width, height) = (image.width(), image.height());
            assert!(width > 0 && height > 0, "empty image {width}×{height}");
            assert!(width <= IMAGE_DISPLAY_WIDTH, "not scaled down: {width}");
            assert!(image.source_width() <= IMAGE_LIMITS.max_width);
            assert!(image.source_height() <= IMAGE_LIMITS.max_height);
            assert!(height <= image.source_height());
            assert_eq!(image.pixels().len(), width as usize * height as usize * 3);
            Outcome::Accepted
        }
        Err(DecodeError::Corrupt(message)) if message.contains(DECODER_PANIC) => {
            CONTAINED_PANICS.fetch_add(1, Ordering::Relaxed);
            Outcome::Refused
        }
        Err(err) => {
            let _ = err.to_string();
            Outcome::Refused
        }
    }
}

const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";

/// `input` with the CRC of every whole chunk recomputed.
fn with_png_crcs(input: &[u8]) -> Vec<u8> {
    let mut out = input.to_vec();
    let mut at = PNG_SIGNATURE.len();
    while let Some(length) = out.get(at..at + 4) {
        let length = u32::from_be_bytes([length[0], length[1], length[2], length[3]]) as usize;
        let body = at + 4..at + 8 + length;
        let crc_at = body.end;
        if crc_at + 4 > out.len() {
            break;
        }
        let crc = crc32fast::hash(&out[body]);
        out[crc_at..crc_at + 4].copy_from_slice(&crc.to_be_bytes());
        at = crc_at + 4;
    }
    out
}

/// A small floor plan: white, walls in black, a grey room, 48×32 px, as `channels` samples.
fn plan_pixels(channels: usize, alpha: bool) -> Vec<u8> {
    let (width, height) = (48usize, 32usize);
    let mut pixels = Vec::with_capacity(width * height * channels);
    for y in 0..height {
        for x in 0..width {
            let wall = x == 0 || y == 0 || x == width - 1 || y == height - 1 || x == 20;
            let room = (24..40).contains(&x) && (8..24).contains(&y);
            let level = if wall {
                0
            } else if room {
                170
            } else {
                255
            };
            for channel in 0..channels {
                let last = channel == channels - 1;
                pixels.push(if alpha && last {
                    if x < 4 {
                        0
                    } else {
                        255
                    }
                } else {
                    level
                });
            }
        }
    }
    pixels
}

fn encode_png(
    color: png::ColorType,
    depth: png::BitDepth,
    data: &[u8],
    palette: Option<&[u8]>,
) -> Vec<u8> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, 48, 32);
    encoder.set_color(color);
    encoder.set_depth(depth);
    if let Some(palette) = palette {
        encoder.set_palette(palette.to_vec());
        encoder.set_trns(vec![0u8, 255, 255]);
    }
    let written = encoder
        .write_header()
        .and_then(|mut writer| writer.write_image_data(data));
    assert!(written.is_ok(), "cannot encode a PNG seed: {written:?}");
    out
}

fn encode_jpeg(data: &[u8], color: image::ExtendedColorType) -> Vec<u8> {
    let mut out = Vec::new();
    let written = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 80)
        .encode(data, 48, 32, color);
    assert!(written.is_ok(), "cannot encode a JPEG seed: {written:?}");
    out
}

/// PNGs of every colour type the decoder handles, and baseline JPEGs in colour and grey.
fn image_seeds() -> Vec<(&'static str, Vec<u8>)> {
    use png::{BitDepth, ColorType};
    let gray = plan_pixels(1, false);
    let indexed: Vec<u8> = gray
        .iter()
        .map(|level| match level {
            0 => 1,
            255 => 2,
            _ => 0,
        })
        .collect();
    let rgb16: Vec<u8> = plan_pixels(3, false)
        .iter()
        .flat_map(|sample| [*sample, *sample])
        .collect();
    let gray1: Vec<u8> = gray
        .chunks(8)
        .map(|byte| {
            byte.iter()
                .fold(0u8, |bits, level| (bits << 1) | u8::from(*level > 127))
        })
        .collect();
    vec![
        (
            "plan-rgb.png",
            encode_png(
                ColorType::Rgb,
                BitDepth::Eight,
                &plan_pixels(3, false),
                None,
            ),
        ),
        (
            "plan-rgba.png",
            encode_png(
                ColorType::Rgba,
                BitDepth::Eight,
                &plan_pixels(4, true),
                None,
            ),
        ),
        (
            "plan-gray.png",
            encode_png(ColorType::Grayscale, BitDepth::Eight, &gray, None),
        ),
        (
            "plan-gray-alpha.png",
            encode_png(
                ColorType::GrayscaleAlpha,
                BitDepth::Eight,
                &plan_pixels(2, true),
                None,
            ),
        ),
        (
            "plan-1bit.png",
            encode_png(ColorType::Grayscale, BitDepth::One, &gray1, None),
        ),
        (
            "plan-rgb16.png",
            encode_png(ColorType::Rgb, BitDepth::Sixteen, &rgb16, None),
        ),
        (
            "plan-indexed.png",
            encode_png(
                ColorType::Indexed,
                BitDepth::Eight,
                &indexed,
                Some(&[170, 170, 170, 0, 0, 0, 255, 255, 255]),
            ),
        ),
        (
            "plan-rgb.jpg",
            encode_jpeg(&plan_pixels(3, false), image::ExtendedColorType::Rgb8),
        ),
        (
            "plan-gray.jpg",
            encode_jpeg(&gray, image::ExtendedColorType::L8),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_seed_is_read_by_its_own_parser() {
        // Each target has at least one seed it accepts: mutations start from real answers.
        for target in TARGETS {
            let accepted = target
                .all_seeds()
                .iter()
                .filter(|(_, bytes)| (target.run)(bytes) == Outcome::Accepted)
                .count();
            assert!(accepted > 0, "{}: no seed accepted", target.name);
        }
        // A configuration whose secrets come from the environment and a file is accepted, and the
        // check that no secret is printed passes for it.
        let text = "[[sources]]\nname = \"a\"\nkind = \"cmx\"\nurl = \"https://x\"\nusername = \"u\"\npassword_env = \"CMX\"\nv3_username = \"v3\"\nv3_password_file = \"secret\"\n";
        assert_eq!(run_config(text.as_bytes()), Outcome::Accepted);
        clean_up();
    }

    #[test]
    fn every_image_seed_decodes_and_crcs_are_repaired() {
        for (name, bytes) in image_seeds() {
            assert!(
                decode(&bytes, IMAGE_DISPLAY_WIDTH, &IMAGE_LIMITS).is_ok(),
                "{name}"
            );
            if bytes.starts_with(PNG_SIGNATURE) {
                assert_eq!(with_png_crcs(&bytes), bytes, "{name}: CRCs already right");
                let mut broken = bytes.clone();
                let last = broken.len() - 1;
                broken[last] ^= 0xff;
                assert_eq!(with_png_crcs(&broken), bytes, "{name}: IEND CRC repaired");
            }
        }
        assert_eq!(
            with_png_crcs(b"\x89PNG\r\n\x1a\n\xff\xff\xff\xff"),
            b"\x89PNG\r\n\x1a\n\xff\xff\xff\xff"
        );
    }

    #[test]
    fn multipart_inputs_carry_their_content_type_on_the_first_line() {
        let input = b"multipart/form-data; boundary=B\n--B\r\nContent-Disposition: form-data; name=\"t\"\r\n\r\nx\r\n--B--\r\n";
        assert_eq!(run_multipart(input), Outcome::Accepted);
        assert_eq!(run_multipart(b"text/plain\n--B--"), Outcome::Refused);
        assert_eq!(run_multipart(b""), Outcome::Refused);
    }

    #[test]
    fn names_are_unique() {
        for target in TARGETS {
            assert!(std::ptr::eq(find(target.name).unwrap(), target));
        }
    }
}
