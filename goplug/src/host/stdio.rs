//! go-plugin's stdout/stderr syncing, host side: what a plugin writes to
//! its (Go-level) stdout and stderr after the handshake arrives over
//! `plugin.GRPCStdio` and goes to the writers the host configured.

use crate::transport::Channel;
use tokio::io::{AsyncWrite, AsyncWriteExt};

use crate::grpc::{HOST_MAX_MESSAGE_SIZE, pb};

/// A writer for synced plugin output.
pub(crate) type SyncSink = Box<dyn AsyncWrite + Send + Unpin>;

/// Opens `StreamStdio` and copies each chunk to its writer until the
/// stream ends. A plugin without the service (old go-plugin, plugins in
/// other languages) is logged once and left alone, as go-plugin does.
/// Chunks are consumed even without a writer, so the plugin never blocks.
pub(crate) async fn copy(
    channel: Channel,
    plugin: String,
    mut stdout: Option<SyncSink>,
    mut stderr: Option<SyncSink>,
) {
    let mut client = pb::grpc_stdio_client::GrpcStdioClient::new(channel)
        .max_decoding_message_size(HOST_MAX_MESSAGE_SIZE);
    let mut stream = match client.stream_stdio(()).await {
        Ok(response) => response.into_inner(),
        // A plugin without the service, as go-plugin says it.
        Err(status) if status.code() == tonic::Code::Unimplemented => {
            tracing::warn!(
                plugin,
                "stdio service not available, stdout/stderr syncing unavailable"
            );
            return;
        }
        // The connection went away first (a short-lived host shutting down).
        Err(status) => {
            tracing::debug!(plugin, "stdio stream not opened: {status}");
            return;
        }
    };
    let mut warned_of_logs = false;
    loop {
        let data = match stream.message().await {
            Ok(Some(data)) => data,
            Ok(None) => break,
            Err(status) => {
                tracing::debug!(plugin, "received EOF, stopping recv loop: {status}");
                break;
            }
        };
        let sink = match pb::stdio_data::Channel::try_from(data.channel) {
            Ok(pb::stdio_data::Channel::Stdout) => &mut stdout,
            Ok(pb::stdio_data::Channel::Stderr) => &mut stderr,
            _ => {
                tracing::warn!(
                    plugin,
                    channel = data.channel,
                    "unknown stdio channel, dropping data"
                );
                continue;
            }
        };
        if sink.is_none()
            && !warned_of_logs
            && data.channel == pb::stdio_data::Channel::Stdout as i32
        {
            warned_of_logs = warn_if_logs(&plugin, &data.data);
        }
        if let Some(writer) = sink.as_mut() {
            let written = async {
                writer.write_all(&data.data).await?;
                writer.flush().await
            };
            if let Err(e) = written.await {
                tracing::warn!(
                    plugin,
                    "writing synced plugin output failed, no longer copying it: {e}"
                );
                *sink = None;
            }
        }
    }
}

/// How much of each dropped stdout chunk is looked at for log lines.
const LOG_SNIFF_BYTES: usize = 1024;

/// Warns, once per plugin, when what it writes to stdout after the
/// handshake (dropped: the host set no `sync_stdout`) looks like log lines:
/// its logger writes to stdout, so its logs never reach the host. Returns
/// whether it warned.
fn warn_if_logs(plugin: &str, data: &[u8]) -> bool {
    // The head of each chunk is enough to tell, and keeps a plugin that
    // streams megabytes of plain output from being scanned in full.
    let head = &data[..data.len().min(LOG_SNIFF_BYTES)];
    let text = String::from_utf8_lossy(head);
    let Some(line) = text
        .lines()
        .take(3)
        .find(|line| crate::protocol::stdout_log::looks_like_log(line))
    else {
        return false;
    };
    tracing::warn!(
        plugin,
        line = %line.chars().take(200).collect::<String>(),
        "the plugin writes log lines to stdout, where they are dropped (the host sets no \
         `sync_stdout`): log to stderr with `goplug::log::init()` in the plugin \
         (`tracing_subscriber::fmt()` writes to stdout unless given `.with_writer(std::io::stderr)`)"
    );
    true
}
