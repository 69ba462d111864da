//! Snapshots: each layer unpacked once into `snapshots/<chain-id hex>/fs`, holding only that
//! layer's own changes with overlay whiteouts, so an image's rootfs is its snapshots stacked as
//! overlay lower dirs. A snapshot is built in a temp directory and renamed into place, so a
//! visible snapshot is always complete; concurrent builders of the same snapshot both succeed.

use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use oci::{Digest, Sha256Writer};

use crate::content::Blobs;
use crate::error::{IoContext, Result, StoreError};
use crate::fsutil::{random_suffix, remove_all};
use crate::image::Image;

/// The snapshot directory of a store.
#[derive(Clone, Debug)]
pub struct Snapshots {
    dir: PathBuf,
}

impl Snapshots {
    pub(crate) fn new(root: &Path) -> Self {
        Self {
            dir: root.join("snapshots"),
        }
    }

    /// The filesystem directory of snapshot `chain` (whether or not it exists).
    pub fn fs_dir(&self, chain: &Digest) -> PathBuf {
        self.dir.join(chain.hex()).join("fs")
    }

    /// True when snapshot `chain` exists.
    pub fn exists(&self, chain: &Digest) -> bool {
        self.fs_dir(chain).is_dir()
    }

    /// The chain IDs of every snapshot present.
    pub fn list(&self) -> Result<Vec<Digest>> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(&self.dir).at("read dir", &self.dir)? {
            let e = e.at("read dir", &self.dir)?;
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

    /// Temp directories left by interrupted snapshot builds.
    pub fn leftovers(&self) -> Result<Vec<PathBuf>> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(&self.dir).at("read dir", &self.dir)? {
            let e = e.at("read dir", &self.dir)?;
            if e.file_name().to_string_lossy().starts_with("tmp-") {
                out.push(e.path());
            }
        }
        Ok(out)
    }

    /// Removes snapshot `chain`.
    pub fn remove(&self, chain: &Digest) -> Result<()> {
        remove_all(&self.dir.join(chain.hex()))
    }

    /// Creates snapshot `chain` by applying the uncompressed layer tar `reader` on top of
    /// `lowers` (parent snapshot dirs, topmost first). When `diff_id` is given, the stream must
    /// hash to it or nothing is kept.
    pub fn create(
        &self,
        chain: &Digest,
        lowers: &[PathBuf],
        reader: impl Read,
        diff_id: Option<&Digest>,
        layer: &str,
    ) -> Result<PathBuf> {
        let final_dir = self.dir.join(chain.hex());
        let tmp = self.dir.join(format!("tmp-{}", random_suffix()));
        let fs = tmp.join("fs");
        std::fs::create_dir_all(&fs).at("create directory", &fs)?;
        let result = (|| {
            let mut hashing = HashingReader::new(reader);
            crate::apply::apply_layer(&mut hashing, &fs, lowers, layer)?;
            let actual = hashing.digest();
            if let Some(want) = diff_id
                && want != &actual
            {
                return Err(StoreError::DigestMismatch {
                    what: format!("layer {layer} (uncompressed content)"),
                    expected: want.clone(),
                    actual,
                });
            }
            Ok(())
        })();
        if let Err(e) = result {
            let _ = remove_all(&tmp);
            return Err(e);
        }
        publish(&tmp, &final_dir)
    }

    /// Makes the directory `fs` (on the store's filesystem, e.g. an overlay upper dir) snapshot
    /// `chain` by renaming it into place. When the snapshot exists already (a concurrent build
    /// made it), `fs` is removed instead. Returns the snapshot's directory.
    pub fn adopt(&self, chain: &Digest, fs: &Path) -> Result<PathBuf> {
        let final_dir = self.dir.join(chain.hex());
        if final_dir.join("fs").is_dir() {
            remove_all(fs)?;
            return Ok(final_dir.join("fs"));
        }
        let staged = self.stage(fs)?;
        self.adopt_staged(chain, &staged)
    }

    /// Moves the directory `fs` (on the store's filesystem) into a provisional snapshot whose
    /// chain ID is not known yet, and returns its new path (`tmp-*/fs`, usable as an overlay
    /// lower). [`Snapshots::adopt_staged`] names it; until then it is a leftover to
    /// [`Snapshots::leftovers`].
    pub fn stage(&self, fs: &Path) -> Result<PathBuf> {
        let tmp = self.dir.join(format!("tmp-{}", random_suffix()));
        std::fs::create_dir_all(&tmp).at("create directory", &tmp)?;
        let staged = tmp.join("fs");
        if let Err(e) = std::fs::rename(fs, &staged) {
            let _ = std::fs::remove_dir(&tmp);
            return Err(e).at("rename", fs);
        }
        Ok(staged)
    }

    /// Removes the provisional snapshot `staged` (a path [`Snapshots::stage`] returned) that
    /// will not be adopted.
    pub fn discard_staged(&self, staged: &Path) -> Result<()> {
        remove_all(self.staged_dir(staged)?)
    }

    /// The `tmp-*` directory of a provisional snapshot of this store.
    fn staged_dir<'a>(&self, staged: &'a Path) -> Result<&'a Path> {
        staged
            .parent()
            .filter(|t| t.parent() == Some(self.dir.as_path()))
            .ok_or_else(|| StoreError::Io {
                op: "adopt",
                path: staged.to_path_buf(),
                source: std::io::Error::other("not a provisional snapshot of this store"),
            })
    }

    /// Makes the provisional snapshot `staged` (a path [`Snapshots::stage`] returned) snapshot
    /// `chain`; when that exists already, `staged` is removed instead. Returns the snapshot's
    /// directory.
    pub fn adopt_staged(&self, chain: &Digest, staged: &Path) -> Result<PathBuf> {
        publish(self.staged_dir(staged)?, &self.dir.join(chain.hex()))
    }

    /// Unpacks every layer of `image` that has no snapshot yet. Returns the snapshot dirs,
    /// bottom layer first.
    pub fn prepare(&self, blobs: &Blobs, image: &Image) -> Result<Vec<PathBuf>> {
        let chains = image.chain_ids();
        let mut dirs: Vec<PathBuf> = Vec::with_capacity(chains.len());
        for (i, chain) in chains.iter().enumerate() {
            let dir = self.fs_dir(chain);
            if !dir.is_dir() {
                let layer = &image.manifest.layers[i];
                let file = blobs.open(&layer.digest)?;
                let reader = crate::compress::decompress(BufReader::with_capacity(1 << 20, file))
                    .at("read", blobs.path(&layer.digest))?;
                let lowers: Vec<PathBuf> = dirs.iter().rev().cloned().collect();
                self.create(
                    chain,
                    &lowers,
                    reader,
                    Some(&image.diff_ids()[i]),
                    &layer.digest.to_string(),
                )?;
            }
            dirs.push(dir);
        }
        Ok(dirs)
    }
}

/// Renames the complete snapshot `tmp` (holding `fs/`) to `final_dir`. When another process
/// made the same snapshot first, theirs stays and `tmp` is removed: both succeed.
fn publish(tmp: &Path, final_dir: &Path) -> Result<PathBuf> {
    match std::fs::rename(tmp, final_dir) {
        Ok(()) => {}
        Err(_) if final_dir.join("fs").is_dir() => {
            let _ = remove_all(tmp);
        }
        Err(e) => {
            let _ = remove_all(tmp);
            return Err(e).at("rename", final_dir);
        }
    }
    Ok(final_dir.join("fs"))
}

/// A reader that hashes what passes through it.
pub struct HashingReader<R> {
    inner: R,
    hasher: Sha256Writer<std::io::Sink>,
}

impl<R> HashingReader<R> {
    /// Wraps `inner`.
    pub fn new(inner: R) -> Self {
        Self {
            inner,
            hasher: Sha256Writer::new(std::io::sink()),
        }
    }

    /// The digest of everything read so far.
    pub fn digest(self) -> Digest {
        self.hasher.finish().0
    }

    /// Bytes read so far.
    pub fn len(&self) -> u64 {
        self.hasher.len()
    }

    /// True when nothing was read.
    pub fn is_empty(&self) -> bool {
        self.hasher.is_empty()
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        std::io::Write::write_all(&mut self.hasher, &buf[..n])?;
        Ok(n)
    }
}
