//! hoist push / pull / login against a real registry (CNCF distribution, `docker-registry
//! serve`) the test starts on a free loopback port, cross-checked with skopeo, umoci and a
//! private dockerd. Needs the tools installed; skips locally and fails under `CI=true` without
//! them.

#![allow(clippy::unwrap_used, clippy::print_stdout)]

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::*;
use serde_json::Value;

/// The busybox fixture imported as `bb:test`.
type Fixture = BusyboxImage;

fn fixture() -> Fixture {
    BusyboxImage::import("bb:test")
}

/// A hoist command isolated from the machine's auth files.
fn hoist_cmd(root: &Path, auth: &Path) -> Command {
    let mut c = Command::new(hoist_bin());
    c.arg("--root")
        .arg(root)
        .env("REGISTRY_AUTH_FILE", auth)
        .env("DOCKER_CONFIG", auth.with_extension("docker"))
        .env_remove("XDG_RUNTIME_DIR")
        .env("HOIST_CONFIG", auth.with_extension("hoist.json"))
        .stdin(Stdio::null());
    c
}

fn output(mut c: Command, stdin: Option<&str>) -> Output {
    if stdin.is_some() {
        c.stdin(Stdio::piped());
    }
    c.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = c.spawn().expect("spawn hoist");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    child.wait_with_output().expect("hoist output")
}

fn ok(c: Command) -> String {
    let what = format!("{c:?}");
    let out = output(c, None);
    assert!(
        out.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn with_args(mut c: Command, args: &[&str]) -> Command {
    c.args(args);
    c
}

/// Exports `image` from store `root` and returns its tree.
fn export_tree(root: &Path, image: &str, work: &Path) -> Tree {
    let out = work.join(format!("export-{}.tar", rand_suffix()));
    hoist_ok(root, &["export", image, "-o", out.to_str().unwrap()]);
    tar_tree(std::fs::File::open(&out).unwrap())
}

fn rand_suffix() -> String {
    format!(
        "{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    )
}

fn curl_json(url: &str, accept: &str) -> Value {
    let out = run_ok(Command::new("curl").args(["-fsS", "-H", &format!("Accept: {accept}"), url]));
    serde_json::from_str(&out).unwrap()
}

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

#[test]
fn push_then_pull_round_trip_keeps_the_rootfs_and_repush_compresses_nothing() {
    if !have_registry() {
        return;
    }
    let reg = Registry::start();
    let fx = fixture();
    let auth = fx.dir().join("auth.json");
    let target = reg.repo("bb:1");
    let out = ok(with_args(
        hoist_cmd(&fx.store, &auth),
        &["push", "-q", "bb:test", &target],
    ));
    let pushed = out.trim().to_string();
    assert!(
        pushed.starts_with(&format!("{}/bb@sha256:", reg.addr)),
        "push printed {out:?}"
    );
    // What the registry holds: an OCI manifest with a gzip layer whose digest it verified.
    let m = curl_json(
        &format!("http://{}/v2/bb/manifests/1", reg.addr),
        OCI_MANIFEST,
    );
    assert_eq!(m["mediaType"], OCI_MANIFEST, "{m}");
    assert_eq!(
        m["layers"][0]["mediaType"], "application/vnd.oci.image.layer.v1.tar+gzip",
        "{m}"
    );
    // Pushing again compresses nothing (the compressed blob is remembered) and uploads nothing.
    let compressed_dir = fx.store.join("meta/compressed");
    let before: Vec<_> = std::fs::read_dir(&compressed_dir).unwrap().collect();
    assert_eq!(before.len(), 1);
    let blobs_before = std::fs::read_dir(fx.store.join("blobs/sha256"))
        .unwrap()
        .count();
    let again = output(
        with_args(
            hoist_cmd(&fx.store, &auth),
            &["push", "--progress", "plain", "bb:test", &target],
        ),
        None,
    );
    assert!(again.status.success());
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(
        err.contains("Layer already exists"),
        "second push said:\n{err}"
    );
    assert!(!err.contains("Compress"), "second push compressed:\n{err}");
    assert_eq!(
        std::fs::read_dir(fx.store.join("blobs/sha256"))
            .unwrap()
            .count(),
        blobs_before
    );
    assert_eq!(String::from_utf8_lossy(&again.stdout).trim(), pushed);

    // A fresh store pulls it back: same digest, same rootfs, runnable config.
    let store2 = fx.dir().join("store2");
    let out = ok(with_args(
        hoist_cmd(&store2, &auth),
        &["pull", "-q", &target],
    ));
    assert_eq!(out.trim(), pushed, "pull printed the pushed digest");
    let tree = export_tree(&store2, &target, fx.dir());
    assert_same_tree("pulled rootfs", &fx.tree, &tree);
    let v: Value = serde_json::from_str(&hoist_ok(&store2, &["inspect", &target])).unwrap();
    assert_eq!(v[0]["Config"]["Cmd"][0], "/bin/sh", "{v}");
    // Pulling again downloads nothing.
    let again = output(
        with_args(
            hoist_cmd(&store2, &auth),
            &["pull", "--progress", "plain", &target],
        ),
        None,
    );
    assert!(again.status.success());
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(err.contains("Already exists"), "second pull said:\n{err}");
    // Tags and catalog.
    let tags = ok(with_args(
        hoist_cmd(&store2, &auth),
        &["tags", &reg.repo("bb")],
    ));
    assert_eq!(tags.trim(), "1");
    let cat = ok(with_args(
        hoist_cmd(&store2, &auth),
        &["catalog", &reg.addr],
    ));
    assert_eq!(cat.trim(), "bb");
}

#[test]
fn skopeo_reads_what_hoist_pushed_and_hoist_pulls_what_skopeo_pushed() {
    if !have_registry() || !require(has_tool("skopeo") && has_tool("umoci"), "skopeo, umoci") {
        return;
    }
    let reg = Registry::start();
    let fx = fixture();
    let auth = fx.dir().join("auth.json");
    ok(with_args(
        hoist_cmd(&fx.store, &auth),
        &["push", "-q", "bb:test", &reg.repo("from-hoist:1")],
    ));
    // hoist push -> skopeo copy to an OCI dir -> umoci unpack: the same rootfs.
    let layout = fx.dir().join("layout");
    run_ok(Command::new("skopeo").args([
        "copy",
        "--src-tls-verify=false",
        &format!("docker://{}", reg.repo("from-hoist:1")),
        &format!("oci:{}:x", layout.display()),
    ]));
    let bundle = fx.dir().join("bundle");
    run_ok(
        Command::new("umoci")
            .arg("unpack")
            .arg("--image")
            .arg(format!("{}:x", layout.display()))
            .arg(&bundle),
    );
    assert_same_tree(
        "skopeo+umoci of hoist's push",
        &fx.tree,
        &dir_tree(&bundle.join("rootfs")),
    );

    // skopeo push (from hoist's OCI archive, gzip-compressed by skopeo) -> hoist pull.
    let archive = fx.dir().join("bb.oci.tar");
    hoist_ok(
        &fx.store,
        &[
            "save",
            "--format",
            "oci-archive",
            "-o",
            archive.to_str().unwrap(),
            "bb:test",
        ],
    );
    run_ok(Command::new("skopeo").args([
        "copy",
        "--dest-tls-verify=false",
        "--dest-compress",
        &format!("oci-archive:{}", archive.display()),
        &format!("docker://{}", reg.repo("from-skopeo:1")),
    ]));
    let store2 = fx.dir().join("store2");
    ok(with_args(
        hoist_cmd(&store2, &auth),
        &["pull", "-q", &reg.repo("from-skopeo:1")],
    ));
    let tree = export_tree(&store2, &reg.repo("from-skopeo:1"), fx.dir());
    assert_same_tree("hoist pull of skopeo's push", &fx.tree, &tree);
}

/// Pushes a manifest list by hand (curl) over two single-platform images.
#[test]
fn index_pull_picks_the_platform() {
    if !have_registry() {
        return;
    }
    let reg = Registry::start();
    let fx = fixture();
    let auth = fx.dir().join("auth.json");
    // A second image: the fixture plus a marker file.
    let extra = fx.dir().join("extra");
    std::fs::create_dir_all(extra.join("etc")).unwrap();
    std::fs::write(extra.join("etc/which"), "arm64\n").unwrap();
    let extra_tar = gnu_tar(&extra, &fx.dir().join("extra.tar"));
    hoist_ok(
        &fx.store,
        &["import", extra_tar.to_str().unwrap(), "arm:test"],
    );
    let mut entries = Vec::new();
    for (img, tag, arch, variant) in [
        ("bb:test", "amd", "amd64", None),
        ("arm:test", "arm", "arm64", Some("v8")),
    ] {
        let out = output(
            with_args(
                hoist_cmd(&fx.store, &auth),
                &["push", img, &reg.repo(&format!("multi:{tag}"))],
            ),
            None,
        );
        assert!(out.status.success());
        let digest = String::from_utf8_lossy(&out.stdout)
            .trim()
            .rsplit('@')
            .next()
            .unwrap()
            .to_string();
        let err = String::from_utf8_lossy(&out.stderr);
        let size: u64 = err
            .rsplit("size: ")
            .next()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or_else(|| panic!("no size in {err}"));
        let mut platform = serde_json::json!({"os": "linux", "architecture": arch});
        if let Some(v) = variant {
            platform["variant"] = v.into();
        }
        entries.push(serde_json::json!({
            "mediaType": OCI_MANIFEST, "digest": digest, "size": size, "platform": platform
        }));
    }
    // An attestation entry (as BuildKit writes) must never be chosen.
    let mut att = entries[1].clone();
    att["platform"] = serde_json::json!({"os": "unknown", "architecture": "unknown"});
    att["annotations"] = serde_json::json!({"vnd.docker.reference.type": "attestation-manifest"});
    entries.insert(0, att);
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": entries,
    });
    let index_file = fx.dir().join("index.json");
    std::fs::write(&index_file, serde_json::to_vec(&index).unwrap()).unwrap();
    run_ok(Command::new("curl").args([
        "-fsS",
        "-X",
        "PUT",
        "-H",
        "Content-Type: application/vnd.oci.image.index.v1+json",
        "--data-binary",
        &format!("@{}", index_file.display()),
        &format!("http://{}/v2/multi/manifests/both", reg.addr),
    ]));
    let multi = reg.repo("multi:both");
    let store_arm = fx.dir().join("store-arm");
    ok(with_args(
        hoist_cmd(&store_arm, &auth),
        &["pull", "-q", "--platform", "linux/arm64", &multi],
    ));
    let tree = export_tree(&store_arm, &multi, fx.dir());
    assert!(
        tree.contains_key("etc/which"),
        "arm64 pull got the wrong image"
    );
    if std::env::consts::ARCH == "x86_64" {
        let store_host = fx.dir().join("store-host");
        ok(with_args(
            hoist_cmd(&store_host, &auth),
            &["pull", "-q", &multi],
        ));
        let tree = export_tree(&store_host, &multi, fx.dir());
        assert!(
            !tree.contains_key("etc/which"),
            "host pull got the arm64 image"
        );
    }
    let out = output(
        with_args(
            hoist_cmd(&fx.dir().join("store-s390x"), &auth),
            &["pull", "-q", "--platform", "linux/s390x", &multi],
        ),
        None,
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("linux/s390x") && err.contains("linux/amd64") && err.contains("linux/arm64"),
        "{err}"
    );
}

#[test]
fn docker_pulls_and_runs_what_hoist_pushed() {
    if !have_registry() || !require(is_root(), "root") || !require(has_tool("dockerd"), "dockerd") {
        return;
    }
    let reg = Registry::start();
    let fx = fixture();
    let auth = fx.dir().join("auth.json");
    let target = reg.repo("for-docker:1");
    ok(with_args(
        hoist_cmd(&fx.store, &auth),
        &["push", "-q", "bb:test", &target],
    ));
    let d = Dockerd::start();
    d.ok(&["pull", &target]);
    let out = d.ok(&[
        "run",
        "--rm",
        "--network",
        "host",
        &target,
        "sh",
        "-c",
        "echo ok; ls -l /usr/bin/suid-tool",
    ]);
    assert!(out.starts_with("ok\n"), "{out}");
    assert!(out.contains("-rwsr-xr-x"), "{out}");
}

#[test]
fn htpasswd_basic_auth_login_push_pull_logout() {
    if !have_registry() || !require(has_tool("htpasswd"), "htpasswd (apache2-utils)") {
        return;
    }
    let dir = Registry::prepare();
    let line = run_ok(Command::new("htpasswd").args(["-Bbn", "alice", "s3cret-pw"]));
    std::fs::write(dir.path().join("htpasswd"), line).unwrap();
    let yaml = format!(
        "auth:\n  htpasswd:\n    realm: test-realm\n    path: {}\n",
        dir.path().join("htpasswd").display()
    );
    let reg = Registry::start_in(dir, &yaml, false);
    let fx = fixture();
    let auth = fx.dir().join("auth.json");
    let target = reg.repo("private/bb:1");

    // Anonymous: refused, with the registry's words and a hint.
    let out = output(
        with_args(
            hoist_cmd(&fx.store, &auth),
            &["push", "-q", "bb:test", &target],
        ),
        None,
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("401") && err.contains(&reg.addr), "{err}");
    assert!(err.contains("hoist login"), "{err}");

    // A wrong password fails clearly and writes nothing.
    let out = login(&fx, &auth, &reg.addr, "alice", "wrong");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("authentication") && err.contains(&reg.addr),
        "{err}"
    );
    assert!(!err.contains("wrong"), "the password leaked: {err}");
    assert!(!auth.exists());

    // The right one is stored and used by push and pull.
    let out = login(&fx, &auth, &reg.addr, "alice", "s3cret-pw");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let file: Value = serde_json::from_slice(&std::fs::read(&auth).unwrap()).unwrap();
    assert!(file["auths"][&reg.addr]["auth"].is_string(), "{file}");
    ok(with_args(
        hoist_cmd(&fx.store, &auth),
        &["push", "-q", "bb:test", &target],
    ));
    let store2 = fx.dir().join("store2");
    ok(with_args(
        hoist_cmd(&store2, &auth),
        &["pull", "-q", &target],
    ));
    assert_same_tree(
        "pulled with basic auth",
        &fx.tree,
        &export_tree(&store2, &target, fx.dir()),
    );
    // skopeo agrees the credentials in the file work.
    if has_tool("skopeo") {
        run_ok(Command::new("skopeo").args([
            "inspect",
            "--tls-verify=false",
            "--authfile",
            auth.to_str().unwrap(),
            &format!("docker://{target}"),
        ]));
    }
    ok(with_args(
        hoist_cmd(&fx.store, &auth),
        &["logout", &reg.addr],
    ));
    let file: Value = serde_json::from_slice(&std::fs::read(&auth).unwrap()).unwrap();
    assert!(file["auths"].get(&reg.addr).is_none(), "{file}");
    let out = output(
        with_args(hoist_cmd(&store2, &auth), &["pull", "-q", &target]),
        None,
    );
    assert!(!out.status.success(), "pull after logout succeeded");

    credential_helpers_from_the_docker_config(&fx, &auth, &reg.addr, &target);
}

const HELPER: &str = r#"#!/bin/sh
[ "$1" = get ] || { echo "unexpected arguments: $*"; exit 3; }
url=$(cat)
case "$HOIST_TEST_HELPER:$url" in
  ok:$HOIST_TEST_REGISTRY) printf '{"ServerURL":"%s","Username":"alice","Secret":"s3cret-pw"}\n' "$url" ;;
  fail:*) echo 'keychain is locked' >&2; echo 'sekrit-detail' >&2; exit 1 ;;
  broken:*) echo 'not json sekrit' ;;
  empty:*) printf '{"ServerURL":"%s","Username":"","Secret":""}\n' "$url" ;;
  *) echo 'credentials not found in native keychain'; exit 1 ;;
esac
"#;

/// After logout the auth file has nothing for the registry; docker's config.json names a
/// `credHelpers` helper that has nothing either, an empty `auths` placeholder, and a
/// `credsStore` that has the password: hoist goes on to the store (run through the
/// docker_credential crate). Helper failures are reported by their first line only.
fn credential_helpers_from_the_docker_config(
    fx: &Fixture,
    auth: &Path,
    registry: &str,
    target: &str,
) {
    use std::os::unix::fs::PermissionsExt;
    let bin = fx.dir().join("helpers");
    std::fs::create_dir_all(&bin).unwrap();
    for (name, script) in [
        ("docker-credential-hoisttest", HELPER.to_owned()),
        (
            "docker-credential-hoistnone",
            "#!/bin/sh\ncat >/dev/null\necho 'credentials not found in native keychain'\nexit 1\n"
                .to_owned(),
        ),
    ] {
        let path = bin.join(name);
        std::fs::write(&path, script).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let docker = auth.with_extension("docker");
    std::fs::create_dir_all(&docker).unwrap();
    let config = serde_json::json!({
        "auths": { registry: {} },
        "credHelpers": { registry: "hoistnone" },
        "credsStore": "hoisttest",
    });
    std::fs::write(docker.join("config.json"), config.to_string()).unwrap();
    let path = std::env::var_os("PATH").unwrap_or_default();
    let with_helpers =
        std::env::join_paths(std::iter::once(bin.clone()).chain(std::env::split_paths(&path)))
            .unwrap();
    let pull = |mode: &str, path: &std::ffi::OsStr, store: &str| {
        let env = [
            ("PATH", path.to_str().unwrap()),
            ("HOIST_TEST_HELPER", mode),
            ("HOIST_TEST_REGISTRY", registry),
        ];
        hoist_env(&fx.dir().join(store), auth, &env, &["pull", "-q", target])
    };
    // A pull that must fail: its error output.
    let refused = |mode: &str, path: &std::ffi::OsStr| {
        let out = pull(mode, path, &format!("store-{mode}"));
        assert!(
            !out.status.success(),
            "the pull with helper mode {mode} worked"
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    };

    let out = pull("ok", &with_helpers, "store-helper");
    assert_ok(&out, "pull with credentials from the credsStore helper");
    assert_same_tree(
        "pulled with helper credentials",
        &fx.tree,
        &export_tree(&fx.dir().join("store-helper"), target, fx.dir()),
    );

    let err = refused("fail", &with_helpers);
    assert!(
        err.contains(&format!(
            "credential helper docker-credential-hoisttest failed for {registry}: keychain is locked"
        )) && err.contains("401"),
        "{err}"
    );
    assert!(!err.contains("sekrit"), "helper output leaked: {err}");

    let err = refused("broken", &with_helpers);
    assert!(
        err.contains("docker-credential-hoisttest returned a malformed response"),
        "{err}"
    );
    assert!(!err.contains("sekrit"), "helper output leaked: {err}");

    // An empty answer is no credentials: anonymous, refused by the registry, no helper error.
    let err = refused("empty", &with_helpers);
    assert!(
        err.contains("401") && !err.contains("credential helper"),
        "{err}"
    );

    // Without the directory on PATH the first helper asked is missing.
    let err = refused("ok", &path);
    assert!(
        err.contains("credential helper docker-credential-hoistnone not found"),
        "{err}"
    );
}

#[test]
fn missing_image_and_bad_reference_errors_name_them() {
    if !have_registry() {
        return;
    }
    let reg = Registry::start();
    let dir = tempdir();
    let auth = dir.path().join("auth.json");
    let store = dir.path().join("store");
    let out = output(
        with_args(hoist_cmd(&store, &auth), &["pull", &reg.repo("nosuch:1")]),
        None,
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&reg.addr) && err.contains("nosuch") && err.contains("404"),
        "{err}"
    );
    // Nothing half-written is left.
    let ingest = store.join("ingest");
    assert!(
        !ingest.exists() || std::fs::read_dir(&ingest).unwrap().count() == 0,
        "ingest leftovers"
    );
    let out = output(
        with_args(hoist_cmd(&store, &auth), &["pull", "nosuch:bad:tag"]),
        None,
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("nosuch:bad:tag"));
}

/// Runs hoist (`hoist_cmd`) with extra env and `args`, returning the output.
fn hoist_env(root: &Path, auth: &Path, env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut c = hoist_cmd(root, auth);
    for (k, v) in env {
        c.env(k, v);
    }
    c.args(args);
    output(c, None)
}

/// `hoist login -u USER --password-stdin REGISTRY` with `password` on stdin.
fn login(fx: &Fixture, auth: &Path, registry: &str, user: &str, password: &str) -> Output {
    output(
        with_args(
            hoist_cmd(&fx.store, auth),
            &["login", "-u", user, "--password-stdin", registry],
        ),
        Some(&format!("{password}\n")),
    )
}

fn assert_ok(out: &Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn token_auth_with_one_token_for_target_and_mount_source() {
    if !have_registry() {
        return;
    }
    let ts = common::regtools::TokenServer::start(&[("bob", "hunter2-pw")]);
    let dir = Registry::prepare();
    let yaml = ts.registry_yaml(&dir.path().join("token.crt"));
    let reg = Registry::start_in(dir, &yaml, false);
    let fx = fixture();
    let auth = fx.dir().join("auth.json");

    // A wrong password: the token server refuses, the message names the registry.
    let out = login(&fx, &auth, &reg.addr, "bob", "nope");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("authentication") && err.contains(&reg.addr),
        "{err}"
    );
    assert!(!err.contains("nope"), "{err}");

    let out = login(&fx, &auth, &reg.addr, "bob", "hunter2-pw");
    assert_ok(&out, "login");
    assert_ok(
        &hoist_env(
            &fx.store,
            &auth,
            &[],
            &["push", "-q", "bb:test", &reg.repo("team/a:1")],
        ),
        "push a",
    );
    // The same layer to another repository: mounted, with pull on the source and push on
    // the target in one token.
    let out = hoist_env(
        &fx.store,
        &auth,
        &[],
        &[
            "push",
            "--progress",
            "plain",
            "bb:test",
            &reg.repo("team/b:1"),
        ],
    );
    assert_ok(&out, "push b");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Mounted"), "second push did not mount:\n{err}");
    let reqs = ts.requests();
    assert!(
        reqs.iter()
            .any(|r| r.contains("scope=repository%3Ateam%2Fb%3Apull%2Cpush")
                && r.contains("scope=repository%3Ateam%2Fa%3Apull&")
                && r.contains("authorization=true")),
        "no token request held both scopes:\n{}",
        reqs.join("\n")
    );
    let store2 = fx.dir().join("store2");
    assert_ok(
        &hoist_env(&store2, &auth, &[], &["pull", "-q", &reg.repo("team/b:1")]),
        "pull b",
    );
    assert_same_tree(
        "pulled with a token",
        &fx.tree,
        &export_tree(&store2, &reg.repo("team/b:1"), fx.dir()),
    );
    // Without credentials the registry refuses, and the error says so.
    let out = hoist_env(
        &fx.dir().join("store3"),
        &fx.dir().join("none.json"),
        &[],
        &["pull", "-q", &reg.repo("team/b:1")],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("401") && err.contains("hoist login"), "{err}");
}

#[test]
fn tls_with_a_custom_ca_from_certs_d() {
    if !have_registry() {
        return;
    }
    let pki = common::regtools::Pki::new();
    let dir = Registry::prepare();
    common::regtools::write_registry_tls(dir.path(), &pki);
    let reg = Registry::start_in(dir, "", true);
    let fx = fixture();
    let auth = fx.dir().join("auth.json");
    let certs = common::regtools::certs_d(fx.dir(), &reg.addr, &pki);
    let certs = certs.to_str().unwrap();
    // Without the CA: refused, with a hint about certs.d.
    let out = hoist_env(
        &fx.store,
        &auth,
        &[],
        &["push", "-q", "bb:test", &reg.repo("tls:1")],
    );
    assert!(
        !out.status.success(),
        "push to an untrusted TLS registry succeeded"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("certs.d"), "{err}");
    // With it: push and pull over TLS.
    assert_ok(
        &hoist_env(
            &fx.store,
            &auth,
            &[("HOIST_CERTS_D", certs)],
            &["push", "-q", "bb:test", &reg.repo("tls:1")],
        ),
        "push over TLS",
    );
    let store2 = fx.dir().join("store2");
    assert_ok(
        &hoist_env(
            &store2,
            &auth,
            &[("HOIST_CERTS_D", certs)],
            &["pull", "-q", &reg.repo("tls:1")],
        ),
        "pull over TLS",
    );
    assert_same_tree(
        "pulled over TLS",
        &fx.tree,
        &export_tree(&store2, &reg.repo("tls:1"), fx.dir()),
    );
}

/// A registry of the test's own with the fixture pushed as `bb:1`.
fn pushed() -> (Registry, Fixture) {
    let reg = Registry::start();
    let fx = fixture();
    let auth = fx.dir().join("auth.json");
    assert_ok(
        &hoist_env(
            &fx.store,
            &auth,
            &[],
            &["push", "-q", "bb:test", &reg.repo("bb:1")],
        ),
        "push",
    );
    (reg, fx)
}

/// [`pushed`], with a fault proxy in front of the registry.
fn faulty(faults: common::regtools::Faults) -> (Registry, common::regtools::FaultProxy, Fixture) {
    let (reg, fx) = pushed();
    let proxy = common::regtools::FaultProxy::start(&reg.addr, faults);
    (reg, proxy, fx)
}

fn pull_via(proxy: &common::regtools::FaultProxy, fx: &Fixture, store: &str) -> Output {
    hoist_env(
        &fx.dir().join(store),
        &fx.dir().join("auth.json"),
        &[],
        &["pull", "-q", &format!("{}/bb:1", proxy.addr)],
    )
}

#[test]
fn faults_500_and_429_are_retried() {
    if !have_registry() {
        return;
    }
    let (_reg, proxy, fx) = faulty(common::regtools::Faults {
        fail_every: Some(3),
        throttle_first: 2,
        retry_after_secs: 1,
        ..Default::default()
    });
    let out = pull_via(&proxy, &fx, "s1");
    assert_ok(
        &out,
        &format!("pull through 500s and 429s:\n{}", proxy.log()),
    );
    assert!(
        proxy.count("500") >= 1 && proxy.count("429") == 2,
        "{}",
        proxy.log()
    );
    let tree = export_tree(
        &fx.dir().join("s1"),
        &format!("{}/bb:1", proxy.addr),
        fx.dir(),
    );
    assert_same_tree("pulled through faults", &fx.tree, &tree);
    // Push through them too.
    let out = hoist_env(
        &fx.store,
        &fx.dir().join("auth.json"),
        &[],
        &["push", "-q", "bb:test", &format!("{}/again:1", proxy.addr)],
    );
    assert_ok(&out, &format!("push through 500s:\n{}", proxy.log()));
}

#[test]
fn faults_cut_blob_resumes_with_range_or_restarts() {
    if !have_registry() {
        return;
    }
    let (_reg, proxy, fx) = faulty(common::regtools::Faults {
        cut_blob_once: true,
        ..Default::default()
    });
    assert_ok(&pull_via(&proxy, &fx, "s1"), "pull with a cut");
    assert_eq!(proxy.count("cut"), 1, "{}", proxy.log());
    assert!(
        proxy.log().contains(" 206"),
        "no ranged request:\n{}",
        proxy.log()
    );
    let tree = export_tree(
        &fx.dir().join("s1"),
        &format!("{}/bb:1", proxy.addr),
        fx.dir(),
    );
    assert_same_tree("pulled after a cut", &fx.tree, &tree);

    let (_reg, proxy, fx) = faulty(common::regtools::Faults {
        cut_blob_once: true,
        ignore_range: true,
        ..Default::default()
    });
    assert_ok(
        &pull_via(&proxy, &fx, "s2"),
        "pull with a cut and Range ignored",
    );
    let tree = export_tree(
        &fx.dir().join("s2"),
        &format!("{}/bb:1", proxy.addr),
        fx.dir(),
    );
    assert_same_tree("pulled after a restart", &fx.tree, &tree);
}

#[test]
fn faults_wrong_digest_is_refused_and_nothing_is_committed() {
    if !have_registry() {
        return;
    }
    let (_reg, proxy, fx) = faulty(common::regtools::Faults {
        corrupt_blob: true,
        ..Default::default()
    });
    let out = pull_via(&proxy, &fx, "s1");
    assert!(!out.status.success(), "a corrupted blob was accepted");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("mismatch") && err.contains("sha256:"), "{err}");
    let store = fx.dir().join("s1");
    assert_eq!(
        hoist_ok(&store, &["images", "-q"]).trim(),
        "",
        "something was tagged"
    );
    let left = |sub: &str| {
        std::fs::read_dir(store.join(sub))
            .map(|d| d.count())
            .unwrap_or(0)
    };
    assert_eq!(left("ingest"), 0, "half-written blob left");
    assert_eq!(
        left("snapshots"),
        0,
        "a snapshot of the corrupted layer was kept"
    );
}

#[test]
fn faults_refused_mount_falls_back_and_chunk_cap_is_respected() {
    if !have_registry() {
        return;
    }
    let (_reg, proxy, fx) = faulty(common::regtools::Faults {
        refuse_mount: true,
        chunk_max: Some(256 << 10),
        ..Default::default()
    });
    let auth = fx.dir().join("auth.json");
    // A push through the proxy: the layer (about 1 MB) goes in chunks under the cap.
    let out = hoist_env(
        &fx.store,
        &auth,
        &[],
        &[
            "push",
            "--progress",
            "plain",
            "bb:test",
            &format!("{}/other:1", proxy.addr),
        ],
    );
    assert_ok(&out, "push through the proxy");
    // A store that pulled `bb` through the proxy knows the layer is in PROXY/bb, so pushing it
    // to PROXY/third tries a mount first; the proxy makes the registry refuse it (202).
    let store2 = fx.dir().join("s2");
    assert_ok(&pull_via(&proxy, &fx, "s2"), "pull through the proxy");
    let out = hoist_env(
        &store2,
        &auth,
        &[],
        &[
            "push",
            "--progress",
            "plain",
            &format!("{}/bb:1", proxy.addr),
            &format!("{}/third:1", proxy.addr),
        ],
    );
    assert_ok(
        &out,
        &format!("push with a refused mount:\n{}", proxy.log()),
    );
    assert_eq!(proxy.count("refuse_mount"), 1, "{}", proxy.log());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("Pushed (chunked)") && !err.contains("Mounted"),
        "the refused mount did not fall back to an upload:\n{err}"
    );
    assert_eq!(
        proxy.count("416"),
        0,
        "a chunk over the cap was sent:\n{}",
        proxy.log()
    );
    assert!(
        proxy.max_patch() <= 256 << 10 && proxy.max_patch() > 0,
        "max PATCH {}",
        proxy.max_patch()
    );
    // The layer (about 1 MB compressed) went in several PATCHes; only the small configs (one
    // per push through the proxy) went in one PUT each.
    assert!(
        proxy.log().matches("PATCH /v2/third/").count() > 1,
        "{}",
        proxy.log()
    );
    assert!(proxy.count("monolithic_put") <= 2, "{}", proxy.log());
    let store3 = fx.dir().join("s3");
    let out = hoist_env(
        &store3,
        &auth,
        &[],
        &["pull", "-q", &format!("{}/third:1", proxy.addr)],
    );
    assert_ok(&out, "pull what was pushed in chunks");
    let tree = export_tree(&store3, &format!("{}/third:1", proxy.addr), fx.dir());
    assert_same_tree("pushed in chunks", &fx.tree, &tree);
}

#[test]
fn mirror_from_the_config_file_is_tried_first() {
    if !have_registry() {
        return;
    }
    let origin = Registry::start();
    let mirror = Registry::start();
    let fx = fixture();
    let auth = fx.dir().join("auth.json");
    assert_ok(
        &hoist_env(
            &fx.store,
            &auth,
            &[],
            &["push", "-q", "bb:test", &mirror.repo("lib/bb:1")],
        ),
        "push to the mirror",
    );
    // The origin does not have it; with the mirror configured, the pull is served by it.
    let config = auth.with_extension("hoist.json");
    std::fs::write(
        &config,
        serde_json::json!({ "mirrors": { origin.addr.clone(): [mirror.addr.clone()] } })
            .to_string(),
    )
    .unwrap();
    let store2 = fx.dir().join("store2");
    let out = hoist_env(
        &store2,
        &auth,
        &[],
        &["pull", "-q", &origin.repo("lib/bb:1")],
    );
    assert_ok(&out, "pull through the mirror");
    assert!(String::from_utf8_lossy(&out.stdout).starts_with(&origin.repo("lib/bb@sha256:")));
    let tree = export_tree(&store2, &origin.repo("lib/bb:1"), fx.dir());
    assert_same_tree("pulled from the mirror", &fx.tree, &tree);
    std::fs::remove_file(&config).unwrap();
    let out = hoist_env(
        &fx.dir().join("store3"),
        &auth,
        &[],
        &["pull", "-q", &origin.repo("lib/bb:1")],
    );
    assert!(!out.status.success(), "the origin has no such image");
}

/// A pulled image keeps its compressed layers: committing a container made from it, and pushing
/// the result, must work on top of them.
#[test]
fn commit_and_push_on_top_of_a_pulled_image() {
    if !have_registry() || !require(is_root(), "root (namespaces, overlay)") {
        return;
    }
    let (reg, fx) = pushed();
    let auth = fx.dir().join("auth.json");
    let store2 = fx.dir().join("store2");
    assert_ok(
        &hoist_env(&store2, &auth, &[], &["pull", "-q", &reg.repo("bb:1")]),
        "pull",
    );
    hoist_ok(
        &store2,
        &[
            "run",
            "--name",
            "c1",
            &reg.repo("bb:1"),
            "sh",
            "-c",
            "echo changed > /new",
        ],
    );
    hoist_ok(&store2, &["commit", "c1", "committed:1"]);
    let out = hoist_ok(&store2, &["run", "--rm", "committed:1", "cat", "/new"]);
    assert_eq!(out, "changed\n");
    assert_ok(
        &hoist_env(
            &store2,
            &auth,
            &[],
            &["push", "-q", "committed:1", &reg.repo("committed:1")],
        ),
        "push of the commit",
    );
    let store3 = fx.dir().join("store3");
    assert_ok(
        &hoist_env(
            &store3,
            &auth,
            &[],
            &["pull", "-q", &reg.repo("committed:1")],
        ),
        "pull of the commit",
    );
    let tree = export_tree(&store3, &reg.repo("committed:1"), fx.dir());
    assert!(tree.contains_key("new"), "the committed file is missing");
    assert!(
        tree.contains_key("bin/busybox"),
        "the base layer is missing"
    );
}
