//! Device rules on cgroup v2: the spec's `linux.resources.devices` (with the default
//! allow list appended, as on v1) compiled into an eBPF program of type
//! CGROUP_DEVICE. The last rule that matches an access decides (a `deny a` first, then
//! allows, is the usual list); no match denies. An allow rule matches an access whose
//! every requested right (r, w, m) it grants; a deny rule one that asks for any right
//! it names.

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};

use crate::sys::bpf::BpfInsn;

/// Rights in `bpf_cgroup_dev_ctx.access_type >> 16`.
fn rights(access: &str) -> i32 {
    access.chars().fold(0, |m, c| {
        m | match c {
            'm' => 1,
            'r' => 2,
            'w' => 4,
            _ => 0,
        }
    })
}

fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> BpfInsn {
    BpfInsn {
        code,
        regs: (src << 4) | (dst & 0xf),
        off,
        imm,
    }
}

const LDX_W: u8 = 0x61;
const MOV64_X: u8 = 0xbf;
const MOV64_K: u8 = 0xb7;
const AND64_K: u8 = 0x57;
const RSH64_K: u8 = 0x77;
const JNE_K: u8 = 0x55;
const JEQ_K: u8 = 0x15;
const EXIT: u8 = 0x95;

/// The program for `rules`.
pub fn program(rules: &[LinuxDeviceCgroup]) -> Vec<BpfInsn> {
    // r2 = access_type, r3 = type, r4 = rights, r5 = major, r6 = minor.
    let mut out = vec![
        insn(LDX_W, 2, 1, 0, 0),
        insn(MOV64_X, 3, 2, 0, 0),
        insn(AND64_K, 3, 0, 0, 0xffff),
        insn(MOV64_X, 4, 2, 0, 0),
        insn(RSH64_K, 4, 0, 0, 16),
        insn(LDX_W, 5, 1, 4, 0),
        insn(LDX_W, 6, 1, 8, 0),
    ];
    for r in rules.iter().rev() {
        let mut block = Vec::new();
        let ty = match r.typ() {
            Some(LinuxDeviceType::B) => Some(1),
            Some(LinuxDeviceType::C | LinuxDeviceType::U) => Some(2),
            _ => None,
        };
        // Conditions jump to the end of the block; offsets are patched below.
        if let Some(t) = ty {
            block.push(insn(JNE_K, 3, 0, 0, t));
        }
        if let Some(m) = r.major().filter(|m| *m >= 0) {
            block.push(insn(JNE_K, 5, 0, 0, i32::try_from(m).unwrap_or(i32::MAX)));
        }
        if let Some(m) = r.minor().filter(|m| *m >= 0) {
            block.push(insn(JNE_K, 6, 0, 0, i32::try_from(m).unwrap_or(i32::MAX)));
        }
        let acc = rights(r.access().as_deref().unwrap_or("rwm"));
        block.push(insn(MOV64_X, 7, 4, 0, 0));
        if r.allow() {
            block.push(insn(AND64_K, 7, 0, 0, !acc & 7));
            block.push(insn(JNE_K, 7, 0, 0, 0));
        } else {
            block.push(insn(AND64_K, 7, 0, 0, acc));
            block.push(insn(JEQ_K, 7, 0, 0, 0));
        }
        block.push(insn(MOV64_K, 0, 0, 0, i32::from(r.allow())));
        block.push(insn(EXIT, 0, 0, 0, 0));
        let len = block.len();
        for (i, b) in block.iter_mut().enumerate() {
            if b.code == JNE_K || b.code == JEQ_K {
                b.off = i16::try_from(len - i - 1).unwrap_or(i16::MAX);
            }
        }
        out.extend(block);
    }
    out.push(insn(MOV64_K, 0, 0, 0, 0));
    out.push(insn(EXIT, 0, 0, 0, 0));
    out
}
