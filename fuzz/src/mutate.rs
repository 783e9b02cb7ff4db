//! Input generation: seeds mutated byte by byte, as JSON or TOML trees, spliced together, or
//! replaced by generated documents and arbitrary bytes. Every input comes from one `fastrand::Rng`,
//! so a run is reproducible from its seed.

use fastrand::Rng;
use serde_json::{Map, Number, Value};

/// The syntax a target reads, which decides the structural mutations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Syntax {
    /// JSON documents.
    Json,
    /// TOML documents.
    Toml,
    /// Binary or line-based formats (images, multipart bodies): byte-level mutations only.
    Bytes,
}

/// Values that have broken parsers before: extremes, wrong types in disguise, separators.
const INTERESTING_STRINGS: &[&str] = &[
    "",
    " ",
    ">",
    ">>>",
    "A>B",
    "Campus>Building 5>Level 3",
    " HQ > B 1 > Floor 2 > Zone A > Desk 7 ",
    "\u{0}",
    "\u{202E}",
    "é",
    "．．",
    "..",
    "%2e%2e",
    "NaN",
    "Infinity",
    "-Infinity",
    "1e999",
    "-0",
    "0x10",
    "18446744073709551616",
    "null",
    "true",
    "FEET",
    "feet",
    "METER",
    "meters",
    "M",
    "furlong",
    "00:11:22:33:44:55",
    "0011.22aa.bbcc",
    "00-11-22-33-44",
    "zz:zz:zz:zz:zz:zz",
    "é0:11:22:33:44:55",
    "2017-11-23T15:30:41.662+0700",
    "2013-12-11T10:00:26.650-0800",
    "2020-12-16 22:10:24.468+0000",
    "2026-12-01T10:00:00.000Z",
    "1530864250486",
    "9223372036854775807",
    "99999999999999999999999",
    "+262143-12-31T23:59:59.999+0000",
    "-262144-01-01T00:00:00Z",
    "+262143-12-31T23:59:59.999-2359",
    "2017-02-30T00:00:00.000+0000",
    "2017-11-23T25:61:61.000+9999",
    "10.0.0.7",
    "fe80::1",
    "ipv6",
    "CORP\\jdoe",
    "host/PC.corp.example.com",
    "ASSOCIATED",
    "probing",
    "direct",
    "group",
    "conversation.activity",
    "post",
    "ONE_ON_ONE",
    "https://conv-a.wbx2.com/conversation/api/v1/conversations/c-1",
    "https://evil.example/conversations/c-1",
    "Y2lzY29zcGFyazovL3VzL01FU1NBR0UveA",
];

const INTERESTING_INTEGERS: &[i64] = &[
    0,
    1,
    -1,
    2,
    100,
    255,
    256,
    65_535,
    65_536,
    3_600_000,
    3_600_001,
    4_294_967_295,
    4_294_967_296,
    9_007_199_254_740_993,
    i64::MAX,
    i64::MIN,
    i32::MAX as i64,
    i32::MIN as i64,
];

const INTERESTING_FLOATS: &[f64] = &[
    0.5,
    -0.0,
    -1.5,
    1e-300,
    5e-324,
    1e15,
    1e300,
    -1e300,
    f64::MAX,
    f64::MIN,
    f64::EPSILON,
    4_698_041_219_291_283_488.0,
];

/// Bytes that end or start structures, numbers and escapes.
const INTERESTING_BYTES: &[u8] = b"{}[]\":,\\/0123456789-+.eE \n\r\t\0\x7f\x80\xbf\xc0\xff=#'u";

/// What a generator derives its inputs from.
pub struct Generator {
    syntax: Syntax,
    seeds: Vec<Vec<u8>>,
    json: Vec<Value>,
    toml: Vec<toml::Table>,
    keys: Vec<&'static str>,
    tokens: Vec<Vec<u8>>,
}

impl Generator {
    /// A generator over `seeds` (their structured forms are parsed once, here) with the field names
    /// of the target's format in `keys`.
    pub fn new(syntax: Syntax, seeds: Vec<Vec<u8>>, keys: &[&'static str]) -> Generator {
        let json = match syntax {
            Syntax::Json => seeds
                .iter()
                .filter_map(|seed| serde_json::from_slice(seed).ok())
                .collect(),
            Syntax::Toml | Syntax::Bytes => Vec::new(),
        };
        let toml = match syntax {
            Syntax::Toml => seeds
                .iter()
                .filter_map(|seed| std::str::from_utf8(seed).ok())
                .filter_map(|text| text.parse::<toml::Table>().ok())
                .collect(),
            Syntax::Json | Syntax::Bytes => Vec::new(),
        };
        let mut tokens: Vec<Vec<u8>> = keys
            .iter()
            .flat_map(|key| match syntax {
                Syntax::Json => [format!("\"{key}\":"), format!("\"{key}\"")],
                Syntax::Toml => [format!("{key} = "), format!("[{key}]\n")],
                Syntax::Bytes => [(*key).to_owned(), format!("\r\n{key}")],
            })
            .map(String::into_bytes)
            .collect();
        tokens.extend(
            INTERESTING_STRINGS
                .iter()
                .map(|s| serde_json::to_vec(s).unwrap_or_default()),
        );
        tokens.extend(
            INTERESTING_INTEGERS
                .iter()
                .map(|n| n.to_string().into_bytes()),
        );
        for extra in [
            "null",
            "true",
            "false",
            "[]",
            "{}",
            "[[",
            "]]",
            "{{",
            "}}",
            "\"\\u0000\"",
            "\"\\ud800\"",
            "1e999",
            "-",
            "1.",
            ".5",
            "\n[[sources]]\n",
            "\n[webex]\n",
            "'''",
            "\"\"\"",
            "inf",
            "nan",
            "1979-05-27T07:32:00Z",
        ] {
            tokens.push(extra.as_bytes().to_vec());
        }
        Generator {
            syntax,
            seeds,
            json,
            toml,
            keys: keys.to_vec(),
            tokens,
        }
    }

    /// One input.
    pub fn generate(&self, rng: &mut Rng) -> Vec<u8> {
        if self.seeds.is_empty() {
            return arbitrary_bytes(rng);
        }
        match rng.u32(0..100) {
            0..=34 if self.syntax != Syntax::Bytes => {
                let mut input = self
                    .structured(rng)
                    .unwrap_or_else(|| self.pick_seed(rng).to_vec());
                if rng.u32(0..5) == 0 {
                    self.mutate_bytes(rng, &mut input, 2);
                }
                input
            }
            0..=69 => {
                let mut input = self.pick_seed(rng).to_vec();
                self.mutate_bytes(rng, &mut input, 8);
                input
            }
            70..=79 => self.splice(rng),
            80..=89 => self.generated(rng),
            _ => {
                if rng.bool() {
                    arbitrary_bytes(rng)
                } else {
                    self.token_soup(rng)
                }
            }
        }
    }

    fn pick_seed(&self, rng: &mut Rng) -> &[u8] {
        &self.seeds[rng.usize(0..self.seeds.len())]
    }

    /// 1 to `most` stacked byte-level mutations.
    fn mutate_bytes(&self, rng: &mut Rng, input: &mut Vec<u8>, most: u32) {
        for _ in 0..rng.u32(1..=most) {
            self.byte_mutation(rng, input);
        }
    }

    fn byte_mutation(&self, rng: &mut Rng, input: &mut Vec<u8>) {
        let len = input.len();
        let at = |rng: &mut Rng| rng.usize(0..=len);
        match rng.u32(0..14) {
            0 if len > 0 => {
                let i = rng.usize(0..len);
                input[i] ^= 1 << rng.u32(0..8);
            }
            1 if len > 0 => {
                let i = rng.usize(0..len);
                input[i] = rng.u8(..);
            }
            2 if len > 0 => {
                let i = rng.usize(0..len);
                input[i] = INTERESTING_BYTES[rng.usize(0..INTERESTING_BYTES.len())];
            }
            3 => {
                let i = at(rng);
                let count = rng.usize(1..=8);
                let bytes: Vec<u8> = (0..count).map(|_| rng.u8(..)).collect();
                input.splice(i..i, bytes);
            }
            4 if len > 0 => {
                let start = rng.usize(0..len);
                let end = (start + rng.usize(1..=len.clamp(1, 64))).min(len);
                input.drain(start..end);
            }
            5 if len > 0 => {
                let start = rng.usize(0..len);
                let end = (start + rng.usize(1..=len.clamp(1, 256))).min(len);
                let copy = input[start..end].to_vec();
                let i = at(rng);
                input.splice(i..i, copy);
            }
            6 | 7 => {
                let token = &self.tokens[rng.usize(0..self.tokens.len())];
                let i = at(rng);
                input.splice(i..i, token.iter().copied());
            }
            8 if len > 0 => {
                let token = &self.tokens[rng.usize(0..self.tokens.len())];
                let i = rng.usize(0..len);
                let end = (i + token.len()).min(len);
                input.splice(i..end, token.iter().copied());
            }
            9 => input.truncate(rng.usize(0..=len)),
            10 if len > 1 => {
                // Swap two ranges of the same length.
                let size = rng.usize(1..=len.min(32) / 2 + 1).min(len / 2);
                let a = rng.usize(0..=len - 2 * size);
                let b = rng.usize(a + size..=len - size);
                for k in 0..size {
                    input.swap(a + k, b + k);
                }
            }
            11 => {
                // Prefix of this input, rest of another seed.
                let other = self.pick_seed(rng);
                let cut = at(rng);
                let from = rng.usize(0..=other.len());
                input.truncate(cut);
                input.extend_from_slice(&other[from..]);
            }
            12 if self.syntax == Syntax::Toml => self.line_mutation(rng, input),
            12 | 13 if len > 0 => {
                // A run of one byte (long strings, deep brackets).
                let i = at(rng);
                let byte = INTERESTING_BYTES[rng.usize(0..INTERESTING_BYTES.len())];
                let count = rng.usize(1..=300);
                input.splice(i..i, std::iter::repeat_n(byte, count));
            }
            _ => {
                let i = at(rng);
                input.insert(i, rng.u8(..));
            }
        }
    }

    /// Line-level edits of TOML: the unit its syntax is built from.
    fn line_mutation(&self, rng: &mut Rng, input: &mut Vec<u8>) {
        let text = String::from_utf8_lossy(input).into_owned();
        let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
        let n = lines.len();
        match rng.u32(0..5) {
            0 if n > 0 => {
                lines.remove(rng.usize(0..n));
            }
            1 if n > 0 => {
                let line = lines[rng.usize(0..n)].clone();
                lines.insert(rng.usize(0..=n), line);
            }
            2 if n > 1 => {
                let (a, b) = (rng.usize(0..n), rng.usize(0..n));
                lines.swap(a, b);
            }
            3 => {
                let key = self.keys[rng.usize(0..self.keys.len())];
                let value = toml_value_text(rng, &self.keys);
                lines.insert(rng.usize(0..=n), format!("{key} = {value}"));
            }
            _ => {
                let key = self.keys[rng.usize(0..self.keys.len())];
                let header = if rng.bool() {
                    format!("[{key}]")
                } else {
                    format!("[[{key}]]")
                };
                lines.insert(rng.usize(0..=n), header);
            }
        }
        *input = lines.join("\n").into_bytes();
    }

    /// A seed mutated as a tree; `None` when the syntax has no parsed seeds.
    fn structured(&self, rng: &mut Rng) -> Option<Vec<u8>> {
        match self.syntax {
            Syntax::Bytes => None,
            Syntax::Json => {
                if self.json.is_empty() {
                    return None;
                }
                let mut value = self.json[rng.usize(0..self.json.len())].clone();
                for _ in 0..rng.u32(1..=4) {
                    self.json_mutation(rng, &mut value);
                }
                Some(json_bytes(rng, &value))
            }
            Syntax::Toml => {
                if self.toml.is_empty() {
                    return None;
                }
                let mut table = self.toml[rng.usize(0..self.toml.len())].clone();
                for _ in 0..rng.u32(1..=4) {
                    self.toml_mutation(rng, &mut table);
                }
                toml::to_string(&table).ok().map(String::into_bytes)
            }
        }
    }

    fn json_mutation(&self, rng: &mut Rng, root: &mut Value) {
        let count = count_json(root);
        let Some(node) = nth_json(root, rng.usize(0..count)) else {
            return;
        };
        match rng.u32(0..12) {
            0 | 1 => *node = json_leaf(rng),
            2 => *node = random_json(rng, &self.keys, 3),
            3 => match node {
                Value::Object(map) if !map.is_empty() => {
                    let key = map.keys().nth(rng.usize(0..map.len())).cloned();
                    if let Some(key) = key {
                        map.remove(&key);
                    }
                }
                Value::Array(items) if !items.is_empty() => {
                    items.remove(rng.usize(0..items.len()));
                }
                _ => *node = Value::Null,
            },
            4 => match node {
                Value::Object(map) => {
                    let key = self.keys[rng.usize(0..self.keys.len())];
                    map.insert(key.to_owned(), random_json(rng, &self.keys, 2));
                }
                Value::Array(items) => {
                    let i = rng.usize(0..=items.len());
                    items.insert(i, random_json(rng, &self.keys, 2));
                }
                _ => *node = json_leaf(rng),
            },
            5 => {
                if let Value::Object(map) = node {
                    if let Some(key) = map.keys().nth(rng.usize(0..map.len().max(1))).cloned() {
                        if let Some(value) = map.remove(&key) {
                            map.insert(renamed_key(rng, &key, &self.keys), value);
                        }
                    }
                }
            }
            6 => {
                // Nest: once usually, past the parser's depth limit sometimes.
                let depth = if rng.u32(0..8) == 0 {
                    rng.usize(100..=200)
                } else {
                    rng.usize(1..=3)
                };
                let mut value = node.take();
                for _ in 0..depth {
                    value = if rng.bool() {
                        Value::Array(vec![value])
                    } else {
                        let key = self.keys[rng.usize(0..self.keys.len())];
                        Value::Object(Map::from_iter([(key.to_owned(), value)]))
                    };
                }
                *node = value;
            }
            7 => {
                if let Value::Array(items) = node {
                    if let Some(item) = items.get(rng.usize(0..items.len().max(1))).cloned() {
                        let copies = if rng.u32(0..4) == 0 {
                            rng.usize(10..=200)
                        } else {
                            rng.usize(1..=3)
                        };
                        items.extend(std::iter::repeat_n(item, copies));
                    }
                } else {
                    *node = Value::Array(vec![node.take(), json_leaf(rng)]);
                }
            }
            8 => {
                // Graft a subtree of another seed (or of this one).
                let donor = &self.json[rng.usize(0..self.json.len())];
                let mut donor = donor.clone();
                let n = count_json(&donor);
                *node = nth_json(&mut donor, rng.usize(0..n))
                    .map(Value::take)
                    .unwrap_or_default();
            }
            9 => tweak_number(rng, node),
            10 => tweak_string(rng, node),
            _ => {
                // The same value as another type: `12` ↔ `"12"`, `{…}` → `[…]`.
                *node = match node.take() {
                    Value::Number(n) => Value::String(n.to_string()),
                    Value::String(s) => s
                        .parse::<f64>()
                        .ok()
                        .and_then(Number::from_f64)
                        .map(Value::Number)
                        .unwrap_or(Value::Array(vec![Value::String(s)])),
                    Value::Object(map) => Value::Array(map.into_iter().map(|(_, v)| v).collect()),
                    Value::Array(items) => Value::Object(
                        items
                            .into_iter()
                            .enumerate()
                            .map(|(i, v)| (self.keys[i % self.keys.len()].to_owned(), v))
                            .collect(),
                    ),
                    Value::Bool(b) => Value::from(u8::from(b)),
                    Value::Null => Value::String(String::new()),
                }
            }
        }
    }

    fn toml_mutation(&self, rng: &mut Rng, table: &mut toml::Table) {
        let mut root = toml::Value::Table(std::mem::take(table));
        let count = count_toml(&root);
        let Some(node) = nth_toml(&mut root, rng.usize(0..count)) else {
            return;
        };
        match rng.u32(0..9) {
            0 | 1 => *node = toml_leaf(rng, &self.keys),
            2 => match node {
                toml::Value::Table(map) if !map.is_empty() => {
                    let key = map.keys().nth(rng.usize(0..map.len())).cloned();
                    if let Some(key) = key {
                        map.remove(&key);
                    }
                }
                toml::Value::Array(items) if !items.is_empty() => {
                    items.remove(rng.usize(0..items.len()));
                }
                _ => *node = toml_leaf(rng, &self.keys),
            },
            3 | 4 => match node {
                toml::Value::Table(map) => {
                    let key = self.keys[rng.usize(0..self.keys.len())];
                    let value = if rng.u32(0..4) == 0 {
                        toml::Value::Table(toml::Table::new())
                    } else {
                        toml_leaf(rng, &self.keys)
                    };
                    map.insert(key.to_owned(), value);
                }
                toml::Value::Array(items) => {
                    let copy = items.get(rng.usize(0..items.len().max(1))).cloned();
                    items.push(copy.unwrap_or_else(|| toml_leaf(rng, &self.keys)));
                }
                _ => *node = toml_leaf(rng, &self.keys),
            },
            5 => {
                if let toml::Value::Table(map) = node {
                    if let Some(key) = map.keys().nth(rng.usize(0..map.len().max(1))).cloned() {
                        if let Some(value) = map.remove(&key) {
                            map.insert(renamed_key(rng, &key, &self.keys), value);
                        }
                    }
                }
            }
            6 => {
                let value = node.clone();
                *node = if rng.bool() {
                    toml::Value::Array(vec![value])
                } else {
                    let key = self.keys[rng.usize(0..self.keys.len())];
                    toml::Value::Table(toml::Table::from_iter([(key.to_owned(), value)]))
                };
            }
            7 => {
                let donor = &self.toml[rng.usize(0..self.toml.len())];
                let mut donor = toml::Value::Table(donor.clone());
                let n = count_toml(&donor);
                if let Some(graft) = nth_toml(&mut donor, rng.usize(0..n)) {
                    *node = graft.clone();
                }
            }
            _ => {
                *node = match node.clone() {
                    toml::Value::Integer(n) => toml::Value::String(n.to_string()),
                    toml::Value::String(s) => s
                        .parse::<i64>()
                        .map(toml::Value::Integer)
                        .unwrap_or(toml::Value::Array(vec![toml::Value::String(s)])),
                    toml::Value::Float(f) => toml::Value::Integer(f as i64),
                    toml::Value::Boolean(b) => toml::Value::String(b.to_string()),
                    toml::Value::Array(items) => items
                        .into_iter()
                        .next()
                        .unwrap_or(toml::Value::Boolean(false)),
                    other => toml::Value::Array(vec![other]),
                };
            }
        }
        if let toml::Value::Table(root) = root {
            *table = root;
        }
    }

    /// Two seeds joined: as trees (a subtree of one replaces a node of the other) or as bytes.
    fn splice(&self, rng: &mut Rng) -> Vec<u8> {
        if self.syntax == Syntax::Json && self.json.len() > 1 && rng.bool() {
            let mut value = self.json[rng.usize(0..self.json.len())].clone();
            self.json_mutation(rng, &mut value);
            let donor = &self.json[rng.usize(0..self.json.len())];
            let mut donor = donor.clone();
            let n = count_json(&donor);
            let graft = nth_json(&mut donor, rng.usize(0..n))
                .map(Value::take)
                .unwrap_or_default();
            let count = count_json(&value);
            if let Some(node) = nth_json(&mut value, rng.usize(0..count)) {
                *node = graft;
            }
            return json_bytes(rng, &value);
        }
        let a = self.pick_seed(rng);
        let b = self.pick_seed(rng);
        let mut out = a[..rng.usize(0..=a.len())].to_vec();
        out.extend_from_slice(&b[rng.usize(0..=b.len())..]);
        out
    }

    /// A document built from the format's field names and interesting values (for binary
    /// formats: a seed mangled many times over).
    fn generated(&self, rng: &mut Rng) -> Vec<u8> {
        match self.syntax {
            Syntax::Bytes => {
                let mut input = self.pick_seed(rng).to_vec();
                self.mutate_bytes(rng, &mut input, 32);
                input
            }
            Syntax::Json => {
                let value = match rng.u32(0..3) {
                    0 => Value::Array(
                        (0..rng.usize(0..4))
                            .map(|_| random_object(rng, &self.keys, 4))
                            .collect(),
                    ),
                    1 => random_object(rng, &self.keys, 4),
                    _ => random_json(rng, &self.keys, 5),
                };
                json_bytes(rng, &value)
            }
            Syntax::Toml => {
                let mut text = String::new();
                for _ in 0..rng.usize(0..8) {
                    let key = self.keys[rng.usize(0..self.keys.len())];
                    match rng.u32(0..4) {
                        0 => text.push_str(&format!("[{key}]\n")),
                        1 => text.push_str(&format!("[[{key}]]\n")),
                        _ => {}
                    }
                    for _ in 0..rng.usize(0..6) {
                        let key = self.keys[rng.usize(0..self.keys.len())];
                        let value = toml_value_text(rng, &self.keys);
                        text.push_str(&format!("{key} = {value}\n"));
                    }
                }
                text.into_bytes()
            }
        }
    }

    /// Tokens of the format in random order: close to the syntax, rarely valid.
    fn token_soup(&self, rng: &mut Rng) -> Vec<u8> {
        let mut out = Vec::new();
        for _ in 0..rng.usize(0..64) {
            if rng.u32(0..3) == 0 {
                out.push(INTERESTING_BYTES[rng.usize(0..INTERESTING_BYTES.len())]);
            } else {
                out.extend_from_slice(&self.tokens[rng.usize(0..self.tokens.len())]);
            }
        }
        out
    }
}

/// Bytes with no structure at all, mostly short.
fn arbitrary_bytes(rng: &mut Rng) -> Vec<u8> {
    let len = match rng.u32(0..10) {
        0..=2 => rng.usize(0..=16),
        3..=7 => rng.usize(0..=256),
        _ => rng.usize(0..=4096),
    };
    (0..len).map(|_| rng.u8(..)).collect()
}

fn json_bytes(rng: &mut Rng, value: &Value) -> Vec<u8> {
    let bytes = if rng.u32(0..5) == 0 {
        serde_json::to_vec_pretty(value)
    } else {
        serde_json::to_vec(value)
    };
    bytes.unwrap_or_default()
}

fn count_json(value: &Value) -> usize {
    1 + match value {
        Value::Array(items) => items.iter().map(count_json).sum(),
        Value::Object(map) => map.values().map(count_json).sum(),
        _ => 0,
    }
}

/// The `n`th node in pre-order (the root is 0); `None` past the end.
fn nth_json(value: &mut Value, n: usize) -> Option<&mut Value> {
    if n == 0 {
        return Some(value);
    }
    let mut rest = n - 1;
    let children: Vec<&mut Value> = match value {
        Value::Array(items) => items.iter_mut().collect(),
        Value::Object(map) => map.values_mut().collect(),
        _ => Vec::new(),
    };
    for child in children {
        let size = count_json(child);
        if rest < size {
            return nth_json(child, rest);
        }
        rest -= size;
    }
    None
}

fn count_toml(value: &toml::Value) -> usize {
    1 + match value {
        toml::Value::Array(items) => items.iter().map(count_toml).sum(),
        toml::Value::Table(map) => map.values().map(count_toml).sum(),
        _ => 0,
    }
}

fn nth_toml(value: &mut toml::Value, n: usize) -> Option<&mut toml::Value> {
    if n == 0 {
        return Some(value);
    }
    let mut rest = n - 1;
    let children: Vec<&mut toml::Value> = match value {
        toml::Value::Array(items) => items.iter_mut().collect(),
        toml::Value::Table(map) => map.iter_mut().map(|(_, child)| child).collect(),
        _ => Vec::new(),
    };
    for child in children {
        let size = count_toml(child);
        if rest < size {
            return nth_toml(child, rest);
        }
        rest -= size;
    }
    None
}

fn renamed_key(rng: &mut Rng, key: &str, keys: &[&'static str]) -> String {
    match rng.u32(0..4) {
        0 => keys[rng.usize(0..keys.len())].to_owned(),
        1 => key.to_ascii_uppercase(),
        2 => {
            // Capitalised or not: the MSE/CMX difference.
            let mut chars = key.chars();
            match chars.next() {
                Some(first) if first.is_ascii_uppercase() => {
                    first.to_ascii_lowercase().to_string() + chars.as_str()
                }
                Some(first) => first.to_ascii_uppercase().to_string() + chars.as_str(),
                None => String::from("_"),
            }
        }
        _ => format!("{key} "),
    }
}

fn json_leaf(rng: &mut Rng) -> Value {
    match rng.u32(0..8) {
        0 => Value::Null,
        1 => Value::Bool(rng.bool()),
        2 => Value::from(INTERESTING_INTEGERS[rng.usize(0..INTERESTING_INTEGERS.len())]),
        3 => Number::from_f64(INTERESTING_FLOATS[rng.usize(0..INTERESTING_FLOATS.len())])
            .map(Value::Number)
            .unwrap_or(Value::Null),
        4 => Value::from(u64::MAX - rng.u64(0..3)),
        5 => Value::Array(Vec::new()),
        6 => Value::Object(Map::new()),
        _ => Value::String(interesting_string(rng)),
    }
}

fn interesting_string(rng: &mut Rng) -> String {
    match rng.u32(0..12) {
        0 => "x".repeat(rng.usize(1000..=20_000)),
        1 => (0..rng.usize(1..=12)).map(|_| rng.char(..)).collect(),
        _ => INTERESTING_STRINGS[rng.usize(0..INTERESTING_STRINGS.len())].to_owned(),
    }
}

fn random_json(rng: &mut Rng, keys: &[&'static str], depth: u32) -> Value {
    if depth == 0 || rng.u32(0..3) == 0 {
        return json_leaf(rng);
    }
    if rng.bool() {
        random_object(rng, keys, depth - 1)
    } else {
        Value::Array(
            (0..rng.usize(0..4))
                .map(|_| random_json(rng, keys, depth - 1))
                .collect(),
        )
    }
}

fn random_object(rng: &mut Rng, keys: &[&'static str], depth: u32) -> Value {
    let mut map = Map::new();
    for _ in 0..rng.usize(0..8) {
        let key = keys[rng.usize(0..keys.len())];
        map.insert(
            key.to_owned(),
            random_json(rng, keys, depth.saturating_sub(1)),
        );
    }
    Value::Object(map)
}

fn tweak_number(rng: &mut Rng, node: &mut Value) {
    let Value::Number(n) = node else {
        *node = json_leaf(rng);
        return;
    };
    let f = n.as_f64().unwrap_or(0.0);
    let tweaked = match rng.u32(0..6) {
        0 => f + 1.0,
        1 => -f,
        2 => f * 1e15,
        3 => f / 1e15,
        4 => f.trunc(),
        _ => f + 0.5,
    };
    *node = Number::from_f64(tweaked)
        .map(Value::Number)
        .unwrap_or(Value::Null);
}

fn tweak_string(rng: &mut Rng, node: &mut Value) {
    let Value::String(s) = node else {
        *node = Value::String(interesting_string(rng));
        return;
    };
    match rng.u32(0..6) {
        0 => s.clear(),
        1 => *s = s.repeat(rng.usize(2..=50)),
        2 => {
            let keep = rng.usize(0..=s.chars().count());
            *s = s.chars().take(keep).collect();
        }
        3 => s.push_str(&interesting_string(rng)),
        4 => *s = format!("  {s}\t"),
        _ => *s = s.to_ascii_lowercase(),
    }
}

fn toml_leaf(rng: &mut Rng, keys: &[&'static str]) -> toml::Value {
    match rng.u32(0..8) {
        0 => toml::Value::Boolean(rng.bool()),
        1 | 2 => {
            toml::Value::Integer(INTERESTING_INTEGERS[rng.usize(0..INTERESTING_INTEGERS.len())])
        }
        3 => toml::Value::Float(INTERESTING_FLOATS[rng.usize(0..INTERESTING_FLOATS.len())]),
        4 => toml::Value::Array(
            (0..rng.usize(0..4))
                .map(|_| toml::Value::String(config_string(rng, keys)))
                .collect(),
        ),
        5 => toml::Value::Datetime(toml::value::Datetime {
            date: Some(toml::value::Date {
                year: 1979,
                month: 5,
                day: 27,
            }),
            time: None,
            offset: None,
        }),
        _ => toml::Value::String(config_string(rng, keys)),
    }
}

/// Strings a configuration holds: addresses, URLs, names of files and variables, kinds.
const CONFIG_STRINGS: &[&str] = &[
    "",
    " ",
    "127.0.0.1:8080",
    "[::1]:0",
    "0.0.0.0:99999",
    "localhost:80",
    "http://",
    "https://x",
    "https://user:pw@x.example.com",
    "http://[::1]:3128",
    "ftp://x",
    "ldap://ldap.example.com",
    "ldaps://h:636",
    "ldap://h/ou=x?y",
    "ldap://u:p@h",
    "postgres://u:p@127.0.0.1/db",
    "postgresql://127.0.0.1",
    "sqlite://whereis.db",
    "sqlite::memory:",
    "{user}",
    "CORP\\{user}",
    "{user}{user}",
    "*",
    "10.0.0.0/8",
    "::/0",
    "10.0.0.0/33",
    "host:99999",
    ".example.com",
    "example.com",
    "it@example.com",
    "CMX_PASSWORD",
    "WEBEX_BOT_TOKEN",
    "UNSET_VARIABLE",
    "secret",
    "empty",
    "missing",
    "ca.pem",
    "people.csv",
    "subdir",
    "../secret",
    "cmx",
    "cmx-v2",
    "mse",
    "file",
    "ldap",
    "webex",
    "websocket",
    "webhook",
    "uid",
    "sAMAccountName",
    "bad attribute!",
    "dc=example,dc=com",
];

fn config_string(rng: &mut Rng, keys: &[&'static str]) -> String {
    match rng.u32(0..10) {
        0 => keys[rng.usize(0..keys.len())].to_owned(),
        1 => interesting_string(rng),
        _ => CONFIG_STRINGS[rng.usize(0..CONFIG_STRINGS.len())].to_owned(),
    }
}

/// A TOML value written out, valid or nearly so.
fn toml_value_text(rng: &mut Rng, keys: &[&'static str]) -> String {
    match rng.u32(0..7) {
        0 => INTERESTING_INTEGERS[rng.usize(0..INTERESTING_INTEGERS.len())].to_string(),
        1 => ["true", "false", "inf", "nan", "1979-05-27", "0x7f", "1_000"][rng.usize(0..7)]
            .to_owned(),
        2 => format!(
            "[{}]",
            (0..rng.usize(0..4))
                .map(|_| format!("{:?}", config_string(rng, keys)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        3 => format!(
            "{{ {} = {:?} }}",
            keys[rng.usize(0..keys.len())],
            config_string(rng, keys)
        ),
        4 => format!("'{}'", config_string(rng, keys).replace('\'', "")),
        _ => format!("{:?}", config_string(rng, keys)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED: &[u8] = br#"[{"macAddress":"00:11:22:33:44:55","mapCoordinate":{"x":1,"y":2}}]"#;

    #[test]
    fn the_same_rng_seed_gives_the_same_inputs() {
        let generator = Generator::new(Syntax::Json, vec![SEED.to_vec()], &["macAddress", "x"]);
        let first: Vec<Vec<u8>> = (0..200)
            .map(|i| generator.generate(&mut Rng::with_seed(i)))
            .collect();
        let again: Vec<Vec<u8>> = (0..200)
            .map(|i| generator.generate(&mut Rng::with_seed(i)))
            .collect();
        assert_eq!(first, again);
    }

    #[test]
    fn inputs_are_varied_and_many_stay_json() {
        let generator = Generator::new(Syntax::Json, vec![SEED.to_vec()], &["macAddress", "x"]);
        let mut rng = Rng::with_seed(7);
        let inputs: Vec<Vec<u8>> = (0..2000).map(|_| generator.generate(&mut rng)).collect();
        let distinct: std::collections::HashSet<&Vec<u8>> = inputs.iter().collect();
        assert!(distinct.len() > 1500, "{} distinct", distinct.len());
        let json = inputs
            .iter()
            .filter(|input| serde_json::from_slice::<Value>(input).is_ok())
            .count();
        // Structural mutations and generated documents keep a good share parseable, so the
        // parsers' record mapping is reached, not only their JSON reader.
        assert!(json > 600, "{json} of 2000 inputs are JSON");
    }

    #[test]
    fn toml_mutations_produce_toml() {
        let seed = b"[server]\nlisten = \"127.0.0.1:8080\"\n[[sources]]\nname = \"a\"\n".to_vec();
        let generator = Generator::new(Syntax::Toml, vec![seed], &["server", "sources", "name"]);
        let mut rng = Rng::with_seed(3);
        let toml_inputs = (0..2000)
            .map(|_| generator.generate(&mut rng))
            .filter(|input| {
                std::str::from_utf8(input)
                    .ok()
                    .and_then(|text| text.parse::<toml::Table>().ok())
                    .is_some()
            })
            .count();
        assert!(toml_inputs > 600, "{toml_inputs} of 2000 inputs are TOML");
    }

    #[test]
    fn nth_node_walks_every_node() {
        let mut value: Value = serde_json::from_slice(SEED).unwrap();
        let count = count_json(&value);
        assert_eq!(count, 6);
        for n in 0..count {
            assert!(nth_json(&mut value, n).is_some());
        }
        assert!(nth_json(&mut value, count).is_none());
        assert_eq!(
            nth_json(&mut value, 2).cloned(),
            Some(Value::from("00:11:22:33:44:55"))
        );
    }
}
