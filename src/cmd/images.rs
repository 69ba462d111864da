//! `hoist images`: one row per name, like `docker images`.

use anyhow::Result;
use serde_json::json;
use store::Store;

use crate::cli::{ImagesArgs, ListFormat};
use crate::render;

pub fn run(store: &Store, a: ImagesArgs) -> Result<()> {
    let mut images = store.images()?;
    images.sort_by(|x, y| y.config.created.cmp(&x.config.created));
    let filter = a
        .repository
        .as_deref()
        .map(|r| oci::Reference::parse_normalized(r.split(':').next().unwrap_or(r)));
    let mut rows = Vec::new();
    for img in &images {
        let id = if a.no_trunc {
            img.id().to_string()
        } else {
            img.id().short().to_string()
        };
        let mut names: Vec<(String, String)> = img
            .tags
            .iter()
            .map(|r| (r.familiar_name(), r.tag().unwrap_or("<none>").to_string()))
            .collect();
        if let Some(Ok(f)) = &filter {
            names.retain(|(repo, _)| *repo == f.familiar_name());
            if names.is_empty() {
                continue;
            }
        } else if let Some(Err(_)) = &filter {
            continue;
        }
        if names.is_empty() {
            names.push(("<none>".into(), "<none>".into()));
        }
        for (repo, tag) in names {
            rows.push((repo, tag, id.clone(), img));
        }
    }
    if a.quiet {
        return super::stdout_lines(rows.into_iter().map(|r| r.2));
    }
    match a.format {
        ListFormat::Json => super::stdout_lines(rows.into_iter().map(|(repo, tag, id, img)| {
            json!({
                "Repository": repo,
                "Tag": tag,
                "ID": id,
                "Digest": img.digest().to_string(),
                "CreatedAt": img.config.created.clone().unwrap_or_default(),
                "CreatedSince": render::ago(img.config.created.as_deref()),
                "Size": render::human_size(img.size()),
            })
            .to_string()
        })),
        ListFormat::Table => {
            let mut table = vec![vec![
                "REPOSITORY".into(),
                "TAG".into(),
                "IMAGE ID".into(),
                "CREATED".into(),
                "SIZE".into(),
            ]];
            for (repo, tag, id, img) in rows {
                table.push(vec![
                    repo,
                    tag,
                    id,
                    render::ago(img.config.created.as_deref()),
                    render::human_size(img.size()),
                ]);
            }
            let mut out = Vec::new();
            render::table(&mut out, &table)?;
            super::stdout_lines([String::from_utf8_lossy(&out).trim_end().to_string()])
        }
    }
}
