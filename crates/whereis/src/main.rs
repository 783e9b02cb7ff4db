//! `whereis-bot`: see `whereis_bot --help` and the README.

use std::process::ExitCode;

// Every lookup allocates for a dozen HTTP exchanges across two worker threads; mimalloc's
// thread-local free lists cost a fraction of glibc malloc's there (see BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    whereis::cli::main()
}
