//! Stopping a plugin as go-plugin's `Kill` does, every step bounded.

use std::process::ExitStatus;
use std::time::{Duration, Instant};

use super::Client;
use super::connected::{Background, Connection, Mode};
use super::process::ProcessState;
use crate::grpc::pb;
use crate::protocol::PluginAddress;

/// How [`Client::shutdown`] went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShutdownReport {
    /// True when the plugin exited on its own within the grace period.
    pub graceful: bool,
    /// Its exit status, when it could be collected.
    pub status: Option<ExitStatus>,
    /// True for a plugin in test (debug) mode: the host only disconnected,
    /// as go-plugin's `Kill` does nothing then.
    pub left_running: bool,
    /// Time from the shutdown request to the process being reaped.
    pub elapsed: Duration,
}

impl Client {
    /// Runs `body` with the client, then [`shutdown`](Self::shutdown)
    /// whatever `body` returns, and returns what `body` returned. A plugin
    /// that does not stop gracefully is logged at warn. If `body` panics,
    /// the plugin is killed as when a `Client` is dropped.
    pub async fn scoped<T>(self, body: impl AsyncFnOnce(&Client) -> T) -> T {
        let output = body(&self).await;
        let report = self.shutdown().await;
        if !report.graceful && !report.left_running {
            tracing::warn!(?report, "the plugin did not stop gracefully; it was killed");
        }
        output
    }

    /// Stops the plugin as go-plugin's `Kill` does, with every step bounded:
    /// asks it to shut down (`GRPCController.Shutdown`), waits up to the
    /// grace period (2 s) for it to exit, then kills it. Never fails: a
    /// plugin that cannot be asked is killed.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future kills the plugin.
    pub async fn shutdown(self) -> ShutdownReport {
        let Self {
            mut process,
            socket_dir,
            connection:
                Connection {
                    channel,
                    address,
                    mux,
                    netrpc,
                    ..
                },
            background:
                Background {
                    stdio_task,
                    broker_closed,
                    broker_task,
                    ..
                },
            mode,
            shutdown_grace,
            ..
        } = self;
        let started = Instant::now();
        if mode == (Mode::Attached { test: true }) {
            drop((broker_closed, broker_task, stdio_task));
            socket_dir.remove();
            process.detach();
            return ShutdownReport {
                graceful: false,
                status: None,
                left_running: true,
                elapsed: started.elapsed(),
            };
        }
        let deadline = tokio::time::Instant::now() + shutdown_grace;
        // net/rpc: Control.Quit; a plugin that does not acknowledge it is
        // killed at once, as go-plugin does.
        let mut quit_refused = false;
        if let Some(connection) = &netrpc {
            if !process.wait_gone(Duration::ZERO).await {
                quit_refused = !connection.quit(shutdown_grace).await;
            }
        } else if !process.wait_gone(Duration::ZERO).await {
            let mut controller = pb::grpc_controller_client::GrpcControllerClient::new(channel);
            // The outcome is ignored, as go-plugin does: the plugin may stop
            // before its reply is sent.
            let _ = tokio::time::timeout_at(deadline, controller.shutdown(pb::Empty {})).await;
        }
        // As go-plugin: brokered servers stop with the connection.
        drop(broker_closed);
        drop(broker_task);
        if let Some(mux) = mux {
            mux.close();
        }
        let remaining = if quit_refused {
            Duration::ZERO
        } else {
            deadline.saturating_duration_since(tokio::time::Instant::now())
        };
        let graceful = process.wait_gone(remaining).await;
        if let Some(connection) = netrpc {
            connection.close(Duration::from_secs(1)).await;
        }
        if !graceful {
            tracing::warn!(
                id = process.running().id(),
                "plugin failed to exit gracefully"
            );
            process.kill().await;
        } else {
            tracing::debug!(id = process.running().id(), "plugin exited");
        }
        process.release().await;
        process.finish_readers(Duration::from_secs(1)).await;
        // Synced output the plugin sent before it exited still arrives.
        stdio_task.finish(Duration::from_secs(1)).await;
        socket_dir.remove();
        if mode == (Mode::Attached { test: false }) && process.state() != ProcessState::Running {
            remove_detached_socket_dir(&address);
        }
        ShutdownReport {
            graceful,
            status: process.exit_status(),
            left_running: false,
            elapsed: started.elapsed(),
        }
    }
}

/// After stopping a plugin a previous goplug host detached from: removes
/// the socket directory that host left for it, once the plugin removed
/// its socket. Only directories goplug names (`goplug-*`), only empty ones.
fn remove_detached_socket_dir(address: &PluginAddress) {
    let PluginAddress::Unix(socket) = address else {
        return;
    };
    for dir in socket.ancestors().skip(1).take(2) {
        let ours = dir
            .file_name()
            .is_some_and(|name| name.to_string_lossy().starts_with("goplug-"));
        if ours {
            // Fails, harmlessly, while anything is left in it.
            let _ = std::fs::remove_dir(dir);
            return;
        }
    }
}
