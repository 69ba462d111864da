//! Validation of OCI image-spec documents by media type: content descriptors, the `oci-layout`
//! header, image manifests, image indexes and image configs (and docker's schema2 manifest,
//! manifest list and config, with the same rules as their OCI counterparts).
//!
//! This follows what upstream image-spec's `schema` validator does, written out as code instead
//! of a JSON-schema engine:
//!
//! 1. the bytes must be JSON (a syntax error is reported with its line and column);
//! 2. a strict typed decode: every known field must have its type (`size` an integer, annotation
//!    values strings, `data` standard padded base64, `created` an RFC 3339 date-time, ...);
//!    unknown fields are allowed;
//! 3. upstream's extra checks: a digest with a registered algorithm (`sha256`, `sha384`,
//!    `sha512`) must have the right lowercase-hex encoding, and every `config.Env` entry must be
//!    `KEY=value`;
//! 4. the JSON-schema rules: required fields, media type and digest patterns, `urls` entries must
//!    be absolute URIs, `schemaVersion` must be 2, a manifest needs at least one layer,
//!    `rootfs.type` must be `layers`, the layout version must be `1.0.0`, and so on.
//!
//! A few rules are stricter than upstream, where the spec says MUST but upstream's validator only
//! warns or does not look: a manifest's or index's own `mediaType`, when present, must be the
//! media type being validated; a descriptor `size` is never negative (upstream's index schema
//! allows it for `manifests[]`); the descriptor rules (digest encoding, `artifactType` pattern,
//! `platform` with its required `architecture` and `os`) apply to every descriptor wherever it
//! appears; and `rootfs.diff_ids` entries must be digests.

use serde_json::{Map, Value};

use crate::MediaType;

/// The media type of a bare content descriptor, `application/vnd.oci.descriptor.v1+json`.
pub const DESCRIPTOR_MEDIA_TYPE: &str = "application/vnd.oci.descriptor.v1+json";

/// The media type of the `oci-layout` file, `application/vnd.oci.layout.header.v1+json`.
pub const LAYOUT_HEADER_MEDIA_TYPE: &str = "application/vnd.oci.layout.header.v1+json";

/// How the path of the document itself is written in a [`ValidationError`].
const ROOT: &str = "(root)";

/// Why a document is invalid: the JSON path of the offending field and the reason.
///
/// `path` is written like `layers[0].digest` or `annotations["org.example.key"]`, or `(root)`
/// for the document as a whole (for example when it is not JSON at all).
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[error("invalid {kind}: {path}: {reason}")]
pub struct ValidationError {
    /// What was being validated: `descriptor`, `image layout`, `image manifest`, `image index`,
    /// `image config`, `docker manifest`, `docker manifest list`, `docker image config`, or
    /// `document` for a media type we have no rules for.
    pub kind: &'static str,
    /// The JSON path of the offending value, or `(root)`.
    pub path: String,
    /// What is wrong with it.
    pub reason: String,
}

/// Validates `bytes` as a document of `media_type`.
///
/// Known media types: the OCI content descriptor ([`DESCRIPTOR_MEDIA_TYPE`]), layout header
/// ([`LAYOUT_HEADER_MEDIA_TYPE`]), image manifest, image index and image config. Docker's schema2
/// manifest, manifest list and container config media types are validated with the same rules
/// as their OCI counterparts, the document's own `mediaType` then being the docker string. Any
/// other media type is an error: there are no rules to check it against.
pub fn validate(media_type: &MediaType, bytes: &[u8]) -> Result<(), ValidationError> {
    let (kind, doc) = match media_type {
        MediaType::OciManifest => ("image manifest", Doc::Manifest),
        MediaType::DockerManifest => ("docker manifest", Doc::Manifest),
        MediaType::OciIndex => ("image index", Doc::Index),
        MediaType::DockerManifestList => ("docker manifest list", Doc::Index),
        MediaType::OciConfig => ("image config", Doc::Config),
        MediaType::DockerConfig => ("docker image config", Doc::Config),
        MediaType::Other(s) if s == DESCRIPTOR_MEDIA_TYPE => ("descriptor", Doc::Descriptor),
        MediaType::Other(s) if s == LAYOUT_HEADER_MEDIA_TYPE => ("image layout", Doc::Layout),
        other => {
            return Err(ValidationError {
                kind: "document",
                path: ROOT.to_string(),
                reason: format!("no validation rules for media type `{other}`"),
            });
        }
    };
    let v = Validator { kind };
    let value: Value =
        serde_json::from_slice(bytes).map_err(|e| v.err("", format!("not valid JSON: {e}")))?;
    match doc {
        Doc::Descriptor => v.descriptor(&value, ""),
        Doc::Layout => v.layout(&value),
        Doc::Manifest => v.manifest(&value, media_type.as_str()),
        Doc::Index => v.index(&value, media_type.as_str()),
        Doc::Config => v.config(&value),
    }
}

/// Validates an already parsed content descriptor found at `path` (`""` for a document that is a
/// bare descriptor; `config`, `layers[0]`, ... inside a manifest). Errors have the kind
/// `descriptor`.
///
/// Required: `mediaType` (a `type/subtype` media type), `size` (a non-negative int64) and
/// `digest` (`algorithm:encoded`, with the exact lowercase-hex encoding for `sha256`, `sha384`
/// and `sha512`). Optional, but typed when present: `urls` (absolute URIs), `data` (standard
/// base64 with padding), `artifactType` (a media type), `annotations` (string to string) and
/// `platform` (with required `architecture` and `os`).
pub fn validate_descriptor_value(v: &Value, path: &str) -> Result<(), ValidationError> {
    Validator { kind: "descriptor" }.descriptor(v, path)
}

/// Which document rules apply.
enum Doc {
    Descriptor,
    Layout,
    Manifest,
    Index,
    Config,
}

/// The path of `key` inside the object at `path`.
fn child(path: &str, key: &str) -> String {
    let mut chars = key.chars();
    let ident = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !ident {
        format!("{path}[{}]", Value::String(key.to_string()))
    } else if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// The path of item `i` of the array at `path`.
fn item(path: &str, i: usize) -> String {
    format!("{path}[{i}]")
}

/// A short description of a JSON value's type, for messages.
fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_f64() => "a non-integer number",
        Value::Number(_) => "an integer",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

type Result<T = (), E = ValidationError> = std::result::Result<T, E>;

/// The checks, each reporting errors with the kind of the document being validated.
struct Validator {
    kind: &'static str,
}

impl Validator {
    fn err(&self, path: &str, reason: impl Into<String>) -> ValidationError {
        ValidationError {
            kind: self.kind,
            path: if path.is_empty() {
                ROOT.to_string()
            } else {
                path.to_string()
            },
            reason: reason.into(),
        }
    }

    fn wrong_type(&self, v: &Value, path: &str, expected: &str) -> ValidationError {
        self.err(path, format!("expected {expected}, found {}", type_name(v)))
    }

    // ----- JSON types -----

    fn object<'a>(&self, v: &'a Value, path: &str) -> Result<&'a Map<String, Value>> {
        v.as_object()
            .ok_or_else(|| self.wrong_type(v, path, "an object"))
    }

    fn array<'a>(&self, v: &'a Value, path: &str) -> Result<&'a [Value]> {
        v.as_array()
            .map(Vec::as_slice)
            .ok_or_else(|| self.wrong_type(v, path, "an array"))
    }

    fn string<'a>(&self, v: &'a Value, path: &str) -> Result<&'a str> {
        v.as_str()
            .ok_or_else(|| self.wrong_type(v, path, "a string"))
    }

    fn boolean(&self, v: &Value, path: &str) -> Result {
        v.as_bool()
            .map(drop)
            .ok_or_else(|| self.wrong_type(v, path, "a boolean"))
    }

    /// An array whose items are all strings.
    fn string_array<'a>(&self, v: &'a Value, path: &str) -> Result<Vec<&'a str>> {
        self.array(v, path)?
            .iter()
            .enumerate()
            .map(|(i, x)| self.string(x, &item(path, i)))
            .collect()
    }

    /// An object whose values are all strings (`annotations`, `Labels`).
    fn string_map(&self, v: &Value, path: &str) -> Result {
        for (k, x) in self.object(v, path)? {
            self.string(x, &child(path, k))?;
        }
        Ok(())
    }

    /// An object whose values are all objects (`ExposedPorts`, `Volumes`).
    fn object_map(&self, v: &Value, path: &str) -> Result {
        for (k, x) in self.object(v, path)? {
            self.object(x, &child(path, k))?;
        }
        Ok(())
    }

    /// Fails if any of `fields` is missing from `obj`.
    fn require(&self, obj: &Map<String, Value>, path: &str, fields: &[&str]) -> Result {
        match fields.iter().find(|f| !obj.contains_key(**f)) {
            Some(f) => Err(self.err(&child(path, f), "required field is missing")),
            None => Ok(()),
        }
    }

    /// Runs `check` on the field `name` of `obj` if it is there.
    fn opt(
        &self,
        obj: &Map<String, Value>,
        path: &str,
        name: &str,
        check: impl FnOnce(&Value, &str) -> Result,
    ) -> Result {
        match obj.get(name) {
            Some(x) => check(x, &child(path, name)),
            None => Ok(()),
        }
    }

    /// Runs `check` on the field `name` of `obj` if it is there and not null.
    fn opt_nullable(
        &self,
        obj: &Map<String, Value>,
        path: &str,
        name: &str,
        check: impl FnOnce(&Value, &str) -> Result,
    ) -> Result {
        match obj.get(name) {
            Some(Value::Null) | None => Ok(()),
            Some(x) => check(x, &child(path, name)),
        }
    }

    fn opt_string(&self, obj: &Map<String, Value>, path: &str, name: &str) -> Result {
        self.opt(obj, path, name, |x, p| self.string(x, p).map(drop))
    }

    // ----- value formats -----

    fn media_type(&self, v: &Value, path: &str) -> Result {
        let s = self.string(v, path)?;
        if is_media_type(s) {
            Ok(())
        } else {
            Err(self.err(
                path,
                format!(
                    "`{s}` is not a valid media type: expected `type/subtype`, each 1 to 127 \
                     characters of [A-Za-z0-9!#$&^_.+-] starting with a letter or digit"
                ),
            ))
        }
    }

    fn digest(&self, v: &Value, path: &str) -> Result {
        let s = self.string(v, path)?;
        check_digest(s).map_err(|why| self.err(path, format!("`{s}` is not valid: {why}")))
    }

    fn size(&self, v: &Value, path: &str) -> Result {
        let Value::Number(n) = v else {
            return Err(self.wrong_type(v, path, "an integer"));
        };
        match n.as_i64() {
            Some(size) if size >= 0 => Ok(()),
            Some(_) => Err(self.err(path, format!("size {n} is negative"))),
            None if n.is_f64() => Err(self.wrong_type(v, path, "an integer")),
            None => Err(self.err(path, format!("size {n} does not fit in an int64"))),
        }
    }

    fn schema_version(&self, v: &Value, path: &str) -> Result {
        match v {
            Value::Number(n) if n.as_i64() == Some(2) => Ok(()),
            Value::Number(n) if !n.is_f64() => Err(self.err(
                path,
                format!("schema version {n} is not supported, expected 2"),
            )),
            _ => Err(self.wrong_type(v, path, "the integer 2")),
        }
    }

    fn date_time(&self, v: &Value, path: &str) -> Result {
        let s = self.string(v, path)?;
        if is_date_time(s) {
            Ok(())
        } else {
            Err(self.err(path, format!("`{s}` is not an RFC 3339 date-time")))
        }
    }

    /// The `mediaType` of the document itself: the pattern, and, when present, it must say what
    /// we are validating.
    fn own_media_type(&self, obj: &Map<String, Value>, expected: &str) -> Result {
        self.opt(obj, "", "mediaType", |x, p| {
            self.media_type(x, p)?;
            match x.as_str() {
                Some(s) if s != expected => Err(self.err(
                    p,
                    format!("`{s}` does not match the media type being validated, `{expected}`"),
                )),
                _ => Ok(()),
            }
        })
    }

    // ----- documents -----

    fn descriptor(&self, v: &Value, path: &str) -> Result {
        let obj = self.object(v, path)?;
        self.require(obj, path, &["mediaType", "size", "digest"])?;
        self.opt(obj, path, "mediaType", |x, p| self.media_type(x, p))?;
        self.opt(obj, path, "size", |x, p| self.size(x, p))?;
        self.opt(obj, path, "digest", |x, p| self.digest(x, p))?;
        self.opt(obj, path, "urls", |x, p| {
            for (i, url) in self.string_array(x, p)?.into_iter().enumerate() {
                if !is_uri(url) {
                    return Err(self.err(&item(p, i), format!("`{url}` is not an absolute URI")));
                }
            }
            Ok(())
        })?;
        self.opt(obj, path, "data", |x, p| {
            let data = self.string(x, p)?;
            if is_std_base64(data) {
                Ok(())
            } else {
                Err(self.err(p, "not standard base64 with padding"))
            }
        })?;
        self.opt(obj, path, "artifactType", |x, p| self.media_type(x, p))?;
        self.opt(obj, path, "annotations", |x, p| self.string_map(x, p))?;
        self.opt(obj, path, "platform", |x, p| self.platform(x, p))
    }

    fn platform(&self, v: &Value, path: &str) -> Result {
        let obj = self.object(v, path)?;
        self.require(obj, path, &["architecture", "os"])?;
        for name in ["architecture", "os", "os.version", "variant"] {
            self.opt_string(obj, path, name)?;
        }
        self.opt(obj, path, "os.features", |x, p| {
            self.string_array(x, p).map(drop)
        })
    }

    fn layout(&self, v: &Value) -> Result {
        let obj = self.object(v, "")?;
        self.require(obj, "", &["imageLayoutVersion"])?;
        self.opt(obj, "", "imageLayoutVersion", |x, p| {
            match self.string(x, p)? {
                "1.0.0" => Ok(()),
                other => Err(self.err(p, format!("`{other}` is not supported, expected `1.0.0`"))),
            }
        })
    }

    fn manifest(&self, v: &Value, media_type: &str) -> Result {
        let obj = self.object(v, "")?;
        self.require(obj, "", &["schemaVersion", "config", "layers"])?;
        self.opt(obj, "", "schemaVersion", |x, p| self.schema_version(x, p))?;
        self.own_media_type(obj, media_type)?;
        self.opt(obj, "", "artifactType", |x, p| self.media_type(x, p))?;
        self.opt(obj, "", "config", |x, p| self.descriptor(x, p))?;
        self.opt(obj, "", "layers", |x, p| {
            let layers = self.array(x, p)?;
            if layers.is_empty() {
                return Err(self.err(p, "a manifest needs at least one layer"));
            }
            for (i, layer) in layers.iter().enumerate() {
                self.descriptor(layer, &item(p, i))?;
            }
            Ok(())
        })?;
        self.opt(obj, "", "subject", |x, p| self.descriptor(x, p))?;
        self.opt(obj, "", "annotations", |x, p| self.string_map(x, p))
    }

    fn index(&self, v: &Value, media_type: &str) -> Result {
        let obj = self.object(v, "")?;
        self.require(obj, "", &["schemaVersion", "manifests"])?;
        self.opt(obj, "", "schemaVersion", |x, p| self.schema_version(x, p))?;
        self.own_media_type(obj, media_type)?;
        self.opt(obj, "", "artifactType", |x, p| self.media_type(x, p))?;
        self.opt(obj, "", "manifests", |x, p| {
            for (i, m) in self.array(x, p)?.iter().enumerate() {
                self.descriptor(m, &item(p, i))?;
            }
            Ok(())
        })?;
        self.opt(obj, "", "subject", |x, p| self.descriptor(x, p))?;
        self.opt(obj, "", "annotations", |x, p| self.string_map(x, p))
    }

    fn config(&self, v: &Value) -> Result {
        let obj = self.object(v, "")?;
        self.require(obj, "", &["architecture", "os", "rootfs"])?;
        self.opt(obj, "", "created", |x, p| self.date_time(x, p))?;
        for name in ["author", "architecture", "variant", "os", "os.version"] {
            self.opt_string(obj, "", name)?;
        }
        self.opt(obj, "", "os.features", |x, p| {
            self.string_array(x, p).map(drop)
        })?;
        self.opt(obj, "", "config", |x, p| self.runtime_config(x, p))?;
        self.opt(obj, "", "rootfs", |x, p| self.rootfs(x, p))?;
        self.opt(obj, "", "history", |x, p| {
            for (i, h) in self.array(x, p)?.iter().enumerate() {
                self.history(h, &item(p, i))?;
            }
            Ok(())
        })
    }

    /// The `config` object of an image config (docker's field names).
    fn runtime_config(&self, v: &Value, path: &str) -> Result {
        let obj = self.object(v, path)?;
        for name in ["User", "WorkingDir", "StopSignal"] {
            self.opt_string(obj, path, name)?;
        }
        self.opt(obj, path, "ExposedPorts", |x, p| self.object_map(x, p))?;
        self.opt(obj, path, "Env", |x, p| {
            for (i, e) in self.string_array(x, p)?.into_iter().enumerate() {
                if !is_env_entry(e) {
                    return Err(self.err(&item(p, i), format!("`{e}` is not `NAME=value`")));
                }
            }
            Ok(())
        })?;
        for name in ["Entrypoint", "Cmd"] {
            self.opt_nullable(obj, path, name, |x, p| self.string_array(x, p).map(drop))?;
        }
        self.opt_nullable(obj, path, "Volumes", |x, p| self.object_map(x, p))?;
        self.opt_nullable(obj, path, "Labels", |x, p| self.string_map(x, p))?;
        self.opt(obj, path, "ArgsEscaped", |x, p| self.boolean(x, p))
    }

    fn rootfs(&self, v: &Value, path: &str) -> Result {
        let obj = self.object(v, path)?;
        self.require(obj, path, &["diff_ids", "type"])?;
        self.opt(obj, path, "type", |x, p| match self.string(x, p)? {
            "layers" => Ok(()),
            other => Err(self.err(p, format!("`{other}` is not supported, expected `layers`"))),
        })?;
        self.opt(obj, path, "diff_ids", |x, p| {
            for (i, d) in self.array(x, p)?.iter().enumerate() {
                self.digest(d, &item(p, i))?;
            }
            Ok(())
        })
    }

    fn history(&self, v: &Value, path: &str) -> Result {
        let obj = self.object(v, path)?;
        self.opt(obj, path, "created", |x, p| self.date_time(x, p))?;
        for name in ["author", "created_by", "comment"] {
            self.opt_string(obj, path, name)?;
        }
        self.opt(obj, path, "empty_layer", |x, p| self.boolean(x, p))
    }
}

/// `type/subtype`, each part matching `[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}`.
fn is_media_type(s: &str) -> bool {
    fn part(p: &str) -> bool {
        let b = p.as_bytes();
        !b.is_empty()
            && b.len() <= 127
            && b[0].is_ascii_alphanumeric()
            && b[1..]
                .iter()
                .all(|c| c.is_ascii_alphanumeric() || b"!#$&^_.+-".contains(c))
    }
    s.split_once('/')
        .is_some_and(|(t, sub)| part(t) && part(sub))
}

/// The digest pattern `^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$`, then the exact encoding
/// for the registered algorithms.
fn check_digest(s: &str) -> Result<(), String> {
    let Some((alg, encoded)) = s.split_once(':') else {
        return Err("expected `algorithm:encoded`".to_string());
    };
    let alg_ok = alg.split(['+', '.', '_', '-']).all(|c| {
        !c.is_empty()
            && c.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    });
    if !alg_ok {
        return Err(format!(
            "algorithm `{alg}` must be lowercase letters and digits, in components separated \
             by single `+`, `.`, `_` or `-`"
        ));
    }
    if encoded.is_empty()
        || !encoded
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"=_-".contains(&b))
    {
        return Err("the encoded part must be one or more of [a-zA-Z0-9=_-]".to_string());
    }
    let hex_len = match alg {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        _ => return Ok(()),
    };
    if encoded.len() == hex_len
        && encoded
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        Ok(())
    } else {
        Err(format!("{alg} needs {hex_len} lowercase hex characters"))
    }
}

/// An environment entry `^[^=]+=.*$`: a non-empty name without `=`, then `=` and any value.
fn is_env_entry(e: &str) -> bool {
    e.split_once('=').is_some_and(|(name, _)| !name.is_empty())
}

/// Standard base64 (`A-Za-z0-9+/`) with `=` padding, as Go's `encoding/json` decodes `[]byte`
/// (it skips `\r` and `\n`, and does not check the unused bits of the last character).
fn is_std_base64(s: &str) -> bool {
    let b: Vec<u8> = s.bytes().filter(|&c| c != b'\r' && c != b'\n').collect();
    if b.len() % 4 != 0 {
        return false;
    }
    let pad = b.iter().rev().take_while(|&&c| c == b'=').count();
    pad <= 2
        && b[..b.len() - pad]
            .iter()
            .all(|&c| c.is_ascii_alphanumeric() || c == b'+' || c == b'/')
}

/// An RFC 3339 date-time, `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`, with an upper-case `T` and
/// `Z` and real dates (as Go's `time.Time` decoding wants).
fn is_date_time(s: &str) -> bool {
    let b = s.as_bytes();
    let num = |from: usize, len: usize| -> Option<u32> {
        let digits = b.get(from..from + len)?;
        digits.iter().try_fold(0u32, |n, &c| {
            c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0'))
        })
    };
    let at = |i: usize, c: u8| b.get(i) == Some(&c);
    let (Some(year), Some(month), Some(day), Some(hour), Some(min), Some(sec)) = (
        num(0, 4),
        num(5, 2),
        num(8, 2),
        num(11, 2),
        num(14, 2),
        num(17, 2),
    ) else {
        return false;
    };
    if !(at(4, b'-') && at(7, b'-') && at(10, b'T') && at(13, b':') && at(16, b':')) {
        return false;
    }
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    if day == 0 || day > days || hour > 23 || min > 59 || sec > 59 {
        return false;
    }
    let mut i = 19;
    if at(i, b'.') {
        let start = i + 1;
        i = start;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return false;
        }
    }
    match b.get(i) {
        Some(b'Z') => i + 1 == b.len(),
        Some(b'+' | b'-') => {
            i + 6 == b.len()
                && at(i + 3, b':')
                && num(i + 1, 2).is_some_and(|h| h <= 23)
                && num(i + 4, 2).is_some_and(|m| m <= 59)
        }
        _ => false,
    }
}

/// An absolute URI per RFC 3986: `scheme ":" hier-part [ "?" query ] [ "#" fragment ]`.
fn is_uri(s: &str) -> bool {
    let Some((scheme, rest)) = s.split_once(':') else {
        return false;
    };
    let sb = scheme.as_bytes();
    if sb.is_empty()
        || !sb[0].is_ascii_alphabetic()
        || !sb
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || b"+-.".contains(c))
    {
        return false;
    }
    let (rest, fragment) = rest.split_once('#').unwrap_or((rest, ""));
    let (hier, query) = rest.split_once('?').unwrap_or((rest, ""));
    if !uri_chars(fragment, b":@/?") || !uri_chars(query, b":@/?") {
        return false;
    }
    match hier.strip_prefix("//") {
        Some(after) => {
            let (authority, path) = after.find('/').map_or((after, ""), |i| after.split_at(i));
            is_authority(authority) && uri_chars(path, b":@/")
        }
        None => uri_chars(hier, b":@/"),
    }
}

/// `[ userinfo "@" ] host [ ":" port ]`.
fn is_authority(a: &str) -> bool {
    let (userinfo, hostport) = a.rsplit_once('@').unwrap_or(("", a));
    if !uri_chars(userinfo, b":") {
        return false;
    }
    let (host_ok, port) = if let Some(lit) = hostport.strip_prefix('[') {
        let Some((inside, after)) = lit.split_once(']') else {
            return false;
        };
        let port = match after {
            "" => "",
            _ => match after.strip_prefix(':') {
                Some(p) => p,
                None => return false,
            },
        };
        (is_ip_literal(inside), port)
    } else {
        let (host, port) = hostport.split_once(':').unwrap_or((hostport, ""));
        (uri_chars(host, b""), port)
    };
    host_ok && port.bytes().all(|c| c.is_ascii_digit())
}

/// The inside of `[...]`: an IPv6 address (loosely: hex digits, `:` and `.`, with at least one
/// `:`) or `v<hex>.<chars>` (IPvFuture).
fn is_ip_literal(s: &str) -> bool {
    if let Some(future) = s.strip_prefix(['v', 'V']) {
        return future.split_once('.').is_some_and(|(ver, rest)| {
            !ver.is_empty()
                && ver.bytes().all(|c| c.is_ascii_hexdigit())
                && !rest.is_empty()
                && !rest.contains('%')
                && uri_chars(rest, b":")
        });
    }
    s.contains(':')
        && s.bytes()
            .all(|c| c.is_ascii_hexdigit() || c == b':' || c == b'.')
}

/// Every character is unreserved, a sub-delim, one of `extra`, or a `%XX` escape.
fn uri_chars(s: &str, extra: &[u8]) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'%' {
            if !(b.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && b.get(i + 2).is_some_and(u8::is_ascii_hexdigit))
            {
                return false;
            }
            i += 3;
            continue;
        }
        if !(c.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=".contains(&c) || extra.contains(&c)) {
            return false;
        }
        i += 1;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "sha256:c86f7763873b6c0aae22d963bab59b4f5debbed6685761b5951584f6efb0633b";

    fn manifest_with_layer(layer: &str) -> String {
        format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
            "config":{{"mediaType":"application/vnd.oci.image.config.v1+json","size":2,
            "digest":"{SHA}"}},"layers":[{layer}]}}"#
        )
    }

    #[test]
    fn media_types() {
        assert!(is_media_type("application/vnd.oci.image.manifest.v1+json"));
        assert!(is_media_type("a/b"));
        assert!(!is_media_type("application"));
        assert!(!is_media_type(".foo/bar"));
        assert!(!is_media_type("foo/.bar"));
        assert!(!is_media_type("foo/bar/baz"));
        assert!(!is_media_type("foo/bar\n"));
        assert!(is_media_type(&format!("{}/b", "a".repeat(127))));
        assert!(!is_media_type(&format!("{}/b", "a".repeat(128))));
    }

    #[test]
    fn digests() {
        assert!(check_digest(SHA).is_ok());
        assert!(check_digest(&SHA.to_uppercase()).is_err());
        assert!(check_digest("sha256:ABCD").is_err());
        assert!(check_digest(&format!("sha512:{}", "ab".repeat(64))).is_ok());
        assert!(check_digest(&format!("sha384:{}", "ab".repeat(64))).is_err());
        assert!(check_digest("sha256+b64u:LCa0a2j_xo_5m0U8HTBBNBNCLXBkg7-g-YpeiGJm564").is_ok());
        assert!(
            check_digest("multihash+base58:QmRZxt2b1FVZPNqd8hsiykDL3TdBDeTSPX9Kv46HmX4Gx8").is_ok()
        );
        assert!(check_digest("sha256+foo+-b:abc").is_err());
        assert!(check_digest(":abc").is_err());
        assert!(check_digest("sha256").is_err());
        assert!(check_digest("sha256:").is_err());
        assert!(check_digest("foo:a:b").is_err());
    }

    #[test]
    fn base64() {
        assert!(is_std_base64(""));
        assert!(is_std_base64("e30="));
        assert!(is_std_base64(
            "aHR0cHM6Ly9naXRodWIuY29tL29wZW5jb250YWluZXJzCg=="
        ));
        assert!(!is_std_base64(
            "aHR0cHM6Ly9naXRodWIuY29tL29wZW5jb250YWluZXJzCg"
        ));
        assert!(!is_std_base64("e30"));
        assert!(!is_std_base64("e==="));
        assert!(!is_std_base64("e3=0"));
        assert!(!is_std_base64("e3_-"));
    }

    #[test]
    fn uris() {
        for ok in [
            "https://example.com/foo",
            "https://user:pw@example.com:8443/a/b?c=d&e#frag",
            "http://[::1]:5000/v2/",
            "file:///tmp/x",
            "urn:isbn:0451450523",
            "mailto:a@b.c",
            "https://example.com/%20x",
        ] {
            assert!(is_uri(ok), "{ok}");
        }
        for bad in [
            "value",
            "/relative/path",
            "://x",
            "1http://x",
            "https://exa mple.com/",
            "https://example.com/%zz",
            "https://[::1/",
            "https://host:port/",
            "https://example.com/a#b#c",
        ] {
            assert!(!is_uri(bad), "{bad}");
        }
    }

    #[test]
    fn date_times() {
        assert!(is_date_time("2015-10-31T22:22:56.015925234Z"));
        assert!(is_date_time("2016-02-29T00:00:00+05:30"));
        assert!(!is_date_time("2015-02-29T00:00:00Z"));
        assert!(!is_date_time("2015-10-31 22:22:56Z"));
        assert!(!is_date_time("2015-10-31T22:22:56"));
        assert!(!is_date_time("2015-10-31T22:22:56.Z"));
        assert!(!is_date_time("2015-10-31T24:00:00Z"));
        assert!(!is_date_time("2015-10-31T22:22:56+0100"));
    }

    #[test]
    fn paths_and_messages() {
        let layer = r#"{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","size":1,
            "digest":"sha256:ABC"}"#;
        let err = validate(
            &MediaType::OciManifest,
            manifest_with_layer(layer).as_bytes(),
        )
        .expect_err("upper-case digest");
        assert_eq!(err.kind, "image manifest");
        assert_eq!(err.path, "layers[0].digest");
        assert!(
            err.to_string()
                .starts_with("invalid image manifest: layers[0].digest: `sha256:ABC`")
        );

        assert_eq!(
            child("annotations", "org.example.key"),
            r#"annotations["org.example.key"]"#
        );
        assert_eq!(child("", "schemaVersion"), "schemaVersion");
        assert_eq!(child("config", "os.version"), r#"config["os.version"]"#);
    }

    #[test]
    fn documents() {
        let layer = format!(
            r#"{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","size":1,
            "digest":"{SHA}","annotations":{{"a":"b"}},"futureField":[1]}}"#
        );
        let good = manifest_with_layer(&layer);
        assert_eq!(validate(&MediaType::OciManifest, good.as_bytes()), Ok(()));

        // The document's own mediaType must be what we validate.
        let err = validate(&MediaType::DockerManifest, good.as_bytes()).expect_err("mismatch");
        assert_eq!(err.path, "mediaType");
        let docker = good.replace(
            "application/vnd.oci.image.manifest.v1+json",
            "application/vnd.docker.distribution.manifest.v2+json",
        );
        assert_eq!(
            validate(&MediaType::DockerManifest, docker.as_bytes()),
            Ok(())
        );

        let no_layers = manifest_with_layer("");
        let err = validate(&MediaType::OciManifest, no_layers.as_bytes()).expect_err("no layers");
        assert_eq!(err.path, "layers");

        let bad_size = manifest_with_layer(&layer.replace("\"size\":1", "\"size\":1.5"));
        let err = validate(&MediaType::OciManifest, bad_size.as_bytes()).expect_err("float");
        assert_eq!(err.path, "layers[0].size");

        let bad_note = manifest_with_layer(&layer.replace("\"b\"", "1"));
        let err = validate(&MediaType::OciManifest, bad_note.as_bytes()).expect_err("annotation");
        assert_eq!(err.path, "layers[0].annotations.a");

        let err = validate(&MediaType::OciManifest, b"{\n  \"schemaVersion\": 2,\n")
            .expect_err("truncated");
        assert_eq!(err.path, ROOT);
        assert!(err.reason.contains("line 3"), "{}", err.reason);

        let err = validate(&MediaType::OciLayerGzip, b"{}").expect_err("no rules");
        assert_eq!(err.kind, "document");

        let config = br#"{"architecture":"amd64","os":"linux","config":{"Env":["A=1","B"]},
            "rootfs":{"type":"layers","diff_ids":[]}}"#;
        let err = validate(&MediaType::OciConfig, config).expect_err("env");
        assert_eq!(err.path, "config.Env[1]");

        // The corpus's config-03/04/05 also have `"os": 123`, which is caught first; check the
        // fields they are about on their own.
        for (config, path) in [
            (r#""history":"should be an array""#, "history"),
            (
                r#""history":[{"empty_layer":"yes"}]"#,
                "history[0].empty_layer",
            ),
            (
                r#""history":[{"created":"yesterday"}]"#,
                "history[0].created",
            ),
            (r#""config":{"Env":[7353]}"#, "config.Env[0]"),
            (r#""config":{"Env":null}"#, "config.Env"),
            (r#""config":{"Volumes":["/var/data"]}"#, "config.Volumes"),
            (
                r#""config":{"ExposedPorts":{"80/tcp":true}}"#,
                r#"config.ExposedPorts["80/tcp"]"#,
            ),
            (r#""config":{"Labels":{"a":null}}"#, "config.Labels.a"),
            (
                r#""rootfs":{"type":"layers","diff_ids":["sha256:AB"]}"#,
                "rootfs.diff_ids[0]",
            ),
            (
                r#""rootfs":{"type":"tarball","diff_ids":[]}"#,
                "rootfs.type",
            ),
            (r#""rootfs":{"type":"layers"}"#, "rootfs.diff_ids"),
        ] {
            let doc = format!(
                r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers",
                "diff_ids":[]}},{config}}}"#
            );
            // A later duplicate key wins, which lets `config` override `rootfs`.
            let err = validate(&MediaType::OciConfig, doc.as_bytes()).expect_err(config);
            assert_eq!(err.path, path, "{config}: {err}");
        }
        let nulls = br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers",
            "diff_ids":[]},"config":{"Cmd":null,"Entrypoint":null,"Volumes":null,
            "Labels":null,"OnBuild":null}}"#;
        assert_eq!(validate(&MediaType::DockerConfig, nulls), Ok(()));

        let layout = MediaType::parse(LAYOUT_HEADER_MEDIA_TYPE);
        assert_eq!(
            validate(&layout, br#"{"imageLayoutVersion":"1.0.0"}"#),
            Ok(())
        );
        assert!(validate(&layout, br#"{"imageLayoutVersion":"1.1.0"}"#).is_err());

        let desc = serde_json::json!({"mediaType": "a/b", "size": 0, "digest": SHA,
            "platform": {"os": "linux"}});
        let err = validate_descriptor_value(&desc, "manifests[3]").expect_err("platform");
        assert_eq!(err.path, "manifests[3].platform.architecture");
        assert_eq!(err.kind, "descriptor");
    }
}
