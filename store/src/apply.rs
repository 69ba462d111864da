//! Applying a layer tar into a snapshot directory.
//!
//! The snapshot holds only this layer's own changes, overlay-ready: a `.wh.NAME` entry becomes
//! an overlay whiteout (a 0/0 character device) and `.wh..wh..opq` sets
//! `trusted.overlay.opaque=y` on its directory, so stacking snapshots as overlay lower dirs gives
//! the image's rootfs. Parent directories that only exist in lower layers are copied up with their
//! metadata, and a hard link to a file of a lower layer copies that file up first, as an overlay
//! mount would.
//!
//! Safety: every entry is created with `*at()` calls relative to directory descriptors opened
//! one component at a time with `O_NOFOLLOW`, so nothing can resolve outside the root. Entries
//! with absolute paths, `..` escaping the root, a symlink (or non-directory) as parent, or a hard
//! link leaving the root are refused with an error naming the entry.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ffi::{CStr, CString};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags, Timespec, Timestamps, XattrFlags};
use rustix::io::Errno;

use crate::error::{IoContext, Result, StoreError};

/// The xattr overlayfs reads to know a directory hides its lower layers.
pub const OPAQUE_XATTR: &str = "trusted.overlay.opaque";
/// The same for an overlay mounted with `userxattr` (in a user namespace: rootless). A store
/// written without root uses it, as `trusted.*` needs root.
pub const USER_OPAQUE_XATTR: &str = "user.overlay.opaque";

/// True when this process cannot do what applying a layer as root does (chown to any id,
/// create device nodes, set `trusted.*` xattrs): the store is then written rootless, its files
/// owned by the caller, who is root inside the user namespace of `hoist run`.
pub fn rootless() -> bool {
    !rustix::process::geteuid().is_root()
}
const WHITEOUT_PREFIX: &[u8] = b".wh.";
const OPAQUE_MARKER: &[u8] = b".wh..wh..opq";
/// Directory descriptors kept open while applying (well below common fd limits).
const DIR_CACHE: usize = 256;
/// The set-group-ID bit: a directory with it gives new entries its group (and new
/// directories the bit).
const S_ISGID: u32 = 0o2000;

/// What an apply did.
#[derive(Clone, Debug, Default)]
pub struct ApplyStats {
    /// Tar entries processed.
    pub entries: u64,
    /// Bytes of file content written.
    pub bytes: u64,
    /// Entries (device nodes) and attributes (privileged xattrs) a rootless apply could not
    /// make.
    pub skipped: u64,
}

/// Applies the (uncompressed) layer tar `reader` into `root`, an empty or partly filled snapshot
/// directory. `lowers` are the parent snapshots' directories, topmost first. `layer` names the
/// layer in errors. The whole stream is consumed, trailing padding included, so a caller hashing
/// the stream sees every byte.
pub fn apply_layer<R: Read>(
    reader: R,
    root: &Path,
    lowers: &[PathBuf],
    layer: &str,
) -> Result<ApplyStats> {
    let root_fd = open_dir_path(root)?;
    // Files are created with their final mode; the umask must not trim it. Restored below.
    let old_umask = rustix::process::umask(Mode::empty());
    let result = apply_with_umask(reader, root, root_fd, lowers, layer);
    rustix::process::umask(old_umask);
    result
}

fn apply_with_umask<R: Read>(
    reader: R,
    root: &Path,
    root_fd: OwnedFd,
    lowers: &[PathBuf],
    layer: &str,
) -> Result<ApplyStats> {
    let root_fd = Rc::new(root_fd);
    let mut a = Applier {
        root_fd: root_fd.clone(),
        lowers,
        layer: layer.to_string(),
        cache: HashMap::from([(Vec::new(), root_fd)]),
        dir_times: BTreeMap::new(),
        stats: ApplyStats::default(),
        buf: vec![0; 256 * 1024],
        made: HashSet::new(),
        setgid: HashSet::new(),
        root_owner: rustix::process::geteuid().is_root()
            && rustix::process::getegid().as_raw() == 0,
        rootless: rootless(),
        restricted: BTreeMap::new(),
    };
    let root_mode = match lowers.first() {
        Some(top) => a.copy_dir_meta(top, &a.root_fd, "/")?,
        None => rfs::fstat(&*a.root_fd).at("stat", root)?.st_mode,
    };
    a.note_restricted(&[], root_mode);
    a.note_mode(&[], root_mode);
    let mut archive = tar::Archive::new(reader);
    let entries = archive.entries().map_err(|e| a.layer_err(e))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| a.layer_err(e))?;
        a.entry(&mut entry)?;
    }
    let mut rest = archive.into_inner();
    io::copy(&mut rest, &mut io::sink()).map_err(|e| a.layer_err(e))?;
    a.finish()?;
    if a.stats.skipped > 0 {
        tracing::warn!(
            "layer {layer}: {} device nodes or privileged attributes need root; skipped \
             (rootless store)",
            a.stats.skipped
        );
    }
    Ok(a.stats)
}

struct Applier<'a> {
    root_fd: Rc<OwnedFd>,
    lowers: &'a [PathBuf],
    layer: String,
    /// Open directories by components: the root (never evicted), and the directories entries
    /// went into lately with their ancestors.
    cache: HashMap<Vec<Vec<u8>>, Rc<OwnedFd>>,
    /// Directories whose times are set at the end (children change them while we work), in
    /// path order.
    dir_times: BTreeMap<Vec<Vec<u8>>, Timespec>,
    stats: ApplyStats,
    buf: Vec<u8>,
    /// Paths this apply created (the snapshot directory starts empty).
    made: HashSet<Vec<Vec<u8>>>,
    /// Directories with the set-group-ID bit: what is made in them takes their group.
    setgid: HashSet<Vec<Vec<u8>>>,
    /// True when new files are owned by 0:0 (we run as root).
    root_owner: bool,
    /// Without root: ownership is not applied (files stay the caller's), device nodes are
    /// skipped, opaque directories use [`USER_OPAQUE_XATTR`].
    rootless: bool,
    /// Rootless: directories kept u+rwx while applying, with their real modes (sorted, so a
    /// parent comes before its children).
    restricted: BTreeMap<Vec<Vec<u8>>, u32>,
}

/// Metadata of an entry, with PAX overrides applied.
struct Meta {
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: Timespec,
    xattrs: Vec<(CString, Vec<u8>)>,
}

/// Splits a tar path into clean components, refusing absolute paths and `..` escapes.
pub fn clean_path(raw: &[u8]) -> std::result::Result<Vec<Vec<u8>>, &'static str> {
    if raw.first() == Some(&b'/') {
        return Err("absolute paths are not allowed in a layer");
    }
    let mut out: Vec<Vec<u8>> = Vec::new();
    for c in raw.split(|&b| b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => {
                if out.pop().is_none() {
                    return Err("path escapes the layer root through `..`");
                }
            }
            c => {
                if c.contains(&0) {
                    return Err("path contains a NUL byte");
                }
                out.push(c.to_vec());
            }
        }
    }
    Ok(out)
}

fn cstr(c: &[u8]) -> CString {
    CString::new(c).expect("clean_path rejects NUL bytes")
}

fn open_dir_path(p: &Path) -> Result<OwnedFd> {
    rfs::open(
        p,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .at("open directory", p)
}

fn openat_dir(parent: BorrowedFd<'_>, name: &CStr) -> rustix::io::Result<OwnedFd> {
    rfs::openat(
        parent,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
}

fn is_whiteout(st: &rfs::Stat) -> bool {
    FileType::from_raw_mode(st.st_mode) == FileType::CharacterDevice && st.st_rdev == 0
}

fn join(comps: &[Vec<u8>]) -> String {
    String::from_utf8_lossy(&comps.join(&b'/')).into_owned()
}

impl Applier<'_> {
    fn layer_err(&self, e: io::Error) -> StoreError {
        StoreError::Layer {
            layer: self.layer.clone(),
            reason: format!("reading the tar stream: {e}"),
        }
    }

    fn entry_err(&self, entry: &[u8], reason: impl Into<String>) -> StoreError {
        StoreError::LayerEntry {
            layer: self.layer.clone(),
            entry: String::from_utf8_lossy(entry).into_owned(),
            reason: reason.into(),
        }
    }

    fn entry<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<()> {
        self.stats.entries += 1;
        let raw = entry.path_bytes().into_owned();
        let kind = entry.header().entry_type();
        if matches!(
            kind,
            tar::EntryType::XGlobalHeader | tar::EntryType::XHeader
        ) {
            return Ok(());
        }
        let comps = clean_path(&raw).map_err(|r| self.entry_err(&raw, r))?;
        let meta = self.meta(entry, &raw)?;
        let Some((name, parent)) = comps.split_last() else {
            // The root directory itself.
            if kind.is_dir() {
                let root_fd = self.root_fd.clone();
                self.set_meta(&root_fd, &meta, &raw, false, None)?;
                self.note_mode(&[], meta.mode);
                self.dir_times.insert(Vec::new(), meta.mtime);
            }
            return Ok(());
        };
        if let Some(target) = name.strip_prefix(WHITEOUT_PREFIX) {
            let pfd = self.open_parent(parent, &raw)?;
            if name == OPAQUE_MARKER {
                set_xattr(&pfd, self.opaque_xattr(), b"y")
                    .map_err(|e| self.entry_err(&raw, format!("marking directory opaque: {e}")))?;
            } else {
                if target.is_empty() || target == b"." || target == b".." {
                    return Err(self.entry_err(&raw, "whiteout names no file"));
                }
                let mut wcomps = parent.to_vec();
                wcomps.push(target.to_vec());
                let target = cstr(target);
                if !self.made.insert(wcomps.clone()) {
                    self.remove_existing(&pfd, &target, &wcomps, &raw)?;
                }
                rfs::mknodat(&pfd, &target, FileType::CharacterDevice, Mode::empty(), 0)
                    .map_err(|e| self.privilege_err(&raw, "creating a whiteout", e))?;
            }
            return Ok(());
        }
        let pfd = self.open_parent(parent, &raw)?;
        let cname = cstr(name);
        // The snapshot starts empty: only what this apply made can be in the way, and a failed
        // lookup is a full directory scan on filesystems without directory indexes.
        let existing = if self.made.contains(&comps) {
            rfs::statat(&pfd, &cname, AtFlags::SYMLINK_NOFOLLOW).ok()
        } else {
            None
        };
        self.made.insert(comps.clone());
        let ioerr = |this: &Self, what: &str, e: Errno| {
            this.entry_err(&raw, format!("{what}: {}", io::Error::from(e)))
        };
        match kind {
            tar::EntryType::Directory => {
                let mut meta = meta;
                self.note_restricted(&comps, meta.mode);
                meta.mode = self.applying_mode(meta.mode);
                let mut opaque = false;
                let fresh = match existing {
                    Some(st) if FileType::from_raw_mode(st.st_mode) == FileType::Directory => false,
                    Some(st) => {
                        opaque = is_whiteout(&st);
                        self.remove_existing(&pfd, &cname, &comps, &raw)?;
                        true
                    }
                    None => true,
                };
                // mkdir keeps the permission and sticky bits; set-ID bits need a chmod.
                let created = meta.mode & 0o1777;
                if fresh {
                    rfs::mkdirat(&pfd, &cname, Mode::from_raw_mode(created))
                        .map_err(|e| ioerr(self, "mkdir", e))?;
                }
                let created = (fresh && self.owner_is_root(parent)).then_some(created);
                // Opened only when something is left to set; its entries open it anyway.
                let done = created == Some(meta.mode) && meta.uid == 0 && meta.gid == 0;
                if opaque || !done || !meta.xattrs.is_empty() {
                    let fd = openat_dir(pfd.as_fd(), &cname).map_err(|e| ioerr(self, "open", e))?;
                    if opaque {
                        set_xattr(&fd, self.opaque_xattr(), b"y").map_err(|e| {
                            self.entry_err(&raw, format!("marking directory opaque: {e}"))
                        })?;
                    }
                    self.set_meta(&fd, &meta, &raw, false, created)?;
                    self.remember(&comps, &Rc::new(fd));
                }
                self.note_mode(&comps, meta.mode);
                self.dir_times.insert(comps.clone(), meta.mtime);
            }
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                if existing.is_some() {
                    self.remove_existing(&pfd, &cname, &comps, &raw)?;
                }
                let fd = rfs::openat(
                    &pfd,
                    &cname,
                    OFlags::WRONLY
                        | OFlags::CREATE
                        | OFlags::EXCL
                        | OFlags::NOFOLLOW
                        | OFlags::CLOEXEC,
                    Mode::from_raw_mode(meta.mode),
                )
                .map_err(|e| ioerr(self, "create", e))?;
                let mut f = File::from(fd);
                loop {
                    let n = match entry.read(&mut self.buf) {
                        Ok(0) => break,
                        Ok(n) => n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) => return Err(self.entry_err(&raw, format!("reading content: {e}"))),
                    };
                    f.write_all(&self.buf[..n])
                        .map_err(|e| self.entry_err(&raw, format!("writing content: {e}")))?;
                    self.stats.bytes += n as u64;
                }
                let fd = OwnedFd::from(f);
                let created = self.owner_is_root(parent).then_some(meta.mode);
                self.set_meta(&fd, &meta, &raw, true, created)?;
            }
            tar::EntryType::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| self.entry_err(&raw, "symlink without a target"))?
                    .into_owned();
                if existing.is_some() {
                    self.remove_existing(&pfd, &cname, &comps, &raw)?;
                }
                let target = CString::new(target)
                    .map_err(|_| self.entry_err(&raw, "symlink target contains a NUL byte"))?;
                rfs::symlinkat(&target, &pfd, &cname).map_err(|e| ioerr(self, "symlink", e))?;
                if !(self.owner_is_root(parent) && meta.uid == 0 && meta.gid == 0) {
                    self.lchown_at(&pfd, &cname, &meta, &raw)?;
                }
                let ts = Timestamps {
                    last_access: meta.mtime,
                    last_modification: meta.mtime,
                };
                rfs::utimensat(&pfd, &cname, &ts, AtFlags::SYMLINK_NOFOLLOW)
                    .map_err(|e| ioerr(self, "set times", e))?;
            }
            tar::EntryType::Link => {
                let link = entry
                    .link_name_bytes()
                    .ok_or_else(|| self.entry_err(&raw, "hard link without a target"))?
                    .into_owned();
                let tcomps = clean_path(&link).map_err(|r| {
                    self.entry_err(
                        &raw,
                        format!("hard link target `{}`: {r}", String::from_utf8_lossy(&link)),
                    )
                })?;
                let Some((tname, tparent)) = tcomps.split_last() else {
                    return Err(self.entry_err(&raw, "hard link to the root directory"));
                };
                if tcomps == comps {
                    return Ok(());
                }
                let tpfd = self.open_parent(tparent, &raw)?;
                let tcname = cstr(tname);
                let target_here = if self.made.contains(&tcomps) {
                    rfs::statat(&tpfd, &tcname, AtFlags::SYMLINK_NOFOLLOW)
                } else {
                    Err(Errno::NOENT)
                };
                match target_here {
                    Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Directory => {
                        return Err(self.entry_err(&raw, "hard link to a directory"));
                    }
                    Ok(st) if is_whiteout(&st) => {
                        return Err(self.entry_err(
                            &raw,
                            format!("hard link target `{}` was deleted", join(&tcomps)),
                        ));
                    }
                    Ok(_) => {}
                    Err(Errno::NOENT) => self.copy_up_file(&tcomps, &tpfd, &tcname, &raw)?,
                    Err(e) => return Err(ioerr(self, "stat hard link target", e)),
                }
                // The parent fd may have been swapped by open_parent of the target.
                let pfd = self.open_parent(parent, &raw)?;
                if let Some(st) = existing {
                    let tst = rfs::statat(&tpfd, &tcname, AtFlags::SYMLINK_NOFOLLOW)
                        .map_err(|e| ioerr(self, "stat", e))?;
                    if st.st_ino == tst.st_ino && st.st_dev == tst.st_dev {
                        return Ok(());
                    }
                    self.remove_existing(&pfd, &cname, &comps, &raw)?;
                }
                rfs::linkat(&tpfd, &tcname, &pfd, &cname, AtFlags::empty())
                    .map_err(|e| ioerr(self, "hard link", e))?;
            }
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                if existing.is_some() {
                    self.remove_existing(&pfd, &cname, &comps, &raw)?;
                }
                let h = entry.header();
                let (ft, dev) = match kind {
                    tar::EntryType::Fifo => (FileType::Fifo, 0),
                    _ => {
                        let maj = h.device_major().ok().flatten().unwrap_or(0);
                        let min = h.device_minor().ok().flatten().unwrap_or(0);
                        let ft = if kind == tar::EntryType::Char {
                            FileType::CharacterDevice
                        } else {
                            FileType::BlockDevice
                        };
                        (ft, rfs::makedev(maj, min))
                    }
                };
                if self.rootless && ft != FileType::Fifo {
                    self.stats.skipped += 1;
                    return Ok(());
                }
                rfs::mknodat(&pfd, &cname, ft, Mode::from_raw_mode(0o600), dev)
                    .map_err(|e| self.privilege_err(&raw, "creating a device node", e))?;
                self.lchown_at(&pfd, &cname, &meta, &raw)?;
                rfs::chmodat(
                    &pfd,
                    &cname,
                    Mode::from_raw_mode(meta.mode),
                    AtFlags::empty(),
                )
                .map_err(|e| ioerr(self, "chmod", e))?;
                let ts = Timestamps {
                    last_access: meta.mtime,
                    last_modification: meta.mtime,
                };
                rfs::utimensat(&pfd, &cname, &ts, AtFlags::SYMLINK_NOFOLLOW)
                    .map_err(|e| ioerr(self, "set times", e))?;
            }
            other => {
                return Err(self.entry_err(&raw, format!("unsupported tar entry type {:?}", other)));
            }
        }
        Ok(())
    }

    fn privilege_err(&self, raw: &[u8], what: &str, e: Errno) -> StoreError {
        if e == Errno::PERM || e == Errno::ACCESS {
            StoreError::Privilege {
                what: format!(
                    "layer {}: entry `{}`: {what}",
                    self.layer,
                    String::from_utf8_lossy(raw)
                ),
                source: e.into(),
            }
        } else {
            self.entry_err(raw, format!("{what}: {}", io::Error::from(e)))
        }
    }

    fn meta<R: Read>(&self, entry: &mut tar::Entry<'_, R>, raw: &[u8]) -> Result<Meta> {
        let h = entry.header();
        let mut m = Meta {
            mode: h.mode().unwrap_or(0o644) & 0o7777,
            uid: h.uid().unwrap_or(0) as u32,
            gid: h.gid().unwrap_or(0) as u32,
            mtime: Timespec {
                tv_sec: h.mtime().unwrap_or(0) as i64,
                tv_nsec: 0,
            },
            xattrs: Vec::new(),
        };
        let Some(exts) = entry
            .pax_extensions()
            .map_err(|e| self.entry_err(raw, format!("bad PAX header: {e}")))?
        else {
            return Ok(m);
        };
        for ext in exts {
            let ext = ext.map_err(|e| self.entry_err(raw, format!("bad PAX header: {e}")))?;
            let Ok(key) = ext.key() else { continue };
            let value = ext.value_bytes();
            let num = || {
                std::str::from_utf8(value)
                    .ok()
                    .and_then(|s| s.trim().parse::<u64>().ok())
            };
            match key {
                "uid" => m.uid = num().map_or(m.uid, |v| v as u32),
                "gid" => m.gid = num().map_or(m.gid, |v| v as u32),
                "mtime" => {
                    if let Some((sec, nsec)) =
                        std::str::from_utf8(value).ok().and_then(parse_pax_time)
                    {
                        m.mtime = Timespec {
                            tv_sec: sec,
                            tv_nsec: nsec,
                        };
                    }
                }
                k => {
                    if let Some(name) = k.strip_prefix("SCHILY.xattr.")
                        && !name.starts_with("trusted.overlay.")
                        && !name.starts_with("user.overlay.")
                        && let Ok(c) = CString::new(name)
                    {
                        m.xattrs.push((c, value.to_vec()));
                    }
                }
            }
        }
        Ok(m)
    }

    /// chown, chmod (after chown, which clears setuid bits), xattrs, and times for files.
    /// `created_mode` is the mode a file was just created with by us, owned by 0:0 (see
    /// `owner_is_root`), which spares the calls that would change nothing.
    fn set_meta(
        &mut self,
        fd: &OwnedFd,
        m: &Meta,
        raw: &[u8],
        times: bool,
        created_mode: Option<u32>,
    ) -> Result<()> {
        let chown = created_mode.is_none() || m.uid != 0 || m.gid != 0;
        if chown && !self.rootless {
            rfs::fchown(fd, Some(uid(m.uid)), Some(gid(m.gid)))
                .map_err(|e| self.privilege_err(raw, "chown", e))?;
        }
        if chown || created_mode != Some(m.mode) {
            rfs::fchmod(fd, Mode::from_raw_mode(m.mode))
                .map_err(|e| self.entry_err(raw, format!("chmod: {}", io::Error::from(e))))?;
        }
        for (name, value) in &m.xattrs {
            match rfs::fsetxattr(fd, name.as_c_str(), value, XattrFlags::empty()) {
                Err(Errno::PERM | Errno::ACCESS) if self.rootless => self.stats.skipped += 1,
                r => r.map_err(|e| {
                    self.privilege_err(raw, &format!("setting xattr {}", name.to_string_lossy()), e)
                })?,
            }
        }
        if times {
            let ts = Timestamps {
                last_access: m.mtime,
                last_modification: m.mtime,
            };
            rfs::futimens(fd, &ts)
                .map_err(|e| self.entry_err(raw, format!("set times: {}", io::Error::from(e))))?;
        }
        Ok(())
    }

    /// Opens the directory `comps` below the root, creating missing components (copied up from
    /// the lower layers when they exist there). Refuses symlinks and non-directories on the way.
    fn open_parent(&mut self, comps: &[Vec<u8>], raw: &[u8]) -> Result<Rc<OwnedFd>> {
        if let Some(fd) = self.cache.get(comps) {
            return Ok(fd.clone());
        }
        // Start from the deepest cached ancestor (the root is always there).
        let (start, mut cur) = (0..comps.len())
            .rev()
            .find_map(|depth| Some((depth, self.cache.get(&comps[..depth])?.clone())))
            .unwrap_or_else(|| (0, self.root_fd.clone()));
        for (i, c) in comps.iter().enumerate().skip(start) {
            let name = cstr(c);
            let next = match openat_dir(cur.as_fd(), &name) {
                Ok(fd) => fd,
                Err(Errno::NOENT) => {
                    self.create_parent(&cur, &comps[..=i], &name, raw)?;
                    openat_dir(cur.as_fd(), &name).map_err(|e| {
                        self.entry_err(
                            raw,
                            format!("open `{}`: {}", join(&comps[..=i]), io::Error::from(e)),
                        )
                    })?
                }
                Err(Errno::NOTDIR) | Err(Errno::LOOP) => {
                    let st = rfs::statat(&cur, &name, AtFlags::SYMLINK_NOFOLLOW).map_err(|e| {
                        self.entry_err(raw, format!("stat: {}", io::Error::from(e)))
                    })?;
                    let ft = FileType::from_raw_mode(st.st_mode);
                    if ft == FileType::Symlink {
                        return Err(self.entry_err(
                            raw,
                            format!(
                                "parent `{}` is a symlink; refusing to write through it",
                                join(&comps[..=i])
                            ),
                        ));
                    }
                    if is_whiteout(&st) {
                        // Deleted in this layer and now recreated: a new, opaque directory.
                        rfs::unlinkat(&cur, &name, AtFlags::empty()).map_err(|e| {
                            self.entry_err(raw, format!("remove whiteout: {}", io::Error::from(e)))
                        })?;
                        rfs::mkdirat(&cur, &name, Mode::from_raw_mode(0o755)).map_err(|e| {
                            self.entry_err(raw, format!("mkdir: {}", io::Error::from(e)))
                        })?;
                        self.note_inherited(&comps[..=i]);
                        let fd = openat_dir(cur.as_fd(), &name).map_err(|e| {
                            self.entry_err(raw, format!("open: {}", io::Error::from(e)))
                        })?;
                        set_xattr(&fd, self.opaque_xattr(), b"y").map_err(|e| {
                            self.entry_err(raw, format!("marking directory opaque: {e}"))
                        })?;
                        fd
                    } else {
                        return Err(self.entry_err(
                            raw,
                            format!("parent `{}` is not a directory", join(&comps[..=i])),
                        ));
                    }
                }
                Err(e) => {
                    return Err(self.entry_err(
                        raw,
                        format!("open `{}`: {}", join(&comps[..=i]), io::Error::from(e)),
                    ));
                }
            };
            cur = Rc::new(next);
            self.remember(&comps[..=i], &cur);
        }
        Ok(cur)
    }

    /// Caches the open directory `comps`. When the cache is full only its ancestors stay, so
    /// the directory entries go into next and the ones above it are never reopened.
    fn remember(&mut self, comps: &[Vec<u8>], fd: &Rc<OwnedFd>) {
        if self.cache.len() >= DIR_CACHE {
            self.cache.retain(|k, _| comps.starts_with(k));
        }
        self.cache.insert(comps.to_vec(), fd.clone());
    }

    /// True when what is made in directory `parent` is owned by 0:0 without a chown: we run as
    /// root and `parent` does not hand down its group.
    fn owner_is_root(&self, parent: &[Vec<u8>]) -> bool {
        self.root_owner && !self.setgid.contains(parent)
    }

    /// Gives `name` in `dir` (not following a symlink) the entry's owner; nothing rootless.
    fn lchown_at(&self, dir: &OwnedFd, name: &CStr, m: &Meta, raw: &[u8]) -> Result<()> {
        if self.rootless {
            return Ok(());
        }
        rfs::chownat(
            dir,
            name,
            Some(uid(m.uid)),
            Some(gid(m.gid)),
            AtFlags::SYMLINK_NOFOLLOW,
        )
        .map_err(|e| self.privilege_err(raw, "chown", e))
    }

    /// The opaque-directory xattr this store uses.
    fn opaque_xattr(&self) -> &'static str {
        if self.rootless {
            USER_OPAQUE_XATTR
        } else {
            OPAQUE_XATTR
        }
    }

    /// Records the mode directory `comps` was given.
    fn note_mode(&mut self, comps: &[Vec<u8>], mode: u32) {
        if mode & S_ISGID != 0 {
            self.setgid.insert(comps.to_vec());
        } else {
            self.setgid.remove(comps);
        }
    }

    /// Records that directory `comps` was made with no mode of its own: it takes its parent's
    /// set-group-ID bit.
    fn note_inherited(&mut self, comps: &[Vec<u8>]) {
        if let Some((_, parent)) = comps.split_last()
            && self.setgid.contains(parent)
        {
            self.setgid.insert(comps.to_vec());
        }
    }

    /// Creates directory `comps` (whose last component is `name`, inside `parent`): a copy-up of
    /// the lower layers' directory when there is one, else a plain 0755 root-owned directory.
    fn create_parent(
        &mut self,
        parent: &OwnedFd,
        comps: &[Vec<u8>],
        name: &CStr,
        raw: &[u8],
    ) -> Result<()> {
        self.made.insert(comps.to_vec());
        let lower = self.lower_lookup(comps);
        match &lower {
            Some((_, m)) if m.file_type().is_symlink() => {
                return Err(self.entry_err(
                    raw,
                    format!(
                        "parent `{}` is a symlink in a lower layer; refusing to write through it",
                        join(comps)
                    ),
                ));
            }
            _ => {}
        }
        rfs::mkdirat(parent, name, Mode::from_raw_mode(0o755)).map_err(|e| {
            self.entry_err(
                raw,
                format!("mkdir `{}`: {}", join(comps), io::Error::from(e)),
            )
        })?;
        if let Some((path, m)) = lower
            && m.is_dir()
        {
            let fd = openat_dir(parent.as_fd(), name)
                .map_err(|e| self.entry_err(raw, format!("open: {}", io::Error::from(e))))?;
            let mode = self.copy_dir_meta(&path, &fd, &join(comps))?;
            self.note_restricted(comps, mode);
            self.note_mode(comps, mode);
            let mt = Timespec {
                tv_sec: m.mtime(),
                tv_nsec: m.mtime_nsec(),
            };
            self.dir_times.insert(comps.to_vec(), mt);
        } else {
            self.note_inherited(comps);
        }
        Ok(())
    }

    /// Copies owner and mode of the lower directory `src` onto `fd`; returns the mode.
    fn copy_dir_meta(&self, src: &Path, fd: &OwnedFd, what: &str) -> Result<u32> {
        let m = std::fs::symlink_metadata(src).at("stat", src)?;
        if !self.rootless {
            rfs::fchown(fd, Some(uid(m.uid())), Some(gid(m.gid())))
                .map_err(|e| self.privilege_err(what.as_bytes(), "chown", e))?;
        }
        let mode = m.mode() & 0o7777;
        rfs::fchmod(fd, Mode::from_raw_mode(self.applying_mode(mode))).at("chmod", src)?;
        Ok(mode)
    }

    /// The mode a directory of mode `mode` has while applying: without root, an owner who
    /// cannot write into or search its own directory (`/root` is 0550 in some images) could
    /// not fill it, so it gets u+rwx until [`Self::finish`] sets `mode`
    /// ([`Self::note_restricted`]).
    fn applying_mode(&self, mode: u32) -> u32 {
        if self.rootless { mode | 0o700 } else { mode }
    }

    /// Records that directory `comps` gets `mode` at the end when [`Self::applying_mode`]
    /// differs from it; a later entry for the same directory replaces the record.
    fn note_restricted(&mut self, comps: &[Vec<u8>], mode: u32) {
        if self.applying_mode(mode) == mode {
            self.restricted.remove(comps);
        } else {
            self.restricted.insert(comps.to_vec(), mode);
        }
    }

    fn lower_lookup(&self, comps: &[Vec<u8>]) -> Option<(PathBuf, std::fs::Metadata)> {
        lookup_in_layers(self.lowers, comps)
    }

    /// Copies the regular file `tcomps` from the lower layers into this layer (for a hard link).
    fn copy_up_file(
        &mut self,
        tcomps: &[Vec<u8>],
        tpfd: &OwnedFd,
        tname: &CStr,
        raw: &[u8],
    ) -> Result<()> {
        self.made.insert(tcomps.to_vec());
        let Some((src, m)) = self.lower_lookup(tcomps) else {
            return Err(self.entry_err(
                raw,
                format!("hard link target `{}` does not exist", join(tcomps)),
            ));
        };
        if !m.is_file() {
            return Err(self.entry_err(
                raw,
                format!(
                    "hard link target `{}` in a lower layer is not a regular file",
                    join(tcomps)
                ),
            ));
        }
        let mut input = File::open(&src).at("open", &src)?;
        let fd = rfs::openat(
            tpfd,
            tname,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )
        .map_err(|e| self.entry_err(raw, format!("copy up: {}", io::Error::from(e))))?;
        let mut out = File::from(fd);
        io::copy(&mut input, &mut out).at("copy up", &src)?;
        let fd = OwnedFd::from(out);
        let xattrs = list_xattrs(&src);
        let meta = Meta {
            mode: m.mode() & 0o7777,
            uid: m.uid(),
            gid: m.gid(),
            mtime: Timespec {
                tv_sec: m.mtime(),
                tv_nsec: m.mtime_nsec(),
            },
            xattrs,
        };
        self.set_meta(&fd, &meta, raw, true, None)
    }

    /// Removes `name` in `parent` (path `comps`), a directory with its contents, and forgets
    /// what was known of the paths below.
    fn remove_existing(
        &mut self,
        parent: &OwnedFd,
        name: &CStr,
        comps: &[Vec<u8>],
        raw: &[u8],
    ) -> Result<()> {
        self.cache.retain(|k, _| !k.starts_with(comps));
        self.setgid.retain(|k| !k.starts_with(comps));
        self.dir_times.retain(|k, _| !k.starts_with(comps));
        match rfs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW) {
            Err(Errno::NOENT) => Ok(()),
            Err(e) => Err(self.entry_err(raw, format!("stat: {}", io::Error::from(e)))),
            Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Directory => {
                let fd = openat_dir(parent.as_fd(), name)
                    .map_err(|e| self.entry_err(raw, format!("open: {}", io::Error::from(e))))?;
                remove_dir_contents(&fd)
                    .map_err(|e| self.entry_err(raw, format!("remove: {e}")))?;
                rfs::unlinkat(parent, name, AtFlags::REMOVEDIR)
                    .map_err(|e| self.entry_err(raw, format!("remove: {}", io::Error::from(e))))
            }
            Ok(_) => rfs::unlinkat(parent, name, AtFlags::empty())
                .map_err(|e| self.entry_err(raw, format!("remove: {}", io::Error::from(e)))),
        }
    }

    /// Sets the directories' times, now that nothing changes in them any more: each through
    /// its parent, walking the sorted paths so that every directory on the way is opened once.
    /// (A directory a later entry replaced left the list in `remove_existing`; one that cannot
    /// be reached is skipped.)
    fn finish(&mut self) -> Result<()> {
        self.cache.clear();
        // `open[i]` is the directory `path[..=i]`.
        let mut path: Vec<&[u8]> = Vec::new();
        let mut open: Vec<OwnedFd> = Vec::new();
        let dir_times = std::mem::take(&mut self.dir_times);
        for (comps, mtime) in &dir_times {
            let ts = Timestamps {
                last_access: *mtime,
                last_modification: *mtime,
            };
            let Some((name, parent)) = comps.split_last() else {
                let _ = rfs::futimens(&*self.root_fd, &ts);
                continue;
            };
            let same = path
                .iter()
                .zip(parent)
                .take_while(|(a, b)| **a == b.as_slice())
                .count();
            path.truncate(same);
            open.truncate(same);
            for c in &parent[same..] {
                let dir = open.last().map_or(self.root_fd.as_fd(), |fd| fd.as_fd());
                match openat_dir(dir, &cstr(c)) {
                    Ok(fd) => {
                        open.push(fd);
                        path.push(c);
                    }
                    Err(_) => break,
                }
            }
            if open.len() == parent.len() {
                let dir = open.last().map_or(self.root_fd.as_fd(), |fd| fd.as_fd());
                let _ = rfs::utimensat(dir, cstr(name), &ts, AtFlags::SYMLINK_NOFOLLOW);
            }
        }
        drop(open);
        // Rootless: the real modes of directories kept writable, deepest first (a parent
        // without u+x would stop the walk to its children). chmod leaves mtimes alone.
        let restricted = std::mem::take(&mut self.restricted);
        'dirs: for (comps, mode) in restricted.iter().rev() {
            let mut fd: Option<OwnedFd> = None;
            for c in comps {
                let dir = fd.as_ref().map_or(self.root_fd.as_fd(), |f| f.as_fd());
                match openat_dir(dir, &cstr(c)) {
                    Ok(next) => fd = Some(next),
                    // Removed by a later entry.
                    Err(_) => continue 'dirs,
                }
            }
            let dir = fd.as_ref().map_or(self.root_fd.as_fd(), |f| f.as_fd());
            rfs::fchmod(dir, Mode::from_raw_mode(*mode)).at("chmod", join(comps))?;
        }
        Ok(())
    }
}

/// The contents of the regular file `rel` (`etc/passwd`) of the image made of snapshot
/// `layers` (topmost first), as overlayfs would show it; `None` when it is missing, not a
/// regular file or unreadable.
pub fn read_file_in_layers(layers: &[PathBuf], rel: &str) -> Option<String> {
    let comps = clean_path(rel.trim_start_matches('/').as_bytes()).ok()?;
    let (path, meta) = lookup_in_layers(layers, &comps)?;
    if meta.is_file() {
        std::fs::read_to_string(path).ok()
    } else {
        None
    }
}

/// Looks `comps` up in snapshot `layers` (topmost first) as overlayfs would: the topmost layer that has it
/// wins; a whiteout, a non-directory ancestor or an opaque ancestor hides the layers below.
pub fn lookup_in_layers(
    layers: &[PathBuf],
    comps: &[Vec<u8>],
) -> Option<(PathBuf, std::fs::Metadata)> {
    'layers: for lower in layers {
        let mut p = lower.clone();
        let mut stop_after = false;
        for (i, c) in comps.iter().enumerate() {
            p.push(std::ffi::OsStr::from_bytes(c));
            let Ok(m) = std::fs::symlink_metadata(&p) else {
                if stop_after {
                    return None;
                }
                continue 'layers;
            };
            let whiteout = m.file_type().is_char_device() && m.rdev() == 0;
            if whiteout {
                return None;
            }
            if i + 1 == comps.len() {
                return Some((p, m));
            }
            if !m.is_dir() {
                return None;
            }
            if is_opaque(&p) {
                stop_after = true;
            }
        }
        if stop_after {
            return None;
        }
    }
    None
}

fn uid(u: u32) -> rfs::Uid {
    rfs::Uid::from_raw(u)
}

fn gid(g: u32) -> rfs::Gid {
    rfs::Gid::from_raw(g)
}

fn set_xattr(fd: &OwnedFd, name: &str, value: &[u8]) -> io::Result<()> {
    rfs::fsetxattr(fd, name, value, XattrFlags::empty()).map_err(io::Error::from)
}

/// True when the directory at `p` carries the overlay opaque marker (the root store's, or a
/// rootless one's).
pub fn is_opaque(p: &Path) -> bool {
    let mut buf = [0u8; 4];
    [OPAQUE_XATTR, USER_OPAQUE_XATTR]
        .iter()
        .any(|x| matches!(rfs::lgetxattr(p, *x, &mut buf), Ok(n) if &buf[..n] == b"y"))
}

/// The xattrs of `p` (not following a final symlink), minus overlay's own.
pub fn list_xattrs(p: &Path) -> Vec<(CString, Vec<u8>)> {
    let mut names = vec![0u8; 4096];
    let Ok(n) = rfs::llistxattr(p, &mut names) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for name in names[..n].split(|&b| b == 0).filter(|s| !s.is_empty()) {
        if name.starts_with(b"trusted.overlay.") || name.starts_with(b"user.overlay.") {
            continue;
        }
        let Ok(cname) = CString::new(name) else {
            continue;
        };
        let mut value = vec![0u8; 65536];
        if let Ok(len) = rfs::lgetxattr(p, cname.as_c_str(), &mut value) {
            value.truncate(len);
            out.push((cname, value));
        }
    }
    out.sort();
    out
}

fn remove_dir_contents(dir: &OwnedFd) -> io::Result<()> {
    let mut names = Vec::new();
    let d = rfs::Dir::read_from(dir)?;
    for e in d {
        let e = e?;
        let n = e.file_name();
        if n.to_bytes() == b"." || n.to_bytes() == b".." {
            continue;
        }
        names.push((n.to_owned(), e.file_type() == FileType::Directory));
    }
    for (n, is_dir) in names {
        if is_dir {
            let sub = openat_dir(dir.as_fd(), &n)?;
            remove_dir_contents(&sub)?;
            rfs::unlinkat(dir, &n, AtFlags::REMOVEDIR)?;
        } else {
            rfs::unlinkat(dir, &n, AtFlags::empty())?;
        }
    }
    Ok(())
}

/// A PAX time (`mtime`, `atime` records): seconds with an optional fraction, as (seconds,
/// nanoseconds).
pub fn parse_pax_time(s: &str) -> Option<(i64, i64)> {
    let (sec, frac) = s.split_once('.').unwrap_or((s, ""));
    let sec: i64 = sec.parse().ok()?;
    let mut nsec: i64 = 0;
    let digits: String = frac.chars().take(9).collect();
    if !digits.is_empty() {
        nsec = digits.parse::<i64>().ok()? * 10i64.pow(9 - digits.len() as u32);
    }
    Some((sec, nsec))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_paths() {
        assert_eq!(
            clean_path(b"./a/./b/").unwrap(),
            vec![b"a".to_vec(), b"b".to_vec()]
        );
        assert_eq!(clean_path(b"a/../b").unwrap(), vec![b"b".to_vec()]);
        assert!(clean_path(b"/etc/passwd").is_err());
        assert!(clean_path(b"../x").is_err());
        assert!(clean_path(b"a/../../x").is_err());
        assert!(clean_path(b"./").unwrap().is_empty());
    }

    #[test]
    fn pax_time() {
        assert_eq!(parse_pax_time("12.5"), Some((12, 500_000_000)));
        assert_eq!(parse_pax_time("7"), Some((7, 0)));
    }

    /// A tar entry: path, type, mode, owner (uid = gid unless `gid` differs), mtime, content
    /// or link target.
    struct T<'a>(&'a str, tar::EntryType, u32, u32, u32, u64, &'a str);

    fn apply(entries: &[T]) -> tempfile::TempDir {
        let mut b = tar::Builder::new(Vec::new());
        for T(path, kind, mode, uid, gid, mtime, data) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(*kind);
            h.set_mode(*mode);
            h.set_uid(*uid as u64);
            h.set_gid(*gid as u64);
            h.set_mtime(*mtime);
            let body = if kind.is_symlink() || kind.is_hard_link() {
                h.set_link_name(data).expect("short link name");
                &b""[..]
            } else {
                data.as_bytes()
            };
            h.set_size(body.len() as u64);
            b.append_data(&mut h, path, body).expect("tar into memory");
        }
        let tar = b.into_inner().expect("tar into memory");
        let dir = tempfile::tempdir().expect("temp dir");
        apply_layer(&tar[..], dir.path(), &[], "test").expect("apply");
        dir
    }

    /// Root to chown; without it the test skips, except under `CI=true`, where it fails.
    fn is_root() -> bool {
        let root = rustix::process::geteuid().is_root();
        if !root {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "needs root to chown (CI=true: not skipping)"
            );
            eprintln!("skipped: needs root to chown");
        }
        root
    }

    #[test]
    fn what_is_made_in_a_setgid_directory_gets_the_owner_the_layer_says() {
        use tar::EntryType::{Directory as D, Regular as F, Symlink as L};
        if !is_root() {
            return;
        }
        let t = 1_700_000_000;
        let dir = apply(&[
            T("g/", D, 0o2775, 0, 50, t, ""),
            T("g/f", F, 0o644, 0, 0, t, "f\n"),
            T("g/s", F, 0o4755, 0, 0, t, "s\n"),
            T("g/l", L, 0o777, 0, 0, t, "f"),
            T("g/d/", D, 0o755, 0, 0, t, ""),
            T("g/implicit/x", F, 0o600, 0, 0, t, "x\n"),
            T("g/implicit/y/", D, 0o700, 0, 0, t, ""),
            T("tmp/", D, 0o1777, 0, 0, t, ""),
            T("home/", D, 0o750, 1000, 1000, t, ""),
        ]);
        let m = |p: &str| std::fs::symlink_metadata(dir.path().join(p)).expect(p);
        let check = |p: &str, mode: u32, uid: u32, gid: u32| {
            let md = m(p);
            assert_eq!(
                (md.mode() & 0o7777, md.uid(), md.gid()),
                (mode, uid, gid),
                "{p}: mode, uid, gid"
            );
        };
        check("g", 0o2775, 0, 50);
        check("g/f", 0o644, 0, 0);
        check("g/s", 0o4755, 0, 0);
        check("g/d", 0o755, 0, 0);
        assert_eq!((m("g/l").uid(), m("g/l").gid()), (0, 0), "g/l: uid, gid");
        // A parent the layer does not list is made as overlay would: it inherits the group.
        check("g/implicit", 0o2755, 0, 50);
        check("g/implicit/x", 0o600, 0, 0);
        check("g/implicit/y", 0o700, 0, 0);
        check("tmp", 0o1777, 0, 0);
        check("home", 0o750, 1000, 1000);
    }

    #[test]
    fn directory_times_hold_across_many_directories_and_replaced_ones() {
        use tar::EntryType::{Directory as D, Regular as F};
        let mut names = Vec::new();
        for i in 0..(DIR_CACHE + 40) {
            names.push((
                format!("top{}/", i % 7),
                format!("top{}/d{i}/", i % 7),
                i as u64,
            ));
        }
        let mut entries = vec![
            T("r/", D, 0o755, 0, 0, 5, ""),
            T("r/sub/", D, 0o755, 0, 0, 6, ""),
        ];
        for (top, d, i) in &names {
            entries.push(T(top, D, 0o755, 0, 0, 10, ""));
            entries.push(T(d, D, 0o755, 0, 0, 1000 + i, ""));
        }
        // Files go back into every directory after all were made, so the cache turns over.
        let files: Vec<String> = names.iter().map(|(_, d, _)| format!("{d}f")).collect();
        for f in &files {
            entries.push(T(f, F, 0o644, 0, 0, 20, "x"));
        }
        // `r` becomes a file: the directory's time must not land on it.
        entries.push(T("r", F, 0o644, 0, 0, 30, "r"));
        let dir = apply(&entries);
        let mtime = |p: &str| {
            std::fs::symlink_metadata(dir.path().join(p))
                .expect(p)
                .mtime()
        };
        for (top, d, i) in &names {
            assert_eq!(mtime(top), 10, "{top}");
            assert_eq!(mtime(d), 1000 + *i as i64, "{d}");
        }
        for f in &files {
            assert_eq!(mtime(f), 20, "{f}");
        }
        assert_eq!(mtime("r"), 30, "r, a directory replaced by a file");
        assert!(
            std::fs::symlink_metadata(dir.path().join("r"))
                .expect("r")
                .is_file()
        );
    }
}
