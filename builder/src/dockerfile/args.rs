//! Build-argument scoping, as BuildKit applies it:
//!
//! - global ARGs (before the first FROM) take `--build-arg` overrides or their defaults, expanded
//!   in order, and are usable in FROM lines together with the automatic platform args;
//! - inside a stage, a global ARG is visible only after `ARG NAME` re-declares it (and then has
//!   the global value unless the declaration gives a default and no `--build-arg` overrides it);
//! - the automatic platform args (`TARGETPLATFORM`, `TARGETOS`, `TARGETARCH`, `TARGETVARIANT`,
//!   `BUILDPLATFORM`, `BUILDOS`, `BUILDARCH`, `BUILDVARIANT`) are global and need `ARG NAME` in
//!   a stage too;
//! - the predefined proxy args (`HTTP_PROXY`, `https_proxy`, `NO_PROXY`, ...) given with
//!   `--build-arg` reach RUN's environment without a declaration, but stay out of the image
//!   history unless declared;
//! - ENV beats ARG of the same name for expansion and RUN.

use std::collections::{BTreeMap, BTreeSet};

use super::instructions::ArgDecl;
use super::shell::{Env, Lexer, ShellError};

/// The predefined proxy args.
pub const PROXY_ARGS: [&str; 10] = [
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
];

/// An `os/arch[/variant]` platform.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Platform {
    /// `linux`.
    pub os: String,
    /// `amd64`, `arm64`, ...
    pub arch: String,
    /// `v7`, `v8`, or empty.
    pub variant: String,
}

impl Platform {
    /// Parses `os/arch[/variant]`.
    pub fn parse(s: &str) -> Option<Self> {
        let mut parts = s.split('/');
        let os = parts.next().filter(|p| !p.is_empty())?.to_string();
        let arch = parts.next().filter(|p| !p.is_empty())?.to_string();
        let variant = parts.next().unwrap_or("").to_string();
        parts.next().is_none().then_some(Self { os, arch, variant })
    }

    /// The platform this process runs on.
    pub fn host() -> Self {
        let (arch, variant) = oci::platform::host_arch();
        // Only 32-bit arm names its variant in TARGETVARIANT; arm64's v8 is the implied default.
        let variant = if arch == "arm" {
            variant.unwrap_or_default()
        } else {
            ""
        };
        Self {
            os: "linux".into(),
            arch: arch.into(),
            variant: variant.into(),
        }
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.variant.is_empty() {
            write!(f, "{}/{}", self.os, self.arch)
        } else {
            write!(f, "{}/{}/{}", self.os, self.arch, self.variant)
        }
    }
}

/// The automatic platform args for a build on `build` targeting `target`.
pub fn platform_args(build: &Platform, target: &Platform) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("BUILDPLATFORM".into(), build.to_string()),
        ("BUILDOS".into(), build.os.clone()),
        ("BUILDARCH".into(), build.arch.clone()),
        ("BUILDVARIANT".into(), build.variant.clone()),
        ("TARGETPLATFORM".into(), target.to_string()),
        ("TARGETOS".into(), target.os.clone()),
        ("TARGETARCH".into(), target.arch.clone()),
        ("TARGETVARIANT".into(), target.variant.clone()),
    ])
}

/// The global scope: values of the global ARGs and the automatic args, for FROM lines and for
/// re-declarations inside stages.
#[derive(Clone, Debug, Default)]
pub struct GlobalScope {
    values: BTreeMap<String, String>,
    overrides: BTreeMap<String, String>,
    used: BTreeSet<String>,
}

impl GlobalScope {
    /// Evaluates the global ARGs with `overrides` (`--build-arg`) and the automatic `auto` args.
    pub fn new(
        meta: &[ArgDecl],
        overrides: &BTreeMap<String, String>,
        auto: BTreeMap<String, String>,
        lexer: &Lexer,
    ) -> Result<Self, ShellError> {
        let mut s = Self {
            values: auto,
            overrides: overrides.clone(),
            used: BTreeSet::new(),
        };
        for d in meta {
            if let Some(v) = overrides.get(&d.name) {
                s.used.insert(d.name.clone());
                s.values.insert(d.name.clone(), v.clone());
            } else if let Some(def) = &d.default {
                let v = lexer.process_word(def, &s.values)?.value;
                s.values.insert(d.name.clone(), v);
            } else {
                s.values.remove(&d.name);
            }
        }
        Ok(s)
    }

    /// The variables a FROM line may use.
    pub fn values(&self) -> &BTreeMap<String, String> {
        &self.values
    }

    /// Expands a FROM word (base image or `--platform`).
    pub fn expand(&self, word: &str, lexer: &Lexer) -> Result<String, ShellError> {
        Ok(lexer.process_word(word, &self.values)?.value)
    }

    /// The `--build-arg` names the global ARGs consumed.
    pub fn used(&self) -> &BTreeSet<String> {
        &self.used
    }

    /// A stage scope starting from this global scope.
    pub fn stage(&self) -> StageScope<'_> {
        StageScope {
            global: self,
            args: Vec::new(),
            env: Vec::new(),
            used: BTreeSet::new(),
        }
    }
}

/// The variables of one stage as its instructions are evaluated in order.
#[derive(Clone, Debug)]
pub struct StageScope<'g> {
    global: &'g GlobalScope,
    /// Declared ARGs with their values (`None`: declared without value), in declaration order.
    args: Vec<(String, Option<String>)>,
    /// ENV variables, in order (the image's config env first).
    env: Vec<(String, String)>,
    used: BTreeSet<String>,
}

impl StageScope<'_> {
    /// Starts from the base image's environment (`KEY=value` entries).
    pub fn with_image_env(mut self, env: &[String]) -> Self {
        for e in env {
            let (k, v) = e.split_once('=').unwrap_or((e.as_str(), ""));
            self.set_env(k, v);
        }
        self
    }

    /// `ARG name[=default]` inside the stage.
    pub fn declare(&mut self, d: &ArgDecl, lexer: &Lexer) -> Result<(), ShellError> {
        let value = if let Some(v) = self.global.overrides.get(&d.name) {
            self.used.insert(d.name.clone());
            Some(v.clone())
        } else if let Some(def) = &d.default {
            Some(lexer.process_word(def, &*self)?.value)
        } else {
            self.global.values.get(&d.name).cloned()
        };
        self.args.retain(|(n, _)| n != &d.name);
        self.args.push((d.name.clone(), value));
        Ok(())
    }

    /// `ENV key=value` (value already expanded).
    pub fn set_env(&mut self, key: &str, value: &str) {
        match self.env.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = value.to_string(),
            None => self.env.push((key.to_string(), value.to_string())),
        }
    }

    /// What words of instructions expand with: declared ARGs, then ENV on top.
    pub fn expansion_env(&self) -> BTreeMap<String, String> {
        let mut m: BTreeMap<String, String> = self
            .args
            .iter()
            .filter_map(|(k, v)| v.clone().map(|v| (k.clone(), v)))
            .collect();
        for (k, v) in &self.env {
            m.insert(k.clone(), v.clone());
        }
        m
    }

    /// The environment of a RUN: the ENV list, then declared ARGs not shadowed by ENV, then
    /// proxy args given with `--build-arg` (declared or not).
    pub fn run_env(&self) -> Vec<String> {
        let mut out: Vec<String> = self.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let shadowed = |k: &str| self.env.iter().any(|(e, _)| e == k);
        for (k, v) in &self.args {
            if let Some(v) = v
                && !shadowed(k)
            {
                out.push(format!("{k}={v}"));
            }
        }
        for p in PROXY_ARGS {
            if let Some(v) = self.global.overrides.get(p)
                && !shadowed(p)
                && !self.args.iter().any(|(k, _)| k == p)
            {
                out.push(format!("{p}={v}"));
            }
        }
        out
    }

    /// The build args a RUN records in its history (`|N k=v ... cmd`, as docker writes it):
    /// declared ARGs with a value, not shadowed by ENV, in declaration order (as BuildKit); proxy args only when declared.
    pub fn history_args(&self) -> Vec<String> {
        let out: Vec<String> = self
            .args
            .iter()
            .filter(|(k, _)| !self.env.iter().any(|(e, _)| e == k))
            .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={v}")))
            .collect();
        out
    }

    /// The `--build-arg` names this stage consumed (for the "not consumed" warning).
    pub fn used(&self) -> &BTreeSet<String> {
        &self.used
    }
}

/// Lookups as [`StageScope::expansion_env`] would answer them, without building the map: ENV
/// first, then declared ARGs.
impl Env for StageScope<'_> {
    fn get(&self, name: &str) -> Option<&str> {
        if let Some((_, v)) = self.env.iter().rev().find(|(k, _)| k == name) {
            return Some(v);
        }
        self.args
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| v.as_deref())
    }
}

/// `--build-arg` names no stage or global ARG consumed (proxy args always count as consumed).
pub fn unused_build_args<'a>(
    overrides: &'a BTreeMap<String, String>,
    consumed: &BTreeSet<String>,
) -> Vec<&'a str> {
    overrides
        .keys()
        .map(String::as_str)
        .filter(|k| !consumed.contains(*k) && !PROXY_ARGS.contains(k))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decl(name: &str, default: Option<&str>) -> ArgDecl {
        ArgDecl {
            name: name.into(),
            default: default.map(String::from),
            description: String::new(),
        }
    }

    fn lexer() -> Lexer {
        Lexer::new('\\')
    }

    #[test]
    fn global_args_feed_from_and_need_redeclaring_in_stages() {
        let auto = platform_args(
            &Platform::host(),
            &Platform::parse("linux/arm64/v8").unwrap(),
        );
        let g = GlobalScope::new(
            &[
                decl("REG", Some("localhost:5000")),
                decl("TAG", Some("\"$REG-x\"")),
            ],
            &BTreeMap::new(),
            auto,
            &lexer(),
        )
        .unwrap();
        assert_eq!(
            g.expand("$REG/debian:${TAG}", &lexer()).unwrap(),
            "localhost:5000/debian:localhost:5000-x"
        );
        assert_eq!(
            g.expand("img-$TARGETARCH$TARGETVARIANT", &lexer()).unwrap(),
            "img-arm64v8"
        );
        let mut s = g.stage();
        assert!(
            !s.expansion_env().contains_key("REG"),
            "globals are invisible until re-declared"
        );
        assert!(!s.expansion_env().contains_key("TARGETARCH"));
        s.declare(&decl("REG", None), &lexer()).unwrap();
        s.declare(&decl("TARGETARCH", None), &lexer()).unwrap();
        assert_eq!(s.expansion_env()["REG"], "localhost:5000");
        assert_eq!(s.expansion_env()["TARGETARCH"], "arm64");
    }

    #[test]
    fn build_args_override_and_env_wins() {
        let over = BTreeMap::from([
            ("V".to_string(), "9".to_string()),
            ("HTTP_PROXY".to_string(), "http://p:3128".to_string()),
            ("UNUSED".to_string(), "x".to_string()),
        ]);
        let g = GlobalScope::new(&[], &over, BTreeMap::new(), &lexer()).unwrap();
        let mut s = g.stage().with_image_env(&["PATH=/bin".into()]);
        s.declare(&decl("V", Some("1")), &lexer()).unwrap();
        s.declare(&decl("W", Some("${V}0")), &lexer()).unwrap();
        assert_eq!(s.expansion_env()["W"], "90");
        assert_eq!(
            s.run_env(),
            ["PATH=/bin", "V=9", "W=90", "HTTP_PROXY=http://p:3128"]
        );
        assert_eq!(
            s.history_args(),
            ["V=9", "W=90"],
            "proxy args stay out of history unless declared"
        );
        s.set_env("V", "env");
        assert_eq!(s.expansion_env()["V"], "env");
        assert_eq!(
            Env::get(&s, "V"),
            Some("env"),
            "the scope answers like its map"
        );
        assert_eq!(Env::get(&s, "W"), Some("90"));
        assert_eq!(
            Env::get(&s, "HTTP_PROXY"),
            None,
            "undeclared proxy args do not expand"
        );
        assert_eq!(
            s.run_env(),
            ["PATH=/bin", "V=env", "W=90", "HTTP_PROXY=http://p:3128"]
        );
        s.declare(&decl("HTTP_PROXY", None), &lexer()).unwrap();
        assert!(
            s.history_args()
                .contains(&"HTTP_PROXY=http://p:3128".to_string())
        );
        assert_eq!(unused_build_args(&over, s.used()), ["UNUSED"]);
    }
}
