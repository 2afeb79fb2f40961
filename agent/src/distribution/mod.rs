//! Image distribution: talking to registries (Registry v2 / OCI distribution API).
//! Owns reference parsing, digests, media types and manifest documents, platform
//! selection, registry hosts and mirrors, authentication, and the client that resolves,
//! fetches and pushes manifests and blobs. It knows nothing of the content store: blobs
//! go into a caller's [`BlobSink`] and come from a caller's [`BlobSource`].
//!
//! ```text
//! let client = RegistryClient::new(&config.registry)?;
//! let reference = Reference::parse("busybox")?;           // docker.io/library/busybox:latest
//! let repo = client.repository(&reference, credentials);
//! let desc = repo.resolve(&reference.object()).await?;     // manifest or index descriptor
//! let bytes = repo.fetch_manifest(&desc).await?;           // digest-checked, <= 4 MiB
//! repo.fetch_blob_resumable(&layer, &mut sink).await?;     // Range resume + retries
//! ```

pub mod auth;
pub mod blob;
pub mod digest;
pub mod error;
pub mod hosts;
pub mod login;
pub mod media;
pub mod platform;
pub mod push;
pub mod reference;
pub mod registry;

pub use auth::Credentials;
pub use blob::BlobSink;
pub use digest::{Algorithm, Digest, Verifier};
pub use error::{Error, Result};
pub use media::{Descriptor, Document, Index, Manifest, PlatformSpec};
pub use platform::{Platform, select_manifest};
pub use push::{BlobSource, FileSource, PushOutcome};
pub use reference::Reference;
pub use registry::{ClientOptions, RegistryClient, Repository};
