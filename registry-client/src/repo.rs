//! Operations on one repository of a registry: manifests, blobs (download with `Range`,
//! existence, cross-repository mount, monolithic and chunked upload), tags and the catalog.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use oci::{Digest, MediaType};
use reqwest::header::{CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, LOCATION, RANGE};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use crate::auth::{Scope, ScopeSet};
use crate::client::{Client, Host, Response, error_from};
use crate::error::{Context, Operation, RegistryError, Target};

/// The manifest media types hoist asks for, most wanted first. Schema1 is listed so that a
/// registry holding only schema1 says so (and hoist can refuse it clearly) instead of 404.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.oci.image.manifest.v1+json, \
application/vnd.docker.distribution.manifest.v2+json;q=0.9, \
application/vnd.docker.distribution.manifest.v1+prettyjws;q=0.1, \
application/json;q=0.05";

/// Largest manifest accepted (the distribution spec recommends 4 MiB).
pub const MANIFEST_MAX: usize = 4 << 20;

/// A manifest or index as fetched: its exact bytes, media type and digest.
#[derive(Clone, Debug)]
pub struct FetchedManifest {
    /// The bytes exactly as served.
    pub bytes: Bytes,
    /// The media type (from the `Content-Type` header, else the document's `mediaType`).
    pub media_type: MediaType,
    /// sha256 of the bytes.
    pub digest: Digest,
}

/// A blob download in progress.
#[derive(Debug)]
pub struct BlobDownload {
    /// The response, streaming the body.
    pub response: Response,
    /// The offset the body starts at: the asked-for offset when the server honoured `Range`,
    /// 0 when it sent the whole blob.
    pub offset: u64,
}

/// What a mount attempt did.
#[derive(Debug)]
pub enum Mounted {
    /// The blob now exists in the repository.
    Yes,
    /// The registry did not mount; it opened an upload session at this location instead.
    No(UploadSession),
}

/// An open blob upload session.
#[derive(Debug, Clone)]
pub struct UploadSession {
    location: String,
    /// `OCI-Chunk-Min-Length`: chunks (but the last) must be at least this long.
    pub min_chunk: Option<u64>,
    /// `OCI-Chunk-Max-Length`: chunks must be at most this long (a registry or proxy cap).
    pub max_chunk: Option<u64>,
}

/// How an upload was done (for tests and progress).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UploadKind {
    /// One `PUT` with the whole blob.
    Monolithic,
    /// `PATCH` chunks, then a `PUT`; the number of chunks.
    Chunked,
}

/// One repository of a registry, with the scopes its operations need.
#[derive(Debug, Clone)]
pub struct Repository {
    client: Arc<Client>,
    host: Arc<Host>,
    name: String,
    scopes: ScopeSet,
}

fn bad(ctx: Context, msg: &str) -> RegistryError {
    RegistryError::invalid_response(ctx, msg)
}

impl Repository {
    /// Opens repository `name` (`library/busybox`) on registry `registry`, for pulling, or for
    /// pushing too (`push`), with `pull` on each of `mount_from` so one token covers
    /// cross-repository mounts.
    pub async fn open(
        client: &Arc<Client>,
        registry: &str,
        name: &str,
        push: bool,
        mount_from: &[String],
    ) -> Result<Self, RegistryError> {
        let host = client.host(registry).await?;
        let invalid = |e: crate::auth::AuthError| {
            RegistryError::invalid_response(Context::new(registry).repository(name), &e.to_string())
        };
        let scopes = if push {
            ScopeSet::push(name, mount_from.iter().map(String::as_str)).map_err(invalid)?
        } else {
            ScopeSet::pull(name).map_err(invalid)?
        };
        Ok(Self {
            client: client.clone(),
            host,
            name: name.to_string(),
            scopes,
        })
    }

    /// The repository name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The registry host.
    pub fn registry(&self) -> &str {
        self.host.name()
    }

    fn url(&self, base: &str, rest: &str) -> String {
        format!("{base}/v2/{}/{rest}", self.name)
    }

    fn ctx(&self, op: Operation) -> Context {
        Context::new(self.host.name()).repository(&self.name).op(op)
    }

    async fn send(
        &self,
        op: Operation,
        build: &(dyn Fn(&reqwest::Client, &str) -> reqwest::RequestBuilder + Send + Sync),
    ) -> Result<Response, RegistryError> {
        self.client
            .send(&self.host, Some(&self.name), &self.scopes, op, build)
            .await
    }

    async fn fail(&self, op: Operation, resp: Response) -> RegistryError {
        error_from(&self.host, Some(&self.name), op, resp).await
    }

    /// Fetches the manifest or index `reference` (a tag or digest). A digest reference is
    /// verified against the bytes.
    pub async fn get_manifest(&self, reference: &str) -> Result<FetchedManifest, RegistryError> {
        let op = Operation::get(Target::Manifest(reference.to_string()));
        let reference_owned = reference.to_string();
        let resp = self
            .send(op.clone(), &|c, base| {
                c.get(self.url(base, &format!("manifests/{reference_owned}")))
                    .header("Accept", MANIFEST_ACCEPT)
            })
            .await?;
        if !resp.status().is_success() {
            return Err(self.fail(op, resp).await);
        }
        let header_type = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|s| s.split(';').next().unwrap_or(s).trim().to_string());
        if let Some(len) = resp.content_length()
            && len as usize > MANIFEST_MAX
        {
            return Err(bad(
                self.ctx(op),
                &format!("manifest of {len} bytes is too large"),
            ));
        }
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| RegistryError::transport(self.ctx(op.clone()), &e))?;
        if bytes.len() > MANIFEST_MAX {
            return Err(bad(self.ctx(op), "manifest is too large"));
        }
        let digest = Digest::of(&bytes);
        if let Ok(want) = Digest::parse(reference)
            && want != digest
        {
            return Err(RegistryError::DigestMismatch {
                ctx: self.ctx(op),
                what: format!("manifest `{reference}`"),
                expected: want,
                actual: digest,
            });
        }
        let doc_type = serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|v| {
                if v.get("schemaVersion").and_then(|s| s.as_u64()) == Some(1) {
                    return Some(MediaType::DockerSchema1.as_str().to_string());
                }
                v.get("mediaType")
                    .and_then(|m| m.as_str())
                    .map(str::to_string)
                    .or_else(|| {
                        // An OCI document without mediaType: tell index from manifest.
                        if v.get("manifests").is_some() {
                            Some(MediaType::OciIndex.as_str().to_string())
                        } else if v.get("config").is_some() {
                            Some(MediaType::OciManifest.as_str().to_string())
                        } else {
                            None
                        }
                    })
            });
        let media_type = match (header_type.map(|h| MediaType::parse(&h)), doc_type) {
            (Some(h), _) if h.is_manifest() || h.is_index() || h.is_schema1() => h,
            (_, Some(d)) => MediaType::parse(&d),
            (Some(h), None) => h,
            (None, None) => return Err(bad(self.ctx(op), "no manifest media type")),
        };
        Ok(FetchedManifest {
            bytes,
            media_type,
            digest,
        })
    }

    /// The size of blob `digest` when the repository has it.
    pub async fn blob_exists(&self, digest: &Digest) -> Result<Option<u64>, RegistryError> {
        let op = Operation::head(Target::Blob(digest.clone()));
        let resp = self
            .send(op.clone(), &|c, base| {
                c.head(self.url(base, &format!("blobs/{digest}")))
            })
            .await?;
        match resp.status().as_u16() {
            200..=299 => Ok(Some(resp.content_length().unwrap_or(0))),
            404 => Ok(None),
            _ => Err(self.fail(op, resp).await),
        }
    }

    /// Starts downloading blob `digest` from `offset` (with `Range` when non-zero).
    pub async fn get_blob(
        &self,
        digest: &Digest,
        offset: u64,
    ) -> Result<BlobDownload, RegistryError> {
        let op = Operation::get(Target::Blob(digest.clone()));
        let resp = self
            .send(op.clone(), &|c, base| {
                let b = c.get(self.url(base, &format!("blobs/{digest}")));
                if offset > 0 {
                    b.header(RANGE, format!("bytes={offset}-"))
                } else {
                    b
                }
            })
            .await?;
        match resp.status().as_u16() {
            206 if offset > 0 => {
                let start = resp
                    .headers()
                    .get(CONTENT_RANGE)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.strip_prefix("bytes "))
                    .and_then(|v| v.split('-').next())
                    .and_then(|v| v.parse::<u64>().ok());
                if start != Some(offset) {
                    return Err(bad(
                        self.ctx(op),
                        "partial content does not start where asked",
                    ));
                }
                Ok(BlobDownload {
                    response: resp,
                    offset,
                })
            }
            200 => Ok(BlobDownload {
                response: resp,
                offset: 0,
            }),
            _ => Err(self.fail(op, resp).await),
        }
    }

    /// Fetches a small blob (a config) whole, verifying its digest.
    pub async fn get_blob_bytes(
        &self,
        digest: &Digest,
        max: usize,
    ) -> Result<Bytes, RegistryError> {
        let op = Operation::get(Target::Blob(digest.clone()));
        let mut dl = self.get_blob(digest, 0).await?;
        let mut buf = Vec::new();
        while let Some(chunk) = dl
            .response
            .chunk()
            .await
            .map_err(|e| RegistryError::transport(self.ctx(op.clone()), &e))?
        {
            buf.extend_from_slice(&chunk);
            if buf.len() > max {
                return Err(bad(self.ctx(op), &format!("blob larger than {max} bytes")));
            }
        }
        let actual = Digest::of(&buf);
        if &actual != digest {
            return Err(RegistryError::DigestMismatch {
                ctx: self.ctx(op),
                what: "blob".to_string(),
                expected: digest.clone(),
                actual,
            });
        }
        Ok(buf.into())
    }

    fn session_from(
        &self,
        op: &Operation,
        resp: &Response,
    ) -> Result<UploadSession, RegistryError> {
        let location = resp
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| bad(self.ctx(op.clone()), "upload response without Location"))?;
        let num = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .filter(|n| *n > 0)
        };
        Ok(UploadSession {
            location: location.to_string(),
            min_chunk: num("OCI-Chunk-Min-Length"),
            max_chunk: num("OCI-Chunk-Max-Length"),
        })
    }

    /// Tries to mount blob `digest` from repository `from` of the same registry.
    pub async fn mount_blob(&self, digest: &Digest, from: &str) -> Result<Mounted, RegistryError> {
        let op = Operation::post(Target::Mount {
            digest: digest.clone(),
            from: from.to_string(),
        });
        let resp = self
            .send(op.clone(), &|c, base| {
                c.post(format!(
                    "{}?mount={digest}&from={from}",
                    self.url(base, "blobs/uploads/")
                ))
                .header(CONTENT_LENGTH, 0)
            })
            .await?;
        match resp.status().as_u16() {
            201 => Ok(Mounted::Yes),
            202 => Ok(Mounted::No(self.session_from(&op, &resp)?)),
            _ => Err(self.fail(op, resp).await),
        }
    }

    /// Opens an upload session.
    pub async fn start_upload(&self) -> Result<UploadSession, RegistryError> {
        let op = Operation::post(Target::BlobUpload(None));
        let resp = self
            .send(op.clone(), &|c, base| {
                c.post(self.url(base, "blobs/uploads/"))
                    .header(CONTENT_LENGTH, 0)
            })
            .await?;
        match resp.status().as_u16() {
            202 => self.session_from(&op, &resp),
            _ => Err(self.fail(op, resp).await),
        }
    }

    /// Uploads the blob in file `path` (`size` bytes, digest `digest`): one `PUT` when it is at
    /// most `threshold` bytes and the session allows it, else `PATCH` chunks of `chunk` bytes
    /// (within the session's min/max) and a closing `PUT`. A `416` or a short `Range` answer to
    /// a chunk resumes from where the registry says it is.
    pub async fn upload_file(
        &self,
        mut session: UploadSession,
        path: &Path,
        size: u64,
        digest: &Digest,
        threshold: u64,
        chunk: u64,
    ) -> Result<UploadKind, RegistryError> {
        let path = path.to_path_buf();
        let chunk = {
            let mut c = chunk.max(session.min_chunk.unwrap_or(0));
            if let Some(max) = session.max_chunk {
                c = c.min(max);
            }
            c.max(1)
        };
        let monolithic = size <= threshold && session.max_chunk.is_none_or(|m| size <= m);
        if monolithic {
            let op = Operation::put(Target::BlobUpload(Some(digest.clone())));
            let loc = session.location.clone();
            let resp = self
                .send(op.clone(), &|c, base| {
                    c.put(with_digest(&location_url(base, &loc), digest))
                        .header(CONTENT_TYPE, "application/octet-stream")
                        .header(CONTENT_LENGTH, size)
                        .body(file_body(path.clone(), 0, size))
                })
                .await?;
            return match resp.status().as_u16() {
                201 | 204 => Ok(UploadKind::Monolithic),
                _ => Err(self.fail(op, resp).await),
            };
        }
        let mut offset = 0u64;
        let mut stalls = 0;
        while offset < size {
            let len = chunk.min(size - offset);
            let op = Operation::patch(Target::BlobUpload(None));
            let loc = session.location.clone();
            let start = offset;
            let resp = self
                .send(op.clone(), &|c, base| {
                    c.patch(location_url(base, &loc))
                        .header(CONTENT_TYPE, "application/octet-stream")
                        .header(CONTENT_RANGE, format!("{}-{}", start, start + len - 1))
                        .header(CONTENT_LENGTH, len)
                        .body(file_body(path.clone(), start, len))
                })
                .await?;
            let status = resp.status().as_u16();
            if status != 202 && status != 416 {
                return Err(self.fail(op, resp).await);
            }
            // The registry says how much it has: `Range: 0-<last byte>`.
            let have = resp
                .headers()
                .get(RANGE)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().trim_start_matches("bytes=").split('-').nth(1))
                .and_then(|v| v.parse::<u64>().ok())
                .map(|last| last + 1);
            if let Some(l) = resp.headers().get(LOCATION).and_then(|v| v.to_str().ok()) {
                session.location = l.to_string();
            }
            let next = match (status, have) {
                (_, Some(h)) => h,
                (202, None) => start + len,
                _ => return Err(self.fail(op, resp).await),
            };
            if next <= offset {
                stalls += 1;
                if stalls > 3 {
                    return Err(bad(self.ctx(op), "upload makes no progress"));
                }
            }
            offset = next;
        }
        let op = Operation::put(Target::BlobUpload(Some(digest.clone())));
        let loc = session.location.clone();
        let resp = self
            .send(op.clone(), &|c, base| {
                c.put(with_digest(&location_url(base, &loc), digest))
                    .header(CONTENT_LENGTH, 0)
            })
            .await?;
        match resp.status().as_u16() {
            201 | 204 => Ok(UploadKind::Chunked),
            _ => Err(self.fail(op, resp).await),
        }
    }

    /// Uploads small in-memory content (a config) with one `PUT`.
    pub async fn upload_bytes(&self, bytes: Bytes, digest: &Digest) -> Result<(), RegistryError> {
        let session = self.start_upload().await?;
        let op = Operation::put(Target::BlobUpload(Some(digest.clone())));
        let loc = session.location;
        let resp = self
            .send(op.clone(), &|c, base| {
                c.put(with_digest(&location_url(base, &loc), digest))
                    .header(CONTENT_TYPE, "application/octet-stream")
                    .body(bytes.clone())
            })
            .await?;
        match resp.status().as_u16() {
            201 | 204 => Ok(()),
            _ => Err(self.fail(op, resp).await),
        }
    }

    /// Stores a manifest under `reference` (a tag or its digest). Returns its digest (of the
    /// bytes sent).
    pub async fn put_manifest(
        &self,
        reference: &str,
        media_type: &MediaType,
        bytes: Bytes,
    ) -> Result<Digest, RegistryError> {
        let op = Operation::put(Target::Manifest(reference.to_string()));
        let r = reference.to_string();
        let mt = media_type.as_str().to_string();
        let resp = self
            .send(op.clone(), &|c, base| {
                c.put(self.url(base, &format!("manifests/{r}")))
                    .header(CONTENT_TYPE, mt.clone())
                    .body(bytes.clone())
            })
            .await?;
        if !resp.status().is_success() {
            return Err(self.fail(op, resp).await);
        }
        Ok(Digest::of(&bytes))
    }

    /// Every tag, following `Link` pagination.
    pub async fn tags(&self) -> Result<Vec<String>, RegistryError> {
        list_pages(
            &self.client,
            &self.host,
            Some(&self.name),
            &self.scopes,
            format!("/v2/{}/tags/list?n=1000", self.name),
            Target::Tags,
            "tags",
        )
        .await
    }
}

/// Every repository of registry `registry` (`/v2/_catalog`, following `Link` pagination).
pub async fn catalog(client: &Arc<Client>, registry: &str) -> Result<Vec<String>, RegistryError> {
    let host = client.host(registry).await?;
    let scopes: ScopeSet = std::iter::once(
        Scope::new(crate::auth::ResourceKind::Registry, "catalog", ["*"])
            .map_err(|e| RegistryError::invalid_response(Context::new(registry), &e.to_string()))?,
    )
    .collect();
    list_pages(
        client,
        &host,
        None,
        &scopes,
        "/v2/_catalog?n=1000".into(),
        Target::Catalog,
        "repositories",
    )
    .await
}

/// The strings of array `key` in every JSON page of a list endpoint (tags, catalog), from
/// `first` on, following `Link` headers.
async fn list_pages(
    client: &Client,
    host: &Host,
    repository: Option<&str>,
    scopes: &ScopeSet,
    first: String,
    target: Target,
    key: &str,
) -> Result<Vec<String>, RegistryError> {
    let ctx = |op: Operation| {
        let c = Context::new(host.name()).op(op);
        match repository {
            Some(r) => c.repository(r),
            None => c,
        }
    };
    let mut out = Vec::new();
    let mut next = Some(first);
    while let Some(path) = next.take() {
        let op = Operation::get(target.clone());
        let resp = client
            .send(host, repository, scopes, op.clone(), &|c, base| {
                c.get(location_url(base, &path))
            })
            .await?;
        if !resp.status().is_success() {
            return Err(error_from(host, repository, op, resp).await);
        }
        next = next_link(&resp);
        let body = resp
            .bytes()
            .await
            .map_err(|e| RegistryError::transport(ctx(op.clone()), &e))?;
        let v: serde_json::Value =
            serde_json::from_slice(&body).map_err(|e| bad(ctx(op), &format!("{key} list: {e}")))?;
        if let Some(items) = v.get(key).and_then(|t| t.as_array()) {
            out.extend(items.iter().filter_map(|t| t.as_str().map(str::to_string)));
        }
    }
    Ok(out)
}

/// A `Location` or `Link` target as a full URL: absolute as is, else under `base`.
fn location_url(base: &str, location: &str) -> String {
    if location.starts_with("http://") || location.starts_with("https://") {
        location.to_string()
    } else if location.starts_with('/') {
        format!("{base}{location}")
    } else {
        format!("{base}/{location}")
    }
}

/// `url` with `digest=<digest>` added to its query.
fn with_digest(url: &str, digest: &Digest) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}digest={digest}")
}

/// The path of the next page from a `Link: </v2/...>; rel="next"` header.
fn next_link(resp: &Response) -> Option<String> {
    let link = resp.headers().get("Link")?.to_str().ok()?;
    for part in link.split(',') {
        let part = part.trim();
        if part.contains("rel=\"next\"") || part.contains("rel=next") {
            let start = part.find('<')? + 1;
            let end = part.find('>')?;
            let target = part.get(start..end)?;
            // Keep only the path and query (the host is ours).
            if let Some(rest) = target
                .strip_prefix("http://")
                .or_else(|| target.strip_prefix("https://"))
            {
                return rest.find('/').map(|i| rest[i..].to_string());
            }
            return Some(target.to_string());
        }
    }
    None
}

/// A request body streaming `len` bytes of `path` from `offset`.
pub fn file_body(path: PathBuf, offset: u64, len: u64) -> reqwest::Body {
    const CHUNK: usize = 256 << 10;
    let stream = futures_util::stream::unfold(
        (None::<tokio::fs::File>, path, offset, len),
        |(file, path, offset, left)| async move {
            if left == 0 {
                return None;
            }
            let mut file = match file {
                Some(f) => f,
                None => {
                    let mut f = match tokio::fs::File::open(&path).await {
                        Ok(f) => f,
                        Err(e) => return Some((Err(e), (None, path, offset, 0))),
                    };
                    if let Err(e) = f.seek(std::io::SeekFrom::Start(offset)).await {
                        return Some((Err(e), (None, path, offset, 0)));
                    }
                    f
                }
            };
            let want = (left as usize).min(CHUNK);
            let mut buf = vec![0u8; want];
            match file.read(&mut buf).await {
                Ok(0) => Some((
                    Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        format!("{} is shorter than expected", path.display()),
                    )),
                    (None, path, offset, 0),
                )),
                Ok(n) => {
                    buf.truncate(n);
                    Some((
                        Ok(Bytes::from(buf)),
                        (Some(file), path, offset + n as u64, left - n as u64),
                    ))
                }
                Err(e) => Some((Err(e), (None, path, offset, 0))),
            }
        },
    );
    reqwest::Body::wrap_stream(stream)
}

#[cfg(test)]
mod tests {
    #[test]
    fn accept_header_lists_every_manifest_type() {
        for t in [
            "application/vnd.oci.image.index.v1+json",
            "application/vnd.oci.image.manifest.v1+json",
            "application/vnd.docker.distribution.manifest.v2+json",
            "application/vnd.docker.distribution.manifest.list.v2+json",
        ] {
            assert!(super::MANIFEST_ACCEPT.contains(t), "{t}");
        }
    }
}
