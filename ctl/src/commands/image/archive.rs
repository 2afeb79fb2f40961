//! `berthctl save` and `load`: image archives streamed to and from berthd.

use std::io::IsTerminal;

use berth_api::berth::v1::{ArchiveFormat, LoadImagesChunk, SaveImagesRequest};
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::client;
use crate::global::{Format, GlobalOptions};

/// Bytes per chunk sent to berthd.
const CHUNK: usize = 1 << 20;

#[derive(clap::Args)]
pub struct SaveArgs {
    /// Write to this file instead of stdout.
    #[arg(short, long)]
    output: Option<std::path::PathBuf>,
    /// For an image of several platforms: the one a docker archive holds.
    #[arg(long)]
    platform: Option<String>,
    /// Names or IDs. The archive format is docker's unless `--format oci`.
    #[arg(required = true)]
    images: Vec<String>,
}

#[derive(clap::Args)]
pub struct LoadArgs {
    /// Read from this file instead of stdin.
    #[arg(short, long)]
    input: Option<std::path::PathBuf>,
    /// Print nothing.
    #[arg(short, long)]
    quiet: bool,
    /// The snapshotter to unpack into.
    #[arg(long, default_value = "")]
    snapshotter: String,
}

pub async fn save(g: &GlobalOptions, a: SaveArgs) -> anyhow::Result<i32> {
    let format = match &g.format {
        Format::Table => ArchiveFormat::DockerArchive,
        Format::Other(f) if f == "docker" || f == "docker-archive" => ArchiveFormat::DockerArchive,
        Format::Other(f) if f == "oci" || f == "oci-archive" => ArchiveFormat::OciArchive,
        other => anyhow::bail!("save --format: expected docker or oci, got {other:?}"),
    };
    if a.output.is_none() && std::io::stdout().is_terminal() {
        anyhow::bail!("cowardly refusing to save to a terminal. Use the -o flag or redirect");
    }
    let mut stream = client(g)
        .await?
        .save(SaveImagesRequest {
            names: a.images,
            format: format as i32,
            platform: a.platform.unwrap_or_default(),
        })
        .await?
        .into_inner();
    crate::output::write_chunks(a.output.as_deref(), CHUNK, async || {
        Ok(stream.message().await?.map(|chunk| chunk.data))
    })
    .await?;
    Ok(0)
}

pub async fn load(g: &GlobalOptions, a: LoadArgs) -> anyhow::Result<i32> {
    let mut input: Box<dyn tokio::io::AsyncRead + Unpin + Send> = match &a.input {
        Some(path) => Box::new(
            tokio::fs::File::open(path)
                .await
                .map_err(|e| anyhow::anyhow!("open {}: {e}", path.display()))?,
        ),
        None => {
            if std::io::stdin().is_terminal() {
                anyhow::bail!(
                    "requested load from stdin, but stdin is a terminal; use -i FILE or redirect"
                );
            }
            Box::new(tokio::io::stdin())
        }
    };
    let (tx, rx) = mpsc::channel::<LoadImagesChunk>(4);
    let snapshotter = a.snapshotter.clone();
    let reader = tokio::spawn(async move {
        let mut first = true;
        loop {
            let mut buf = Vec::with_capacity(CHUNK);
            while buf.len() < CHUNK {
                let n = (&mut input)
                    .take((CHUNK - buf.len()) as u64)
                    .read_to_end(&mut buf)
                    .await?;
                if n == 0 {
                    break;
                }
            }
            let end = buf.len() < CHUNK;
            if buf.is_empty() && !first {
                return Ok::<(), std::io::Error>(());
            }
            let chunk = LoadImagesChunk {
                data: buf,
                snapshotter: if first {
                    snapshotter.clone()
                } else {
                    String::new()
                },
            };
            first = false;
            if tx.send(chunk).await.is_err() || end {
                return Ok(());
            }
        }
    });
    let result = client(g).await?.load(ReceiverStream::new(rx)).await;
    let read = reader.await?;
    let loaded = result?.into_inner();
    read?;
    if !a.quiet {
        for n in &loaded.names {
            println!("Loaded image: {n}");
        }
        for id in &loaded.ids {
            println!("Loaded image ID: {id}");
        }
    }
    Ok(0)
}
