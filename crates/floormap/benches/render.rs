//! Floor map benchmarks on a plausible 4000 × 3000 floor plan (targets and results: BENCHMARKS.md).
//!
//! The plan has walls, rooms, furniture and text-like noise on white — not flat colour, since PNG speed
//! and size depend on the content.

#[path = "support/plan.rs"]
mod plan;

use std::future::Future;
use std::hint::black_box;
use std::pin::Pin;

use criterion::{criterion_group, criterion_main, Criterion};
use plan::{floor_plan, png_bytes, HEIGHT, WIDTH};
use whereis_floormap::decode::{decode, DecodeLimits};
use whereis_floormap::render::{render, render_crop, Placement};
use whereis_floormap::{FloorMaps, MapSettings};
use whereis_location::{LocationSource, Probe, SourceAnswer, SourceError};

const DISPLAY_WIDTH: u32 = 1600;
const IMAGE_NAME: &str = "plan-4000x3000.png";

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A location server that serves the plan and nothing else.
struct PlanServer(Vec<u8>);

impl LocationSource for PlanServer {
    fn name(&self) -> &str {
        "cmx-bench"
    }

    fn priority(&self) -> i32 {
        0
    }

    fn locate<'a>(
        &'a self,
        _identity: &'a str,
    ) -> BoxFuture<'a, Result<SourceAnswer, SourceError>> {
        Box::pin(async { Err(SourceError::Status("locates nobody".to_owned())) })
    }

    fn probe(&self) -> BoxFuture<'_, Result<Probe, SourceError>> {
        Box::pin(async { Err(SourceError::Status("cannot be probed".to_owned())) })
    }

    fn floor_image<'a>(
        &'a self,
        _image_name: &'a str,
    ) -> BoxFuture<'a, Result<Vec<u8>, SourceError>> {
        Box::pin(async { Ok(self.0.clone()) })
    }
}

fn benches(c: &mut Criterion) {
    let bytes = png_bytes(&floor_plan());
    let limits = DecodeLimits::default();
    let image = decode(&bytes, DISPLAY_WIDTH, &limits).expect("plan decodes");
    // A 300 × 225 ft floor; the device with a 20 ft confidence radius.
    let placement = Placement {
        x: 181.3,
        y: 97.6,
        floor_width: 300.0,
        floor_length: 225.0,
        confidence: Some(20.0),
    };
    let rendered = render(&image, &placement).expect("renders");
    eprintln!(
        "plan: {} KiB PNG {WIDTH}×{HEIGHT} → display {}×{}, rendered PNG {} KiB",
        bytes.len() / 1024,
        image.width(),
        image.height(),
        rendered.png.len() / 1024
    );

    let mut group = c.benchmark_group("floormap");
    group.sample_size(30);
    group.bench_function("render 4000x3000 plan at 1600 px (decode cached)", |b| {
        b.iter(|| render(black_box(&image), black_box(&placement)).expect("renders"))
    });
    group.bench_function("render_crop 600 px", |b| {
        b.iter(|| render_crop(black_box(&image), black_box(&placement), 600).expect("crops"))
    });
    group.sample_size(10);
    group.bench_function("decode 4000x3000 PNG to 1600 px (cold)", |b| {
        b.iter(|| decode(black_box(&bytes), DISPLAY_WIDTH, &limits).expect("decodes"))
    });

    // Two ways to keep the display-sized pixels on disk, as a new process reads them (page cache warm).
    let dir_formats = tempfile::tempdir().expect("temp dir");
    let raw_path = dir_formats.path().join("display.rgb");
    std::fs::write(&raw_path, image.pixels()).expect("raw copy");
    let mut display_png = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut display_png, image.width(), image.height());
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        encoder.set_compression(png::Compression::Fastest);
        let mut writer = encoder.write_header().expect("header");
        writer.write_image_data(image.pixels()).expect("pixels");
        writer.finish().expect("finish");
    }
    let png_path = dir_formats.path().join("display.png");
    std::fs::write(&png_path, &display_png).expect("png copy");
    eprintln!(
        "display copy: raw {} KiB, PNG (fastest) {} KiB",
        image.pixels().len() / 1024,
        display_png.len() / 1024
    );
    group.sample_size(30);
    group.bench_function("display copy: raw RGB read + CRC-32", |b| {
        b.iter(|| {
            let data = std::fs::read(black_box(&raw_path)).expect("read");
            crc32fast::hash(&data)
        })
    });
    group.bench_function("display copy: PNG (fastest) read + decode", |b| {
        b.iter(|| {
            let data = std::fs::read(black_box(&png_path)).expect("read");
            decode(&data, DISPLAY_WIDTH, &limits).expect("decodes")
        })
    });

    // What a new process does with a warm disk cache: an empty memory cache, the display-sized copy read
    // from disk (page cache), the marker drawn and the PNG encoded.
    let dir = tempfile::tempdir().expect("temp dir");
    let settings = MapSettings {
        display_width: DISPLAY_WIDTH,
        cache_dir: Some(dir.path().to_owned()),
        ..MapSettings::default()
    };
    let server = PlanServer(bytes);
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime
        .block_on(FloorMaps::new(settings.clone()).floor_image(&server, IMAGE_NAME))
        .expect("fills the disk cache");
    group.sample_size(30);
    group.bench_function(
        "new process: load display-sized copy + render + encode",
        |b| {
            b.to_async(&runtime).iter(|| async {
                let maps = FloorMaps::new(settings.clone());
                let image = maps
                    .floor_image(&server, IMAGE_NAME)
                    .await
                    .expect("from the disk cache");
                render(&image, black_box(&placement)).expect("renders")
            })
        },
    );
    group.finish();
}

criterion_group!(render_benches, benches);
criterion_main!(render_benches);
