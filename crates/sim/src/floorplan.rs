//! A generated floor plan (outer walls, rooms, a corridor) encoded as a 4-colour PNG without
//! dependencies (uncompressed deflate blocks), sized to the floor's aspect ratio.

/// The longer side of a generated image, in pixels.
const LONG_SIDE: u32 = 1600;

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

/// A PNG floor plan for a floor of `width` × `length`.
pub(crate) fn png_for_floor(width: f64, length: f64) -> Vec<u8> {
    let (w, h) = image_size(width, length);
    png(w, h, |x, y| pixel(x, y, w, h))
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

/// Encodes a 2-bit palette PNG from `index(x, y)` (values 0..=3).
fn png(w: u32, h: u32, index: impl Fn(u32, u32) -> u8) -> Vec<u8> {
    let row_len = (w as usize).div_ceil(4);
    let mut raw = Vec::with_capacity((row_len + 1) * h as usize);
    for y in 0..h {
        raw.push(0); // filter: none
        let start = raw.len();
        raw.resize(start + row_len, 0);
        for x in 0..w {
            let byte = &mut raw[start + x as usize / 4];
            *byte |= (index(x, y) & 3) << (6 - 2 * (x % 4));
        }
    }
    let mut ihdr = Vec::with_capacity(13);
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[2, 3, 0, 0, 0]); // depth 2, palette, deflate, no filter, no interlace
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    chunk(&mut out, b"IHDR", &ihdr);
    chunk(&mut out, b"PLTE", &PALETTE.concat());
    chunk(&mut out, b"IDAT", &zlib_stored(&raw));
    chunk(&mut out, b"IEND", &[]);
    out
}

fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let start = out.len();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let crc = crc32(&out[start..]);
    out.extend_from_slice(&crc.to_be_bytes());
}

/// A zlib stream of stored (uncompressed) deflate blocks.
fn zlib_stored(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x78, 0x01];
    let mut blocks = data.chunks(0xffff).peekable();
    if blocks.peek().is_none() {
        out.extend_from_slice(&[1, 0, 0, 0xff, 0xff]);
    }
    while let Some(block) = blocks.next() {
        out.push(u8::from(blocks.peek().is_none()));
        let len = block.len() as u16;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(block);
    }
    let (mut a, mut b) = (1u32, 0u32);
    for &byte in data {
        a = (a + u32::from(byte)) % 65521;
        b = (b + a) % 65521;
    }
    out.extend_from_slice(&((b << 16) | a).to_be_bytes());
    out
}

fn crc32(data: &[u8]) -> u32 {
    static TABLE: std::sync::OnceLock<[u32; 256]> = std::sync::OnceLock::new();
    let table = TABLE.get_or_init(|| {
        let mut t = [0u32; 256];
        for (n, slot) in t.iter_mut().enumerate() {
            let mut c = n as u32;
            for _ in 0..8 {
                c = if c & 1 != 0 {
                    0xedb8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
            }
            *slot = c;
        }
        t
    });
    !data.iter().fold(!0u32, |c, &b| {
        table[((c ^ u32::from(b)) & 0xff) as usize] ^ (c >> 8)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_and_sizes() {
        assert_eq!(crc32(b"IEND"), 0xae42_6082);
        assert_eq!(image_size(300.0, 150.0), (1600, 800));
        assert_eq!(image_size(40.0, 80.0), (800, 1600));
    }

    #[test]
    fn png_has_header_and_size() {
        let png = png_for_floor(300.0, 150.0);
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));
        assert_eq!(&png[12..16], b"IHDR");
        assert_eq!(
            u32::from_be_bytes([png[16], png[17], png[18], png[19]]),
            1600
        );
        assert_eq!(
            u32::from_be_bytes([png[20], png[21], png[22], png[23]]),
            800
        );
        assert!(png.ends_with(&[0xae, 0x42, 0x60, 0x82]));
    }
}
