//! OCI distribution client for hoist: auth, resolve, pull, push, cross-repository mount, retry
//! and platform matching. The protocol-independent pieces come first: authentication challenges,
//! tokens and credentials (`auth`), retry policy and registry errors (`retry`, `error`), and
//! platform matching (`platform`); the HTTP transport, pull and push build on them.
#![deny(missing_docs)]
// `RegistryError` carries its full context (registry, repository, request, the registry's error
// body) by value; it is built only on the failure path of a network call, where its size is
// irrelevant next to the round trip.
#![allow(clippy::result_large_err)]

pub mod auth;
pub mod client;
pub mod download;
pub mod error;
pub mod platform;
pub mod repo;
pub mod retry;

pub use client::{Client, ClientOptions};
pub use repo::Repository;
