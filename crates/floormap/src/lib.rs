//! whereis-floormap: floor plan images and the marker that shows where a device is.
//!
//! - [`decode`]: PNG/JPEG bytes → a display-sized image, with decompression-bomb limits.
//! - [`render`]: floor coordinates → pixels, the marker, PNG encoding (pure, no I/O).
//! - [`cache`]: [`FloorMaps`], the two-level cache (memory by bytes, disk with checksums) with one fetch
//!   per image however many ask at once; decoding and drawing run on blocking threads.

pub mod cache;
pub mod decode;
pub mod render;

pub use cache::{
    placement, DeviceMap, FloorMaps, MapError, MapSettings, MAP_CACHE_BYTES, MAP_CACHE_HITS_TOTAL,
    MAP_CACHE_MISSES_TOTAL, MAP_DECODE_DURATION_SECONDS, MAP_RENDER_DURATION_SECONDS,
};
pub use decode::{DecodeLimits, FloorImage};
pub use render::{render_plan, MarkerPosition, Placement, Rendered, MARKER_COLOR};
