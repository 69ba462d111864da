//! Our image configuration: the OCI image config plus docker's extra fields (`Healthcheck`,
//! `Shell`, `OnBuild`, `ArgsEscaped`, `container_config`, ...). Fields we do not model are kept in
//! `extra` maps, so reading and re-writing a config never drops what another tool put there.
//! Serialize it with [`crate::to_canonical_vec`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::Digest;

/// An image configuration (`application/vnd.oci.image.config.v1+json` or docker's
/// `application/vnd.docker.container.image.v1+json`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ImageConfig {
    /// CPU architecture (`amd64`, `arm64`, ...).
    #[serde(default)]
    pub architecture: String,
    /// Operating system (`linux`).
    #[serde(default)]
    pub os: String,
    /// OS version (Windows only).
    #[serde(
        rename = "os.version",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_version: Option<String>,
    /// Required OS features.
    #[serde(
        rename = "os.features",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_features: Option<Vec<String>>,
    /// CPU variant (`v7`, `v8`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// RFC 3339 creation time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// Author (MAINTAINER).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    /// The execution parameters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<RuntimeConfig>,
    /// The layer diff IDs.
    #[serde(default)]
    pub rootfs: RootFs,
    /// One entry per build step, empty layers included.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "null_as_none"
    )]
    pub history: Option<Vec<History>>,
    /// Every other top-level field (docker's `container`, `container_config`, `docker_version`,
    /// ...), kept verbatim.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

fn null_as_none<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d)
}

/// The `rootfs` section: the ordered layer diff IDs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RootFs {
    /// Always `layers`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Digests of the uncompressed layer tars, bottom first.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub diff_ids: Vec<Digest>,
}

impl Default for RootFs {
    fn default() -> Self {
        Self {
            kind: "layers".to_string(),
            diff_ids: Vec::new(),
        }
    }
}

fn null_as_empty<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

/// One history entry.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct History {
    /// RFC 3339 time of the step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// The command that made the step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    /// Author of the step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    /// Free-form comment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// True when the step made no layer.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub empty_layer: bool,
    /// Other fields, kept verbatim.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// The execution parameters of an image (`config` in the JSON). Docker's capitalised names.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RuntimeConfig {
    /// `user[:group]`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "null_as_none"
    )]
    pub user: Option<String>,
    /// Exposed ports, `80/tcp` -> `{}`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "null_as_none"
    )]
    pub exposed_ports: Option<BTreeMap<String, Value>>,
    /// `KEY=value` entries.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "null_as_none"
    )]
    pub env: Option<Vec<String>>,
    /// ENTRYPOINT.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "null_as_none"
    )]
    pub entrypoint: Option<Vec<String>>,
    /// CMD.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "null_as_none"
    )]
    pub cmd: Option<Vec<String>>,
    /// Volumes, `/data` -> `{}`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "null_as_none"
    )]
    pub volumes: Option<BTreeMap<String, Value>>,
    /// WORKDIR.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "null_as_none"
    )]
    pub working_dir: Option<String>,
    /// Labels.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "null_as_none"
    )]
    pub labels: Option<BTreeMap<String, String>>,
    /// STOPSIGNAL.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "null_as_none"
    )]
    pub stop_signal: Option<String>,
    /// Docker's ArgsEscaped (Windows shell-form marker).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "null_as_none"
    )]
    pub args_escaped: Option<bool>,
    /// HEALTHCHECK.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "null_as_none"
    )]
    pub healthcheck: Option<HealthConfig>,
    /// ONBUILD triggers.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "null_as_none"
    )]
    pub on_build: Option<Vec<String>>,
    /// SHELL.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "null_as_none"
    )]
    pub shell: Option<Vec<String>>,
    /// Every other field (docker's Hostname, AttachStdin, Image, ...), kept verbatim.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// HEALTHCHECK settings. Durations are nanoseconds, as docker stores them.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HealthConfig {
    /// `["NONE"]`, `["CMD", args...]` or `["CMD-SHELL", command]`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "null_as_none"
    )]
    pub test: Option<Vec<String>>,
    /// Time between checks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<i64>,
    /// Time before a check is considered hung.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<i64>,
    /// Start period.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_period: Option<i64>,
    /// Interval during the start period.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_interval: Option<i64>,
    /// Failures before unhealthy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<i64>,
    /// Other fields.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

impl ImageConfig {
    /// Parses config bytes (as fetched or loaded; keep the raw bytes for hashing).
    pub fn from_slice(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(bytes)
    }

    /// The runtime config, created empty if absent.
    pub fn runtime_mut(&mut self) -> &mut RuntimeConfig {
        self.config.get_or_insert_with(RuntimeConfig::default)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_unknown_fields_and_docker_extras() {
        let raw = br#"{"architecture":"amd64","os":"linux","docker_version":"20.10",
            "config":{"Hostname":"abc","Env":["A=1"],"Cmd":null,"Healthcheck":{"Test":["CMD","true"],"Interval":1000},
            "Shell":["/bin/bash","-c"],"OnBuild":["RUN x"],"ArgsEscaped":true},
            "rootfs":{"type":"layers","diff_ids":["sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"]},
            "history":[{"created_by":"x","empty_layer":true,"custom":1}]}"#;
        let c = ImageConfig::from_slice(raw).unwrap();
        let rc = c.config.as_ref().unwrap();
        assert_eq!(rc.cmd, None);
        assert_eq!(rc.extra["Hostname"], "abc");
        assert_eq!(rc.shell.as_deref().unwrap(), ["/bin/bash", "-c"]);
        assert_eq!(c.extra["docker_version"], "20.10");
        let out = crate::to_canonical_vec(&c).unwrap();
        let back = ImageConfig::from_slice(&out).unwrap();
        assert_eq!(back, c);
        let s = String::from_utf8(out).unwrap();
        assert!(
            s.contains(r#""custom":1"#) && s.contains(r#""Hostname":"abc""#),
            "{s}"
        );
    }
}
