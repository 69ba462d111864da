//! `pull`: resolve a reference (index -> platform), fetch the config, fetch missing layers in
//! parallel into the store's verified ingest, and unpack each layer into its snapshot while it
//! downloads: the unpacker follows the ingest file as it grows, in layer order (a layer is
//! applied on top of its parents' snapshots). A download cut mid-blob resumes with `Range`
//! (and restarts when the registry ignores it). Raw manifest bytes are stored as they came, so
//! the image keeps its registry digest.

use std::io::{BufReader, Read, Write};
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use oci::{Digest, ImageConfig, MediaType, Reference};
use registry_client::platform::{EntryView, Platform, available_by, select_by};
use registry_client::repo::FetchedManifest;
use registry_client::{Client, Repository};
use store::{Descriptor, Expected, Image, Manifest, Store};

use super::progress::Progress;

/// What to pull.
pub struct PullOptions {
    /// The platform wanted (the host's when `None`).
    pub platform: Option<Platform>,
    /// Pull every platform of an index.
    pub all_platforms: bool,
    /// Where progress goes.
    pub progress: Progress,
}

/// A pulled image.
pub struct Pulled {
    /// The image as stored (the platform's manifest).
    pub image: Image,
    /// The digest the reference resolved to (the index's when it named one).
    pub digest: Digest,
    /// The repository name (`localhost:5000/busybox`).
    pub name: String,
}

/// Largest config accepted.
const CONFIG_MAX: usize = 16 << 20;
/// Layers downloaded at once.
const PARALLEL: usize = 4;

/// Pulls `reference` into `store` and tags it (unless it is by digest).
pub fn pull(
    store: &Store,
    client: &Arc<Client>,
    rt: &tokio::runtime::Runtime,
    reference: &Reference,
    opts: &PullOptions,
) -> Result<Pulled> {
    let _lease = store.lease()?;
    let pulled = rt.block_on(pull_async(store, client, reference, opts))?;
    if reference.digest().is_none() {
        store.tag(&pulled.image.descriptor, std::slice::from_ref(reference))?;
    } else {
        store.tag(&pulled.image.descriptor, &[])?;
    }
    Ok(pulled)
}

async fn open_repo(
    client: &Arc<Client>,
    reference: &Reference,
    what: &str,
) -> Result<(Repository, FetchedManifest)> {
    let registry = reference.domain();
    for mirror in client.mirrors(registry) {
        let attempt = async {
            let repo = Repository::open(client, mirror, reference.path(), false, &[]).await?;
            let m = repo.get_manifest(what).await?;
            Ok::<_, registry_client::error::RegistryError>((repo, m))
        };
        match attempt.await {
            Ok(found) => return Ok(found),
            Err(e) => tracing::info!("mirror {mirror}: {e}; trying the next"),
        }
    }
    let repo = Repository::open(client, registry, reference.path(), false, &[]).await?;
    let m = repo.get_manifest(what).await?;
    Ok((repo, m))
}

async fn pull_async(
    store: &Store,
    client: &Arc<Client>,
    reference: &Reference,
    opts: &PullOptions,
) -> Result<Pulled> {
    let what = match (reference.digest(), reference.tag()) {
        (Some(d), _) => d.to_string(),
        (None, Some(t)) => t.to_string(),
        (None, None) => "latest".to_string(),
    };
    let shown = reference.familiar();
    let (repo, top) = open_repo(client, reference, &what).await?;
    if top.media_type.is_schema1() {
        return Err(registry_client::error::RegistryError::schema1(&shown).into());
    }
    let want = opts.platform.clone().unwrap_or_else(Platform::host);
    let mut manifests: Vec<FetchedManifest> = Vec::new();
    if top.media_type.is_index() {
        let v: serde_json::Value = serde_json::from_slice(&top.bytes)
            .with_context(|| format!("the index of `{shown}` ({}) is not JSON", top.digest))?;
        let entries: Vec<serde_json::Value> = v
            .get("manifests")
            .and_then(|m| m.as_array())
            .cloned()
            .unwrap_or_default();
        let chosen = select_by(&entries, &want, EntryView::from_json);
        let mut digests: Vec<Digest> = Vec::new();
        if let Some(e) = chosen {
            digests.push(entry_digest(e, &shown)?);
        } else if !opts.all_platforms {
            return Err(registry_client::error::RegistryError::NoMatchingPlatform {
                reference: shown.clone(),
                wanted: want.to_string(),
                available: available_by(&entries, EntryView::from_json),
            }
            .into());
        }
        if opts.all_platforms {
            for e in &entries {
                let view = EntryView::from_json(e);
                if view.attestation || view.platform.as_deref().is_some_and(Platform::is_unknown) {
                    continue;
                }
                let d = entry_digest(e, &shown)?;
                if !digests.contains(&d) {
                    digests.push(d);
                }
            }
        }
        for d in digests {
            let m = repo.get_manifest(&d.to_string()).await?;
            if m.media_type.is_index() {
                bail!("`{shown}`: nested index {d} is not supported");
            }
            manifests.push(m);
        }
        store.blobs().put(&top.bytes)?;
    } else {
        manifests.push(top.clone());
    }
    let mut images = Vec::new();
    for m in &manifests {
        images.push(pull_image(store, &repo, m, &shown, &opts.progress).await?);
    }
    for extra in images.iter().skip(1) {
        store.tag(&extra.descriptor, &[])?;
    }
    let image = images
        .into_iter()
        .next()
        .ok_or_else(|| anyhow!("`{shown}`: nothing to pull"))?;
    Ok(Pulled {
        image,
        digest: top.digest.clone(),
        name: reference.name(),
    })
}

fn entry_digest(e: &serde_json::Value, shown: &str) -> Result<Digest> {
    e.get("digest")
        .and_then(|d| d.as_str())
        .and_then(|d| Digest::parse(d).ok())
        .ok_or_else(|| anyhow!("the index of `{shown}` has an entry without a valid digest"))
}

/// Pulls one image manifest's config and layers; stores the manifest last.
async fn pull_image(
    store: &Store,
    repo: &Repository,
    m: &FetchedManifest,
    shown: &str,
    progress: &Progress,
) -> Result<Image> {
    if !m.media_type.is_manifest() {
        bail!(
            "`{shown}` ({}) has media type `{}`, which is not an image",
            m.digest,
            m.media_type.as_str()
        );
    }
    let manifest: Manifest = serde_json::from_slice(&m.bytes)
        .with_context(|| format!("manifest {} of `{shown}` is malformed", m.digest))?;
    let config_digest = manifest.config.digest.clone();
    let config_raw = if store.blobs().has(&config_digest) {
        store.blobs().read(&config_digest)?
    } else {
        let bytes = repo.get_blob_bytes(&config_digest, CONFIG_MAX).await?;
        store.blobs().put(&bytes)?;
        bytes.to_vec()
    };
    let config = ImageConfig::from_slice(&config_raw)
        .map_err(|e| anyhow!("config {config_digest} of `{shown}` is malformed: {e}"))?;
    let diff_ids = config.rootfs.diff_ids.clone();
    if diff_ids.len() != manifest.layers.len() {
        bail!(
            "`{shown}`: the config lists {} layers but the manifest {}",
            diff_ids.len(),
            manifest.layers.len()
        );
    }
    for l in &manifest.layers {
        let mt = MediaType::parse(&l.media_type);
        if mt.layer_compression().is_none() {
            bail!(
                "`{shown}`: layer {} has media type `{}`, which is not a layer hoist can unpack",
                l.digest,
                l.media_type
            );
        }
    }
    let chains = store::image::chain_ids(&diff_ids);
    let n = manifest.layers.len();
    let feeds: Vec<Arc<Feed>> = (0..n).map(|_| Arc::new(Feed::default())).collect();
    let mut downloads = Vec::new();
    let sem = Arc::new(tokio::sync::Semaphore::new(PARALLEL));
    for (i, layer) in manifest.layers.iter().enumerate() {
        let item = progress.item(layer.digest.short(), "Waiting", layer.size);
        if store.blobs().has(&layer.digest) {
            feeds[i].finish(true);
            item.finish("Already exists");
            continue;
        }
        let repo = repo.clone();
        let blobs = store.blobs().clone();
        let feed = feeds[i].clone();
        let layer = layer.clone();
        let sem = sem.clone();
        downloads.push(tokio::spawn(async move {
            let _permit = sem.acquire_owned().await;
            let mut guard = FeedGuard(Some(feed.clone()));
            let r = download(&repo, &blobs, &layer, &feed, &item).await;
            guard.0 = None;
            feed.finish(r.is_ok());
            if r.is_ok() {
                item.finish("Pull complete");
            } else {
                item.finish("Failed");
            }
            r
        }));
    }
    // The unpacker: layer after layer, each as soon as its bytes flow.
    let unpack = {
        let store = store.clone();
        let layers = manifest.layers.clone();
        let feeds = feeds.clone();
        let chains = chains.clone();
        let diff_ids = diff_ids.clone();
        tokio::task::spawn_blocking(move || unpack_all(&store, &layers, &feeds, &chains, &diff_ids))
    };
    let mut first_err: Option<anyhow::Error> = None;
    for d in downloads {
        match d.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                first_err.get_or_insert(e);
            }
            Err(e) => {
                first_err.get_or_insert(anyhow!("download task failed: {e}"));
            }
        }
    }
    let unpacked = unpack
        .await
        .map_err(|e| anyhow!("unpack task failed: {e}"))?;
    if let Some(e) = first_err {
        return Err(e);
    }
    unpacked?;
    let here = format!("{}/{}", repo.registry(), repo.name());
    for l in manifest
        .layers
        .iter()
        .chain(std::iter::once(&manifest.config))
    {
        let _ = store.add_blob_source(&l.digest, &here);
    }
    let digest = store.blobs().put(&m.bytes)?;
    let desc = Descriptor::new(&m.media_type, digest, m.bytes.len() as u64);
    Ok(Image::from_parts(desc, m.bytes.to_vec(), config_raw)?)
}

/// How much a download writes before the unpacker following it is told.
const FEED_STEP: u64 = 1 << 20;

/// Downloads one layer blob into the store, resuming after cuts.
async fn download(
    repo: &Repository,
    blobs: &store::Blobs,
    layer: &Descriptor,
    feed: &Feed,
    item: &super::progress::Item,
) -> Result<()> {
    let what = format!("layer {}", layer.digest);
    let mut ingest = blobs.ingest(Expected::exact(layer.digest.clone(), layer.size), &what)?;
    feed.start(ingest.tmp_path().to_path_buf());
    let mut cuts = 0u32;
    // What the unpacker following the file may read: flushed in 1 MiB steps (a flush per HTTP
    // chunk of a few KiB would be a write(2) each).
    let mut shown = 0u64;
    'fetch: loop {
        let offset = ingest.written();
        let mut dl = repo.get_blob(&layer.digest, offset).await?;
        if offset > 0 && dl.offset == 0 {
            // The registry ignored Range: start over.
            tracing::info!("{what}: the registry ignored Range, downloading again");
            ingest = blobs.ingest(Expected::exact(layer.digest.clone(), layer.size), &what)?;
            feed.start(ingest.tmp_path().to_path_buf());
            item.set(0);
            shown = 0;
        }
        item.inc(0);
        loop {
            match dl.response.chunk().await {
                Ok(Some(c)) => {
                    ingest
                        .write_all(&c)
                        .with_context(|| format!("cannot write {what} into the store"))?;
                    let n = ingest.written();
                    if n > layer.size {
                        bail!(
                            "registry `{}`: repository `{}`: {what} is larger than its manifest says ({} bytes)",
                            repo.registry(),
                            repo.name(),
                            layer.size
                        );
                    }
                    if n - shown >= FEED_STEP || n == layer.size {
                        ingest
                            .flush()
                            .with_context(|| format!("cannot write {what} into the store"))?;
                        feed.advance(n);
                        shown = n;
                    }
                    item.inc(c.len() as u64);
                }
                Ok(None) if ingest.written() >= layer.size => break 'fetch,
                Ok(None) | Err(_) => {
                    cuts += 1;
                    if cuts > 5 {
                        bail!(
                            "registry `{}`: repository `{}`: {what}: the connection was cut {cuts} times",
                            repo.registry(),
                            repo.name()
                        );
                    }
                    tracing::info!(
                        "{what}: connection cut at {} of {} bytes, resuming",
                        ingest.written(),
                        layer.size
                    );
                    tokio::time::sleep(Duration::from_millis(100 * u64::from(cuts))).await;
                    continue 'fetch;
                }
            }
        }
    }
    tokio::task::spawn_blocking(move || ingest.commit())
        .await
        .map_err(|e| anyhow!("commit task failed: {e}"))?
        .map_err(|e| {
            anyhow!(
                "registry `{}`: repository `{}`: {e}",
                repo.registry(),
                repo.name()
            )
        })?;
    Ok(())
}

/// Unpacks every layer without a snapshot, in order, following downloads as they grow.
fn unpack_all(
    store: &Store,
    layers: &[Descriptor],
    feeds: &[Arc<Feed>],
    chains: &[Digest],
    diff_ids: &[Digest],
) -> Result<()> {
    let snaps = store.snapshots();
    let mut dirs: Vec<PathBuf> = Vec::new();
    for (i, layer) in layers.iter().enumerate() {
        let dir = snaps.fs_dir(&chains[i]);
        if dir.is_dir() {
            dirs.push(dir);
            continue;
        }
        let lowers: Vec<PathBuf> = dirs.iter().rev().cloned().collect();
        let name = layer.digest.to_string();
        // Stream from the growing ingest file when the layer is being downloaded.
        let streamed = match feeds[i].open() {
            Some(reader) => {
                let r = store::compress::decompress(BufReader::with_capacity(1 << 20, reader))
                    .map_err(anyhow::Error::from)
                    .and_then(|r| {
                        snaps
                            .create(&chains[i], &lowers, r, Some(&diff_ids[i]), &name)
                            .map_err(anyhow::Error::from)
                    });
                match r {
                    Ok(_) => true,
                    Err(e) => {
                        tracing::debug!("streaming unpack of {name}: {e}");
                        false
                    }
                }
            }
            None => false,
        };
        if !streamed {
            if !feeds[i].wait_done() {
                bail!("download of layer {name} failed");
            }
            let file = store.blobs().open(&layer.digest)?;
            let r = store::compress::decompress(BufReader::with_capacity(1 << 20, file))
                .with_context(|| format!("cannot read layer {name}"))?;
            snaps.create(&chains[i], &lowers, r, Some(&diff_ids[i]), &name)?;
        }
        dirs.push(dir);
    }
    Ok(())
}

/// The shared state of one layer's download, followed by the unpacker.
#[derive(Default)]
struct Feed {
    state: Mutex<FeedState>,
    cv: Condvar,
}

#[derive(Default)]
struct FeedState {
    path: Option<PathBuf>,
    generation: u32,
    flushed: u64,
    done: Option<bool>,
}

impl Feed {
    fn lock(&self) -> std::sync::MutexGuard<'_, FeedState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn start(&self, path: PathBuf) {
        let mut s = self.lock();
        s.path = Some(path);
        s.generation += 1;
        s.flushed = 0;
        self.cv.notify_all();
    }

    fn advance(&self, n: u64) {
        self.lock().flushed = n;
        self.cv.notify_all();
    }

    fn finish(&self, ok: bool) {
        self.lock().done = Some(ok);
        self.cv.notify_all();
    }

    /// Waits until the download ends; true when it succeeded.
    fn wait_done(&self) -> bool {
        let mut s = self.lock();
        loop {
            if let Some(ok) = s.done {
                return ok;
            }
            s = self.cv.wait(s).unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// A reader over the download in progress; `None` when there is none (done already or
    /// never started, e.g. the blob was present).
    fn open(self: &Arc<Self>) -> Option<GrowingReader> {
        let mut s = self.lock();
        loop {
            if s.done.is_some() {
                return None;
            }
            if let Some(p) = &s.path {
                let file = std::fs::File::open(p).ok()?;
                return Some(GrowingReader {
                    feed: self.clone(),
                    file,
                    pos: 0,
                    generation: s.generation,
                });
            }
            s = self.cv.wait(s).unwrap_or_else(PoisonError::into_inner);
        }
    }
}

/// Marks a feed failed if its download task ends without finishing it (a panic).
struct FeedGuard(Option<Arc<Feed>>);

impl Drop for FeedGuard {
    fn drop(&mut self) {
        if let Some(f) = self.0.take() {
            f.finish(false);
        }
    }
}

/// Reads a file that another task is still writing, waiting for more bytes until the writer
/// is done.
struct GrowingReader {
    feed: Arc<Feed>,
    file: std::fs::File,
    pos: u64,
    generation: u32,
}

impl Read for GrowingReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let avail = {
            let mut s = self.feed.lock();
            loop {
                if s.generation != self.generation {
                    return Err(std::io::Error::other("download restarted"));
                }
                if s.flushed > self.pos {
                    break s.flushed - self.pos;
                }
                match s.done {
                    Some(true) => break 0,
                    Some(false) => return Err(std::io::Error::other("download failed")),
                    None => {}
                }
                s = self.feed.cv.wait(s).unwrap_or_else(PoisonError::into_inner);
            }
        };
        // The file is read in order through its own descriptor, so its offset is `pos`. When
        // the download is done (`avail` 0), whatever is left in the file is read.
        let want = if avail == 0 {
            buf.len()
        } else {
            buf.len().min(avail as usize)
        };
        let n = self.file.read(&mut buf[..want])?;
        self.pos += n as u64;
        Ok(n)
    }
}
