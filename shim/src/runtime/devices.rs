//! /dev inside the container: the default device nodes, the spec's `linux.devices`, the
//! standard symlinks, and /dev/console for a terminal.

use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxDevice, LinuxDeviceType};

use crate::error::{Error, Result};
use crate::runtime::mounts::{bind, parse_options, relative_to, resolve_in_root};
use crate::sys::{Errno, MsFlags, NodeKind, Syscalls};

/// A device node to create.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Device {
    /// Path inside the container (`/dev/null`).
    pub path: PathBuf,
    /// Char, block or FIFO.
    pub kind: NodeKind,
    /// Major number.
    pub major: u64,
    /// Minor number.
    pub minor: u64,
    /// Permission bits.
    pub mode: u32,
    /// Owner, when set.
    pub uid: Option<u32>,
    /// Group, when set.
    pub gid: Option<u32>,
}

/// The devices every container gets: null, zero, full, random, urandom, tty.
pub fn default_devices() -> Vec<Device> {
    [
        ("null", 1, 3),
        ("zero", 1, 5),
        ("full", 1, 7),
        ("random", 1, 8),
        ("urandom", 1, 9),
        ("tty", 5, 0),
    ]
    .into_iter()
    .map(|(name, major, minor)| Device {
        path: Path::new("/dev").join(name),
        kind: NodeKind::Char,
        major,
        minor,
        mode: 0o666,
        uid: None,
        gid: None,
    })
    .collect()
}

/// A spec device as a [`Device`].
pub fn from_spec(d: &LinuxDevice) -> Result<Device> {
    let kind = match d.typ() {
        LinuxDeviceType::C | LinuxDeviceType::U => NodeKind::Char,
        LinuxDeviceType::B => NodeKind::Block,
        LinuxDeviceType::P => NodeKind::Fifo,
        LinuxDeviceType::A => {
            return Err(Error::Spec(format!(
                "device {} has type a",
                d.path().display()
            )));
        }
    };
    Ok(Device {
        path: d.path().clone(),
        kind,
        major: u64::try_from(d.major()).unwrap_or(0),
        minor: u64::try_from(d.minor()).unwrap_or(0),
        mode: d.file_mode().unwrap_or(0o666) & 0o7777,
        uid: d.uid(),
        gid: d.gid(),
    })
}

/// Creates `devices` under `rootfs`. Where mknod is not allowed, the host's node is
/// bind-mounted instead.
pub fn create_devices(sys: &dyn Syscalls, rootfs: &Path, devices: &[Device]) -> Result<()> {
    for d in devices {
        let resolved = resolve_in_root(sys, rootfs, &d.path)?;
        let dest = relative_to(rootfs, &resolved);
        if let Some(parent) = dest.parent() {
            sys.mkdir_in_root(rootfs, parent, 0o755)
                .map_err(|e| Error::sys("mkdir", rootfs.join(parent), e))?;
        }
        match sys.mknod_in_root(rootfs, dest, d.kind, d.mode, d.major, d.minor) {
            Ok(()) => {}
            Err(Errno::EEXIST) => continue,
            Err(Errno::EPERM) => {
                bind(sys, &d.path, rootfs, dest, &parse_options(&["bind"]))?;
                continue;
            }
            Err(e) => return Err(Error::sys("mknod", &resolved, e)),
        }
        if d.uid.is_some() || d.gid.is_some() {
            sys.lchown_in_root(rootfs, dest, d.uid.unwrap_or(0), d.gid.unwrap_or(0))
                .map_err(|e| Error::sys("chown", &resolved, e))?;
        }
    }
    Ok(())
}

/// The /dev symlinks: fd, stdin, stdout, stderr and ptmx.
pub fn create_symlinks(sys: &dyn Syscalls, rootfs: &Path) -> Result<()> {
    let links = [
        ("/proc/self/fd", "fd"),
        ("/proc/self/fd/0", "stdin"),
        ("/proc/self/fd/1", "stdout"),
        ("/proc/self/fd/2", "stderr"),
        ("pts/ptmx", "ptmx"),
    ];
    for (target, name) in links {
        let link = Path::new("dev").join(name);
        match sys.symlink_in_root(rootfs, Path::new(target), &link) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(Error::sys("symlink", rootfs.join(&link), e)),
        }
    }
    Ok(())
}

/// Makes the pty slave `slave` the container's /dev/console.
pub fn bind_console(sys: &dyn Syscalls, rootfs: &Path, slave: &Path) -> Result<()> {
    let console = Path::new("dev/console");
    sys.touch_in_root(rootfs, console)
        .map_err(|e| Error::sys("create", rootfs.join(console), e))?;
    sys.mount_in_root(rootfs, console, Some(slave), None, MsFlags::MS_BIND, None)
        .map_err(|e| Error::sys("bind mount", rootfs.join(console), e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::fake::Recorder;

    #[test]
    fn defaults_are_made_with_mknod() {
        let sys = Recorder::new();
        create_devices(&sys, Path::new("/r"), &default_devices()).unwrap();
        let nodes = sys.calls_of("mknod");
        assert_eq!(nodes.len(), 6);
        assert_eq!(nodes[0], "mknod /r/dev/null Char 666 1:3");
        assert_eq!(nodes[5], "mknod /r/dev/tty Char 666 5:0");
    }

    #[test]
    fn mknod_refused_falls_back_to_bind() {
        let sys = Recorder::new().with_file("/dev/null");
        sys.fail("mknod", Errno::EPERM);
        let null = default_devices().remove(0);
        create_devices(&sys, Path::new("/r"), &[null]).unwrap();
        assert!(sys.calls_of("mount")[0].starts_with("mount /dev/null /r/dev/null - MS_BIND"));
    }

    #[test]
    fn spec_device_with_owner() {
        let d: LinuxDevice = serde_json::from_str(
            r#"{"path":"/dev/fuse","type":"c","major":10,"minor":229,"fileMode":438,"uid":0,"gid":5}"#,
        )
        .unwrap();
        let dev = from_spec(&d).unwrap();
        let sys = Recorder::new();
        create_devices(&sys, Path::new("/r"), &[dev]).unwrap();
        assert_eq!(
            sys.calls_of("mknod")[0],
            "mknod /r/dev/fuse Char 666 10:229"
        );
        assert_eq!(sys.calls_of("lchown")[0], "lchown /r/dev/fuse 0:5");
    }

    #[test]
    fn symlinks() {
        let sys = Recorder::new();
        sys.fail("symlink", Errno::EEXIST);
        create_symlinks(&sys, Path::new("/r")).unwrap();
        assert_eq!(
            sys.calls_of("symlink")[4],
            "symlink /r/dev/ptmx -> pts/ptmx"
        );
    }
}
