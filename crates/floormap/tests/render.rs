//! Decoding floor images and drawing positions on them, checked pixel by pixel on the encoded output.

use std::io::Cursor;
use std::time::{Duration, Instant};

use image::{ImageFormat, Rgb, RgbImage};
use proptest::prelude::*;
use whereis_floormap::decode::{decode, DecodeError, DecodeLimits, FloorImage};
use whereis_floormap::render::{place, render, render_crop, Placement, Rendered, MARKER_COLOR};

const FIXTURE_IMAGE: &[u8] =
    include_bytes!("../../location/tests/fixtures/cmx-floor-image-domain_0_1421088463647.png");
const FIXTURE_CLIENTS: &str =
    include_str!("../../location/tests/fixtures/cmx-v1-clients-sandbox-80-devices-one-user.json");

// ---------------------------------------------------------------------------------------------------------
// Helpers

/// A plan-like picture: white, a light grey grid, dark room walls, and a coloured block in each corner so
/// "untouched" means something.
fn plan(width: u32, height: u32) -> RgbImage {
    let grid = (width.min(height) / 12).max(6);
    let room = (width.min(height) / 4).max(10);
    RgbImage::from_fn(width, height, |x, y| {
        let corner = match (x < 6, y < 6, x + 6 >= width, y + 6 >= height) {
            (true, true, _, _) => Some([40, 160, 220]),
            (_, true, true, _) => Some([250, 200, 40]),
            (true, _, _, true) => Some([30, 150, 60]),
            (_, _, true, true) => Some([120, 60, 20]),
            _ => None,
        };
        if let Some(c) = corner {
            Rgb(c)
        } else if x % room < 3 || y % room < 3 {
            Rgb([50, 50, 60])
        } else if x % grid == 0 || y % grid == 0 {
            Rgb([205, 205, 210])
        } else {
            Rgb([255, 255, 255])
        }
    })
}

fn encode(image: &RgbImage, format: ImageFormat) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    image
        .write_to(&mut out, format)
        .expect("test image encodes");
    out.into_inner()
}

fn decode_output(rendered: &Rendered) -> RgbImage {
    let output = image::load_from_memory_with_format(&rendered.png, ImageFormat::Png)
        .expect("output is a PNG");
    assert_eq!(
        output.color(),
        image::ColorType::Rgb8,
        "output is opaque RGB8"
    );
    output.to_rgb8()
}

fn floor(x: f64, y: f64, width: f64, length: f64) -> Placement {
    Placement {
        x,
        y,
        floor_width: width,
        floor_length: length,
        confidence: None,
    }
}

/// Renders and checks everything the output promises; returns the decoded output.
fn check_render(image: &FloorImage, placement: &Placement, label: &str) -> (Rendered, RgbImage) {
    let rendered =
        render(image, placement).unwrap_or_else(|e| panic!("{label}: render failed: {e}"));
    let output = decode_output(&rendered);
    let (w, h) = (image.width(), image.height());
    assert_eq!(
        (rendered.width, rendered.height),
        (w, h),
        "{label}: reported size"
    );
    assert_eq!(output.dimensions(), (w, h), "{label}: PNG size");

    // Where x/y say the marker is, clamped to the image.
    let ex = (placement.x / placement.floor_width * f64::from(w)).clamp(0.0, f64::from(w));
    let ey = (placement.y / placement.floor_length * f64::from(h)).clamp(0.0, f64::from(h));
    let expected = [
        (ex.floor() as u32).min(w - 1),
        (ey.floor() as u32).min(h - 1),
    ];
    for axis in 0..2 {
        assert!(
            rendered.marker[axis].abs_diff(expected[axis]) <= 1,
            "{label}: marker {:?}, expected {expected:?}",
            rendered.marker
        );
    }
    let [mx, my] = rendered.marker;
    assert_eq!(
        output.get_pixel(mx, my).0,
        MARKER_COLOR,
        "{label}: marker pixel"
    );
    assert_eq!(
        output.get_pixel(expected[0], expected[1]).0,
        MARKER_COLOR,
        "{label}: expected pixel"
    );

    // Far corners keep the input's pixels.
    let dot = (f64::from(w) / 140.0).max(7.0);
    let accuracy = placement
        .confidence
        .map_or(0.0, |c| c / placement.floor_width * f64::from(w) + 4.0);
    let reach = (dot * 2.0 + 8.0).max(accuracy);
    for (cx, cy) in [(0, 0), (w - 1, 0), (0, h - 1), (w - 1, h - 1)] {
        let distance = (f64::from(cx) - ex).hypot(f64::from(cy) - ey);
        if distance > reach + 3.0 {
            for (x, y) in block(cx, cy, w, h) {
                assert_eq!(
                    Some(output.get_pixel(x, y).0),
                    image.pixel(x, y),
                    "{label}: corner pixel ({x}, {y}) changed"
                );
            }
        }
    }
    (rendered, output)
}

/// The 3×3 block of pixels in the image at a corner.
fn block(cx: u32, cy: u32, w: u32, h: u32) -> Vec<(u32, u32)> {
    let xs = if cx == 0 {
        0..3.min(w)
    } else {
        w.saturating_sub(3)..w
    };
    let ys = if cy == 0 {
        0..3.min(h)
    } else {
        h.saturating_sub(3)..h
    };
    ys.flat_map(|y| xs.clone().map(move |x| (x, y))).collect()
}

/// Builds a PNG by hand (stored deflate blocks), so tests can make interlaced or lying files.
fn raw_png(
    width: u32,
    height: u32,
    color_type: u8,
    bit_depth: u8,
    interlaced: bool,
    scanlines: &[u8],
) -> Vec<u8> {
    fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let start = out.len();
        out.extend_from_slice(kind);
        out.extend_from_slice(data);
        let crc = crc32fast::hash(&out[start..]);
        out.extend_from_slice(&crc.to_be_bytes());
    }
    let mut out = vec![0x89, b'P', b'N', b'G', b'\r', b'\n', 0x1a, b'\n'];
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[bit_depth, color_type, 0, 0, u8::from(interlaced)]);
    chunk(&mut out, b"IHDR", &ihdr);
    // zlib stream of stored blocks.
    let mut zlib = vec![0x78, 0x01];
    let blocks: Vec<&[u8]> = scanlines.chunks(65_535).collect();
    for (i, block) in blocks.iter().enumerate() {
        zlib.push(u8::from(i + 1 == blocks.len()));
        let len = block.len() as u16;
        zlib.extend_from_slice(&len.to_le_bytes());
        zlib.extend_from_slice(&(!len).to_le_bytes());
        zlib.extend_from_slice(block);
    }
    let (mut a, mut b) = (1u32, 0u32);
    for &byte in scanlines {
        a = (a + u32::from(byte)) % 65_521;
        b = (b + a) % 65_521;
    }
    zlib.extend_from_slice(&((b << 16) | a).to_be_bytes());
    if !scanlines.is_empty() {
        chunk(&mut out, b"IDAT", &zlib);
    }
    chunk(&mut out, b"IEND", &[]);
    out
}

/// Adam7-ordered scanlines (filter 0) of an RGB image.
fn adam7_scanlines(image: &RgbImage) -> Vec<u8> {
    let (w, h) = image.dimensions();
    let passes = [
        (0, 0, 8, 8),
        (4, 0, 8, 8),
        (0, 4, 4, 8),
        (2, 0, 4, 4),
        (0, 2, 2, 4),
        (1, 0, 2, 2),
        (0, 1, 1, 2),
    ];
    let mut out = Vec::new();
    for (x0, y0, dx, dy) in passes {
        if x0 >= w || y0 >= h {
            continue;
        }
        for y in (y0..h).step_by(dy) {
            out.push(0);
            for x in (x0..w).step_by(dx) {
                out.extend_from_slice(&image.get_pixel(x, y).0);
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------------------
// Placing the marker

struct Case {
    label: &'static str,
    floor: (f64, f64),
    image: (u32, u32),
    max_width: u32,
    display: (u32, u32),
}

const CASES: &[Case] = &[
    // Wide floor like the fixture (307 × 81.9 ft), image larger than, equal to and smaller than max_width.
    Case {
        label: "wide, larger",
        floor: (307.0, 81.9),
        image: (2038, 544),
        max_width: 1600,
        display: (1600, 427),
    },
    Case {
        label: "wide, equal",
        floor: (307.0, 81.9),
        image: (1600, 427),
        max_width: 1600,
        display: (1600, 427),
    },
    Case {
        label: "wide, smaller",
        floor: (307.0, 81.9),
        image: (800, 213),
        max_width: 1600,
        display: (800, 213),
    },
    // Tall floor (39 × 74.1 ft).
    Case {
        label: "tall, smaller",
        floor: (39.0, 74.1),
        image: (390, 741),
        max_width: 1600,
        display: (390, 741),
    },
    Case {
        label: "tall, larger",
        floor: (39.0, 74.1),
        image: (1000, 1900),
        max_width: 600,
        display: (600, 1140),
    },
    // Square floor.
    Case {
        label: "square, larger",
        floor: (100.0, 100.0),
        image: (2000, 2000),
        max_width: 1600,
        display: (1600, 1600),
    },
    Case {
        label: "square, equal",
        floor: (50.0, 50.0),
        image: (640, 640),
        max_width: 640,
        display: (640, 640),
    },
    // Non-square pixels: the image's aspect ratio is not the floor's.
    Case {
        label: "non-square pixels",
        floor: (307.0, 81.9),
        image: (1000, 500),
        max_width: 1600,
        display: (1000, 500),
    },
    Case {
        label: "non-square, scaled",
        floor: (40.0, 120.0),
        image: (1800, 900),
        max_width: 900,
        display: (900, 450),
    },
];

/// Positions as fractions of the floor, away from the corners.
const POSITIONS: &[(f64, f64)] = &[
    (0.5, 0.5),
    (0.1, 0.2),
    (0.9, 0.85),
    (0.33, 0.67),
    (0.75, 0.1),
];

#[test]
fn marker_lands_where_x_and_y_say_in_png_and_jpeg() {
    for case in CASES {
        let picture = plan(case.image.0, case.image.1);
        for format in [ImageFormat::Png, ImageFormat::Jpeg] {
            let bytes = encode(&picture, format);
            let image = decode(&bytes, case.max_width, &DecodeLimits::default())
                .unwrap_or_else(|e| panic!("{}: {e}", case.label));
            assert_eq!(
                (image.width(), image.height()),
                case.display,
                "{}: display size",
                case.label
            );
            assert_eq!(
                (image.source_width(), image.source_height()),
                case.image,
                "{}: source",
                case.label
            );
            for &(fx, fy) in POSITIONS {
                let (fw, fl) = case.floor;
                let label = format!("{} {format:?} at ({fx}, {fy})", case.label);
                let (rendered, _) = check_render(&image, &floor(fx * fw, fy * fl, fw, fl), &label);
                assert!(!rendered.clamped, "{label}: not clamped");
            }
        }
    }
}

#[test]
fn unscaled_png_keeps_its_pixels_exactly() {
    let picture = plan(640, 360);
    let image = decode(
        &encode(&picture, ImageFormat::Png),
        1600,
        &DecodeLimits::default(),
    )
    .expect("decodes");
    assert_eq!(image.pixels(), picture.as_raw().as_slice());
    let (_, output) = check_render(&image, &floor(20.0, 10.0, 40.0, 20.0), "unscaled");
    // Everything away from the marker is the input.
    let changed = output
        .enumerate_pixels()
        .filter(|(x, y, p)| *picture.get_pixel(*x, *y) != **p)
        .map(|(x, y, _)| (f64::from(x) - 320.0).hypot(f64::from(y) - 180.0))
        .fold(0.0f64, f64::max);
    assert!(
        changed > 5.0 && changed < 25.0,
        "pixels changed up to {changed} px from the marker"
    );
}

#[test]
fn units_do_not_change_the_maths() {
    let image = decode(
        &encode(&plan(1200, 800), ImageFormat::Png),
        1600,
        &DecodeLimits::default(),
    )
    .expect("decodes");
    let metres = floor(12.34, 30.0, 40.0, 26.0);
    let feet_per_metre = 1.0 / 0.3048;
    let feet = Placement {
        x: metres.x * feet_per_metre,
        y: metres.y * feet_per_metre,
        floor_width: metres.floor_width * feet_per_metre,
        floor_length: metres.floor_length * feet_per_metre,
        confidence: Some(3.0 * feet_per_metre),
    };
    let in_metres = check_render(
        &image,
        &Placement {
            confidence: Some(3.0),
            ..metres
        },
        "metres",
    )
    .0;
    let in_feet = check_render(&image, &feet, "feet").0;
    assert_eq!(in_metres.marker, in_feet.marker);
    assert_eq!(in_metres.marker, [370, 799]);
    assert!(in_metres.clamped, "y 30 m on a 26 m floor is clamped");
    assert_eq!(in_metres.png, in_feet.png);
}

#[test]
fn positions_outside_the_floor_are_clamped_to_the_edge_and_flagged() {
    let image = decode(
        &encode(&plan(900, 300), ImageFormat::Png),
        1600,
        &DecodeLimits::default(),
    )
    .expect("decodes");
    let cases = [
        (-10.0, 40.0, [0, 150]),
        (400.0, 40.0, [899, 150]),
        (150.0, -1.0, [450, 0]),
        (150.0, 81.0, [450, 299]),
        (-5.0, 500.0, [0, 299]),
        (f64::NAN, 40.0, [0, 150]),
        (f64::INFINITY, f64::NEG_INFINITY, [899, 0]),
    ];
    for (x, y, marker) in cases {
        let rendered = render(&image, &floor(x, y, 300.0, 80.0)).expect("renders");
        assert!(rendered.clamped, "({x}, {y}) flagged");
        assert_eq!(rendered.marker, marker, "({x}, {y})");
        assert_eq!(
            decode_output(&rendered).get_pixel(marker[0], marker[1]).0,
            MARKER_COLOR
        );
    }
    // The floor's own edges are on the floor.
    let rendered = render(&image, &floor(300.0, 0.0, 300.0, 80.0)).expect("renders");
    assert!(!rendered.clamped);
    assert_eq!(rendered.marker, [899, 0]);
}

#[test]
fn never_upscaled() {
    let image = decode(
        &encode(&plan(800, 600), ImageFormat::Png),
        1600,
        &DecodeLimits::default(),
    )
    .expect("decodes");
    assert_eq!((image.width(), image.height()), (800, 600));
    let rendered = render(&image, &floor(1.0, 1.0, 8.0, 6.0)).expect("renders");
    assert_eq!((rendered.width, rendered.height), (800, 600));
    let jpeg = decode(
        &encode(&plan(800, 600), ImageFormat::Jpeg),
        1600,
        &DecodeLimits::default(),
    )
    .expect("decodes");
    assert_eq!((jpeg.width(), jpeg.height()), (800, 600));
}

#[test]
fn byte_size_counts_the_display_pixels() {
    let image = decode(
        &encode(&plan(2000, 1000), ImageFormat::Png),
        1000,
        &DecodeLimits::default(),
    )
    .expect("decodes");
    assert!(image.byte_size() >= 1000 * 500 * 3);
    assert!(image.byte_size() < 1000 * 500 * 3 + 4096);
}

#[test]
fn grey_indexed_16_bit_and_transparent_pngs_decode() {
    let gray = image::GrayImage::from_fn(40, 20, |x, _| image::Luma([(x * 6) as u8]));
    let mut bytes = Cursor::new(Vec::new());
    gray.write_to(&mut bytes, ImageFormat::Png)
        .expect("encodes");
    let image = decode(bytes.get_ref(), 0, &DecodeLimits::default()).expect("grey decodes");
    assert_eq!(image.pixel(10, 5), Some([60, 60, 60]));

    let deep = image::ImageBuffer::<image::Rgb<u16>, _>::from_fn(30, 10, |_, _| {
        image::Rgb([65535u16, 0, 32896])
    });
    let mut bytes = Cursor::new(Vec::new());
    deep.write_to(&mut bytes, ImageFormat::Png)
        .expect("encodes");
    let image = decode(bytes.get_ref(), 0, &DecodeLimits::default()).expect("16-bit decodes");
    assert_eq!(image.pixel(3, 3), Some([255, 0, 128]));

    // Fully transparent pixels become white, whatever colour they carry.
    let clear = image::RgbaImage::from_fn(30, 10, |x, _| {
        image::Rgba([0, 0, 0, if x < 15 { 0 } else { 255 }])
    });
    let mut bytes = Cursor::new(Vec::new());
    clear
        .write_to(&mut bytes, ImageFormat::Png)
        .expect("encodes");
    let image = decode(bytes.get_ref(), 0, &DecodeLimits::default()).expect("RGBA decodes");
    assert_eq!(image.pixel(0, 0), Some([255, 255, 255]));
    assert_eq!(image.pixel(20, 0), Some([0, 0, 0]));

    // Palette with a tRNS chunk, 2-bit.
    let mut out = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut out, 4, 1);
        encoder.set_color(png::ColorType::Indexed);
        encoder.set_depth(png::BitDepth::Two);
        encoder.set_palette(vec![255, 0, 0, 0, 255, 0, 0, 0, 255, 9, 9, 9]);
        encoder.set_trns(vec![255, 255, 255, 0]);
        let mut writer = encoder.write_header().expect("header");
        writer.write_image_data(&[0b0001_1011]).expect("data");
    }
    let image = decode(&out, 0, &DecodeLimits::default()).expect("indexed decodes");
    let pixels: Vec<_> = (0..4).filter_map(|x| image.pixel(x, 0)).collect();
    assert_eq!(
        pixels,
        [[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 255]]
    );
}

#[test]
fn interlaced_png_decodes_like_the_plain_one() {
    let picture = plan(123, 77);
    let bytes = raw_png(123, 77, 2, 8, true, &adam7_scanlines(&picture));
    let image = decode(&bytes, 0, &DecodeLimits::default()).expect("interlaced decodes");
    assert_eq!(image.pixels(), picture.as_raw().as_slice());
    let scaled = decode(&bytes, 50, &DecodeLimits::default()).expect("interlaced decodes scaled");
    let plain = decode(
        &encode(&picture, ImageFormat::Png),
        50,
        &DecodeLimits::default(),
    )
    .expect("decodes");
    assert_eq!(scaled.pixels(), plain.pixels());
}

// ---------------------------------------------------------------------------------------------------------
// The real fixture

/// The 80-device capture's floor: 307 × 81.9 ft, image 2038 × 544.
const FIXTURE_FLOOR: (f64, f64) = (307.0, 81.9);

fn fixture_device(x: &str, y: &str, confidence: &str) -> Placement {
    // Taken from the capture; make sure they are really in it.
    for value in [x, y] {
        assert!(FIXTURE_CLIENTS.contains(value), "{value} is in the fixture");
    }
    Placement {
        x: x.parse().expect("number"),
        y: y.parse().expect("number"),
        floor_width: FIXTURE_FLOOR.0,
        floor_length: FIXTURE_FLOOR.1,
        confidence: Some(confidence.parse().expect("number")),
    }
}

#[test]
fn real_fixture_floor_with_a_real_position() {
    let image = decode(FIXTURE_IMAGE, 1600, &DecodeLimits::default()).expect("fixture decodes");
    assert_eq!((image.source_width(), image.source_height()), (2038, 544));
    assert_eq!((image.width(), image.height()), (1600, 427));

    // 00:00:2a:01:00:35 — x 255.15509, y 56.827118, confidence 24 ft.
    let device = fixture_device("255.15509", "56.827118", "24.0");
    let (rendered, output) = check_render(&image, &device, "fixture");
    assert_eq!(rendered.marker, [1329, 296]);
    assert!(!rendered.clamped);
    // The confidence circle (24 ft ≈ 125 px) tints the plan around the marker but not beyond.
    let inside = output.get_pixel(1329 + 80, 296).0;
    let before = image.pixel(1329 + 80, 296).expect("in image");
    assert_ne!(inside, before, "confidence area is tinted");
    assert_eq!(
        Some(output.get_pixel(1329 + 140, 296).0),
        image.pixel(1329 + 140, 296)
    );

    // 00:00:2a:01:00:34 — confidence 136 ft: a large circle, still drawn.
    let device = fixture_device("31.541542", "53.061443", "136.0");
    let (rendered, _) = check_render(&image, &device, "fixture, large circle");
    assert_eq!(rendered.marker, [164, 276]);

    // Unscaled, the same position lands on the same spot scaled by 2038/1600.
    let full = decode(FIXTURE_IMAGE, 4000, &DecodeLimits::default()).expect("fixture decodes");
    assert_eq!((full.width(), full.height()), (2038, 544));
    let (rendered, _) = check_render(&full, &device, "fixture, full size");
    assert_eq!(rendered.marker, [209, 352]);
}

#[test]
fn fixture_crop_for_chat() {
    let image = decode(FIXTURE_IMAGE, 1600, &DecodeLimits::default()).expect("fixture decodes");
    let device = fixture_device("255.15509", "56.827118", "24.0");
    let full = decode_output(&render(&image, &device).expect("renders"));
    let crop = render_crop(&image, &device, 600).expect("crops");
    assert_eq!(
        (crop.width, crop.height),
        (600, 427),
        "crop is as tall as the image allows"
    );
    // The marker at x 1329 is within 300 px of the right edge: the crop ends there, origin 1000.
    assert_eq!(crop.marker, [329, 296]);
    let output = decode_output(&crop);
    assert_eq!(output.dimensions(), (600, 427));
    assert_eq!(output.get_pixel(329, 296).0, MARKER_COLOR);
    for (x, y, p) in output.enumerate_pixels() {
        assert_eq!(
            *p,
            *full.get_pixel(x + 1000, y),
            "crop pixel ({x}, {y}) matches the full render"
        );
    }
}

// ---------------------------------------------------------------------------------------------------------
// Crops

#[test]
fn crops_centre_the_marker_as_far_as_the_edges_allow() {
    let image = decode(
        &encode(&plan(1600, 1200), ImageFormat::Png),
        1600,
        &DecodeLimits::default(),
    )
    .expect("decodes");
    let (fw, fl) = (160.0, 120.0);
    let full_render = |p: &Placement| decode_output(&render(&image, p).expect("renders"));
    // (x, y) in floor units → expected origin of a 400 px crop and marker in it.
    let cases = [
        ((80.0, 60.0), [600, 400], [200, 200]),      // middle: centred
        ((1.0, 1.0), [0, 0], [10, 10]),              // top-left corner
        ((159.95, 119.95), [1200, 800], [399, 399]), // bottom-right corner
        ((5.0, 60.0), [0, 400], [50, 200]),          // left edge
        ((100.0, 115.0), [800, 800], [200, 350]),    // bottom edge
    ];
    for ((x, y), origin, marker) in cases {
        let placement = floor(x, y, fw, fl);
        let crop = render_crop(&image, &placement, 400).expect("crops");
        assert_eq!((crop.width, crop.height), (400, 400));
        assert_eq!(crop.marker, marker, "({x}, {y})");
        let output = decode_output(&crop);
        assert_eq!(output.dimensions(), (400, 400));
        assert_eq!(
            output.get_pixel(marker[0], marker[1]).0,
            MARKER_COLOR,
            "({x}, {y})"
        );
        let full = full_render(&placement);
        for (cx, cy, p) in output.enumerate_pixels() {
            assert_eq!(
                *p,
                *full.get_pixel(cx + origin[0], cy + origin[1]),
                "({x}, {y}) crop pixel ({cx}, {cy})"
            );
        }
    }
}

#[test]
fn crop_larger_than_the_image_is_the_whole_image() {
    let image = decode(
        &encode(&plan(300, 200), ImageFormat::Png),
        1600,
        &DecodeLimits::default(),
    )
    .expect("decodes");
    let placement = floor(10.0, 10.0, 30.0, 20.0);
    let crop = render_crop(&image, &placement, 600).expect("crops");
    let full = render(&image, &placement).expect("renders");
    assert_eq!((crop.width, crop.height), (300, 200));
    assert_eq!(crop.marker, full.marker);
    assert_eq!(decode_output(&crop), decode_output(&full));
    assert!(render_crop(&image, &placement, 0).is_err());
    let tiny = render_crop(&image, &placement, 1).expect("1 px crop");
    assert_eq!((tiny.width, tiny.height, tiny.marker), (1, 1, [0, 0]));
    assert_eq!(decode_output(&tiny).get_pixel(0, 0).0, MARKER_COLOR);
}

// ---------------------------------------------------------------------------------------------------------
// Faults

#[test]
fn empty_and_random_bytes_are_rejected() {
    let limits = DecodeLimits::default();
    assert!(matches!(
        decode(&[], 1600, &limits),
        Err(DecodeError::Empty)
    ));
    let random: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    assert!(matches!(
        decode(&random, 1600, &limits),
        Err(DecodeError::UnknownFormat)
    ));
    let err = decode(b"<html>404</html>", 1600, &limits).expect_err("html");
    assert_eq!(err.to_string(), "not a PNG or JPEG image");
    // Right signature, garbage after it.
    let mut png = vec![0x89, b'P', b'N', b'G', b'\r', b'\n', 0x1a, b'\n'];
    png.extend_from_slice(&random);
    assert!(matches!(
        decode(&png, 1600, &limits),
        Err(DecodeError::Corrupt(_))
    ));
    let mut jpeg = vec![0xff, 0xd8, 0xff];
    jpeg.extend_from_slice(&random);
    assert!(matches!(
        decode(&jpeg, 1600, &limits),
        Err(DecodeError::Corrupt(_))
    ));
}

#[test]
fn gif_and_bmp_are_unknown_formats() {
    let gif = b"GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;";
    let mut bmp = b"BM".to_vec();
    bmp.extend_from_slice(&[
        0x3a, 0, 0, 0, 0, 0, 0, 0, 0x36, 0, 0, 0, 0x28, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 24,
        0,
    ]);
    bmp.resize(0x3a, 0);
    for bytes in [
        gif.as_slice(),
        bmp.as_slice(),
        b"RIFF\0\0\0\0WEBPVP8 ",
        b"II*\0",
    ] {
        assert!(matches!(
            decode(bytes, 1600, &DecodeLimits::default()),
            Err(DecodeError::UnknownFormat)
        ));
    }
}

#[test]
fn truncated_png_is_corrupt() {
    let bytes = encode(&plan(400, 300), ImageFormat::Png);
    for cut in [9, 20, 33, 60, bytes.len() / 3, bytes.len() / 2] {
        let err = decode(&bytes[..cut], 1600, &DecodeLimits::default()).expect_err("truncated");
        assert!(
            matches!(err, DecodeError::Corrupt(_)),
            "cut at {cut}: {err}"
        );
        assert!(err.to_string().starts_with("corrupt image: "), "{err}");
    }
}

#[test]
fn truncated_jpeg_is_corrupt_or_still_the_right_size() {
    let bytes = encode(&plan(400, 300), ImageFormat::Jpeg);
    // Before the frame header: certainly corrupt.
    for cut in [3, 10, 20] {
        let err = decode(&bytes[..cut], 1600, &DecodeLimits::default()).expect_err("truncated");
        assert!(
            matches!(err, DecodeError::Corrupt(_)),
            "cut at {cut}: {err}"
        );
    }
    // Inside the scan data the decoder may be lenient (grey for the missing part), never wrong-sized.
    for cut in [bytes.len() / 3, bytes.len() / 2, bytes.len() - 2] {
        match decode(&bytes[..cut], 1600, &DecodeLimits::default()) {
            Ok(image) => assert_eq!((image.width(), image.height()), (400, 300)),
            Err(err) => assert!(
                matches!(err, DecodeError::Corrupt(_)),
                "cut at {cut}: {err}"
            ),
        }
    }
}

#[test]
fn decompression_bomb_is_rejected_quickly_by_its_header() {
    // A valid PNG header (correct CRC) claiming 100000 × 100000, followed by a little real data.
    let bytes = raw_png(100_000, 100_000, 6, 8, false, &[0; 1000]);
    let started = Instant::now();
    let err = decode(&bytes, 1600, &DecodeLimits::default()).expect_err("too large");
    assert!(
        started.elapsed() < Duration::from_millis(100),
        "took {:?}",
        started.elapsed()
    );
    assert!(
        matches!(
            err,
            DecodeError::TooLarge {
                width: 100_000,
                height: 100_000,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "image is 100000×100000 px, more than the 16384×16384 allowed"
    );
    // Just past the limit on one side.
    let bytes = raw_png(16_385, 1, 2, 8, false, &[0; 100]);
    assert!(matches!(
        decode(&bytes, 1600, &DecodeLimits::default()),
        Err(DecodeError::TooLarge { .. })
    ));
    // Within the dimensions but over the memory budget.
    let limits = DecodeLimits {
        max_alloc: 1 << 20,
        ..DecodeLimits::default()
    };
    let bytes = raw_png(1000, 1000, 2, 8, false, &[0; 100]);
    assert!(matches!(
        decode(&bytes, 1600, &limits),
        Err(DecodeError::TooMuchMemory { .. })
    ));
    // No dimension limit at all: the memory budget still stops it, without overflowing.
    let unlimited = DecodeLimits {
        max_width: u32::MAX,
        max_height: u32::MAX,
        ..DecodeLimits::default()
    };
    let bytes = raw_png(u32::MAX, u32::MAX, 6, 16, true, &[0; 100]);
    assert!(matches!(
        decode(&bytes, 1600, &unlimited),
        Err(DecodeError::TooMuchMemory { .. })
    ));
    // A real JPEG whose frame header claims 60000 × 60000.
    let mut jpeg = encode(&plan(64, 48), ImageFormat::Jpeg);
    let sof = jpeg
        .windows(2)
        .position(|w| w == [0xff, 0xc0])
        .expect("baseline frame header");
    jpeg[sof + 5..sof + 9].copy_from_slice(&[0xea, 0x60, 0xea, 0x60]);
    let started = Instant::now();
    assert!(matches!(
        decode(&jpeg, 1600, &DecodeLimits::default()),
        Err(DecodeError::TooLarge {
            width: 60_000,
            height: 60_000,
            ..
        })
    ));
    assert!(started.elapsed() < Duration::from_millis(100));
    // The same claim with nothing after the frame header: refused before any pixel is decoded.
    let jpeg = [
        0xff, 0xd8, 0xff, 0xc0, 0x00, 0x11, 0x08, 0xea, 0x60, 0xea, 0x60, 0x03, 1, 0x11, 0, 2,
        0x11, 0, 3, 0x11, 0,
    ];
    assert!(matches!(
        decode(&jpeg, 1600, &DecodeLimits::default()),
        Err(DecodeError::Corrupt(_) | DecodeError::TooLarge { .. })
    ));
}

#[test]
fn png_with_rows_missing_is_corrupt() {
    // Header says 10 rows of 10 px, data holds 5.
    let scanlines: Vec<u8> = (0..5)
        .flat_map(|_| std::iter::once(0).chain(std::iter::repeat_n(200, 30)))
        .collect();
    let bytes = raw_png(10, 10, 2, 8, false, &scanlines);
    assert!(matches!(
        decode(&bytes, 1600, &DecodeLimits::default()),
        Err(DecodeError::Corrupt(_))
    ));
}

#[test]
fn render_survives_absurd_placements() {
    let image = FloorImage::from_rgb(64, 48, vec![255; 64 * 48 * 3]).expect("image");
    for placement in [
        floor(1e308, -1e308, 1e-308, 1e308),
        floor(5.0, 5.0, 0.0, 0.0),
        floor(5.0, 5.0, -10.0, f64::NAN),
        Placement {
            confidence: Some(1e300),
            ..floor(5.0, 5.0, 10.0, 10.0)
        },
        Placement {
            confidence: Some(f64::INFINITY),
            ..floor(5.0, 5.0, 10.0, 10.0)
        },
        Placement {
            confidence: Some(-3.0),
            ..floor(5.0, 5.0, 10.0, 10.0)
        },
    ] {
        let rendered = render(&image, &placement).expect("renders");
        assert!(rendered.marker[0] < 64 && rendered.marker[1] < 48);
        let output = decode_output(&rendered);
        assert_eq!(
            output.get_pixel(rendered.marker[0], rendered.marker[1]).0,
            MARKER_COLOR
        );
    }
}

// ---------------------------------------------------------------------------------------------------------
// Properties

fn any_f64() -> impl Strategy<Value = f64> {
    prop_oneof![
        prop::num::f64::ANY,
        -1000.0..1000.0f64,
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(0.0),
        Just(-0.0),
        Just(f64::MAX),
        Just(f64::MIN_POSITIVE),
    ]
}

fn any_placement() -> impl Strategy<Value = Placement> {
    (
        any_f64(),
        any_f64(),
        any_f64(),
        any_f64(),
        prop::option::of(any_f64()),
    )
        .prop_map(|(x, y, floor_width, floor_length, confidence)| Placement {
            x,
            y,
            floor_width,
            floor_length,
            confidence,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn decode_never_panics_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        let _ = decode(&bytes, 100, &DecodeLimits::default());
    }

    #[test]
    fn decode_never_panics_on_damaged_images(
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
        jpeg in any::<bool>(),
    ) {
        let mut bytes = encode(&plan(40, 30), if jpeg { ImageFormat::Jpeg } else { ImageFormat::Png });
        for (at, value) in flips {
            let at = at.index(bytes.len());
            bytes[at] = value;
        }
        let len = cut.index(bytes.len()) + 1;
        if let Ok(image) = decode(&bytes[..len], 20, &DecodeLimits::default()) {
            prop_assert!(image.width() <= 20 || image.width() == image.source_width());
            prop_assert_eq!(image.pixels().len(), image.width() as usize * image.height() as usize * 3);
        }
    }

    #[test]
    fn place_stays_in_the_image(placement in any_placement(), w in 1u32..20_000, h in 1u32..20_000) {
        let position = place(&placement, w, h);
        prop_assert!(position.pixel[0] < w && position.pixel[1] < h);
        prop_assert!(position.px >= 0.0 && position.px <= f64::from(w));
        prop_assert!(position.py >= 0.0 && position.py <= f64::from(h));
        if let Some(r) = position.accuracy_px {
            prop_assert!(r.is_finite() && r > 0.0);
        }
        let inside = placement.floor_width > 0.0 && placement.floor_length > 0.0
            && placement.floor_width.is_finite() && placement.floor_length.is_finite()
            && (0.0..=placement.floor_width).contains(&placement.x)
            && (0.0..=placement.floor_length).contains(&placement.y)
            && (placement.x / placement.floor_width).is_finite()
            && (placement.y / placement.floor_length).is_finite();
        prop_assert_eq!(position.clamped, !inside);
    }

    #[test]
    fn render_never_panics_and_marks_inside(placement in any_placement(), crop in 1u32..100) {
        let image = FloorImage::from_rgb(64, 48, vec![255; 64 * 48 * 3]).expect("image");
        let rendered = render(&image, &placement).expect("renders");
        prop_assert!(rendered.marker[0] < 64 && rendered.marker[1] < 48);
        prop_assert_eq!(decode_output(&rendered).get_pixel(rendered.marker[0], rendered.marker[1]).0, MARKER_COLOR);
        let cropped = render_crop(&image, &placement, crop).expect("crops");
        prop_assert!(cropped.marker[0] < cropped.width && cropped.marker[1] < cropped.height);
        prop_assert_eq!((cropped.width, cropped.height), (crop.min(64), crop.min(48)));
        prop_assert_eq!(decode_output(&cropped).get_pixel(cropped.marker[0], cropped.marker[1]).0, MARKER_COLOR);
    }
}
