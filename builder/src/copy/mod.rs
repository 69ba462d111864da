//! The file side of Dockerfile `COPY` and `ADD` (local sources), with Docker BuildKit's
//! semantics.
//!
//! A step goes through three calls:
//!
//! 1. [`select`] resolves the instruction's sources in a [`Source`] (the build context with its
//!    `.dockerignore`, or another stage's rootfs for `--from`) into a [`Selection`]: wildcards
//!    expanded, symlinks resolved inside the source root, directories walked, `--exclude` and
//!    `--parents` applied. Sources that are missing fail here, naming the source as written.
//! 2. [`Selection::digest`] hashes what was selected (paths, types, modes and owners as they
//!    will be written, extended attributes, symlink targets, file contents; never times) for
//!    the step's cache key.
//!    File hashes are memoised in a [`DigestMemo`] by (dev, inode, size, mtime, ctime).
//! 3. [`apply`] writes the selection into the image's root directory. Destination paths are
//!    resolved inside that root ([`resolve_in_root`]): an image symlink never leads to the host.
//!
//! What BuildKit does, and so what this module does:
//!
//! * Source paths are made absolute and cleaned lexically, so `../x`, `./x` and `/x` all name
//!   `x` in the source root. Symlinks on the way (and the last component, unless
//!   [`Source::follow_root_symlinks`] is off) are followed, always within the source root.
//! * Wildcards use Go's `filepath.Match` per path; a wildcard that matches nothing copies
//!   nothing and is not an error (only a missing directory before the wildcard is).
//! * A directory source copies its contents. `--parents` keeps each source's path relative to
//!   the source root, or to the part before a `/./` pivot. `--exclude` patterns (the
//!   `.dockerignore` syntax) are matched against paths relative to each copied directory, so a
//!   source named directly, or matched by a wildcard, is never excluded itself.
//! * Inside a copied directory symlinks are copied as symlinks and hard links stay hard links.
//!   Modes, times and extended attributes are kept; owners are kept for `--from` sources and
//!   reset to 0:0 for the build context, unless `--chown`; `--chmod` replaces the mode of files
//!   and directories.
//! * The destination is joined to the working directory when relative; it is a directory when
//!   it ends in `/` (or `/.`) or is one in the image, and missing parents are created 0755
//!   owned by the `--chown` owner (root without it). Existing files are replaced, existing
//!   directories merged into.
//! * ADD unpacks local tar archives (plain, gzip, bzip2, xz, zstd, told by their bytes) into the
//!   destination directory, keeping the archive's owners (or `--chown`) and refusing entries
//!   that would leave it.
//!
//! Where BuildKit silently overwrites (several files copied to one non-directory destination),
//! we fail with the classic builder's message instead.

mod apply;
mod archive;
mod digest;
mod error;
mod paths;
mod source;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

pub use apply::{CopyStats, Staged, apply, apply_staged, mkdir_in_root, set_times};
pub use digest::DigestMemo;
pub use error::CopyError;
pub use paths::resolve_in_root;

use crate::dockerfile::ignore::PatternMatcher;
use source::{Entry, Filters, Stat, View};

/// Where COPY/ADD sources are read from.
#[derive(Clone, Copy, Debug)]
pub struct Source<'a> {
    /// The build context directory, or the rootfs of the `--from` stage or image.
    pub root: &'a Path,
    /// The `.dockerignore` matcher (build context only): ignored paths are treated as absent.
    pub ignore: Option<&'a PatternMatcher>,
    /// Whether a symlink named by a source (its last component, or a wildcard match) is
    /// followed, as BuildKit always does for Dockerfile COPY/ADD. When off it is copied as a
    /// symlink. Symlinks earlier in a source path are always followed, inside `root`.
    pub follow_root_symlinks: bool,
    /// Whether copied entries keep their owners when there is no `--chown`: true for a
    /// `--from` rootfs; false for the build context, whose files BuildKit's client sends as
    /// 0:0.
    pub preserve_owners: bool,
}

impl<'a> Source<'a> {
    /// The build context, with its `.dockerignore` matcher if any.
    pub fn context(root: &'a Path, ignore: Option<&'a PatternMatcher>) -> Self {
        Source {
            root,
            ignore,
            follow_root_symlinks: true,
            preserve_owners: false,
        }
    }

    /// The root filesystem of another stage or an image (`COPY --from`).
    pub fn rootfs(root: &'a Path) -> Self {
        Source {
            root,
            ignore: None,
            follow_root_symlinks: true,
            preserve_owners: true,
        }
    }
}

/// A COPY or ADD of local sources, after the front end expanded its words and flags.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CopyRequest {
    /// The sources as written (relative to the source root; a leading `/` is ignored).
    pub sources: Vec<String>,
    /// The destination as written.
    pub dest: String,
    /// The working directory a relative destination is joined to.
    pub workdir: String,
    /// `--chown`, resolved to numeric ids.
    pub chown: Option<(u32, u32)>,
    /// `--chmod`, as octal permission bits (at most `0o7777`).
    pub chmod: Option<u32>,
    /// `--parents`.
    pub parents: bool,
    /// `--exclude` patterns.
    pub exclude: Vec<String>,
    /// Unpack local tar archives (ADD, unless `--unpack=false`).
    pub unpack_archives: bool,
}

impl CopyRequest {
    /// `ADD` or `COPY`, for messages.
    fn instruction(&self) -> &'static str {
        if self.unpack_archives { "ADD" } else { "COPY" }
    }
}

/// What a selected path is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EntryKind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link, copied as a link.
    Symlink,
    /// A device node, FIFO or socket.
    Special,
    /// A tar archive that ADD unpacks.
    Archive,
}

/// One path of a [`Selection`], as [`Selection::entries`] lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SelectedEntry {
    /// Where it is read from, relative to the source root (symlinks resolved).
    pub source: PathBuf,
    /// Where it lands, relative to the destination directory: the name of a file source, the
    /// path below a directory source (empty for the directory itself, whose contents go to
    /// the destination). A single file source copied to a destination that is not a directory
    /// lands at the destination itself; an archive is unpacked into it.
    pub target: PathBuf,
    /// What it is.
    pub kind: EntryKind,
}

/// The sources of one COPY/ADD, resolved: see [`select`].
#[derive(Clone, Debug)]
pub struct Selection {
    items: Vec<Item>,
    chown: Option<(u32, u32)>,
    chmod: Option<u32>,
    preserve_owners: bool,
    instruction: &'static str,
}

/// One matched source: a file, a directory with what it copies, a symlink or an archive.
#[derive(Clone, Debug)]
struct Item {
    /// The source as matched, relative to the root, its last component not resolved.
    matched: PathBuf,
    /// Where the data is, relative to the root, symlinks resolved.
    resolved: PathBuf,
    /// The name a file gets when copied into a directory (the matched name, not the target
    /// of a symlink).
    name: PathBuf,
    stat: Stat,
    kind: EntryKind,
    /// For a directory: what it copies, parents first.
    entries: Vec<Entry>,
}

impl Selection {
    /// Every selected path: each source in order, a directory followed by what it copies.
    pub fn entries(&self) -> impl Iterator<Item = SelectedEntry> + '_ {
        self.items.iter().flat_map(|item| {
            let top = SelectedEntry {
                source: item.resolved.clone(),
                target: if item.kind == EntryKind::Dir {
                    PathBuf::new()
                } else {
                    item.name.clone()
                },
                kind: item.kind,
            };
            std::iter::once(top).chain(item.entries.iter().map(|e| SelectedEntry {
                source: item.resolved.join(&e.rel),
                target: e.rel.clone(),
                kind: e.stat.kind(),
            }))
        })
    }

    /// The number of sources matched (wildcards expanded).
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// True when nothing matched (only wildcards can match nothing).
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The owner an entry is written with.
    fn owner(&self, st: &Stat) -> (u32, u32) {
        match self.chown {
            Some(ids) => ids,
            None if self.preserve_owners => (st.uid, st.gid),
            None => (0, 0),
        }
    }

    /// The mode bits a copied file or directory is given.
    fn mode(&self, st: &Stat) -> u32 {
        self.chmod.map_or(st.perm(), |m| m & 0o7777)
    }
}

/// Resolves the sources of `req` in `src`: see the module documentation for the rules. Fails
/// when a source (other than a wildcard) is missing or hidden by `.dockerignore`, naming the
/// source as written.
pub fn select(src: &Source<'_>, req: &CopyRequest) -> Result<Selection, CopyError> {
    let view = View::new(src);
    let exclude = if req.exclude.is_empty() {
        None
    } else {
        Some(PatternMatcher::new(&req.exclude).map_err(CopyError::Exclude)?)
    };
    let mut items = Vec::new();
    for written in &req.sources {
        if !req.parents {
            let filters = Filters {
                include: None,
                include_prefix: Vec::new(),
                exclude: exclude.as_ref(),
            };
            let normalized = paths::normalize_source(written);
            for matched in source::expand(&view, &normalized, written, src.follow_root_symlinks)? {
                items.push(item(&view, src, req, &matched, written, &filters)?);
            }
            continue;
        }
        // `--parents`: copy the directory before an optional `/./` pivot (the root without
        // one), keeping only what matches the rest, as an include pattern.
        let (parent, pattern) = written.split_once("/./").unwrap_or(("/", written.as_str()));
        let parent = paths::normalize_source(parent);
        let pattern = paths::normalize_source(pattern)
            .trim_start_matches('/')
            .to_string();
        let include =
            PatternMatcher::new(&[&pattern]).map_err(|error| CopyError::ParentsPattern {
                source_path: written.clone(),
                error,
            })?;
        let filters = Filters {
            include: Some(&include),
            include_prefix: source::literal_prefix(&pattern),
            exclude: exclude.as_ref(),
        };
        for matched in source::expand(&view, &parent, written, src.follow_root_symlinks)? {
            items.push(item(&view, src, req, &matched, written, &filters)?);
        }
        // Without wildcards the named path must exist (BuildKit's `RequiredPaths`).
        if !paths::has_wildcards(&parent) && !paths::has_wildcards(&pattern) {
            let required = Path::new(parent.trim_start_matches('/')).join(&pattern);
            if view.resolve(&required, true)?.is_none() {
                return Err(view.not_found(written, &required));
            }
        }
    }
    Ok(Selection {
        items,
        chown: req.chown,
        chmod: req.chmod,
        preserve_owners: src.preserve_owners,
        instruction: req.instruction(),
    })
}

/// Resolves one matched source and, for a directory, walks what it copies.
fn item(
    view: &View<'_>,
    src: &Source<'_>,
    req: &CopyRequest,
    matched: &Path,
    written: &str,
    filters: &Filters<'_>,
) -> Result<Item, CopyError> {
    let Some((resolved, stat)) = view.resolve(matched, src.follow_root_symlinks)? else {
        return Err(view.not_found(written, matched));
    };
    let mut kind = stat.kind();
    let mut entries = Vec::new();
    if kind == EntryKind::Dir {
        entries = source::walk_dir(view, &resolved, filters)?;
    } else if kind == EntryKind::File
        && req.unpack_archives
        && archive::is_archive(&view.host(&resolved))?
    {
        kind = EntryKind::Archive;
    }
    Ok(Item {
        matched: matched.to_path_buf(),
        name: PathBuf::from(paths::base_name(matched)),
        resolved,
        stat,
        kind,
        entries,
    })
}
