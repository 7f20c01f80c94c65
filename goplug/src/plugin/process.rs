//! The plugin process's own I/O: the handshake write on stdout, messages
//! on stderr, and the signals it reacts to.

use std::io::Write;

use tokio_util::sync::CancellationToken;

use crate::error::{Error, Result};

/// Writes the handshake line (or, in debug mode, the reattach config) on
/// fd 1: the only stdout write in the library.
#[expect(
    clippy::disallowed_methods,
    reason = "the handshake is the one stdout write"
)]
pub(super) fn write_stdout_line(line: &str) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{line}")
        .and_then(|()| stdout.flush())
        .map_err(|source| Error::Io {
            context: "writing the handshake line to stdout",
            error: source,
        })
}

pub(super) fn write_stderr(text: &str) {
    // Nothing useful can be done if stderr is gone.
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

/// Keeps SIGINT from killing a launched plugin, as go-plugin does (a
/// debug-mode plugin stops on it), and turns SIGTERM into a graceful
/// shutdown (go-plugin dies on it and leaves its socket behind).
pub(super) fn watch_signals(
    shutdown: CancellationToken,
    ignore_interrupt: bool,
) -> Result<tokio::task::JoinHandle<()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let install = |kind: SignalKind| {
        signal(kind).map_err(|source| Error::Io {
            context: "installing a signal handler",
            error: source,
        })
    };
    let mut sigint = install(SignalKind::interrupt())?;
    let mut sigterm = install(SignalKind::terminate())?;
    Ok(tokio::spawn(async move {
        let mut count = 0u64;
        loop {
            tokio::select! {
                Some(()) = sigint.recv() => {
                    if !ignore_interrupt {
                        tracing::debug!("plugin received SIGINT in debug mode, shutting down");
                        shutdown.cancel();
                        return;
                    }
                    count += 1;
                    tracing::trace!(count, "plugin received interrupt signal, ignoring");
                }
                Some(()) = sigterm.recv() => {
                    tracing::debug!("plugin received SIGTERM, shutting down");
                    shutdown.cancel();
                    return;
                }
                () = shutdown.cancelled() => return,
            }
        }
    }))
}
