//! A plausible 4000 × 3000 floor plan, shared by the benchmarks and the `plan_stand` example: walls,
//! rooms, furniture and text-like noise on white — not flat colour, since PNG speed and size depend on
//! the content.

use std::io::Cursor;

use image::{ImageFormat, Rgb, RgbImage};

/// Width of the generated plan.
pub const WIDTH: u32 = 4000;
/// Height of the generated plan.
pub const HEIGHT: u32 = 3000;

/// A small deterministic generator (xorshift), so every run benches the same picture.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u32) -> u32 {
        (self.next() % u64::from(n.max(1))) as u32
    }
}

fn fill(image: &mut RgbImage, x: u32, y: u32, w: u32, h: u32, color: [u8; 3]) {
    for yy in y..(y + h).min(image.height()) {
        for xx in x..(x + w).min(image.width()) {
            image.put_pixel(xx, yy, Rgb(color));
        }
    }
}

/// Outer walls, a grid of rooms with doors, desks, a few coloured zones and labels made of glyph noise.
pub fn floor_plan() -> RgbImage {
    let mut plan = RgbImage::from_pixel(WIDTH, HEIGHT, Rgb([255, 255, 255]));
    let mut random = Random(0x9e37_79b9_7f4a_7c15);
    let wall = [40, 40, 48];
    // Light grid (the CAD background).
    for x in (0..WIDTH).step_by(50) {
        fill(&mut plan, x, 0, 1, HEIGHT, [225, 228, 232]);
    }
    for y in (0..HEIGHT).step_by(50) {
        fill(&mut plan, 0, y, WIDTH, 1, [225, 228, 232]);
    }
    // Rooms: 8 × 6 blocks, each wall 6 px, with a door gap.
    let (cols, rows) = (8, 6);
    let (room_w, room_h) = (WIDTH / cols, HEIGHT / rows);
    for c in 0..cols {
        for r in 0..rows {
            let (x, y) = (c * room_w, r * room_h);
            fill(&mut plan, x, y, room_w, 6, wall);
            fill(&mut plan, x, y, 6, room_h, wall);
            let door = y + 40 + random.below(room_h - 120);
            fill(&mut plan, x, door, 6, 60, [255, 255, 255]);
            // Some rooms are tinted zones.
            if random.below(4) == 0 {
                let tint =
                    [[220, 235, 250], [235, 250, 225], [250, 240, 215]][random.below(3) as usize];
                fill(&mut plan, x + 6, y + 6, room_w - 6, room_h - 6, tint);
            }
            // Desks: outlined rectangles with a chair dot.
            for _ in 0..random.below(10) + 4 {
                let (dw, dh) = (40 + random.below(60), 25 + random.below(30));
                let dx = x + 20 + random.below(room_w - dw - 40);
                let dy = y + 20 + random.below(room_h - dh - 40);
                fill(&mut plan, dx, dy, dw, 2, [90, 90, 110]);
                fill(&mut plan, dx, dy + dh, dw, 2, [90, 90, 110]);
                fill(&mut plan, dx, dy, 2, dh, [90, 90, 110]);
                fill(&mut plan, dx + dw, dy, 2, dh + 2, [90, 90, 110]);
                fill(
                    &mut plan,
                    dx + dw / 2 - 5,
                    dy + dh + 6,
                    10,
                    10,
                    [60, 100, 200],
                );
            }
            // A label: rows of random "glyph" pixels.
            let (lx, ly) = (x + 30, y + room_h - 40);
            for gy in 0..12 {
                for gx in 0..(120 + random.below(80)) {
                    if random.below(3) == 0 {
                        plan.put_pixel(lx + gx, ly + gy, Rgb([20, 20, 20]));
                    }
                }
            }
        }
    }
    fill(&mut plan, 0, HEIGHT - 8, WIDTH, 8, wall);
    fill(&mut plan, WIDTH - 8, 0, 8, HEIGHT, wall);
    plan
}

/// The plan as a PNG, encoded with the image crate's defaults.
pub fn png_bytes(plan: &RgbImage) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    plan.write_to(&mut out, ImageFormat::Png)
        .expect("plan encodes");
    out.into_inner()
}
