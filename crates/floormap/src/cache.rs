//! Floor images, fetched once per (source, image) and kept in two levels: decoded and display-sized in
//! memory (byte budget), and as the original bytes on disk (checksummed, written atomically, survives
//! restarts). Concurrent requests for the same image share one fetch.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};
use whereis_location::{Device, LocationSource, SourceError};

use crate::decode::{decode, DecodeLimits, FloorImage};
use crate::render::{place, render, render_crop, MarkerPosition, Placement, Rendered};

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
const FAILURE_MEMORY: std::time::Duration = std::time::Duration::from_secs(60);

/// Disk cache files start with this, then the payload length (u64 LE) and its CRC-32 (u32 LE).
const DISK_MAGIC: &[u8; 8] = b"WIMG\x01\0\0\0";
const DISK_HEADER: usize = 8 + 8 + 4;

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
            .try_get_with(key.clone(), self.load(source, key.clone()))
            .await
            .map_err(|err| (*err).clone());
        if let Err(error) = &loaded {
            self.failures.insert(key, error.clone()).await;
        }
        loaded
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
        tokio::task::spawn_blocking(move || {
            let full = render(&image, &placement).map_err(|e| MapError::Render(e.to_string()))?;
            let crop = crop_size
                .map(|size| render_crop(&image, &placement, size))
                .transpose()
                .map_err(|e| MapError::Render(e.to_string()))?;
            Ok(DeviceMap { full, crop })
        })
        .await
        .map_err(|e| MapError::Render(format!("drawing task failed: {e}")))?
    }

    async fn load(
        &self,
        source: &dyn LocationSource,
        key: ImageKey,
    ) -> Result<Arc<FloorImage>, MapError> {
        let path = self
            .settings
            .cache_dir
            .as_ref()
            .map(|dir| disk_path(dir, &key));
        if let Some(path) = &path {
            if let Some(image) = self.load_from_disk(path).await {
                return Ok(image);
            }
        }
        let bytes = source
            .floor_image(&key.image)
            .await
            .map_err(MapError::Fetch)?;
        let bytes = Arc::new(bytes);
        let image = self.decode(Arc::clone(&bytes)).await?;
        tracing::debug!(source = %key.source, image = %key.image, bytes = bytes.len(), "floor image fetched");
        if let Some(path) = path {
            let written =
                tokio::task::spawn_blocking(move || write_atomically(&path, &bytes)).await;
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

    /// A verified, decodable cached copy; a corrupt or truncated one is deleted.
    async fn load_from_disk(&self, path: &Path) -> Option<Arc<FloorImage>> {
        let read_path = path.to_owned();
        let bytes = tokio::task::spawn_blocking(move || read_verified(&read_path))
            .await
            .ok()?;
        let bytes = match bytes {
            DiskRead::Missing => return None,
            DiskRead::Corrupt(reason) => {
                tracing::warn!(path = %path.display(), reason, "corrupt floor image in the disk cache: fetching it again");
                remove(path).await;
                return None;
            }
            DiskRead::Valid(bytes) => bytes,
        };
        match self.decode(Arc::new(bytes)).await {
            Ok(image) => Some(image),
            Err(err) => {
                tracing::warn!(path = %path.display(), error = %err, "undecodable floor image in the disk cache: fetching it again");
                remove(path).await;
                None
            }
        }
    }

    async fn decode(&self, bytes: Arc<Vec<u8>>) -> Result<Arc<FloorImage>, MapError> {
        let width = self.settings.display_width;
        let limits = self.settings.limits;
        tokio::task::spawn_blocking(move || decode(&bytes, width, &limits))
            .await
            .map_err(|e| MapError::Decode(format!("decoding task failed: {e}")))?
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

fn disk_path(dir: &Path, key: &ImageKey) -> PathBuf {
    // A hash, not the names: image names come from the server and must not choose paths.
    let mut hasher = Sha256::new();
    hasher.update(key.source.as_bytes());
    hasher.update([0]);
    hasher.update(key.image.as_bytes());
    dir.join(format!("{}.img", hex::encode(hasher.finalize())))
}

enum DiskRead {
    Missing,
    Corrupt(String),
    Valid(Vec<u8>),
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
    if crc32fast::hash(payload) != u32::from_le_bytes(crc) {
        return DiskRead::Corrupt("checksum mismatch".to_owned());
    }
    DiskRead::Valid(payload.to_vec())
}

/// Writes to a temporary file in the same directory, syncs, then renames: readers see the old file or
/// the whole new one, never a partial one.
fn write_atomically(path: &Path, payload: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    let mut temp = tempfile::NamedTempFile::new_in(dir)?;
    temp.write_all(DISK_MAGIC)?;
    temp.write_all(&(payload.len() as u64).to_le_bytes())?;
    temp.write_all(&crc32fast::hash(payload).to_le_bytes())?;
    temp.write_all(payload)?;
    temp.as_file().sync_all()?;
    temp.persist(path).map_err(|err| err.error)?;
    Ok(())
}

async fn remove(path: &Path) {
    let path = path.to_owned();
    let _ = tokio::task::spawn_blocking(move || std::fs::remove_file(path)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disk_format_round_trip_and_corruption() {
        let dir = std::env::temp_dir().join(format!("whereis-disk-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("x.img");
        write_atomically(&path, b"payload").unwrap();
        assert!(matches!(read_verified(&path), DiskRead::Valid(p) if p == b"payload"));

        let mut data = std::fs::read(&path).unwrap();
        let last = data.len() - 1;
        data[last] ^= 0xff;
        std::fs::write(&path, &data).unwrap();
        assert!(matches!(read_verified(&path), DiskRead::Corrupt(r) if r.contains("checksum")));

        std::fs::write(&path, &data[..data.len() - 2]).unwrap();
        assert!(matches!(read_verified(&path), DiskRead::Corrupt(r) if r.contains("truncated")));

        std::fs::write(&path, b"junk").unwrap();
        assert!(matches!(read_verified(&path), DiskRead::Corrupt(_)));
        assert!(matches!(
            read_verified(&dir.join("absent.img")),
            DiskRead::Missing
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn disk_names_are_hashes() {
        let key = ImageKey {
            source: "cmx".into(),
            image: "../../etc/passwd".into(),
        };
        let path = disk_path(Path::new("/cache"), &key);
        assert_eq!(path.parent(), Some(Path::new("/cache")));
        assert!(!path.to_string_lossy().contains(".."));
    }
}
