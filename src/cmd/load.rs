//! `hoist load`: images from an archive (file or stdin).

use anyhow::{Context, Result};
use store::Store;

use crate::cli::LoadArgs;

pub fn run(store: &Store, a: LoadArgs) -> Result<()> {
    let loaded = match &a.input {
        Some(p) if p.as_os_str() != "-" => {
            let f =
                std::fs::File::open(p).with_context(|| format!("cannot open `{}`", p.display()))?;
            store::archive::load(store, f, &p.display().to_string())?
        }
        _ => store::archive::load(store, std::io::stdin().lock(), "stdin")?,
    };
    if a.quiet {
        return Ok(());
    }
    let mut lines = Vec::new();
    for img in loaded {
        if img.names.is_empty() {
            lines.push(format!("Loaded image ID: {}", img.id));
        }
        for n in img.names {
            lines.push(format!("Loaded image: {}", n.familiar()));
        }
    }
    super::stdout_lines(lines)
}
