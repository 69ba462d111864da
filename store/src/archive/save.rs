//! Writing archives.

use std::collections::{BTreeMap, HashSet};
use std::io::{BufReader, Seek, Write};

use oci::{MediaType, Reference};
use serde_json::{Value, json};

use crate::Store;
use crate::error::{IoContext, Result, StoreError};
use crate::image::Image;
use crate::index::{CONTAINERD_NAME, Descriptor, REF_NAME};
use crate::tarwrite::TarWriter;

/// The archive format to write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArchiveFormat {
    /// docker's `docker save` format (Docker 25 layout), readable by docker, podman, skopeo.
    DockerArchive,
    /// An OCI image layout in a tar (`oci-archive:`).
    OciArchive,
}

/// One image to save and the names to record for it (none: saved untagged).
#[derive(Clone, Debug)]
pub struct SaveItem {
    /// The image.
    pub image: Image,
    /// Names to record.
    pub names: Vec<Reference>,
}

/// Writes `items` to `out` as an archive of `format`.
pub fn save<W: Write>(
    store: &Store,
    items: &[SaveItem],
    format: ArchiveFormat,
    out: W,
) -> Result<W> {
    let mut tw = TarWriter::new(out);
    let io_err = |e: std::io::Error| StoreError::Io {
        op: "write archive",
        path: "<output>".into(),
        source: e,
    };
    tw.append_dir(b"blobs", 0o755, 0).map_err(io_err)?;
    tw.append_dir(b"blobs/sha256", 0o755, 0).map_err(io_err)?;
    let mut written: HashSet<String> = HashSet::new();
    let mut docker_manifest = Vec::new();
    let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut index_entries = Vec::new();
    for item in items {
        let img = &item.image;
        // Layers: uncompressed in a docker-archive (as docker writes them); as stored otherwise.
        let mut layers = Vec::with_capacity(img.manifest.layers.len());
        for (i, layer) in img.manifest.layers.iter().enumerate() {
            let compressed = MediaType::parse(&layer.media_type)
                .layer_compression()
                .is_some_and(|c| c != oci::media_type::Compression::None);
            let (digest, size) = if compressed && format == ArchiveFormat::DockerArchive {
                let diff_id = img.diff_ids()[i].clone();
                if written.insert(diff_id.hex().to_string()) {
                    let mut tmp = tempfile_in(store)?;
                    let file = store.blobs().open(&layer.digest)?;
                    let mut r =
                        crate::compress::decompress(BufReader::with_capacity(1 << 20, file))
                            .at("read", store.blobs().path(&layer.digest))?;
                    let size = std::io::copy(&mut r, &mut tmp)
                        .at("decompress", store.blobs().path(&layer.digest))?;
                    tmp.rewind().at("seek", store.root())?;
                    let name = format!("blobs/sha256/{}", diff_id.hex());
                    tw.append_file(name.as_bytes(), &mut tmp, size, 0o644, 0)
                        .map_err(io_err)?;
                    (diff_id, size)
                } else {
                    (diff_id, 0)
                }
            } else {
                write_blob(store, &mut tw, &mut written, &layer.digest)?;
                (layer.digest.clone(), layer.size)
            };
            layers.push((
                digest,
                size,
                compressed && format == ArchiveFormat::OciArchive,
                layer.media_type.clone(),
            ));
        }
        write_blob(store, &mut tw, &mut written, img.id())?;
        // The manifest: ours as stored when its layers are what we wrote; else a new one.
        let manifest_desc = if layers
            .iter()
            .zip(&img.manifest.layers)
            .all(|(l, m)| l.0 == m.digest)
        {
            write_blob(store, &mut tw, &mut written, img.digest())?;
            img.descriptor.clone()
        } else {
            let descs = layers
                .iter()
                .map(|(d, s, _, _)| Descriptor::new(&MediaType::OciLayer, d.clone(), *s))
                .collect();
            let m = crate::image::Manifest::oci(
                Descriptor::new(
                    &MediaType::OciConfig,
                    img.id().clone(),
                    img.config_raw.len() as u64,
                ),
                descs,
            );
            let raw = oci::to_canonical_vec(&m).map_err(|e| StoreError::Json {
                what: "manifest".into(),
                reason: e.to_string(),
            })?;
            let d = oci::Digest::of(&raw);
            if written.insert(d.hex().to_string()) {
                tw.append_bytes(
                    format!("blobs/sha256/{}", d.hex()).as_bytes(),
                    &raw,
                    0o644,
                    0,
                )
                .map_err(io_err)?;
            }
            Descriptor::new(&MediaType::OciManifest, d, raw.len() as u64)
        };
        let mut desc = Descriptor::new(
            &MediaType::parse(&manifest_desc.media_type),
            manifest_desc.digest.clone(),
            manifest_desc.size,
        );
        let repo_tags: Vec<String> = item.names.iter().map(|r| r.familiar()).collect();
        if item.names.is_empty() {
            index_entries.push(desc.clone());
        }
        for name in &item.names {
            let mut ann = BTreeMap::new();
            ann.insert(CONTAINERD_NAME.to_string(), name.to_string());
            let ref_name = match format {
                ArchiveFormat::DockerArchive => name.tag().unwrap_or("latest").to_string(),
                ArchiveFormat::OciArchive => name.to_string(),
            };
            ann.insert(REF_NAME.to_string(), ref_name);
            desc.annotations = Some(ann);
            index_entries.push(desc.clone());
            if let Some(tag) = name.tag() {
                let top = layers
                    .last()
                    .map(|l| l.0.hex().to_string())
                    .unwrap_or_default();
                repositories
                    .entry(name.familiar_name())
                    .or_default()
                    .insert(tag.to_string(), top);
            }
        }
        let layer_paths: Vec<String> = layers
            .iter()
            .map(|l| format!("blobs/sha256/{}", l.0.hex()))
            .collect();
        docker_manifest.push(json!({
            "Config": format!("blobs/sha256/{}", img.id().hex()),
            "RepoTags": if repo_tags.is_empty() { Value::Null } else { json!(repo_tags) },
            "Layers": layer_paths,
        }));
    }
    let index = json!({
        "schemaVersion": 2,
        "mediaType": MediaType::OciIndex.as_str(),
        "manifests": index_entries,
    });
    let index_raw = oci::to_canonical_vec(&index).map_err(|e| StoreError::Json {
        what: "index.json".into(),
        reason: e.to_string(),
    })?;
    tw.append_bytes(b"index.json", &index_raw, 0o644, 0)
        .map_err(io_err)?;
    if format == ArchiveFormat::DockerArchive {
        let m = serde_json::to_vec(&docker_manifest).map_err(|e| StoreError::Json {
            what: "manifest.json".into(),
            reason: e.to_string(),
        })?;
        tw.append_bytes(b"manifest.json", &m, 0o644, 0)
            .map_err(io_err)?;
    }
    tw.append_bytes(
        b"oci-layout",
        br#"{"imageLayoutVersion":"1.0.0"}"#,
        0o644,
        0,
    )
    .map_err(io_err)?;
    if format == ArchiveFormat::DockerArchive && !repositories.is_empty() {
        let r = serde_json::to_vec(&repositories).map_err(|e| StoreError::Json {
            what: "repositories".into(),
            reason: e.to_string(),
        })?;
        tw.append_bytes(b"repositories", &r, 0o644, 0)
            .map_err(io_err)?;
    }
    tw.finish().map_err(io_err)
}

fn write_blob<W: Write>(
    store: &Store,
    tw: &mut TarWriter<W>,
    written: &mut HashSet<String>,
    d: &oci::Digest,
) -> Result<()> {
    if !written.insert(d.hex().to_string()) {
        return Ok(());
    }
    let mut f = store.blobs().open(d)?;
    let size = f.metadata().at("stat", store.blobs().path(d))?.len();
    let name = format!("blobs/sha256/{}", d.hex());
    tw.append_file(name.as_bytes(), &mut f, size, 0o644, 0)
        .map_err(|e| StoreError::Io {
            op: "write archive from",
            path: store.blobs().path(d),
            source: e,
        })
}

fn tempfile_in(store: &Store) -> Result<std::fs::File> {
    let dir = store.blobs().ingest_dir();
    let p = dir.join(format!("save-{}", crate::fsutil::random_suffix()));
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&p)
        .at("create", &p)?;
    let _ = std::fs::remove_file(&p);
    Ok(f)
}
