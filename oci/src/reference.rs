//! Image references (`[domain/]path[:tag][@digest]`) with docker's normalisation rules.
//!
//! The semantics follow docker's `distribution/reference` package; the grammar is the one the
//! OCI distribution spec gives, matched by hand here:
//!
//! * path component: `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`, components joined by `/`;
//! * domain: `host[:port]`, where host is dot-separated labels
//!   `[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]` or a bracketed IPv6 address
//!   `\[[a-fA-F0-9:]+\]`, and port is `[0-9]+`;
//! * tag: `[\w][\w.-]{0,127}`;
//! * digest: `[A-Za-z][A-Za-z0-9]*([-_+.][A-Za-z][A-Za-z0-9]*)*:[[:xdigit:]]{32,}` (and then it
//!   must be a [`Digest`] we support: sha256);
//! * the repository path is at most 255 characters.
//!
//! Four entry points, from strictest to most forgiving:
//!
//! * [`Reference::parse`]: the string as written, no defaults (`busybox` has no domain);
//! * [`Reference::parse_canonical`]: accepts only names already in their normalised form;
//! * [`Reference::parse_normalized`]: docker's normalisation (`busybox` is
//!   `docker.io/library/busybox`), no default tag;
//! * [`Reference::parse_docker`] (also [`FromStr`]): what `docker pull NAME` means — normalised,
//!   `:latest` when there is neither tag nor digest, and the tag dropped when a digest is given.
//!
//! [`parse_any`] additionally accepts a bare image id (64 hex characters or `sha256:<hex>`).

use std::fmt;
use std::str::FromStr;

use crate::digest::{Digest, DigestError};

/// The registry that names without a domain refer to.
const DEFAULT_DOMAIN: &str = "docker.io";
/// The old name of Docker Hub's registry; normalised to [`DEFAULT_DOMAIN`].
const LEGACY_DEFAULT_DOMAIN: &str = "index.docker.io";
/// The Docker Hub namespace of official images.
const OFFICIAL_REPO_PREFIX: &str = "library/";
/// The tag `docker pull` assumes.
const DEFAULT_TAG: &str = "latest";
/// Maximum length of a repository path.
const NAME_TOTAL_LENGTH_MAX: usize = 255;
/// Maximum length of a tag.
const TAG_MAX: usize = 128;

/// A named image reference: `[domain/]path[:tag][@digest]`.
///
/// The domain is empty when the reference was parsed without normalisation and names no
/// registry. [`fmt::Display`] gives the full form (`docker.io/library/busybox:latest`),
/// [`Reference::familiar`] the short one docker shows (`busybox:latest`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reference {
    /// Registry host and optional port, or empty.
    domain: String,
    /// Repository path inside the registry, never empty.
    path: String,
    /// Tag, if any.
    tag: Option<String>,
    /// Digest, if any.
    digest: Option<Digest>,
}

/// Why a string is not a valid image reference.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReferenceError {
    /// The input was empty.
    #[error("invalid reference ``: repository name must have at least one component")]
    NameEmpty,
    /// The input does not follow the reference grammar; `reason` says which part is wrong.
    #[error("invalid reference `{input}`: {reason}")]
    InvalidFormat {
        /// The rejected input.
        input: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The input would be valid if it were lowercase: repository paths must be lowercase.
    #[error("invalid reference `{0}`: repository name must be lowercase")]
    ContainsUppercase(String),
    /// The repository path is longer than 255 characters.
    #[error(
        "invalid reference `{input}`: repository name must not be more than 255 characters \
         (its path has {len})"
    )]
    NameTooLong {
        /// The rejected input.
        input: String,
        /// Length of the repository path.
        len: usize,
    },
    /// A 64-character hex string was given where a repository name was expected; it looks like
    /// an image id and docker refuses it as a name.
    #[error(
        "invalid reference `{0}`: a 64-character hex string is an image id, not a repository name"
    )]
    LooksLikeId(String),
    /// The name is valid but not in its canonical, fully qualified form.
    #[error(
        "invalid reference `{input}`: repository name must be canonical (fully qualified, \
         here `{canonical}`)"
    )]
    NotCanonical {
        /// The rejected input.
        input: String,
        /// Its normalised form.
        canonical: String,
    },
    /// A tag given on its own (to [`Reference::with_tag`]) is not valid.
    #[error(
        "invalid tag `{0}`: a tag is 1 to 128 letters, digits, `_`, `.` or `-` and must not start \
         with `.` or `-`"
    )]
    InvalidTag(String),
    /// The digest part has the right shape but is not a digest we accept.
    #[error(transparent)]
    Digest(DigestError),
}

// `DigestError` does not implement `Clone`; its variants only carry strings, so rebuild it.
impl Clone for ReferenceError {
    fn clone(&self) -> Self {
        match self {
            Self::NameEmpty => Self::NameEmpty,
            Self::InvalidFormat { input, reason } => Self::InvalidFormat {
                input: input.clone(),
                reason: reason.clone(),
            },
            Self::ContainsUppercase(s) => Self::ContainsUppercase(s.clone()),
            Self::NameTooLong { input, len } => Self::NameTooLong {
                input: input.clone(),
                len: *len,
            },
            Self::LooksLikeId(s) => Self::LooksLikeId(s.clone()),
            Self::NotCanonical { input, canonical } => Self::NotCanonical {
                input: input.clone(),
                canonical: canonical.clone(),
            },
            Self::InvalidTag(s) => Self::InvalidTag(s.clone()),
            Self::Digest(e) => Self::Digest(match e {
                DigestError::Format(s) => DigestError::Format(s.clone()),
                DigestError::Algorithm(s) => DigestError::Algorithm(s.clone()),
                DigestError::Encoding(s) => DigestError::Encoding(s.clone()),
            }),
        }
    }
}

impl ReferenceError {
    /// The same error, naming `input` instead of the string that was actually parsed (used when
    /// parsing a normalised form of what the user wrote).
    fn for_input(self, input: &str) -> Self {
        match self {
            Self::InvalidFormat { reason, .. } => Self::InvalidFormat {
                input: input.to_string(),
                reason,
            },
            Self::ContainsUppercase(_) => Self::ContainsUppercase(input.to_string()),
            Self::NameTooLong { len, .. } => Self::NameTooLong {
                input: input.to_string(),
                len,
            },
            Self::LooksLikeId(_) => Self::LooksLikeId(input.to_string()),
            other => other,
        }
    }
}

/// Either a named reference or a bare image id, as [`parse_any`] returns.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum AnyReference {
    /// A bare digest: the input was 64 lowercase hex characters or `sha256:<hex>`.
    Digest(Digest),
    /// A named reference, normalised as [`Reference::parse_normalized`] does.
    Named(Reference),
}

impl fmt::Display for AnyReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Digest(d) => fmt::Display::fmt(d, f),
            Self::Named(r) => fmt::Display::fmt(r, f),
        }
    }
}

impl FromStr for AnyReference {
    type Err = ReferenceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_any(s)
    }
}

/// Parses a reference that may also be a bare image id (distribution's `ParseAnyReference`).
///
/// Exactly 64 lowercase hex characters, or a valid `sha256:<hex>` digest, give
/// [`AnyReference::Digest`]; anything else is parsed with [`Reference::parse_normalized`] (so a
/// 63-character hex string is a repository name).
pub fn parse_any(s: &str) -> Result<AnyReference, ReferenceError> {
    if is_identifier(s) {
        if let Ok(d) = Digest::from_hex(s) {
            return Ok(AnyReference::Digest(d));
        }
    }
    if let Ok(d) = Digest::parse(s) {
        return Ok(AnyReference::Digest(d));
    }
    Reference::parse_normalized(s).map(AnyReference::Named)
}

impl Reference {
    /// Parses a reference exactly as written, without normalisation (distribution's `Parse`).
    ///
    /// `docker.io/library/busybox:1`, `localhost:5000/a/b:t` and `name@sha256:...` are all
    /// accepted; `busybox` has no domain. The first path component is taken as the domain
    /// whenever the input has a `/` and that component is a valid `host[:port]` (so `foo/bar`
    /// has domain `foo`), and a `:` after the last `/` always starts the tag (so `test.com:5000`
    /// is the repository `test.com` with tag `5000`).
    pub fn parse(s: &str) -> Result<Self, ReferenceError> {
        let parts = match split_reference(s) {
            Ok(parts) => parts,
            Err(reason) => {
                if s.is_empty() {
                    return Err(ReferenceError::NameEmpty);
                }
                if s.bytes().any(|b| b.is_ascii_uppercase())
                    && split_reference(&s.to_ascii_lowercase()).is_ok()
                {
                    return Err(ReferenceError::ContainsUppercase(s.to_string()));
                }
                return Err(ReferenceError::InvalidFormat {
                    input: s.to_string(),
                    reason,
                });
            }
        };
        if parts.path.len() > NAME_TOTAL_LENGTH_MAX {
            return Err(ReferenceError::NameTooLong {
                input: s.to_string(),
                len: parts.path.len(),
            });
        }
        let digest = match parts.digest {
            Some(d) => Some(Digest::parse(d).map_err(ReferenceError::Digest)?),
            None => None,
        };
        Ok(Self {
            domain: parts.domain.to_string(),
            path: parts.path.to_string(),
            tag: parts.tag.map(str::to_string),
            digest,
        })
    }

    /// Parses with docker's normalisation (distribution's `ParseNormalizedNamed`).
    ///
    /// `busybox` becomes domain `docker.io`, path `library/busybox`; `user/app` becomes
    /// `docker.io/user/app`; `index.docker.io/x` is `docker.io/library/x`. The first component is
    /// a domain only if it contains `.` or `:`, is `localhost`, or has uppercase letters. No
    /// default tag is added. A 64-character hex string is refused (it looks like an image id).
    pub fn parse_normalized(s: &str) -> Result<Self, ReferenceError> {
        if s.is_empty() {
            return Err(ReferenceError::NameEmpty);
        }
        if is_identifier(s) {
            return Err(ReferenceError::LooksLikeId(s.to_string()));
        }
        let (domain, remainder) = split_docker_domain(s);
        let remote = remainder.split([':', '@']).next().unwrap_or_default();
        if remote.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(ReferenceError::ContainsUppercase(s.to_string()));
        }
        Self::parse(&format!("{domain}/{remainder}")).map_err(|e| e.for_input(s))
    }

    /// Parses a name that must already be in its normalised, fully qualified form
    /// (distribution's `ParseNamed`): `docker.io/library/foo` is accepted, `foo`,
    /// `library/foo` and `docker.io/foo` are refused with [`ReferenceError::NotCanonical`].
    pub fn parse_canonical(s: &str) -> Result<Self, ReferenceError> {
        let r = Self::parse_normalized(s)?;
        let canonical = r.to_string();
        if canonical != s {
            return Err(ReferenceError::NotCanonical {
                input: s.to_string(),
                canonical,
            });
        }
        Ok(r)
    }

    /// What `docker pull NAME` means (distribution's `ParseDockerRef`): normalised as
    /// [`Reference::parse_normalized`], `:latest` added when there is neither tag nor digest,
    /// and the tag dropped when a digest is present (the digest alone decides what is pulled).
    pub fn parse_docker(s: &str) -> Result<Self, ReferenceError> {
        let mut r = Self::parse_docker_keep_tag(s)?;
        if r.digest.is_some() {
            r.tag = None;
        }
        Ok(r)
    }

    /// Like [`Reference::parse_docker`] but keeps both tag and digest when both are given
    /// (`name:tag@digest`), which is useful for display. `:latest` is still added when there is
    /// neither.
    pub fn parse_docker_keep_tag(s: &str) -> Result<Self, ReferenceError> {
        let mut r = Self::parse_normalized(s)?;
        if r.tag.is_none() && r.digest.is_none() {
            r.tag = Some(DEFAULT_TAG.to_string());
        }
        Ok(r)
    }

    /// The registry domain (`docker.io`, `localhost:5000`, `[::1]:5000`), or `""` when the
    /// reference was parsed without normalisation and names none.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The repository path inside the registry, e.g. `library/busybox`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The full repository name: `domain/path`, or just the path when there is no domain.
    pub fn name(&self) -> String {
        if self.domain.is_empty() {
            self.path.clone()
        } else {
            format!("{}/{}", self.domain, self.path)
        }
    }

    /// The tag, if any.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest, if any.
    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// The same reference with its tag set to `tag` (validated); the digest is kept.
    pub fn with_tag(&self, tag: &str) -> Result<Self, ReferenceError> {
        if !is_tag(tag) {
            return Err(ReferenceError::InvalidTag(tag.to_string()));
        }
        Ok(Self {
            tag: Some(tag.to_string()),
            ..self.clone()
        })
    }

    /// The same reference without a tag; the digest is kept.
    pub fn without_tag(&self) -> Self {
        Self {
            tag: None,
            ..self.clone()
        }
    }

    /// The same reference with its digest set to `d`; the tag is kept.
    pub fn with_digest(&self, d: Digest) -> Self {
        Self {
            digest: Some(d),
            ..self.clone()
        }
    }

    /// Docker's familiar form, `familiar_name[:tag][@digest]`: `busybox:latest`, `user/app:1`,
    /// `localhost:5000/x:y`.
    pub fn familiar(&self) -> String {
        let mut s = self.familiar_name();
        push_tag_digest(&mut s, self.tag.as_deref(), self.digest.as_ref());
        s
    }

    /// The familiar repository name without tag or digest: `docker.io` is dropped, and so is
    /// `library/` when what follows has no further `/` (`busybox`, `user/app`,
    /// `localhost:5000/x`, `library/foo/bar`).
    pub fn familiar_name(&self) -> String {
        if self.domain != DEFAULT_DOMAIN {
            return self.name();
        }
        match self.path.strip_prefix(OFFICIAL_REPO_PREFIX) {
            Some(rest) if !rest.contains('/') => rest.to_string(),
            _ => self.path.clone(),
        }
    }
}

/// Appends `:tag` and `@digest` when present.
fn push_tag_digest(s: &mut String, tag: Option<&str>, digest: Option<&Digest>) {
    if let Some(tag) = tag {
        s.push(':');
        s.push_str(tag);
    }
    if let Some(d) = digest {
        s.push('@');
        s.push_str(&d.to_string());
    }
}

impl fmt::Display for Reference {
    /// The full form `name[:tag][@digest]` (distribution's `String()`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = self.name();
        push_tag_digest(&mut s, self.tag.as_deref(), self.digest.as_ref());
        f.write_str(&s)
    }
}

impl FromStr for Reference {
    type Err = ReferenceError;
    /// Same as [`Reference::parse_docker`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse_docker(s)
    }
}

impl serde::Serialize for Reference {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Reference {
    /// Reads the [`fmt::Display`] form back with [`Reference::parse`] (no normalisation).
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// A reference split into its textual parts; every part has passed the grammar, but the digest
/// has not been checked against the algorithms we support yet.
struct Parts<'a> {
    /// Domain, or `""`.
    domain: &'a str,
    /// Repository path.
    path: &'a str,
    /// Tag.
    tag: Option<&'a str>,
    /// Digest text.
    digest: Option<&'a str>,
}

/// Splits `s` per the reference grammar, or says why it does not match.
///
/// The grammar is unambiguous once read right to left: only the digest may follow `@`; a `:`
/// after the last `/` can only start the tag (path components have no `:`, and without a `/`
/// there is no domain); and a first component followed by `/` is the domain whenever it matches
/// the domain grammar (taking it as a path component instead could not make a failing rest
/// match).
fn split_reference(s: &str) -> Result<Parts<'_>, String> {
    let (rest, digest) = match s.split_once('@') {
        Some((rest, digest)) => {
            if digest.contains('@') {
                return Err("a reference has at most one `@`".to_string());
            }
            if !is_digest_shape(digest) {
                return Err(format!(
                    "digest `{digest}` must be `algorithm:hex` with at least 32 hex characters"
                ));
            }
            (rest, Some(digest))
        }
        None => (s, None),
    };

    let last_slash = rest.rfind('/');
    let (name, tag) = match rest.rfind(':') {
        Some(colon) if last_slash.is_none_or(|slash| colon > slash) => {
            let tag = &rest[colon + 1..];
            if !is_tag(tag) {
                return Err(format!(
                    "tag `{tag}` must be 1 to 128 letters, digits, `_`, `.` or `-` and must not \
                     start with `.` or `-`"
                ));
            }
            (&rest[..colon], Some(tag))
        }
        _ => (rest, None),
    };
    if name.is_empty() {
        return Err("the repository name is empty".to_string());
    }

    let (domain, path) = match name.split_once('/') {
        Some((first, rest)) if is_domain(first) => (first, rest),
        Some((first, _)) if first.contains([':', '[', ']']) => {
            return Err(format!("domain `{first}` is not a valid `host[:port]`"));
        }
        _ => ("", name),
    };
    for component in path.split('/') {
        if component.is_empty() {
            return Err("the repository path has an empty component".to_string());
        }
        if !is_path_component(component) {
            return Err(format!(
                "repository path component `{component}` must be lowercase letters and digits \
                 separated by `.`, `_`, `__` or dashes"
            ));
        }
    }
    Ok(Parts {
        domain,
        path,
        tag,
        digest,
    })
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`
fn is_path_component(s: &str) -> bool {
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let bytes = s.as_bytes();
    let (Some(&first), Some(&last)) = (bytes.first(), bytes.last()) else {
        return false;
    };
    if !alnum(first) || !alnum(last) {
        return false;
    }
    // Every maximal run of non-alphanumerics is a separator, and it is surrounded by
    // alphanumerics because the first and last bytes are.
    bytes
        .split(|&b| alnum(b))
        .filter(|sep| !sep.is_empty())
        .all(|sep| matches!(sep, b"." | b"_" | b"__") || sep.iter().all(|&b| b == b'-'))
}

/// `host[:port]`: dot-separated labels or a bracketed IPv6 address, then an optional numeric
/// port.
fn is_domain(s: &str) -> bool {
    let (host_ok, port) = if let Some(inner) = s.strip_prefix('[') {
        let Some((addr, after)) = inner.split_once(']') else {
            return false;
        };
        let addr_ok = !addr.is_empty() && addr.bytes().all(|b| b.is_ascii_hexdigit() || b == b':');
        let port = match after {
            "" => None,
            _ => match after.strip_prefix(':') {
                Some(port) => Some(port),
                None => return false,
            },
        };
        (addr_ok, port)
    } else {
        let (host, port) = match s.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (s, None),
        };
        (host.split('.').all(is_domain_label), port)
    };
    host_ok && port.is_none_or(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

/// `[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]`
fn is_domain_label(s: &str) -> bool {
    let bytes = s.as_bytes();
    match (bytes.first(), bytes.last()) {
        (Some(first), Some(last)) => {
            first.is_ascii_alphanumeric()
                && last.is_ascii_alphanumeric()
                && bytes
                    .iter()
                    .all(|&b| b.is_ascii_alphanumeric() || b == b'-')
        }
        _ => false,
    }
}

/// `[\w][\w.-]{0,127}`
fn is_tag(s: &str) -> bool {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    match s.as_bytes() {
        [first, rest @ ..] => {
            s.len() <= TAG_MAX
                && word(*first)
                && rest.iter().all(|&b| word(b) || b == b'.' || b == b'-')
        }
        [] => false,
    }
}

/// `[A-Za-z][A-Za-z0-9]*([-_+.][A-Za-z][A-Za-z0-9]*)*:[[:xdigit:]]{32,}`
fn is_digest_shape(s: &str) -> bool {
    let Some((algorithm, encoded)) = s.split_once(':') else {
        return false;
    };
    let algorithm_ok = algorithm.split(['-', '_', '+', '.']).all(|part| {
        let bytes = part.as_bytes();
        bytes.first().is_some_and(u8::is_ascii_alphabetic)
            && bytes.iter().all(u8::is_ascii_alphanumeric)
    });
    algorithm_ok && encoded.len() >= 32 && encoded.bytes().all(|b| b.is_ascii_hexdigit())
}

/// `^[a-f0-9]{64}$`: an image id.
fn is_identifier(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Docker's domain split (distribution's `splitDockerDomain`): the first component is a domain
/// only if it is `localhost`, contains `.` or `:`, or has uppercase letters; otherwise the
/// domain is `docker.io`. `index.docker.io` becomes `docker.io`, and a single-component name on
/// Docker Hub gets the `library/` prefix.
fn split_docker_domain(name: &str) -> (&str, String) {
    let (domain, remainder) = match name.split_once('/') {
        None => (DEFAULT_DOMAIN, name),
        Some((first, rest)) => {
            if first == LEGACY_DEFAULT_DOMAIN {
                (DEFAULT_DOMAIN, rest)
            } else if first == "localhost"
                || first.contains(['.', ':'])
                || first.bytes().any(|b| b.is_ascii_uppercase())
            {
                (first, rest)
            } else {
                (DEFAULT_DOMAIN, name)
            }
        }
    };
    if domain == DEFAULT_DOMAIN && !remainder.contains('/') {
        (domain, format!("{OFFICIAL_REPO_PREFIX}{remainder}"))
    } else {
        (domain, remainder.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn digest() -> Digest {
        Digest::parse(&format!("sha256:{HEX}")).expect("valid digest")
    }

    #[test]
    fn parse_keeps_input_as_written() {
        let r = Reference::parse("busybox").expect("parses");
        assert_eq!(r.domain(), "");
        assert_eq!(r.path(), "busybox");
        assert_eq!(r.name(), "busybox");
        assert_eq!(r.to_string(), "busybox");

        let r = Reference::parse("localhost:5000/a/b:t").expect("parses");
        assert_eq!(r.domain(), "localhost:5000");
        assert_eq!(r.path(), "a/b");
        assert_eq!(r.tag(), Some("t"));
        assert_eq!(r.to_string(), "localhost:5000/a/b:t");

        let r = Reference::parse(&format!("name@sha256:{HEX}")).expect("parses");
        assert_eq!(r.digest(), Some(&digest()));
        assert_eq!(r.tag(), None);
    }

    #[test]
    fn normalisation_and_familiar_forms() {
        let r = Reference::parse_normalized("busybox").expect("parses");
        assert_eq!(r.domain(), "docker.io");
        assert_eq!(r.path(), "library/busybox");
        assert_eq!(r.to_string(), "docker.io/library/busybox");
        assert_eq!(r.familiar(), "busybox");

        let r = Reference::parse_docker("busybox").expect("parses");
        assert_eq!(r.to_string(), "docker.io/library/busybox:latest");
        assert_eq!(r.familiar(), "busybox:latest");
        assert_eq!(r.familiar_name(), "busybox");
        assert_eq!("busybox".parse::<Reference>().expect("parses"), r);

        let r = Reference::parse_docker("user/app:1").expect("parses");
        assert_eq!(r.to_string(), "docker.io/user/app:1");
        assert_eq!(r.familiar(), "user/app:1");

        let r = Reference::parse_docker("index.docker.io/library/foo/bar").expect("parses");
        assert_eq!(r.to_string(), "docker.io/library/foo/bar:latest");
        assert_eq!(r.familiar(), "library/foo/bar:latest");

        let r = Reference::parse_docker("localhost:5000/a/b:t").expect("parses");
        assert_eq!(r.domain(), "localhost:5000");
        assert_eq!(r.to_string(), "localhost:5000/a/b:t");
        assert_eq!(r.familiar(), "localhost:5000/a/b:t");
        assert_eq!(r.familiar_name(), "localhost:5000/a/b");

        let r = Reference::parse_docker("localhost/x").expect("parses");
        assert_eq!(r.domain(), "localhost");
        assert_eq!(r.familiar(), "localhost/x:latest");
    }

    #[test]
    fn docker_drops_tag_with_digest_keep_tag_does_not() {
        let input = format!("busybox:1@sha256:{HEX}");
        let r = Reference::parse_docker(&input).expect("parses");
        assert_eq!(r.tag(), None);
        assert_eq!(
            r.to_string(),
            format!("docker.io/library/busybox@sha256:{HEX}")
        );
        assert_eq!(r.familiar(), format!("busybox@sha256:{HEX}"));

        let r = Reference::parse_docker_keep_tag(&input).expect("parses");
        assert_eq!(r.tag(), Some("1"));
        assert_eq!(
            r.to_string(),
            format!("docker.io/library/busybox:1@sha256:{HEX}")
        );
        assert_eq!(r.familiar(), input);

        let r = Reference::parse_docker_keep_tag(&format!("busybox@sha256:{HEX}")).expect("ok");
        assert_eq!(r.tag(), None, "no default tag next to a digest");
    }

    #[test]
    fn with_and_without() {
        let r = Reference::parse_docker("busybox").expect("parses");
        let t = r.with_tag("1.36").expect("valid tag");
        assert_eq!(t.familiar(), "busybox:1.36");
        assert_eq!(
            r.with_tag("-bad"),
            Err(ReferenceError::InvalidTag("-bad".to_string()))
        );
        assert!(r.with_tag("").is_err());
        assert!(r.with_tag(&"a".repeat(129)).is_err());
        assert!(r.with_tag(&"a".repeat(128)).is_ok());

        let d = t.with_digest(digest());
        assert_eq!(d.tag(), Some("1.36"));
        assert_eq!(d.digest(), Some(&digest()));
        let n = d.without_tag();
        assert_eq!(n.tag(), None);
        assert_eq!(n.digest(), Some(&digest()));
        assert_eq!(
            n.to_string(),
            format!("docker.io/library/busybox@sha256:{HEX}")
        );
    }

    #[test]
    fn errors_say_why() {
        let e = Reference::parse_normalized("Foo/Bar").expect_err("uppercase path");
        assert_eq!(
            e.to_string(),
            "invalid reference `Foo/Bar`: repository name must be lowercase"
        );
        let e = Reference::parse("Uppercase:tag").expect_err("uppercase");
        assert_eq!(
            e,
            ReferenceError::ContainsUppercase("Uppercase:tag".to_string())
        );

        let e = Reference::parse("aa/asdf$$^/aa").expect_err("bad component");
        assert!(matches!(e, ReferenceError::InvalidFormat { .. }));
        assert!(e.to_string().contains("`asdf$$^`"), "{e}");

        let e = Reference::parse_normalized("docker///docker").expect_err("empty component");
        assert!(
            e.to_string()
                .starts_with("invalid reference `docker///docker`: "),
            "{e}"
        );

        let e = Reference::parse("").expect_err("empty");
        assert_eq!(e, ReferenceError::NameEmpty);
        assert_eq!(
            Reference::parse_normalized(""),
            Err(ReferenceError::NameEmpty)
        );

        let e = Reference::parse_normalized(HEX).expect_err("image id");
        assert_eq!(e, ReferenceError::LooksLikeId(HEX.to_string()));

        let e = Reference::parse_canonical("foo").expect_err("not canonical");
        assert_eq!(
            e.to_string(),
            "invalid reference `foo`: repository name must be canonical (fully qualified, here \
             `docker.io/library/foo`)"
        );

        let e = Reference::parse("repo@sha256:ffff_ffff").expect_err("bad digest shape");
        assert!(matches!(e, ReferenceError::InvalidFormat { .. }));
        let e = Reference::parse(&format!("repo@sha256:{}", &HEX[..40])).expect_err("short");
        assert!(matches!(
            e,
            ReferenceError::Digest(DigestError::Encoding(_))
        ));
        assert_eq!(e.clone(), e);

        let long = format!("x/{}", "a".repeat(255));
        let e = Reference::parse_normalized(&long).expect_err("too long");
        assert_eq!(
            e,
            ReferenceError::NameTooLong {
                input: long,
                len: 257
            }
        );
    }

    #[test]
    fn grammar_pieces() {
        for ok in ["a", "a.b", "a_b", "a__b", "a---b", "a1.b2_c3__d4-e5"] {
            assert!(is_path_component(ok), "{ok}");
        }
        for bad in [
            "", "A", "-a", "a-", "a..b", "a___b", "a_.b", "a.-b", "_a", "a/b",
        ] {
            assert!(!is_path_component(bad), "{bad}");
        }
        for ok in [
            "a",
            "a.b",
            "A-b.c",
            "a:1",
            "[::1]",
            "[::1]:5000",
            "127.0.0.1:80",
        ] {
            assert!(is_domain(ok), "{ok}");
        }
        for bad in [
            "", "a:", ":1", "-a", "a-", "a..b", "[]", "[::1]x", "[::1]:", "[g::1]", "a_b",
        ] {
            assert!(!is_domain(bad), "{bad}");
        }
        assert!(is_digest_shape(&format!("sha256:{HEX}")));
        assert!(is_digest_shape(&format!(
            "sha256+b64u.x-y_z:{}",
            &HEX[..32]
        )));
        assert!(!is_digest_shape(&format!("sha256:{}", &HEX[..31])));
        assert!(!is_digest_shape(&format!("2sha:{HEX}")));
        assert!(!is_digest_shape(&format!("sha..256:{HEX}")));
    }

    #[test]
    fn parse_any_distinguishes_ids() {
        assert_eq!(parse_any(HEX), Ok(AnyReference::Digest(digest())));
        assert_eq!(
            parse_any(&format!("sha256:{HEX}")),
            Ok(AnyReference::Digest(digest()))
        );
        let named = parse_any(&HEX[..63]).expect("a name");
        assert_eq!(
            named.to_string(),
            format!("docker.io/library/{}", &HEX[..63])
        );
    }

    #[test]
    fn serde_uses_display() {
        let r = Reference::parse_docker("localhost:5000/a/b").expect("parses");
        let json = serde_json::to_string(&r).expect("serialises");
        assert_eq!(json, "\"localhost:5000/a/b:latest\"");
        let back: Reference = serde_json::from_str(&json).expect("deserialises");
        assert_eq!(back, r);
        let r = Reference::parse_docker("busybox").expect("parses");
        let back: Reference =
            serde_json::from_str(&serde_json::to_string(&r).expect("ser")).expect("de");
        assert_eq!(back, r);
        assert!(
            serde_json::from_str::<Reference>("\"Bad/name\"").is_ok(),
            "Bad is a domain"
        );
        assert!(serde_json::from_str::<Reference>("\"bad/Name\"").is_err());
    }

    #[test]
    fn ordering_is_by_domain_then_path() {
        let mut v = ["docker.io/b", "docker.io/a:2", "a.io/z", "docker.io/a:1"]
            .map(|s| Reference::parse(s).expect("parses"));
        v.sort();
        let got: Vec<String> = v.iter().map(ToString::to_string).collect();
        assert_eq!(
            got,
            ["a.io/z", "docker.io/a:1", "docker.io/a:2", "docker.io/b"]
        );
    }
}
