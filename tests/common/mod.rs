//! Shared helpers for the integration tests: running hoist, fixtures, tree comparison, and
//! requirement checks that skip locally but fail under `CI=true`.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use sha2::{Digest as _, Sha256};

/// The hoist binary under test.
pub fn hoist_bin() -> &'static str {
    env!("CARGO_BIN_EXE_hoist")
}

/// Runs hoist with `--root root` and returns its output.
pub fn hoist(root: &Path, args: &[&str]) -> Output {
    Command::new(hoist_bin())
        .arg("--root")
        .arg(root)
        .args(args)
        .output()
        .expect("run hoist")
}

/// Runs hoist and asserts success, returning stdout.
pub fn hoist_ok(root: &Path, args: &[&str]) -> String {
    let out = hoist(root, args);
    assert!(
        out.status.success(),
        "hoist {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 stdout")
}

/// Runs a command and asserts success, returning stdout.
pub fn run_ok(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// True under CI (`CI=true`), where a missing requirement is a failure, not a skip.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Returns true when `ok`; otherwise skips (false) locally and panics under CI.
pub fn require(ok: bool, what: &str) -> bool {
    if ok {
        return true;
    }
    assert!(!in_ci(), "requirement missing under CI=true: {what}");
    eprintln!("SKIP: {what}");
    false
}

/// True when running as root.
pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// True when `tool` is on PATH.
pub fn has_tool(tool: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .is_ok_and(|o| o.status.success())
}

/// One filesystem object as the comparison sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Directory.
    Dir,
    /// Regular file with the sha256 of its content.
    File(String),
    /// Symlink with its target.
    Symlink(String),
    /// Character device (major, minor).
    Char(u32, u32),
    /// Block device.
    Block(u32, u32),
    /// FIFO.
    Fifo,
}

/// A node: kind, permission bits (incl. setuid/setgid/sticky), owner, and the other paths
/// hard-linked to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    pub kind: Kind,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub links: Vec<String>,
}

pub type Tree = BTreeMap<String, Node>;

fn sha(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn norm(p: &str) -> String {
    p.trim_start_matches("./")
        .trim_start_matches('/')
        .trim_end_matches('/')
        .to_string()
}

/// Summarises a directory tree (the root itself excluded).
pub fn dir_tree(root: &Path) -> Tree {
    let mut tree = Tree::new();
    let mut inodes: HashMap<(u64, u64), Vec<String>> = HashMap::new();
    fn walk(dir: &Path, rel: &str, tree: &mut Tree, inodes: &mut HashMap<(u64, u64), Vec<String>>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .expect("read dir")
            .map(|e| e.expect("entry"))
            .collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let name = e.file_name().to_string_lossy().into_owned();
            let path = if rel.is_empty() {
                name.clone()
            } else {
                format!("{rel}/{name}")
            };
            let m = std::fs::symlink_metadata(e.path()).expect("lstat");
            let ft = m.file_type();
            let kind = if ft.is_dir() {
                Kind::Dir
            } else if ft.is_symlink() {
                Kind::Symlink(
                    std::fs::read_link(e.path())
                        .expect("readlink")
                        .to_string_lossy()
                        .into_owned(),
                )
            } else if ft.is_file() {
                if m.nlink() > 1 {
                    inodes
                        .entry((m.dev(), m.ino()))
                        .or_default()
                        .push(path.clone());
                }
                Kind::File(sha(&std::fs::read(e.path()).expect("read")))
            } else if ft.is_char_device() {
                Kind::Char(rustix::fs::major(m.rdev()), rustix::fs::minor(m.rdev()))
            } else if ft.is_block_device() {
                Kind::Block(rustix::fs::major(m.rdev()), rustix::fs::minor(m.rdev()))
            } else if ft.is_fifo() {
                Kind::Fifo
            } else {
                continue;
            };
            let mode = m.permissions().mode() & 0o7777;
            tree.insert(
                path.clone(),
                Node {
                    kind: kind.clone(),
                    mode,
                    uid: m.uid() as u64,
                    gid: m.gid() as u64,
                    links: vec![],
                },
            );
            if ft.is_dir() {
                walk(&e.path(), &path, tree, inodes);
            }
        }
    }
    walk(root, "", &mut tree, &mut inodes);
    for group in inodes.values() {
        for p in group {
            let mut others: Vec<String> = group.iter().filter(|o| *o != p).cloned().collect();
            others.sort();
            if let Some(n) = tree.get_mut(p) {
                n.links = others;
            }
        }
    }
    tree
}

/// Summarises a (flattened, whiteout-free) tar stream; gzip is sniffed.
pub fn tar_tree(r: impl Read) -> Tree {
    let mut br = std::io::BufReader::new(r);
    let head = std::io::BufRead::fill_buf(&mut br).expect("read").to_vec();
    let r: Box<dyn Read> = if head.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::read::MultiGzDecoder::new(br))
    } else {
        Box::new(br)
    };
    let mut a = tar::Archive::new(r);
    let mut tree = Tree::new();
    let mut groups: Vec<Vec<String>> = Vec::new();
    for e in a.entries().expect("entries") {
        let mut e = e.expect("entry");
        let path = norm(&String::from_utf8_lossy(&e.path_bytes()));
        if path.is_empty() || path == "." {
            continue;
        }
        let h = e.header().clone();
        let mode = h.mode().expect("mode") & 0o7777;
        let (uid, gid) = (h.uid().expect("uid"), h.gid().expect("gid"));
        let kind = match h.entry_type() {
            tar::EntryType::Directory => Kind::Dir,
            tar::EntryType::Symlink => Kind::Symlink(
                String::from_utf8_lossy(&e.link_name_bytes().expect("link")).into_owned(),
            ),
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let mut v = Vec::new();
                e.read_to_end(&mut v).expect("read");
                Kind::File(sha(&v))
            }
            tar::EntryType::Link => {
                let target = norm(&String::from_utf8_lossy(
                    &e.link_name_bytes().expect("link"),
                ));
                let node = tree
                    .get(&target)
                    .unwrap_or_else(|| panic!("hard link {path} -> missing {target}"))
                    .clone();
                match groups.iter_mut().find(|g| g.contains(&target)) {
                    Some(g) => g.push(path.clone()),
                    None => groups.push(vec![target, path.clone()]),
                }
                tree.insert(
                    path,
                    Node {
                        links: vec![],
                        ..node
                    },
                );
                continue;
            }
            tar::EntryType::Char => Kind::Char(
                h.device_major().unwrap().unwrap_or(0),
                h.device_minor().unwrap().unwrap_or(0),
            ),
            tar::EntryType::Block => Kind::Block(
                h.device_major().unwrap().unwrap_or(0),
                h.device_minor().unwrap().unwrap_or(0),
            ),
            tar::EntryType::Fifo => Kind::Fifo,
            _ => continue,
        };
        tree.insert(
            path,
            Node {
                kind,
                mode,
                uid,
                gid,
                links: vec![],
            },
        );
    }
    for g in &groups {
        for p in g {
            let mut others: Vec<String> = g.iter().filter(|o| *o != p).cloned().collect();
            others.sort();
            tree.get_mut(p).expect("grouped path").links = others;
        }
    }
    tree
}

/// Asserts two trees are equal, listing every difference.
pub fn assert_same_tree(what: &str, want: &Tree, got: &Tree) {
    let mut diffs = Vec::new();
    for (p, n) in want {
        match got.get(p) {
            None => diffs.push(format!("missing: {p}")),
            Some(g) if g != n => diffs.push(format!("differs: {p}\n   want {n:?}\n   got  {g:?}")),
            _ => {}
        }
    }
    for p in got.keys() {
        if !want.contains_key(p) {
            diffs.push(format!("extra: {p}"));
        }
    }
    assert!(
        diffs.is_empty(),
        "{what}: {} differences:\n{}",
        diffs.len(),
        diffs.join("\n")
    );
}

/// A temp directory removed on drop.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("hoist-test-")
        .tempdir_in(std::env::temp_dir())
        .expect("tempdir")
}

/// Builds a busybox root filesystem from Debian's busybox-static in `dir`, with the details
/// the round trips must keep: setuid/setgid/sticky bits, owners, hard links, symlinks, a device
/// node, a FIFO, an empty directory and a path longer than 100 bytes. Returns the rootfs dir.
pub fn busybox_rootfs(dir: &Path) -> PathBuf {
    let r = dir.join("rootfs");
    for d in [
        "bin",
        "etc",
        "tmp",
        "root",
        "dev",
        "usr/bin",
        "var/empty",
        "home/user",
    ] {
        std::fs::create_dir_all(r.join(d)).expect("mkdir");
    }
    let busybox = ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("busybox-static installed");
    std::fs::copy(busybox, r.join("bin/busybox")).expect("copy busybox");
    let applets = run_ok(Command::new(busybox).arg("--list"));
    for a in applets.lines().filter(|a| !a.is_empty() && *a != "busybox") {
        let _ = std::os::unix::fs::symlink("busybox", r.join("bin").join(a));
    }
    std::fs::write(r.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/home/user:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n").unwrap();
    std::fs::write(
        r.join("etc/group"),
        "root:x:0:\nuser:x:1000:\nnogroup:x:65534:\n",
    )
    .unwrap();
    std::fs::write(r.join("usr/bin/suid-tool"), b"#!/bin/sh\necho suid\n").unwrap();
    std::fs::set_permissions(
        r.join("usr/bin/suid-tool"),
        std::fs::Permissions::from_mode(0o4755),
    )
    .unwrap();
    std::fs::write(r.join("usr/bin/sgid-tool"), b"#!/bin/sh\necho sgid\n").unwrap();
    std::fs::set_permissions(
        r.join("usr/bin/sgid-tool"),
        std::fs::Permissions::from_mode(0o2711),
    )
    .unwrap();
    std::fs::hard_link(r.join("usr/bin/suid-tool"), r.join("usr/bin/suid-hardlink")).unwrap();
    std::fs::set_permissions(r.join("tmp"), std::fs::Permissions::from_mode(0o1777)).unwrap();
    std::fs::write(r.join("home/user/.profile"), "export PS1='$ '\n").unwrap();
    rustix::fs::chown(
        r.join("home/user"),
        Some(rustix::fs::Uid::from_raw(1000)),
        Some(rustix::fs::Gid::from_raw(1000)),
    )
    .unwrap();
    rustix::fs::chown(
        r.join("home/user/.profile"),
        Some(rustix::fs::Uid::from_raw(1000)),
        Some(rustix::fs::Gid::from_raw(1000)),
    )
    .unwrap();
    let long = r.join("usr/share/a-rather-long-directory-name-to-push-the-path-past-one-hundred-bytes/and-a-file-name-that-is-long-too.txt");
    std::fs::create_dir_all(long.parent().unwrap()).unwrap();
    std::fs::write(&long, "long\n").unwrap();
    std::os::unix::fs::symlink("../usr/share", r.join("etc/share-link")).unwrap();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        r.join("dev/null"),
        rustix::fs::FileType::CharacterDevice,
        rustix::fs::Mode::from_raw_mode(0o666),
        rustix::fs::makedev(1, 3),
    )
    .unwrap();
    rustix::fs::chmod(r.join("dev/null"), rustix::fs::Mode::from_raw_mode(0o666)).unwrap();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        r.join("var/fifo"),
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o644),
        0,
    )
    .unwrap();
    r
}

/// A store at `t/store` holding the busybox rootfs of [`busybox_rootfs`] (after `tweak`) imported
/// as `name` with the `changes` (`-c` instructions), and an empty context dir `t/ctx`.
pub fn store_with_busybox(
    t: &Path,
    name: &str,
    changes: &[&str],
    tweak: impl FnOnce(&Path),
) -> (PathBuf, PathBuf) {
    let root = t.join("store");
    let rootfs = busybox_rootfs(t);
    tweak(&rootfs);
    let tarball = gnu_tar(&rootfs, &t.join("rootfs.tar"));
    let mut args = vec!["import", tarball.to_str().expect("utf-8"), name];
    for c in changes {
        args.extend(["-c", c]);
    }
    hoist_ok(&root, &args);
    let ctx = t.join("ctx");
    std::fs::create_dir_all(&ctx).expect("mkdir ctx");
    (root, ctx)
}

/// Asserts a build left nothing behind in the store `root`: no scratch dir, no mount.
pub fn assert_no_build_leftovers(root: &Path) {
    // Scratch dirs, half-written blobs, provisional snapshots (`snapshots/tmp-*`).
    for (dir, prefix) in [("tmp", ""), ("ingest", ""), ("snapshots", "tmp-")] {
        let dir = root.join(dir);
        if dir.exists() {
            let left: Vec<_> = std::fs::read_dir(&dir)
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .filter(|n| n.to_string_lossy().starts_with(prefix))
                .collect();
            assert!(left.is_empty(), "leftovers in {}: {left:?}", dir.display());
        }
    }
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.lines().any(|l| l.contains(&*root.to_string_lossy())),
        "a mount is left under the store:\n{mounts}"
    );
}

/// Tars `dir` with GNU tar (as a user would), returning the tarball path.
pub fn gnu_tar(dir: &Path, out: &Path) -> PathBuf {
    run_ok(
        Command::new("tar")
            .arg("--numeric-owner")
            .arg("-C")
            .arg(dir)
            .arg("-cf")
            .arg(out)
            .arg("."),
    );
    out.to_path_buf()
}

/// Writes a tar with the given regular-file members (name, bytes) to `out`; returns `out`.
pub fn tar_members<W: std::io::Write>(out: W, members: &[(&str, &[u8])]) -> W {
    let mut b = tar::Builder::new(out);
    for (name, data) in members {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, name, *data)
            .expect("append tar member");
    }
    b.into_inner().expect("finish tar")
}

// ---- a dockerd started by the test on a private socket (moved from peers.rs) ----

/// A scratch directory with a short path (unix socket paths must stay under 108 bytes), removed
/// on drop after lazily unmounting anything a peer left mounted below it.
pub struct ShortDir(tempfile::TempDir);

impl ShortDir {
    pub fn new(prefix: &str) -> Self {
        Self(
            tempfile::Builder::new()
                .prefix(prefix)
                .tempdir_in("/tmp")
                .expect("tempdir in /tmp"),
        )
    }
    pub fn path(&self) -> &Path {
        self.0.path()
    }
}

impl Drop for ShortDir {
    fn drop(&mut self) {
        unmount_under(self.0.path());
    }
}

/// Lazily unmounts every mount point at or below `dir`, deepest first.
pub fn unmount_under(dir: &Path) {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    let prefix = dir.to_string_lossy().into_owned();
    let mut points: Vec<String> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(unescape_mountinfo)
        .filter(|p| p == &prefix || p.starts_with(&format!("{prefix}/")))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    points.dedup();
    for p in points {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(&p)
            .stderr(Stdio::null())
            .status();
    }
}

/// Decodes the octal escapes (`\040` for a space, ...) of a mountinfo path.
fn unescape_mountinfo(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push(u8::from_str_radix(&s[i + 1..i + 4], 8).unwrap_or(b'?'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The docker client: Debian's `/usr/bin/docker` (same release as the daemon) when present.
pub fn docker_client() -> &'static str {
    if Path::new("/usr/bin/docker").exists() {
        "/usr/bin/docker"
    } else {
        "docker"
    }
}

/// A dockerd of the test's own on a private socket, data root and exec root; stopped (and waited
/// for, with its containerd) on drop, even when the test fails.
pub struct Dockerd {
    child: Option<Child>,
    dir: ShortDir,
}

impl Dockerd {
    pub fn start() -> Self {
        let dir = ShortDir::new("hd-");
        let t = dir.path();
        let log = File::create(t.join("dockerd.log")).expect("dockerd log");
        let child = Command::new("dockerd")
            .arg("--host")
            .arg(format!("unix://{}", t.join("d.sock").display()))
            .arg("--data-root")
            .arg(t.join("data"))
            .arg("--exec-root")
            .arg(t.join("exec"))
            .arg("--pidfile")
            .arg(t.join("d.pid"))
            .args(["--bridge=none", "--iptables=false", "--ip-masq=false"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup log"))
            .stderr(log)
            .spawn()
            .expect("spawn dockerd");
        let mut d = Dockerd {
            child: Some(child),
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let up = d
                .cmd()
                .arg("version")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if up {
                break;
            }
            if let Some(status) = d.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                panic!("dockerd exited early ({status}):\n{}", d.log());
            }
            assert!(
                Instant::now() < deadline,
                "dockerd not ready after 30 s:\n{}",
                d.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        d
    }

    /// A docker client command talking to this daemon.
    pub fn cmd(&self) -> Command {
        let mut c = Command::new(docker_client());
        c.arg("-H").arg(format!(
            "unix://{}",
            self.dir.path().join("d.sock").display()
        ));
        c
    }

    /// Runs `docker ARGS` against this daemon and asserts success, returning stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        run_ok(self.cmd().args(args))
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("dockerd.log")).unwrap_or_default()
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        let containerd_pid =
            std::fs::read_to_string(self.dir.path().join("exec/containerd/containerd.pid"))
                .ok()
                .and_then(|s| s.trim().parse::<i32>().ok());
        if let Some(mut child) = self.child.take() {
            let pid = rustix::process::Pid::from_child(&child);
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
            let deadline = Instant::now() + Duration::from_secs(20);
            while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        // dockerd stops the containerd it supervises; make sure of it, as it is our child's child.
        if let Some(pid) = containerd_pid.and_then(rustix::process::Pid::from_raw) {
            let deadline = Instant::now() + Duration::from_secs(10);
            while rustix::process::test_kill_process(pid).is_ok() && Instant::now() < deadline {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
                std::thread::sleep(Duration::from_millis(100));
            }
            if rustix::process::test_kill_process(pid).is_ok() {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
            }
        }
        // `self.dir` drops next: it unmounts what dockerd leaves (the netns bind mount) and removes all.
    }
}

/// The test image: the busybox rootfs of [`busybox_rootfs`] (the reference tree, checked to hold
/// every detail the round trips must keep), its GNU tarball, and a hoist store holding it
/// imported with `CMD ["/bin/sh"]`; all in a temp dir removed on drop.
pub struct BusyboxImage {
    dir: tempfile::TempDir,
    /// The rootfs tarball.
    pub tar: PathBuf,
    /// The hoist store holding the image.
    pub store: PathBuf,
    /// The rootfs tree the image must reproduce.
    pub tree: Tree,
}

impl BusyboxImage {
    /// Builds the rootfs and imports it as `reference`.
    pub fn import(reference: &str) -> Self {
        let dir = tempdir();
        let rootfs = busybox_rootfs(dir.path());
        let tar = gnu_tar(&rootfs, &dir.path().join("rootfs.tar"));
        let tree = dir_tree(&rootfs);
        assert!(
            tree.len() > 100,
            "fixture too small: {} entries",
            tree.len()
        );
        // The details the round trips must keep are really in the fixture.
        let has = |f: &dyn Fn(&Node) -> bool| tree.values().any(f);
        assert!(
            has(&|n| n.mode & 0o4000 != 0)
                && has(&|n| n.mode & 0o2000 != 0)
                && has(&|n| n.mode & 0o1000 != 0),
            "fixture lacks setuid/setgid/sticky"
        );
        assert!(
            has(&|n| !n.links.is_empty()) && has(&|n| n.uid == 1000),
            "fixture lacks hard links or owners"
        );
        assert!(
            has(&|n| matches!(n.kind, Kind::Char(1, 3))) && has(&|n| n.kind == Kind::Fifo),
            "fixture lacks device or FIFO"
        );
        assert!(
            tree.keys().any(|p| p.len() > 100),
            "fixture lacks a long path"
        );
        let store = dir.path().join("store");
        let id = hoist_ok(
            &store,
            &[
                "import",
                tar.to_str().expect("utf-8"),
                reference,
                "--change",
                r#"CMD ["/bin/sh"]"#,
            ],
        );
        assert!(id.trim().starts_with("sha256:"), "import printed {id:?}");
        BusyboxImage {
            dir,
            tar,
            store,
            tree,
        }
    }

    /// The temp dir, for the test's other files.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

/// A free TCP port on 127.0.0.1 (bound and released; a race with other processes is possible
/// but unlikely).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// A real registry (`docker-registry serve CONFIG`, CNCF distribution) of the test's own on a
/// free loopback port, with its storage in a temp dir; killed on drop.
pub struct Registry {
    child: Option<Child>,
    /// `127.0.0.1:PORT`.
    pub addr: String,
    /// The temp dir holding the config, storage and log.
    pub dir: tempfile::TempDir,
}

impl Registry {
    /// A registry without auth or TLS.
    pub fn start() -> Self {
        Self::start_with("", false)
    }

    /// A registry with `extra` appended to its YAML config (an `auth:` section, say) and,
    /// with `tls`, `http.tls` set from `DIR/server.crt` and `DIR/server.key`, which the caller
    /// writes first through [`Registry::prepare`].
    pub fn start_with(extra: &str, tls: bool) -> Self {
        let dir = tempdir();
        Self::start_in(dir, extra, tls)
    }

    /// A temp dir to put certificates or an htpasswd file in before [`Registry::start_in`].
    pub fn prepare() -> tempfile::TempDir {
        tempdir()
    }

    /// Starts a registry whose files live in `dir` (see [`Registry::start_with`]).
    ///
    /// The port from [`free_port`] can be taken by another test's listener before the
    /// registry binds it: the registry then exits, while a bare connect would succeed against
    /// the other listener. So every response of this registry carries a header with a token of
    /// its own, readiness waits for that token, and a registry that exits is started again on
    /// another port.
    pub fn start_in(dir: tempfile::TempDir, extra: &str, tls: bool) -> Self {
        let d = dir.path();
        // Unique: the process and its own temp dir.
        let token = format!(
            "{}-{}",
            std::process::id(),
            d.file_name().unwrap_or_default().to_string_lossy()
        )
        .to_ascii_lowercase();
        let tls_cfg = if tls {
            format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                d.join("server.crt").display(),
                d.join("server.key").display()
            )
        } else {
            String::new()
        };
        let scheme = if tls { "https" } else { "http" };
        // Built first, so that a panic below kills the registry (Drop).
        let mut r = Registry {
            child: None,
            addr: String::new(),
            dir,
        };
        for attempt in 1.. {
            r.addr = format!("127.0.0.1:{}", free_port());
            let d = r.dir.path();
            let config = format!(
                "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {}\n  secret: hoist-test-secret\n  headers:\n    X-Hoist-Test-Registry: [\"{token}\"]\n{tls_cfg}{extra}",
                d.join("data").display(),
                r.addr
            );
            std::fs::write(d.join("config.yml"), config).expect("registry config");
            let log = File::create(d.join("registry.log")).expect("registry log");
            let child = Command::new("docker-registry")
                .arg("serve")
                .arg(d.join("config.yml"))
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("dup log"))
                .stderr(log)
                .spawn()
                .expect("spawn docker-registry");
            let child = r.child.insert(child);
            let deadline = Instant::now() + Duration::from_secs(20);
            let url = format!("{scheme}://{}/v2/", r.addr);
            let exited = loop {
                if let Some(status) = child.try_wait().ok().flatten() {
                    break status;
                }
                let out = Command::new("curl")
                    .args(["-sk", "-o", "/dev/null", "-D", "-", "--max-time", "2", &url])
                    .stdin(Stdio::null())
                    .stderr(Stdio::null())
                    .output()
                    .expect("run curl");
                let head = String::from_utf8_lossy(&out.stdout).to_ascii_lowercase();
                if head.contains(&format!("x-hoist-test-registry: {token}")) {
                    return r;
                }
                assert!(
                    Instant::now() < deadline,
                    "registry not ready after 20 s:\n{}",
                    r.log()
                );
                std::thread::sleep(Duration::from_millis(50));
            };
            r.child = None;
            // Lost the port to another listener: again on another one, a few times.
            assert!(
                attempt < 5,
                "docker-registry exited early ({exited}):\n{}",
                r.log()
            );
        }
        unreachable!("the loop returns or panics")
    }

    /// The registry's log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// `ADDR/name` (a repository reference).
    pub fn repo(&self, name: &str) -> String {
        format!("{}/{name}", self.addr)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// True when the registry and its peer tools are installed (fails under CI when not).
pub fn have_registry() -> bool {
    require(has_tool("docker-registry"), "docker-registry")
        && require(has_tool("curl"), "curl (the registry's readiness check)")
}

pub mod regtools;
