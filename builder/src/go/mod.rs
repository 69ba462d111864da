//! Go standard-library behaviour BuildKit relies on, written once for the whole builder:
//! `path.Clean`/`path.Dir` ([`path`]) and `filepath.Match` with its syntax errors ([`glob`]).

pub(crate) mod glob;
pub(crate) mod path;
