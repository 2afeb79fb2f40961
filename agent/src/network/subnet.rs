//! IPv4 subnets: parsing "a.b.c.d/n", containment, overlap, and carving subnets of one
//! size out of an address pool.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// An IPv4 subnet in canonical form (host bits zero).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Subnet {
    addr: Ipv4Addr,
    prefix: u8,
}

impl Subnet {
    /// The subnet of `addr`/`prefix`; host bits must be zero.
    pub fn new(addr: Ipv4Addr, prefix: u8) -> Result<Subnet, String> {
        if prefix > 32 {
            return Err(format!("{addr}/{prefix}: prefix length over 32"));
        }
        let s = Subnet { addr, prefix };
        if u32::from(addr) & !s.mask() != 0 {
            return Err(format!(
                "{addr}/{prefix} has host bits set; the subnet is {}/{prefix}",
                Ipv4Addr::from(u32::from(addr) & s.mask())
            ));
        }
        Ok(s)
    }

    /// The subnet of length `prefix` that holds `ip` (host bits cleared).
    pub fn of(ip: Ipv4Addr, prefix: u8) -> Option<Subnet> {
        let prefix = prefix.min(32);
        let s = Subnet {
            addr: Ipv4Addr::UNSPECIFIED,
            prefix,
        };
        Some(Subnet {
            addr: Ipv4Addr::from(u32::from(ip) & s.mask()),
            prefix,
        })
    }

    pub fn addr(&self) -> Ipv4Addr {
        self.addr
    }

    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// The netmask as a number.
    pub fn mask(&self) -> u32 {
        if self.prefix == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(self.prefix))
        }
    }

    fn first(&self) -> u32 {
        u32::from(self.addr)
    }

    fn last(&self) -> u32 {
        self.first() | !self.mask()
    }

    /// The broadcast address.
    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.last())
    }

    /// Whether `ip` is inside the subnet.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & self.mask() == self.first()
    }

    /// Whether the two subnets share any address.
    pub fn overlaps(&self, other: &Subnet) -> bool {
        self.first() <= other.last() && other.first() <= self.last()
    }

    /// Whether `ip` can be given to a host: inside, and neither the network address nor
    /// the broadcast address (for prefixes up to /30).
    pub fn is_host(&self, ip: Ipv4Addr) -> bool {
        if !self.contains(ip) {
            return false;
        }
        if self.prefix >= 31 {
            return true;
        }
        let n = u32::from(ip);
        n != self.first() && n != self.last()
    }

    /// The first host address (the default gateway).
    pub fn first_host(&self) -> Ipv4Addr {
        if self.prefix >= 31 {
            self.addr
        } else {
            Ipv4Addr::from(self.first() + 1)
        }
    }

    /// Host addresses in order, starting after `after` (wrapping around to the first),
    /// each at most once.
    pub fn hosts_after(&self, after: Option<Ipv4Addr>) -> impl Iterator<Item = Ipv4Addr> + '_ {
        let (lo, hi) = if self.prefix >= 31 {
            (self.first(), self.last())
        } else {
            (self.first() + 1, self.last() - 1)
        };
        let size = u64::from(hi - lo) + 1;
        let start = match after {
            Some(a) if self.contains(a) && u32::from(a) >= lo && u32::from(a) < hi => {
                u64::from(u32::from(a) + 1 - lo)
            }
            _ => 0,
        };
        (0..size).map(move |i| Ipv4Addr::from(lo + ((start + i) % size) as u32))
    }

    /// The subnets of prefix length `size` inside this one, in order.
    pub fn split(&self, size: u8) -> impl Iterator<Item = Subnet> + '_ {
        let count: u64 = if size < self.prefix || size > 32 {
            0
        } else {
            1u64 << (size - self.prefix)
        };
        let step: u64 = 1u64 << (32 - u32::from(size.min(32)));
        (0..count).map(move |i| Subnet {
            addr: Ipv4Addr::from((u64::from(self.first()) + i * step) as u32),
            prefix: size,
        })
    }
}

impl fmt::Display for Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl FromStr for Subnet {
    type Err = String;

    fn from_str(s: &str) -> Result<Subnet, String> {
        let (a, p) = s
            .split_once('/')
            .ok_or_else(|| format!("{s:?} is not a subnet like 10.88.0.0/16"))?;
        let addr: Ipv4Addr = a
            .parse()
            .map_err(|_| format!("{s:?}: {a:?} is not an IPv4 address"))?;
        let prefix: u8 = p
            .parse()
            .map_err(|_| format!("{s:?}: {p:?} is not a prefix length"))?;
        Subnet::new(addr, prefix)
    }
}

impl Serialize for Subnet {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Subnet {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Subnet, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> Subnet {
        s.parse().unwrap()
    }

    #[test]
    fn parses_and_checks() {
        let s = net("10.88.0.0/16");
        assert_eq!(s.to_string(), "10.88.0.0/16");
        assert_eq!(s.broadcast(), Ipv4Addr::new(10, 88, 255, 255));
        assert_eq!(s.first_host(), Ipv4Addr::new(10, 88, 0, 1));
        assert!(s.contains(Ipv4Addr::new(10, 88, 3, 4)));
        assert!(!s.contains(Ipv4Addr::new(10, 89, 0, 1)));
        assert!(!s.is_host(Ipv4Addr::new(10, 88, 0, 0)));
        assert!(!s.is_host(Ipv4Addr::new(10, 88, 255, 255)));
        assert!(s.is_host(Ipv4Addr::new(10, 88, 255, 254)));
        assert!("10.88.0.1/16".parse::<Subnet>().is_err());
        assert!("10.88.0.0/33".parse::<Subnet>().is_err());
        assert!("10.88.0.0".parse::<Subnet>().is_err());
        assert!("x/8".parse::<Subnet>().is_err());
        assert_eq!(net("0.0.0.0/0").mask(), 0);
    }

    #[test]
    fn overlap() {
        assert!(net("10.0.0.0/8").overlaps(&net("10.88.0.0/16")));
        assert!(net("10.88.0.0/16").overlaps(&net("10.0.0.0/8")));
        assert!(!net("10.88.0.0/16").overlaps(&net("10.89.0.0/16")));
        assert!(net("0.0.0.0/0").overlaps(&net("192.168.1.0/24")));
    }

    #[test]
    fn hosts_wrap_after_cursor() {
        let s = net("10.1.2.0/29");
        let all: Vec<_> = s.hosts_after(None).map(|a| a.octets()[3]).collect();
        assert_eq!(all, vec![1, 2, 3, 4, 5, 6]);
        let after: Vec<_> = s
            .hosts_after(Some(Ipv4Addr::new(10, 1, 2, 4)))
            .map(|a| a.octets()[3])
            .collect();
        assert_eq!(after, vec![5, 6, 1, 2, 3, 4]);
        let last: Vec<_> = s
            .hosts_after(Some(Ipv4Addr::new(10, 1, 2, 6)))
            .map(|a| a.octets()[3])
            .collect();
        assert_eq!(last, vec![1, 2, 3, 4, 5, 6]);
    }

    #[test]
    fn split_pools() {
        let parts: Vec<_> = net("172.18.0.0/15")
            .split(16)
            .map(|s| s.to_string())
            .collect();
        assert_eq!(parts, vec!["172.18.0.0/16", "172.19.0.0/16"]);
        assert_eq!(net("192.168.0.0/16").split(20).count(), 16);
        assert_eq!(net("10.0.0.0/24").split(16).count(), 0);
    }
}
