//! Address management: one address per endpoint, allocated inside the metadata write
//! transaction that records the endpoint, so an address held by a live endpoint is
//! never handed out again (across restarts too). Free addresses are taken round-robin
//! after the last one handed out, so a released address is not reused at once.

use std::net::Ipv4Addr;

use super::error::{NetworkError, Result};
use super::records::{AddressHolder, CURSORS, Network, address_key};
use crate::metadata::WriteTx;

/// Allocates `requested` (or the next free address) on `net` for `holder`.
pub(super) fn allocate(
    tx: &WriteTx,
    net: &Network,
    requested: Option<Ipv4Addr>,
    holder: &AddressHolder,
) -> Result<Ipv4Addr> {
    let subnet = net
        .subnet
        .ok_or_else(|| NetworkError::Internal(format!("network {} has no subnet", net.name)))?;
    let gateway = net.gateway;
    let used = tx.addresses(&net.id)?;
    let ip = match requested {
        Some(ip) => {
            if !subnet.is_host(ip) || Some(ip) == gateway {
                return Err(NetworkError::InvalidArgument(format!(
                    "address {ip} is not a host address of network {} ({subnet}, gateway {})",
                    net.name,
                    gateway.map(|g| g.to_string()).unwrap_or_default()
                )));
            }
            if used.contains_key(&ip) {
                return Err(NetworkError::AddressInUse {
                    ip,
                    network: net.name.clone(),
                });
            }
            ip
        }
        None => {
            let cursor: Option<Ipv4Addr> = tx.get(CURSORS, &net.id)?;
            let ip = subnet
                .hosts_after(cursor)
                .find(|ip| Some(*ip) != gateway && !used.contains_key(ip))
                .ok_or_else(|| NetworkError::AddressesExhausted(net.name.clone()))?;
            tx.put(CURSORS, &net.id, &ip)?;
            ip
        }
    };
    tx.put(super::records::ADDRESSES, &address_key(&net.id, ip), holder)?;
    Ok(ip)
}

/// Releases `ip` on network `network_id`; true if it was allocated.
pub(super) fn release(tx: &WriteTx, network_id: &str, ip: Ipv4Addr) -> Result<bool> {
    Ok(tx.remove(super::records::ADDRESSES, &address_key(network_id, ip))?)
}

/// Forgets every allocation of a network (when it is removed).
pub(super) fn forget_network(tx: &WriteTx, network_id: &str) -> Result<()> {
    tx.remove_prefix(
        super::records::ADDRESSES,
        &crate::metadata::prefix(&[network_id]),
    )?;
    tx.remove(CURSORS, network_id)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::Metadata;
    use crate::network::records::{Driver, TABLES};

    fn net() -> Network {
        Network {
            id: "a".repeat(64),
            name: "n".into(),
            driver: Driver::Bridge,
            bridge: "brx".into(),
            subnet: Some("10.9.0.0/29".parse().unwrap()),
            gateway: Some(Ipv4Addr::new(10, 9, 0, 1)),
            mtu: 1500,
            labels: Default::default(),
            predefined: false,
            created_at: 0,
        }
    }

    fn holder(c: &str) -> AddressHolder {
        AddressHolder {
            namespace: "default".into(),
            container: c.into(),
        }
    }

    #[test]
    fn allocations_persist_and_are_never_shared() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("meta.redb");
        let n = net();
        let mut held = Vec::new();
        {
            let md = Metadata::open(&path).unwrap();
            md.write(|tx| {
                for t in TABLES {
                    tx.create(t)?;
                }
                Ok(())
            })
            .unwrap();
            for c in ["a", "b"] {
                held.push(
                    super::super::write(&md, |tx| allocate(tx, &n, None, &holder(c))).unwrap(),
                );
            }
        }
        assert_eq!(
            held,
            [Ipv4Addr::new(10, 9, 0, 2), Ipv4Addr::new(10, 9, 0, 3)]
        );
        // Reopened: the cursor and the allocations are still there.
        let md = Metadata::open(&path).unwrap();
        let c = super::super::write(&md, |tx| allocate(tx, &n, None, &holder("c"))).unwrap();
        assert_eq!(c, Ipv4Addr::new(10, 9, 0, 4));
        let err = super::super::write(&md, |tx| allocate(tx, &n, Some(held[0]), &holder("d")))
            .unwrap_err();
        assert!(matches!(err, NetworkError::AddressInUse { .. }), "{err}");
        for bad in [
            Ipv4Addr::new(10, 9, 0, 1),
            Ipv4Addr::new(10, 9, 0, 7),
            Ipv4Addr::new(10, 9, 1, 2),
        ] {
            let err = super::super::write(&md, |tx| allocate(tx, &n, Some(bad), &holder("d")))
                .unwrap_err();
            assert!(
                matches!(err, NetworkError::InvalidArgument(_)),
                "{bad}: {err}"
            );
        }
        // Release .2: the next ones are .5, .6, then .2 again (round robin), then none.
        assert!(super::super::write(&md, |tx| release(tx, &n.id, held[0])).unwrap());
        let mut next = Vec::new();
        for c in ["e", "f", "g"] {
            next.push(super::super::write(&md, |tx| allocate(tx, &n, None, &holder(c))).unwrap());
        }
        assert_eq!(
            next,
            [
                Ipv4Addr::new(10, 9, 0, 5),
                Ipv4Addr::new(10, 9, 0, 6),
                Ipv4Addr::new(10, 9, 0, 2)
            ]
        );
        let err = super::super::write(&md, |tx| allocate(tx, &n, None, &holder("h"))).unwrap_err();
        assert!(matches!(err, NetworkError::AddressesExhausted(_)), "{err}");
        let used = md.read(|tx| tx.addresses(&n.id)).unwrap();
        assert_eq!(used.len(), 5);
    }
}
