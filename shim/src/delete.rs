//! `berth-shim delete`: clean up after a shim that died: kill what is left of the
//! container (through its cgroup), unmount its rootfs, remove its cgroup.

use anyhow::Context;

use crate::ShimArgs;
use crate::runtime::{self, cgroups::ContainerCgroup, rootfs};
use crate::sys::linux::Linux;

/// Runs `delete`.
pub fn delete(args: &ShimArgs) -> anyhow::Result<()> {
    let spec = runtime::load_spec(&args.bundle).context("read the bundle")?;
    let path = runtime::cgroups::container_path(
        spec.linux()
            .as_ref()
            .and_then(|l| l.cgroups_path().as_deref()),
        &args.namespace,
        &args.id,
    );
    let pid_file = args.bundle.join("init.pid");
    if let Ok(text) = std::fs::read_to_string(&pid_file)
        && let Ok(pid) = text.trim().parse::<i32>()
    {
        let _ = crate::sys::process::kill(pid, libc::SIGKILL);
    }
    let cg = ContainerCgroup::load(&path);
    if cg.exists() {
        cg.kill_all();
        cg.delete().context("remove cgroup")?;
    }
    rootfs::unmount_rootfs(&Linux, &runtime::rootfs_path(&args.bundle, &spec))
        .context("unmount rootfs")?;
    let _ = std::fs::remove_file(&pid_file);
    tracing::info!(id = %args.id, "cleaned up");
    Ok(())
}
