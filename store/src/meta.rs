//! Small records beside the content that make transfers cheaper: which compressed blob a
//! layer (by diff ID) was compressed to, so a second push compresses nothing, and which
//! repositories a blob is known to exist in, so a push can mount it instead of uploading.
//! Each record is one small file under `meta/`, written atomically; losing one only costs
//! time.

use std::path::PathBuf;

use oci::Digest;

use crate::Store;
use crate::error::{IoContext, Result};

/// Most repositories remembered per blob.
const MAX_SOURCES: usize = 16;

impl Store {
    fn meta_path(&self, kind: &str, name: &str) -> PathBuf {
        self.root().join("meta").join(kind).join(name)
    }

    fn write_meta(&self, kind: &str, name: &str, text: &str) -> Result<()> {
        let path = self.meta_path(kind, name);
        let dir = path.parent().unwrap_or(self.root());
        std::fs::create_dir_all(dir).at("create directory", dir)?;
        crate::fsutil::write_atomic(&path, text.as_bytes())
    }

    /// The compressed blob (digest, size) layer `diff_id` was compressed to with `algorithm`
    /// (`gzip`, `zstd`), if recorded and still present.
    pub fn compressed_layer(&self, diff_id: &Digest, algorithm: &str) -> Option<(Digest, u64)> {
        let text = std::fs::read_to_string(
            self.meta_path("compressed", &format!("{}.{algorithm}", diff_id.hex())),
        )
        .ok()?;
        let (d, size) = text.trim().split_once(' ')?;
        let d = Digest::parse(d).ok()?;
        let size = size.parse().ok()?;
        (self.blobs().size(&d).ok()? == size).then_some((d, size))
    }

    /// Records that layer `diff_id` compressed with `algorithm` is blob `digest` of `size`.
    pub fn set_compressed_layer(
        &self,
        diff_id: &Digest,
        algorithm: &str,
        digest: &Digest,
        size: u64,
    ) -> Result<()> {
        self.write_meta(
            "compressed",
            &format!("{}.{algorithm}", diff_id.hex()),
            &format!("{digest} {size}\n"),
        )
    }

    /// Every recorded compression: (diff ID, compressed digest).
    pub fn compressed_layers(&self) -> Vec<(Digest, Digest)> {
        let dir = self.root().join("meta/compressed");
        let Ok(rd) = std::fs::read_dir(&dir) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            let Some(diff) = name
                .split('.')
                .next()
                .and_then(|h| Digest::from_hex(h).ok())
            else {
                continue;
            };
            if let Some(d) = std::fs::read_to_string(e.path())
                .ok()
                .and_then(|t| t.split(' ').next().and_then(|d| Digest::parse(d).ok()))
            {
                out.push((diff, d));
            }
        }
        out
    }

    /// Repositories (`registry/name`) blob `digest` is known to exist in, most recent first.
    pub fn blob_sources(&self, digest: &Digest) -> Vec<String> {
        std::fs::read_to_string(self.meta_path("sources", digest.hex()))
            .map(|t| {
                t.lines()
                    .map(str::to_string)
                    .filter(|l| !l.is_empty())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Records that blob `digest` exists in repository `repo` (`registry/name`).
    pub fn add_blob_source(&self, digest: &Digest, repo: &str) -> Result<()> {
        let mut list = self.blob_sources(digest);
        if list.first().is_some_and(|f| f == repo) {
            return Ok(());
        }
        list.retain(|r| r != repo);
        list.insert(0, repo.to_string());
        list.truncate(MAX_SOURCES);
        self.write_meta("sources", digest.hex(), &(list.join("\n") + "\n"))
    }
}
