//! Tar streams from snapshot directories: the diff of one directory (an overlay upper dir or a
//! snapshot) as a layer with whiteouts, and the flattened view of a snapshot stack, resolved as
//! overlayfs would, for `export`.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use crate::apply::is_opaque;
use crate::tarwrite::{IdMapping, TarWriter};

fn is_whiteout(m: &std::fs::Metadata) -> bool {
    m.file_type().is_char_device() && m.rdev() == 0
}

fn sorted_entries(dir: &Path) -> io::Result<Vec<(Vec<u8>, PathBuf, std::fs::Metadata)>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let p = e.path();
        let m = std::fs::symlink_metadata(&p)?;
        out.push((e.file_name().as_bytes().to_vec(), p, m));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// Writes the layer tar for `dir`: its entries in byte order of their names, whiteout devices as
/// `.wh.NAME` entries and opaque directories followed by `DIR/.wh..wh..opq`.
/// `ids` translates owners for a rootless store (see [`IdMapping`]).
pub fn write_diff<W: Write>(
    dir: &Path,
    out: W,
    clamp_mtime: Option<u64>,
    ids: Option<IdMapping>,
) -> io::Result<W> {
    let mut tw = TarWriter::new(out).clamp_mtime(clamp_mtime).id_mapping(ids);
    diff_dir(&mut tw, dir, &mut Vec::new())?;
    tw.finish()
}

fn diff_dir<W: Write>(tw: &mut TarWriter<W>, dir: &Path, rel: &mut Vec<u8>) -> io::Result<()> {
    for (name, path, m) in sorted_entries(dir)? {
        let base = rel.len();
        if is_whiteout(&m) {
            rel.extend_from_slice(b".wh.");
            rel.extend_from_slice(&name);
            tw.append_marker(rel, m.mtime())?;
        } else {
            rel.extend_from_slice(&name);
            tw.append_path(rel, &path, &m)?;
            if m.is_dir() {
                rel.push(b'/');
                if is_opaque(&path) {
                    let mut marker = rel.clone();
                    marker.extend_from_slice(b".wh..wh..opq");
                    tw.append_marker(&marker, m.mtime())?;
                }
                diff_dir(tw, &path, rel)?;
            }
        }
        rel.truncate(base);
    }
    Ok(())
}

/// Writes the merged root filesystem of `layers` (snapshot dirs, topmost first) as one tar with
/// no whiteouts: what a container would see. `ids` translates owners for a rootless store.
pub fn write_flattened<W: Write>(
    layers: &[PathBuf],
    out: W,
    ids: Option<IdMapping>,
) -> io::Result<W> {
    let mut tw = TarWriter::new(out).id_mapping(ids);
    flatten_dir(&mut tw, layers.to_vec(), &mut Vec::new())?;
    tw.finish()
}

fn flatten_dir<W: Write>(
    tw: &mut TarWriter<W>,
    dirs: Vec<PathBuf>,
    rel: &mut Vec<u8>,
) -> io::Result<()> {
    // name -> (layer index, path, metadata) of the topmost occurrence; None when whited out.
    let mut seen: BTreeMap<Vec<u8>, Option<(usize, PathBuf, std::fs::Metadata)>> = BTreeMap::new();
    let mut listings = Vec::with_capacity(dirs.len());
    for (i, d) in dirs.iter().enumerate() {
        let entries = sorted_entries(d)?;
        for (name, path, m) in &entries {
            seen.entry(name.clone()).or_insert_with(|| {
                if is_whiteout(m) {
                    None
                } else {
                    Some((i, path.clone(), m.clone()))
                }
            });
        }
        listings.push(entries);
    }
    for (name, top) in seen {
        let Some((i, path, m)) = top else { continue };
        let base = rel.len();
        rel.extend_from_slice(&name);
        tw.append_path(rel, &path, &m)?;
        if m.is_dir() {
            let mut children = vec![path.clone()];
            if !is_opaque(&path) {
                for listing in &listings[i + 1..] {
                    let Some((_, p, lm)) = listing.iter().find(|(n, _, _)| n == &name) else {
                        continue;
                    };
                    if !lm.is_dir() {
                        break;
                    }
                    children.push(p.clone());
                    if is_opaque(p) {
                        break;
                    }
                }
            }
            rel.push(b'/');
            flatten_dir(tw, children, rel)?;
        }
        rel.truncate(base);
    }
    Ok(())
}
