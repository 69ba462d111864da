//! `docker save` / `docker load` compatible archives.
//!
//! Writing: the Docker 25 docker-archive layout (`manifest.json` + `repositories` + an OCI layout
//! with uncompressed layers), or an OCI archive (an OCI layout in a tar). Reading: docker's
//! classic (1.10 to 24) and 25+ archives, OCI archives, go-containerregistry tarballs, layers
//! plain, gzip or zstd, several images per archive, the archive itself optionally compressed.

mod load;
mod save;

pub use load::{LoadedImage, load};
pub use save::{ArchiveFormat, SaveItem, save};
