//! Errors of COPY/ADD selection and application.

use std::io;
use std::path::{Path, PathBuf};

use crate::dockerfile::ignore::IgnoreError;

/// Why sources could not be selected, digested or copied.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    /// A source path names nothing in the source root (BuildKit: `"/x": not found`).
    #[error("`{source_path}`: not found{}", if *.ignored { " (it is excluded by .dockerignore)" } else { "" })]
    NotFound {
        /// The source as written in the instruction.
        source_path: String,
        /// True when the path exists on disk but `.dockerignore` hides it.
        ignored: bool,
    },
    /// `.dockerignore` could not be applied.
    #[error(transparent)]
    Ignore(#[from] IgnoreError),
    /// An `--exclude` pattern is malformed.
    #[error("--exclude: {0}")]
    Exclude(#[source] IgnoreError),
    /// The part of a `--parents` source after the `/./` pivot is not a valid pattern.
    #[error("--parents source `{source_path}`: {error}")]
    ParentsPattern {
        /// The source as written.
        source_path: String,
        /// What is wrong with its pattern.
        #[source]
        error: IgnoreError,
    },
    /// Several file sources would all be written at one non-directory destination.
    #[error(
        "When using {instruction} with more than one source file, the destination must be a directory and end with a /"
    )]
    DestNotDirectory {
        /// `COPY` or `ADD`.
        instruction: &'static str,
    },
    /// A directory would be copied onto (or created through) something that is not one.
    #[error("cannot copy to non-directory: `{path}`")]
    NotADirectory {
        /// The path in the image.
        path: String,
    },
    /// A file would replace an existing directory (BuildKit refuses this too).
    #[error("cannot replace directory `{path}` with a file")]
    ReplaceDirectory {
        /// The path in the image.
        path: String,
    },
    /// Symlink resolution went through more than 255 links.
    #[error("too many levels of symbolic links resolving `{path}`")]
    SymlinkLoop {
        /// The path being resolved.
        path: String,
    },
    /// An ADD archive holds an entry that cannot be extracted safely or at all.
    #[error("archive `{archive}`: entry `{entry}`: {reason}")]
    ArchiveEntry {
        /// The archive, relative to the source root.
        archive: String,
        /// The entry name as stored in the archive.
        entry: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A source entry is of a type we cannot copy (not a file, directory, symlink, device or
    /// FIFO).
    #[error("`{path}`: unsupported file type")]
    UnsupportedFileType {
        /// The source path.
        path: PathBuf,
    },
    /// The digest memo file exists but is not one we wrote.
    #[error("digest memo `{path}`: {error}")]
    Memo {
        /// The memo file.
        path: PathBuf,
        /// The decoding error.
        #[source]
        error: serde_json::Error,
    },
    /// A store helper failed (atomic writes, tree removal).
    #[error(transparent)]
    Store(#[from] store::StoreError),
    /// A filesystem operation failed.
    #[error("{op} `{path}`: {error}")]
    Io {
        /// What we were doing (`open`, `mkdir`, ...).
        op: &'static str,
        /// The host path involved.
        path: PathBuf,
        /// The OS error.
        #[source]
        error: io::Error,
    },
}

/// Attaches an operation and a path to I/O errors.
pub(crate) trait IoContext<T> {
    /// Names the operation and path of a failed I/O call.
    fn at(self, op: &'static str, path: impl AsRef<Path>) -> Result<T, CopyError>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn at(self, op: &'static str, path: impl AsRef<Path>) -> Result<T, CopyError> {
        self.map_err(|error| CopyError::Io {
            op,
            path: path.as_ref().to_path_buf(),
            error,
        })
    }
}

impl<T> IoContext<T> for rustix::io::Result<T> {
    fn at(self, op: &'static str, path: impl AsRef<Path>) -> Result<T, CopyError> {
        self.map_err(io::Error::from).at(op, path)
    }
}

/// True for errors meaning "nothing there" while walking a path: `ENOENT`, and `ENOTDIR` (a
/// component on the way is a file).
pub(crate) fn is_missing(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
    )
}
