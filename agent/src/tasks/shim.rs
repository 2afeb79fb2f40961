//! Starting, reaching and cleaning up after `berth-shim` processes.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use berth_shim::sealed_exe::SealedExe;

use berth_api::shim::{ClientError, ShimClient};

use crate::error::{Error, Result};

/// Where the shim binary is: the configured path, else next to berthd, else in `PATH`.
pub fn locate(configured: &str) -> PathBuf {
    if !configured.is_empty() {
        return PathBuf::from(configured);
    }
    if let Ok(exe) = std::env::current_exe()
        && let Some(dir) = exe.parent()
    {
        let sibling = dir.join("berth-shim");
        if sibling.is_file() {
            return sibling;
        }
        // Test binaries live in target/<profile>/deps, next to the built binaries' dir.
        if dir.ends_with("deps")
            && let Some(up) = dir.parent()
            && up.join("berth-shim").is_file()
        {
            return up.join("berth-shim");
        }
    }
    std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|d| d.join("berth-shim"))
                .find(|p| p.is_file())
        })
        .unwrap_or_else(|| PathBuf::from("berth-shim"))
}

/// How to run the shim binary. Shims run from one sealed in-memory copy of it, made on
/// first use, so nothing inside a container can reach the binary on disk through a
/// shim (docs/isolation.md).
#[derive(Debug, Clone)]
pub struct ShimCommand {
    binary: PathBuf,
    sealed: Arc<OnceLock<SealedExe>>,
    log_level: String,
}

impl ShimCommand {
    pub fn new(binary: PathBuf, log_level: String) -> Self {
        ShimCommand {
            binary,
            sealed: Arc::default(),
            log_level,
        }
    }

    /// The path to execute: the sealed copy.
    fn program(&self) -> Result<PathBuf> {
        if let Some(s) = self.sealed.get() {
            return Ok(s.path());
        }
        let sealed = SealedExe::from_path(&self.binary).map_err(|e| {
            Error::io(
                format!(
                    "seal a copy of the shim {} (set [runtime] shim to its path)",
                    self.binary.display()
                ),
                e,
            )
        })?;
        // Another task may have sealed it meanwhile; either copy serves.
        Ok(self.sealed.get_or_init(|| sealed).path())
    }

    fn args(
        &self,
        verb: &str,
        ns: &str,
        id: &str,
        bundle: &Path,
    ) -> Result<tokio::process::Command> {
        let mut cmd = tokio::process::Command::new(self.program()?);
        // The binary may be a sealed copy (/proc/self/fd/N): name it for `ps`.
        cmd.arg0("berth-shim")
            .arg(verb)
            .args(["--id", id, "--namespace", ns])
            .arg("--bundle")
            .arg(bundle)
            .args(["--log-level", &self.log_level])
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true);
        Ok(cmd)
    }

    /// Starts a detached shim serving `socket`; returns its pid once it listens.
    pub async fn start(&self, ns: &str, id: &str, bundle: &Path, socket: &Path) -> Result<u32> {
        if let Some(dir) = socket.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| Error::io(format!("create {}", dir.display()), e))?;
        }
        let out = self
            .args("start", ns, id, bundle)?
            .arg("--socket")
            .arg(socket)
            .output()
            .await
            .map_err(|e| Error::io(format!("run {} start", self.binary.display()), e))?;
        if !out.status.success() {
            return Err(Error::Internal(format!(
                "start shim for {id}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .map_err(|_| {
                Error::Internal(format!(
                    "start shim for {id}: unexpected output {:?}",
                    String::from_utf8_lossy(&out.stdout)
                ))
            })
    }

    /// Cleans up after a shim that died: kills what is left of the container, unmounts
    /// its rootfs, removes its cgroup. Idempotent.
    pub async fn cleanup(&self, ns: &str, id: &str, bundle: &Path) -> Result<()> {
        let out = self
            .args("delete", ns, id, bundle)?
            .output()
            .await
            .map_err(|e| Error::io(format!("run {} delete", self.binary.display()), e))?;
        if !out.status.success() {
            return Err(Error::Internal(format!(
                "clean up after the shim of {id}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(())
    }
}

/// Connects to a shim and checks it answers.
pub async fn connect(socket: &Path) -> std::result::Result<ShimClient, ClientError> {
    let client = ShimClient::connect(socket).await?;
    client.connect_info().await?;
    Ok(client)
}

/// A shim's error as berthd's, naming the task.
pub fn error(id: &str, e: ClientError) -> Error {
    let msg = match &e {
        ClientError::Status { message, .. } => format!("task {id}: {message}"),
        other => format!("task {id}: {other}"),
    };
    match e.grpc_code() {
        tonic::Code::NotFound => Error::NotFound(msg),
        tonic::Code::AlreadyExists => Error::AlreadyExists(msg),
        tonic::Code::FailedPrecondition => Error::FailedPrecondition(msg),
        tonic::Code::InvalidArgument => Error::InvalidArgument(msg),
        tonic::Code::Unavailable => Error::Unavailable(msg),
        tonic::Code::Unimplemented => Error::Unimplemented(msg),
        _ => Error::Internal(msg),
    }
}
