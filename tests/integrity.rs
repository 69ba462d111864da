//! Integrity of the store: bytes that do not match their digest are refused, a killed ingest
//! leaves no visible blob, and concurrent hoist processes keep the index consistent.

#![allow(clippy::unwrap_used, clippy::print_stdout)]

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::*;
use sha2::{Digest as _, Sha256};

fn sha_hex(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

fn small_rootfs_tar(dir: &std::path::Path, marker: &str) -> std::path::PathBuf {
    let r = dir.join(format!("rootfs-{marker}"));
    std::fs::create_dir_all(r.join("etc")).unwrap();
    std::fs::write(r.join("etc/marker"), marker).unwrap();
    gnu_tar(&r, &dir.join(format!("rootfs-{marker}.tar")))
}

fn blob_count(root: &std::path::Path) -> usize {
    std::fs::read_dir(root.join("blobs/sha256"))
        .map(|d| d.count())
        .unwrap_or(0)
}

#[test]
fn a_layer_that_does_not_match_its_diff_id_is_refused() {
    let t = tempdir();
    let root = t.path().join("store");
    let layer = {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(3);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, "file", &b"abc"[..]).unwrap();
        b.into_inner().unwrap()
    };
    let wrong = format!("sha256:{}", sha_hex(b"something else"));
    let config = serde_json::to_vec(&serde_json::json!({"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[wrong]}})).unwrap();
    let archive = t.path().join("bad.tar");
    let manifest = br#"[{"Config":"config.json","RepoTags":["bad:1"],"Layers":["layer.tar"]}]"#;
    tar_members(
        std::fs::File::create(&archive).unwrap(),
        &[
            ("layer.tar", &layer),
            ("config.json", &config),
            ("manifest.json", manifest),
        ],
    );
    let out = hoist(&root, &["load", "-i", archive.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "a layer with the wrong diff ID was loaded"
    );
    assert!(
        err.contains("digest mismatch") && err.contains("layer.tar") && err.contains(&wrong),
        "error must name the layer and digests:\n{err}"
    );
    assert_eq!(
        hoist_ok(&root, &["images", "-q"]).trim(),
        "",
        "nothing may be tagged"
    );
}

#[test]
fn an_oci_blob_that_does_not_hash_to_its_name_is_refused() {
    let t = tempdir();
    let root = t.path().join("store");
    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let cfg = sha_hex(config);
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:{cfg}","size":{}}},"layers":[]}}"#,
        config.len()
    );
    let man = sha_hex(manifest.as_bytes());
    let index = format!(
        r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:{man}","size":{},"annotations":{{"org.opencontainers.image.ref.name":"docker.io/library/x:1"}}}}]}}"#,
        manifest.len()
    );
    let archive = t.path().join("bad-oci.tar");
    let tampered = br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},"evil":1}"#;
    let (cfg_path, man_path) = (format!("blobs/sha256/{cfg}"), format!("blobs/sha256/{man}"));
    tar_members(
        std::fs::File::create(&archive).unwrap(),
        &[
            (&cfg_path, tampered),
            (&man_path, manifest.as_bytes()),
            ("index.json", index.as_bytes()),
            ("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#),
        ],
    );
    let out = hoist(&root, &["load", "-i", archive.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a tampered blob was accepted");
    assert!(
        err.contains("digest mismatch") && err.contains(&cfg),
        "error must name the blob:\n{err}"
    );
    assert_eq!(hoist_ok(&root, &["images", "-q"]).trim(), "");
}

#[test]
fn a_corrupted_blob_in_the_store_is_detected() {
    let t = tempdir();
    let root = t.path().join("store");
    let tarball = small_rootfs_tar(t.path(), "one");
    let id = hoist_ok(&root, &["import", tarball.to_str().unwrap(), "c:1"])
        .trim()
        .to_string();
    let blob = root
        .join("blobs/sha256")
        .join(id.trim_start_matches("sha256:"));
    let mut bytes = std::fs::read(&blob).unwrap();
    bytes[5] ^= 1;
    std::fs::write(&blob, bytes).unwrap();
    let out = hoist(&root, &["inspect", "c:1"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a corrupted config was read");
    assert!(
        err.contains("digest mismatch") && err.contains(id.trim_start_matches("sha256:")),
        "{err}"
    );
}

#[test]
fn a_killed_ingest_leaves_no_visible_blob() {
    let t = tempdir();
    let root = t.path().join("store");
    hoist_ok(&root, &["images"]);
    let before = blob_count(&root);
    let mut child = Command::new(hoist_bin())
        .arg("--root")
        .arg(&root)
        .args(["import", "-", "killed:1"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    // A tar header for a 64 MiB file, then 8 MiB of it: the import is mid-stream.
    let mut h = tar::Header::new_gnu();
    h.set_path("big").unwrap();
    h.set_size(64 << 20);
    h.set_mode(0o644);
    h.set_cksum();
    stdin.write_all(h.as_bytes()).unwrap();
    stdin.write_all(&vec![7u8; 8 << 20]).unwrap();
    stdin.flush().unwrap();
    // Wait until the ingest file has bytes in it, then kill -9.
    let ingest = root.join("ingest");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let written: u64 = std::fs::read_dir(&ingest)
            .unwrap()
            .map(|e| e.unwrap().metadata().unwrap().len())
            .sum();
        if written > 0 || std::time::Instant::now() > deadline {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(
        std::fs::read_dir(&ingest).unwrap().count() > 0,
        "the ingest never started"
    );
    child.kill().unwrap();
    child.wait().unwrap();
    drop(stdin);
    assert_eq!(blob_count(&root), before, "a partial blob became visible");
    assert_eq!(hoist_ok(&root, &["images", "-q"]).trim(), "");
    // The leftover is garbage that prune removes.
    hoist_ok(&root, &["prune"]);
    assert_eq!(
        std::fs::read_dir(&ingest).unwrap().count(),
        0,
        "prune left ingest garbage"
    );
}

#[test]
fn concurrent_imports_and_tags_keep_the_index_consistent() {
    if !require(is_root(), "root (import unpacks with owners)") {
        return;
    }
    let t = tempdir();
    let root = t.path().join("store");
    let tars: Vec<_> = (0..4)
        .map(|i| small_rootfs_tar(t.path(), &format!("m{i}")))
        .collect();
    let mut children = Vec::new();
    for p in 0..2 {
        for i in 0..8 {
            let tarball = &tars[(p * 8 + i) % tars.len()];
            children.push(
                Command::new(hoist_bin())
                    .arg("--root")
                    .arg(&root)
                    .args(["import", tarball.to_str().unwrap(), &format!("race{p}:{i}")])
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap(),
            );
        }
    }
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "a concurrent import failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // Several processes retag at once.
    let mut taggers = Vec::new();
    for i in 0..8 {
        taggers.push(
            Command::new(hoist_bin())
                .arg("--root")
                .arg(&root)
                .args(["tag", &format!("race0:{i}"), &format!("alias:{i}")])
                .spawn()
                .unwrap(),
        );
    }
    for mut c in taggers {
        assert!(c.wait().unwrap().success());
    }
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(root.join("index.json")).unwrap())
            .expect("index.json stays valid JSON");
    let names: Vec<String> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| {
            m["annotations"]["org.opencontainers.image.ref.name"]
                .as_str()
                .map(String::from)
        })
        .collect();
    let mut want: Vec<String> = (0..2)
        .flat_map(|p| (0..8).map(move |i| format!("docker.io/library/race{p}:{i}")))
        .collect();
    want.extend((0..8).map(|i| format!("docker.io/library/alias:{i}")));
    let mut sorted = names.clone();
    sorted.sort();
    want.sort();
    assert_eq!(sorted, want, "every tag exactly once");
    for i in 0..8 {
        let a = hoist_ok(&root, &["inspect", &format!("race0:{i}")]);
        let b = hoist_ok(&root, &["inspect", &format!("alias:{i}")]);
        let id = |s: &str| serde_json::from_str::<serde_json::Value>(s).unwrap()[0]["Id"].clone();
        assert_eq!(id(&a), id(&b));
    }
}
