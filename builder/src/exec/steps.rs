//! The layer steps: RUN in the sandbox, COPY/ADD through an overlay mount, and WORKDIR when
//! its directory must be created.

use std::collections::VecDeque;
use std::io::BufRead;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

use runtime_lite::{Process, RootFs, Spec};

use super::error::{BuildError, IoAt, Origin};
use super::mounts::{Overlay, ReadOnlyRoot, Scratch};
use super::{Build, DEFAULT_PATH, Event, Network, State, with_shell};
use crate::copy::{self, CopyRequest, Source};
use crate::dockerfile::args::StageScope;
use crate::dockerfile::instructions::{Command, Instruction};
use store::apply::read_file_in_layers as image_file;

/// How many lines of a failed RUN's output the error keeps.
const TAIL_LINES: usize = 10;

impl Build<'_> {
    /// RUN.
    pub(super) fn run_step(
        &mut self,
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
        let unsupported = |what: &str| BuildError::Instruction {
            at: at.clone(),
            message: format!("{what} is not supported yet"),
        };
        if !mounts.is_empty() {
            return Err(unsupported("RUN --mount"));
        }
        if !heredocs.is_empty() {
            return Err(unsupported("RUN with a heredoc"));
        }
        if security.as_deref() == Some("insecure") {
            return Err(unsupported("RUN --security=insecure"));
        }
        let network = match network.as_deref() {
            Some(n) => Network::parse(n).ok_or_else(|| BuildError::Instruction {
                at: at.clone(),
                message: format!("invalid --network `{n}`: use default, none or host"),
            })?,
            None => self.opts.network,
        };
        let args = with_shell(&state.config, command);
        let mut history = vec![];
        let build_args = scope.history_args();
        if !build_args.is_empty() {
            history.push(format!("|{}", build_args.len()));
            history.extend(build_args);
        }
        history.extend(args.iter().cloned());
        let created_by = format!("RUN {}", history.join(" "));
        let key = state.key.then(&[
            ("instruction", created_by.as_bytes()),
            ("network", network.as_str().as_bytes()),
        ]);
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
        self.layer_step(state, key, id, created_by, move |b, state, scratch, id| {
            b.sandbox(state, scratch, id, &at, &shown, args, env, network)
        })
    }

    /// Runs a RUN command in the sandbox on the stage's snapshots; returns the upper dir.
    #[allow(clippy::too_many_arguments)]
    fn sandbox(
        &self,
        state: &State,
        scratch: &Scratch,
        id: usize,
        at: &Origin,
        shown: &str,
        args: Vec<String>,
        env: Vec<String>,
        network: Network,
    ) -> Result<PathBuf, BuildError> {
        let dirs = scratch.subdirs(&["init", "upper", "work", "merged", "etc"])?;
        let [init, upper, work, merged, etc] =
            <[PathBuf; 5]>::try_from(dirs).expect("subdirs returns one path per name");
        runtime_lite::prep::init_layer(&init, &[]).at("prepare the init layer in", &init)?;
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
        .map_err(|e| BuildError::Instruction {
            at: at.clone(),
            message: format!("cannot resolve USER `{user_spec}`: {e}"),
        })?;
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
                additional_gids: user.additional_gids,
            },
            hostname: hostname.into(),
            network: net,
            etc_files,
            name: format!("build-{}", store::fsutil::random_suffix()),
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
    pub(super) fn copy_step(
        &mut self,
        stage: usize,
        state: &mut State,
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
        let bad = |message: String| BuildError::Instruction {
            at: at.clone(),
            message,
        };
        if !heredocs.is_empty() {
            return Err(bad(format!("{kind} with a heredoc is not supported yet")));
        }
        if kind == "ADD"
            && sources
                .iter()
                .any(|s| s.starts_with("http://") || s.starts_with("https://"))
        {
            return Err(bad("ADD from a URL is not supported yet".into()));
        }
        if options.checksum.is_some() {
            return Err(bad("ADD --checksum is not supported yet".into()));
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
        let req = CopyRequest {
            sources: sources.clone(),
            dest: dest.clone(),
            workdir,
            chown,
            chmod,
            parents: options.parents,
            exclude: options.exclude.clone(),
            unpack_archives: kind == "ADD" && options.unpack != Some(false),
        };
        let created_by = format!("{kind} {} {dest}", sources.join(" "));
        self.reporter.event(Event::Step { id, name });
        // The source: another stage or image (read through a read-only overlay), or the context.
        let scratch = Scratch::new(self.store.root())?;
        let from_root = match &options.from {
            Some(from) => {
                let layers = match self.stages.stage(from).filter(|s| s.index < stage) {
                    Some(s) => self.results[s.index]
                        .as_ref()
                        .expect("stages run in file order, so an earlier stage is built")
                        .lowers(),
                    None => {
                        let image = self.base_image(from, at)?;
                        let mut dirs =
                            self.store.snapshots().prepare(self.store.blobs(), &image)?;
                        dirs.reverse();
                        dirs
                    }
                };
                Some(ReadOnlyRoot::new(&scratch, "from", &layers)?)
            }
            None => None,
        };
        let src = match &from_root {
            Some(r) => Source::rootfs(r.path()),
            None => {
                let (opts, ignore) = (self.opts, self.ignore);
                Source::context(&opts.context, ignore)
            }
        };
        let copy_err = |source| BuildError::Copy {
            at: at.clone(),
            instruction: kind,
            source: Box::new(source),
        };
        let sel = copy::select(&src, &req).map_err(copy_err)?;
        let digest = sel.digest(&src, &mut self.memo).map_err(copy_err)?;
        let key = state.key.then(&[
            ("instruction", created_by.as_bytes()),
            ("files", digest.to_string().as_bytes()),
        ]);
        let created_by = format!("{created_by} # buildkit");
        self.layer_step(state, key, id, created_by, |_, state, scratch, _| {
            write_layer(state, scratch, |root| {
                copy::apply(&src, &sel, &req, root)
                    .map(|_| ())
                    .map_err(copy_err)
            })
        })
    }

    /// WORKDIR `wd` when it is missing from the image: `mkdir -p`, owned by USER.
    pub(super) fn workdir(
        &mut self,
        state: &mut State,
        id: usize,
        name: &str,
        at: &Origin,
        wd: &str,
        created_by: String,
    ) -> Result<(), BuildError> {
        self.reporter.event(Event::Step { id, name });
        let owner = match state.config.config.as_ref().and_then(|c| c.user.clone()) {
            Some(u) if !u.is_empty() => Some(chown_ids(&u, &state.lowers()).map_err(
                |message| BuildError::Instruction {
                    at: at.clone(),
                    message,
                },
            )?),
            _ => None,
        };
        let key = state.key.then(&[("instruction", created_by.as_bytes())]);
        let at = at.clone();
        let wd = wd.to_string();
        self.layer_step(state, key, id, created_by, move |_, state, scratch, _| {
            write_layer(state, scratch, |root| {
                let target =
                    copy::resolve_in_root(root, &wd).map_err(|source| BuildError::Copy {
                        at: at.clone(),
                        instruction: "WORKDIR",
                        source: Box::new(source),
                    })?;
                let mut missing: Vec<&Path> = target
                    .ancestors()
                    .take_while(|p| p.starts_with(root) && *p != root && !p.exists())
                    .collect();
                missing.reverse();
                for dir in missing {
                    std::fs::create_dir(dir).at("create directory", dir)?;
                    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))
                        .at("chmod", dir)?;
                    if let Some((uid, gid)) = owner {
                        rustix::fs::chown(
                            dir,
                            Some(rustix::fs::Uid::from_raw(uid)),
                            Some(rustix::fs::Gid::from_raw(gid)),
                        )
                        .map_err(std::io::Error::from)
                        .at("chown", dir)?;
                    }
                }
                Ok(())
            })
        })
    }
}

/// Runs `write` on the stage's root filesystem with a fresh upper dir (an overlay of its
/// snapshots, or the upper dir itself when there are none); returns the upper dir.
fn write_layer(
    state: &State,
    scratch: &Scratch,
    write: impl FnOnce(&Path) -> Result<(), BuildError>,
) -> Result<PathBuf, BuildError> {
    let dirs = scratch.subdirs(&["upper", "work", "merged"])?;
    let (upper, work, merged) = (&dirs[0], &dirs[1], &dirs[2]);
    let lowers = state.lowers();
    if lowers.is_empty() {
        write(upper)?;
        return Ok(upper.clone());
    }
    let mount = Overlay::mount(&lowers, Some((upper, work)), merged)?;
    write(merged)?;
    mount.unmount()?;
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
