//! The mount plan: everything the sandbox does to build the container's filesystem, as data.
//! [`plan`] turns a [`Spec`] into [`Op`]s (unit-tested without root); a [`Kernel`] carries them
//! out: [`RealKernel`] with syscalls inside the sandbox's mount namespace, [`RecordingKernel`]
//! in tests.

use std::io;
use std::path::{Component, Path, PathBuf};

use crate::spec::{RootFs, Spec};

/// `MS_*` flags we use.
pub mod flags {
    /// Read-only.
    pub const RDONLY: u64 = libc::MS_RDONLY;
    /// No setuid.
    pub const NOSUID: u64 = libc::MS_NOSUID;
    /// No device files.
    pub const NODEV: u64 = libc::MS_NODEV;
    /// No exec.
    pub const NOEXEC: u64 = libc::MS_NOEXEC;
    /// Bind mount.
    pub const BIND: u64 = libc::MS_BIND;
    /// Recursive.
    pub const REC: u64 = libc::MS_REC;
    /// Remount.
    pub const REMOUNT: u64 = libc::MS_REMOUNT;
    /// Private propagation.
    pub const PRIVATE: u64 = libc::MS_PRIVATE;
    /// Strict atime.
    pub const STRICTATIME: u64 = libc::MS_STRICTATIME;
}

/// One step of building the container's filesystem.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// Make every mount private, so nothing propagates back to the host.
    MakePrivate,
    /// `mount(source, target, fstype, flags, data)`.
    Mount {
        /// Source (device, path, or a name like `proc`).
        source: String,
        /// Host path of the target.
        target: PathBuf,
        /// Filesystem type; `None` for bind mounts and remounts.
        fstype: Option<String>,
        /// `MS_*` flags.
        flags: u64,
        /// Filesystem options.
        data: String,
    },
    /// A bind remount of `target` with `flags` (`MS_REMOUNT | MS_BIND` added). The flags the
    /// mount has (nosuid, nodev, noexec, atime) are kept unless `cleared` names them, as runc
    /// keeps all but the user's explicit clears: in a user namespace they are locked
    /// (dropping one fails with EPERM), and outside one a read-only remount must not quietly
    /// allow setuid files.
    Remount {
        /// Host path of the mount.
        target: PathBuf,
        /// `MS_*` flags to set.
        flags: u64,
        /// Flags the mount options cleared (`suid`, `dev`, `exec`, `atime`, ...).
        cleared: u64,
        /// Nothing to do when `target` does not exist.
        optional: bool,
    },
    /// Create a directory and its parents (never following a symlink inside the rootfs).
    MkdirAll {
        /// The directory.
        path: PathBuf,
    },
    /// Create an empty file (and its parent dirs) to bind a file onto, unless it exists.
    Touch {
        /// The file.
        path: PathBuf,
    },
    /// Create a symlink (replacing nothing).
    Symlink {
        /// What it points to.
        target: String,
        /// The link.
        link: PathBuf,
    },
    /// pivot_root into `new_root` and detach the old root.
    PivotRoot {
        /// The new root.
        new_root: PathBuf,
    },
}

/// docker's masked paths: hidden behind /dev/null (files) or an empty read-only tmpfs (dirs).
pub const MASKED_PATHS: [&str; 10] = [
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
];

/// docker's read-only paths.
pub const READONLY_PATHS: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// Device nodes bound from the host into the container's /dev.
pub const DEVICES: [&str; 6] = ["null", "zero", "full", "random", "urandom", "tty"];

/// Joins a container path onto the root target, lexically, refusing `..` escapes.
pub fn in_root(root: &Path, container_path: &str) -> PathBuf {
    let mut p = root.to_path_buf();
    let mut depth = 0usize;
    for c in Path::new(container_path).components() {
        match c {
            Component::Normal(n) => {
                p.push(n);
                depth += 1;
            }
            Component::ParentDir if depth > 0 => {
                p.pop();
                depth -= 1;
            }
            _ => {}
        }
    }
    p
}

/// The plan for `spec`: its OCI runtime config ([`crate::oci::runtime_spec`]) carried out on
/// its root filesystem by [`plan_oci`].
pub fn plan(spec: &Spec) -> io::Result<Vec<Op>> {
    let oci = crate::oci::runtime_spec(spec, spec.rootfs.target())?;
    Ok(plan_oci(&oci, &spec.rootfs, spec.volatile_upper))
}

/// Mounting the root filesystem: every mount made private, then the overlay (or a bind of the
/// directory) on its target. `volatile` asks overlay not to sync the upper dir; `userxattr`
/// (in a user namespace) makes it use `user.overlay.*` xattrs, as a rootless store has.
pub fn rootfs_ops(rootfs: &RootFs, volatile: bool, userxattr: bool) -> Vec<Op> {
    use flags::*;
    let mount = match rootfs {
        RootFs::Overlay {
            lowers,
            upper,
            work,
            target,
        } => {
            let lower = lowers
                .iter()
                .map(|l| l.display().to_string())
                .collect::<Vec<_>>()
                .join(":");
            Op::Mount {
                source: "overlay".into(),
                target: target.clone(),
                fstype: Some("overlay".into()),
                flags: 0,
                data: format!(
                    "lowerdir={lower},upperdir={},workdir={}{}{}",
                    upper.display(),
                    work.display(),
                    if userxattr { ",userxattr" } else { "" },
                    if volatile { ",volatile" } else { "" }
                ),
            }
        }
        RootFs::Dir(d) => Op::Mount {
            source: d.display().to_string(),
            target: d.clone(),
            fstype: None,
            flags: BIND | REC,
            data: String::new(),
        },
    };
    vec![Op::MakePrivate, mount]
}

/// An OCI mount's `options`, split as runc does: `MS_*` flags, a propagation change, and the
/// rest as the filesystem's data.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct MountOptions {
    /// `MS_*` flags (`ro`, `nosuid`, `bind`, `rbind` = bind + rec, ...).
    pub flags: u64,
    /// `MS_SHARED`/`MS_SLAVE`/`MS_UNBINDABLE` (with `MS_REC` for the `r` forms). `private`
    /// and `rprivate` need nothing: the sandbox makes every mount private first.
    pub propagation: u64,
    /// Everything else, comma-separated, for the filesystem (`mode=755,size=65536k`).
    pub data: String,
    /// The flags an option cleared (`suid` clears `MS_NOSUID`), unless a later one set them.
    pub cleared: u64,
}

impl MountOptions {
    /// Splits `options`.
    pub fn parse(options: &[String]) -> MountOptions {
        let mut o = MountOptions::default();
        let mut data = Vec::new();
        for opt in options {
            let (set, clear): (u64, u64) = match opt.as_str() {
                "ro" => (libc::MS_RDONLY, 0),
                "rw" => (0, libc::MS_RDONLY),
                "nosuid" => (libc::MS_NOSUID, 0),
                "suid" => (0, libc::MS_NOSUID),
                "nodev" => (libc::MS_NODEV, 0),
                "dev" => (0, libc::MS_NODEV),
                "noexec" => (libc::MS_NOEXEC, 0),
                "exec" => (0, libc::MS_NOEXEC),
                "sync" => (libc::MS_SYNCHRONOUS, 0),
                "async" => (0, libc::MS_SYNCHRONOUS),
                "dirsync" => (libc::MS_DIRSYNC, 0),
                "noatime" => (libc::MS_NOATIME, 0),
                "atime" => (0, libc::MS_NOATIME),
                "nodiratime" => (libc::MS_NODIRATIME, 0),
                "diratime" => (0, libc::MS_NODIRATIME),
                "relatime" => (libc::MS_RELATIME, 0),
                "norelatime" => (0, libc::MS_RELATIME),
                "strictatime" => (libc::MS_STRICTATIME, 0),
                "nostrictatime" => (0, libc::MS_STRICTATIME),
                "bind" => (libc::MS_BIND, 0),
                "rbind" => (libc::MS_BIND | libc::MS_REC, 0),
                "private" | "rprivate" => continue,
                "shared" | "slave" | "unbindable" | "rshared" | "rslave" | "runbindable" => {
                    let kind = match opt.trim_start_matches('r') {
                        "shared" => libc::MS_SHARED,
                        "slave" => libc::MS_SLAVE,
                        _ => libc::MS_UNBINDABLE,
                    };
                    let rec = if opt.starts_with('r') {
                        libc::MS_REC
                    } else {
                        0
                    };
                    o.propagation = kind | rec;
                    continue;
                }
                _ => {
                    data.push(opt.as_str());
                    continue;
                }
            };
            o.flags = (o.flags | set) & !clear;
            o.cleared = (o.cleared | clear) & !set;
        }
        o.data = data.join(",");
        o
    }
}

/// The plan for an OCI runtime config whose root filesystem is `rootfs` (as runc carries out a
/// bundle's `config.json`): the root, each of `mounts` in order under it (a `/dev` tmpfs
/// gets the default devices and links at once), `linux.maskedPaths` and
/// `linux.readonlyPaths`, `root.readonly`, then pivot_root. Every target lies under the
/// root's target until the final pivot; `..` cannot leave it.
pub fn plan_oci(oci: &oci_spec::runtime::Spec, rootfs: &RootFs, volatile: bool) -> Vec<Op> {
    use flags::*;
    let root = rootfs.target().clone();
    let at = |p: &str| in_root(&root, p);
    let userns = oci
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|n| {
            n.iter()
                .any(|n| n.typ() == oci_spec::runtime::LinuxNamespaceType::User)
        });
    let mut ops = rootfs_ops(rootfs, volatile, userns);
    for m in oci.mounts().iter().flatten() {
        let dest = m.destination().to_string_lossy();
        let target = at(&dest);
        let o = MountOptions::parse(m.options().as_deref().unwrap_or_default());
        let source = m
            .source()
            .as_ref()
            .map(|s| s.display().to_string())
            .unwrap_or_default();
        let fstype = m.typ().as_deref().unwrap_or("none");
        if fstype == "bind" || o.flags & BIND != 0 {
            ops.push(if Path::new(&source).is_dir() {
                Op::MkdirAll {
                    path: target.clone(),
                }
            } else {
                Op::Touch {
                    path: target.clone(),
                }
            });
            ops.push(Op::Mount {
                source,
                target: target.clone(),
                fstype: None,
                flags: BIND | (o.flags & REC),
                data: String::new(),
            });
            // A bind ignores other flags: they take a remount.
            let rest = o.flags & !(BIND | REC);
            if rest != 0 {
                ops.push(Op::Remount {
                    target: target.clone(),
                    flags: rest,
                    cleared: o.cleared,
                    optional: false,
                });
            }
        } else {
            ops.push(Op::MkdirAll {
                path: target.clone(),
            });
            ops.push(Op::Mount {
                source,
                target: target.clone(),
                fstype: Some(fstype.to_owned()),
                flags: o.flags,
                data: o.data,
            });
        }
        if o.propagation != 0 {
            ops.push(Op::Mount {
                source: String::new(),
                target,
                fstype: None,
                flags: o.propagation,
                data: String::new(),
            });
        }
        if dest == "/dev" && fstype != "bind" {
            default_devices(&mut ops, &root);
        }
    }
    let linux = oci.linux().as_ref();
    for p in linux
        .and_then(|l| l.masked_paths().as_ref())
        .into_iter()
        .flatten()
    {
        ops.push(Op::Mount {
            source: "/dev/null".into(),
            target: at(p),
            fstype: None,
            flags: BIND,
            data: "mask".into(),
        });
    }
    for p in linux
        .and_then(|l| l.readonly_paths().as_ref())
        .into_iter()
        .flatten()
    {
        ops.push(Op::Mount {
            source: at(p).display().to_string(),
            target: at(p),
            fstype: None,
            flags: BIND | REC,
            data: "optional".into(),
        });
        ops.push(Op::Remount {
            target: at(p),
            flags: RDONLY | NOSUID | NODEV | NOEXEC,
            cleared: 0,
            optional: true,
        });
    }
    if oci.root().as_ref().and_then(|r| r.readonly()) == Some(true) {
        ops.push(Op::Remount {
            target: root.clone(),
            flags: RDONLY,
            cleared: 0,
            optional: false,
        });
    }
    ops.push(Op::PivotRoot { new_root: root });
    ops
}

/// The devices every OCI runtime provides in a fresh /dev (bound from the host's, which also
/// works where mknod is not allowed), the `ptmx` link to the devpts instance and the
/// `fd`/`std*` links.
fn default_devices(ops: &mut Vec<Op>, root: &Path) {
    for d in DEVICES {
        let target = in_root(root, &format!("/dev/{d}"));
        ops.push(Op::Touch {
            path: target.clone(),
        });
        ops.push(Op::Mount {
            source: format!("/dev/{d}"),
            target,
            fstype: None,
            flags: flags::BIND,
            data: String::new(),
        });
    }
    for (link, target) in [
        ("/dev/ptmx", "pts/ptmx"),
        ("/dev/fd", "/proc/self/fd"),
        ("/dev/stdin", "/proc/self/fd/0"),
        ("/dev/stdout", "/proc/self/fd/1"),
        ("/dev/stderr", "/proc/self/fd/2"),
        ("/dev/core", "/proc/kcore"),
    ] {
        ops.push(Op::Symlink {
            target: target.into(),
            link: in_root(root, link),
        });
    }
}

/// Carries out plan steps.
pub trait Kernel {
    /// Performs one step.
    fn apply(&mut self, op: &Op) -> io::Result<()>;
}

/// Records the steps instead of performing them (tests).
#[derive(Debug, Default)]
pub struct RecordingKernel {
    /// The steps, in order.
    pub ops: Vec<Op>,
}

impl Kernel for RecordingKernel {
    fn apply(&mut self, op: &Op) -> io::Result<()> {
        self.ops.push(op.clone());
        Ok(())
    }
}

/// Performs the steps with real syscalls. Only for the sandbox's own mount namespace.
#[derive(Debug, Default)]
pub struct RealKernel;

fn cstr(p: &Path) -> io::Result<std::ffi::CString> {
    std::ffi::CString::new(p.as_os_str().as_encoded_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains NUL"))
}

fn check(ret: libc::c_int) -> io::Result<()> {
    if ret == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Creates `path` and its parents, refusing to go through a symlink (an image could point
/// `/proc` or `/etc` anywhere).
fn mkdir_all_nofollow(path: &Path) -> io::Result<()> {
    let mut cur = PathBuf::new();
    for c in path.components() {
        cur.push(c);
        match std::fs::symlink_metadata(&cur) {
            Ok(m) if m.file_type().is_symlink() => {
                return Err(io::Error::other(format!(
                    "`{}` is a symlink; refusing to mount through it",
                    cur.display()
                )));
            }
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(io::Error::other(format!(
                    "`{}` is not a directory",
                    cur.display()
                )));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                std::fs::create_dir(&cur).or_else(|e| {
                    if e.kind() == io::ErrorKind::AlreadyExists {
                        Ok(())
                    } else {
                        Err(e)
                    }
                })?
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The `MS_*` flags of the mount at `target` that a bind remount must keep.
fn kept_flags(target: &Path) -> u64 {
    let Ok(st) = rustix::fs::statvfs(target) else {
        return 0;
    };
    let f = st.f_flag;
    let mut flags = 0;
    for (st_flag, ms) in [
        (rustix::fs::StatVfsMountFlags::NOSUID, libc::MS_NOSUID),
        (rustix::fs::StatVfsMountFlags::NODEV, libc::MS_NODEV),
        (rustix::fs::StatVfsMountFlags::NOEXEC, libc::MS_NOEXEC),
        (rustix::fs::StatVfsMountFlags::NOATIME, libc::MS_NOATIME),
        (
            rustix::fs::StatVfsMountFlags::NODIRATIME,
            libc::MS_NODIRATIME,
        ),
        (rustix::fs::StatVfsMountFlags::RELATIME, libc::MS_RELATIME),
    ] {
        if f.contains(st_flag) {
            flags |= ms;
        }
    }
    flags
}

impl Kernel for RealKernel {
    fn apply(&mut self, op: &Op) -> io::Result<()> {
        match op {
            Op::MakePrivate => {
                let root = cstr(Path::new("/"))?;
                // SAFETY: valid C strings; null fstype/data are allowed for a propagation change.
                check(unsafe {
                    libc::mount(
                        std::ptr::null(),
                        root.as_ptr(),
                        std::ptr::null(),
                        libc::MS_REC | libc::MS_PRIVATE,
                        std::ptr::null(),
                    )
                })
            }
            Op::Mount {
                source,
                target,
                fstype,
                flags,
                data,
            } => {
                let optional = data == "optional";
                let mask = data == "mask";
                if (optional || mask) && std::fs::symlink_metadata(target).is_err() {
                    return Ok(());
                }
                let (source, data) =
                    if mask && std::fs::symlink_metadata(target).is_ok_and(|m| m.is_dir()) {
                        // A masked directory gets an empty read-only tmpfs.
                        let t = cstr(target)?;
                        let ty = std::ffi::CString::new("tmpfs").map_err(io::Error::other)?;
                        // SAFETY: valid C strings.
                        return check(unsafe {
                            libc::mount(
                                ty.as_ptr(),
                                t.as_ptr(),
                                ty.as_ptr(),
                                libc::MS_RDONLY,
                                std::ptr::null(),
                            )
                        });
                    } else {
                        (
                            source.as_str(),
                            if optional || mask { "" } else { data.as_str() },
                        )
                    };
                let s = std::ffi::CString::new(source).map_err(io::Error::other)?;
                let t = cstr(target)?;
                let ty = fstype
                    .as_deref()
                    .map(std::ffi::CString::new)
                    .transpose()
                    .map_err(io::Error::other)?;
                let raw = |data: &str| -> io::Result<()> {
                    let d = std::ffi::CString::new(data).map_err(io::Error::other)?;
                    // SAFETY: valid C strings or null pointers, as mount(2) accepts.
                    check(unsafe {
                        libc::mount(
                            if source.is_empty() {
                                std::ptr::null()
                            } else {
                                s.as_ptr()
                            },
                            t.as_ptr(),
                            ty.as_ref().map_or(std::ptr::null(), |c| c.as_ptr()),
                            *flags as libc::c_ulong,
                            if data.is_empty() {
                                std::ptr::null()
                            } else {
                                d.as_ptr().cast()
                            },
                        )
                    })
                };
                // A kernel without overlay's `volatile` (before 5.10) gets a normal mount.
                raw(data)
                    .or_else(|e| match data.strip_suffix(",volatile") {
                        Some(plain) if e.raw_os_error() == Some(libc::EINVAL) => raw(plain),
                        _ => Err(e),
                    })
                    .map_err(|e| {
                        io::Error::new(
                            e.kind(),
                            format!(
                                "mount {} on `{}`: {e}",
                                if source.is_empty() {
                                    "(remount)"
                                } else {
                                    source
                                },
                                target.display()
                            ),
                        )
                    })
            }
            Op::Remount {
                target,
                flags,
                cleared,
                optional,
            } => {
                if *optional && std::fs::symlink_metadata(target).is_err() {
                    return Ok(());
                }
                let t = cstr(target)?;
                let flags =
                    libc::MS_REMOUNT | libc::MS_BIND | *flags | (kept_flags(target) & !*cleared);
                // SAFETY: a valid C string; null source, fstype and data for a remount.
                check(unsafe {
                    libc::mount(
                        std::ptr::null(),
                        t.as_ptr(),
                        std::ptr::null(),
                        flags as libc::c_ulong,
                        std::ptr::null(),
                    )
                })
                .map_err(|e| {
                    io::Error::new(e.kind(), format!("remount `{}`: {e}", target.display()))
                })
            }
            Op::MkdirAll { path } => mkdir_all_nofollow(path),
            Op::Touch { path } => {
                if let Some(parent) = path.parent() {
                    mkdir_all_nofollow(parent)?;
                }
                match std::fs::symlink_metadata(path) {
                    Ok(m) if m.file_type().is_symlink() => Err(io::Error::other(format!(
                        "`{}` is a symlink; refusing to mount onto it",
                        path.display()
                    ))),
                    Ok(_) => Ok(()),
                    Err(_) => std::fs::OpenOptions::new()
                        .create(true)
                        .truncate(false)
                        .write(true)
                        .open(path)
                        .map(drop),
                }
            }
            Op::Symlink { target, link } => match std::os::unix::fs::symlink(target, link) {
                Err(e) if e.kind() != io::ErrorKind::AlreadyExists => Err(e),
                _ => Ok(()),
            },
            Op::PivotRoot { new_root } => {
                std::env::set_current_dir(new_root)?;
                let dot = cstr(Path::new("."))?;
                // SAFETY: pivot_root(".", ".") stacks the old root on top of the new one; it is
                // then detached. Valid C strings.
                check(unsafe {
                    libc::syscall(libc::SYS_pivot_root, dot.as_ptr(), dot.as_ptr()) as libc::c_int
                })?;
                // SAFETY: valid C string.
                check(unsafe { libc::umount2(dot.as_ptr(), libc::MNT_DETACH) })?;
                std::env::set_current_dir("/")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{Mount, Network, Spec};

    fn spec() -> Spec {
        let mut s = Spec::new(
            RootFs::Overlay {
                lowers: vec!["/s/2".into(), "/s/1".into()],
                upper: "/c/up".into(),
                work: "/c/work".into(),
                target: "/c/root".into(),
            },
            vec!["true".into()],
        );
        s.mounts.push(Mount::Bind {
            source: "/nonexistent-file".into(),
            target: "/data/../etc/x".into(),
            readonly: true,
        });
        s
    }

    #[test]
    fn volatile_upper_asks_overlay_for_it() {
        let mut s = spec();
        s.volatile_upper = true;
        let ops = plan(&s).unwrap();
        assert!(
            matches!(&ops[1], Op::Mount { data, .. } if data.ends_with(",workdir=/c/work,volatile")),
            "{:?}",
            ops[1]
        );
    }

    #[test]
    fn overlay_then_proc_dev_sys_then_masks_then_pivot() {
        let mut k = RecordingKernel::default();
        for op in plan(&spec()).unwrap() {
            k.apply(&op).unwrap();
        }
        let ops = &k.ops;
        assert_eq!(ops[0], Op::MakePrivate);
        assert!(
            matches!(&ops[1], Op::Mount { fstype: Some(t), data, target, .. } if t == "overlay" && data == "lowerdir=/s/2:/s/1,upperdir=/c/up,workdir=/c/work" && target == Path::new("/c/root"))
        );
        let pos = |f: &dyn Fn(&Op) -> bool| ops.iter().position(f).unwrap();
        let proc_ = pos(&|o| matches!(o, Op::Mount { fstype: Some(t), .. } if t == "proc"));
        let sys = pos(
            &|o| matches!(o, Op::Mount { fstype: Some(t), flags, .. } if t == "sysfs" && flags & flags::RDONLY != 0),
        );
        let kcore = pos(
            &|o| matches!(o, Op::Mount { target, data, .. } if target == Path::new("/c/root/proc/kcore") && data == "mask"),
        );
        assert!(
            proc_ < kcore && sys < kcore,
            "masks come after the mounts they mask"
        );
        assert!(
            matches!(ops.last(), Some(Op::PivotRoot { new_root }) if new_root == Path::new("/c/root"))
        );
        for d in DEVICES {
            assert!(ops.iter().any(|o| matches!(o, Op::Mount { source, flags, .. } if source == &format!("/dev/{d}") && flags & flags::BIND != 0)), "{d}");
        }
        // `..` in a target cannot leave the root; read-only binds are remounted read-only.
        let x = pos(&|o| matches!(o, Op::Mount { source, .. } if source == "/nonexistent-file"));
        assert!(
            matches!(&ops[x], Op::Mount { target, .. } if target == Path::new("/c/root/etc/x"))
        );
        assert!(
            matches!(&ops[x + 1], Op::Remount { flags, cleared: 0, .. } if flags & flags::RDONLY != 0)
        );
    }

    #[test]
    fn host_network_binds_sys_and_privileged_masks_nothing() {
        let mut s = spec();
        s.network = Network::Host;
        s.privileged = true;
        let ops = plan(&s).unwrap();
        assert!(
            !ops.iter()
                .any(|o| matches!(o, Op::Mount { fstype: Some(t), .. } if t == "sysfs"))
        );
        assert!(
            ops.iter()
                .any(|o| matches!(o, Op::Mount { source, .. } if source == "/sys"))
        );
        assert!(
            !ops.iter()
                .any(|o| matches!(o, Op::Mount { data, .. } if data == "mask"))
        );
    }

    #[test]
    fn mount_options_split_into_flags_propagation_and_data() {
        let o = |opts: &[&str]| {
            MountOptions::parse(&opts.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        };
        let t = o(&[
            "nosuid",
            "ro",
            "mode=1777",
            "noexec",
            "size=64m",
            "rw",
            "rprivate",
        ]);
        assert_eq!(t.flags, flags::NOSUID | flags::NOEXEC);
        assert_eq!(t.data, "mode=1777,size=64m");
        assert_eq!(t.propagation, 0);
        assert_eq!(t.cleared, flags::RDONLY, "`rw` after `ro`");
        // A clear a later option undoes is no clear: the remount keeps that flag of the mount.
        let c = o(&["rbind", "ro", "exec", "suid", "nosuid"]);
        assert_eq!(c.cleared, flags::NOEXEC);
        assert_eq!(
            c.flags,
            flags::BIND | flags::REC | flags::RDONLY | flags::NOSUID
        );
        let b = o(&["rbind", "ro", "rslave"]);
        assert_eq!(b.flags, flags::BIND | flags::REC | flags::RDONLY);
        assert_eq!(b.propagation, libc::MS_SLAVE | libc::MS_REC);
        assert_eq!(o(&["shared"]).propagation, libc::MS_SHARED);
    }

    #[test]
    fn a_tmpfs_with_ro_gets_the_flag_not_the_data() {
        let mut s = spec();
        s.mounts.push(Mount::Tmpfs {
            target: "/scratch".into(),
            options: "ro,size=1m".into(),
        });
        let ops = plan(&s).unwrap();
        assert!(ops.iter().any(|o| matches!(o, Op::Mount { target, flags, data, .. }
            if target == Path::new("/c/root/scratch") && flags & flags::RDONLY != 0 && data == "size=1m")), "{ops:?}");
    }

    #[test]
    fn in_root_never_leaves_the_root() {
        assert_eq!(
            in_root(Path::new("/r"), "/../../etc/passwd"),
            Path::new("/r/etc/passwd")
        );
        assert_eq!(in_root(Path::new("/r"), "a/b/../c"), Path::new("/r/a/c"));
    }
}
