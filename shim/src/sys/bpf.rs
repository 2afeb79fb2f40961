//! eBPF for cgroup v2 device control: load a BPF_PROG_TYPE_CGROUP_DEVICE program and
//! attach it to a cgroup directory in place of the ones attached before.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use super::{Errno, SysResult};

/// One eBPF instruction (`struct bpf_insn`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BpfInsn {
    /// Opcode.
    pub code: u8,
    /// dst_reg (low 4 bits) and src_reg (high 4 bits).
    pub regs: u8,
    /// Offset.
    pub off: i16,
    /// Immediate.
    pub imm: i32,
}

const BPF_PROG_LOAD: libc::c_int = 5;
const BPF_PROG_ATTACH: libc::c_int = 8;
const BPF_PROG_DETACH: libc::c_int = 9;
const BPF_PROG_GET_FD_BY_ID: libc::c_int = 13;
const BPF_PROG_QUERY: libc::c_int = 16;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;

/// A zeroed `union bpf_attr` with fields written at their offsets.
struct Attr([u8; 128]);

impl Attr {
    fn new() -> Attr {
        Attr([0; 128])
    }
    fn u32(&mut self, off: usize, v: u32) -> &mut Attr {
        self.0[off..off + 4].copy_from_slice(&v.to_ne_bytes());
        self
    }
    fn u64(&mut self, off: usize, v: u64) -> &mut Attr {
        self.0[off..off + 8].copy_from_slice(&v.to_ne_bytes());
        self
    }
    fn get_u32(&self, off: usize) -> u32 {
        u32::from_ne_bytes(self.0[off..off + 4].try_into().unwrap_or([0; 4]))
    }
}

fn bpf(cmd: libc::c_int, attr: &mut Attr) -> SysResult<libc::c_long> {
    // SAFETY: `attr` is a 128-byte bpf_attr, zeroed beyond the fields the command
    // reads; pointers in it refer to buffers alive for the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr.0.as_mut_ptr(),
            std::mem::size_of::<Attr>(),
        )
    };
    Errno::result(rc)
}

fn owned(rc: libc::c_long) -> SysResult<OwnedFd> {
    let fd = i32::try_from(rc).map_err(|_| Errno::EBADF)?;
    // SAFETY: the kernel returned a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Loads a cgroup device program.
pub fn load_device_program(insns: &[BpfInsn]) -> SysResult<OwnedFd> {
    let license = c"Apache-2.0";
    let mut log = vec![0u8; 4096];
    let mut a = Attr::new();
    a.u32(0, BPF_PROG_TYPE_CGROUP_DEVICE)
        .u32(4, u32::try_from(insns.len()).map_err(|_| Errno::E2BIG)?)
        .u64(8, insns.as_ptr() as u64)
        .u64(16, license.as_ptr() as u64)
        .u32(24, 1)
        .u32(28, u32::try_from(log.len()).unwrap_or(0))
        .u64(32, log.as_mut_ptr() as u64);
    match bpf(BPF_PROG_LOAD, &mut a) {
        Ok(fd) => owned(fd),
        Err(e) => {
            let end = log.iter().position(|b| *b == 0).unwrap_or(log.len());
            tracing::debug!(verifier = %String::from_utf8_lossy(&log[..end]), "device program refused");
            Err(e)
        }
    }
}

/// Ids of the device programs attached to the cgroup `dir`.
fn attached(dir: &OwnedFd) -> SysResult<Vec<u32>> {
    let mut ids = vec![0u32; 64];
    let mut a = Attr::new();
    a.u32(0, u32::try_from(dir.as_raw_fd()).map_err(|_| Errno::EBADF)?)
        .u32(4, BPF_CGROUP_DEVICE)
        .u64(16, ids.as_mut_ptr() as u64)
        .u32(24, 64);
    bpf(BPF_PROG_QUERY, &mut a)?;
    let n = usize::try_from(a.get_u32(24)).unwrap_or(0).min(ids.len());
    ids.truncate(n);
    Ok(ids)
}

/// Attaches `prog` to the cgroup directory `cgroup`, then detaches the device programs
/// attached there before (an update replaces the rules).
pub fn attach_device_program(cgroup: &Path, prog: &OwnedFd) -> SysResult<()> {
    let dir = super::fd::open(cgroup, true, false, libc::O_DIRECTORY)
        .map_err(|e| e.raw_os_error().map_or(Errno::EIO, Errno::from_raw))?;
    let before = attached(&dir)?;
    let target = u32::try_from(dir.as_raw_fd()).map_err(|_| Errno::EBADF)?;
    let mut a = Attr::new();
    a.u32(0, target)
        .u32(
            4,
            u32::try_from(prog.as_raw_fd()).map_err(|_| Errno::EBADF)?,
        )
        .u32(8, BPF_CGROUP_DEVICE)
        .u32(12, BPF_F_ALLOW_MULTI);
    bpf(BPF_PROG_ATTACH, &mut a)?;
    for id in before {
        let mut g = Attr::new();
        g.u32(0, id);
        let old = owned(bpf(BPF_PROG_GET_FD_BY_ID, &mut g)?)?;
        let mut d = Attr::new();
        d.u32(0, target)
            .u32(4, u32::try_from(old.as_raw_fd()).map_err(|_| Errno::EBADF)?)
            .u32(8, BPF_CGROUP_DEVICE);
        bpf(BPF_PROG_DETACH, &mut d)?;
    }
    Ok(())
}
