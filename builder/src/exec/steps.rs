//! The layer steps: RUN in the sandbox, COPY/ADD through an overlay mount, and WORKDIR when
//! its directory must be created.

use std::collections::{BTreeMap, VecDeque};
use std::io::BufRead;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

use runtime_lite::{Process, RootFs, Spec};

use super::error::{BuildError, IoAt, Origin};
use super::mounts::{Mount, ReadOnlyRoot, Scratch};
use super::{Build, DEFAULT_PATH, Event, Network, State, with_shell};
use crate::copy::{self, CopyRequest, Source};
use crate::dockerfile::args::GlobalScope;
use crate::dockerfile::args::StageScope;
use crate::dockerfile::instructions::{Command, Instruction};
use crate::dockerfile::parser::{Heredoc, chomp_heredoc_content, parse_heredoc};
use crate::dockerfile::shell::Lexer;
use store::apply::read_file_in_layers as image_file;

/// What the sandbox of a RUN executes.
struct RunSpec {
    args: Vec<String>,
    env: Vec<String>,
    network: Network,
    mounts: Vec<runtime_lite::Mount>,
    /// `--security=insecure`: every capability, no masked paths.
    privileged: bool,
}

/// How many lines of a failed RUN's output the error keeps.
const TAIL_LINES: usize = 10;

impl Build<'_> {
    /// RUN.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn run_step(
        &self,
        stage: usize,
        global: &GlobalScope,
        state: &mut State,
        scope: &StageScope<'_>,
        id: usize,
        name: &str,
        at: &Origin,
        ins: &Instruction,
    ) -> Result<(), BuildError> {
        let Instruction::Run {
            command,
            heredocs,
            mounts,
            network,
            security,
        } = ins
        else {
            unreachable!("run_step is called for RUN")
        };
        let bad = |message: String| at.error(message);
        let insecure = match security.as_deref() {
            None | Some("sandbox") => false,
            Some("insecure") if self.opts.allow_insecure => true,
            Some("insecure") => {
                return Err(bad(
                    "RUN --security=insecure needs the entitlement: pass --allow security.insecure"
                        .into(),
                ));
            }
            Some(other) => {
                return Err(bad(format!(
                    "invalid --security `{other}`: use sandbox or insecure"
                )));
            }
        };
        let network = match network.as_deref() {
            Some(n) => Network::parse(n).ok_or_else(|| {
                bad(format!(
                    "invalid --network `{n}`: use default, none or host"
                ))
            })?,
            None => self.opts.network,
        };
        let host = crate::dockerfile::args::Platform::host();
        if !state.config.architecture.is_empty()
            && (state.config.architecture != host.arch || state.config.os != host.os)
        {
            return Err(bad(format!(
                "RUN would execute {}/{} programs on this {host} machine: hoist has no emulation (build for {host}, or drop the RUN)",
                state.config.os, state.config.architecture
            )));
        }
        let (args, script) = run_args(&state.config, command, heredocs).map_err(bad)?;
        let mut history = vec![];
        let build_args = scope.history_args();
        if !build_args.is_empty() {
            history.push(format!("|{}", build_args.len()));
            history.extend(build_args);
        }
        history.extend(args.iter().cloned());
        let created_by = format!("RUN {}", history.join(" "));
        let (planned, mount_key) = self.plan_mounts(stage, global, state, mounts, at)?;
        let parts = vec![
            ("instruction", created_by.clone()),
            ("network", network.as_str().to_string()),
            (
                "security",
                if insecure { "insecure" } else { "sandbox" }.to_string(),
            ),
            ("mounts", mount_key),
            (
                "script",
                script.as_ref().map_or(String::new(), |(_, d)| d.clone()),
            ),
        ];
        let shown = match command {
            Command::Shell(s) => s.clone(),
            Command::Exec(v) => super::history::go_quote_list(v),
        };
        self.reporter.event(Event::Step { id, name });
        let mut env = scope.run_env();
        if !env.iter().any(|e| e.starts_with("PATH=")) {
            env.insert(0, format!("PATH={DEFAULT_PATH}"));
        }
        let at = at.clone();
        let created_by = format!("{created_by} # buildkit");
        self.layer_step(
            state,
            parts,
            BTreeMap::new(),
            id,
            created_by,
            move |b, state, scratch, id| {
                let mut mounted = b.mount_all(&planned, scratch, &at)?;
                env.extend(mounted.env.iter().cloned());
                if let Some((file, data)) = &script {
                    // A heredoc with a shebang runs as a file, as BuildKit does.
                    let dir = scratch.subdirs(&["pipes"])?.remove(0);
                    let path = dir.join(file);
                    std::fs::write(&path, data).at("write", &path)?;
                    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
                        .at("chmod", &path)?;
                    mounted.mounts.push(runtime_lite::Mount::Bind {
                        source: dir,
                        target: "/dev/pipes".into(),
                        readonly: true,
                    });
                }
                let run = RunSpec {
                    args,
                    env,
                    network,
                    mounts: std::mem::take(&mut mounted.mounts),
                    privileged: insecure,
                };
                let upper = b.sandbox(state, scratch, id, &at, &shown, run);
                drop(mounted);
                upper
            },
        )
    }

    /// Runs a RUN command in the sandbox on the stage's snapshots; returns the upper dir.
    fn sandbox(
        &self,
        state: &State,
        scratch: &Scratch,
        id: usize,
        at: &Origin,
        shown: &str,
        run: RunSpec,
    ) -> Result<PathBuf, BuildError> {
        let RunSpec {
            args,
            env,
            network,
            mounts,
            privileged,
        } = run;
        let dirs = scratch.subdirs(&["init", "upper", "work", "merged", "etc"])?;
        let [init, upper, work, merged, etc] =
            <[PathBuf; 5]>::try_from(dirs).expect("subdirs returns one path per name");
        // Mount points live in the init layer, so they never show in the new layer.
        runtime_lite::prep::init_layer(&init, &mounts).at("prepare the init layer in", &init)?;
        let net = match network {
            Network::None => runtime_lite::Network::None,
            Network::Default | Network::Host => runtime_lite::Network::Host,
        };
        let hostname = "buildkitsandbox";
        let etc_files =
            runtime_lite::prep::etc_files(&etc, hostname, net).at("write /etc files in", &etc)?;
        let mut lowers = vec![init];
        lowers.extend(state.lowers());
        let image_lowers = state.lowers();
        let user_spec = state
            .config
            .config
            .as_ref()
            .and_then(|c| c.user.clone())
            .unwrap_or_default();
        let user = runtime_lite::user::resolve(
            &user_spec,
            image_file(&image_lowers, "etc/passwd").as_deref(),
            image_file(&image_lowers, "etc/group").as_deref(),
            &[],
        )
        .map_err(|e| at.error(format!("cannot resolve USER `{user_spec}`: {e}")))?;
        let cwd = state
            .config
            .config
            .as_ref()
            .and_then(|c| c.working_dir.clone())
            .filter(|w| !w.is_empty())
            .unwrap_or_else(|| "/".into());
        let rootfs = RootFs::Overlay {
            lowers,
            upper: upper.clone(),
            work,
            target: merged,
        };
        let spec = Spec {
            process: Process {
                args,
                env,
                cwd,
                uid: user.uid,
                gid: user.gid,
                // As BuildKit: only the groups /etc/group lists the user in, not its own.
                additional_gids: user.groups,
            },
            hostname: hostname.into(),
            network: net,
            etc_files,
            name: format!("build-{}", store::fsutil::random_suffix()),
            mounts,
            volatile_upper: true,
            privileged,
            capabilities: if privileged {
                runtime_lite::caps::CapSet::all()
            } else {
                runtime_lite::caps::docker_default()
            },
            ..Spec::new(rootfs, Vec::new())
        };
        let (read, write) = rustix::pipe::pipe()
            .map_err(std::io::Error::from)
            .at("create a pipe in", scratch.path())?;
        let write2 = write.try_clone().at("create a pipe in", scratch.path())?;
        let tail: Mutex<VecDeque<String>> = Mutex::new(VecDeque::new());
        let started = Instant::now();
        let reporter = self.reporter;
        let code = std::thread::scope(|s| {
            let tail = &tail;
            s.spawn(move || {
                let mut r = std::io::BufReader::new(std::fs::File::from(read));
                let mut buf = Vec::new();
                loop {
                    buf.clear();
                    match r.read_until(b'\n', &mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(_) => {}
                    }
                    let line = String::from_utf8_lossy(&buf);
                    let line = line.trim_end_matches(['\n', '\r']);
                    reporter.event(Event::Output {
                        id,
                        elapsed: started.elapsed().as_secs_f64(),
                        line,
                    });
                    let mut t = tail.lock().unwrap_or_else(|p| p.into_inner());
                    if t.len() == TAIL_LINES {
                        t.pop_front();
                    }
                    t.push_back(line.to_string());
                }
            });
            runtime_lite::run_with_output(
                &spec,
                &self.opts.sandbox_exe,
                write.into(),
                write2.into(),
            )
        });
        let code = code.map_err(|source| BuildError::Sandbox {
            at: at.clone(),
            command: shown.to_string(),
            source,
        })?;
        if code != 0 {
            return Err(BuildError::RunFailed {
                at: at.clone(),
                command: shown.to_string(),
                code,
                output: tail.into_inner().unwrap_or_else(|p| p.into_inner()).into(),
            });
        }
        Ok(upper)
    }

    /// COPY and ADD.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn copy_step(
        &self,
        stage: usize,
        global: &GlobalScope,
        state: &mut State,
        scope: &StageScope<'_>,
        id: usize,
        name: &str,
        at: &Origin,
        ins: &Instruction,
    ) -> Result<(), BuildError> {
        let (kind, sources, dest, options, heredocs) = match ins {
            Instruction::Copy {
                sources,
                dest,
                options,
                heredocs,
            } => ("COPY", sources, dest, options, heredocs),
            Instruction::Add {
                sources,
                dest,
                options,
                heredocs,
            } => ("ADD", sources, dest, options, heredocs),
            _ => unreachable!("copy_step is called for COPY and ADD"),
        };
        let bad = |message: String| at.error(message);
        let (paths, inline) = split_heredoc_sources(sources, heredocs, scope).map_err(bad)?;
        let (urls, paths): (Vec<String>, Vec<String>) = paths
            .into_iter()
            .partition(|s| s.starts_with("http://") || s.starts_with("https://"));
        if kind == "COPY" && !urls.is_empty() {
            return Err(bad(format!(
                "COPY cannot take a URL (`{}`): use ADD",
                urls[0]
            )));
        }
        if options.checksum.is_some() && (urls.len() != 1 || !paths.is_empty()) {
            return Err(bad(
                "ADD --checksum needs exactly one source, given by URL".into()
            ));
        }
        if paths.len() + inline.len() + urls.len() > 1 && !dest.ends_with('/') && paths.len() < 2 {
            return Err(bad(format!(
                "when using {kind} with more than one source file, the destination must be a directory and end with a /"
            )));
        }
        let chmod = options
            .chmod
            .as_deref()
            .map(|m| {
                u32::from_str_radix(m, 8)
                    .ok()
                    .filter(|m| *m <= 0o7777)
                    .ok_or_else(|| bad(format!("invalid --chmod `{m}`: expected an octal mode")))
            })
            .transpose()?;
        let chown = options
            .chown
            .as_deref()
            .map(|c| chown_ids(c, &state.lowers()).map_err(bad))
            .transpose()?;
        let workdir = state
            .config
            .config
            .as_ref()
            .and_then(|c| c.working_dir.clone())
            .unwrap_or_else(|| "/".into());
        let req = |sources: Vec<String>, unpack: bool| CopyRequest {
            sources,
            dest: dest.clone(),
            workdir: workdir.clone(),
            chown,
            chmod,
            parents: options.parents,
            exclude: options.exclude.clone(),
            unpack_archives: unpack,
        };
        let created_by = format!("{kind} {} {dest}", sources.join(" "));
        self.reporter.event(Event::Step { id, name });
        // A directory for the sources only when they need one (a cached plain COPY makes none).
        let scratch = if options.from.is_some() || !inline.is_empty() || !urls.is_empty() {
            Some(Scratch::new(self.store.root())?)
        } else {
            None
        };
        let scratch_dir = |name: &str| {
            scratch
                .as_ref()
                .expect("made when there are heredocs, URLs or --from")
                .path()
                .join(name)
        };
        let copy_err = |source| at.copy_error(kind, source);
        // The files: from another stage or image (read through a read-only overlay), or the
        // context; heredocs from files written to a scratch directory.
        let from_root = match &options.from {
            Some(from) => {
                let (layers, _) = self.layers_of(stage, global, from, at)?;
                let scratch = scratch.as_ref().expect("made for --from");
                Some(ReadOnlyRoot::new(scratch, "from", &layers)?)
            }
            None => None,
        };
        let mut files = BTreeMap::new();
        let heredoc_dir = (!inline.is_empty()).then(|| scratch_dir("heredocs"));
        let url_dir = (!urls.is_empty()).then(|| scratch_dir("urls"));
        let mut parts = Vec::new();
        let mut digests = String::new();
        // Selects one kind of source, adding its digest and per-file fingerprints.
        let mut add = |src: &Source<'_>, req: &CopyRequest| -> Result<_, BuildError> {
            let sel = copy::select(src, req).map_err(copy_err)?;
            let (digest, fingerprints) = sel.digest_files(src, &self.memo).map_err(copy_err)?;
            files.extend(fingerprints);
            digests.push_str(&format!("{digest}\n"));
            Ok(sel)
        };
        if !paths.is_empty() {
            let src = match &from_root {
                Some(r) => Source::rootfs(r.path()),
                None => Source::context(&self.opts.context, self.ignore),
            };
            let req = req(paths, kind == "ADD" && options.unpack != Some(false));
            let sel = add(&src, &req)?;
            parts.push((src, req, sel));
        }
        if let Some(dir) = &heredoc_dir {
            std::fs::create_dir_all(dir).at("create directory", dir)?;
            let mut names = Vec::new();
            for (name, data) in &inline {
                let path = dir.join(name);
                std::fs::write(&path, data).at("write", &path)?;
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644))
                    .at("chmod", &path)?;
                names.push(name.clone());
            }
            let (src, req) = (Source::rootfs(dir), req(names, false));
            let sel = add(&src, &req)?;
            parts.push((src, req, sel));
        }
        if let Some(dir) = &url_dir {
            std::fs::create_dir_all(dir).at("create directory", dir)?;
            let mut names = Vec::new();
            for url in &urls {
                let name = url_file_name(url);
                if names.contains(&name) {
                    return Err(bad(format!("two URLs give the same file name `{name}`")));
                }
                let path = dir.join(&name);
                let modified = self
                    .bases
                    .fetch(url, &path)
                    .map_err(|e| bad(e.to_string()))?;
                if let Some(want) = &options.checksum {
                    let mut r = store::snapshot::HashingReader::new(
                        std::fs::File::open(&path).at("read", &path)?,
                    );
                    std::io::copy(&mut r, &mut std::io::sink()).at("read", &path)?;
                    let got = r.digest();
                    if got.to_string() != *want {
                        return Err(bad(format!(
                            "checksum of `{url}` is {got}, not {want} as --checksum wants"
                        )));
                    }
                }
                // As BuildKit: mode 0600, the server's Last-Modified as mtime.
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
                    .at("chmod", &path)?;
                if let Some(t) = modified {
                    copy::set_times(&path, (t, 0), (t, 0)).map_err(copy_err)?;
                }
                names.push(name);
            }
            let (src, req) = (Source::rootfs(dir), req(names, false));
            let sel = add(&src, &req)?;
            parts.push((src, req, sel));
        }
        let step_parts = vec![("instruction", created_by.clone()), ("files", digests)];
        let created_by = format!("{created_by} # buildkit");
        self.layer_step(
            state,
            step_parts,
            files,
            id,
            created_by,
            |_, state, scratch, _| {
                write_layer(state, scratch, |root, staging| {
                    // Staged contents land after everything written through the overlay: only
                    // a lone part keeps the order of writes.
                    let staging = staging.filter(|_| parts.len() == 1);
                    let mut staged = Vec::new();
                    for (src, req, sel) in &parts {
                        let (_, s) =
                            copy::apply_staged(src, sel, req, root, staging).map_err(copy_err)?;
                        staged.extend(s);
                    }
                    Ok(staged)
                })
                .map_err(|e| match e {
                    Written::Build(e) => e,
                    Written::Copy(e) => copy_err(e),
                })
            },
        )
    }

    /// WORKDIR `wd` when it is missing from the image: `mkdir -p`, owned by USER.
    pub(super) fn workdir(
        &self,
        state: &mut State,
        id: usize,
        name: &str,
        at: &Origin,
        wd: &str,
        created_by: String,
    ) -> Result<(), BuildError> {
        self.reporter.event(Event::Step { id, name });
        let owner = match state.config.config.as_ref().and_then(|c| c.user.clone()) {
            Some(u) if !u.is_empty() => {
                Some(chown_ids(&u, &state.lowers()).map_err(|m| at.error(m))?)
            }
            _ => None,
        };
        let parts = vec![("instruction", created_by.clone())];
        let at = at.clone();
        let wd = wd.to_string();
        self.layer_step(
            state,
            parts,
            BTreeMap::new(),
            id,
            created_by,
            move |_, state, scratch, _| {
                write_layer(state, scratch, |root, _| {
                    copy::mkdir_in_root(root, &wd, owner)
                        .map(|_| Vec::new())
                        .map_err(|e| at.copy_error("WORKDIR", e))
                })
                .map_err(|e| match e {
                    Written::Build(e) => e,
                    Written::Copy(e) => at.copy_error("WORKDIR", e),
                })
            },
        )
    }
}

/// Why [`write_layer`] failed.
enum Written {
    Build(BuildError),
    /// Moving staged contents into place.
    Copy(copy::CopyError),
}

impl From<BuildError> for Written {
    fn from(e: BuildError) -> Self {
        Written::Build(e)
    }
}

/// Runs `write` on the stage's root filesystem with a fresh upper dir (an overlay of its
/// snapshots, or the upper dir itself when there are none); returns the upper dir. `write`
/// also gets a staging directory beside the overlay, and returns what it staged there: moved
/// into the upper dir once the overlay is unmounted (see [`copy::apply_staged`]).
fn write_layer(
    state: &State,
    scratch: &Scratch,
    write: impl FnOnce(&Path, Option<&Path>) -> Result<Vec<copy::Staged>, BuildError>,
) -> Result<PathBuf, Written> {
    let dirs = scratch.subdirs(&["upper", "work", "merged", "staging"])?;
    let (upper, work, merged, staging) = (&dirs[0], &dirs[1], &dirs[2], &dirs[3]);
    let lowers = state.lowers();
    if lowers.is_empty() {
        write(upper, None)?;
        return Ok(upper.clone());
    }
    let mount = Mount::overlay(&lowers, Some((upper, work)), merged)?;
    let staged = write(merged, Some(staging))?;
    mount.unmount()?;
    for s in staged {
        s.finish(upper).map_err(Written::Copy)?;
    }
    Ok(upper.clone())
}

/// `--chown user[:group]` (or a USER for WORKDIR) as numeric ids, names looked up in the
/// image's `/etc/passwd` and `/etc/group` (`layers` topmost first). As BuildKit: a named user
/// without a group gets its passwd group; a numeric one gets the same number as gid.
fn chown_ids(spec: &str, layers: &[PathBuf]) -> Result<(u32, u32), String> {
    let user = runtime_lite::user::resolve(
        spec,
        image_file(layers, "etc/passwd").as_deref(),
        image_file(layers, "etc/group").as_deref(),
        &[],
    )
    .map_err(|e| e.to_string())?;
    let numeric_alone = !spec.contains(':') && spec.parse::<u32>().is_ok();
    Ok((user.uid, if numeric_alone { user.uid } else { user.gid }))
}

/// What a RUN executes: its argv, and for a lone heredoc starting with `#!` the script file
/// (name, contents) to run from `/dev/pipes/`, as BuildKit does:
/// * `RUN <<EOF` alone: the heredoc is the script: run as a file when it has a shebang, else
///   through the shell (leading tabs removed for `<<-`);
/// * a command with heredocs: the command followed by each heredoc's body and terminator,
///   through the shell, which then reads them as here-documents.
#[allow(clippy::type_complexity)]
fn run_args(
    config: &oci::ImageConfig,
    command: &Command,
    heredocs: &[Heredoc],
) -> Result<(Vec<String>, Option<(String, String)>), String> {
    if heredocs.is_empty() {
        return Ok((with_shell(config, command), None));
    }
    let Command::Shell(cmd) = command else {
        return Err("a RUN in exec form cannot have heredocs".into());
    };
    let lone = matches!(parse_heredoc(cmd.trim()),
        Some(Ok(head)) if heredocs.len() == 1 && head.name == heredocs[0].name);
    if lone {
        let h = &heredocs[0];
        let data = if h.chomp {
            chomp_heredoc_content(&h.content)
        } else {
            h.content.clone()
        };
        if data.starts_with("#!") {
            return Ok((
                vec![format!("/dev/pipes/{}", h.name)],
                Some((h.name.clone(), data)),
            ));
        }
        return Ok((with_shell(config, &Command::Shell(data)), None));
    }
    let mut full = cmd.clone();
    for h in heredocs {
        full.push('\n');
        full.push_str(&h.content);
        full.push_str(&h.name);
    }
    Ok((with_shell(config, &Command::Shell(full)), None))
}

/// Splits COPY/ADD sources into paths and heredocs (file name, contents): a `<<NAME` word
/// names the heredoc NAME, whose body is expanded with the ARGs and ENV in scope unless its
/// delimiter was quoted (quotes in the body are kept, as BuildKit does).
#[allow(clippy::type_complexity)]
fn split_heredoc_sources(
    sources: &[String],
    heredocs: &[Heredoc],
    scope: &StageScope<'_>,
) -> Result<(Vec<String>, Vec<(String, String)>), String> {
    let mut paths = Vec::new();
    let mut inline = Vec::new();
    let lexer = Lexer::new('\\').with_raw_quotes(true);
    for s in sources {
        let head = match parse_heredoc(s) {
            Some(Ok(head)) => head,
            _ => {
                paths.push(s.clone());
                continue;
            }
        };
        let Some(h) = heredocs.iter().find(|h| h.name == head.name) else {
            paths.push(s.clone());
            continue;
        };
        if h.name.contains('/') || h.name == "." || h.name == ".." {
            return Err(format!("heredoc name `{}` cannot be a file name", h.name));
        }
        let mut data = if h.chomp {
            chomp_heredoc_content(&h.content)
        } else {
            h.content.clone()
        };
        if h.expand {
            data = lexer
                .process_word(&data, scope)
                .map_err(|e| format!("heredoc {}: {e}", h.name))?
                .value;
        }
        inline.push((h.name.clone(), data));
    }
    Ok((paths, inline))
}

/// The file name an `ADD URL` gets: the last segment of the URL's path (BuildKit's
/// `path.Base`), `__unnamed__` when there is none.
fn url_file_name(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let path = rest.split(['?', '#']).next().unwrap_or_default();
    let path = path.split_once('/').map_or("", |(_, p)| p);
    match path.trim_end_matches('/').rsplit('/').next() {
        Some(n) if !n.is_empty() && n != "." && n != ".." => n.to_string(),
        _ => "__unnamed__".into(),
    }
}
