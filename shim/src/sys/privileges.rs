//! Privileges of the calling thread: capability sets (capset(2), the bounding and
//! ambient sets through prctl(2)), no_new_privs, keepcaps, dumpable, and seccomp filters.

use super::{CapSets, Errno, SockFilter, SysResult};

const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;
const PR_CAPBSET_READ: libc::c_int = 23;
const PR_CAPBSET_DROP: libc::c_int = 24;
const PR_CAP_AMBIENT: libc::c_int = 47;
const PR_CAP_AMBIENT_RAISE: libc::c_ulong = 2;
const PR_CAP_AMBIENT_CLEAR_ALL: libc::c_ulong = 4;
const SECCOMP_SET_MODE_FILTER: libc::c_ulong = 1;

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

#[repr(C)]
struct SockFprog {
    len: libc::c_ushort,
    filter: *const SockFilter,
}

fn prctl(option: libc::c_int, arg2: libc::c_ulong, arg3: libc::c_ulong) -> SysResult<libc::c_int> {
    // SAFETY: the prctl options used here take integer arguments only.
    let rc = unsafe { libc::prctl(option, arg2, arg3, 0 as libc::c_ulong, 0 as libc::c_ulong) };
    Errno::result(rc)
}

/// The bounding set, read capability by capability until the kernel says EINVAL.
pub fn bounding() -> SysResult<u64> {
    let mut mask = 0u64;
    for cap in 0..64u32 {
        match prctl(PR_CAPBSET_READ, libc::c_ulong::from(cap), 0) {
            Ok(1) => mask |= 1u64 << cap,
            Ok(_) => {}
            Err(Errno::EINVAL) => break,
            Err(e) => return Err(e),
        }
    }
    Ok(mask)
}

/// Drops `cap` from the bounding set.
pub fn drop_bounding(cap: u32) -> SysResult<()> {
    prctl(PR_CAPBSET_DROP, libc::c_ulong::from(cap), 0).map(drop)
}

/// capset(2) for the calling thread (version 3: 64-bit sets).
pub fn capset(sets: CapSets) -> SysResult<()> {
    let header = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let split = |m: u64| ((m & 0xffff_ffff) as u32, (m >> 32) as u32);
    let (e0, e1) = split(sets.effective);
    let (p0, p1) = split(sets.permitted);
    let (i0, i1) = split(sets.inheritable);
    let data = [
        CapData {
            effective: e0,
            permitted: p0,
            inheritable: i0,
        },
        CapData {
            effective: e1,
            permitted: p1,
            inheritable: i1,
        },
    ];
    // SAFETY: the header and the two data words are valid for the call, as capset(2)
    // version 3 expects.
    let rc = unsafe { libc::syscall(libc::SYS_capset, std::ptr::from_ref(&header), data.as_ptr()) };
    Errno::result(rc).map(drop)
}

/// Clears the ambient set.
pub fn ambient_clear() -> SysResult<()> {
    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0).map(drop)
}

/// Raises `cap` in the ambient set.
pub fn ambient_raise(cap: u32) -> SysResult<()> {
    prctl(
        PR_CAP_AMBIENT,
        PR_CAP_AMBIENT_RAISE,
        libc::c_ulong::from(cap),
    )
    .map(drop)
}

/// Installs `program` as a seccomp filter of the calling thread.
pub fn seccomp_load(program: &[SockFilter], flags: u32) -> SysResult<()> {
    let len = libc::c_ushort::try_from(program.len()).map_err(|_| Errno::E2BIG)?;
    let prog = SockFprog {
        len,
        filter: program.as_ptr(),
    };
    // SAFETY: `prog` points at `program`, alive and unchanged for the call; the kernel
    // copies the instructions.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            SECCOMP_SET_MODE_FILTER,
            libc::c_ulong::from(flags),
            std::ptr::from_ref(&prog),
        )
    };
    Errno::result(rc).map(drop)
}

/// The mount flags of the filesystem holding `path`, as MS_* flags a remount keeps.
pub fn mount_flags(path: &std::path::Path) -> SysResult<nix::mount::MsFlags> {
    use nix::mount::MsFlags;
    use nix::sys::statvfs::FsFlags;
    let f = nix::sys::statvfs::statvfs(path)?.flags();
    let mut out = MsFlags::empty();
    for (st, ms) in [
        (FsFlags::ST_RDONLY, MsFlags::MS_RDONLY),
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
    ] {
        if f.contains(st) {
            out |= ms;
        }
    }
    Ok(out)
}
