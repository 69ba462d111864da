//! Preparing a container's files before the sandbox starts, shared by `hoist run` and the RUN
//! steps of a build: the init layer (docker's idea: mount points and the files bind-mounted
//! over `/etc/hosts`, `/etc/hostname` and `/etc/resolv.conf`, as a lower layer under the upper
//! dir, so the upper dir holds only what the command itself changed), and those `/etc` files.

use std::io;
use std::path::{Path, PathBuf};

use crate::spec::{Mount, Network};

fn ctx(e: io::Error, what: &str, p: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("cannot {what} `{}`: {e}", p.display()))
}

/// Fills `dir` (the init layer) with the mount points the sandbox needs: `/proc`, `/sys`,
/// `/dev` and its devices, the generated `/etc` files, and the targets of `mounts`.
pub fn init_layer(dir: &Path, mounts: &[Mount]) -> io::Result<()> {
    let mk = |rel: &str| {
        let p = dir.join(rel);
        std::fs::create_dir_all(&p).map_err(|e| ctx(e, "create", &p))
    };
    let touch = |rel: &str| -> io::Result<()> {
        let p = dir.join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).map_err(|e| ctx(e, "create", parent))?;
        }
        std::fs::write(&p, b"").map_err(|e| ctx(e, "create", &p))
    };
    for d in ["proc", "sys", "dev/pts", "dev/shm", "dev/mqueue"] {
        mk(d)?;
    }
    for f in crate::plan::DEVICES {
        touch(&format!("dev/{f}"))?;
    }
    for f in ["etc/hosts", "etc/hostname", "etc/resolv.conf"] {
        touch(f)?;
    }
    for m in mounts {
        let (target, is_dir) = match m {
            Mount::Bind { source, target, .. } => (target, source.is_dir()),
            Mount::Tmpfs { target, .. } => (target, true),
        };
        let rel = crate::plan::in_root(Path::new(""), target);
        let rel = rel.to_string_lossy();
        if is_dir { mk(&rel)? } else { touch(&rel)? }
    }
    Ok(())
}

/// Writes the container's `/etc/hosts`, `/etc/hostname` and `/etc/resolv.conf` into `dir` and
/// returns them as (host file, container path) pairs for [`crate::Spec::etc_files`].
pub fn etc_files(
    dir: &Path,
    hostname: &str,
    network: Network,
) -> io::Result<Vec<(PathBuf, String)>> {
    let hosts = match network {
        Network::Host => std::fs::read_to_string("/etc/hosts").unwrap_or_default(),
        Network::None => format!(
            "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t{hostname}\n"
        ),
    };
    let resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let files = [
        ("hosts", hosts, "/etc/hosts"),
        ("hostname", format!("{hostname}\n"), "/etc/hostname"),
        ("resolv.conf", resolv, "/etc/resolv.conf"),
    ];
    let mut out = Vec::new();
    for (name, content, target) in files {
        let p = dir.join(name);
        std::fs::write(&p, content).map_err(|e| ctx(e, "write", &p))?;
        out.push((p, target.to_string()));
    }
    Ok(out)
}
