//! Platforms (`linux/arm64/v8`) and choosing an image for one from an index or manifest list.
//!
//! Names are normalised as containerd does (`aarch64` is `arm64`, `x86_64` is `amd64`, `armhf`
//! is `arm/v7`, ...). [`select`] skips attestation entries, prefers an exact match, then falls
//! back to compatible variants (an `arm/v7` machine runs `v6` and `v5` images, an `amd64/v3` one
//! runs `v2` and baseline images), keeping index order among equals.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use oci::{Digest, MediaType};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

/// The annotation buildx puts on attestation entries of an index.
pub const REFERENCE_TYPE_ANNOTATION: &str = "vnd.docker.reference.type";
/// Its value for attestation manifests.
pub const ATTESTATION_MANIFEST: &str = "attestation-manifest";

/// An OCI platform, as in an index entry's `platform` object.
///
/// Fields keep what they were given; [`Platform::parse`] and [`Platform::normalized`] return
/// the normalised form, and matching always compares normalised forms.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Platform {
    /// Operating system: `linux`, `windows`, ...
    pub os: String,
    /// CPU architecture: `amd64`, `arm64`, `arm`, `386`, `ppc64le`, `s390x`, `riscv64`, ...
    pub architecture: String,
    /// CPU variant: `v7` for arm, `v8` for arm64, `v2`/`v3` for amd64, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// OS version (Windows).
    #[serde(
        rename = "os.version",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_version: Option<String>,
    /// Required OS features (Windows).
    #[serde(
        rename = "os.features",
        default,
        deserialize_with = "null_as_empty",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub os_features: Vec<String>,
}

fn null_as_empty<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(Option::<Vec<String>>::deserialize(d)?.unwrap_or_default())
}

/// Why a string is not a platform.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PlatformError {
    /// Not `os/arch[/variant]` with non-empty parts of `[a-z0-9._-]`.
    #[error("invalid platform `{0}`: expected os/arch[/variant], e.g. linux/amd64 or linux/arm/v7")]
    Format(String),
}

impl Platform {
    /// A platform from its parts, kept as given.
    pub fn new(os: &str, architecture: &str, variant: Option<&str>) -> Self {
        Self {
            os: os.to_string(),
            architecture: architecture.to_string(),
            variant: variant.map(str::to_string),
            os_version: None,
            os_features: Vec::new(),
        }
    }

    /// Parses `os/arch[/variant]` (case-insensitive) and normalises it: `linux/aarch64` is
    /// `linux/arm64/v8`, `linux/armhf` is `linux/arm/v7`, `linux/x86_64` is `linux/amd64`.
    pub fn parse(s: &str) -> Result<Self, PlatformError> {
        let err = || PlatformError::Format(s.to_string());
        let lower = s.trim().to_ascii_lowercase();
        let parts: Vec<&str> = lower.split('/').collect();
        let valid = |p: &&str| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
        };
        if !(2..=3).contains(&parts.len()) || !parts.iter().all(valid) {
            return Err(err());
        }
        Ok(Self::new(parts[0], parts[1], parts.get(2).copied()).normalized())
    }

    /// Reads an index entry's `platform` JSON object; `None` if it is not one (no `os` or
    /// `architecture`, wrong types).
    pub fn from_json(value: &Value) -> Option<Self> {
        Self::deserialize(value).ok()
    }

    /// The platform this program runs on, in OCI terms.
    pub fn host() -> Self {
        let mut p = Self::from_rust_target(
            std::env::consts::OS,
            std::env::consts::ARCH,
            cfg!(target_endian = "little"),
        );
        if p.architecture == "arm" && cfg!(target_feature = "v6") && !cfg!(target_feature = "v7") {
            p.variant = Some("v6".to_string());
        }
        p
    }

    /// Maps Rust's `std::env::consts::{OS, ARCH}` names to OCI's: `x86_64` → `amd64`,
    /// `aarch64` → `arm64/v8`, `arm` → `arm/v7`, `x86` → `386`, `powerpc64` → `ppc64le` (or
    /// `ppc64` on big endian), `macos` → `darwin`; others pass through.
    pub fn from_rust_target(os: &str, arch: &str, little_endian: bool) -> Self {
        let os = match os {
            "macos" => "darwin",
            other => other,
        };
        let (arch, variant) = oci::platform::oci_arch(arch, little_endian);
        Self::new(os, arch, variant)
    }

    /// The normalised form: lower case; `aarch64` → `arm64` with variant `v8` by default
    /// (`8`, `v8.0` → `v8`); `x86_64`/`x86-64` → `amd64` (variant `v1` → none);
    /// `armhf` → `arm/v7`; `armel` → `arm/v6`; `arm` defaults to `v7`; `i386` → `386`;
    /// numeric variants gain their `v`; `macos` → `darwin`.
    pub fn normalized(&self) -> Self {
        let (os, architecture, variant) = self.norm(true);
        Self {
            os,
            architecture,
            variant,
            os_version: self.os_version.clone(),
            os_features: self.os_features.clone(),
        }
    }

    /// Normalised os, architecture and variant. Without defaults, an `arm` entry without a
    /// variant keeps none (it is "unspecified", not `v7`).
    fn norm(&self, defaults: bool) -> (String, String, Option<String>) {
        let os = match self.os.trim().to_ascii_lowercase().as_str() {
            "macos" => "darwin".to_string(),
            other => other.to_string(),
        };
        let arch = self.architecture.trim().to_ascii_lowercase();
        let variant = self
            .variant
            .as_deref()
            .map(|v| v.trim().to_ascii_lowercase())
            .filter(|v| !v.is_empty())
            .map(|v| {
                let v = if v.starts_with(|c: char| c.is_ascii_digit()) {
                    format!("v{v}")
                } else {
                    v
                };
                match v.strip_suffix(".0") {
                    Some(major) => major.to_string(),
                    None => v,
                }
            });
        let (arch, variant) = match arch.as_str() {
            "aarch64" | "arm64" => ("arm64".to_string(), variant.or(Some("v8".to_string()))),
            "armhf" => ("arm".to_string(), Some("v7".to_string())),
            "armel" => ("arm".to_string(), Some("v6".to_string())),
            "arm" => (arch, variant.or_else(|| defaults.then(|| "v7".to_string()))),
            "x86_64" | "x86-64" | "amd64" => ("amd64".to_string(), variant.filter(|v| v != "v1")),
            "i386" => ("386".to_string(), variant),
            "ppc64el" => ("ppc64le".to_string(), variant),
            _ => (arch, variant),
        };
        (os, arch, variant)
    }

    /// True for the `unknown/unknown` platform buildx gives attestation entries.
    pub fn is_unknown(&self) -> bool {
        self.os.eq_ignore_ascii_case("unknown") && self.architecture.eq_ignore_ascii_case("unknown")
    }

    /// True when both are the same platform once normalised (`linux/arm64` and
    /// `linux/aarch64/v8`); OS version and features are ignored.
    pub fn same_as(&self, other: &Self) -> bool {
        self.norm(true) == other.norm(true)
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = self.variant.as_deref().filter(|v| !v.is_empty()) {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

impl FromStr for Platform {
    type Err = PlatformError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// How well an entry's variant suits the wanted one: 0 is exact, larger is a worse fallback,
/// `None` is unusable. `want` has defaults filled in; `have` has not (a missing `arm` variant
/// is unspecified).
fn variant_rank(arch: &str, want: Option<&str>, have: Option<&str>) -> Option<u32> {
    if want == have {
        return Some(0);
    }
    match arch {
        "arm" => {
            let want_n = want.and_then(arm_level)?;
            match have {
                // Unspecified: usable when nothing better exists.
                None => Some(100),
                Some(h) => {
                    let have_n = arm_level(h)?;
                    (have_n <= want_n && have_n >= 5).then(|| want_n - have_n)
                }
            }
        }
        "arm64" => {
            let (wmaj, wmin) = want.and_then(arm64_level)?;
            let (hmaj, hmin) = have.and_then(arm64_level)?;
            match (wmaj, hmaj) {
                (w, h) if w == h => (hmin <= wmin).then(|| wmin - hmin),
                // ARMv9.x includes ARMv8.(x+5).
                (9, 8) => {
                    let top = (wmin + 5).min(9);
                    (hmin <= top).then(|| wmin + 1 + (top - hmin))
                }
                _ => None,
            }
        }
        "amd64" => {
            let want_n = amd64_level(want)?;
            let have_n = amd64_level(have)?;
            (have_n <= want_n).then(|| want_n - have_n)
        }
        // Other architectures: an entry without a variant is a last resort for a wanted one.
        _ => (want.is_some() && have.is_none()).then_some(100),
    }
}

/// `v5`..`v8` of 32-bit arm.
fn arm_level(v: &str) -> Option<u32> {
    v.strip_prefix('v')?
        .parse()
        .ok()
        .filter(|n| (5..=8).contains(n))
}

/// `v8`, `v8.2`, `v9.1` of arm64 as (major, minor).
fn arm64_level(v: &str) -> Option<(u32, u32)> {
    let v = v.strip_prefix('v')?;
    let (major, minor) = match v.split_once('.') {
        Some((major, minor)) => (major.parse().ok()?, minor.parse().ok()?),
        None => (v.parse().ok()?, 0),
    };
    (major == 8 || major == 9).then_some((major, minor))
}

/// x86-64 micro-architecture levels: none is v1.
fn amd64_level(v: Option<&str>) -> Option<u32> {
    match v {
        None => Some(1),
        Some(v) => v
            .strip_prefix('v')?
            .parse()
            .ok()
            .filter(|n| (1..=4).contains(n)),
    }
}

/// What [`select`] and [`available`] need to know about one index entry.
#[derive(Clone, Debug, PartialEq)]
pub struct EntryView<'a> {
    /// The entry's platform, if it has a usable one.
    pub platform: Option<Cow<'a, Platform>>,
    /// True for attestation manifests (annotation `vnd.docker.reference.type` =
    /// `attestation-manifest`), which are never selected.
    pub attestation: bool,
}

impl<'a> EntryView<'a> {
    /// A view from an entry's `platform` JSON and annotations, as a descriptor holds them.
    pub fn from_parts(
        platform: Option<&Value>,
        annotations: Option<&BTreeMap<String, String>>,
    ) -> Self {
        Self {
            platform: platform.and_then(Platform::from_json).map(Cow::Owned),
            attestation: annotations
                .and_then(|a| a.get(REFERENCE_TYPE_ANNOTATION))
                .is_some_and(|v| v == ATTESTATION_MANIFEST),
        }
    }

    /// A view of a descriptor as JSON (`{"platform": {..}, "annotations": {..}, ..}`).
    pub fn from_json(descriptor: &'a Value) -> Self {
        Self {
            platform: descriptor
                .get("platform")
                .and_then(Platform::from_json)
                .map(Cow::Owned),
            attestation: descriptor
                .get("annotations")
                .and_then(|a| a.get(REFERENCE_TYPE_ANNOTATION))
                .and_then(Value::as_str)
                == Some(ATTESTATION_MANIFEST),
        }
    }

    /// True for entries never selected nor listed: attestations and `unknown/unknown`.
    fn skipped(&self) -> bool {
        self.attestation || self.platform.as_deref().is_some_and(Platform::is_unknown)
    }
}

/// Anything [`select`] can choose among.
pub trait PlatformEntry {
    /// The entry's platform and whether it is an attestation.
    fn view(&self) -> EntryView<'_>;
}

impl PlatformEntry for EntryView<'_> {
    fn view(&self) -> EntryView<'_> {
        EntryView {
            platform: self.platform.as_deref().map(Cow::Borrowed),
            attestation: self.attestation,
        }
    }
}

impl PlatformEntry for Value {
    fn view(&self) -> EntryView<'_> {
        EntryView::from_json(self)
    }
}

impl PlatformEntry for Platform {
    fn view(&self) -> EntryView<'_> {
        EntryView {
            platform: Some(Cow::Borrowed(self)),
            attestation: false,
        }
    }
}

impl PlatformEntry for IndexEntry {
    fn view(&self) -> EntryView<'_> {
        EntryView {
            platform: self.platform.as_ref().map(Cow::Borrowed),
            attestation: self.is_attestation(),
        }
    }
}

/// An entry of an OCI index or docker manifest list.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IndexEntry {
    /// The manifest's media type.
    #[serde(
        serialize_with = "serialize_media_type",
        deserialize_with = "deserialize_media_type"
    )]
    pub media_type: MediaType,
    /// The manifest's digest.
    pub digest: Digest,
    /// The manifest's size.
    pub size: u64,
    /// The platform it is for; an unreadable `platform` object counts as none.
    #[serde(
        default,
        deserialize_with = "lenient_platform",
        skip_serializing_if = "Option::is_none"
    )]
    pub platform: Option<Platform>,
    /// Annotations.
    #[serde(
        default,
        deserialize_with = "null_as_empty_map",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub annotations: BTreeMap<String, String>,
}

impl IndexEntry {
    /// True for attestation manifests (buildx's provenance and SBOM entries).
    pub fn is_attestation(&self) -> bool {
        self.annotations
            .get(REFERENCE_TYPE_ANNOTATION)
            .is_some_and(|v| v == ATTESTATION_MANIFEST)
    }
}

fn serialize_media_type<S: serde::Serializer>(m: &MediaType, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(m.as_str())
}

fn deserialize_media_type<'de, D: Deserializer<'de>>(d: D) -> Result<MediaType, D::Error> {
    Ok(MediaType::parse(&String::deserialize(d)?))
}

fn lenient_platform<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Platform>, D::Error> {
    Ok(Option::<Value>::deserialize(d)?
        .as_ref()
        .and_then(Platform::from_json))
}

fn null_as_empty_map<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, String>, D::Error> {
    Ok(Option::<BTreeMap<String, String>>::deserialize(d)?.unwrap_or_default())
}

/// The entry of `entries` to use on platform `want` (see [`select_by`]).
pub fn select<'a, T: PlatformEntry>(entries: &'a [T], want: &Platform) -> Option<&'a T> {
    select_by(entries, want, PlatformEntry::view)
}

/// The entry of `entries` to use on platform `want`, with `view` telling each entry's platform.
///
/// Attestations and `unknown/unknown` entries are skipped. The OS and architecture must match
/// (normalised). Among those, an exact variant match wins, then the closest compatible variant:
/// `arm/v7` takes `v7`, `v6`, `v5`, then an `arm` entry without variant; `arm64/v8` takes `v8`
/// or no variant; `amd64/v3` takes `v3`, `v2`, then `v1` or no variant. Then an entry with the
/// wanted OS version, if one is wanted. Ties go to the earlier entry. Entries without a
/// platform are used only if no entry of the index has one.
pub fn select_by<'a, T>(
    entries: &'a [T],
    want: &Platform,
    view: impl Fn(&'a T) -> EntryView<'a>,
) -> Option<&'a T> {
    let (want_os, want_arch, want_variant) = want.norm(true);
    let mut best: Option<((u32, bool), &'a T)> = None;
    let mut without_platform = None;
    let mut any_platform = false;
    for entry in entries {
        let v = view(entry);
        if v.skipped() {
            continue;
        }
        let Some(p) = v.platform.as_deref() else {
            without_platform = without_platform.or(Some(entry));
            continue;
        };
        any_platform = true;
        let (os, arch, variant) = p.norm(false);
        if os != want_os || arch != want_arch {
            continue;
        }
        let Some(rank) = variant_rank(&arch, want_variant.as_deref(), variant.as_deref()) else {
            continue;
        };
        let os_version_differs = want.os_version.is_some() && p.os_version != want.os_version;
        let key = (rank, os_version_differs);
        if best.as_ref().is_none_or(|(k, _)| key < *k) {
            best = Some((key, entry));
        }
    }
    match best {
        Some((_, entry)) => Some(entry),
        None if !any_platform => without_platform,
        None => None,
    }
}

/// The platforms `entries` offer, as `os/arch[/variant]` in index order without repeats,
/// attestations left out: for "no image for linux/s390x in `ref`: available: linux/amd64,
/// linux/arm64/v8".
pub fn available<T: PlatformEntry>(entries: &[T]) -> Vec<String> {
    available_by(entries, PlatformEntry::view)
}

/// [`available`] with `view` telling each entry's platform.
pub fn available_by<'a, T>(entries: &'a [T], view: impl Fn(&'a T) -> EntryView<'a>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for entry in entries {
        let v = view(entry);
        if v.skipped() {
            continue;
        }
        if let Some(p) = v.platform.as_deref() {
            let s = crate::error::sanitize_text(&p.to_string(), 100);
            if !out.contains(&s) {
                out.push(s);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn p(s: &str) -> Platform {
        Platform::parse(s).unwrap()
    }

    fn raw(os: &str, arch: &str, variant: Option<&str>) -> Platform {
        Platform::new(os, arch, variant)
    }

    #[test]
    fn parse_and_display() {
        assert_eq!(p("linux/amd64").to_string(), "linux/amd64");
        assert_eq!(p("linux/arm/v6").to_string(), "linux/arm/v6");
        assert_eq!(p(" Linux/AMD64 ").to_string(), "linux/amd64");
        assert_eq!(
            "linux/riscv64".parse::<Platform>(),
            Ok(raw("linux", "riscv64", None))
        );
        for bad in [
            "",
            "linux",
            "linux/",
            "/amd64",
            "linux//v7",
            "linux/arm/v7/x",
            "linux/am d64",
            "linux/amd64/",
            "a/b/c/d",
            "linux/arm:v7",
        ] {
            assert_eq!(
                Platform::parse(bad),
                Err(PlatformError::Format(bad.to_string())),
                "{bad:?}"
            );
        }
        let e = Platform::parse("amd64").unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid platform `amd64`: expected os/arch[/variant], e.g. linux/amd64 or linux/arm/v7"
        );
    }

    #[test]
    fn normalisation() {
        let cases = [
            ("linux/aarch64", "linux/arm64/v8"),
            ("linux/arm64", "linux/arm64/v8"),
            ("linux/arm64/v8", "linux/arm64/v8"),
            ("linux/arm64/8", "linux/arm64/v8"),
            ("linux/arm64/v8.0", "linux/arm64/v8"),
            ("linux/arm64/v8.2", "linux/arm64/v8.2"),
            ("linux/x86_64", "linux/amd64"),
            ("linux/x86-64", "linux/amd64"),
            ("linux/amd64/v1", "linux/amd64"),
            ("linux/amd64/v3", "linux/amd64/v3"),
            ("linux/armhf", "linux/arm/v7"),
            ("linux/armel", "linux/arm/v6"),
            ("linux/arm", "linux/arm/v7"),
            ("linux/arm/7", "linux/arm/v7"),
            ("linux/arm/v5", "linux/arm/v5"),
            ("linux/i386", "linux/386"),
            ("linux/ppc64el", "linux/ppc64le"),
            ("macos/arm64", "darwin/arm64/v8"),
            ("windows/amd64", "windows/amd64"),
        ];
        for (input, want) in cases {
            assert_eq!(p(input).to_string(), want, "{input}");
        }
        assert_eq!(p("linux/arm64"), p("linux/arm64/v8"));
        assert_eq!(p("linux/amd64/v1"), p("linux/amd64"));
        assert!(raw("linux", "aarch64", None).same_as(&raw("linux", "arm64", Some("v8"))));
        assert!(!raw("linux", "arm", Some("v6")).same_as(&raw("linux", "arm", None)));
        // Raw fields are kept until normalised.
        let r = raw("Linux", "AArch64", None);
        assert_eq!(r.to_string(), "Linux/AArch64");
        assert_eq!(r.normalized().to_string(), "linux/arm64/v8");
    }

    #[test]
    fn rust_target_mapping() {
        let m = |os, arch, le| Platform::from_rust_target(os, arch, le).to_string();
        assert_eq!(m("linux", "x86_64", true), "linux/amd64");
        assert_eq!(m("linux", "aarch64", true), "linux/arm64/v8");
        assert_eq!(m("linux", "arm", true), "linux/arm/v7");
        assert_eq!(m("linux", "x86", true), "linux/386");
        assert_eq!(m("linux", "powerpc64", true), "linux/ppc64le");
        assert_eq!(m("linux", "powerpc64", false), "linux/ppc64");
        assert_eq!(m("linux", "s390x", false), "linux/s390x");
        assert_eq!(m("linux", "riscv64", true), "linux/riscv64");
        assert_eq!(m("linux", "loongarch64", true), "linux/loong64");
        assert_eq!(m("macos", "aarch64", true), "darwin/arm64/v8");
        let host = Platform::host();
        assert!(!host.os.is_empty() && !host.architecture.is_empty());
        if cfg!(all(target_os = "linux", target_arch = "x86_64")) {
            assert_eq!(host.to_string(), "linux/amd64");
        }
    }

    #[test]
    fn json_round_trip() {
        let v = json!({
            "architecture": "amd64", "os": "windows", "os.version": "10.0.17763.1879",
            "os.features": ["win32k"]
        });
        let plat = Platform::from_json(&v).unwrap();
        assert_eq!(plat.os_version.as_deref(), Some("10.0.17763.1879"));
        assert_eq!(plat.os_features, vec!["win32k".to_string()]);
        assert_eq!(serde_json::to_value(&plat).unwrap(), v);
        let v = json!({"architecture": "arm", "os": "linux", "variant": null, "os.features": null});
        assert_eq!(Platform::from_json(&v), Some(raw("linux", "arm", None)));
        assert_eq!(Platform::from_json(&json!({"os": "linux"})), None);
        assert_eq!(Platform::from_json(&json!("linux/amd64")), None);
        assert_eq!(
            serde_json::to_string(&raw("linux", "arm", Some("v7"))).unwrap(),
            r#"{"os":"linux","architecture":"arm","variant":"v7"}"#
        );
    }

    /// A docker-hub-like index: images plus buildx attestations.
    fn hub_index() -> Vec<Value> {
        let d = |c: char| format!("sha256:{}", c.to_string().repeat(64));
        let entry = |c, plat: Value| {
            json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": d(c),
                   "size": 100, "platform": plat})
        };
        let attestation = |c, of: char| {
            json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": d(c),
                   "size": 50, "platform": {"architecture": "unknown", "os": "unknown"},
                   "annotations": {"vnd.docker.reference.digest": d(of),
                                   "vnd.docker.reference.type": "attestation-manifest"}})
        };
        vec![
            entry('1', json!({"architecture": "amd64", "os": "linux"})),
            attestation('2', '1'),
            entry(
                '3',
                json!({"architecture": "arm", "os": "linux", "variant": "v6"}),
            ),
            entry(
                '4',
                json!({"architecture": "arm", "os": "linux", "variant": "v7"}),
            ),
            entry(
                '5',
                json!({"architecture": "arm64", "os": "linux", "variant": "v8"}),
            ),
            entry('6', json!({"architecture": "386", "os": "linux"})),
            entry('7', json!({"architecture": "ppc64le", "os": "linux"})),
            attestation('8', '7'),
            entry(
                '9',
                json!({"architecture": "amd64", "os": "windows", "os.version": "10.0.17763.1"}),
            ),
            entry(
                'a',
                json!({"architecture": "amd64", "os": "windows", "os.version": "10.0.20348.2"}),
            ),
        ]
    }

    fn digest_of(v: Option<&Value>) -> Option<char> {
        v.and_then(|v| v["digest"].as_str())
            .and_then(|d| d.chars().last())
    }

    #[test]
    fn select_from_hub_index() {
        let idx = hub_index();
        let pick = |s: &str| digest_of(select(&idx, &p(s)));
        assert_eq!(pick("linux/amd64"), Some('1'));
        assert_eq!(pick("linux/x86_64"), Some('1'));
        assert_eq!(pick("linux/amd64/v3"), Some('1'));
        assert_eq!(pick("linux/arm64"), Some('5'));
        assert_eq!(pick("linux/aarch64"), Some('5'));
        assert_eq!(pick("linux/arm/v7"), Some('4'));
        assert_eq!(pick("linux/arm"), Some('4'));
        assert_eq!(pick("linux/arm/v6"), Some('3'));
        assert_eq!(pick("linux/arm/v8"), Some('4'));
        assert_eq!(pick("linux/arm/v5"), None);
        assert_eq!(pick("linux/i386"), Some('6'));
        assert_eq!(pick("linux/ppc64le"), Some('7'));
        assert_eq!(pick("linux/s390x"), None);
        assert_eq!(pick("linux/riscv64"), None);
        assert_eq!(pick("darwin/arm64"), None);
        assert_eq!(pick("windows/amd64"), Some('9'));
        let mut win = p("windows/amd64");
        win.os_version = Some("10.0.20348.2".into());
        assert_eq!(digest_of(select(&idx, &win)), Some('a'));
        assert_eq!(
            available(&idx),
            vec![
                "linux/amd64",
                "linux/arm/v6",
                "linux/arm/v7",
                "linux/arm64/v8",
                "linux/386",
                "linux/ppc64le",
                "windows/amd64"
            ]
        );
    }

    fn plats(list: &[&str]) -> Vec<Platform> {
        list.iter()
            .map(|s| {
                let mut parts = s.split('/');
                let os = parts.next().unwrap();
                let arch = parts.next().unwrap();
                raw(os, arch, parts.next())
            })
            .collect()
    }

    fn pick(list: &[&str], want: &str) -> Option<String> {
        let entries = plats(list);
        select(&entries, &p(want)).map(|e| e.to_string())
    }

    #[test]
    fn arm_variant_fallback_order() {
        let all = ["linux/arm/v5", "linux/arm/v6", "linux/arm/v7", "linux/arm"];
        assert_eq!(pick(&all, "linux/arm/v7").as_deref(), Some("linux/arm/v7"));
        assert_eq!(
            pick(&all[..2], "linux/arm/v7").as_deref(),
            Some("linux/arm/v6")
        );
        assert_eq!(
            pick(&all[..1], "linux/arm/v7").as_deref(),
            Some("linux/arm/v5")
        );
        // Without variant: after every explicit fallback, but usable.
        assert_eq!(
            pick(&["linux/arm", "linux/arm/v5"], "linux/arm/v7").as_deref(),
            Some("linux/arm/v5")
        );
        assert_eq!(
            pick(&["linux/arm"], "linux/arm/v7").as_deref(),
            Some("linux/arm")
        );
        assert_eq!(
            pick(&["linux/arm"], "linux/arm/v6").as_deref(),
            Some("linux/arm")
        );
        assert_eq!(
            pick(&["linux/armhf"], "linux/arm/v7").as_deref(),
            Some("linux/armhf")
        );
        assert_eq!(pick(&["linux/armhf"], "linux/arm/v6"), None);
        assert_eq!(pick(&["linux/arm/v7"], "linux/arm/v6"), None);
        assert_eq!(pick(&["linux/arm64"], "linux/arm/v7"), None);
    }

    #[test]
    fn arm64_variants() {
        assert_eq!(
            pick(&["linux/arm64"], "linux/arm64/v8").as_deref(),
            Some("linux/arm64")
        );
        assert_eq!(
            pick(&["linux/aarch64"], "linux/arm64").as_deref(),
            Some("linux/aarch64")
        );
        assert_eq!(
            pick(&["linux/arm64/v8"], "linux/arm64").as_deref(),
            Some("linux/arm64/v8")
        );
        // Exact beats equal-by-default, which beats older.
        assert_eq!(
            pick(&["linux/arm64/v8", "linux/arm64/v8.2"], "linux/arm64/v8.2").as_deref(),
            Some("linux/arm64/v8.2")
        );
        assert_eq!(pick(&["linux/arm64/v8.2"], "linux/arm64/v8"), None);
        assert_eq!(
            pick(&["linux/arm64", "linux/arm64/v9"], "linux/arm64/v9").as_deref(),
            Some("linux/arm64/v9")
        );
        assert_eq!(
            pick(&["linux/arm64"], "linux/arm64/v9").as_deref(),
            Some("linux/arm64")
        );
        assert_eq!(
            pick(&["linux/arm64/v8.1", "linux/arm64/v8.5"], "linux/arm64/v9").as_deref(),
            Some("linux/arm64/v8.5")
        );
        assert_eq!(pick(&["linux/arm64/v8.6"], "linux/arm64/v9"), None);
        assert_eq!(pick(&["linux/arm64/v9"], "linux/arm64"), None);
    }

    #[test]
    fn amd64_levels() {
        let all = ["linux/amd64/v2", "linux/amd64", "linux/amd64/v3"];
        assert_eq!(
            pick(&all, "linux/amd64/v3").as_deref(),
            Some("linux/amd64/v3")
        );
        assert_eq!(
            pick(&all, "linux/amd64/v2").as_deref(),
            Some("linux/amd64/v2")
        );
        assert_eq!(pick(&all, "linux/amd64").as_deref(), Some("linux/amd64"));
        assert_eq!(
            pick(&all, "linux/amd64/v4").as_deref(),
            Some("linux/amd64/v3")
        );
        assert_eq!(
            pick(&["linux/amd64/v1"], "linux/amd64/v3").as_deref(),
            Some("linux/amd64/v1")
        );
        assert_eq!(pick(&["linux/amd64/v3"], "linux/amd64"), None);
        assert_eq!(
            pick(&["linux/x86_64"], "linux/amd64/v2").as_deref(),
            Some("linux/x86_64")
        );
    }

    #[test]
    fn os_must_match_and_index_order_breaks_ties() {
        assert_eq!(pick(&["windows/amd64"], "linux/amd64"), None);
        let entries = vec![
            raw("linux", "amd64", None),
            raw("linux", "x86_64", None),
            raw("linux", "amd64", Some("v1")),
        ];
        let got = select(&entries, &p("linux/amd64")).unwrap();
        assert!(std::ptr::eq(got, &entries[0]));
        // Other architectures: no variant is a last resort for a wanted one.
        assert_eq!(
            pick(
                &["linux/riscv64", "linux/riscv64/rva23"],
                "linux/riscv64/rva23"
            )
            .as_deref(),
            Some("linux/riscv64/rva23")
        );
        assert_eq!(
            pick(&["linux/riscv64"], "linux/riscv64/rva23").as_deref(),
            Some("linux/riscv64")
        );
        assert_eq!(pick(&["linux/riscv64/rva23"], "linux/riscv64"), None);
    }

    #[test]
    fn entries_without_platform() {
        let only = vec![
            json!({"mediaType": "application/vnd.oci.image.manifest.v1+json",
                              "digest": "sha256:x", "size": 1}),
        ];
        assert!(select(&only, &p("linux/amd64")).is_some());
        assert!(available(&only).is_empty());
        let mixed = vec![
            json!({"digest": "a"}),
            json!({"digest": "b", "platform": {"os": "linux", "architecture": "arm64"}}),
        ];
        assert_eq!(select(&mixed, &p("linux/amd64")), None);
        assert_eq!(select(&mixed, &p("linux/arm64")), Some(&mixed[1]));
        // An unreadable platform counts as none.
        let broken = vec![json!({"platform": {"os": 7}})];
        assert_eq!(select(&broken, &p("linux/amd64")), Some(&broken[0]));
        // Attestations are never a fallback.
        let att =
            vec![json!({"annotations": {"vnd.docker.reference.type": "attestation-manifest"}})];
        assert_eq!(select(&att, &p("linux/amd64")), None);
        let unknown: Vec<Value> =
            vec![json!({"platform": {"os": "unknown", "architecture": "unknown"}})];
        assert_eq!(select(&unknown, &p("linux/amd64")), None);
        assert!(available(&unknown).is_empty());
    }

    #[test]
    fn index_entries() {
        let json = json!({"manifests": [
            {"mediaType": "application/vnd.docker.distribution.manifest.v2+json",
             "digest": format!("sha256:{}", "1".repeat(64)), "size": 528,
             "platform": {"architecture": "amd64", "os": "linux"}},
            {"mediaType": "application/vnd.oci.image.manifest.v1+json",
             "digest": format!("sha256:{}", "2".repeat(64)), "size": 566,
             "platform": {"architecture": "unknown", "os": "unknown"},
             "annotations": {"vnd.docker.reference.type": "attestation-manifest"}},
            {"mediaType": "application/vnd.docker.distribution.manifest.v2+json",
             "digest": format!("sha256:{}", "3".repeat(64)), "size": 528,
             "platform": {"architecture": "arm64", "os": "linux", "variant": "v8"},
             "annotations": null},
            {"mediaType": "application/vnd.docker.distribution.manifest.v2+json",
             "digest": format!("sha256:{}", "4".repeat(64)), "size": 528,
             "platform": {"architecture": 5}}
        ]});
        let entries: Vec<IndexEntry> = serde_json::from_value(json["manifests"].clone()).unwrap();
        assert_eq!(entries[0].media_type, MediaType::DockerManifest);
        assert!(entries[1].is_attestation());
        assert!(entries[2].annotations.is_empty());
        assert_eq!(entries[3].platform, None);
        let got = select(&entries, &p("linux/arm64")).unwrap();
        assert_eq!(got.digest.hex(), "3".repeat(64));
        assert_eq!(available(&entries), vec!["linux/amd64", "linux/arm64/v8"]);
        assert_eq!(select(&entries, &p("linux/s390x")), None);
        // Round trip keeps the media type string.
        let back = serde_json::to_value(&entries[0]).unwrap();
        assert_eq!(back, json["manifests"][0]);
        // A bad digest is an error.
        let bad = json!({"mediaType": "x", "digest": "md5:abc", "size": 1});
        assert!(serde_json::from_value::<IndexEntry>(bad).is_err());
    }

    #[test]
    fn select_by_with_store_style_descriptors() {
        struct Desc {
            platform: Option<Value>,
            annotations: Option<BTreeMap<String, String>>,
        }
        let descs = [
            Desc {
                platform: Some(json!({"os": "linux", "architecture": "amd64"})),
                annotations: Some(BTreeMap::from([(
                    REFERENCE_TYPE_ANNOTATION.to_string(),
                    ATTESTATION_MANIFEST.to_string(),
                )])),
            },
            Desc {
                platform: Some(json!({"os": "linux", "architecture": "amd64"})),
                annotations: None,
            },
        ];
        let view = |d: &Desc| EntryView::from_parts(d.platform.as_ref(), d.annotations.as_ref());
        let got = select_by(&descs, &p("linux/amd64"), view).unwrap();
        assert!(std::ptr::eq(got, &descs[1]));
        assert_eq!(available_by(&descs, view), vec!["linux/amd64"]);
        let views: Vec<EntryView<'_>> = descs.iter().map(view).collect();
        assert!(std::ptr::eq(
            select(&views, &p("linux/amd64")).unwrap(),
            &views[1]
        ));
    }

    #[test]
    fn available_is_sanitised_and_deduplicated() {
        let entries = vec![
            raw("linux", "amd64", None),
            raw("linux", "amd64", None),
            raw("linux\u{1b}[2J", "arm64", Some("v8")),
        ];
        assert_eq!(
            available(&entries),
            vec!["linux/amd64", "linux [2J/arm64/v8"]
        );
    }
}
