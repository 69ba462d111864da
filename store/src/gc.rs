//! Garbage collection: mark everything reachable from the index (and from containers' and build
//! cache records), sweep unreferenced blobs, snapshots and leftovers of interrupted writes. Runs
//! under the exclusive GC lock, so it waits for every live lease.

use std::collections::HashSet;

use oci::{Digest, MediaType};

use crate::Store;
use crate::error::{Result, StoreError};
use crate::fsutil::{disk_usage, remove_all};
use crate::index::IndexFile;

/// What a collection removed.
#[derive(Clone, Debug, Default)]
pub struct GcReport {
    /// Untagged images dropped from the index.
    pub images_removed: Vec<Digest>,
    /// Blobs deleted.
    pub blobs_removed: usize,
    /// Snapshots deleted.
    pub snapshots_removed: usize,
    /// Bytes freed.
    pub bytes_reclaimed: u64,
}

/// Collects garbage. With `dangling`, untagged images are removed from the index first (as
/// `docker image prune` does).
pub fn collect(store: &Store, dangling: bool) -> Result<GcReport> {
    let _gc = crate::lock::lock(&store.root().join("locks/gc.lock"), true)?;
    let mut report = GcReport::default();
    if dangling {
        report.images_removed = store.index().update(|index| {
            let mut gone = Vec::new();
            index.manifests.retain(|d| {
                let keep = d.ref_name().is_some();
                if !keep {
                    gone.push(d.digest.clone());
                }
                keep
            });
            Ok(gone)
        })?;
    }
    let index = store.index().read()?;
    let mut blobs: HashSet<Digest> = HashSet::new();
    let mut snapshots: HashSet<Digest> = HashSet::new();
    mark_index(store, &index, &mut blobs, &mut snapshots)?;
    for d in extra_roots(store) {
        if let Ok(img) = store.load_image(&crate::Descriptor::new(
            &MediaType::OciManifest,
            d.clone(),
            0,
        )) {
            blobs.insert(d);
            blobs.insert(img.id().clone());
            blobs.extend(img.manifest.layers.iter().map(|l| l.digest.clone()));
            snapshots.extend(img.chain_ids());
        }
    }
    // A compressed copy of a live layer (made by push) stays; records of dead ones go.
    for (diff_id, compressed) in store.compressed_layers() {
        if blobs.contains(&diff_id) {
            blobs.insert(compressed);
        }
    }
    for d in store.blobs().list()? {
        if !blobs.contains(&d) {
            let p = store.blobs().path(&d);
            report.bytes_reclaimed += std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
            remove_all(&p)?;
            report.blobs_removed += 1;
        }
    }
    for chain in store.snapshots().list()? {
        if !snapshots.contains(&chain) {
            let dir = store.snapshots().fs_dir(&chain);
            report.bytes_reclaimed += disk_usage(&dir);
            store.snapshots().remove(&chain)?;
            report.snapshots_removed += 1;
        }
    }
    for p in store.snapshots().leftovers()? {
        report.bytes_reclaimed += disk_usage(&p);
        remove_all(&p)?;
    }
    if let Ok(rd) = std::fs::read_dir(store.blobs().ingest_dir()) {
        for e in rd.flatten() {
            report.bytes_reclaimed += e.metadata().map(|m| m.len()).unwrap_or(0);
            remove_all(&e.path())?;
        }
    }
    Ok(report)
}

fn mark_index(
    store: &Store,
    index: &IndexFile,
    blobs: &mut HashSet<Digest>,
    snapshots: &mut HashSet<Digest>,
) -> Result<()> {
    for desc in &index.manifests {
        let mt = MediaType::parse(&desc.media_type);
        if !mt.is_manifest() && !mt.is_index() {
            return Err(StoreError::Json {
                what: format!("index entry {}", desc.digest),
                reason: format!(
                    "unknown media type `{}`; refusing to collect garbage",
                    desc.media_type
                ),
            });
        }
        // Marked even when absent: a layout may reference blobs it does not hold.
        if !blobs.insert(desc.digest.clone()) || !store.blobs().has(&desc.digest) {
            continue;
        }
        let raw = store.blobs().read(&desc.digest)?;
        let bad = |e: serde_json::Error| StoreError::Json {
            what: format!(
                "{} {}",
                if mt.is_index() { "index" } else { "manifest" },
                desc.digest
            ),
            reason: e.to_string(),
        };
        if mt.is_index() {
            let child: IndexFile = serde_json::from_slice(&raw).map_err(bad)?;
            mark_index(store, &child, blobs, snapshots)?;
        } else {
            let m: crate::image::Manifest = serde_json::from_slice(&raw).map_err(bad)?;
            blobs.insert(m.config.digest.clone());
            blobs.extend(m.layers.iter().map(|l| l.digest.clone()));
            if let Ok(img) = store.load_image(desc) {
                snapshots.extend(img.chain_ids());
            }
        }
    }
    Ok(())
}

/// Manifest digests kept alive by containers (`containers/<id>/image`) and build cache records
/// (`cache/*.image`).
fn extra_roots(store: &Store) -> Vec<Digest> {
    let mut out = Vec::new();
    let mut read = |p: std::path::PathBuf| {
        if let Ok(s) = std::fs::read_to_string(&p)
            && let Ok(d) = Digest::parse(s.trim())
        {
            out.push(d);
        }
    };
    if let Ok(rd) = std::fs::read_dir(store.root().join("containers")) {
        for e in rd.flatten() {
            read(e.path().join("image"));
        }
    }
    if let Ok(rd) = std::fs::read_dir(store.root().join("cache")) {
        for e in rd.flatten() {
            if e.path().extension().is_some_and(|x| x == "image") {
                read(e.path());
            }
        }
    }
    out
}
