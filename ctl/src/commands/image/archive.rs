//! `berthctl save` and `load`: image archives streamed to and from berthd.

use std::io::{IsTerminal, Write};

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
    let (mut out, tmp): (
        Box<dyn Write>,
        Option<(std::path::PathBuf, std::path::PathBuf)>,
    ) = match &a.output {
        Some(path) => {
            // Write next to the target and rename, so a failed save leaves no file.
            let dir = path.parent().filter(|p| !p.as_os_str().is_empty());
            let tmp = dir.unwrap_or(std::path::Path::new(".")).join(format!(
                ".{}.{}.tmp",
                path.file_name().and_then(|n| n.to_str()).unwrap_or("save"),
                std::process::id()
            ));
            let f = std::fs::File::create(&tmp)
                .map_err(|e| anyhow::anyhow!("create {}: {e}", tmp.display()))?;
            (
                Box::new(std::io::BufWriter::with_capacity(CHUNK, f)),
                Some((tmp, path.clone())),
            )
        }
        None => (Box::new(std::io::stdout().lock()), None),
    };
    let result: anyhow::Result<()> = async {
        while let Some(chunk) = stream.message().await? {
            out.write_all(&chunk.data)?;
        }
        out.flush()?;
        Ok(())
    }
    .await;
    drop(out);
    match (result, tmp) {
        (Ok(()), Some((tmp, path))) => {
            std::fs::rename(&tmp, &path).map_err(|e| {
                anyhow::anyhow!("rename {} to {}: {e}", tmp.display(), path.display())
            })?;
        }
        (Err(e), Some((tmp, _))) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        (r, None) => r?,
    }
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
