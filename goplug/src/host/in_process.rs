//! A client for a plugin server running in the host's own process: what
//! `goplug::testing::connect` builds on.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::connected::{Connected, Connection, Mode};
use super::process::PluginProcess;
use super::runner::RunningPlugin;
use super::socket_dir::SocketDir;
use super::{Client, DEFAULT_SHUTDOWN_GRACE, PluginSet};
use crate::error::Result;
use crate::protocol::{PluginAddress, Protocol};
use crate::transport::dial as connect;

/// Connects to a plugin server the caller runs in this process: what
/// [`crate::testing::connect`] builds on.
pub(crate) async fn attach_in_process(
    address: PluginAddress,
    version: u32,
    plugins: PluginSet,
    plugin: Box<dyn RunningPlugin>,
    started: Instant,
    timeout: Duration,
) -> Result<Client> {
    let channel = connect::connect(&address, timeout, None).await?;
    let process = PluginProcess::watch_attached(plugin, PathBuf::from("in-process"));
    let connection = Connection {
        channel,
        protocol: Protocol::Grpc,
        version,
        address,
        negotiated_tls: None,
        mux: None,
        netrpc: None,
    };
    Ok(Connected {
        connection,
        plugins,
        process,
        socket_dir: SocketDir::create(None, None)?,
        mode: Mode::Launched {
            keep_running: false,
        },
        started,
        shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
        socket_group: None,
        broker_tls: None,
        sync: (None, None),
        auto_mtls_keys: None,
        sandbox: None,
    }
    .into_client())
}
