//! Reading archives into the store, in one streaming pass (stdin works): every file member is
//! ingested while being hashed (compressed layers are decompressed on the way, so the store keeps
//! uncompressed layers whose digest is the diff ID), then `manifest.json` (preferred) or the OCI
//! `index.json` says which members make which images.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};

use oci::{Digest, ImageConfig, MediaType, Reference};
use serde::Deserialize;

use crate::Store;
use crate::apply::clean_path;
use crate::compress::{self, Compression};
use crate::content::Expected;
use crate::error::{Result, StoreError};
use crate::image::Manifest;
use crate::index::{CONTAINERD_NAME, Descriptor, IndexFile, REF_NAME};
use crate::snapshot::HashingReader;

/// An image the archive held, now in the store.
#[derive(Clone, Debug)]
pub struct LoadedImage {
    /// The manifest descriptor in the store.
    pub descriptor: Descriptor,
    /// The image ID (config digest).
    pub id: Digest,
    /// The names it was tagged with.
    pub names: Vec<Reference>,
}

/// A file member of the archive, as ingested.
#[derive(Clone, Debug)]
struct Member {
    /// Digest of the member's bytes as they are in the archive.
    raw: Digest,
    /// Digest and size of what we stored (the decompressed bytes for a compressed member).
    stored: Digest,
    size: u64,
}

const METADATA: [&str; 4] = ["manifest.json", "index.json", "repositories", "oci-layout"];
const MAX_METADATA: u64 = 64 << 20;

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerManifestItem {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    #[serde(default)]
    layers: Vec<String>,
}

/// Loads every image of the archive read from `input` (`source` names it in errors).
pub fn load<R: Read>(store: &Store, input: R, source: &str) -> Result<Vec<LoadedImage>> {
    let _lease = store.lease()?;
    let arch_err = |reason: String| StoreError::Archive {
        archive: source.to_string(),
        reason,
    };
    let outer = compress::decompress(BufReader::with_capacity(1 << 20, input))
        .map_err(|e| arch_err(format!("reading: {e}")))?;
    let mut archive = tar::Archive::new(outer);
    let mut members: HashMap<String, Member> = HashMap::new();
    let mut aliases: HashMap<String, String> = HashMap::new();
    let mut meta: HashMap<&'static str, Vec<u8>> = HashMap::new();
    let entries = archive
        .entries()
        .map_err(|e| arch_err(format!("not a tar archive: {e}")))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| arch_err(format!("reading the tar stream: {e}")))?;
        let raw = entry.path_bytes().into_owned();
        let Ok(comps) = clean_path(&raw) else {
            return Err(arch_err(format!(
                "member `{}` has an unsafe path",
                String::from_utf8_lossy(&raw)
            )));
        };
        let path = String::from_utf8_lossy(&comps.join(&b'/')).into_owned();
        match entry.header().entry_type() {
            tar::EntryType::Regular | tar::EntryType::Continuous => {}
            tar::EntryType::Symlink | tar::EntryType::Link => {
                let link = entry
                    .link_name_bytes()
                    .map(|l| l.into_owned())
                    .unwrap_or_default();
                let target = if entry.header().entry_type() == tar::EntryType::Symlink
                    && !link.starts_with(b"/")
                {
                    let mut joined = comps[..comps.len().saturating_sub(1)].join(&b'/');
                    joined.push(b'/');
                    joined.extend_from_slice(&link);
                    joined
                } else {
                    link
                };
                if let Ok(t) = clean_path(target.strip_prefix(b"/").unwrap_or(&target)) {
                    aliases.insert(path, String::from_utf8_lossy(&t.join(&b'/')).into_owned());
                }
                continue;
            }
            _ => continue,
        }
        if let Some(name) = METADATA.iter().find(|m| **m == path) {
            if entry.size() > MAX_METADATA {
                return Err(arch_err(format!(
                    "`{path}` is too large ({} bytes)",
                    entry.size()
                )));
            }
            let mut buf = Vec::with_capacity(entry.size() as usize);
            entry
                .read_to_end(&mut buf)
                .map_err(|e| arch_err(format!("reading `{path}`: {e}")))?;
            meta.insert(name, buf);
            continue;
        }
        let last = comps.last().map(|c| c.as_slice()).unwrap_or_default();
        if comps.len() > 1 && (last == b"VERSION" || last == b"json") {
            continue; // classic per-layer legacy metadata
        }
        let member = ingest_member(store, &mut entry, &path, source)?;
        members.insert(path, member);
    }
    let mut rest = archive.into_inner();
    let _ = std::io::copy(&mut rest, &mut std::io::sink());

    let lookup = |p: &str| -> Result<Member> {
        let mut p = clean(p);
        for _ in 0..16 {
            if let Some(m) = members.get(&p) {
                return Ok(m.clone());
            }
            match aliases.get(&p) {
                Some(t) => p = t.clone(),
                None => break,
            }
        }
        Err(arch_err(format!(
            "`{p}` is referenced but not in the archive"
        )))
    };

    let mut loaded = Vec::new();
    if let Some(raw) = meta.get("manifest.json") {
        let items: Option<Vec<DockerManifestItem>> = serde_json::from_slice(raw)
            .map_err(|e| arch_err(format!("invalid manifest.json: {e}")))?;
        let items = items
            .ok_or_else(|| arch_err("manifest.json is null: the archive lists no images".into()))?;
        if items.is_empty() {
            return Err(arch_err("manifest.json lists no images".into()));
        }
        for item in items {
            let config = lookup(&item.config)?;
            let config_raw = store.blobs().read(&config.stored)?;
            let layers = item
                .layers
                .iter()
                .map(|l| lookup(l).map(|m| (l.clone(), m)))
                .collect::<Result<Vec<_>>>()?;
            let names = item
                .repo_tags
                .unwrap_or_default()
                .iter()
                .map(|t| {
                    Reference::parse_docker(t)
                        .map_err(|e| arch_err(format!("RepoTags entry `{t}`: {e}")))
                })
                .collect::<Result<Vec<_>>>()?;
            loaded.push(commit(
                store,
                &config_raw,
                &item.config,
                &layers,
                names,
                source,
            )?);
        }
    } else if let Some(raw) = meta.get("index.json") {
        let index: IndexFile = serde_json::from_slice(raw)
            .map_err(|e| arch_err(format!("invalid index.json: {e}")))?;
        let by_digest = |d: &Digest| -> Result<Member> {
            let m = lookup(&format!("blobs/sha256/{}", d.hex()))?;
            if &m.raw != d {
                return Err(StoreError::DigestMismatch {
                    what: format!("blob `blobs/sha256/{}` of `{source}`", d.hex()),
                    expected: d.clone(),
                    actual: m.raw,
                });
            }
            Ok(m)
        };
        let mut todo: Vec<(Descriptor, Vec<Reference>)> = Vec::new();
        for desc in &index.manifests {
            todo.push((desc.clone(), oci_names(desc)));
        }
        if todo.is_empty() {
            return Err(arch_err("index.json lists no images".into()));
        }
        while let Some((desc, names)) = todo.pop() {
            let mt = MediaType::parse(&desc.media_type);
            let member = by_digest(&desc.digest)?;
            let raw = store.blobs().read(&member.stored)?;
            if mt.is_index() {
                let child: IndexFile = serde_json::from_slice(&raw)
                    .map_err(|e| arch_err(format!("invalid index {}: {e}", desc.digest)))?;
                let pick = pick_platform(&child.manifests).ok_or_else(|| {
                    arch_err(format!(
                        "index {} has no image for this platform",
                        desc.digest
                    ))
                })?;
                todo.push((pick.clone(), names));
                continue;
            }
            if !mt.is_manifest() {
                return Err(arch_err(format!(
                    "entry {} has media type `{}`, which is not an image",
                    desc.digest, desc.media_type
                )));
            }
            let manifest: Manifest = serde_json::from_slice(&raw)
                .map_err(|e| arch_err(format!("invalid manifest {}: {e}", desc.digest)))?;
            let config = by_digest(&manifest.config.digest)?;
            let config_raw = store.blobs().read(&config.stored)?;
            let layers = manifest
                .layers
                .iter()
                .map(|l| {
                    by_digest(&l.digest).map(|m| (format!("blobs/sha256/{}", l.digest.hex()), m))
                })
                .collect::<Result<Vec<_>>>()?;
            let cpath = format!("blobs/sha256/{}", manifest.config.digest.hex());
            loaded.push(commit(store, &config_raw, &cpath, &layers, names, source)?);
        }
        loaded.reverse();
    } else {
        return Err(arch_err(
            "no manifest.json or index.json: not a docker or OCI archive (archives from docker before 1.10 are not supported)".into(),
        ));
    }
    Ok(loaded)
}

fn clean(p: &str) -> String {
    clean_path(p.as_bytes())
        .map(|c| String::from_utf8_lossy(&c.join(&b'/')).into_owned())
        .unwrap_or_else(|_| p.to_string())
}

/// The names an OCI index entry gives its image.
fn oci_names(desc: &Descriptor) -> Vec<Reference> {
    let Some(ann) = &desc.annotations else {
        return Vec::new();
    };
    if let Some(r) = ann
        .get(CONTAINERD_NAME)
        .and_then(|n| Reference::parse_docker(n).ok())
    {
        return vec![r];
    }
    match ann.get(REF_NAME) {
        // A bare tag (`latest`) names no repository.
        Some(n) if n.contains('/') || n.contains(':') => {
            Reference::parse_docker(n).ok().into_iter().collect()
        }
        _ => Vec::new(),
    }
}

/// The index entry for this machine's platform (linux and our architecture), or the only one.
pub(crate) fn pick_platform(entries: &[Descriptor]) -> Option<&Descriptor> {
    let arch = oci::platform::host_arch().0;
    let matches = |d: &&Descriptor| {
        let Some(p) = &d.platform else { return false };
        p.get("os").and_then(|v| v.as_str()) == Some("linux")
            && p.get("architecture").and_then(|v| v.as_str()) == Some(arch)
    };
    entries.iter().find(matches).or_else(|| {
        let images: Vec<&Descriptor> = entries
            .iter()
            .filter(|d| MediaType::parse(&d.media_type).is_manifest() && d.platform.is_none())
            .collect();
        if images.len() == 1 {
            Some(images[0])
        } else {
            None
        }
    })
}

fn ingest_member<R: Read>(
    store: &Store,
    entry: &mut tar::Entry<'_, R>,
    path: &str,
    source: &str,
) -> Result<Member> {
    let what = format!("`{path}` of `{source}`");
    let mut hashing = HashingReader::new(entry);
    let mut buffered = BufReader::with_capacity(1 << 20, &mut hashing);
    let head = buffered.fill_buf().map_err(|e| StoreError::Archive {
        archive: source.into(),
        reason: format!("reading `{path}`: {e}"),
    })?;
    let compressed = compress::sniff(head) != Compression::None;
    let (stored, size) = if compressed {
        let mut r = compress::decompress(buffered).map_err(|e| StoreError::Archive {
            archive: source.into(),
            reason: format!("`{path}`: {e}"),
        })?;
        store.blobs().put_reader(&mut r, Expected::any(), &what)?
    } else {
        store
            .blobs()
            .put_reader(&mut buffered, Expected::any(), &what)?
    };
    // Trailing bytes after a compressed stream still belong to the member's digest.
    std::io::copy(&mut hashing, &mut std::io::sink()).map_err(|e| StoreError::Archive {
        archive: source.into(),
        reason: format!("reading `{path}`: {e}"),
    })?;
    let raw = if compressed {
        hashing.digest()
    } else {
        stored.clone()
    };
    Ok(Member { raw, stored, size })
}

/// Checks the layers against the config's diff IDs and writes our manifest.
fn commit(
    store: &Store,
    config_raw: &[u8],
    config_path: &str,
    layers: &[(String, Member)],
    names: Vec<Reference>,
    source: &str,
) -> Result<LoadedImage> {
    let config = ImageConfig::from_slice(config_raw).map_err(|e| StoreError::Json {
        what: format!("config `{config_path}` of `{source}`"),
        reason: e.to_string(),
    })?;
    let want = &config.rootfs.diff_ids;
    if want.len() != layers.len() {
        return Err(StoreError::Archive {
            archive: source.into(),
            reason: format!(
                "config `{config_path}` lists {} layers but the image has {}",
                want.len(),
                layers.len()
            ),
        });
    }
    let mut descs = Vec::with_capacity(layers.len());
    for ((path, m), diff_id) in layers.iter().zip(want) {
        if &m.stored != diff_id {
            return Err(StoreError::DigestMismatch {
                what: format!("layer `{path}` of `{source}` (diff ID from the config)"),
                expected: diff_id.clone(),
                actual: m.stored.clone(),
            });
        }
        descs.push(Descriptor::new(
            &MediaType::OciLayer,
            m.stored.clone(),
            m.size,
        ));
    }
    let desc = store.commit_manifest(config_raw, descs)?;
    store.tag(&desc, &names)?;
    let id = Digest::of(config_raw);
    Ok(LoadedImage {
        descriptor: desc,
        id,
        names,
    })
}
