//! cgroup v1: one hierarchy per controller, or per group of co-mounted controllers.

use std::path::{Component, Path, PathBuf};

use super::{
    CONTROLLERS, CPU_PERIOD, CgroupError, HOIST_DIR, Hierarchy, Plan, Swap, cleanup, keyed_value,
    make_dir, make_leaf, missing_controller, missing_feature, read_optional, write_file,
};

/// One directory of a container's v1 cgroup.
#[derive(Debug)]
pub(super) struct Dir {
    /// The controllers of its hierarchy.
    pub(super) controllers: Vec<String>,
    /// `<base>/hoist/<name>`.
    pub(super) path: PathBuf,
}

impl Dir {
    fn has(&self, controller: &str) -> bool {
        self.controllers.iter().any(|c| c == controller)
    }
}

impl Hierarchy {
    fn has(&self, controller: &str) -> bool {
        self.controllers.iter().any(|c| c == controller)
    }
}

/// A hierarchy found in `/proc/self/mountinfo`, with its mount point.
#[derive(Debug, PartialEq)]
pub(super) struct Found {
    pub(super) hierarchy: Hierarchy,
    pub(super) mount: PathBuf,
}

/// Mount options of a v1 cgroup mount that are not controller names.
const NOT_CONTROLLERS: [&str; 7] = [
    "rw",
    "ro",
    "noprefix",
    "xattr",
    "clone_children",
    "cpuset_v2_mode",
    "favordynmods",
];

/// The v1 hierarchies in `mountinfo` (the text of `/proc/self/mountinfo`), each with the
/// directory to create `hoist/` in: our own cgroup from `own_cgroups` (the text of
/// `/proc/self/cgroup`) made relative to the mount's root. Mounts under `prefer` win when a
/// controller is mounted more than once; hierarchies without controllers (`name=systemd`) are
/// left out.
pub(super) fn hierarchies(mountinfo: &str, own_cgroups: &str, prefer: &Path) -> Vec<Found> {
    let mut mounts: Vec<(Vec<String>, PathBuf, String)> = mountinfo
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            let dash = fields.iter().position(|f| *f == "-")?;
            if fields.get(dash + 1) != Some(&"cgroup") {
                return None;
            }
            let root = unescape(fields.get(3)?);
            let mount = PathBuf::from(unescape(fields.get(4)?));
            let controllers: Vec<String> = fields
                .get(dash + 3)?
                .split(',')
                .filter(|o| !o.contains('=') && !NOT_CONTROLLERS.contains(o))
                .map(str::to_owned)
                .collect();
            (!controllers.is_empty()).then_some((controllers, mount, root))
        })
        .collect();
    // Stable: mounts under `prefer` first, otherwise in mount order.
    mounts.sort_by_key(|(_, mount, _)| !mount.starts_with(prefer));
    let mut found: Vec<Found> = Vec::new();
    for (controllers, mount, root) in mounts {
        let taken = found
            .iter()
            .any(|f| controllers.iter().any(|c| f.hierarchy.has(c)));
        if taken {
            continue;
        }
        let own = own_cgroups.lines().find_map(|line| {
            let mut parts = line.splitn(3, ':');
            let (_, names, path) = (parts.next()?, parts.next()?, parts.next()?);
            names
                .split(',')
                .any(|n| controllers.iter().any(|c| c == n))
                .then_some(path)
        });
        let base = own.map_or_else(|| mount.clone(), |own| nested_base(&mount, &root, own));
        found.push(Found {
            hierarchy: Hierarchy { controllers, base },
            mount,
        });
    }
    found
}

/// The directory of cgroup `own` (a path from `/proc/self/cgroup`) in a mount of the cgroup
/// `root` at `mount`; the mount point if `own` is not below `root`.
fn nested_base(mount: &Path, root: &str, own: &str) -> PathBuf {
    let relative = if root == "/" {
        Some(own)
    } else if own == root {
        Some("")
    } else {
        own.strip_prefix(root)
            .and_then(|rest| rest.strip_prefix('/'))
    };
    let Some(relative) = relative else {
        return mount.to_path_buf();
    };
    let relative = Path::new(relative.trim_start_matches('/'));
    let normal = relative
        .components()
        .all(|c| matches!(c, Component::Normal(_)));
    if normal && !relative.as_os_str().is_empty() {
        mount.join(relative)
    } else {
        mount.to_path_buf()
    }
}

/// Undoes mountinfo's octal escapes (`\040` for a space and so on).
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'\\' {
            if let Some(code) = bytes
                .get(i + 1..i + 4)
                .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)))
                .and_then(|d| std::str::from_utf8(d).ok())
                .and_then(|d| u8::from_str_radix(d, 8).ok())
            {
                out.push(code);
                i += 4;
                continue;
            }
        }
        out.push(b);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Creates `hoist/<name>` in the hierarchies of the controllers needed (memory and pids always,
/// cpu and cpuset when limited) and writes the limits.
pub(super) fn create(
    hierarchies: &[Hierarchy],
    name: &str,
    plan: &Plan,
    imitate: Option<fn(&Path)>,
) -> Result<(Vec<Dir>, Vec<String>), CgroupError> {
    let mut warnings = Vec::new();
    let mut used: Vec<&Hierarchy> = Vec::new();
    for controller in CONTROLLERS {
        let options = plan.options(controller);
        let always = matches!(controller, "memory" | "pids");
        if options.is_empty() && !always {
            continue;
        }
        match hierarchies.iter().find(|h| h.has(controller)) {
            None if !options.is_empty() => {
                warnings.push(missing_controller(controller, &options));
            }
            Some(h) if !used.iter().any(|u| std::ptr::eq(*u, h)) => used.push(h),
            _ => {}
        }
    }
    let mut dirs = Vec::new();
    if let Err(e) = fill(&used, name, plan, imitate, &mut dirs, &mut warnings) {
        let paths: Vec<PathBuf> = dirs.into_iter().map(|d| d.path).collect();
        cleanup(&paths, imitate.is_some());
        return Err(e);
    }
    Ok((dirs, warnings))
}

fn fill(
    used: &[&Hierarchy],
    name: &str,
    plan: &Plan,
    imitate: Option<fn(&Path)>,
    dirs: &mut Vec<Dir>,
    warnings: &mut Vec<String>,
) -> Result<(), CgroupError> {
    for hierarchy in used {
        let hoist = hierarchy.base.join(HOIST_DIR);
        make_dir(&hoist, imitate)?;
        let cpuset = hierarchy.has("cpuset");
        if cpuset {
            inherit_cpuset(&hierarchy.base, &hoist)?;
        }
        let leaf = hoist.join(name);
        make_leaf(&leaf, imitate)?;
        dirs.push(Dir {
            controllers: hierarchy.controllers.clone(),
            path: leaf.clone(),
        });
        if cpuset {
            // A new cpuset starts with no CPUs and no memory nodes, and no task can join it
            // until both are set.
            let mems = read_optional(&hoist.join("cpuset.mems"))?.unwrap_or_default();
            write_file(&leaf.join("cpuset.mems"), &mems)?;
            let cpus = match &plan.cpuset_cpus {
                Some(cpus) => cpus.clone(),
                None => read_optional(&hoist.join("cpuset.cpus"))?.unwrap_or_default(),
            };
            write_file(&leaf.join("cpuset.cpus"), &cpus)?;
        }
    }
    let dir = |controller: &str| dirs.iter().find(|d| d.has(controller)).map(|d| &d.path);
    if let Some(dir) = dir("cpu") {
        if let Some(quota) = plan.cpu_quota {
            if dir.join("cpu.cfs_quota_us").exists() {
                write_file(&dir.join("cpu.cfs_period_us"), &CPU_PERIOD.to_string())?;
                write_file(&dir.join("cpu.cfs_quota_us"), &quota.to_string())?;
            } else {
                warnings.push(missing_feature(
                    "cpu bandwidth control",
                    "cpu.cfs_quota_us",
                    "--cpus",
                ));
            }
        }
        if let Some(shares) = plan.cpu_shares {
            if dir.join("cpu.shares").exists() {
                write_file(&dir.join("cpu.shares"), &shares.to_string())?;
            } else {
                warnings.push(missing_feature("cpu shares", "cpu.shares", "--cpu-shares"));
            }
        }
    }
    if let Some(dir) = dir("memory") {
        if let Some(memory) = plan.memory {
            write_file(&dir.join("memory.limit_in_bytes"), &memory.to_string())?;
        }
        // memsw must not go below the memory limit, so it is set second.
        let memsw = dir.join("memory.memsw.limit_in_bytes");
        match plan.swap {
            None => {}
            Some(_) if !memsw.exists() => {
                if matches!(plan.swap, Some(Swap::Total(_))) {
                    warnings.push(missing_feature(
                        "swap accounting",
                        "memory.memsw.limit_in_bytes",
                        "--memory-swap",
                    ));
                }
            }
            Some(Swap::Unlimited) => write_file(&memsw, "-1")?,
            Some(Swap::Total(total)) => write_file(&memsw, &total.to_string())?,
        }
    }
    if let (Some(dir), Some(pids)) = (dir("pids"), &plan.pids_max) {
        write_file(&dir.join("pids.max"), pids)?;
    }
    Ok(())
}

/// Gives the shared `hoist/` cpuset its parent's CPUs and memory nodes if it has none yet
/// (new v1 cpusets start empty, which would make every child unusable).
fn inherit_cpuset(parent: &Path, hoist: &Path) -> Result<(), CgroupError> {
    for file in ["cpuset.cpus", "cpuset.mems"] {
        let current = read_optional(&hoist.join(file))?.unwrap_or_default();
        if current.is_empty() {
            let value = read_optional(&parent.join(file))?.unwrap_or_default();
            write_file(&hoist.join(file), &value)?;
        }
    }
    Ok(())
}

/// v1 OOM detection: `oom_kill` in `memory.oom_control` (Linux 4.13+), else `memory.failcnt`.
pub(super) fn oom_killed(dirs: &[Dir]) -> bool {
    let Some(dir) = dirs.iter().find(|d| d.has("memory")) else {
        return false;
    };
    let control = read_optional(&dir.path.join("memory.oom_control"))
        .ok()
        .flatten();
    if let Some(kills) = control.as_deref().and_then(|c| keyed_value(c, "oom_kill")) {
        return kills > 0;
    }
    read_optional(&dir.path.join("memory.failcnt"))
        .ok()
        .flatten()
        .and_then(|n| n.parse::<u64>().ok())
        .is_some_and(|n| n > 0)
}
