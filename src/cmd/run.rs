//! `hoist run`: an image's snapshots as overlay lower dirs plus a fresh upper dir, the image
//! config combined with the flags as docker combines them, then the sandbox. Exit code: the
//! command's, or docker's 125/126/127 and 128+N.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use runtime_lite::{Mount, Network, Process, RootFs, Spec};
use store::containers::{Containers, Record, State};

use crate::cli::{NetworkMode, RunArgs};

/// Runs the container; errors before the command starts exit 125, as docker's do.
pub fn run(root: &Path, insecure: &[String], a: RunArgs) -> ExitCode {
    match run_inner(root, insecure, a) {
        Ok(code) => ExitCode::from(code.clamp(0, 255) as u8),
        Err(e) => {
            crate::render::error(&e);
            ExitCode::from(runtime_lite::sandbox::EXIT_SANDBOX as u8)
        }
    }
}

fn run_inner(root: &Path, insecure: &[String], a: RunArgs) -> Result<i32> {
    let store = super::open(root)?;
    let _lease = store.lease()?;
    let image = crate::transfer::resolve_or_pull(
        &store,
        &a.image,
        a.pull,
        &crate::transfer::Remote::new(insecure),
        None,
        false,
    )?;
    let mut layers = store.snapshots().prepare(store.blobs(), &image)?;
    layers.reverse();
    let rc = image.config.config.clone().unwrap_or_default();

    let containers = Containers::new(store.root());
    let name = match &a.name {
        Some(n) => {
            if containers.list()?.iter().any(|r| &r.name == n) {
                bail!(
                    "the container name `{n}` is already in use: remove it (`hoist rm {n}`) or choose another"
                );
            }
            n.clone()
        }
        None => String::new(),
    };
    let id = format!(
        "{:016x}{:016x}{:016x}{:016x}",
        rand::random::<u64>(),
        rand::random::<u64>(),
        rand::random::<u64>(),
        rand::random::<u64>()
    );
    let dir = store.root().join("containers").join(&id);
    let name = if name.is_empty() {
        format!("hoist_{}", &id[..8])
    } else {
        name
    };
    for sub in ["upper", "work", "merged", "init"] {
        std::fs::create_dir_all(dir.join(sub))
            .with_context(|| format!("cannot create `{}`", dir.join(sub).display()))?;
    }
    std::fs::write(dir.join("image"), image.digest().to_string())
        .context("cannot record the container's image")?;
    let guard = ContainerDir {
        dir: dir.clone(),
        remove: a.rm,
    };

    let hostname = a.hostname.clone().unwrap_or_else(|| id[..12].to_string());
    let args = command(&a, rc.entrypoint.as_deref(), rc.cmd.as_deref())?;
    let user_spec = a.user.as_deref().or(rc.user.as_deref()).unwrap_or("");
    let user = runtime_lite::user::resolve(
        user_spec,
        store::apply::read_file_in_layers(&layers, "etc/passwd").as_deref(),
        store::apply::read_file_in_layers(&layers, "etc/group").as_deref(),
        &[],
    )?;
    let home = user.home.clone();
    let env = environment(rc.env.as_deref().unwrap_or(&[]), &a, &hostname, &home)?;
    let mut env = env;
    if a.tty && !env.iter().any(|e| e.starts_with("TERM=")) {
        env.push("TERM=xterm".into());
    }
    let cwd = a
        .workdir
        .clone()
        .or(rc.working_dir.clone())
        .filter(|w| !w.is_empty())
        .unwrap_or_else(|| "/".into());

    let network = match a.network {
        NetworkMode::None => Network::None,
        NetworkMode::Host => Network::Host,
    };
    let etc = runtime_lite::prep::etc_files(&dir, &hostname, network)?;
    let mut mounts = Vec::new();
    for v in &a.volumes {
        mounts.push(volume(v)?);
    }
    for t in &a.tmpfs {
        let (target, options) = t.split_once(':').unwrap_or((t.as_str(), ""));
        mounts.push(Mount::Tmpfs {
            target: target.to_string(),
            options: options.to_string(),
        });
    }
    runtime_lite::prep::init_layer(&dir.join("init"), &mounts)?;
    layers.insert(0, dir.join("init"));
    let spec = Spec {
        rootfs: RootFs::Overlay {
            lowers: layers,
            upper: dir.join("upper"),
            work: dir.join("work"),
            target: dir.join("merged"),
        },
        readonly_rootfs: a.read_only,
        process: Process {
            args,
            env,
            cwd,
            uid: user.uid,
            gid: user.gid,
            additional_gids: user.additional_gids(),
        },
        hostname,
        mounts,
        network,
        etc_files: etc,
        capabilities: runtime_lite::caps::resolve(&a.cap_add, &a.cap_drop, a.privileged)?,
        limits: limits(&a)?,
        name: id.clone(),
        privileged: a.privileged,
        init: a.init,
        stdin: a.interactive,
        tty: a.tty,
        // A `--rm` container's upper dir is thrown away: no sync when it goes.
        volatile_upper: a.rm,
        runtime: a.runtime.clone().map(|r| (r, dir.join("bundle"))),
        user_namespace: super::rootless_maps(),
    };
    let record = Record {
        id: id.clone(),
        name,
        image: a.image.clone(),
        image_digest: image.digest().clone(),
        command: spec.process.args.clone(),
        created: super::import::now(),
        state: State::Created,
        pid: None,
        exit_code: None,
        finished: None,
        spec: serde_json::to_value(&spec).context("cannot record the container")?,
    };
    let code = supervise(&store, record, &spec)?;
    drop(guard);
    Ok(code)
}

/// Runs a container's spec, keeping its record current (running, then exited with its code).
pub(crate) fn supervise(store: &store::Store, mut record: Record, spec: &Spec) -> Result<i32> {
    let containers = Containers::new(store.root());
    record.state = State::Running;
    record.pid = Some(std::process::id() as i32);
    containers.save(&record)?;
    let result = runtime_lite::run(spec, Path::new("/proc/self/exe"));
    record.state = State::Exited;
    record.pid = None;
    record.finished = Some(super::import::now());
    record.exit_code = result
        .as_ref()
        .ok()
        .copied()
        .or(Some(runtime_lite::sandbox::EXIT_SANDBOX));
    if containers.dir(&record.id).exists() {
        containers.save(&record)?;
    }
    Ok(result?)
}

/// Removes the container's directory on drop when `--rm` was given.
struct ContainerDir {
    dir: PathBuf,
    remove: bool,
}

impl Drop for ContainerDir {
    fn drop(&mut self) {
        if self.remove {
            let _ = super::remove_container_dir(&self.dir);
        }
    }
}

/// docker's rules: `--entrypoint` replaces the image's ENTRYPOINT and drops its CMD; arguments
/// after the image replace CMD.
fn command(
    a: &RunArgs,
    entrypoint: Option<&[String]>,
    cmd: Option<&[String]>,
) -> Result<Vec<String>> {
    let (entry, default_cmd): (Vec<String>, Vec<String>) = match &a.entrypoint {
        Some(e) if e.is_empty() => (Vec::new(), Vec::new()),
        Some(e) => (vec![e.clone()], Vec::new()),
        None => (
            entrypoint.unwrap_or_default().to_vec(),
            cmd.unwrap_or_default().to_vec(),
        ),
    };
    let tail = if a.command.is_empty() {
        default_cmd
    } else {
        a.command.clone()
    };
    let argv: Vec<String> = entry.into_iter().chain(tail).collect();
    if argv.is_empty() {
        bail!(
            "no command specified: the image `{}` has no ENTRYPOINT or CMD; give a command after the image name",
            a.image
        );
    }
    Ok(argv)
}

/// cgroup limits from the flags; `None` when no limit is asked for.
fn limits(a: &RunArgs) -> Result<Option<runtime_lite::cgroups::Limits>> {
    let memory = a.memory.as_deref().map(parse_bytes).transpose()?;
    let memory_swap = match a.memory_swap.as_deref() {
        Some("-1") => Some(-1),
        Some(s) => Some(i64::try_from(parse_bytes(s)?).context("--memory-swap is too large")?),
        None => None,
    };
    let l = runtime_lite::cgroups::Limits {
        memory,
        memory_swap,
        cpus: a.cpus,
        cpu_shares: a.cpu_shares,
        cpuset_cpus: a.cpuset_cpus.clone(),
        pids_limit: a.pids_limit,
    };
    Ok((l != runtime_lite::cgroups::Limits::default()).then_some(l))
}

/// docker's byte sizes: `1024`, `512k`, `32m`, `1g` (binary multiples; `b` optional).
fn parse_bytes(s: &str) -> Result<u64> {
    let lower = s.trim().to_ascii_lowercase();
    let t = lower.trim_end_matches('b');
    let (num, mult) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1u64 << 10),
        Some('m') => (&t[..t.len() - 1], 1 << 20),
        Some('g') => (&t[..t.len() - 1], 1 << 30),
        Some('t') => (&t[..t.len() - 1], 1 << 40),
        _ => (t, 1),
    };
    let n: f64 = num
        .parse()
        .with_context(|| format!("invalid size `{s}`: use e.g. 512k, 32m, 1g"))?;
    Ok((n * mult as f64) as u64)
}

/// The image's environment, then `--env-file`, then `-e`; PATH defaulted, HOSTNAME and HOME
/// set as docker sets them.
fn environment(
    image_env: &[String],
    a: &RunArgs,
    hostname: &str,
    home: &str,
) -> Result<Vec<String>> {
    let mut env: Vec<String> = Vec::new();
    fn put(env: &mut Vec<String>, kv: String) {
        let key = kv.split('=').next().unwrap_or_default().to_string();
        env.retain(|e| e.split('=').next() != Some(key.as_str()));
        env.push(kv);
    }
    let set = |env: &mut Vec<String>, kv: String| put(env, kv);
    if !image_env.iter().any(|e| e.starts_with("PATH=")) {
        set(
            &mut env,
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
        );
    }
    set(&mut env, format!("HOSTNAME={hostname}"));
    for e in image_env {
        set(&mut env, e.clone());
    }
    let mut user_env = Vec::new();
    for f in &a.env_file {
        let text = std::fs::read_to_string(f)
            .with_context(|| format!("cannot read the env file `{}`", f.display()))?;
        user_env.extend(
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(String::from),
        );
    }
    user_env.extend(a.env.iter().cloned());
    for e in user_env {
        if e.contains('=') {
            set(&mut env, e);
        } else if let Ok(v) = std::env::var(&e) {
            set(&mut env, format!("{e}={v}"));
        }
    }
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        set(&mut env, format!("HOME={home}"));
    }
    Ok(env)
}

/// `HOST:CONTAINER[:ro|rw]`; the host directory is created when missing, as docker does.
fn volume(v: &str) -> Result<Mount> {
    let parts: Vec<&str> = v.split(':').collect();
    let (host, ctr, mode) = match parts.as_slice() {
        [h, c] => (*h, *c, ""),
        [h, c, m] => (*h, *c, *m),
        _ => bail!("invalid volume `{v}`: expected HOST:CONTAINER[:ro]"),
    };
    if !host.starts_with('/') || !ctr.starts_with('/') {
        bail!(
            "invalid volume `{v}`: both paths must be absolute (named volumes are not supported)"
        );
    }
    let readonly = match mode {
        "" | "rw" => false,
        "ro" => true,
        other => bail!("invalid volume mode `{other}` in `{v}`: use ro or rw"),
    };
    if !Path::new(host).exists() {
        std::fs::create_dir_all(host)
            .with_context(|| format!("cannot create the volume directory `{host}`"))?;
    }
    Ok(Mount::Bind {
        source: host.into(),
        target: ctr.to_string(),
        readonly,
    })
}
