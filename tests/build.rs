//! `hoist build` on the real kernel: a busybox base imported into the store (no registry),
//! RUN in the sandbox on overlay, COPY from the context and from a stage, the image config and
//! history as BuildKit writes them, and the build cache (failing builds: `tests/build_features.rs`).

#![allow(clippy::unwrap_used)]

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Output;

use common::*;

/// A store with the busybox image `bb:base`, and an empty context dir.
fn setup(t: &Path) -> (PathBuf, PathBuf) {
    store_with_busybox(
        t,
        "bb:base",
        &["ENV PATH=/usr/sbin:/usr/bin:/sbin:/bin", "CMD [\"sh\"]"],
        |r| std::fs::write(r.join("etc/motd"), "welcome\n").unwrap(),
    )
}

fn build(root: &Path, ctx: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["build", "--progress", "plain"];
    args.extend_from_slice(extra);
    args.push(ctx.to_str().unwrap());
    hoist(root, &args)
}

fn build_ok(root: &Path, ctx: &Path, extra: &[&str]) -> (String, String) {
    let out = build(root, ctx, extra);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "build failed:\n{stderr}");
    let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(
        id.starts_with("sha256:") && id.len() == 71 && !id.contains('\n'),
        "stdout is only the image ID: {id:?}"
    );
    (id, stderr)
}

/// The image config as stored (the image ID is its digest).
fn config(root: &Path, id: &str) -> serde_json::Value {
    let hex = id.strip_prefix("sha256:").unwrap();
    serde_json::from_slice(&std::fs::read(root.join("blobs/sha256").join(hex)).unwrap()).unwrap()
}

fn export(root: &Path, image: &str, t: &Path) -> PathBuf {
    let tar = t.join(format!("export-{}.tar", &image.replace([':', '/'], "-")));
    hoist_ok(root, &["export", image, "-o", tar.to_str().unwrap()]);
    let dir = t.join(format!("export-{}", &image.replace([':', '/'], "-")));
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

const DOCKERFILE: &str = r#"FROM bb:base
ARG VERSION=1.0
ENV APP_HOME=/srv/app GREETING="hello world"
LABEL org.example.version=$VERSION maintainer.name="Jo"
EXPOSE 80 53/udp
WORKDIR $APP_HOME
RUN echo hi > /hello && rm /etc/motd && echo "v=$VERSION" > version.txt && echo run-marker-$((40+2))
COPY dir/ /data/
COPY *.txt /texts/
COPY --chown=1000:1000 owned.conf /conf/owned.conf
COPY --chmod=600 secret.key /conf/
USER user
CMD ["run.sh", "--fast"]
ENTRYPOINT ["/bin/sh", "-c"]
"#;

fn write_context(ctx: &Path) {
    std::fs::write(ctx.join("Dockerfile"), DOCKERFILE).unwrap();
    std::fs::create_dir_all(ctx.join("dir/sub")).unwrap();
    std::fs::write(ctx.join("dir/a.txt"), "a\n").unwrap();
    std::fs::write(ctx.join("dir/sub/b.txt"), "b\n").unwrap();
    std::fs::write(ctx.join("one.txt"), "one\n").unwrap();
    std::fs::write(ctx.join("two.txt"), "two\n").unwrap();
    std::fs::write(ctx.join("owned.conf"), "owned\n").unwrap();
    std::fs::write(ctx.join("secret.key"), "secret\n").unwrap();
    std::fs::set_permissions(
        ctx.join("secret.key"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    std::fs::write(ctx.join("ignored.log"), "noise\n").unwrap();
    std::fs::write(ctx.join(".dockerignore"), "*.log\n").unwrap();
}

#[test]
fn build_instructions_config_history_and_rootfs() {
    if !require(is_root(), "root (namespaces, overlay mounts)") {
        return;
    }
    let t = tempdir();
    let (root, ctx) = setup(t.path());
    write_context(&ctx);
    let (id, log) = build_ok(&root, &ctx, &["-t", "app:1", "--label", "extra=yes"]);
    assert!(log.contains("RUN echo hi"), "{log}");
    assert!(log.contains("DONE"), "{log}");

    let out = hoist(
        &root,
        &["run", "--rm", "--entrypoint", "", "app:1", "cat", "/hello"],
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hi\n", "{out:?}");

    let c = config(&root, &id);
    let rc = &c["config"];
    assert_eq!(rc["WorkingDir"], "/srv/app");
    assert_eq!(rc["User"], "user");
    assert_eq!(rc["Entrypoint"], serde_json::json!(["/bin/sh", "-c"]));
    assert_eq!(
        rc["Cmd"],
        serde_json::json!(["run.sh", "--fast"]),
        "a CMD set in this stage survives ENTRYPOINT"
    );
    let env: Vec<&str> = rc["Env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    assert!(env.contains(&"APP_HOME=/srv/app"), "{env:?}");
    assert!(env.contains(&"GREETING=hello world"), "{env:?}");
    assert!(
        !env.iter().any(|e| e.starts_with("VERSION=")),
        "ARG is not ENV"
    );
    assert_eq!(rc["Labels"]["org.example.version"], "1.0");
    assert_eq!(rc["Labels"]["maintainer.name"], "Jo");
    assert_eq!(rc["Labels"]["extra"], "yes");
    assert_eq!(
        rc["ExposedPorts"],
        serde_json::json!({"80/tcp": {}, "53/udp": {}})
    );
    let inspect = hoist_ok(&root, &["inspect", "app:1"]);
    assert!(
        inspect.contains("\"WorkingDir\": \"/srv/app\""),
        "{inspect}"
    );

    let history: Vec<(String, bool)> = c["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["created_by"].as_str().unwrap_or("").to_string(),
                h["empty_layer"].as_bool().unwrap_or(false),
            )
        })
        .collect();
    let ours: Vec<(String, bool)> = history[history.len() - 13..].to_vec();
    let want: Vec<(String, bool)> = [
        ("ARG VERSION=1.0", true),
        ("ENV APP_HOME=/srv/app GREETING=hello world", true),
        ("LABEL org.example.version=1.0 maintainer.name=Jo", true),
        ("EXPOSE map[53/udp:{} 80/tcp:{}]", true),
        ("WORKDIR /srv/app", false),
        (
            "RUN |1 VERSION=1.0 /bin/sh -c echo hi > /hello && rm /etc/motd && echo \"v=$VERSION\" > version.txt && echo run-marker-$((40+2)) # buildkit",
            false,
        ),
        ("COPY dir/ /data/ # buildkit", false),
        ("COPY *.txt /texts/ # buildkit", false),
        ("COPY owned.conf /conf/owned.conf # buildkit", false),
        ("COPY secret.key /conf/ # buildkit", false),
        ("USER user", true),
        ("CMD [\"run.sh\" \"--fast\"]", true),
        ("ENTRYPOINT [\"/bin/sh\" \"-c\"]", true),
    ]
    .iter()
    .map(|(s, e)| (s.to_string(), *e))
    .collect();
    assert_eq!(ours, want);
    let layers = c["rootfs"]["diff_ids"].as_array().unwrap().len();
    let made = history.iter().filter(|(_, e)| !e).count();
    assert_eq!(layers, made, "one layer per non-empty history entry");

    let fs = export(&root, "app:1", t.path());
    assert!(!fs.join("etc/motd").exists(), "the whiteout hides the file");
    assert!(fs.join("etc/passwd").exists());
    assert_eq!(std::fs::read_to_string(fs.join("hello")).unwrap(), "hi\n");
    assert_eq!(
        std::fs::read_to_string(fs.join("srv/app/version.txt")).unwrap(),
        "v=1.0\n"
    );
    assert_eq!(
        std::fs::read_to_string(fs.join("data/a.txt")).unwrap(),
        "a\n"
    );
    assert_eq!(
        std::fs::read_to_string(fs.join("data/sub/b.txt")).unwrap(),
        "b\n"
    );
    assert!(fs.join("texts/one.txt").is_file() && fs.join("texts/two.txt").is_file());
    let owned = std::fs::metadata(fs.join("conf/owned.conf")).unwrap();
    assert_eq!((owned.uid(), owned.gid()), (1000, 1000));
    let a = std::fs::metadata(fs.join("data/a.txt")).unwrap();
    assert_eq!((a.uid(), a.gid()), (0, 0), "context files are 0:0");
    let key = std::fs::metadata(fs.join("conf/secret.key")).unwrap();
    assert_eq!(key.mode() & 0o7777, 0o600);
    assert!(
        !fs.join("etc/hosts").metadata().is_ok_and(|m| m.len() > 0),
        "/etc/hosts stays out of the layers"
    );
    assert_no_build_leftovers(&root);
}

#[test]
fn rebuild_is_cached_and_reruns_only_what_changed() {
    if !require(is_root(), "root (namespaces, overlay mounts)") {
        return;
    }
    let t = tempdir();
    let (root, ctx) = setup(t.path());
    write_context(&ctx);
    let (id1, log) = build_ok(&root, &ctx, &["-t", "app:1"]);
    assert!(log.contains("run-marker-42"), "the RUN ran: {log}");
    let (id2, log) = build_ok(&root, &ctx, &["-t", "app:1"]);
    assert_eq!(id1, id2, "an unchanged rebuild gives the same image");
    assert_eq!(log.matches("CACHED").count(), 6, "{log}");
    assert!(
        !log.contains("run-marker-42"),
        "no RUN output on a cached build: {log}"
    );

    // An ignored file changes nothing.
    std::fs::write(ctx.join("ignored.log"), "more noise\n").unwrap();
    let (id3, log) = build_ok(&root, &ctx, &[]);
    assert_eq!(id3, id1, "{log}");
    assert_eq!(log.matches("CACHED").count(), 6, "{log}");

    // One context file: its COPY and what follows run again, nothing before.
    std::fs::write(ctx.join("two.txt"), "TWO\n").unwrap();
    let (id4, log) = build_ok(&root, &ctx, &[]);
    assert_ne!(id4, id1);
    assert_eq!(
        log.matches("CACHED").count(),
        3,
        "WORKDIR, RUN and the first COPY are cached: {log}"
    );
    assert!(
        log.contains("cache miss: file changed: two.txt"),
        "the miss names the file: {log}"
    );
    assert!(
        log.contains("cache miss: an earlier step changed"),
        "later steps name their cause: {log}"
    );
    let fs = export(&root, &id4, t.path());
    assert_eq!(
        std::fs::read_to_string(fs.join("texts/two.txt")).unwrap(),
        "TWO\n"
    );
    // A build arg: the first step after the ARG names it.
    let (_, log) = build_ok(&root, &ctx, &["--build-arg", "VERSION=2.0"]);
    assert!(
        log.contains("cache miss: instruction before it changed")
            && log.contains("`ARG VERSION=1.0 (VERSION=2.0)`"),
        "{log}"
    );
    // --no-cache runs everything.
    let (_, log) = build_ok(&root, &ctx, &["--no-cache"]);
    assert_eq!(log.matches("CACHED").count(), 0, "{log}");
    assert_no_build_leftovers(&root);
}

#[test]
fn multi_stage_copy_from() {
    if !require(is_root(), "root (namespaces, overlay mounts)") {
        return;
    }
    let t = tempdir();
    let (root, ctx) = setup(t.path());
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM bb:base AS builder\nRUN mkdir -p /out && echo built > /out/artifact && chown 1000:1000 /out/artifact\n\
         FROM bb:base AS unused\nRUN exit 1\n\
         FROM scratch\nCOPY --from=builder /out/ /app/\nCOPY --from=bb:base /bin/busybox /bin/busybox\n",
    )
    .unwrap();
    let (id, _) = build_ok(&root, &ctx, &["-t", "multi:1"]);
    let c = config(&root, &id);
    assert_eq!(c["rootfs"]["diff_ids"].as_array().unwrap().len(), 2);
    let fs = export(&root, "multi:1", t.path());
    assert_eq!(
        std::fs::read_to_string(fs.join("app/artifact")).unwrap(),
        "built\n"
    );
    let m = std::fs::metadata(fs.join("app/artifact")).unwrap();
    assert_eq!((m.uid(), m.gid()), (1000, 1000), "--from keeps owners");
    assert!(fs.join("bin/busybox").is_file());
    assert!(!fs.join("etc").exists(), "scratch has nothing else");
    assert_no_build_leftovers(&root);
}
