//! OCI distribution client for hoist: auth, resolve, pull, push, cross-repository mount, retry
//! and platform matching. Not written yet: the registry-client issue delivers it.
#![deny(missing_docs)]
