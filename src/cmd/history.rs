//! `hoist history`: the image's history entries, newest first, like `docker history`.

use anyhow::Result;
use serde_json::json;
use store::Store;

use crate::cli::{HistoryArgs, ListFormat};
use crate::render;

pub fn run(store: &Store, a: HistoryArgs) -> Result<()> {
    let img = store.resolve(&a.image)?;
    let history = img.config.history.clone().unwrap_or_default();
    let mut layer_sizes = img.manifest.layers.iter().map(|l| l.size);
    let mut rows = Vec::new();
    for h in &history {
        let size = if h.empty_layer {
            0
        } else {
            layer_sizes.next().unwrap_or(0)
        };
        rows.push((h, size));
    }
    rows.reverse();
    let id = |i: usize| {
        if i == 0 {
            if a.no_trunc {
                img.id().to_string()
            } else {
                img.id().short().to_string()
            }
        } else {
            "<missing>".to_string()
        }
    };
    if a.quiet {
        return super::stdout_lines((0..rows.len()).map(id));
    }
    if a.format == ListFormat::Json {
        return super::stdout_lines(rows.iter().enumerate().map(|(i, (h, size))| {
            json!({"ID": id(i), "CreatedAt": h.created, "CreatedSince": render::ago(h.created.as_deref()),
                   "CreatedBy": h.created_by.clone().unwrap_or_default(), "Size": render::human_size(*size),
                   "Comment": h.comment.clone().unwrap_or_default()}).to_string()
        }));
    }
    let mut table = vec![vec![
        "IMAGE".into(),
        "CREATED".into(),
        "CREATED BY".into(),
        "SIZE".into(),
        "COMMENT".into(),
    ]];
    for (i, (h, size)) in rows.iter().enumerate() {
        let mut by = h.created_by.clone().unwrap_or_default().replace('\t', " ");
        if !a.no_trunc && by.chars().count() > 45 {
            by = by.chars().take(44).collect::<String>() + "…";
        }
        table.push(vec![
            id(i),
            render::ago(h.created.as_deref()),
            by,
            render::human_size(*size),
            h.comment.clone().unwrap_or_default(),
        ]);
    }
    let mut out = Vec::new();
    render::table(&mut out, &table)?;
    super::stdout_lines([String::from_utf8_lossy(&out).trim_end().to_string()])
}
