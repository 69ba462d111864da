//! Errors of a build. Every variant that is about a step names the Dockerfile and line.

use std::io;
use std::path::PathBuf;

use crate::copy::CopyError;

/// Where in a Dockerfile a step comes from: `Dockerfile:7`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    /// The Dockerfile's name as the user gave it (or `ONBUILD trigger of ...`).
    pub file: String,
    /// The 1-based line.
    pub line: usize,
}

impl Origin {
    /// An [`BuildError::Instruction`] error here.
    pub fn error(&self, message: impl Into<String>) -> BuildError {
        BuildError::Instruction {
            at: self.clone(),
            message: message.into(),
        }
    }

    /// A [`BuildError::Copy`] error of `instruction` here.
    pub fn copy_error(&self, instruction: &'static str, source: CopyError) -> BuildError {
        BuildError::Copy {
            at: self.clone(),
            instruction,
            source: Box::new(source),
        }
    }
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

/// Why a build failed.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// An instruction cannot be carried out as written (bad flag value, unsupported feature,
    /// unknown user, ...).
    #[error("{at}: {message}")]
    Instruction {
        /// Where.
        at: Origin,
        /// What is wrong.
        message: String,
    },
    /// A RUN command exited with a non-zero status.
    #[error("{at}: RUN {command}: exit code {code}{}", output_tail(.output))]
    RunFailed {
        /// Where.
        at: Origin,
        /// The command as written.
        command: String,
        /// Its exit code (docker's 125/126/127/128+N conventions).
        code: i32,
        /// The last lines of its output.
        output: Vec<String>,
    },
    /// The sandbox of a RUN could not be started.
    #[error("{at}: RUN {command}: {source}")]
    Sandbox {
        /// Where.
        at: Origin,
        /// The command as written.
        command: String,
        /// Why.
        #[source]
        source: runtime_lite::sandbox::SandboxError,
    },
    /// COPY or ADD failed (a missing source, a bad destination, ...).
    #[error("{at}: {instruction}: {source}")]
    Copy {
        /// Where.
        at: Origin,
        /// `COPY` or `ADD`.
        instruction: &'static str,
        /// Why.
        #[source]
        source: Box<CopyError>,
    },
    /// The base image of a FROM or `COPY --from` could not be found or pulled.
    #[error("{at}: cannot get the image `{reference}`: {source}")]
    Base {
        /// Where.
        at: Origin,
        /// The reference, build args expanded.
        reference: String,
        /// Why (the caller's error).
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Writing the layer blob of a step failed.
    #[error("cannot write the layer of `{step}`: {source}")]
    Layer {
        /// The step's instruction, as the history records it.
        step: String,
        /// Why.
        #[source]
        source: Box<BuildError>,
    },
    /// The build stopped because another stage failed (that stage's error is the one reported).
    #[error("cancelled: another stage of the build failed")]
    Cancelled,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] store::StoreError),
    /// A filesystem operation of the executor failed.
    #[error("cannot {what} `{path}`: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// On what.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
}

fn output_tail(lines: &[String]) -> String {
    if lines.is_empty() {
        return String::new();
    }
    let mut s = String::from("\nlast output:");
    for l in lines {
        s.push_str("\n  ");
        s.push_str(l);
    }
    s
}

/// `.at(what, path)` for io results, as the store does.
pub(crate) trait IoAt<T> {
    fn at(self, what: &'static str, path: impl Into<PathBuf>) -> Result<T, BuildError>;
}

impl<T> IoAt<T> for io::Result<T> {
    fn at(self, what: &'static str, path: impl Into<PathBuf>) -> Result<T, BuildError> {
        self.map_err(|source| BuildError::Io {
            what,
            path: path.into(),
            source,
        })
    }
}
