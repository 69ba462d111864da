//! The blob store. Verified ingest is the only way in: bytes go to a temp file under `ingest/`
//! while being hashed; on commit the size and digest are checked against what the caller
//! expected, the file is fsynced and renamed into `blobs/sha256/<hex>`, and the directory is
//! fsynced. "Already present" is success. A writer that is dropped or killed before commit
//! leaves nothing visible.

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use oci::{Digest, Sha256Writer};

use crate::error::{IoContext, Result, StoreError};
use crate::fsutil::{random_suffix, sync_dir};

/// What the bytes of an ingest must turn out to be.
#[derive(Clone, Debug, Default)]
pub struct Expected {
    /// The digest they must hash to, when known.
    pub digest: Option<Digest>,
    /// The size they must have, when known.
    pub size: Option<u64>,
}

impl Expected {
    /// Expect a known digest and size.
    pub fn exact(digest: Digest, size: u64) -> Self {
        Self {
            digest: Some(digest),
            size: Some(size),
        }
    }
    /// Expect nothing: the digest is whatever the bytes hash to.
    pub fn any() -> Self {
        Self::default()
    }
}

/// Paths of the blob store inside a store root.
#[derive(Clone, Debug)]
pub struct Blobs {
    blobs: PathBuf,
    ingest: PathBuf,
}

impl Blobs {
    pub(crate) fn new(root: &Path) -> Self {
        Self {
            blobs: root.join("blobs/sha256"),
            ingest: root.join("ingest"),
        }
    }

    /// Where the blob with `digest` lives (whether or not it is there).
    pub fn path(&self, digest: &Digest) -> PathBuf {
        self.blobs.join(digest.hex())
    }

    /// True when the blob is present.
    pub fn has(&self, digest: &Digest) -> bool {
        self.path(digest).is_file()
    }

    /// Size of a present blob.
    pub fn size(&self, digest: &Digest) -> Result<u64> {
        let p = self.path(digest);
        match std::fs::metadata(&p) {
            Ok(m) => Ok(m.len()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Err(StoreError::BlobNotFound(digest.clone()))
            }
            Err(e) => Err(e).at("stat", &p),
        }
    }

    /// Opens a blob for reading.
    pub fn open(&self, digest: &Digest) -> Result<File> {
        let p = self.path(digest);
        match File::open(&p) {
            Ok(f) => Ok(f),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Err(StoreError::BlobNotFound(digest.clone()))
            }
            Err(e) => Err(e).at("open", &p),
        }
    }

    /// Reads a whole (small) blob and checks that it still hashes to its name.
    pub fn read(&self, digest: &Digest) -> Result<Vec<u8>> {
        let mut bytes = Vec::new();
        self.open(digest)?
            .read_to_end(&mut bytes)
            .at("read", self.path(digest))?;
        let actual = Digest::of(&bytes);
        if &actual != digest {
            return Err(StoreError::DigestMismatch {
                what: format!("blob `{}`", self.path(digest).display()),
                expected: digest.clone(),
                actual,
            });
        }
        Ok(bytes)
    }

    /// Starts an ingest. `what` names the content in errors ("layer 2 of archive.tar", ...).
    pub fn ingest(&self, expected: Expected, what: impl Into<String>) -> Result<Ingest> {
        let tmp = self.ingest.join(format!("ingest-{}", random_suffix()));
        let file = File::create(&tmp).at("create", &tmp)?;
        Ok(Ingest {
            writer: Some(Sha256Writer::new(BufWriter::with_capacity(1 << 20, file))),
            tmp,
            blobs: self.blobs.clone(),
            expected,
            what: what.into(),
        })
    }

    /// Stores `bytes` (hashed here, never trusting a caller's digest).
    pub fn put(&self, bytes: &[u8]) -> Result<Digest> {
        let (digest, ingest) = self.ingest_bytes(bytes)?;
        if let Some(w) = ingest {
            w.commit()?;
        }
        Ok(digest)
    }

    /// Like [`Blobs::put`] without the fsync: the blob is written to a temp file and returned
    /// as a [`Deferred`] to publish after a `syncfs` (`None` when the store has it already).
    pub fn put_deferred(&self, bytes: &[u8]) -> Result<(Digest, Option<Deferred>)> {
        let (digest, ingest) = self.ingest_bytes(bytes)?;
        let deferred = match ingest {
            Some(w) => w.commit_deferred()?.2,
            None => None,
        };
        Ok((digest, deferred))
    }

    /// The digest of `bytes`, and an ingest holding them when the store does not have them.
    fn ingest_bytes(&self, bytes: &[u8]) -> Result<(Digest, Option<Ingest>)> {
        let digest = Digest::of(bytes);
        if self.has(&digest) {
            return Ok((digest, None));
        }
        let mut w = self.ingest(
            Expected::exact(digest.clone(), bytes.len() as u64),
            "document",
        )?;
        w.write_all(bytes).at("write", &w.tmp)?;
        Ok((digest, Some(w)))
    }

    /// Copies everything `r` yields into the store and returns its digest and size.
    pub fn put_reader(
        &self,
        r: &mut dyn Read,
        expected: Expected,
        what: &str,
    ) -> Result<(Digest, u64)> {
        let mut w = self.ingest(expected, what)?;
        io::copy(r, &mut w).map_err(|e| StoreError::Io {
            op: "copy into",
            path: w.tmp.clone(),
            source: e,
        })?;
        w.commit()
    }

    /// Lists the digests of every blob present.
    pub fn list(&self) -> Result<Vec<Digest>> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(&self.blobs).at("read dir", &self.blobs)? {
            let e = e.at("read dir", &self.blobs)?;
            if let Some(d) = e
                .file_name()
                .to_str()
                .and_then(|n| Digest::from_hex(n).ok())
            {
                out.push(d);
            }
        }
        Ok(out)
    }

    /// The directory in-flight ingests write to.
    pub fn ingest_dir(&self) -> &Path {
        &self.ingest
    }

    /// Syncs the blobs directory: makes the renames of published [`Deferred`] blobs durable.
    pub fn sync(&self) -> Result<()> {
        sync_dir(&self.blobs)
    }
}

/// An in-flight write into the blob store. Write to it, then [`Ingest::commit`]. Dropping it
/// without committing removes the temp file.
pub struct Ingest {
    writer: Option<Sha256Writer<BufWriter<File>>>,
    tmp: PathBuf,
    blobs: PathBuf,
    expected: Expected,
    what: String,
}

impl Ingest {
    /// The temp file the bytes go to until commit (readable while being written, once
    /// flushed; the open file stays valid after commit renames it).
    pub fn tmp_path(&self) -> &Path {
        &self.tmp
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.writer.as_ref().map_or(0, |w| w.len())
    }

    /// Verifies size and digest, then makes the blob visible. Returns its digest and size.
    pub fn commit(mut self) -> Result<(Digest, u64)> {
        let (digest, size, file, dest) = self.finish()?;
        if dest.is_file() {
            return Ok((digest, size));
        }
        file.sync_all().at("fsync", &self.tmp)?;
        drop(file);
        std::fs::rename(&self.tmp, &dest).at("rename", &dest)?;
        sync_dir(&self.blobs)?;
        Ok((digest, size))
    }

    /// Like [`Ingest::commit`] without its fsync and rename: for a caller that syncs the whole
    /// filesystem once (a build, before it records anything) and then publishes every blob it
    /// wrote. The blob stays invisible until [`Deferred::publish`], so a crash in between leaves
    /// only a temp file, never a blob whose content is not on disk. `None` when the store has
    /// the blob already.
    pub fn commit_deferred(mut self) -> Result<(Digest, u64, Option<Deferred>)> {
        let (digest, size, file, dest) = self.finish()?;
        drop(file);
        if dest.is_file() {
            return Ok((digest, size, None));
        }
        // The temp file now belongs to the Deferred (this Ingest's drop removes nothing).
        let tmp = std::mem::take(&mut self.tmp);
        Ok((digest, size, Some(Deferred { tmp, dest })))
    }

    /// Flushes the bytes and checks them against what was expected: (digest, size, the temp
    /// file, the blob's final path).
    fn finish(&mut self) -> Result<(Digest, u64, File, PathBuf)> {
        let writer = self.writer.take().expect("commit runs once");
        let (digest, size, buf) = writer.finish();
        let file = buf
            .into_inner()
            .map_err(|e| e.into_error())
            .at("write", &self.tmp)?;
        if let Some(expected) = self.expected.size
            && expected != size
        {
            return Err(StoreError::SizeMismatch {
                what: self.what.clone(),
                expected,
                actual: size,
            });
        }
        if let Some(expected) = &self.expected.digest
            && expected != &digest
        {
            return Err(StoreError::DigestMismatch {
                what: self.what.clone(),
                expected: expected.clone(),
                actual: digest,
            });
        }
        let dest = self.blobs.join(digest.hex());
        Ok((digest, size, file, dest))
    }
}

/// A verified blob waiting to be published (see [`Ingest::commit_deferred`]). Dropped
/// unpublished, its temp file is removed.
#[must_use = "a deferred blob is removed unless published"]
#[derive(Debug)]
pub struct Deferred {
    tmp: PathBuf,
    dest: PathBuf,
}

impl Deferred {
    /// Makes the blob visible by renaming it into place. Its data must be on disk already: the
    /// caller has run `syncfs` on the store's filesystem since the blob was written. The blobs
    /// directory itself is synced by [`Blobs::sync`], once after a batch.
    pub fn publish(mut self) -> Result<()> {
        let tmp = std::mem::take(&mut self.tmp);
        if self.dest.is_file() {
            let _ = std::fs::remove_file(&tmp);
            return Ok(());
        }
        std::fs::rename(&tmp, &self.dest).at("rename", &self.dest)
    }
}

impl Drop for Deferred {
    fn drop(&mut self) {
        if !self.tmp.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

impl Write for Ingest {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.writer.as_mut().expect("not committed").write(buf)
    }
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.writer.as_mut().expect("not committed").write_all(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.writer.as_mut().expect("not committed").flush()
    }
}

impl Drop for Ingest {
    fn drop(&mut self) {
        // After a successful commit the temp file was renamed away (or handed to a Deferred)
        // and this is a no-op.
        if !self.tmp.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}
