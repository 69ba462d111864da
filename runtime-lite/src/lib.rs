//! hoist's sandbox, used by `hoist run` and by RUN steps of a build. Input is a plain spec (a
//! rootfs as overlay layers or a directory, a process, mounts, limits, network mode); the
//! sandbox sets up mount, pid, uts, ipc (and net) namespaces in a re-executed single-threaded
//! helper, builds the root filesystem (overlay, /proc, /dev, /sys, generated /etc files, docker's
//! masked paths), pivots into it, applies cgroup limits, capabilities and the user, and execs.
//! Exit codes follow docker: the process's status, 125 when the sandbox fails, 126 not
//! executable, 127 not found, 128+N when killed by signal N.
#![deny(missing_docs)]

pub mod caps;
pub mod cgroups;
pub mod oci;
pub mod plan;
pub mod prep;
pub mod sandbox;
pub mod spec;
pub mod tty;
pub mod user;
pub mod userns;

pub use sandbox::{HELPER_ARG, helper_main, run, run_with_output};
pub use spec::{Mount, Network, Process, RootFs, Spec};
