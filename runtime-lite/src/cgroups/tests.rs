use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use super::*;

const MIB: u64 = 1024 * 1024;

fn write(path: &Path, content: &str) {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).unwrap();
    }
    fs::write(path, content).unwrap();
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Imitates the kernel's v1 `mkdir`: the new cgroup shows the parent's control files, with
/// empty `cgroup.procs`/`tasks` and, for cpusets, no CPUs and no memory nodes.
fn imitate_v1(dir: &Path) {
    let parent = dir.parent().unwrap();
    for entry in fs::read_dir(parent).unwrap() {
        let entry = entry.unwrap();
        if !entry.file_type().unwrap().is_file() {
            continue;
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        let content = match name.as_str() {
            "cgroup.procs" | "tasks" | "cpuset.cpus" | "cpuset.mems" => String::new(),
            "memory.oom_control" => "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n".to_owned(),
            "memory.failcnt" => "0\n".to_owned(),
            _ => read(&entry.path()),
        };
        write(&dir.join(&name), &content);
    }
}

/// Imitates the kernel's v2 `mkdir`: core files plus the files of the controllers enabled in
/// the parent's `cgroup.subtree_control`.
fn imitate_v2_with(dir: &Path, swap: bool) {
    let parent = dir.parent().unwrap();
    let enabled = read(&parent.join("cgroup.subtree_control"));
    let enabled: Vec<&str> = enabled
        .split_whitespace()
        .map(|c| c.trim_start_matches('+'))
        .collect();
    write(&dir.join("cgroup.procs"), "");
    write(&dir.join("cgroup.controllers"), &enabled.join(" "));
    write(&dir.join("cgroup.subtree_control"), "");
    write(&dir.join("cgroup.kill"), "");
    write(&dir.join("cgroup.events"), "populated 0\nfrozen 0\n");
    for controller in enabled {
        match controller {
            "cpuset" => {
                write(&dir.join("cpuset.cpus"), "");
                write(&dir.join("cpuset.mems"), "");
            }
            "cpu" => {
                write(&dir.join("cpu.max"), "max 100000\n");
                write(&dir.join("cpu.weight"), "100\n");
            }
            "memory" => {
                write(&dir.join("memory.max"), "max\n");
                if swap {
                    write(&dir.join("memory.swap.max"), "max\n");
                }
                write(
                    &dir.join("memory.events"),
                    "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\noom_group_kill 0\n",
                );
            }
            "pids" => write(&dir.join("pids.max"), "max\n"),
            _ => {}
        }
    }
}

fn imitate_v2(dir: &Path) {
    imitate_v2_with(dir, true);
}

fn imitate_v2_noswap(dir: &Path) {
    imitate_v2_with(dir, false);
}

/// Like `imitate_v2`, but `pids.max` cannot be written (a symlink to the directory).
fn imitate_v2_broken_pids(dir: &Path) {
    imitate_v2_with(dir, true);
    if dir.join("pids.max").exists() {
        fs::remove_file(dir.join("pids.max")).unwrap();
        std::os::unix::fs::symlink(".", dir.join("pids.max")).unwrap();
    }
}

/// A v1 root as the kernel shows it (with swap accounting and `cpu,cpuacct` co-mounted if
/// asked), with `controllers` mounted.
fn v1_tree(base: &Path, controllers: &[&str], memsw: bool) {
    for controller in controllers {
        let dir = base.join(controller);
        write(&dir.join("cgroup.procs"), "1\n");
        write(&dir.join("tasks"), "1\n");
        write(&dir.join("notify_on_release"), "0\n");
        if controller.split(',').any(|c| c == "cpu") {
            write(&dir.join("cpu.shares"), "1024\n");
            write(&dir.join("cpu.cfs_period_us"), "100000\n");
            write(&dir.join("cpu.cfs_quota_us"), "-1\n");
        }
        if controller.split(',').any(|c| c == "cpuacct") {
            write(&dir.join("cpuacct.usage"), "0\n");
        }
        match *controller {
            "cpuset" => {
                write(&dir.join("cpuset.cpus"), "0-3\n");
                write(&dir.join("cpuset.mems"), "0\n");
                write(&dir.join("cgroup.clone_children"), "0\n");
            }
            "memory" => {
                write(&dir.join("memory.limit_in_bytes"), "9223372036854771712\n");
                if memsw {
                    write(
                        &dir.join("memory.memsw.limit_in_bytes"),
                        "9223372036854771712\n",
                    );
                }
                write(
                    &dir.join("memory.oom_control"),
                    "oom_kill_disable 0\nunder_oom 0\n",
                );
                write(&dir.join("memory.failcnt"), "0\n");
            }
            // The root has no pids.max, but its children do; the imitation copies files.
            "pids" => write(&dir.join("pids.max"), "max\n"),
            _ => {}
        }
    }
}

fn v1_root(base: &Path) -> CgroupRoot {
    CgroupRoot {
        imitate: Some(imitate_v1),
        ..CgroupRoot::v1_at(base)
    }
}

/// A v2 root as the kernel shows it.
fn v2_tree(base: &Path, controllers: &str, subtree: &str) {
    write(&base.join("cgroup.controllers"), controllers);
    write(&base.join("cgroup.subtree_control"), subtree);
    write(&base.join("cgroup.procs"), "1\n");
    write(&base.join("cgroup.max.depth"), "max\n");
}

fn v2_root(base: &Path, imitate: fn(&Path)) -> CgroupRoot {
    CgroupRoot {
        imitate: Some(imitate),
        ..CgroupRoot::v2_at(base)
    }
}

fn all_limits() -> Limits {
    Limits {
        memory: Some(64 * MIB),
        memory_swap: None,
        cpus: Some(1.5),
        cpu_shares: Some(512),
        cpuset_cpus: Some("0-1".into()),
        pids_limit: Some(100),
    }
}

// ---- plan ----

#[test]
fn plan_defaults_swap_to_twice_memory() {
    let plan = Plan::new(&Limits {
        memory: Some(64 * MIB),
        ..Limits::default()
    })
    .unwrap();
    assert_eq!(plan.memory, Some(64 * MIB));
    assert_eq!(plan.swap, Some(Swap::Total(128 * MIB)));
    assert_eq!(Plan::new(&Limits::default()).unwrap(), Plan::default());
}

#[test]
fn limits_survive_the_oci_resources_round_trip() {
    let cases = [
        all_limits(),
        Limits::default(),
        Limits {
            memory: Some(32 * MIB),
            memory_swap: Some(-1),
            cpus: Some(0.333),
            pids_limit: Some(-1),
            ..Limits::default()
        },
        Limits {
            memory: Some(64 * MIB),
            memory_swap: Some(96 * 1024 * 1024),
            cpu_shares: Some(1_000_000),
            ..Limits::default()
        },
    ];
    for limits in cases {
        let json = limits.to_oci().unwrap();
        let oci: oci_spec::runtime::LinuxResources = serde_json::from_value(json.clone()).unwrap();
        let back = Limits::from_oci(&oci);
        assert_eq!(
            Plan::new(&back).unwrap(),
            Plan::new(&limits).unwrap(),
            "{json}"
        );
    }
    let json = all_limits().to_oci().unwrap();
    assert_eq!(json["memory"]["limit"], 64 * MIB);
    assert_eq!(json["memory"]["swap"], 128 * MIB);
    assert_eq!(json["cpu"]["quota"], 150_000);
    assert_eq!(json["cpu"]["period"], 100_000);
    assert_eq!(json["cpu"]["cpus"], "0-1");
    assert_eq!(json["pids"]["limit"], 100);
    assert!(
        Limits {
            memory: Some(MIB),
            ..Limits::default()
        }
        .to_oci()
        .is_err()
    );
}

#[test]
fn plan_swap_variants() {
    let plan = |memory, swap| {
        Plan::new(&Limits {
            memory,
            memory_swap: swap,
            ..Limits::default()
        })
        .map(|p| p.swap)
    };
    assert_eq!(
        plan(Some(64 * MIB), Some(-1)).unwrap(),
        Some(Swap::Unlimited)
    );
    assert_eq!(
        plan(Some(64 * MIB), Some(64 * 1024 * 1024)).unwrap(),
        Some(Swap::Total(64 * MIB))
    );
    assert_eq!(
        plan(Some(64 * MIB), Some(0)).unwrap(),
        Some(Swap::Total(128 * MIB))
    );
    assert_eq!(plan(None, Some(-1)).unwrap(), None);
    assert_eq!(plan(Some(0), None).unwrap(), None);
    let err = plan(None, Some(100 * 1024 * 1024)).unwrap_err().to_string();
    assert_eq!(
        err,
        "invalid --memory-swap value 104857600: it needs a --memory limit too"
    );
    let err = plan(Some(64 * MIB), Some(32 * 1024 * 1024))
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("invalid --memory-swap value 33554432: it must not be below"),
        "{err}"
    );
    let err = plan(Some(64 * MIB), Some(-2)).unwrap_err().to_string();
    assert_eq!(err, "invalid --memory-swap value -2: use -1 for unlimited");
    let err = plan(Some(MIB), None).unwrap_err().to_string();
    assert_eq!(err, "invalid --memory value 1048576: the minimum is 6 MiB");
}

#[test]
fn plan_cpus_shares_cpuset_pids() {
    let plan = |limits: Limits| Plan::new(&limits);
    let cpus = |c| {
        plan(Limits {
            cpus: Some(c),
            ..Limits::default()
        })
    };
    assert_eq!(cpus(1.5).unwrap().cpu_quota, Some(150_000));
    assert_eq!(cpus(0.01).unwrap().cpu_quota, Some(1_000));
    assert_eq!(cpus(0.333).unwrap().cpu_quota, Some(33_300));
    for bad in [0.0, -1.0, 0.001, f64::NAN, f64::INFINITY] {
        let err = cpus(bad).unwrap_err().to_string();
        assert!(err.starts_with("invalid --cpus value"), "{err}");
    }
    let shares = |s| {
        plan(Limits {
            cpu_shares: Some(s),
            ..Limits::default()
        })
        .unwrap()
    };
    assert_eq!(shares(0).cpu_shares, None);
    assert_eq!(shares(1).cpu_shares, Some(2));
    assert_eq!(shares(1024).cpu_shares, Some(1024));
    assert_eq!(shares(1_000_000).cpu_shares, Some(262_144));
    let cpuset = |s: &str| {
        plan(Limits {
            cpuset_cpus: Some(s.into()),
            ..Limits::default()
        })
    };
    assert_eq!(
        cpuset(" 0-3,5\n").unwrap().cpuset_cpus.as_deref(),
        Some("0-3,5")
    );
    assert_eq!(cpuset("").unwrap().cpuset_cpus, None);
    let err = cpuset("0\n1").unwrap_err().to_string();
    assert_eq!(
        err,
        "invalid --cpuset-cpus value \"0\\n1\": expected a list like 0-3,5"
    );
    let pids = |p| {
        plan(Limits {
            pids_limit: Some(p),
            ..Limits::default()
        })
        .unwrap()
        .pids_max
    };
    assert_eq!(pids(16).as_deref(), Some("16"));
    assert_eq!(pids(0).as_deref(), Some("max"));
    assert_eq!(pids(-1).as_deref(), Some("max"));
}

#[test]
fn shares_to_weight_matches_runc() {
    assert_eq!(shares_to_weight(2), 1);
    assert_eq!(shares_to_weight(1024), 39);
    assert_eq!(shares_to_weight(512), 20);
    assert_eq!(shares_to_weight(262_144), 10_000);
    assert_eq!(shares_to_weight(0), 1);
    assert_eq!(shares_to_weight(u64::MAX), 10_000);
}

#[test]
fn names_are_checked() {
    for bad in ["", "..", ".x", "a/b", "a b", "a\nb", &"x".repeat(201)] {
        let err = check_name(bad).unwrap_err();
        assert!(matches!(err, CgroupError::InvalidName { .. }), "{bad:?}");
    }
    for good in ["a", "0123abcdef", "my_container.1-2"] {
        check_name(good).unwrap();
    }
    let tmp = tempfile::tempdir().unwrap();
    let err = Cgroup::create(&v2_root(tmp.path(), imitate_v2), "../x", &Limits::default());
    assert_eq!(
        err.unwrap_err().to_string(),
        "invalid cgroup name \"../x\": it must start with a letter or digit"
    );
}

// ---- v1 ----

#[test]
fn v1_writes_every_limit() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path();
    v1_tree(
        base,
        &["cpu", "cpuacct", "cpuset", "memory", "pids", "freezer"],
        true,
    );
    let root = v1_root(base);
    assert_eq!(root.version(), 1);
    let (cg, warnings) = Cgroup::create(&root, "c1", &all_limits()).unwrap();
    assert_eq!(warnings, Vec::<String>::new());
    let leaf = |c: &str| base.join(c).join("hoist/c1");
    assert_eq!(
        cg.paths(),
        vec![leaf("cpuset"), leaf("cpu"), leaf("memory"), leaf("pids")],
        "cpuacct and freezer are not used"
    );
    assert!(!base.join("cpuacct/hoist").exists());
    assert_eq!(read(&base.join("cpuset/hoist/cpuset.cpus")), "0-3");
    assert_eq!(read(&base.join("cpuset/hoist/cpuset.mems")), "0");
    assert_eq!(read(&leaf("cpuset").join("cpuset.cpus")), "0-1");
    assert_eq!(read(&leaf("cpuset").join("cpuset.mems")), "0");
    assert_eq!(read(&leaf("cpu").join("cpu.cfs_period_us")), "100000");
    assert_eq!(read(&leaf("cpu").join("cpu.cfs_quota_us")), "150000");
    assert_eq!(read(&leaf("cpu").join("cpu.shares")), "512");
    assert_eq!(
        read(&leaf("memory").join("memory.limit_in_bytes")),
        "67108864"
    );
    assert_eq!(
        read(&leaf("memory").join("memory.memsw.limit_in_bytes")),
        "134217728"
    );
    assert_eq!(read(&leaf("pids").join("pids.max")), "100");

    cg.add(4242).unwrap();
    for path in cg.paths() {
        assert_eq!(read(&path.join("cgroup.procs")), "4242");
    }
    assert!(matches!(cg.add(0), Err(CgroupError::InvalidPid { pid: 0 })));
    assert!(!cg.oom_killed());
    cg.remove().unwrap();
    for c in ["cpuset", "cpu", "memory", "pids"] {
        assert!(!leaf(c).exists(), "{c}");
        assert!(
            base.join(c).join("hoist").is_dir(),
            "the shared hoist/ stays"
        );
    }
}

#[test]
fn v1_without_limits_uses_memory_and_pids() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path();
    v1_tree(base, &["cpu", "cpuset", "memory", "pids"], true);
    let (cg, warnings) = Cgroup::create(&v1_root(base), "plain", &Limits::default()).unwrap();
    assert!(warnings.is_empty());
    assert_eq!(
        cg.paths(),
        vec![
            base.join("memory/hoist/plain"),
            base.join("pids/hoist/plain")
        ]
    );
    assert_eq!(
        read(&base.join("memory/hoist/plain/memory.limit_in_bytes")),
        "9223372036854771712\n"
    );
    assert_eq!(read(&base.join("pids/hoist/plain/pids.max")), "max\n");
    cg.remove().unwrap();
}

#[test]
fn v1_missing_controllers_and_swap_accounting_warn() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path();
    v1_tree(base, &["cpu", "memory"], false);
    let (cg, warnings) = Cgroup::create(&v1_root(base), "c1", &all_limits()).unwrap();
    assert_eq!(
        warnings,
        [
            "cgroup controller `cpuset` is not available: --cpuset-cpus ignored",
            "cgroup controller `pids` is not available: --pids-limit ignored",
            "swap accounting is not available (memory.memsw.limit_in_bytes is missing): \
             --memory-swap ignored",
        ]
    );
    assert_eq!(
        cg.paths(),
        vec![base.join("cpu/hoist/c1"), base.join("memory/hoist/c1")]
    );
    assert_eq!(
        read(&base.join("memory/hoist/c1/memory.limit_in_bytes")),
        "67108864"
    );
    // Unlimited swap needs no accounting: no warning.
    let limits = Limits {
        memory: Some(64 * MIB),
        memory_swap: Some(-1),
        ..Limits::default()
    };
    let (cg2, warnings) = Cgroup::create(&v1_root(base), "c2", &limits).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    cg.remove().unwrap();
    cg2.remove().unwrap();
}

#[test]
fn v1_memsw_unlimited_and_explicit() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path();
    v1_tree(base, &["memory", "pids"], true);
    let memsw = |name: &str| {
        read(
            &base
                .join("memory/hoist")
                .join(name)
                .join("memory.memsw.limit_in_bytes"),
        )
    };
    let limits = Limits {
        memory: Some(64 * MIB),
        memory_swap: Some(-1),
        ..Limits::default()
    };
    Cgroup::create(&v1_root(base), "a", &limits).unwrap();
    assert_eq!(memsw("a"), "-1");
    let limits = Limits {
        memory: Some(64 * MIB),
        memory_swap: Some(96 * 1024 * 1024),
        ..Limits::default()
    };
    Cgroup::create(&v1_root(base), "b", &limits).unwrap();
    assert_eq!(memsw("b"), "100663296");
}

#[test]
fn v1_comounted_cpu_cpuacct_is_one_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path();
    v1_tree(base, &["cpu,cpuacct", "memory"], true);
    std::os::unix::fs::symlink("cpu,cpuacct", base.join("cpu")).unwrap();
    std::os::unix::fs::symlink("cpu,cpuacct", base.join("cpuacct")).unwrap();
    let limits = Limits {
        cpus: Some(0.5),
        ..Limits::default()
    };
    let (cg, warnings) = Cgroup::create(&v1_root(base), "c", &limits).unwrap();
    assert_eq!(
        warnings,
        ["cgroup controller `pids` is not available: --pids-limit ignored"; 0]
    );
    assert_eq!(
        cg.paths(),
        vec![
            base.join("cpu,cpuacct/hoist/c"),
            base.join("memory/hoist/c")
        ]
    );
    assert_eq!(
        read(&base.join("cpu,cpuacct/hoist/c/cpu.cfs_quota_us")),
        "50000"
    );
    cg.remove().unwrap();
}

#[test]
fn v1_nests_under_own_cgroup_and_keeps_existing_hoist_cpuset() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path();
    v1_tree(base, &["cpuset", "memory"], true);
    let own = base.join("memory/ci/job1");
    fs::create_dir_all(&own).unwrap();
    imitate_v1(&base.join("memory/ci"));
    imitate_v1(&own);
    // hoist/ exists already with an administrator's cpuset: it is kept.
    write(&base.join("cpuset/hoist/cpuset.cpus"), "2-3\n");
    write(&base.join("cpuset/hoist/cpuset.mems"), "0\n");
    let root = CgroupRoot {
        layout: Layout::V1(vec![
            Hierarchy {
                controllers: vec!["cpuset".into()],
                base: base.join("cpuset"),
            },
            Hierarchy {
                controllers: vec!["memory".into()],
                base: own.clone(),
            },
        ]),
        imitate: Some(imitate_v1),
    };
    let limits = Limits {
        memory: Some(32 * MIB),
        cpuset_cpus: Some("3".into()),
        ..Limits::default()
    };
    let (cg, warnings) = Cgroup::create(&root, "n", &limits).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(
        cg.paths(),
        vec![base.join("cpuset/hoist/n"), own.join("hoist/n")]
    );
    assert_eq!(read(&base.join("cpuset/hoist/cpuset.cpus")), "2-3\n");
    assert_eq!(read(&base.join("cpuset/hoist/n/cpuset.cpus")), "3");
    assert_eq!(read(&base.join("cpuset/hoist/n/cpuset.mems")), "0");
    assert_eq!(read(&own.join("hoist/n/memory.limit_in_bytes")), "33554432");
    cg.remove().unwrap();
    assert!(own.join("hoist").is_dir());
    assert!(!own.join("hoist/n").exists());
}

#[test]
fn v1_cpuset_without_limit_inherits_parent() {
    // A co-mounted cpuset must still get CPUs, or no task could join.
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path();
    v1_tree(base, &["cpuset", "memory"], true);
    let hierarchies = vec![Hierarchy {
        controllers: vec!["cpuset".into(), "memory".into()],
        base: base.join("cpuset"),
    }];
    write(
        &base.join("cpuset/memory.limit_in_bytes"),
        "9223372036854771712\n",
    );
    let root = CgroupRoot {
        layout: Layout::V1(hierarchies),
        imitate: Some(imitate_v1),
    };
    let (cg, _) = Cgroup::create(&root, "x", &Limits::default()).unwrap();
    assert_eq!(read(&base.join("cpuset/hoist/x/cpuset.cpus")), "0-3");
    assert_eq!(read(&base.join("cpuset/hoist/x/cpuset.mems")), "0");
    cg.remove().unwrap();
}

#[test]
fn v1_oom_killed() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path();
    v1_tree(base, &["memory"], true);
    let (cg, _) = Cgroup::create(&v1_root(base), "o", &Limits::default()).unwrap();
    let dir = base.join("memory/hoist/o");
    assert!(!cg.oom_killed());
    write(
        &dir.join("memory.oom_control"),
        "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n",
    );
    assert!(cg.oom_killed());
    // Before Linux 4.13 there is no oom_kill line: memory.failcnt decides.
    write(
        &dir.join("memory.oom_control"),
        "oom_kill_disable 0\nunder_oom 0\n",
    );
    assert!(!cg.oom_killed());
    write(&dir.join("memory.failcnt"), "5\n");
    assert!(cg.oom_killed());
    cg.remove().unwrap();
}

#[test]
fn existing_cgroup_is_an_error_and_left_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path();
    v1_tree(base, &["memory", "pids"], true);
    let (cg, _) = Cgroup::create(&v1_root(base), "dup", &Limits::default()).unwrap();
    let err = Cgroup::create(&v1_root(base), "dup", &Limits::default()).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "cgroup {} already exists (another container with the same name, or a leftover)",
            base.join("memory/hoist/dup").display()
        )
    );
    assert!(base.join("memory/hoist/dup").is_dir());
    assert!(base.join("pids/hoist/dup").is_dir());
    cg.remove().unwrap();
}

#[test]
fn v1_mountinfo_parsing() {
    let mountinfo = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime shared:9 - cgroup cgroup rw,cpu,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset,clone_children
35 31 0:32 /docker/abc /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:32 / /mnt/other\\040memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate
";
    let own = "\
12:pids:/user.slice/session-1.scope
4:memory:/docker/abc/inner
3:cpuset:/
2:cpu,cpuacct:/elsewhere
1:name=systemd:/user.slice
0::/user.slice
";
    let found = v1::hierarchies(mountinfo, own, Path::new("/sys/fs/cgroup"));
    let got: Vec<(Vec<String>, PathBuf, PathBuf)> = found
        .into_iter()
        .map(|f| (f.hierarchy.controllers, f.hierarchy.base, f.mount))
        .collect();
    let h = |c: &[&str], base: &str, mount: &str| {
        (
            c.iter().map(|s| s.to_string()).collect(),
            PathBuf::from(base),
            PathBuf::from(mount),
        )
    };
    assert_eq!(
        got,
        vec![
            h(
                &["cpu", "cpuacct"],
                "/sys/fs/cgroup/cpu,cpuacct/elsewhere",
                "/sys/fs/cgroup/cpu,cpuacct"
            ),
            h(
                &["cpuset"],
                "/sys/fs/cgroup/cpuset",
                "/sys/fs/cgroup/cpuset"
            ),
            // Mounted at /docker/abc: our /docker/abc/inner is `inner` in it.
            h(
                &["memory"],
                "/sys/fs/cgroup/memory/inner",
                "/sys/fs/cgroup/memory"
            ),
            h(
                &["pids"],
                "/sys/fs/cgroup/pids/user.slice/session-1.scope",
                "/sys/fs/cgroup/pids"
            ),
        ]
    );
    // Our cgroup outside the mount's root, or with `..`: the mount point.
    let found = v1::hierarchies(
        "35 31 0:32 /docker/abc /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n",
        "4:memory:/docker/abcdef\n",
        Path::new("/sys/fs/cgroup"),
    );
    assert_eq!(
        found[0].hierarchy.base,
        PathBuf::from("/sys/fs/cgroup/memory")
    );
    let found = v1::hierarchies(
        "35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n",
        "4:memory:/a/../../b\n",
        Path::new("/sys/fs/cgroup"),
    );
    assert_eq!(
        found[0].hierarchy.base,
        PathBuf::from("/sys/fs/cgroup/memory")
    );
    // An escaped mount point.
    let found = v1::hierarchies(
        "36 31 0:32 / /mnt/my\\040cg rw - cgroup cgroup rw,memory\n",
        "4:memory:/\n",
        Path::new("/sys/fs/cgroup"),
    );
    assert_eq!(found[0].mount, PathBuf::from("/mnt/my cg"));
}

#[test]
fn v1_at_reads_directory_names() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path();
    v1_tree(base, &["cpu,cpuacct", "memory"], true);
    std::os::unix::fs::symlink("cpu,cpuacct", base.join("cpu")).unwrap();
    write(&base.join("a-file"), "");
    let Layout::V1(hierarchies) = CgroupRoot::v1_at(base).layout else {
        panic!("not v1")
    };
    assert_eq!(
        hierarchies,
        vec![
            Hierarchy {
                controllers: vec!["cpu".into(), "cpuacct".into()],
                base: base.join("cpu,cpuacct")
            },
            Hierarchy {
                controllers: vec!["memory".into()],
                base: base.join("memory")
            },
        ]
    );
}

// ---- v2 ----

const ALL_V2: &str = "cpuset cpu io memory hugetlb pids rdma misc\n";

#[test]
fn v2_writes_every_limit() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path();
    v2_tree(base, ALL_V2, "");
    let root = v2_root(base, imitate_v2);
    assert_eq!(root.version(), 2);
    let (cg, warnings) = Cgroup::create(&root, "c1", &all_limits()).unwrap();
    assert_eq!(warnings, Vec::<String>::new());
    let leaf = base.join("hoist/c1");
    assert_eq!(cg.paths(), vec![leaf.clone()]);
    assert_eq!(
        read(&base.join("cgroup.subtree_control")),
        "+cpuset +cpu +memory +pids"
    );
    assert_eq!(
        read(&base.join("hoist/cgroup.subtree_control")),
        "+cpuset +cpu +memory +pids"
    );
    assert_eq!(read(&leaf.join("cpuset.cpus")), "0-1");
    assert_eq!(
        read(&leaf.join("cpuset.mems")),
        "",
        "v2 inherits the parent's memory nodes"
    );
    assert_eq!(read(&leaf.join("cpu.max")), "150000 100000");
    assert_eq!(read(&leaf.join("cpu.weight")), "20");
    assert_eq!(read(&leaf.join("memory.max")), "67108864");
    assert_eq!(
        read(&leaf.join("memory.swap.max")),
        "67108864",
        "swap = 2x memory - memory"
    );
    assert_eq!(read(&leaf.join("pids.max")), "100");
    cg.add(77).unwrap();
    assert_eq!(read(&leaf.join("cgroup.procs")), "77");
    assert!(!cg.oom_killed());
    cg.remove().unwrap();
    assert!(!leaf.exists());
    assert!(base.join("hoist").is_dir());
}

#[test]
fn v2_enables_only_missing_controllers() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path();
    v2_tree(base, ALL_V2, "cpu io memory pids\n");
    let limits = Limits {
        cpuset_cpus: Some("1".into()),
        ..Limits::default()
    };
    let (cg, warnings) = Cgroup::create(&v2_root(base, imitate_v2), "c", &limits).unwrap();
    assert!(warnings.is_empty());
    assert_eq!(read(&base.join("cgroup.subtree_control")), "+cpuset");
    assert_eq!(
        read(&base.join("hoist/cgroup.subtree_control")),
        "+cpuset +memory"
    );
    assert_eq!(read(&base.join("hoist/c/cpuset.cpus")), "1");
    cg.remove().unwrap();
}

#[test]
fn v2_missing_controllers_warn() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path();
    v2_tree(base, "memory pids\n", "");
    let (cg, warnings) = Cgroup::create(&v2_root(base, imitate_v2), "c1", &all_limits()).unwrap();
    assert_eq!(
        warnings,
        [
            "cgroup controller `cpuset` is not available: --cpuset-cpus ignored",
            "cgroup controller `cpu` is not available: --cpus, --cpu-shares ignored",
        ]
    );
    assert_eq!(read(&base.join("cgroup.subtree_control")), "+memory +pids");
    let leaf = base.join("hoist/c1");
    assert!(!leaf.join("cpu.max").exists());
    assert_eq!(read(&leaf.join("memory.max")), "67108864");
    assert_eq!(read(&leaf.join("pids.max")), "100");
    cg.remove().unwrap();
}

#[test]
fn v2_no_controllers_at_all() {
    // Like the empty /sys/fs/cgroup/unified of a hybrid host.
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path();
    v2_tree(base, "", "");
    let limits = Limits {
        memory: Some(32 * MIB),
        pids_limit: Some(16),
        ..Limits::default()
    };
    let (cg, warnings) = Cgroup::create(&v2_root(base, imitate_v2), "c", &limits).unwrap();
    assert_eq!(
        warnings,
        [
            "cgroup controller `memory` is not available: --memory, --memory-swap ignored",
            "cgroup controller `pids` is not available: --pids-limit ignored",
        ]
    );
    assert_eq!(
        read(&base.join("cgroup.subtree_control")),
        "",
        "nothing to enable"
    );
    assert!(base.join("hoist/c").is_dir());
    assert!(!cg.oom_killed());
    cg.remove().unwrap();
}

#[test]
fn v2_swap_values() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path();
    v2_tree(base, ALL_V2, "");
    let root = v2_root(base, imitate_v2);
    let swap_max = |name: &str, swap| {
        let limits = Limits {
            memory: Some(64 * MIB),
            memory_swap: swap,
            ..Limits::default()
        };
        let (_, warnings) = Cgroup::create(&root, name, &limits).unwrap();
        assert!(warnings.is_empty());
        read(&base.join("hoist").join(name).join("memory.swap.max"))
    };
    assert_eq!(swap_max("unlimited", Some(-1)), "max");
    assert_eq!(swap_max("none", Some(64 * 1024 * 1024)), "0");
    assert_eq!(swap_max("some", Some(100 * 1024 * 1024)), "37748736");
    let limits = Limits {
        pids_limit: Some(-1),
        ..Limits::default()
    };
    Cgroup::create(&root, "pids", &limits).unwrap();
    assert_eq!(read(&base.join("hoist/pids/pids.max")), "max");
}

#[test]
fn v2_without_swap_accounting_warns() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path();
    v2_tree(base, ALL_V2, "");
    let limits = Limits {
        memory: Some(64 * MIB),
        ..Limits::default()
    };
    let (cg, warnings) = Cgroup::create(&v2_root(base, imitate_v2_noswap), "c", &limits).unwrap();
    assert_eq!(
        warnings,
        ["swap accounting is not available (memory.swap.max is missing): --memory-swap ignored"]
    );
    assert_eq!(read(&base.join("hoist/c/memory.max")), "67108864");
    cg.remove().unwrap();
    let limits = Limits {
        memory: Some(64 * MIB),
        memory_swap: Some(-1),
        ..Limits::default()
    };
    let (_, warnings) = Cgroup::create(&v2_root(base, imitate_v2_noswap), "d", &limits).unwrap();
    assert!(warnings.is_empty());
}

#[test]
fn v2_oom_killed() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path();
    v2_tree(base, ALL_V2, "");
    let (cg, _) = Cgroup::create(&v2_root(base, imitate_v2), "o", &Limits::default()).unwrap();
    assert_eq!(
        read(&base.join("cgroup.subtree_control")),
        "+memory",
        "for OOM reports"
    );
    assert!(!cg.oom_killed());
    write(
        &base.join("hoist/o/memory.events"),
        "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\noom_group_kill 0\n",
    );
    assert!(cg.oom_killed());
    cg.remove().unwrap();
}

#[test]
fn v2_failed_write_removes_the_new_cgroup() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path();
    v2_tree(base, ALL_V2, "");
    let limits = Limits {
        pids_limit: Some(5),
        ..Limits::default()
    };
    let err = Cgroup::create(&v2_root(base, imitate_v2_broken_pids), "b", &limits).unwrap_err();
    let msg = err.to_string();
    let file = base.join("hoist/b/pids.max");
    assert!(
        msg.starts_with(&format!("cannot write \"5\" to {}: ", file.display())),
        "{msg}"
    );
    assert!(!base.join("hoist/b").exists());
    assert!(base.join("hoist").is_dir());
}

#[test]
fn remove_tolerates_missing_dirs_and_never_recurses_into_other_dirs() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path();
    v2_tree(base, ALL_V2, "");
    let (cg, _) = Cgroup::create(&v2_root(base, imitate_v2), "r", &Limits::default()).unwrap();
    // A directory inside is not ours to delete on a plain tree: removal fails, nothing lost.
    fs::create_dir(base.join("hoist/r/keep")).unwrap();
    let err = cg.remove().unwrap_err();
    assert!(err.to_string().starts_with("cannot remove cgroup"), "{err}");
    assert!(base.join("hoist/r/keep").is_dir());
    let (cg, _) = Cgroup::create(&v2_root(base, imitate_v2), "gone", &Limits::default()).unwrap();
    fs::remove_dir_all(base.join("hoist/gone")).unwrap();
    cg.remove().unwrap();
}

// ---- real cgroups ----

static COUNTER: AtomicU32 = AtomicU32::new(0);

fn unique_name(what: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("test-{what}-{}-{n}", std::process::id())
}

/// Whether the real-cgroup tests can run: as root with /sys/fs/cgroup. Under `CI=true` they
/// must.
fn real_cgroups(test: &str) -> bool {
    let root = rustix::process::geteuid().is_root();
    let mounted = Path::new("/sys/fs/cgroup").is_dir();
    if root && mounted {
        return true;
    }
    let why = if root {
        "/sys/fs/cgroup is missing"
    } else {
        "not running as root"
    };
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{test}: {why}, but CI=true requires the real cgroup tests");
    }
    eprintln!("skipping {test}: {why}");
    false
}

/// The `/proc/<pid>/cgroup` line for `controller` (v1) or the unified line (`""`).
fn proc_cgroup(pid: u32, controller: &str) -> Option<String> {
    let content = read(Path::new(&format!("/proc/{pid}/cgroup")));
    content.lines().find_map(|line| {
        let mut parts = line.splitn(3, ':');
        let (_, names, path) = (parts.next()?, parts.next()?, parts.next()?);
        let matches = if controller.is_empty() {
            names.is_empty()
        } else {
            names.split(',').any(|n| n == controller)
        };
        matches.then(|| path.to_owned())
    })
}

/// The mount point of the v1 hierarchy holding `dir`.
fn v1_mount_of(dir: &Path) -> PathBuf {
    dir.ancestors()
        .find(|a| a.parent() == Some(Path::new("/sys/fs/cgroup")))
        .unwrap()
        .to_path_buf()
}

#[test]
fn real_cgroup_limits_membership_and_removal() {
    if !real_cgroups("real_cgroup_limits_membership_and_removal") {
        return;
    }
    let root = CgroupRoot::detect().unwrap();
    let name = unique_name("limits");
    let limits = Limits {
        memory: Some(32 * MIB),
        pids_limit: Some(16),
        ..Limits::default()
    };
    let (cg, warnings) = Cgroup::create(&root, &name, &limits).unwrap();
    eprintln!(
        "cgroup v{}: {:?}, warnings {warnings:?}",
        root.version(),
        cg.paths()
    );
    let paths = cg.paths();
    let find = |file: &str| paths.iter().map(|p| p.join(file)).find(|p| p.exists());
    if root.version() == 1 {
        let memory = find("memory.limit_in_bytes").expect("memory cgroup");
        assert_eq!(read(&memory).trim(), "33554432");
        if let Some(memsw) = find("memory.memsw.limit_in_bytes") {
            assert_eq!(read(&memsw).trim(), "67108864");
        }
    } else {
        assert_eq!(
            read(&find("memory.max").expect("memory.max")).trim(),
            "33554432"
        );
    }
    assert_eq!(read(&find("pids.max").expect("pids cgroup")).trim(), "16");

    let mut child = Command::new("sleep").arg("5").spawn().unwrap();
    let pid = i32::try_from(child.id()).unwrap();
    cg.add(pid).unwrap();
    for path in &paths {
        assert!(path.ends_with(format!("hoist/{name}")));
        let in_cgroup = if root.version() == 1 {
            let mount = v1_mount_of(path);
            let controller = mount.file_name().unwrap().to_string_lossy().into_owned();
            let controller = controller.split(',').next().unwrap().to_owned();
            let own = proc_cgroup(child.id(), &controller).unwrap();
            mount.join(own.trim_start_matches('/'))
        } else {
            let own = proc_cgroup(child.id(), "").unwrap();
            Path::new("/sys/fs/cgroup").join(own.trim_start_matches('/'))
        };
        assert_eq!(&in_cgroup, path);
        assert_eq!(read(&path.join("cgroup.procs")).trim(), pid.to_string());
    }
    assert!(!cg.oom_killed());
    child.kill().unwrap();
    child.wait().unwrap();
    cg.remove().unwrap();
    for path in &paths {
        assert!(!path.exists(), "{} is left", path.display());
        assert!(path.parent().unwrap().is_dir(), "hoist/ stays");
    }
}

#[test]
fn real_oom_kill_is_reported() {
    if !real_cgroups("real_oom_kill_is_reported") {
        return;
    }
    let root = CgroupRoot::detect().unwrap();
    let name = unique_name("oom");
    let limits = Limits {
        memory: Some(16 * MIB),
        memory_swap: Some(16 * 1024 * 1024),
        ..Limits::default()
    };
    let (cg, warnings) = Cgroup::create(&root, &name, &limits).unwrap();
    eprintln!("warnings {warnings:?}");
    // The shell waits for a line, so it is in the cgroup before it allocates; `tail` buffers
    // all of its newline-free input.
    let mut child = Command::new("sh")
        .args([
            "-c",
            "read x; head -c 200000000 /dev/zero | tail -n 1 >/dev/null",
        ])
        .stdin(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    cg.add(i32::try_from(child.id()).unwrap()).unwrap();
    child.stdin.take().unwrap().write_all(b"go\n").unwrap();
    let status = child.wait().unwrap();
    let oom_killed = cg.oom_killed();
    eprintln!("status {status:?}, oom_killed {oom_killed}");
    cg.remove().unwrap();
    assert!(oom_killed);
    assert_eq!(
        status.code(),
        Some(137),
        "sh reports its killed pipeline as 128+9"
    );
}

#[test]
fn real_remove_kills_remaining_processes() {
    if !real_cgroups("real_remove_kills_remaining_processes") {
        return;
    }
    let root = CgroupRoot::detect().unwrap();
    let name = unique_name("kill");
    let (cg, _) = Cgroup::create(&root, &name, &Limits::default()).unwrap();
    let paths = cg.paths();
    let mut child = Command::new("sleep").arg("30").spawn().unwrap();
    cg.add(i32::try_from(child.id()).unwrap()).unwrap();
    // Reap it in the background so the kernel can drop it.
    let waiter = std::thread::spawn(move || child.wait().unwrap());
    cg.remove().unwrap();
    let status = waiter.join().unwrap();
    use std::os::unix::process::ExitStatusExt as _;
    assert_eq!(status.signal(), Some(9));
    for path in &paths {
        assert!(!path.exists());
    }
}

/// The v2 code path on a real cgroup2 mount: this host's hybrid `/sys/fs/cgroup/unified` (no
/// controllers), or the real root on a pure v2 host.
#[test]
fn real_v2_membership_and_cgroup_kill() {
    if !real_cgroups("real_v2_membership_and_cgroup_kill") {
        return;
    }
    let candidates = [
        Path::new("/sys/fs/cgroup"),
        Path::new("/sys/fs/cgroup/unified"),
    ];
    let Some(mount) = candidates
        .into_iter()
        .find(|p| fs_magic(p).is_ok_and(|m| m == CGROUP2_SUPER_MAGIC))
    else {
        eprintln!("skipping real_v2_membership_and_cgroup_kill: no cgroup2 mount");
        return;
    };
    let root = CgroupRoot::v2_at(mount);
    let name = unique_name("v2");
    let limits = Limits {
        pids_limit: Some(8),
        ..Limits::default()
    };
    let (cg, warnings) = Cgroup::create(&root, &name, &limits).unwrap();
    eprintln!("{}: warnings {warnings:?}", mount.display());
    let dir = mount.join("hoist").join(&name);
    assert_eq!(cg.paths(), vec![dir.clone()]);
    if dir.join("pids.max").exists() {
        assert_eq!(read(&dir.join("pids.max")).trim(), "8");
    } else {
        assert_eq!(
            warnings,
            ["cgroup controller `pids` is not available: --pids-limit ignored"]
        );
    }
    let mut child = Command::new("sleep").arg("30").spawn().unwrap();
    cg.add(i32::try_from(child.id()).unwrap()).unwrap();
    assert_eq!(
        proc_cgroup(child.id(), "").unwrap(),
        format!("/hoist/{name}")
    );
    let waiter = std::thread::spawn(move || child.wait().unwrap());
    cg.remove().unwrap();
    use std::os::unix::process::ExitStatusExt as _;
    assert_eq!(waiter.join().unwrap().signal(), Some(9));
    assert!(!dir.exists());
}

#[test]
fn detect_matches_this_host() {
    if !Path::new("/sys/fs/cgroup").is_dir() {
        eprintln!("skipping detect_matches_this_host: no /sys/fs/cgroup");
        return;
    }
    let root = CgroupRoot::detect().unwrap();
    let v2 = Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    assert_eq!(root.version(), if v2 { 2 } else { 1 });
    if let Layout::V1(hierarchies) = &root.layout {
        for h in hierarchies {
            assert!(h.base.is_dir(), "{}", h.base.display());
        }
        eprintln!("{hierarchies:?}");
    }
}

#[test]
fn real_cpu_limits() {
    if !real_cgroups("real_cpu_limits") {
        return;
    }
    let root = CgroupRoot::detect().unwrap();
    let name = unique_name("cpu");
    let limits = Limits {
        cpus: Some(0.5),
        cpu_shares: Some(512),
        cpuset_cpus: Some("0".into()),
        ..Limits::default()
    };
    let (cg, warnings) = Cgroup::create(&root, &name, &limits).unwrap();
    eprintln!(
        "cgroup v{}: {:?}, warnings {warnings:?}",
        root.version(),
        cg.paths()
    );
    let paths = cg.paths();
    let value = |file: &str| {
        let path = paths.iter().map(|p| p.join(file)).find(|p| p.exists());
        path.map(|p| read(&p).trim().to_owned())
    };
    let expected: &[(&str, &str)] = if root.version() == 1 {
        &[
            ("cpu.cfs_quota_us", "50000"),
            ("cpu.cfs_period_us", "100000"),
            ("cpu.shares", "512"),
            ("cpuset.cpus", "0"),
        ]
    } else {
        &[
            ("cpu.max", "50000 100000"),
            ("cpu.weight", "20"),
            ("cpuset.cpus", "0"),
        ]
    };
    let got: Vec<Option<String>> = expected.iter().map(|(file, _)| value(file)).collect();
    // A process can join: the v1 cpuset got its memory nodes.
    let mut child = Command::new("sleep").arg("30").spawn().unwrap();
    let added = cg.add(i32::try_from(child.id()).unwrap());
    let waiter = std::thread::spawn(move || child.wait().unwrap());
    cg.remove().unwrap();
    waiter.join().unwrap();
    added.unwrap();
    for ((file, want), got) in expected.iter().zip(got) {
        match got {
            Some(got) => assert_eq!(got, *want, "{file}"),
            None => assert!(!warnings.is_empty(), "{file} is missing without a warning"),
        }
    }
}

/// A real cgroup2 filesystem: the host's when /sys/fs/cgroup is one, else a view of the
/// unified hierarchy mounted for the test (a v1 or hybrid host has one, maybe without
/// controllers). Unmounted on drop.
struct RealV2 {
    base: PathBuf,
    mounted: Option<tempfile::TempDir>,
}

impl RealV2 {
    fn new() -> RealV2 {
        if fs_magic(Path::new("/sys/fs/cgroup")).ok() == Some(CGROUP2_SUPER_MAGIC) {
            return RealV2 {
                base: PathBuf::from("/sys/fs/cgroup"),
                mounted: None,
            };
        }
        let dir = tempfile::tempdir().unwrap();
        rustix::mount::mount(
            "none",
            dir.path(),
            "cgroup2",
            rustix::mount::MountFlags::empty(),
            None,
        )
        .expect("mount cgroup2");
        RealV2 {
            base: dir.path().to_path_buf(),
            mounted: Some(dir),
        }
    }
}

impl Drop for RealV2 {
    fn drop(&mut self) {
        if let Some(dir) = &self.mounted {
            let _ = rustix::mount::unmount(dir.path(), rustix::mount::UnmountFlags::DETACH);
        }
    }
}

#[test]
fn real_cgroup_v2_limits_or_warnings_membership_and_removal() {
    if !real_cgroups("real_cgroup_v2_limits_or_warnings_membership_and_removal") {
        return;
    }
    let v2 = RealV2::new();
    let root = CgroupRoot::v2_at(&v2.base);
    let available = read(&v2.base.join("cgroup.controllers"));
    let available: Vec<&str> = available.split_whitespace().collect();
    let name = unique_name("v2");
    let limits = Limits {
        memory: Some(32 * MIB),
        pids_limit: Some(16),
        cpus: Some(0.5),
        ..Limits::default()
    };
    let (cg, warnings) = Cgroup::create(&root, &name, &limits).unwrap();
    let leaf = v2.base.join("hoist").join(&name);
    assert_eq!(cg.paths(), std::slice::from_ref(&leaf));
    // Each limit is written when its controller is there, and warned about when it is not.
    for (controller, file, value, option) in [
        ("memory", "memory.max", "33554432", "--memory"),
        ("pids", "pids.max", "16", "--pids-limit"),
        ("cpu", "cpu.max", "50000 100000", "--cpus"),
    ] {
        if available.contains(&controller) {
            assert_eq!(read(&leaf.join(file)).trim(), value, "{file}");
        } else {
            assert!(
                warnings
                    .iter()
                    .any(|w| w.contains(&format!("`{controller}`")) && w.contains(option)),
                "no warning for the missing {controller} controller: {warnings:?}"
            );
        }
    }
    let mut child = Command::new("sleep").arg("5").spawn().unwrap();
    let pid = i32::try_from(child.id()).unwrap();
    cg.add(pid).unwrap();
    assert_eq!(read(&leaf.join("cgroup.procs")).trim(), pid.to_string());
    assert_eq!(
        proc_cgroup(child.id(), "").unwrap(),
        format!("/hoist/{name}"),
        "the kernel puts the process in hoist/{name}"
    );
    assert!(!cg.oom_killed());
    child.kill().unwrap();
    child.wait().unwrap();
    cg.remove().unwrap();
    assert!(!leaf.exists(), "{} is left", leaf.display());
    assert!(v2.base.join("hoist").is_dir(), "hoist/ stays");
}
