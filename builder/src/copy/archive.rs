//! ADD of a local tar archive: detection by content and extraction into the destination, with
//! the semantics of BuildKit's `applyRootArchive`.
//!
//! * A regular file is an archive when, after decompression (gzip, bzip2, xz and zstd are told
//!   by their magic bytes), a first tar header can be read from it. Anything else is copied.
//! * Entry names lose their leading `/` and are cleaned; a name that still climbs out with
//!   `..` fails the ADD. Symlinks met while resolving a name (in the archive or already in the
//!   destination) are followed inside the destination: an absolute target is relative to it,
//!   and a relative one that would leave it is an error, as is a hard link to a missing path.
//! * Owners come from the archive (or `--chown`), modes and times too; implied parent
//!   directories are created 0755 and owned by root; an existing path is replaced unless both
//!   it and the entry are directories. Whiteout files (`.wh.*`) are plain files here.

use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, Read};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use rustix::fs::{self as rfs, AtFlags, Mode};

use super::apply::{chown_path, set_times};
use super::error::{CopyError, IoContext, is_missing};
use super::paths::{self, Above, ResolveError};

/// Wraps `r` in the decompressor its first bytes call for.
fn decompress<'a, R: BufRead + 'a>(mut r: R) -> io::Result<Box<dyn Read + 'a>> {
    let head = r.fill_buf()?;
    if head.starts_with(b"BZh") {
        Ok(Box::new(bzip2::bufread::MultiBzDecoder::new(r)))
    } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00]) {
        Ok(Box::new(liblzma::bufread::XzDecoder::new_multi_decoder(r)))
    } else {
        store::compress::decompress(r)
    }
}

/// Whether the regular file at `host` is a (possibly compressed) tar archive.
pub(crate) fn is_archive(host: &Path) -> Result<bool, CopyError> {
    let file = File::options()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(host)
        .at("open", host)?;
    let Ok(reader) = decompress(BufReader::new(file)) else {
        return Ok(false);
    };
    let mut archive = tar::Archive::new(reader);
    let Ok(mut entries) = archive.entries() else {
        return Ok(false);
    };
    Ok(matches!(entries.next(), Some(Ok(_))))
}

/// Seconds and nanoseconds since the epoch.
type Time = (i64, i64);

/// Counts of what an unpack wrote.
#[derive(Default)]
pub(crate) struct Unpacked {
    pub entries: u64,
    pub bytes: u64,
}

/// Extracts the archive at `host` into the directory `dest` (a host path, resolved and
/// created). `name` is the archive's path for messages.
pub(crate) fn unpack(
    host: &Path,
    name: &str,
    dest: &Path,
    chown: Option<(u32, u32)>,
) -> Result<Unpacked, CopyError> {
    let file = File::open(host).at("open", host)?;
    let reader = decompress(BufReader::new(file)).at("read", host)?;
    let mut archive = tar::Archive::new(reader);
    let mut stats = Unpacked::default();
    let mut dir_times: Vec<(PathBuf, Time, Time)> = Vec::new();
    let bad = |entry: &[u8], reason: &'static str| CopyError::ArchiveEntry {
        archive: name.to_string(),
        entry: String::from_utf8_lossy(entry).into_owned(),
        reason,
    };
    for entry in archive.entries().at("read", host)? {
        let mut entry = entry.at("read", host)?;
        let kind = entry.header().entry_type();
        if kind.is_pax_global_extensions() || kind.is_pax_local_extensions() {
            continue;
        }
        let raw = entry.path_bytes().into_owned();
        let rel = clean_name(&raw).map_err(|reason| bad(&raw, reason))?;
        if rel.as_os_str().is_empty() {
            continue;
        }
        let header = entry.header();
        let mode = header.mode().at("read", host)? & 0o7777;
        let owner = match chown {
            Some(ids) => ids,
            None => (
                header.uid().at("read", host)? as u32,
                header.gid().at("read", host)? as u32,
            ),
        };
        let dev = rfs::makedev(
            header.device_major().ok().flatten().unwrap_or(0),
            header.device_minor().ok().flatten().unwrap_or(0),
        );
        let (atime, mtime) = times(&mut entry).at("read", host)?;
        let op = resolve(dest, &rel, kind.is_dir(), &|reason| bad(&raw, reason))?;
        if op.as_os_str().is_empty() {
            continue;
        }
        let target = dest.join(&op);
        make_parents(dest, &op)?;
        match fs::symlink_metadata(&target) {
            Ok(m) if m.is_dir() && kind.is_dir() => {}
            Ok(_) => store::fsutil::remove_all(&target)?,
            Err(e) if is_missing(&e) => {}
            Err(e) => return Err(e).at("stat", &target),
        }
        stats.entries += 1;
        match kind {
            tar::EntryType::Directory => {
                if let Err(e) = fs::DirBuilder::new().mode(mode & 0o777).create(&target) {
                    if e.kind() != io::ErrorKind::AlreadyExists {
                        return Err(e).at("mkdir", &target);
                    }
                }
                chown_path(&target, owner)?;
                rfs::chmod(&target, Mode::from_raw_mode(mode)).at("chmod", &target)?;
                dir_times.push((target, atime, mtime));
            }
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                let mut out = File::options()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
                    .open(&target)
                    .at("create", &target)?;
                stats.bytes += io::copy(&mut entry, &mut out).at("write", &target)?;
                chown_path(&target, owner)?;
                rfs::fchmod(&out, Mode::from_raw_mode(mode)).at("chmod", &target)?;
                set_times(&target, atime, mtime)?;
            }
            tar::EntryType::Symlink => {
                let link = entry
                    .link_name_bytes()
                    .ok_or_else(|| bad(&raw, "symlink without a target"))?;
                rfs::symlinkat(&*link, rfs::CWD, &target).at("symlink", &target)?;
                chown_path(&target, owner)?;
                set_times(&target, atime, mtime)?;
            }
            tar::EntryType::Link => {
                let link = entry
                    .link_name_bytes()
                    .ok_or_else(|| bad(&raw, "hard link without a target"))?;
                let link_rel = clean_name(&link).map_err(|reason| bad(&raw, reason))?;
                if link_rel.as_os_str().is_empty() {
                    return Err(bad(&raw, "hard link to the extraction root"));
                }
                let link_op = resolve(dest, &link_rel, false, &|reason| bad(&raw, reason))?;
                let source = dest.join(&link_op);
                rfs::linkat(rfs::CWD, &source, rfs::CWD, &target, AtFlags::empty())
                    .at("link", &target)?;
                chown_path(&target, owner)?;
                if !fs::symlink_metadata(&target)
                    .at("stat", &target)?
                    .file_type()
                    .is_symlink()
                {
                    rfs::chmod(&target, Mode::from_raw_mode(mode)).at("chmod", &target)?;
                    set_times(&target, atime, mtime)?;
                }
            }
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                // BuildKit's newest extractor refuses these; the docker extractor it used
                // before created them, and so do we.
                let file_type = match kind {
                    tar::EntryType::Char => rfs::FileType::CharacterDevice,
                    tar::EntryType::Block => rfs::FileType::BlockDevice,
                    _ => rfs::FileType::Fifo,
                };
                rfs::mknodat(
                    rfs::CWD,
                    &target,
                    file_type,
                    Mode::from_raw_mode(0o600),
                    dev,
                )
                .at("mknod", &target)?;
                chown_path(&target, owner)?;
                rfs::chmod(&target, Mode::from_raw_mode(mode)).at("chmod", &target)?;
                set_times(&target, atime, mtime)?;
            }
            _ => return Err(bad(&raw, "unsupported entry type")),
        }
    }
    for (dir, atime, mtime) in dir_times.iter().rev() {
        set_times(dir, *atime, *mtime)?;
    }
    Ok(stats)
}

/// An entry name without its leading `/`, cleaned; `..` escaping the root is refused.
fn clean_name(raw: &[u8]) -> Result<PathBuf, &'static str> {
    let start = raw.iter().position(|&b| b != b'/').unwrap_or(raw.len());
    let parts = store::apply::clean_path(&raw[start..])?;
    let mut out = PathBuf::new();
    for part in parts {
        out.push(<std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(&part));
    }
    Ok(out)
}

/// Resolves an entry name inside `dest`, following symlinks (the last only with
/// `follow_leaf`); a symlink leading out of `dest` is an error made by `bad`.
fn resolve(
    dest: &Path,
    rel: &Path,
    follow_leaf: bool,
    bad: &dyn Fn(&'static str) -> CopyError,
) -> Result<PathBuf, CopyError> {
    match paths::resolve(rel, follow_leaf, Above::Reject, |p| {
        paths::lookup_on_disk(dest, p)
    }) {
        Ok(r) => Ok(r.rel),
        Err(ResolveError::Escape) => {
            Err(bad("a symlink on its path points outside the destination"))
        }
        Err(ResolveError::Loop) => Err(bad("too many symlinks on its path")),
        Err(ResolveError::Lookup(e)) => Err(e),
    }
}

/// Creates the missing parent directories of `op` inside `dest`: 0755, owned by root.
fn make_parents(dest: &Path, op: &Path) -> Result<(), CopyError> {
    let Some(parent) = op.parent() else {
        return Ok(());
    };
    let mut cur = dest.to_path_buf();
    for part in parent.components() {
        cur.push(part);
        match fs::DirBuilder::new().mode(0o755).create(&cur) {
            Ok(()) => {
                chown_path(&cur, (0, 0))?;
                rfs::chmod(&cur, Mode::from_raw_mode(0o755)).at("chmod", &cur)?;
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                if !fs::metadata(&cur).at("stat", &cur)?.is_dir() {
                    return Err(CopyError::NotADirectory {
                        path: paths::in_root(dest, &cur),
                    });
                }
            }
            Err(e) => return Err(e).at("mkdir", &cur),
        }
    }
    Ok(())
}

/// Access and modification times of an entry: PAX `atime`/`mtime` when present, else the
/// header's; the access time is never earlier than the modification time (as BuildKit sets
/// them).
fn times<R: Read>(entry: &mut tar::Entry<'_, R>) -> io::Result<(Time, Time)> {
    let mut mtime = (entry.header().mtime()? as i64, 0);
    let mut atime = entry
        .header()
        .as_gnu()
        .and_then(|g| g.atime().ok())
        .map(|t| (t as i64, 0));
    if let Some(pax) = entry.pax_extensions()? {
        for ext in pax.flatten() {
            let parsed = ext.value().ok().and_then(store::apply::parse_pax_time);
            match (ext.key(), parsed) {
                (Ok("mtime"), Some(t)) => mtime = t,
                (Ok("atime"), Some(t)) => atime = Some(t),
                _ => {}
            }
        }
    }
    let atime = atime.filter(|a| *a > mtime).unwrap_or(mtime);
    Ok((atime, mtime))
}
