//! Containers after `run`: `ps`, `rm`, `start -a`, `commit`.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use oci::{History, Reference};
use store::containers::{Containers, Record, State};
use store::{Descriptor, Store};

use crate::cli::{CommitArgs, PsArgs, RmArgs, StartArgs};
use crate::render;

pub fn ps(store: &Store, a: PsArgs) -> Result<()> {
    let all = Containers::new(store.root()).list()?;
    let shown: Vec<&Record> = all
        .iter()
        .filter(|r| a.all || r.state == State::Running)
        .collect();
    if a.quiet {
        return super::stdout_lines(shown.iter().map(|r| r.id[..12].to_string()));
    }
    let mut rows = vec![vec![
        "CONTAINER ID".into(),
        "IMAGE".into(),
        "COMMAND".into(),
        "CREATED".into(),
        "STATUS".into(),
        "NAMES".into(),
    ]];
    for r in shown {
        let mut cmd = r.command.join(" ");
        if cmd.chars().count() > 20 {
            cmd = cmd.chars().take(19).collect::<String>() + "…";
        }
        let status = match r.state {
            State::Running => "Up".to_string(),
            State::Created => "Created".to_string(),
            State::Exited => format!(
                "Exited ({}) {}",
                r.exit_code.map_or("?".into(), |c| c.to_string()),
                render::ago(r.finished.as_deref())
            ),
        };
        rows.push(vec![
            r.id[..12].to_string(),
            r.image.clone(),
            format!("\"{cmd}\""),
            render::ago(Some(&r.created)),
            status,
            r.name.clone(),
        ]);
    }
    let mut out = Vec::new();
    render::table(&mut out, &rows)?;
    super::stdout_lines([String::from_utf8_lossy(&out).trim_end().to_string()])
}

pub fn rm(store: &Store, a: RmArgs) -> Result<()> {
    let containers = Containers::new(store.root());
    let mut removed = Vec::new();
    for name in &a.containers {
        let r = containers.find(name)?;
        if r.state == State::Running {
            if !a.force {
                bail!(
                    "container `{}` is running: stop it first, or use `hoist rm -f`",
                    r.name
                );
            }
            if let Some(pid) = r.pid {
                // The supervisor's death takes the container's PID 1 with it (PDEATHSIG).
                if let Some(p) = rustix::process::Pid::from_raw(pid) {
                    let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
                }
                wait_gone(pid);
            }
            // The supervisor cannot clean up after SIGKILL: kill what is left in the
            // container's cgroup and remove it.
            if let Ok(root) = runtime_lite::cgroups::CgroupRoot::detect()
                && let Some(cg) = runtime_lite::cgroups::Cgroup::existing(&root, &r.id)
            {
                cg.remove()
                    .with_context(|| format!("cannot remove the cgroup of `{}`", r.name))?;
            }
        }
        super::remove_container_dir(&containers.dir(&r.id))?;
        removed.push(r.name);
    }
    super::stdout_lines(removed)
}

/// Waits up to 5 s for process `pid` to be gone (or a zombie: its parent reaps it).
fn wait_gone(pid: i32) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while store::containers::alive(pid) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

pub fn start(root: &Path, a: StartArgs) -> ExitCode {
    let result = (|| -> Result<i32> {
        let store = super::open(root)?;
        let containers = Containers::new(store.root());
        let r = containers.find(&a.container)?;
        if r.state == State::Running {
            bail!("container `{}` is already running", r.name);
        }
        let spec: runtime_lite::Spec = serde_json::from_value(r.spec.clone())
            .context("the container's record has no usable spec")?;
        super::run::supervise(&store, r, &spec)
    })();
    match result {
        Ok(code) => ExitCode::from(code.clamp(0, 255) as u8),
        Err(e) => {
            render::error(&e);
            ExitCode::from(runtime_lite::sandbox::EXIT_SANDBOX as u8)
        }
    }
}

pub fn commit(store: &Store, a: CommitArgs) -> Result<()> {
    let _lease = store.lease()?;
    let containers = Containers::new(store.root());
    let r = containers.find(&a.container)?;
    let image = store.load_image(&Descriptor::new(
        &oci::MediaType::OciManifest,
        r.image_digest.clone(),
        0,
    ))?;
    let upper = containers.dir(&r.id).join("upper");
    let mut ingest = store.blobs().ingest(
        store::Expected::any(),
        format!("changes of container `{}`", r.name),
    )?;
    store::flatten::write_diff(&upper, &mut ingest, None, super::rootless_ids())
        .with_context(|| format!("cannot diff `{}`", upper.display()))?;
    let (diff_id, _) = ingest.commit()?;
    let mut config = image.config.clone();
    let created = super::import::now();
    let rc = config.runtime_mut();
    for change in &a.changes {
        super::changes::apply_change(rc, change)
            .with_context(|| format!("invalid --change `{change}`"))?;
    }
    config.created = Some(created.clone());
    if let Some(author) = &a.author {
        config.author = Some(author.clone());
    }
    config.rootfs.diff_ids.push(diff_id);
    config.history.get_or_insert_with(Vec::new).push(History {
        created: Some(created),
        created_by: Some(r.command.join(" ")),
        author: a.author.clone(),
        comment: a.message.clone(),
        ..History::default()
    });
    let desc = store.commit_image(&config, &image.manifest.layers)?;
    let refs: Vec<Reference> = match &a.reference {
        Some(s) => {
            vec![Reference::parse_docker(s).with_context(|| format!("invalid image name `{s}`"))?]
        }
        None => Vec::new(),
    };
    store.tag(&desc, &refs)?;
    let id = store.load_image(&desc)?.id().clone();
    super::stdout_lines([id.to_string()])
}
