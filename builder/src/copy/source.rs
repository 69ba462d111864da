//! The source side: a view of the source root with `.dockerignore` applied, symlink resolution
//! inside it, wildcard expansion, and the walk that lists what a directory source copies.

use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::OsString;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::error::{CopyError, IoContext, is_missing};
use super::paths::{self, Above, Node, ResolveError, slash};
use super::{EntryKind, Source};
use crate::dockerfile::ignore::{MatchInfo, PatternMatcher};

/// The `lstat` fields we use, copied out of `std::fs::Metadata`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Stat {
    pub dev: u64,
    pub ino: u64,
    pub mode: u32,
    pub nlink: u64,
    pub uid: u32,
    pub gid: u32,
    pub rdev: u64,
    pub size: u64,
    pub atime: (i64, i64),
    pub mtime: (i64, i64),
    pub ctime: (i64, i64),
}

const S_IFMT: u32 = 0o170_000;
const S_IFDIR: u32 = 0o040_000;
const S_IFREG: u32 = 0o100_000;
const S_IFLNK: u32 = 0o120_000;

impl Stat {
    pub(crate) fn of(m: &fs::Metadata) -> Self {
        Stat {
            dev: m.dev(),
            ino: m.ino(),
            mode: m.mode(),
            nlink: m.nlink(),
            uid: m.uid(),
            gid: m.gid(),
            rdev: m.rdev(),
            size: m.size(),
            atime: (m.atime(), m.atime_nsec()),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
        }
    }

    pub(crate) fn is_dir(&self) -> bool {
        self.mode & S_IFMT == S_IFDIR
    }

    pub(crate) fn is_file(&self) -> bool {
        self.mode & S_IFMT == S_IFREG
    }

    pub(crate) fn is_symlink(&self) -> bool {
        self.mode & S_IFMT == S_IFLNK
    }

    /// The permission bits with setuid, setgid and sticky.
    pub(crate) fn perm(&self) -> u32 {
        self.mode & 0o7777
    }

    pub(crate) fn kind(&self) -> EntryKind {
        match self.mode & S_IFMT {
            S_IFDIR => EntryKind::Dir,
            S_IFREG => EntryKind::File,
            S_IFLNK => EntryKind::Symlink,
            _ => EntryKind::Special,
        }
    }
}

/// Extended attributes of a path (not following a symlink), sorted by name. A filesystem
/// without them has none.
pub(crate) fn xattrs(host: &Path) -> Result<Vec<(OsString, Vec<u8>)>, CopyError> {
    use std::os::unix::ffi::OsStrExt;
    let unsupported =
        |e: rustix::io::Errno| e == rustix::io::Errno::NOTSUP || e == rustix::io::Errno::OPNOTSUPP;
    let size = match rustix::fs::llistxattr_query(host) {
        Ok(0) => return Ok(Vec::new()),
        Ok(n) => n,
        Err(e) if unsupported(e) => return Ok(Vec::new()),
        Err(e) => return Err(e).at("list xattrs of", host),
    };
    let mut list = vec![0; size];
    let len = rustix::fs::llistxattr(host, &mut list[..]).at("list xattrs of", host)?;
    list.truncate(len);
    let mut out = Vec::new();
    for name in list.split(|&b| b == 0).filter(|n| !n.is_empty()) {
        let name = std::ffi::OsStr::from_bytes(name);
        let size = rustix::fs::lgetxattr_query(host, name).at("read xattr of", host)?;
        let mut value = vec![0; size];
        let len = rustix::fs::lgetxattr(host, name, &mut value[..]).at("read xattr of", host)?;
        value.truncate(len);
        out.push((name.to_os_string(), value));
    }
    out.sort();
    Ok(out)
}

/// The source root as the build sees it: with a `.dockerignore` matcher, ignored files are
/// absent, and an ignored directory exists only if some path below it is re-included by a `!`
/// pattern (as BuildKit's context transfer sends it).
pub(crate) struct View<'a> {
    root: &'a Path,
    ignore: Option<&'a PatternMatcher>,
    /// Ignored directories already checked for re-included descendants.
    dirs: RefCell<HashMap<PathBuf, bool>>,
}

impl<'a> View<'a> {
    pub(crate) fn new(src: &Source<'a>) -> Self {
        View {
            root: src.root,
            ignore: src.ignore,
            dirs: RefCell::new(HashMap::new()),
        }
    }

    pub(crate) fn host(&self, rel: &Path) -> PathBuf {
        self.root.join(rel)
    }

    /// `lstat` of a root-relative path; `None` when it is absent or hidden.
    pub(crate) fn lstat(&self, rel: &Path) -> Result<Option<Stat>, CopyError> {
        let host = self.host(rel);
        let stat = match fs::symlink_metadata(&host) {
            Ok(m) => Stat::of(&m),
            Err(e) if is_missing(&e) => return Ok(None),
            Err(e) => return Err(e).at("stat", &host),
        };
        Ok(self.visible(rel, stat.is_dir())?.then_some(stat))
    }

    /// Whether a path that exists on disk is part of the source.
    fn visible(&self, rel: &Path, is_dir: bool) -> Result<bool, CopyError> {
        let Some(pm) = self.ignore else {
            return Ok(true);
        };
        if rel.as_os_str().is_empty() {
            return Ok(true);
        }
        let path = slash(rel);
        if !pm.matches_or_parent_matches(&path)? {
            return Ok(true);
        }
        if !is_dir || !pm.exclusions() {
            return Ok(false);
        }
        if let Some(&known) = self.dirs.borrow().get(rel) {
            return Ok(known);
        }
        let (_, info) = pm.matches_using_parent_result(&path, &MatchInfo::new())?;
        let mut visible = false;
        if !pm.can_skip_dir(&path, &info) {
            let host = self.host(rel);
            for entry in fs::read_dir(&host).at("read directory", &host)? {
                let entry = entry.at("read directory", &host)?;
                let is_dir = entry.file_type().at("stat", entry.path())?.is_dir();
                if self.visible(&rel.join(entry.file_name()), is_dir)? {
                    visible = true;
                    break;
                }
            }
        }
        self.dirs.borrow_mut().insert(rel.to_path_buf(), visible);
        Ok(visible)
    }

    /// The visible entries of a directory, sorted by name (as Go's `os.ReadDir`).
    pub(crate) fn read_dir(&self, rel: &Path) -> Result<Vec<(OsString, Stat)>, CopyError> {
        let host = self.host(rel);
        let mut out = Vec::new();
        for entry in fs::read_dir(&host).at("read directory", &host)? {
            let entry = entry.at("read directory", &host)?;
            let stat = Stat::of(&entry.metadata().at("stat", entry.path())?);
            let name = entry.file_name();
            if self.visible(&rel.join(&name), stat.is_dir())? {
                out.push((name, stat));
            }
        }
        out.sort_by(|a, b| paths::bytes(Path::new(&a.0)).cmp(paths::bytes(Path::new(&b.0))));
        Ok(out)
    }

    /// Resolves a root-relative path inside the source, following symlinks (the last one only
    /// with `follow_leaf`); `None` when something on the way is absent or hidden.
    pub(crate) fn resolve(
        &self,
        rel: &Path,
        follow_leaf: bool,
    ) -> Result<Option<(PathBuf, Stat)>, CopyError> {
        let resolved = paths::resolve(rel, follow_leaf, Above::Clamp, |p| {
            Ok(match self.lstat(p)? {
                None => Node::Missing,
                Some(st) if st.is_symlink() => {
                    let host = self.host(p);
                    Node::Symlink(fs::read_link(&host).at("readlink", &host)?)
                }
                Some(_) => Node::Other,
            })
        });
        let resolved = match resolved {
            Ok(r) => r,
            Err(ResolveError::Lookup(e)) => return Err(e),
            Err(ResolveError::Loop) | Err(ResolveError::Escape) => {
                return Err(CopyError::SymlinkLoop { path: slash(rel) });
            }
        };
        if !resolved.complete {
            return Ok(None);
        }
        Ok(self.lstat(&resolved.rel)?.map(|st| (resolved.rel, st)))
    }

    /// The error for a source that is not there, noting when `.dockerignore` is the reason.
    pub(crate) fn not_found(&self, written: &str, rel: &Path) -> CopyError {
        let ignored = self.ignore.is_some() && fs::symlink_metadata(self.host(rel)).is_ok();
        CopyError::NotFound {
            source_path: written.to_string(),
            ignored,
        }
    }
}

/// Expands one normalized source path (`/a/b*/c`) as BuildKit's `ResolveWildcards` does: the
/// components before the first one with a wildcard are resolved (following symlinks), then the
/// tree below is walked, without following symlinks, and every path whose remainder matches
/// the rest of the pattern (Go's `filepath.Match`) is a match; a matched directory is not
/// descended into. Without wildcards the path itself is the only match (checked later).
pub(crate) fn expand(
    view: &View<'_>,
    normalized: &str,
    written: &str,
    follow: bool,
) -> Result<Vec<PathBuf>, CopyError> {
    let parts: Vec<&str> = normalized.split('/').filter(|p| !p.is_empty()).collect();
    let Some(first) = parts.iter().position(|p| paths::has_wildcards(p)) else {
        return Ok(vec![PathBuf::from(parts.join("/"))]);
    };
    let base = PathBuf::from(parts[..first].join("/"));
    let pattern = parts[first..].join("/");
    let Some((base, stat)) = view.resolve(&base, follow)? else {
        return Err(view.not_found(written, &base));
    };
    let mut out = Vec::new();
    if stat.is_dir() {
        // A class can match `/`, so a match may be deeper than the pattern's slashes say.
        let depth = pattern.matches('/').count() + pattern.matches('[').count() + 1;
        walk_matches(
            view,
            &base,
            Path::new(""),
            pattern.as_bytes(),
            depth,
            &mut out,
        )?;
    }
    Ok(out)
}

fn walk_matches(
    view: &View<'_>,
    base: &Path,
    rel: &Path,
    pattern: &[u8],
    depth: usize,
    out: &mut Vec<PathBuf>,
) -> Result<(), CopyError> {
    for (name, stat) in view.read_dir(&base.join(rel))? {
        let child = rel.join(&name);
        // Go's walk ignores a bad-pattern error: it is simply no match.
        if crate::go::glob::matches(pattern, paths::bytes(&child)).unwrap_or(false) {
            out.push(base.join(&child));
        } else if stat.is_dir() && child.components().count() < depth {
            walk_matches(view, base, &child, pattern, depth, out)?;
        }
    }
    Ok(())
}

/// Which paths below a directory source are copied: fsutil's include patterns (`--parents`)
/// and exclude patterns (`--exclude`), both relative to the copied directory.
pub(crate) struct Filters<'p> {
    pub include: Option<&'p PatternMatcher>,
    /// Literal leading components of the include pattern, to skip directories that cannot
    /// hold a match.
    pub include_prefix: Vec<String>,
    pub exclude: Option<&'p PatternMatcher>,
}

/// One path below a directory source.
#[derive(Clone, Debug)]
pub(crate) struct Entry {
    /// Relative to the directory source (and to where its contents go).
    pub rel: PathBuf,
    pub stat: Stat,
    /// A directory that is not itself selected but holds selected paths (it is created with
    /// the source's metadata, as fsutil's `createParentDirs` does).
    pub implied: bool,
    /// For a file with other hard links already copied: the index of the first one.
    pub link_to: Option<usize>,
}

/// Lists what a directory source copies, parents before children, names sorted.
pub(crate) fn walk_dir(
    view: &View<'_>,
    dir: &Path,
    filters: &Filters<'_>,
) -> Result<Vec<Entry>, CopyError> {
    let mut out = Vec::new();
    walk_level(
        view,
        dir,
        Path::new(""),
        &MatchInfo::new(),
        &MatchInfo::new(),
        filters,
        &mut out,
    )?;
    // fsutil keeps hard links inside one copy: the first path of an inode is copied, the
    // others link to it.
    let mut first: HashMap<(u64, u64), usize> = HashMap::new();
    for (i, entry) in out.iter_mut().enumerate() {
        if entry.stat.is_file() && entry.stat.nlink > 1 {
            match first.get(&(entry.stat.dev, entry.stat.ino)) {
                Some(&j) => entry.link_to = Some(j),
                None => {
                    first.insert((entry.stat.dev, entry.stat.ino), i);
                }
            }
        }
    }
    Ok(out)
}

/// Walks one directory level; returns whether anything was selected.
fn walk_level(
    view: &View<'_>,
    dir: &Path,
    rel: &Path,
    include_info: &MatchInfo,
    exclude_info: &MatchInfo,
    filters: &Filters<'_>,
    out: &mut Vec<Entry>,
) -> Result<bool, CopyError> {
    let mut any = false;
    for (name, stat) in view.read_dir(&dir.join(rel))? {
        let child = rel.join(&name);
        let path = slash(&child);
        let (included, include_info) = match filters.include {
            Some(pm) => pm.matches_using_parent_result(&path, include_info)?,
            None => (true, MatchInfo::new()),
        };
        let (excluded, exclude_info) = match filters.exclude {
            Some(pm) => pm
                .matches_using_parent_result(&path, exclude_info)
                .map_err(CopyError::Exclude)?,
            None => (false, MatchInfo::new()),
        };
        let selected = included && !excluded;
        let mut entry = Entry {
            rel: child.clone(),
            stat,
            implied: false,
            link_to: None,
        };
        if !stat.is_dir() {
            if selected {
                out.push(entry);
                any = true;
            }
            continue;
        }
        if !selected {
            let cannot_include = excluded
                && filters
                    .exclude
                    .is_some_and(|pm| pm.can_skip_dir(&path, &exclude_info));
            let outside_prefix = !included && !prefix_may_hold(&filters.include_prefix, &child);
            if cannot_include || outside_prefix {
                continue;
            }
            entry.implied = true;
        }
        let at = out.len();
        out.push(entry);
        let below = walk_level(
            view,
            dir,
            &child,
            &include_info,
            &exclude_info,
            filters,
            out,
        )?;
        if selected || below {
            any = true;
        } else {
            out.truncate(at);
        }
    }
    Ok(any)
}

/// Whether a directory could hold a path matching a pattern that starts with the literal
/// components `prefix`: the directory and the prefix must agree as far as both go.
fn prefix_may_hold(prefix: &[String], dir: &Path) -> bool {
    dir.components()
        .zip(prefix)
        .all(|(c, p)| c.as_os_str() == p.as_str())
}

/// The leading components of a pattern that contain nothing a pattern (or the regular
/// expression patternmatcher makes of it) could treat specially.
pub(crate) fn literal_prefix(pattern: &str) -> Vec<String> {
    // patternmatcher escapes `.` and `$`; the others reach Go's regexp syntax as they are.
    const SPECIAL: &[char] = &['*', '?', '[', ']', '\\', '^', '+', '(', ')', '{', '}', '|'];
    pattern
        .split('/')
        .take_while(|c| !c.is_empty() && !c.contains(SPECIAL))
        .map(str::to_string)
        .collect()
}
