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
        apply_change(&mut runtime, change)
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
    let desc = store.commit_image(&config)?;
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
    let host = store::archive::host_arch().to_string();
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

/// Applies one Dockerfile instruction of the kinds `docker import --change` accepts.
fn apply_change(c: &mut RuntimeConfig, line: &str) -> Result<()> {
    let line = line.trim();
    let (kw, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
    let rest = rest.trim();
    let exec_or_shell = |s: &str| -> Vec<String> {
        serde_json::from_str::<Vec<String>>(s)
            .unwrap_or_else(|_| vec!["/bin/sh".into(), "-c".into(), s.to_string()])
    };
    match kw.to_ascii_uppercase().as_str() {
        "CMD" => c.cmd = Some(exec_or_shell(rest)),
        "ENTRYPOINT" => {
            c.entrypoint = Some(exec_or_shell(rest));
            c.cmd = None;
        }
        "ENV" => {
            for (k, v) in key_values(rest)? {
                let env = c.env.get_or_insert_with(Vec::new);
                env.retain(|e| e.split_once('=').map(|(ek, _)| ek) != Some(k.as_str()));
                env.push(format!("{k}={v}"));
            }
        }
        "LABEL" => {
            for (k, v) in key_values(rest)? {
                c.labels.get_or_insert_with(Default::default).insert(k, v);
            }
        }
        "EXPOSE" => {
            for p in rest.split_whitespace() {
                let p = if p.contains('/') {
                    p.to_string()
                } else {
                    format!("{p}/tcp")
                };
                c.exposed_ports
                    .get_or_insert_with(Default::default)
                    .insert(p, serde_json::json!({}));
            }
        }
        "VOLUME" => {
            let vols = serde_json::from_str::<Vec<String>>(rest)
                .unwrap_or_else(|_| rest.split_whitespace().map(String::from).collect());
            for v in vols {
                c.volumes
                    .get_or_insert_with(Default::default)
                    .insert(v, serde_json::json!({}));
            }
        }
        "USER" => c.user = Some(rest.to_string()),
        "WORKDIR" => c.working_dir = Some(rest.to_string()),
        "STOPSIGNAL" => c.stop_signal = Some(rest.to_string()),
        "ONBUILD" => c
            .on_build
            .get_or_insert_with(Vec::new)
            .push(rest.to_string()),
        other => bail!(
            "`{other}` cannot be applied to an imported image: use CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, STOPSIGNAL, USER, VOLUME or WORKDIR"
        ),
    }
    Ok(())
}

/// `k=v k2="v 2"` or the old `k v...` form.
fn key_values(s: &str) -> Result<Vec<(String, String)>> {
    let words = split_words(s);
    if words.first().is_some_and(|w| !w.contains('=')) {
        let (k, v) = s
            .split_once(char::is_whitespace)
            .with_context(|| format!("`{s}` needs a value"))?;
        return Ok(vec![(k.to_string(), v.trim().to_string())]);
    }
    words
        .into_iter()
        .map(|w| {
            let (k, v) = w
                .split_once('=')
                .with_context(|| format!("`{w}` is not KEY=VALUE"))?;
            Ok((k.to_string(), v.to_string()))
        })
        .collect()
}

/// Splits on whitespace outside quotes, removing the quotes and backslash escapes.
fn split_words(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut chars = s.chars();
    let mut in_word = false;
    while let Some(ch) = chars.next() {
        match (quote, ch) {
            (None, c) if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (None, '"' | '\'') => {
                quote = Some(ch);
                in_word = true;
            }
            (Some(q), c) if c == q => quote = None,
            (q, '\\') if q != Some('\'') => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
                in_word = true;
            }
            (_, c) => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        out.push(cur);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_apply_like_docker_import() {
        let mut c = RuntimeConfig::default();
        apply_change(&mut c, r#"CMD ["/bin/sh", "-c", "echo hi"]"#).unwrap();
        apply_change(&mut c, "ENV A=1 B=\"two words\"").unwrap();
        apply_change(&mut c, "ENV PATH /usr/bin:/bin").unwrap();
        apply_change(&mut c, "EXPOSE 80 53/udp").unwrap();
        apply_change(&mut c, "WORKDIR /srv").unwrap();
        assert_eq!(c.cmd.as_deref().unwrap(), ["/bin/sh", "-c", "echo hi"]);
        assert_eq!(
            c.env.as_deref().unwrap(),
            ["A=1", "B=two words", "PATH=/usr/bin:/bin"]
        );
        assert!(c.exposed_ports.as_ref().unwrap().contains_key("53/udp"));
        assert!(c.exposed_ports.as_ref().unwrap().contains_key("80/tcp"));
        assert!(apply_change(&mut c, "RUN true").is_err());
        apply_change(&mut c, "ENTRYPOINT echo").unwrap();
        assert_eq!(c.entrypoint.as_deref().unwrap(), ["/bin/sh", "-c", "echo"]);
        assert_eq!(c.cmd, None);
    }
}
