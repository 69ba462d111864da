//! Moving images between the store and registries: the glue between `store` and
//! `registry-client` (which never depend on each other), used by `pull`, `push`, `run` and
//! `build`.

mod pgzip;
pub mod progress;
pub mod pull;
pub mod push;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use registry_client::{Client, ClientOptions};

/// Registry settings from the command line and hoist's config file.
#[derive(Clone, Debug, Default)]
pub struct RegistrySettings {
    /// Hosts that may be reached over plain HTTP or with unverified TLS.
    pub insecure: Vec<String>,
    /// Mirrors per registry.
    pub mirrors: HashMap<String, Vec<String>>,
    /// Extra certs.d directories (tests), searched before the system ones.
    pub certs_dirs: Vec<PathBuf>,
}

/// hoist's config file: `$HOIST_CONFIG`, else `/etc/hoist/config.json` (root) or
/// `$XDG_CONFIG_HOME/hoist/config.json`. It uses docker's `daemon.json` key names:
/// `{"insecure-registries": ["host:port"], "registry-mirrors": ["https://mirror"],
/// "mirrors": {"quay.io": ["mirror:5000"]}}`; `registry-mirrors` apply to docker.io.
pub fn config_path() -> PathBuf {
    if let Some(p) = std::env::var_os("HOIST_CONFIG").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    if rustix::process::geteuid().is_root() {
        return PathBuf::from("/etc/hoist/config.json");
    }
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
        .unwrap_or_else(|| PathBuf::from("/etc"));
    base.join("hoist/config.json")
}

impl RegistrySettings {
    /// Settings from the config file (if any) plus `--insecure-registry` hosts.
    pub fn load(insecure: &[String]) -> Result<Self> {
        let mut s = RegistrySettings {
            insecure: insecure.to_vec(),
            ..Default::default()
        };
        if let Ok(v) = std::env::var("HOIST_CERTS_D") {
            s.certs_dirs.extend(std::env::split_paths(&v));
        }
        let path = config_path();
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(s),
            Err(e) => return Err(e).with_context(|| format!("cannot read `{}`", path.display())),
        };
        let v: serde_json::Value = serde_json::from_slice(&bytes)
            .with_context(|| format!("`{}` is not valid JSON", path.display()))?;
        let strings = |v: Option<&serde_json::Value>| -> Vec<String> {
            v.and_then(|v| v.as_array())
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default()
        };
        s.insecure.extend(strings(v.get("insecure-registries")));
        let hub: Vec<String> = strings(v.get("registry-mirrors"))
            .into_iter()
            .map(|m| registry_client::auth::normalize_registry(&m))
            .collect();
        if !hub.is_empty() {
            s.mirrors.insert("docker.io".to_string(), hub);
        }
        if let Some(obj) = v.get("mirrors").and_then(|m| m.as_object()) {
            for (k, list) in obj {
                s.mirrors.insert(
                    registry_client::auth::normalize_registry(k),
                    strings(Some(list))
                        .iter()
                        .map(|m| registry_client::auth::normalize_registry(m))
                        .collect(),
                );
            }
        }
        Ok(s)
    }

    /// A registry client with these settings and credentials from the usual auth files.
    pub fn client(&self) -> Arc<Client> {
        let defaults = ClientOptions::default();
        let mut certs_dirs = self.certs_dirs.clone();
        certs_dirs.extend(defaults.certs_dirs.iter().cloned());
        Client::new(ClientOptions {
            insecure_registries: self.insecure.clone(),
            mirrors: self.mirrors.clone(),
            certs_dirs,
            ..defaults
        })
    }
}

/// A tokio runtime for one command (two worker threads: the machine's I/O is the limit).
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// When to pull an image that `run` or `build` needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum PullPolicy {
    /// Only when it is not in the store.
    Missing,
    /// Always (a newer image under the same name replaces the tag).
    Always,
    /// Never: a missing image is an error.
    Never,
}

/// A command's way to registries, made on first use and then shared: the async runtime and
/// one client (its connection pools, tokens and per-host TLS setup), so a build with several
/// bases and URLs pings, authenticates and reads its settings once.
pub struct Remote {
    insecure: Vec<String>,
    inner: std::sync::OnceLock<(tokio::runtime::Runtime, Arc<Client>)>,
}

impl Remote {
    /// Nothing is made until [`Remote::get`].
    pub fn new(insecure: &[String]) -> Self {
        Self {
            insecure: insecure.to_vec(),
            inner: std::sync::OnceLock::new(),
        }
    }

    /// The runtime and client, made on the first call.
    pub fn get(&self) -> Result<(&tokio::runtime::Runtime, &Arc<Client>)> {
        if self.inner.get().is_none() {
            let made = (runtime()?, RegistrySettings::load(&self.insecure)?.client());
            // Two threads racing here: one's pair is kept, the other's dropped.
            let _ = self.inner.set(made);
        }
        let (rt, client) = self.inner.get().expect("set above");
        Ok((rt, client))
    }
}

/// Finds `what` in the store, pulling it first as `policy` says (docker's `--pull`).
pub fn resolve_or_pull(
    store: &store::Store,
    what: &str,
    policy: PullPolicy,
    remote: &Remote,
    platform: Option<registry_client::platform::Platform>,
    quiet: bool,
) -> Result<store::Image> {
    let local = store.resolve(what);
    let missing = matches!(local, Err(store::StoreError::ImageNotFound(_)));
    let pull_it = match policy {
        PullPolicy::Always => true,
        PullPolicy::Missing => missing,
        PullPolicy::Never => false,
    };
    if !pull_it {
        return Ok(local?);
    }
    let Ok(reference) = oci::Reference::parse_docker(what) else {
        return Ok(local?);
    };
    if missing && !quiet {
        eprintln!("Unable to find image '{}' locally", reference.familiar());
    }
    let opts = pull::PullOptions {
        platform,
        all_platforms: false,
        progress: progress::Progress::new(if quiet {
            progress::Mode::Quiet
        } else {
            progress::Mode::Auto
        }),
    };
    let (rt, client) = remote.get()?;
    let pulled = pull::pull(store, client, rt, &reference, &opts)?;
    Ok(pulled.image)
}
