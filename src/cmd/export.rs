//! `hoist export IMAGE`: the image's flattened root filesystem as a tar.

use anyhow::{Context, Result};
use store::Store;

use crate::cli::ExportArgs;

pub fn run(store: &Store, a: ExportArgs) -> Result<()> {
    let _lease = store.lease()?;
    let img = store.resolve(&a.image)?;
    let mut dirs = store.snapshots().prepare(store.blobs(), &img)?;
    dirs.reverse();
    let mut out = super::Output::new(a.output.as_deref())?;
    match store::flatten::write_flattened(&dirs, &mut out) {
        Ok(_) => out.finish(),
        Err(e) => {
            out.abort();
            Err(e).context(format!("cannot export `{}`", a.image))
        }
    }
}
