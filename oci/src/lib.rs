//! Leaf types shared by every hoist crate: content digests, image references with docker's
//! normalisation, media types, our image-config struct (a docker superset of the OCI config that
//! keeps unknown fields), a canonical JSON writer, and validation of manifests, indexes and
//! configs. This crate does no I/O.
#![deny(missing_docs)]

pub mod canonical;
pub mod config;
pub mod digest;
pub mod media_type;
pub mod platform;
pub mod reference;
pub mod validate;

pub use canonical::{CanonicalError, to_canonical_vec};
pub use config::{HealthConfig, History, ImageConfig, RootFs, RuntimeConfig};
pub use digest::{Digest, DigestError, Sha256Writer};
pub use media_type::MediaType;
pub use reference::{Reference, ReferenceError};

/// Re-export of the `oci-spec` image types we use for manifests, indexes and descriptors.
pub use oci_spec::image as spec;
