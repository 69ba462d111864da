//! Media types of OCI and docker schema2 documents and layers.

use std::fmt;

/// A media type we know, or any other string kept verbatim.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum MediaType {
    /// `application/vnd.oci.image.manifest.v1+json`
    OciManifest,
    /// `application/vnd.oci.image.index.v1+json`
    OciIndex,
    /// `application/vnd.oci.image.config.v1+json`
    OciConfig,
    /// `application/vnd.oci.image.layer.v1.tar`
    OciLayer,
    /// `application/vnd.oci.image.layer.v1.tar+gzip`
    OciLayerGzip,
    /// `application/vnd.oci.image.layer.v1.tar+zstd`
    OciLayerZstd,
    /// `application/vnd.docker.distribution.manifest.v2+json`
    DockerManifest,
    /// `application/vnd.docker.distribution.manifest.list.v2+json`
    DockerManifestList,
    /// `application/vnd.docker.container.image.v1+json`
    DockerConfig,
    /// `application/vnd.docker.image.rootfs.diff.tar`
    DockerLayer,
    /// `application/vnd.docker.image.rootfs.diff.tar.gzip`
    DockerLayerGzip,
    /// `application/vnd.docker.image.rootfs.foreign.diff.tar.gzip`
    DockerForeignLayerGzip,
    /// `application/vnd.docker.distribution.manifest.v1+prettyjws` (schema1, refused)
    DockerSchema1Signed,
    /// `application/vnd.docker.distribution.manifest.v1+json` (schema1, refused)
    DockerSchema1,
    /// Anything else.
    Other(String),
}

/// How a layer blob is compressed, as its media type says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    /// Plain tar.
    None,
    /// gzip.
    Gzip,
    /// zstd.
    Zstd,
}

impl MediaType {
    /// The media type string.
    pub fn as_str(&self) -> &str {
        match self {
            Self::OciManifest => "application/vnd.oci.image.manifest.v1+json",
            Self::OciIndex => "application/vnd.oci.image.index.v1+json",
            Self::OciConfig => "application/vnd.oci.image.config.v1+json",
            Self::OciLayer => "application/vnd.oci.image.layer.v1.tar",
            Self::OciLayerGzip => "application/vnd.oci.image.layer.v1.tar+gzip",
            Self::OciLayerZstd => "application/vnd.oci.image.layer.v1.tar+zstd",
            Self::DockerManifest => "application/vnd.docker.distribution.manifest.v2+json",
            Self::DockerManifestList => "application/vnd.docker.distribution.manifest.list.v2+json",
            Self::DockerConfig => "application/vnd.docker.container.image.v1+json",
            Self::DockerLayer => "application/vnd.docker.image.rootfs.diff.tar",
            Self::DockerLayerGzip => "application/vnd.docker.image.rootfs.diff.tar.gzip",
            Self::DockerForeignLayerGzip => {
                "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
            }
            Self::DockerSchema1Signed => {
                "application/vnd.docker.distribution.manifest.v1+prettyjws"
            }
            Self::DockerSchema1 => "application/vnd.docker.distribution.manifest.v1+json",
            Self::Other(s) => s,
        }
    }

    /// Parses any media type string (unknown ones are kept as [`MediaType::Other`]).
    pub fn parse(s: &str) -> Self {
        [
            Self::OciManifest,
            Self::OciIndex,
            Self::OciConfig,
            Self::OciLayer,
            Self::OciLayerGzip,
            Self::OciLayerZstd,
            Self::DockerManifest,
            Self::DockerManifestList,
            Self::DockerConfig,
            Self::DockerLayer,
            Self::DockerLayerGzip,
            Self::DockerForeignLayerGzip,
            Self::DockerSchema1Signed,
            Self::DockerSchema1,
        ]
        .into_iter()
        .find(|m| m.as_str() == s)
        .unwrap_or_else(|| Self::Other(s.to_string()))
    }

    /// True for single-image manifests (OCI or docker schema2).
    pub fn is_manifest(&self) -> bool {
        matches!(self, Self::OciManifest | Self::DockerManifest)
    }

    /// True for multi-platform indexes (OCI index or docker manifest list).
    pub fn is_index(&self) -> bool {
        matches!(self, Self::OciIndex | Self::DockerManifestList)
    }

    /// True for docker schema1 manifests, which we refuse.
    pub fn is_schema1(&self) -> bool {
        matches!(self, Self::DockerSchema1 | Self::DockerSchema1Signed)
    }

    /// The compression a layer media type implies, or `None` for a type that is not a layer.
    pub fn layer_compression(&self) -> Option<Compression> {
        match self {
            Self::OciLayer | Self::DockerLayer => Some(Compression::None),
            Self::OciLayerGzip | Self::DockerLayerGzip | Self::DockerForeignLayerGzip => {
                Some(Compression::Gzip)
            }
            Self::OciLayerZstd => Some(Compression::Zstd),
            Self::Other(s) => {
                let s = s.as_str();
                if s.ends_with("+zstd") || s.ends_with(".zstd") {
                    Some(Compression::Zstd)
                } else if s.ends_with("+gzip") || s.ends_with(".gzip") {
                    Some(Compression::Gzip)
                } else if s.ends_with(".tar") || s == "application/tar" {
                    Some(Compression::None)
                } else {
                    None
                }
            }
            _ => None,
        }
    }
}

impl fmt::Display for MediaType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        for s in [
            "application/vnd.oci.image.manifest.v1+json",
            "application/vnd.docker.image.rootfs.diff.tar.gzip",
            "application/x-custom",
        ] {
            assert_eq!(MediaType::parse(s).as_str(), s);
        }
        assert_eq!(
            MediaType::parse("application/tar+gzip").layer_compression(),
            Some(Compression::Gzip)
        );
    }
}
