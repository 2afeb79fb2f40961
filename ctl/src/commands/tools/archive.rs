//! `export` (a container's file system as a tar, to a file or stdout) and `import` (a
//! new single-layer image from such a tar: a file, an http(s) URL, or `-` for stdin).

use std::io::IsTerminal;
use std::path::PathBuf;

use berth_api::berth::v1::{ExportRequest, ImportInput, ImportOptions, import_input};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::{CHUNK, client};
use crate::global::GlobalOptions;

#[derive(clap::Args)]
pub struct ExportArgs {
    /// Write to a file instead of standard output.
    #[arg(short = 'o', long)]
    output: Option<PathBuf>,
    container: String,
}

#[derive(clap::Args)]
pub struct ImportArgs {
    /// Apply Dockerfile instructions to the created image.
    #[arg(short = 'c', long = "change")]
    changes: Vec<String>,
    /// Commit message for the imported image.
    #[arg(short = 'm', long)]
    message: Option<String>,
    /// os/arch[/variant] of the image (default: the daemon's).
    #[arg(long)]
    platform: Option<String>,
    /// A tar file, an http(s) URL, or `-` for standard input.
    source: String,
    /// REPOSITORY[:TAG].
    reference: Option<String>,
}

pub async fn export(g: &GlobalOptions, a: ExportArgs) -> anyhow::Result<i32> {
    if a.output.is_none() && std::io::stdout().is_terminal() {
        anyhow::bail!("cowardly refusing to save to a terminal. Use the -o flag or redirect");
    }
    let mut stream = client(g)
        .await?
        .export(ExportRequest { id: a.container })
        .await?
        .into_inner();
    crate::output::write_chunks(a.output.as_deref(), CHUNK, async || {
        Ok(stream.message().await?.map(|c| c.data))
    })
    .await?;
    Ok(0)
}

/// Sends `input` as data messages after `first`; the task reports read errors.
pub fn upload<T: Send + 'static>(
    mut input: Box<dyn AsyncRead + Unpin + Send>,
    first: T,
    data: fn(Vec<u8>) -> T,
) -> (
    ReceiverStream<T>,
    tokio::task::JoinHandle<std::io::Result<()>>,
) {
    let (tx, rx) = mpsc::channel::<T>(4);
    let task = tokio::spawn(async move {
        if tx.send(first).await.is_err() {
            return Ok(());
        }
        loop {
            let mut buf = Vec::with_capacity(CHUNK);
            let n = (&mut input)
                .take(CHUNK as u64)
                .read_to_end(&mut buf)
                .await?;
            if n == 0 {
                return Ok(());
            }
            if tx.send(data(buf)).await.is_err() {
                return Ok(());
            }
        }
    });
    (ReceiverStream::new(rx), task)
}

/// A local file, or standard input for `-` (refused when it is a terminal).
pub async fn open_input(source: &str) -> anyhow::Result<Box<dyn AsyncRead + Unpin + Send>> {
    if source == "-" {
        if std::io::stdin().is_terminal() {
            anyhow::bail!("requested to read from stdin, but stdin is a terminal; redirect it");
        }
        return Ok(Box::new(tokio::io::stdin()));
    }
    Ok(Box::new(
        tokio::fs::File::open(source)
            .await
            .map_err(|e| anyhow::anyhow!("open {source}: {e}"))?,
    ))
}

pub async fn import(g: &GlobalOptions, a: ImportArgs) -> anyhow::Result<i32> {
    let is_url = a.source.starts_with("http://") || a.source.starts_with("https://");
    let options = ImportOptions {
        source_url: if is_url {
            a.source.clone()
        } else {
            String::new()
        },
        reference: a.reference.unwrap_or_default(),
        message: a.message.unwrap_or_default(),
        changes: a.changes,
        platform: a.platform.unwrap_or_default(),
    };
    let first = ImportInput {
        input: Some(import_input::Input::Options(options)),
    };
    let input: Box<dyn AsyncRead + Unpin + Send> = if is_url {
        Box::new(tokio::io::empty())
    } else {
        open_input(&a.source).await?
    };
    let (stream, task) = upload(input, first, |d| ImportInput {
        input: Some(import_input::Input::Data(d)),
    });
    let r = client(g).await?.import(stream).await;
    let read = task.await?;
    let r = r?.into_inner();
    read.map_err(|e| anyhow::anyhow!("read {}: {e}", a.source))?;
    println!("{}", r.image_id);
    Ok(0)
}
