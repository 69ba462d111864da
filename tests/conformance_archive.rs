//! The docker-archive corpus in ../shared/conformance/docker-archive: go-containerregistry's
//! `docker save` tarballs (classic, Docker 25, bundles, symlinked layers, and the two that must
//! fail), its OCI layouts (garbage collection by reachability), and the docker image spec
//! examples.

#![allow(clippy::unwrap_used, clippy::print_stdout)]

mod common;

use std::path::{Path, PathBuf};

use common::*;
use serde_json::Value;

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/conformance/docker-archive")
}

fn cases() -> Value {
    serde_json::from_slice(
        &std::fs::read(corpus().join("go-containerregistry/cases.json")).expect("cases.json"),
    )
    .expect("json")
}

fn copy_dir(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for e in std::fs::read_dir(src).unwrap() {
        let e = e.unwrap();
        let to = dst.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to);
        } else {
            std::fs::copy(e.path(), to).unwrap();
        }
    }
}

#[test]
fn ggcr_tarballs_load_or_fail_as_expected() {
    let (mut passed, mut failed) = (0, Vec::new());
    for case in cases()["tarballs"].as_array().unwrap() {
        let file = case["file"].as_str().unwrap();
        let t = tempdir();
        let root = t.path().join("store");
        let path = corpus().join("go-containerregistry").join(file);
        let out = hoist(&root, &["load", "-i", path.to_str().unwrap()]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let expect_ok = case["load"].as_str().unwrap().starts_with("ok");
        let mut problems = Vec::new();
        if out.status.success() != expect_ok {
            problems.push(format!(
                "expected {}, got exit {}: {stderr}",
                if expect_ok { "success" } else { "failure" },
                out.status
            ));
        } else if !expect_ok {
            // The error must name the archive.
            if !stderr.contains(file.rsplit('/').next().unwrap()) {
                problems.push(format!("error does not name the archive: {stderr}"));
            }
        } else {
            for img in case["images"].as_array().unwrap() {
                let diff_ids: Vec<&str> = img["diff_ids"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|d| d.as_str().unwrap())
                    .collect();
                let config = img["config_digest"].as_str().unwrap();
                let tags: Vec<&str> = img["repo_tags"]
                    .as_array()
                    .map(|a| a.iter().map(|t| t.as_str().unwrap()).collect())
                    .unwrap_or_default();
                let target = tags
                    .first()
                    .map(|t| t.to_string())
                    .unwrap_or_else(|| config.to_string());
                let insp = hoist(&root, &["inspect", &target]);
                if !insp.status.success() {
                    problems.push(format!(
                        "{target}: not in the store after load: {}",
                        String::from_utf8_lossy(&insp.stderr)
                    ));
                    continue;
                }
                let v: Value = serde_json::from_slice(&insp.stdout).unwrap();
                if v[0]["Id"] != config {
                    problems.push(format!(
                        "{target}: image ID {} != config digest {config}",
                        v[0]["Id"]
                    ));
                }
                let got: Vec<&str> = v[0]["RootFS"]["Layers"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|d| d.as_str().unwrap())
                    .collect();
                if got != diff_ids {
                    problems.push(format!("{target}: diff IDs {got:?} != {diff_ids:?}"));
                }
                for tag in &tags {
                    let familiar = tag.trim_start_matches("index.docker.io/library/");
                    let familiar = if familiar.contains(':') {
                        familiar.to_string()
                    } else {
                        format!("{familiar}:latest")
                    };
                    if !stdout.contains(&format!("Loaded image: {familiar}")) {
                        problems.push(format!("no `Loaded image: {familiar}` line in: {stdout}"));
                    }
                }
                if tags.is_empty() && !stdout.contains(&format!("Loaded image ID: {config}")) {
                    problems.push(format!("no `Loaded image ID: {config}` line in: {stdout}"));
                }
                // Every layer is readable: export the image and find content.
                if is_root() {
                    let exp = t.path().join("export.tar");
                    hoist_ok(&root, &["export", &target, "-o", exp.to_str().unwrap()]);
                    if tar_tree(std::fs::File::open(&exp).unwrap()).is_empty() {
                        problems.push(format!("{target}: exported rootfs is empty"));
                    }
                }
            }
            if let Some(sel) = case.get("select_by_tag_ok").and_then(|s| s.as_array()) {
                for s in sel {
                    let s = s.as_str().unwrap();
                    if !hoist(&root, &["inspect", s]).status.success() {
                        problems.push(format!("`{s}` does not select an image"));
                    }
                }
            }
        }
        if problems.is_empty() {
            passed += 1;
        } else {
            failed.push(format!("{file}:\n  {}", problems.join("\n  ")));
        }
    }
    println!(
        "docker-archive/tarballs: {passed} passed, {} failed",
        failed.len()
    );
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}

#[test]
fn ggcr_layouts_collect_garbage_by_reachability() {
    let expect: &[(&str, Result<&[&str], ()>)] = &[
        ("test_index_one_image", Ok(&[])),
        ("test_index_media_type", Ok(&[])),
        (
            "test_gc_index",
            Ok(&["sha256:492b89b9dd3cda4596f94916d17f6901455fb8bd7f4c5a2a90df8d39c90f48a0"]),
        ),
        ("test_gc_image_unknown_mediatype", Err(())),
    ];
    let listed: Vec<String> = cases()["oci_layouts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["dir"].as_str().unwrap().to_string())
        .collect();
    let (mut passed, mut failed) = (0, Vec::new());
    for (dir, want) in expect {
        assert!(
            listed.iter().any(|l| l.ends_with(dir)),
            "{dir} not in cases.json"
        );
        let t = tempdir();
        let root = t.path().join("layout");
        copy_dir(
            &corpus().join("go-containerregistry/oci-layouts").join(dir),
            &root,
        );
        let before: std::collections::BTreeSet<String> = blobs(&root);
        let store = store::Store::open(&root).unwrap();
        let result = store::gc::collect(&store, false);
        let after = blobs(&root);
        let removed: Vec<String> = before
            .difference(&after)
            .map(|h| format!("sha256:{h}"))
            .collect();
        let ok = match (want, &result) {
            (Ok(w), Ok(_)) => removed == w.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            (Err(()), Err(e)) => e.to_string().contains("unknown media type") && removed.is_empty(),
            _ => false,
        };
        if ok {
            passed += 1;
        } else {
            failed.push(format!(
                "{dir}: want {want:?}, got {:?} removing {removed:?}",
                result.map(|r| r.blobs_removed).map_err(|e| e.to_string())
            ));
        }
    }
    println!(
        "docker-archive/oci-layouts: {passed} passed, {} failed",
        failed.len()
    );
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}

fn blobs(root: &Path) -> std::collections::BTreeSet<String> {
    std::fs::read_dir(root.join("blobs/sha256"))
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn the_test_index_layout_resolves_its_image() {
    let t = tempdir();
    let root = t.path().join("layout");
    copy_dir(
        &corpus().join("go-containerregistry/oci-layouts/test_index"),
        &root,
    );
    let store = store::Store::open(&root).unwrap();
    let d = oci::Digest::parse(
        "sha256:eebff607b1628d67459b0596643fc07de70d702eccf030f0bc7bb6fc2b278650",
    )
    .unwrap();
    let desc = store::Descriptor::new(&oci::MediaType::OciManifest, d, 0);
    let m: store::Manifest =
        serde_json::from_slice(&store.blobs().read(&desc.digest).unwrap()).unwrap();
    assert_eq!(
        m.config.digest.to_string(),
        "sha256:6e0b05049ed9c17d02e1a55e80d6599dbfcce7f4f4b022e3c673e685789c470e"
    );
    assert_eq!(
        m.layers[0].media_type,
        "application/vnd.docker.image.rootfs.diff.tar.gzip"
    );
}

#[test]
fn docker_image_spec_examples_parse() {
    let ex = corpus().join("docker-image-spec/examples");
    let raw = std::fs::read(ex.join("image-config.json")).unwrap();
    let c = oci::ImageConfig::from_slice(&raw).expect("image-config.json parses as our config");
    let back = oci::ImageConfig::from_slice(&oci::to_canonical_vec(&c).unwrap()).unwrap();
    assert_eq!(back, c, "config survives a canonical round trip");
    let original: Value = serde_json::from_slice(&raw).unwrap();
    let ours: Value = serde_json::to_value(&c).unwrap();
    for k in original.as_object().unwrap().keys() {
        assert!(
            ours.get(k).is_some(),
            "field `{k}` of the spec example was dropped"
        );
    }
    let m: Value =
        serde_json::from_slice(&std::fs::read(ex.join("manifest.json")).unwrap()).unwrap();
    assert!(m.as_array().is_some_and(|a| a[0].get("Config").is_some()));
    println!("docker-archive/docker-image-spec: 1 passed, 0 failed");
}
