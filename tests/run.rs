//! `hoist run` on the real kernel: namespaces, PID 1, /proc, hostname, copy-on-write, image
//! config and flags, docker's exit codes, volumes, and no leftovers.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::process::Command;

use common::*;

/// A store with the busybox image `bb:run` (ENV, WORKDIR and CMD set).
fn setup(t: &Path) -> std::path::PathBuf {
    let root = t.join("store");
    let rootfs = busybox_rootfs(t);
    let tarball = gnu_tar(&rootfs, &t.join("rootfs.tar"));
    hoist_ok(
        &root,
        &[
            "import",
            tarball.to_str().unwrap(),
            "bb:run",
            "-c",
            "ENV PATH=/bin FROM_IMAGE=yes",
            "-c",
            "WORKDIR /srv/app",
            "-c",
            "CMD [\"echo\", \"from-cmd\"]",
        ],
    );
    root
}

fn run(root: &Path, args: &[&str]) -> (i32, String, String) {
    let mut full = vec!["run", "--rm"];
    full.extend_from_slice(args);
    let out = hoist(root, &full);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn mounts_mentioning(p: &Path) -> usize {
    std::fs::read_to_string("/proc/mounts")
        .unwrap()
        .lines()
        .filter(|l| l.contains(&*p.to_string_lossy()))
        .count()
}

/// Every container of these tests has a cgroup (for OOM reports), and some tests check that
/// none is left: they run one at a time.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

#[test]
fn isolation_pid1_proc_hostname_and_copy_on_write() {
    let _serial = serial();
    if !require(is_root(), "root (namespaces, overlay mounts)") {
        return;
    }
    let t = tempdir();
    let root = setup(t.path());
    let secret = t.path().join("host-only-file");
    std::fs::write(&secret, "host").unwrap();
    let script = format!(
        "echo pid=$$; ls /proc | grep -c '^[0-9]'; hostname; test -e {} && echo visible || echo invisible; echo cow > /bin/new-file; rm /etc/group; ls /bin/new-file",
        secret.display()
    );
    let (code, out, err) = run(
        &root,
        &["--hostname", "box1", "bb:run", "/bin/sh", "-c", &script],
    );
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "pid=1", "the command is PID 1");
    assert!(
        lines[1].parse::<u32>().unwrap() <= 3,
        "/proc lists only the container's processes: {out}"
    );
    assert_eq!(lines[2], "box1");
    assert_eq!(lines[3], "invisible", "a host file is visible inside");
    assert_eq!(lines[4], "/bin/new-file");
    // The image's snapshot is untouched.
    for snap in std::fs::read_dir(root.join("snapshots")).unwrap() {
        let fs = snap.unwrap().path().join("fs");
        assert!(
            !fs.join("bin/new-file").exists(),
            "a write reached the snapshot"
        );
        assert!(
            fs.join("etc/group").exists(),
            "a delete reached the snapshot"
        );
    }
    assert_eq!(mounts_mentioning(&root), 0, "mounts left behind");
    assert_eq!(
        std::fs::read_dir(root.join("containers")).unwrap().count(),
        0,
        "--rm left the container dir"
    );
}

#[test]
fn config_and_flags_combine_like_docker() {
    let _serial = serial();
    if !require(is_root(), "root (namespaces, overlay mounts)") {
        return;
    }
    let t = tempdir();
    let root = setup(t.path());
    let (code, out, _) = run(&root, &["bb:run"]);
    assert_eq!((code, out.trim()), (0, "from-cmd"), "CMD from the image");
    let (_, out, _) = run(
        &root,
        &[
            "bb:run",
            "/bin/sh",
            "-c",
            "pwd; echo $FROM_IMAGE $EXTRA $HOME; id -u; id -g",
        ],
    );
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        ["/srv/app", "yes /root", "0", "0"]
    );
    let (_, out, _) = run(
        &root,
        &[
            "-e",
            "EXTRA=flag",
            "-e",
            "FROM_IMAGE=over",
            "-w",
            "/tmp",
            "-u",
            "1000:1000",
            "bb:run",
            "/bin/sh",
            "-c",
            "pwd; echo $FROM_IMAGE $EXTRA; id -u; id -g",
        ],
    );
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        ["/tmp", "over flag", "1000", "1000"]
    );
    let (_, out, _) = run(&root, &["--entrypoint", "/bin/echo", "bb:run", "a", "b"]);
    assert_eq!(
        out.trim(),
        "a b",
        "--entrypoint drops the image CMD and takes the arguments"
    );
}

#[test]
fn exit_codes_follow_docker() {
    let _serial = serial();
    if !require(is_root(), "root (namespaces, overlay mounts)") {
        return;
    }
    let t = tempdir();
    let root = setup(t.path());
    assert_eq!(run(&root, &["bb:run", "true"]).0, 0);
    assert_eq!(run(&root, &["bb:run", "/bin/sh", "-c", "exit 7"]).0, 7);
    let (code, _, err) = run(&root, &["bb:run", "no-such-command"]);
    assert_eq!(code, 127, "{err}");
    assert!(err.contains("executable file not found in $PATH"), "{err}");
    let (code, _, err) = run(&root, &["bb:run", "/etc/passwd"]);
    assert_eq!(code, 126, "{err}");
    let (code, _, err) = run(&root, &["no-such-image:1", "true"]);
    assert_eq!(code, 125, "{err}");
    // A signal to the container's process group stays inside it (own session): the test
    // process is still alive to see the result, and a child killed by a signal gives 128+N.
    let (code, out, err) = run(
        &root,
        &[
            "bb:run",
            "/bin/sh",
            "-c",
            "sh -c 'kill -9 $$'; echo child=$?; kill -TERM 0; sleep 5",
        ],
    );
    assert!(out.contains("child=137"), "{out} {err}");
    assert_eq!(
        code, 0,
        "PID 1 without a TERM handler ignores it, as in docker"
    );
}

#[test]
fn volumes_read_only_and_read_write() {
    let _serial = serial();
    if !require(is_root(), "root (namespaces, overlay mounts)") {
        return;
    }
    let t = tempdir();
    let root = setup(t.path());
    let data = t.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::write(data.join("in"), "host data\n").unwrap();
    let ro = format!("{}:/data:ro", data.display());
    let (code, out, _) = run(
        &root,
        &[
            "-v",
            &ro,
            "bb:run",
            "/bin/sh",
            "-c",
            "cat /data/in; echo x > /data/out && echo wrote || echo refused",
        ],
    );
    assert_eq!(code, 0);
    assert_eq!(out.lines().collect::<Vec<_>>(), ["host data", "refused"]);
    assert!(!data.join("out").exists());
    let rw = format!("{}:/data", data.display());
    run(
        &root,
        &["-v", &rw, "bb:run", "/bin/sh", "-c", "echo x > /data/out"],
    );
    assert_eq!(std::fs::read_to_string(data.join("out")).unwrap(), "x\n");
    let created = t.path().join("created-by-run");
    run(
        &root,
        &["-v", &format!("{}:/c", created.display()), "bb:run", "true"],
    );
    assert!(
        created.is_dir(),
        "a missing host dir is created, as docker does"
    );
}

#[test]
fn many_runs_in_a_row_and_in_parallel_leave_nothing_behind() {
    let _serial = serial();
    if !require(is_root(), "root (namespaces, overlay mounts)") {
        return;
    }
    let t = tempdir();
    let root = setup(t.path());
    for i in 0..50 {
        let (code, out, err) = run(&root, &["bb:run", "/bin/sh", "-c", &format!("echo {i}")]);
        assert_eq!((code, out.trim()), (0, i.to_string().as_str()), "{err}");
    }
    let children: Vec<_> = (0..10)
        .map(|i| {
            Command::new(hoist_bin())
                .arg("--root")
                .arg(&root)
                .args([
                    "run",
                    "--rm",
                    "bb:run",
                    "/bin/sh",
                    "-c",
                    &format!("echo p{i}"),
                ])
                .output_async()
        })
        .collect();
    for (i, c) in children.into_iter().enumerate() {
        let out = c.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "parallel run {i}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), format!("p{i}"));
    }
    assert_eq!(mounts_mentioning(&root), 0, "mounts left behind");
    assert_eq!(
        std::fs::read_dir(root.join("containers")).unwrap().count(),
        0,
        "container dirs left behind"
    );
}

trait SpawnPiped {
    fn output_async(&mut self) -> std::process::Child;
}

impl SpawnPiped for Command {
    fn output_async(&mut self) -> std::process::Child {
        self.stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    }
}

#[test]
fn cgroup_limits_capabilities_and_users() {
    let _serial = serial();
    if !require(
        is_root() && Path::new("/sys/fs/cgroup").exists(),
        "root and cgroups",
    ) {
        return;
    }
    let t = tempdir();
    let root = setup(t.path());
    // 100 MB through a 32 MiB limit: the OOM killer ends it with 137.
    let (code, _, err) = run(
        &root,
        &[
            "--memory",
            "32m",
            "bb:run",
            "/bin/sh",
            "-c",
            "head -c 100m /dev/zero | tail > /dev/null",
        ],
    );
    assert_eq!(code, 137, "{err}");
    // A fork loop hits the pids limit.
    let (code, out, err) = run(
        &root,
        &[
            "--pids-limit",
            "8",
            "bb:run",
            "/bin/sh",
            "-c",
            "for i in $(seq 1 40); do sleep 3 & done; echo all-forked",
        ],
    );
    assert!(
        code != 0 && !out.contains("all-forked"),
        "fork loop not stopped: {code} {out} {err}"
    );
    // docker's default capability set; --cap-drop/--cap-add change it.
    let caps = |extra: &[&str]| {
        let mut args: Vec<&str> = extra.to_vec();
        args.extend(["bb:run", "/bin/sh", "-c", "grep CapBnd /proc/self/status"]);
        run(&root, &args)
            .1
            .split_whitespace()
            .nth(1)
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(caps(&[]), "00000000a80425fb");
    assert_eq!(caps(&["--cap-drop", "ALL"]), "0000000000000000");
    assert_eq!(
        caps(&["--cap-drop", "ALL", "--cap-add", "NET_BIND_SERVICE"]),
        "0000000000000400"
    );
    // -u by name resolves in the image's /etc/passwd and /etc/group, with supplementary groups.
    let (_, out, _) = run(
        &root,
        &[
            "-u",
            "user",
            "bb:run",
            "/bin/sh",
            "-c",
            "id -u; id -g; echo $HOME",
        ],
    );
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        ["1000", "1000", "/home/user"]
    );
    let (code, _, err) = run(&root, &["-u", "nosuchuser", "bb:run", "true"]);
    assert_eq!(code, 125);
    assert!(err.contains("nosuchuser"), "{err}");
    // Nothing left in the cgroup hierarchy.
    let leftovers = Command::new("sh")
        .arg("-c")
        .arg("find /sys/fs/cgroup -maxdepth 4 -path '*hoist/*' -type d | wc -l")
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&leftovers.stdout).trim(),
        "0",
        "cgroups left behind"
    );
}

#[test]
fn containers_persist_commit_export_start_and_rm() {
    let _serial = serial();
    if !require(is_root(), "root (namespaces, overlay mounts)") {
        return;
    }
    let t = tempdir();
    let root = setup(t.path());
    let out = hoist(
        &root,
        &[
            "run",
            "--name",
            "keep",
            "bb:run",
            "/bin/sh",
            "-c",
            "echo changed > /srv/marker; rm /etc/group",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ps = hoist_ok(&root, &["ps", "-a"]);
    assert!(
        ps.lines().nth(1).is_some_and(|l| l.contains("bb:run")
            && l.contains("Exited (0)")
            && l.ends_with("keep")),
        "{ps}"
    );
    assert_eq!(
        hoist_ok(&root, &["ps"]).lines().count(),
        1,
        "nothing is running"
    );
    // commit: the upper dir becomes a layer with a history entry; only the container's own changes.
    hoist_ok(&root, &["commit", "-m", "marker", "keep", "bb:committed"]);
    let (code, out, err) = run(
        &root,
        &[
            "bb:committed",
            "/bin/sh",
            "-c",
            "cat /srv/marker; test -e /etc/group && echo group || echo no-group",
        ],
    );
    assert_eq!((code, out.as_str()), (0, "changed\nno-group\n"), "{err}");
    let hist = hoist_ok(&root, &["history", "bb:committed"]);
    assert!(
        hist.lines().nth(1).is_some_and(|l| l.contains("marker")),
        "{hist}"
    );
    let insp: serde_json::Value =
        serde_json::from_str(&hoist_ok(&root, &["inspect", "bb:committed"])).unwrap();
    let layers = insp[0]["RootFS"]["Layers"].as_array().unwrap();
    let layer = root.join("blobs/sha256").join(
        layers
            .last()
            .unwrap()
            .as_str()
            .unwrap()
            .trim_start_matches("sha256:"),
    );
    let names: Vec<String> = tar::Archive::new(std::fs::File::open(layer).unwrap())
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect();
    assert!(
        names.contains(&"srv/marker".to_string()) && names.contains(&"etc/.wh.group".to_string()),
        "{names:?}"
    );
    for mount_point in ["proc", "sys", "dev/null", "etc/hosts", "etc/resolv.conf"] {
        assert!(
            !names.iter().any(|n| n.trim_end_matches('/') == mount_point),
            "the commit carries the mount point `{mount_point}`: {names:?}"
        );
    }
    // export of the container: its changes over the image.
    let exp = t.path().join("c.tar");
    hoist_ok(&root, &["export", "keep", "-o", exp.to_str().unwrap()]);
    let tree = tar_tree(std::fs::File::open(&exp).unwrap());
    assert!(tree.contains_key("srv/marker") && !tree.contains_key("etc/group"));
    // start -a runs it again on the same upper dir.
    let out = hoist(&root, &["start", "-a", "keep"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "rm of the already deleted /etc/group fails the second time"
    );
    assert_eq!(hoist_ok(&root, &["rm", "keep"]).trim(), "keep");
    assert_eq!(hoist_ok(&root, &["ps", "-a", "-q"]).trim(), "");
    assert_eq!(hoist(&root, &["rm", "keep"]).status.code(), Some(1));
}

#[test]
fn init_reaps_and_stdin_only_with_interactive() {
    let _serial = serial();
    if !require(is_root(), "root (namespaces, overlay mounts)") {
        return;
    }
    let t = tempdir();
    let root = setup(t.path());
    let (code, out, err) = run(
        &root,
        &[
            "--init",
            "bb:run",
            "/bin/sh",
            "-c",
            "echo pid=$$; (sleep 0 &); sleep 0.2; ps -o stat | grep -c Z; exit 3",
        ],
    );
    assert_eq!(code, 3, "{err}");
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        ["pid=2", "0"],
        "the command is not PID 1 and no zombie is left"
    );
    let with_stdin = |interactive: bool| {
        let mut args = vec![
            "--root".to_string(),
            root.display().to_string(),
            "run".into(),
            "--rm".into(),
        ];
        if interactive {
            args.push("-i".into());
        }
        args.extend(["bb:run".into(), "cat".into()]);
        let mut child = Command::new(hoist_bin())
            .args(&args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child.stdin.take().unwrap().write_all(b"typed\n").unwrap();
        String::from_utf8(child.wait_with_output().unwrap().stdout).unwrap()
    };
    assert_eq!(with_stdin(true), "typed\n");
    assert_eq!(
        with_stdin(false),
        "",
        "without -i the container reads /dev/null"
    );
}

#[test]
fn the_same_image_and_command_give_the_same_output_under_runc() {
    let _serial = serial();
    let runc = ["/usr/sbin/runc", "/usr/bin/runc"]
        .into_iter()
        .find(|p| Path::new(p).exists());
    if !require(is_root() && runc.is_some(), "root and runc") {
        return;
    }
    let runc = runc.unwrap();
    let t = tempdir();
    let root = setup(t.path());
    let data = t.path().join("vol");
    std::fs::create_dir(&data).unwrap();
    std::fs::write(data.join("f"), "volume\n").unwrap();
    let vol = format!("{}:/vol:ro", data.display());
    let script = "echo $FROM_IMAGE $X $(pwd) $(id -u):$(id -g) $(hostname) pid=$$; grep CapBnd /proc/self/status; cd /proc; echo [0-9]*; cd /tmp; cat /vol/f; touch /vol/x 2>/dev/null || echo ro; cat /etc/hostname; exit 4";
    let args = [
        "-e",
        "X=1",
        "-w",
        "/tmp",
        "-u",
        "user",
        "--hostname",
        "h1",
        "-v",
        &vol,
        "bb:run",
        "/bin/sh",
        "-c",
        script,
    ];
    let ours = run(&root, &args);
    let mut with_runc = vec!["--runtime", runc];
    with_runc.extend_from_slice(&args);
    let theirs = run(&root, &with_runc);
    assert_eq!(ours.0, 4, "{}", ours.2);
    assert_eq!(
        (ours.0, &ours.1),
        (theirs.0, &theirs.1),
        "runc stderr: {}",
        theirs.2
    );
    assert!(
        ours.1
            .starts_with("yes 1 /tmp 1000:1000 h1 pid=1\nCapBnd:\t00000000a80425fb\n1\n"),
        "{}",
        ours.1
    );
}

#[test]
fn tty_gives_the_container_a_terminal_and_restores_ours() {
    let _serial = serial();
    if !require(
        is_root() && has_tool("script"),
        "root and script (util-linux)",
    ) {
        return;
    }
    let t = tempdir();
    let root = setup(t.path());
    let hoist = format!("{} --root {}", hoist_bin(), root.display());
    // `script` gives hoist a real terminal of 27x91.
    let out = Command::new("script")
        .args(["-qec", &format!("stty cols 91 rows 27; {hoist} run --rm -t bb:run /bin/sh -c 'tty; stty size; exit 3'; echo outer=$?"), "/dev/null"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).replace('\r', "");
    assert_eq!(
        text.lines().collect::<Vec<_>>(),
        ["/dev/pts/0", "27 91", "outer=3"],
        "{text}"
    );
    // -it: what we type reaches the shell; afterwards our terminal is back in canonical mode.
    let mut child = Command::new("script")
        .args([
            "-qec",
            &format!("{hoist} run --rm -it bb:run /bin/sh; echo outer=$?; stty -a"),
            "/dev/null",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"echo typed-$((40+2))\nexit 6\n").unwrap();
    }
    let text = String::from_utf8_lossy(&child.wait_with_output().unwrap().stdout).replace('\r', "");
    assert!(
        text.contains("typed-42") && text.contains("outer=6"),
        "{text}"
    );
    assert!(
        text.split_whitespace().any(|w| w == "icanon"),
        "terminal left in raw mode: {text}"
    );
}

#[test]
fn signals_to_hoist_reach_the_container_and_nothing_is_orphaned() {
    let _serial = serial();
    if !require(is_root(), "root (namespaces, overlay mounts)") {
        return;
    }
    let t = tempdir();
    let root = setup(t.path());
    let mut child = Command::new(hoist_bin())
        .arg("--root")
        .arg(&root)
        .args([
            "run",
            "--rm",
            "bb:run",
            "/bin/sh",
            "-c",
            "trap 'echo got-term; exit 42' TERM; echo ready; while true; do sleep 0.1; done",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut out, &mut line).unwrap();
    assert_eq!(line, "ready\n");
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(child.id() as i32).unwrap(),
        rustix::process::Signal::TERM,
    )
    .unwrap();
    let status = child.wait().unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
    assert_eq!(
        (status.code(), rest.as_str()),
        (Some(42), "got-term\n"),
        "SIGTERM did not reach the container's trap"
    );
    assert_eq!(mounts_mentioning(&root), 0);
    assert_eq!(
        std::fs::read_dir(root.join("containers")).unwrap().count(),
        0
    );
}

#[test]
fn rm_force_of_a_running_container_leaves_no_cgroup() {
    let _serial = serial();
    if !require(
        is_root() && Path::new("/sys/fs/cgroup").exists(),
        "root and cgroups",
    ) {
        return;
    }
    let t = tempdir();
    let root = setup(t.path());
    let mut child = Command::new(hoist_bin())
        .arg("--root")
        .arg(&root)
        .args([
            "run",
            "--name",
            "busy",
            "--memory",
            "64m",
            "--pids-limit",
            "32",
        ])
        .args(["bb:run", "sleep", "60"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let id = loop {
        let ps = hoist_ok(&root, &["ps", "-q"]);
        if let Some(id) = ps.lines().next().filter(|l| !l.is_empty()) {
            break id.to_string();
        }
        assert!(std::time::Instant::now() < deadline, "never running");
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let cgroups = |id: &str| {
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "find /sys/fs/cgroup -maxdepth 5 -path '*hoist/{id}*' -type d | wc -l"
            ))
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    assert_ne!(cgroups(&id), "0", "the running container has a cgroup");
    hoist_ok(&root, &["rm", "-f", "busy"]);
    let status = child.wait().unwrap();
    assert!(!status.success(), "the supervisor was killed");
    assert_eq!(cgroups(&id), "0", "cgroup of `{id}` left after rm -f");
    assert!(hoist_ok(&root, &["ps", "-a", "-q"]).trim().is_empty());
    let sleepers = Command::new("pgrep")
        .args(["-f", "^sleep 60$"])
        .output()
        .unwrap();
    assert!(
        sleepers.stdout.is_empty(),
        "the container's process is gone"
    );
}

/// Restores `/etc/subuid` and `/etc/subgid` (or removes them) when dropped.
struct SubidFiles(Vec<(std::path::PathBuf, Option<Vec<u8>>)>);

impl SubidFiles {
    /// Gives `user` the subordinate range `start:count` in both files, for the test's length.
    fn grant(user: &str, start: u32, count: u32) -> Self {
        let mut saved = Vec::new();
        for f in ["/etc/subuid", "/etc/subgid"] {
            let old = std::fs::read(f).ok();
            let mut text = old.clone().unwrap_or_default();
            text.extend_from_slice(format!("{user}:{start}:{count}\n").as_bytes());
            std::fs::write(f, text).unwrap();
            saved.push((std::path::PathBuf::from(f), old));
        }
        SubidFiles(saved)
    }
}

impl Drop for SubidFiles {
    fn drop(&mut self) {
        for (f, old) in &self.0 {
            let _ = match old {
                Some(bytes) => std::fs::write(f, bytes),
                None => std::fs::remove_file(f),
            };
        }
    }
}

#[test]
fn rootless_as_an_unprivileged_user() {
    use std::os::unix::fs::MetadataExt;
    let _serial = serial();
    let userns = std::fs::read_to_string("/proc/sys/user/max_user_namespaces")
        .is_ok_and(|n| n.trim() != "0");
    if !require(
        is_root(),
        "root (to become an unprivileged user with setpriv)",
    ) || !require(has_tool("setpriv"), "setpriv (util-linux)")
        || !require(has_tool("newuidmap"), "newuidmap (uidmap)")
        || !require(userns, "unprivileged user namespaces")
    {
        return;
    }
    // `nobody` (65534), with a store and a busybox tarball of its own.
    let t = tempdir();
    std::fs::set_permissions(
        t.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let rootfs = busybox_rootfs(t.path());
    // A directory its owner may not write (as /root in Fedora's images), with a file inside.
    std::fs::write(rootfs.join("root/.profile"), "inside\n").unwrap();
    std::fs::set_permissions(
        rootfs.join("root"),
        std::os::unix::fs::PermissionsExt::from_mode(0o550),
    )
    .unwrap();
    let tarball = gnu_tar(&rootfs, &t.path().join("rootfs.tar"));
    // A directory the tarball has twice: 0550, then 0755 (the last entry wins).
    let again = t.path().join("again");
    for (dir, mode) in [(&rootfs, 0o550), (&again, 0o755)] {
        std::fs::create_dir_all(dir.join("twice")).unwrap();
        std::fs::set_permissions(
            dir.join("twice"),
            std::os::unix::fs::PermissionsExt::from_mode(mode),
        )
        .unwrap();
        run_ok(
            Command::new("tar")
                .args(["--numeric-owner", "-rf"])
                .arg(&tarball)
                .arg("-C")
                .arg(dir)
                .arg("./twice"),
        );
    }
    let home = t.path().join("home");
    std::fs::create_dir(&home).unwrap();
    rustix::fs::chown(
        &home,
        Some(rustix::fs::Uid::from_raw(65534)),
        Some(rustix::fs::Gid::from_raw(65534)),
    )
    .unwrap();
    let store = home.join("store");
    let nobody = |args: &[&str]| -> (i32, String, String) {
        let out = Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "env"])
            .arg(format!("HOME={}", home.display()))
            .arg(hoist_bin())
            .arg("--root")
            .arg(&store)
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, _, err) = nobody(&[
        "import",
        tarball.to_str().unwrap(),
        "bb:rootless",
        "-c",
        "ENV PATH=/bin",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("device nodes or privileged attributes need root; skipped"),
        "the skipped /dev/null is reported: {err}"
    );

    // Namespaces, PID 1, root inside (the caller's own files), copy-on-write.
    let (code, out, err) = nobody(&[
        "run",
        "--rm",
        "--hostname",
        "rl",
        "bb:rootless",
        "sh",
        "-c",
        "id -u; echo pid=$$; hostname; stat -c %u:%g /bin/busybox /home/user; \
         cat /proc/self/uid_map; echo cow > /etc/new; rm /etc/group; ls /etc/new",
    ]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[..5], ["0", "pid=1", "rl", "0:0", "0:0"], "{out}");
    assert_eq!(
        lines[5].split_whitespace().collect::<Vec<_>>(),
        ["0", "65534", "1"],
        "root inside is the caller outside: {out}"
    );
    assert_eq!(lines.last(), Some(&"/etc/new"));
    let mut owners = std::collections::BTreeSet::new();
    let mut stack = vec![store.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let m = std::fs::symlink_metadata(e.path()).unwrap();
            owners.insert(m.uid());
            assert!(
                !(e.file_name() == "new" && d.ends_with("etc")),
                "a write reached the store: {}",
                e.path().display()
            );
            if m.is_dir() {
                stack.push(e.path());
            }
        }
    }
    assert_eq!(
        owners.into_iter().collect::<Vec<_>>(),
        [65534],
        "the store is the caller's"
    );
    assert_eq!(mounts_mentioning(&store), 0, "mounts left behind");

    // docker's exit codes; limits are warned about, not fatal; only root exists.
    assert_eq!(
        nobody(&["run", "--rm", "bb:rootless", "sh", "-c", "exit 7"]).0,
        7
    );
    assert_eq!(nobody(&["run", "--rm", "bb:rootless", "nosuch"]).0, 127);
    let (code, _, err) = nobody(&["run", "--rm", "--memory", "32m", "bb:rootless", "true"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("rootless: resource limits ignored"), "{err}");
    let has_range = std::fs::read_to_string("/etc/subuid").is_ok_and(|s| {
        s.lines()
            .any(|l| l.starts_with("nobody:") || l.starts_with("65534:"))
    });
    if !has_range {
        let (code, _, err) = nobody(&["run", "--rm", "-u", "1000", "bb:rootless", "id"]);
        assert_eq!(code, 125, "{err}");
        assert!(
            err.contains("user 1000 does not exist in the rootless user namespace"),
            "{err}"
        );
    }
    let (code, _, err) = nobody(&["run", "--rm", "--read-only", "bb:rootless", "touch", "/x"]);
    assert_ne!(code, 0);
    assert!(err.contains("Read-only file system"), "{err}");
    let (code, out, err) = nobody(&[
        "run",
        "--rm",
        "bb:rootless",
        "sh",
        "-c",
        "stat -c %a /root /twice; cat /root/.profile",
    ]);
    assert_eq!((code, out.as_str()), (0, "550\n755\ninside\n"), "{err}");
    // A read-only volume from a nosuid,nodev mount: the remount keeps those (locked) flags.
    let vol = t.path().join("vol");
    std::fs::create_dir(&vol).unwrap();
    rustix::mount::mount(
        "tmpfs",
        &vol,
        "tmpfs",
        rustix::mount::MountFlags::NOSUID | rustix::mount::MountFlags::NODEV,
        Some(c"mode=0777"),
    )
    .unwrap();
    std::fs::write(vol.join("f"), "vol\n").unwrap();
    let spec = format!("{}:/vol:ro", vol.display());
    let out = nobody(&[
        "run",
        "--rm",
        "-v",
        &spec,
        "bb:rootless",
        "sh",
        "-c",
        "cat /vol/f; touch /vol/g || echo ro",
    ]);
    let _ = rustix::mount::unmount(&vol, rustix::mount::UnmountFlags::DETACH);
    assert_eq!((out.0, out.1.as_str()), (0, "vol\nro\n"), "{}", out.2);

    // A subordinate range gives the other ids; commit and export record the ids inside.
    let _subids = SubidFiles::grant("nobody", 400000, 65536);
    let (code, out, err) = nobody(&[
        "run",
        "--name",
        "rl1",
        "-u",
        "1000:1000",
        "bb:rootless",
        "sh",
        "-c",
        "id -u; id -g; echo mine > /tmp/mine; stat -c %u:%g /tmp/mine",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "1000\n1000\n1000:1000\n");
    assert_eq!(
        nobody(&["commit", "rl1", "bb:committed"]).0,
        0,
        "commit as nobody"
    );
    let (code, out, err) = nobody(&[
        "run",
        "--rm",
        "bb:committed",
        "stat",
        "-c",
        "%u:%g",
        "/tmp/mine",
    ]);
    assert_eq!((code, out.as_str()), (0, "0:0\n"), "{err}");
    let export = home.join("rl1.tar");
    let (code, _, err) = nobody(&["export", "rl1", "-o", export.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let tree = tar_tree(std::fs::File::open(&export).unwrap());
    let owner = |p: &str| tree.get(p).map(|n| (n.uid, n.gid));
    assert_eq!(owner("tmp/mine"), Some((1000, 1000)));
    assert_eq!(owner("bin/busybox"), Some((0, 0)));
    let (code, _, err) = nobody(&["rm", "rl1"]);
    assert_eq!(code, 0, "{err}");
    // Files of other ids inside go with the container (removed from inside the namespace).
    let (code, _, err) = nobody(&[
        "run",
        "--rm",
        "-u",
        "1000",
        "bb:rootless",
        "sh",
        "-c",
        "mkdir -p /tmp/d/e && touch /tmp/d/e/f",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        std::fs::read_dir(store.join("containers")).unwrap().count(),
        0,
        "a rootless container was left behind"
    );

    // What needs root says so.
    let ctx = home.join("ctx");
    std::fs::create_dir(&ctx).unwrap();
    let (code, _, err) = nobody(&["build", ctx.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("hoist build needs root"), "{err}");
}
