//! `hoist export IMAGE`: the image's flattened root filesystem as a tar.

use anyhow::{Context, Result};
use store::Store;

use crate::cli::ExportArgs;

pub fn run(store: &Store, a: ExportArgs) -> Result<()> {
    let _lease = store.lease()?;
    let containers = store::containers::Containers::new(store.root());
    // A container: its own changes over its image. Else an image.
    let (img, upper) = match containers.find(&a.image) {
        Ok(r) => (
            store.load_image(&store::Descriptor::new(
                &oci::MediaType::OciManifest,
                r.image_digest.clone(),
                0,
            ))?,
            Some(containers.dir(&r.id).join("upper")),
        ),
        Err(_) => (store.resolve(&a.image)?, None),
    };
    let mut dirs = store.snapshots().prepare(store.blobs(), &img)?;
    dirs.reverse();
    if let Some(u) = upper {
        dirs.insert(0, u);
    }
    let mut out = super::Output::new(a.output.as_deref())?;
    match store::flatten::write_flattened(&dirs, &mut out, super::rootless_ids()) {
        Ok(_) => out.finish(),
        Err(e) => {
            out.abort();
            Err(e).context(format!("cannot export `{}`", a.image))
        }
    }
}
