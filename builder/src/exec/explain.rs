//! Why a step missed the cache. Each layer step records what went into its key under
//! `<store>/cache/inputs/<step>.json`, where `<step>` names the step's place (context,
//! Dockerfile, stage, instruction): the key of the step before it, the metadata instructions
//! between the two (`ENV ...`, `ARG` values), its own parts (instruction text with the build
//! args, network, mounts, heredoc) and a fingerprint per COPY source file. On the next miss of
//! the same step the two records are compared and the differences reported: an instruction, a
//! build arg, a file (changed, added, removed), the base image, or an earlier step.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use oci::Digest;
use serde::{Deserialize, Serialize};

/// What went into a step's key.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inputs {
    /// The key this gave (hex).
    pub key: String,
    /// The key of the layer step (or FROM) before it (hex).
    pub parent: String,
    /// Metadata instructions since that step, as their history text.
    pub before: Vec<String>,
    /// The parts of the key (tag -> value, long ones as a digest): `instruction`, `network`,
    /// `security`, `mounts`, `script` (RUN), `files` (COPY/ADD), `base` (FROM).
    pub parts: BTreeMap<String, String>,
    /// COPY/ADD sources: path -> fingerprint.
    pub files: BTreeMap<String, String>,
}

impl Inputs {
    /// The record of a step whose key `key` was made from `parts` after `parent`; long values
    /// (mount specs, heredoc scripts) are kept as their digest.
    pub fn new(
        key: &crate::exec::cache::Key,
        parent: &crate::exec::cache::Key,
        before: Vec<String>,
        parts: &[(&str, String)],
        files: BTreeMap<String, String>,
    ) -> Self {
        let short = |v: &String| {
            if v.len() > 256 {
                Digest::of(v.as_bytes()).to_string()
            } else {
                v.clone()
            }
        };
        Self {
            key: key.digest().hex().to_string(),
            parent: parent.digest().hex().to_string(),
            before,
            parts: parts
                .iter()
                .map(|(t, v)| (t.to_string(), short(v)))
                .collect(),
            files,
        }
    }
}

/// Where the records live.
pub fn dir(store_root: &Path) -> PathBuf {
    store_root.join("cache").join("inputs")
}

/// The identity of a step's place in a build.
pub fn identity(context: &Path, dockerfile: &str, stage: usize, pos: usize) -> Digest {
    let context = std::fs::canonicalize(context).unwrap_or_else(|_| context.to_path_buf());
    Digest::of(format!("{}\0{dockerfile}\0{stage}\0{pos}", context.display()).as_bytes())
}

/// The last record of step `id`.
pub fn load(dir: &Path, id: &Digest) -> Option<Inputs> {
    let bytes = std::fs::read(dir.join(format!("{}.json", id.hex()))).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Records step `id` (best effort: the records only explain).
pub fn save(dir: &Path, id: &Digest, inputs: &Inputs) {
    let Ok(bytes) = serde_json::to_vec(inputs) else {
        return;
    };
    let _ = std::fs::create_dir_all(dir);
    let tmp = dir.join(format!(".{}.{}", id.hex(), std::process::id()));
    if std::fs::write(&tmp, bytes).is_ok() {
        let _ = std::fs::rename(&tmp, dir.join(format!("{}.json", id.hex())));
    }
}

/// How `new` differs from `old`, one line per difference.
pub fn reasons(old: &Inputs, new: &Inputs) -> Vec<String> {
    let mut out = Vec::new();
    if old.parent != new.parent {
        out.push("an earlier step changed".to_string());
        return out;
    }
    if old.before != new.before {
        let was: Vec<&String> = old
            .before
            .iter()
            .filter(|b| !new.before.contains(b))
            .collect();
        let now: Vec<&String> = new
            .before
            .iter()
            .filter(|b| !old.before.contains(b))
            .collect();
        out.push(format!(
            "instruction before it changed: {} -> {}",
            quoted(&was),
            quoted(&now)
        ));
    }
    let (old_args, old_ins) = split_args(old.parts.get("instruction"));
    let (new_args, new_ins) = split_args(new.parts.get("instruction"));
    for (k, v) in &new_args {
        match old_args.get(k) {
            Some(o) if o != v => out.push(format!("build arg {k} changed: `{o}` -> `{v}`")),
            None => out.push(format!("build arg {k} is new: `{v}`")),
            _ => {}
        }
    }
    for k in old_args.keys().filter(|k| !new_args.contains_key(*k)) {
        out.push(format!("build arg {k} is gone"));
    }
    if old_ins != new_ins {
        out.push(format!("instruction changed: `{old_ins}` -> `{new_ins}`"));
    }
    if old.parts.get("files") != new.parts.get("files") && old.files == new.files {
        out.push("heredoc or downloaded source changed".into());
    }
    for part in ["network", "security", "mounts", "script", "base"] {
        if old.parts.get(part) != new.parts.get(part) {
            out.push(match part {
                "mounts" => "RUN --mount options or bind-mounted files changed".to_string(),
                "script" => "heredoc script changed".to_string(),
                "base" => format!(
                    "base image changed: {} -> {}",
                    old.parts.get(part).map_or("-", String::as_str),
                    new.parts.get(part).map_or("-", String::as_str)
                ),
                _ => format!("{part} changed"),
            });
        }
    }
    let mut changed = Vec::new();
    for (p, f) in &new.files {
        match old.files.get(p) {
            Some(o) if o != f => changed.push(format!("file changed: {p}")),
            None => changed.push(format!("file added: {p}")),
            _ => {}
        }
    }
    for p in old.files.keys().filter(|p| !new.files.contains_key(*p)) {
        changed.push(format!("file removed: {p}"));
    }
    let n = changed.len();
    out.extend(changed.into_iter().take(10));
    if n > 10 {
        out.push(format!("and {} more files", n - 10));
    }
    if out.is_empty() {
        out.push("an input changed".into());
    }
    out
}

fn quoted(v: &[&String]) -> String {
    if v.is_empty() {
        return "(none)".into();
    }
    v.iter()
        .map(|s| format!("`{s}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `RUN |2 A=1 B=2 cmd...` -> ({A: 1, B: 2}, `RUN cmd...`).
fn split_args(ins: Option<&String>) -> (BTreeMap<String, String>, String) {
    let ins = ins.map_or("", String::as_str);
    let mut args = BTreeMap::new();
    let Some(rest) = ins.strip_prefix("RUN |") else {
        return (args, ins.to_string());
    };
    let Some((n, mut rest)) = rest.split_once(' ') else {
        return (args, ins.to_string());
    };
    let n: usize = n.parse().unwrap_or(0);
    for _ in 0..n {
        let Some((word, r)) = rest.split_once(' ') else {
            break;
        };
        if let Some((k, v)) = word.split_once('=') {
            args.insert(k.to_string(), v.to_string());
        }
        rest = r;
    }
    (args, format!("RUN {rest}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs(ins: &str, files: &[(&str, &str)]) -> Inputs {
        Inputs {
            parent: "p".into(),
            parts: [("instruction".to_string(), ins.to_string())].into(),
            files: files
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn tells_what_changed() {
        let a = inputs("RUN |1 V=1 /bin/sh -c make", &[]);
        let b = inputs("RUN |1 V=2 /bin/sh -c make", &[]);
        assert_eq!(reasons(&a, &b), ["build arg V changed: `1` -> `2`"]);
        let a = inputs("COPY . /app", &[("a", "1"), ("b", "1"), ("c", "1")]);
        let b = inputs("COPY . /app", &[("a", "1"), ("b", "2"), ("d", "1")]);
        assert_eq!(
            reasons(&a, &b),
            ["file changed: b", "file added: d", "file removed: c"]
        );
        let mut c = b.clone();
        c.parent = "other".into();
        assert_eq!(reasons(&a, &c), ["an earlier step changed"]);
        let mut d = b.clone();
        d.before = vec!["ENV X=2".into()];
        assert_eq!(
            reasons(&b, &d)[0],
            "instruction before it changed: (none) -> `ENV X=2`"
        );
    }
}
