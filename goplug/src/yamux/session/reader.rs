//! The reader task: bytes in, [`Inner::on_header`] and
//! [`Inner::on_payload`] do the rest.
//!
//! [`Inner::on_header`]: super::state::Inner::on_header
//! [`Inner::on_payload`]: super::state::Inner::on_payload

use std::io;
use std::pin::pin;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, BufReader, ReadHalf};

use super::super::frame::{GO_AWAY_NORMAL, GO_AWAY_PROTOCOL_ERROR, HEADER_LEN, Header};
use super::super::{ProtocolError, YamuxError};
use super::shared::Shared;
use super::state::{CloseMode, Then};

pub(super) async fn reader_task<T: AsyncRead>(shared: Arc<Shared>, rd: ReadHalf<T>) {
    // Frame headers are read through the buffer; a payload at least this
    // large bypasses it. 16 KiB, not more: every net/rpc plugin connection
    // (and brokered one) has one, and its pages stay resident in the host.
    let mut rd = BufReader::with_capacity(16 * 1024, rd);
    let cause = tokio::select! {
        _ = shared.cancel.cancelled() => return,
        cause = shared.read_loop(&mut rd) => cause,
    };
    let mode = match cause {
        YamuxError::Protocol(_) => {
            tracing::warn!(%cause, "yamux: closing the session");
            CloseMode::GoAway(GO_AWAY_PROTOCOL_ERROR)
        }
        _ => CloseMode::Abort,
    };
    shared.close(cause, mode);
}

impl Shared {
    /// Reads frames until the connection or the peer fails.
    async fn read_loop<R: AsyncRead + Unpin>(&self, rd: &mut R) -> YamuxError {
        loop {
            if let Err(e) = self.read_frame(rd).await {
                return e;
            }
            self.wait_for_control_space().await;
        }
    }

    async fn read_frame<R: AsyncRead + Unpin>(&self, rd: &mut R) -> Result<(), YamuxError> {
        let mut bytes = [0u8; HEADER_LEN];
        if let Err(e) = rd.read_exact(&mut bytes).await {
            return Err(self.read_error(e));
        }
        let header = Header::decode(&bytes).map_err(ProtocolError::from)?;
        let then = {
            let mut inner = self.lock();
            let then = inner.on_header(&self.config, header);
            self.wake(&mut inner);
            then?
        };
        match then {
            Then::Done => Ok(()),
            Then::Discard(len) => {
                tracing::trace!(
                    id = header.stream_id,
                    len,
                    "yamux: discarding data for a closed stream"
                );
                let mut limited = (&mut *rd).take(u64::from(len));
                match tokio::io::copy(&mut limited, &mut tokio::io::sink()).await {
                    Ok(n) if n == u64::from(len) => Ok(()),
                    Ok(_) => Err(self.read_error(io::ErrorKind::UnexpectedEof.into())),
                    Err(e) => Err(self.read_error(e)),
                }
            }
            Then::Deliver(len) => {
                // Read without the lock.
                let payload = if len > 0 {
                    Some(self.read_payload(rd, len).await?)
                } else {
                    None
                };
                let mut inner = self.lock();
                inner.on_payload(&self.config, header, payload);
                self.wake(&mut inner);
                Ok(())
            }
        }
    }

    async fn read_payload<R: AsyncRead + Unpin>(
        &self,
        rd: &mut R,
        len: u32,
    ) -> Result<Bytes, YamuxError> {
        // Read into spare capacity: no zeroing pass over each frame.
        let mut buf = BytesMut::with_capacity(len as usize);
        let mut limited = (&mut *rd).take(u64::from(len));
        while buf.len() < len as usize {
            match limited.read_buf(&mut buf).await {
                Ok(0) => return Err(self.read_error(io::ErrorKind::UnexpectedEof.into())),
                Ok(_) => {}
                Err(e) => return Err(self.read_error(e)),
            }
        }
        Ok(buf.freeze())
    }

    fn read_error(&self, e: io::Error) -> YamuxError {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            if self.lock().remote_go_away {
                YamuxError::RemoteGoAway {
                    code: GO_AWAY_NORMAL,
                }
            } else {
                YamuxError::ConnectionClosed
            }
        } else {
            e.into()
        }
    }

    async fn wait_for_control_space(&self) {
        loop {
            let mut notified = pin!(self.space.notified());
            notified.as_mut().enable();
            if !self.lock().control_full() {
                return;
            }
            notified.await;
        }
    }
}
