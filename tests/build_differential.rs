//! Differential suite: every Dockerfile under `testdata/dockerfiles/differential/` is built by
//! hoist and by Docker's own BuildKit (`DOCKER_BUILDKIT=1 docker build --network host` against a
//! dockerd this test starts on a private socket), both from a busybox base in the test's own
//! loopback registry. Both results are saved as docker archives and compared: the rootfs the
//! layers give (whiteouts applied: paths, types, modes, owners, contents, symlink targets, hard
//! links), the number of layers, the runtime config fields and the history.
//!
//! A case is a directory: `Dockerfile` (starting with `ARG REGISTRY=...`; the test passes its
//! registry; `__REGISTRY__` is replaced by its address where BuildKit 0.8 expands no ARG, as in
//! `COPY --from`), the context files, optionally `flags` (extra build flags, one per line;
//! `__SECRET__` stands for a secret file the test writes) and `prepare.sh` (run in a copy of
//! the context, then removed: symlinks, hard links, modes and archives that git cannot hold).
//! `HOIST_DIFF_CASES=a,b` runs only the cases whose names contain one of the words.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use serde_json::Value;

/// A built image as the comparison sees it.
struct Image {
    tree: Tree,
    layers: usize,
    config: BTreeMap<&'static str, Value>,
    history: Vec<(String, bool)>,
}

/// The runtime config fields compared (docker's JSON names).
const FIELDS: &[&str] = &[
    "Env",
    "Cmd",
    "Entrypoint",
    "WorkingDir",
    "User",
    "Labels",
    "ExposedPorts",
    "Volumes",
    "StopSignal",
    "Healthcheck",
    "Shell",
    "OnBuild",
];

/// Reads a docker archive (`docker save` / `hoist save`) of one image.
fn read_archive(path: &Path) -> Image {
    let mut files: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    // docker saves a layer that is there twice as a symlink to the first copy.
    let mut links: Vec<(String, String)> = Vec::new();
    let mut a = tar::Archive::new(std::fs::File::open(path).unwrap());
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        let name = String::from_utf8_lossy(&e.path_bytes())
            .trim_start_matches("./")
            .to_string();
        match e.header().entry_type() {
            tar::EntryType::Regular => {
                let mut v = Vec::new();
                e.read_to_end(&mut v).unwrap();
                files.insert(name, v);
            }
            tar::EntryType::Symlink => {
                let target = String::from_utf8_lossy(&e.link_name_bytes().unwrap()).into_owned();
                let dir = Path::new(&name).parent().unwrap_or(Path::new(""));
                let mut resolved = PathBuf::new();
                for c in dir.join(&target).components() {
                    match c {
                        std::path::Component::ParentDir => {
                            resolved.pop();
                        }
                        std::path::Component::Normal(n) => resolved.push(n),
                        _ => {}
                    }
                }
                links.push((name, resolved.to_string_lossy().into_owned()));
            }
            _ => {}
        }
    }
    for (name, target) in links {
        let v = files[&target].clone();
        files.insert(name, v);
    }
    let manifest: Value = serde_json::from_slice(&files["manifest.json"]).unwrap();
    let m = &manifest[0];
    let config: Value = serde_json::from_slice(&files[m["Config"].as_str().unwrap()]).unwrap();
    let mut tree = Tree::new();
    let layers = m["Layers"].as_array().unwrap();
    for l in layers {
        apply_layer(&mut tree, tar_tree(&files[l.as_str().unwrap()][..]));
    }
    let empty = Value::Object(Default::default());
    let c = config.get("config").unwrap_or(&empty);
    let fields = FIELDS
        .iter()
        .map(|f| (*f, normalize(c.get(*f).cloned().unwrap_or(Value::Null))))
        .collect();
    let history = config["history"]
        .as_array()
        .map(|h| {
            h.iter()
                .map(|e| {
                    (
                        e["created_by"].as_str().unwrap_or_default().to_string(),
                        e["empty_layer"].as_bool().unwrap_or(false),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    Image {
        tree,
        layers: layers.len(),
        config: fields,
        history,
    }
}

/// Empty lists and maps are the same as absent.
fn normalize(v: Value) -> Value {
    match &v {
        Value::Array(a) if a.is_empty() => Value::Null,
        Value::Object(o) if o.is_empty() => Value::Null,
        Value::String(s) if s.is_empty() => Value::Null,
        _ => v,
    }
}

/// Applies one layer (its entries, whiteouts included) to `tree`.
fn apply_layer(tree: &mut Tree, layer: Tree) {
    let remove_under = |tree: &mut Tree, dir: &str| {
        let prefix = format!("{dir}/");
        tree.retain(|p, _| !p.starts_with(&prefix));
    };
    for path in layer.keys() {
        let (dir, base) = match path.rsplit_once('/') {
            Some((d, b)) => (d, b),
            None => ("", path.as_str()),
        };
        if base == ".wh..wh..opq" {
            if dir.is_empty() {
                tree.clear();
            } else {
                remove_under(tree, dir);
            }
        } else if let Some(name) = base.strip_prefix(".wh.") {
            let target = if dir.is_empty() {
                name.to_string()
            } else {
                format!("{dir}/{name}")
            };
            tree.remove(&target);
            remove_under(tree, &target);
        }
    }
    for (path, node) in layer {
        let base = path.rsplit('/').next().unwrap_or_default();
        if base.starts_with(".wh.") {
            continue;
        }
        // A non-directory replacing a directory hides what was under it.
        if node.kind != Kind::Dir {
            remove_under(tree, &path);
        }
        tree.insert(path, node);
    }
}

/// Copies a case into `dst` (following nothing: the case is plain files) and runs its
/// `prepare.sh` there.
fn stage_context(case: &Path, dst: &Path, registry: &str) {
    run_ok(Command::new("cp").arg("-a").arg(case).arg(dst));
    let df = dst.join("Dockerfile");
    let text = std::fs::read_to_string(&df).unwrap();
    std::fs::write(&df, text.replace("__REGISTRY__", registry)).unwrap();
    let prep = dst.join("prepare.sh");
    if prep.exists() {
        run_ok(Command::new("sh").arg("-e").arg(&prep).current_dir(dst));
        std::fs::remove_file(prep).unwrap();
    }
    let _ = std::fs::remove_file(dst.join("flags"));
    let _ = std::fs::remove_file(dst.join("buildkit-stubs"));
}

fn flags(case: &Path, secret: &Path) -> Vec<String> {
    std::fs::read_to_string(case.join("flags"))
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.replace("__SECRET__", secret.to_str().unwrap()))
        .collect()
}

/// The mount points BuildKit 0.8 leaves in a RUN's layer (empty root-owned directories) that
/// hoist does not write: `/proc` and `/sys` when the base lacks them, and the case's `RUN
/// --mount` targets listed in its `buildkit-stubs` file. BuildKit 0.9 and later remove them too.
fn stubs(case: &Path) -> Vec<String> {
    let mut v = vec!["proc".to_string(), "sys".to_string()];
    if let Ok(s) = std::fs::read_to_string(case.join("buildkit-stubs")) {
        v.extend(s.lines().filter(|l| !l.is_empty()).map(str::to_string));
    }
    v
}

/// Every difference between two images, as lines.
fn differences(want: &Image, got: &Image, stubs: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    let is_stub = |p: &String, n: &Node| {
        stubs.contains(p)
            && n.kind == Kind::Dir
            && n.mode == 0o755
            && n.uid == 0
            && !want
                .tree
                .keys()
                .any(|k| k.starts_with(&format!("{p}/")) && !stubs.contains(k))
    };
    for (p, n) in &want.tree {
        match got.tree.get(p) {
            None if is_stub(p, n) => {}
            None => out.push(format!("missing: {p} {n:?}")),
            Some(g) if g != n => out.push(format!(
                "differs: {p}\n   buildkit {n:?}\n   hoist    {g:?}"
            )),
            _ => {}
        }
    }
    for (p, n) in &got.tree {
        if !want.tree.contains_key(p) {
            out.push(format!("extra: {p} {n:?}"));
        }
    }
    if want.layers != got.layers {
        out.push(format!(
            "layers: buildkit {}, hoist {}",
            want.layers, got.layers
        ));
    }
    for f in FIELDS {
        if want.config[f] != got.config[f] {
            out.push(format!(
                "config {f}: buildkit {}, hoist {}",
                want.config[f], got.config[f]
            ));
        }
    }
    if want.history != got.history {
        out.push(format!(
            "history:\n   buildkit {:?}\n   hoist    {:?}",
            want.history, got.history
        ));
    }
    out
}

fn cases() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/dockerfiles/differential");
    let only: Vec<String> = std::env::var("HOIST_DIFF_CASES")
        .map(|s| s.split(',').map(str::to_string).collect())
        .unwrap_or_default();
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("Dockerfile").is_file())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            only.is_empty() || only.iter().any(|o| name.contains(o.as_str()))
        })
        .collect();
    v.sort();
    v
}

#[test]
fn hoist_build_matches_buildkit() {
    if !require(
        is_root() && has_tool("dockerd") && have_registry(),
        "root, dockerd and docker-registry",
    ) {
        return;
    }
    let all = cases();
    if std::env::var("HOIST_DIFF_CASES").is_err() {
        assert!(all.len() >= 30, "only {} differential cases", all.len());
    }
    let base = BusyboxImage::import("busybox:latest");
    let registry = Registry::start();
    let reg = registry.addr.clone();
    let base_ref = format!("{reg}/busybox:latest");
    hoist_ok(&base.store, &["tag", "busybox:latest", &base_ref]);
    hoist_ok(&base.store, &["push", "-q", &base_ref]);
    let docker = Dockerd::start();
    let t = tempdir();
    let store = t.path().join("store");
    let secret = t.path().join("secret.txt");
    std::fs::write(&secret, "s3cr3t-value\n").unwrap();
    let reg_arg = format!("REGISTRY={reg}");
    let mut failures = Vec::new();
    for case in &all {
        let name = case.file_name().unwrap().to_string_lossy().into_owned();
        let ctx = t.path().join(format!("ctx-{name}"));
        stage_context(case, &ctx, &reg);
        let extra = flags(case, &secret);
        let tag = format!("diff/{name}:latest");

        let mut args = vec!["build", "-q", "-t", &tag, "--build-arg", &reg_arg];
        args.extend(extra.iter().map(String::as_str));
        args.push(ctx.to_str().unwrap());
        let out = hoist(&store, &args);
        if !out.status.success() {
            failures.push(format!(
                "{name}: hoist build failed:\n{}",
                String::from_utf8_lossy(&out.stderr)
            ));
            continue;
        }
        let h_tar = t.path().join(format!("{name}-hoist.tar"));
        hoist_ok(&store, &["save", "-o", h_tar.to_str().unwrap(), &tag]);

        let out = docker
            .cmd()
            .env("DOCKER_BUILDKIT", "1")
            .args(["build", "-q", "--network", "host", "-t", &tag])
            .args(["--build-arg", &reg_arg])
            .args(&extra)
            .arg(&ctx)
            .output()
            .unwrap();
        if !out.status.success() {
            failures.push(format!(
                "{name}: the reference build failed (fix the case):\n{}",
                String::from_utf8_lossy(&out.stderr)
            ));
            continue;
        }
        let d_tar = t.path().join(format!("{name}-docker.tar"));
        docker.ok(&["save", "-o", d_tar.to_str().unwrap(), &tag]);

        let want = read_archive(&d_tar);
        let got = read_archive(&h_tar);
        assert!(
            want.tree.len() > 100,
            "{name}: buildkit's rootfs is too small"
        );
        let diffs = differences(&want, &got, &stubs(case));
        if diffs.is_empty() {
            eprintln!(
                "{name}: same ({} paths, {} layers)",
                want.tree.len(),
                want.layers
            );
        } else {
            failures.push(format!("{name}:\n  {}", diffs.join("\n  ")));
        }
        // The secret never reaches a layer or the config.
        for tar in [&h_tar, &d_tar] {
            let bytes = std::fs::read(tar).unwrap();
            assert!(
                !bytes.windows(12).any(|w| w == b"s3cr3t-value"),
                "{name}: the secret is in {}",
                tar.display()
            );
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ from BuildKit:\n{}",
        failures.len(),
        all.len(),
        failures.join("\n")
    );
}
