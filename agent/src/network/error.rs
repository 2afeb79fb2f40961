//! The network subsystem's errors, and their mapping onto berthd's error kinds.

use std::net::Ipv4Addr;

use super::ports::Proto;

/// Why a network operation failed. Messages name the network, container, address or
/// port involved.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    #[error("network {0}: not found")]
    NetworkNotFound(String),
    #[error("network {0}: already exists")]
    NetworkExists(String),
    #[error("container {container} is not connected to network {network}")]
    NotConnected { container: String, network: String },
    #[error("container {container} has no networking set up")]
    NoSandbox { container: String },
    #[error("container {container} is already connected to network {network}")]
    AlreadyConnected { container: String, network: String },
    #[error("container {0} already has its networking set up; use connect to add a network")]
    SandboxExists(String),
    #[error("{0}")]
    InUse(String),
    #[error("{0}")]
    InvalidArgument(String),
    #[error(
        "host port {ip}:{port}/{proto} is already in use; choose another host port or stop what listens on it: {source}"
    )]
    PortInUse {
        ip: Ipv4Addr,
        port: u16,
        proto: Proto,
        #[source]
        source: std::io::Error,
    },
    #[error("no free host port for {proto} in {first}-{last} on {ip}")]
    NoFreePort {
        ip: Ipv4Addr,
        proto: Proto,
        first: u16,
        last: u16,
    },
    #[error("address {ip} is already in use on network {network}")]
    AddressInUse { ip: Ipv4Addr, network: String },
    #[error("network {0} has no free address left")]
    AddressesExhausted(String),
    #[error("{0}: not implemented")]
    NotImplemented(String),
    #[error("{context}: {source}")]
    Netlink {
        context: String,
        #[source]
        source: rtnetlink::Error,
    },
    #[error("nft: {context}: {message}")]
    Nft { context: String, message: String },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Internal(String),
    #[error(transparent)]
    Metadata(#[from] crate::error::Error),
}

impl NetworkError {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        NetworkError::Io {
            context: context.into(),
            source,
        }
    }

    pub(crate) fn netlink(context: impl Into<String>, source: rtnetlink::Error) -> Self {
        NetworkError::Netlink {
            context: context.into(),
            source,
        }
    }
}

impl From<NetworkError> for crate::error::Error {
    fn from(e: NetworkError) -> Self {
        use crate::error::Error;
        match e {
            NetworkError::Metadata(e) => e,
            NetworkError::NetworkNotFound(name) => Error::NotFound(format!("network {name}")),
            NetworkError::NetworkExists(name) => Error::AlreadyExists(format!("network {name}")),
            NetworkError::NotConnected { container, network } => Error::NotFound(format!(
                "endpoint of container {container} on network {network}"
            )),
            NetworkError::NoSandbox { container } => {
                Error::NotFound(format!("networking of container {container}"))
            }
            NetworkError::AlreadyConnected { container, network } => Error::AlreadyExists(format!(
                "endpoint of container {container} on network {network}"
            )),
            NetworkError::SandboxExists(_) => Error::FailedPrecondition(e.to_string()),
            NetworkError::InUse(_)
            | NetworkError::PortInUse { .. }
            | NetworkError::NoFreePort { .. }
            | NetworkError::AddressInUse { .. }
            | NetworkError::AddressesExhausted(_) => Error::FailedPrecondition(e.to_string()),
            NetworkError::InvalidArgument(_) => Error::InvalidArgument(e.to_string()),
            NetworkError::NotImplemented(_) => Error::Unimplemented(e.to_string()),
            NetworkError::Netlink { .. }
            | NetworkError::Nft { .. }
            | NetworkError::Io { .. }
            | NetworkError::Internal(_) => Error::Internal(e.to_string()),
        }
    }
}

/// Result with the network subsystem's error.
pub type Result<T, E = NetworkError> = std::result::Result<T, E>;
