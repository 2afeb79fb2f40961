//! Tests of the network subsystem against real bridges, veths, nftables tables and
//! network namespaces (root). Every test owns its bridge name, subnet, namespaces and
//! ports, and removes them when it ends, also on failure.

mod endpoints;
mod lifecycle;
mod networks;
mod ports;
mod support;
