//! cgroup v2: one unified hierarchy; controllers are enabled per level in
//! `cgroup.subtree_control`.

use std::path::{Path, PathBuf};

use super::{
    CONTROLLERS, CPU_PERIOD, CgroupError, HOIST_DIR, Plan, Swap, cleanup, keyed_value, make_dir,
    make_leaf, missing_controller, missing_feature, read_optional, write_file,
};

/// Creates `base/hoist/<name>` with the controllers the limits need (plus memory, when
/// available, for OOM reporting) and writes the limits.
pub(super) fn create(
    base: &Path,
    name: &str,
    plan: &Plan,
    imitate: Option<fn(&Path)>,
) -> Result<(PathBuf, Vec<String>), CgroupError> {
    let mut warnings = Vec::new();
    let available = read_optional(&base.join("cgroup.controllers"))?.unwrap_or_default();
    let available: Vec<&str> = available.split_whitespace().collect();
    let mut required = Vec::new();
    for controller in CONTROLLERS {
        let options = plan.options(controller);
        if options.is_empty() {
            continue;
        }
        if available.contains(&controller) {
            required.push(controller);
        } else {
            warnings.push(missing_controller(controller, &options));
        }
    }
    let wanted: Vec<&str> = CONTROLLERS
        .into_iter()
        .filter(|c| required.contains(c) || (*c == "memory" && available.contains(c)))
        .collect();
    // Without limits, failing to enable memory only costs the OOM report.
    let optional = required.is_empty();
    let wanted = enable(base, &wanted, optional)?;
    let hoist = base.join(HOIST_DIR);
    make_dir(&hoist, imitate)?;
    enable(&hoist, &wanted, optional)?;
    let leaf = hoist.join(name);
    make_leaf(&leaf, imitate)?;
    if let Err(e) = write_limits(&leaf, plan, &required, &mut warnings) {
        cleanup(std::slice::from_ref(&leaf), imitate.is_some());
        return Err(e);
    }
    Ok((leaf, warnings))
}

/// Enables `wanted` in `dir/cgroup.subtree_control` (those not enabled yet, in one write).
/// Returns the controllers now enabled: `wanted`, or nothing if that failed and `optional`.
fn enable<'a>(dir: &Path, wanted: &[&'a str], optional: bool) -> Result<Vec<&'a str>, CgroupError> {
    if wanted.is_empty() {
        return Ok(Vec::new());
    }
    let file = dir.join("cgroup.subtree_control");
    let current = read_optional(&file)?.unwrap_or_default();
    let enabled: Vec<&str> = current
        .split_whitespace()
        .map(|c| c.trim_start_matches('+'))
        .collect();
    let value: Vec<String> = wanted
        .iter()
        .filter(|c| !enabled.contains(c))
        .map(|c| format!("+{c}"))
        .collect();
    if value.is_empty() {
        return Ok(wanted.to_vec());
    }
    match write_file(&file, &value.join(" ")) {
        Ok(()) => Ok(wanted.to_vec()),
        Err(_) if optional => Ok(Vec::new()),
        Err(CgroupError::Write {
            path,
            value,
            source,
        }) if source.raw_os_error() == Some(libc::EBUSY) => {
            Err(CgroupError::Populated { path, value })
        }
        Err(e) => Err(e),
    }
}

fn write_limits(
    leaf: &Path,
    plan: &Plan,
    enabled: &[&str],
    warnings: &mut Vec<String>,
) -> Result<(), CgroupError> {
    let mut write_or_warn = |file: &str, value: &str, feature: &str, option: &str| {
        let path = leaf.join(file);
        if path.exists() {
            write_file(&path, value)
        } else {
            warnings.push(missing_feature(feature, file, option));
            Ok(())
        }
    };
    if enabled.contains(&"cpuset") {
        if let Some(cpus) = &plan.cpuset_cpus {
            write_or_warn("cpuset.cpus", cpus, "cpusets", "--cpuset-cpus")?;
        }
    }
    if enabled.contains(&"cpu") {
        if let Some(quota) = plan.cpu_quota {
            let value = format!("{quota} {CPU_PERIOD}");
            write_or_warn("cpu.max", &value, "cpu bandwidth control", "--cpus")?;
        }
        if let Some(weight) = plan.cpu_weight() {
            write_or_warn(
                "cpu.weight",
                &weight.to_string(),
                "cpu weights",
                "--cpu-shares",
            )?;
        }
    }
    if enabled.contains(&"memory") {
        if let Some(memory) = plan.memory {
            write_file(&leaf.join("memory.max"), &memory.to_string())?;
            match plan.swap {
                None => {}
                Some(Swap::Unlimited) => {
                    let path = leaf.join("memory.swap.max");
                    if path.exists() {
                        write_file(&path, "max")?;
                    }
                }
                Some(Swap::Total(total)) => {
                    let swap = total.saturating_sub(memory).to_string();
                    write_or_warn("memory.swap.max", &swap, "swap accounting", "--memory-swap")?;
                }
            }
        }
    }
    if enabled.contains(&"pids") {
        if let Some(pids) = &plan.pids_max {
            write_file(&leaf.join("pids.max"), pids)?;
        }
    }
    Ok(())
}

/// v2 OOM detection: `oom_kill` in `memory.events`.
pub(super) fn oom_killed(dir: &Path) -> bool {
    read_optional(&dir.join("memory.events"))
        .ok()
        .flatten()
        .and_then(|events| keyed_value(&events, "oom_kill"))
        .is_some_and(|kills| kills > 0)
}
