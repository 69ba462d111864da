//! Writing a selection into the image root, as fsutil's `copy.Copy` does for each matched
//! source of a BuildKit FileOp.
//!
//! For each matched source, in order: the destination (when it ends in `/`) or its parent is
//! created (`MkdirAll`: 0755, owned by the `--chown` owner); the destination is resolved inside
//! the root; then
//!
//! * a directory's contents are merged into the destination, which is created if missing (0755,
//!   as `MkdirAll` makes it) and takes the source directory's times;
//! * a file (or symlink, or device) goes into the destination when that is a directory, under
//!   its source name, else it replaces the destination;
//! * an archive (ADD) is unpacked into the destination, which is created as a directory.
//!
//! Below a copied directory, a missing directory is created and an existing one takes the
//! source's owner, mode and times; a directory that is only there because something below it
//! was selected (`--parents`, `--exclude` with `!`) keeps an existing directory's owner and
//! times and only takes the source's mode. A file replaces whatever non-directory is in its
//! way and refuses to replace a directory; a directory refuses to replace a non-directory.
//! Nothing below the resolved destination is reached through a symlink: every directory on the
//! way was created or checked with `lstat`, and files are created with `O_NOFOLLOW`.

use std::fs::{self, File};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use rustix::fs::{self as rfs, AtFlags, Gid, Mode, OFlags, Timespec, Timestamps, Uid};

use super::error::{CopyError, IoContext, is_missing};
use super::paths::{self, in_root, resolve_in_root, slash};
use super::source::{Stat, View, xattrs};
use super::{CopyRequest, EntryKind, Item, Selection, Source, archive};

/// What [`apply`] wrote.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CopyStats {
    /// Regular files copied.
    pub files: u64,
    /// Directories created or updated below copied directories.
    pub dirs: u64,
    /// Symlinks created.
    pub symlinks: u64,
    /// Hard links created (to files copied earlier in the same source).
    pub hardlinks: u64,
    /// Device nodes, FIFOs and sockets created.
    pub specials: u64,
    /// Archives unpacked (ADD).
    pub archives: u64,
    /// Bytes of file content written, archive contents included.
    pub bytes: u64,
}

/// Copies the selection into `root`, the image's root directory (an overlay mount we may
/// write). `req` gives the destination and working directory; `src` must be the source the
/// selection was made from. Fails before writing anything when several file sources would
/// all land on one destination that is not a directory.
pub fn apply(
    src: &Source<'_>,
    sel: &Selection,
    req: &CopyRequest,
    root: &Path,
) -> Result<CopyStats, CopyError> {
    apply_staged(src, sel, req, root, None).map(|(stats, _)| stats)
}

/// Like [`apply`] into `root`, an overlay mount: when the selection is one directory whose
/// destination does not exist yet, its contents are written into a new directory under
/// `staging` instead (plain files, none of the overlay's per-file cost), and returned as a
/// [`Staged`] to move into the upper dir once the overlay is unmounted. `staging` must be on
/// the upper dir's filesystem.
pub fn apply_staged(
    src: &Source<'_>,
    sel: &Selection,
    req: &CopyRequest,
    root: &Path,
    staging: Option<&Path>,
) -> Result<(CopyStats, Vec<Staged>), CopyError> {
    let view = View::new(src);
    let dest = paths::normalize_dest(&req.dest, &req.workdir);
    let dir_like = paths::dest_is_dir_like(&dest);
    check_destination(sel, root, &dest, dir_like)?;
    let mut writer = Writer {
        root,
        sel,
        stats: CopyStats::default(),
        staging: staging.filter(|_| sel.items.len() == 1),
        staged: Vec::new(),
    };
    for item in &sel.items {
        writer.item(&view, item, &dest, dir_like)?;
    }
    Ok((writer.stats, writer.staged))
}

/// A directory's contents written beside the overlay (see [`apply_staged`]).
#[derive(Debug)]
pub struct Staged {
    /// Where the contents are.
    from: PathBuf,
    /// The destination directory, relative to the overlay's root.
    to: PathBuf,
    /// The times the destination takes once its contents are in.
    atime: (i64, i64),
    mtime: (i64, i64),
}

impl Staged {
    /// Moves the contents into the destination's directory in `upper` (the upper dir of the
    /// overlay they were copied for, now unmounted), then sets its times.
    pub fn finish(self, upper: &Path) -> Result<(), CopyError> {
        let target = upper.join(&self.to);
        for entry in fs::read_dir(&self.from).at("read directory", &self.from)? {
            let entry = entry.at("read directory", &self.from)?;
            let to = target.join(entry.file_name());
            fs::rename(entry.path(), &to).at("move into place", &to)?;
        }
        fs::remove_dir(&self.from).at("remove", &self.from)?;
        set_times(&target, self.atime, self.mtime)
    }
}

/// Replays what each source would find at the destination: a directory source needs (and
/// leaves) a directory there; a file source written at a non-directory destination is only
/// allowed when it is the only source (BuildKit would let later sources overwrite it).
fn check_destination(
    sel: &Selection,
    root: &Path,
    dest: &str,
    dir_like: bool,
) -> Result<(), CopyError> {
    #[derive(PartialEq)]
    enum At {
        Nothing,
        Dir,
        NonDir,
    }
    let mut at = if dir_like {
        At::Dir
    } else {
        let host = resolve_in_root(root, dest)?;
        match fs::symlink_metadata(&host) {
            Ok(m) if m.is_dir() => At::Dir,
            Ok(_) => At::NonDir,
            Err(e) if is_missing(&e) => At::Nothing,
            Err(e) => return Err(e).at("stat", &host),
        }
    };
    for item in &sel.items {
        match item.kind {
            EntryKind::Dir | EntryKind::Archive => {
                if at == At::NonDir {
                    return Err(CopyError::NotADirectory {
                        path: dest.to_string(),
                    });
                }
                at = At::Dir;
            }
            EntryKind::File | EntryKind::Symlink | EntryKind::Special => {
                if at != At::Dir {
                    if sel.items.len() > 1 {
                        return Err(CopyError::DestNotDirectory {
                            instruction: sel.instruction,
                        });
                    }
                    at = At::NonDir;
                }
            }
        }
    }
    Ok(())
}

struct Writer<'a> {
    root: &'a Path,
    sel: &'a Selection,
    stats: CopyStats,
    /// Where a fresh destination directory's contents may be written (see [`apply_staged`]).
    staging: Option<&'a Path>,
    staged: Vec<Staged>,
}

impl Writer<'_> {
    fn item(
        &mut self,
        view: &View<'_>,
        item: &Item,
        dest: &str,
        dir_like: bool,
    ) -> Result<(), CopyError> {
        let ensure = if dir_like {
            dest.to_string()
        } else {
            paths::clean(&format!("{dest}/.."))
        };
        let dst = resolve_in_root(self.root, dest)?;
        // Looked at before `mkdir_all`, which may create it.
        let fresh = item.kind == EntryKind::Dir
            && self.staging.is_some()
            && matches!(fs::symlink_metadata(&dst), Err(e) if is_missing(&e));
        self.mkdir_all(&ensure)?;
        let src = view.host(&item.resolved);
        match item.kind {
            EntryKind::Archive => {
                let dir = self.mkdir_all(dest)?;
                let unpacked = archive::unpack(&src, &slash(&item.matched), &dir, self.sel.chown)?;
                self.stats.archives += 1;
                self.stats.bytes += unpacked.bytes;
            }
            EntryKind::Dir => {
                match fs::symlink_metadata(&dst) {
                    Ok(m) if m.is_dir() => {}
                    Ok(_) => {
                        return Err(CopyError::NotADirectory {
                            path: in_root(self.root, &dst),
                        });
                    }
                    Err(e) if is_missing(&e) => {
                        self.mkdir_all(dest)?;
                    }
                    Err(e) => return Err(e).at("stat", &dst),
                }
                match self.staging {
                    Some(staging) if fresh => {
                        let from = staging.join(format!("copy-{}", self.staged.len()));
                        fs::DirBuilder::new()
                            .mode(0o700)
                            .create(&from)
                            .at("mkdir", &from)?;
                        self.entries(&src, item, &from)?;
                        let to = dst
                            .strip_prefix(self.root)
                            .expect("resolve_in_root stays in the root")
                            .to_path_buf();
                        self.staged.push(Staged {
                            from,
                            to,
                            atime: item.stat.atime,
                            mtime: item.stat.mtime,
                        });
                    }
                    _ => {
                        self.entries(&src, item, &dst)?;
                        set_times(&dst, item.stat.atime, item.stat.mtime)?;
                    }
                }
            }
            EntryKind::File | EntryKind::Symlink | EntryKind::Special => {
                let into = fs::metadata(&dst).is_ok_and(|m| m.is_dir());
                let target = if into { dst.join(&item.name) } else { dst };
                // A dangling symlink at the destination leads to a path whose parents may be
                // missing (fsutil's `prepareTargetDir`).
                if let Some(parent) = target.parent() {
                    self.create_dirs(parent)?;
                }
                self.place(&src, &item.stat, &target)?;
            }
        }
        Ok(())
    }

    /// `MkdirAll` inside the root: missing directories are created 0755 and given the
    /// `--chown` owner. Returns the resolved host path.
    fn mkdir_all(&mut self, path: &str) -> Result<PathBuf, CopyError> {
        mkdir_in_root(self.root, path, self.sel.chown)
    }

    fn create_dirs(&mut self, host: &Path) -> Result<(), CopyError> {
        create_dirs(self.root, host, self.sel.chown)
    }

    /// Copies what a directory source selected into `dst`.
    ///
    /// Directories come first (parents before children), then the regular files (on several
    /// threads when there are many: each file is independent once its directory exists), then
    /// hard links to them, then the directories' times.
    fn entries(&mut self, src: &Path, item: &Item, dst: &Path) -> Result<(), CopyError> {
        let mut dir_times: Vec<(PathBuf, Stat)> = Vec::new();
        let mut files: Vec<(PathBuf, &Stat, PathBuf)> = Vec::new();
        let mut links = Vec::new();
        for entry in &item.entries {
            let target = dst.join(&entry.rel);
            let st = &entry.stat;
            if let Some(first) = entry.link_to {
                links.push((dst.join(&item.entries[first].rel), st, target));
                continue;
            }
            if matches!(st.kind(), EntryKind::File | EntryKind::Archive) {
                files.push((src.join(&entry.rel), st, target));
                continue;
            }
            if !st.is_dir() {
                self.place(&src.join(&entry.rel), st, &target)?;
                continue;
            }
            self.stats.dirs += 1;
            match fs::symlink_metadata(&target) {
                Ok(m) if m.is_dir() => {
                    if entry.implied {
                        rfs::chmod(&target, Mode::from_raw_mode(st.perm())).at("chmod", &target)?;
                        continue;
                    }
                }
                Ok(_) => {
                    return Err(CopyError::NotADirectory {
                        path: in_root(self.root, &target),
                    });
                }
                Err(e) if is_missing(&e) => {
                    fs::DirBuilder::new()
                        .mode(0o700)
                        .create(&target)
                        .at("mkdir", &target)?;
                }
                Err(e) => return Err(e).at("stat", &target),
            }
            chown_path(&target, self.sel.owner(st))?;
            rfs::chmod(&target, Mode::from_raw_mode(self.sel.mode(st))).at("chmod", &target)?;
            copy_xattrs(&src.join(&entry.rel), &target)?;
            dir_times.push((target, *st));
        }
        self.place_files(&files)?;
        for (existing, st, target) in links {
            self.make_room(&target)?;
            rfs::linkat(rfs::CWD, &existing, rfs::CWD, &target, AtFlags::empty())
                .at("link", &target)?;
            self.set_meta(&target, st)?;
            self.stats.hardlinks += 1;
        }
        // Children change their directory's times: set them last, deepest first.
        for (dir, st) in dir_times.iter().rev() {
            set_times(dir, st.atime, st.mtime)?;
        }
        Ok(())
    }

    /// Writes a non-directory at `target`, replacing a non-directory there.
    fn place(&mut self, src: &Path, st: &Stat, target: &Path) -> Result<(), CopyError> {
        match st.kind() {
            EntryKind::File | EntryKind::Archive => {
                self.stats.bytes += self.place_file(src, st, target)?;
                self.stats.files += 1;
                return Ok(());
            }
            EntryKind::Symlink => {
                self.make_room(target)?;
                let link = fs::read_link(src).at("readlink", src)?;
                rfs::symlinkat(&link, rfs::CWD, target).at("symlink", target)?;
                self.stats.symlinks += 1;
            }
            EntryKind::Special => {
                self.make_room(target)?;
                let file_type = rfs::FileType::from_raw_mode(st.mode);
                rfs::mknodat(
                    rfs::CWD,
                    target,
                    file_type,
                    Mode::from_raw_mode(0o600),
                    st.rdev,
                )
                .at("mknod", target)?;
                self.stats.specials += 1;
            }
            EntryKind::Dir => {
                return Err(CopyError::UnsupportedFileType {
                    path: src.to_path_buf(),
                });
            }
        }
        self.set_meta(target, st)?;
        copy_xattrs(src, target)
    }

    /// Regular files whose directories exist, as [`Self::place_file`] each: on up to four
    /// threads when there are many, each taking a contiguous run (mostly whole directories).
    fn place_files(&mut self, files: &[(PathBuf, &Stat, PathBuf)]) -> Result<(), CopyError> {
        const PER_THREAD: usize = 128;
        let threads = if files.len() > PER_THREAD {
            std::thread::available_parallelism()
                .map_or(1, |n| n.get())
                .min(4)
                .min(files.len().div_ceil(PER_THREAD))
        } else {
            1
        };
        let this = &*self;
        let run = |chunk: &[(PathBuf, &Stat, PathBuf)]| -> Result<u64, CopyError> {
            let mut bytes = 0;
            for (src, st, target) in chunk {
                bytes += this.place_file(src, st, target)?;
            }
            Ok(bytes)
        };
        let results: Vec<Result<u64, CopyError>> = if threads == 1 {
            vec![run(files)]
        } else {
            std::thread::scope(|s| {
                let workers: Vec<_> = files
                    .chunks(files.len().div_ceil(threads))
                    .map(|chunk| s.spawn(move || run(chunk)))
                    .collect();
                workers
                    .into_iter()
                    .map(|w| w.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                    .collect()
            })
        };
        for r in results {
            self.stats.bytes += r?;
        }
        self.stats.files += files.len() as u64;
        Ok(())
    }

    /// Writes one regular file; returns the bytes copied. It is created exclusively (what is
    /// in the way is removed first, as [`Self::make_room`] says), its content copied, then its
    /// owner, mode, times and xattrs set through the open descriptors: no path is looked up
    /// again (each lookup walks the whole overlay path).
    fn place_file(&self, src: &Path, st: &Stat, target: &Path) -> Result<u64, CopyError> {
        let mut input = File::options()
            .read(true)
            .custom_flags(OFlags::NOFOLLOW.bits() as i32)
            .open(src)
            .at("open", src)?;
        let create = || {
            File::options()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .custom_flags(OFlags::NOFOLLOW.bits() as i32)
                .open(target)
        };
        let mut output = match create() {
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                self.make_room(target)?;
                create()
            }
            r => r,
        }
        .at("create", target)?;
        let bytes = io::copy(&mut input, &mut output).at("copy to", target)?;
        // fsutil's `copyFileInfo` order: owner, then mode (chown clears setuid bits), times.
        let (uid, gid) = self.sel.owner(st);
        rfs::fchown(&output, Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid)))
            .at("chown", target)?;
        rfs::fchmod(&output, Mode::from_raw_mode(self.sel.mode(st))).at("chmod", target)?;
        rfs::futimens(&output, &timestamps(st.atime, st.mtime)).at("set times of", target)?;
        // Like BuildKit, attributes the destination refuses are skipped.
        for (name, value) in xattrs(src)? {
            let _ = rfs::fsetxattr(&output, &name, &value, rfs::XattrFlags::empty());
        }
        Ok(bytes)
    }

    /// fsutil's `ensureEmptyFileTarget`: nothing, or a non-directory that is removed.
    fn make_room(&self, target: &Path) -> Result<(), CopyError> {
        match fs::symlink_metadata(target) {
            Ok(m) if m.is_dir() => Err(CopyError::ReplaceDirectory {
                path: in_root(self.root, target),
            }),
            Ok(_) => fs::remove_file(target).at("remove", target),
            Err(e) if is_missing(&e) => Ok(()),
            Err(e) => Err(e).at("stat", target),
        }
    }

    /// fsutil's `copyFileInfo`: owner, then mode (chown clears setuid bits), then times.
    fn set_meta(&self, target: &Path, st: &Stat) -> Result<(), CopyError> {
        chown_path(target, self.sel.owner(st))?;
        if !st.is_symlink() {
            rfs::chmod(target, Mode::from_raw_mode(self.sel.mode(st))).at("chmod", target)?;
        }
        set_times(target, st.atime, st.mtime)
    }
}

/// Copies extended attributes after owner and mode are set (a chown drops
/// `security.capability`). Like BuildKit, attributes the destination refuses are skipped.
fn copy_xattrs(src: &Path, target: &Path) -> Result<(), CopyError> {
    for (name, value) in xattrs(src)? {
        let _ = rfs::lsetxattr(target, &name, &value, rfs::XattrFlags::empty());
    }
    Ok(())
}

/// `lchown`.
/// `mkdir -p` of `path` inside `root` (symlinks resolved inside it, as [`resolve_in_root`]
/// does): missing directories are created 0755 and owned by `owner` when given. Returns the
/// host path.
pub fn mkdir_in_root(
    root: &Path,
    path: &str,
    owner: Option<(u32, u32)>,
) -> Result<PathBuf, CopyError> {
    let host = resolve_in_root(root, path)?;
    create_dirs(root, &host, owner)?;
    Ok(host)
}

/// Creates the missing directories of `host`, a path inside `root` with no symlink among its
/// existing components (as [`resolve_in_root`] returns them).
fn create_dirs(root: &Path, host: &Path, owner: Option<(u32, u32)>) -> Result<(), CopyError> {
    let rel = host.strip_prefix(root).unwrap_or(Path::new(""));
    let mut cur = root.to_path_buf();
    for part in rel.components() {
        cur.push(part);
        match fs::symlink_metadata(&cur) {
            Ok(m) if m.is_dir() => continue,
            Ok(_) => {
                return Err(CopyError::NotADirectory {
                    path: in_root(root, &cur),
                });
            }
            Err(e) if is_missing(&e) => {}
            Err(e) => return Err(e).at("stat", &cur),
        }
        fs::DirBuilder::new()
            .mode(0o755)
            .create(&cur)
            .at("mkdir", &cur)?;
        rfs::chmod(&cur, Mode::from_raw_mode(0o755)).at("chmod", &cur)?;
        if let Some(ids) = owner {
            chown_path(&cur, ids)?;
        }
    }
    Ok(())
}

/// Sets the owner of `path` (not following a symlink).
pub(crate) fn chown_path(path: &Path, (uid, gid): (u32, u32)) -> Result<(), CopyError> {
    rfs::chownat(
        rfs::CWD,
        path,
        Some(Uid::from_raw(uid)),
        Some(Gid::from_raw(gid)),
        AtFlags::SYMLINK_NOFOLLOW,
    )
    .at("chown", path)
}

/// The timestamps for `utimensat`/`futimens`.
fn timestamps(atime: (i64, i64), mtime: (i64, i64)) -> Timestamps {
    let spec = |(sec, nsec): (i64, i64)| Timespec {
        tv_sec: sec,
        tv_nsec: nsec as _,
    };
    Timestamps {
        last_access: spec(atime),
        last_modification: spec(mtime),
    }
}

/// Sets access and modification times without following a symlink.
pub fn set_times(path: &Path, atime: (i64, i64), mtime: (i64, i64)) -> Result<(), CopyError> {
    rfs::utimensat(
        rfs::CWD,
        path,
        &timestamps(atime, mtime),
        AtFlags::SYMLINK_NOFOLLOW,
    )
    .at("set times of", path)
}
