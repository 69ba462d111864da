//! COPY/ADD on real directory trees built in temp dirs. The tests run as root (owners are
//! checked). Each test names the BuildKit behaviour it pins.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::Path;

use tempfile::TempDir;

use super::apply::set_times;
use super::paths::{clean, normalize_dest, normalize_source};
use super::*;

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

fn tmp() -> TempDir {
    tempfile::tempdir().expect("temp dir")
}

/// Writes `content` at `rel` below `root`, creating parents.
fn write(root: &Path, rel: &str, content: &str) {
    let p = root.join(rel);
    fs::create_dir_all(p.parent().expect("has a parent")).expect("mkdir");
    fs::write(&p, content).expect("write");
}

fn mkdir(root: &Path, rel: &str) {
    fs::create_dir_all(root.join(rel)).expect("mkdir");
}

fn link(root: &Path, rel: &str, target: &str) {
    let p = root.join(rel);
    fs::create_dir_all(p.parent().expect("has a parent")).expect("mkdir");
    symlink(target, p).expect("symlink");
}

fn chmod(root: &Path, rel: &str, mode: u32) {
    fs::set_permissions(root.join(rel), fs::Permissions::from_mode(mode)).expect("chmod");
}

fn read(root: &Path, rel: &str) -> String {
    fs::read_to_string(root.join(rel)).unwrap_or_else(|e| panic!("read {rel}: {e}"))
}

fn exists(root: &Path, rel: &str) -> bool {
    fs::symlink_metadata(root.join(rel)).is_ok()
}

fn meta(root: &Path, rel: &str) -> fs::Metadata {
    fs::symlink_metadata(root.join(rel)).unwrap_or_else(|e| panic!("stat {rel}: {e}"))
}

fn perm(root: &Path, rel: &str) -> u32 {
    meta(root, rel).mode() & 0o7777
}

fn owner(root: &Path, rel: &str) -> (u32, u32) {
    let m = meta(root, rel);
    (m.uid(), m.gid())
}

fn copy(sources: &[&str], dest: &str) -> CopyRequest {
    CopyRequest {
        sources: sources.iter().map(|s| s.to_string()).collect(),
        dest: dest.to_string(),
        workdir: "/".to_string(),
        ..CopyRequest::default()
    }
}

fn run(src: &Source<'_>, req: &CopyRequest, root: &Path) -> Result<CopyStats, CopyError> {
    let sel = select(src, req)?;
    apply(src, &sel, req, root)
}

fn digest(src: &Source<'_>, req: &CopyRequest) -> oci::Digest {
    select(src, req)
        .expect("select")
        .digest(src, &DigestMemo::new())
        .expect("digest")
}

/// Appends a tar entry with a raw (unvalidated) name and link name.
fn tar_entry(
    b: &mut tar::Builder<Vec<u8>>,
    name: &str,
    kind: tar::EntryType,
    link: &str,
    data: &[u8],
    mode: u32,
    uid: u64,
) {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(kind);
    h.set_size(data.len() as u64);
    h.set_mode(mode);
    h.set_uid(uid);
    h.set_gid(uid + 1);
    h.set_mtime(1_600_000_000);
    let u = h.as_ustar_mut().expect("ustar header");
    u.name[..name.len()].copy_from_slice(name.as_bytes());
    u.linkname[..link.len()].copy_from_slice(link.as_bytes());
    h.set_cksum();
    b.append(&h, data).expect("append");
}

fn tar_of(entries: impl FnOnce(&mut tar::Builder<Vec<u8>>)) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    entries(&mut b);
    b.into_inner().expect("finish tar")
}

// ---------------------------------------------------------------------------------------------
// 1. Source paths
// ---------------------------------------------------------------------------------------------

#[test]
fn paths_clean_like_buildkit() {
    assert_eq!(clean("a//b/./c/.."), "a/b");
    assert_eq!(clean("/../x"), "/x");
    assert_eq!(clean("../x"), "../x");
    assert_eq!(normalize_source("../x"), "/x");
    assert_eq!(normalize_source("./dir/"), "/dir");
    assert_eq!(normalize_source("."), "/");
    assert_eq!(normalize_dest(".", "/app"), "/app/");
    assert_eq!(normalize_dest("sub", "/app"), "/app/sub");
    assert_eq!(normalize_dest("sub/", "app"), "/app/sub/");
    assert_eq!(normalize_dest("sub/.", "/app"), "/app/sub/.");
    assert_eq!(normalize_dest("../../x", "/app"), "/x");
    assert_eq!(normalize_dest("/abs//", "/app"), "/abs/");
    assert_eq!(normalize_dest("/", "/app"), "/");
}

#[test]
fn dotdot_and_leading_slash_stay_in_the_source_root() {
    let ctx = tmp();
    let img = tmp();
    write(ctx.path(), "x", "x");
    write(ctx.path(), "d/y", "y");
    let src = Source::context(ctx.path(), None);
    run(&src, &copy(&["../x"], "/a/"), img.path()).unwrap();
    run(&src, &copy(&["/x"], "/b"), img.path()).unwrap();
    run(&src, &copy(&["d/../../../d/y"], "/c"), img.path()).unwrap();
    assert_eq!(read(img.path(), "a/x"), "x");
    assert_eq!(read(img.path(), "b"), "x");
    assert_eq!(read(img.path(), "c"), "y");
}

#[test]
fn missing_source_is_an_error_naming_it() {
    let ctx = tmp();
    let img = tmp();
    let src = Source::context(ctx.path(), None);
    let err = run(&src, &copy(&["./nope.txt"], "/"), img.path()).unwrap_err();
    assert!(
        matches!(&err, CopyError::NotFound { source_path, ignored: false } if source_path == "./nope.txt"),
        "{err:?}"
    );
    assert_eq!(err.to_string(), "`./nope.txt`: not found");
}

#[test]
fn source_symlinks_resolve_within_the_root() {
    let top = tmp();
    let ctx = top.path().join("ctx");
    let img = tmp();
    write(top.path(), "secret", "host secret");
    write(&ctx, "real/f.txt", "f");
    link(&ctx, "abs", "/real");
    link(&ctx, "up", "../../../real");
    link(&ctx, "leaf.txt", "/real/f.txt");
    link(&ctx, "escape", "../secret");
    let src = Source::context(&ctx, None);
    // An absolute target is relative to the context; `..` stops at its root.
    run(&src, &copy(&["abs/f.txt"], "/1/"), img.path()).unwrap();
    run(&src, &copy(&["up/f.txt"], "/2/"), img.path()).unwrap();
    assert_eq!(read(img.path(), "1/f.txt"), "f");
    assert_eq!(read(img.path(), "2/f.txt"), "f");
    // The last component is followed too, and the copy keeps the link's name.
    run(&src, &copy(&["leaf.txt"], "/3/"), img.path()).unwrap();
    assert!(meta(img.path(), "3/leaf.txt").is_file());
    assert_eq!(read(img.path(), "3/leaf.txt"), "f");
    // Nothing outside the context is reachable.
    let err = run(&src, &copy(&["escape"], "/4"), img.path()).unwrap_err();
    assert!(matches!(err, CopyError::NotFound { .. }), "{err:?}");
    assert!(!exists(img.path(), "4"));
    // A directory reached through a link copies the target's contents.
    run(&src, &copy(&["abs"], "/5"), img.path()).unwrap();
    assert_eq!(read(img.path(), "5/f.txt"), "f");
}

#[test]
fn symlinks_inside_directories_are_copied_as_links() {
    let ctx = tmp();
    let img = tmp();
    write(ctx.path(), "dir/f", "f");
    link(ctx.path(), "dir/rel", "../../nowhere");
    link(ctx.path(), "dir/abs", "/etc/passwd");
    let src = Source::context(ctx.path(), None);
    let stats = run(&src, &copy(&["dir"], "/d"), img.path()).unwrap();
    assert_eq!(stats.symlinks, 2);
    assert_eq!(
        fs::read_link(img.path().join("d/rel")).unwrap(),
        Path::new("../../nowhere")
    );
    assert_eq!(
        fs::read_link(img.path().join("d/abs")).unwrap(),
        Path::new("/etc/passwd")
    );
}

#[test]
fn a_named_symlink_is_copied_as_a_link_when_not_following() {
    let ctx = tmp();
    let img = tmp();
    write(ctx.path(), "f", "f");
    link(ctx.path(), "l", "f");
    let src = Source {
        follow_root_symlinks: false,
        ..Source::context(ctx.path(), None)
    };
    run(&src, &copy(&["l"], "/x"), img.path()).unwrap();
    assert_eq!(fs::read_link(img.path().join("x")).unwrap(), Path::new("f"));
}

// ---------------------------------------------------------------------------------------------
// 2. Wildcards, .dockerignore, --exclude
// ---------------------------------------------------------------------------------------------

#[test]
fn wildcards_use_go_match_per_path() {
    let ctx = tmp();
    let img = tmp();
    for f in [
        "a1.txt", "a2.txt", "b.txt", "d1/x.md", "d2/y.md", "d2/z.txt", "x*b",
    ] {
        write(ctx.path(), f, f);
    }
    let src = Source::context(ctx.path(), None);
    let names = |pattern: &str| -> Vec<String> {
        select(&src, &copy(&[pattern], "/o/"))
            .unwrap()
            .entries()
            .filter(|e| e.kind == EntryKind::File)
            .map(|e| slash_of(&e.source))
            .collect()
    };
    assert_eq!(names("a?.txt"), ["a1.txt", "a2.txt"]);
    assert_eq!(names("[ab]*.txt"), ["a1.txt", "a2.txt", "b.txt"]);
    assert_eq!(names("[^a]*.txt"), ["b.txt"]);
    assert_eq!(names("d*/*.md"), ["d1/x.md", "d2/y.md"]);
    assert_eq!(names("/./d2/*"), ["d2/y.md", "d2/z.txt"]);
    // `\*` is a literal star inside a wildcard pattern...
    assert_eq!(names("x\\*[b]"), ["x*b"]);
    // ...but a path without wildcards is taken as written, backslash included.
    assert!(matches!(
        select(&src, &copy(&["x\\*b"], "/o/")),
        Err(CopyError::NotFound { .. })
    ));
    // A matched directory is copied whole (its contents), not searched.
    let sel = select(&src, &copy(&["d?"], "/o/")).unwrap();
    assert_eq!(sel.len(), 2);
    run(&src, &copy(&["d?"], "/o/"), img.path()).unwrap();
    assert_eq!(read(img.path(), "o/x.md"), "d1/x.md");
    assert_eq!(read(img.path(), "o/z.txt"), "d2/z.txt");
}

fn slash_of(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

#[test]
fn a_wildcard_matching_nothing_copies_nothing() {
    let ctx = tmp();
    let img = tmp();
    write(ctx.path(), "dir/a.txt", "a");
    let src = Source::context(ctx.path(), None);
    // BuildKit (AllowEmptyWildcard) succeeds and creates nothing, not even the destination.
    let sel = select(&src, &copy(&["dir/*.md"], "/out/")).unwrap();
    assert!(sel.is_empty());
    apply(&src, &sel, &copy(&["dir/*.md"], "/out/"), img.path()).unwrap();
    assert!(!exists(img.path(), "out"));
    // The directory before the wildcard must exist, though.
    let err = select(&src, &copy(&["nodir/*.md"], "/out/")).unwrap_err();
    assert!(
        matches!(&err, CopyError::NotFound { source_path, .. } if source_path == "nodir/*.md"),
        "{err:?}"
    );
}

#[test]
fn dockerignore_hides_sources() {
    let ctx = tmp();
    let img = tmp();
    for f in [
        "secret.txt",
        "keep.txt",
        "logs/keep.log",
        "logs/other.log",
        "sub/a.tmp",
        "sub/b.txt",
    ] {
        write(ctx.path(), f, f);
    }
    let ignore =
        PatternMatcher::new(&["secret.txt", "logs", "!logs/keep.log", "**/*.tmp"]).unwrap();
    let src = Source::context(ctx.path(), Some(&ignore));
    let err = run(&src, &copy(&["secret.txt"], "/"), img.path()).unwrap_err();
    assert!(
        matches!(err, CopyError::NotFound { ignored: true, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains(".dockerignore"), "{err}");
    let names: Vec<String> = select(&src, &copy(&["*.txt"], "/"))
        .unwrap()
        .entries()
        .map(|e| slash_of(&e.source))
        .collect();
    assert_eq!(names, ["keep.txt"]);
    run(&src, &copy(&["."], "/all/"), img.path()).unwrap();
    assert!(exists(img.path(), "all/keep.txt"));
    assert!(exists(img.path(), "all/logs/keep.log"));
    assert!(!exists(img.path(), "all/secret.txt"));
    assert!(!exists(img.path(), "all/logs/other.log"));
    assert!(!exists(img.path(), "all/sub/a.tmp"));
    assert!(exists(img.path(), "all/sub/b.txt"));
    // An ignored directory with nothing re-included below it is absent.
    let ignore = PatternMatcher::new(&["logs", "!other"]).unwrap();
    let src = Source::context(ctx.path(), Some(&ignore));
    assert!(matches!(
        select(&src, &copy(&["logs"], "/")),
        Err(CopyError::NotFound { ignored: true, .. })
    ));
}

/// BuildKit's `testExcludedFilesOnCopy` tree and expectations.
#[test]
fn exclude_patterns_are_relative_to_the_copied_directory() {
    let ctx = tmp();
    for (f, c) in [
        ("dir1/file-101.png", "2"),
        ("dir1/file-102.txt", "3"),
        ("dir1/file-103.jpeg", "4"),
        ("dir2/file-201.pdf", "6"),
        ("dir2/file-202.jpeg", "7"),
        ("dir2/file-203.png", "8"),
        ("dir3/file-301.mp3", "9"),
        ("dir3/file-302.mpeg", "10"),
    ] {
        write(ctx.path(), f, c);
    }
    let src = Source::context(ctx.path(), None);
    let files = |sources: &[&str], exclude: &[&str]| -> Vec<String> {
        let img = tmp();
        let req = CopyRequest {
            exclude: exclude.iter().map(|s| s.to_string()).collect(),
            ..copy(sources, "/o/")
        };
        run(&src, &req, img.path()).unwrap();
        let mut out = Vec::new();
        collect(&img.path().join("o"), "", &mut out);
        out
    };
    assert_eq!(
        files(&["."], &["*/*.png", "*/*.jpeg"]),
        [
            "dir1/",
            "dir1/file-102.txt",
            "dir2/",
            "dir2/file-201.pdf",
            "dir3/",
            "dir3/file-301.mp3",
            "dir3/file-302.mpeg"
        ]
    );
    assert_eq!(files(&["dir3/"], &["*.mp3"]), ["file-302.mpeg"]);
    assert_eq!(
        files(&["dir*"], &["*.mp3", "*.jpeg", "*.png", "*.pdf", "*.txt"]),
        ["file-302.mpeg"]
    );
    assert!(files(&["dir*"], &["*"]).is_empty());
    // A re-included path brings its (otherwise excluded) directory along.
    assert_eq!(
        files(&["."], &["dir1", "!dir1/file-102.txt", "dir2", "dir3"]),
        ["dir1/", "dir1/file-102.txt"]
    );
    // A source matched by the wildcard itself is never excluded (moby/buildkit#5489).
    assert_eq!(
        files(&["dir1/*"], &["*.png"]),
        ["file-101.png", "file-102.txt", "file-103.jpeg"]
    );
}

/// Lists a tree: directories with a trailing `/`, sorted.
fn collect(dir: &Path, prefix: &str, out: &mut Vec<String>) {
    let Ok(rd) = fs::read_dir(dir) else { return };
    let mut names: Vec<_> = rd.map(|e| e.unwrap().file_name()).collect();
    names.sort();
    for name in names {
        let rel = format!("{prefix}{}", name.to_string_lossy());
        let p = dir.join(&name);
        if fs::symlink_metadata(&p).unwrap().is_dir() {
            out.push(format!("{rel}/"));
            collect(&p, &format!("{rel}/"), out);
        } else {
            out.push(rel);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 3. Directory sources and --parents
// ---------------------------------------------------------------------------------------------

#[test]
fn a_directory_source_copies_its_contents() {
    let ctx = tmp();
    let img = tmp();
    write(ctx.path(), "dir/f", "f");
    write(ctx.path(), "dir/sub/g", "g");
    mkdir(img.path(), "existing");
    let src = Source::context(ctx.path(), None);
    run(&src, &copy(&["dir"], "/new"), img.path()).unwrap();
    run(&src, &copy(&["dir/"], "/existing"), img.path()).unwrap();
    for base in ["new", "existing"] {
        assert_eq!(read(img.path(), &format!("{base}/f")), "f");
        assert_eq!(read(img.path(), &format!("{base}/sub/g")), "g");
        assert!(!exists(img.path(), &format!("{base}/dir")));
    }
}

/// BuildKit's `testCopyParents` and `testCopyRelativeParents`.
#[test]
fn parents_keep_paths_and_honour_the_pivot() {
    let base = tmp();
    for d in [
        "test/a/b/c/d/e",
        "test/a/b2/c/d/e",
        "test/a/b/c2/d/e",
        "test/a/b/c2/d/e2",
    ] {
        mkdir(base.path(), d);
    }
    for f in [
        "test/a/b/c/d/foo",
        "test/a/b/c/d/e/bay",
        "test/a/b2/c/d/e/bar",
        "test/a/b/c2/d/e/baz",
        "test/a/b/c2/d/e2/baz",
    ] {
        write(base.path(), f, "");
    }
    let src = Source::rootfs(base.path());
    let parents = |sources: &[&str]| -> TempDir {
        let img = tmp();
        let req = CopyRequest {
            parents: true,
            ..copy(sources, "/out/")
        };
        run(&src, &req, img.path()).unwrap();
        img
    };
    let out = |img: &TempDir, rel: &str| exists(img.path(), &format!("out/{rel}"));

    let middle = parents(&["/test/a/b/./c/d"]);
    assert!(out(&middle, "c/d/e") && out(&middle, "c/d/foo"));
    assert!(!out(&middle, "a") && !out(&middle, "e"));
    let end = parents(&["/test/a/b/c/d/."]);
    assert!(out(&end, "test/a/b/c/d/e") && out(&end, "test/a/b/c/d/foo"));
    let start = parents(&["./test/a/b/c/d"]);
    assert!(out(&start, "test/a/b/c/d/e") && out(&start, "test/a/b/c/d/foo"));
    assert!(!out(&start, "test/a/b2"));
    let double = parents(&["/test/a/./b/./c"]);
    assert!(out(&double, "b/c/d/e") && out(&double, "b/c/d/foo"));
    let wildcard = parents(&["/test/a/./*/c"]);
    assert!(out(&wildcard, "b/c/d/e") && out(&wildcard, "b2/c/d/e/bar"));
    assert!(!out(&wildcard, "b/c2"));
    let doublewildcard = parents(&["/test/a/b*/./c/**/e"]);
    assert!(out(&doublewildcard, "c/d/e/bay") && out(&doublewildcard, "c/d/e/bar"));
    let inputs = parents(&["/test/a/b/c*/./d/**/baz", "/test/a/b*/./c/**/bar"]);
    assert!(out(&inputs, "d/e/baz") && out(&inputs, "d/e2/baz"));
    assert!(!out(&inputs, "d/e/bay"));
    assert!(out(&inputs, "c/d/e/bar"));

    // `COPY --parents foo1/foo2/ba* .` with WORKDIR /test.
    let ctx = tmp();
    write(ctx.path(), "foo1/foo2/bar", "testing");
    write(ctx.path(), "foo1/foo2/baz", "testing2");
    let img = tmp();
    let req = CopyRequest {
        parents: true,
        workdir: "/test".into(),
        ..copy(&["foo1/foo2/ba*"], ".")
    };
    run(&Source::context(ctx.path(), None), &req, img.path()).unwrap();
    assert_eq!(read(img.path(), "test/foo1/foo2/bar"), "testing");
    assert_eq!(read(img.path(), "test/foo1/foo2/baz"), "testing2");

    // Without wildcards, the named path must exist.
    let req = CopyRequest {
        parents: true,
        ..copy(&["test/a/./nope"], "/out/")
    };
    assert!(matches!(
        select(&src, &req),
        Err(CopyError::NotFound { .. })
    ));
}

// ---------------------------------------------------------------------------------------------
// 4. Destinations
// ---------------------------------------------------------------------------------------------

#[test]
fn a_relative_destination_joins_the_workdir() {
    let ctx = tmp();
    let img = tmp();
    write(ctx.path(), "a", "a");
    write(ctx.path(), "b", "b");
    let src = Source::context(ctx.path(), None);
    let req = |sources: &[&str], dest: &str| CopyRequest {
        workdir: "/app".into(),
        ..copy(sources, dest)
    };
    run(&src, &req(&["a"], "sub/"), img.path()).unwrap();
    assert_eq!(read(img.path(), "app/sub/a"), "a");
    // `.` is the working directory as a directory, even with several sources.
    run(&src, &req(&["a", "b"], "."), img.path()).unwrap();
    assert_eq!(read(img.path(), "app/a"), "a");
    assert_eq!(read(img.path(), "app/b"), "b");
    run(&src, &req(&["a"], "named"), img.path()).unwrap();
    assert_eq!(read(img.path(), "app/named"), "a");
}

#[test]
fn several_files_need_a_directory_destination() {
    let ctx = tmp();
    let img = tmp();
    write(ctx.path(), "a.txt", "a");
    write(ctx.path(), "b.txt", "b");
    write(ctx.path(), "d1/x", "x");
    write(ctx.path(), "d2/y", "y");
    mkdir(img.path(), "existing");
    let src = Source::context(ctx.path(), None);
    for sources in [&["a.txt", "b.txt"][..], &["*.txt"][..]] {
        let err = run(&src, &copy(sources, "/dest"), img.path()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "When using COPY with more than one source file, the destination must be a directory and end with a /"
        );
        assert!(!exists(img.path(), "dest"), "nothing is written first");
    }
    run(&src, &copy(&["*.txt"], "/dest/"), img.path()).unwrap();
    assert_eq!(read(img.path(), "dest/b.txt"), "b");
    run(&src, &copy(&["a.txt", "b.txt"], "/existing"), img.path()).unwrap();
    assert_eq!(read(img.path(), "existing/a.txt"), "a");
    // A single match is written at the destination.
    run(&src, &copy(&["a*.txt"], "/single"), img.path()).unwrap();
    assert_eq!(read(img.path(), "single"), "a");
    // Directories merge into a new destination, as in BuildKit.
    run(&src, &copy(&["d1", "d2"], "/merged"), img.path()).unwrap();
    assert_eq!(read(img.path(), "merged/x"), "x");
    assert_eq!(read(img.path(), "merged/y"), "y");
    // ADD says ADD.
    let req = CopyRequest {
        unpack_archives: true,
        ..copy(&["a.txt", "b.txt"], "/dest2")
    };
    assert!(
        run(&src, &req, img.path())
            .unwrap_err()
            .to_string()
            .starts_with("When using ADD")
    );
}

#[test]
fn a_file_lands_at_or_into_the_destination() {
    let ctx = tmp();
    let img = tmp();
    write(ctx.path(), "a.txt", "new");
    write(img.path(), "etc/old", "old");
    mkdir(img.path(), "dir");
    let src = Source::context(ctx.path(), None);
    run(&src, &copy(&["a.txt"], "/etc/old"), img.path()).unwrap();
    assert_eq!(read(img.path(), "etc/old"), "new");
    run(&src, &copy(&["a.txt"], "/dir"), img.path()).unwrap();
    assert_eq!(read(img.path(), "dir/a.txt"), "new");
    run(&src, &copy(&["a.txt"], "/fresh"), img.path()).unwrap();
    assert!(meta(img.path(), "fresh").is_file());
}

#[test]
fn destination_symlinks_stay_inside_the_image_root() {
    let top = tmp();
    let root = top.path().join("root");
    let ctx = tmp();
    write(ctx.path(), "a.txt", "a");
    mkdir(&root, "opt");
    link(&root, "usr/local", "/opt");
    link(&root, "up", "../../../..");
    link(&root, "file-link", "/etc/target");
    mkdir(&root, "etc");
    let src = Source::context(ctx.path(), None);
    run(&src, &copy(&["a.txt"], "/usr/local/bin/"), &root).unwrap();
    assert_eq!(read(&root, "opt/bin/a.txt"), "a");
    run(&src, &copy(&["a.txt"], "/up/escaped"), &root).unwrap();
    assert_eq!(read(&root, "escaped"), "a");
    assert!(!exists(top.path(), "escaped"));
    // A link at the destination itself is followed (inside the root) and its target written.
    run(&src, &copy(&["a.txt"], "/file-link"), &root).unwrap();
    assert_eq!(read(&root, "etc/target"), "a");
    assert!(meta(&root, "file-link").file_type().is_symlink());
    link(&root, "dangling", "/not/yet/there");
    run(&src, &copy(&["a.txt"], "/dangling"), &root).unwrap();
    assert_eq!(read(&root, "not/yet/there"), "a");
    assert_eq!(
        resolve_in_root(&root, "/up/../usr/local/x").unwrap(),
        root.join("opt/x")
    );
    link(&root, "loop", "/loop");
    assert!(matches!(
        resolve_in_root(&root, "/loop/x"),
        Err(CopyError::SymlinkLoop { .. })
    ));
}

#[test]
fn created_parents_are_0755_and_get_the_chown_owner() {
    let ctx = tmp();
    let img = tmp();
    write(ctx.path(), "a.txt", "a");
    write(ctx.path(), "dir/b.txt", "b");
    mkdir(img.path(), "existing");
    let src = Source::context(ctx.path(), None);
    let req = CopyRequest {
        chown: Some((1000, 1001)),
        ..copy(&["a.txt"], "/existing/p/q/")
    };
    run(&src, &req, img.path()).unwrap();
    for d in ["existing/p", "existing/p/q"] {
        assert_eq!(perm(img.path(), d), 0o755, "{d}");
        assert_eq!(owner(img.path(), d), (1000, 1001), "{d}");
    }
    assert_eq!(owner(img.path(), "existing"), (0, 0));
    assert_eq!(owner(img.path(), "existing/p/q/a.txt"), (1000, 1001));
    // Without --chown they belong to root; a copied directory's destination is made the
    // same way (0755, not the source directory's mode).
    chmod(ctx.path(), "dir", 0o700);
    run(&src, &copy(&["dir"], "/x/y"), img.path()).unwrap();
    for d in ["x", "x/y"] {
        assert_eq!(perm(img.path(), d), 0o755, "{d}");
        assert_eq!(owner(img.path(), d), (0, 0), "{d}");
    }
}

// ---------------------------------------------------------------------------------------------
// 5. Metadata
// ---------------------------------------------------------------------------------------------

#[test]
fn owners_reset_for_the_context_and_kept_for_a_rootfs() {
    let ctx = tmp();
    let img = tmp();
    write(ctx.path(), "d/f", "f");
    std::os::unix::fs::lchown(ctx.path().join("d/f"), Some(1234), Some(5678)).unwrap();
    std::os::unix::fs::lchown(ctx.path().join("d"), Some(1234), Some(5678)).unwrap();
    mkdir(ctx.path(), "d/sub");
    std::os::unix::fs::lchown(ctx.path().join("d/sub"), Some(42), Some(43)).unwrap();
    run(
        &Source::context(ctx.path(), None),
        &copy(&["d"], "/c"),
        img.path(),
    )
    .unwrap();
    assert_eq!(owner(img.path(), "c/f"), (0, 0));
    assert_eq!(owner(img.path(), "c/sub"), (0, 0));
    run(&Source::rootfs(ctx.path()), &copy(&["d"], "/r"), img.path()).unwrap();
    assert_eq!(owner(img.path(), "r/f"), (1234, 5678));
    assert_eq!(owner(img.path(), "r/sub"), (42, 43));
    let req = CopyRequest {
        chown: Some((7, 8)),
        ..copy(&["d"], "/o")
    };
    run(&Source::rootfs(ctx.path()), &req, img.path()).unwrap();
    assert_eq!(owner(img.path(), "o/f"), (7, 8));
    assert_eq!(owner(img.path(), "o/sub"), (7, 8));
}

#[test]
fn chmod_applies_to_copied_files_and_directories() {
    let ctx = tmp();
    let img = tmp();
    write(ctx.path(), "d/f", "f");
    write(ctx.path(), "d/sub/g", "g");
    write(ctx.path(), "run.sh", "#!/bin/sh");
    link(ctx.path(), "d/l", "f");
    let src = Source::context(ctx.path(), None);
    let req = CopyRequest {
        chmod: Some(0o740),
        ..copy(&["d"], "/d")
    };
    run(&src, &req, img.path()).unwrap();
    assert_eq!(perm(img.path(), "d/f"), 0o740);
    assert_eq!(perm(img.path(), "d/sub"), 0o740);
    assert_eq!(perm(img.path(), "d/sub/g"), 0o740);
    assert_eq!(
        perm(img.path(), "d"),
        0o755,
        "the destination is made by MkdirAll"
    );
    assert!(meta(img.path(), "d/l").file_type().is_symlink());
    let req = CopyRequest {
        chmod: Some(0o4755),
        chown: Some((5, 5)),
        ..copy(&["run.sh"], "/bin/")
    };
    run(&src, &req, img.path()).unwrap();
    assert_eq!(
        perm(img.path(), "bin/run.sh"),
        0o4755,
        "setuid survives the chown"
    );
}

#[test]
fn modes_and_times_are_kept() {
    let ctx = tmp();
    let img = tmp();
    write(ctx.path(), "d/f", "f");
    mkdir(ctx.path(), "d/sub");
    link(ctx.path(), "d/l", "f");
    chmod(ctx.path(), "d/f", 0o640);
    chmod(ctx.path(), "d/sub", 0o711);
    for (rel, sec) in [
        ("d/f", 1_000_000_000),
        ("d/sub", 1_100_000_000),
        ("d/l", 1_200_000_000),
    ] {
        set_times(&ctx.path().join(rel), (sec, 5), (sec, 500)).unwrap();
    }
    set_times(
        &ctx.path().join("d"),
        (1_300_000_000, 0),
        (1_300_000_000, 0),
    )
    .unwrap();
    run(
        &Source::context(ctx.path(), None),
        &copy(&["d"], "/x"),
        img.path(),
    )
    .unwrap();
    assert_eq!(perm(img.path(), "x/f"), 0o640);
    assert_eq!(perm(img.path(), "x/sub"), 0o711);
    for (rel, sec) in [
        ("x/f", 1_000_000_000),
        ("x/sub", 1_100_000_000),
        ("x/l", 1_200_000_000),
    ] {
        let m = meta(img.path(), rel);
        assert_eq!((m.mtime(), m.mtime_nsec()), (sec, 500), "{rel}");
    }
    assert_eq!(meta(img.path(), "x").mtime(), 1_300_000_000);
}

#[test]
fn hard_links_are_kept_within_a_source() {
    let ctx = tmp();
    let img = tmp();
    write(ctx.path(), "d/a", "same");
    fs::hard_link(ctx.path().join("d/a"), ctx.path().join("d/b")).unwrap();
    let stats = run(
        &Source::context(ctx.path(), None),
        &copy(&["d"], "/x"),
        img.path(),
    )
    .unwrap();
    assert_eq!((stats.files, stats.hardlinks), (1, 1));
    assert_eq!(meta(img.path(), "x/a").ino(), meta(img.path(), "x/b").ino());
    assert_eq!(read(img.path(), "x/b"), "same");
}

#[test]
fn existing_files_are_replaced_and_directories_merged() {
    let ctx = tmp();
    let img = tmp();
    write(ctx.path(), "d/f", "new");
    write(ctx.path(), "d/sub/n", "n");
    write(img.path(), "x/old", "old");
    write(img.path(), "x/f", "old f");
    write(img.path(), "x/sub/o", "o");
    let src = Source::context(ctx.path(), None);
    run(&src, &copy(&["d"], "/x"), img.path()).unwrap();
    assert_eq!(read(img.path(), "x/old"), "old");
    assert_eq!(read(img.path(), "x/f"), "new");
    assert_eq!(read(img.path(), "x/sub/o"), "o");
    assert_eq!(read(img.path(), "x/sub/n"), "n");
    // A file does not replace a directory, nor a directory a file.
    write(ctx.path(), "e/sub", "file now");
    assert!(matches!(
        run(&src, &copy(&["e"], "/x"), img.path()),
        Err(CopyError::ReplaceDirectory { .. })
    ));
    write(ctx.path(), "g/f/inner", "dir now");
    assert!(matches!(
        run(&src, &copy(&["g"], "/x"), img.path()),
        Err(CopyError::NotADirectory { .. })
    ));
}

#[test]
fn xattrs_are_copied_after_the_chown() {
    let ctx = tmp();
    let img = tmp();
    write(ctx.path(), "d/ping", "elf");
    let file = ctx.path().join("d/ping");
    // A version 2 file capability blob: cap_net_raw permitted, effective.
    let cap = [
        1, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ];
    let set = |name: &str, value: &[u8]| {
        rustix::fs::lsetxattr(&file, name, value, rustix::fs::XattrFlags::empty())
    };
    if let Err(e) = set("security.capability", &cap).and(set("trusted.hoist", b"1")) {
        eprintln!("skipping: the temp filesystem refuses xattrs ({e})");
        return;
    }
    let src = Source::context(ctx.path(), None);
    let req = CopyRequest {
        chown: Some((1000, 1000)),
        ..copy(&["d"], "/x")
    };
    let before = digest(&src, &req);
    run(&src, &req, img.path()).unwrap();
    let copied = img.path().join("x/ping");
    let mut value = [0u8; 64];
    let n = rustix::fs::lgetxattr(&copied, "security.capability", &mut value[..]).unwrap();
    assert_eq!(&value[..n], &cap);
    let n = rustix::fs::lgetxattr(&copied, "trusted.hoist", &mut value[..]).unwrap();
    assert_eq!(&value[..n], b"1");
    set("trusted.hoist", b"2").unwrap();
    assert_ne!(digest(&src, &req), before, "xattrs are part of the digest");
}

// ---------------------------------------------------------------------------------------------
// 6. ADD and archives
// ---------------------------------------------------------------------------------------------

fn sample_tar() -> Vec<u8> {
    tar_of(|b| {
        tar_entry(b, "dir/", tar::EntryType::Directory, "", b"", 0o750, 1234);
        tar_entry(
            b,
            "dir/file",
            tar::EntryType::Regular,
            "",
            b"content",
            0o640,
            1234,
        );
        tar_entry(
            b,
            "/abs/file",
            tar::EntryType::Regular,
            "",
            b"abs",
            0o644,
            0,
        );
        tar_entry(
            b,
            "dir/link",
            tar::EntryType::Symlink,
            "file",
            b"",
            0o777,
            1234,
        );
        tar_entry(
            b,
            "hard",
            tar::EntryType::Link,
            "dir/file",
            b"",
            0o640,
            1234,
        );
        tar_entry(
            b,
            "implied/parent/f",
            tar::EntryType::Regular,
            "",
            b"p",
            0o600,
            0,
        );
    })
}

#[test]
fn add_unpacks_tar_archives_whatever_their_compression() {
    let ctx = tmp();
    let img = tmp();
    let plain = sample_tar();
    let gzip = {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(&plain).unwrap();
        e.finish().unwrap()
    };
    let bzip = {
        let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
        e.write_all(&plain).unwrap();
        e.finish().unwrap()
    };
    let xz = {
        let mut e = liblzma::write::XzEncoder::new(Vec::new(), 1);
        e.write_all(&plain).unwrap();
        e.finish().unwrap()
    };
    let zst = zstd::encode_all(&plain[..], 1).unwrap();
    let src = Source::context(ctx.path(), None);
    for (name, bytes) in [
        ("plain.tar", &plain),
        ("a.tgz", &gzip),
        ("a.tbz", &bzip),
        ("a.txz", &xz),
        ("a.tzst", &zst),
    ] {
        fs::write(ctx.path().join(name), bytes).unwrap();
        let req = CopyRequest {
            unpack_archives: true,
            ..copy(&[name], &format!("/{name}.d"))
        };
        let sel = select(&src, &req).unwrap();
        assert_eq!(
            sel.entries().next().unwrap().kind,
            EntryKind::Archive,
            "{name}"
        );
        let stats = apply(&src, &sel, &req, img.path()).unwrap();
        assert_eq!(stats.archives, 1);
        let out = |rel: &str| format!("{name}.d/{rel}");
        assert_eq!(read(img.path(), &out("dir/file")), "content", "{name}");
        assert_eq!(owner(img.path(), &out("dir/file")), (1234, 1235));
        assert_eq!(perm(img.path(), &out("dir/file")), 0o640);
        assert_eq!(perm(img.path(), &out("dir")), 0o750);
        assert_eq!(meta(img.path(), &out("dir/file")).mtime(), 1_600_000_000);
        assert_eq!(meta(img.path(), &out("dir")).mtime(), 1_600_000_000);
        assert_eq!(read(img.path(), &out("abs/file")), "abs");
        assert_eq!(
            fs::read_link(img.path().join(out("dir/link"))).unwrap(),
            Path::new("file")
        );
        assert_eq!(
            meta(img.path(), &out("hard")).ino(),
            meta(img.path(), &out("dir/file")).ino()
        );
        assert_eq!(perm(img.path(), &out("implied/parent")), 0o755);
        assert_eq!(owner(img.path(), &out("implied/parent")), (0, 0));
    }
    // --chown overrides the archive's owners.
    let req = CopyRequest {
        unpack_archives: true,
        chown: Some((9, 9)),
        ..copy(&["a.tgz"], "/owned")
    };
    run(&src, &req, img.path()).unwrap();
    assert_eq!(owner(img.path(), "owned/dir/file"), (9, 9));
    assert_eq!(
        owner(img.path(), "owned"),
        (9, 9),
        "the created destination too"
    );
}

#[test]
fn add_copies_what_is_not_an_archive() {
    let ctx = tmp();
    let img = tmp();
    write(ctx.path(), "notes.txt", "just text");
    fs::write(ctx.path().join("a.tar"), sample_tar()).unwrap();
    fs::write(ctx.path().join("fake.tgz"), [0x1f, 0x8b, 0x08, 0, 1, 2, 3]).unwrap();
    let src = Source::context(ctx.path(), None);
    let add = |sources: &[&str], dest: &str, unpack: bool| CopyRequest {
        unpack_archives: unpack,
        ..copy(sources, dest)
    };
    run(
        &src,
        &add(&["notes.txt", "fake.tgz"], "/n/", true),
        img.path(),
    )
    .unwrap();
    assert_eq!(read(img.path(), "n/notes.txt"), "just text");
    assert!(meta(img.path(), "n/fake.tgz").is_file());
    run(&src, &add(&["a.tar"], "/kept/", false), img.path()).unwrap();
    assert!(meta(img.path(), "kept/a.tar").is_file());
}

#[test]
fn unpacking_never_leaves_the_destination() {
    let top = tmp();
    let ctx = top.path().join("ctx");
    let img = top.path().join("img");
    mkdir(&ctx, "");
    mkdir(&img, "");
    write(top.path(), "outside/target", "target");
    let src = Source::context(&ctx, None);
    let add = |name: &str, tar: Vec<u8>| -> Result<CopyStats, CopyError> {
        fs::write(ctx.join(name), tar).unwrap();
        let req = CopyRequest {
            unpack_archives: true,
            ..copy(&[name], "/dest/")
        };
        run(&src, &req, &img)
    };
    let dotdot =
        tar_of(|b| tar_entry(b, "../../evil", tar::EntryType::Regular, "", b"x", 0o644, 0));
    let err = add("dotdot.tar", dotdot).unwrap_err();
    assert!(matches!(err, CopyError::ArchiveEntry { .. }), "{err:?}");
    assert!(!exists(top.path(), "evil") && !exists(&img, "evil"));

    let via_link = tar_of(|b| {
        tar_entry(
            b,
            "up",
            tar::EntryType::Symlink,
            "../../outside",
            b"",
            0o777,
            0,
        );
        tar_entry(b, "up/pwned", tar::EntryType::Regular, "", b"x", 0o644, 0);
    });
    let err = add("link.tar", via_link).unwrap_err();
    assert!(matches!(err, CopyError::ArchiveEntry { .. }), "{err:?}");
    assert!(!exists(top.path(), "outside/pwned"));

    let abs_link = tar_of(|b| {
        tar_entry(b, "etc", tar::EntryType::Symlink, "/inside", b"", 0o777, 0);
        tar_entry(b, "etc/passwd", tar::EntryType::Regular, "", b"x", 0o644, 0);
    });
    add("abs.tar", abs_link).unwrap();
    assert_eq!(
        read(&img, "dest/inside/passwd"),
        "x",
        "absolute targets are relative to dest"
    );

    let outside = top.path().join("outside/target");
    let hard = tar_of(|b| {
        let target = outside.to_str().unwrap();
        tar_entry(b, "hard", tar::EntryType::Link, target, b"", 0o644, 0);
    });
    assert!(add("hard.tar", hard).is_err());
    assert_eq!(read(top.path(), "outside/target"), "target");
}

// ---------------------------------------------------------------------------------------------
// 7. Digest
// ---------------------------------------------------------------------------------------------

#[test]
fn the_digest_follows_content_mode_name_owner_and_link_target() {
    let ctx = tmp();
    write(ctx.path(), "d/f", "one");
    write(ctx.path(), "d/g", "g");
    link(ctx.path(), "d/l", "f");
    let src = Source::context(ctx.path(), None);
    let req = copy(&["d"], "/x");
    let mut seen = vec![digest(&src, &req)];
    let mut changed = |what: &str, d: oci::Digest| {
        assert!(!seen.contains(&d), "{what} did not change the digest");
        seen.push(d);
    };
    write(ctx.path(), "d/f", "two");
    changed("content", digest(&src, &req));
    chmod(ctx.path(), "d/f", 0o600);
    changed("mode", digest(&src, &req));
    fs::rename(ctx.path().join("d/g"), ctx.path().join("d/h")).unwrap();
    changed("name", digest(&src, &req));
    fs::remove_file(ctx.path().join("d/l")).unwrap();
    link(ctx.path(), "d/l", "h");
    changed("link target", digest(&src, &req));
    let chowned = CopyRequest {
        chown: Some((1, 1)),
        ..req.clone()
    };
    changed("--chown", digest(&src, &chowned));
    let chmodded = CopyRequest {
        chmod: Some(0o755),
        ..req.clone()
    };
    changed("--chmod", digest(&src, &chmodded));
    // Owners count for a rootfs source, not for the context.
    let before = digest(&src, &req);
    std::os::unix::fs::lchown(ctx.path().join("d/f"), Some(77), Some(77)).unwrap();
    assert_eq!(digest(&src, &req), before);
    let rootfs = Source::rootfs(ctx.path());
    let before = digest(&rootfs, &req);
    std::os::unix::fs::lchown(ctx.path().join("d/f"), Some(78), Some(78)).unwrap();
    assert_ne!(digest(&rootfs, &req), before);
}

#[test]
fn the_digest_ignores_times_and_ignored_files() {
    let ctx = tmp();
    write(ctx.path(), "d/f", "f");
    write(ctx.path(), "d/skip.log", "1");
    let ignore = PatternMatcher::new(&["**/*.log"]).unwrap();
    let src = Source::context(ctx.path(), Some(&ignore));
    let req = copy(&["d"], "/x");
    let before = digest(&src, &req);
    set_times(&ctx.path().join("d/f"), (1, 0), (1, 0)).unwrap();
    set_times(&ctx.path().join("d"), (2, 0), (2, 0)).unwrap();
    write(ctx.path(), "d/skip.log", "2");
    assert_eq!(digest(&src, &req), before);
}

#[test]
fn the_digest_memo_is_used_and_survives_a_save() {
    let ctx = tmp();
    let state = tmp();
    write(ctx.path(), "d/a", "a");
    write(ctx.path(), "d/b", "b");
    let src = Source::context(ctx.path(), None);
    let sel = select(&src, &copy(&["d"], "/x")).unwrap();
    let memo = DigestMemo::new().without_racy_window();
    let first = sel.digest(&src, &memo).unwrap();
    assert_eq!(memo.len(), 2);
    let file = state.path().join("memo.json");
    memo.save(&file).unwrap();
    let mut loaded = DigestMemo::load(&file).unwrap();
    assert_eq!(loaded.len(), 2);
    assert_eq!(sel.digest(&src, &loaded).unwrap(), first);
    // A memoised hash is trusted without reading the file again.
    loaded.poison();
    assert_ne!(sel.digest(&src, &loaded).unwrap(), first);
    // Freshly written files are not memoised by default (racily clean).
    let fresh = DigestMemo::new();
    assert_eq!(sel.digest(&src, &fresh).unwrap(), first);
    assert!(fresh.is_empty());
    // A missing memo file is an empty memo; garbage is an error.
    assert!(
        DigestMemo::load(&state.path().join("none"))
            .unwrap()
            .is_empty()
    );
    fs::write(&file, "not json").unwrap();
    assert!(matches!(
        DigestMemo::load(&file),
        Err(CopyError::Memo { .. })
    ));
}
