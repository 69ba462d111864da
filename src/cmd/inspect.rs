//! `hoist inspect`: docker's image inspect JSON.

use anyhow::{Context, Result};
use serde::Serialize;
use serde_json::{Value, json};
use store::Store;

use crate::cli::InspectArgs;

pub fn run(store: &Store, a: InspectArgs) -> Result<()> {
    let mut out = Vec::new();
    for name in &a.images {
        let img = store.resolve(name)?;
        let c = &img.config;
        let extra = |k: &str| {
            c.extra
                .get(k)
                .cloned()
                .unwrap_or(Value::String(String::new()))
        };
        out.push(json!({
            "Id": img.id().to_string(),
            "RepoTags": img.tags.iter().filter(|t| t.tag().is_some()).map(|t| t.familiar()).collect::<Vec<_>>(),
            "RepoDigests": [],
            "Parent": "",
            "Comment": c.history.as_ref().and_then(|h| h.last()).and_then(|h| h.comment.clone()).unwrap_or_default(),
            "Created": c.created.clone().unwrap_or_default(),
            "DockerVersion": extra("docker_version"),
            "Author": c.author.clone().unwrap_or_default(),
            "Config": c.config.clone().map(|rc| serde_json::to_value(rc).unwrap_or(Value::Null)).unwrap_or(Value::Null),
            "Architecture": c.architecture,
            "Variant": c.variant,
            "Os": c.os,
            "Size": img.size(),
            "RootFS": {"Type": c.rootfs.kind, "Layers": c.rootfs.diff_ids.iter().map(|d| d.to_string()).collect::<Vec<_>>()},
            "Descriptor": {"mediaType": img.descriptor.media_type, "digest": img.digest().to_string(), "size": img.descriptor.size},
        }));
    }
    let mut buf = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(
        &mut buf,
        serde_json::ser::PrettyFormatter::with_indent(b"    "),
    );
    out.serialize(&mut ser).context("cannot encode JSON")?;
    super::stdout_lines([String::from_utf8_lossy(&buf).into_owned()])
}
