//! Registry errors: the distribution spec's error body (`{"errors":[{"code":..}]}`), its error
//! codes, and [`RegistryError`], the error a user finally sees. Its message names the registry,
//! the repository, the request ("GET manifest `latest`"), the status and the registry's own
//! code and message, e.g.
//!
//! ```text
//! registry `localhost:5000`: repository `library/busybox`: GET manifest `nosuch`: 404 Not Found: MANIFEST_UNKNOWN: manifest unknown
//! ```
//!
//! Everything that reaches a message is sanitised: control characters (terminal escapes
//! included) are removed, long text is cut short, and URLs lose their user info and token-like
//! query parameters ([`sanitize_url`], [`sanitize_text`]).

use std::fmt;
use std::io;

use oci::Digest;
use serde_json::Value;

use crate::retry::{Retryable, classify};

/// Longest snippet of a non-spec response body kept in an error.
const SNIPPET_MAX: usize = 200;
/// Longest registry-provided message kept in an error.
const MESSAGE_MAX: usize = 500;
/// What replaces a secret.
const REDACTED: &str = "REDACTED";

/// An error code of the OCI distribution spec (and docker's `TOOMANYREQUESTS`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// `BLOB_UNKNOWN`: blob unknown to registry.
    BlobUnknown,
    /// `BLOB_UPLOAD_INVALID`: blob upload invalid.
    BlobUploadInvalid,
    /// `BLOB_UPLOAD_UNKNOWN`: blob upload unknown to registry.
    BlobUploadUnknown,
    /// `DIGEST_INVALID`: provided digest did not match uploaded content.
    DigestInvalid,
    /// `MANIFEST_BLOB_UNKNOWN`: manifest references a blob unknown to the registry.
    ManifestBlobUnknown,
    /// `MANIFEST_INVALID`: manifest invalid.
    ManifestInvalid,
    /// `MANIFEST_UNKNOWN`: manifest unknown to registry.
    ManifestUnknown,
    /// `NAME_INVALID`: invalid repository name.
    NameInvalid,
    /// `NAME_UNKNOWN`: repository name not known to registry.
    NameUnknown,
    /// `SIZE_INVALID`: provided length did not match content length.
    SizeInvalid,
    /// `UNAUTHORIZED`: authentication required.
    Unauthorized,
    /// `DENIED`: requested access to the resource is denied.
    Denied,
    /// `UNSUPPORTED`: the operation is unsupported.
    Unsupported,
    /// `TOOMANYREQUESTS`: too many requests.
    TooManyRequests,
    /// Any other code, kept as sent (sanitised); empty when the registry sent none.
    Other(String),
}

impl ErrorCode {
    const KNOWN: [Self; 14] = [
        Self::BlobUnknown,
        Self::BlobUploadInvalid,
        Self::BlobUploadUnknown,
        Self::DigestInvalid,
        Self::ManifestBlobUnknown,
        Self::ManifestInvalid,
        Self::ManifestUnknown,
        Self::NameInvalid,
        Self::NameUnknown,
        Self::SizeInvalid,
        Self::Unauthorized,
        Self::Denied,
        Self::Unsupported,
        Self::TooManyRequests,
    ];

    /// Parses a code (case-insensitively; unknown codes become [`ErrorCode::Other`]).
    pub fn parse(s: &str) -> Self {
        let s = s.trim();
        Self::KNOWN
            .into_iter()
            .find(|c| c.as_str().eq_ignore_ascii_case(s))
            .unwrap_or_else(|| Self::Other(sanitize_text(s, 64)))
    }

    /// The code as the spec spells it.
    pub fn as_str(&self) -> &str {
        match self {
            Self::BlobUnknown => "BLOB_UNKNOWN",
            Self::BlobUploadInvalid => "BLOB_UPLOAD_INVALID",
            Self::BlobUploadUnknown => "BLOB_UPLOAD_UNKNOWN",
            Self::DigestInvalid => "DIGEST_INVALID",
            Self::ManifestBlobUnknown => "MANIFEST_BLOB_UNKNOWN",
            Self::ManifestInvalid => "MANIFEST_INVALID",
            Self::ManifestUnknown => "MANIFEST_UNKNOWN",
            Self::NameInvalid => "NAME_INVALID",
            Self::NameUnknown => "NAME_UNKNOWN",
            Self::SizeInvalid => "SIZE_INVALID",
            Self::Unauthorized => "UNAUTHORIZED",
            Self::Denied => "DENIED",
            Self::Unsupported => "UNSUPPORTED",
            Self::TooManyRequests => "TOOMANYREQUESTS",
            Self::Other(s) => s,
        }
    }

    /// True for the codes that say the thing asked for does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            Self::BlobUnknown | Self::ManifestUnknown | Self::NameUnknown | Self::BlobUploadUnknown
        )
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One entry of a distribution error body.
#[derive(Clone, Debug, PartialEq)]
pub struct ErrorInfo {
    /// The code.
    pub code: ErrorCode,
    /// The message, sanitised (may be empty).
    pub message: String,
    /// The `detail`, any JSON, as sent (never shown in messages).
    pub detail: Option<Value>,
}

impl fmt::Display for ErrorInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.code.as_str(), self.message.as_str()) {
            ("", "") => f.write_str("unknown error"),
            (code, "") => f.write_str(code),
            ("", message) => f.write_str(message),
            (code, message) => write!(f, "{code}: {message}"),
        }
    }
}

/// What an error response's body said.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ErrorBody {
    /// The spec's errors, if the body had any.
    pub errors: Vec<ErrorInfo>,
    /// Otherwise a short, sanitised rendering of the body (text of an HTML page, a message
    /// field of other JSON, or the text itself); `None` for an empty body.
    pub snippet: Option<String>,
}

impl ErrorBody {
    /// Parses a response body, tolerating anything: the spec's error JSON, other JSON, HTML,
    /// plain text or binary.
    pub fn parse(body: &[u8]) -> Self {
        let text = String::from_utf8_lossy(body);
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Self::default();
        }
        if let Ok(value) = serde_json::from_str::<Value>(trimmed) {
            let errors = spec_errors(&value);
            if !errors.is_empty() {
                return Self {
                    errors,
                    snippet: None,
                };
            }
            let message = ["message", "error_description", "details", "detail", "error"]
                .iter()
                .find_map(|k| value.get(k).and_then(Value::as_str))
                .filter(|s| !s.trim().is_empty());
            let snippet = match message {
                Some(m) => sanitize_text(m, SNIPPET_MAX),
                None => sanitize_text(&value.to_string(), SNIPPET_MAX),
            };
            return Self {
                errors: Vec::new(),
                snippet: Some(snippet).filter(|s| !s.is_empty()),
            };
        }
        let snippet = if looks_like_html(trimmed) {
            sanitize_text(&html_text(trimmed), SNIPPET_MAX)
        } else {
            sanitize_text(trimmed, SNIPPET_MAX)
        };
        Self {
            errors: Vec::new(),
            snippet: Some(snippet).filter(|s| !s.is_empty()),
        }
    }
}

impl fmt::Display for ErrorBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.errors.is_empty() {
            for (i, e) in self.errors.iter().enumerate() {
                if i > 0 {
                    f.write_str("; ")?;
                }
                write!(f, "{e}")?;
            }
            Ok(())
        } else if let Some(s) = &self.snippet {
            f.write_str(s)
        } else {
            Ok(())
        }
    }
}

/// The `errors` array of a distribution error body.
fn spec_errors(value: &Value) -> Vec<ErrorInfo> {
    let Some(items) = value.get("errors").and_then(Value::as_array) else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|item| match item {
            Value::Object(map) => {
                let code = map.get("code").and_then(Value::as_str).unwrap_or_default();
                let message = map
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                Some(ErrorInfo {
                    code: ErrorCode::parse(code),
                    message: sanitize_text(message, MESSAGE_MAX),
                    detail: map.get("detail").filter(|d| !d.is_null()).cloned(),
                })
            }
            Value::String(message) => Some(ErrorInfo {
                code: ErrorCode::Other(String::new()),
                message: sanitize_text(message, MESSAGE_MAX),
                detail: None,
            }),
            _ => None,
        })
        .collect()
}

fn looks_like_html(s: &str) -> bool {
    let head: String = s.chars().take(256).collect::<String>().to_ascii_lowercase();
    head.starts_with("<!doctype html")
        || head.starts_with("<html")
        || head.starts_with("<?xml")
        || head.contains("<html")
        || head.contains("<head")
        || head.contains("<body")
        || head.contains("<title")
}

/// The visible text of an HTML page: its title, then the text of its body (scripts, styles
/// and the rest of the head dropped), when the body does not repeat the title.
fn html_text(html: &str) -> String {
    let mut title = String::new();
    let mut body = String::new();
    let mut rest = html;
    // The tag whose content is being skipped (script, style).
    let mut skipping: Option<&'static str> = None;
    let mut in_title = false;
    while let Some(lt) = rest.find('<') {
        let text = &rest[..lt];
        if skipping.is_none() {
            if in_title {
                title.push_str(text);
            } else {
                body.push_str(text);
                body.push(' ');
            }
        }
        let after = &rest[lt + 1..];
        let Some(gt) = after.find('>') else {
            rest = "";
            break;
        };
        let tag = after[..gt].trim().to_ascii_lowercase();
        let closing = tag.starts_with('/');
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        rest = &after[gt + 1..];
        match (skipping, name.as_str(), closing) {
            (Some(skip), n, true) if n == skip => skipping = None,
            (Some(_), _, _) => {}
            (None, "script", false) => skipping = Some("script"),
            (None, "style", false) => skipping = Some("style"),
            (None, "title", closing) => in_title = !closing,
            _ => {}
        }
    }
    if skipping.is_none() && !in_title {
        body.push_str(rest);
    }
    let title = collapse(&decode_entities(&title));
    let body = collapse(&decode_entities(&body));
    if body.is_empty() {
        title
    } else if title.is_empty() || body.contains(&title) {
        body
    } else {
        format!("{title}: {body}")
    }
}

fn decode_entities(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let after = &rest[amp + 1..];
        let decoded = after.find(';').filter(|&semi| semi <= 10).and_then(|semi| {
            let name = &after[..semi];
            let c = match name {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                "nbsp" => Some(' '),
                _ => {
                    let num = name.strip_prefix('#')?;
                    let code = match num.strip_prefix(['x', 'X']) {
                        Some(hex) => u32::from_str_radix(hex, 16).ok(),
                        None => num.parse().ok(),
                    };
                    code.and_then(char::from_u32)
                }
            };
            c.map(|c| (c, semi))
        });
        match decoded {
            Some((c, semi)) => {
                out.push(c);
                rest = &after[semi + 1..];
            }
            None => {
                out.push('&');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Control characters become spaces and runs of whitespace one space.
fn collapse(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for word in s
        .split(|c: char| c.is_whitespace() || c.is_control() || is_invisible(c))
        .filter(|w| !w.is_empty())
    {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// Format characters that can reorder or hide text in a terminal (bidi overrides and the
/// like).
fn is_invisible(c: char) -> bool {
    matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{feff}')
}

/// Makes untrusted text safe to show: control and bidi characters removed, whitespace
/// collapsed to single spaces, secrets redacted (URL user info, token query parameters,
/// `Bearer`/`Basic` credentials, JWTs), and at most `max` characters kept (an ellipsis marks a
/// cut).
pub fn sanitize_text(text: &str, max: usize) -> String {
    let collapsed = collapse(text);
    let mut out = String::with_capacity(collapsed.len());
    let mut after_scheme = false;
    for word in collapsed.split(' ').filter(|w| !w.is_empty()) {
        if !out.is_empty() {
            out.push(' ');
        }
        if after_scheme && looks_like_credential(word) {
            out.push_str(REDACTED);
        } else {
            out.push_str(&redact_word(word));
        }
        let bare = word.trim_matches(|c: char| !c.is_ascii_alphanumeric());
        after_scheme = bare.eq_ignore_ascii_case("bearer") || bare.eq_ignore_ascii_case("basic");
    }
    truncate(&out, max)
}

/// Cuts `s` to at most `max` characters, marking a cut with `…`.
fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// True for a word that looks like a token or base64 credential rather than prose: only token
/// characters, 8 or more of them, and some upper case, digits or base64 punctuation.
fn looks_like_credential(word: &str) -> bool {
    word.len() >= 8
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+/=._-~".contains(c))
        && word
            .chars()
            .any(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || "+/=".contains(c))
}

/// Redacts secrets inside one whitespace-free word.
fn redact_word(word: &str) -> String {
    if let Some(sep) = word.find("://") {
        // The scheme starts after the last character that cannot be in one.
        let start = word[..sep]
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || "+.-".contains(c)))
            .map_or(0, |i| i + 1);
        let end = word[sep..]
            .find(|c: char| "\"'<>()[]{}`|\\^".contains(c))
            .map_or(word.len(), |i| sep + i);
        return format!(
            "{}{}{}",
            redact_word(&word[..start]),
            sanitize_url(&word[start..end]),
            redact_word(&word[end..])
        );
    }
    if looks_like_jwt(word) {
        return REDACTED.to_string();
    }
    if let Some(eq) = word.find('=') {
        // `name=value` pairs, as in a query string or a log line.
        let name_start = word[..eq]
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || "_-.".contains(c)))
            .map_or(0, |i| i + 1);
        return format!(
            "{}{}",
            &word[..name_start],
            redact_query(&word[name_start..])
        );
    }
    word.to_string()
}

/// True for a word holding a JWT (`eyJ...` header, three dot-separated base64url parts).
fn looks_like_jwt(word: &str) -> bool {
    let token = word.trim_matches(|c: char| !(c.is_ascii_alphanumeric() || "-_".contains(c)));
    token.len() > 20
        && token.starts_with("eyJ")
        && token.matches('.').count() >= 2
        && token
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

/// True for query parameter names that carry secrets: tokens, signatures, credentials,
/// passwords, and the signed state of distribution's upload URLs.
fn is_secret_param(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    const EXACT: [&str; 4] = ["_state", "verify", "code", "policy"];
    const PARTS: [&str; 9] = [
        "token",
        "secret",
        "passw",
        "sig",
        "credential",
        "key",
        "auth",
        "session",
        "jwt",
    ];
    EXACT.contains(&name.as_str()) || PARTS.iter().any(|p| name.contains(p))
}

/// Redacts secret parameters of a query string (`a=1&token=x` → `a=1&token=REDACTED`).
fn redact_query(query: &str) -> String {
    query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, _)) if is_secret_param(name) => format!("{name}={REDACTED}"),
            _ => pair.to_string(),
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// Makes a URL safe to show: drops user info (`user:password@`), the fragment, and redacts
/// query parameters that carry tokens, signatures or credentials (`token`, `access_token`,
/// `X-Amz-Signature`, `X-Amz-Credential`, `sig`, `_state`, ...). Accepts a bare
/// `host[:port][/path]` too.
pub fn sanitize_url(url: &str) -> String {
    let url = url.split_once('#').map_or(url, |(before, _)| before);
    let (scheme, rest) = match url.split_once("://") {
        Some((scheme, rest)) => (Some(scheme), rest),
        None => (None, url),
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path_and_query) = rest.split_at(authority_end);
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    let (path, query) = match path_and_query.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (path_and_query, None),
    };
    let mut out = String::with_capacity(url.len());
    if let Some(scheme) = scheme {
        out.push_str(scheme);
        out.push_str("://");
    }
    out.push_str(host);
    out.push_str(path);
    if let Some(query) = query {
        out.push('?');
        out.push_str(&redact_query(query));
    }
    out
}

/// The standard reason phrase of an HTTP status, or `""`.
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        206 => "Partial Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Range Not Satisfiable",
        422 => "Unprocessable Content",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "",
    }
}

/// What a request was about, as shown after its method: "manifest `latest`".
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// `/v2/`, the API version check.
    ApiVersion,
    /// A manifest, by tag or digest.
    Manifest(String),
    /// A blob.
    Blob(Digest),
    /// Starting, continuing or (with the digest) finishing a blob upload.
    BlobUpload(Option<Digest>),
    /// Mounting a blob from another repository of the same registry.
    Mount {
        /// The blob.
        digest: Digest,
        /// The repository it is mounted from.
        from: String,
    },
    /// The tag list.
    Tags,
    /// The referrers of a manifest.
    Referrers(Digest),
    /// The catalog.
    Catalog,
    /// A bearer token from the registry's token service.
    Token,
    /// Anything else, described freely.
    Other(String),
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ApiVersion => f.write_str("API version check"),
            Self::Manifest(r) => write!(f, "manifest `{}`", sanitize_text(r, 200)),
            Self::Blob(d) => write!(f, "blob `{d}`"),
            Self::BlobUpload(None) => f.write_str("blob upload"),
            Self::BlobUpload(Some(d)) => write!(f, "blob upload `{d}`"),
            Self::Mount { digest, from } => {
                write!(
                    f,
                    "blob mount `{digest}` from `{}`",
                    sanitize_text(from, 200)
                )
            }
            Self::Tags => f.write_str("tag list"),
            Self::Referrers(d) => write!(f, "referrers of `{d}`"),
            Self::Catalog => f.write_str("catalog"),
            Self::Token => f.write_str("token"),
            Self::Other(s) => f.write_str(&sanitize_text(s, 200)),
        }
    }
}

/// A request: its HTTP method and what it was about, shown as "GET manifest `latest`".
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Operation {
    /// The HTTP method, upper case.
    pub method: String,
    /// What the request was about.
    pub target: Target,
}

impl Operation {
    /// An operation with any method (upper-cased).
    pub fn new(method: &str, target: Target) -> Self {
        Self {
            method: method.to_ascii_uppercase(),
            target,
        }
    }

    /// A `GET`.
    pub fn get(target: Target) -> Self {
        Self::new("GET", target)
    }

    /// A `HEAD`.
    pub fn head(target: Target) -> Self {
        Self::new("HEAD", target)
    }

    /// A `PUT`.
    pub fn put(target: Target) -> Self {
        Self::new("PUT", target)
    }

    /// A `POST`.
    pub fn post(target: Target) -> Self {
        Self::new("POST", target)
    }

    /// A `PATCH`.
    pub fn patch(target: Target) -> Self {
        Self::new("PATCH", target)
    }

    /// A `DELETE`.
    pub fn delete(target: Target) -> Self {
        Self::new("DELETE", target)
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", sanitize_text(&self.method, 16), self.target)
    }
}

/// Where an error happened: the registry, and when known the repository and the request.
/// Shown as "registry `localhost:5000`: repository `library/busybox`: GET manifest `nosuch`".
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Context {
    /// The registry host (with port); any user info is stripped.
    pub registry: String,
    /// The repository, if the request had one.
    pub repository: Option<String>,
    /// The request, if known.
    pub op: Option<Operation>,
}

impl Context {
    /// A context naming only the registry (user info such as `user:pass@` is stripped).
    pub fn new(registry: &str) -> Self {
        Self {
            registry: sanitize_url(registry),
            repository: None,
            op: None,
        }
    }

    /// Adds the repository.
    pub fn repository(mut self, repository: &str) -> Self {
        self.repository = Some(repository.to_string());
        self
    }

    /// Adds the request.
    pub fn op(mut self, op: Operation) -> Self {
        self.op = Some(op);
        self
    }
}

impl fmt::Display for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "registry `{}`", sanitize_text(&self.registry, 200))?;
        if let Some(r) = &self.repository {
            write!(f, ": repository `{}`", sanitize_text(r, 256))?;
        }
        if let Some(op) = &self.op {
            write!(f, ": {op}")?;
        }
        Ok(())
    }
}

/// Why an image cannot be handled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Unsupported {
    /// A docker schema1 manifest.
    Schema1,
    /// A manifest or index media type we do not handle.
    MediaType(String),
    /// Anything else, described.
    Other(String),
}

/// The error a registry operation ends with.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The registry answered with an error status.
    #[error("{ctx}: {}", status_line(*.status, .body))]
    Status {
        /// Where.
        ctx: Context,
        /// The HTTP status.
        status: u16,
        /// What the body said.
        body: ErrorBody,
    },
    /// The request did not get a response (connection, TLS, timeout, body cut short).
    #[error("{ctx}: request failed: {message}")]
    Transport {
        /// Where.
        ctx: Context,
        /// The I/O error kind, when the cause was one.
        kind: Option<io::ErrorKind>,
        /// The cause chain, sanitised.
        message: String,
    },
    /// Content did not hash to the digest it was asked for by.
    #[error("{ctx}: digest mismatch for {what}: expected {expected}, got {actual}")]
    DigestMismatch {
        /// Where.
        ctx: Context,
        /// What was checked ("blob", "manifest `latest`").
        what: String,
        /// The digest asked for.
        expected: Digest,
        /// The digest of what arrived.
        actual: Digest,
    },
    /// Content did not have the size its descriptor says.
    #[error("{ctx}: size mismatch for {what}: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        /// Where.
        ctx: Context,
        /// What was checked.
        what: String,
        /// The size the descriptor says.
        expected: u64,
        /// The size that arrived (so far, if larger).
        actual: u64,
    },
    /// An image hoist cannot handle.
    #[error("{}", unsupported_line(.reference, .what))]
    Unsupported {
        /// The image reference, as the user gave it.
        reference: String,
        /// What is unsupported.
        what: Unsupported,
    },
    /// The registry rejected the credentials.
    #[error(
        "authentication to `{registry}` failed{}: check the user name and password (hoist login {registry})",
        .detail.as_deref().map(|d| format!(": {d}")).unwrap_or_default()
    )]
    Auth {
        /// The registry host.
        registry: String,
        /// What the registry or its token service said, sanitised.
        detail: Option<String>,
    },
    /// An index has no image for the wanted platform.
    #[error(
        "no image for {wanted} in `{reference}`: available: {}",
        if .available.is_empty() { "none".to_string() } else { .available.join(", ") }
    )]
    NoMatchingPlatform {
        /// The image reference.
        reference: String,
        /// The platform asked for, as `os/arch[/variant]`.
        wanted: String,
        /// The platforms the index offers.
        available: Vec<String>,
    },
    /// The registry answered something that breaks the protocol (a missing `Location`, a
    /// manifest that is not JSON...).
    #[error("{ctx}: invalid response: {message}")]
    InvalidResponse {
        /// Where.
        ctx: Context,
        /// What was wrong, sanitised.
        message: String,
    },
    /// Every attempt failed; `last` is the last failure.
    #[error("{last} (gave up after {attempts} attempts)")]
    RetriesExhausted {
        /// Attempts made.
        attempts: u32,
        /// The last failure.
        last: Box<RegistryError>,
    },
}

fn status_line(status: u16, body: &ErrorBody) -> String {
    let reason = reason_phrase(status);
    let mut line = if reason.is_empty() {
        status.to_string()
    } else {
        format!("{status} {reason}")
    };
    let body = body.to_string();
    if !body.is_empty() {
        line.push_str(": ");
        line.push_str(&body);
    }
    line
}

fn unsupported_line(reference: &str, what: &Unsupported) -> String {
    let reference = sanitize_text(reference, 256);
    match what {
        Unsupported::Schema1 => format!(
            "docker schema1 manifests are not supported: `{reference}` uses the deprecated \
             schema1 format; push it again with a current docker or skopeo"
        ),
        Unsupported::MediaType(mt) => format!(
            "`{reference}` has unsupported media type `{}`",
            sanitize_text(mt, 200)
        ),
        Unsupported::Other(what) => format!(
            "`{reference}`: unsupported: {}",
            sanitize_text(what, MESSAGE_MAX)
        ),
    }
}

/// Builds the error for an error response: `op` on `repository` (if any) at `registry`
/// answered `status` with `body`.
pub fn from_response(
    registry: &str,
    repository: Option<&str>,
    op: Operation,
    status: u16,
    body: &[u8],
) -> RegistryError {
    let mut ctx = Context::new(registry).op(op);
    if let Some(r) = repository {
        ctx = ctx.repository(r);
    }
    RegistryError::Status {
        ctx,
        status,
        body: ErrorBody::parse(body),
    }
}

/// An error and its sources joined with `: ` (skipping repeats), sanitised.
pub(crate) fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut message = String::new();
    let mut cur = Some(error);
    while let Some(e) = cur {
        let text = e.to_string();
        if !text.is_empty() && !message.contains(&text) {
            if !message.is_empty() {
                message.push_str(": ");
            }
            message.push_str(&text);
        }
        cur = e.source();
    }
    sanitize_text(&message, MESSAGE_MAX)
}

impl RegistryError {
    /// A transport failure from any error: its source chain is joined (skipping repeats),
    /// sanitised, and searched for an [`io::Error`] to keep its kind.
    pub fn transport(ctx: Context, error: &(dyn std::error::Error + 'static)) -> Self {
        let mut kind = None;
        let mut cur = Some(error);
        while let Some(e) = cur {
            kind = kind.or_else(|| e.downcast_ref::<io::Error>().map(io::Error::kind));
            cur = e.source();
        }
        Self::Transport {
            ctx,
            kind,
            message: error_chain(error),
        }
    }

    /// A transport failure described by `message` (sanitised here).
    pub fn transport_message(ctx: Context, kind: Option<io::ErrorKind>, message: &str) -> Self {
        Self::Transport {
            ctx,
            kind,
            message: sanitize_text(message, MESSAGE_MAX),
        }
    }

    /// Rejected credentials for `registry`, with what the server said (sanitised here).
    pub fn auth(registry: &str, detail: Option<&str>) -> Self {
        Self::Auth {
            registry: sanitize_url(registry),
            detail: detail
                .map(|d| sanitize_text(d, MESSAGE_MAX))
                .filter(|d| !d.is_empty()),
        }
    }

    /// A docker schema1 manifest for `reference`.
    pub fn schema1(reference: &str) -> Self {
        Self::Unsupported {
            reference: reference.to_string(),
            what: Unsupported::Schema1,
        }
    }

    /// A protocol violation (the message is sanitised here).
    pub fn invalid_response(ctx: Context, message: &str) -> Self {
        Self::InvalidResponse {
            ctx,
            message: sanitize_text(message, MESSAGE_MAX),
        }
    }

    /// Wraps the last failure after `attempts` attempts (a single attempt is returned as is).
    pub fn retries_exhausted(attempts: u32, last: RegistryError) -> Self {
        if attempts <= 1 {
            return last;
        }
        Self::RetriesExhausted {
            attempts,
            last: Box::new(last),
        }
    }

    /// The error beneath any [`RegistryError::RetriesExhausted`].
    pub fn innermost(&self) -> &Self {
        match self {
            Self::RetriesExhausted { last, .. } => last.innermost(),
            other => other,
        }
    }

    /// The HTTP status, for an error response.
    pub fn status(&self) -> Option<u16> {
        match self.innermost() {
            Self::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The registry's error entries, for an error response.
    pub fn errors(&self) -> &[ErrorInfo] {
        match self.innermost() {
            Self::Status { body, .. } => &body.errors,
            _ => &[],
        }
    }

    /// True if the registry's error codes include `code`.
    pub fn has_code(&self, code: &ErrorCode) -> bool {
        self.errors().iter().any(|e| &e.code == code)
    }

    /// True when the thing asked for does not exist (404, or a not-found code).
    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404) || self.errors().iter().any(|e| e.code.is_not_found())
    }

    /// Whether another attempt might succeed (see [`classify`]).
    pub fn retryable(&self) -> Retryable {
        match self {
            Self::Status { status, body, .. } => {
                let class = classify(Some(*status), None);
                if class == Retryable::No
                    && body
                        .errors
                        .iter()
                        .any(|e| e.code == ErrorCode::TooManyRequests)
                {
                    Retryable::Throttled
                } else {
                    class
                }
            }
            Self::Transport { kind, .. } => classify(None, *kind),
            _ => Retryable::No,
        }
    }

    /// Advice for the user, for the CLI to print under the error.
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            Self::Status { status, body, .. } => {
                let has = |c: ErrorCode| body.errors.iter().any(|e| e.code == c);
                if *status == 429 || has(ErrorCode::TooManyRequests) {
                    Some(
                        "the registry is limiting requests: wait a while, or log in with \
                         `hoist login` for a higher limit",
                    )
                } else if *status == 401 || has(ErrorCode::Unauthorized) {
                    Some(
                        "log in with `hoist login <registry>`; some registries (Docker Hub) \
                         also answer this for repositories that do not exist",
                    )
                } else if *status == 403 || has(ErrorCode::Denied) {
                    Some("the account in use does not have access to this repository")
                } else if has(ErrorCode::NameUnknown) {
                    Some("check the repository name")
                } else if *status == 404 || has(ErrorCode::ManifestUnknown) {
                    Some("check the repository name and the tag or digest")
                } else {
                    None
                }
            }
            Self::Transport { .. } => Some("check the network connection and the registry address"),
            Self::DigestMismatch { .. } | Self::SizeMismatch { .. } => {
                Some("the content was corrupted on the way (or by a proxy); run the command again")
            }
            Self::Auth { .. } => Some(
                "check the user name and password (or token), then run `hoist login <registry>`",
            ),
            Self::NoMatchingPlatform { .. } => {
                Some("pick one of the available platforms with --platform")
            }
            Self::Unsupported { .. } | Self::InvalidResponse { .. } => None,
            Self::RetriesExhausted { last, .. } => last.hint(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(c: char) -> Digest {
        Digest::parse(&format!("sha256:{}", c.to_string().repeat(64))).unwrap()
    }

    #[test]
    fn full_message_for_manifest_unknown() {
        let body = br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{"Tag":"nosuch"}}]}"#;
        let e = from_response(
            "localhost:5000",
            Some("library/busybox"),
            Operation::get(Target::Manifest("nosuch".into())),
            404,
            body,
        );
        assert_eq!(
            e.to_string(),
            "registry `localhost:5000`: repository `library/busybox`: GET manifest `nosuch`: \
             404 Not Found: MANIFEST_UNKNOWN: manifest unknown"
        );
        assert_eq!(e.status(), Some(404));
        assert!(e.is_not_found());
        assert!(e.has_code(&ErrorCode::ManifestUnknown));
        assert_eq!(
            e.errors()[0].detail,
            Some(serde_json::json!({"Tag": "nosuch"}))
        );
        assert_eq!(e.retryable(), Retryable::No);
        assert_eq!(
            e.hint(),
            Some("check the repository name and the tag or digest")
        );
    }

    #[test]
    fn all_codes_round_trip() {
        for code in ErrorCode::KNOWN {
            assert_eq!(ErrorCode::parse(code.as_str()), code);
            assert_eq!(code.to_string(), code.as_str());
        }
        assert_eq!(
            ErrorCode::parse("manifest_unknown"),
            ErrorCode::ManifestUnknown
        );
        assert_eq!(
            ErrorCode::parse("QUOTA_EXCEEDED"),
            ErrorCode::Other("QUOTA_EXCEEDED".into())
        );
        assert!(ErrorCode::BlobUnknown.is_not_found());
        assert!(!ErrorCode::Denied.is_not_found());
    }

    #[test]
    fn several_errors_and_odd_entries() {
        let body = br#"{"errors":[
            {"code":"BLOB_UNKNOWN","message":"blob unknown to registry","detail":"sha256:abc"},
            {"code":"DENIED"},
            {"message":"only a message"},
            "a bare string",
            42,
            {"code":"X_CUSTOM","message":"custom","detail":null}
        ]}"#;
        let parsed = ErrorBody::parse(body);
        assert_eq!(parsed.errors.len(), 5);
        assert_eq!(parsed.errors[0].detail, Some(Value::from("sha256:abc")));
        assert_eq!(parsed.errors[5 - 1].detail, None);
        assert_eq!(
            parsed.to_string(),
            "BLOB_UNKNOWN: blob unknown to registry; DENIED; only a message; a bare string; \
             X_CUSTOM: custom"
        );
    }

    #[test]
    fn empty_body_and_no_reason() {
        let e = from_response(
            "r.example",
            None,
            Operation::head(Target::Blob(digest('a'))),
            599,
            b"",
        );
        assert_eq!(
            e.to_string(),
            format!("registry `r.example`: HEAD blob `{}`: 599", digest('a'))
        );
        let e = from_response(
            "r.example",
            None,
            Operation::get(Target::ApiVersion),
            502,
            b"  \n",
        );
        assert_eq!(
            e.to_string(),
            "registry `r.example`: GET API version check: 502 Bad Gateway"
        );
        assert_eq!(e.retryable(), Retryable::Transient);
    }

    #[test]
    fn html_bodies_become_short_text() {
        let body = b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx/1.25.3</center>\r\n</body>\r\n</html>\r\n";
        let parsed = ErrorBody::parse(body);
        assert!(parsed.errors.is_empty());
        assert_eq!(
            parsed.snippet.as_deref(),
            Some("502 Bad Gateway nginx/1.25.3")
        );

        let body = br#"<!DOCTYPE html><html><head><title>Access denied</title>
            <style>body { color: red }</style><script>var token = "secret";</script></head>
            <body><p>You &amp; your proxy are &lt;blocked&gt;&#33; &#x2764;</p></body></html>"#;
        let snippet = ErrorBody::parse(body).snippet.unwrap();
        assert_eq!(
            snippet,
            "Access denied: You & your proxy are <blocked>! \u{2764}"
        );
        assert!(!snippet.contains("secret"));
        assert!(!snippet.contains("color"));

        // Long pages are cut.
        let long = format!("<html><body>{}</body></html>", "word ".repeat(500));
        let snippet = ErrorBody::parse(long.as_bytes()).snippet.unwrap();
        assert_eq!(snippet.chars().count(), SNIPPET_MAX);
        assert!(snippet.ends_with('…'));
    }

    #[test]
    fn other_json_and_text_bodies() {
        let parsed = ErrorBody::parse(br#"{"details":"incorrect username or password"}"#);
        assert_eq!(
            parsed.snippet.as_deref(),
            Some("incorrect username or password")
        );
        let parsed =
            ErrorBody::parse(br#"{"error":"invalid_grant","error_description":"bad refresh"}"#);
        assert_eq!(parsed.snippet.as_deref(), Some("bad refresh"));
        let parsed = ErrorBody::parse(br#"{"errors":[]}"#);
        assert_eq!(parsed.snippet.as_deref(), Some(r#"{"errors":[]}"#));
        let parsed = ErrorBody::parse(b"upstream connect error\n or disconnect");
        assert_eq!(
            parsed.snippet.as_deref(),
            Some("upstream connect error or disconnect")
        );
        let parsed = ErrorBody::parse(&[0xff, 0xfe, 0x00, b'h', b'i']);
        assert_eq!(parsed.snippet.as_deref(), Some("\u{fffd}\u{fffd} hi"));
        let parsed = ErrorBody::parse(b"null");
        assert_eq!(parsed.snippet.as_deref(), Some("null"));
    }

    #[test]
    fn terminal_escapes_are_removed() {
        let body = "{\"errors\":[{\"code\":\"DENIED\",\"message\":\"no\\u001b[31m red\\u202e evil\\r\\nline\"}]}";
        let e = from_response(
            "r.example",
            Some("a/b"),
            Operation::put(Target::Manifest("v1".into())),
            403,
            body.as_bytes(),
        );
        let s = e.to_string();
        assert!(
            !s.chars().any(|c| c.is_control() || c == '\u{202e}'),
            "{s:?}"
        );
        assert!(
            s.ends_with("403 Forbidden: DENIED: no [31m red evil line"),
            "{s}"
        );
        assert_eq!(
            e.hint(),
            Some("the account in use does not have access to this repository")
        );
    }

    #[test]
    fn urls_lose_credentials_and_tokens() {
        assert_eq!(
            sanitize_url(
                "https://user:hunter2@registry.example:5000/v2/a/b/blobs/uploads/x?_state=abc&digest=sha256%3Aff#frag"
            ),
            "https://registry.example:5000/v2/a/b/blobs/uploads/x?_state=REDACTED&digest=sha256%3Aff"
        );
        assert_eq!(
            sanitize_url(
                "https://bucket.s3.amazonaws.com/data?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIA%2F&X-Amz-Signature=deadbeef&X-Amz-Security-Token=tok&X-Amz-Expires=1200"
            ),
            "https://bucket.s3.amazonaws.com/data?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=REDACTED&X-Amz-Signature=REDACTED&X-Amz-Security-Token=REDACTED&X-Amz-Expires=1200"
        );
        assert_eq!(
            sanitize_url(
                "https://auth.example/token?service=r&scope=repository:a:pull&access_token=xyz&refresh_token=r1"
            ),
            "https://auth.example/token?service=r&scope=repository:a:pull&access_token=REDACTED&refresh_token=REDACTED"
        );
        assert_eq!(
            sanitize_url(
                "https://cdn.example/blob?verify=1700000000-abc&sig=s&Signature=x&Key-Pair-Id=k&Policy=p"
            ),
            "https://cdn.example/blob?verify=REDACTED&sig=REDACTED&Signature=REDACTED&Key-Pair-Id=REDACTED&Policy=REDACTED"
        );
        assert_eq!(sanitize_url("me:pw@localhost:5000"), "localhost:5000");
        assert_eq!(sanitize_url("localhost:5000"), "localhost:5000");
        assert_eq!(sanitize_url("https://h/p?a@b=1"), "https://h/p?a@b=1");
        assert_eq!(sanitize_url("https://h?token"), "https://h?token");
        assert_eq!(sanitize_url("https://t@h"), "https://h");
    }

    #[test]
    fn transport_errors_never_leak_secrets() {
        #[derive(Debug)]
        struct Outer(io::Error);
        impl fmt::Display for Outer {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "error sending request for url (https://bob:s3cret@r.example/v2/a/manifests/x?token=abc123)",
                )
            }
        }
        impl std::error::Error for Outer {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let err = Outer(io::Error::new(
            io::ErrorKind::ConnectionReset,
            "connection reset by peer; Authorization: Bearer eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJib2IifQ.c2lnbmF0dXJl",
        ));
        let ctx = Context::new("bob:s3cret@r.example")
            .repository("a")
            .op(Operation::get(Target::Manifest("x".into())));
        let e = RegistryError::transport(ctx, &err);
        let s = e.to_string();
        for secret in ["s3cret", "bob", "abc123", "eyJ", "c2lnbmF0dXJl"] {
            assert!(!s.contains(secret), "{secret} in {s}");
        }
        assert_eq!(
            s,
            "registry `r.example`: repository `a`: GET manifest `x`: request failed: error \
             sending request for url (https://r.example/v2/a/manifests/x?token=REDACTED): \
             connection reset by peer; Authorization: Bearer REDACTED"
        );
        assert!(matches!(
            e,
            RegistryError::Transport {
                kind: Some(io::ErrorKind::ConnectionReset),
                ..
            }
        ));
        assert_eq!(e.retryable(), Retryable::Transient);
        assert!(e.hint().is_some());
    }

    #[test]
    fn sanitize_text_redactions() {
        assert_eq!(
            sanitize_text("Basic dXNlcjpwYXNz failed", 100),
            "Basic REDACTED failed"
        );
        assert_eq!(
            sanitize_text("got password=hunter2&user=bob here", 100),
            "got password=REDACTED&user=bob here"
        );
        assert_eq!(
            sanitize_text("token eyJhbGciOiJIUzI1NiJ9.eyJhIjoiYiJ9.sig_-abc.", 100),
            "token REDACTED"
        );
        assert_eq!(
            sanitize_text("see <https://u:p@h.example/x?id_token=1>.", 100),
            "see <https://h.example/x?id_token=REDACTED>."
        );
        assert_eq!(
            sanitize_text("digest=sha256:abc size=3", 100),
            "digest=sha256:abc size=3"
        );
        // Prose after the scheme names is kept.
        assert_eq!(
            sanitize_text("Basic authentication failed; use Bearer tokens", 100),
            "Basic authentication failed; use Bearer tokens"
        );
        assert_eq!(
            sanitize_text(
                "WWW-Authenticate: Bearer realm=\"https://a.example/token\",service=\"r\"",
                100
            ),
            "WWW-Authenticate: Bearer realm=\"https://a.example/token\",service=\"r\""
        );
        assert_eq!(sanitize_text("a\u{7f}b\u{9b}c\u{200f}d", 100), "a b c d");
        assert_eq!(sanitize_text("abcdef", 4), "abc…");
        assert_eq!(sanitize_text("äöüß", 4), "äöüß");
    }

    #[test]
    fn registry_errors_with_urls_in_messages_are_sanitised() {
        let body = br#"{"errors":[{"code":"BLOB_UPLOAD_INVALID","message":"bad upload https://x:y@r.example/v2/u?_state=SIGNED"}]}"#;
        let e = from_response(
            "r.example",
            Some("a"),
            Operation::patch(Target::BlobUpload(None)),
            400,
            body,
        );
        let s = e.to_string();
        assert!(!s.contains("SIGNED") && !s.contains("x:y"), "{s}");
        assert!(s.contains("PATCH blob upload: 400 Bad Request: BLOB_UPLOAD_INVALID"));
    }

    #[test]
    fn other_variants_display() {
        let ctx = Context::new("r.example")
            .repository("a/b")
            .op(Operation::get(Target::Blob(digest('a'))));
        let e = RegistryError::DigestMismatch {
            ctx: ctx.clone(),
            what: "blob".into(),
            expected: digest('a'),
            actual: digest('b'),
        };
        assert_eq!(
            e.to_string(),
            format!(
                "registry `r.example`: repository `a/b`: GET blob `{a}`: digest mismatch for blob: \
                 expected {a}, got {b}",
                a = digest('a'),
                b = digest('b')
            )
        );
        let e = RegistryError::SizeMismatch {
            ctx,
            what: "blob".into(),
            expected: 10,
            actual: 12,
        };
        assert!(
            e.to_string()
                .ends_with("size mismatch for blob: expected 10 bytes, got 12")
        );
        assert!(e.hint().is_some());

        let e = RegistryError::schema1("docker.io/library/old:1");
        assert_eq!(
            e.to_string(),
            "docker schema1 manifests are not supported: `docker.io/library/old:1` uses the \
             deprecated schema1 format; push it again with a current docker or skopeo"
        );
        let e = RegistryError::Unsupported {
            reference: "r/x:1".into(),
            what: Unsupported::MediaType("application/x-foo".into()),
        };
        assert_eq!(
            e.to_string(),
            "`r/x:1` has unsupported media type `application/x-foo`"
        );

        let e = RegistryError::auth("docker.io", None);
        assert_eq!(
            e.to_string(),
            "authentication to `docker.io` failed: check the user name and password \
             (hoist login docker.io)"
        );
        let e = RegistryError::auth("u:p@localhost:5000", Some("incorrect username or password"));
        assert_eq!(
            e.to_string(),
            "authentication to `localhost:5000` failed: incorrect username or password: check \
             the user name and password (hoist login localhost:5000)"
        );
        assert!(e.hint().is_some_and(|h| h.contains("hoist login")));

        let e = RegistryError::NoMatchingPlatform {
            reference: "docker.io/library/busybox:latest".into(),
            wanted: "linux/s390x".into(),
            available: vec!["linux/amd64".into(), "linux/arm64/v8".into()],
        };
        assert_eq!(
            e.to_string(),
            "no image for linux/s390x in `docker.io/library/busybox:latest`: available: \
             linux/amd64, linux/arm64/v8"
        );
        let e = RegistryError::NoMatchingPlatform {
            reference: "r".into(),
            wanted: "linux/s390x".into(),
            available: vec![],
        };
        assert!(e.to_string().ends_with("available: none"));

        let e = RegistryError::invalid_response(
            Context::new("r.example").op(Operation::post(Target::BlobUpload(None))),
            "no Location header",
        );
        assert_eq!(
            e.to_string(),
            "registry `r.example`: POST blob upload: invalid response: no Location header"
        );
        let mount = Operation::post(Target::Mount {
            digest: digest('c'),
            from: "lib/base".into(),
        });
        assert_eq!(
            mount.to_string(),
            format!("POST blob mount `{}` from `lib/base`", digest('c'))
        );
        assert_eq!(
            Operation::new("get", Target::Tags).to_string(),
            "GET tag list"
        );
        assert_eq!(Operation::get(Target::Token).to_string(), "GET token");
        assert_eq!(
            Operation::delete(Target::Manifest("x".into())).to_string(),
            "DELETE manifest `x`"
        );
    }

    #[test]
    fn retries_exhausted_wraps_last() {
        let last = from_response(
            "r.example",
            Some("a"),
            Operation::get(Target::Manifest("latest".into())),
            503,
            b"",
        );
        let e = RegistryError::retries_exhausted(5, last);
        assert_eq!(
            e.to_string(),
            "registry `r.example`: repository `a`: GET manifest `latest`: 503 Service \
             Unavailable (gave up after 5 attempts)"
        );
        assert_eq!(e.status(), Some(503));
        assert!(!e.is_not_found());
        // Not retryable again as a whole.
        assert_eq!(e.retryable(), Retryable::No);
        let one = RegistryError::retries_exhausted(
            1,
            from_response("r", None, Operation::get(Target::Catalog), 429, b""),
        );
        assert!(matches!(one, RegistryError::Status { status: 429, .. }));
        assert_eq!(one.retryable(), Retryable::Throttled);
        assert!(one.hint().is_some_and(|h| h.contains("limiting")));
    }

    #[test]
    fn toomanyrequests_code_is_throttled_whatever_the_status() {
        let body = br#"{"errors":[{"code":"TOOMANYREQUESTS","message":"You have reached your pull rate limit."}]}"#;
        let e = from_response(
            "docker.io",
            Some("library/x"),
            Operation::get(Target::Manifest("1".into())),
            403,
            body,
        );
        assert_eq!(e.retryable(), Retryable::Throttled);
    }

    #[test]
    fn unauthorized_hint() {
        let body = br#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required","detail":[{"Type":"repository","Name":"nope","Action":"pull"}]}]}"#;
        let e = from_response(
            "registry-1.docker.io",
            Some("library/nope"),
            Operation::get(Target::Manifest("latest".into())),
            401,
            body,
        );
        assert!(
            e.to_string()
                .ends_with("401 Unauthorized: UNAUTHORIZED: authentication required")
        );
        assert!(e.hint().is_some_and(|h| h.contains("hoist login")));
    }
}
