//! `hoist build`: for now the `--call targets|outline` subrequests; building lands with the
//! build issue.

use std::collections::BTreeMap;
use std::io::Read;

use anyhow::{Context, Result, bail};
use builder::dockerfile::instructions::Stages;
use builder::dockerfile::{parser, shell::Lexer};
use serde_json::json;

use crate::cli::{BuildArgs, CallKind, ListFormat};
use crate::render;

pub fn run(a: BuildArgs) -> Result<()> {
    let (name, bytes) = read_dockerfile(&a)?;
    let df = parser::parse(&bytes).map_err(|e| {
        let msg = e.to_string();
        let msg = msg
            .split_once(": ")
            .map_or(msg.as_str(), |(_, m)| m)
            .to_string();
        with_source(format!("{name}:{}: {msg}", e.line()), e.line(), &bytes)
    })?;
    let stages = Stages::from_dockerfile(&df, &name)
        .map_err(|e| with_source(e.to_string(), e.line, &bytes))?;
    let lexer = Lexer::new(df.escape);
    let build_args = build_args(&a.build_args)?;
    let Some(call) = a.call else {
        bail!(
            "building images is not available yet: use `hoist build --call targets` or `--call outline` to inspect `{name}`"
        );
    };
    let target = match &a.target {
        Some(t) => Some(
            stages
                .stage(t)
                .with_context(|| format!("target stage `{t}` not found in `{name}`"))?
                .index,
        ),
        None => None,
    };
    match (call, a.format) {
        (CallKind::Targets, ListFormat::Json) => {
            let t = builder::call::targets(&stages, &lexer, &build_args);
            super::stdout_lines([json!({ "targets": t }).to_string()])
        }
        (CallKind::Targets, ListFormat::Table) => {
            let mut rows = vec![vec![
                "TARGET".into(),
                "BASE".into(),
                "LINE".into(),
                "DESCRIPTION".into(),
            ]];
            for t in builder::call::targets(&stages, &lexer, &build_args) {
                let name = if t.default {
                    format!("{} (default)", t.name)
                } else {
                    t.name
                };
                rows.push(vec![
                    name,
                    t.base,
                    t.line.to_string(),
                    t.description.replace('\n', " "),
                ]);
            }
            print_table(&rows)
        }
        (CallKind::Outline, ListFormat::Json) => {
            let o = builder::call::outline(&stages, target, &lexer, &build_args);
            super::stdout_lines([json!({ "args": o }).to_string()])
        }
        (CallKind::Outline, ListFormat::Table) => {
            let mut rows = vec![vec![
                "BUILD ARG".into(),
                "VALUE".into(),
                "DESCRIPTION".into(),
            ]];
            for arg in builder::call::outline(&stages, target, &lexer, &build_args) {
                rows.push(vec![
                    arg.name,
                    arg.value.unwrap_or_default(),
                    arg.description.replace('\n', " "),
                ]);
            }
            print_table(&rows)
        }
    }
}

/// An error message followed by the Dockerfile line it is about, as `  7 | RUN ...`.
fn with_source(msg: String, line: usize, bytes: &[u8]) -> anyhow::Error {
    match bytes.split(|&b| b == b'\n').nth(line.saturating_sub(1)) {
        Some(text) if line > 0 => {
            let text = String::from_utf8_lossy(text);
            anyhow::anyhow!("{msg}\n {line:>4} | {}", text.trim_end())
        }
        _ => anyhow::anyhow!(msg),
    }
}

fn print_table(rows: &[Vec<String>]) -> Result<()> {
    let mut out = Vec::new();
    render::table(&mut out, rows)?;
    super::stdout_lines([String::from_utf8_lossy(&out).trim_end().to_string()])
}

/// The Dockerfile's display name and bytes.
fn read_dockerfile(a: &BuildArgs) -> Result<(String, Vec<u8>)> {
    match &a.file {
        Some(f) if f.as_os_str() == "-" => {
            let mut v = Vec::new();
            std::io::stdin()
                .read_to_end(&mut v)
                .context("cannot read the Dockerfile from stdin")?;
            Ok(("Dockerfile".into(), v))
        }
        Some(f) => Ok((
            f.display().to_string(),
            std::fs::read(f)
                .with_context(|| format!("cannot read the Dockerfile `{}`", f.display()))?,
        )),
        None => {
            let p = a.context.join("Dockerfile");
            let bytes = std::fs::read(&p).with_context(|| {
                format!("cannot read `{}`: give the Dockerfile with -f", p.display())
            })?;
            Ok((p.display().to_string(), bytes))
        }
    }
}

/// `--build-arg K=V` or `K` (value from the environment; skipped when unset, as docker does).
fn build_args(raw: &[String]) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for r in raw {
        match r.split_once('=') {
            Some((k, v)) if !k.is_empty() => {
                out.insert(k.to_string(), v.to_string());
            }
            Some(_) => bail!("invalid --build-arg `{r}`: expected KEY=VALUE"),
            None => {
                if let Ok(v) = std::env::var(r) {
                    out.insert(r.clone(), v);
                }
            }
        }
    }
    Ok(out)
}
