//! Layer semantics: whiteouts, opaque directories, type changes, copy-up of parents and hard
//! link targets, checked against the expected tree AND against the kernel's own overlayfs
//! stacking of the snapshots; and malicious layers, which must be refused with the entry named
//! and nothing written outside the snapshot.

#![allow(clippy::unwrap_used, clippy::print_stdout)]

mod common;

use std::io::Write;
use std::path::Path;
use std::process::Command;

use common::*;
use sha2::{Digest as _, Sha256};

/// A tar entry for a hand-built layer.
enum E<'a> {
    Dir(&'a str, u32, u32),
    File(&'a str, &'a str, u32),
    Link(&'a str, &'a str),
    Sym(&'a str, &'a str),
    /// A raw name the `tar` crate would refuse to write (absolute, `..`).
    RawFile(&'a [u8], &'a str),
    RawLink(&'a str, &'a [u8]),
}

fn layer(entries: &[E]) -> Vec<u8> {
    let mut out = Vec::new();
    for e in entries {
        let mut h = tar::Header::new_gnu();
        h.set_mtime(1_700_000_000);
        let (name, data): (&[u8], &[u8]) = match e {
            E::Dir(p, mode, uid) => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(*mode);
                h.set_uid(*uid as u64);
                h.set_gid(*uid as u64);
                h.set_size(0);
                (p.as_bytes(), b"")
            }
            E::File(p, c, mode) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(*mode);
                h.set_size(c.len() as u64);
                (p.as_bytes(), c.as_bytes())
            }
            E::Link(p, t) | E::Sym(p, t) => {
                h.set_entry_type(if matches!(e, E::Link(..)) {
                    tar::EntryType::Link
                } else {
                    tar::EntryType::Symlink
                });
                h.set_mode(0o777);
                h.set_size(0);
                h.as_old_mut().linkname[..t.len()].copy_from_slice(t.as_bytes());
                (p.as_bytes(), b"")
            }
            E::RawFile(p, c) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(0o644);
                h.set_size(c.len() as u64);
                (p, c.as_bytes())
            }
            E::RawLink(p, t) => {
                h.set_entry_type(tar::EntryType::Link);
                h.set_mode(0o644);
                h.set_size(0);
                h.as_old_mut().linkname[..t.len()].copy_from_slice(t);
                (p.as_bytes(), b"")
            }
        };
        h.as_old_mut().name[..name.len()].copy_from_slice(name);
        h.set_cksum();
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.resize(out.len() + 1024, 0);
    out
}

fn sha_hex(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

/// Writes a classic docker-archive with the given layers; returns the diff IDs.
fn docker_archive(path: &Path, tag: &str, layers: &[Vec<u8>]) -> Vec<String> {
    let diff_ids: Vec<String> = layers
        .iter()
        .map(|l| format!("sha256:{}", sha_hex(l)))
        .collect();
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": layers.iter().map(|_| serde_json::json!({"created_by": "test"})).collect::<Vec<_>>(),
    });
    let config = serde_json::to_vec(&config).unwrap();
    let cfg_name = format!("{}.json", sha_hex(&config));
    let mut b = tar::Builder::new(std::fs::File::create(path).unwrap());
    let mut add = |name: &str, data: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, name, data).unwrap();
    };
    let mut layer_paths = Vec::new();
    for (i, l) in layers.iter().enumerate() {
        let p = format!("l{i}/layer.tar");
        add(&p, l);
        layer_paths.push(p);
    }
    add(&cfg_name, &config);
    let manifest =
        serde_json::json!([{"Config": cfg_name, "RepoTags": [tag], "Layers": layer_paths}]);
    add("manifest.json", &serde_json::to_vec(&manifest).unwrap());
    b.finish().unwrap();
    diff_ids
}

fn chain_ids(diff_ids: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for d in diff_ids {
        let next = match out.last() {
            None => d.clone(),
            Some(prev) => format!("sha256:{}", sha_hex(format!("{prev} {d}").as_bytes())),
        };
        out.push(next);
    }
    out
}

#[test]
fn three_layers_apply_to_the_right_tree_and_match_overlayfs() {
    if !require(
        is_root(),
        "root (whiteouts are device nodes, overlay needs mount)",
    ) {
        return;
    }
    let t = tempdir();
    let root = t.path().join("store");
    let l1 = layer(&[
        E::Dir("a/", 0o750, 1000),
        E::File("a/keep", "keep\n", 0o640),
        E::File("a/gone", "gone\n", 0o644),
        E::Dir("d/", 0o755, 0),
        E::File("d/old1", "old1\n", 0o644),
        E::Dir("d/sub/", 0o755, 0),
        E::File("d/sub/old2", "old2\n", 0o644),
        E::File("f", "i am a file\n", 0o644),
        E::Dir("x/", 0o755, 0),
        E::File("x/inside", "x\n", 0o644),
        E::Sym("s", "a/keep"),
    ]);
    let l2 = layer(&[
        E::File("a/.wh.gone", "", 0o644),
        E::Dir("d/", 0o700, 0),
        E::File("d/.wh..wh..opq", "", 0o644),
        E::File("d/new", "new\n", 0o644),
        E::Dir("f/", 0o755, 0),
        E::File("f/inner", "inner\n", 0o644),
    ]);
    let l3 = layer(&[
        // parent `a` only exists below: copied up with its 0750 mode and 1000 owner
        E::File("a/added", "added\n", 0o600),
        // hard link to a file of a lower layer: the target is copied up first
        E::Link("a/keep-link", "a/keep"),
        E::File(".wh.x", "", 0o644),
        E::File("s", "symlink became a file\n", 0o644),
    ]);
    let archive = t.path().join("three.tar");
    let diff_ids = docker_archive(&archive, "three:1", &[l1, l2, l3]);
    hoist_ok(&root, &["load", "-i", archive.to_str().unwrap()]);
    let export = t.path().join("export.tar");
    hoist_ok(
        &root,
        &["export", "three:1", "-o", export.to_str().unwrap()],
    );
    let got = tar_tree(std::fs::File::open(&export).unwrap());

    let file = |c: &str, mode: u32, uid: u64| Node {
        kind: Kind::File(sha_hex(c.as_bytes())),
        mode,
        uid,
        gid: uid,
        links: vec![],
    };
    let dir = |mode: u32, uid: u64| Node {
        kind: Kind::Dir,
        mode,
        uid,
        gid: uid,
        links: vec![],
    };
    let mut want = Tree::new();
    want.insert("a".into(), dir(0o750, 1000));
    want.insert("a/added".into(), file("added\n", 0o600, 0));
    want.insert(
        "a/keep".into(),
        Node {
            links: vec!["a/keep-link".into()],
            ..file("keep\n", 0o640, 0)
        },
    );
    want.insert(
        "a/keep-link".into(),
        Node {
            links: vec!["a/keep".into()],
            ..file("keep\n", 0o640, 0)
        },
    );
    want.insert("d".into(), dir(0o700, 0));
    want.insert("d/new".into(), file("new\n", 0o644, 0));
    want.insert("f".into(), dir(0o755, 0));
    want.insert("f/inner".into(), file("inner\n", 0o644, 0));
    want.insert("s".into(), file("symlink became a file\n", 0o644, 0));
    assert_same_tree("hoist export of the three-layer image", &want, &got);

    // The kernel's view: the snapshots stacked as overlay lower dirs must give the same tree.
    let chains = chain_ids(&diff_ids);
    let lowers: Vec<String> = chains
        .iter()
        .rev()
        .map(|c| {
            root.join("snapshots")
                .join(c.trim_start_matches("sha256:"))
                .join("fs")
                .display()
                .to_string()
        })
        .collect();
    let mnt = t.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    run_ok(
        Command::new("mount")
            .args(["-t", "overlay", "overlay", "-o"])
            .arg(format!("lowerdir={}", lowers.join(":")))
            .arg(&mnt),
    );
    let merged = dir_tree(&mnt);
    run_ok(Command::new("umount").arg(&mnt));
    assert_same_tree("overlayfs merge of the snapshots", &want, &merged);
}

fn refused(name: &str, entries: &[E], must_name: &str) {
    let t = tempdir();
    let root = t.path().join("store");
    let outside = t.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    std::fs::write(outside.join("victim"), "untouched\n").unwrap();
    let data = layer(entries);
    let tarball = t.path().join("evil.tar");
    std::fs::File::create(&tarball)
        .unwrap()
        .write_all(&data)
        .unwrap();
    let out = hoist(&root, &["import", tarball.to_str().unwrap(), "evil:1"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "{name}: import of a malicious layer succeeded"
    );
    assert!(
        err.contains(must_name),
        "{name}: the error must name the entry `{must_name}`:\n{err}"
    );
    // Nothing tagged; nothing outside changed.
    assert_eq!(
        hoist_ok(&root, &["images", "-q"]).trim(),
        "",
        "{name}: an image was tagged"
    );
    let mut names: Vec<_> = std::fs::read_dir(&outside)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    assert_eq!(
        names,
        vec![std::ffi::OsString::from("victim")],
        "{name}: something was written outside"
    );
    assert_eq!(
        std::fs::read_to_string(outside.join("victim")).unwrap(),
        "untouched\n",
        "{name}: victim changed"
    );
    // No half-built snapshot left visible.
    for e in std::fs::read_dir(root.join("snapshots")).unwrap() {
        let n = e.unwrap().file_name().to_string_lossy().into_owned();
        assert!(n.starts_with("tmp-"), "{name}: snapshot {n} left behind");
    }
}

#[test]
fn malicious_layers_are_refused() {
    if !require(is_root(), "root (chown of unpacked files)") {
        return;
    }
    let t = tempdir();
    let victim_dir = t.path().join("outside").display().to_string();
    let _ = victim_dir;
    // Relative escape. The depth is large enough to leave any store path.
    refused(
        "traversal",
        &[E::RawFile(
            b"../../../../../../../../../../tmp/pwned-traversal",
            "x",
        )],
        "../../../../../../../../../../tmp/pwned-traversal",
    );
    assert!(!Path::new("/tmp/pwned-traversal").exists());
    refused(
        "absolute path",
        &[E::RawFile(b"/tmp/pwned-absolute", "x")],
        "/tmp/pwned-absolute",
    );
    assert!(!Path::new("/tmp/pwned-absolute").exists());
    // A symlink to a host directory, then a file through it.
    refused(
        "symlinked parent",
        &[
            E::Sym("escape", "/tmp"),
            E::File("escape/pwned-symlink", "x", 0o644),
        ],
        "escape/pwned-symlink",
    );
    assert!(!Path::new("/tmp/pwned-symlink").exists());
    refused(
        "relative symlinked parent",
        &[
            E::Sym("up", "../../../../../../../tmp"),
            E::File("up/pwned-rel", "x", 0o644),
        ],
        "up/pwned-rel",
    );
    assert!(!Path::new("/tmp/pwned-rel").exists());
    // Hard links to host files, by absolute path, by `..` and through a symlink.
    let nlink = |p: &str| std::os::unix::fs::MetadataExt::nlink(&std::fs::metadata(p).unwrap());
    let before = nlink("/etc/passwd");
    refused(
        "hardlink absolute",
        &[E::RawLink("passwd", b"/etc/passwd")],
        "passwd",
    );
    refused(
        "hardlink traversal",
        &[E::RawLink("passwd", b"../../../../../../../../etc/passwd")],
        "passwd",
    );
    refused(
        "hardlink through symlink",
        &[E::Sym("etc", "/etc"), E::Link("passwd", "etc/passwd")],
        "passwd",
    );
    assert_eq!(
        nlink("/etc/passwd"),
        before,
        "a hard link to /etc/passwd was made"
    );
}

#[test]
fn gzip_and_zstd_layers_load_and_a_broken_index_json_is_ignored_beside_manifest_json() {
    if !require(is_root(), "root (export unpacks)") {
        return;
    }
    let t = tempdir();
    let root = t.path().join("store");
    let l1 = layer(&[E::Dir("a/", 0o755, 0), E::File("a/one", "one\n", 0o644)]);
    let l2 = layer(&[E::File("a/two", "two\n", 0o644)]);
    let diff_ids = [
        format!("sha256:{}", sha_hex(&l1)),
        format!("sha256:{}", sha_hex(&l2)),
    ];
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&l1).unwrap();
    let l1z = gz.finish().unwrap();
    let l2z = zstd::encode_all(&l2[..], 3).unwrap();
    let config = serde_json::to_vec(&serde_json::json!({"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":diff_ids}})).unwrap();
    let archive = t.path().join("compressed.tar.gz");
    // The archive itself gzip-compressed too, as `docker save | gzip` gives.
    let out = flate2::write::GzEncoder::new(
        std::fs::File::create(&archive).unwrap(),
        flate2::Compression::fast(),
    );
    let manifest =
        br#"[{"Config":"cfg.json","RepoTags":["comp:1"],"Layers":["l1.tar.gz","l2.tar.zst"]}]"#;
    let out = tar_members(
        out,
        &[
            ("l1.tar.gz", &l1z),
            ("l2.tar.zst", &l2z),
            ("cfg.json", &config),
            ("index.json", b"{ this is not json"),
            ("manifest.json", manifest),
        ],
    );
    out.finish().unwrap();
    let stdout = hoist_ok(&root, &["load", "-i", archive.to_str().unwrap()]);
    assert!(stdout.contains("Loaded image: comp:1"), "{stdout}");
    let v: serde_json::Value =
        serde_json::from_str(&hoist_ok(&root, &["inspect", "comp:1"])).unwrap();
    assert_eq!(
        v[0]["RootFS"]["Layers"],
        serde_json::json!(diff_ids),
        "diff IDs are of the uncompressed layers"
    );
    let export = t.path().join("e.tar");
    hoist_ok(&root, &["export", "comp:1", "-o", export.to_str().unwrap()]);
    let tree = tar_tree(std::fs::File::open(&export).unwrap());
    assert_eq!(
        tree.keys().cloned().collect::<Vec<_>>(),
        ["a", "a/one", "a/two"]
    );
    // Saved again, the layers are plain tars whose digests are the diff IDs.
    let saved = t.path().join("s.tar");
    hoist_ok(&root, &["save", "-o", saved.to_str().unwrap(), "comp:1"]);
    let members: Vec<String> = tar::Archive::new(std::fs::File::open(&saved).unwrap())
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect();
    for d in &diff_ids {
        assert!(
            members.contains(&format!("blobs/sha256/{}", d.trim_start_matches("sha256:"))),
            "{members:?}"
        );
    }
}
