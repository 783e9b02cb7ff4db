//! Runs a target over generated inputs: every input under `catch_unwind`, panics saved to files for
//! replay, a watchdog for inputs that never finish, and counts for the report.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Once};
use std::time::{Duration, Instant};

use fastrand::Rng;

use crate::mutate::Generator;
use crate::targets::{Outcome, Target};

/// How a run goes.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Inputs per target.
    pub count: u64,
    /// The run's seed: the same seed gives the same inputs.
    pub seed: u64,
    /// Where inputs that panicked (or hung) are written.
    pub artifacts: PathBuf,
    /// An input running longer than this is saved and the process stops.
    pub hang_after: Duration,
}

/// A distinct panic (by message and location) and how often it happened.
#[derive(Debug, Clone)]
pub struct Crash {
    /// The panic message with its location.
    pub message: String,
    /// Inputs that ended in this panic.
    pub count: u64,
    /// The first such input, saved for replay.
    pub saved: Option<PathBuf>,
}

/// What one target's run found.
#[derive(Debug, Clone)]
pub struct Report {
    /// The target's name.
    pub target: &'static str,
    /// Inputs run.
    pub inputs: u64,
    /// Inputs parsed into something usable.
    pub accepted: u64,
    /// Inputs parsed, with nothing usable in them.
    pub empty: u64,
    /// Inputs refused with a typed error.
    pub refused: u64,
    /// Panics, by message.
    pub crashes: Vec<Crash>,
    /// Bytes parsed.
    pub bytes: u64,
    /// Wall time of the run (generation included).
    pub elapsed: Duration,
    /// The slowest single input (parse only).
    pub slowest: Duration,
}

impl Report {
    /// Inputs that panicked.
    pub fn panics(&self) -> u64 {
        self.crashes.iter().map(|crash| crash.count).sum()
    }

    /// Inputs per second of wall time.
    pub fn rate(&self) -> f64 {
        self.inputs as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// The input each worker is running, for the watchdog.
#[derive(Debug, Default)]
struct Slot {
    target: &'static str,
    input: Vec<u8>,
    started: Option<Instant>,
}

/// Watches running inputs; one slot per worker thread.
#[derive(Debug, Clone)]
pub struct Watchdog {
    slots: Arc<Vec<Mutex<Slot>>>,
}

impl Watchdog {
    /// Starts the watchdog thread for `workers` workers. An input running past `settings.hang_after`
    /// is saved and the process exits with status 3: a hang cannot be interrupted from outside.
    pub fn start(workers: usize, settings: &Settings) -> Watchdog {
        let slots: Arc<Vec<Mutex<Slot>>> =
            Arc::new((0..workers).map(|_| Mutex::new(Slot::default())).collect());
        // The thread ends once the last handle is gone.
        let watched = Arc::downgrade(&slots);
        let limit = settings.hang_after;
        let artifacts = settings.artifacts.clone();
        std::thread::spawn(move || loop {
            std::thread::sleep(Duration::from_millis(250));
            let Some(slots) = watched.upgrade() else {
                return;
            };
            for slot in slots.iter() {
                let slot = slot.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                if slot
                    .started
                    .is_some_and(|started| started.elapsed() > limit)
                {
                    let saved = save(&artifacts, slot.target, "hang", &slot.input);
                    eprintln!(
                        "{}: an input ran longer than {} s; saved to {}",
                        slot.target,
                        limit.as_secs(),
                        shown(&saved)
                    );
                    std::process::exit(3);
                }
            }
        });
        Watchdog { slots }
    }
}

thread_local! {
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Replaces the panic hook with one that records the message for the current thread instead of
/// printing it (a run may panic millions of times; the report lists each distinct panic once).
pub fn install_quiet_panic_hook() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        panic::set_hook(Box::new(|info| {
            let payload = info.payload();
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "(non-text panic)".to_owned());
            let at = info
                .location()
                .map(|l| format!("{}:{}", l.file(), l.line()))
                .unwrap_or_default();
            LAST_PANIC.with(|last| *last.borrow_mut() = Some(format!("{at}: {message}")));
        }));
    });
}

/// Runs one input; `Err` holds the panic message.
pub fn run_one(target: &Target, input: &[u8]) -> Result<Outcome, String> {
    panic::catch_unwind(AssertUnwindSafe(|| (target.run)(input))).map_err(|_| {
        LAST_PANIC
            .with(|last| last.borrow_mut().take())
            .unwrap_or_else(|| "(panic without a message)".to_owned())
    })
}

/// SplitMix64: spreads (run seed, target, index) into an input's own seed.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The seed of input `index` of `target`: any input can be made again on its own.
pub fn input_seed(run_seed: u64, target: &str, index: u64) -> u64 {
    mix(mix(run_seed ^ fnv1a(target.as_bytes())) ^ index)
}

/// Runs `settings.count` inputs through `target` on this thread (watched through `slot`).
pub fn run(
    target: &'static Target,
    settings: &Settings,
    watchdog: &Watchdog,
    slot: usize,
) -> Report {
    install_quiet_panic_hook();
    let seeds = target
        .all_seeds()
        .into_iter()
        .map(|(_, bytes)| bytes)
        .collect();
    let generator = Generator::new(target.syntax, seeds, target.keys);
    let mut crashes: BTreeMap<String, Crash> = BTreeMap::new();
    let mut report = Report {
        target: target.name,
        inputs: 0,
        accepted: 0,
        empty: 0,
        refused: 0,
        crashes: Vec::new(),
        bytes: 0,
        elapsed: Duration::ZERO,
        slowest: Duration::ZERO,
    };
    let started = Instant::now();
    for index in 0..settings.count {
        let mut rng = Rng::with_seed(input_seed(settings.seed, target.name, index));
        let input = generator.generate(&mut rng);
        let began = Instant::now();
        if let Some(slot) = watchdog.slots.get(slot) {
            let mut slot = slot.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            slot.target = target.name;
            slot.input.clear();
            slot.input.extend_from_slice(&input);
            slot.started = Some(began);
        }
        let result = run_one(target, &input);
        report.slowest = report.slowest.max(began.elapsed());
        report.inputs += 1;
        report.bytes += input.len() as u64;
        match result {
            Ok(Outcome::Accepted) => report.accepted += 1,
            Ok(Outcome::Empty) => report.empty += 1,
            Ok(Outcome::Refused) => report.refused += 1,
            Err(message) => {
                let crash = crashes.entry(message.clone()).or_insert_with(|| Crash {
                    message,
                    count: 0,
                    saved: Some(save(&settings.artifacts, target.name, "panic", &input)),
                });
                crash.count += 1;
            }
        }
    }
    if let Some(slot) = watchdog.slots.get(slot) {
        let mut slot = slot.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        slot.started = None;
    }
    report.elapsed = started.elapsed();
    report.crashes = crashes.into_values().collect();
    report
}

/// Writes an input to `<dir>/<target>-<kind>-<hash>.bin`; the path, or where it should have gone.
fn save(dir: &Path, target: &str, kind: &str, input: &[u8]) -> PathBuf {
    let path = dir.join(format!("{target}-{kind}-{:016x}.bin", fnv1a(input)));
    let written = std::fs::create_dir_all(dir).and_then(|()| std::fs::write(&path, input));
    if let Err(err) = written {
        eprintln!("cannot save {}: {err}", path.display());
    }
    path
}

fn shown(path: &Path) -> String {
    path.display().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::targets::{find, Target, TARGETS};
    use crate::Syntax;

    fn settings(dir: &Path, count: u64) -> Settings {
        Settings {
            count,
            seed: 1,
            artifacts: dir.to_owned(),
            hang_after: Duration::from_secs(600),
        }
    }

    fn panics_on_a_dollar(input: &[u8]) -> Outcome {
        assert!(!input.contains(&b'$'), "dollar");
        Outcome::Refused
    }

    static PANICKY: Target = Target {
        name: "panicky",
        about: "panics on any input holding a `$`",
        syntax: Syntax::Json,
        seeds: &[("s", b"{\"a\": \"$\"}")],
        keys: &["a"],
        made_seeds: crate::targets::no_made_seeds,
        run: panics_on_a_dollar,
    };

    #[test]
    fn panics_are_caught_counted_and_saved() {
        let dir = tempfile::tempdir().expect("temp dir");
        let settings = settings(dir.path(), 500);
        let watchdog = Watchdog::start(1, &settings);
        let report = run(&PANICKY, &settings, &watchdog, 0);
        assert_eq!(report.inputs, 500);
        assert!(report.panics() > 0);
        assert_eq!(report.panics() + report.refused, 500);
        assert_eq!(report.crashes.len(), 1, "{:?}", report.crashes);
        let crash = &report.crashes[0];
        assert!(crash.message.contains("dollar"), "{}", crash.message);
        assert!(crash.message.contains("runner.rs"), "{}", crash.message);
        let saved = std::fs::read(crash.saved.as_ref().expect("saved")).expect("readable");
        assert!(saved.contains(&b'$'));
        assert!(
            run_one(&PANICKY, &saved).is_err(),
            "the saved input replays"
        );
    }

    #[test]
    fn a_run_is_reproducible_and_finds_nothing_in_the_parsers() {
        let dir = tempfile::tempdir().expect("temp dir");
        let settings = settings(dir.path(), 300);
        let watchdog = Watchdog::start(1, &settings);
        for target in TARGETS.iter().filter(|t| t.name != "config") {
            let first = run(target, &settings, &watchdog, 0);
            let again = run(target, &settings, &watchdog, 0);
            assert_eq!(first.panics(), 0, "{}: {:?}", target.name, first.crashes);
            assert_eq!(
                (first.accepted, first.empty, first.refused, first.bytes),
                (again.accepted, again.empty, again.refused, again.bytes),
                "{}",
                target.name
            );
            // Mutations reach past the JSON reader into the record mapping.
            assert!(first.accepted + first.empty > 0, "{}", target.name);
        }
        assert!(find("panicky").is_none());
        assert_eq!(
            std::fs::read_dir(dir.path())
                .map(|d| d.count())
                .unwrap_or(0),
            0
        );
    }

    #[test]
    fn input_seeds_differ_by_target_and_index() {
        assert_ne!(input_seed(1, "cmx-v2", 0), input_seed(1, "cmx-v3", 0));
        assert_ne!(input_seed(1, "cmx-v2", 0), input_seed(1, "cmx-v2", 1));
        assert_ne!(input_seed(1, "cmx-v2", 0), input_seed(2, "cmx-v2", 0));
        assert_eq!(input_seed(1, "mse", 9), input_seed(1, "mse", 9));
    }
}
