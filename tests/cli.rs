//! The image commands as a user meets them: output formats, names, removal semantics, exit
//! codes and error messages.

#![allow(clippy::unwrap_used, clippy::print_stdout)]

mod common;

use common::*;

fn rootfs_tar(dir: &std::path::Path, marker: &str) -> String {
    let r = dir.join(format!("r-{marker}"));
    std::fs::create_dir_all(r.join("etc")).unwrap();
    std::fs::write(r.join("etc/marker"), marker).unwrap();
    gnu_tar(&r, &dir.join(format!("{marker}.tar")))
        .display()
        .to_string()
}

#[test]
fn images_tag_rmi_and_prune_behave_like_docker() {
    if !require(is_root(), "root (import unpacks with owners)") {
        return;
    }
    let t = tempdir();
    let root = t.path().join("store");
    let a = rootfs_tar(t.path(), "a");
    let id = hoist_ok(
        &root,
        &[
            "import",
            &a,
            "app:1",
            "-c",
            "ENV A=1",
            "-c",
            "CMD [\"/bin/true\"]",
        ],
    )
    .trim()
    .to_string();
    assert!(
        id.starts_with("sha256:") && id.len() == 71,
        "import prints the image ID: {id}"
    );
    hoist_ok(&root, &["tag", "app:1", "localhost:5000/team/app:v2"]);
    let table = hoist_ok(&root, &["images"]);
    let lines: Vec<&str> = table.lines().collect();
    assert!(
        lines[0].starts_with("REPOSITORY")
            && lines[0].contains("TAG")
            && lines[0].contains("IMAGE ID")
            && lines[0].contains("CREATED")
            && lines[0].ends_with("SIZE"),
        "{table}"
    );
    assert_eq!(lines.len(), 3, "one row per name:\n{table}");
    let short = &id[7..19];
    assert!(
        table.contains("localhost:5000/team/app") && table.contains("v2") && table.contains(short),
        "{table}"
    );
    let json: Vec<serde_json::Value> = hoist_ok(&root, &["images", "--format", "json"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        json.iter()
            .any(|j| j["Repository"] == "app" && j["Tag"] == "1" && j["ID"] == short)
    );
    assert_eq!(
        hoist_ok(&root, &["images", "-q"])
            .lines()
            .collect::<Vec<_>>(),
        [short, short]
    );
    let insp: serde_json::Value =
        serde_json::from_str(&hoist_ok(&root, &["inspect", short])).unwrap();
    assert_eq!(insp[0]["Id"], id.as_str());
    assert_eq!(insp[0]["Config"]["Env"], serde_json::json!(["A=1"]));
    assert_eq!(insp[0]["Config"]["Cmd"], serde_json::json!(["/bin/true"]));
    let hist = hoist_ok(&root, &["history", "app:1"]);
    assert!(
        hist.lines().nth(1).unwrap().starts_with(short)
            && hist.contains(&format!("Imported from {a}")),
        "{hist}"
    );

    // By ID with two names: refused without -f.
    let out = hoist(&root, &["rmi", short]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("several names"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // By name: only that name goes, the image stays.
    let blobs_before = std::fs::read_dir(root.join("blobs/sha256"))
        .unwrap()
        .count();
    assert_eq!(hoist_ok(&root, &["rmi", "app:1"]).trim(), "Untagged: app:1");
    assert_eq!(
        std::fs::read_dir(root.join("blobs/sha256"))
            .unwrap()
            .count(),
        blobs_before
    );
    // The last name: the image and its content go.
    let out = hoist_ok(&root, &["rmi", "localhost:5000/team/app:v2"]);
    assert!(
        out.contains("Untagged: localhost:5000/team/app:v2")
            && out.contains(&format!("Deleted: {id}")),
        "{out}"
    );
    assert_eq!(
        std::fs::read_dir(root.join("blobs/sha256"))
            .unwrap()
            .count(),
        0,
        "content of a deleted image left behind"
    );
    assert_eq!(
        std::fs::read_dir(root.join("snapshots")).unwrap().count(),
        0,
        "snapshot of a deleted image left behind"
    );

    // A retag leaves the old image dangling (<none>), and prune removes it.
    let b = rootfs_tar(t.path(), "b");
    hoist_ok(&root, &["import", &a, "x:1"]);
    hoist_ok(&root, &["import", &b, "x:1"]);
    let table = hoist_ok(&root, &["images"]);
    assert!(
        table.lines().any(|l| l.starts_with("<none>")),
        "the replaced image is dangling:\n{table}"
    );
    let out = hoist_ok(&root, &["prune"]);
    assert!(
        out.contains("Total reclaimed space:") && out.contains("Deleted: sha256:"),
        "{out}"
    );
    assert!(!hoist_ok(&root, &["images"]).contains("<none>"));
    assert_eq!(hoist_ok(&root, &["images", "-q"]).lines().count(), 1);
}

#[test]
fn errors_name_the_object_and_exit_codes_follow_the_convention() {
    let t = tempdir();
    let root = t.path().join("store");
    let out = hoist(&root, &["inspect", "nosuch:tag"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("`nosuch:tag`") && err.contains("hint:"),
        "{err}"
    );
    let out = hoist(&root, &["load", "-i", "/nonexistent/archive.tar"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/archive.tar"));
    let out = hoist(&root, &["tag", "a", "b", "c"]);
    assert_eq!(out.status.code(), Some(2), "usage errors exit 2");
    let out = hoist(&root, &["frobnicate"]);
    assert_eq!(out.status.code(), Some(2));
    let out = hoist(&root, &["import", "/dev/null", "Bad:Name"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Bad:Name"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let garbage = t.path().join("garbage.tar");
    std::fs::write(
        &garbage,
        b"definitely not a tar archive, not even close........",
    )
    .unwrap();
    let out = hoist(&root, &["load", "-i", garbage.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("garbage.tar"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn save_to_a_failing_destination_leaves_no_partial_file() {
    let t = tempdir();
    let root = t.path().join("store");
    let out = hoist(
        &root,
        &[
            "save",
            "-o",
            t.path().join("x.tar").to_str().unwrap(),
            "missing:1",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        std::fs::read_dir(t.path())
            .unwrap()
            .filter(|e| e.as_ref().unwrap().file_name() != "store")
            .count(),
        0,
        "a partial archive was left"
    );
}

#[test]
fn output_into_a_device_a_fifo_or_a_symlink_keeps_it() {
    if !require(is_root(), "root (mknod)") {
        return;
    }
    let t = tempdir();
    let root = t.path().join("store");
    let a = rootfs_tar(t.path(), "dev");
    hoist_ok(&root, &["import", &a, "out:1"]);
    // A character device like /dev/null: written into, never replaced.
    let null = t.path().join("null");
    rustix::fs::mknodat(
        rustix::fs::CWD,
        &null,
        rustix::fs::FileType::CharacterDevice,
        rustix::fs::Mode::from_raw_mode(0o666),
        rustix::fs::makedev(1, 3),
    )
    .unwrap();
    hoist_ok(&root, &["save", "-o", null.to_str().unwrap(), "out:1"]);
    hoist_ok(&root, &["export", "out:1", "-o", null.to_str().unwrap()]);
    use std::os::unix::fs::FileTypeExt;
    assert!(
        std::fs::symlink_metadata(&null)
            .unwrap()
            .file_type()
            .is_char_device(),
        "the device was replaced"
    );
    // A FIFO: the archive streams through it.
    let fifo = t.path().join("fifo");
    rustix::fs::mknodat(
        rustix::fs::CWD,
        &fifo,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o644),
        0,
    )
    .unwrap();
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || tar_tree(std::fs::File::open(fifo).unwrap()))
    };
    hoist_ok(&root, &["export", "out:1", "-o", fifo.to_str().unwrap()]);
    assert!(reader.join().unwrap().contains_key("etc/marker"));
    assert!(
        std::fs::symlink_metadata(&fifo)
            .unwrap()
            .file_type()
            .is_fifo()
    );
    // A symlink: the file it names gets the archive; the link stays.
    let real = t.path().join("real.tar");
    std::fs::write(&real, b"old").unwrap();
    let link = t.path().join("link.tar");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    hoist_ok(&root, &["save", "-o", link.to_str().unwrap(), "out:1"]);
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert!(std::fs::metadata(&real).unwrap().len() > 1024);
}
