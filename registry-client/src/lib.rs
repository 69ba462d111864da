//! OCI distribution client for hoist: auth, resolve, pull, push, cross-repository mount, retry
//! and platform matching. The protocol-independent pieces come first: authentication challenges,
//! tokens and credentials (`auth`), retry policy and registry errors (`retry`, `error`), and
//! platform matching (`platform`); the HTTP transport, pull and push build on them.
#![deny(missing_docs)]

pub mod auth;
pub mod error;
pub mod platform;
pub mod retry;
