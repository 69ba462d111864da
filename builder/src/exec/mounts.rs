//! The executor's scratch space and overlay mounts in the host's mount namespace (COPY/ADD
//! write through one; `--from` sources are read through a read-only one). Both clean up on
//! drop, so a failed step leaves no directory and no mount behind.

use std::path::{Path, PathBuf};

use rustix::mount::{MountFlags, UnmountFlags};

use super::error::{BuildError, IoAt};

/// A temp directory `<store>/tmp/build-<random>/`, removed (with whatever is still in it) on
/// drop.
#[derive(Debug)]
pub struct Scratch {
    dir: PathBuf,
}

impl Scratch {
    /// Creates a fresh scratch directory under `<store root>/tmp`.
    pub fn new(store_root: &Path) -> Result<Self, BuildError> {
        let dir = store_root
            .join("tmp")
            .join(format!("build-{}", store::fsutil::random_suffix()));
        std::fs::create_dir_all(&dir).at("create directory", &dir)?;
        Ok(Self { dir })
    }

    /// Takes `dir` (existing or not yet) to remove on drop, like a scratch directory.
    pub fn adopt(dir: PathBuf) -> Self {
        Self { dir }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Creates (empty) subdirectories and returns the path of the first.
    pub fn subdirs(&self, names: &[&str]) -> Result<Vec<PathBuf>, BuildError> {
        names
            .iter()
            .map(|n| {
                let p = self.dir.join(n);
                std::fs::create_dir_all(&p).at("create directory", &p)?;
                Ok(p)
            })
            .collect()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = store::fsutil::remove_all(&self.dir);
    }
}

/// A mount (an overlay, a tmpfs) at `target`, unmounted on drop (lazily when busy).
#[derive(Debug)]
pub struct Mount {
    target: PathBuf,
}

impl Mount {
    /// Mounts `lowers` (topmost first) with `upper`/`work` at `target`; with no upper, a
    /// read-only overlay (which needs at least two lowers).
    pub fn overlay(
        lowers: &[PathBuf],
        upper: Option<(&Path, &Path)>,
        target: &Path,
    ) -> Result<Self, BuildError> {
        let mut data = String::from("lowerdir=");
        let lower: Vec<String> = lowers.iter().map(|l| escape(l)).collect();
        data.push_str(&lower.join(":"));
        let mut flags = MountFlags::empty();
        match upper {
            Some((u, w)) => {
                data.push_str(&format!(",upperdir={},workdir={}", escape(u), escape(w)));
            }
            None => flags |= MountFlags::RDONLY,
        }
        let cstr = |d: &str| {
            std::ffi::CString::new(d)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))
                .at("mount an overlay at", target)
        };
        // With an upper dir: `volatile` (Linux 5.10+), so the unmount does not sync the whole
        // filesystem after every step (the snapshot files are synced by one syncfs before the
        // build records its cache; blobs are fsynced as they are committed).
        let mounted = match upper {
            Some(_) => {
                let v = cstr(&format!("{data},volatile"))?;
                rustix::mount::mount("overlay", target, "overlay", flags, Some(v.as_c_str()))
            }
            None => Err(rustix::io::Errno::INVAL),
        };
        if mounted.is_err() {
            let plain = cstr(&data)?;
            rustix::mount::mount("overlay", target, "overlay", flags, Some(plain.as_c_str()))
                .map_err(io_err)
                .at("mount an overlay at", target)?;
        }
        Ok(Self {
            target: target.to_path_buf(),
        })
    }

    /// Mounts a tmpfs with `options` (`mode=0700,size=4m`) at `target`.
    pub fn tmpfs(target: &Path, options: &std::ffi::CStr) -> Result<Self, BuildError> {
        rustix::mount::mount(
            "tmpfs",
            target,
            "tmpfs",
            MountFlags::NOSUID | MountFlags::NODEV,
            Some(options),
        )
        .map_err(io_err)
        .at("mount a tmpfs at", target)?;
        Ok(Self {
            target: target.to_path_buf(),
        })
    }

    /// Unmounts now, reporting a failure (drop would only detach).
    pub fn unmount(self) -> Result<(), BuildError> {
        let target = self.target.clone();
        std::mem::forget(self);
        if rustix::mount::unmount(&target, UnmountFlags::empty()).is_err() {
            rustix::mount::unmount(&target, UnmountFlags::DETACH)
                .map_err(io_err)
                .at("unmount", &target)?;
        }
        Ok(())
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        if rustix::mount::unmount(&self.target, UnmountFlags::empty()).is_err() {
            let _ = rustix::mount::unmount(&self.target, UnmountFlags::DETACH);
        }
    }
}

fn io_err(e: rustix::io::Errno) -> std::io::Error {
    std::io::Error::from(e)
}

/// overlayfs splits its options at `,` and lower dirs at `:`: escape both with `\`.
fn escape(p: &Path) -> String {
    let s = p.to_string_lossy();
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, ',' | ':' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A read-only view of a stack of snapshots (topmost first) for `COPY --from`: the single
/// snapshot itself, or a read-only overlay (an empty directory added as the bottom lower when
/// there is only one, since overlayfs needs two lowers without an upper dir).
#[derive(Debug)]
pub struct ReadOnlyRoot {
    root: PathBuf,
    _mount: Option<Mount>,
}

impl ReadOnlyRoot {
    /// Mounts `layers` (topmost first) under `scratch`.
    pub fn new(scratch: &Scratch, name: &str, layers: &[PathBuf]) -> Result<Self, BuildError> {
        let dirs = scratch.subdirs(&[&format!("{name}-root"), &format!("{name}-empty")])?;
        if layers.is_empty() {
            return Ok(Self {
                root: dirs[1].clone(),
                _mount: None,
            });
        }
        let mut lowers = layers.to_vec();
        if lowers.len() == 1 {
            lowers.push(dirs[1].clone());
        }
        let mount = Mount::overlay(&lowers, None, &dirs[0])?;
        Ok(Self {
            root: dirs[0].clone(),
            _mount: Some(mount),
        })
    }

    /// Where the merged view is.
    pub fn path(&self) -> &Path {
        &self.root
    }
}
