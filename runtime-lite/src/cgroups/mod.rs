//! Cgroup limits for one container, on cgroup v1 and cgroup v2.
//!
//! [`CgroupRoot::detect`] decides the mode the way runc does: if `/sys/fs/cgroup` is a cgroup2
//! filesystem (statfs magic `0x63677270`) the unified hierarchy is used; otherwise each v1
//! controller has its own hierarchy (found in `/proc/self/mountinfo`). A hybrid setup (v1
//! controllers plus an empty `/sys/fs/cgroup/unified`) counts as v1, since the v2 hierarchy has
//! no controllers to limit anything with.
//!
//! [`Cgroup::create`] makes `hoist/<name>` and writes the limits with docker's mapping
//! ([`Limits`] documents each one). A controller the host lacks is not an error: its limits are
//! skipped and a warning is returned, as docker does.
//!
//! # Where the cgroups go
//!
//! * **v1**: under the cgroup the calling process is in, per controller (from
//!   `/proc/self/cgroup`, made relative to the mount's root in `/proc/self/mountinfo`), so a
//!   hoist started inside a limited cgroup (a CI job, a container without a cgroup namespace)
//!   keeps its containers inside that limit. If that cgroup is not visible through the mount,
//!   the mount's root is used.
//! * **v2**: under the root of the cgroup2 mount. v2 forbids enabling controllers for the
//!   children of a cgroup that has member processes (the "no internal processes" rule), and the
//!   caller's own cgroup always has one: us. The mount root is the real root (exempt from that
//!   rule) on a host, or the container's cgroup in a cgroup namespace; in the latter case the
//!   controllers can only be enabled once the container's processes have been moved into a
//!   child cgroup, and [`CgroupError::Populated`] says so.
//!
//! The shared `hoist/` parent is created on demand and left in place (like docker's `/docker`),
//! so an administrator can put limits on it and concurrent runs never race on its removal.
//! [`Cgroup::remove`] only ever removes the `hoist/<name>` directories that its own
//! [`Cgroup::create`] made (and, on a real cgroup filesystem, the empty child cgroups the
//! container may have created inside them), with `rmdir`, which the kernel refuses for cgroups
//! that still have processes.

mod v1;
mod v2;

use std::fs;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// The statfs magic of a cgroup v2 filesystem (`CGROUP2_SUPER_MAGIC`).
pub const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;

/// The statfs magic of a cgroup v1 filesystem (`CGROUP_SUPER_MAGIC`).
const CGROUP_SUPER_MAGIC: i64 = 0x0027_e0eb;

/// Where the cgroup filesystems are mounted.
const CGROUP_MOUNT: &str = "/sys/fs/cgroup";
/// The directory our container cgroups are created in.
const HOIST_DIR: &str = "hoist";
/// The CFS period used for `--cpus`, in microseconds (docker's default).
const CPU_PERIOD: u64 = 100_000;
/// The smallest CFS quota the kernel accepts, in microseconds (1 ms, i.e. `--cpus 0.01`).
const MIN_CPU_QUOTA: u64 = 1_000;
/// Docker's minimum for `--memory`.
const MIN_MEMORY: u64 = 6 * 1024 * 1024;
/// The range the kernel clamps v1 `cpu.shares` to.
const MIN_SHARES: u64 = 2;
const MAX_SHARES: u64 = 262_144;
/// How long [`Cgroup::remove`] keeps retrying a busy cgroup.
const REMOVE_TIMEOUT: Duration = Duration::from_secs(3);

/// Resource limits for one container, with docker's semantics. `None` leaves a limit unset.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Limits {
    /// `--memory`: the memory limit in bytes (v1 `memory.limit_in_bytes`, v2 `memory.max`).
    /// `0` means unlimited; other values below 6 MiB are rejected, as docker does.
    pub memory: Option<u64>,
    /// `--memory-swap`: memory plus swap in bytes, `-1` for unlimited swap (v1
    /// `memory.memsw.limit_in_bytes`, v2 `memory.swap.max` = this minus `memory`). Needs
    /// `memory`; must not be below it. When unset (or `0`) and `memory` is set, it defaults to
    /// twice `memory`.
    pub memory_swap: Option<i64>,
    /// `--cpus`: how many CPUs' worth of time the container gets per period (v1
    /// `cpu.cfs_quota_us` + `cpu.cfs_period_us`, v2 `cpu.max`), with a 100 ms period. At least
    /// 0.01.
    pub cpus: Option<f64>,
    /// `--cpu-shares`: the relative CPU weight (v1 `cpu.shares`, clamped to 2..=262144 like the
    /// kernel does; v2 `cpu.weight` = `1 + ((shares - 2) * 9999) / 262142`). `0` means unset.
    pub cpu_shares: Option<u64>,
    /// `--cpuset-cpus`: the CPUs the container may run on, in the kernel's list format
    /// (`0-3,5`). Empty means unset.
    pub cpuset_cpus: Option<String>,
    /// `--pids-limit`: the maximum number of tasks (`pids.max`); `0` or negative means
    /// unlimited.
    pub pids_limit: Option<i64>,
}

impl Limits {
    /// These limits as an OCI runtime spec's `linux.resources`, with docker's rules applied
    /// (validated, `--memory-swap` defaulting to twice `--memory`, shares clamped, `--cpus` as
    /// a quota over a 100 ms period): what docker hands runc for the same flags.
    pub fn to_oci(&self) -> Result<serde_json::Value, CgroupError> {
        let plan = Plan::new(self)?;
        let mut r = serde_json::json!({});
        if let Some(m) = plan.memory {
            r["memory"] = serde_json::json!({ "limit": m });
            match plan.swap {
                Some(Swap::Total(t)) => r["memory"]["swap"] = t.into(),
                Some(Swap::Unlimited) => r["memory"]["swap"] = (-1).into(),
                None => {}
            }
        }
        let mut cpu = serde_json::Map::new();
        if let Some(q) = plan.cpu_quota {
            cpu.insert("quota".into(), q.into());
            cpu.insert("period".into(), CPU_PERIOD.into());
        }
        if let Some(s) = plan.cpu_shares {
            cpu.insert("shares".into(), s.into());
        }
        if let Some(c) = &plan.cpuset_cpus {
            cpu.insert("cpus".into(), c.as_str().into());
        }
        if !cpu.is_empty() {
            r["cpu"] = cpu.into();
        }
        if let Some(p) = &plan.pids_max {
            r["pids"] = serde_json::json!({ "limit": p.parse::<i64>().unwrap_or(-1) });
        }
        Ok(r)
    }

    /// The limits an OCI runtime spec's `linux.resources` asks for (the inverse of
    /// [`Limits::to_oci`]; fields we do not support are ignored).
    pub fn from_oci(r: &oci_spec::runtime::LinuxResources) -> Limits {
        let memory = r.memory().as_ref();
        let cpu = r.cpu().as_ref();
        Limits {
            memory: memory
                .and_then(|m| m.limit())
                .and_then(|l| u64::try_from(l).ok()),
            memory_swap: memory.and_then(|m| m.swap()),
            cpus: cpu.and_then(|c| match (c.quota(), c.period()) {
                (Some(q), Some(p)) if q > 0 && p > 0 => Some(q as f64 / p as f64),
                (Some(q), None) if q > 0 => Some(q as f64 / CPU_PERIOD as f64),
                _ => None,
            }),
            cpu_shares: cpu.and_then(|c| c.shares()),
            cpuset_cpus: cpu.and_then(|c| c.cpus().clone()),
            pids_limit: r.pids().as_ref().map(|p| p.limit()),
        }
    }
}

/// Errors from creating, filling and removing cgroups. Each names the file or directory
/// involved.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    /// `/sys/fs/cgroup` (or the given base) cannot be examined.
    #[error("no cgroup filesystem at {path}: {source}")]
    NotMounted {
        /// The mount point looked at.
        path: PathBuf,
        /// Why it could not be examined.
        source: io::Error,
    },
    /// A cgroup file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The error from the kernel.
        source: io::Error,
    },
    /// A value could not be written to a cgroup file.
    #[error("cannot write {value:?} to {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The value that was written.
        value: String,
        /// The error from the kernel.
        source: io::Error,
    },
    /// A cgroup directory could not be created.
    #[error("cannot create cgroup {path}: {source}")]
    Create {
        /// The directory.
        path: PathBuf,
        /// The error from the kernel.
        source: io::Error,
    },
    /// The container's cgroup exists already.
    #[error("cgroup {path} already exists (another container with the same name, or a leftover)")]
    Exists {
        /// The directory.
        path: PathBuf,
    },
    /// cgroup v2 refused to enable controllers because the parent cgroup has processes.
    #[error(
        "cannot enable cgroup controllers {value:?} in {path}: the cgroup has member processes, \
         and cgroup v2 only enables controllers below cgroups without processes (move those \
         processes into a child cgroup first)"
    )]
    Populated {
        /// The `cgroup.subtree_control` file.
        path: PathBuf,
        /// The value that was written.
        value: String,
    },
    /// A cgroup directory could not be removed.
    #[error("cannot remove cgroup {path}: {source}")]
    Remove {
        /// The directory.
        path: PathBuf,
        /// The error from the kernel (`EBUSY` if processes remain).
        source: io::Error,
    },
    /// The container name cannot be used as a cgroup directory name.
    #[error("invalid cgroup name {name:?}: {reason}")]
    InvalidName {
        /// The name given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A limit is out of range or inconsistent with another one.
    #[error("invalid {option} value {value}: {reason}")]
    InvalidLimit {
        /// The docker option, e.g. `--memory-swap`.
        option: &'static str,
        /// The value given.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A process id that cannot name a process.
    #[error("invalid process id {pid}")]
    InvalidPid {
        /// The id given.
        pid: i32,
    },
}

/// A cgroup mount layout: the v2 hierarchy, or the v1 hierarchies with their controllers.
#[derive(Debug, Clone)]
pub struct CgroupRoot {
    layout: Layout,
    /// Tests only: called after each `mkdir` so a plain directory tree can imitate the files the
    /// kernel shows in a new cgroup.
    imitate: Option<fn(&Path)>,
}

#[derive(Debug, Clone)]
enum Layout {
    V1(Vec<Hierarchy>),
    V2 {
        /// The directory `hoist/` is created in (the cgroup2 mount point).
        base: PathBuf,
    },
}

/// One v1 hierarchy.
#[derive(Debug, Clone, PartialEq)]
struct Hierarchy {
    /// The controllers attached to it (`cpu`, `cpuacct` when co-mounted).
    controllers: Vec<String>,
    /// The directory `hoist/` is created in: our own cgroup in this hierarchy, or the mount
    /// point.
    base: PathBuf,
}

impl CgroupRoot {
    /// Finds the cgroup hierarchies of this host (see the module documentation).
    pub fn detect() -> Result<Self, CgroupError> {
        let mount = Path::new(CGROUP_MOUNT);
        let magic = fs_magic(mount).map_err(|source| CgroupError::NotMounted {
            path: mount.to_path_buf(),
            source,
        })?;
        if magic == CGROUP2_SUPER_MAGIC {
            return Ok(Self::v2_at(mount));
        }
        let mountinfo = read_string(Path::new("/proc/self/mountinfo"))?;
        let own = read_string(Path::new("/proc/self/cgroup"))?;
        let hierarchies = v1::hierarchies(&mountinfo, &own, mount)
            .into_iter()
            .map(|found| {
                let mut hierarchy = found.hierarchy;
                // Our cgroup may not be visible through this mount: use the mount's root.
                if !hierarchy.base.is_dir() {
                    hierarchy.base = found.mount;
                }
                hierarchy
            })
            .collect();
        Ok(Self {
            layout: Layout::V1(hierarchies),
            imitate: None,
        })
    }

    /// A v1 layout with one hierarchy per directory of `base` (named after its controllers,
    /// comma-separated when co-mounted, e.g. `cpu,cpuacct`; symlinks are skipped). Cgroups are
    /// created at each hierarchy's root.
    pub fn v1_at(base: &Path) -> Self {
        let mut hierarchies: Vec<Hierarchy> = Vec::new();
        if let Ok(entries) = fs::read_dir(base) {
            for entry in entries.flatten() {
                let Ok(kind) = entry.file_type() else {
                    continue;
                };
                if !kind.is_dir() {
                    continue;
                }
                let name = entry.file_name().to_string_lossy().into_owned();
                hierarchies.push(Hierarchy {
                    controllers: name.split(',').map(str::to_owned).collect(),
                    base: entry.path(),
                });
            }
        }
        hierarchies.sort_by(|a, b| a.base.cmp(&b.base));
        Self {
            layout: Layout::V1(hierarchies),
            imitate: None,
        }
    }

    /// A v2 layout whose cgroup2 mount (or delegated subtree) is `base`; cgroups are created
    /// in `base/hoist/`.
    pub fn v2_at(base: &Path) -> Self {
        Self {
            layout: Layout::V2 {
                base: base.to_path_buf(),
            },
            imitate: None,
        }
    }

    /// The cgroup version: 1 or 2.
    pub fn version(&self) -> u8 {
        match self.layout {
            Layout::V1(_) => 1,
            Layout::V2 { .. } => 2,
        }
    }
}

/// The cgroup (one directory per used v1 hierarchy, or one v2 directory) of one container.
#[derive(Debug)]
pub struct Cgroup {
    kind: Kind,
    /// Created through an imitation tree (tests): control files are plain files, no process
    /// is real.
    imitation: bool,
}

#[derive(Debug)]
enum Kind {
    V1(Vec<v1::Dir>),
    V2(PathBuf),
}

impl Cgroup {
    /// Creates `hoist/<name>` under each needed controller (v1) or under the v2 root (enabling
    /// the controllers in `cgroup.subtree_control` of the root and of `hoist/`), writes the
    /// limits, and returns warnings for limits that cannot be applied because the controller
    /// (or the feature, like swap accounting) is missing.
    ///
    /// The memory (and on v1 pids) cgroup is created even without limits, so that OOM kills
    /// can be reported and the processes found for cleanup. On failure nothing is left behind
    /// but the shared `hoist/` directories.
    pub fn create(
        root: &CgroupRoot,
        name: &str,
        limits: &Limits,
    ) -> Result<(Cgroup, Vec<String>), CgroupError> {
        check_name(name)?;
        let plan = Plan::new(limits)?;
        let (kind, warnings) = match &root.layout {
            Layout::V1(hierarchies) => {
                let (dirs, warnings) = v1::create(hierarchies, name, &plan, root.imitate)?;
                (Kind::V1(dirs), warnings)
            }
            Layout::V2 { base } => {
                let (dir, warnings) = v2::create(base, name, &plan, root.imitate)?;
                (Kind::V2(dir), warnings)
            }
        };
        Ok((
            Cgroup {
                kind,
                imitation: root.imitate.is_some(),
            },
            warnings,
        ))
    }

    /// The cgroup `hoist/<name>` made earlier (by another process, e.g. the supervisor of a
    /// container killed by `hoist rm -f`), if any of its directories still exists; for
    /// [`Cgroup::remove`].
    pub fn existing(root: &CgroupRoot, name: &str) -> Option<Cgroup> {
        check_name(name).ok()?;
        let kind = match &root.layout {
            Layout::V1(hierarchies) => {
                let dirs: Vec<v1::Dir> = hierarchies
                    .iter()
                    .map(|h| v1::Dir {
                        controllers: h.controllers.clone(),
                        path: h.base.join(HOIST_DIR).join(name),
                    })
                    .filter(|d| d.path.is_dir())
                    .collect();
                if dirs.is_empty() {
                    return None;
                }
                Kind::V1(dirs)
            }
            Layout::V2 { base } => {
                let dir = base.join(HOIST_DIR).join(name);
                if !dir.is_dir() {
                    return None;
                }
                Kind::V2(dir)
            }
        };
        Some(Cgroup {
            kind,
            imitation: root.imitate.is_some(),
        })
    }

    /// Moves a process (with all its threads) into the cgroup: writes `pid` to `cgroup.procs`
    /// of every directory.
    pub fn add(&self, pid: i32) -> Result<(), CgroupError> {
        if pid <= 0 {
            return Err(CgroupError::InvalidPid { pid });
        }
        for dir in self.paths() {
            write_file(&dir.join("cgroup.procs"), &pid.to_string())?;
        }
        Ok(())
    }

    /// True if the kernel's OOM killer killed a process in this cgroup: v2 `memory.events`
    /// `oom_kill` > 0; v1 `memory.oom_control` `oom_kill` > 0, or on kernels before 4.13
    /// (which lack that line) `memory.failcnt` > 0. False when there is no memory cgroup or
    /// the files cannot be read.
    pub fn oom_killed(&self) -> bool {
        match &self.kind {
            Kind::V1(dirs) => v1::oom_killed(dirs),
            Kind::V2(dir) => v2::oom_killed(dir),
        }
    }

    /// Kills the processes left in the cgroup (v2 `cgroup.kill`, else `SIGKILL` to each member
    /// of `cgroup.procs`), then removes its directories, retrying for a few seconds while the
    /// kernel reports them busy. Directories already gone are fine.
    pub fn remove(self) -> Result<(), CgroupError> {
        let mut pending = Vec::new();
        for dir in self.paths() {
            if self.imitation {
                pending.push(dir);
            } else {
                // Child cgroups the container made, deepest first, then ours.
                pending.extend(child_cgroups(&dir));
                pending.push(dir);
            }
        }
        let start = Instant::now();
        let mut round: u32 = 0;
        loop {
            if !self.imitation {
                self.kill_all();
            }
            let mut busy = None;
            let mut left = Vec::new();
            for dir in pending {
                match remove_cgroup_dir(&dir, self.imitation) {
                    Ok(()) => {}
                    Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                        left.push(dir);
                        busy.get_or_insert(e);
                    }
                    Err(source) => return Err(CgroupError::Remove { path: dir, source }),
                }
            }
            pending = left;
            let Some(source) = busy else { return Ok(()) };
            if start.elapsed() >= REMOVE_TIMEOUT {
                let path = pending.swap_remove(0);
                return Err(CgroupError::Remove { path, source });
            }
            round = round.saturating_add(1);
            thread::sleep(Duration::from_millis(u64::from(round.min(10)) * 10));
        }
    }

    /// The cgroup's directories: one per v1 hierarchy used, or the single v2 directory.
    pub fn paths(&self) -> Vec<PathBuf> {
        match &self.kind {
            Kind::V1(dirs) => dirs.iter().map(|d| d.path.clone()).collect(),
            Kind::V2(dir) => vec![dir.clone()],
        }
    }

    /// Sends `SIGKILL` to every process in the cgroup (and its children cgroups).
    /// Only directories on a cgroup filesystem are looked at: pids in plain files are not ours
    /// to kill.
    fn kill_all(&self) {
        if let Kind::V2(dir) = &self.kind {
            if on_cgroupfs(dir) && write_file(&dir.join("cgroup.kill"), "1").is_ok() {
                return;
            }
        }
        for dir in self.paths().into_iter().filter(|d| on_cgroupfs(d)) {
            for cgroup in child_cgroups(&dir).iter().chain(std::iter::once(&dir)) {
                for pid in procs(cgroup) {
                    if let Some(pid) = rustix::process::Pid::from_raw(pid) {
                        // ESRCH: it exited meanwhile.
                        let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
                    }
                }
            }
        }
    }
}

/// Limits resolved into the values to write, validated.
#[derive(Debug, Default, PartialEq)]
struct Plan {
    memory: Option<u64>,
    swap: Option<Swap>,
    cpu_quota: Option<u64>,
    cpu_shares: Option<u64>,
    cpuset_cpus: Option<String>,
    /// `pids.max`: a number or `max`.
    pids_max: Option<String>,
}

/// The memory+swap limit.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Swap {
    Unlimited,
    /// Memory plus swap, in bytes; never below the memory limit.
    Total(u64),
}

impl Plan {
    fn new(limits: &Limits) -> Result<Self, CgroupError> {
        let invalid = |option, value: String, reason| CgroupError::InvalidLimit {
            option,
            value,
            reason,
        };
        let memory = limits.memory.filter(|m| *m != 0);
        if let Some(m) = memory {
            if m < MIN_MEMORY {
                return Err(invalid("--memory", m.to_string(), "the minimum is 6 MiB"));
            }
        }
        let swap = match (memory, limits.memory_swap.filter(|s| *s != 0)) {
            (_, Some(s)) if s < -1 => {
                return Err(invalid(
                    "--memory-swap",
                    s.to_string(),
                    "use -1 for unlimited",
                ));
            }
            (None, Some(-1)) | (None, None) => None,
            (None, Some(s)) => {
                return Err(invalid(
                    "--memory-swap",
                    s.to_string(),
                    "it needs a --memory limit too",
                ));
            }
            (Some(_), Some(-1)) => Some(Swap::Unlimited),
            (Some(m), Some(s)) => {
                let total = u64::try_from(s).unwrap_or(0);
                if total < m {
                    return Err(invalid(
                        "--memory-swap",
                        s.to_string(),
                        "it must not be below --memory (it counts memory plus swap)",
                    ));
                }
                Some(Swap::Total(total))
            }
            (Some(m), None) => Some(m.checked_mul(2).map_or(Swap::Unlimited, Swap::Total)),
        };
        let cpu_quota = match limits.cpus {
            None => None,
            Some(cpus) => {
                let quota = cpus * CPU_PERIOD as f64;
                if !quota.is_finite() || quota.round() < MIN_CPU_QUOTA as f64 {
                    return Err(invalid("--cpus", cpus.to_string(), "the minimum is 0.01"));
                }
                if quota > 1e15 {
                    return Err(invalid("--cpus", cpus.to_string(), "too large"));
                }
                Some(quota.round() as u64)
            }
        };
        let cpu_shares = limits
            .cpu_shares
            .filter(|s| *s != 0)
            .map(|s| s.clamp(MIN_SHARES, MAX_SHARES));
        let cpuset_cpus = match limits.cpuset_cpus.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(cpus) => {
                if !cpus
                    .bytes()
                    .all(|b| b.is_ascii_digit() || b == b',' || b == b'-')
                {
                    return Err(invalid(
                        "--cpuset-cpus",
                        format!("{cpus:?}"),
                        "expected a list like 0-3,5",
                    ));
                }
                Some(cpus.to_owned())
            }
        };
        let pids_max = limits.pids_limit.map(|p| {
            if p <= 0 {
                "max".to_owned()
            } else {
                p.to_string()
            }
        });
        Ok(Plan {
            memory,
            swap,
            cpu_quota,
            cpu_shares,
            cpuset_cpus,
            pids_max,
        })
    }

    /// The docker options this plan sets that need `controller`.
    fn options(&self, controller: &str) -> Vec<&'static str> {
        let mut options = Vec::new();
        match controller {
            "cpuset" if self.cpuset_cpus.is_some() => options.push("--cpuset-cpus"),
            "cpu" => {
                if self.cpu_quota.is_some() {
                    options.push("--cpus");
                }
                if self.cpu_shares.is_some() {
                    options.push("--cpu-shares");
                }
            }
            "memory" if self.memory.is_some() => {
                options.push("--memory");
                if matches!(self.swap, Some(Swap::Total(_))) {
                    options.push("--memory-swap");
                }
            }
            "pids" if self.pids_max.is_some() => options.push("--pids-limit"),
            _ => {}
        }
        options
    }

    /// The v2 `cpu.weight` for the shares.
    fn cpu_weight(&self) -> Option<u64> {
        self.cpu_shares.map(shares_to_weight)
    }
}

/// Converts v1 `cpu.shares` (2..=262144) to v2 `cpu.weight` (1..=10000), as runc and docker do.
fn shares_to_weight(shares: u64) -> u64 {
    let shares = shares.clamp(MIN_SHARES, MAX_SHARES);
    1 + ((shares - MIN_SHARES) * 9999) / (MAX_SHARES - MIN_SHARES)
}

/// The controllers we use, in the kernel's order.
const CONTROLLERS: [&str; 4] = ["cpuset", "cpu", "memory", "pids"];

/// The warning for a controller the host lacks.
fn missing_controller(controller: &str, options: &[&str]) -> String {
    format!(
        "cgroup controller `{controller}` is not available: {} ignored",
        options.join(", ")
    )
}

/// The warning for a control file missing in an existing controller.
fn missing_feature(feature: &str, file: &str, options: &str) -> String {
    format!("{feature} is not available ({file} is missing): {options} ignored")
}

fn check_name(name: &str) -> Result<(), CgroupError> {
    let invalid = |reason| CgroupError::InvalidName {
        name: name.to_owned(),
        reason,
    };
    let Some(first) = name.bytes().next() else {
        return Err(invalid("it is empty"));
    };
    if name.len() > 200 {
        return Err(invalid("it is longer than 200 bytes"));
    }
    if !first.is_ascii_alphanumeric() {
        return Err(invalid("it must start with a letter or digit"));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
    {
        return Err(invalid(
            "only letters, digits, '_', '.' and '-' are allowed",
        ));
    }
    Ok(())
}

fn read_string(path: &Path) -> Result<String, CgroupError> {
    fs::read_to_string(path).map_err(|source| CgroupError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Reads a file, trimmed; `None` if it does not exist.
fn read_optional(path: &Path) -> Result<Option<String>, CgroupError> {
    match fs::read_to_string(path) {
        Ok(s) => Ok(Some(s.trim().to_owned())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(CgroupError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Writes a value to an existing control file in a single `write`.
fn write_file(path: &Path, value: &str) -> Result<(), CgroupError> {
    let result = fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)
        .and_then(|mut f| f.write_all(value.as_bytes()));
    result.map_err(|source| CgroupError::Write {
        path: path.to_path_buf(),
        value: value.to_owned(),
        source,
    })
}

/// Creates a cgroup directory; `Ok(false)` if it existed.
fn make_dir(path: &Path, imitate: Option<fn(&Path)>) -> Result<bool, CgroupError> {
    match fs::create_dir(path) {
        Ok(()) => {
            if let Some(imitate) = imitate {
                imitate(path);
            }
            Ok(true)
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        Err(source) => Err(CgroupError::Create {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Creates the container's own directory, which must not exist yet.
fn make_leaf(path: &Path, imitate: Option<fn(&Path)>) -> Result<(), CgroupError> {
    if make_dir(path, imitate)? {
        Ok(())
    } else {
        Err(CgroupError::Exists {
            path: path.to_path_buf(),
        })
    }
}

/// Removes a cgroup directory; a missing one counts as removed. On an imitation tree the
/// control files are plain files (never subdirectories) and are deleted first.
fn remove_cgroup_dir(path: &Path, imitation: bool) -> io::Result<()> {
    if imitation {
        if let Ok(entries) = fs::read_dir(path) {
            for entry in entries.flatten() {
                if entry.file_type().is_ok_and(|t| !t.is_dir()) {
                    fs::remove_file(entry.path())?;
                }
            }
        }
    }
    match fs::remove_dir(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// Best-effort removal of directories created during a failed `create`.
fn cleanup(dirs: &[PathBuf], imitation: bool) {
    for dir in dirs {
        let _ = remove_cgroup_dir(dir, imitation);
    }
}

/// The statfs magic of the filesystem holding `path`.
fn fs_magic(path: &Path) -> io::Result<i64> {
    let stat = rustix::fs::statfs(path)?;
    // `f_type` is i64 here but narrower or unsigned on some targets.
    #[allow(clippy::useless_conversion)]
    Ok(i64::from(stat.f_type))
}

/// Whether `path` is on a cgroup (v1 or v2) filesystem.
fn on_cgroupfs(path: &Path) -> bool {
    fs_magic(path).is_ok_and(|m| m == CGROUP_SUPER_MAGIC || m == CGROUP2_SUPER_MAGIC)
}

/// The child cgroups below `dir`, deepest first; nothing unless `dir` is on a cgroup
/// filesystem (where subdirectories can only be cgroups).
fn child_cgroups(dir: &Path) -> Vec<PathBuf> {
    if !on_cgroupfs(dir) {
        return Vec::new();
    }
    child_cgroups_below(dir)
}

fn child_cgroups_below(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                out.extend(child_cgroups_below(&entry.path()));
                out.push(entry.path());
            }
        }
    }
    out
}

/// The process ids listed in `dir/cgroup.procs`.
fn procs(dir: &Path) -> Vec<i32> {
    fs::read_to_string(dir.join("cgroup.procs"))
        .map(|s| s.lines().filter_map(|l| l.trim().parse().ok()).collect())
        .unwrap_or_default()
}

/// The value of `key` in a flat keyed file (`key value` lines), e.g. `memory.events`.
fn keyed_value(content: &str, key: &str) -> Option<u64> {
    content.lines().find_map(|line| {
        let (k, v) = line.split_once(' ')?;
        if k == key {
            v.trim().parse().ok()
        } else {
            None
        }
    })
}

#[cfg(test)]
mod tests;
