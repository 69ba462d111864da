//! hoist's sandbox: namespaces, overlay rootfs, pivot_root, /proc /dev /sys, cgroups,
//! capabilities and docker's exit codes, used by `hoist run` and by RUN steps of a build. Not
//! written yet: the runtime-lite issue delivers it.
#![deny(missing_docs)]
