//! `hoist tag SRC DST`.

use anyhow::{Context, Result, bail};
use oci::Reference;
use store::Store;

use crate::cli::TagArgs;

pub fn run(store: &Store, a: TagArgs) -> Result<()> {
    let img = store.resolve(&a.source)?;
    let target = Reference::parse_docker(&a.target)
        .with_context(|| format!("invalid target name `{}`", a.target))?;
    if target.digest().is_some() {
        bail!(
            "cannot tag with `{}`: a name with a digest cannot be a tag",
            a.target
        );
    }
    let _lease = store.lease()?;
    store.tag(&img.descriptor, &[target])?;
    Ok(())
}
