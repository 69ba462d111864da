//! `hoist build`: runs the builder's executor on the store (bases resolved or pulled here, so
//! the builder never talks to a registry), renders its progress on stderr, tags the result and
//! prints the image ID; `--call targets|outline` inspects the Dockerfile instead.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::Path;

use anyhow::{Context, Result, bail};
use builder::dockerfile::args::Platform;
use builder::dockerfile::instructions::Stages;
use builder::dockerfile::{parser, shell::Lexer};
use builder::exec::{Bases, BuildOptions, Event, Network, Reporter, Secret};
use serde_json::json;

use crate::cli::{BuildArgs, BuildNetwork, CallKind, ListFormat, ProgressMode};
use crate::render;
use crate::transfer::PullPolicy;

pub fn run(root: &Path, insecure: &[String], mut a: BuildArgs) -> Result<()> {
    if store::apply::rootless() {
        anyhow::bail!(
            "hoist build needs root: rootless builds are not supported yet (pull, run, commit, \
             export, save and push work without root)"
        );
    }
    // `hoist build -`: the context (a tar, plain or gzip/zstd) or only a Dockerfile on stdin.
    let _stdin_context = if a.context.as_os_str() == "-" {
        Some(stdin_context(&mut a)?)
    } else {
        None
    };
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
    let target = match &a.target {
        Some(t) => Some(
            stages
                .stage(t)
                .with_context(|| format!("target stage `{t}` not found in `{name}`"))?
                .index,
        ),
        None => None,
    };
    let Some(call) = a.call else {
        return build(
            root, insecure, &a, name, &stages, &lexer, build_args, target,
        );
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

/// A directory removed (with what is in it) on drop.
struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = store::fsutil::remove_all(&self.0);
    }
}

/// Reads stdin for `hoist build -`: a tar becomes the context (unpacked with the store's safe
/// unpacker, so no entry lands outside it); anything else is the Dockerfile, with an empty
/// context. Points `a.context` (and `a.file`) at what it made.
fn stdin_context(a: &mut BuildArgs) -> Result<TempDir> {
    if a.file.as_deref() == Some(Path::new("-")) {
        bail!("the context and the Dockerfile cannot both come from stdin");
    }
    let mut raw = Vec::new();
    std::io::stdin()
        .read_to_end(&mut raw)
        .context("cannot read the build context from stdin")?;
    let mut bytes = Vec::new();
    store::compress::decompress(&raw[..])
        .and_then(|mut r| r.read_to_end(&mut bytes))
        .context("cannot decompress the build context from stdin")?;
    let dir = TempDir(
        std::env::temp_dir().join(format!("hoist-context-{}", store::fsutil::random_suffix())),
    );
    let ctx = dir.0.join("context");
    std::fs::create_dir_all(&ctx).with_context(|| format!("cannot create `{}`", ctx.display()))?;
    let is_tar = bytes.len() >= 512 && bytes.get(257..262) == Some(b"ustar".as_slice());
    if is_tar {
        store::apply::apply_layer(&bytes[..], &ctx, &[], "the build context from stdin")?;
        // As docker: `-f` names a file inside the context that came on stdin.
        if let Some(f) = a.file.take() {
            let rel = f.strip_prefix("/").unwrap_or(&f).to_path_buf();
            a.file = Some(ctx.join(rel));
        }
    } else {
        let df = dir.0.join("Dockerfile");
        std::fs::write(&df, &raw).with_context(|| format!("cannot write `{}`", df.display()))?;
        a.file = Some(df);
    }
    a.context = ctx;
    Ok(dir)
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

/// `--secret id=ID[,src=PATH|,env=VAR]` (docker's forms; `type=file|env` accepted; without
/// src or env, the environment variable named ID, else the file named ID).
fn secrets(raw: &[String]) -> Result<BTreeMap<String, Secret>> {
    let mut out = BTreeMap::new();
    for r in raw {
        let (mut id, mut src, mut env, mut kind) = (None, None, None, None);
        for field in r.split(',') {
            let (k, v) = field
                .split_once('=')
                .with_context(|| format!("invalid --secret `{r}`: expected id=ID,src=PATH"))?;
            match k {
                "id" => id = Some(v.to_string()),
                "src" | "source" => src = Some(v.to_string()),
                "env" => env = Some(v.to_string()),
                "type" if v == "file" || v == "env" => kind = Some(v.to_string()),
                _ => bail!("invalid --secret `{r}`: unknown field `{k}`"),
            }
        }
        let id = id.with_context(|| format!("invalid --secret `{r}`: no id"))?;
        let secret = match (src, env, kind.as_deref()) {
            (Some(s), None, Some("env")) => env_secret(&s, r)?,
            (Some(s), None, _) => {
                let p = std::path::PathBuf::from(&s);
                if !p.is_file() {
                    bail!("secret file `{s}` of --secret id={id} does not exist");
                }
                Secret::File(p)
            }
            (None, Some(e), _) => env_secret(&e, r)?,
            (None, None, Some("file")) => Secret::File(id.clone().into()),
            (None, None, _) => match std::env::var_os(&id) {
                Some(_) => env_secret(&id, r)?,
                None => Secret::File(id.clone().into()),
            },
            (Some(_), Some(_), _) => bail!("invalid --secret `{r}`: give src or env, not both"),
        };
        out.insert(id, secret);
    }
    Ok(out)
}

fn env_secret(var: &str, raw: &str) -> Result<Secret> {
    let v = std::env::var_os(var).with_context(|| {
        format!("--secret `{raw}`: the environment variable `{var}` is not set")
    })?;
    Ok(Secret::Value(
        std::os::unix::ffi::OsStrExt::as_bytes(v.as_os_str()).to_vec(),
    ))
}

/// `--ssh ID[=SOCKET]` (`default` takes `$SSH_AUTH_SOCK`).
fn ssh_sockets(raw: &[String]) -> Result<BTreeMap<String, std::path::PathBuf>> {
    let mut out = BTreeMap::new();
    for r in raw {
        let (id, sock) = match r.split_once('=') {
            Some((id, s)) => (id.to_string(), s.to_string()),
            None => (
                r.clone(),
                std::env::var("SSH_AUTH_SOCK").with_context(|| {
                    format!("--ssh {r}: give a socket (--ssh {r}=PATH) or set SSH_AUTH_SOCK")
                })?,
            ),
        };
        if sock.contains(',') {
            bail!("--ssh {r}: only one agent socket per id is supported, not key files");
        }
        out.insert(id, sock.into());
    }
    Ok(out)
}

/// Builds the image, tags it and prints its ID.
#[allow(clippy::too_many_arguments)]
fn build(
    root: &Path,
    insecure: &[String],
    a: &BuildArgs,
    name: String,
    stages: &Stages,
    lexer: &Lexer,
    build_args: BTreeMap<String, String>,
    target: Option<usize>,
) -> Result<()> {
    let tags = a
        .tags
        .iter()
        .map(|t| oci::Reference::parse_docker(t).with_context(|| format!("invalid tag `{t}`")))
        .collect::<Result<Vec<_>>>()?;
    let mut labels = BTreeMap::new();
    for l in &a.labels {
        let (k, v) = l.split_once('=').unwrap_or((l.as_str(), ""));
        labels.insert(k.to_string(), v.to_string());
    }
    if !a.context.is_dir() {
        bail!(
            "the build context `{}` is not a directory",
            a.context.display()
        );
    }
    let store = super::open(root)?;
    let _lease = store.lease()?;
    let opts =
        BuildOptions {
            context: a.context.clone(),
            dockerfile_path: match &a.file {
                Some(f) if f.as_os_str() == "-" => None,
                Some(f) => Some(f.clone()),
                None => Some(a.context.join("Dockerfile")),
            },
            dockerfile_name: name,
            target,
            build_args,
            no_cache: a.no_cache,
            pull: a.pull,
            network: match a.network {
                BuildNetwork::Default => Network::Default,
                BuildNetwork::None => Network::None,
                BuildNetwork::Host => Network::Host,
            },
            labels,
            source_date_epoch: match std::env::var("SOURCE_DATE_EPOCH") {
                Ok(s) => Some(s.trim().parse().with_context(|| {
                    format!("SOURCE_DATE_EPOCH `{s}` is not a number of seconds")
                })?),
                Err(_) if a.reproducible => Some(0),
                Err(_) => None,
            },
            sandbox_exe: "/proc/self/exe".into(),
            secrets: secrets(&a.secrets)?,
            ssh: ssh_sockets(&a.ssh)?,
            platform: a
                .platform
                .as_deref()
                .map(|p| {
                    Platform::parse(p).with_context(|| {
                        format!("invalid --platform `{p}`: expected os/arch[/variant]")
                    })
                })
                .transpose()?,
            allow_insecure: entitlements(&a.allow)?,
        };
    let output = a.output.as_deref().map(parse_output).transpose()?;
    let quiet = a.quiet || a.progress == ProgressMode::Quiet;
    let bases = StoreBases {
        store: &store,
        remote: crate::transfer::Remote::new(insecure),
        quiet,
    };
    let printer = Printer {
        quiet,
        json: a.progress == ProgressMode::Json,
        start: std::time::Instant::now(),
    };
    let built = builder::exec::build(&store, stages, lexer, &opts, &bases, &printer)?;
    store.tag(&built.manifest, &tags)?;
    let to_stdout = matches!(&output, Some(OutputSpec::Archive(_, d) | OutputSpec::Rootfs(d)) if d.as_os_str() == "-");
    if let Some(out) = output {
        write_output(&store, &built, &tags, out)?;
    }
    if let Some(f) = &a.iidfile {
        std::fs::write(f, built.id.to_string())
            .with_context(|| format!("cannot write the image ID to `{}`", f.display()))?;
    }
    if !quiet {
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "writing image {}", built.id);
        for t in &tags {
            let _ = writeln!(err, "naming to {t}");
        }
    }
    if to_stdout {
        // stdout carries the output; the ID went to stderr above.
        return Ok(());
    }
    super::stdout_lines([built.id.to_string()])
}

/// `--allow`: only `security.insecure` exists (`network.host` is accepted: RUN may use the
/// host network anyway).
fn entitlements(raw: &[String]) -> Result<bool> {
    let mut insecure = false;
    for e in raw {
        match e.as_str() {
            "security.insecure" => insecure = true,
            "network.host" => {}
            _ => bail!("unknown entitlement `{e}`: use security.insecure or network.host"),
        }
    }
    Ok(insecure)
}

/// Where `--output` sends the result.
enum OutputSpec {
    /// An image archive (`type=docker` or `type=oci`) at a file or `-`.
    Archive(store::archive::ArchiveFormat, std::path::PathBuf),
    /// The flattened root filesystem as a tar (`type=tar`).
    Rootfs(std::path::PathBuf),
}

/// `--output type=docker|oci|tar,dest=PATH` (`-` for stdout).
fn parse_output(s: &str) -> Result<OutputSpec> {
    let (mut kind, mut dest) = (None, None);
    for field in s.split(',') {
        match field.split_once('=') {
            Some(("type", v)) => kind = Some(v.to_string()),
            Some(("dest", v)) => dest = Some(std::path::PathBuf::from(v)),
            _ => bail!("invalid --output `{s}`: expected type=docker|oci|tar,dest=PATH"),
        }
    }
    let dest = dest.with_context(|| format!("--output `{s}` needs dest=PATH"))?;
    Ok(match kind.as_deref() {
        Some("docker") => OutputSpec::Archive(store::archive::ArchiveFormat::DockerArchive, dest),
        Some("oci") => OutputSpec::Archive(store::archive::ArchiveFormat::OciArchive, dest),
        Some("tar") => OutputSpec::Rootfs(dest),
        other => bail!(
            "--output type `{}` is not supported: use docker, oci or tar",
            other.unwrap_or("")
        ),
    })
}

fn write_output(
    store: &store::Store,
    built: &builder::exec::Built,
    tags: &[oci::Reference],
    out: OutputSpec,
) -> Result<()> {
    let image = store.load_image(&built.manifest)?;
    let layers = || -> Result<Vec<std::path::PathBuf>> {
        let mut dirs = store.snapshots().prepare(store.blobs(), &image)?;
        dirs.reverse();
        Ok(dirs)
    };
    match out {
        OutputSpec::Archive(format, dest) => {
            let items = [store::archive::SaveItem {
                image: image.clone(),
                names: tags.to_vec(),
            }];
            let mut w = super::Output::new(Some(&dest))?;
            match store::archive::save(store, &items, format, &mut w) {
                Ok(_) => w.finish(),
                Err(e) => {
                    w.abort();
                    Err(e).with_context(|| format!("cannot write `{}`", dest.display()))
                }
            }
        }
        OutputSpec::Rootfs(dest) => {
            let dirs = layers()?;
            let mut w = super::Output::new(Some(&dest))?;
            match store::flatten::write_flattened(&dirs, &mut w, None) {
                Ok(_) => w.finish(),
                Err(e) => {
                    w.abort();
                    Err(e).with_context(|| format!("cannot write `{}`", dest.display()))
                }
            }
        }
    }
}

/// Bases from the store, pulled when missing.
struct StoreBases<'a> {
    store: &'a store::Store,
    /// The way to registries (and URLs), made once for the build on first use.
    remote: crate::transfer::Remote,
    /// `-q`/`--progress quiet`: pulls print nothing.
    quiet: bool,
}

impl Bases for StoreBases<'_> {
    fn image(
        &self,
        reference: &str,
        pull_always: bool,
        platform: &Platform,
    ) -> std::result::Result<store::Image, Box<dyn std::error::Error + Send + Sync>> {
        let fits = |img: &store::Image| {
            img.config.architecture.is_empty()
                || (img.config.architecture == platform.arch && img.config.os == platform.os)
        };
        // A local image for another platform does not count: pull the wanted one.
        if !pull_always
            && let Ok(local) = self.store.resolve(reference)
            && fits(&local)
        {
            return Ok(local);
        }
        let wanted = registry_client::platform::Platform::parse(&platform.to_string())?;
        let image = crate::transfer::resolve_or_pull(
            self.store,
            reference,
            PullPolicy::Always,
            &self.remote,
            Some(wanted),
            self.quiet,
        )?;
        if !fits(&image) {
            return Err(format!(
                "`{reference}` is for {}/{}, not {platform}",
                image.config.os, image.config.architecture
            )
            .into());
        }
        Ok(image)
    }

    fn fetch(
        &self,
        url: &str,
        dest: &Path,
    ) -> std::result::Result<Option<i64>, Box<dyn std::error::Error + Send + Sync>> {
        let (rt, client) = self.remote.get()?;
        Ok(rt.block_on(registry_client::download::download(client, url, dest))?)
    }
}

/// Renders build events as BuildKit's plain progress does, on stderr.
struct Printer {
    quiet: bool,
    /// One JSON object per event instead (`--progress json`).
    json: bool,
    start: std::time::Instant,
}

impl Reporter for Printer {
    fn event(&self, event: Event<'_>) {
        if self.quiet {
            return;
        }
        let mut err = std::io::stderr().lock();
        if self.json {
            let t = self.start.elapsed().as_secs_f64();
            let v = match event {
                Event::Step { id, name } => {
                    json!({"time": t, "id": id, "event": "step", "name": name})
                }
                Event::Cached { id } => json!({"time": t, "id": id, "event": "cached"}),
                Event::Miss { id, reason } => {
                    json!({"time": t, "id": id, "event": "miss", "reason": reason})
                }
                Event::Output { id, elapsed, line } => {
                    json!({"time": t, "id": id, "event": "output", "elapsed": elapsed, "line": line})
                }
                Event::Done { id, elapsed } => {
                    json!({"time": t, "id": id, "event": "done", "elapsed": elapsed})
                }
                Event::Warning(w) => json!({"time": t, "event": "warning", "message": w}),
            };
            let _ = writeln!(err, "{v}");
            return;
        }
        let _ = match event {
            Event::Step { id, name } => writeln!(err, "#{id} {name}"),
            Event::Cached { id } => writeln!(err, "#{id} CACHED\n"),
            Event::Miss { id, reason } => writeln!(err, "#{id} cache miss: {reason}"),
            Event::Output { id, elapsed, line } => writeln!(err, "#{id} {elapsed:.3} {line}"),
            Event::Done { id, elapsed } => writeln!(err, "#{id} DONE {elapsed:.1}s\n"),
            Event::Warning(w) => writeln!(
                err,
                "warning: {w} ({:.1}s)",
                self.start.elapsed().as_secs_f64()
            ),
        };
    }
}
