//! `hoist login` / `hoist logout`: storing and removing credentials in an auth file.
//!
//! Which file: [`login_file_from_env`] picks `$REGISTRY_AUTH_FILE` when set (the file the user
//! named wins, as with podman), else `$XDG_RUNTIME_DIR/containers/auth.json` when
//! `XDG_RUNTIME_DIR` is set (podman's default: per-session, on tmpfs, gone at logout), else
//! docker's `$DOCKER_CONFIG/config.json` or `~/.docker/config.json` (persistent, where docker
//! users expect it). All three are read by [`super::AuthFiles::from_env`] in the same order, so
//! a login is always found by the next lookup.
//!
//! The file is rewritten atomically (a temporary file in the same directory, fsynced, mode
//! 0600, renamed over the original; a symlinked file is replaced at its target) and keeps every
//! other field and entry. JSON is written with tab indentation, as docker and podman write it.
//! Credentials held by `credHelpers` / `credsStore` helpers are neither written nor erased:
//! hoist only edits the file.

use std::ffi::OsString;
use std::fs::{self, DirBuilder, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::{Map, Value};

use super::credentials::{docker_config_dir, encode_auth, nonempty_var, read_auth_file};
use super::{
    AuthError, DOCKER_HUB, DOCKER_HUB_LEGACY_KEY, KeyMatch, match_key, normalize_registry,
};

/// The auth file `hoist login` writes to, from the process environment (see the module
/// documentation); `None` when neither variable nor `HOME` is set.
pub fn login_file_from_env() -> Option<PathBuf> {
    login_file_from_vars(|name| std::env::var_os(name))
}

/// [`login_file_from_env`] with the environment as `var` reports it (empty values count as
/// unset).
pub fn login_file_from_vars(var: impl Fn(&str) -> Option<OsString>) -> Option<PathBuf> {
    let var = nonempty_var(var);
    if let Some(path) = var("REGISTRY_AUTH_FILE") {
        return Some(PathBuf::from(path));
    }
    if let Some(dir) = var("XDG_RUNTIME_DIR") {
        return Some(Path::new(&dir).join("containers").join("auth.json"));
    }
    docker_config_dir(&var).map(|dir| dir.join("config.json"))
}

/// Stores `username` and `password` for `registry` in the auth file at `path` as
/// `auths[<key>].auth` = base64 of `user:password`, creating the file (and its directory, mode
/// 0700) if needed.
///
/// The key is the one already used for the registry in the file if any; otherwise the
/// normalised host, except Docker Hub in a file named `config.json`, which gets docker's
/// `https://index.docker.io/v1/` (podman reads that key too; docker does not read `docker.io`).
/// Other keys naming the same registry are removed, and within the entry the fields that would
/// take precedence or disagree (`identitytoken`, `username`, `password`) are dropped; everything
/// else in the file is kept as it was.
pub fn store_login(
    path: &Path,
    registry: &str,
    username: &str,
    password: &str,
) -> Result<(), AuthError> {
    let host = checked_host(registry)?;
    let invalid = |reason| AuthError::InvalidCredentials {
        registry: host.clone(),
        reason,
    };
    if username.is_empty() {
        return Err(invalid("empty user name"));
    }
    if username.contains(':') {
        return Err(invalid("the user name contains ':'"));
    }
    if password.is_empty() {
        return Err(invalid("empty password"));
    }
    let target = resolve(path);
    let mut config = read_auth_file(&target)?.unwrap_or_default();
    let auths = auths_object(&target, &mut config)?;

    let existing = registry_keys(auths, &host);
    let key = match existing.first() {
        Some(key) => key.clone(),
        None if host == DOCKER_HUB && target.file_name().is_some_and(|n| n == "config.json") => {
            DOCKER_HUB_LEGACY_KEY.to_owned()
        }
        None => host.clone(),
    };
    for alias in existing.iter().skip(1) {
        auths.shift_remove(alias);
    }
    let entry = auths
        .entry(key)
        .or_insert_with(|| Value::Object(Map::new()));
    if !entry.is_object() {
        *entry = Value::Object(Map::new());
    }
    if let Value::Object(entry) = entry {
        for field in ["identitytoken", "username", "password"] {
            entry.shift_remove(field);
        }
        entry.insert(
            "auth".to_owned(),
            Value::String(encode_auth(username, password)),
        );
    }
    write_config(&target, config)
}

/// Removes the entries for `registry` from `auths` in the auth file at `path`; returns whether
/// there was any. A missing file, or one without such an entry, is left alone. Per-namespace
/// entries (`quay.io/ns`) are kept.
pub fn remove_login(path: &Path, registry: &str) -> Result<bool, AuthError> {
    let host = checked_host(registry)?;
    let target = resolve(path);
    let Some(mut config) = read_auth_file(&target)? else {
        return Ok(false);
    };
    let Some(Value::Object(auths)) = config.get_mut("auths") else {
        return Ok(false);
    };
    let keys = registry_keys(auths, &host);
    if keys.is_empty() {
        return Ok(false);
    }
    for key in &keys {
        auths.shift_remove(key);
    }
    write_config(&target, config)?;
    Ok(true)
}

fn checked_host(registry: &str) -> Result<String, AuthError> {
    let host = normalize_registry(registry);
    if host.is_empty() || host.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(AuthError::InvalidRegistry {
            registry: registry.to_owned(),
        });
    }
    Ok(host)
}

/// The path to write: a symlink's final target when it resolves, else `path` itself.
fn resolve(path: &Path) -> PathBuf {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => {
            fs::canonicalize(path).unwrap_or_else(|_| path.to_owned())
        }
        _ => path.to_owned(),
    }
}

/// `config.auths` as a mutable object, created when missing or `null`.
fn auths_object<'a>(
    path: &Path,
    config: &'a mut Map<String, Value>,
) -> Result<&'a mut Map<String, Value>, AuthError> {
    let auths = config
        .entry("auths")
        .or_insert_with(|| Value::Object(Map::new()));
    if auths.is_null() {
        *auths = Value::Object(Map::new());
    }
    match auths {
        Value::Object(map) => Ok(map),
        _ => Err(AuthError::MalformedFile {
            path: path.to_owned(),
            reason: "the auths field is not a json object".to_owned(),
        }),
    }
}

/// The keys of `auths` that name `host` as a whole, in file order.
fn registry_keys(auths: &Map<String, Value>, host: &str) -> Vec<String> {
    auths
        .keys()
        .filter(|key| match_key(key, host, None) == Some(KeyMatch::Host))
        .cloned()
        .collect()
}

fn write_config(path: &Path, config: Map<String, Value>) -> Result<(), AuthError> {
    let write_err = |source| AuthError::WriteFile {
        path: path.to_owned(),
        source,
    };
    let mut data = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"\t");
    let mut ser = serde_json::Serializer::with_formatter(&mut data, formatter);
    Value::Object(config)
        .serialize(&mut ser)
        .map_err(|e| write_err(io::Error::other(e)))?;
    data.push(b'\n');
    write_atomic(path, &data).map_err(write_err)
}

/// Writes `data` to `path` through a mode-0600 temporary file in the same directory, fsynced
/// and renamed over `path`.
fn write_atomic(path: &Path, data: &[u8]) -> io::Result<()> {
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no file name"))?;
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
        _ => PathBuf::from("."),
    };
    DirBuilder::new().recursive(true).mode(0o700).create(&dir)?;

    let (tmp_path, mut file) = {
        let mut attempts = 0;
        loop {
            let mut tmp_name = OsString::from(".");
            tmp_name.push(name);
            tmp_name.push(format!(".{:016x}.tmp", rand::random::<u64>()));
            let tmp_path = dir.join(tmp_name);
            match OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp_path)
            {
                Ok(file) => break (tmp_path, file),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempts < 10 => {
                    attempts += 1;
                }
                Err(e) => return Err(e),
            }
        }
    };
    let result = (|| {
        // The umask may only have narrowed 0600; make it exact.
        file.set_permissions(fs::Permissions::from_mode(0o600))?;
        file.write_all(data)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp_path, path)
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp_path);
        return Err(e);
    }
    // Make the rename durable; failing to sync a directory is not worth failing the login.
    if let Ok(dir) = fs::File::open(&dir) {
        let _ = dir.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;

    use super::*;
    use crate::auth::{AuthFiles, Credentials, NoHelpers};

    fn read_json(path: &Path) -> Value {
        serde_json::from_slice(&fs::read(path).unwrap()).unwrap()
    }

    fn vars<'a>(list: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<OsString> + 'a {
        move |name| {
            list.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| OsString::from(v))
        }
    }

    #[test]
    fn login_file_choice() {
        assert_eq!(
            login_file_from_vars(vars(&[
                ("REGISTRY_AUTH_FILE", "/a.json"),
                ("XDG_RUNTIME_DIR", "/run/user/1"),
                ("HOME", "/home/u"),
            ])),
            Some(PathBuf::from("/a.json"))
        );
        assert_eq!(
            login_file_from_vars(vars(&[
                ("REGISTRY_AUTH_FILE", ""),
                ("XDG_RUNTIME_DIR", "/run/user/1"),
                ("HOME", "/home/u"),
            ])),
            Some(PathBuf::from("/run/user/1/containers/auth.json"))
        );
        assert_eq!(
            login_file_from_vars(vars(&[("DOCKER_CONFIG", "/d"), ("HOME", "/home/u")])),
            Some(PathBuf::from("/d/config.json"))
        );
        assert_eq!(
            login_file_from_vars(vars(&[("HOME", "/home/u")])),
            Some(PathBuf::from("/home/u/.docker/config.json"))
        );
        assert_eq!(login_file_from_vars(vars(&[])), None);
        let _ = login_file_from_env();
    }

    #[test]
    fn store_creates_file_and_directory_with_private_modes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("containers/auth.json");
        store_login(&path, "quay.io", "bob", "hunter2").unwrap();
        let json = read_json(&path);
        let auth = json["auths"]["quay.io"]["auth"].as_str().unwrap();
        // base64 of `bob:hunter2`, padded, as docker writes it.
        assert_eq!(auth, "Ym9iOmh1bnRlcjI=");
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
        assert_eq!(
            fs::metadata(path.parent().unwrap()).unwrap().mode() & 0o777,
            0o700
        );
        // Tab indentation, trailing newline, no temporary file left behind.
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("{\n\t\"auths\""), "{text}");
        assert!(text.ends_with("}\n"));
        assert_eq!(fs::read_dir(path.parent().unwrap()).unwrap().count(), 1);
        // And the lookup finds it.
        assert_eq!(
            AuthFiles::new([&path])
                .lookup("quay.io", &NoHelpers)
                .unwrap(),
            Credentials::basic("bob", "hunter2")
        );
    }

    #[test]
    fn store_keeps_everything_else() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        let original = r#"{
            "psFormat": "table {{.ID}}",
            "auths": {
                "ghcr.io": {"auth": "Z2g6cHc="},
                "quay.io": {"auth": "b2xkOm9sZA==", "email": "a@b.c", "identitytoken": "old"},
                "quay.io/team": {"auth": "dDpw"}
            },
            "credHelpers": {"gcr.io": "gcloud"},
            "credsStore": "desktop",
            "HttpHeaders": {"User-Agent": "x", "nested": [1, 2.5, {"k": null}]},
            "zzz": true
        }"#;
        fs::write(&path, original).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        store_login(&path, "https://Quay.io/v2/", "new", "pw").unwrap();

        let before: Value = serde_json::from_str(original).unwrap();
        let mut after = read_json(&path);
        let entry = after["auths"]["quay.io"].take();
        assert_eq!(entry["email"], "a@b.c");
        assert!(entry.get("identitytoken").is_none());
        assert_eq!(entry["auth"], "bmV3OnB3", "base64 of `new:pw`");
        let mut expected = before.clone();
        expected["auths"]["quay.io"] = Value::Null;
        assert_eq!(after, expected);
        // Field order preserved.
        let keys: Vec<_> = read_json(&path)
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        assert_eq!(
            keys,
            [
                "psFormat",
                "auths",
                "credHelpers",
                "credsStore",
                "HttpHeaders",
                "zzz"
            ]
        );
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
    }

    #[test]
    fn docker_hub_keys() {
        let dir = tempfile::tempdir().unwrap();
        // docker's config.json gets docker's key...
        let docker = dir.path().join("docker/config.json");
        store_login(&docker, "docker.io", "u", "p").unwrap();
        assert!(read_json(&docker)["auths"][DOCKER_HUB_LEGACY_KEY].is_object());
        // ...podman's auth.json the short name.
        let podman = dir.path().join("auth.json");
        store_login(&podman, "index.docker.io", "u", "p").unwrap();
        assert!(read_json(&podman)["auths"]["docker.io"].is_object());
        // An existing key for the registry is reused and its aliases dropped.
        fs::write(
            &podman,
            r#"{"auths":{"registry-1.docker.io":{"auth":"YTpi"},"quay.io":{},"https://index.docker.io/v1/":{"auth":"YzpK"}}}"#,
        )
        .unwrap();
        store_login(&podman, "docker.io", "x", "y").unwrap();
        let json = read_json(&podman);
        let keys: Vec<_> = json["auths"].as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys, ["registry-1.docker.io", "quay.io"]);
        assert_eq!(
            AuthFiles::new([&podman])
                .lookup("docker.io", &NoHelpers)
                .unwrap(),
            Credentials::basic("x", "y")
        );
    }

    #[test]
    fn store_refuses_bad_input_and_leaves_the_file_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("auth.json");
        for (registry, user, pass) in [
            ("quay.io", "", "p"),
            ("quay.io", "a:b", "p"),
            ("quay.io", "a", ""),
            ("", "a", "p"),
            ("https://", "a", "p"),
            ("bad host", "a", "p"),
        ] {
            let err = store_login(&path, registry, user, pass).unwrap_err();
            assert!(
                matches!(
                    err,
                    AuthError::InvalidCredentials { .. } | AuthError::InvalidRegistry { .. }
                ),
                "{err}"
            );
            assert!(!err.to_string().contains("p\""), "{err}");
        }
        assert!(!path.exists());

        let broken = "{\"auths\": {\"quay.io\": ";
        fs::write(&path, broken).unwrap();
        let err = store_login(&path, "quay.io", "a", "p").unwrap_err();
        assert!(matches!(err, AuthError::MalformedFile { .. }), "{err}");
        assert_eq!(fs::read_to_string(&path).unwrap(), broken);

        fs::write(&path, r#"{"auths": "x"}"#).unwrap();
        let err = store_login(&path, "quay.io", "a", "p").unwrap_err();
        assert!(err.to_string().contains("auths"), "{err}");

        // Empty files and null auths are fine.
        fs::write(&path, "").unwrap();
        store_login(&path, "quay.io", "a", "p").unwrap();
        fs::write(&path, r#"{"auths": null, "other": 1}"#).unwrap();
        store_login(&path, "quay.io", "a", "p").unwrap();
        assert_eq!(read_json(&path)["other"], 1);
    }

    #[test]
    fn store_through_a_symlink_updates_its_target() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real.json");
        fs::write(&real, r#"{"auths":{}}"#).unwrap();
        let link = dir.path().join("link.json");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        store_login(&link, "quay.io", "a", "b").unwrap();
        assert!(
            fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert!(read_json(&real)["auths"]["quay.io"].is_object());
    }

    #[test]
    fn remove_login_entries() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        assert!(!remove_login(&path, "quay.io").unwrap());
        assert!(!path.exists());

        fs::write(
            &path,
            r#"{"auths":{"https://index.docker.io/v1/":{"auth":"YTpi"},"docker.io":{},"quay.io":{"auth":"YTpi"},"docker.io/team":{"auth":"YTpi"}},"credsStore":"x"}"#,
        )
        .unwrap();
        let before = fs::read(&path).unwrap();
        assert!(!remove_login(&path, "ghcr.io").unwrap());
        assert_eq!(
            fs::read(&path).unwrap(),
            before,
            "untouched when nothing matches"
        );

        assert!(remove_login(&path, "registry-1.docker.io").unwrap());
        let json = read_json(&path);
        let keys: Vec<_> = json["auths"].as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys, ["quay.io", "docker.io/team"]);
        assert_eq!(json["credsStore"], "x");
        assert!(!remove_login(&path, "docker.io").unwrap());
        assert!(remove_login(&path, "quay.io").unwrap());

        fs::write(&path, r#"{"other":1}"#).unwrap();
        assert!(!remove_login(&path, "quay.io").unwrap());
        fs::write(&path, "[1]").unwrap();
        assert!(remove_login(&path, "quay.io").is_err());
        assert!(remove_login(&path, "").is_err());
    }
}
