//! Build cache keys and records.
//!
//! A step's key is the sha256 of a versioned encoding: the schema tag, then each component as a
//! little-endian u64 length and its bytes. Components: the parent key (the previous step's, or
//! for FROM nothing), a tag naming the kind of component, and its value. What goes in:
//!
//! * FROM: `scratch`, the base image's manifest digest, or the key of the stage it builds on;
//!   and the platform.
//! * every instruction: its history text after expansion (which holds a RUN's build args as
//!   `|N k=v`), plus for ARG the values the declared names got, for ONBUILD the trigger, for
//!   RUN the network mode, the security mode, its `--mount` specs (with the digest of what a
//!   bind shows; never a secret) and a heredoc script; for COPY/ADD the digest of the selected
//!   files ([`crate::copy::Selection::digest`]: contents, modes, owners; never times), heredoc
//!   bodies and downloaded files included.
//!
//! A record `<store>/cache/<key hex>.image` holds the manifest digest of the image the build
//! had after that step (GC keeps those images).

use std::path::{Path, PathBuf};

use oci::Digest;

/// The version of the key schema; bump it whenever what goes into a key changes.
const SCHEMA: &[u8] = b"hoist-build-cache-v1";

/// A running cache key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Key(Digest);

impl Key {
    /// The key of a FROM: `base` names what the stage starts from (`scratch`, a manifest
    /// digest, or `stage:<key>`).
    pub fn from(base: &str, platform: &str) -> Self {
        Self::hash(
            None,
            &[("from", base.as_bytes()), ("platform", platform.as_bytes())],
        )
    }

    /// The key of the step after `self` with these components.
    pub fn then(&self, parts: &[(&str, &[u8])]) -> Self {
        Self::hash(Some(self), parts)
    }

    fn hash(parent: Option<&Key>, parts: &[(&str, &[u8])]) -> Self {
        let mut enc = Vec::with_capacity(256);
        let mut field = |b: &[u8]| {
            enc.extend_from_slice(&(b.len() as u64).to_le_bytes());
            enc.extend_from_slice(b);
        };
        field(SCHEMA);
        field(parent.map(|p| p.0.hex()).unwrap_or_default().as_bytes());
        for (tag, value) in parts {
            field(tag.as_bytes());
            field(value);
        }
        Self(Digest::of(&enc))
    }

    /// The digest.
    pub fn digest(&self) -> &Digest {
        &self.0
    }
}

/// The cache records of a store. Records made by a build are kept in memory and written by
/// [`Records::flush`] after one `syncfs` of the store: the snapshot files a build writes
/// (through `volatile` overlays, which do not sync on unmount) are then on disk before any
/// record points at them. So are the build's layer blobs and the config and manifest of each
/// step's image, written without an fsync each and published (renamed into place) by the flush.
#[derive(Debug)]
pub struct Records {
    dir: PathBuf,
    pending: std::sync::Mutex<Vec<(Key, Digest)>>,
    /// Blobs written by this build (layers, and the config and manifest of each step's
    /// image), published by [`Records::flush`].
    blobs: std::sync::Mutex<Vec<store::Deferred>>,
    /// An early `syncfs` started by [`Records::start_writeback`], joined by [`Records::flush`].
    writeback: std::sync::Mutex<Option<std::thread::JoinHandle<()>>>,
    /// The store root, opened before any write of the build: the `syncfs` of
    /// [`Records::flush`] through it reports every writeback error since (an early `syncfs`
    /// through another descriptor does not consume them).
    root: Option<std::fs::File>,
}

impl Records {
    /// The records under `<store root>/cache`.
    pub fn new(store_root: &Path) -> Self {
        Self {
            dir: store_root.join("cache"),
            pending: std::sync::Mutex::new(Vec::new()),
            blobs: std::sync::Mutex::new(Vec::new()),
            writeback: std::sync::Mutex::new(None),
            root: std::fs::File::open(store_root).ok(),
        }
    }

    /// Starts writing what the build wrote so far to disk (a `syncfs` of the store's filesystem
    /// in a thread of its own), unless one is still under way: the disk works while the next
    /// steps run, and the `syncfs` of [`Records::flush`] finds little left to do. Only an
    /// accelerator: errors are left to that final `syncfs`.
    pub fn start_writeback(&self, store_root: &Path) {
        let mut slot = self.writeback.lock().unwrap_or_else(|p| p.into_inner());
        if slot.as_ref().is_some_and(|t| !t.is_finished()) {
            return;
        }
        let Ok(root) = std::fs::File::open(store_root) else {
            return;
        };
        *slot = std::thread::Builder::new()
            .name("writeback".into())
            .spawn(move || {
                let _ = rustix::fs::syncfs(&root);
            })
            .ok();
    }

    fn path(&self, key: &Key) -> PathBuf {
        self.dir.join(format!("{}.image", key.0.hex()))
    }

    /// The manifest digest recorded for `key` by an earlier build, if any (an unreadable
    /// record is a miss). This build's own records are not written yet: the builder keeps
    /// their images in memory until the flush.
    pub fn get(&self, key: &Key) -> Option<Digest> {
        let text = std::fs::read_to_string(self.path(key)).ok()?;
        Digest::parse(text.trim()).ok()
    }

    /// Records `manifest` for `key` (in memory until [`Records::flush`]).
    pub fn put(&self, key: &Key, manifest: &Digest) {
        self.lock().push((key.clone(), manifest.clone()));
    }

    /// Holds a blob of this build until [`Records::flush`] publishes it: one `syncfs` then
    /// makes every blob durable, instead of an fsync each while the build waits.
    pub fn defer(&self, blob: store::Deferred) {
        self.blobs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(blob);
    }

    /// Syncs the store's filesystem once, publishes the deferred layer blobs (and syncs the
    /// blobs directory), then writes the records made so far (temp file + rename each): a
    /// record never names anything that is not on disk.
    pub fn flush(&self, store: &store::Store) -> store::Result<()> {
        let writeback = self
            .writeback
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(writeback) = writeback {
            let _ = writeback.join();
        }
        let pending = std::mem::take(&mut *self.lock());
        let blobs = std::mem::take(&mut *self.blobs.lock().unwrap_or_else(|p| p.into_inner()));
        if pending.is_empty() && blobs.is_empty() {
            return Ok(());
        }
        let store_root = store.root();
        let opened;
        let root = match &self.root {
            Some(root) => root,
            None => {
                opened =
                    std::fs::File::open(store_root).map_err(|source| store::StoreError::Io {
                        op: "open",
                        path: store_root.to_path_buf(),
                        source,
                    })?;
                &opened
            }
        };
        rustix::fs::syncfs(root).map_err(|e| store::StoreError::Io {
            op: "syncfs",
            path: store_root.to_path_buf(),
            source: e.into(),
        })?;
        if !blobs.is_empty() {
            for blob in blobs {
                blob.publish()?;
            }
            store.blobs().sync()?;
        }
        for (key, manifest) in pending {
            store::fsutil::write_atomic(&self.path(&key), manifest.to_string().as_bytes())?;
        }
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(Key, Digest)>> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The file memo of COPY/ADD source digests.
    pub fn memo_path(&self) -> PathBuf {
        self.dir.join("filememo.json")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_stable_and_chain() {
        let a = Key::from("scratch", "linux/amd64");
        // Golden: the schema is an API; a change here must bump SCHEMA.
        assert_eq!(
            a.digest().to_string(),
            "sha256:8de853ad14857b18e97d31a4b856bc4b63fbee57f6a8d1dfa9ce1f740c81c321"
        );
        let b = a.then(&[("instruction", b"ENV A=1")]);
        let c = a.then(&[("instruction", b"ENV A=2")]);
        assert_ne!(b, c);
        assert_ne!(
            a.then(&[("instruction", b"ab"), ("x", b"c")]),
            a.then(&[("instruction", b"a"), ("x", b"bc")]),
            "length prefixes keep fields apart"
        );
        assert_ne!(
            b,
            Key::from("scratch", "linux/arm64").then(&[("instruction", b"ENV A=1")])
        );
    }
}
