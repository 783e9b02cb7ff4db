//! A generated floor plan (outer walls, rooms, a corridor), sized to the floor's aspect ratio and
//! encoded as the image name says: JPEG for `.jpg`/`.jpeg`, PNG otherwise — as real servers serve
//! what was uploaded.

use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::{CompressionType, FilterType, PngEncoder};
use image::{ExtendedColorType, ImageEncoder, RgbImage};

/// The longer side of a generated image, in pixels: larger than whereis draws maps, as real plans are.
const LONG_SIDE: u32 = 2400;

/// Palette: room, corridor, wall, door.
const PALETTE: [[u8; 3]; 4] = [
    [228, 236, 245],
    [240, 240, 240],
    [60, 64, 72],
    [250, 250, 250],
];

/// The image size for a floor of `width` × `length` (any unit), longer side [`LONG_SIDE`] pixels.
pub(crate) fn image_size(width: f64, length: f64) -> (u32, u32) {
    let ratio = if width > 0.0 && length > 0.0 {
        length / width
    } else {
        1.0
    };
    let side = |r: f64| ((f64::from(LONG_SIDE) * r).round() as u32).clamp(16, 4 * LONG_SIDE);
    if ratio <= 1.0 {
        (LONG_SIDE, side(ratio))
    } else {
        (side(1.0 / ratio), LONG_SIDE)
    }
}

/// The floor plan image for a floor of `width` × `length`, encoded for `image_name`'s extension.
pub(crate) fn image_for_floor(
    width: f64,
    length: f64,
    image_name: &str,
) -> Result<Vec<u8>, String> {
    let (w, h) = image_size(width, length);
    let plan = RgbImage::from_fn(w, h, |x, y| {
        image::Rgb(PALETTE[usize::from(pixel(x, y, w, h))])
    });
    let mut out = Vec::new();
    let lower = image_name.to_ascii_lowercase();
    let result =
        if lower.ends_with(".jpg") || lower.ends_with(".jpeg") {
            JpegEncoder::new_with_quality(&mut out, 85).write_image(
                plan.as_raw(),
                w,
                h,
                ExtendedColorType::Rgb8,
            )
        } else {
            PngEncoder::new_with_quality(&mut out, CompressionType::Fast, FilterType::Sub)
                .write_image(plan.as_raw(), w, h, ExtendedColorType::Rgb8)
        };
    result.map_err(|err| format!("cannot encode the floor plan: {err}"))?;
    Ok(out)
}

fn pixel(x: u32, y: u32, w: u32, h: u32) -> u8 {
    const ROOM: u8 = 0;
    const CORRIDOR: u8 = 1;
    const WALL: u8 = 2;
    const DOOR: u8 = 3;
    let t = (w.min(h) / 120).max(2);
    if x < t || y < t || x >= w - t || y >= h - t {
        return WALL;
    }
    let (c0, c1) = (h * 45 / 100, h * 55 / 100);
    if (c0..c1).contains(&y) {
        return CORRIDOR;
    }
    let col = (w / 8).max(1);
    let cx = x % col;
    if (c0.saturating_sub(t)..c0).contains(&y) || (c1..c1 + t).contains(&y) {
        return if cx > col * 2 / 5 && cx < col * 3 / 5 {
            DOOR
        } else {
            WALL
        };
    }
    if x >= col && cx < t {
        return WALL;
    }
    ROOM
}
