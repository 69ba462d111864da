//! `hoist save`: images to a docker-archive or OCI archive.

use anyhow::{Context, Result};
use oci::Reference;
use store::Store;
use store::archive::{self, ArchiveFormat, SaveItem};

use crate::cli::{SaveArgs, SaveFormat};

pub fn run(store: &Store, a: SaveArgs) -> Result<()> {
    let mut items: Vec<SaveItem> = Vec::new();
    for name in &a.images {
        let image = store.resolve(name)?;
        // Named by a tag: record that name. By ID: record none, as docker does.
        let names: Vec<Reference> = Reference::parse_docker(name)
            .ok()
            .filter(|r| image.tags.contains(r))
            .into_iter()
            .collect();
        if let Some(existing) = items
            .iter_mut()
            .find(|i| i.image.digest() == image.digest())
        {
            existing.names.extend(names);
        } else {
            items.push(SaveItem { image, names });
        }
    }
    let format = match a.format {
        SaveFormat::DockerArchive => ArchiveFormat::DockerArchive,
        SaveFormat::OciArchive => ArchiveFormat::OciArchive,
    };
    let mut out = super::Output::new(a.output.as_deref())?;
    match archive::save(store, &items, format, &mut out) {
        Ok(_) => out.finish(),
        Err(e) => {
            out.abort();
            Err(e).context("save failed; no archive was written")
        }
    }
}
