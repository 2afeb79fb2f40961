//! Layer compression: recognising it (media type or magic bytes) and decoding it.

use std::io;

use async_compression::tokio::bufread::{GzipDecoder, ZstdDecoder};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};

/// Compression of a layer blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compression {
    /// A plain tar.
    None,
    /// gzip (the default for layers berth writes).
    #[default]
    Gzip,
    /// zstd.
    Zstd,
}

const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];
const ZSTD_MAGIC: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];

/// Input buffer in front of the decompressor.
const INPUT_BUFFER: usize = 256 * 1024;

impl Compression {
    /// The compression a layer media type declares, or `None` when the media type does not
    /// say (unknown or empty media types are detected from the data instead).
    pub fn from_media_type(media_type: &str) -> Option<Compression> {
        let mt = media_type.trim();
        if mt.ends_with("+gzip") || mt.ends_with(".tar.gzip") || mt.ends_with(".tar.gz") {
            Some(Compression::Gzip)
        } else if mt.ends_with("+zstd") || mt.ends_with(".tar.zstd") {
            Some(Compression::Zstd)
        } else if mt.ends_with(".tar") || mt.ends_with("layer.v1.tar") {
            Some(Compression::None)
        } else {
            None
        }
    }

    /// The compression whose magic bytes start `head` (a plain tar otherwise).
    pub fn detect(head: &[u8]) -> Compression {
        if head.starts_with(GZIP_MAGIC) {
            Compression::Gzip
        } else if head.starts_with(ZSTD_MAGIC) {
            Compression::Zstd
        } else {
            Compression::None
        }
    }

    /// The suffix of OCI layer media types (`+gzip`, `+zstd`, or nothing).
    pub fn media_type_suffix(self) -> &'static str {
        match self {
            Compression::None => "",
            Compression::Gzip => "+gzip",
            Compression::Zstd => "+zstd",
        }
    }
}

/// A reader of the decompressed stream; `hint` overrides detection from the magic bytes.
pub(crate) async fn decoder<'a, R: AsyncRead + Unpin + Send + 'a>(
    reader: R,
    hint: Option<Compression>,
) -> io::Result<Box<dyn AsyncRead + Unpin + Send + 'a>> {
    let mut buffered = BufReader::with_capacity(INPUT_BUFFER, reader);
    let compression = match hint {
        Some(c) => c,
        None => Compression::detect(buffered.fill_buf().await?),
    };
    Ok(match compression {
        Compression::None => Box::new(buffered),
        Compression::Gzip => {
            let mut d = GzipDecoder::new(buffered);
            d.multiple_members(true);
            Box::new(d)
        }
        Compression::Zstd => {
            let mut d = ZstdDecoder::new(buffered);
            d.multiple_members(true);
            Box::new(d)
        }
    })
}
