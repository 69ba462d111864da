//! `hoist rmi`: remove names; an image that loses its last name is deleted, and its content
//! with it when no other image shares it.

use anyhow::{Result, bail};
use oci::Reference;
use store::Store;

use crate::cli::RmiArgs;

pub fn run(store: &Store, a: RmiArgs) -> Result<()> {
    let mut lines = Vec::new();
    let mut deleted_any = false;
    let mut failed = None;
    for name in &a.images {
        match remove_one(store, name, a.force, &mut lines) {
            Ok(deleted) => deleted_any |= deleted,
            Err(e) => {
                crate::render::error(&e);
                failed = Some(name.clone());
            }
        }
    }
    if deleted_any {
        store::gc::collect(store, false)?;
    }
    super::stdout_lines(lines)?;
    if let Some(name) = failed {
        bail!("could not remove every image (last failure: `{name}`)");
    }
    Ok(())
}

fn remove_one(store: &Store, name: &str, force: bool, lines: &mut Vec<String>) -> Result<bool> {
    let img = store.resolve(name)?;
    let by_name = Reference::parse_docker(name)
        .ok()
        .filter(|r| img.tags.contains(r));
    if let Some(r) = by_name {
        let (digest, last) = store.untag(&r)?;
        lines.push(format!("Untagged: {}", r.familiar()));
        if last {
            lines.push(format!("Deleted: {}", img.id()));
            let _ = digest;
        }
        return Ok(last);
    }
    // By ID or digest: every name goes, which needs -f when there are several.
    if img.tags.len() > 1 && !force {
        bail!(
            "image {} is referenced by several names ({}): remove them by name, or use -f",
            img.id().short(),
            img.tags
                .iter()
                .map(|t| t.familiar())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    for r in store.remove_image(img.digest())? {
        lines.push(format!("Untagged: {}", r.familiar()));
    }
    lines.push(format!("Deleted: {}", img.id()));
    Ok(true)
}
