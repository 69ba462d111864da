//! `hoist import FILE|- [REF]`: a root filesystem tarball becomes a one-layer image, as
//! `docker import` does. The tarball (plain, gzip or zstd) is stored uncompressed as the layer
//! and unpacked into its snapshot, which also refuses unsafe entries before anything is tagged.

use std::io::{BufReader, Read};

use anyhow::{Context, Result, bail};
use oci::{History, ImageConfig, Reference, RuntimeConfig};
use store::{Expected, Store};

use crate::cli::ImportArgs;

pub fn run(store: &Store, a: ImportArgs) -> Result<()> {
    let refs: Vec<Reference> = match &a.reference {
        Some(r) => {
            vec![Reference::parse_docker(r).with_context(|| format!("invalid image name `{r}`"))?]
        }
        None => Vec::new(),
    };
    let mut runtime = RuntimeConfig::default();
    for change in &a.changes {
        super::changes::apply_change(&mut runtime, change)
            .with_context(|| format!("invalid --change `{change}`"))?;
    }
    let (os, arch, variant) = platform(a.platform.as_deref())?;
    let _lease = store.lease()?;
    let source = if a.file == "-" {
        "-".to_string()
    } else {
        a.file.clone()
    };
    let input: Box<dyn Read> = if a.file == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(std::fs::File::open(&a.file).with_context(|| format!("cannot open `{}`", a.file))?)
    };
    let mut tar = store::compress::decompress(BufReader::with_capacity(1 << 20, input))
        .with_context(|| format!("cannot read `{source}`"))?;
    let (diff_id, _size) =
        store
            .blobs()
            .put_reader(&mut tar, Expected::any(), &format!("`{source}`"))?;
    if !store.snapshots().exists(&diff_id) {
        let blob = store.blobs().open(&diff_id)?;
        store
            .snapshots()
            .create(
                &diff_id,
                &[],
                BufReader::with_capacity(1 << 20, blob),
                Some(&diff_id),
                &format!("`{source}`"),
            )
            .with_context(|| format!("cannot import `{source}`; nothing was tagged"))?;
    }
    let created = now();
    let config = ImageConfig {
        architecture: arch,
        os,
        variant,
        created: Some(created.clone()),
        config: Some(runtime),
        rootfs: oci::RootFs {
            kind: "layers".into(),
            diff_ids: vec![diff_id],
        },
        history: Some(vec![History {
            created: Some(created),
            comment: Some(
                a.message
                    .clone()
                    .unwrap_or_else(|| format!("Imported from {source}")),
            ),
            ..History::default()
        }]),
        ..ImageConfig::default()
    };
    let desc = store.commit_image(&config, &[])?;
    store.tag(&desc, &refs)?;
    let id = oci::Digest::of(&oci::to_canonical_vec(&config)?);
    super::stdout_lines([id.to_string()])
}

/// `SOURCE_DATE_EPOCH` when set (reproducible), else the current time, as RFC 3339.
pub(crate) fn now() -> String {
    let t = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
        .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
        .unwrap_or_else(time::OffsetDateTime::now_utc);
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

fn platform(p: Option<&str>) -> Result<(String, String, Option<String>)> {
    let host = oci::platform::host_arch().0.to_string();
    let Some(p) = p else {
        return Ok(("linux".into(), host, None));
    };
    let parts: Vec<&str> = p.split('/').collect();
    match parts.as_slice() {
        [os, arch] => Ok((os.to_string(), arch.to_string(), None)),
        [os, arch, v] => Ok((os.to_string(), arch.to_string(), Some(v.to_string()))),
        _ => bail!("invalid platform `{p}`: expected os/arch[/variant], e.g. linux/amd64"),
    }
}
