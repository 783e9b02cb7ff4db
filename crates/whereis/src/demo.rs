//! `whereis-bot demo`: the built-in simulator plus the real server, configured through a real
//! configuration file in a temporary directory (so `find --config` works against it too).

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;
use whereis_sim::{Scenario, Simulator};

use crate::cli::shutdown_signal;
use crate::config::Config;
use crate::lookup::Finder;
use crate::server;

/// Writes a configuration for `simulator` into `dir` (passwords in files beside it) and returns its
/// path.
pub fn write_config(simulator: &Simulator, dir: &Path) -> anyhow::Result<std::path::PathBuf> {
    let mut text = String::from(
        "# Written by `whereis-bot demo` for its simulated location servers.\n\
         [lookup]\n\
         username_variants = [\"{user}\", \"CORP\\\\{user}\", \"corp\\\\{user}\"]\n\
         timeout_ms = 2000\n",
    );
    for (i, server) in simulator.servers().iter().enumerate() {
        let secret = format!("{}.password", server.name());
        write_private(&dir.join(&secret), server.password())?;
        write!(
            text,
            "\n[[sources]]\nname = {name:?}\nkind = {kind:?}\nurl = {url:?}\nusername = {user:?}\npassword_file = {secret:?}\npriority = {i}\n",
            name = server.name(),
            kind = server.kind().as_str(),
            url = server.base_url(),
            user = server.username(),
        )?;
    }
    let path = dir.join("whereis.toml");
    std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}

fn write_private(path: &Path, content: &str) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    std::io::Write::write_all(&mut file, content.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))
}

/// Runs the demo until Ctrl-C.
pub async fn run(listen: SocketAddr) -> anyhow::Result<()> {
    let scenario = Scenario::builtin_demo();
    let simulator = Simulator::start(scenario)
        .await
        .context("cannot start the simulated location servers")?;
    let dir = tempfile::Builder::new()
        .prefix("whereis-demo-")
        .tempdir()
        .context("cannot create a temporary directory")?;
    let config_path = write_config(&simulator, dir.path())?;
    let config = Config::load(&config_path)?;
    let finder = Finder::from_config(&config)?;
    let listener = TcpListener::bind(listen).await.with_context(|| {
        format!("cannot listen on {listen} (is another demo running? try --listen 127.0.0.1:0)")
    })?;
    let address = listener.local_addr()?;
    println!("{}", instructions(&simulator, address, &config_path));
    server::serve(
        listener,
        server::router(Arc::new(finder), None),
        shutdown_signal(),
    )
    .await?;
    simulator.shutdown().await;
    Ok(())
}

fn instructions(simulator: &Simulator, address: SocketAddr, config: &Path) -> String {
    let base = format!("http://{address}");
    let mut text = format!("whereis demo is running at {base}\n\nSimulated location servers:\n");
    for server in simulator.servers() {
        let _ = writeln!(
            text,
            "  {:<14} {:<7} {}",
            server.name(),
            server.kind().as_str(),
            server.base_url()
        );
    }
    text.push_str("\nPeople to look for:\n");
    for person in &simulator.scenario().people {
        let _ = writeln!(
            text,
            "  {:<10} {} ({} device(s))",
            person.username,
            person.display_name,
            person.devices.len()
        );
    }
    let first = simulator
        .scenario()
        .people
        .first()
        .map(|p| p.username.as_str())
        .unwrap_or("jdoe");
    // The running binary's own path: `whereis-bot` need not be on PATH (e.g. under `cargo run`).
    let program = std::env::current_exe()
        .map(|path| path.display().to_string())
        .unwrap_or_else(|_| "whereis-bot".to_owned());
    let _ = write!(
        text,
        "\nTry:\n  curl '{base}/api/v1/locate?q={first}'\n  curl {base}/healthz\n  {program} find {first} --config {config}\n  {program} find {first} --json --config {config}\n\nCtrl-C to stop.",
        config = config.display()
    );
    text
}
