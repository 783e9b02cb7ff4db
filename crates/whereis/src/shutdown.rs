//! Stopping on a signal: the first SIGTERM or Ctrl-C starts a graceful stop (the caller's token is
//! cancelled); a second one ends the process at once, for an operator who will not wait.

use tokio_util::sync::CancellationToken;

/// Exit status after a second signal (128 + SIGINT, as shells report an interrupted program).
pub const EXIT_INTERRUPTED: i32 = 130;

/// Watches for signals in the background: the first cancels `stop`, the second exits the process.
pub fn on_signals(stop: CancellationToken) {
    // Both streams are registered before anything is awaited, so no signal falls between them.
    let mut signals = Signals::new();
    tokio::spawn(async move {
        signals.next().await;
        tracing::info!(
            "stopping: finishing the work in flight (send the signal again to exit at once)"
        );
        stop.cancel();
        signals.next().await;
        tracing::warn!("second signal: exiting without finishing");
        std::process::exit(EXIT_INTERRUPTED);
    });
}

/// Completes on the next Ctrl-C or SIGTERM.
pub async fn signal() {
    Signals::new().next().await;
}

/// Ctrl-C and SIGTERM, as one stream.
struct Signals {
    #[cfg(unix)]
    interrupt: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    terminate: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    #[cfg(unix)]
    fn new() -> Signals {
        use tokio::signal::unix::{signal, SignalKind};
        Signals {
            interrupt: signal(SignalKind::interrupt()).ok(),
            terminate: signal(SignalKind::terminate()).ok(),
        }
    }

    #[cfg(not(unix))]
    fn new() -> Signals {
        Signals {}
    }

    #[cfg(unix)]
    async fn next(&mut self) {
        async fn recv(signal: &mut Option<tokio::signal::unix::Signal>) {
            match signal {
                Some(signal) => {
                    signal.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        }
        tokio::select! {
            () = recv(&mut self.interrupt) => {},
            () = recv(&mut self.terminate) => {},
        }
    }

    #[cfg(not(unix))]
    async fn next(&mut self) {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}
