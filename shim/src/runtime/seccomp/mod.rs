//! The spec's `linux.seccomp` compiled into a classic BPF program for seccomp(2).
//!
//! Layout: the program dispatches on `seccomp_data.arch` to one section per
//! architecture (the native one and the listed compat ones berth has a syscall table
//! for; any other architecture gets KILL_PROCESS). A section loads the syscall number
//! and walks a binary decision tree over number ranges (each range with one outcome:
//! the default action, a rule's action, or the argument checks of one syscall). Syscalls
//! newer than every one the profile names answer ENOSYS when the default action is an
//! errno, so that C libraries fall back to older calls (as runc does).
//!
//! Semantics, as runc with libseccomp: rules of one syscall with argument conditions are
//! tried in order (all conditions of a rule must hold; conditions repeating an argument
//! index become separate rules); the syscall's unconditional rule, if any, applies when
//! none matches, otherwise the default action. 32-bit architectures compare the low
//! word of arguments only. Names unknown on an architecture are skipped.

pub mod bpf;
pub mod tables;

use std::collections::BTreeMap;

use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompFilterFlag,
    LinuxSeccompOperator,
};

use crate::error::{Error, Result};
use crate::sys::SockFilter;
use bpf::{AND_K, JA, JEQ_K, JGE_K, JGT_K, arg_offsets, jump, load, ret, stmt};

/// AUDIT_ARCH_X86_64.
pub const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
/// AUDIT_ARCH_I386.
pub const AUDIT_ARCH_I386: u32 = 0x4000_0003;
/// AUDIT_ARCH_AARCH64.
pub const AUDIT_ARCH_AARCH64: u32 = 0xc000_00b7;
/// The x32 ABI's bit in syscall numbers.
const X32_BIT: u32 = 0x4000_0000;

const RET_KILL_THREAD: u32 = 0;
const RET_KILL_PROCESS: u32 = 0x8000_0000;
const RET_TRAP: u32 = 0x0003_0000;
const RET_ERRNO: u32 = 0x0005_0000;
const RET_TRACE: u32 = 0x7ff0_0000;
const RET_LOG: u32 = 0x7ffc_0000;
const RET_ALLOW: u32 = 0x7fff_0000;
/// The largest program the kernel accepts.
const MAX_INSNS: usize = 4096;

/// A compiled filter, ready for seccomp(2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Filter {
    /// The instructions.
    pub program: Vec<SockFilter>,
    /// SECCOMP_FILTER_FLAG_* bits.
    pub flags: u32,
}

/// One architecture of the running kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ArchKind {
    X86_64,
    X86,
    X32,
    Aarch64,
}

impl ArchKind {
    fn table(self) -> &'static [(&'static str, u32)] {
        match self {
            ArchKind::X86_64 => tables::X86_64,
            ArchKind::X86 => tables::X86,
            ArchKind::X32 => tables::X32,
            ArchKind::Aarch64 => tables::AARCH64,
        }
    }

    fn audit(self) -> u32 {
        match self {
            ArchKind::X86_64 | ArchKind::X32 => AUDIT_ARCH_X86_64,
            ArchKind::X86 => AUDIT_ARCH_I386,
            ArchKind::Aarch64 => AUDIT_ARCH_AARCH64,
        }
    }

    fn wide_args(self) -> bool {
        !matches!(self, ArchKind::X86)
    }

    fn native() -> ArchKind {
        if cfg!(target_arch = "aarch64") {
            ArchKind::Aarch64
        } else {
            ArchKind::X86_64
        }
    }

    /// The spec architecture, when it can run on this machine.
    fn of(a: Arch) -> Option<ArchKind> {
        let native = ArchKind::native();
        match (a, native) {
            (Arch::ScmpArchNative, n) => Some(n),
            (Arch::ScmpArchX86_64, ArchKind::X86_64) => Some(ArchKind::X86_64),
            (Arch::ScmpArchX86, ArchKind::X86_64) => Some(ArchKind::X86),
            (Arch::ScmpArchX32, ArchKind::X86_64) => Some(ArchKind::X32),
            (Arch::ScmpArchAarch64, ArchKind::Aarch64) => Some(ArchKind::Aarch64),
            _ => None,
        }
    }
}

/// The number of `name` on `arch`.
fn syscall_number(arch: ArchKind, name: &str) -> Option<u32> {
    let t = arch.table();
    t.binary_search_by(|(n, _)| (*n).cmp(name))
        .ok()
        .map(|i| t[i].1)
}

/// The number of syscall `name` on the machine's own architecture (tests, tools).
pub fn native_number(name: &str) -> Option<u32> {
    syscall_number(ArchKind::native(), name)
}

fn action_value(action: LinuxSeccompAction, errno: Option<u32>) -> Result<u32> {
    let data = |d: u32| d & 0xffff;
    Ok(match action {
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => RET_KILL_THREAD,
        LinuxSeccompAction::ScmpActKillProcess => RET_KILL_PROCESS,
        LinuxSeccompAction::ScmpActTrap => RET_TRAP,
        LinuxSeccompAction::ScmpActErrno => RET_ERRNO | data(errno.unwrap_or(libc::EPERM as u32)),
        LinuxSeccompAction::ScmpActTrace => RET_TRACE | data(errno.unwrap_or(libc::EPERM as u32)),
        LinuxSeccompAction::ScmpActLog => RET_LOG,
        LinuxSeccompAction::ScmpActAllow => RET_ALLOW,
        LinuxSeccompAction::ScmpActNotify => {
            return Err(Error::Spec(
                "seccomp action SCMP_ACT_NOTIFY is not implemented (it needs a seccomp agent)"
                    .into(),
            ));
        }
    })
}

/// The rules of one syscall on one architecture.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Rules {
    conditional: Vec<(Vec<LinuxSeccompArg>, u32)>,
    unconditional: Option<u32>,
    /// What applies when no conditional rule matches.
    fallback: u32,
}

/// What a range of syscall numbers leads to.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Outcome {
    Ret(u32),
    Rules(Rules),
}

/// Compiles `seccomp` for the running machine.
pub fn compile(seccomp: &LinuxSeccomp) -> Result<Filter> {
    let default = action_value(seccomp.default_action(), seccomp.default_errno_ret())?;
    let mut arches = vec![ArchKind::native()];
    for a in seccomp.architectures().as_deref().unwrap_or(&[]) {
        match ArchKind::of(*a) {
            Some(k) if !arches.contains(&k) => arches.push(k),
            Some(_) => {}
            None => tracing::debug!(arch = ?a, "seccomp architecture not of this machine; skipped"),
        }
    }
    let mut flags = 0u32;
    for f in seccomp.flags().as_deref().unwrap_or(&[]) {
        flags |= match f {
            LinuxSeccompFilterFlag::SeccompFilterFlagTsync => 1,
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => 2,
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => 4,
        };
    }
    // Rules per architecture, by number.
    let mut per_arch: Vec<(ArchKind, BTreeMap<u32, Rules>)> =
        arches.iter().map(|a| (*a, BTreeMap::new())).collect();
    for sc in seccomp.syscalls().as_deref().unwrap_or(&[]) {
        let value = action_value(sc.action(), sc.errno_ret())?;
        let args = sc.args().clone().unwrap_or_default();
        for a in &args {
            if a.index() > 5 {
                return Err(Error::Spec(format!(
                    "seccomp rule for {:?}: argument index {} out of range",
                    sc.names(),
                    a.index()
                )));
            }
        }
        // Conditions repeating an index are alternatives (one rule each).
        let mut seen = [false; 6];
        let repeated = args
            .iter()
            .any(|a| std::mem::replace(&mut seen[a.index()], true));
        let groups: Vec<Vec<LinuxSeccompArg>> = if repeated {
            args.iter().map(|a| vec![*a]).collect()
        } else {
            vec![args]
        };
        for name in sc.names() {
            for (arch, rules) in &mut per_arch {
                let Some(nr) = syscall_number(*arch, name) else {
                    continue;
                };
                let r = rules.entry(nr).or_default();
                for g in &groups {
                    if g.is_empty() {
                        r.unconditional = Some(value);
                    } else {
                        r.conditional.push((g.clone(), value));
                    }
                }
            }
        }
    }
    // An x32 section shares x86_64's audit arch: fold it into that one.
    let x32 = per_arch
        .iter()
        .position(|(a, _)| *a == ArchKind::X32)
        .map(|i| per_arch.remove(i).1);
    let enosys = matches!(seccomp.default_action(), LinuxSeccompAction::ScmpActErrno)
        .then_some(RET_ERRNO | libc::ENOSYS as u32);
    let mut sections = Vec::new();
    for (arch, rules) in &per_arch {
        let mut segs = Segments::new(default);
        if *arch == ArchKind::X86_64 {
            segs.set_range(X32_BIT, 0x8000_0000, Outcome::Ret(RET_KILL_PROCESS));
            if let Some(x) = &x32 {
                segs.set_range(X32_BIT, 0x8000_0000, Outcome::Ret(default));
                segs.fill(x, X32_BIT, enosys);
            }
            segs.fill(rules, 0, enosys);
        } else {
            segs.fill(rules, 0, enosys);
        }
        let mut code = vec![load(bpf::OFF_NR)];
        code.extend(tree(&segs.merged(), arch.wide_args())?);
        sections.push((arch.audit(), code));
    }
    let program = dispatch(&sections);
    if program.len() > MAX_INSNS {
        return Err(Error::Spec(format!(
            "seccomp profile compiles to {} instructions, more than the kernel's {MAX_INSNS}",
            program.len()
        )));
    }
    Ok(Filter { program, flags })
}

/// Outcomes over the 32-bit number space: each key starts a range that lasts until the
/// next key.
struct Segments(BTreeMap<u32, Outcome>, u32);

impl Segments {
    fn new(default: u32) -> Segments {
        Segments(BTreeMap::from([(0, Outcome::Ret(default))]), default)
    }

    fn at(&self, nr: u32) -> Outcome {
        self.0
            .range(..=nr)
            .next_back()
            .map(|(_, o)| o.clone())
            .expect("0 is always a key")
    }

    /// Sets [lo, hi) to `o`.
    fn set_range(&mut self, lo: u32, hi: u32, o: Outcome) {
        let after = self.at(hi);
        let inside: Vec<u32> = self.0.range(lo..hi).map(|(k, _)| *k).collect();
        for k in inside {
            self.0.remove(&k);
        }
        self.0.insert(lo, o);
        self.0.entry(hi).or_insert(after);
    }

    /// The rules of one number block (`base` is 0, or the x32 bit): numbers above the
    /// highest one named get `enosys` when set.
    fn fill(&mut self, rules: &BTreeMap<u32, Rules>, base: u32, enosys: Option<u32>) {
        if let (Some(e), Some(max)) = (enosys, rules.keys().next_back()) {
            let end = base.saturating_add(X32_BIT);
            if *max + 1 < end {
                self.set_range(*max + 1, end, Outcome::Ret(e));
            }
        }
        for (nr, r) in rules {
            let o = match (&r.conditional[..], r.unconditional) {
                ([], Some(v)) => Outcome::Ret(v),
                _ => Outcome::Rules(Rules {
                    fallback: r.unconditional.unwrap_or(self.1),
                    ..r.clone()
                }),
            };
            self.set_range(*nr, nr.saturating_add(1), o);
        }
    }

    /// Ranges with neighbours of equal outcome merged.
    fn merged(&self) -> Vec<(u32, Outcome)> {
        let mut out: Vec<(u32, Outcome)> = Vec::new();
        for (k, o) in &self.0 {
            if out.last().is_some_and(|(_, last)| last == o) {
                continue;
            }
            out.push((*k, o.clone()));
        }
        out
    }
}

/// A binary decision tree over `segs` (A holds the syscall number).
fn tree(segs: &[(u32, Outcome)], wide: bool) -> Result<Vec<SockFilter>> {
    if segs.len() == 1 {
        return leaf(&segs[0].1, wide);
    }
    let mid = segs.len() / 2;
    let left = tree(&segs[..mid], wide)?;
    let right = tree(&segs[mid..], wide)?;
    let k = segs[mid].0;
    let mut out = Vec::with_capacity(left.len() + right.len() + 2);
    match u8::try_from(left.len()) {
        Ok(n) => out.push(jump(JGE_K, k, n, 0)),
        Err(_) => {
            out.push(jump(JGE_K, k, 0, 1));
            out.push(stmt(JA, u32::try_from(left.len()).unwrap_or(u32::MAX)));
        }
    }
    out.extend(left);
    out.extend(right);
    Ok(out)
}

fn leaf(o: &Outcome, wide: bool) -> Result<Vec<SockFilter>> {
    match o {
        Outcome::Ret(v) => Ok(vec![ret(*v)]),
        Outcome::Rules(r) => {
            let mut out = Vec::new();
            for (args, action) in &r.conditional {
                out.extend(rule(args, *action, wide)?);
            }
            out.push(ret(r.fallback));
            Ok(out)
        }
    }
}

/// A jump whose true or false branch goes to the rule's failure point.
enum Slot {
    None,
    TrueFails,
    FalseFails,
}

/// One rule: every condition, then `ret action`; a failed condition jumps past the ret.
fn rule(args: &[LinuxSeccompArg], action: u32, wide: bool) -> Result<Vec<SockFilter>> {
    let mut code: Vec<(SockFilter, Slot)> = Vec::new();
    for a in args {
        condition(&mut code, a, wide);
    }
    code.push((ret(action), Slot::None));
    let len = code.len();
    let mut out = Vec::with_capacity(len);
    for (i, (mut insn, slot)) in code.into_iter().enumerate() {
        let off =
            u8::try_from(len - (i + 1)).map_err(|_| Error::Spec("seccomp rule too long".into()))?;
        match slot {
            Slot::TrueFails => insn.jt = off,
            Slot::FalseFails => insn.jf = off,
            Slot::None => {}
        }
        out.push(insn);
    }
    Ok(out)
}

fn condition(code: &mut Vec<(SockFilter, Slot)>, a: &LinuxSeccompArg, wide: bool) {
    let (lo_off, hi_off) = arg_offsets(a.index());
    let v = a.value();
    let (v_lo, v_hi) = (v as u32, (v >> 32) as u32);
    let n = |c: &mut Vec<(SockFilter, Slot)>, i: SockFilter| c.push((i, Slot::None));
    let t = |c: &mut Vec<(SockFilter, Slot)>, i: SockFilter| c.push((i, Slot::TrueFails));
    let f = |c: &mut Vec<(SockFilter, Slot)>, i: SockFilter| c.push((i, Slot::FalseFails));
    match a.op() {
        LinuxSeccompOperator::ScmpCmpMaskedEq => {
            let d = a.value_two().unwrap_or(0);
            if wide {
                n(code, load(hi_off));
                n(code, stmt(AND_K, v_hi));
                f(code, jump(JEQ_K, (d >> 32) as u32, 0, 0));
            }
            n(code, load(lo_off));
            n(code, stmt(AND_K, v_lo));
            f(code, jump(JEQ_K, d as u32, 0, 0));
        }
        op if !wide => {
            n(code, load(lo_off));
            match op {
                LinuxSeccompOperator::ScmpCmpEq => f(code, jump(JEQ_K, v_lo, 0, 0)),
                LinuxSeccompOperator::ScmpCmpNe => t(code, jump(JEQ_K, v_lo, 0, 0)),
                LinuxSeccompOperator::ScmpCmpGt => f(code, jump(JGT_K, v_lo, 0, 0)),
                LinuxSeccompOperator::ScmpCmpGe => f(code, jump(JGE_K, v_lo, 0, 0)),
                LinuxSeccompOperator::ScmpCmpLt => t(code, jump(JGE_K, v_lo, 0, 0)),
                _ => t(code, jump(JGT_K, v_lo, 0, 0)),
            }
        }
        LinuxSeccompOperator::ScmpCmpEq => {
            n(code, load(hi_off));
            f(code, jump(JEQ_K, v_hi, 0, 0));
            n(code, load(lo_off));
            f(code, jump(JEQ_K, v_lo, 0, 0));
        }
        LinuxSeccompOperator::ScmpCmpNe => {
            n(code, load(hi_off));
            n(code, jump(JEQ_K, v_hi, 0, 2));
            n(code, load(lo_off));
            t(code, jump(JEQ_K, v_lo, 0, 0));
        }
        LinuxSeccompOperator::ScmpCmpGt | LinuxSeccompOperator::ScmpCmpGe => {
            let low = if a.op() == LinuxSeccompOperator::ScmpCmpGt {
                JGT_K
            } else {
                JGE_K
            };
            n(code, load(hi_off));
            n(code, jump(JGT_K, v_hi, 3, 0));
            f(code, jump(JEQ_K, v_hi, 0, 0));
            n(code, load(lo_off));
            f(code, jump(low, v_lo, 0, 0));
        }
        LinuxSeccompOperator::ScmpCmpLt | LinuxSeccompOperator::ScmpCmpLe => {
            let low = if a.op() == LinuxSeccompOperator::ScmpCmpLt {
                JGE_K
            } else {
                JGT_K
            };
            n(code, load(hi_off));
            t(code, jump(JGT_K, v_hi, 0, 0));
            n(code, jump(JEQ_K, v_hi, 0, 2));
            n(code, load(lo_off));
            t(code, jump(low, v_lo, 0, 0));
        }
    }
}

/// The arch dispatch in front of the sections.
fn dispatch(sections: &[(u32, Vec<SockFilter>)]) -> Vec<SockFilter> {
    let header = 1 + 2 * sections.len() + 1;
    let mut out = vec![load(bpf::OFF_ARCH)];
    let mut start = header;
    for (i, (audit, code)) in sections.iter().enumerate() {
        out.push(jump(JEQ_K, *audit, 0, 1));
        // The `ja` sits at 1 + 2i + 1; it lands on `start`.
        let at = 2 + 2 * i;
        out.push(stmt(
            JA,
            u32::try_from(start - (at + 1)).unwrap_or(u32::MAX),
        ));
        start += code.len();
    }
    out.push(ret(RET_KILL_PROCESS));
    for (_, code) in sections {
        out.extend(code.iter().copied());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use bpf::run;

    fn profile(json: &str) -> LinuxSeccomp {
        serde_json::from_str(json).unwrap()
    }

    fn nr(name: &str) -> u32 {
        syscall_number(ArchKind::X86_64, name).unwrap()
    }

    const EPERM: u32 = RET_ERRNO | 1;

    #[test]
    fn tables_are_sorted_and_known() {
        for t in [tables::X86_64, tables::X86, tables::X32, tables::AARCH64] {
            assert!(t.windows(2).all(|w| w[0].0 < w[1].0));
        }
        assert_eq!(syscall_number(ArchKind::X86_64, "read"), Some(0));
        assert_eq!(syscall_number(ArchKind::X86_64, "mount"), Some(165));
        assert_eq!(syscall_number(ArchKind::X86, "mount"), Some(21));
        assert_eq!(syscall_number(ArchKind::X32, "mount"), Some(X32_BIT + 165));
        assert_eq!(syscall_number(ArchKind::Aarch64, "mount"), Some(40));
        assert_eq!(syscall_number(ArchKind::X86_64, "socketcall"), None);
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn allow_list_with_default_errno() {
        let f = compile(&profile(
            r#"{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":1,
                "architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_X86","SCMP_ARCH_X32"],
                "syscalls":[{"names":["read","write","exit_group","mount","no_such_call"],"action":"SCMP_ACT_ALLOW"},
                            {"names":["getpid"],"action":"SCMP_ACT_ERRNO","errnoRet":38},
                            {"names":["kill"],"action":"SCMP_ACT_KILL_PROCESS"}]}"#,
        ))
        .unwrap();
        let p = &f.program;
        let x = AUDIT_ARCH_X86_64;
        assert_eq!(run(p, x, nr("read"), [0; 6]), RET_ALLOW);
        assert_eq!(run(p, x, nr("write"), [0; 6]), RET_ALLOW);
        assert_eq!(run(p, x, nr("mount"), [0; 6]), RET_ALLOW);
        assert_eq!(run(p, x, nr("open"), [0; 6]), EPERM);
        assert_eq!(run(p, x, nr("getpid"), [0; 6]), RET_ERRNO | 38);
        assert_eq!(run(p, x, nr("kill"), [0; 6]), RET_KILL_PROCESS);
        // Above every named syscall: ENOSYS, so libcs fall back.
        assert_eq!(run(p, x, 440, [0; 6]), RET_ERRNO | 38);
        assert_eq!(run(p, x, u32::MAX, [0; 6]), EPERM);
        // i386 and x32 numbers.
        assert_eq!(run(p, AUDIT_ARCH_I386, 3, [0; 6]), RET_ALLOW);
        assert_eq!(run(p, AUDIT_ARCH_I386, 21, [0; 6]), RET_ALLOW);
        assert_eq!(run(p, AUDIT_ARCH_I386, 5, [0; 6]), EPERM);
        assert_eq!(run(p, x, X32_BIT, [0; 6]), RET_ALLOW);
        assert_eq!(run(p, x, X32_BIT + 2, [0; 6]), EPERM);
        // Another architecture is killed.
        assert_eq!(run(p, AUDIT_ARCH_AARCH64, 63, [0; 6]), RET_KILL_PROCESS);
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn x32_is_killed_unless_listed() {
        let f = compile(&profile(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mount"],"action":"SCMP_ACT_ERRNO"}]}"#,
        ))
        .unwrap();
        let x = AUDIT_ARCH_X86_64;
        assert_eq!(run(&f.program, x, nr("read"), [0; 6]), RET_ALLOW);
        assert_eq!(run(&f.program, x, nr("mount"), [0; 6]), EPERM);
        assert_eq!(run(&f.program, x, X32_BIT + 165, [0; 6]), RET_KILL_PROCESS);
        // Default allow: no ENOSYS above the named ones.
        assert_eq!(run(&f.program, x, 440, [0; 6]), RET_ALLOW);
        assert_eq!(
            run(&f.program, AUDIT_ARCH_I386, 21, [0; 6]),
            RET_KILL_PROCESS
        );
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn argument_conditions() {
        let f = compile(&profile(
            r#"{"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_X86"],
                "syscalls":[
                  {"names":["personality"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":0,"op":"SCMP_CMP_EQ"}]},
                  {"names":["personality"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":4294967295,"op":"SCMP_CMP_EQ"}]},
                  {"names":["clone"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":2114060288,"valueTwo":0,"op":"SCMP_CMP_MASKED_EQ"}]},
                  {"names":["read"],"action":"SCMP_ACT_ALLOW","args":[{"index":2,"value":4294967296,"op":"SCMP_CMP_GT"}]},
                  {"names":["write"],"action":"SCMP_ACT_ALLOW","args":[{"index":1,"value":10,"op":"SCMP_CMP_LT"},{"index":2,"value":7,"op":"SCMP_CMP_NE"}]},
                  {"names":["lseek"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":3,"op":"SCMP_CMP_GE"},{"index":0,"value":1,"op":"SCMP_CMP_EQ"}]},
                  {"names":["close"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":8589934592,"op":"SCMP_CMP_LE"}]},
                  {"names":["close"],"action":"SCMP_ACT_LOG"}
                ]}"#,
        ))
        .unwrap();
        let p = &f.program;
        let x = AUDIT_ARCH_X86_64;
        let a0 = |v: u64| [v, 0, 0, 0, 0, 0];
        assert_eq!(run(p, x, nr("personality"), a0(0)), RET_ALLOW);
        assert_eq!(run(p, x, nr("personality"), a0(0xffff_ffff)), RET_ALLOW);
        assert_eq!(run(p, x, nr("personality"), a0(8)), EPERM);
        assert_eq!(run(p, x, nr("personality"), a0(1 << 32)), EPERM);
        assert_eq!(run(p, x, nr("clone"), a0(0x11)), RET_ALLOW);
        assert_eq!(run(p, x, nr("clone"), a0(0x2000_0000 | 0x11)), EPERM);
        assert_eq!(run(p, x, nr("clone"), a0(1 << 40)), RET_ALLOW);
        assert_eq!(run(p, x, nr("read"), [0, 0, 5 << 32, 0, 0, 0]), RET_ALLOW);
        assert_eq!(run(p, x, nr("read"), [0, 0, 1 << 32, 0, 0, 0]), EPERM);
        assert_eq!(
            run(p, x, nr("read"), [0, 0, (1 << 32) + 1, 0, 0, 0]),
            RET_ALLOW
        );
        assert_eq!(run(p, x, nr("write"), [0, 9, 6, 0, 0, 0]), RET_ALLOW);
        assert_eq!(run(p, x, nr("write"), [0, 9, 7, 0, 0, 0]), EPERM);
        assert_eq!(run(p, x, nr("write"), [0, 10, 6, 0, 0, 0]), EPERM);
        assert_eq!(run(p, x, nr("write"), [0, 1 << 33, 6, 0, 0, 0]), EPERM);
        assert_eq!(
            run(
                p,
                x,
                nr("write"),
                [0, 7 | (7 << 32), 8 | (7 << 32), 0, 0, 0]
            ),
            EPERM
        );
        // Same index twice: alternatives.
        assert_eq!(run(p, x, nr("lseek"), a0(1)), RET_ALLOW);
        assert_eq!(run(p, x, nr("lseek"), a0(4)), RET_ALLOW);
        assert_eq!(run(p, x, nr("lseek"), a0(2)), EPERM);
        // A conditional rule before the syscall's unconditional one.
        assert_eq!(run(p, x, nr("close"), a0(2 << 32)), RET_ALLOW);
        assert_eq!(run(p, x, nr("close"), a0((2 << 32) + 1)), RET_LOG);
        // i386: low words only.
        let pers = syscall_number(ArchKind::X86, "personality").unwrap();
        assert_eq!(run(p, AUDIT_ARCH_I386, pers, a0(0xffff_ffff)), RET_ALLOW);
        assert_eq!(run(p, AUDIT_ARCH_I386, pers, a0(3)), EPERM);
    }

    #[test]
    fn flags_and_refusals() {
        let f = compile(&profile(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","flags":["SECCOMP_FILTER_FLAG_LOG","SECCOMP_FILTER_FLAG_SPEC_ALLOW"]}"#,
        ))
        .unwrap();
        assert_eq!(f.flags, 6);
        let err = compile(&profile(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_NOTIFY"}]}"#,
        ))
        .unwrap_err();
        assert!(err.to_string().contains("not implemented"), "{err}");
        assert!(
            compile(&profile(
                r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_ERRNO","args":[{"index":6,"value":1,"op":"SCMP_CMP_EQ"}]}]}"#,
            ))
            .is_err()
        );
    }

    #[test]
    fn large_profiles_use_long_jumps() {
        // Alternate allowed and denied syscalls so that nothing merges: a deep tree.
        let names: Vec<&str> = tables::X86_64
            .iter()
            .filter(|(_, n)| n % 2 == 0)
            .map(|(s, _)| *s)
            .collect();
        let json = serde_json::json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "syscalls": [{"names": names, "action": "SCMP_ACT_ALLOW"},
                          {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
                           "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]}]
        });
        let f = compile(&serde_json::from_value(json).unwrap()).unwrap();
        let arch = ArchKind::native();
        let max = arch
            .table()
            .iter()
            .map(|(_, n)| *n)
            .filter(|n| n % 2 == 0)
            .max()
            .unwrap();
        for (name, n) in arch.table() {
            let want = if *n > max {
                RET_ERRNO | libc::ENOSYS as u32
            } else if *name == "personality" {
                EPERM
            } else if n % 2 == 0 {
                RET_ALLOW
            } else {
                EPERM
            };
            assert_eq!(run(&f.program, arch.audit(), *n, [0; 6]), want, "{name}");
        }
    }
}
