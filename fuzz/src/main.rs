//! `whereis-fuzz`: runs the fuzz targets and prints what they found; exits 1 when an input panicked.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Parser;
use whereis_fuzz::runner::{self, Report, Settings, Watchdog};
use whereis_fuzz::targets::{self, Outcome, Target, TARGETS};

/// Fuzzes every parser that reads outside bytes, on stable Rust.
#[derive(Debug, Parser)]
#[command(name = "whereis-fuzz")]
struct Args {
    /// Inputs per target.
    #[arg(long, alias = "count", default_value_t = 100_000)]
    iterations: u64,
    /// Seed of the run: the same seed and count give the same inputs.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Only these targets (repeatable); all of them by default.
    #[arg(long = "target", value_name = "NAME")]
    targets: Vec<String>,
    /// Targets run at once, one thread each.
    #[arg(long, default_value_t = 1)]
    jobs: usize,
    /// Where inputs that panicked or hung are saved.
    #[arg(long, value_name = "DIR")]
    artifacts: Option<PathBuf>,
    /// An input running longer than this is saved and the run stops (exit status 3).
    #[arg(long, default_value_t = 10)]
    hang_seconds: u64,
    /// List the targets and their seeds.
    #[arg(long)]
    list: bool,
    /// Run these saved inputs through the (one) `--target` instead, showing any panic in full.
    #[arg(long, value_name = "FILE")]
    replay: Vec<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.list {
        for target in TARGETS {
            println!("{:<16} {}", target.name, target.about);
            for (name, bytes) in target.all_seeds() {
                println!("{:<16}   seed {name} ({} bytes)", "", bytes.len());
            }
        }
        return Ok(());
    }
    let chosen = chosen_targets(&args.targets)?;
    if !args.replay.is_empty() {
        let [target] = chosen.as_slice() else {
            bail!("--replay needs exactly one --target");
        };
        return replay(target, &args.replay);
    }
    let artifacts = args.artifacts.clone().unwrap_or_else(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/fuzz-artifacts")
    });
    let settings = Settings {
        count: args.iterations,
        seed: args.seed,
        artifacts,
        hang_after: Duration::from_secs(args.hang_seconds.max(1)),
    };
    let jobs = args.jobs.clamp(1, chosen.len());
    println!(
        "whereis-fuzz: {} targets × {} inputs, seed {}, {} job(s)",
        chosen.len(),
        settings.count,
        settings.seed,
        jobs
    );
    let reports = run_all(&chosen, &settings, jobs);
    targets::clean_up();
    print_table(&reports);
    let panics: u64 = reports.iter().map(Report::panics).sum();
    let contained = targets::contained_decoder_panics();
    if contained > 0 {
        println!(
            "note: {contained} image decoder panics were contained by decode's own guard (reported as corrupt images)"
        );
    }
    for report in &reports {
        for crash in &report.crashes {
            println!(
                "PANIC {} ×{}: {}\n      saved: {}\n      replay: cargo run -p whereis-fuzz -- --target {} --replay {}",
                report.target,
                crash.count,
                crash.message,
                crash
                    .saved
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
                report.target,
                crash
                    .saved
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
            );
        }
    }
    if panics > 0 {
        std::process::exit(1);
    }
    Ok(())
}

fn chosen_targets(names: &[String]) -> anyhow::Result<Vec<&'static Target>> {
    if names.is_empty() {
        return Ok(TARGETS.iter().collect());
    }
    names
        .iter()
        .map(|name| {
            targets::find(name).with_context(|| {
                let known: Vec<&str> = TARGETS.iter().map(|t| t.name).collect();
                format!("unknown target {name:?}; known: {}", known.join(", "))
            })
        })
        .collect()
}

/// Runs the targets on `jobs` threads (2 MiB stacks, like the runtime's worker threads).
fn run_all(chosen: &[&'static Target], settings: &Settings, jobs: usize) -> Vec<Report> {
    let watchdog = Watchdog::start(jobs, settings);
    let next = AtomicUsize::new(0);
    let mut reports: Vec<(usize, Report)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..jobs)
            .map(|worker| {
                let (next, watchdog) = (&next, &watchdog);
                std::thread::Builder::new()
                    .name(format!("fuzz-{worker}"))
                    .stack_size(2 * 1024 * 1024)
                    .spawn_scoped(scope, move || {
                        let mut done = Vec::new();
                        loop {
                            let i = next.fetch_add(1, Ordering::SeqCst);
                            let Some(target) = chosen.get(i) else {
                                return done;
                            };
                            let report = runner::run(target, settings, watchdog, worker);
                            eprintln!(
                                "{:<16} {:>10} inputs  {:>6} panics  {:>8.1} s",
                                report.target,
                                report.inputs,
                                report.panics(),
                                report.elapsed.as_secs_f64()
                            );
                            done.push((i, report));
                        }
                    })
            })
            .collect();
        workers
            .into_iter()
            .filter_map(Result::ok)
            .flat_map(|worker| worker.join().unwrap_or_default())
            .collect()
    });
    reports.sort_by_key(|(i, _)| *i);
    reports.into_iter().map(|(_, report)| report).collect()
}

fn print_table(reports: &[Report]) {
    println!(
        "\n{:<16} {:>10} {:>9} {:>9} {:>9} {:>7} {:>9} {:>10} {:>11}",
        "target",
        "inputs",
        "accepted",
        "empty",
        "refused",
        "panics",
        "seconds",
        "inputs/s",
        "slowest ms"
    );
    for r in reports {
        println!(
            "{:<16} {:>10} {:>9} {:>9} {:>9} {:>7} {:>9.1} {:>10.0} {:>11.2}",
            r.target,
            r.inputs,
            r.accepted,
            r.empty,
            r.refused,
            r.panics(),
            r.elapsed.as_secs_f64(),
            r.rate(),
            r.slowest.as_secs_f64() * 1000.0
        );
    }
    let inputs: u64 = reports.iter().map(|r| r.inputs).sum();
    let panics: u64 = reports.iter().map(Report::panics).sum();
    println!("total: {inputs} inputs, {panics} panics");
}

fn replay(target: &Target, files: &[PathBuf]) -> anyhow::Result<()> {
    // The default hook stays: the panic is printed in full, with RUST_BACKTRACE honoured.
    let mut failed = false;
    for file in files {
        let input =
            std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
        let result = std::panic::catch_unwind(|| (target.run)(&input));
        match result {
            Ok(Outcome::Accepted) => println!("{}: accepted", file.display()),
            Ok(Outcome::Empty) => println!("{}: nothing usable", file.display()),
            Ok(Outcome::Refused) => println!("{}: refused with an error", file.display()),
            Err(_) => {
                println!("{}: PANIC", file.display());
                failed = true;
            }
        }
    }
    targets::clean_up();
    if failed {
        std::process::exit(1);
    }
    Ok(())
}
