//! The mount plan: everything the sandbox does to build the container's filesystem, as data.
//! [`plan`] turns a [`Spec`] into [`Op`]s (unit-tested without root); a [`Kernel`] carries them
//! out: [`RealKernel`] with syscalls inside the sandbox's mount namespace, [`RecordingKernel`]
//! in tests.

use std::io;
use std::path::{Component, Path, PathBuf};

use crate::spec::{Mount, Network, RootFs, Spec};

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

/// The plan for `spec`. Every target lies under the rootfs target until the final pivot.
pub fn plan(spec: &Spec) -> Vec<Op> {
    use flags::*;
    let root = spec.rootfs.target().clone();
    let at = |p: &str| in_root(&root, p);
    let mut ops = vec![Op::MakePrivate];
    match &spec.rootfs {
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
            ops.push(Op::Mount {
                source: "overlay".into(),
                target: target.clone(),
                fstype: Some("overlay".into()),
                flags: 0,
                data: format!(
                    "lowerdir={lower},upperdir={},workdir={}{}",
                    upper.display(),
                    work.display(),
                    if spec.volatile_upper { ",volatile" } else { "" }
                ),
            });
        }
        RootFs::Dir(d) => ops.push(Op::Mount {
            source: d.display().to_string(),
            target: d.clone(),
            fstype: None,
            flags: BIND | REC,
            data: String::new(),
        }),
    }
    let mount =
        |ops: &mut Vec<Op>, source: &str, target: &str, fstype: &str, flags: u64, data: &str| {
            ops.push(Op::MkdirAll { path: at(target) });
            ops.push(Op::Mount {
                source: source.into(),
                target: at(target),
                fstype: Some(fstype.into()),
                flags,
                data: data.into(),
            });
        };
    mount(
        &mut ops,
        "proc",
        "/proc",
        "proc",
        NOSUID | NODEV | NOEXEC,
        "",
    );
    mount(
        &mut ops,
        "tmpfs",
        "/dev",
        "tmpfs",
        NOSUID | STRICTATIME,
        "mode=755,size=65536k",
    );
    for d in DEVICES {
        let target = at(&format!("/dev/{d}"));
        ops.push(Op::Touch {
            path: target.clone(),
        });
        ops.push(Op::Mount {
            source: format!("/dev/{d}"),
            target,
            fstype: None,
            flags: BIND,
            data: String::new(),
        });
    }
    mount(
        &mut ops,
        "devpts",
        "/dev/pts",
        "devpts",
        NOSUID | NOEXEC,
        "newinstance,ptmxmode=0666,mode=0620,gid=5",
    );
    ops.push(Op::Symlink {
        target: "pts/ptmx".into(),
        link: at("/dev/ptmx"),
    });
    mount(
        &mut ops,
        "shm",
        "/dev/shm",
        "tmpfs",
        NOSUID | NODEV | NOEXEC,
        "mode=1777,size=65536k",
    );
    mount(
        &mut ops,
        "mqueue",
        "/dev/mqueue",
        "mqueue",
        NOSUID | NODEV | NOEXEC,
        "",
    );
    for (link, target) in [
        ("/dev/fd", "/proc/self/fd"),
        ("/dev/stdin", "/proc/self/fd/0"),
        ("/dev/stdout", "/proc/self/fd/1"),
        ("/dev/stderr", "/proc/self/fd/2"),
        ("/dev/core", "/proc/kcore"),
    ] {
        ops.push(Op::Symlink {
            target: target.into(),
            link: at(link),
        });
    }
    if spec.network == Network::Host {
        // sysfs belongs to a network namespace: with the host's, bind the host's read-only.
        ops.push(Op::MkdirAll { path: at("/sys") });
        ops.push(Op::Mount {
            source: "/sys".into(),
            target: at("/sys"),
            fstype: None,
            flags: BIND | REC,
            data: String::new(),
        });
        ops.push(Op::Mount {
            source: String::new(),
            target: at("/sys"),
            fstype: None,
            flags: REMOUNT | BIND | RDONLY | NOSUID | NODEV | NOEXEC,
            data: String::new(),
        });
    } else {
        mount(
            &mut ops,
            "sysfs",
            "/sys",
            "sysfs",
            RDONLY | NOSUID | NODEV | NOEXEC,
            "",
        );
    }
    for (host, ctr) in &spec.etc_files {
        ops.push(Op::Touch { path: at(ctr) });
        ops.push(Op::Mount {
            source: host.display().to_string(),
            target: at(ctr),
            fstype: None,
            flags: BIND,
            data: String::new(),
        });
    }
    for m in &spec.mounts {
        match m {
            Mount::Bind {
                source,
                target,
                readonly,
            } => {
                if source.is_dir() {
                    ops.push(Op::MkdirAll { path: at(target) });
                } else {
                    ops.push(Op::Touch { path: at(target) });
                }
                ops.push(Op::Mount {
                    source: source.display().to_string(),
                    target: at(target),
                    fstype: None,
                    flags: BIND | REC,
                    data: String::new(),
                });
                if *readonly {
                    ops.push(Op::Mount {
                        source: String::new(),
                        target: at(target),
                        fstype: None,
                        flags: REMOUNT | BIND | RDONLY,
                        data: String::new(),
                    });
                }
            }
            Mount::Tmpfs { target, options } => {
                mount(&mut ops, "tmpfs", target, "tmpfs", NOSUID | NODEV, options)
            }
        }
    }
    if !spec.privileged {
        for p in MASKED_PATHS {
            ops.push(Op::Mount {
                source: "/dev/null".into(),
                target: at(p),
                fstype: None,
                flags: BIND,
                data: "mask".into(),
            });
        }
        for p in READONLY_PATHS {
            ops.push(Op::Mount {
                source: at(p).display().to_string(),
                target: at(p),
                fstype: None,
                flags: BIND | REC,
                data: "optional".into(),
            });
            ops.push(Op::Mount {
                source: String::new(),
                target: at(p),
                fstype: None,
                flags: REMOUNT | BIND | RDONLY | NOSUID | NODEV | NOEXEC,
                data: "optional".into(),
            });
        }
    }
    if spec.readonly_rootfs {
        ops.push(Op::Mount {
            source: String::new(),
            target: root.clone(),
            fstype: None,
            flags: REMOUNT | BIND | RDONLY,
            data: String::new(),
        });
    }
    ops.push(Op::PivotRoot { new_root: root });
    ops
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
    use crate::spec::Spec;

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
        let ops = plan(&s);
        assert!(
            matches!(&ops[1], Op::Mount { data, .. } if data.ends_with(",workdir=/c/work,volatile")),
            "{:?}",
            ops[1]
        );
    }

    #[test]
    fn overlay_then_proc_dev_sys_then_masks_then_pivot() {
        let mut k = RecordingKernel::default();
        for op in plan(&spec()) {
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
            matches!(&ops[x + 1], Op::Mount { flags, .. } if flags & flags::REMOUNT != 0 && flags & flags::RDONLY != 0)
        );
    }

    #[test]
    fn host_network_binds_sys_and_privileged_masks_nothing() {
        let mut s = spec();
        s.network = Network::Host;
        s.privileged = true;
        let ops = plan(&s);
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
    fn in_root_never_leaves_the_root() {
        assert_eq!(
            in_root(Path::new("/r"), "/../../etc/passwd"),
            Path::new("/r/etc/passwd")
        );
        assert_eq!(in_root(Path::new("/r"), "a/b/../c"), Path::new("/r/a/c"));
    }
}
