//! The reverse of apply: changes made through a real overlayfs mount are diffed from its upper
//! dir into a layer (whiteouts, opaque dirs, xattrs, hard links), applied as a new snapshot, and
//! the stacked result must equal what the overlay mount showed.

#![allow(clippy::unwrap_used, clippy::print_stdout)]

mod common;

use std::io::Read;
use std::process::Command;

use common::*;

fn base_layer() -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut add = |path: &str, data: &[u8], mode: u32, kind: tar::EntryType| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_size(data.len() as u64);
        h.set_mtime(1_600_000_000);
        h.set_cksum();
        b.append_data(&mut h, path, data).unwrap();
    };
    add("etc/", b"", 0o755, tar::EntryType::Directory);
    add("etc/keep", b"keep\n", 0o644, tar::EntryType::Regular);
    add("etc/remove-me", b"bye\n", 0o644, tar::EntryType::Regular);
    add("etc/chmod-me", b"mode\n", 0o644, tar::EntryType::Regular);
    add("old/", b"", 0o755, tar::EntryType::Directory);
    add("old/a", b"a\n", 0o644, tar::EntryType::Regular);
    add("replace/", b"", 0o755, tar::EntryType::Directory);
    add("replace/stale", b"stale\n", 0o644, tar::EntryType::Regular);
    add("usr/bin/", b"", 0o755, tar::EntryType::Directory);
    add(
        "usr/bin/tool",
        b"#!/bin/sh\n",
        0o755,
        tar::EntryType::Regular,
    );
    b.into_inner().unwrap()
}

/// A VFS_CAP_REVISION_2 `security.capability` value granting cap_net_bind_service (bit 10),
/// effective.
fn cap_net_bind_service() -> Vec<u8> {
    let mut v = Vec::new();
    for word in [0x0200_0001u32, 1 << 10, 0, 0, 0] {
        v.extend_from_slice(&word.to_le_bytes());
    }
    v
}

#[test]
fn overlay_upper_dir_diff_round_trips() {
    if !require(
        is_root(),
        "root (overlay mounts, whiteout devices, security xattrs)",
    ) {
        return;
    }
    let t = tempdir();
    let store = store::Store::open(t.path().join("store")).unwrap();
    let base = base_layer();
    let d1 = oci::Digest::of(&base);
    let snap1 = store
        .snapshots()
        .create(&d1, &[], &base[..], Some(&d1), "base")
        .unwrap();

    let (upper, work, mnt) = (
        t.path().join("upper"),
        t.path().join("work"),
        t.path().join("mnt"),
    );
    for d in [&upper, &work, &mnt] {
        std::fs::create_dir(d).unwrap();
    }
    run_ok(
        Command::new("mount")
            .args(["-t", "overlay", "overlay", "-o"])
            .arg(format!(
                "lowerdir={},upperdir={},workdir={}",
                snap1.display(),
                upper.display(),
                work.display()
            ))
            .arg(&mnt),
    );
    let changes = (|| -> std::io::Result<()> {
        std::fs::remove_file(mnt.join("etc/remove-me"))?;
        std::fs::set_permissions(
            mnt.join("etc/chmod-me"),
            std::os::unix::fs::PermissionsExt::from_mode(0o600),
        )?;
        std::fs::remove_dir_all(mnt.join("old"))?;
        std::fs::remove_dir_all(mnt.join("replace"))?;
        std::fs::create_dir(mnt.join("replace"))?;
        std::fs::write(mnt.join("replace/fresh"), "fresh\n")?;
        std::fs::write(mnt.join("usr/bin/ping"), "#!/bin/sh\necho pong\n")?;
        rustix::fs::setxattr(
            mnt.join("usr/bin/ping"),
            "security.capability",
            &cap_net_bind_service(),
            rustix::fs::XattrFlags::empty(),
        )?;
        std::fs::write(mnt.join("etc/new"), "new\n")?;
        std::fs::hard_link(mnt.join("etc/new"), mnt.join("etc/new-link"))?;
        std::os::unix::fs::symlink("new", mnt.join("etc/new-sym"))?;
        Ok(())
    })();
    let merged = dir_tree(&mnt);
    run_ok(Command::new("umount").arg(&mnt));
    changes.unwrap();

    let layer = store::flatten::write_diff(&upper, Vec::new(), None, None).unwrap();
    // The diff speaks overlay's changes in tar's terms.
    let mut names = Vec::new();
    let mut cap = None;
    for e in tar::Archive::new(&layer[..]).entries().unwrap() {
        let mut e = e.unwrap();
        let p = String::from_utf8_lossy(&e.path_bytes()).into_owned();
        if p == "usr/bin/ping" {
            for x in e.pax_extensions().unwrap().unwrap() {
                let x = x.unwrap();
                if x.key().unwrap() == "SCHILY.xattr.security.capability" {
                    cap = Some(x.value_bytes().to_vec());
                }
            }
            let mut s = String::new();
            e.read_to_string(&mut s).unwrap();
        }
        names.push(p);
    }
    for want in [
        "etc/.wh.remove-me",
        ".wh.old",
        "replace/",
        "replace/.wh..wh..opq",
        "etc/new",
        "etc/new-link",
        "usr/bin/ping",
    ] {
        assert!(
            names.iter().any(|n| n == want),
            "diff lacks `{want}`: {names:?}"
        );
    }
    assert!(
        !names.iter().any(|n| n.contains("trusted.overlay")),
        "overlay internals leaked"
    );
    assert_eq!(
        cap.as_deref(),
        Some(&cap_net_bind_service()[..]),
        "security.capability not carried"
    );
    // Deterministic: the same upper dir gives the same bytes.
    assert_eq!(
        store::flatten::write_diff(&upper, Vec::new(), None, None).unwrap(),
        layer
    );

    // Applied on top of the base, the stack equals what the mount showed.
    let d2 = oci::Digest::of(&layer);
    let chain2 = oci::Digest::of(format!("{d1} {d2}").as_bytes());
    let snap2 = store
        .snapshots()
        .create(
            &chain2,
            std::slice::from_ref(&snap1),
            &layer[..],
            Some(&d2),
            "diff",
        )
        .unwrap();
    let flat =
        store::flatten::write_flattened(&[snap2.clone(), snap1.clone()], Vec::new(), None).unwrap();
    assert_same_tree(
        "diff applied over the base vs the overlay mount",
        &merged,
        &tar_tree(&flat[..]),
    );
    let mut buf = vec![0u8; 64];
    let n =
        rustix::fs::getxattr(snap2.join("usr/bin/ping"), "security.capability", &mut buf).unwrap();
    assert_eq!(
        &buf[..n],
        &cap_net_bind_service()[..],
        "xattr not applied to the snapshot"
    );
}
