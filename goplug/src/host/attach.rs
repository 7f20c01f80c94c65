//! A plugin the host did not launch: found by pid, watched through a
//! pidfd, killed only outside test mode.

use std::os::fd::OwnedFd;

use rustix::process::{Pid, PidfdFlags, Signal};

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::connected::{Connected, Connection, Mode};
use super::process::PluginProcess;
use super::runner::{BoxFuture, PluginExit, RunningPlugin};
use super::socket_dir::SocketDir;
use super::stdio::SyncSink;
use super::ticket::AutoMtlsKeys;
use super::{Client, PluginSet, netrpc};
use crate::error::{Error, Result};
use crate::grpc::broker::BrokerTls;
use crate::protocol::Protocol;
use crate::protocol::reattach::ReattachConfig;
use crate::sys::pidfd::{alive, process_gone};
use crate::transport::dial::{self as connect, TlsConnect};

/// The settings of an attachment, checked by the builder.
pub(super) struct AttachPlan {
    pub(super) config: ReattachConfig,
    pub(super) versions: BTreeMap<u32, PluginSet>,
    /// The version of a config that names none (go-plugin's `Reattach` of
    /// a plugin whose `ProtocolVersion` is 0).
    pub(super) default_version: u32,
    pub(super) tls: Option<TlsConnect>,
    pub(super) timeout: Duration,
    pub(super) shutdown_grace: Duration,
    pub(super) sync: (Option<SyncSink>, Option<SyncSink>),
    /// TLS for the broker's connections, when reattaching with AutoMTLS keys.
    pub(super) broker_tls: Option<BrokerTls>,
    /// The plugin's socket directory, taken over from the host that
    /// launched it: removed when the plugin goes.
    pub(super) socket_dir: Option<PathBuf>,
    pub(super) auto_mtls_keys: Option<AutoMtlsKeys>,
}

#[derive(Debug)]
pub(super) struct AttachedPlugin {
    pid: u32,
    /// Names exactly the process found at attach time, so a recycled pid
    /// is never signalled or mistaken for the plugin.
    pidfd: Option<OwnedFd>,
    /// Test mode: never killed, as go-plugin's `Kill` is a no-op then.
    test: bool,
}

impl AttachedPlugin {
    /// Finds the process `pid` without signalling it.
    pub(crate) fn find(pid: u32, test: bool) -> Result<Self, String> {
        let process = i32::try_from(pid)
            .ok()
            .and_then(Pid::from_raw)
            .ok_or_else(|| format!("{pid} is not a valid process id"))?;
        match rustix::process::pidfd_open(process, PidfdFlags::empty()) {
            Ok(pidfd) => Ok(Self {
                pid,
                pidfd: Some(pidfd),
                test,
            }),
            Err(rustix::io::Errno::SRCH) => Err(format!("no process has pid {pid}")),
            // No pidfds (old kernel, seccomp): fall back to polling by pid.
            Err(_) if alive(pid) => Ok(Self {
                pid,
                pidfd: None,
                test,
            }),
            Err(_) => Err(format!("no process has pid {pid}")),
        }
    }
}

impl RunningPlugin for AttachedPlugin {
    fn id(&self) -> String {
        self.pid.to_string()
    }

    fn pid(&self) -> Option<u32> {
        Some(self.pid)
    }

    fn wait(&self) -> BoxFuture<'_, PluginExit> {
        Box::pin(async move {
            let pidfd = self.pidfd.as_ref().and_then(|fd| fd.try_clone().ok());
            process_gone(pidfd, || alive(self.pid)).await;
            PluginExit::Gone
        })
    }

    fn kill(&self) {
        if self.test {
            return;
        }
        if let Some(pidfd) = &self.pidfd {
            let _ = rustix::process::pidfd_send_signal(pidfd, Signal::KILL);
        } else if let Some(process) = i32::try_from(self.pid).ok().and_then(Pid::from_raw) {
            let _ = rustix::process::kill_process(process, Signal::KILL);
        }
    }
}

/// Attaches to a running plugin (go-plugin's reattach): finds its process
/// without signalling it, dials it, and watches its pid.
pub(super) async fn attach(plan: AttachPlan) -> Result<Client> {
    let AttachPlan {
        config,
        mut versions,
        default_version,
        tls,
        timeout,
        shutdown_grace,
        sync,
        broker_tls,
        socket_dir,
        auto_mtls_keys,
    } = plan;
    let started = Instant::now();
    let not_found = |reason: String| Error::ReattachProcessNotFound {
        pid: config.pid,
        address: config.address.clone(),
        reason,
    };
    let plugin = AttachedPlugin::find(config.pid, config.test).map_err(not_found)?;
    // A TLS failure means something answered but is not the plugin the
    // host trusts: say so, rather than "not found".
    let connect_failed = |e: Error| match e {
        Error::Tls { .. } => e,
        other => not_found(other.to_string()),
    };
    let negotiated_tls = tls.as_ref().map(|tls| tls.negotiated.clone());
    let (channel, netrpc_connection) = match config.protocol {
        Protocol::Grpc => (
            connect::connect(&config.address, timeout, tls)
                .await
                .map_err(connect_failed)?,
            None,
        ),
        // Stdout and stderr of a reattached plugin are not the host's.
        Protocol::NetRpc => (
            netrpc::unavailable_channel(),
            Some(
                netrpc::connect(&config.address, timeout, tls, (None, None))
                    .await
                    .map_err(connect_failed)?,
            ),
        ),
    };
    let version = match config.protocol_version {
        0 => default_version,
        version => version,
    };
    tracing::debug!(pid = config.pid, address = %config.address, version, "reattached to plugin");
    let process = PluginProcess::watch_attached(
        Box::new(plugin),
        PathBuf::from(format!("plugin-{}", config.pid)),
    );
    let connection = Connection {
        channel,
        protocol: config.protocol,
        version,
        address: config.address,
        negotiated_tls,
        mux: None,
        netrpc: netrpc_connection,
    };
    Ok(Connected {
        connection,
        plugins: versions.remove(&version).unwrap_or_default(),
        process,
        // For the host's brokered servers.
        socket_dir: match socket_dir {
            Some(dir) => SocketDir::adopt(dir),
            None => SocketDir::create(None, None)?,
        },
        mode: Mode::Attached { test: config.test },
        started,
        shutdown_grace,
        socket_group: None,
        broker_tls,
        sync,
        auto_mtls_keys,
        sandbox: None,
    }
    .into_client())
}
