//! The content digest of a selection, for the step's cache key, and the memo that makes a
//! rebuild of an unchanged context cost `lstat` calls only.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use oci::{Digest, Sha256Writer};
use serde::{Deserialize, Serialize};

use super::error::{CopyError, IoContext, is_missing};
use super::paths::bytes;
use super::source::{Stat, View, xattrs};
use super::{EntryKind, Selection, Source};

const ENCODING: &[u8] = b"hoist.copy.selection/v1";
const MEMO_VERSION: u32 = 1;

/// Files changed this recently may still change within the same timestamp tick without their
/// times moving, so their hashes are not memoised (git's "racily clean" problem).
const RACY_WINDOW: Duration = Duration::from_secs(3);

/// File content hashes keyed by what `lstat` says about the file: (device, inode, size, mtime,
/// ctime). A write changes the ctime, so an unchanged key means unchanged content; files
/// changed within the last few seconds are not memoised, since a write within the same clock
/// tick could leave their times as they were.
///
/// Saved as JSON by [`DigestMemo::save`], atomically, when something was added. Shared by
/// threads: the lock is held for a lookup or an insert, never while a file is read.
#[derive(Debug)]
pub struct DigestMemo {
    hashes: Mutex<HashMap<MemoKey, String>>,
    /// Something was added since the load.
    dirty: AtomicBool,
    racy_window: Duration,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
struct MemoKey {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl MemoKey {
    fn of(st: &Stat) -> Self {
        MemoKey {
            dev: st.dev,
            ino: st.ino,
            size: st.size,
            mtime: st.mtime,
            ctime: st.ctime,
        }
    }
}

#[derive(Serialize, Deserialize)]
struct MemoFile {
    version: u32,
    entries: Vec<MemoEntry>,
}

#[derive(Serialize, Deserialize)]
struct MemoEntry {
    #[serde(flatten)]
    key: MemoKey,
    sha256: String,
}

impl Default for DigestMemo {
    fn default() -> Self {
        Self::new()
    }
}

impl DigestMemo {
    /// An empty memo.
    pub fn new() -> Self {
        DigestMemo {
            hashes: Mutex::new(HashMap::new()),
            dirty: AtomicBool::new(false),
            racy_window: RACY_WINDOW,
        }
    }

    /// Loads a memo saved by [`DigestMemo::save`]. A missing file, or one written by another
    /// version, gives an empty memo; a file that does not parse is an error (callers may well
    /// fall back to [`DigestMemo::new`]).
    pub fn load(path: &Path) -> Result<Self, CopyError> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if is_missing(&e) => return Ok(Self::new()),
            Err(e) => return Err(e).at("read", path),
        };
        #[derive(Deserialize)]
        struct Version {
            version: u32,
        }
        let version: Version = serde_json::from_slice(&bytes).map_err(|error| CopyError::Memo {
            path: path.to_path_buf(),
            error,
        })?;
        if version.version != MEMO_VERSION {
            return Ok(Self::new());
        }
        let file: MemoFile = serde_json::from_slice(&bytes).map_err(|error| CopyError::Memo {
            path: path.to_path_buf(),
            error,
        })?;
        let memo = Self::new();
        for e in file.entries {
            if oci::Digest::from_hex(&e.sha256).is_ok() {
                memo.map().insert(e.key, e.sha256);
            }
        }
        Ok(memo)
    }

    /// Writes the memo to `path` (a temp file beside it, then a rename) when something was
    /// added since it was loaded.
    pub fn save(&self, path: &Path) -> Result<(), CopyError> {
        if !self.dirty.load(Ordering::Relaxed) {
            return Ok(());
        }
        let mut entries: Vec<MemoEntry> = self
            .map()
            .iter()
            .map(|(key, sha256)| MemoEntry {
                key: *key,
                sha256: sha256.clone(),
            })
            .collect();
        entries.sort_by_key(|e| e.key);
        let file = MemoFile {
            version: MEMO_VERSION,
            entries,
        };
        let json = serde_json::to_vec(&file).map_err(|error| CopyError::Memo {
            path: path.to_path_buf(),
            error,
        })?;
        store::fsutil::write_atomic(path, &json)?;
        Ok(())
    }

    /// The number of memoised hashes.
    pub fn len(&self) -> usize {
        self.map().len()
    }

    /// True when nothing is memoised.
    pub fn is_empty(&self) -> bool {
        self.map().is_empty()
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<MemoKey, String>> {
        self.hashes.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The sha256 (hex) of the regular file at `host`, whose `lstat` gave `st`.
    fn content(&self, host: &Path, st: &Stat, now: Duration) -> Result<String, CopyError> {
        let key = MemoKey::of(st);
        if let Some(hex) = self.map().get(&key) {
            return Ok(hex.clone());
        }
        let mut file = File::options()
            .read(true)
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
            .open(host)
            .at("open", host)?;
        let mut w = Sha256Writer::new(io::sink());
        io::copy(&mut file, &mut w).at("read", host)?;
        let (digest, _, _) = w.finish();
        let after = Stat::of(&file.metadata().at("stat", host)?);
        let unchanged = MemoKey::of(&after) == key;
        let settled = |t: (i64, i64)| {
            let t = Duration::new(t.0.max(0) as u64, t.1.clamp(0, 999_999_999) as u32);
            t + self.racy_window <= now
        };
        if unchanged && settled(st.mtime) && settled(st.ctime) {
            self.map().insert(key, digest.hex().to_string());
            self.dirty.store(true, Ordering::Relaxed);
        }
        Ok(digest.hex().to_string())
    }
}

/// Length-prefixed fields into a hasher; each record's fields also into a fingerprint of its
/// own path.
struct Encoder {
    main: Sha256Writer<io::Sink>,
    /// The matched source the records below belong to.
    prefix: PathBuf,
    /// The record being written: its path and fields.
    current: Option<(String, Vec<u8>)>,
    files: BTreeMap<String, String>,
}

impl Encoder {
    fn field(&mut self, b: &[u8]) {
        // Writing into a hasher over `io::sink()` cannot fail.
        let _ = self.main.write_all(&(b.len() as u64).to_le_bytes());
        let _ = self.main.write_all(b);
        if let Some((_, rec)) = &mut self.current {
            rec.extend_from_slice(&(b.len() as u64).to_le_bytes());
            rec.extend_from_slice(b);
        }
    }

    /// Ends the current record's fingerprint.
    fn close(&mut self) {
        if let Some((path, rec)) = self.current.take() {
            self.files
                .insert(path, oci::Digest::of(&rec).hex().to_string());
        }
    }

    fn num(&mut self, n: u64) {
        self.field(&n.to_le_bytes());
    }

    fn record(
        &mut self,
        path: &Path,
        kind: u8,
        mode: u32,
        owner: (u32, u32),
        host: &Path,
    ) -> Result<(), CopyError> {
        self.close();
        let name = self.prefix.join(path).to_string_lossy().into_owned();
        self.current = Some((name, Vec::new()));
        self.field(bytes(path));
        self.field(&[kind]);
        self.num(u64::from(mode));
        self.num(u64::from(owner.0));
        self.num(u64::from(owner.1));
        let xattrs = xattrs(host)?;
        self.num(xattrs.len() as u64);
        for (name, value) in &xattrs {
            self.field(name.as_bytes());
            self.field(value);
        }
        Ok(())
    }
}

impl Selection {
    /// The content digest of the selection, for the step's cache key. Unchanged files are not
    /// read again when `memo` knows them: a rebuild costs an `llistxattr` per path and no
    /// reads.
    ///
    /// Encoding (version 1), hashed with sha256: the tag `hoist.copy.selection/v1`, then for
    /// each matched source in order a record for the source itself and one per path it copies
    /// (parents first, names sorted bytewise). Every field is a little-endian u64 length
    /// followed by its bytes (numbers as 8 little-endian bytes). A record is: the matched path
    /// (relative to the source root) or the path below the source; the kind (`f` file, `d`
    /// directory, `l` symlink, `h` hard link, `s` special, `a` archive); the mode as written
    /// (after `--chmod`); uid and gid as written (after `--chown`, or 0:0 for the build
    /// context); the extended attributes (count, then name and value of each, sorted); then
    /// the kind's payload: the sha256 of a file's or archive's content, a
    /// symlink's target, a hard link's first path, a special file's device number. Times never
    /// enter it, nor do paths that `.dockerignore` or `--exclude` leave out.
    pub fn digest(&self, src: &Source<'_>, memo: &DigestMemo) -> Result<Digest, CopyError> {
        Ok(self.digest_files(src, memo)?.0)
    }

    /// [`Selection::digest`], plus a fingerprint (hex) of each path's record, keyed by the
    /// path as matched (`src/a.txt`), for telling which file changed between two builds.
    pub fn digest_files(
        &self,
        src: &Source<'_>,
        memo: &DigestMemo,
    ) -> Result<(Digest, BTreeMap<String, String>), CopyError> {
        let view = View::new(src);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let mut enc = Encoder {
            main: Sha256Writer::new(io::sink()),
            prefix: PathBuf::new(),
            current: None,
            files: BTreeMap::new(),
        };
        enc.field(ENCODING);
        for item in &self.items {
            enc.prefix = PathBuf::new();
            let host = view.host(&item.resolved);
            let (mode, owner) = (self.mode(&item.stat), self.owner(&item.stat));
            match item.kind {
                EntryKind::File => {
                    enc.record(&item.matched, b'f', mode, owner, &host)?;
                    enc.field(memo.content(&host, &item.stat, now)?.as_bytes());
                }
                EntryKind::Archive => {
                    enc.record(&item.matched, b'a', 0, (0, 0), &host)?;
                    enc.field(memo.content(&host, &item.stat, now)?.as_bytes());
                }
                EntryKind::Symlink => {
                    enc.record(&item.matched, b'l', 0, owner, &host)?;
                    enc.field(bytes(&read_link(&host)?));
                }
                EntryKind::Special => {
                    enc.record(&item.matched, b's', mode, owner, &host)?;
                    enc.num(item.stat.rdev);
                }
                EntryKind::Dir => enc.record(&item.matched, b'd', mode, owner, &host)?,
            }
            enc.prefix = item.matched.clone();
            for entry in &item.entries {
                let host = host.join(&entry.rel);
                let st = &entry.stat;
                let (mode, owner) = (self.mode(st), self.owner(st));
                if let Some(first) = entry.link_to {
                    enc.record(&entry.rel, b'h', mode, owner, &host)?;
                    enc.field(bytes(&item.entries[first].rel));
                    continue;
                }
                match st.kind() {
                    EntryKind::Dir => enc.record(&entry.rel, b'd', mode, owner, &host)?,
                    EntryKind::File | EntryKind::Archive => {
                        enc.record(&entry.rel, b'f', mode, owner, &host)?;
                        enc.field(memo.content(&host, st, now)?.as_bytes());
                    }
                    EntryKind::Symlink => {
                        enc.record(&entry.rel, b'l', 0, owner, &host)?;
                        enc.field(bytes(&read_link(&host)?));
                    }
                    EntryKind::Special => {
                        enc.record(&entry.rel, b's', mode, owner, &host)?;
                        enc.num(st.rdev);
                    }
                }
            }
        }
        enc.close();
        Ok((enc.main.finish().0, enc.files))
    }
}

fn read_link(host: &Path) -> Result<PathBuf, CopyError> {
    std::fs::read_link(host).at("readlink", host)
}

#[cfg(test)]
impl DigestMemo {
    /// Memoises even files changed just now (test trees are always fresh).
    pub(super) fn without_racy_window(mut self) -> Self {
        self.racy_window = Duration::ZERO;
        self
    }

    /// Replaces every memoised hash with another, so a test can tell the memo was used.
    pub(super) fn poison(&mut self) {
        for hex in self.map().values_mut() {
            *hex = "0".repeat(64);
        }
    }
}
