//! `hoist build` features Docker 20.10's BuildKit (the differential suite's reference) lacks or
//! cannot show, checked against written expectations: heredocs, `--secret` as an environment
//! variable, `COPY --parents/--exclude/--link`, `ADD URL --checksum`, `RUN --network=none`;
//! failing Dockerfiles (the line and the reason); reproducible builds with SOURCE_DATE_EPOCH.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Output;

use common::*;

/// A store with the busybox image `bb:base`, and an empty context dir.
fn setup(t: &Path) -> (PathBuf, PathBuf) {
    store_with_busybox(t, "bb:base", &["CMD [\"sh\"]"], |_| {})
}

fn build(root: &Path, ctx: &Path, dockerfile: &str, extra: &[&str]) -> Output {
    std::fs::write(ctx.join("Dockerfile"), dockerfile).unwrap();
    let mut args = vec!["build", "--progress", "plain"];
    args.extend_from_slice(extra);
    args.push(ctx.to_str().unwrap());
    hoist(root, &args)
}

fn build_ok(root: &Path, ctx: &Path, dockerfile: &str, extra: &[&str]) -> String {
    let out = build(root, ctx, dockerfile, extra);
    assert!(
        out.status.success(),
        "build failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Builds and fails: returns stderr after checking exit code 1, that nothing was tagged or
/// printed on stdout, and that no scratch dir or mount is left.
fn build_err(root: &Path, ctx: &Path, dockerfile: &str, extra: &[&str]) -> String {
    let mut args = vec!["-t", "must-not-exist:1"];
    args.extend_from_slice(extra);
    let out = build(root, ctx, dockerfile, &args);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(out.stdout.is_empty(), "no image ID on stdout");
    let images = hoist_ok(root, &["images"]);
    assert!(!images.contains("must-not-exist"), "{images}");
    assert_no_build_leftovers(root);
    err
}

/// The image's flattened rootfs, unpacked.
fn export(root: &Path, image: &str, t: &Path) -> PathBuf {
    let name = image.replace([':', '/'], "-");
    let tar = t.join(format!("export-{name}.tar"));
    hoist_ok(root, &["export", image, "-o", tar.to_str().unwrap()]);
    let dir = t.join(format!("export-{name}"));
    std::fs::create_dir_all(&dir).unwrap();
    run_ok(
        std::process::Command::new("tar")
            .args(["--numeric-owner", "-xpf"])
            .arg(&tar)
            .arg("-C")
            .arg(&dir),
    );
    dir
}

fn read(p: impl AsRef<Path>) -> String {
    std::fs::read_to_string(p.as_ref()).unwrap_or_else(|e| panic!("{}: {e}", p.as_ref().display()))
}

#[test]
fn heredocs_run_and_copy() {
    if !require(is_root(), "root (namespaces, overlay mounts)") {
        return;
    }
    let t = tempdir();
    let (root, ctx) = setup(t.path());
    let df = "FROM bb:base\n\
ARG NAME=world\n\
ENV GREETING=hello\n\
RUN <<EOF\n\
echo \"$GREETING $NAME\" > /plain\n\
echo second line >> /plain\n\
EOF\n\
RUN <<EOF\n\
#!/bin/sh\n\
echo \"script $0\" > /shebang\n\
EOF\n\
RUN cat <<A > /two && cat <<B >> /two\n\
first\n\
A\n\
second\n\
B\n\
RUN <<-EOF\n\
\techo tabs-stripped > /chomped\n\
\tEOF\n\
COPY <<EOF /etc/expanded.conf\n\
name=${NAME} greeting=$GREETING \"kept quotes\"\n\
EOF\n\
COPY <<'EOF' /etc/literal.conf\n\
name=${NAME}\n\
EOF\n\
COPY --chmod=0755 <<EOF1 <<EOF2 /scripts/\n\
#!/bin/sh\n\
echo one\n\
EOF1\n\
two\n\
EOF2\n\
COPY conf/ <<APPINI /etc/app/\n\
from-heredoc\n\
APPINI\n";
    // A directory and a heredoc into one new destination: the later source wins.
    std::fs::create_dir_all(ctx.join("conf")).unwrap();
    std::fs::write(ctx.join("conf/APPINI"), "from-dir\n").unwrap();
    std::fs::write(ctx.join("conf/other"), "other\n").unwrap();
    let id = build_ok(&root, &ctx, df, &["-t", "here:1"]);
    let fs = export(&root, "here:1", t.path());
    assert_eq!(read(fs.join("plain")), "hello world\nsecond line\n");
    assert_eq!(read(fs.join("shebang")), "script /dev/pipes/EOF\n");
    assert_eq!(read(fs.join("two")), "first\nsecond\n");
    assert_eq!(read(fs.join("chomped")), "tabs-stripped\n");
    assert_eq!(
        read(fs.join("etc/expanded.conf")),
        "name=world greeting=hello \"kept quotes\"\n"
    );
    assert_eq!(read(fs.join("etc/literal.conf")), "name=${NAME}\n");
    assert_eq!(read(fs.join("scripts/EOF1")), "#!/bin/sh\necho one\n");
    assert_eq!(read(fs.join("scripts/EOF2")), "two\n");
    assert_eq!(read(fs.join("etc/app/APPINI")), "from-heredoc\n");
    assert_eq!(read(fs.join("etc/app/other")), "other\n");
    let m = std::fs::metadata(fs.join("scripts/EOF1")).unwrap();
    assert_eq!(m.mode() & 0o7777, 0o755);
    let m = std::fs::metadata(fs.join("etc/literal.conf")).unwrap();
    assert_eq!(
        (m.mode() & 0o7777, m.uid()),
        (0o644, 0),
        "heredoc files: 0644 root"
    );
    assert!(!fs.join("dev/pipes").exists() || read_dir_empty(&fs.join("dev/pipes")));
    // A changed heredoc body is a cache miss; an unchanged one is not.
    let again = build_ok(&root, &ctx, df, &[]);
    assert_eq!(again, id);
    let changed = build_ok(&root, &ctx, &df.replace("second line", "other line"), &[]);
    assert_ne!(changed, id);
}

fn read_dir_empty(p: &Path) -> bool {
    std::fs::read_dir(p).map_or(true, |mut d| d.next().is_none())
}

#[test]
fn secrets_never_reach_the_image() {
    if !require(is_root(), "root (namespaces, overlay mounts)") {
        return;
    }
    let t = tempdir();
    let (root, ctx) = setup(t.path());
    let file = t.path().join("token");
    std::fs::write(&file, "file-secret-value").unwrap();
    let df = "FROM bb:base\n\
RUN --mount=type=secret,id=tok wc -c < /run/secrets/tok > /len && stat -c '%a %u' /run/secrets/tok > /mode\n\
RUN --mount=type=secret,id=envtok,env=TOKEN,uid=1000 sh -c 'echo ${#TOKEN} > /envlen'\n\
RUN --mount=type=secret,id=tok,target=/custom/path,mode=0440 cat /custom/path | wc -c > /custom-len\n";
    let out = {
        std::fs::write(ctx.join("Dockerfile"), df).unwrap();
        std::process::Command::new(hoist_bin())
            .env("ENV_SECRET", "env-secret-value-123")
            .arg("--root")
            .arg(&root)
            .args(["build", "-t", "sec:1", "--progress", "plain"])
            .arg(format!("--secret=id=tok,src={}", file.display()))
            .arg("--secret=id=envtok,env=ENV_SECRET")
            .arg(&ctx)
            .output()
            .unwrap()
    };
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let fs = export(&root, "sec:1", t.path());
    assert_eq!(read(fs.join("len")).trim(), "17");
    assert_eq!(read(fs.join("mode")).trim(), "400 0");
    assert_eq!(read(fs.join("envlen")).trim(), "20");
    assert_eq!(read(fs.join("custom-len")).trim(), "17");
    assert!(!fs.join("run").exists(), "no mount point left in a layer");
    assert!(
        !fs.join("custom").exists(),
        "no mount point left in a layer"
    );
    // Nowhere in the store: layers, config, history, cache records.
    let grep = std::process::Command::new("grep")
        .args([
            "-r",
            "-l",
            "-e",
            "file-secret-value",
            "-e",
            "env-secret-value",
        ])
        .arg(&root)
        .output()
        .unwrap();
    assert!(
        grep.stdout.is_empty(),
        "secret found in {}",
        String::from_utf8_lossy(&grep.stdout)
    );
    assert!(!err.contains("secret-value"), "{err}");
    // A required secret that was not given fails, naming it.
    let err = build_err(
        &root,
        &ctx,
        "FROM bb:base\nRUN --mount=type=secret,id=missing,required true\n",
        &[],
    );
    assert!(
        err.contains("Dockerfile:2") && err.contains("`missing`"),
        "{err}"
    );
}

#[test]
fn copy_parents_exclude_link_and_run_network_none() {
    if !require(is_root(), "root (namespaces, overlay mounts)") {
        return;
    }
    let t = tempdir();
    let (root, ctx) = setup(t.path());
    for f in [
        "src/a/x.go",
        "src/a/x_test.go",
        "src/b/y.go",
        "docs/readme.md",
    ] {
        let p = ctx.join(f);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, f).unwrap();
    }
    // `--from` sees the ARGs before the first FROM only (`${SEED:?}` would fail in the stage).
    let df = "ARG SEED=seed\n\
FROM bb:base AS seed\n\
RUN mkdir /seed && echo seeded > /seed/first\n\
FROM bb:base\n\
COPY --from=${SEED:?unset} /seed/first /seed-first\n\
RUN --mount=type=cache,from=${SEED:?unset},source=/seed,target=/c,id=seeded ls /c > /seen && echo more > /c/second\n\
RUN --mount=type=cache,from=seed,source=/seed,target=/c,id=seeded ls /c > /seen-again\n\
COPY --parents src/*/*.go /keep/\n\
COPY --exclude=**/*_test.go src /noexclude/\n\
COPY --link docs/ /linked/\n\
RUN --network=none cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d ' ' > /ifaces\n";
    build_ok(&root, &ctx, df, &["-t", "feat:1"]);
    let fs = export(&root, "feat:1", t.path());
    assert_eq!(read(fs.join("keep/src/a/x.go")), "src/a/x.go");
    assert_eq!(read(fs.join("keep/src/b/y.go")), "src/b/y.go");
    assert!(
        fs.join("keep/src/a/x_test.go").exists(),
        "*.go matches _test.go"
    );
    assert!(fs.join("noexclude/a/x.go").exists());
    assert!(!fs.join("noexclude/a/x_test.go").exists(), "--exclude");
    assert_eq!(read(fs.join("linked/readme.md")), "docs/readme.md");
    assert_eq!(
        read(fs.join("seen")),
        "first\n",
        "a cache seeded from a stage"
    );
    assert_eq!(
        read(fs.join("seen-again")),
        "first\nsecond\n",
        "and kept between runs"
    );
    assert!(!fs.join("c").exists(), "the cache is not in a layer");
    assert_eq!(
        read(fs.join("ifaces")),
        "lo\n",
        "--network=none has only loopback"
    );
}

/// A tiny HTTP server on a free loopback port serving `body` for every GET, with a
/// Last-Modified header, until the returned port's listener is dropped with the process.
fn serve(body: &'static [u8]) -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut line = String::new();
            let mut path = String::new();
            while r.read_line(&mut line).is_ok_and(|n| n > 0) {
                if path.is_empty() {
                    path = line.split_whitespace().nth(1).unwrap_or("").to_string();
                }
                if line == "\r\n" {
                    break;
                }
                line.clear();
            }
            let (status, body): (&str, &[u8]) = if path.starts_with("/missing") {
                ("404 Not Found", b"no")
            } else {
                ("200 OK", body)
            };
            let _ = write!(
                s,
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nLast-Modified: Sun, 06 Nov 1994 08:49:37 GMT\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = s.write_all(body);
        }
    });
    port
}

#[test]
fn add_from_a_url_with_checksum() {
    if !require(is_root(), "root (namespaces, overlay mounts)") {
        return;
    }
    let t = tempdir();
    let (root, ctx) = setup(t.path());
    let body: &'static [u8] = b"downloaded content\n";
    let port = serve(body);
    let sum = format!(
        "sha256:{}",
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(body))
    );
    let df = format!(
        "FROM bb:base\n\
ADD http://127.0.0.1:{port}/files/tool.txt /dl/\n\
ADD --checksum={sum} http://127.0.0.1:{port}/files/tool.txt /checked.txt\n\
ADD --chown=1000:1000 http://127.0.0.1:{port}/files/tool.txt?x=1 /owned\n"
    );
    build_ok(&root, &ctx, &df, &["-t", "url:1"]);
    let fs = export(&root, "url:1", t.path());
    assert_eq!(read(fs.join("dl/tool.txt")), "downloaded content\n");
    let m = std::fs::metadata(fs.join("dl/tool.txt")).unwrap();
    assert_eq!(m.mode() & 0o7777, 0o600, "ADD URL files are 0600");
    assert_eq!(m.mtime(), 784111777, "mtime from Last-Modified");
    assert_eq!(read(fs.join("checked.txt")), "downloaded content\n");
    let m = std::fs::metadata(fs.join("owned")).unwrap();
    assert_eq!((m.uid(), m.gid()), (1000, 1000));

    let wrong = format!("sha256:{}", "0".repeat(64));
    let err = build_err(
        &root,
        &ctx,
        &format!("FROM bb:base\nADD --checksum={wrong} http://127.0.0.1:{port}/f /f\n"),
        &[],
    );
    assert!(
        err.contains("Dockerfile:2") && err.contains("checksum"),
        "{err}"
    );
    let err = build_err(
        &root,
        &ctx,
        &format!("FROM bb:base\n\nADD http://127.0.0.1:{port}/missing /f\n"),
        &[],
    );
    assert!(err.contains("Dockerfile:3") && err.contains("404"), "{err}");
}

#[test]
fn failing_dockerfiles_name_the_line_and_reason() {
    if !require(is_root(), "root (namespaces, overlay mounts)") {
        return;
    }
    let t = tempdir();
    let (root, ctx) = setup(t.path());
    std::fs::write(ctx.join("inside.txt"), "in\n").unwrap();
    std::fs::write(t.path().join("outside.txt"), "out\n").unwrap();

    let err = build_err(&root, &ctx, "FROM bb:base\nFROBNICATE all\n", &[]);
    assert!(err.contains("Dockerfile:2"), "{err}");
    assert!(err.to_lowercase().contains("unknown instruction"), "{err}");
    assert!(err.contains("FROBNICATE"), "{err}");

    // A base that exists nowhere: a loopback registry port where nothing listens.
    let port = free_port();
    let err = build_err(
        &root,
        &ctx,
        &format!("FROM bb:base AS ok\nFROM 127.0.0.1:{port}/nothing/here:1\nRUN true\n"),
        &[],
    );
    assert!(err.contains("Dockerfile:2"), "{err}");
    assert!(
        err.contains(&format!("127.0.0.1:{port}/nothing/here:1")),
        "{err}"
    );

    // `..` cannot leave the context: it is clamped to the context's root, as BuildKit does.
    let err = build_err(&root, &ctx, "FROM bb:base\nCOPY ../outside.txt /x\n", &[]);
    assert!(err.contains("Dockerfile:2"), "{err}");
    assert!(err.contains("outside.txt"), "{err}");
    // A symlink out of the context named as a source resolves inside the context (not
    // found here); inside a copied directory it stays a symlink.
    std::fs::create_dir(ctx.join("dir")).unwrap();
    let outside = t.path().join("outside.txt");
    std::os::unix::fs::symlink(&outside, ctx.join("link")).unwrap();
    std::os::unix::fs::symlink(&outside, ctx.join("dir/link")).unwrap();
    let err = build_err(&root, &ctx, "FROM bb:base\nCOPY link /link\n", &[]);
    assert!(
        err.contains("Dockerfile:2") && err.contains("`link`: not found"),
        "{err}"
    );
    build_ok(
        &root,
        &ctx,
        "FROM bb:base\nCOPY dir /d\n",
        &["-t", "link:1"],
    );
    let fs = export(&root, "link:1", t.path());
    let target = std::fs::read_link(fs.join("d/link")).unwrap();
    assert_eq!(target, outside, "kept as a symlink, not followed");

    // A failing RUN: its exit status and last output lines.
    let err = build_err(
        &root,
        &ctx,
        "FROM bb:base\nRUN echo ok > /ok\nRUN echo visible-output; echo on-stderr >&2; exit 42\n",
        &[],
    );
    assert!(
        err.contains("Dockerfile:3") && err.contains("exit code 42"),
        "{err}"
    );
    assert!(
        err.contains("visible-output") && err.contains("on-stderr"),
        "{err}"
    );
    // The step before the failure was recorded: fixed, the build reuses it.
    let out = build(
        &root,
        &ctx,
        "FROM bb:base\nRUN echo ok > /ok\nRUN true\n",
        &[],
    );
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert_eq!(log.matches("CACHED").count(), 1, "{log}");
    // A missing COPY source.
    let err = build_err(&root, &ctx, "FROM bb:base\nCOPY nope.txt /\n", &[]);
    assert!(
        err.contains("Dockerfile:2") && err.contains("nope.txt"),
        "{err}"
    );
}

#[test]
fn source_date_epoch_gives_the_same_digest_on_clean_stores() {
    if !require(is_root(), "root (namespaces, overlay mounts)") {
        return;
    }
    let t = tempdir();
    let df = "FROM bb:base\n\
RUN echo built > /built && mkdir -p /var/lib/app && date +%s > /var/lib/app/stamp-is-content\n\
COPY . /ctx/\n\
WORKDIR /srv\n\
ENV X=1\n";
    let mut ids = Vec::new();
    // The same base in both clean stores: imported once, saved, loaded into the second.
    let base_tar = t.path().join("base.tar");
    for n in 0..2 {
        let dir = t.path().join(format!("run{n}"));
        std::fs::create_dir_all(&dir).unwrap();
        let (root, ctx) = if n == 0 {
            let (root, ctx) = setup(&dir);
            hoist_ok(
                &root,
                &["save", "-o", base_tar.to_str().unwrap(), "bb:base"],
            );
            (root, ctx)
        } else {
            let root = dir.join("store");
            hoist_ok(&root, &["load", "-i", base_tar.to_str().unwrap()]);
            let ctx = dir.join("ctx");
            std::fs::create_dir_all(&ctx).unwrap();
            (root, ctx)
        };
        std::fs::write(ctx.join("a.txt"), "same\n").unwrap();
        std::fs::write(ctx.join("Dockerfile"), df.replace("date +%s", "echo fixed")).unwrap();
        // Fresh checkouts: file times differ between the two (both after the epoch, so
        // clamped to it).
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::File::options()
            .write(true)
            .open(ctx.join("a.txt"))
            .unwrap()
            .set_modified(std::time::SystemTime::now())
            .unwrap();
        let out = std::process::Command::new(hoist_bin())
            .env("SOURCE_DATE_EPOCH", "1700000000")
            .arg("--root")
            .arg(&root)
            .args(["build", "-q", "-t", "repro:1"])
            .arg(&ctx)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let inspect = hoist_ok(&root, &["inspect", "repro:1"]);
        let v: serde_json::Value = serde_json::from_str(&inspect).unwrap();
        let v = if v.is_array() { v[0].clone() } else { v };
        ids.push((
            String::from_utf8_lossy(&out.stdout).trim().to_string(),
            v.to_string(),
        ));
        // Every new history entry has the epoch's time.
        assert!(v.to_string().contains("2023-11-14T22:13:20Z"), "{v}");
        // A second build in the same store after a sleep: still the same.
        if n == 1 {
            std::thread::sleep(std::time::Duration::from_millis(1100));
            let again = std::process::Command::new(hoist_bin())
                .env("SOURCE_DATE_EPOCH", "1700000000")
                .arg("--root")
                .arg(&root)
                .args(["build", "-q", "--no-cache"])
                .arg(&ctx)
                .output()
                .unwrap();
            assert_eq!(
                String::from_utf8_lossy(&again.stdout).trim(),
                ids[1].0,
                "--no-cache rebuild gives the same image ID"
            );
        }
    }
    assert_eq!(ids[0].0, ids[1].0, "image IDs differ");
}

#[test]
fn output_archives_json_progress_and_platform() {
    if !require(
        is_root() && has_tool("skopeo") && has_tool("umoci"),
        "root, skopeo and umoci",
    ) {
        return;
    }
    let t = tempdir();
    let (root, ctx) = setup(t.path());
    std::fs::write(ctx.join("a.txt"), "a\n").unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM bb:base\nCOPY a.txt /a.txt\nRUN echo ran\n",
    )
    .unwrap();
    let oci = t.path().join("out-oci.tar");
    let docker = t.path().join("out-docker.tar");
    let rootfs = t.path().join("out-rootfs.tar");
    for (kind, dest) in [("oci", &oci), ("docker", &docker), ("tar", &rootfs)] {
        let out = hoist(
            &root,
            &[
                "build",
                "--progress",
                "json",
                "-t",
                "out:1",
                "--output",
                &format!("type={kind},dest={}", dest.display()),
                ctx.to_str().unwrap(),
            ],
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{err}");
        // Every progress line is a JSON object with an event.
        let events: Vec<serde_json::Value> = err
            .lines()
            .filter(|l| l.starts_with('{'))
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert!(events.iter().any(|e| e["event"] == "step"), "{err}");
        assert!(events.iter().all(|e| e["event"].is_string()), "{err}");
    }
    // skopeo and umoci read the archives; the rootfs tar has the file.
    let layout = t.path().join("layout");
    run_ok(
        std::process::Command::new("skopeo")
            .args(["copy", "--quiet"])
            .arg(format!("oci-archive:{}", oci.display()))
            .arg(format!("oci:{}:out", layout.display())),
    );
    let unpacked = t.path().join("umoci");
    run_ok(
        std::process::Command::new("umoci")
            .args(["raw", "unpack", "--rootless", "--image"])
            .arg(format!("{}:out", layout.display()))
            .arg(&unpacked),
    );
    assert_eq!(read(unpacked.join("a.txt")), "a\n");
    let inspect = run_ok(
        std::process::Command::new("skopeo")
            .arg("inspect")
            .arg(format!("docker-archive:{}", docker.display())),
    );
    assert!(inspect.contains("\"Layers\""), "{inspect}");
    let names = run_ok(std::process::Command::new("tar").arg("-tf").arg(&rootfs));
    assert!(
        names.lines().any(|l| l.trim_start_matches("./") == "a.txt"),
        "{names}"
    );

    // --platform: a foreign image builds without RUN; a RUN says it cannot run it.
    let out = build(
        &root,
        &ctx,
        "FROM scratch\nCOPY a.txt /\nRUN true\n",
        &["--platform", "linux/s390x"],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("Dockerfile:3") && err.contains("no emulation"),
        "{err}"
    );
    let id = build_ok(
        &root,
        &ctx,
        "FROM scratch\nCOPY a.txt /\n",
        &["--platform", "linux/s390x"],
    );
    let config = hoist_ok(&root, &["inspect", &id]);
    assert!(config.contains("s390x"), "{config}");
}

#[test]
fn context_or_dockerfile_from_stdin() {
    if !require(is_root(), "root (namespaces, overlay mounts)") {
        return;
    }
    let t = tempdir();
    let (root, ctx) = setup(t.path());
    std::fs::create_dir_all(ctx.join("sub")).unwrap();
    std::fs::write(ctx.join("sub/b.txt"), "b\n").unwrap();
    std::fs::write(
        ctx.join("build.Dockerfile"),
        "FROM bb:base\nCOPY sub /sub\n",
    )
    .unwrap();
    let from_dir = build_ok(&root, &ctx, "FROM bb:base\nCOPY sub /sub\n", &[]);
    let piped = |stdin: Vec<u8>, args: &[&str]| {
        let mut child = std::process::Command::new(hoist_bin())
            .arg("--root")
            .arg(&root)
            .arg("build")
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(&stdin).unwrap();
        child.wait_with_output().unwrap()
    };
    // A gzip tar of the context, `-f` inside it: the same image as from the directory.
    let tgz = std::process::Command::new("tar")
        .arg("-C")
        .arg(&ctx)
        .args(["-cz", "sub", "build.Dockerfile"])
        .output()
        .unwrap()
        .stdout;
    let out = piped(tgz, &["-q", "-f", "build.Dockerfile", "-"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), from_dir);
    // Only a Dockerfile: an empty context.
    let out = piped(
        b"FROM bb:base\nRUN echo piped > /p\n".to_vec(),
        &["-q", "-t", "p:1", "-"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let fs = export(&root, "p:1", t.path());
    assert_eq!(read(fs.join("p")), "piped\n");
    let out = piped(b"FROM bb:base\nCOPY sub /sub\n".to_vec(), &["-q", "-"]);
    assert!(!out.status.success(), "no context: COPY finds nothing");
    assert!(String::from_utf8_lossy(&out.stderr).contains("`sub`: not found"));
}

#[test]
fn run_security_insecure_needs_the_entitlement() {
    if !require(is_root(), "root (namespaces, overlay mounts)") {
        return;
    }
    let t = tempdir();
    let (root, ctx) = setup(t.path());
    // CapEff of the RUN: docker's default set in the sandbox, all with the entitlement.
    let df = "FROM bb:base\n\
RUN --security=insecure grep CapEff /proc/self/status | tr -d '\\t' > /caps-insecure\n\
RUN grep CapEff /proc/self/status | tr -d '\\t' > /caps-sandbox\n";
    let err = build_err(&root, &ctx, df, &[]);
    assert!(
        err.contains("Dockerfile:2") && err.contains("--allow security.insecure"),
        "{err}"
    );
    build_ok(
        &root,
        &ctx,
        df,
        &["--allow", "security.insecure", "-t", "ins:1"],
    );
    let fs = export(&root, "ins:1", t.path());
    let insecure = read(fs.join("caps-insecure"));
    let sandbox = read(fs.join("caps-sandbox"));
    assert_eq!(
        sandbox.trim(),
        "CapEff:00000000a80425fb",
        "docker's default set"
    );
    assert_ne!(insecure, sandbox, "every capability: {insecure}");
    assert!(
        insecure.trim().starts_with("CapEff:000001ff")
            || insecure.trim().starts_with("CapEff:000003ff"),
        "{insecure}"
    );
}
