//! Images in the store: a manifest, its config, its layers, and the names pointing at it.

use std::collections::BTreeMap;

use oci::{Digest, ImageConfig, MediaType, Reference};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest as _, Sha256};

use crate::error::{Result, StoreError};
use crate::index::Descriptor;

/// An image manifest (OCI or docker schema2; the fields we use, the rest kept).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    /// Always 2.
    pub schema_version: u32,
    /// The manifest media type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// The config descriptor.
    pub config: Descriptor,
    /// The layers, bottom first.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub layers: Vec<Descriptor>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    /// Anything else, kept.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

fn null_as_empty<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<Descriptor>, D::Error> {
    Ok(Option::<Vec<Descriptor>>::deserialize(d)?.unwrap_or_default())
}

impl Manifest {
    /// An OCI manifest for a config and uncompressed layers.
    pub fn oci(config: Descriptor, layers: Vec<Descriptor>) -> Self {
        Self {
            schema_version: 2,
            media_type: Some(MediaType::OciManifest.as_str().to_string()),
            config,
            layers,
            annotations: None,
            extra: BTreeMap::new(),
        }
    }
}

/// An image read from the store.
#[derive(Clone, Debug)]
pub struct Image {
    /// The manifest's descriptor (digest, size, media type).
    pub descriptor: Descriptor,
    /// The manifest bytes exactly as stored.
    pub manifest_raw: Vec<u8>,
    /// The parsed manifest.
    pub manifest: Manifest,
    /// The config bytes exactly as stored.
    pub config_raw: Vec<u8>,
    /// The parsed config.
    pub config: ImageConfig,
    /// Names pointing at this image.
    pub tags: Vec<Reference>,
}

impl Image {
    /// Parses an image from its manifest and config bytes.
    pub fn from_parts(
        descriptor: Descriptor,
        manifest_raw: Vec<u8>,
        config_raw: Vec<u8>,
    ) -> Result<Self> {
        let manifest: Manifest =
            serde_json::from_slice(&manifest_raw).map_err(|e| StoreError::Json {
                what: format!("manifest {}", descriptor.digest),
                reason: e.to_string(),
            })?;
        let config = ImageConfig::from_slice(&config_raw).map_err(|e| StoreError::Json {
            what: format!("config {}", manifest.config.digest),
            reason: e.to_string(),
        })?;
        if config.rootfs.diff_ids.len() != manifest.layers.len() {
            return Err(StoreError::Json {
                what: format!("image {}", descriptor.digest),
                reason: format!(
                    "config lists {} diff IDs but the manifest has {} layers",
                    config.rootfs.diff_ids.len(),
                    manifest.layers.len()
                ),
            });
        }
        Ok(Self {
            descriptor,
            manifest_raw,
            manifest,
            config_raw,
            config,
            tags: Vec::new(),
        })
    }

    /// The image ID: the config digest, as docker shows it.
    pub fn id(&self) -> &Digest {
        &self.manifest.config.digest
    }

    /// The manifest digest.
    pub fn digest(&self) -> &Digest {
        &self.descriptor.digest
    }

    /// The layers' diff IDs, bottom first.
    pub fn diff_ids(&self) -> &[Digest] {
        &self.config.rootfs.diff_ids
    }

    /// The chain IDs of the layers, bottom first (the snapshot names).
    pub fn chain_ids(&self) -> Vec<Digest> {
        chain_ids(self.diff_ids())
    }

    /// Uncompressed size of the image: the sum of its layers, as `docker images` shows it.
    pub fn size(&self) -> u64 {
        self.manifest.layers.iter().map(|l| l.size).sum()
    }

    /// The media type of the manifest.
    pub fn media_type(&self) -> MediaType {
        MediaType::parse(&self.descriptor.media_type)
    }
}

/// Chain IDs of a layer stack: `chain(0) = diff(0)`, `chain(n) = sha256(chain(n-1) + " " +
/// diff(n))`.
pub fn chain_ids(diff_ids: &[Digest]) -> Vec<Digest> {
    let mut out: Vec<Digest> = Vec::with_capacity(diff_ids.len());
    for d in diff_ids {
        let next = match out.last() {
            None => d.clone(),
            Some(prev) => {
                let mut h = Sha256::new();
                h.update(prev.to_string().as_bytes());
                h.update(b" ");
                h.update(d.to_string().as_bytes());
                Digest::from_raw(h.finalize().into())
            }
        };
        out.push(next);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_id_matches_docker_definition() {
        let a = Digest::of(b"a");
        let b = Digest::of(b"b");
        let ids = chain_ids(&[a.clone(), b.clone()]);
        assert_eq!(ids[0], a);
        assert_eq!(ids[1], Digest::of(format!("{a} {b}").as_bytes()));
    }
}
