//! whereis-location: finds the devices of an 802.1X username on Cisco wireless location servers.
//!
//! - [`model`]: the one domain shape every protocol maps into ([`Device`], [`FloorPlan`], [`Unit`]).
//! - [`wire`]: the wire formats (CMX v3, CMX v2, MSE, CMX map configuration) and their parsers, which
//!   never panic: bad bodies are typed errors, bad records are reported one by one.
//! - [`source`]: the [`LocationSource`] trait and [`HttpSource`], the HTTP(S) client of one server
//!   (v3 → v2 fallback remembered per server, floor resolution for v3, one connection pool each).
//! - [`locator`]: the [`Locator`], which asks every source for every username variant at once under one
//!   deadline, then dedupes by MAC and orders devices most recently seen first; and lists who is in
//!   a building ([`Locator::list_building`]) from every source's client list the same way.
//!
//! Metrics (recorded through the `metrics` facade; the binary installs the exporter):
//! [`source::REQUEST_DURATION_METRIC`], [`source::ERRORS_METRIC`] and
//! [`locator::DEADLINE_HITS_METRIC`].
//!
//! Invariants: every request has a timeout and every lookup a deadline; nothing received from a server
//! is unwrapped; passwords live in [`Secret`], which never prints.

pub mod live;
pub mod locator;
pub mod model;
pub mod source;
pub mod wire;

pub use live::LiveSettings;
pub use locator::{
    merge, InvalidUsername, Locator, LocatorSettings, Lookup, SourceFailure, Username,
    DEADLINE_HITS_METRIC,
};
pub use model::{normalize_mac, Api, Device, FloorPlan, Hierarchy, Unit};
pub use source::{
    Credentials, HttpSource, ListPaging, LocationSource, Probe, Secret, SourceAnswer, SourceError,
    SourceKind, SourceSettings, ERRORS_METRIC, LIST_MAX_PAGES, LIST_PAGE_SIZE,
    REQUEST_DURATION_METRIC,
};
