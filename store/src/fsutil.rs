//! Small filesystem helpers: atomic writes and fsync of directories.

use std::fs::File;
use std::io::Write;
use std::path::Path;

use crate::error::{IoContext, Result};

/// Writes `bytes` to `path` atomically: a temp file beside it, fsync, rename, fsync the dir.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .expect("atomic writes target a file inside a directory");
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("file"),
        random_suffix()
    ));
    let mut f = File::create(&tmp).at("create", &tmp)?;
    f.write_all(bytes).at("write", &tmp)?;
    f.sync_all().at("fsync", &tmp)?;
    drop(f);
    if let Err(e) = std::fs::rename(&tmp, path) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e).at("rename", path);
    }
    sync_dir(dir)
}

/// fsyncs a directory so a rename inside it is durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).at("fsync", dir)
}

/// A random hex suffix for temp names.
pub fn random_suffix() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// Removes a path whatever it is (file, symlink, directory tree); absent is fine.
pub fn remove_all(path: &Path) -> Result<()> {
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).at("stat", path),
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(path).at("remove", path),
        Ok(_) => std::fs::remove_file(path).at("remove", path),
    }
}

/// Size in bytes of everything below `path` (files counted once per inode is not attempted).
pub fn disk_usage(path: &Path) -> u64 {
    fn walk(p: &Path, total: &mut u64) {
        let Ok(rd) = std::fs::read_dir(p) else { return };
        for e in rd.flatten() {
            let Ok(m) = e.metadata() else { continue };
            if m.is_dir() {
                walk(&e.path(), total);
            } else {
                *total += m.len();
            }
        }
    }
    let mut total = 0;
    walk(path, &mut total);
    total
}
