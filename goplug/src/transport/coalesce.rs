//! Fewer, larger socket writes for HTTP/2 connections.
//!
//! h2 writes whatever frames it holds as soon as its connection task runs.
//! A client request is HEADERS, then DATA from a second task (the body
//! can only be sent once the connection task has opened the stream), so
//! every unary call cost two `writev`s, each waking the peer. Likewise many
//! concurrent calls are written as many small writes. [`CoalescedWrites`]
//! holds the first write of each flush back for one pass of the scheduler:
//! the task re-queues itself behind the tasks that are ready, those add
//! their frames, and one write carries them all. grpc-go's writer batches
//! the same way (it writes when it has nothing more queued).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// A byte stream whose writes wait one scheduler pass before the first
/// write after each flush. Reads pass straight through.
#[derive(Debug)]
pub(crate) struct CoalescedWrites<S> {
    inner: S,
    /// The current flush cycle has already been held back once.
    held_back: bool,
}

impl<S> CoalescedWrites<S> {
    pub(crate) fn new(inner: S) -> Self {
        Self {
            inner,
            held_back: false,
        }
    }

    /// Holds the first write of a flush cycle back: wakes the task (which
    /// tokio then queues behind the tasks already ready) and reports
    /// `Pending`. The caller keeps its bytes and writes them, with
    /// whatever it gathered meanwhile, when polled again.
    fn hold_back(&mut self, cx: &mut Context<'_>) -> bool {
        if self.held_back {
            return false;
        }
        self.held_back = true;
        cx.waker().wake_by_ref();
        true
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for CoalescedWrites<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for CoalescedWrites<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.hold_back(cx) {
            return Poll::Pending;
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if self.hold_back(cx) {
            return Poll::Pending;
        }
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let flushed = Pin::new(&mut self.inner).poll_flush(cx);
        if flushed.is_ready() {
            self.held_back = false;
        }
        flushed
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

impl<S: tonic::transport::server::Connected> tonic::transport::server::Connected
    for CoalescedWrites<S>
{
    type ConnectInfo = S::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.inner.connect_info()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Two writers feeding one connection task: with the hold-back, the
    /// bytes the second task adds before the first write reach the socket
    /// in the same write.
    #[tokio::test(flavor = "current_thread")]
    async fn a_write_waits_one_pass_for_the_other_ready_tasks() {
        let (near, mut far) = tokio::io::duplex(1 << 16);
        let mut near = CoalescedWrites::new(near);
        let queued = std::sync::Arc::new(std::sync::Mutex::new(Vec::<u8>::new()));
        queued.lock().unwrap().extend_from_slice(b"HEADERS ");
        let adder = {
            let queued = queued.clone();
            tokio::spawn(async move { queued.lock().unwrap().extend_from_slice(b"DATA") })
        };
        // The writer polls: the first write is held back, the spawned task
        // runs, then the write goes out with both pieces.
        let pending = std::future::poll_fn(|cx| {
            let bytes = queued.lock().unwrap().clone();
            Pin::new(&mut near).poll_write(cx, &bytes)
        });
        let written = tokio::time::timeout(std::time::Duration::from_secs(5), pending)
            .await
            .unwrap()
            .unwrap();
        adder.await.unwrap();
        assert_eq!(written, b"HEADERS DATA".len());
        near.flush().await.unwrap();
        // After a flush the next cycle is held back once again, and works.
        near.write_all(b"!").await.unwrap();
        near.flush().await.unwrap();
        let mut got = vec![0; written + 1];
        far.read_exact(&mut got).await.unwrap();
        assert_eq!(got, b"HEADERS DATA!");
    }
}
