//! A local file as an [`AsyncWrite`] whose writes complete at once: page-cache writes return in
//! microseconds, so a download writes on the task that receives instead of sending every write to
//! tokio's blocking pool (two thread switches each).

use std::fs::File;
use std::io::Write;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::AsyncWrite;

/// Writes to the borrowed file at its current position.
#[derive(Debug)]
pub(crate) struct FileWriter<'a>(pub(crate) &'a File);

impl AsyncWrite for FileWriter<'_> {
    fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        let mut file = self.0;
        Poll::Ready(file.write(buf))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        // Unbuffered: every write already reached the kernel.
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
