//! Side-by-side checks with the peer tools: archives and stores written by hoist must be read
//! correctly by docker (a private dockerd), podman, skopeo and umoci, and archives written by
//! docker, podman and skopeo must load into hoist and export the same root filesystem.
//!
//! Every test needs root and its peer tools; without them it skips locally and fails under
//! `CI=true` (see `common::require`). No test pulls from a registry.

#![allow(clippy::unwrap_used, clippy::print_stdout)]

mod common;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use common::*;
use serde_json::Value;

/// The reference hoist's test image gets, in hoist's own (familiar) and normalised spelling.
const REF: &str = "bb:test";
const FULL_REF: &str = "docker.io/library/bb:test";

/// A podman command with storage, run root and temp dir all private to `t`.
fn podman(t: &Path) -> Command {
    let mut c = Command::new("podman");
    c.arg("--root")
        .arg(t.join("storage"))
        .arg("--runroot")
        .arg(t.join("run"))
        .arg("--tmpdir")
        .arg(t.join("tmp"))
        .args([
            "--storage-driver",
            "vfs",
            "--cgroup-manager",
            "cgroupfs",
            "--events-backend",
            "file",
        ]);
    c
}

/// The test image (see [`BusyboxImage`]), imported as `bb:test`.
type Fixture = BusyboxImage;

impl Fixture {
    fn new() -> Self {
        BusyboxImage::import(REF)
    }

    /// hoist's view of the image: (image ID, diff IDs).
    fn hoist_ids(&self) -> (String, Vec<String>) {
        hoist_image_ids(&self.store, REF)
    }

    /// `hoist save` of the image into `name` in the fixture dir.
    fn save(&self, format: &str, name: &str) -> PathBuf {
        let out = self.dir().join(name);
        hoist_ok(
            &self.store,
            &[
                "save",
                "--format",
                format,
                "-o",
                out.to_str().expect("utf-8"),
                REF,
            ],
        );
        assert!(
            std::fs::metadata(&out).expect("archive written").len() > 1024,
            "archive too small"
        );
        out
    }
}

/// (image ID, diff IDs) of `image` in the hoist store `root`.
fn hoist_image_ids(root: &Path, image: &str) -> (String, Vec<String>) {
    let v: Value =
        serde_json::from_str(&hoist_ok(root, &["inspect", image])).expect("inspect JSON");
    let id = v[0]["Id"].as_str().expect("Id").to_string();
    let layers = diff_ids(&v[0]["RootFS"]["Layers"]);
    assert!(!layers.is_empty(), "hoist image {image} has no layers");
    (id, layers)
}

fn diff_ids(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("RootFS.Layers not an array: {v}"))
        .iter()
        .map(|l| l.as_str().expect("diff ID string").to_string())
        .collect()
}

/// Unpacks `image` (`LAYOUT:REF`) with umoci into `bundle` and returns its rootfs tree.
fn umoci_tree(image: &str, bundle: &Path) -> Tree {
    run_ok(
        Command::new("umoci")
            .arg("unpack")
            .arg("--image")
            .arg(image)
            .arg(bundle),
    );
    dir_tree(&bundle.join("rootfs"))
}

/// Loads `archive` into a fresh hoist store, checks the loaded image has `want_layers` diff IDs
/// (when given), and returns the tree of `hoist export` of what was loaded.
fn hoist_load_export(
    what: &str,
    archive: &Path,
    work: &Path,
    want_layers: Option<&[String]>,
) -> Tree {
    let store = work.join(format!("store-{what}"));
    let out = hoist_ok(&store, &["load", "-i", archive.to_str().expect("utf-8")]);
    eprintln!("{what}: hoist load said: {}", out.trim());
    let loaded: Vec<&str> = out
        .lines()
        .filter_map(|l| {
            l.strip_prefix("Loaded image: ")
                .or_else(|| l.strip_prefix("Loaded image ID: "))
        })
        .collect();
    assert_eq!(
        loaded.len(),
        1,
        "{what}: expected one loaded image, hoist load printed:\n{out}"
    );
    let image = loaded[0].trim();
    let (_, layers) = hoist_image_ids(&store, image);
    if let Some(want) = want_layers {
        assert_eq!(
            layers, want,
            "{what}: diff IDs after hoist load differ from the producer's"
        );
    }
    let export = work.join(format!("export-{what}.tar"));
    hoist_ok(
        &store,
        &["export", image, "-o", export.to_str().expect("utf-8")],
    );
    tar_tree(File::open(&export).expect("open export"))
}

/// The regular files of a (plain) tar archive, by name.
fn archive_files(path: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut a = tar::Archive::new(File::open(path).expect("open archive"));
    let mut files = std::collections::BTreeMap::new();
    for e in a.entries().expect("archive entries") {
        let mut e = e.expect("archive entry");
        if e.header().entry_type().is_file() {
            let name = e
                .path()
                .expect("entry path")
                .to_string_lossy()
                .trim_start_matches("./")
                .to_string();
            let mut v = Vec::new();
            std::io::Read::read_to_end(&mut e, &mut v).expect("read entry");
            files.insert(name, v);
        }
    }
    files
}

/// The media types of the layers of the (single) image in an oci-archive.
fn oci_archive_layer_types(path: &Path) -> Vec<String> {
    let files = archive_files(path);
    assert!(
        files.contains_key("oci-layout"),
        "{} is no OCI layout: {:?}",
        path.display(),
        files.keys().collect::<Vec<_>>()
    );
    let blob = |digest: &str| -> Value {
        let name = format!("blobs/{}", digest.replacen(':', "/", 1));
        serde_json::from_slice(files.get(&name).unwrap_or_else(|| panic!("missing {name}")))
            .expect("blob JSON")
    };
    let index: Value = serde_json::from_slice(&files["index.json"]).expect("index.json");
    let manifests = index["manifests"].as_array().expect("manifests");
    assert_eq!(
        manifests.len(),
        1,
        "expected one image in {}",
        path.display()
    );
    let manifest = blob(manifests[0]["digest"].as_str().expect("digest"));
    manifest["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .map(|l| l["mediaType"].as_str().expect("mediaType").to_string())
        .collect()
}

/// Asserts `path` is a docker-archive (`manifest.json` naming the layers, which exist).
fn assert_docker_archive(path: &Path) {
    let files = archive_files(path);
    let m: Value = serde_json::from_slice(
        files
            .get("manifest.json")
            .unwrap_or_else(|| panic!("{}: no manifest.json", path.display())),
    )
    .expect("manifest.json");
    for l in m[0]["Layers"].as_array().expect("Layers") {
        let l = l.as_str().expect("layer path");
        assert!(
            files.contains_key(l),
            "{}: manifest.json names missing layer {l}",
            path.display()
        );
    }
}

fn inspect_one(json: &str, what: &str) -> Value {
    let v: Value =
        serde_json::from_str(json).unwrap_or_else(|e| panic!("{what}: bad JSON ({e}): {json}"));
    assert_eq!(
        v.as_array().map(Vec::len),
        Some(1),
        "{what}: expected one object: {json}"
    );
    v[0].clone()
}

// ---------------------------------------------------------------------------------------------
// 1. What hoist writes, read by the peers.
// ---------------------------------------------------------------------------------------------

/// `hoist save` (docker-archive) → `docker load` on a private dockerd 20.10: same image ID and
/// diff IDs as hoist, `CMD` kept, and the image runs with the setuid bit intact.
#[test]
fn docker_loads_and_runs_hoist_docker_archive() {
    if !require(
        is_root() && has_tool("docker") && has_tool("dockerd"),
        "root, docker and dockerd for the docker peer test",
    ) {
        return;
    }
    let started = Instant::now();
    let fx = Fixture::new();
    let archive = fx.save("docker-archive", "bb-docker.tar");
    let (hoist_id, hoist_layers) = fx.hoist_ids();

    let d = Dockerd::start();
    eprintln!("dockerd up after {:?}", started.elapsed());
    let out = d.ok(&["load", "-i", archive.to_str().expect("utf-8")]);
    assert!(
        out.contains(&format!("Loaded image: {REF}")),
        "docker load said: {out}"
    );

    let img = inspect_one(&d.ok(&["image", "inspect", REF]), "docker image inspect");
    assert_eq!(
        diff_ids(&img["RootFS"]["Layers"]),
        hoist_layers,
        "docker's diff IDs differ from hoist's"
    );
    assert_eq!(
        img["Id"].as_str(),
        Some(hoist_id.as_str()),
        "docker's image ID (config digest) differs from hoist's"
    );
    assert_eq!(
        img["Config"]["Cmd"],
        serde_json::json!(["/bin/sh"]),
        "CMD lost: {}",
        img["Config"]
    );

    let out = d.ok(&[
        "run",
        "--rm",
        "--network",
        "host",
        REF,
        "/bin/sh",
        "-c",
        "echo ok; ls -l /usr/bin/suid-tool",
    ]);
    eprintln!("docker run said:\n{out}");
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("ok"), "docker run output: {out}");
    let ls = lines.next().unwrap_or_default();
    assert!(
        ls.starts_with("-rwsr-xr-x") && ls.ends_with("/usr/bin/suid-tool"),
        "setuid bit lost in the container: {ls:?}"
    );

    // The image's own CMD (/bin/sh) runs when no command is given.
    let out = run_ok(
        d.cmd()
            .args(["run", "--rm", "-i", "--network", "host", REF])
            .stdin(File::open(write_file(fx.dir(), "script", "echo from-cmd\n")).expect("script")),
    );
    assert_eq!(out.trim(), "from-cmd", "default CMD did not run /bin/sh");
    drop(d);
    eprintln!("docker test took {:?}", started.elapsed());
}

fn write_file(dir: &Path, name: &str, content: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, content).expect("write");
    p
}

/// `hoist save` (docker-archive) → `skopeo copy` to an OCI layout → `umoci unpack`: the same tree
/// as the input rootfs.
#[test]
fn skopeo_and_umoci_read_hoist_docker_archive() {
    if !require(
        is_root() && has_tool("skopeo") && has_tool("umoci"),
        "root, skopeo and umoci",
    ) {
        return;
    }
    let fx = Fixture::new();
    let archive = fx.save("docker-archive", "bb-docker.tar");
    let layout = fx.dir().join("oci");
    run_ok(
        Command::new("skopeo")
            .arg("copy")
            .arg(format!("docker-archive:{}", archive.display()))
            .arg(format!("oci:{}:bb", layout.display())),
    );
    let got = umoci_tree(
        &format!("{}:bb", layout.display()),
        &fx.dir().join("bundle"),
    );
    assert_same_tree(
        "skopeo copy of hoist's docker-archive, unpacked by umoci",
        &fx.tree,
        &got,
    );

    // skopeo reads the same diff IDs from the archive's config.
    let (_, hoist_layers) = fx.hoist_ids();
    let v: Value = serde_json::from_str(&run_ok(
        Command::new("skopeo")
            .arg("inspect")
            .arg("--config")
            .arg(format!("docker-archive:{}", archive.display())),
    ))
    .expect("skopeo config JSON");
    assert_eq!(
        diff_ids(&v["rootfs"]["diff_ids"]),
        hoist_layers,
        "skopeo sees other diff IDs"
    );
}

/// `hoist save` (docker-archive) → `podman load` into a private storage: same image ID and diff
/// IDs as hoist, and `podman run` of it prints `hi`.
#[test]
fn podman_loads_and_runs_hoist_docker_archive() {
    if !require(is_root() && has_tool("podman"), "root and podman") {
        return;
    }
    let fx = Fixture::new();
    let archive = fx.save("docker-archive", "bb-docker.tar");
    let (hoist_id, hoist_layers) = fx.hoist_ids();
    let t = ShortDir::new("hp-");
    let out = run_ok(podman(t.path()).arg("load").arg("-i").arg(&archive));
    assert!(out.contains(FULL_REF), "podman load said: {out}");

    let img = inspect_one(
        &run_ok(podman(t.path()).args(["image", "inspect", FULL_REF])),
        "podman image inspect",
    );
    assert_eq!(
        diff_ids(&img["RootFS"]["Layers"]),
        hoist_layers,
        "podman's diff IDs differ from hoist's"
    );
    assert_eq!(
        format!("sha256:{}", img["Id"].as_str().unwrap_or_default()),
        hoist_id,
        "podman's image ID (config digest) differs from hoist's"
    );

    // This machine's sandbox lacks CAP_SYS_RESOURCE, and podman's default rlimits (nofile
    // 1048576, nproc at the host's maximum) cannot be set, so ask for modest ones.
    let out = run_ok(podman(t.path()).args([
        "run",
        "--rm",
        "--network",
        "host",
        "--ulimit",
        "nofile=1024:1024",
        "--ulimit",
        "nproc=1024:1024",
        FULL_REF,
        "/bin/echo",
        "hi",
    ]));
    assert_eq!(out.trim(), "hi", "podman run output");
}

/// `umoci unpack` straight from hoist's store (an OCI layout): the same tree as the input.
#[test]
fn umoci_unpacks_hoist_store() {
    if !require(is_root() && has_tool("umoci"), "root and umoci") {
        return;
    }
    let fx = Fixture::new();
    let got = umoci_tree(
        &format!("{}:{FULL_REF}", fx.store.display()),
        &fx.dir().join("bundle"),
    );
    assert_same_tree("umoci unpack of hoist's store", &fx.tree, &got);
    // The store is still usable by hoist afterwards (umoci only read it).
    hoist_ok(&fx.store, &["inspect", REF]);
}

/// `hoist save --format oci-archive` → `skopeo copy oci-archive:` → `umoci unpack`: the same tree.
#[test]
fn skopeo_and_umoci_read_hoist_oci_archive() {
    if !require(
        is_root() && has_tool("skopeo") && has_tool("umoci"),
        "root, skopeo and umoci",
    ) {
        return;
    }
    let fx = Fixture::new();
    let archive = fx.save("oci-archive", "bb-oci.tar");
    let layout = fx.dir().join("oci");
    run_ok(
        Command::new("skopeo")
            .arg("copy")
            .arg(format!("oci-archive:{}:{FULL_REF}", archive.display()))
            .arg(format!("oci:{}:x", layout.display())),
    );
    let got = umoci_tree(&format!("{}:x", layout.display()), &fx.dir().join("bundle"));
    assert_same_tree(
        "skopeo copy of hoist's oci-archive, unpacked by umoci",
        &fx.tree,
        &got,
    );
}

// ---------------------------------------------------------------------------------------------
// 2. What the peers write, read by hoist.
// ---------------------------------------------------------------------------------------------

/// `docker import` + `docker save` (dockerd 20.10, classic format) → `hoist load` → `hoist export`:
/// the same tree as the rootfs; then the same archive converted by `skopeo copy` to an
/// oci-archive (gzip layers) loads into hoist too.
#[test]
fn hoist_loads_docker_save_archive() {
    if !require(
        is_root() && has_tool("docker") && has_tool("dockerd") && has_tool("skopeo"),
        "root, docker, dockerd and skopeo",
    ) {
        return;
    }
    let started = Instant::now();
    let fx = Fixture::new();
    let d = Dockerd::start();
    d.ok(&["import", fx.tar.to_str().expect("utf-8"), "peer/bb:1"]);
    let docker_layers = diff_ids(
        &inspect_one(
            &d.ok(&["image", "inspect", "peer/bb:1"]),
            "docker image inspect",
        )["RootFS"]["Layers"],
    );
    let archive = fx.dir().join("docker-save.tar");
    d.ok(&["save", "-o", archive.to_str().expect("utf-8"), "peer/bb:1"]);
    drop(d);
    // dockerd 20.10 writes the classic layout: <id>/layer.tar, <id>/json, repositories.
    let files = archive_files(&archive);
    assert!(
        files.contains_key("repositories") && files.keys().any(|k| k.ends_with("/layer.tar")),
        "not the classic docker save layout: {:?}",
        files.keys().collect::<Vec<_>>()
    );
    assert_docker_archive(&archive);

    let got = hoist_load_export("docker-save", &archive, fx.dir(), Some(&docker_layers));
    assert_same_tree("hoist export of docker save", &fx.tree, &got);

    let oci = fx.dir().join("skopeo.tar");
    run_ok(
        Command::new("skopeo")
            .arg("copy")
            .arg(format!("docker-archive:{}", archive.display()))
            .arg(format!("oci-archive:{}:peer/bb:2", oci.display())),
    );
    assert_eq!(
        oci_archive_layer_types(&oci),
        ["application/vnd.oci.image.layer.v1.tar+gzip"],
        "skopeo did not gzip the layer"
    );
    let got = hoist_load_export("skopeo-from-docker", &oci, fx.dir(), Some(&docker_layers));
    assert_same_tree(
        "hoist export of skopeo oci-archive made from docker save",
        &fx.tree,
        &got,
    );
    eprintln!("docker save test took {:?}", started.elapsed());
}

/// Imports the fixture's tarball into a private podman storage as `peer/bb:1` and returns its
/// diff IDs.
fn podman_import(fx: &Fixture, t: &Path) -> Vec<String> {
    run_ok(podman(t).arg("import").arg(&fx.tar).arg("peer/bb:1"));
    diff_ids(
        &inspect_one(
            &run_ok(podman(t).args(["image", "inspect", "localhost/peer/bb:1"])),
            "podman image inspect",
        )["RootFS"]["Layers"],
    )
}

/// `podman import` + `podman save` (default docker-archive) → `hoist load` → `hoist export`.
#[test]
fn hoist_loads_podman_save_docker_archive() {
    if !require(is_root() && has_tool("podman"), "root and podman") {
        return;
    }
    let fx = Fixture::new();
    let t = ShortDir::new("hp-");
    let layers = podman_import(&fx, t.path());
    let archive = fx.dir().join("podman-save.tar");
    run_ok(
        podman(t.path())
            .arg("save")
            .arg("-o")
            .arg(&archive)
            .arg("localhost/peer/bb:1"),
    );
    assert_docker_archive(&archive);
    let got = hoist_load_export("podman-docker", &archive, fx.dir(), Some(&layers));
    assert_same_tree(
        "hoist export of podman save (docker-archive)",
        &fx.tree,
        &got,
    );
}

/// `podman import` + `podman save --format oci-archive` → `hoist load` → `hoist export`.
#[test]
fn hoist_loads_podman_save_oci_archive() {
    if !require(is_root() && has_tool("podman"), "root and podman") {
        return;
    }
    let fx = Fixture::new();
    let t = ShortDir::new("hp-");
    let layers = podman_import(&fx, t.path());
    let archive = fx.dir().join("podman-save-oci.tar");
    run_ok(
        podman(t.path())
            .args(["save", "--format", "oci-archive", "-o"])
            .arg(&archive)
            .arg("localhost/peer/bb:1"),
    );
    eprintln!(
        "podman oci-archive layer types: {:?}",
        oci_archive_layer_types(&archive)
    );
    let got = hoist_load_export("podman-oci", &archive, fx.dir(), Some(&layers));
    assert_same_tree("hoist export of podman save (oci-archive)", &fx.tree, &got);
}

/// `skopeo copy` of a podman-written docker-archive to an oci-archive (skopeo gzips the layer)
/// → `hoist load` → `hoist export`.
#[test]
fn hoist_loads_skopeo_oci_archive() {
    if !require(
        is_root() && has_tool("podman") && has_tool("skopeo"),
        "root, podman and skopeo",
    ) {
        return;
    }
    let fx = Fixture::new();
    let t = ShortDir::new("hp-");
    let layers = podman_import(&fx, t.path());
    let src = fx.dir().join("podman-save.tar");
    run_ok(
        podman(t.path())
            .arg("save")
            .arg("-o")
            .arg(&src)
            .arg("localhost/peer/bb:1"),
    );
    let oci = fx.dir().join("skopeo.tar");
    run_ok(
        Command::new("skopeo")
            .arg("copy")
            .arg(format!("docker-archive:{}", src.display()))
            .arg(format!("oci-archive:{}:peer/bb:2", oci.display())),
    );
    assert_eq!(
        oci_archive_layer_types(&oci),
        ["application/vnd.oci.image.layer.v1.tar+gzip"],
        "skopeo did not gzip the layer"
    );
    let got = hoist_load_export("skopeo-oci", &oci, fx.dir(), Some(&layers));
    assert_same_tree("hoist export of skopeo's oci-archive", &fx.tree, &got);
}
