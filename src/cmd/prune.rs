//! `hoist prune`: drop untagged images and collect garbage.

use anyhow::Result;
use store::Store;

use crate::cli::PruneArgs;
use crate::render;

pub fn run(store: &Store, _a: PruneArgs) -> Result<()> {
    let report = store::gc::collect(store, true)?;
    let mut lines: Vec<String> = report
        .images_removed
        .iter()
        .map(|d| format!("Deleted: {d}"))
        .collect();
    lines.push(format!(
        "Total reclaimed space: {}",
        render::human_size(report.bytes_reclaimed)
    ));
    super::stdout_lines(lines)
}
