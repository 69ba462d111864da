//! Plain HTTP(S) downloads (`ADD https://...` in a build) through the registry [`Client`]'s
//! HTTP setup for the URL's host (system roots plus its certs.d CA and client certificate,
//! `--insecure-registry`, user agent, timeouts), redirects followed, the body streamed to a
//! file.

use std::path::Path;

use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;

use crate::Client;

/// Downloads `url` into `dest` (created or truncated) with `client`'s HTTP setup for the URL's
/// host. Returns the `Last-Modified` time as Unix seconds, when the server sent one. The error
/// names the URL and the status.
pub async fn download(client: &Client, url: &str, dest: &Path) -> Result<Option<i64>, String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("cannot download `{url}`: {e}"))?;
    let host = match (parsed.host_str(), parsed.port()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_string(),
        (None, _) => return Err(format!("cannot download `{url}`: no host")),
    };
    let http = client
        .http_client(&host, client.is_insecure(&host))
        .map_err(|e| format!("cannot download `{url}`: {e}"))?;
    let resp = http
        .get(url)
        .send()
        .await
        .map_err(|e| format!("cannot download `{url}`: {}", crate::error::error_chain(&e)))?;
    let status = resp.status();
    if !status.is_success() {
        return Err(format!(
            "cannot download `{url}`: the server answered {status}"
        ));
    }
    let last_modified = resp
        .headers()
        .get(reqwest::header::LAST_MODIFIED)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| crate::retry::parse_http_date(v, time::OffsetDateTime::now_utc().year()))
        .map(|t| t.unix_timestamp());
    let mut file = tokio::fs::File::create(dest)
        .await
        .map_err(|e| format!("cannot create `{}`: {e}", dest.display()))?;
    let mut body = resp.bytes_stream();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| format!("cannot download `{url}`: {e}"))?;
        file.write_all(&chunk)
            .await
            .map_err(|e| format!("cannot write `{}`: {e}", dest.display()))?;
    }
    file.flush()
        .await
        .map_err(|e| format!("cannot write `{}`: {e}", dest.display()))?;
    Ok(last_modified)
}
