//! `RUN --mount`: planning (targets, defaults, what goes into the cache key) and setting the
//! mounts up for the sandbox.
//!
//! As BuildKit:
//! * `bind` (the default type): `source` (default the root) of the context, or of a stage or
//!   image with `from`; read-only unless `rw`, and then writes go to a throw-away upper dir.
//!   The digest of the mounted files goes into the step's cache key.
//! * `cache`: a directory kept in the store across builds (`<store>/cache-mounts/`), keyed by
//!   `id` (default: the target); created with `mode` (0755), `uid`, `gid` (0); `sharing=locked`
//!   holds a lock for the run, `private` gets a fresh directory when the shared one is in use.
//!   With `from` (and `source`), a new cache starts with those files of the stage or image.
//!   Its contents are not part of the cache key.
//! * `tmpfs`: a tmpfs, `size` bytes at most.
//! * `secret`: the `--secret` value with `id` (default the target's file name), as a read-only
//!   file at `target` (default `/run/secrets/<id>`, mode 0400) on a tmpfs of ours, and/or an
//!   environment variable with `env`. A missing secret is an error when `required`, else the
//!   mount is skipped. Secrets never reach a layer, the history or a cache key.
//! * `ssh`: the `--ssh` agent socket `id` (default `default`) at `target` (default
//!   `/run/buildkit/ssh_agent.N`), with `SSH_AUTH_SOCK` pointing at it.
//!
//! Relative targets are taken from the WORKDIR. Mount points missing from the image are made in
//! the sandbox's init layer, so they never appear in the new layer.

use std::any::Any;
use std::fs::File;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::copy::{self, CopyRequest, Source};
use crate::dockerfile::args::GlobalScope;
use crate::dockerfile::instructions::{Mount, MountKind};

use super::error::{BuildError, IoAt, Origin};
use super::mounts::{Mount as HostMount, ReadOnlyRoot, Scratch};
use super::{Build, Secret, State};

/// Where a bind or cache mount's files come from.
#[derive(Clone, Debug)]
enum From {
    /// The build context.
    Context,
    /// Snapshots of a stage or image, topmost first.
    Layers(Vec<PathBuf>),
}

/// A mount with its defaults filled in and its source resolved.
#[derive(Clone, Debug)]
pub(super) struct Planned {
    mount: Mount,
    /// Absolute path in the container.
    target: String,
    from: Option<From>,
}

/// The mounts of one RUN, set up; dropping it undoes the host side (overlays, tmpfs, locks).
pub(super) struct Mounted {
    /// The sandbox's mounts, in order.
    pub mounts: Vec<runtime_lite::Mount>,
    /// Environment entries to add (`SSH_AUTH_SOCK`, secrets with `env=`).
    pub env: Vec<String>,
    /// Host-side resources, released in reverse order.
    guards: Vec<Box<dyn Any>>,
}

impl Drop for Mounted {
    fn drop(&mut self) {
        while let Some(g) = self.guards.pop() {
            drop(g);
        }
    }
}

/// Where a new cache mount's first contents come from (`from=` and `source=`).
struct Seed<'a> {
    scratch: &'a Scratch,
    n: usize,
    layers: &'a [PathBuf],
    source: String,
    at: &'a Origin,
}

impl Seed<'_> {
    /// Copies the seed's files (owners and modes kept) into `dir`.
    fn copy_into(&self, dir: &Path) -> Result<(), BuildError> {
        let err = |e| self.at.copy_error("RUN --mount=type=cache", e);
        let root = ReadOnlyRoot::new(self.scratch, &format!("seed{}", self.n), self.layers)?;
        let src = Source::rootfs(root.path());
        let req = bind_request(&self.source);
        let sel = copy::select(&src, &req).map_err(err)?;
        copy::apply(&src, &sel, &req, dir).map_err(err)?;
        Ok(())
    }
}

impl Build<'_> {
    /// Fills in defaults, resolves `from` (waiting for the stage) and returns the mounts and
    /// the text they add to the step's cache key.
    pub(super) fn plan_mounts(
        &self,
        stage: usize,
        global: &GlobalScope,
        state: &State,
        mounts: &[Mount],
        at: &Origin,
    ) -> Result<(Vec<Planned>, String), BuildError> {
        let bad = |message: String| at.error(message);
        let workdir = state
            .config
            .config
            .as_ref()
            .and_then(|c| c.working_dir.clone())
            .unwrap_or_default();
        let mut planned = Vec::new();
        let mut key = String::new();
        let mut ssh_n = 0;
        for m in mounts {
            let mut m = m.clone();
            let target = match (m.kind, m.target.as_deref()) {
                (_, Some(t)) if !t.is_empty() => t.to_string(),
                (MountKind::Secret, _) => {
                    let id = m.id.clone().ok_or_else(|| {
                        bad("RUN --mount=type=secret needs an id or a target".into())
                    })?;
                    format!("/run/secrets/{id}")
                }
                (MountKind::Ssh, _) => {
                    ssh_n += 1;
                    format!("/run/buildkit/ssh_agent.{}", ssh_n - 1)
                }
                (kind, _) => {
                    return Err(bad(format!(
                        "RUN --mount=type={} needs a target",
                        kind_name(kind)
                    )));
                }
            };
            let target = super::join_workdir(Some(&workdir), &target);
            match m.kind {
                MountKind::Secret if m.id.is_none() => {
                    m.id = Some(target.rsplit('/').next().unwrap_or_default().to_string());
                }
                MountKind::Ssh if m.id.is_none() => m.id = Some("default".into()),
                MountKind::Cache if m.id.is_none() => m.id = Some(target.clone()),
                _ => {}
            }
            let from = match (m.kind, m.from.as_deref()) {
                (MountKind::Bind, None) => Some(From::Context),
                (MountKind::Bind | MountKind::Cache, Some(f)) => {
                    Some(From::Layers(self.layers_of(stage, global, f, at)?.0))
                }
                _ => None,
            };
            // The key: the mount as written (secrets by id only) plus, for binds, the digest of
            // the files it shows.
            key.push_str(&format!(
                "{} target={target} id={} source={} ro={} size={:?} mode={:?} uid={:?} gid={:?} env={:?}\n",
                kind_name(m.kind),
                m.id.as_deref().unwrap_or_default(),
                m.source.as_deref().unwrap_or_default(),
                m.readonly,
                m.size,
                m.mode,
                m.uid,
                m.gid,
                m.env,
            ));
            if m.kind == MountKind::Bind {
                let source = m.source.clone().unwrap_or_else(|| "/".into());
                let digest = match &from {
                    Some(From::Layers(layers)) => {
                        let scratch = Scratch::new(self.store.root())?;
                        let root = ReadOnlyRoot::new(&scratch, "bind", layers)?;
                        self.files_digest(&Source::rootfs(root.path()), &source, at)?
                    }
                    _ => {
                        let src = Source::context(&self.opts.context, self.ignore);
                        self.files_digest(&src, &source, at)?
                    }
                };
                key.push_str(&format!("files={digest}\n"));
            }
            planned.push(Planned {
                mount: m,
                target,
                from,
            });
        }
        Ok((planned, key))
    }

    /// The digest of the files `source` selects in `src` (a missing source is an error).
    fn files_digest(
        &self,
        src: &Source<'_>,
        source: &str,
        at: &Origin,
    ) -> Result<String, BuildError> {
        let req = bind_request(source);
        let err = |e| at.copy_error("RUN --mount", e);
        let sel = copy::select(src, &req).map_err(err)?;
        Ok(sel.digest(src, &self.memo).map_err(err)?.to_string())
    }

    /// Sets the planned mounts up under `scratch`.
    pub(super) fn mount_all(
        &self,
        planned: &[Planned],
        scratch: &Scratch,
        at: &Origin,
    ) -> Result<Mounted, BuildError> {
        let bad = |message: String| at.error(message);
        let mut out = Mounted {
            mounts: Vec::new(),
            env: Vec::new(),
            guards: Vec::new(),
        };
        for (n, p) in planned.iter().enumerate() {
            let m = &p.mount;
            let target = p.target.clone();
            match m.kind {
                MountKind::Bind => {
                    let source = m.source.clone().unwrap_or_else(|| "/".into());
                    let dir = self.bind_source(p, &source, scratch, n, at, &mut out)?;
                    let dir = if m.readonly {
                        dir
                    } else {
                        // Writes go to an upper dir thrown away after the run.
                        writable(&dir, scratch, n, &mut out)?
                    };
                    out.mounts.push(runtime_lite::Mount::Bind {
                        source: dir,
                        target,
                        readonly: m.readonly,
                    });
                }
                MountKind::Cache => {
                    let seed = match &p.from {
                        Some(From::Layers(layers)) => Some(Seed {
                            scratch,
                            n,
                            layers,
                            source: m.source.clone().unwrap_or_else(|| "/".into()),
                            at,
                        }),
                        _ => None,
                    };
                    let dir = self.cache_dir(m, seed, &mut out)?;
                    out.mounts.push(runtime_lite::Mount::Bind {
                        source: dir,
                        target,
                        readonly: m.readonly,
                    });
                }
                MountKind::Tmpfs => {
                    let options = m.size.map(|s| format!("size={s}")).unwrap_or_default();
                    out.mounts
                        .push(runtime_lite::Mount::Tmpfs { target, options });
                }
                MountKind::Secret => {
                    let id = m.id.clone().unwrap_or_default();
                    let Some(secret) = self.opts.secrets.get(&id) else {
                        if m.required {
                            return Err(bad(format!(
                                "secret `{id}` is required but was not given: pass --secret id={id},src=FILE"
                            )));
                        }
                        continue;
                    };
                    let value = match secret {
                        Secret::Value(v) => v.clone(),
                        Secret::File(f) => std::fs::read(f).at("read the secret file", f)?,
                    };
                    if let Some(var) = &m.env {
                        let text = String::from_utf8(value.clone()).map_err(|_| {
                            bad(format!("secret `{id}` is not UTF-8 text: it cannot be an environment variable"))
                        })?;
                        out.env.push(format!("{var}={text}"));
                        if m.target.is_none() {
                            continue;
                        }
                    }
                    let file = secret_file(scratch, n, &value, m, &mut out)?;
                    out.mounts.push(runtime_lite::Mount::Bind {
                        source: file,
                        target,
                        readonly: true,
                    });
                }
                MountKind::Ssh => {
                    let id = m.id.clone().unwrap_or_default();
                    let Some(sock) = self.opts.ssh.get(&id) else {
                        if m.required {
                            return Err(bad(format!(
                                "no SSH agent socket `{id}` was given: pass --ssh {id}[=SOCKET]"
                            )));
                        }
                        continue;
                    };
                    out.env.push(format!("SSH_AUTH_SOCK={target}"));
                    out.mounts.push(runtime_lite::Mount::Bind {
                        source: sock.clone(),
                        target,
                        readonly: false,
                    });
                }
            }
        }
        Ok(out)
    }

    /// The host directory (or file) a bind mount shows.
    fn bind_source(
        &self,
        p: &Planned,
        source: &str,
        scratch: &Scratch,
        n: usize,
        at: &Origin,
        out: &mut Mounted,
    ) -> Result<PathBuf, BuildError> {
        let err = |e| at.copy_error("RUN --mount", e);
        match &p.from {
            Some(From::Layers(layers)) => {
                let root = ReadOnlyRoot::new(scratch, &format!("bind{n}"), layers)?;
                let path = copy::resolve_in_root(root.path(), source).map_err(err)?;
                out.guards.push(Box::new(root));
                Ok(path)
            }
            _ if self.ignore.is_none() => {
                copy::resolve_in_root(&self.opts.context, source).map_err(err)
            }
            _ => {
                // The context as the build sees it: without what .dockerignore excludes.
                let src = Source::context(&self.opts.context, self.ignore);
                let req = bind_request(source);
                let sel = copy::select(&src, &req).map_err(err)?;
                let dir = scratch.subdirs(&[&format!("bind{n}-ctx")])?.remove(0);
                copy::apply(&src, &sel, &req, &dir).map_err(err)?;
                let is_file = copy::resolve_in_root(&self.opts.context, source)
                    .map_err(err)?
                    .is_file();
                Ok(if is_file {
                    single_file(&dir).unwrap_or(dir)
                } else {
                    dir
                })
            }
        }
    }

    /// The persistent directory of a cache mount, locked as its `sharing` asks.
    fn cache_dir(
        &self,
        m: &Mount,
        seed: Option<Seed<'_>>,
        out: &mut Mounted,
    ) -> Result<PathBuf, BuildError> {
        let id = m.id.clone().unwrap_or_default();
        let base = self.store.root().join("cache-mounts");
        // A cache seeded from a stage is its own cache: keyed by the seed too.
        let seed_key = seed.as_ref().map_or(String::new(), |s| {
            format!(
                "\0{}\0{}",
                s.source,
                s.layers
                    .first()
                    .map_or(String::new(), |l| l.display().to_string())
            )
        });
        let name = oci::Digest::of(format!("{id}{seed_key}").as_bytes()).hex()[..32].to_string();
        let dir = base.join(&name);
        let sharing = m.sharing.as_deref().unwrap_or("shared");
        let lock_path = base.join(format!("{name}.lock"));
        std::fs::create_dir_all(&base).at("create directory", &base)?;
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .at("open", &lock_path)?;
        use rustix::fs::{FlockOperation, flock};
        let dir = match sharing {
            "locked" => {
                flock(&lock, FlockOperation::LockExclusive)
                    .map_err(std::io::Error::from)
                    .at("lock", &lock_path)?;
                dir
            }
            "private" => {
                if flock(&lock, FlockOperation::NonBlockingLockExclusive).is_ok() {
                    dir
                } else {
                    // In use: this run gets a directory of its own, removed after it.
                    let own = base.join(format!("{name}-{}", store::fsutil::random_suffix()));
                    out.guards.push(Box::new(Scratch::adopt(own.clone())));
                    own
                }
            }
            _ => {
                flock(&lock, FlockOperation::LockShared)
                    .map_err(std::io::Error::from)
                    .at("lock", &lock_path)?;
                dir
            }
        };
        if !dir.is_dir() {
            // Made in a temp dir and renamed, so a failed seed leaves no half-filled cache.
            let tmp = base.join(format!("{name}.tmp-{}", store::fsutil::random_suffix()));
            std::fs::create_dir_all(&tmp).at("create directory", &tmp)?;
            let filled = match &seed {
                // As BuildKit: a new cache starts with the files of `source` in the stage.
                Some(s) => s.copy_into(&tmp),
                None => std::fs::set_permissions(
                    &tmp,
                    std::fs::Permissions::from_mode(m.mode.unwrap_or(0o755)),
                )
                .at("chmod", &tmp)
                .and_then(|()| chown(&tmp, m.uid.unwrap_or(0), m.gid.unwrap_or(0))),
            };
            if let Err(e) = filled.and_then(|()| std::fs::rename(&tmp, &dir).at("rename", &tmp)) {
                let _ = store::fsutil::remove_all(&tmp);
                return Err(e);
            }
        }
        out.guards.push(Box::new(lock));
        Ok(dir)
    }

    /// The snapshots (topmost first) of `from`, a stage before `stage` or an image.
    pub(super) fn layers_of(
        &self,
        stage: usize,
        global: &GlobalScope,
        from: &str,
        at: &Origin,
    ) -> Result<(Vec<PathBuf>, bool), BuildError> {
        match self.stages.stage(from).filter(|s| s.index < stage) {
            Some(s) => Ok((self.stage_result(s.index, global)?.lowers(), true)),
            None => {
                let image = self.base_image(from, at, &self.platform)?;
                let mut dirs = self.store.snapshots().prepare(self.store.blobs(), &image)?;
                dirs.reverse();
                Ok((dirs, false))
            }
        }
    }
}

fn kind_name(k: MountKind) -> &'static str {
    match k {
        MountKind::Bind => "bind",
        MountKind::Cache => "cache",
        MountKind::Tmpfs => "tmpfs",
        MountKind::Secret => "secret",
        MountKind::Ssh => "ssh",
    }
}

/// The copy request that selects what a bind of `source` shows.
fn bind_request(source: &str) -> CopyRequest {
    CopyRequest {
        sources: vec![if source.is_empty() {
            "/".into()
        } else {
            source.to_string()
        }],
        dest: "/".into(),
        workdir: "/".into(),
        chown: None,
        chmod: None,
        parents: false,
        exclude: Vec::new(),
        unpack_archives: false,
    }
}

/// The one file in `dir` (a filtered copy of a single-file source).
fn single_file(dir: &Path) -> Option<PathBuf> {
    let mut entries = std::fs::read_dir(dir).ok()?;
    let first = entries.next()?.ok()?;
    if entries.next().is_some() || !first.file_type().ok()?.is_file() {
        return None;
    }
    Some(first.path())
}

/// An overlay over `dir` with a throw-away upper dir, for `rw` binds.
fn writable(
    dir: &Path,
    scratch: &Scratch,
    n: usize,
    out: &mut Mounted,
) -> Result<PathBuf, BuildError> {
    if !dir.is_dir() {
        let copy = scratch.path().join(format!("rw{n}-file"));
        std::fs::copy(dir, &copy).at("copy", dir)?;
        return Ok(copy);
    }
    let dirs = scratch.subdirs(&[
        &format!("rw{n}-upper"),
        &format!("rw{n}-work"),
        &format!("rw{n}-merged"),
    ])?;
    let mount = HostMount::overlay(&[dir.to_path_buf()], Some((&dirs[0], &dirs[1])), &dirs[2])?;
    out.guards.push(Box::new(mount));
    Ok(dirs[2].clone())
}

/// Writes a secret to a tmpfs of its own (never to disk) with the mount's mode and owner.
fn secret_file(
    scratch: &Scratch,
    n: usize,
    value: &[u8],
    m: &Mount,
    out: &mut Mounted,
) -> Result<PathBuf, BuildError> {
    let dir = scratch.subdirs(&[&format!("secret{n}")])?.remove(0);
    out.guards
        .push(Box::new(HostMount::tmpfs(&dir, c"mode=0700,size=4m")?));
    let file = dir.join("secret");
    std::fs::write(&file, value).at("write", &file)?;
    std::fs::set_permissions(
        &file,
        std::fs::Permissions::from_mode(m.mode.unwrap_or(0o400)),
    )
    .at("chmod", &file)?;
    chown(&file, m.uid.unwrap_or(0), m.gid.unwrap_or(0))?;
    Ok(file)
}

fn chown(p: &Path, uid: u32, gid: u32) -> Result<(), BuildError> {
    rustix::fs::chown(
        p,
        Some(rustix::fs::Uid::from_raw(uid)),
        Some(rustix::fs::Gid::from_raw(gid)),
    )
    .map_err(std::io::Error::from)
    .at("chown", p)
}
