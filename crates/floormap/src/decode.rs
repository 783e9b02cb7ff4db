//! Floor image decoding: PNG/JPEG bytes → an opaque, display-sized RGB image.
//!
//! Pure (bytes in, pixels out) and synchronous; callers run it on a blocking thread. The format is
//! recognised from the bytes (`image::guess_format`), the dimensions the decoder reads from the header are checked against [`DecodeLimits`] before anything
//! image-sized is allocated, alpha is flattened onto white, and the image is scaled down (area averaging,
//! which keeps thin walls visible) to the display width. PNGs are decoded and scaled row by row, so a
//! large plan never needs its full-size pixels in memory; JPEGs are decoded whole, then scaled.

use std::fmt;
use std::io::Cursor;
use std::panic::{catch_unwind, AssertUnwindSafe};

use image::ImageDecoder;

/// Bounds on what [`decode`] accepts, to defend against decompression bombs.
#[derive(Debug, Clone, Copy)]
pub struct DecodeLimits {
    /// Largest width accepted, in source pixels.
    pub max_width: u32,
    /// Largest height accepted, in source pixels.
    pub max_height: u32,
    /// Largest amount of memory, in bytes, decoding may need for pixel buffers.
    pub max_alloc: u64,
}

impl Default for DecodeLimits {
    /// 16,384 × 16,384 px and 1 GiB: real floor plans are 2,000–10,000 px.
    fn default() -> Self {
        DecodeLimits {
            max_width: 16_384,
            max_height: 16_384,
            max_alloc: 1 << 30,
        }
    }
}

/// Why a floor image could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// No bytes at all.
    #[error("empty image (0 bytes)")]
    Empty,
    /// Neither a PNG nor a JPEG signature.
    #[error("not a PNG or JPEG image")]
    UnknownFormat,
    /// The header announces more pixels than the limits allow.
    #[error("image is {width}×{height} px, more than the {max_width}×{max_height} allowed")]
    TooLarge {
        /// Width the header claims.
        width: u32,
        /// Height the header claims.
        height: u32,
        /// The limit's width.
        max_width: u32,
        /// The limit's height.
        max_height: u32,
    },
    /// Decoding would need more memory than `max_alloc`.
    #[error("image is {width}×{height} px and would need {needed} bytes to decode, more than the {limit} allowed")]
    TooMuchMemory {
        /// Width the header claims.
        width: u32,
        /// Height the header claims.
        height: u32,
        /// Bytes decoding would need.
        needed: u64,
        /// The limit.
        limit: u64,
    },
    /// The bytes are damaged, truncated or use a feature the decoder does not support.
    #[error("corrupt image: {0}")]
    Corrupt(String),
}

/// A decoded floor image: opaque RGB pixels at display size.
pub struct FloorImage {
    width: u32,
    height: u32,
    source_width: u32,
    source_height: u32,
    /// Row-major RGB8, `width * height * 3` bytes.
    pixels: Vec<u8>,
}

impl fmt::Debug for FloorImage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FloorImage")
            .field("width", &self.width)
            .field("height", &self.height)
            .field("source_width", &self.source_width)
            .field("source_height", &self.source_height)
            .finish_non_exhaustive()
    }
}

impl FloorImage {
    /// Wraps already decoded, opaque RGB8 pixels (row-major); `None` when the size does not match or is 0.
    pub fn from_rgb(width: u32, height: u32, pixels: Vec<u8>) -> Option<FloorImage> {
        let expected = (width as usize)
            .checked_mul(height as usize)?
            .checked_mul(3)?;
        (width > 0 && height > 0 && pixels.len() == expected).then_some(FloorImage {
            width,
            height,
            source_width: width,
            source_height: height,
            pixels,
        })
    }

    /// Reassembles an image from its parts (the disk cache's display-sized copy); `None` when the
    /// pixels do not match the size or the size is not what scaling the source would give.
    pub(crate) fn from_parts(
        width: u32,
        height: u32,
        source_width: u32,
        source_height: u32,
        max_width: u32,
        pixels: Vec<u8>,
    ) -> Option<FloorImage> {
        let expected = (width as usize)
            .checked_mul(height as usize)?
            .checked_mul(3)?;
        let consistent = width > 0
            && height > 0
            && pixels.len() == expected
            && display_size(source_width, source_height, max_width) == (width, height);
        consistent.then_some(FloorImage {
            width,
            height,
            source_width,
            source_height,
            pixels,
        })
    }

    /// Display width in pixels.
    pub fn width(&self) -> u32 {
        self.width
    }

    /// Display height in pixels.
    pub fn height(&self) -> u32 {
        self.height
    }

    /// Width of the image as decoded, before scaling.
    pub fn source_width(&self) -> u32 {
        self.source_width
    }

    /// Height of the image as decoded, before scaling.
    pub fn source_height(&self) -> u32 {
        self.source_height
    }

    /// Memory the image holds, in bytes (for the cache's byte budget).
    pub fn byte_size(&self) -> usize {
        self.pixels.capacity() + std::mem::size_of::<Self>()
    }

    /// The display-sized pixels: row-major RGB8, `width × height × 3` bytes.
    pub fn pixels(&self) -> &[u8] {
        &self.pixels
    }

    /// The colour of one pixel, `None` outside the image.
    pub fn pixel(&self, x: u32, y: u32) -> Option<[u8; 3]> {
        if x >= self.width || y >= self.height {
            return None;
        }
        let at = (y as usize * self.width as usize + x as usize) * 3;
        let p = self.pixels.get(at..at + 3)?;
        Some([p[0], p[1], p[2]])
    }
}

/// Decodes PNG or JPEG (format recognised from the bytes, not the name — names lie: `.PNG`, `.jpg`), checks
/// the dimensions the decoder reads from the header against `limits` BEFORE allocating any pixel buffer
/// (decompression bombs), flattens alpha onto white, and scales down to `max_width` px wide keeping the
/// aspect ratio (never upscales; 0 means "do not scale"). Runs synchronously: the caller puts it on a
/// blocking thread.
pub fn decode(
    bytes: &[u8],
    max_width: u32,
    limits: &DecodeLimits,
) -> Result<FloorImage, DecodeError> {
    if bytes.is_empty() {
        return Err(DecodeError::Empty);
    }
    let format = match image::guess_format(bytes) {
        Ok(image::ImageFormat::Png) => Format::Png,
        Ok(image::ImageFormat::Jpeg) => Format::Jpeg,
        _ => return Err(DecodeError::UnknownFormat),
    };
    // The decoders are third-party code fed with untrusted bytes: a bug in them must not take the
    // process down, so a panic becomes a decoding error for this one image.
    catch_unwind(AssertUnwindSafe(|| match format {
        Format::Png => decode_png(bytes, max_width, limits),
        Format::Jpeg => decode_jpeg(bytes, max_width, limits),
    }))
    .map_err(|_| DecodeError::Corrupt("the decoder failed on this image".to_owned()))?
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Png,
    Jpeg,
}

/// What the header says, as the decoder read it before decoding any pixels.
#[derive(Debug, Clone, Copy)]
struct Header {
    width: u32,
    height: u32,
    /// Bytes the decoder needs beyond the display-sized output (full frames, coefficient buffers).
    working_bytes: u64,
}

impl Header {
    fn png(info: &png::Info<'_>) -> Header {
        let (width, height) = (info.width, info.height);
        let bit_depth = u64::from(info.bit_depth as u8);
        let row = u64::from(width)
            .saturating_mul(4)
            .saturating_mul(bit_depth.div_ceil(8).max(1));
        // Interlaced images cannot be streamed row by row: the whole 8-bit RGBA frame is kept.
        let frame = if info.interlaced {
            u64::from(width)
                .saturating_mul(u64::from(height))
                .saturating_mul(4)
        } else {
            0
        };
        Header {
            width,
            height,
            working_bytes: row.saturating_mul(4).saturating_add(frame),
        }
    }

    fn jpeg(width: u32, height: u32) -> Header {
        let pixels = u64::from(width) * u64::from(height);
        // The decoder writes the full frame (up to 4 bytes a pixel); progressive and other multi-scan
        // modes also keep 16-bit coefficients for every component. The decoder does not say which
        // mode a file uses before decoding it, so the budget assumes the costlier one (3 components).
        Header {
            width,
            height,
            working_bytes: pixels * 4 + pixels * 3 * 2,
        }
    }
}

fn check_limits(header: &Header, limits: &DecodeLimits) -> Result<(), DecodeError> {
    if header.width > limits.max_width || header.height > limits.max_height {
        return Err(DecodeError::TooLarge {
            width: header.width,
            height: header.height,
            max_width: limits.max_width,
            max_height: limits.max_height,
        });
    }
    // The output can be as large as the source (no scaling), 3 bytes a pixel.
    let needed = u64::from(header.width)
        .saturating_mul(u64::from(header.height))
        .saturating_mul(3)
        .saturating_add(header.working_bytes);
    if needed > limits.max_alloc {
        return Err(DecodeError::TooMuchMemory {
            width: header.width,
            height: header.height,
            needed,
            limit: limits.max_alloc,
        });
    }
    Ok(())
}

/// The display size: at most `max_width` wide (0 = unlimited), same aspect ratio, never upscaled.
pub(crate) fn display_size(width: u32, height: u32, max_width: u32) -> (u32, u32) {
    if max_width == 0 || width <= max_width {
        return (width, height);
    }
    let scaled =
        (u64::from(height) * u64::from(max_width) + u64::from(width) / 2) / u64::from(width);
    (
        max_width,
        u32::try_from(scaled).unwrap_or(height).clamp(1, height),
    )
}

/// Sample layouts the decoders hand over, all 8 bits a sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    Gray,
    GrayAlpha,
    Rgb,
    Rgba,
}

impl Layout {
    fn channels(self) -> usize {
        match self {
            Layout::Gray => 1,
            Layout::GrayAlpha => 2,
            Layout::Rgb => 3,
            Layout::Rgba => 4,
        }
    }
}

/// Blends `value` with opacity `alpha` onto white.
#[inline]
fn over_white(value: u8, alpha: u8) -> u8 {
    let (v, a) = (u32::from(value), u32::from(alpha));
    // (v·a + 255·(255 − a)) / 255, rounded; the result is ≤ 255.
    ((v * a + 255 * (255 - a) + 127) / 255) as u8
}

/// Converts one row in `layout` to opaque RGB8, flattening alpha onto white. `out` holds `width × 3` bytes.
fn row_to_rgb(row: &[u8], layout: Layout, out: &mut [u8]) {
    match layout {
        Layout::Rgb => {
            let n = out.len().min(row.len());
            out[..n].copy_from_slice(&row[..n]);
        }
        Layout::Rgba => {
            for (o, i) in out.chunks_exact_mut(3).zip(row.chunks_exact(4)) {
                let a = i[3];
                if a == 255 {
                    o.copy_from_slice(&i[..3]);
                } else {
                    o[0] = over_white(i[0], a);
                    o[1] = over_white(i[1], a);
                    o[2] = over_white(i[2], a);
                }
            }
        }
        Layout::Gray => {
            for (o, &g) in out.chunks_exact_mut(3).zip(row) {
                o.fill(g);
            }
        }
        Layout::GrayAlpha => {
            for (o, i) in out.chunks_exact_mut(3).zip(row.chunks_exact(2)) {
                o.fill(over_white(i[0], i[1]));
            }
        }
    }
}

fn decode_png(
    bytes: &[u8],
    max_width: u32,
    limits: &DecodeLimits,
) -> Result<FloorImage, DecodeError> {
    let corrupt = |e: png::DecodingError| match e {
        png::DecodingError::IoError(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            DecodeError::Corrupt("truncated PNG".to_owned())
        }
        e => DecodeError::Corrupt(e.to_string()),
    };
    // The png crate's own budget covers metadata chunks and row buffers, not our output.
    let budget = usize::try_from(limits.max_alloc.min(1 << 28)).unwrap_or(usize::MAX);
    let mut decoder =
        png::Decoder::new_with_limits(Cursor::new(bytes), png::Limits { bytes: budget });
    // Only the signature and IHDR: nothing image-sized is allocated before the limits are checked.
    let header = Header::png(decoder.read_header_info().map_err(corrupt)?);
    check_limits(&header, limits)?;
    let (width, height) = display_size(header.width, header.height, max_width);
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    decoder.set_ignore_text_chunk(true);
    decoder.set_ignore_iccp_chunk(true);
    let mut reader = decoder.read_info().map_err(corrupt)?;
    let interlaced = reader.info().interlaced;
    let layout = match reader.output_color_type() {
        (png::ColorType::Grayscale, png::BitDepth::Eight) => Layout::Gray,
        (png::ColorType::GrayscaleAlpha, png::BitDepth::Eight) => Layout::GrayAlpha,
        (png::ColorType::Rgb, png::BitDepth::Eight) => Layout::Rgb,
        (png::ColorType::Rgba, png::BitDepth::Eight) => Layout::Rgba,
        (color, depth) => {
            return Err(DecodeError::Corrupt(format!(
                "unsupported PNG pixel format {color:?} at {depth:?}"
            )))
        }
    };
    let mut sink = Sink::new(header.width, header.height, width, height);
    let mut rgb = vec![0u8; header.width as usize * 3];
    if interlaced {
        // Adam7 rows arrive pass by pass: decode the whole frame, then feed it row by row.
        let size = reader
            .output_buffer_size()
            .ok_or_else(|| DecodeError::Corrupt("PNG frame too large".to_owned()))?;
        let mut frame = vec![0u8; size];
        let out = reader.next_frame(&mut frame).map_err(corrupt)?;
        for row in frame
            .chunks_exact(out.line_size.max(1))
            .take(header.height as usize)
        {
            row_to_rgb(row, layout, &mut rgb);
            sink.push(&rgb);
        }
    } else {
        let row_len = header.width as usize * layout.channels();
        while let Some(row) = reader.next_row().map_err(corrupt)? {
            let data = row.data();
            if data.len() < row_len {
                return Err(DecodeError::Corrupt("short PNG row".to_owned()));
            }
            row_to_rgb(data, layout, &mut rgb);
            sink.push(&rgb);
            if sink.is_full() {
                break;
            }
        }
    }
    let pixels = sink
        .finish()
        .ok_or_else(|| DecodeError::Corrupt("PNG ended before its last row".to_owned()))?;
    Ok(FloorImage {
        width,
        height,
        source_width: header.width,
        source_height: header.height,
        pixels,
    })
}

fn decode_jpeg(
    bytes: &[u8],
    max_width: u32,
    limits: &DecodeLimits,
) -> Result<FloorImage, DecodeError> {
    let corrupt = |e: image::ImageError| DecodeError::Corrupt(e.to_string());
    // Reads the headers up to the first scan; the frame is allocated only in `read_image`.
    let mut decoder = image::codecs::jpeg::JpegDecoder::new(Cursor::new(bytes)).map_err(corrupt)?;
    let (w, h) = decoder.dimensions();
    let header = Header::jpeg(w, h);
    check_limits(&header, limits)?;
    let mut image_limits = image::Limits::default();
    image_limits.max_image_width = Some(limits.max_width);
    image_limits.max_image_height = Some(limits.max_height);
    image_limits.max_alloc = Some(limits.max_alloc);
    let failed = |e: image::ImageError| match e {
        image::ImageError::Limits(_) => DecodeError::TooLarge {
            width: w,
            height: h,
            max_width: limits.max_width,
            max_height: limits.max_height,
        },
        e => DecodeError::Corrupt(e.to_string()),
    };
    decoder.set_limits(image_limits).map_err(failed)?;
    let (width, height) = display_size(w, h, max_width);
    let layout = match decoder.color_type() {
        image::ColorType::L8 => Layout::Gray,
        image::ColorType::La8 => Layout::GrayAlpha,
        image::ColorType::Rgb8 => Layout::Rgb,
        image::ColorType::Rgba8 => Layout::Rgba,
        other => {
            return Err(DecodeError::Corrupt(format!(
                "unsupported JPEG colour type {other:?}"
            )))
        }
    };
    let total = usize::try_from(decoder.total_bytes())
        .map_err(|_| DecodeError::Corrupt("JPEG frame too large".to_owned()))?;
    let mut frame = vec![0u8; total];
    decoder.read_image(&mut frame).map_err(failed)?;
    let image = |pixels| FloorImage {
        width,
        height,
        source_width: w,
        source_height: h,
        pixels,
    };
    if layout == Layout::Rgb && (w, h) == (width, height) {
        return Ok(image(frame)); // already opaque RGB at display size
    }
    let row_len = w as usize * layout.channels();
    let mut sink = Sink::new(w, h, width, height);
    let mut rgb = vec![0u8; w as usize * 3];
    for row in frame.chunks_exact(row_len.max(1)) {
        row_to_rgb(row, layout, &mut rgb);
        sink.push(&rgb);
    }
    sink.finish()
        .map(image)
        .ok_or_else(|| DecodeError::Corrupt("JPEG ended before its last row".to_owned()))
}

/// Fixed-point weights: each output pixel's weights sum to exactly `ONE`, so flat areas keep their colour.
const SHIFT: u32 = 14;
const ONE: u32 = 1 << SHIFT;

/// Which source pixels make up each output pixel along one axis, and by how much (area coverage).
struct Axis {
    /// Per output pixel: first source index and the range of its weights in `weights`.
    spans: Vec<(usize, std::ops::Range<usize>)>,
    weights: Vec<u32>,
}

impl Axis {
    /// Area-averaging weights from `src` pixels down to `dst` (`0 < dst ≤ src`).
    fn new(src: u32, dst: u32) -> Axis {
        let (n, m) = (u64::from(src), u64::from(dst.clamp(1, src.max(1))));
        let mut spans = Vec::with_capacity(m as usize);
        let mut weights = Vec::with_capacity((n + 2 * m) as usize);
        for i in 0..m {
            // Output pixel i covers [i·n, (i+1)·n) and source pixel k covers [k·m, (k+1)·m), in units of 1/(n·m).
            let (lo, hi) = (i * n, (i + 1) * n);
            let (first, last) = (lo / m, hi.div_ceil(m).min(n));
            let begin = weights.len();
            let mut sum = 0u32;
            let mut largest = begin;
            for k in first..last {
                let overlap = hi.min((k + 1) * m).saturating_sub(lo.max(k * m));
                let w = (overlap * u64::from(ONE) / n) as u32;
                if weights.get(largest).is_none_or(|&l| w > l) {
                    largest = weights.len();
                }
                weights.push(w);
                sum += w;
            }
            if let Some(w) = weights.get_mut(largest) {
                *w += ONE.saturating_sub(sum);
            }
            spans.push((first as usize, begin..weights.len()));
        }
        Axis { spans, weights }
    }
}

/// Receives full-size RGB rows top to bottom and builds the display-sized image (area-averaged).
struct Sink {
    src_width: usize,
    src_height: usize,
    width: usize,
    height: usize,
    out: Vec<u8>,
    /// Rows received so far.
    received: usize,
    /// Scaling state; `None` when the sizes are equal and rows are copied.
    scale: Option<Scale>,
}

struct Scale {
    horizontal: Axis,
    vertical: Axis,
    /// The current row scaled horizontally, values in `0..=255 << 8`.
    row: Vec<u32>,
    /// Weighted sum of the rows of the output row being built, values in `0..=255 << 22`.
    acc: Vec<u32>,
    /// The output row being built.
    current: usize,
}

impl Sink {
    fn new(src_width: u32, src_height: u32, width: u32, height: u32) -> Sink {
        let (width, height) = (width.min(src_width), height.min(src_height));
        let scale = ((width, height) != (src_width, src_height)).then(|| Scale {
            horizontal: Axis::new(src_width, width),
            vertical: Axis::new(src_height, height),
            row: vec![0; width as usize * 3],
            acc: vec![0; width as usize * 3],
            current: 0,
        });
        Sink {
            src_width: src_width as usize,
            src_height: src_height as usize,
            width: width as usize,
            height: height as usize,
            out: Vec::with_capacity(width as usize * height as usize * 3),
            received: 0,
            scale,
        }
    }

    fn is_full(&self) -> bool {
        self.received >= self.src_height
    }

    /// Takes the next source row (`src_width × 3` bytes of RGB).
    fn push(&mut self, rgb: &[u8]) {
        if self.is_full() || rgb.len() < self.src_width * 3 {
            return;
        }
        let j = self.received;
        self.received += 1;
        let Some(scale) = self.scale.as_mut() else {
            self.out.extend_from_slice(&rgb[..self.width * 3]);
            return;
        };
        // Horizontal pass.
        for (o, (first, range)) in scale.row.chunks_exact_mut(3).zip(&scale.horizontal.spans) {
            let (mut r, mut g, mut b) = (0u32, 0u32, 0u32);
            let ws = &scale.horizontal.weights[range.clone()];
            let px = &rgb[first * 3..(first + ws.len()) * 3];
            for (w, p) in ws.iter().zip(px.chunks_exact(3)) {
                r += w * u32::from(p[0]);
                g += w * u32::from(p[1]);
                b += w * u32::from(p[2]);
            }
            o[0] = (r + 32) >> 6;
            o[1] = (g + 32) >> 6;
            o[2] = (b + 32) >> 6;
        }
        // Vertical pass: source row j belongs to one output row, or straddles two.
        while let Some((first, range)) = scale.vertical.spans.get(scale.current) {
            let count = range.len();
            if j < *first || j >= first + count {
                break;
            }
            let w = scale.vertical.weights[range.start + (j - first)];
            for (a, &v) in scale.acc.iter_mut().zip(&scale.row) {
                *a += w * v;
            }
            if j + 1 < first + count {
                break; // more rows to come for this output row
            }
            let half = 1u32 << (SHIFT + 8 - 1);
            self.out.extend(
                scale
                    .acc
                    .iter()
                    .map(|&a| ((a + half) >> (SHIFT + 8)).min(255) as u8),
            );
            scale.acc.fill(0);
            scale.current += 1;
        }
    }

    /// The display-sized pixels, or `None` when rows are missing.
    fn finish(self) -> Option<Vec<u8>> {
        (self.out.len() == self.width * self.height * 3).then_some(self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png_bytes(width: u32, height: u32, color: png::ColorType, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut encoder = png::Encoder::new(&mut out, width, height);
        encoder.set_color(color);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().expect("header");
        writer.write_image_data(data).expect("data");
        writer.finish().expect("finish");
        out
    }

    #[test]
    fn axis_weights_sum_to_one() {
        for (src, dst) in [
            (10, 3),
            (4000, 1600),
            (7, 7),
            (16384, 1),
            (5, 4),
            (2038, 1600),
        ] {
            let axis = Axis::new(src, dst);
            assert_eq!(axis.spans.len(), dst as usize);
            for (first, range) in &axis.spans {
                assert!(first + range.len() <= src as usize);
                assert_eq!(
                    axis.weights[range.clone()].iter().sum::<u32>(),
                    ONE,
                    "{src}→{dst}"
                );
            }
        }
    }

    #[test]
    fn flat_colour_survives_scaling() {
        let (w, h) = (37, 23);
        let data: Vec<u8> = std::iter::repeat_n([200u8, 17, 255], w * h)
            .flatten()
            .collect();
        let image = decode(
            &png_bytes(w as u32, h as u32, png::ColorType::Rgb, &data),
            10,
            &DecodeLimits::default(),
        )
        .expect("decodes");
        assert_eq!((image.width(), image.height()), (10, 6));
        assert!(image.pixels().chunks_exact(3).all(|p| p == [200, 17, 255]));
    }

    #[test]
    fn scaling_averages_areas() {
        // Black and white columns, scaled by 2: every output pixel is mid grey.
        let (w, h) = (8, 2);
        let data: Vec<u8> = (0..w * h)
            .map(|i| if i % 2 == 0 { 0 } else { 255 })
            .collect();
        let image = decode(
            &png_bytes(w, h, png::ColorType::Grayscale, &data),
            4,
            &DecodeLimits::default(),
        )
        .expect("decodes");
        assert_eq!((image.width(), image.height()), (4, 1));
        assert!(
            image.pixels().iter().all(|&v| v == 128),
            "{:?}",
            image.pixels()
        );
    }

    #[test]
    fn alpha_is_flattened_onto_white() {
        let data = [0u8, 0, 0, 0, 0, 0, 0, 255, 255, 0, 0, 128, 10, 20, 30, 255];
        let image = decode(
            &png_bytes(4, 1, png::ColorType::Rgba, &data),
            0,
            &DecodeLimits::default(),
        )
        .expect("decodes");
        assert_eq!(image.pixel(0, 0), Some([255, 255, 255]));
        assert_eq!(image.pixel(1, 0), Some([0, 0, 0]));
        assert_eq!(image.pixel(2, 0), Some([255, 127, 127]));
        assert_eq!(image.pixel(3, 0), Some([10, 20, 30]));
        assert_eq!(image.pixel(4, 0), None);
    }

    #[test]
    fn display_size_keeps_aspect_and_never_upscales() {
        assert_eq!(display_size(4000, 3000, 1600), (1600, 1200));
        assert_eq!(display_size(800, 600, 1600), (800, 600));
        assert_eq!(display_size(2038, 544, 1600), (1600, 427));
        assert_eq!(display_size(16384, 1, 100), (100, 1));
        assert_eq!(display_size(1000, 1000, 0), (1000, 1000));
    }

    #[test]
    fn jpeg_dimensions_are_checked_before_decoding() {
        let data: Vec<u8> = (0..300 * 200 * 3).map(|i| (i % 251) as u8).collect();
        let mut jpeg = Vec::new();
        image::codecs::jpeg::JpegEncoder::new(&mut jpeg)
            .encode(&data, 300, 200, image::ExtendedColorType::Rgb8)
            .expect("encodes");
        let small = DecodeLimits {
            max_width: 299,
            ..DecodeLimits::default()
        };
        assert!(matches!(
            decode(&jpeg, 0, &small),
            Err(DecodeError::TooLarge {
                width: 300,
                height: 200,
                ..
            })
        ));
        let image = decode(&jpeg, 0, &DecodeLimits::default()).expect("decodes");
        assert_eq!((image.width(), image.height()), (300, 200));
        assert!(matches!(
            decode(&jpeg[..12], 0, &DecodeLimits::default()),
            Err(DecodeError::Corrupt(_))
        ));
    }

    #[test]
    fn from_rgb_checks_the_size() {
        assert!(FloorImage::from_rgb(2, 2, vec![0; 12]).is_some());
        assert!(FloorImage::from_rgb(2, 2, vec![0; 11]).is_none());
        assert!(FloorImage::from_rgb(0, 0, Vec::new()).is_none());
    }
}
