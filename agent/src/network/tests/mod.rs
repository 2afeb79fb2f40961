//! Tests of the network subsystem against real bridges, veths, nftables tables and
//! network namespaces (root). Every test owns its bridge name, subnet, namespaces and
//! ports, and removes them when it ends, also on failure.

mod endpoints;
mod lifecycle;
mod networks;
mod ports;
mod support;

/// The futures of the subsystem can run on a multi-threaded runtime (gRPC handlers).
#[allow(dead_code)]
fn futures_are_send(n: &crate::network::Networks, p: &std::path::Path) {
    fn send<T: Send>(_: T) {}
    let r = crate::network::EndpointRequest::default();
    send(n.attach("ns", "c", p, &r));
    send(n.connect("ns", "c", "net", &Default::default()));
    send(n.detach("ns", "c"));
    send(n.disconnect("ns", "c", "net"));
    send(n.create(&Default::default()));
    send(n.remove("net"));
    send(n.prune(|_| true));
    send(n.reconcile(&[]));
    send(n.shutdown());
}
