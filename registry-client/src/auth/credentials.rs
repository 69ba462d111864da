//! Credentials for a registry, from the auth files podman and docker use and from docker
//! credential helpers.
//!
//! [`AuthFiles::from_env`] lists, in order: `$REGISTRY_AUTH_FILE`,
//! `$XDG_RUNTIME_DIR/containers/auth.json`, and `$DOCKER_CONFIG/config.json` (default
//! `~/.docker/config.json`); missing files are skipped and the first file that yields
//! credentials wins. Within one file the order is:
//!
//! 1. `credHelpers`: the helper named for the registry;
//! 2. `auths`: the entry for the registry (`identitytoken`, else `auth` = base64 of
//!    `user:password`, else `username` and `password`); an entry without any of them (docker
//!    leaves `{}` placeholders when a store holds the secret) is passed over;
//! 3. `credsStore`: the default helper.
//!
//! Docker consults `credsStore` before `auths`; hoist reads `auths` first so that a file with
//! both still works when the store's program is missing, and needs no process for registries
//! whose credentials sit in the file. A helper that answers "credentials not found" lets the
//! search go on.
//!
//! Keys are matched after [`super::normalize_registry`] (Docker Hub's aliases and docker's
//! `https://host/v1/` URLs). A key with a path but no scheme (`quay.io/ns`, as podman writes
//! for per-namespace logins) applies only to repositories at or under that path and wins over
//! a key for the whole registry; such keys are considered only by
//! [`AuthFiles::find`] with a repository.
//!
//! The `docker_credential` crate decodes the entries and runs the helpers. It is handed one
//! reduced config per question (the one entry or helper that applies), because its own lookup
//! reads a single file, matches `credHelpers` keys only as written, does not know podman's
//! per-namespace keys and stops at a helper that has no credentials; hoist does that part.
//! Its errors are reworded so that no helper output beyond one line reaches a message.

use std::ffi::OsString;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use docker_credential::{CredentialRetrievalError, DockerCredential};

use base64::Engine;
use base64::engine::general_purpose::{self, STANDARD};
use serde_json::{Map, Value};

use super::{
    AuthError, DOCKER_HUB, DOCKER_HUB_LEGACY_KEY, KeyMatch, match_key, normalize_registry,
};

/// Credentials for one registry. `Debug` and `Display` never show the password or token.
#[derive(Clone, Default, PartialEq, Eq)]
pub enum Credentials {
    /// No credentials: anonymous access.
    #[default]
    Anonymous,
    /// A user name and password (or personal access token used as one).
    Basic {
        /// The user name.
        username: String,
        /// The password.
        password: String,
    },
    /// An identity token (OAuth2 refresh token) from a previous login or a helper that answered
    /// with user name `<token>`.
    IdentityToken(String),
}

impl Credentials {
    /// User name and password.
    pub fn basic(username: impl Into<String>, password: impl Into<String>) -> Credentials {
        Credentials::Basic {
            username: username.into(),
            password: password.into(),
        }
    }

    /// Whether these are no credentials.
    pub fn is_anonymous(&self) -> bool {
        matches!(self, Credentials::Anonymous)
    }

    /// The user name of `Basic` credentials.
    pub fn username(&self) -> Option<&str> {
        match self {
            Credentials::Basic { username, .. } => Some(username),
            _ => None,
        }
    }

    /// The `Authorization` header for HTTP Basic authentication (`Basic base64(user:password)`),
    /// for `Basic` credentials with a non-empty user name and password.
    pub fn basic_authorization(&self) -> Option<String> {
        match self {
            Credentials::Basic { username, password }
                if !username.is_empty() && !password.is_empty() =>
            {
                Some(format!(
                    "Basic {}",
                    STANDARD.encode(format!("{username}:{password}"))
                ))
            }
            _ => None,
        }
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::Anonymous => f.write_str("Anonymous"),
            Credentials::Basic { username, .. } => f
                .debug_struct("Basic")
                .field("username", username)
                .field("password", &format_args!("<redacted>"))
                .finish(),
            Credentials::IdentityToken(_) => f
                .debug_tuple("IdentityToken")
                .field(&format_args!("<redacted>"))
                .finish(),
        }
    }
}

impl fmt::Display for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::Anonymous => f.write_str("anonymous"),
            Credentials::Basic { username, .. } => {
                write!(f, "user {username:?} with password <redacted>")
            }
            Credentials::IdentityToken(_) => f.write_str("identity token <redacted>"),
        }
    }
}

/// Credentials found by [`AuthFiles::find`], with where they came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundCredentials {
    /// The credentials.
    pub credentials: Credentials,
    /// The auth file that held them or named the helper.
    pub path: PathBuf,
    /// The helper that produced them (`desktop` for `docker-credential-desktop`), if any.
    pub helper: Option<String>,
}

/// Runs docker credential helpers. [`ProcessHelpers`] runs the real programs; tests and callers
/// that must not start processes use a fake or [`NoHelpers`].
pub trait CredentialHelper {
    /// Asks helper `helper` (the suffix of `docker-credential-<helper>`) for the credentials of
    /// `server_url` ([`helper_server_url`]); `Ok(None)` when it has none.
    fn get(&self, helper: &str, server_url: &str) -> Result<Option<Credentials>, AuthError>;
}

/// A [`CredentialHelper`] that never finds anything and starts no process.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoHelpers;

impl CredentialHelper for NoHelpers {
    fn get(&self, _helper: &str, _server_url: &str) -> Result<Option<Credentials>, AuthError> {
        Ok(None)
    }
}

/// Runs `docker-credential-<name> get` from `PATH` through the `docker_credential` crate
/// (docker-credential-helpers' protocol: the server URL on stdin, `{"ServerURL", "Username",
/// "Secret"}` on stdout). Its errors are reworded: "credentials not found" is no error, and a
/// failure shows only the first line of the helper's output, never all of it.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessHelpers;

impl ProcessHelpers {
    /// Helpers found on `PATH`.
    pub fn new() -> ProcessHelpers {
        ProcessHelpers
    }
}

/// Whether `name` can be a helper name: letters, digits, `-`, `_` and `.` (never a path).
fn valid_helper_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

/// Whether an executable file `program` is in one of `PATH`'s directories.
fn on_path(program: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    // Without PATH, exec searches the C library's default path.
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/bin:/usr/bin".into());
    std::env::split_paths(&path).any(|dir| {
        std::fs::metadata(dir.join(program))
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    })
}

/// The first line of a helper's error output, shortened and stripped of control characters.
fn helper_message(stdout: &str, stderr: &str) -> String {
    let text = [stdout, stderr]
        .into_iter()
        .find(|s| !s.trim().is_empty())
        .unwrap_or_default();
    let line = text.trim().lines().next().unwrap_or_default();
    let mut msg: String = line
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(200)
        .collect();
    if msg.is_empty() {
        msg.push_str("no error message");
    }
    msg
}

/// The crate's credential as ours; `None` when the secret is empty (docker's "no credentials").
fn from_docker_credential(credential: DockerCredential) -> Option<Credentials> {
    match credential {
        DockerCredential::IdentityToken(token) if token.is_empty() => None,
        DockerCredential::IdentityToken(token) => Some(Credentials::IdentityToken(token)),
        DockerCredential::UsernamePassword(_, password) if password.is_empty() => None,
        DockerCredential::UsernamePassword(username, password) => {
            Some(Credentials::Basic { username, password })
        }
    }
}

/// Asks the `docker_credential` crate for the credentials of `server` in `config`, a config
/// holding only what applies to `server` (so that the crate's own order and key matching
/// cannot pick anything else).
fn crate_lookup(
    config: &Value,
    server: &str,
) -> Result<DockerCredential, CredentialRetrievalError> {
    docker_credential::get_credential_from_reader(config.to_string().as_bytes(), server)
}

impl CredentialHelper for ProcessHelpers {
    fn get(&self, helper: &str, server_url: &str) -> Result<Option<Credentials>, AuthError> {
        if !valid_helper_name(helper) {
            return Err(AuthError::InvalidHelperName {
                helper: helper.to_owned(),
            });
        }
        let program = format!("docker-credential-{helper}");
        if !on_path(&program) {
            return Err(AuthError::HelperNotFound { helper: program });
        }
        let config = serde_json::json!({ "credHelpers": { server_url: helper } });
        // Starting it failed, or it closed its input early (the crate does not say which). A
        // script just written (by a test, or a package update) can be briefly held open for
        // writing by a concurrently forked process (ETXTBSY): a few quick retries, as helpers'
        // `get` is safe to repeat.
        let mut attempts = 0;
        let answer = loop {
            match crate_lookup(&config, server_url) {
                Err(CredentialRetrievalError::HelperCommunicationError) if attempts < 5 => {
                    attempts += 1;
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                answer => break answer,
            }
        };
        match answer {
            Ok(credential) => Ok(from_docker_credential(credential)),
            Err(CredentialRetrievalError::HelperFailure { stdout, stderr, .. }) => {
                let message = helper_message(&stdout, &stderr);
                if message
                    .to_ascii_lowercase()
                    .contains("credentials not found")
                {
                    return Ok(None);
                }
                Err(AuthError::HelperFailed {
                    helper: program,
                    registry: server_url.to_owned(),
                    message,
                })
            }
            Err(CredentialRetrievalError::MalformedHelperResponse) => {
                Err(AuthError::HelperResponse {
                    helper: program,
                    registry: server_url.to_owned(),
                })
            }
            Err(e) => Err(AuthError::HelperIo {
                helper: program,
                source: io::Error::other(e.to_string()),
            }),
        }
    }
}

/// The server URL docker hands to credential helpers for `registry`:
/// `https://index.docker.io/v1/` for Docker Hub, the normalised host otherwise.
pub fn helper_server_url(registry: &str) -> String {
    let host = normalize_registry(registry);
    if host == DOCKER_HUB {
        DOCKER_HUB_LEGACY_KEY.to_owned()
    } else {
        host
    }
}

/// The auth files to search, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthFiles {
    paths: Vec<PathBuf>,
}

/// Docker's configuration directory: `$DOCKER_CONFIG`, else `$HOME/.docker`.
pub(super) fn docker_config_dir(var: &dyn Fn(&str) -> Option<OsString>) -> Option<PathBuf> {
    var("DOCKER_CONFIG")
        .map(PathBuf::from)
        .or_else(|| var("HOME").map(|home| Path::new(&home).join(".docker")))
}

/// `var` with empty values treated as unset.
pub(super) fn nonempty_var(
    var: impl Fn(&str) -> Option<OsString>,
) -> impl Fn(&str) -> Option<OsString> {
    move |name| var(name).filter(|v| !v.is_empty())
}

impl AuthFiles {
    /// Exactly these files, in this order.
    pub fn new<I, P>(paths: I) -> AuthFiles
    where
        I: IntoIterator<Item = P>,
        P: Into<PathBuf>,
    {
        AuthFiles {
            paths: paths.into_iter().map(Into::into).collect(),
        }
    }

    /// The files named by the process environment (see the module documentation).
    pub fn from_env() -> AuthFiles {
        AuthFiles::from_vars(|name| std::env::var_os(name))
    }

    /// The files named by the environment as `var` reports it (empty values count as unset):
    /// `$REGISTRY_AUTH_FILE`, `$XDG_RUNTIME_DIR/containers/auth.json`,
    /// `$DOCKER_CONFIG/config.json` or `$HOME/.docker/config.json`; duplicates are dropped.
    pub fn from_vars(var: impl Fn(&str) -> Option<OsString>) -> AuthFiles {
        let var = nonempty_var(var);
        let mut paths: Vec<PathBuf> = Vec::new();
        let candidates = [
            var("REGISTRY_AUTH_FILE").map(PathBuf::from),
            var("XDG_RUNTIME_DIR").map(|d| Path::new(&d).join("containers").join("auth.json")),
            docker_config_dir(&var).map(|d| d.join("config.json")),
        ];
        for path in candidates.into_iter().flatten() {
            if !paths.contains(&path) {
                paths.push(path);
            }
        }
        AuthFiles { paths }
    }

    /// The files, in search order.
    pub fn paths(&self) -> &[PathBuf] {
        &self.paths
    }

    /// The credentials for `registry` (any form [`super::normalize_registry`] accepts), or
    /// [`Credentials::Anonymous`] when no file has any.
    pub fn lookup(
        &self,
        registry: &str,
        helpers: &dyn CredentialHelper,
    ) -> Result<Credentials, AuthError> {
        Ok(self
            .find(registry, None, helpers)?
            .map(|found| found.credentials)
            .unwrap_or_default())
    }

    /// Like [`AuthFiles::lookup`] for one repository of the registry (`library/busybox`), so
    /// that per-namespace entries (`quay.io/ns`) apply.
    pub fn lookup_repository(
        &self,
        registry: &str,
        repository: &str,
        helpers: &dyn CredentialHelper,
    ) -> Result<Credentials, AuthError> {
        Ok(self
            .find(registry, Some(repository), helpers)?
            .map(|found| found.credentials)
            .unwrap_or_default())
    }

    /// The credentials for `registry` (and `repository`, if given) with their origin, or `None`.
    /// Errors on an unreadable or malformed file met before the credentials are found, an
    /// undecodable `auth` entry for the registry, or a helper that fails for another reason
    /// than having no credentials; the caller may then go on anonymously.
    pub fn find(
        &self,
        registry: &str,
        repository: Option<&str>,
        helpers: &dyn CredentialHelper,
    ) -> Result<Option<FoundCredentials>, AuthError> {
        let host = normalize_registry(registry);
        if host.is_empty() {
            return Err(AuthError::InvalidRegistry {
                registry: registry.to_owned(),
            });
        }
        let repository = repository
            .map(|r| r.trim_matches('/'))
            .filter(|r| !r.is_empty());
        for path in &self.paths {
            let Some(config) = read_auth_file(path)? else {
                continue;
            };
            if let Some(found) = find_in_file(path, &config, &host, repository, helpers)? {
                return Ok(Some(found));
            }
        }
        Ok(None)
    }
}

/// Reads an auth file as a JSON object: `None` when it does not exist, an empty object when it
/// is empty. Parse errors give the position only, never the content.
pub(super) fn read_auth_file(path: &Path) -> Result<Option<Map<String, Value>>, AuthError> {
    let data = match std::fs::read(path) {
        Ok(data) => data,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(AuthError::ReadFile {
                path: path.to_owned(),
                source,
            });
        }
    };
    if data.iter().all(u8::is_ascii_whitespace) {
        return Ok(Some(Map::new()));
    }
    let malformed = |reason: String| AuthError::MalformedFile {
        path: path.to_owned(),
        reason,
    };
    let json: Value = serde_json::from_slice(&data).map_err(|e| {
        malformed(format!(
            "invalid json at line {} column {}",
            e.line(),
            e.column()
        ))
    })?;
    match json {
        Value::Object(map) => Ok(Some(map)),
        _ => Err(malformed("the top level is not a json object".to_owned())),
    }
}

/// The entries of the object `config[field]` whose keys match, best match first (ties in file
/// order).
fn matching_entries<'a>(
    config: &'a Map<String, Value>,
    field: &str,
    host: &str,
    repository: Option<&str>,
) -> Vec<(&'a String, &'a Value)> {
    let Some(Value::Object(entries)) = config.get(field) else {
        return Vec::new();
    };
    let mut matches: Vec<(KeyMatch, &String, &Value)> = entries
        .iter()
        .filter_map(|(key, value)| match_key(key, host, repository).map(|m| (m, key, value)))
        .collect();
    // Stable: equal ranks keep file order.
    matches.sort_by_key(|m| std::cmp::Reverse(m.0));
    matches.into_iter().map(|(_, k, v)| (k, v)).collect()
}

fn find_in_file(
    path: &Path,
    config: &Map<String, Value>,
    host: &str,
    repository: Option<&str>,
    helpers: &dyn CredentialHelper,
) -> Result<Option<FoundCredentials>, AuthError> {
    let server_url = helper_server_url(host);
    let found = |credentials, helper: Option<&str>| FoundCredentials {
        credentials,
        path: path.to_owned(),
        helper: helper.map(str::to_owned),
    };

    // Only the best-matching helper is asked.
    let helper = matching_entries(config, "credHelpers", host, repository)
        .into_iter()
        .find_map(|(_, helper)| helper.as_str().filter(|h| !h.is_empty()));
    if let Some(helper) = helper {
        if let Some(creds) = helpers.get(helper, &server_url)? {
            return Ok(Some(found(creds, Some(helper))));
        }
    }

    for (key, entry) in matching_entries(config, "auths", host, repository) {
        if let Some(creds) = entry_credentials(path, key, entry)? {
            return Ok(Some(found(creds, None)));
        }
    }

    if let Some(store) = config
        .get("credsStore")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
    {
        if let Some(creds) = helpers.get(store, &server_url)? {
            return Ok(Some(found(creds, Some(store))));
        }
    }
    Ok(None)
}

/// The credentials an `auths` entry holds, if any, decoded by the `docker_credential` crate.
/// As docker reads the entry: `identitytoken` wins, then `auth` (which supersedes `username`
/// and `password`, so a stale pair beside it is ignored), then `username` and `password`.
fn entry_credentials(
    path: &Path,
    key: &str,
    entry: &Value,
) -> Result<Option<Credentials>, AuthError> {
    // Taken as written (a password may start or end with a space); only the base64 of
    // `auth` is trimmed.
    let field = |name: &str| {
        entry
            .get(name)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    let reduced = if let Some(token) = field("identitytoken") {
        serde_json::json!({ "identitytoken": token })
    } else if let Some(auth) = field("auth").map(str::trim).filter(|a| !a.is_empty()) {
        serde_json::json!({ "auth": auth })
    } else if let (Some(username), Some(password)) = (field("username"), field("password")) {
        serde_json::json!({ "username": username, "password": password })
    } else {
        return Ok(None);
    };
    let config = serde_json::json!({ "auths": { key: reduced } });
    match crate_lookup(&config, key) {
        Ok(credential) => Ok(from_docker_credential(credential)),
        Err(_) => Err(AuthError::InvalidAuthEntry {
            path: path.to_owned(),
            registry: key.to_owned(),
        }),
    }
}

/// Encodes an `auth` field: base64 of `user:password`, padded (what docker and podman write).
pub(super) fn encode_auth(username: &str, password: &str) -> String {
    general_purpose::STANDARD.encode(format!("{username}:{password}"))
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::collections::HashMap;

    use super::*;

    /// A fake helper: answers from a table keyed by (helper, server URL) and records calls.
    #[derive(Default)]
    struct FakeHelpers {
        answers: HashMap<(String, String), Result<Option<Credentials>, String>>,
        calls: RefCell<Vec<(String, String)>>,
    }

    impl FakeHelpers {
        fn with(mut self, helper: &str, url: &str, creds: Option<Credentials>) -> Self {
            self.answers.insert((helper.into(), url.into()), Ok(creds));
            self
        }

        fn failing(mut self, helper: &str, url: &str) -> Self {
            self.answers
                .insert((helper.into(), url.into()), Err("boom".into()));
            self
        }

        fn calls(&self) -> Vec<(String, String)> {
            self.calls.borrow().clone()
        }
    }

    impl CredentialHelper for FakeHelpers {
        fn get(&self, helper: &str, server_url: &str) -> Result<Option<Credentials>, AuthError> {
            self.calls
                .borrow_mut()
                .push((helper.to_owned(), server_url.to_owned()));
            match self
                .answers
                .get(&(helper.to_owned(), server_url.to_owned()))
            {
                Some(Ok(c)) => Ok(c.clone()),
                Some(Err(m)) => Err(AuthError::HelperFailed {
                    helper: format!("docker-credential-{helper}"),
                    registry: server_url.to_owned(),
                    message: m.clone(),
                }),
                None => Ok(None),
            }
        }
    }

    fn write(dir: &Path, name: &str, content: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, content).unwrap();
        path
    }

    fn b64(s: &str) -> String {
        STANDARD.encode(s)
    }

    #[test]
    fn debug_and_display_redact_secrets() {
        let basic = Credentials::basic("bob", "hunter2");
        assert_eq!(
            format!("{basic:?}"),
            r#"Basic { username: "bob", password: <redacted> }"#
        );
        assert_eq!(
            format!("{basic:#?}"),
            "Basic {\n    username: \"bob\",\n    password: <redacted>,\n}"
        );
        assert_eq!(basic.to_string(), r#"user "bob" with password <redacted>"#);
        let token = Credentials::IdentityToken("tok-123".into());
        assert_eq!(format!("{token:?}"), "IdentityToken(<redacted>)");
        assert_eq!(token.to_string(), "identity token <redacted>");
        assert_eq!(format!("{:?}", Credentials::Anonymous), "Anonymous");
        assert_eq!(Credentials::Anonymous.to_string(), "anonymous");
        // Also inside containing structures.
        let found = FoundCredentials {
            credentials: basic.clone(),
            path: "/a".into(),
            helper: None,
        };
        let dbg = format!("{found:?} {:?}", Some(&token));
        assert!(
            !dbg.contains("hunter2") && !dbg.contains("tok-123"),
            "{dbg}"
        );
    }

    #[test]
    fn basic_authorization_header() {
        let c = Credentials::basic("aladdin", "open sesame");
        assert_eq!(
            c.basic_authorization().as_deref(),
            Some("Basic YWxhZGRpbjpvcGVuIHNlc2FtZQ==")
        );
        assert_eq!(c.username(), Some("aladdin"));
        assert!(!c.is_anonymous());
        assert_eq!(Credentials::basic("", "x").basic_authorization(), None);
        assert_eq!(
            Credentials::IdentityToken("t".into()).basic_authorization(),
            None
        );
        assert!(Credentials::default().is_anonymous());
    }

    fn vars<'a>(list: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<OsString> + 'a {
        move |name| {
            list.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| OsString::from(v))
        }
    }

    #[test]
    fn files_from_environment() {
        let files = AuthFiles::from_vars(vars(&[
            ("REGISTRY_AUTH_FILE", "/etc/auth.json"),
            ("XDG_RUNTIME_DIR", "/run/user/1000"),
            ("DOCKER_CONFIG", "/cfg/docker"),
            ("HOME", "/home/u"),
        ]));
        assert_eq!(
            files.paths(),
            [
                PathBuf::from("/etc/auth.json"),
                PathBuf::from("/run/user/1000/containers/auth.json"),
                PathBuf::from("/cfg/docker/config.json"),
            ]
        );
        let files = AuthFiles::from_vars(vars(&[("REGISTRY_AUTH_FILE", ""), ("HOME", "/home/u")]));
        assert_eq!(
            files.paths(),
            [PathBuf::from("/home/u/.docker/config.json")]
        );
        assert!(AuthFiles::from_vars(vars(&[])).paths().is_empty());
        // Duplicates are dropped.
        let files = AuthFiles::from_vars(vars(&[
            ("REGISTRY_AUTH_FILE", "/home/u/.docker/config.json"),
            ("HOME", "/home/u"),
        ]));
        assert_eq!(files.paths().len(), 1);
        // from_env reads the real environment without failing.
        let _ = AuthFiles::from_env();
    }

    #[test]
    fn first_file_with_credentials_wins() {
        let dir = tempfile::tempdir().unwrap();
        let a = write(
            dir.path(),
            "a/auth.json",
            &format!(r#"{{"auths":{{"quay.io":{{"auth":"{}"}}}}}}"#, b64("qa:qp")),
        );
        let b = write(
            dir.path(),
            "b/auth.json",
            &format!(
                r#"{{"auths":{{"ghcr.io":{{"auth":"{}"}},"quay.io":{{"auth":"{}"}}}}}}"#,
                b64("ga:gp"),
                b64("other:x")
            ),
        );
        let missing = dir.path().join("missing/config.json");
        let files = AuthFiles::new([missing, a.clone(), b.clone()]);
        let helpers = FakeHelpers::default();
        assert_eq!(
            files.lookup("quay.io", &helpers).unwrap(),
            Credentials::basic("qa", "qp")
        );
        let found = files.find("ghcr.io", None, &helpers).unwrap().unwrap();
        assert_eq!(found.credentials, Credentials::basic("ga", "gp"));
        assert_eq!(found.path, b);
        assert_eq!(found.helper, None);
        assert_eq!(
            files.lookup("example.com", &helpers).unwrap(),
            Credentials::Anonymous
        );
        assert!(helpers.calls().is_empty());
        assert!(matches!(
            files.lookup("", &helpers),
            Err(AuthError::InvalidRegistry { .. })
        ));
    }

    #[test]
    fn docker_hub_aliases_share_an_entry() {
        let dir = tempfile::tempdir().unwrap();
        let legacy = write(
            dir.path(),
            "config.json",
            &format!(
                r#"{{"auths":{{"https://index.docker.io/v1/":{{"auth":"{}"}}}}}}"#,
                b64("hub:pw")
            ),
        );
        let podman = write(
            dir.path(),
            "auth.json",
            &format!(
                r#"{{"auths":{{"docker.io":{{"auth":"{}"}}}}}}"#,
                b64("hub2:pw2")
            ),
        );
        for (file, expected) in [
            (legacy, Credentials::basic("hub", "pw")),
            (podman, Credentials::basic("hub2", "pw2")),
        ] {
            let files = AuthFiles::new([file]);
            for name in [
                "docker.io",
                "index.docker.io",
                "registry-1.docker.io",
                "https://index.docker.io/v1/",
            ] {
                assert_eq!(files.lookup(name, &NoHelpers).unwrap(), expected, "{name}");
            }
        }
    }

    #[test]
    fn other_registries_strip_scheme_and_path() {
        let dir = tempfile::tempdir().unwrap();
        let file = write(
            dir.path(),
            "config.json",
            &format!(
                r#"{{"auths":{{"https://MyReg.example:5000/v2/":{{"auth":"{}"}},"http://plain.example":{{"username":"u","password":"p"}}}}}}"#,
                b64("m:p")
            ),
        );
        let files = AuthFiles::new([file]);
        assert_eq!(
            files.lookup("myreg.example:5000", &NoHelpers).unwrap(),
            Credentials::basic("m", "p")
        );
        assert_eq!(
            files.lookup("myreg.example", &NoHelpers).unwrap(),
            Credentials::Anonymous
        );
        assert_eq!(
            files.lookup("https://plain.example/", &NoHelpers).unwrap(),
            Credentials::basic("u", "p")
        );
    }

    #[test]
    fn entry_forms() {
        let dir = tempfile::tempdir().unwrap();
        let unpadded = STANDARD.encode("u1:p1").trim_end_matches('=').to_owned();
        let content = format!(
            r#"{{"auths":{{
                "padded.example":{{"auth":"{}"}},
                "unpadded.example":{{"auth":"{unpadded}"}},
                "fields.example":{{"username":"u3","password":"p3"}},
                "token.example":{{"auth":"{}","identitytoken":"idt"}},
                "colon.example":{{"auth":"{}"}},
                "empty.example":{{}},
                "emptyauth.example":{{"auth":"{}"}},
                "weird.example":{{"auth":42,"username":["x"]}},
                "bad.example":{{"auth":"!!!not-base64-sekrit"}},
                "nocolon.example":{{"auth":"{}"}},
                "stale.example":{{"auth":"{}","username":"old","password":"older"}}
            }}}}"#,
            b64("u0:p0"),
            b64("u4:"),
            b64("u5:pa:ss"),
            b64(":"),
            b64("nocolonsekrit"),
            b64("u6:p6"),
        );
        let files = AuthFiles::new([write(dir.path(), "auth.json", &content)]);
        let get = |r: &str| files.lookup(r, &NoHelpers);
        assert_eq!(
            get("padded.example").unwrap(),
            Credentials::basic("u0", "p0")
        );
        assert_eq!(
            get("unpadded.example").unwrap(),
            Credentials::basic("u1", "p1")
        );
        assert_eq!(
            get("fields.example").unwrap(),
            Credentials::basic("u3", "p3")
        );
        assert_eq!(
            get("token.example").unwrap(),
            Credentials::IdentityToken("idt".into())
        );
        assert_eq!(
            get("colon.example").unwrap(),
            Credentials::basic("u5", "pa:ss")
        );
        assert_eq!(get("empty.example").unwrap(), Credentials::Anonymous);
        assert_eq!(get("emptyauth.example").unwrap(), Credentials::Anonymous);
        assert_eq!(get("weird.example").unwrap(), Credentials::Anonymous);
        // `auth` supersedes a stale username/password pair, as docker reads it.
        assert_eq!(
            get("stale.example").unwrap(),
            Credentials::basic("u6", "p6")
        );
        for bad in ["bad.example", "nocolon.example"] {
            let err = get(bad).unwrap_err();
            let msg = err.to_string();
            assert!(matches!(err, AuthError::InvalidAuthEntry { .. }), "{msg}");
            assert!(msg.contains(bad) && msg.contains("auth.json"), "{msg}");
            assert!(!msg.contains("sekrit"), "{msg}");
        }
    }

    #[test]
    fn helpers_and_store_order() {
        let dir = tempfile::tempdir().unwrap();
        let content = format!(
            r#"{{
                "auths":{{"quay.io":{{"auth":"{}"}},"https://index.docker.io/v1/":{{}},"ghcr.io":{{}}}},
                "credHelpers":{{"quay.io":"qh","docker.io":"hubhelper","gcr.io":""}},
                "credsStore":"store"
            }}"#,
            b64("qfile:pfile")
        );
        let file = write(dir.path(), "config.json", &content);
        let files = AuthFiles::new([file.clone()]);

        // credHelpers first; docker's server URL for Hub.
        let helpers = FakeHelpers::default()
            .with(
                "hubhelper",
                DOCKER_HUB_LEGACY_KEY,
                Some(Credentials::basic("h", "s")),
            )
            .with(
                "qh",
                "quay.io",
                Some(Credentials::IdentityToken("q".into())),
            );
        let found = files
            .find("index.docker.io", None, &helpers)
            .unwrap()
            .unwrap();
        assert_eq!(found.credentials, Credentials::basic("h", "s"));
        assert_eq!(found.helper.as_deref(), Some("hubhelper"));
        assert_eq!(found.path, file);
        assert_eq!(
            files.lookup("quay.io", &helpers).unwrap(),
            Credentials::IdentityToken("q".into())
        );

        // A helper without credentials falls back to auths, then to the store.
        let helpers =
            FakeHelpers::default().with("store", "ghcr.io", Some(Credentials::basic("sg", "sp")));
        assert_eq!(
            files.lookup("quay.io", &helpers).unwrap(),
            Credentials::basic("qfile", "pfile")
        );
        assert_eq!(helpers.calls(), [("qh".to_owned(), "quay.io".to_owned())]);
        let found = files.find("ghcr.io", None, &helpers).unwrap().unwrap();
        assert_eq!(found.credentials, Credentials::basic("sg", "sp"));
        assert_eq!(found.helper.as_deref(), Some("store"));
        // An empty helper name means none; the store is asked.
        assert_eq!(
            files.lookup("gcr.io", &helpers).unwrap(),
            Credentials::Anonymous
        );
        assert_eq!(
            helpers.calls().last(),
            Some(&("store".to_owned(), "gcr.io".to_owned()))
        );

        // Helper failures surface.
        let helpers = FakeHelpers::default().failing("store", "ghcr.io");
        let err = files.lookup("ghcr.io", &helpers).unwrap_err();
        assert!(matches!(err, AuthError::HelperFailed { .. }), "{err}");
    }

    #[test]
    fn store_without_credentials_moves_on_to_the_next_file() {
        let dir = tempfile::tempdir().unwrap();
        let first = write(dir.path(), "1.json", r#"{"credsStore":"store"}"#);
        let second = write(
            dir.path(),
            "2.json",
            &format!(r#"{{"auths":{{"ghcr.io":{{"auth":"{}"}}}}}}"#, b64("a:b")),
        );
        let helpers = FakeHelpers::default();
        let found = AuthFiles::new([first, second.clone()])
            .find("ghcr.io", None, &helpers)
            .unwrap()
            .unwrap();
        assert_eq!(found.path, second);
        assert_eq!(helpers.calls().len(), 1);
    }

    #[test]
    fn namespace_entries_apply_to_their_repositories() {
        let dir = tempfile::tempdir().unwrap();
        let content = format!(
            r#"{{"auths":{{
                "quay.io":{{"auth":"{}"}},
                "quay.io/team":{{"auth":"{}"}},
                "quay.io/team/app":{{"auth":"{}"}}
            }}}}"#,
            b64("host:1"),
            b64("team:2"),
            b64("app:3")
        );
        let files = AuthFiles::new([write(dir.path(), "auth.json", &content)]);
        let repo = |r: &str| files.lookup_repository("quay.io", r, &NoHelpers).unwrap();
        assert_eq!(repo("team/app"), Credentials::basic("app", "3"));
        assert_eq!(repo("/team/app/"), Credentials::basic("app", "3"));
        assert_eq!(repo("team/app/sub"), Credentials::basic("app", "3"));
        assert_eq!(repo("team/other"), Credentials::basic("team", "2"));
        assert_eq!(repo("teamx/app"), Credentials::basic("host", "1"));
        assert_eq!(
            files.lookup("quay.io", &NoHelpers).unwrap(),
            Credentials::basic("host", "1")
        );
        // Without a host entry, a namespace entry does not apply to the whole registry.
        let files = AuthFiles::new([write(
            dir.path(),
            "ns.json",
            &format!(
                r#"{{"auths":{{"quay.io/team":{{"auth":"{}"}}}}}}"#,
                b64("t:2")
            ),
        )]);
        assert_eq!(
            files.lookup("quay.io", &NoHelpers).unwrap(),
            Credentials::Anonymous
        );
    }

    #[test]
    fn malformed_files_are_errors_without_content() {
        let dir = tempfile::tempdir().unwrap();
        let broken = write(
            dir.path(),
            "broken.json",
            r#"{"auths":{"quay.io":{"auth":"c2VrcmV0OnNla3JpdA=="}"#,
        );
        let err = AuthFiles::new([broken.clone()])
            .lookup("quay.io", &NoHelpers)
            .unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, AuthError::MalformedFile { .. }), "{msg}");
        assert!(
            msg.contains("broken.json") && msg.contains("line 1"),
            "{msg}"
        );
        assert!(!msg.contains("c2Vr"), "{msg}");
        let array = write(dir.path(), "array.json", r#"["sekrit"]"#);
        let msg = AuthFiles::new([array])
            .lookup("quay.io", &NoHelpers)
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("not a json object") && !msg.contains("sekrit"),
            "{msg}"
        );
        // Empty files and odd shapes are tolerated.
        let empty = write(dir.path(), "empty.json", "\n");
        let odd = write(dir.path(), "odd.json", r#"{"auths":[],"credHelpers":7}"#);
        assert_eq!(
            AuthFiles::new([empty, odd])
                .lookup("quay.io", &NoHelpers)
                .unwrap(),
            Credentials::Anonymous
        );
        // A directory where a file should be cannot be read.
        let err = AuthFiles::new([dir.path()])
            .lookup("quay.io", &NoHelpers)
            .unwrap_err();
        assert!(matches!(err, AuthError::ReadFile { .. }), "{err}");
    }

    #[test]
    fn crate_credentials_map_to_ours() {
        let map = from_docker_credential;
        assert_eq!(
            map(DockerCredential::IdentityToken("t".into())),
            Some(Credentials::IdentityToken("t".into()))
        );
        assert_eq!(map(DockerCredential::IdentityToken(String::new())), None);
        assert_eq!(
            map(DockerCredential::UsernamePassword("u".into(), " p ".into())),
            Some(Credentials::basic("u", " p "))
        );
        // An empty secret is docker's "no credentials" (a helper's empty answer).
        assert_eq!(
            map(DockerCredential::UsernamePassword(
                String::new(),
                String::new()
            )),
            None
        );
        assert_eq!(
            map(DockerCredential::UsernamePassword(
                "u".into(),
                String::new()
            )),
            None
        );
    }

    #[test]
    fn helper_names_are_checked_before_anything_runs() {
        for bad in ["../test", "", "a/b", ".hidden", "x y"] {
            let err = ProcessHelpers.get(bad, "x").unwrap_err();
            assert!(matches!(err, AuthError::InvalidHelperName { .. }), "{bad}");
        }
        let err = ProcessHelpers.get("hoist-no-such-helper", "x").unwrap_err();
        assert!(matches!(err, AuthError::HelperNotFound { .. }), "{err}");
        assert_eq!(
            err.to_string(),
            "credential helper docker-credential-hoist-no-such-helper not found"
        );
    }

    #[test]
    fn helper_messages_are_one_clean_line() {
        assert_eq!(
            helper_message("", "keychain is locked\nsekrit\n"),
            "keychain is locked"
        );
        assert_eq!(helper_message("out\x1b[31m\n", "err"), "out [31m");
        assert_eq!(helper_message(" ", ""), "no error message");
        assert_eq!(helper_message(&"x".repeat(500), "").len(), 200);
    }

    #[test]
    fn helper_server_urls() {
        assert_eq!(helper_server_url("docker.io"), DOCKER_HUB_LEGACY_KEY);
        assert_eq!(
            helper_server_url("registry-1.docker.io"),
            DOCKER_HUB_LEGACY_KEY
        );
        assert_eq!(helper_server_url("https://quay.io/v2/"), "quay.io");
    }
}
