//! `cp`: files between a container and the host, both ways, as tar streams. Paths in
//! the container are resolved by berthd inside the container's root; archives from the
//! container are unpacked here by a tar reader that refuses entries leaving the target.

use std::io::Write;
use std::path::{Path, PathBuf};

use berth_api::berth::v1::{
    CopyFromRequest, CopyToInput, CopyToOptions, StatPathRequest, copy_to_input,
};
use tokio::io::AsyncRead;

use super::archive::{open_input, upload};
use super::client;
use crate::global::GlobalOptions;

#[derive(clap::Args)]
pub struct CpArgs {
    /// Always follow a symbolic link in SRC_PATH.
    #[arg(short = 'L', long = "follow-link")]
    follow_link: bool,
    /// CONTAINER:SRC_PATH, a host path, or `-` (a tar on standard input).
    source: String,
    /// CONTAINER:DEST_PATH, a host path, or `-` (a tar to standard output).
    destination: String,
}

/// `CONTAINER:PATH` split, or None for a host path (one starting with `/` or `.`, or
/// without a colon; docker's rule).
fn split_container(arg: &str) -> Option<(&str, &str)> {
    if arg.starts_with('/') || arg.starts_with('.') {
        return None;
    }
    arg.split_once(':').filter(|(c, _)| !c.is_empty())
}

/// An absolute path in the container (relative ones are under `/`, as docker does).
fn absolute(path: &str) -> String {
    if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/{path}")
    }
}

fn last_component(path: &str) -> String {
    Path::new(path.trim_end_matches('/'))
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| ".".into())
}

fn parent_of(path: &str) -> String {
    match Path::new(path.trim_end_matches('/')).parent() {
        Some(p) if !p.as_os_str().is_empty() => p.display().to_string(),
        _ => "/".into(),
    }
}

pub async fn run(g: &GlobalOptions, a: CpArgs) -> anyhow::Result<i32> {
    match (split_container(&a.source), split_container(&a.destination)) {
        (Some((c, p)), None) => from_container(g, c, &absolute(p), &a.destination, a.follow_link)
            .await
            .map(|()| 0),
        (None, Some((c, p))) => to_container(g, &a.source, c, &absolute(p))
            .await
            .map(|()| 0),
        (Some(_), Some(_)) => {
            anyhow::bail!("copying between containers is not supported")
        }
        (None, None) => anyhow::bail!("must specify at least one container source"),
    }
}

async fn from_container(
    g: &GlobalOptions,
    container: &str,
    path: &str,
    dest: &str,
    follow: bool,
) -> anyhow::Result<()> {
    let mut stream = client(g)
        .await?
        .copy_from(CopyFromRequest {
            id: container.to_string(),
            path: path.to_string(),
            follow_link: follow,
        })
        .await?
        .into_inner();
    let first = stream
        .message()
        .await?
        .ok_or_else(|| anyhow::anyhow!("berthd ended the copy before it began"))?;
    let stat = first.stat.unwrap_or_default();
    if dest == "-" {
        let mut out = std::io::stdout().lock();
        out.write_all(&first.data)?;
        while let Some(c) = stream.message().await? {
            out.write_all(&c.data)?;
        }
        out.flush()?;
        return Ok(());
    }
    // The tar streams through a pipe into the unpacker.
    let (mut w, r) = tokio::io::duplex(super::CHUNK);
    let feed = tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        w.write_all(&first.data).await?;
        while let Some(c) = stream.message().await? {
            w.write_all(&c.data).await?;
        }
        w.shutdown().await?;
        Ok::<(), anyhow::Error>(())
    });
    let dest_path = PathBuf::from(dest);
    let result = unpack_to(r, &dest_path, &stat.name).await;
    feed.await??;
    result
}

/// Unpacks a tar whose top entry is `top` to `dest`: inside it when it is a directory,
/// as it (renamed) otherwise.
async fn unpack_to(r: impl AsyncRead + Unpin + Send, dest: &Path, top: &str) -> anyhow::Result<()> {
    let mut archive = tokio_tar::Archive::new(r);
    if dest.is_dir() {
        archive
            .unpack(dest)
            .await
            .map_err(|e| anyhow::anyhow!("extract into {}: {e}", dest.display()))?;
        return Ok(());
    }
    let parent = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !parent.is_dir() {
        anyhow::bail!("destination directory {} does not exist", parent.display());
    }
    let tmp = parent.join(format!(".berthctl-cp-{}", std::process::id()));
    std::fs::create_dir(&tmp).map_err(|e| anyhow::anyhow!("create {}: {e}", tmp.display()))?;
    let result = async {
        archive
            .unpack(&tmp)
            .await
            .map_err(|e| anyhow::anyhow!("extract into {}: {e}", tmp.display()))?;
        let from = tmp.join(top);
        if from.is_dir() && dest.exists() {
            anyhow::bail!("cannot copy a directory to the file {}", dest.display());
        }
        std::fs::rename(&from, dest)
            .map_err(|e| anyhow::anyhow!("move into place at {}: {e}", dest.display()))
    }
    .await;
    let _ = std::fs::remove_dir_all(&tmp);
    result
}

async fn to_container(
    g: &GlobalOptions,
    source: &str,
    container: &str,
    dest: &str,
) -> anyhow::Result<()> {
    let mut c = client(g).await?;
    let (dir, input): (String, Box<dyn AsyncRead + Unpin + Send>) = if source == "-" {
        (dest.to_string(), open_input("-").await?)
    } else {
        let src = PathBuf::from(source);
        let meta = std::fs::symlink_metadata(&src)
            .map_err(|e| anyhow::anyhow!("could not find the file {source}: {e}"))?;
        let target = c
            .stat_path(StatPathRequest {
                id: container.to_string(),
                path: dest.to_string(),
            })
            .await;
        // Into an existing directory under the source's name; otherwise as `dest`.
        let (dir, name) = match target {
            Ok(t) => {
                let mode = t.into_inner().stat.unwrap_or_default().mode;
                if mode & libc::S_IFMT == libc::S_IFDIR {
                    (dest.to_string(), last_component(source))
                } else if meta.is_dir() {
                    anyhow::bail!("cannot copy a directory to the file {container}:{dest}");
                } else {
                    (parent_of(dest), last_component(dest))
                }
            }
            Err(s) if s.code() == tonic::Code::NotFound => {
                if dest.ends_with('/') {
                    anyhow::bail!("no such directory {container}:{dest}");
                }
                (parent_of(dest), last_component(dest))
            }
            Err(s) => return Err(s.into()),
        };
        let (w, r) = tokio::io::duplex(super::CHUNK);
        tokio::spawn(async move {
            let mut b = tokio_tar::Builder::new(w);
            b.follow_symlinks(false);
            let r = if meta.is_dir() {
                b.append_dir_all(&name, &src).await
            } else {
                b.append_path_with_name(&src, &name).await
            };
            match r {
                Ok(()) => {
                    let _ = b.into_inner().await;
                }
                Err(e) => eprintln!("berthctl: archive {}: {e}", src.display()),
            }
        });
        (dir, Box::new(r))
    };
    let first = CopyToInput {
        input: Some(copy_to_input::Input::Options(CopyToOptions {
            id: container.to_string(),
            path: dir,
            no_overwrite_dir_non_dir: false,
        })),
    };
    let (stream, task) = upload(input, first, |d| CopyToInput {
        input: Some(copy_to_input::Input::Data(d)),
    });
    let r = c.copy_to(stream).await;
    let read = task.await?;
    r?;
    read.map_err(|e| anyhow::anyhow!("read {source}: {e}"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_paths_as_docker_splits_them() {
        assert_eq!(
            split_container("web:/etc/hosts"),
            Some(("web", "/etc/hosts"))
        );
        assert_eq!(split_container("./a:b"), None);
        assert_eq!(split_container("/tmp/x"), None);
        assert_eq!(split_container("file"), None);
        assert_eq!(last_component("/a/b/"), "b");
        assert_eq!(parent_of("/a/b"), "/a");
        assert_eq!(parent_of("/a"), "/");
    }
}
