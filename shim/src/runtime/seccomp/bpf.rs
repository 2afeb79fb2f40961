//! Classic BPF for seccomp: the few instructions the compiler emits, the layout of
//! `struct seccomp_data`, and (for tests) an interpreter that runs a program.

use crate::sys::SockFilter;

/// `ld [k]` (32-bit word of seccomp_data).
pub const LD_W_ABS: u16 = 0x20;
/// `jeq #k`.
pub const JEQ_K: u16 = 0x15;
/// `jgt #k`.
pub const JGT_K: u16 = 0x25;
/// `jge #k`.
pub const JGE_K: u16 = 0x35;
/// `ja k`.
pub const JA: u16 = 0x05;
/// `and #k`.
pub const AND_K: u16 = 0x54;
/// `ret #k`.
pub const RET_K: u16 = 0x06;

/// Offset of `nr` in seccomp_data.
pub const OFF_NR: u32 = 0;
/// Offset of `arch`.
pub const OFF_ARCH: u32 = 4;

/// Offsets of the low and high words of argument `i` (little-endian).
pub fn arg_offsets(i: usize) -> (u32, u32) {
    let base = 16 + 8 * u32::try_from(i).unwrap_or(0);
    (base, base + 4)
}

/// A statement (no jump).
pub fn stmt(code: u16, k: u32) -> SockFilter {
    SockFilter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

/// A conditional jump.
pub fn jump(code: u16, k: u32, jt: u8, jf: u8) -> SockFilter {
    SockFilter { code, jt, jf, k }
}

/// `ret #k`.
pub fn ret(k: u32) -> SockFilter {
    stmt(RET_K, k)
}

/// `ld [k]`.
pub fn load(k: u32) -> SockFilter {
    stmt(LD_W_ABS, k)
}

/// Runs `prog` on one system call (test helper): returns the filter's verdict.
#[cfg(test)]
pub fn run(prog: &[SockFilter], arch: u32, nr: u32, args: [u64; 6]) -> u32 {
    let mut data = [0u8; 64];
    data[0..4].copy_from_slice(&nr.to_le_bytes());
    data[4..8].copy_from_slice(&arch.to_le_bytes());
    for (i, a) in args.iter().enumerate() {
        data[16 + 8 * i..24 + 8 * i].copy_from_slice(&a.to_le_bytes());
    }
    let word = |k: u32| {
        let k = k as usize;
        u32::from_le_bytes(data[k..k + 4].try_into().unwrap())
    };
    let mut a = 0u32;
    let mut pc = 0usize;
    loop {
        let i = prog[pc];
        pc += 1;
        match i.code {
            LD_W_ABS => a = word(i.k),
            AND_K => a &= i.k,
            RET_K => return i.k,
            JA => pc += i.k as usize,
            JEQ_K | JGT_K | JGE_K => {
                let t = match i.code {
                    JEQ_K => a == i.k,
                    JGT_K => a > i.k,
                    _ => a >= i.k,
                };
                pc += usize::from(if t { i.jt } else { i.jf });
            }
            other => panic!("unknown opcode {other:#x}"),
        }
    }
}
