//! hoist's local image store.
//!
//! The store root is itself an OCI image layout (`oci-layout`, `index.json`, `blobs/sha256/`),
//! so skopeo and umoci read it directly. Beside the layout live `ingest/` (in-flight writes),
//! `snapshots/` (unpacked layers, overlay-ready, named by chain ID), `containers/`, `cache/`
//! and `locks/`. Blobs enter only through verified ingest ([`content::Ingest`]); tags change by
//! atomically rewriting `index.json` under a lock; several hoist processes may share one store.
//! Long operations hold a shared lease ([`Store::lease`]) that garbage collection waits for.
#![deny(missing_docs)]

pub mod apply;
pub mod archive;
pub mod compress;
pub mod containers;
pub mod content;
pub mod error;
pub mod flatten;
pub mod fsutil;
pub mod gc;
pub mod image;
pub mod index;
pub mod lock;
pub mod meta;
pub mod snapshot;
pub mod tarwrite;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use oci::{Digest, ImageConfig, MediaType, Reference};

pub use content::{Blobs, Deferred, Expected, Ingest};
pub use error::{Result, StoreError};
pub use image::{Image, Manifest};
pub use index::{Descriptor, Index, IndexFile};
pub use lock::LockGuard;
pub use snapshot::Snapshots;

use crate::error::IoContext;

/// An image written by [`Store::commit_image_deferred`], not loadable until its blobs are
/// published.
#[derive(Debug)]
pub struct DeferredImage {
    /// The manifest's descriptor.
    pub manifest: Descriptor,
    /// The image ID: its config's digest.
    pub id: Digest,
    /// The config and manifest blobs the store did not have, to publish after a `syncfs`.
    pub blobs: Vec<Deferred>,
}

/// A store rooted at a directory.
#[derive(Clone, Debug)]
pub struct Store {
    root: PathBuf,
    blobs: Blobs,
    index: Index,
    snapshots: Snapshots,
}

impl Store {
    /// The default root: `/var/lib/hoist` for root, else `$XDG_DATA_HOME/hoist` (or
    /// `~/.local/share/hoist`).
    pub fn default_root() -> PathBuf {
        if rustix::process::geteuid().is_root() {
            return PathBuf::from("/var/lib/hoist");
        }
        if let Some(x) = std::env::var_os("XDG_DATA_HOME").filter(|x| !x.is_empty()) {
            return PathBuf::from(x).join("hoist");
        }
        let home = std::env::var_os("HOME").unwrap_or_else(|| "/tmp".into());
        PathBuf::from(home).join(".local/share/hoist")
    }

    /// Opens (creating when needed) the store at `root`.
    pub fn open(root: impl AsRef<Path>) -> Result<Self> {
        let root = root.as_ref().to_path_buf();
        // A rootless store holds setuid files owned by its user: only that user may reach them
        // (podman's storage is 0700 too).
        if apply::rootless() && !root.exists() {
            std::fs::create_dir_all(&root).at("create directory", &root)?;
            std::fs::set_permissions(&root, std::os::unix::fs::PermissionsExt::from_mode(0o700))
                .at("chmod", &root)?;
        }
        for sub in [
            "blobs/sha256",
            "ingest",
            "snapshots",
            "containers",
            "cache",
            "locks",
        ] {
            let p = root.join(sub);
            std::fs::create_dir_all(&p).at("create directory", &p)?;
        }
        let layout = root.join("oci-layout");
        if !layout.exists() {
            fsutil::write_atomic(&layout, br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        }
        let index = Index::new(&root);
        if !root.join("index.json").exists() {
            index.update(|_| Ok(()))?;
        }
        Ok(Self {
            blobs: Blobs::new(&root),
            snapshots: Snapshots::new(&root),
            index,
            root,
        })
    }

    /// The store root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The blob store.
    pub fn blobs(&self) -> &Blobs {
        &self.blobs
    }

    /// The image index.
    pub fn index(&self) -> &Index {
        &self.index
    }

    /// The snapshots.
    pub fn snapshots(&self) -> &Snapshots {
        &self.snapshots
    }

    /// A shared lease: garbage collection waits until every lease is dropped. Hold one from the
    /// first blob written to the last tag set.
    pub fn lease(&self) -> Result<LockGuard> {
        lock::lock(&self.root.join("locks/gc.lock"), false)
    }

    /// Reads the image a manifest descriptor points at.
    pub fn load_image(&self, desc: &Descriptor) -> Result<Image> {
        let manifest_raw = self.blobs.read(&desc.digest)?;
        let manifest: Manifest =
            serde_json::from_slice(&manifest_raw).map_err(|e| StoreError::Json {
                what: format!("manifest {}", desc.digest),
                reason: e.to_string(),
            })?;
        let config_raw = self.blobs.read(&manifest.config.digest)?;
        Image::from_parts(desc.clone(), manifest_raw, config_raw)
    }

    /// Every image in the store with its names, in index order.
    pub fn images(&self) -> Result<Vec<Image>> {
        let index = self.index.read()?;
        let mut by_digest: BTreeMap<Digest, usize> = BTreeMap::new();
        let mut out: Vec<Image> = Vec::new();
        for desc in &index.manifests {
            if !MediaType::parse(&desc.media_type).is_manifest() {
                continue;
            }
            let slot = match by_digest.get(&desc.digest) {
                Some(&i) => i,
                None => {
                    out.push(self.load_image(desc)?);
                    by_digest.insert(desc.digest.clone(), out.len() - 1);
                    out.len() - 1
                }
            };
            if let Some(r) = desc
                .ref_name()
                .and_then(|n| Reference::parse_normalized(n).ok())
            {
                out[slot].tags.push(r);
            }
        }
        Ok(out)
    }

    /// Finds an image by name (`busybox`, `localhost:5000/a:1`), full digest or ID, or unique
    /// ID prefix, as docker does.
    pub fn resolve(&self, what: &str) -> Result<Image> {
        let images = self.images()?;
        let full = Digest::parse(what)
            .ok()
            .or_else(|| Digest::from_hex(what).ok());
        if let Some(d) = full
            && let Some(img) = images.iter().find(|i| i.id() == &d || i.digest() == &d)
        {
            return Ok(img.clone());
        }
        if let Ok(r) = Reference::parse_docker(what)
            && let Some(img) = images.iter().find(|i| i.tags.contains(&r))
        {
            return Ok(img.clone());
        }
        let prefix = what.strip_prefix("sha256:").unwrap_or(what);
        if !prefix.is_empty() && prefix.bytes().all(|b| b.is_ascii_hexdigit()) {
            let hits: Vec<&Image> = images
                .iter()
                .filter(|i| i.id().hex().starts_with(prefix))
                .collect();
            match hits.as_slice() {
                [one] => return Ok((*one).clone()),
                [] => {}
                _ => return Err(StoreError::AmbiguousId(what.to_string())),
            }
        }
        Err(StoreError::ImageNotFound(what.to_string()))
    }

    /// Writes `config` and an OCI manifest for an image built on `base` (the manifest layers of
    /// its base image, which may be compressed blobs; empty for none): the first `base.len()`
    /// diff IDs use those descriptors, the rest are uncompressed layer blobs already in the
    /// store (digest = diff ID). Returns the manifest descriptor; nothing is tagged.
    pub fn commit_image(&self, config: &ImageConfig, base: &[Descriptor]) -> Result<Descriptor> {
        let config_raw = Self::config_bytes(config)?;
        let layers = self.image_layers(config, base)?;
        self.commit_manifest(&config_raw, layers)
    }

    /// Like [`Store::commit_image`] without an fsync per blob: the config and manifest blobs
    /// not in the store yet come back as [`Deferred`]s, for the caller to publish after a
    /// `syncfs` (before anything names the image). Until then the image cannot be loaded.
    pub fn commit_image_deferred(
        &self,
        config: &ImageConfig,
        base: &[Descriptor],
    ) -> Result<DeferredImage> {
        let config_raw = Self::config_bytes(config)?;
        let layers = self.image_layers(config, base)?;
        let mut blobs = Vec::new();
        let manifest = self.write_manifest(&config_raw, layers, &mut |bytes| {
            let (digest, blob) = self.blobs.put_deferred(bytes)?;
            blobs.extend(blob);
            Ok(digest)
        })?;
        Ok(DeferredImage {
            manifest,
            id: Digest::of(&config_raw),
            blobs,
        })
    }

    fn config_bytes(config: &ImageConfig) -> Result<Vec<u8>> {
        oci::to_canonical_vec(config).map_err(|e| StoreError::Json {
            what: "image config".to_string(),
            reason: e.to_string(),
        })
    }

    /// The manifest layers of an image built on `base` (see [`Store::commit_image`]).
    fn image_layers(&self, config: &ImageConfig, base: &[Descriptor]) -> Result<Vec<Descriptor>> {
        let mut layers = Vec::with_capacity(config.rootfs.diff_ids.len());
        for (i, diff_id) in config.rootfs.diff_ids.iter().enumerate() {
            if let Some(d) = base.get(i) {
                layers.push(d.clone());
                continue;
            }
            let size = self.blobs.size(diff_id)?;
            layers.push(Descriptor::new(&MediaType::OciLayer, diff_id.clone(), size));
        }
        Ok(layers)
    }

    /// Stores `config_raw` as is and an OCI manifest over `layers`.
    pub fn commit_manifest(
        &self,
        config_raw: &[u8],
        layers: Vec<Descriptor>,
    ) -> Result<Descriptor> {
        self.write_manifest(config_raw, layers, &mut |bytes| self.blobs.put(bytes))
    }

    /// Stores `config_raw` and an OCI manifest over `layers` through `put`.
    fn write_manifest(
        &self,
        config_raw: &[u8],
        layers: Vec<Descriptor>,
        put: &mut dyn FnMut(&[u8]) -> Result<Digest>,
    ) -> Result<Descriptor> {
        let config_digest = put(config_raw)?;
        let config_desc = Descriptor::new(
            &MediaType::OciConfig,
            config_digest,
            config_raw.len() as u64,
        );
        let manifest = Manifest::oci(config_desc, layers);
        let raw = oci::to_canonical_vec(&manifest).map_err(|e| StoreError::Json {
            what: "image manifest".to_string(),
            reason: e.to_string(),
        })?;
        let digest = put(&raw)?;
        Ok(Descriptor::new(
            &MediaType::OciManifest,
            digest,
            raw.len() as u64,
        ))
    }

    /// Points each of `refs` at the image `desc`; with no refs, records it untagged.
    pub fn tag(&self, desc: &Descriptor, refs: &[Reference]) -> Result<()> {
        self.index.update(|index| {
            if refs.is_empty() {
                index::add_untagged(index, desc);
            }
            for r in refs {
                index::set_tag(index, desc, r);
            }
            Ok(())
        })
    }

    /// Removes the name `r`. Returns the image's manifest digest and whether the image has no
    /// name left (in which case its entry is gone too).
    pub fn untag(&self, r: &Reference) -> Result<(Digest, bool)> {
        let name = r.to_string();
        self.index.update(|index| {
            let pos = index
                .manifests
                .iter()
                .position(|d| d.ref_name() == Some(name.as_str()))
                .ok_or_else(|| StoreError::ImageNotFound(r.familiar()))?;
            let removed = index.manifests.remove(pos);
            let last = !index.manifests.iter().any(|d| d.digest == removed.digest);
            Ok((removed.digest, last))
        })
    }

    /// Removes every index entry of the image with manifest digest `digest`.
    pub fn remove_image(&self, digest: &Digest) -> Result<Vec<Reference>> {
        self.index.update(|index| {
            let mut names = Vec::new();
            index.manifests.retain(|d| {
                if &d.digest == digest {
                    if let Some(r) = d
                        .ref_name()
                        .and_then(|n| Reference::parse_normalized(n).ok())
                    {
                        names.push(r);
                    }
                    false
                } else {
                    true
                }
            });
            Ok(names)
        })
    }
}
