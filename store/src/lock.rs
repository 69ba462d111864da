//! Advisory file locks (`flock`) under `<root>/locks/`, shared between hoist processes.

use std::fs::File;
use std::os::fd::AsFd;
use std::path::Path;

use rustix::fs::{FlockOperation, flock};

use crate::error::{IoContext, Result};

/// A held lock; released when dropped (the file is closed).
#[derive(Debug)]
pub struct LockGuard {
    _file: File,
}

/// Takes an exclusive (`exclusive = true`) or shared lock on `path`, waiting for it.
pub fn lock(path: &Path, exclusive: bool) -> Result<LockGuard> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(path)
        .at("open lock", path)?;
    let op = if exclusive {
        FlockOperation::LockExclusive
    } else {
        FlockOperation::LockShared
    };
    loop {
        match flock(file.as_fd(), op) {
            Ok(()) => break,
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e).at("lock", path),
        }
    }
    Ok(LockGuard { _file: file })
}
