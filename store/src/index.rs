//! The store's `index.json`: an OCI image index whose entries are the images in the store.
//! A tagged image has one entry per tag, with `org.opencontainers.image.ref.name` (and
//! containerd's `io.containerd.image.name`) set to the full normalised reference, so
//! `skopeo inspect oci:$ROOT:docker.io/library/bb:1` finds it. An untagged image (`<none>` in
//! `hoist images`) has one entry without a name. Every change rewrites the file atomically while
//! holding `locks/index.lock`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use oci::{Digest, MediaType, Reference};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{IoContext, Result, StoreError};
use crate::fsutil::write_atomic;
use crate::lock::lock;

/// OCI annotation holding the reference name.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
/// containerd's annotation holding the image name.
pub const CONTAINERD_NAME: &str = "io.containerd.image.name";

/// An `index.json` document.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IndexFile {
    /// Always 2.
    pub schema_version: u32,
    /// The index media type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// The entries.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub manifests: Vec<Descriptor>,
    /// Anything else, kept.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

fn null_as_empty<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<Descriptor>, D::Error> {
    Ok(Option::<Vec<Descriptor>>::deserialize(d)?.unwrap_or_default())
}

impl Default for IndexFile {
    fn default() -> Self {
        Self {
            schema_version: 2,
            media_type: Some(MediaType::OciIndex.as_str().to_string()),
            manifests: Vec::new(),
            extra: BTreeMap::new(),
        }
    }
}

/// A content descriptor.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// Media type of the referenced content.
    pub media_type: String,
    /// Its digest.
    pub digest: Digest,
    /// Its size.
    pub size: u64,
    /// Annotations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    /// Platform, for index entries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Value>,
    /// Anything else, kept.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

impl Descriptor {
    /// A plain descriptor.
    pub fn new(media_type: &MediaType, digest: Digest, size: u64) -> Self {
        Self {
            media_type: media_type.as_str().to_string(),
            digest,
            size,
            annotations: None,
            platform: None,
            extra: BTreeMap::new(),
        }
    }

    /// The `org.opencontainers.image.ref.name` annotation, if any.
    pub fn ref_name(&self) -> Option<&str> {
        self.annotations.as_ref()?.get(REF_NAME).map(String::as_str)
    }
}

/// The index file of a store and its lock.
#[derive(Clone, Debug)]
pub struct Index {
    path: PathBuf,
    lock_path: PathBuf,
}

impl Index {
    pub(crate) fn new(root: &Path) -> Self {
        Self {
            path: root.join("index.json"),
            lock_path: root.join("locks/index.lock"),
        }
    }

    /// Reads the index as it is now (no lock needed: writes are atomic renames).
    pub fn read(&self) -> Result<IndexFile> {
        match std::fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| StoreError::Json {
                what: format!("`{}`", self.path.display()),
                reason: e.to_string(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(IndexFile::default()),
            Err(e) => Err(e).at("read", &self.path),
        }
    }

    /// Reads, changes and atomically rewrites the index under the index lock.
    pub fn update<T>(&self, f: impl FnOnce(&mut IndexFile) -> Result<T>) -> Result<T> {
        let _guard = lock(&self.lock_path, true)?;
        let mut index = self.read()?;
        let out = f(&mut index)?;
        let bytes = oci::to_canonical_vec(&index).map_err(|e| StoreError::Json {
            what: format!("`{}`", self.path.display()),
            reason: e.to_string(),
        })?;
        write_atomic(&self.path, &bytes)?;
        Ok(out)
    }
}

/// Points `reference` at the manifest `desc`. An image that loses its last name this way stays
/// in the index untagged, as docker keeps it as `<none>`.
pub fn set_tag(index: &mut IndexFile, desc: &Descriptor, reference: &Reference) {
    let name = reference.to_string();
    let mut orphaned = Vec::new();
    index.manifests.retain(|d| {
        if d.ref_name() == Some(name.as_str()) {
            if d.digest != desc.digest {
                orphaned.push(d.clone());
            }
            false
        } else {
            true
        }
    });
    // Drop an untagged entry of the image we tag.
    index
        .manifests
        .retain(|d| !(d.digest == desc.digest && d.ref_name().is_none()));
    let mut entry = desc.clone();
    entry.annotations = Some(BTreeMap::from([
        (REF_NAME.to_string(), name.clone()),
        (CONTAINERD_NAME.to_string(), name),
    ]));
    index.manifests.push(entry);
    for mut old in orphaned {
        if !index.manifests.iter().any(|d| d.digest == old.digest) {
            old.annotations = None;
            index.manifests.push(old);
        }
    }
}

/// Adds `desc` as an untagged image unless the image is already in the index.
pub fn add_untagged(index: &mut IndexFile, desc: &Descriptor) {
    if !index.manifests.iter().any(|d| d.digest == desc.digest) {
        let mut entry = desc.clone();
        entry.annotations = None;
        index.manifests.push(entry);
    }
}
