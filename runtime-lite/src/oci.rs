//! Our spec as an OCI runtime bundle (`oci_spec::runtime::Spec`), for `hoist run --runtime PATH`:
//! the helper mounts the overlay rootfs in a private mount namespace, writes `config.json` and
//! runs the external runtime (runc, crun, youki) on the bundle. It proves our spec is the one a
//! real runtime understands, and gives users an escape hatch.

use std::io::{self, Write};
use std::path::Path;

use serde_json::{Value, json};

use crate::plan::{MASKED_PATHS, READONLY_PATHS};
use crate::spec::{Mount, Network, Spec};

/// The OCI runtime config for `spec`, with `root.path` = `rootfs` (the mounted merged view).
pub fn runtime_spec(spec: &Spec, rootfs: &Path) -> io::Result<oci_spec::runtime::Spec> {
    let caps: Vec<String> = spec
        .capabilities
        .names()
        .iter()
        .map(|s| s.to_string())
        .collect();
    // devpts's `gid=5` (tty) needs the group mapped, which a rootless namespace may not have.
    let tty_group = spec
        .user_namespace
        .as_ref()
        .is_none_or(|m| crate::userns::is_mapped(&m.gids, 5));
    let mut devpts = vec![
        "nosuid",
        "noexec",
        "newinstance",
        "ptmxmode=0666",
        "mode=0620",
    ];
    if tty_group {
        devpts.push("gid=5");
    }
    let mut mounts = vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": devpts}),
        json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]}),
        json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]}),
    ];
    mounts.push(match spec.network {
        Network::None => json!({"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]}),
        Network::Host => json!({"destination": "/sys", "type": "bind", "source": "/sys", "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]}),
    });
    for (host, ctr) in &spec.etc_files {
        mounts.push(json!({"destination": ctr, "type": "bind", "source": host, "options": ["rbind", "rprivate"]}));
    }
    for m in &spec.mounts {
        mounts.push(match m {
            Mount::Bind { source, target, readonly } => {
                json!({"destination": target, "type": "bind", "source": source, "options": if *readonly { vec!["rbind", "ro"] } else { vec!["rbind", "rw"] }})
            }
            Mount::Tmpfs { target, options } => {
                let mut o = vec!["nosuid".to_string(), "nodev".to_string()];
                o.extend(options.split(',').filter(|s| !s.is_empty()).map(String::from));
                json!({"destination": target, "type": "tmpfs", "source": "tmpfs", "options": o})
            }
        });
    }
    let mut namespaces = vec![
        json!({"type": "pid"}),
        json!({"type": "ipc"}),
        json!({"type": "uts"}),
        json!({"type": "mount"}),
    ];
    if spec.network == Network::None {
        namespaces.push(json!({"type": "network"}));
    }
    if spec.user_namespace.is_some() {
        namespaces.push(json!({"type": "user"}));
    }
    let resources = match &spec.limits {
        Some(l) => Some(
            l.to_oci()
                .map_err(|e| io::Error::other(format!("cgroups: {e}")))?,
        ),
        None => None,
    };
    let p = &spec.process;
    let mut config: Value = json!({
        "ociVersion": "1.0.2",
        "root": {"path": rootfs, "readonly": spec.readonly_rootfs},
        "hostname": spec.hostname,
        "process": {
            "terminal": spec.tty,
            "args": p.args,
            "env": p.env,
            "cwd": if p.cwd.is_empty() { "/" } else { p.cwd.as_str() },
            "user": {"uid": p.uid, "gid": p.gid, "additionalGids": p.additional_gids},
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
            "noNewPrivileges": true,
        },
        "mounts": mounts,
        "linux": {
            "namespaces": namespaces,
            "maskedPaths": if spec.privileged { vec![] } else { MASKED_PATHS.to_vec() },
            "readonlyPaths": if spec.privileged { vec![] } else { READONLY_PATHS.to_vec() },
        },
    });
    if let Some(r) = resources {
        config["linux"]["resources"] = r;
    }
    if let Some(maps) = &spec.user_namespace {
        let lines = |maps: &[crate::userns::IdMap]| -> Vec<Value> {
            maps.iter()
                .map(|m| json!({"containerID": m.container, "hostID": m.host, "size": m.size}))
                .collect()
        };
        config["linux"]["uidMappings"] = lines(&maps.uids).into();
        config["linux"]["gidMappings"] = lines(&maps.gids).into();
    }
    serde_json::from_value(config)
        .map_err(|e| io::Error::other(format!("building the OCI runtime spec: {e}")))
}

/// Writes `bundle/config.json` and runs `runtime run --bundle bundle ID`, returning its exit
/// code. Called in the helper after the rootfs (`config`'s `root.path`) is mounted in its own
/// mount namespace.
pub fn delegate(
    config: &oci_spec::runtime::Spec,
    id: &str,
    runtime: &Path,
    bundle: &Path,
) -> io::Result<i32> {
    let bytes = serde_json::to_vec_pretty(config).map_err(io::Error::other)?;
    std::fs::create_dir_all(bundle)?;
    std::fs::File::create(bundle.join("config.json"))?.write_all(&bytes)?;
    let status = std::process::Command::new(runtime)
        .arg("--root")
        .arg(bundle.join("state"))
        .args(["run", "--bundle"])
        .arg(bundle)
        .arg(id)
        .status()
        .map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot run the OCI runtime `{}`: {e}", runtime.display()),
            )
        })?;
    use std::os::unix::process::ExitStatusExt;
    Ok(status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::RootFs;

    #[test]
    fn our_spec_is_a_valid_oci_runtime_spec() {
        let mut s = Spec::new(RootFs::Dir("/r".into()), vec!["echo".into(), "hi".into()]);
        s.mounts.push(Mount::Bind {
            source: "/data".into(),
            target: "/data".into(),
            readonly: true,
        });
        s.process.uid = 1000;
        let oci = runtime_spec(&s, Path::new("/r")).unwrap();
        let v = serde_json::to_value(&oci).unwrap();
        assert_eq!(v["process"]["args"], json!(["echo", "hi"]));
        assert_eq!(v["process"]["user"]["uid"], 1000);
        assert!(
            v["linux"]["namespaces"]
                .as_array()
                .unwrap()
                .iter()
                .any(|n| n["type"] == "network")
        );
        assert!(
            v["process"]["capabilities"]["bounding"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c == "CAP_CHOWN")
        );
        assert!(
            v["mounts"]
                .as_array()
                .unwrap()
                .iter()
                .any(|m| m["destination"] == "/data"
                    && m["options"].as_array().unwrap().iter().any(|o| o == "ro"))
        );
        assert!(
            v["linux"]["maskedPaths"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p == "/proc/kcore")
        );
    }
}
