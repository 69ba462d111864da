//! The executor: runs the stages a target needs, step by step, on the store.
//!
//! Each stage keeps a [`State`]: the image config being built, the manifest layer descriptors
//! and snapshot directories of its layers, and a running cache key. Metadata instructions
//! (ENV, LABEL, CMD, ...) change the config and add a history entry with `empty_layer`.
//! Layer steps (RUN, COPY/ADD and WORKDIR) first look their key up in the build cache
//! ([`cache`]); on a miss they write into a fresh overlay upper dir, which then becomes the
//! new snapshot as is (`snapshots().adopt`), and its diff with whiteouts the new uncompressed
//! layer blob. As Docker's BuildKit (dockerd 20.10, the reference), a step that changed
//! nothing still adds its (empty) layer.
//!
//! WORKDIR: BuildKit runs a `mkdir -p` file operation for every WORKDIR other than `/`, and so
//! do we, as a layer step.
//!
//! Mount points: BuildKit 0.8 leaves the directories its runtime creates for `/proc`, `/sys`
//! and `RUN --mount` targets in the layer; BuildKit 0.9 and later remove them, and hoist never
//! writes them (they live in the sandbox's init layer).
//!
//! Stages: every stage the target needs gets a thread of its own, so independent stages run
//! in parallel; a stage that needs another one's result (FROM, `COPY --from`, `RUN
//! --mount=from=`) waits for it, or builds it itself when nobody has started it (a reference
//! only known after ARG expansion). When one stage fails, the others stop at their next step.
//!
//! The library never prints: progress goes to a [`Reporter`] as [`Event`]s.

pub mod cache;
pub mod error;
pub mod explain;
pub mod history;
mod mounts;
mod run_mounts;
mod steps;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Instant;

use oci::{Digest, History, ImageConfig, MediaType};
use store::{Descriptor, Store};

use crate::copy::DigestMemo;
use crate::dockerfile::args::{self, GlobalScope, Platform, StageScope};
use crate::dockerfile::ignore::PatternMatcher;
use crate::dockerfile::instructions::{Instruction, Located, Stages, parse_triggers};
use crate::dockerfile::shell::Lexer;

use cache::{Key, Records};
pub use error::{BuildError, Origin};

/// Where base images come from: the caller resolves a reference in the store or pulls it (the
/// builder never talks to a registry itself).
pub trait Bases: Sync {
    /// The image `reference` names for `platform`, pulled when missing (always when
    /// `pull_always`).
    fn image(
        &self,
        reference: &str,
        pull_always: bool,
        platform: &Platform,
    ) -> Result<store::Image, Box<dyn std::error::Error + Send + Sync>>;

    /// Downloads `url` (an `ADD` source) into the file `dest`; returns its `Last-Modified`
    /// time as Unix seconds when the server gave one.
    fn fetch(
        &self,
        url: &str,
        dest: &Path,
    ) -> Result<Option<i64>, Box<dyn std::error::Error + Send + Sync>>;
}

/// Progress of a build, for the CLI to render.
#[derive(Clone, Copy, Debug)]
pub enum Event<'a> {
    /// A step starts: `id` numbers it within the build, `name` is `[stage n/m] INSTRUCTION`.
    Step {
        /// The step number.
        id: usize,
        /// What it is.
        name: &'a str,
    },
    /// The step's result came from the build cache.
    Cached {
        /// The step number.
        id: usize,
    },
    /// Why the step missed the cache (one event per reason), when an earlier build of the
    /// same step is on record.
    Miss {
        /// The step number.
        id: usize,
        /// What changed: `file changed: src/main.rs`, `build arg V changed: ...`.
        reason: &'a str,
    },
    /// A line the step's command printed (stdout or stderr).
    Output {
        /// The step number.
        id: usize,
        /// Seconds since the step started.
        elapsed: f64,
        /// The line, without its newline.
        line: &'a str,
    },
    /// The step ran and finished.
    Done {
        /// The step number.
        id: usize,
        /// Seconds it took.
        elapsed: f64,
    },
    /// Something the user should know that does not stop the build.
    Warning(&'a str),
}

/// Receives [`Event`]s (from the build thread and from the threads reading RUN output).
pub trait Reporter: Sync {
    /// Handles one event.
    fn event(&self, event: Event<'_>);
}

/// The network of RUN steps.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Network {
    /// BuildKit's default: the host's network for us (no network namespace of its own).
    #[default]
    Default,
    /// Only loopback.
    None,
    /// The host's network.
    Host,
}

impl Network {
    fn parse(s: &str) -> Option<Self> {
        match s {
            "default" => Some(Self::Default),
            "none" => Some(Self::None),
            "host" => Some(Self::Host),
            _ => None,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::Default => "default",
            Self::None => "none",
            Self::Host => "host",
        }
    }
}

/// What to build and how.
#[derive(Clone, Debug)]
pub struct BuildOptions {
    /// The build context directory.
    pub context: PathBuf,
    /// The Dockerfile's name in messages (`Dockerfile`, `ci/app.Dockerfile`).
    pub dockerfile_name: String,
    /// The Dockerfile's path, for finding `<name>.dockerignore` (`None` when read from stdin).
    pub dockerfile_path: Option<PathBuf>,
    /// The stage to build (index); the last one when `None`.
    pub target: Option<usize>,
    /// `--build-arg` values.
    pub build_args: BTreeMap<String, String>,
    /// Do not use the build cache (results are still recorded).
    pub no_cache: bool,
    /// Pull every base image even when it is in the store.
    pub pull: bool,
    /// The network of RUN steps without `--network`.
    pub network: Network,
    /// Labels added to the final image.
    pub labels: BTreeMap<String, String>,
    /// `SOURCE_DATE_EPOCH`: the time of every history entry and the clamp for file times in
    /// new layers.
    pub source_date_epoch: Option<i64>,
    /// The executable that turns into the sandbox helper (normally `/proc/self/exe`).
    pub sandbox_exe: PathBuf,
    /// `--secret id=ID,src=PATH|env=VAR`: the secrets `RUN --mount=type=secret` can use.
    pub secrets: BTreeMap<String, Secret>,
    /// `--ssh ID=SOCKET`: the SSH agent sockets `RUN --mount=type=ssh` can use.
    pub ssh: BTreeMap<String, PathBuf>,
    /// `--platform`: the target platform (the host's when `None`).
    pub platform: Option<Platform>,
    /// `--allow security.insecure`: `RUN --security=insecure` runs privileged.
    pub allow_insecure: bool,
}

/// Where a build secret's value comes from.
#[derive(Clone, PartialEq, Eq)]
pub enum Secret {
    /// A file on the host.
    File(PathBuf),
    /// The value itself (from an environment variable of the caller).
    Value(Vec<u8>),
}

/// Never shows a secret's value.
impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::File(p) => f.debug_tuple("File").field(p).finish(),
            Self::Value(v) => write!(f, "Value(<{} bytes>)", v.len()),
        }
    }
}

/// The result of a build.
#[derive(Clone, Debug)]
pub struct Built {
    /// The image's manifest in the store (not tagged yet).
    pub manifest: Descriptor,
    /// The image ID: its config digest.
    pub id: Digest,
}

/// A stage's image as the build goes.
#[derive(Clone, Debug)]
struct State {
    config: ImageConfig,
    /// Manifest layer descriptors, bottom first (the base's may be compressed blobs).
    layers: Vec<Descriptor>,
    /// Snapshot directories, bottom first.
    snapshots: Vec<PathBuf>,
    key: Key,
    /// The time the image reached this state: the last layer step's time, or the base's.
    clock: String,
    /// CMD was set in this stage (ENTRYPOINT then keeps it).
    cmd_set: bool,
    /// The key of the last layer step (or FROM), and the metadata instructions since.
    anchor: Key,
    pending: Vec<String>,
    /// The identity of the step being run ([`explain::identity`]).
    ident: Option<Digest>,
    /// The last layer, while its blob is still being written ([`Build::resolve_layer`]).
    layer: PendingSlot,
}

/// A written layer blob: its diff ID, size, and the blob to publish after the syncfs (`None`
/// when the store has it already).
type WrittenLayer = (Digest, u64, Option<store::Deferred>);

/// A layer whose snapshot is in place (as a provisional snapshot, usable as a lower) while a
/// thread writes its blob: the next step runs meanwhile. Its diff ID, the snapshot's chain ID
/// name, the step's image and cache record follow in [`Build::resolve_layer`].
struct PendingLayer {
    /// Writes the layer blob: its diff ID, size, and the blob to publish after the syncfs.
    job: Option<std::thread::JoinHandle<Result<WrittenLayer, BuildError>>>,
    /// The provisional snapshot ([`store::Snapshots::stage`]), also in `State::snapshots`,
    /// and the store's snapshots to adopt or discard it.
    staged: PathBuf,
    snapshots: store::Snapshots,
    /// The instruction that made it (for errors).
    step: String,
    /// The step's cache key, and its image config as of the step (later steps may change the
    /// state's; its layers do not change until this one is resolved).
    key: Key,
    config: ImageConfig,
}

impl PendingLayer {
    /// Waits for the blob. On an error (or a panic) the provisional snapshot is removed and
    /// the error names the step.
    fn join(&mut self) -> Result<WrittenLayer, BuildError> {
        let job = self.job.take().expect("a pending layer is joined once");
        let joined = job.join();
        if !matches!(joined, Ok(Ok(_))) {
            let _ = self.snapshots.discard_staged(&self.staged);
        }
        match joined {
            Ok(written) => written.map_err(|source| BuildError::Layer {
                step: self.step.clone(),
                source: Box::new(source),
            }),
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
}

impl Drop for PendingLayer {
    /// Not resolved (a panic, or a path that forgot it): waits for the writer (its temp blob
    /// is removed when dropped) and removes the provisional snapshot.
    fn drop(&mut self) {
        if let Some(job) = self.job.take() {
            let _ = job.join();
            let _ = self.snapshots.discard_staged(&self.staged);
        }
    }
}

/// [`State::layer`]: a state is cloned (as a stage's result, or a cache hit) only once its
/// layer is resolved, so a clone never carries one.
#[derive(Default)]
struct PendingSlot(Option<PendingLayer>);

impl Clone for PendingSlot {
    fn clone(&self) -> Self {
        debug_assert!(self.0.is_none(), "a state is cloned with a pending layer");
        PendingSlot(None)
    }
}

impl std::fmt::Debug for PendingSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Some(p) => write!(f, "pending layer at {}", p.staged.display()),
            None => f.write_str("none"),
        }
    }
}

impl State {
    /// Snapshot dirs topmost first, as overlay wants them.
    fn lowers(&self) -> Vec<PathBuf> {
        self.snapshots.iter().rev().cloned().collect()
    }

    fn history(&mut self, created_by: String, empty_layer: bool, created: &str) {
        self.config
            .history
            .get_or_insert_with(Vec::new)
            .push(History {
                created: Some(created.to_string()),
                created_by: Some(created_by),
                comment: Some(history::COMMENT.to_string()),
                empty_layer,
                ..Default::default()
            });
    }
}

/// The per-build context the steps share.
struct Build<'a> {
    store: &'a Store,
    opts: &'a BuildOptions,
    lexer: &'a Lexer,
    stages: &'a Stages,
    bases: &'a dyn Bases,
    reporter: &'a dyn Reporter,
    records: Records,
    memo: DigestMemo,
    ignore: Option<&'a PatternMatcher>,
    /// The time stamp of steps run now.
    now: String,
    platform: Platform,
    /// Each stage's result, as stage threads finish them.
    results: Mutex<Vec<Slot>>,
    /// Signalled whenever a slot changes.
    finished: Condvar,
    /// The build args the ARGs of the built stages consumed.
    consumed: Mutex<BTreeSet<String>>,
    /// Set by the first failure: the other stages stop.
    failed: AtomicBool,
    step_id: AtomicUsize,
    /// The images of the layer steps this build ran, by key (their blobs are published only
    /// by the flush, so the store cannot load them yet).
    made: Mutex<Vec<Made>>,
}

/// A layer step's image made by this build.
struct Made {
    key: Key,
    config: ImageConfig,
    layers: Vec<Descriptor>,
    snapshots: Vec<PathBuf>,
}

/// The result of a stage as the build goes.
#[derive(Clone, Debug)]
enum Slot {
    /// Nobody builds it (yet).
    Idle,
    /// A thread is building it.
    Running,
    /// Built.
    Done(Box<State>),
    /// Its build failed (the error is reported by the thread that built it).
    Failed,
}

/// Builds the target stage of `stages` (expanded with `lexer`, the Dockerfile's escape
/// character) into the store. The image is committed but not tagged.
pub fn build(
    store: &Store,
    stages: &Stages,
    lexer: &Lexer,
    opts: &BuildOptions,
    bases: &dyn Bases,
    reporter: &dyn Reporter,
) -> Result<Built, BuildError> {
    let dockerfile = opts
        .dockerfile_path
        .clone()
        .unwrap_or_else(|| opts.context.join("Dockerfile"));
    let patterns =
        crate::dockerfile::ignore::load_for(&opts.context, &dockerfile).map_err(|source| {
            BuildError::Io {
                what: "read the .dockerignore of",
                path: opts.context.clone(),
                source,
            }
        })?;
    let ignore = if patterns.is_empty() {
        None
    } else {
        Some(
            PatternMatcher::new(&patterns).map_err(|e| BuildError::Instruction {
                at: Origin {
                    file: ".dockerignore".into(),
                    line: 0,
                },
                message: e.to_string(),
            })?,
        )
    };
    let records = Records::new(store.root());
    let memo = DigestMemo::load(&records.memo_path()).unwrap_or_default();
    let b = Build {
        store,
        opts,
        lexer,
        stages,
        bases,
        reporter,
        memo,
        records,
        ignore: ignore.as_ref(),
        now: timestamp(opts.source_date_epoch),
        platform: opts.platform.clone().unwrap_or_else(Platform::host),
        results: Mutex::new(vec![Slot::Idle; stages.stages.len()]),
        finished: Condvar::new(),
        consumed: Mutex::new(BTreeSet::new()),
        failed: AtomicBool::new(false),
        step_id: AtomicUsize::new(0),
        made: Mutex::new(Vec::new()),
    };
    let result = b.run();
    // The memo is only an accelerator: a failure to save it costs the next build some reads.
    let _ = b.memo.save(&b.records.memo_path());
    // Steps that succeeded are cached even when a later one failed.
    let flushed = b.records.flush(store);
    let built = result?;
    flushed?;
    Ok(built)
}

/// Locks `m`, going on after a panic elsewhere (the data is only ever replaced whole).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Build<'_> {
    fn run(&self) -> Result<Built, BuildError> {
        let stages = self.stages;
        let target = self
            .opts
            .target
            .unwrap_or(stages.stages.len().saturating_sub(1));
        let meta: Vec<_> = stages.meta_args.iter().map(|(d, _)| d.clone()).collect();
        let auto = args::platform_args(&Platform::host(), &self.platform);
        let global =
            GlobalScope::new(&meta, &self.opts.build_args, auto, self.lexer).map_err(|e| {
                BuildError::Instruction {
                    at: Origin {
                        file: self.opts.dockerfile_name.clone(),
                        line: stages.meta_args.first().map_or(1, |(_, s)| s.start),
                    },
                    message: e.to_string(),
                }
            })?;
        lock(&self.consumed).extend(global.used().iter().cloned());
        let needed = stages.needed(target);
        // One thread per needed stage; each waits for the stages it builds on.
        let outcomes: Vec<Result<State, BuildError>> = std::thread::scope(|s| {
            let threads: Vec<_> = needed
                .iter()
                .map(|&i| {
                    let global = &global;
                    s.spawn(move || self.stage_result(i, global))
                })
                .collect();
            threads
                .into_iter()
                .map(|t| {
                    t.join().unwrap_or_else(|p| {
                        self.failed.store(true, Ordering::SeqCst);
                        std::panic::resume_unwind(p)
                    })
                })
                .collect()
        });
        // Report the failure that stopped the build, not the stages it cancelled.
        let mut state = None;
        let mut cancelled = None;
        for (i, outcome) in needed.iter().zip(outcomes) {
            match outcome {
                Ok(s) if *i == target => state = Some(s),
                Ok(_) => {}
                Err(BuildError::Cancelled) => cancelled = Some(BuildError::Cancelled),
                Err(e) => return Err(e),
            }
        }
        if let Some(e) = cancelled {
            return Err(e);
        }
        let mut state = state.expect("the target stage was built: it is in its own needed set");
        let consumed = lock(&self.consumed).clone();
        for name in args::unused_build_args(&self.opts.build_args, &consumed) {
            self.reporter.event(Event::Warning(&format!(
                "build argument `{name}` was not consumed by any ARG"
            )));
        }
        if !self.opts.labels.is_empty() {
            let labels = state
                .config
                .runtime_mut()
                .labels
                .get_or_insert_with(BTreeMap::new);
            for (k, v) in &self.opts.labels {
                labels.insert(k.clone(), v.clone());
            }
        }
        state.config.created = Some(state.clock.clone());
        // Often the last step's image again: published (once) with it by the flush.
        let image = self
            .store
            .commit_image_deferred(&state.config, &state.layers)?;
        image.blobs.into_iter().for_each(|b| self.records.defer(b));
        Ok(Built {
            id: image.id,
            manifest: image.manifest,
        })
    }

    fn origin(&self, line: usize) -> Origin {
        Origin {
            file: self.opts.dockerfile_name.clone(),
            line,
        }
    }

    /// The result of stage `i`: built here when nobody has started it, else waited for.
    fn stage_result(&self, i: usize, global: &GlobalScope) -> Result<State, BuildError> {
        let mut slots = lock(&self.results);
        loop {
            match &slots[i] {
                Slot::Done(s) => return Ok((**s).clone()),
                Slot::Failed => return Err(BuildError::Cancelled),
                Slot::Running => {
                    slots = self.finished.wait(slots).unwrap_or_else(|p| p.into_inner());
                }
                Slot::Idle => break,
            }
        }
        slots[i] = Slot::Running;
        drop(slots);
        let outcome = self.stage(i, global);
        if outcome.is_err() {
            self.failed.store(true, Ordering::SeqCst);
        }
        lock(&self.results)[i] = match &outcome {
            Ok(s) => Slot::Done(Box::new(s.clone())),
            Err(_) => Slot::Failed,
        };
        self.finished.notify_all();
        outcome
    }

    /// Builds stage `i`.
    fn stage(&self, i: usize, global: &GlobalScope) -> Result<State, BuildError> {
        let stages = self.stages;
        let stage = &stages.stages[i];
        let at = self.origin(stage.span.start);
        let base = global
            .expand(&stage.base, self.lexer)
            .map_err(|e| at.error(e.to_string()))?;
        let stage_name = stage.name.clone().unwrap_or_else(|| format!("stage-{i}"));
        let total = stage.instructions.len() + 1;
        let id = self.next_id();
        let name = format!("[{stage_name} 1/{total}] FROM {base}");
        self.reporter.event(Event::Step { id, name: &name });
        let started = Instant::now();
        // FROM --platform=... (ARG-expanded with the meta args), else the target platform.
        let stage_platform = match &stage.platform {
            Some(p) => {
                let p = global
                    .expand(p, self.lexer)
                    .map_err(|e| at.error(e.to_string()))?;
                Platform::parse(&p).ok_or_else(|| {
                    at.error(format!(
                        "invalid --platform `{p}`: expected os/arch[/variant]"
                    ))
                })?
            }
            None => self.platform.clone(),
        };
        let platform = stage_platform.to_string();
        let mut state = if let Some(dep) = stages.stage(&base).filter(|d| d.index < i) {
            let mut s = self.stage_result(dep.index, global)?;
            s.key = Key::from(&format!("stage:{}", s.key.digest().hex()), &platform);
            s.cmd_set = false;
            s
        } else if base.eq_ignore_ascii_case("scratch") {
            let mut config = ImageConfig {
                architecture: stage_platform.arch.clone(),
                os: stage_platform.os.clone(),
                ..Default::default()
            };
            if !stage_platform.variant.is_empty() {
                config.variant = Some(stage_platform.variant.clone());
            }
            State {
                config,
                layers: Vec::new(),
                snapshots: Vec::new(),
                key: Key::from("scratch", &platform),
                clock: self.now.clone(),
                cmd_set: false,
                anchor: Key::from("scratch", &platform),
                pending: Vec::new(),
                ident: None,
                layer: PendingSlot::default(),
            }
        } else {
            let image = self.base_image(&base, &at, &stage_platform)?;
            let snapshots = self.store.snapshots().prepare(self.store.blobs(), &image)?;
            let clock = image
                .config
                .created
                .clone()
                .unwrap_or_else(|| self.now.clone());
            State {
                key: Key::from(&image.digest().to_string(), &platform),
                config: image.config,
                layers: image.manifest.layers,
                snapshots,
                clock,
                cmd_set: false,
                anchor: Key::from("unset", &platform),
                pending: Vec::new(),
                ident: None,
                layer: PendingSlot::default(),
            }
        };
        state.anchor = state.key.clone();
        state.pending.clear();
        if !self.opts.no_cache
            && !base.eq_ignore_ascii_case("scratch")
            && stages.stage(&base).filter(|d| d.index < i).is_none()
        {
            let ident = self.ident(i, 0);
            let new = explain::Inputs {
                key: state.key.digest().hex().to_string(),
                parts: [(
                    "base".to_string(),
                    format!("{base}@{}", state.key.digest().hex()),
                )]
                .into(),
                ..Default::default()
            };
            let dir = explain::dir(self.store.root());
            let old = explain::load(&dir, &ident);
            if let Some(old) = &old
                && old.key != new.key
            {
                for reason in explain::reasons(old, &new) {
                    self.reporter.event(Event::Miss {
                        id,
                        reason: &reason,
                    });
                }
            }
            if old.as_ref() != Some(&new) {
                explain::save(&dir, &ident, &new);
            }
        }
        // As BuildKit: a stage whose base sets no PATH gets the default one in its env.
        let env = state.config.runtime_mut().env.get_or_insert_with(Vec::new);
        if !env.iter().any(|e| e.starts_with("PATH=")) {
            env.push(format!("PATH={DEFAULT_PATH}"));
        }
        self.reporter.event(Event::Done {
            id,
            elapsed: started.elapsed().as_secs_f64(),
        });
        let mut scope = global.stage().with_image_env(
            state
                .config
                .config
                .as_ref()
                .and_then(|c| c.env.as_deref())
                .unwrap_or_default(),
        );
        // ONBUILD triggers of the base run first, and are not inherited further.
        let triggers = state
            .config
            .config
            .as_mut()
            .and_then(|c| c.on_build.take())
            .unwrap_or_default();
        let mut triggered: Vec<Located> =
            parse_triggers(&triggers, &base).map_err(|e| at.error(e.to_string()))?;
        for t in &mut triggered {
            t.span = stage.span;
        }
        let mut outcome = Ok(());
        for (n, l) in triggered.iter().chain(&stage.instructions).enumerate() {
            if self.failed.load(Ordering::SeqCst) {
                outcome = Err(BuildError::Cancelled);
                break;
            }
            let label = format!("[{stage_name} {}/{total}]", n + 2);
            state.ident = Some(self.ident(i, n + 1));
            outcome = self.step(i, global, &mut state, &mut scope, l, &label);
            if outcome.is_err() {
                break;
            }
        }
        // The last layer is finished (and recorded) even when a later step failed.
        let resolved = self.resolve_layer(&mut state);
        outcome?;
        resolved?;
        lock(&self.consumed).extend(scope.used().iter().cloned());
        Ok(state)
    }

    /// The identity of instruction `pos` of stage `stage` in this build ([`explain`]).
    fn ident(&self, stage: usize, pos: usize) -> Digest {
        explain::identity(&self.opts.context, &self.opts.dockerfile_name, stage, pos)
    }

    fn next_id(&self) -> usize {
        self.step_id.fetch_add(1, Ordering::SeqCst) + 1
    }

    fn base_image(
        &self,
        reference: &str,
        at: &Origin,
        platform: &Platform,
    ) -> Result<store::Image, BuildError> {
        self.bases
            .image(reference, self.opts.pull, platform)
            .map_err(|source| BuildError::Base {
                at: at.clone(),
                reference: reference.to_string(),
                source,
            })
    }

    /// One instruction of stage `stage`.
    fn step(
        &self,
        stage: usize,
        global: &GlobalScope,
        state: &mut State,
        scope: &mut StageScope<'_>,
        l: &Located,
        label: &str,
    ) -> Result<(), BuildError> {
        let at = self.origin(l.span.start);
        let bad = |message: String| at.error(message);
        let mut ins = l
            .instruction
            .expand(self.lexer, &*scope)
            .map_err(|e| bad(e.to_string()))?;
        // As BuildKit: `COPY --from` and `RUN --mount=from=` see only the ARGs before the first
        // FROM (they name what the stage depends on before it runs).
        let global_word = |w: &Option<String>| {
            w.as_deref()
                .map(|w| global.expand(w, self.lexer))
                .transpose()
                .map_err(|e| bad(e.to_string()))
        };
        match &mut ins {
            Instruction::Copy { options, .. } | Instruction::Add { options, .. } => {
                options.from = global_word(&options.from)?;
            }
            Instruction::Run { mounts, .. } => {
                for m in mounts {
                    m.from = global_word(&m.from)?;
                }
            }
            _ => {}
        }
        let text = match &ins {
            Instruction::Env(pairs) => {
                let mut msg = String::from("ENV");
                for (k, v) in pairs {
                    scope.set_env(k, v);
                    set_env(&mut state.config, k, v);
                    msg.push_str(&format!(" {k}={v}"));
                }
                msg
            }
            Instruction::Arg(_) => {
                let Instruction::Arg(raw) = &l.instruction else {
                    unreachable!("expand keeps the instruction kind")
                };
                let Instruction::Arg(expanded) = &ins else {
                    unreachable!("matched above")
                };
                let mut words = Vec::new();
                let mut values = String::new();
                for (d, e) in raw.iter().zip(expanded) {
                    scope
                        .declare(d, self.lexer)
                        .map_err(|err| bad(err.to_string()))?;
                    words.push(match &e.default {
                        Some(v) => format!("{}={v}", d.name),
                        None => d.name.clone(),
                    });
                    let v = crate::dockerfile::shell::Env::get(&*scope, &d.name).unwrap_or("");
                    values.push_str(&format!("{}={v}\n", d.name));
                }
                let msg = format!("ARG {}", words.join(" "));
                state.key = state.key.then(&[
                    ("instruction", msg.as_bytes()),
                    ("values", values.as_bytes()),
                ]);
                let clock = state.clock.clone();
                state
                    .pending
                    .push(format!("{msg} ({})", values.trim_end().replace('\n', " ")));
                state.history(msg, true, &clock);
                return Ok(());
            }
            Instruction::Label(pairs) => {
                let mut msg = String::from("LABEL");
                let labels = state
                    .config
                    .runtime_mut()
                    .labels
                    .get_or_insert_with(BTreeMap::new);
                for (k, v) in pairs {
                    labels.insert(k.clone(), v.clone());
                    msg.push_str(&format!(" {k}={v}"));
                }
                msg
            }
            Instruction::Maintainer(m) => {
                state.config.author = Some(m.clone());
                format!("MAINTAINER {m}")
            }
            Instruction::Expose(ports) => {
                let mut these = BTreeMap::new();
                for p in ports {
                    for port in expose_ports(p).map_err(bad)? {
                        these.insert(port, serde_json::json!({}));
                    }
                }
                let all = state
                    .config
                    .runtime_mut()
                    .exposed_ports
                    .get_or_insert_with(BTreeMap::new);
                all.extend(these.clone());
                format!("EXPOSE {}", history::go_port_map(&these))
            }
            Instruction::Volume(vols) => {
                let all = state
                    .config
                    .runtime_mut()
                    .volumes
                    .get_or_insert_with(BTreeMap::new);
                for v in vols {
                    all.insert(v.clone(), serde_json::json!({}));
                }
                format!("VOLUME {}", history::go_list(vols))
            }
            Instruction::User(u) => {
                state.config.runtime_mut().user = Some(u.clone());
                format!("USER {u}")
            }
            Instruction::Shell(sh) => {
                state.config.runtime_mut().shell = Some(sh.clone());
                format!("SHELL {}", history::go_list(sh))
            }
            Instruction::Stopsignal(sig) => {
                state.config.runtime_mut().stop_signal = Some(sig.clone());
                format!("STOPSIGNAL {sig}")
            }
            Instruction::Healthcheck(h) => {
                let hc = oci::HealthConfig {
                    test: Some(h.test.clone()),
                    interval: h.interval,
                    timeout: h.timeout,
                    start_period: h.start_period,
                    start_interval: h.start_interval,
                    retries: h.retries,
                    ..Default::default()
                };
                let msg = format!("HEALTHCHECK {}", history::go_healthcheck(&hc));
                state.config.runtime_mut().healthcheck = Some(hc);
                msg
            }
            Instruction::Cmd(c) => {
                let args = with_shell(&state.config, c);
                let rc = state.config.runtime_mut();
                rc.cmd = Some(args.clone());
                rc.args_escaped = Some(true);
                state.cmd_set = true;
                format!("CMD {}", history::go_quote_list(&args))
            }
            Instruction::Entrypoint(c) => {
                let args = with_shell(&state.config, c);
                let cmd_set = state.cmd_set;
                let rc = state.config.runtime_mut();
                rc.entrypoint = Some(args.clone());
                if !cmd_set {
                    rc.cmd = None;
                }
                format!("ENTRYPOINT {}", history::go_quote_list(&args))
            }
            Instruction::Onbuild(expr) => {
                state
                    .config
                    .runtime_mut()
                    .on_build
                    .get_or_insert_with(Vec::new)
                    .push(expr.clone());
                state.key = state.key.then(&[("onbuild", expr.as_bytes())]);
                state.pending.push(format!("ONBUILD {expr}"));
                return Ok(());
            }
            Instruction::Workdir(dir) => {
                let wd = join_workdir(
                    state
                        .config
                        .config
                        .as_ref()
                        .and_then(|c| c.working_dir.as_deref()),
                    dir,
                );
                state.config.runtime_mut().working_dir = Some(wd.clone());
                let msg = format!("WORKDIR {wd}");
                if wd != "/" {
                    let id = self.next_id();
                    let name = format!("{label} {}", l.original);
                    return self.workdir(state, id, &name, &at, &wd, msg);
                }
                msg
            }
            Instruction::Run { .. } => {
                let id = self.next_id();
                let name = format!("{label} {}", l.original);
                return self.run_step(stage, global, state, scope, id, &name, &at, &ins);
            }
            Instruction::Copy { .. } | Instruction::Add { .. } => {
                let id = self.next_id();
                let name = format!("{label} {}", l.original);
                return self.copy_step(stage, global, state, scope, id, &name, &at, &ins);
            }
        };
        state.key = state.key.then(&[("instruction", text.as_bytes())]);
        let clock = state.clock.clone();
        state.pending.push(text.clone());
        state.history(text, true, &clock);
        Ok(())
    }

    /// A layer step: a cache hit replaces `state`; a miss runs `exec` in a scratch directory,
    /// which returns the upper dir to commit as the layer.
    #[allow(clippy::too_many_arguments)]
    ///
    /// `parts` (tag, value) are what the step's key is made of, after the previous step's key;
    /// they, with `files` (a COPY's per-file fingerprints), are also what [`explain`] records.
    fn layer_step(
        &self,
        state: &mut State,
        parts: Vec<(&'static str, String)>,
        files: BTreeMap<String, String>,
        id: usize,
        created_by: String,
        exec: impl FnOnce(&Self, &State, &mounts::Scratch, usize) -> Result<PathBuf, BuildError>,
    ) -> Result<(), BuildError> {
        let started = Instant::now();
        let key = state.key.then(
            &parts
                .iter()
                .map(|(t, v)| (*t, v.as_bytes()))
                .collect::<Vec<_>>(),
        );
        let inputs = explain::Inputs::new(
            &key,
            &state.anchor,
            std::mem::take(&mut state.pending),
            &parts,
            files,
        );
        let explain_dir = explain::dir(self.store.root());
        let ident = state.ident.clone();
        let old = ident.as_ref().and_then(|i| explain::load(&explain_dir, i));
        // Written only when it changed: a warm rebuild writes nothing.
        let record = |inputs: &explain::Inputs| {
            if let Some(ident) = &ident
                && old.as_ref() != Some(inputs)
            {
                explain::save(&explain_dir, ident, inputs);
            }
        };
        if !self.opts.no_cache
            && let Some(mut hit) = self.lookup(&key, state.cmd_set)
        {
            self.resolve_layer(state)?;
            hit.ident = ident.clone();
            *state = hit;
            record(&inputs);
            self.reporter.event(Event::Cached { id });
            return Ok(());
        }
        if !self.opts.no_cache
            && let Some(old) = &old
            && old.key != inputs.key
        {
            for reason in explain::reasons(old, &inputs) {
                self.reporter.event(Event::Miss {
                    id,
                    reason: &reason,
                });
            }
        }
        let scratch = mounts::Scratch::new(self.store.root())?;
        let upper = exec(self, state, &scratch, id);
        // The previous layer's blob was written while this step ran.
        let resolved = self.resolve_layer(state);
        let upper = upper?;
        resolved?;
        state.key = key;
        self.commit_layer(state, &upper, created_by)?;
        state.anchor = state.key.clone();
        record(&inputs);
        drop(scratch);
        self.reporter.event(Event::Done {
            id,
            elapsed: started.elapsed().as_secs_f64(),
        });
        Ok(())
    }

    /// The state a cache record gives, if it is usable.
    fn lookup(&self, key: &Key, cmd_set: bool) -> Option<State> {
        let made = lock(&self.made)
            .iter()
            .find(|m| &m.key == key)
            .map(|m| (m.config.clone(), m.layers.clone(), m.snapshots.clone()));
        let (config, layers, snapshots) = match made {
            Some(made) => made,
            None => {
                let digest = self.records.get(key)?;
                let image = self
                    .store
                    .load_image(&Descriptor::new(&MediaType::OciManifest, digest, 0))
                    .ok()?;
                let snapshots = self
                    .store
                    .snapshots()
                    .prepare(self.store.blobs(), &image)
                    .ok()?;
                (image.config, image.manifest.layers, snapshots)
            }
        };
        let clock = config.created.clone().unwrap_or_else(|| self.now.clone());
        Some(State {
            config,
            layers,
            snapshots,
            key: key.clone(),
            clock,
            cmd_set,
            anchor: key.clone(),
            pending: Vec::new(),
            ident: None,
            layer: PendingSlot::default(),
        })
    }

    /// Makes `upper` the next layer of `state` (an empty one too, as BuildKit) and adds the
    /// history entry. The snapshot is moved into the store at once; the layer blob is written
    /// by a thread of its own while the build goes on ([`State::layer`]).
    fn commit_layer(
        &self,
        state: &mut State,
        upper: &Path,
        created_by: String,
    ) -> Result<(), BuildError> {
        use error::IoAt;
        debug_assert!(
            state.layer.0.is_none(),
            "the previous layer is resolved first"
        );
        let now = self.now.clone();
        let ingest = self
            .store
            .blobs()
            .ingest(store::Expected::any(), format!("layer of `{created_by}`"))?;
        let clamp = self
            .opts
            .source_date_epoch
            .and_then(|e| u64::try_from(e).ok());
        let staged = self.store.snapshots().stage(upper)?;
        let dir = staged.clone();
        let job = std::thread::Builder::new()
            .name("layer".into())
            .spawn(move || {
                let ingest = store::flatten::write_diff(&dir, ingest, clamp, None)
                    .at("write a layer of", &dir)?;
                // Published (and made durable by one syncfs) when the build records its steps.
                Ok(ingest.commit_deferred()?)
            });
        let job = match job {
            Ok(job) => job,
            Err(e) => {
                let _ = self.store.snapshots().discard_staged(&staged);
                return Err(e).at("start a thread for the layer of", &staged);
            }
        };
        let step = created_by
            .strip_suffix(" # buildkit")
            .unwrap_or(&created_by)
            .to_string();
        state.snapshots.push(staged.clone());
        state.history(created_by, false, &now);
        state.clock = now;
        state.config.created = Some(state.clock.clone());
        state.layer = PendingSlot(Some(PendingLayer {
            job: Some(job),
            staged,
            snapshots: self.store.snapshots().clone(),
            step,
            key: state.key.clone(),
            config: state.config.clone(),
        }));
        Ok(())
    }

    /// Finishes `state`'s pending layer, if any: waits for its blob, adds its diff ID and
    /// descriptor, names its snapshot by chain ID, and commits the image of the step that made
    /// it with its cache record (both published by [`Records::flush`]).
    fn resolve_layer(&self, state: &mut State) -> Result<(), BuildError> {
        let Some(mut pending) = state.layer.0.take() else {
            return Ok(());
        };
        let (diff_id, size, blob) = pending.join()?;
        if let Some(blob) = blob {
            self.records.defer(blob);
        }
        pending.config.rootfs.diff_ids.push(diff_id.clone());
        state.config.rootfs.diff_ids.push(diff_id.clone());
        state
            .layers
            .push(Descriptor::new(&MediaType::OciLayer, diff_id, size));
        let chain = store::image::chain_ids(&pending.config.rootfs.diff_ids)
            .pop()
            .expect("one chain ID per diff ID, and there is one");
        let index = state.layers.len() - 1;
        debug_assert_eq!(state.snapshots.get(index), Some(&pending.staged));
        state.snapshots[index] = pending.snapshots.adopt_staged(&chain, &pending.staged)?;
        let image = self
            .store
            .commit_image_deferred(&pending.config, &state.layers)?;
        image.blobs.into_iter().for_each(|b| self.records.defer(b));
        self.records.put(&pending.key, &image.manifest.digest);
        // Until the flush publishes that image, a step of this build with the same key finds
        // it here.
        lock(&self.made).push(Made {
            key: pending.key.clone(),
            config: std::mem::take(&mut pending.config),
            layers: state.layers.clone(),
            snapshots: state.snapshots.clone(),
        });
        self.records.start_writeback(self.store.root());
        Ok(())
    }
}

/// The PATH a RUN gets when the image sets none (BuildKit's default).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// RFC 3339 time of the build: `SOURCE_DATE_EPOCH` or now.
fn timestamp(epoch: Option<i64>) -> String {
    let t = epoch
        .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
        .unwrap_or_else(time::OffsetDateTime::now_utc);
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// Sets `key=value` in the config env, replacing an existing entry in place.
fn set_env(config: &mut ImageConfig, key: &str, value: &str) {
    let env = config.runtime_mut().env.get_or_insert_with(Vec::new);
    let entry = format!("{key}={value}");
    match env
        .iter_mut()
        .find(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) == key)
    {
        Some(slot) => *slot = entry,
        None => env.push(entry),
    }
}

/// A command as it is stored and run: exec form as is, shell form through SHELL.
fn with_shell(config: &ImageConfig, c: &crate::dockerfile::instructions::Command) -> Vec<String> {
    use crate::dockerfile::instructions::Command;
    match c {
        Command::Exec(v) => v.clone(),
        Command::Shell(s) => {
            let mut v = config
                .config
                .as_ref()
                .and_then(|c| c.shell.clone())
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into()]);
            v.push(s.clone());
            v
        }
    }
}

/// `EXPOSE` words: `80`, `80/udp`, `8000-8002/tcp` (ranges expand, as nat.ParsePortSpecs does).
fn expose_ports(word: &str) -> Result<Vec<String>, String> {
    let (ports, proto) = word.split_once('/').unwrap_or((word, "tcp"));
    let proto = proto.to_ascii_lowercase();
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(format!("invalid proto `{proto}` in EXPOSE `{word}`"));
    }
    let num = |s: &str| {
        s.parse::<u16>()
            .map_err(|_| format!("invalid port `{s}` in EXPOSE `{word}`"))
    };
    let (lo, hi) = match ports.split_once('-') {
        Some((a, b)) => (num(a)?, num(b)?),
        None => (num(ports)?, num(ports)?),
    };
    if hi < lo {
        return Err(format!("invalid port range in EXPOSE `{word}`"));
    }
    Ok((lo..=hi).map(|p| format!("{p}/{proto}")).collect())
}

/// WORKDIR `dir` after `prev`: absolute, cleaned (Go's `path.Join("/", prev, dir)`).
fn join_workdir(prev: Option<&str>, dir: &str) -> String {
    let joined = if dir.starts_with('/') {
        dir.to_string()
    } else {
        format!("/{}/{dir}", prev.unwrap_or(""))
    };
    crate::go::path::clean(&joined)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workdir_and_ports() {
        assert_eq!(join_workdir(None, "app"), "/app");
        assert_eq!(join_workdir(Some("/srv"), "app/../x/."), "/srv/x");
        assert_eq!(join_workdir(Some("/srv"), "/abs/"), "/abs");
        assert_eq!(expose_ports("80").unwrap(), ["80/tcp"]);
        assert_eq!(
            expose_ports("8000-8001/UDP").unwrap(),
            ["8000/udp", "8001/udp"]
        );
        assert!(expose_ports("x").is_err());
    }
}
