//! Linux capabilities: the kernel's numbers of oci-spec's [`Capability`] names, sets of
//! them as 64-bit masks, and the docker-style name parsing (`NET_ADMIN`, `cap_net_admin`,
//! `ALL`).

use std::collections::HashSet;

use oci_spec::runtime::Capability;

/// Every capability in the kernel's order (index = capability number).
pub const ALL: [Capability; 41] = [
    Capability::Chown,
    Capability::DacOverride,
    Capability::DacReadSearch,
    Capability::Fowner,
    Capability::Fsetid,
    Capability::Kill,
    Capability::Setgid,
    Capability::Setuid,
    Capability::Setpcap,
    Capability::LinuxImmutable,
    Capability::NetBindService,
    Capability::NetBroadcast,
    Capability::NetAdmin,
    Capability::NetRaw,
    Capability::IpcLock,
    Capability::IpcOwner,
    Capability::SysModule,
    Capability::SysRawio,
    Capability::SysChroot,
    Capability::SysPtrace,
    Capability::SysPacct,
    Capability::SysAdmin,
    Capability::SysBoot,
    Capability::SysNice,
    Capability::SysResource,
    Capability::SysTime,
    Capability::SysTtyConfig,
    Capability::Mknod,
    Capability::Lease,
    Capability::AuditWrite,
    Capability::AuditControl,
    Capability::Setfcap,
    Capability::MacOverride,
    Capability::MacAdmin,
    Capability::Syslog,
    Capability::WakeAlarm,
    Capability::BlockSuspend,
    Capability::AuditRead,
    Capability::Perfmon,
    Capability::Bpf,
    Capability::CheckpointRestore,
];

/// The kernel number of `cap`.
pub fn number(cap: Capability) -> u32 {
    ALL.iter()
        .position(|c| *c == cap)
        .and_then(|i| u32::try_from(i).ok())
        .unwrap_or(u32::MAX)
}

/// The capability with kernel number `n`, if berth knows it.
pub fn from_number(n: u32) -> Option<Capability> {
    ALL.get(usize::try_from(n).ok()?).copied()
}

/// `CAP_NET_ADMIN`: the name as the OCI spec and /proc/self/status tools write it.
pub fn name(cap: Capability) -> String {
    format!("CAP_{cap}")
}

/// A set as a bit mask (bit n = capability n).
pub fn mask<'a>(caps: impl IntoIterator<Item = &'a Capability>) -> u64 {
    caps.into_iter()
        .map(|c| number(*c))
        .filter(|n| *n < 64)
        .fold(0, |m, n| m | (1u64 << n))
}

/// The capabilities of a bit mask that berth knows.
pub fn from_mask(mask: u64) -> HashSet<Capability> {
    (0..64u32)
        .filter(|n| mask & (1u64 << n) != 0)
        .filter_map(from_number)
        .collect()
}

/// What a docker-style capability word names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Named {
    /// One capability.
    One(Capability),
    /// `ALL`.
    All,
}

/// Parses `NET_ADMIN`, `CAP_NET_ADMIN`, `cap_net_admin` or `ALL`.
pub fn parse(word: &str) -> Option<Named> {
    let upper = word.trim().to_ascii_uppercase();
    let bare = upper.strip_prefix("CAP_").unwrap_or(&upper);
    if bare == "ALL" {
        return Some(Named::All);
    }
    ALL.iter()
        .find(|c| c.to_string() == bare)
        .map(|c| Named::One(*c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_follow_the_kernel() {
        assert_eq!(number(Capability::Chown), 0);
        assert_eq!(number(Capability::NetAdmin), 12);
        assert_eq!(number(Capability::SysAdmin), 21);
        assert_eq!(number(Capability::SysResource), 24);
        assert_eq!(number(Capability::AuditWrite), 29);
        assert_eq!(number(Capability::Setfcap), 31);
        assert_eq!(number(Capability::CheckpointRestore), 40);
        assert_eq!(from_number(13), Some(Capability::NetRaw));
        assert_eq!(from_number(41), None);
    }

    #[test]
    fn names_and_masks() {
        assert_eq!(name(Capability::NetBindService), "CAP_NET_BIND_SERVICE");
        assert_eq!(parse("net_admin"), Some(Named::One(Capability::NetAdmin)));
        assert_eq!(parse("CAP_SYS_TIME"), Some(Named::One(Capability::SysTime)));
        assert_eq!(parse("all"), Some(Named::All));
        assert_eq!(parse("CAP_NOPE"), None);
        let m = mask(&[Capability::Chown, Capability::Kill]);
        assert_eq!(m, 0b100001);
        assert_eq!(from_mask(m).len(), 2);
    }
}
