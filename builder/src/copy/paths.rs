//! Path handling as BuildKit does it: lexical cleaning of instruction paths (`system.NormalizePath`),
//! wildcard detection, and symlink resolution scoped to a root directory (continuity's
//! `fs.RootPath`), which never reaches outside the root.

use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use super::error::{CopyError, IoContext, is_missing};
pub(crate) use crate::go::path::clean;

/// A source path as BuildKit's frontend normalizes it (`NormalizePath("/", src)`): made absolute
/// and cleaned, so `../x`, `./x/` and `/x` all mean `/x`.
pub(crate) fn normalize_source(src: &str) -> String {
    clean(&format!("/{src}"))
}

/// The destination of a COPY as BuildKit's `pathRelativeToWorkingDir` computes it: a relative
/// destination is joined to the working directory, the result cleaned, and a trailing `/` (or
/// `/.`) kept because it means "a directory". `.` and the empty string mean `./`.
pub(crate) fn normalize_dest(dest: &str, workdir: &str) -> String {
    let dest = if dest.is_empty() || dest == "." {
        "./"
    } else {
        dest
    };
    let joined = if dest.starts_with('/') {
        dest.to_string()
    } else {
        format!("/{workdir}/{dest}")
    };
    let mut out = clean(&joined);
    if dest.ends_with('/') {
        if !out.ends_with('/') {
            out.push('/');
        }
    } else if dest.ends_with("/.") {
        if out != "/" {
            out.push('/');
        }
        out.push('.');
    }
    out
}

/// Whether a normalized destination names a directory by its spelling (ends in `/` or `/.`).
pub(crate) fn dest_is_dir_like(dest: &str) -> bool {
    dest.ends_with('/') || dest.ends_with("/.")
}

/// BuildKit's `containsWildcards`: an unescaped `*`, `?` or `[`.
pub(crate) fn has_wildcards(s: &str) -> bool {
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 1,
            b'*' | b'?' | b'[' => return true,
            _ => {}
        }
        i += 1;
    }
    false
}

/// Joins relative path components with `/`, for pattern matching and messages.
pub(crate) fn slash(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

/// A path inside a root, shown as the image (or source) sees it: `/` + the relative path.
pub(crate) fn in_root(root: &Path, host: &Path) -> String {
    match host.strip_prefix(root) {
        Ok(rel) => format!("/{}", slash(rel)),
        Err(_) => slash(host),
    }
}

/// What a lookup found at a path while resolving.
pub(crate) enum Node {
    /// Nothing there (or a non-directory on the way).
    Missing,
    /// A symlink with this target.
    Symlink(PathBuf),
    /// Anything else.
    Other,
}

/// What happens when `..` (in the path or a symlink target) would go above the root.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Above {
    /// Stay at the root, as a chroot does (`fs.RootPath`).
    Clamp,
    /// Fail: used for archive extraction, as BuildKit's `resolveRootPath` does.
    Reject,
}

/// The result of [`resolve`].
pub(crate) struct Resolved {
    /// The resolved path, relative to the root, free of symlinks up to the first missing
    /// component.
    pub rel: PathBuf,
    /// False when a component was missing: the rest was appended lexically.
    pub complete: bool,
}

/// Why [`resolve`] stopped early.
pub(crate) enum ResolveError {
    /// More than 255 symlinks.
    Loop,
    /// `..` would leave the root and `Above::Reject` was asked for.
    Escape,
    /// The lookup failed.
    Lookup(CopyError),
}

/// Resolves `path` (taken as relative to a root, a leading `/` ignored) inside that root: every
/// symlink met is followed, an absolute target restarting at the root, and `..` never leaves
/// the root. The last component is followed only with `follow_leaf`. `lookup` is called with
/// root-relative paths. Once a component is missing, the rest is appended lexically.
pub(crate) fn resolve(
    path: &Path,
    follow_leaf: bool,
    above: Above,
    mut lookup: impl FnMut(&Path) -> Result<Node, CopyError>,
) -> Result<Resolved, ResolveError> {
    let mut pending: VecDeque<OsString> = components(path).collect();
    let mut out = PathBuf::new();
    let mut complete = true;
    let mut links = 0;
    while let Some(part) = pending.pop_front() {
        if part == ".." {
            if !out.pop() && above == Above::Reject {
                return Err(ResolveError::Escape);
            }
            continue;
        }
        let candidate = out.join(&part);
        if !complete || (pending.is_empty() && !follow_leaf) {
            out = candidate;
            continue;
        }
        match lookup(&candidate).map_err(ResolveError::Lookup)? {
            Node::Missing => {
                complete = false;
                out = candidate;
            }
            Node::Other => out = candidate,
            Node::Symlink(target) => {
                links += 1;
                if links > 255 {
                    return Err(ResolveError::Loop);
                }
                if target.is_absolute() {
                    out.clear();
                }
                let mut next: VecDeque<OsString> = components(&target).collect();
                next.extend(pending.drain(..));
                pending = next;
            }
        }
    }
    Ok(Resolved { rel: out, complete })
}

/// The components of a path as names and `..`, dropping `/` and `.`.
fn components(path: &Path) -> impl Iterator<Item = OsString> + '_ {
    path.components().filter_map(|c| match c {
        Component::Normal(name) => Some(name.to_os_string()),
        Component::ParentDir => Some(OsString::from("..")),
        Component::RootDir | Component::CurDir | Component::Prefix(_) => None,
    })
}

/// Looks a root-relative path up on disk for [`resolve`], without any filtering.
pub(crate) fn lookup_on_disk(root: &Path, rel: &Path) -> Result<Node, CopyError> {
    let host = root.join(rel);
    match fs::symlink_metadata(&host) {
        Ok(meta) if meta.file_type().is_symlink() => {
            Ok(Node::Symlink(fs::read_link(&host).at("readlink", &host)?))
        }
        Ok(_) => Ok(Node::Other),
        Err(e) if is_missing(&e) => Ok(Node::Missing),
        Err(e) => Err(e).at("stat", &host),
    }
}

/// Resolves `path` inside `root` the way BuildKit resolves a COPY destination in the image
/// (continuity's `fs.RootPath`): symlinks are followed, the last component included, but always
/// within `root` (an absolute target means root-relative, `..` stops at the root). Missing
/// components are appended as written. Returns the host path.
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// std::fs::create_dir(dir.path().join("opt"))?;
/// std::os::unix::fs::symlink("/opt", dir.path().join("usr"))?;
/// let p = builder::copy::resolve_in_root(dir.path(), "/usr/../../usr/local")?;
/// assert_eq!(p, dir.path().join("opt/local"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn resolve_in_root(root: &Path, path: &str) -> Result<PathBuf, CopyError> {
    match resolve(Path::new(path), true, Above::Clamp, |rel| {
        lookup_on_disk(root, rel)
    }) {
        Ok(resolved) => Ok(root.join(resolved.rel)),
        Err(ResolveError::Loop) | Err(ResolveError::Escape) => Err(CopyError::SymlinkLoop {
            path: path.to_string(),
        }),
        Err(ResolveError::Lookup(e)) => Err(e),
    }
}

/// The bytes of a path, for byte-wise matching and encoding.
pub(crate) fn bytes(path: &Path) -> &[u8] {
    path.as_os_str().as_bytes()
}

/// The last component of a path, or the empty name for the root.
pub(crate) fn base_name(path: &Path) -> OsString {
    path.file_name()
        .map(OsStr::to_os_string)
        .unwrap_or_default()
}
