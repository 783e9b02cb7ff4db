//! Floor images, fetched once per (source, image) and kept in two levels: decoded and display-sized in
//! memory (byte budget), and on disk (checksummed, written atomically, survives restarts). Concurrent
//! requests for the same image share one fetch.
//!
//! On disk each image has two files: the original bytes as fetched (`<hash>.img`) and its display-sized
//! RGB pixels (`<hash>.rgb`), so a new process draws without decoding the plan again. The display copy
//! names the original it came from (length and CRC-32) and the display width it was scaled to; it is
//! used only when the original is present, intact and the same, and the width still matches. Otherwise
//! it is rebuilt from the original (or deleted with it), so it can never outlive or contradict it.

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use whereis_location::{Device, LocationSource, SourceError};

use crate::decode::{decode, DecodeLimits, FloorImage};
use crate::render::{place, render, render_crop, render_plan, MarkerPosition, Placement, Rendered};

/// Counter of floor images found in a cache, by `level` (`memory`, `disk`).
pub const MAP_CACHE_HITS_TOTAL: &str = "whereis_map_cache_hits_total";
/// Counter of floor images that had to be fetched from their location server.
pub const MAP_CACHE_MISSES_TOTAL: &str = "whereis_map_cache_misses_total";
/// Gauge of the bytes the memory cache holds.
pub const MAP_CACHE_BYTES: &str = "whereis_map_cache_bytes";
/// Histogram of the time to decode and scale one original floor image, in seconds.
pub const MAP_DECODE_DURATION_SECONDS: &str = "whereis_map_decode_duration_seconds";
/// Histogram of the time to draw one map (full and crop) and encode it, in seconds.
pub const MAP_RENDER_DURATION_SECONDS: &str = "whereis_map_render_duration_seconds";

/// Why a device's map could not be drawn. The lookup itself still answers.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MapError {
    /// The server gave no floor size or image name for the device.
    #[error("the location server gave no floor plan for this device")]
    NoFloorPlan,
    /// The image could not be downloaded.
    #[error("floor image unavailable: {0}")]
    Fetch(SourceError),
    /// The bytes are not a usable image.
    #[error("floor image unreadable: {0}")]
    Decode(String),
    /// Drawing or encoding failed.
    #[error("cannot draw the map: {0}")]
    Render(String),
}

/// How maps are drawn and cached.
#[derive(Debug, Clone)]
pub struct MapSettings {
    /// Width of the drawn map; smaller images are never upscaled.
    pub display_width: u32,
    /// Side of the zoomed crop around the marker (for chat), if wanted.
    pub crop_size: Option<u32>,
    /// Byte budget of decoded images in memory.
    pub memory_bytes: u64,
    /// Directory of the disk cache (`None`: memory only).
    pub cache_dir: Option<PathBuf>,
    /// Decompression-bomb limits.
    pub limits: DecodeLimits,
}

impl Default for MapSettings {
    fn default() -> MapSettings {
        MapSettings {
            display_width: 1600,
            crop_size: None,
            memory_bytes: 256 * 1024 * 1024,
            cache_dir: None,
            limits: DecodeLimits::default(),
        }
    }
}

/// A drawn map and where its marker is.
#[derive(Debug, Clone)]
pub struct DeviceMap {
    /// The whole floor with the marker.
    pub full: Rendered,
    /// The zoomed crop, when configured.
    pub crop: Option<Rendered>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct ImageKey {
    source: String,
    image: String,
}

/// The floor image cache and renderer.
pub struct FloorMaps {
    settings: MapSettings,
    memory: moka::future::Cache<ImageKey, Arc<FloorImage>>,
    /// Images that just failed: not asked for again for a while, so a missing image on a busy
    /// server costs one request a minute, not one per lookup.
    failures: moka::future::Cache<ImageKey, MapError>,
}

/// How long a failed image download or decode is remembered.
const FAILURE_MEMORY: Duration = Duration::from_secs(60);

/// Disk cache files start with this, then the payload length (u64 LE) and its CRC-32 (u32 LE).
const DISK_MAGIC: &[u8; 8] = b"WIMG\x01\0\0\0";
const DISK_HEADER: usize = 8 + 8 + 4;

/// Display copies start with this, then the CRC-32 (u32 LE) of everything after it, then the fields
/// of [`DisplayHeader`] and the RGB8 pixels.
const DISPLAY_MAGIC: &[u8; 8] = b"WRGB\x01\0\0\0";
/// Magic, CRC, then original length (u64), original CRC, max width, width, height, source width and
/// source height (u32 each).
const DISPLAY_HEADER: usize = 8 + 4 + 8 + 4 * 6;

impl FloorMaps {
    /// A cache with `settings`; creates the disk cache directory if needed. When it cannot be created
    /// the cache works in memory only, and says so in a warning.
    pub fn new(mut settings: MapSettings) -> FloorMaps {
        if let Some(dir) = &settings.cache_dir {
            if let Err(err) = std::fs::create_dir_all(dir) {
                tracing::warn!(
                    dir = %dir.display(),
                    error = %err,
                    "cannot create the floor image disk cache; caching in memory only"
                );
                settings.cache_dir = None;
            }
        }
        let memory = moka::future::Cache::builder()
            .weigher(|_key: &ImageKey, image: &Arc<FloorImage>| {
                u32::try_from(image.byte_size()).unwrap_or(u32::MAX)
            })
            .max_capacity(settings.memory_bytes)
            .build();
        let failures = moka::future::Cache::builder()
            .max_capacity(10_000)
            .time_to_live(FAILURE_MEMORY)
            .build();
        FloorMaps {
            settings,
            memory,
            failures,
        }
    }

    /// The settings in force.
    pub fn settings(&self) -> &MapSettings {
        &self.settings
    }

    /// The display-sized floor image of `device`, from memory, disk, or `source` (fetched once however
    /// many ask at the same time).
    pub async fn floor_image(
        &self,
        source: &dyn LocationSource,
        image_name: &str,
    ) -> Result<Arc<FloorImage>, MapError> {
        let key = ImageKey {
            source: source.name().to_owned(),
            image: image_name.to_owned(),
        };
        if let Some(error) = self.failures.get(&key).await {
            return Err(error);
        }
        let loaded = self
            .memory
            .entry(key.clone())
            .or_try_insert_with(self.load(source, key.clone()))
            .await;
        match loaded {
            Ok(entry) => {
                if entry.is_fresh() {
                    // Size-based eviction happens only on insertion, so the gauge is right until the next one.
                    self.memory.run_pending_tasks().await;
                    metrics::gauge!(MAP_CACHE_BYTES).set(self.memory.weighted_size() as f64);
                } else {
                    metrics::counter!(MAP_CACHE_HITS_TOTAL, "level" => "memory").increment(1);
                }
                Ok(entry.into_value())
            }
            Err(error) => {
                let error = (*error).clone();
                self.failures.insert(key, error.clone()).await;
                Err(error)
            }
        }
    }

    /// Where the marker of `device` goes on its floor image (fetching the image if needed).
    pub async fn locate_marker(
        &self,
        source: &dyn LocationSource,
        device: &Device,
    ) -> Result<(Arc<FloorImage>, Placement, MarkerPosition), MapError> {
        let (image_name, placement) = placement(device)?;
        let image = self.floor_image(source, &image_name).await?;
        let marker = place(&placement, image.width(), image.height());
        Ok((image, placement, marker))
    }

    /// Draws `device` on its floor (and the crop, when configured).
    pub async fn draw(
        &self,
        source: &dyn LocationSource,
        device: &Device,
    ) -> Result<DeviceMap, MapError> {
        let (image, placement, _) = self.locate_marker(source, device).await?;
        let crop_size = self.settings.crop_size;
        let (map, took) = tokio::task::spawn_blocking(move || {
            let started = Instant::now();
            let full = render(&image, &placement).map_err(|e| MapError::Render(e.to_string()))?;
            let crop = crop_size
                .map(|size| render_crop(&image, &placement, size))
                .transpose()
                .map_err(|e| MapError::Render(e.to_string()))?;
            Ok::<_, MapError>((DeviceMap { full, crop }, started.elapsed()))
        })
        .await
        .map_err(|e| MapError::Render(format!("drawing task failed: {e}")))??;
        // Recorded here rather than on the blocking thread: recorders may be scoped to the caller's thread.
        metrics::histogram!(MAP_RENDER_DURATION_SECONDS).record(took.as_secs_f64());
        Ok(map)
    }

    /// The floor of `device` without a marker (for a person shown only to the floor): no crop,
    /// since a crop would be centred on the position.
    pub async fn draw_plan(
        &self,
        source: &dyn LocationSource,
        device: &Device,
    ) -> Result<DeviceMap, MapError> {
        let (image_name, _) = placement(device)?;
        let image = self.floor_image(source, &image_name).await?;
        let full = tokio::task::spawn_blocking(move || render_plan(&image))
            .await
            .map_err(|e| MapError::Render(format!("drawing task failed: {e}")))?
            .map_err(|e| MapError::Render(e.to_string()))?;
        Ok(DeviceMap { full, crop: None })
    }

    async fn load(
        &self,
        source: &dyn LocationSource,
        key: ImageKey,
    ) -> Result<Arc<FloorImage>, MapError> {
        let files = self
            .settings
            .cache_dir
            .as_ref()
            .map(|dir| DiskFiles::new(dir, &key));
        if let Some(files) = &files {
            if let Some(image) = self.load_from_disk(files).await {
                metrics::counter!(MAP_CACHE_HITS_TOTAL, "level" => "disk").increment(1);
                return Ok(image);
            }
        }
        metrics::counter!(MAP_CACHE_MISSES_TOTAL).increment(1);
        let bytes = source
            .floor_image(&key.image)
            .await
            .map_err(MapError::Fetch)?;
        let bytes = Arc::new(bytes);
        let image = self.decode(Arc::clone(&bytes)).await?;
        tracing::debug!(source = %key.source, image = %key.image, bytes = bytes.len(), "floor image fetched");
        if let Some(files) = files {
            let display = Arc::clone(&image);
            let max_width = self.settings.display_width;
            let written = tokio::task::spawn_blocking(move || {
                write_atomically(&files.original, &[DISK_MAGIC, &header(&bytes), &bytes])?;
                let identity = Identity::of(&bytes);
                write_display(&files.display, identity, max_width, &display)
            })
            .await;
            match written {
                Ok(Ok(())) => {}
                Ok(Err(err)) => {
                    tracing::warn!(error = %err, "cannot write the floor image disk cache")
                }
                Err(err) => tracing::warn!(error = %err, "disk cache task failed"),
            }
        }
        Ok(image)
    }

    /// The display copy when it is valid; otherwise the original decoded (and the display copy
    /// rebuilt from it). A corrupt or undecodable original is deleted with its display copy.
    async fn load_from_disk(&self, files: &DiskFiles) -> Option<Arc<FloorImage>> {
        let max_width = self.settings.display_width;
        let limits = self.settings.limits;
        let read_files = files.clone();
        let found = tokio::task::spawn_blocking(move || read_disk(&read_files, max_width, &limits))
            .await
            .ok()?;
        let (bytes, identity) = match found {
            DiskCopy::Missing => return None,
            DiskCopy::Corrupt(reason) => {
                tracing::warn!(path = %files.original.display(), reason, "corrupt floor image in the disk cache: fetching it again");
                files.remove().await;
                return None;
            }
            DiskCopy::Display(image) => return Some(Arc::new(image)),
            DiskCopy::Original {
                bytes,
                identity,
                display_problem,
            } => {
                if let Some(reason) = display_problem {
                    tracing::info!(path = %files.display.display(), reason, "unusable display copy in the disk cache: rebuilding it");
                }
                (bytes, identity)
            }
        };
        match self.decode(Arc::new(bytes)).await {
            Ok(image) => {
                let display = Arc::clone(&image);
                let path = files.display.clone();
                let written = tokio::task::spawn_blocking(move || {
                    let written = write_display(&path, identity, max_width, &display);
                    if written.is_err() {
                        // A stale copy left behind would only be rejected again on every start.
                        let _ = std::fs::remove_file(&path);
                    }
                    written
                })
                .await;
                if let Ok(Err(err)) = written {
                    tracing::warn!(error = %err, "cannot write the display copy to the disk cache");
                }
                Some(image)
            }
            Err(err) => {
                tracing::warn!(path = %files.original.display(), error = %err, "undecodable floor image in the disk cache: fetching it again");
                files.remove().await;
                None
            }
        }
    }

    async fn decode(&self, bytes: Arc<Vec<u8>>) -> Result<Arc<FloorImage>, MapError> {
        let width = self.settings.display_width;
        let limits = self.settings.limits;
        let (decoded, took) = tokio::task::spawn_blocking(move || {
            let started = Instant::now();
            let decoded = decode(&bytes, width, &limits);
            (decoded, started.elapsed())
        })
        .await
        .map_err(|e| MapError::Decode(format!("decoding task failed: {e}")))?;
        metrics::histogram!(MAP_DECODE_DURATION_SECONDS).record(took.as_secs_f64());
        decoded
            .map(Arc::new)
            .map_err(|e| MapError::Decode(e.to_string()))
    }
}

/// The image name and the placement of a device, when its floor is known well enough to draw.
pub fn placement(device: &Device) -> Result<(String, Placement), MapError> {
    let plan = device.floor_plan.as_ref().ok_or(MapError::NoFloorPlan)?;
    let image = plan.image_name.clone().ok_or(MapError::NoFloorPlan)?;
    Ok((
        image,
        Placement {
            x: device.x,
            y: device.y,
            floor_width: plan.width,
            floor_length: plan.length,
            confidence: device.confidence,
        },
    ))
}

/// The two disk cache files of one image.
#[derive(Debug, Clone)]
struct DiskFiles {
    /// The bytes as fetched.
    original: PathBuf,
    /// The display-sized pixels decoded from them.
    display: PathBuf,
}

impl DiskFiles {
    fn new(dir: &Path, key: &ImageKey) -> DiskFiles {
        // A hash, not the names: image names come from the server and must not choose paths.
        let mut hasher = Sha256::new();
        hasher.update(key.source.as_bytes());
        hasher.update([0]);
        hasher.update(key.image.as_bytes());
        let stem = hex::encode(hasher.finalize());
        DiskFiles {
            original: dir.join(format!("{stem}.img")),
            display: dir.join(format!("{stem}.rgb")),
        }
    }

    /// Deletes both files; the display copy is worthless without its original.
    async fn remove(&self) {
        let files = self.clone();
        let _ = tokio::task::spawn_blocking(move || {
            let _ = std::fs::remove_file(&files.original);
            let _ = std::fs::remove_file(&files.display);
        })
        .await;
    }
}

/// Which original a display copy was made from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Identity {
    length: u64,
    crc: u32,
}

impl Identity {
    fn of(bytes: &[u8]) -> Identity {
        Identity {
            length: bytes.len() as u64,
            crc: crc32fast::hash(bytes),
        }
    }
}

/// What the disk cache holds for one image.
enum DiskCopy {
    /// No original.
    Missing,
    /// The original is damaged.
    Corrupt(String),
    /// A valid display copy of an intact original.
    Display(FloorImage),
    /// An intact original without a usable display copy (and why, when there was one).
    Original {
        bytes: Vec<u8>,
        identity: Identity,
        display_problem: Option<String>,
    },
}

/// Reads what the disk holds for one image: the original is always verified, so a display copy is
/// never used after its original has gone or gone bad. An orphaned display copy is deleted.
fn read_disk(files: &DiskFiles, max_width: u32, limits: &DecodeLimits) -> DiskCopy {
    let (bytes, identity) = match read_verified(&files.original) {
        DiskRead::Missing => {
            let _ = std::fs::remove_file(&files.display);
            return DiskCopy::Missing;
        }
        DiskRead::Corrupt(reason) => return DiskCopy::Corrupt(reason),
        DiskRead::Valid(bytes, identity) => (bytes, identity),
    };
    let display_problem = match read_display(&files.display, identity, max_width, limits) {
        Ok(image) => return DiskCopy::Display(image),
        Err(DisplayRead::Missing) => None,
        Err(DisplayRead::Unusable(reason)) => Some(reason),
    };
    DiskCopy::Original {
        bytes,
        identity,
        display_problem,
    }
}

enum DiskRead {
    Missing,
    Corrupt(String),
    Valid(Vec<u8>, Identity),
}

fn read_verified(path: &Path) -> DiskRead {
    let data = match std::fs::read(path) {
        Ok(data) => data,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return DiskRead::Missing,
        Err(err) => return DiskRead::Corrupt(format!("unreadable: {err}")),
    };
    if data.len() < DISK_HEADER || &data[..8] != DISK_MAGIC {
        return DiskRead::Corrupt("bad header".to_owned());
    }
    let mut length = [0u8; 8];
    length.copy_from_slice(&data[8..16]);
    let mut crc = [0u8; 4];
    crc.copy_from_slice(&data[16..20]);
    let payload = &data[DISK_HEADER..];
    if u64::from_le_bytes(length) != payload.len() as u64 {
        return DiskRead::Corrupt("truncated".to_owned());
    }
    let identity = Identity::of(payload);
    if identity.crc != u32::from_le_bytes(crc) {
        return DiskRead::Corrupt("checksum mismatch".to_owned());
    }
    DiskRead::Valid(payload.to_vec(), identity)
}

/// The length and CRC-32 fields of an original's file header.
fn header(payload: &[u8]) -> [u8; 12] {
    let mut out = [0u8; 12];
    out[..8].copy_from_slice(&(payload.len() as u64).to_le_bytes());
    out[8..].copy_from_slice(&crc32fast::hash(payload).to_le_bytes());
    out
}

enum DisplayRead {
    Missing,
    /// Damaged, truncated, made from another original or for another display width.
    Unusable(String),
}

fn read_u32(bytes: &[u8], at: usize) -> u32 {
    let mut field = [0u8; 4];
    field.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(field)
}

/// A display copy made from the original `identity` at `max_width`, when it is intact.
fn read_display(
    path: &Path,
    identity: Identity,
    max_width: u32,
    limits: &DecodeLimits,
) -> Result<FloorImage, DisplayRead> {
    let unusable = |reason: &str| DisplayRead::Unusable(reason.to_owned());
    let mut file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Err(DisplayRead::Missing),
        Err(err) => return Err(DisplayRead::Unusable(format!("unreadable: {err}"))),
    };
    let file_length = file
        .metadata()
        .map_err(|err| DisplayRead::Unusable(format!("unreadable: {err}")))?
        .len();
    let mut head = [0u8; DISPLAY_HEADER];
    if file_length < DISPLAY_HEADER as u64 || file.read_exact(&mut head).is_err() {
        return Err(unusable("truncated header"));
    }
    if &head[..8] != DISPLAY_MAGIC {
        return Err(unusable("bad header"));
    }
    let crc = read_u32(&head, 8);
    let mut length = [0u8; 8];
    length.copy_from_slice(&head[12..20]);
    let made_from = Identity {
        length: u64::from_le_bytes(length),
        crc: read_u32(&head, 20),
    };
    let made_for = read_u32(&head, 24);
    let (width, height) = (read_u32(&head, 28), read_u32(&head, 32));
    let (source_width, source_height) = (read_u32(&head, 36), read_u32(&head, 40));
    if made_from != identity {
        return Err(unusable("made from another original"));
    }
    if made_for != max_width {
        return Err(unusable("made for another display width"));
    }
    // Sizes are checked against the file before anything image-sized is allocated.
    let pixel_bytes = u64::from(width) * u64::from(height) * 3;
    if width > limits.max_width || height > limits.max_height || pixel_bytes > limits.max_alloc {
        return Err(unusable("larger than the decoding limits"));
    }
    if file_length != DISPLAY_HEADER as u64 + pixel_bytes {
        return Err(unusable("wrong length"));
    }
    let mut pixels = vec![0u8; pixel_bytes as usize];
    if file.read_exact(&mut pixels).is_err() {
        return Err(unusable("truncated"));
    }
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&head[12..]);
    hasher.update(&pixels);
    if hasher.finalize() != crc {
        return Err(unusable("checksum mismatch"));
    }
    FloorImage::from_parts(
        width,
        height,
        source_width,
        source_height,
        max_width,
        pixels,
    )
    .ok_or_else(|| unusable("inconsistent sizes"))
}

/// Writes the display copy of the original `identity`, scaled for `max_width`.
fn write_display(
    path: &Path,
    identity: Identity,
    max_width: u32,
    image: &FloorImage,
) -> std::io::Result<()> {
    let mut fields = [0u8; DISPLAY_HEADER - 12];
    fields[..8].copy_from_slice(&identity.length.to_le_bytes());
    let words = [
        identity.crc,
        max_width,
        image.width(),
        image.height(),
        image.source_width(),
        image.source_height(),
    ];
    for (slot, word) in fields[8..].chunks_exact_mut(4).zip(words) {
        slot.copy_from_slice(&word.to_le_bytes());
    }
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&fields);
    hasher.update(image.pixels());
    let crc = hasher.finalize().to_le_bytes();
    write_atomically(path, &[DISPLAY_MAGIC, &crc, &fields, image.pixels()])
}

/// Writes `parts` to a temporary file in the same directory, syncs, then renames: readers see the old
/// file or the whole new one, never a partial one.
fn write_atomically(path: &Path, parts: &[&[u8]]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    let mut temp = tempfile::NamedTempFile::new_in(dir)?;
    for part in parts {
        temp.write_all(part)?;
    }
    temp.as_file().sync_all()?;
    temp.persist(path).map_err(|err| err.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::pin::Pin;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;

    use metrics_util::debugging::{DebugValue, DebuggingRecorder};
    use metrics_util::{CompositeKey, MetricKind};
    use whereis_location::{Api, FloorPlan, Probe, SourceAnswer, Unit};

    use super::*;

    const IMAGE: &str = "floor-3.png";

    type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

    /// A location server that serves one floor image and counts the downloads.
    struct Server {
        image: Mutex<Vec<u8>>,
        fetches: AtomicUsize,
    }

    impl Server {
        fn new(image: Vec<u8>) -> Server {
            Server {
                image: Mutex::new(image),
                fetches: AtomicUsize::new(0),
            }
        }

        fn fetches(&self) -> usize {
            self.fetches.load(Ordering::SeqCst)
        }
    }

    impl LocationSource for Server {
        fn name(&self) -> &str {
            "cmx-test"
        }

        fn priority(&self) -> i32 {
            0
        }

        fn locate<'a>(
            &'a self,
            _identity: &'a str,
        ) -> BoxFuture<'a, Result<SourceAnswer, SourceError>> {
            Box::pin(async { Err(SourceError::Status("not in this test".to_owned())) })
        }

        fn probe(&self) -> BoxFuture<'_, Result<Probe, SourceError>> {
            Box::pin(async { Err(SourceError::Status("not in this test".to_owned())) })
        }

        fn floor_image<'a>(
            &'a self,
            _image_name: &'a str,
        ) -> BoxFuture<'a, Result<Vec<u8>, SourceError>> {
            self.fetches.fetch_add(1, Ordering::SeqCst);
            let image = self.image.lock().expect("lock").clone();
            Box::pin(async move { Ok(image) })
        }
    }

    /// An RGB PNG with a pattern that depends on `seed`, so scaled copies of two plans differ.
    fn plan(width: u32, height: u32, seed: u8) -> Vec<u8> {
        let data: Vec<u8> = (0..width * height)
            .flat_map(|i| {
                let (x, y) = ((i % width) as u8, (i / width) as u8);
                [x ^ seed, y.wrapping_add(seed), x.wrapping_mul(y)]
            })
            .collect();
        let mut out = Vec::new();
        let mut encoder = png::Encoder::new(&mut out, width, height);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().expect("header");
        writer.write_image_data(&data).expect("data");
        writer.finish().expect("finish");
        out
    }

    fn settings(dir: Option<&Path>) -> MapSettings {
        MapSettings {
            display_width: 160,
            cache_dir: dir.map(Path::to_owned),
            ..MapSettings::default()
        }
    }

    type Entries = Vec<(
        CompositeKey,
        Option<metrics::Unit>,
        Option<metrics::SharedString>,
        DebugValue,
    )>;

    /// Runs `future` on this thread with a recorder of its own, and returns what it recorded.
    fn recorded<T>(future: impl Future<Output = T>) -> (T, Recorded) {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        let out = metrics::with_local_recorder(&recorder, || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime")
                .block_on(future)
        });
        (out, Recorded(snapshotter.snapshot().into_vec()))
    }

    struct Recorded(Entries);

    impl Recorded {
        fn find(&self, kind: MetricKind, name: &str, level: Option<&str>) -> Option<&DebugValue> {
            self.0
                .iter()
                .find(|(key, _, _, _)| {
                    key.kind() == kind
                        && key.key().name() == name
                        && key
                            .key()
                            .labels()
                            .find(|l| l.key() == "level")
                            .map(|l| l.value())
                            == level
                })
                .map(|(_, _, _, value)| value)
        }

        fn counter(&self, name: &str, level: Option<&str>) -> u64 {
            match self.find(MetricKind::Counter, name, level) {
                Some(DebugValue::Counter(n)) => *n,
                _ => 0,
            }
        }

        fn hits(&self, level: &str) -> u64 {
            self.counter(MAP_CACHE_HITS_TOTAL, Some(level))
        }

        fn misses(&self) -> u64 {
            self.counter(MAP_CACHE_MISSES_TOTAL, None)
        }

        fn samples(&self, name: &str) -> usize {
            match self.find(MetricKind::Histogram, name, None) {
                Some(DebugValue::Histogram(values)) => values.len(),
                _ => 0,
            }
        }

        fn decodes(&self) -> usize {
            self.samples(MAP_DECODE_DURATION_SECONDS)
        }

        fn gauge(&self, name: &str) -> Option<f64> {
            match self.find(MetricKind::Gauge, name, None) {
                Some(DebugValue::Gauge(value)) => Some(value.into_inner()),
                _ => None,
            }
        }
    }

    /// One process's first look at the image: a fresh cache over `dir`.
    fn open(dir: &Path, server: &Server) -> (Arc<FloorImage>, Recorded) {
        open_with(settings(Some(dir)), server)
    }

    fn open_with(settings: MapSettings, server: &Server) -> (Arc<FloorImage>, Recorded) {
        let (image, recorded) =
            recorded(async { FloorMaps::new(settings).floor_image(server, IMAGE).await });
        (image.expect("floor image"), recorded)
    }

    fn expected(bytes: &[u8]) -> FloorImage {
        decode(bytes, 160, &DecodeLimits::default()).expect("decodes")
    }

    fn same(a: &FloorImage, b: &FloorImage) -> bool {
        (a.width(), a.height(), a.source_width(), a.source_height())
            == (b.width(), b.height(), b.source_width(), b.source_height())
            && a.pixels() == b.pixels()
    }

    fn files(dir: &Path) -> DiskFiles {
        DiskFiles::new(
            dir,
            &ImageKey {
                source: "cmx-test".into(),
                image: IMAGE.into(),
            },
        )
    }

    fn device() -> Device {
        Device {
            source: "cmx-test".into(),
            api: Api::CmxV2,
            mac: "00:11:22:33:44:55".into(),
            identity: None,
            ip: None,
            ssid: None,
            status: "ASSOCIATED".into(),
            hierarchy: "HQ>B1>F3".into(),
            campus: None,
            building: None,
            floor: None,
            x: 30.0,
            y: 20.0,
            unit: Unit::Feet,
            floor_width: Some(100.0),
            floor_length: Some(75.0),
            last_seen_seconds: Some(3),
            confidence: Some(5.0),
            stale: false,
            manufacturer: None,
            floor_ref_id: None,
            floor_plan: Some(FloorPlan {
                floor_ref_id: None,
                width: 100.0,
                length: 75.0,
                offset_x: 0.0,
                offset_y: 0.0,
                unit: Unit::Feet,
                image_name: Some(IMAGE.into()),
            }),
            priority: 0,
        }
    }

    #[test]
    fn a_miss_then_a_memory_hit_are_counted() {
        let server = Server::new(plan(400, 300, 1));
        let ((first, second, map), recorded) = recorded(async {
            let maps = FloorMaps::new(settings(None));
            let first = maps.floor_image(&server, IMAGE).await.expect("first");
            let second = maps.floor_image(&server, IMAGE).await.expect("second");
            let map = maps.draw(&server, &device()).await.expect("drawn");
            (first, second, map)
        });
        assert!(Arc::ptr_eq(&first, &second));
        assert_eq!(server.fetches(), 1);
        assert_eq!(recorded.misses(), 1);
        // The second call and the drawing found it in memory.
        assert_eq!(recorded.hits("memory"), 2);
        assert_eq!(recorded.hits("disk"), 0);
        assert_eq!(recorded.decodes(), 1);
        assert_eq!(recorded.samples(MAP_RENDER_DURATION_SECONDS), 1);
        assert_eq!(
            recorded.gauge(MAP_CACHE_BYTES),
            Some(first.byte_size() as f64)
        );
        assert_eq!((map.full.width, map.full.height), (160, 120));
    }

    #[test]
    fn the_next_process_draws_from_the_display_copy_without_decoding() {
        let dir = tempfile::tempdir().expect("temp dir");
        let bytes = plan(400, 300, 1);
        let server = Server::new(bytes.clone());
        let (first, recorded) = open(dir.path(), &server);
        assert_eq!((recorded.misses(), recorded.decodes()), (1, 1));
        assert!(files(dir.path()).display.exists());

        let (second, recorded) = open(dir.path(), &server);
        assert_eq!(recorded.hits("disk"), 1);
        assert_eq!(recorded.misses(), 0);
        assert_eq!(recorded.decodes(), 0, "the display copy is used as it is");
        assert_eq!(server.fetches(), 1);
        assert!(same(&first, &second));
        assert!(same(&second, &expected(&bytes)));
    }

    #[test]
    fn a_damaged_display_copy_is_rebuilt_from_the_original() {
        let bytes = plan(400, 300, 1);
        type Damage = fn(&mut Vec<u8>);
        let damages: [(&str, Damage); 6] = [
            ("a pixel flipped", |d| {
                let at = d.len() - 100;
                d[at] ^= 0x40;
            }),
            ("the width changed", |d| d[28] ^= 0x01),
            ("the source size changed", |d| d[36] ^= 0x01),
            ("truncated", |d| d.truncate(d.len() / 2)),
            ("grown", |d| d.extend_from_slice(&[0; 7])),
            ("junk", |d| *d = b"junk".to_vec()),
        ];
        for (damage, apply) in damages {
            let dir = tempfile::tempdir().expect("temp dir");
            let server = Server::new(bytes.clone());
            open(dir.path(), &server);
            let path = files(dir.path()).display;
            let mut data = std::fs::read(&path).expect("display copy");
            apply(&mut data);
            std::fs::write(&path, &data).expect("damaged");

            let (image, recorded) = open(dir.path(), &server);
            assert!(same(&image, &expected(&bytes)), "{damage}: right pixels");
            assert_eq!(recorded.decodes(), 1, "{damage}: decoded again");
            assert_eq!(recorded.hits("disk"), 1, "{damage}: original used");
            assert_eq!(server.fetches(), 1, "{damage}: not downloaded again");

            let (image, recorded) = open(dir.path(), &server);
            assert!(same(&image, &expected(&bytes)), "{damage}: rebuilt copy");
            assert_eq!(recorded.decodes(), 0, "{damage}: rebuilt copy used");
        }
    }

    #[test]
    fn a_replaced_original_invalidates_the_display_copy() {
        let dir = tempfile::tempdir().expect("temp dir");
        let server = Server::new(plan(400, 300, 1));
        let (old, _) = open(dir.path(), &server);
        // Another process fetched a new version of the plan (other size, other pixels).
        let new = plan(320, 320, 9);
        let original = files(dir.path()).original;
        write_atomically(&original, &[DISK_MAGIC, &header(&new), &new]).expect("replaced");

        let (image, recorded) = open(dir.path(), &server);
        assert!(same(&image, &expected(&new)));
        assert!(!same(&image, &old));
        assert_eq!(recorded.decodes(), 1);
        assert_eq!(server.fetches(), 1);
        let (image, recorded) = open(dir.path(), &server);
        assert!(same(&image, &expected(&new)));
        assert_eq!(recorded.decodes(), 0);
    }

    #[test]
    fn a_lost_or_damaged_original_takes_its_display_copy_with_it() {
        let dir = tempfile::tempdir().expect("temp dir");
        let old = plan(400, 300, 1);
        let new = plan(200, 100, 5);
        let server = Server::new(old);
        open(dir.path(), &server);
        let files = files(dir.path());
        *server.image.lock().expect("lock") = new.clone();

        // A damaged original: both go, the image is downloaded again.
        let mut data = std::fs::read(&files.original).expect("original");
        let last = data.len() - 1;
        data[last] ^= 0xff;
        std::fs::write(&files.original, &data).expect("damaged");
        let (image, recorded) = open(dir.path(), &server);
        assert!(same(&image, &expected(&new)));
        assert_eq!((recorded.misses(), server.fetches()), (1, 2));

        // A deleted original: the orphaned display copy is not used, and is deleted.
        std::fs::remove_file(&files.original).expect("deleted");
        assert!(matches!(
            read_disk(&files, 160, &DecodeLimits::default()),
            DiskCopy::Missing
        ));
        assert!(!files.display.exists());
        let (image, recorded) = open(dir.path(), &server);
        assert!(same(&image, &expected(&new)));
        assert_eq!((recorded.misses(), server.fetches()), (1, 3));
    }

    #[test]
    fn another_display_width_rebuilds_the_display_copy() {
        let dir = tempfile::tempdir().expect("temp dir");
        let bytes = plan(400, 300, 1);
        let server = Server::new(bytes.clone());
        open(dir.path(), &server);
        let narrow = MapSettings {
            display_width: 100,
            ..settings(Some(dir.path()))
        };
        let (image, recorded) = open_with(narrow.clone(), &server);
        assert_eq!((image.width(), image.height()), (100, 75));
        assert_eq!(recorded.decodes(), 1);
        let (image, recorded) = open_with(narrow, &server);
        assert_eq!((image.width(), image.height()), (100, 75));
        assert_eq!(recorded.decodes(), 0);
    }

    #[test]
    fn disk_format_round_trip_and_corruption() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("x.img");
        let payload = b"payload";
        write_atomically(&path, &[DISK_MAGIC, &header(payload), payload]).expect("written");
        assert!(
            matches!(read_verified(&path), DiskRead::Valid(p, id) if p == b"payload" && id == Identity::of(b"payload"))
        );

        let mut data = std::fs::read(&path).expect("read");
        let last = data.len() - 1;
        data[last] ^= 0xff;
        std::fs::write(&path, &data).expect("write");
        assert!(matches!(read_verified(&path), DiskRead::Corrupt(r) if r.contains("checksum")));

        std::fs::write(&path, &data[..data.len() - 2]).expect("write");
        assert!(matches!(read_verified(&path), DiskRead::Corrupt(r) if r.contains("truncated")));

        std::fs::write(&path, b"junk").expect("write");
        assert!(matches!(read_verified(&path), DiskRead::Corrupt(_)));
        assert!(matches!(
            read_verified(&dir.path().join("absent.img")),
            DiskRead::Missing
        ));
    }

    #[test]
    fn disk_names_are_hashes() {
        let key = ImageKey {
            source: "cmx".into(),
            image: "../../etc/passwd".into(),
        };
        let files = DiskFiles::new(Path::new("/cache"), &key);
        for path in [&files.original, &files.display] {
            assert_eq!(path.parent(), Some(Path::new("/cache")));
            assert!(!path.to_string_lossy().contains(".."));
        }
    }
}
