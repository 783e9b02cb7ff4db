//! whereis-fuzz: a fuzz runner on stable Rust for every parser that reads bytes from outside — CMX v2
//! and v3, MSE, the CMX map configuration and floor information, Webex webhook bodies, messages,
//! rooms, people and websocket frames, the Webex double's multipart bodies, floor images (PNG and
//! JPEG) and the configuration file.
//!
//! Inputs come from the repository's recorded payloads (`crates/location/tests/fixtures`,
//! `crates/webex/tests/fixtures`), the seeds in `fuzz/seeds` for shapes without a recording and
//! small floor images encoded when the run starts,
//! mutated byte by byte (flips, inserts, deletions, truncations, splices, tokens of the format), as
//! trees (values replaced by other types and extremes, keys deleted, renamed and added, nesting past
//! the parsers' depth limits, subtrees grafted between seeds), or replaced by generated documents and
//! arbitrary bytes. Every input runs under `catch_unwind`; the targets also check what the parsers
//! return (normalised MACs, finite coordinates, usable floor plans, values that survive a round trip,
//! secrets never printed), and a failed check is reported like a crash.
//!
//! - [`targets`]: the parsers ([`targets::TARGETS`]).
//! - [`mutate`]: input generation ([`Generator`]).
//! - [`runner`]: running, catching, saving, counting ([`runner::run`]).
//!
//! `cargo run --release -p whereis-fuzz -- --iterations 1000000` runs every target (`--target NAME`
//! for one, `--seed S` for another sequence of inputs); `--help` lists the rest.

pub mod mutate;
pub mod runner;
pub mod targets;

pub use mutate::{Generator, Syntax};
