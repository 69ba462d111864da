//! The store's error type. Every variant names the object it is about.

use std::io;
use std::path::{Path, PathBuf};

use oci::Digest;

/// Everything that can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A filesystem operation failed.
    #[error("{op} `{path}`: {source}")]
    Io {
        /// What we were doing (`open`, `rename`, ...).
        op: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Bytes did not hash to the digest they were expected to have.
    #[error("digest mismatch for {what}: expected {expected}, got {actual}")]
    DigestMismatch {
        /// What was being read (a blob, a layer in an archive, ...).
        what: String,
        /// The digest we were told.
        expected: Digest,
        /// The digest of the bytes.
        actual: Digest,
    },
    /// Bytes did not have the size they were expected to have.
    #[error("size mismatch for {what}: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        /// What was being read.
        what: String,
        /// The size we were told.
        expected: u64,
        /// The size of the bytes.
        actual: u64,
    },
    /// A blob is not in the store.
    #[error("blob {0} not found in the store")]
    BlobNotFound(Digest),
    /// No image matches a reference or ID.
    #[error("image `{0}` not found in the store")]
    ImageNotFound(String),
    /// No container matches a name or ID.
    #[error("container `{0}` not found")]
    ContainerNotFound(String),
    /// An ID prefix matches several images.
    #[error("image ID prefix `{0}` is ambiguous: it matches several images")]
    AmbiguousId(String),
    /// An image is still used and cannot be removed.
    #[error("image `{image}` is referenced by {by}; use -f to remove it anyway")]
    InUse {
        /// The image.
        image: String,
        /// What uses it.
        by: String,
    },
    /// A JSON document could not be parsed or is not what it should be.
    #[error("invalid JSON in {what}: {reason}")]
    Json {
        /// Which document (path or digest).
        what: String,
        /// Why.
        reason: String,
    },
    /// A layer tar entry was refused or could not be applied.
    #[error("layer {layer}: entry `{entry}`: {reason}")]
    LayerEntry {
        /// The layer (digest or file).
        layer: String,
        /// The entry name as it appears in the tar.
        entry: String,
        /// Why.
        reason: String,
    },
    /// A layer stream is not a readable tar.
    #[error("layer {layer}: {reason}")]
    Layer {
        /// The layer (digest or file).
        layer: String,
        /// Why.
        reason: String,
    },
    /// An archive is not in a format we can load.
    #[error("archive `{archive}`: {reason}")]
    Archive {
        /// The archive (path or `stdin`).
        archive: String,
        /// Why.
        reason: String,
    },
    /// A reference could not be parsed.
    #[error(transparent)]
    Reference(#[from] oci::ReferenceError),
    /// A snapshot operation needs a privilege we do not have.
    #[error("{what} needs root (CAP_MKNOD/CAP_SYS_ADMIN): {source}")]
    Privilege {
        /// The operation.
        what: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

/// Result alias for the store.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Adds the operation and path to an `io::Result`.
pub trait IoContext<T> {
    /// Names the operation and path of a failed I/O call.
    fn at(self, op: &'static str, path: impl AsRef<Path>) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn at(self, op: &'static str, path: impl AsRef<Path>) -> Result<T> {
        self.map_err(|source| StoreError::Io {
            op,
            path: path.as_ref().to_path_buf(),
            source,
        })
    }
}

impl<T> IoContext<T> for rustix::io::Result<T> {
    fn at(self, op: &'static str, path: impl AsRef<Path>) -> Result<T> {
        self.map_err(io::Error::from).at(op, path)
    }
}
