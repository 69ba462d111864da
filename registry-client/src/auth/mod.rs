//! Registry authentication, protocol-independent: everything the HTTP transport needs to answer
//! a `401`, as plain data and pure functions.
//!
//! - [`parse_challenges`] reads `WWW-Authenticate` headers into [`Challenge`]s.
//! - [`Scope`] and [`ScopeSet`] name what a token must grant (`repository:a/b:pull,push`).
//! - [`token_request`] describes the token endpoint request (GET with Basic auth, or an OAuth2
//!   POST form) as a [`TokenRequest`]; [`Token::from_response`] reads the answer; [`TokenCache`]
//!   keeps tokens per registry and scope set until shortly before they expire.
//! - [`AuthFiles`] finds [`Credentials`] for a registry in the auth files podman and docker use,
//!   running credential helpers through a [`CredentialHelper`].
//! - [`store_login`] and [`remove_login`] maintain an auth file for `hoist login` / `logout`.
//!
//! Secrets never appear in `Debug` or `Display` output nor in [`AuthError`] messages.

mod challenge;
mod credentials;
mod login;
mod scope;
mod token;

use std::io;
use std::path::PathBuf;

pub use challenge::{Challenge, parse_challenges, preferred_challenge};
pub use credentials::{
    AuthFiles, CredentialHelper, Credentials, FoundCredentials, NoHelpers, ProcessHelpers,
    helper_server_url,
};
pub use login::{login_file_from_env, login_file_from_vars, remove_login, store_login};
pub use scope::{ResourceKind, Scope, ScopeSet};
pub use token::{
    DEFAULT_TOKEN_LIFETIME, Method, OAUTH_CLIENT_ID, TOKEN_EXPIRY_MARGIN, Token, TokenCache,
    TokenRequest, TokenRequestOptions, token_request, token_request_with,
};

/// The canonical name of Docker Hub: `docker.io`, `index.docker.io`, `registry-1.docker.io` and
/// `https://index.docker.io/v1/` all normalise to it.
pub const DOCKER_HUB: &str = "docker.io";

/// The key docker uses for Docker Hub in `config.json` and as the server URL it hands to
/// credential helpers.
pub const DOCKER_HUB_LEGACY_KEY: &str = "https://index.docker.io/v1/";

/// An authentication failure. Messages name the file, registry, realm or helper involved and
/// never include a password, a token, file content or a helper's answer; the one piece of
/// foreign text is the first line of a failing helper's error message.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// A scope string or scope part that does not follow the distribution spec's grammar.
    #[error("invalid scope {scope:?}")]
    InvalidScope {
        /// The offending scope.
        scope: String,
    },
    /// A registry name that is empty or not a host.
    #[error("invalid registry name {registry:?}")]
    InvalidRegistry {
        /// The offending name.
        registry: String,
    },
    /// An auth file exists but cannot be read.
    #[error("cannot read auth file {}: {source}", path.display())]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// An auth file is not a JSON object of the expected shape.
    #[error("malformed auth file {}: {reason}", path.display())]
    MalformedFile {
        /// The file.
        path: PathBuf,
        /// What is wrong (a position or a field name, never a value).
        reason: String,
    },
    /// An `auths` entry whose `auth` field is not base64 of `user:password`.
    #[error("auth file {}: the auth field for {registry} is not base64 of user:password", path.display())]
    InvalidAuthEntry {
        /// The file.
        path: PathBuf,
        /// The entry's key.
        registry: String,
    },
    /// Credentials that cannot be stored (empty user name, or one holding `:`).
    #[error("cannot store credentials for {registry}: {reason}")]
    InvalidCredentials {
        /// The registry.
        registry: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// An auth file cannot be written.
    #[error("cannot write auth file {}: {source}", path.display())]
    WriteFile {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A helper name that is not a plain program-name suffix (`desktop`, `ecr-login`).
    #[error("invalid credential helper name {helper:?}")]
    InvalidHelperName {
        /// The offending name.
        helper: String,
    },
    /// `docker-credential-<name>` is not on the search path.
    #[error("credential helper {helper} not found")]
    HelperNotFound {
        /// The program name.
        helper: String,
    },
    /// The helper could not be started or talked to.
    #[error("cannot run credential helper {helper}: {source}")]
    HelperIo {
        /// The program name.
        helper: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The helper exited with an error other than "credentials not found".
    #[error("credential helper {helper} failed for {registry}: {message}")]
    HelperFailed {
        /// The program name.
        helper: String,
        /// The server URL asked for.
        registry: String,
        /// The helper's error message (its first line, shortened).
        message: String,
    },
    /// The helper succeeded but its output is not the expected JSON.
    #[error("credential helper {helper} returned a malformed response for {registry}")]
    HelperResponse {
        /// The program name.
        helper: String,
        /// The server URL asked for.
        registry: String,
    },
    /// A token endpoint's answer that holds no usable token.
    #[error("malformed token response from {realm}: {reason}")]
    TokenResponse {
        /// The token endpoint.
        realm: String,
        /// What is wrong.
        reason: &'static str,
    },
}

/// Normalises a registry name or auth-file key to the host (with port) it designates, as docker
/// does: surrounding whitespace, an `http://` or `https://` scheme and everything from the first
/// `/` on are dropped, the host is lowercased, and Docker Hub's aliases (`index.docker.io`,
/// `registry-1.docker.io`) become [`DOCKER_HUB`].
///
/// `https://index.docker.io/v1/` → `docker.io`; `Quay.io/ns` → `quay.io`;
/// `http://localhost:5000/v2/` → `localhost:5000`.
pub fn normalize_registry(name: &str) -> String {
    let (_, rest) = split_scheme(name.trim());
    let host = rest.split('/').next().unwrap_or_default();
    canonical_host(host)
}

/// Splits an optional `http://` / `https://` prefix (case-insensitive) off `s`.
fn split_scheme(s: &str) -> (bool, &str) {
    for scheme in ["https://", "http://"] {
        let matches = s
            .get(..scheme.len())
            .is_some_and(|prefix| prefix.eq_ignore_ascii_case(scheme));
        if matches {
            return (true, s.get(scheme.len()..).unwrap_or_default());
        }
    }
    (false, s)
}

/// Lowercases a host and maps Docker Hub's aliases to [`DOCKER_HUB`].
fn canonical_host(host: &str) -> String {
    let host = host.to_ascii_lowercase();
    match host.as_str() {
        "index.docker.io" | "registry-1.docker.io" | "docker.io" => DOCKER_HUB.to_owned(),
        _ => host,
    }
}

/// How an auth-file key relates to a looked-up registry (and repository).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum KeyMatch {
    /// The key names the registry as a whole (`quay.io`, `https://index.docker.io/v1/`).
    Host,
    /// The key names a namespace or repository of it (`quay.io/ns`); the number is how many
    /// path components it has, so more specific keys rank higher.
    Repository(usize),
}

/// Matches an auth-file key against `host` (already normalised) and an optional repository
/// path. Keys with a scheme are docker's legacy URLs: their path is ignored. Keys without a
/// scheme but with a path are podman's per-namespace entries: they only apply to lookups for a
/// repository at or under that path.
fn match_key(key: &str, host: &str, repository: Option<&str>) -> Option<KeyMatch> {
    let (has_scheme, rest) = split_scheme(key.trim());
    let (key_host, key_path) = rest.split_once('/').unwrap_or((rest, ""));
    if canonical_host(key_host) != host {
        return None;
    }
    let key_path = key_path.trim_end_matches('/');
    if has_scheme || key_path.is_empty() {
        return Some(KeyMatch::Host);
    }
    let repository = repository?;
    let under = repository == key_path
        || repository
            .strip_prefix(key_path)
            .is_some_and(|rest| rest.starts_with('/'));
    under.then(|| KeyMatch::Repository(key_path.split('/').count()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_docker_hub_aliases() {
        for name in [
            "docker.io",
            "index.docker.io",
            "registry-1.docker.io",
            "https://index.docker.io/v1/",
            "http://index.docker.io/v1/",
            "HTTPS://Index.Docker.IO/v1/",
            " docker.io ",
            "https://registry-1.docker.io",
        ] {
            assert_eq!(normalize_registry(name), "docker.io", "{name}");
        }
    }

    #[test]
    fn normalises_other_registries() {
        assert_eq!(normalize_registry("quay.io"), "quay.io");
        assert_eq!(normalize_registry("https://quay.io/v2/"), "quay.io");
        assert_eq!(normalize_registry("Quay.IO/ns/repo"), "quay.io");
        assert_eq!(normalize_registry("localhost:5000"), "localhost:5000");
        assert_eq!(
            normalize_registry("http://localhost:5000/v2/"),
            "localhost:5000"
        );
        assert_eq!(normalize_registry("[::1]:5000/x"), "[::1]:5000");
        assert_eq!(normalize_registry(""), "");
        assert_eq!(normalize_registry("https://"), "");
        assert_eq!(normalize_registry("h\u{e9}.example"), "h\u{e9}.example");
    }

    #[test]
    fn key_matching() {
        use KeyMatch::*;
        assert_eq!(match_key("docker.io", "docker.io", None), Some(Host));
        assert_eq!(
            match_key("https://index.docker.io/v1/", "docker.io", None),
            Some(Host)
        );
        assert_eq!(match_key("quay.io", "docker.io", None), None);
        assert_eq!(match_key("quay.io/ns", "quay.io", None), None);
        assert_eq!(
            match_key("quay.io/ns", "quay.io", Some("ns/app")),
            Some(Repository(1))
        );
        assert_eq!(
            match_key("quay.io/ns/app", "quay.io", Some("ns/app")),
            Some(Repository(2))
        );
        assert_eq!(match_key("quay.io/ns", "quay.io", Some("nsx/app")), None);
        assert_eq!(match_key("quay.io/ns/app", "quay.io", Some("ns")), None);
        assert_eq!(
            match_key("https://quay.io/ns", "quay.io", Some("other")),
            Some(Host)
        );
        assert!(Repository(1) > Host);
        assert!(Repository(2) > Repository(1));
    }

    #[test]
    fn errors_are_lowercase_and_name_their_subject() {
        let e = AuthError::InvalidAuthEntry {
            path: "/x/auth.json".into(),
            registry: "quay.io".into(),
        };
        let msg = e.to_string();
        assert!(
            msg.contains("/x/auth.json") && msg.contains("quay.io"),
            "{msg}"
        );
        let e = AuthError::HelperNotFound {
            helper: "docker-credential-x".into(),
        };
        assert_eq!(
            e.to_string(),
            "credential helper docker-credential-x not found"
        );
        for e in [
            msg,
            AuthError::TokenResponse {
                realm: "https://t".into(),
                reason: "no token",
            }
            .to_string(),
        ] {
            assert!(e.starts_with(|c: char| c.is_lowercase()), "{e}");
        }
    }
}
