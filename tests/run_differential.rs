//! Differential suite: the same images and commands under `docker run --network host` (a
//! dockerd this test starts on a private socket) and `hoist run --network host`; stdout and exit
//! codes must be equal. Covers ENTRYPOINT/CMD/argument combinations in exec and shell form,
//! `--entrypoint`, env merging, `-u` by name and number with supplementary groups, `-w`, and
//! missing or non-executable commands.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;

#[test]
fn hoist_run_matches_docker_run() {
    if !require(is_root() && has_tool("dockerd"), "root and dockerd") {
        return;
    }
    let t = tempdir();
    let root = t.path().join("store");
    let rootfs = busybox_rootfs(t.path());
    std::fs::write(
        rootfs.join("etc/group"),
        "root:x:0:\nstaff:x:50:user,other\nuser:x:1000:\nnogroup:x:65534:\n",
    )
    .unwrap();
    let tarball = gnu_tar(&rootfs, &t.path().join("rootfs.tar"));
    let tar = tarball.to_str().unwrap();
    let images: [(&str, &[&str]); 5] = [
        (
            "diff:plain",
            &["CMD [\"echo\", \"cmd-exec\"]", "ENV PATH=/bin"],
        ),
        (
            "diff:shellcmd",
            &["CMD echo cmd-shell $HOME", "ENV PATH=/bin"],
        ),
        (
            "diff:entry",
            &[
                "ENTRYPOINT [\"echo\", \"entry\"]",
                "CMD [\"default-arg\"]",
                "ENV PATH=/bin",
            ],
        ),
        (
            "diff:entryshell",
            &["ENTRYPOINT echo entry-shell", "ENV PATH=/bin"],
        ),
        (
            "diff:env",
            &[
                "ENV PATH=/bin A=1 B=\"two words\"",
                "WORKDIR /srv",
                "USER user",
            ],
        ),
    ];
    for (name, changes) in images {
        let mut args = vec!["import", tar, name];
        for c in changes {
            args.extend(["-c", c]);
        }
        hoist_ok(&root, &args);
    }
    let archive = t.path().join("images.tar");
    let mut save = vec!["save", "-o", archive.to_str().unwrap()];
    save.extend(images.iter().map(|(n, _)| *n));
    hoist_ok(&root, &save);
    let docker = Dockerd::start();
    docker.ok(&["load", "-i", archive.to_str().unwrap()]);

    let cases: &[&[&str]] = &[
        &["diff:plain"],
        &["diff:plain", "echo", "override"],
        &["diff:shellcmd"],
        &["diff:entry"],
        &["diff:entry", "x", "y"],
        &["diff:entryshell"],
        &["diff:entryshell", "ignored", "args"],
        &["--entrypoint", "/bin/echo", "diff:entry", "a"],
        &["--entrypoint", "", "diff:entry", "echo", "reset"],
        &["diff:env", "sh", "-c", "echo $A / $B; pwd; id"],
        &[
            "-e",
            "A=override",
            "-e",
            "C=3",
            "diff:env",
            "sh",
            "-c",
            "echo $A $B $C",
        ],
        &["diff:env", "sh", "-c", "env | grep -v HOSTNAME | sort"],
        &["-u", "0", "diff:env", "id"],
        &["-u", "user:nogroup", "diff:env", "id"],
        &["-u", "1234", "diff:plain", "id"],
        &["-u", "1234:77", "diff:plain", "id"],
        &["-w", "/newdir", "diff:plain", "pwd"],
        &[
            "-w",
            "/tmp",
            "-u",
            "nobody",
            "diff:plain",
            "sh",
            "-c",
            "pwd; id -u; echo $HOME",
        ],
        &["diff:plain", "sh", "-c", "exit 5"],
        &["diff:plain", "no-such-command"],
        &["diff:plain", "/etc/passwd"],
        &["diff:plain", "/etc"],
    ];
    let mut failures = Vec::new();
    for case in cases {
        let mut d = docker.cmd();
        d.args(["run", "--rm", "--network", "host", "--hostname", "h"])
            .args(*case);
        let d = d.output().unwrap();
        let mut h = vec!["run", "--rm", "--network", "host", "--hostname", "h"];
        h.extend_from_slice(case);
        let o = hoist(&root, &h);
        let (dc, hc) = (d.status.code(), o.status.code());
        let (ds, hs) = (
            String::from_utf8_lossy(&d.stdout),
            String::from_utf8_lossy(&o.stdout),
        );
        if dc != hc || ds != hs {
            failures.push(format!(
                "{case:?}\n  docker: {dc:?} {ds:?} ({})\n  hoist:  {hc:?} {hs:?} ({})",
                String::from_utf8_lossy(&d.stderr).trim(),
                String::from_utf8_lossy(&o.stderr).trim()
            ));
        }
    }
    println!(
        "run differential vs docker: {} passed, {} failed",
        cases.len() - failures.len(),
        failures.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
