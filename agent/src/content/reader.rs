//! Reading committed blobs: positional reads, an `AsyncRead` from an offset, and a
//! stream of large chunks read on the blocking pool.

use std::fs::File;
use std::io::{Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::Path;

use tokio::sync::mpsc;

use super::{CHUNK_SIZE, Digest};
use crate::error::{Error, Result};

/// One chunk of a blob: its offset and bytes.
pub type Chunk = Result<(i64, Vec<u8>)>;

/// An open blob.
#[derive(Debug)]
pub struct Reader {
    file: File,
    digest: Digest,
    size: i64,
}

impl Reader {
    pub(super) fn open(path: &Path, digest: Digest, size: i64) -> Result<Reader> {
        let file = File::open(path)
            .map_err(|e| Error::io(format!("content {digest}: open blob {}", path.display()), e))?;
        Ok(Reader { file, digest, size })
    }

    pub fn digest(&self) -> &Digest {
        &self.digest
    }

    /// The blob's size in bytes.
    pub fn size(&self) -> i64 {
        self.size
    }

    /// Reads at `offset` into `buf` (blocking); short only at the end of the blob.
    pub fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<usize> {
        let mut done = 0;
        while done < buf.len() {
            match self.file.read_at(&mut buf[done..], offset + done as u64) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Error::io(format!("read content {}", self.digest), e)),
            }
        }
        Ok(done)
    }

    /// The whole blob (blocking).
    pub fn read_to_vec(&self) -> Result<Vec<u8>> {
        let mut buf = vec![0u8; usize::try_from(self.size).unwrap_or(0)];
        let n = self.read_at(&mut buf, 0)?;
        buf.truncate(n);
        Ok(buf)
    }

    /// An `AsyncRead` of the blob from `offset` to its end.
    pub fn into_async_read(mut self, offset: u64) -> Result<tokio::fs::File> {
        self.file
            .seek(SeekFrom::Start(offset))
            .map_err(|e| Error::io(format!("seek content {}", self.digest), e))?;
        Ok(tokio::fs::File::from_std(self.file))
    }

    /// Streams `len` bytes from `offset` (0 = to the end; a negative offset reads from
    /// the start, as containerd does) in chunks of up to
    /// [`CHUNK_SIZE`], read ahead on the blocking pool. Each item is the chunk's
    /// offset and bytes. The reading stops when the receiver is dropped.
    pub fn into_chunks(self, offset: i64, len: i64) -> Result<mpsc::Receiver<Chunk>> {
        let offset = offset.max(0);
        if offset > self.size {
            return Err(Error::OutOfRange(format!(
                "content {}: offset {offset} is outside the blob of {} bytes",
                self.digest, self.size
            )));
        }
        let end = if len <= 0 || offset.saturating_add(len) > self.size {
            self.size
        } else {
            offset + len
        };
        let (tx, rx) = mpsc::channel(4);
        tokio::task::spawn_blocking(move || {
            let mut pos = offset;
            while pos < end {
                let want = (end - pos).min(CHUNK_SIZE as i64) as usize;
                let mut buf = vec![0u8; want];
                let item = match self.read_at(&mut buf, pos as u64) {
                    Ok(0) => Err(Error::Internal(format!(
                        "content {}: blob ends at {pos}, before its recorded size {}",
                        self.digest, self.size
                    ))),
                    Ok(n) => {
                        buf.truncate(n);
                        let at = pos;
                        pos += n as i64;
                        Ok((at, buf))
                    }
                    Err(e) => Err(e),
                };
                let stop = item.is_err();
                if tx.blocking_send(item).is_err() || stop {
                    return;
                }
            }
        });
        Ok(rx)
    }
}
