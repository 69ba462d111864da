//! `.dockerignore` handling, with the semantics of moby/patternmatcher (what BuildKit and the
//! docker CLI use) and its `ignorefile.ReadAll`.
//!
//! * [`read_ignore_file`] turns the bytes of an ignore file into patterns, and [`load_for`] picks
//!   the file that applies to a build (`<Dockerfile>.dockerignore` beside the Dockerfile wins over
//!   `<context>/.dockerignore`).
//! * [`PatternMatcher`] answers "is this context path ignored?". Patterns are tried in order and
//!   the last one that matches wins: an ordinary pattern ignores, a `!` pattern re-includes. A
//!   pattern matches a path when it matches the path itself or any of its parent directories.
//!
//! Pattern syntax, as patternmatcher implements it on Unix:
//!
//! * `*` matches any run of characters except `/`, `?` any one character except `/`.
//! * `**` matches any number of directories: `**/foo` matches `foo` and `a/b/foo`, `dir/**`
//!   matches everything under `dir` (but not `dir` itself).
//! * `[...]` is a character class (`[a-z]`, `[^a-z]`), `\x` matches `x` literally.
//! * Patterns are whitespace-trimmed and cleaned like Go's `filepath.Clean` (so `a/` is `a`,
//!   `./a/../b` is `b`); a malformed pattern (for instance an unterminated `[`) is an error.
//!
//! patternmatcher implements matching by translating each pattern into a Go regular expression
//! (or, for simple patterns, a plain string comparison). The translation passes character
//! classes and `\`-escapes through to Go's regexp syntax, which leaks some regexp behaviour into
//! `.dockerignore` files: `\d` is a digit class, `[[:alpha:]]` a POSIX class, a `^` outside a
//! class anchors, `[z-a]` fails only when a path is matched, and `*` or `?` inside a class
//! turn into regexp text. This module reproduces that: it builds the same expression text and
//! runs it through a small engine for the part of Go's regexp syntax such text can contain. The
//! one thing it does not support is `\p{...}`/`\pL` Unicode classes, which are reported as a bad
//! pattern instead.

use std::fs;
use std::io;
use std::path::Path;

/// Why a pattern set could not be built or matched.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IgnoreError {
    /// A pattern is malformed. Go's `filepath.Match` syntax check rejects it (reported by
    /// [`PatternMatcher::new`]), or the regular expression patternmatcher derives from it does
    /// not compile (reported when a path is matched against it, as upstream does). Either way
    /// upstream answers `filepath.ErrBadPattern`.
    #[error("invalid .dockerignore pattern `{pattern}`: {reason}")]
    BadPattern {
        /// The pattern as written (whitespace-trimmed).
        pattern: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A pattern is a lone `!`, which would re-include nothing.
    #[error("illegal exclusion pattern: \"!\"")]
    LoneExclamation,
    /// A [`MatchInfo`] passed to [`PatternMatcher::matches_using_parent_result`] was produced by
    /// a matcher with a different number of patterns.
    #[error("match info holds {got} pattern results, but the matcher has {expected} patterns")]
    MatchInfoMismatch {
        /// Number of patterns in the matcher.
        expected: usize,
        /// Number of results in the match info.
        got: usize,
    },
}

impl IgnoreError {
    /// True for [`IgnoreError::BadPattern`], the case where upstream returns Go's
    /// `filepath.ErrBadPattern`.
    pub fn is_bad_pattern(&self) -> bool {
        matches!(self, IgnoreError::BadPattern { .. })
    }
}

// -------------------------------------------------------------------------------------------
// Reading ignore files
// -------------------------------------------------------------------------------------------

/// Parses the bytes of a `.dockerignore` file into patterns, as `ignorefile.ReadAll` does.
///
/// Lines are split on `\n` (a trailing `\r` is dropped) and a UTF-8 byte-order mark at the start
/// of the first line is removed. A line whose first character is `#` is a comment. Other lines
/// are whitespace-trimmed and skipped when empty. A leading `!` (exclusion) is kept and the rest
/// is trimmed again; the pattern is then cleaned like Go's `filepath.Clean`, and one leading `/`
/// is removed (patterns are relative to the context root). So `! /a/b/` becomes `!a/b`, and a
/// lone `!` stays `!` (which [`PatternMatcher::new`] then rejects).
///
/// Bytes that are not UTF-8 are replaced with U+FFFD. Unlike Go's `bufio.Scanner`, lines longer
/// than 64 KiB are accepted.
pub fn read_ignore_file(bytes: &[u8]) -> Vec<String> {
    let mut patterns = Vec::new();
    let mut segments: Vec<&[u8]> = bytes.split(|&b| b == b'\n').collect();
    // A final newline ends the last line; it does not start an empty one.
    if segments.last().is_some_and(|s| s.is_empty()) {
        segments.pop();
    }
    for (index, segment) in segments.into_iter().enumerate() {
        let mut line = segment.strip_suffix(b"\r").unwrap_or(segment);
        if index == 0 {
            line = line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line);
        }
        let line = String::from_utf8_lossy(line);
        if line.starts_with('#') {
            continue;
        }
        let mut pattern = line.trim();
        if pattern.is_empty() {
            continue;
        }
        let exclusion = match pattern.strip_prefix('!') {
            Some(rest) => {
                pattern = rest.trim();
                true
            }
            None => false,
        };
        let mut cleaned = String::new();
        if !pattern.is_empty() {
            cleaned = crate::go::path::clean(pattern);
            if cleaned.len() > 1 && cleaned.starts_with('/') {
                cleaned.remove(0);
            }
        }
        if exclusion {
            cleaned.insert(0, '!');
        }
        patterns.push(cleaned);
    }
    patterns
}

/// Loads the ignore patterns that apply to a build: `<dockerfile name>.dockerignore` in the
/// Dockerfile's directory (for `ci/app.Dockerfile` that is `ci/app.Dockerfile.dockerignore`) if
/// it exists, otherwise `<context>/.dockerignore`, otherwise none. This is BuildKit's rule; the
/// two files are never merged, and an existing but empty Dockerfile-specific file still wins.
///
/// `dockerfile` is used as given, so a relative path is relative to the current directory;
/// resolve it against the context first if that is what it means. Errors other than "not found"
/// are returned, with the offending path in the message.
pub fn load_for(context: &Path, dockerfile: &Path) -> io::Result<Vec<String>> {
    if let Some(name) = dockerfile.file_name() {
        let mut specific = name.to_os_string();
        specific.push(".dockerignore");
        let candidate = dockerfile.with_file_name(specific);
        if let Some(bytes) = read_if_exists(&candidate)? {
            return Ok(read_ignore_file(&bytes));
        }
    }
    let root = context.join(".dockerignore");
    Ok(read_if_exists(&root)?
        .map(|bytes| read_ignore_file(&bytes))
        .unwrap_or_default())
}

fn read_if_exists(path: &Path) -> io::Result<Option<Vec<u8>>> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io::Error::new(
            e.kind(),
            format!("reading {}: {e}", path.display()),
        )),
    }
}

// -------------------------------------------------------------------------------------------
// The matcher
// -------------------------------------------------------------------------------------------

/// A compiled list of `.dockerignore` patterns (patternmatcher's `PatternMatcher`).
///
/// Paths are `/`-separated and relative to the context root (`src/main.rs`), used as given:
/// they are not cleaned.
///
/// A context walk passes each directory's [`MatchInfo`] to its children and prunes with
/// [`PatternMatcher::can_skip_dir`]:
///
/// ```
/// use builder::dockerfile::ignore::{MatchInfo, PatternMatcher};
///
/// let pm = PatternMatcher::new(&["node_modules", "**/*.log", "!keep.log"])?;
/// let (ignored, info) = pm.matches_using_parent_result("node_modules", &MatchInfo::new())?;
/// assert!(ignored && pm.can_skip_dir("node_modules", &info)); // no need to descend
///
/// let (_, src) = pm.matches_using_parent_result("src", &MatchInfo::new())?;
/// assert!(pm.matches_using_parent_result("src/debug.log", &src)?.0);
/// assert!(!pm.matches_using_parent_result("src/main.rs", &src)?.0);
/// assert!(!pm.matches_or_parent_matches("keep.log")?);
/// // Without `**/`, a wildcard pattern only applies at the context root.
/// assert!(!PatternMatcher::new(&["*.log"])?.matches_or_parent_matches("src/debug.log")?);
/// # Ok::<(), builder::dockerfile::ignore::IgnoreError>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct PatternMatcher {
    patterns: Vec<Pattern>,
    exclusions: bool,
}

/// Per-pattern results for one path, to pass to
/// [`PatternMatcher::matches_using_parent_result`] for that path's children.
///
/// Entry `i` records whether pattern `i` matches the path or one of its parent directories; a
/// child inherits every `true` without re-evaluating. The default (empty) value means "no
/// information": use it for top-level entries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MatchInfo {
    matched: Vec<bool>,
}

impl MatchInfo {
    /// The "no parent information" value, for entries at the context root.
    pub fn new() -> Self {
        Self::default()
    }
}

#[derive(Debug, Clone)]
struct Pattern {
    /// As written (trimmed), for error messages.
    source: String,
    /// Cleaned, without the leading `!`.
    cleaned: String,
    exclusion: bool,
    /// Number of `/`-separated components (only the deprecated `Matches` uses it).
    dirs: usize,
    matcher: Matcher,
}

#[derive(Debug, Clone)]
enum Matcher {
    Exact,
    Prefix,
    Suffix,
    Regexp(goregex::Program),
    /// The derived regexp does not compile; every match attempt fails with this reason.
    Invalid(String),
}

impl Pattern {
    fn is_match(&self, path: &str) -> Result<bool, IgnoreError> {
        let pattern = self.cleaned.as_bytes();
        let path_bytes = path.as_bytes();
        match &self.matcher {
            Matcher::Exact => Ok(path == self.cleaned),
            Matcher::Prefix => {
                // `dir/**`: strip the trailing `**`.
                let prefix = pattern
                    .get(..pattern.len().saturating_sub(2))
                    .unwrap_or(&[]);
                Ok(path_bytes.starts_with(prefix))
            }
            Matcher::Suffix => {
                // `**/foo`: strip the leading `**` (bytes, as Go slices them); `**/foo` also
                // matches `foo` itself.
                let suffix = pattern.get(2..).unwrap_or(&[]);
                Ok(path_bytes.ends_with(suffix)
                    || (suffix.first() == Some(&b'/') && suffix.get(1..) == Some(path_bytes)))
            }
            Matcher::Regexp(program) => Ok(program.is_match(path)),
            Matcher::Invalid(reason) => Err(IgnoreError::BadPattern {
                pattern: self.source.clone(),
                reason: reason.clone(),
            }),
        }
    }

    /// Whether this pattern might match some path strictly below `dir`. May answer `true`
    /// when it cannot (it is used to decide that skipping a directory is safe).
    fn may_match_below(&self, dir: &str) -> bool {
        let below = format!("{dir}/");
        match &self.matcher {
            Matcher::Exact => self.cleaned.starts_with(&below),
            Matcher::Prefix => {
                let prefix = self.cleaned.as_bytes();
                let prefix = prefix.get(..prefix.len().saturating_sub(2)).unwrap_or(&[]);
                prefix.starts_with(below.as_bytes()) || below.as_bytes().starts_with(prefix)
            }
            // Any suffix can be appended below a directory.
            Matcher::Suffix => true,
            Matcher::Regexp(program) => program.may_match_with_prefix(&below),
            Matcher::Invalid(_) => true,
        }
    }

    /// Matches the path itself, then (when that fails) each parent directory prefix, as
    /// `MatchesOrParentMatches` does. Errors from parent prefixes are ignored, as upstream.
    fn matches_self_or_parent(&self, path: &str, parent: &str) -> Result<bool, IgnoreError> {
        if self.is_match(path)? {
            return Ok(true);
        }
        Ok(parent != "." && any_parent_prefix(parent, |p| self.is_match(p).unwrap_or(false)))
    }
}

/// Calls `f` on `a`, `a/b`, `a/b/c` for `parent == "a/b/c"`, stopping at the first `true`.
fn any_parent_prefix(parent: &str, mut f: impl FnMut(&str) -> bool) -> bool {
    let mut prefix = String::with_capacity(parent.len());
    for (i, part) in parent.split('/').enumerate() {
        if i > 0 {
            prefix.push('/');
        }
        prefix.push_str(part);
        if f(&prefix) {
            return true;
        }
    }
    false
}

impl PatternMatcher {
    /// Compiles patterns (patternmatcher's `New`). Each pattern is whitespace-trimmed (empty
    /// ones are dropped) and cleaned like Go's `filepath.Clean`; a leading `!` makes it an
    /// exclusion. Fails on a lone `!` and on patterns Go's `filepath.Match` rejects (for example
    /// an unterminated `[`). A pattern whose derived regular expression does not compile is
    /// accepted here and fails when matched, as upstream.
    pub fn new(patterns: &[impl AsRef<str>]) -> Result<Self, IgnoreError> {
        let mut out = PatternMatcher::default();
        for raw in patterns {
            let trimmed = raw.as_ref().trim();
            if trimmed.is_empty() {
                continue;
            }
            let cleaned = crate::go::path::clean(trimmed);
            let (exclusion, body) = match cleaned.strip_prefix('!') {
                Some("") => return Err(IgnoreError::LoneExclamation),
                Some(rest) => (true, rest.to_string()),
                None => (false, cleaned),
            };
            check_glob_syntax(&body).map_err(|reason| IgnoreError::BadPattern {
                pattern: trimmed.to_string(),
                reason,
            })?;
            let (strategy, regexp) = translate(&body, '/');
            let matcher = match strategy {
                MatchStrategy::Exact => Matcher::Exact,
                MatchStrategy::Prefix => Matcher::Prefix,
                MatchStrategy::Suffix => Matcher::Suffix,
                MatchStrategy::Regexp => match goregex::Program::compile(&regexp) {
                    Ok(program) => Matcher::Regexp(program),
                    Err(e) => Matcher::Invalid(format!(
                        "Go's regexp rejects its translation `{regexp}`: {e}"
                    )),
                },
            };
            out.exclusions |= exclusion;
            out.patterns.push(Pattern {
                source: trimmed.to_string(),
                dirs: body.split('/').count(),
                cleaned: body,
                exclusion,
                matcher,
            });
        }
        Ok(out)
    }

    /// Number of patterns kept (after dropping empty ones).
    pub fn len(&self) -> usize {
        self.patterns.len()
    }

    /// True when there are no patterns, so nothing is ignored.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// True if any pattern is a `!` exclusion. Without exclusions everything below an ignored
    /// directory is ignored too, so a walker can skip it wholesale; with them it must ask
    /// [`PatternMatcher::can_skip_dir`].
    pub fn exclusions(&self) -> bool {
        self.exclusions
    }

    /// Whether `path` is ignored (patternmatcher's `MatchesOrParentMatches`). Patterns are tried
    /// in order; each matches when it matches `path` or one of its parent directory prefixes,
    /// and the last match decides (`!` re-includes). Fails with
    /// [`IgnoreError::BadPattern`] when a pattern that has to be consulted cannot be compiled.
    pub fn matches_or_parent_matches(&self, path: &str) -> Result<bool, IgnoreError> {
        let parent = crate::go::path::dir(path);
        let mut matched = false;
        for pattern in &self.patterns {
            // An inclusion cannot change an already-ignored result, nor an exclusion a
            // not-ignored one; upstream skips them (and so never reports their errors).
            if pattern.exclusion != matched {
                continue;
            }
            if pattern.matches_self_or_parent(path, &parent)? {
                matched = !pattern.exclusion;
            }
        }
        Ok(matched)
    }

    /// The incremental form of [`PatternMatcher::matches_or_parent_matches`] for a directory
    /// walk (BuildKit's `MatchesUsingParentResults`): `parent` is the [`MatchInfo`] returned for
    /// the parent directory of `path` (its `filepath.Dir`), or [`MatchInfo::new`] for entries at
    /// the root (then parents are checked by matching their prefixes). Returns whether `path`
    /// is ignored and the info to pass to its children.
    ///
    /// Patterns that matched a parent are not evaluated again. Unlike upstream, every pattern's
    /// result is recorded, including patterns that the ordering made irrelevant for this path,
    /// so the answer is always the same as `matches_or_parent_matches` (upstream's can differ
    /// for `a`, `!a/b`, `a` on `a/b`). Errors are reported exactly when
    /// `matches_or_parent_matches` reports them.
    ///
    /// For a directory, follow up with [`PatternMatcher::can_skip_dir`] to prune the walk.
    pub fn matches_using_parent_result(
        &self,
        path: &str,
        parent: &MatchInfo,
    ) -> Result<(bool, MatchInfo), IgnoreError> {
        let known = !parent.matched.is_empty();
        if known && parent.matched.len() != self.patterns.len() {
            return Err(IgnoreError::MatchInfoMismatch {
                expected: self.patterns.len(),
                got: parent.matched.len(),
            });
        }
        let parent_dir = if known {
            String::new()
        } else {
            crate::go::path::dir(path)
        };
        let mut info = MatchInfo {
            matched: Vec::with_capacity(self.patterns.len()),
        };
        let mut matched = false;
        for (i, pattern) in self.patterns.iter().enumerate() {
            let consulted = pattern.exclusion == matched;
            let hit = if parent.matched.get(i).copied().unwrap_or(false) {
                true
            } else {
                let result = if known {
                    pattern.is_match(path)
                } else {
                    pattern.matches_self_or_parent(path, &parent_dir)
                };
                match result {
                    Ok(hit) => hit,
                    Err(e) if consulted => return Err(e),
                    // Not consulted here: upstream would not have evaluated it.
                    Err(_) => false,
                }
            };
            info.matched.push(hit);
            if hit {
                matched = !pattern.exclusion;
            }
        }
        Ok((matched, info))
    }

    /// Whether a walker may skip everything below directory `dir`: true when `dir` is ignored
    /// and no path under it can be re-included. `info` must be what
    /// [`PatternMatcher::matches_using_parent_result`] returned for `dir`.
    ///
    /// Without exclusions this is just "`dir` is ignored". With exclusions, `dir` can still be
    /// skipped when no `!` pattern after the last pattern that ignores it could match anything
    /// below it (so `node_modules` + `!src/keep.txt` skips `node_modules`). The check is
    /// conservative: it may answer `false` when skipping would have been safe, never the
    /// reverse.
    pub fn can_skip_dir(&self, dir: &str, info: &MatchInfo) -> bool {
        if info.matched.len() != self.patterns.len() {
            return false;
        }
        // The last pattern matching `dir` decides its result, and it matches every path below.
        let Some(last) = info.matched.iter().rposition(|&hit| hit) else {
            return false;
        };
        let Some(deciding) = self.patterns.get(last) else {
            return false;
        };
        if deciding.exclusion {
            return false;
        }
        // With exclusions, the patterns consulted below `dir` can differ from those consulted
        // for `dir`; an uncompilable one must be allowed to report its error there.
        if self.exclusions
            && self
                .patterns
                .iter()
                .any(|p| matches!(p.matcher, Matcher::Invalid(_)))
        {
            return false;
        }
        // Only a later exclusion can override it below `dir`.
        self.patterns
            .iter()
            .skip(last + 1)
            .all(|p| !p.exclusion || !p.may_match_below(dir))
    }

    /// The deprecated `PatternMatcher.Matches`: like `matches_or_parent_matches`, but only the
    /// parent prefix with as many components as the pattern is tried.
    fn legacy_matches_cleaned(&self, file: &str) -> Result<bool, IgnoreError> {
        let parent = crate::go::path::dir(file);
        let parent_dirs: Vec<&str> = parent.split('/').collect();
        let mut matched = false;
        for pattern in &self.patterns {
            if pattern.exclusion != matched {
                continue;
            }
            let mut hit = pattern.is_match(file)?;
            if !hit && parent != "." {
                if let Some(dirs) = parent_dirs.get(..pattern.dirs) {
                    hit = pattern.is_match(&dirs.join("/")).unwrap_or(false);
                }
            }
            if hit {
                matched = !pattern.exclusion;
            }
        }
        Ok(matched)
    }
}

/// patternmatcher's deprecated package-level `Matches(file, patterns)`, kept for its test data:
/// compiles `patterns`, cleans `path` (`.` is never ignored), and checks the path and only one
/// parent prefix, the one with as many components as each pattern. Use [`PatternMatcher`].
pub fn legacy_matches(path: &str, patterns: &[&str]) -> Result<bool, IgnoreError> {
    let matcher = PatternMatcher::new(patterns)?;
    let file = crate::go::path::clean(path);
    if file == "." {
        return Ok(false);
    }
    matcher.legacy_matches_cleaned(&file)
}

// -------------------------------------------------------------------------------------------
// Pattern translation (patternmatcher's `compile`)
// -------------------------------------------------------------------------------------------

/// How patternmatcher evaluates a pattern: a string comparison when it can, a regular
/// expression otherwise. See [`translate_pattern`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchStrategy {
    /// The path must equal the pattern (no wildcards).
    Exact,
    /// `dir/**` with no other wildcard: the path must start with `dir/`.
    Prefix,
    /// Starts with `**` and has no other wildcard: the path must end with the rest (so `**file`
    /// matches `xfile`, unlike the regexp it would otherwise get), and `**/foo` matches `foo`.
    Suffix,
    /// Anything else: an anchored regular expression.
    Regexp,
}

impl MatchStrategy {
    /// The upstream name (`exactMatch`, `prefixMatch`, `suffixMatch`, `regexpMatch`).
    pub fn go_name(self) -> &'static str {
        match self {
            MatchStrategy::Exact => "exactMatch",
            MatchStrategy::Prefix => "prefixMatch",
            MatchStrategy::Suffix => "suffixMatch",
            MatchStrategy::Regexp => "regexpMatch",
        }
    }
}

/// Diagnostic view of how patternmatcher compiles one already-cleaned pattern (without its
/// `!`) for path separator `separator` (`'/'`; `'\\'` gives the Windows form). Returns the
/// strategy and, for [`MatchStrategy::Regexp`], the Go regular expression text.
pub fn translate_pattern(pattern: &str, separator: char) -> (MatchStrategy, Option<String>) {
    let (strategy, regexp) = translate(pattern, separator);
    (
        strategy,
        (strategy == MatchStrategy::Regexp).then_some(regexp),
    )
}

fn translate(pattern: &str, sep: char) -> (MatchStrategy, String) {
    let esc_sep = if sep == '\\' {
        "\\\\".to_string()
    } else {
        sep.to_string()
    };
    let mut re = String::from("^");
    let mut strategy = MatchStrategy::Exact;
    let mut chars = pattern.chars().peekable();
    // Go's text/scanner skips a byte-order mark at the start.
    if chars.peek() == Some(&'\u{feff}') {
        chars.next();
    }
    let mut index = 0usize;
    while let Some(ch) = chars.next() {
        match ch {
            '*' if chars.peek() == Some(&'*') => {
                chars.next();
                // `**/` is treated as `**`.
                if chars.peek() == Some(&sep) {
                    chars.next();
                }
                if chars.peek().is_none() {
                    if strategy == MatchStrategy::Exact {
                        strategy = MatchStrategy::Prefix;
                    } else {
                        re.push_str(".*");
                        strategy = MatchStrategy::Regexp;
                    }
                } else {
                    re.push_str(&format!("(.*{esc_sep})?"));
                    strategy = MatchStrategy::Regexp;
                }
                if index == 0 {
                    strategy = MatchStrategy::Suffix;
                }
            }
            '*' => {
                re.push_str(&format!("[^{esc_sep}]*"));
                strategy = MatchStrategy::Regexp;
            }
            '?' => {
                re.push_str(&format!("[^{esc_sep}]"));
                strategy = MatchStrategy::Regexp;
            }
            '.' | '+' | '(' | ')' | '|' | '{' | '}' | '$' => {
                re.push('\\');
                re.push(ch);
            }
            '\\' if sep == '\\' => re.push_str(&esc_sep),
            '\\' => match chars.next() {
                Some(next) => {
                    re.push('\\');
                    re.push(next);
                    strategy = MatchStrategy::Regexp;
                }
                None => re.push('\\'),
            },
            '[' | ']' => {
                re.push(ch);
                strategy = MatchStrategy::Regexp;
            }
            _ => re.push(ch),
        }
        index += 1;
    }
    if strategy == MatchStrategy::Regexp {
        re.push('$');
    }
    (strategy, re)
}

/// Fails where Go's `filepath.Match` returns `ErrBadPattern`, saying why.
fn check_glob_syntax(pattern: &str) -> Result<(), String> {
    crate::go::glob::check_syntax(pattern.as_bytes()).map_err(|e| e.0.to_string())
}

// -------------------------------------------------------------------------------------------
// The subset of Go's regexp that patternmatcher's translations can contain
// -------------------------------------------------------------------------------------------

mod goregex {
    //! Parses Go (RE2) regular-expression syntax as `regexp.Compile` does (Perl flags: `.`
    //! excludes `\n`, negated classes include it, `^`/`$` are text anchors) and matches with a
    //! Thompson NFA, so time is linear in the text. Supported: literals and escapes, `.`,
    //! classes with ranges, negation, `\d\s\w` and POSIX `[:name:]` classes, groups, `*` `+`
    //! `?` (and their lazy forms, which do not change whether a match exists), `^` `$` `\A`
    //! `\z` `\b` `\B` and `\Q...\E`. Not supported (reported as errors): alternation, counted
    //! repetition, `(?` groups and `\p` Unicode classes, none of which a translated
    //! `.dockerignore` pattern can produce except `\p`.

    type Ranges = Vec<(u32, u32)>;

    const MAX_RUNE: u32 = 0x10_FFFF;
    const MAX_DEPTH: usize = 1000;

    /// A compiled expression.
    #[derive(Debug, Clone)]
    pub(super) struct Program {
        insts: Vec<Inst>,
    }

    #[derive(Debug, Clone)]
    enum Inst {
        Char(Ranges),
        Split(usize, usize),
        Jmp(usize),
        Assert(Assertion),
        Match,
    }

    #[derive(Debug, Clone, Copy)]
    enum Assertion {
        BeginText,
        EndText,
        WordBoundary,
        NotWordBoundary,
    }

    #[derive(Debug)]
    enum Node {
        Chars(Ranges),
        Assert(Assertion),
        Concat(Vec<Node>),
        Repeat(Box<Node>, Repetition),
    }

    #[derive(Debug, Clone, Copy)]
    enum Repetition {
        Star,
        Plus,
        Quest,
    }

    impl Program {
        /// Compiles `source`; the error text follows Go's messages.
        pub(super) fn compile(source: &str) -> Result<Self, String> {
            let chars: Vec<char> = source.chars().collect();
            let mut parser = Parser {
                src: &chars,
                pos: 0,
            };
            let node = parser.sequence(0)?;
            let mut insts = Vec::new();
            emit(&node, &mut insts);
            insts.push(Inst::Match);
            Ok(Program { insts })
        }

        /// Whether the expression matches somewhere in `text` (Go's `MatchString`; the
        /// translations start with `^`, so in practice a match at the start).
        pub(super) fn is_match(&self, text: &str) -> bool {
            self.run(text, false)
        }

        /// Whether some text starting with `prefix` (and longer than it) might match.
        /// Conservative: may answer `true` when none does.
        pub(super) fn may_match_with_prefix(&self, prefix: &str) -> bool {
            self.run(prefix, true)
        }

        fn run(&self, text: &str, partial: bool) -> bool {
            let chars: Vec<char> = text.chars().collect();
            let mut current: Vec<usize> = Vec::new();
            let mut next: Vec<usize> = Vec::new();
            let mut seen = vec![0usize; self.insts.len()];
            let mut stack = Vec::new();
            let context = |pos: usize| Context {
                at_start: pos == 0,
                at_end: pos == chars.len() && !partial,
                unknown_next: pos == chars.len() && partial,
                prev: pos.checked_sub(1).and_then(|p| chars.get(p)).copied(),
                next: chars.get(pos).copied(),
            };
            let mut threads = Threads {
                seen: &mut seen,
                stack: &mut stack,
                generation: 1,
            };
            if threads.add(&self.insts, 0, &context(0), &mut current) {
                return true;
            }
            for (pos, &c) in chars.iter().enumerate() {
                if current.is_empty() {
                    return false;
                }
                threads.generation += 1;
                let ctx = context(pos + 1);
                next.clear();
                for &pc in &current {
                    if let Some(Inst::Char(ranges)) = self.insts.get(pc) {
                        if contains(ranges, c as u32)
                            && threads.add(&self.insts, pc + 1, &ctx, &mut next)
                        {
                            return true;
                        }
                    }
                }
                std::mem::swap(&mut current, &mut next);
            }
            partial && !current.is_empty()
        }
    }

    struct Context {
        at_start: bool,
        at_end: bool,
        /// Partial matching: more text follows, but it is unknown.
        unknown_next: bool,
        prev: Option<char>,
        next: Option<char>,
    }

    impl Context {
        fn holds(&self, assertion: Assertion) -> bool {
            let boundary = || is_word(self.prev) != is_word(self.next);
            match assertion {
                Assertion::BeginText => self.at_start,
                Assertion::EndText => self.at_end,
                Assertion::WordBoundary => self.unknown_next || boundary(),
                Assertion::NotWordBoundary => self.unknown_next || !boundary(),
            }
        }
    }

    fn is_word(c: Option<char>) -> bool {
        c.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
    }

    struct Threads<'a> {
        seen: &'a mut Vec<usize>,
        stack: &'a mut Vec<usize>,
        generation: usize,
    }

    impl Threads<'_> {
        /// Adds `start` and everything reachable from it without consuming a character to
        /// `list`; returns true if `Match` is reachable.
        fn add(
            &mut self,
            insts: &[Inst],
            start: usize,
            ctx: &Context,
            list: &mut Vec<usize>,
        ) -> bool {
            let mut matched = false;
            self.stack.clear();
            self.stack.push(start);
            while let Some(pc) = self.stack.pop() {
                let (Some(inst), Some(mark)) = (insts.get(pc), self.seen.get_mut(pc)) else {
                    continue;
                };
                if *mark == self.generation {
                    continue;
                }
                *mark = self.generation;
                match inst {
                    Inst::Char(_) => list.push(pc),
                    Inst::Match => matched = true,
                    Inst::Jmp(target) => self.stack.push(*target),
                    Inst::Split(a, b) => {
                        self.stack.push(*b);
                        self.stack.push(*a);
                    }
                    Inst::Assert(assertion) => {
                        if ctx.holds(*assertion) {
                            self.stack.push(pc + 1);
                        }
                    }
                }
            }
            matched
        }
    }

    fn contains(ranges: &[(u32, u32)], c: u32) -> bool {
        ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi)
    }

    fn emit(node: &Node, insts: &mut Vec<Inst>) {
        match node {
            Node::Chars(ranges) => insts.push(Inst::Char(ranges.clone())),
            Node::Assert(assertion) => insts.push(Inst::Assert(*assertion)),
            Node::Concat(items) => items.iter().for_each(|item| emit(item, insts)),
            Node::Repeat(inner, Repetition::Star) => {
                let split = insts.len();
                insts.push(Inst::Jmp(0)); // placeholder
                emit(inner, insts);
                insts.push(Inst::Jmp(split));
                let end = insts.len();
                insts[split] = Inst::Split(split + 1, end);
            }
            Node::Repeat(inner, Repetition::Plus) => {
                let start = insts.len();
                emit(inner, insts);
                let end = insts.len() + 1;
                insts.push(Inst::Split(start, end));
            }
            Node::Repeat(inner, Repetition::Quest) => {
                let split = insts.len();
                insts.push(Inst::Jmp(0)); // placeholder
                emit(inner, insts);
                let end = insts.len();
                insts[split] = Inst::Split(split + 1, end);
            }
        }
    }

    struct Parser<'a> {
        src: &'a [char],
        pos: usize,
    }

    impl Parser<'_> {
        fn peek(&self) -> Option<char> {
            self.src.get(self.pos).copied()
        }

        fn peek_at(&self, offset: usize) -> Option<char> {
            self.src.get(self.pos + offset).copied()
        }

        fn bump(&mut self) -> Option<char> {
            let c = self.peek();
            if c.is_some() {
                self.pos += 1;
            }
            c
        }

        fn text(&self, from: usize, to: usize) -> String {
            self.src
                .get(from..to.min(self.src.len()))
                .unwrap_or(&[])
                .iter()
                .collect()
        }

        /// A concatenation, up to the end (depth 0) or the `)` closing a group.
        fn sequence(&mut self, depth: usize) -> Result<Node, String> {
            if depth > MAX_DEPTH {
                return Err("expression nests too deeply".into());
            }
            let mut items: Vec<Node> = Vec::new();
            let mut after_repeat = false;
            loop {
                let Some(c) = self.peek() else {
                    if depth > 0 {
                        return Err("missing closing )".into());
                    }
                    break;
                };
                let start = self.pos;
                match c {
                    ')' if depth > 0 => {
                        self.pos += 1;
                        break;
                    }
                    ')' => return Err("unexpected )".into()),
                    '(' => {
                        self.pos += 1;
                        if self.peek() == Some('?') {
                            return Err("unsupported group syntax `(?`".into());
                        }
                        items.push(self.sequence(depth + 1)?);
                    }
                    '|' => return Err("unsupported alternation `|`".into()),
                    '*' | '+' | '?' => {
                        self.pos += 1;
                        if self.peek() == Some('?') {
                            self.pos += 1; // non-greedy: the same set of matches
                        }
                        if after_repeat {
                            return Err(format!(
                                "invalid nested repetition operator: `{}`",
                                self.text(start - 1, self.pos)
                            ));
                        }
                        let Some(operand) = items.pop() else {
                            return Err(format!(
                                "missing argument to repetition operator: `{}`",
                                self.text(start, self.pos)
                            ));
                        };
                        let repetition = match c {
                            '*' => Repetition::Star,
                            '+' => Repetition::Plus,
                            _ => Repetition::Quest,
                        };
                        items.push(Node::Repeat(Box::new(operand), repetition));
                        after_repeat = true;
                        continue;
                    }
                    '{' if self.counted_repetition_follows() => {
                        return Err("unsupported counted repetition `{n,m}`".into());
                    }
                    '^' => {
                        self.pos += 1;
                        items.push(Node::Assert(Assertion::BeginText));
                    }
                    '$' => {
                        self.pos += 1;
                        items.push(Node::Assert(Assertion::EndText));
                    }
                    '.' => {
                        self.pos += 1;
                        items.push(Node::Chars(complement(&[(10, 10)])));
                    }
                    '[' => items.push(Node::Chars(self.class()?)),
                    '\\' => self.backslash(&mut items)?,
                    _ => {
                        self.pos += 1;
                        items.push(literal(c as u32));
                    }
                }
                after_repeat = false;
            }
            Ok(Node::Concat(items))
        }

        /// At `{`: whether Go would read `{n}`, `{n,}` or `{n,m}` here (otherwise `{` is a
        /// literal).
        fn counted_repetition_follows(&self) -> bool {
            let mut i = 1;
            let digits = |i: &mut usize| {
                let start = *i;
                while self.peek_at(*i).is_some_and(|c| c.is_ascii_digit()) {
                    *i += 1;
                }
                *i > start
            };
            if !digits(&mut i) {
                return false;
            }
            if self.peek_at(i) == Some(',') {
                i += 1;
                digits(&mut i);
            }
            self.peek_at(i) == Some('}')
        }

        /// At `\` outside a class.
        fn backslash(&mut self, items: &mut Vec<Node>) -> Result<(), String> {
            let assertion = match self.peek_at(1) {
                Some('A') => Some(Assertion::BeginText),
                Some('z') => Some(Assertion::EndText),
                Some('b') => Some(Assertion::WordBoundary),
                Some('B') => Some(Assertion::NotWordBoundary),
                Some('C') => return Err("invalid escape sequence: `\\C`".into()),
                Some('Q') => {
                    // `\Q...\E`: literal text up to `\E` or the end.
                    self.pos += 2;
                    while let Some(c) = self.peek() {
                        if c == '\\' && self.peek_at(1) == Some('E') {
                            self.pos += 2;
                            break;
                        }
                        self.pos += 1;
                        items.push(literal(c as u32));
                    }
                    return Ok(());
                }
                Some(p @ ('p' | 'P')) => {
                    return Err(format!("Unicode class `\\{p}` is not supported"));
                }
                Some(c) => {
                    if let Some(ranges) = perl_class(c) {
                        self.pos += 2;
                        items.push(Node::Chars(ranges));
                        return Ok(());
                    }
                    None
                }
                None => None,
            };
            if let Some(assertion) = assertion {
                self.pos += 2;
                items.push(Node::Assert(assertion));
                return Ok(());
            }
            let c = self.escape()?;
            items.push(literal(c));
            Ok(())
        }

        /// Go's `parseEscape`, at `\`: a single escaped character.
        fn escape(&mut self) -> Result<u32, String> {
            let start = self.pos;
            self.pos += 1;
            let Some(c) = self.bump() else {
                return Err("trailing backslash at end of expression".into());
            };
            if c.is_ascii() && !c.is_ascii_alphanumeric() {
                return Ok(c as u32);
            }
            let octal = |c: Option<char>| c.and_then(|c| c.to_digit(8));
            let value = match c {
                '1'..='7' if octal(self.peek()).is_none() => None,
                '0'..='7' => {
                    let mut value = c.to_digit(8).unwrap_or(0);
                    for _ in 0..2 {
                        let Some(digit) = octal(self.peek()) else {
                            break;
                        };
                        value = value * 8 + digit;
                        self.pos += 1;
                    }
                    Some(value)
                }
                'x' => self.hex_escape(),
                'a' => Some(7),
                'f' => Some(12),
                'n' => Some(10),
                'r' => Some(13),
                't' => Some(9),
                'v' => Some(11),
                _ => None,
            };
            value
                .ok_or_else(|| format!("invalid escape sequence: `{}`", self.text(start, self.pos)))
        }

        /// After `\x`: two hex digits or `{hex}`.
        fn hex_escape(&mut self) -> Option<u32> {
            if self.peek() == Some('{') {
                self.pos += 1;
                let mut value: u32 = 0;
                let mut digits = 0;
                loop {
                    let c = self.bump()?;
                    if c == '}' {
                        break;
                    }
                    value = value.checked_mul(16)?.checked_add(c.to_digit(16)?)?;
                    if value > MAX_RUNE {
                        return None;
                    }
                    digits += 1;
                }
                return (digits > 0).then_some(value);
            }
            let high = self.bump()?.to_digit(16);
            let low = self.bump()?.to_digit(16);
            Some(high? * 16 + low?)
        }

        /// Go's `parseClass`, at `[`.
        fn class(&mut self) -> Result<Ranges, String> {
            let start = self.pos;
            self.pos += 1;
            let negated = self.peek() == Some('^');
            if negated {
                self.pos += 1;
            }
            let mut ranges: Ranges = Vec::new();
            let mut first = true; // `]` is literal as the first character
            while self.peek() != Some(']') || first {
                first = false;
                if self.peek() == Some('[') && self.peek_at(1) == Some(':') {
                    if let Some(named) = self.named_class()? {
                        ranges.extend(named);
                        continue;
                    }
                }
                if self.peek() == Some('\\') {
                    match self.peek_at(1) {
                        Some(p @ ('p' | 'P')) => {
                            return Err(format!("Unicode class `\\{p}` is not supported"));
                        }
                        Some(c) => {
                            if let Some(perl) = perl_class(c) {
                                self.pos += 2;
                                ranges.extend(perl);
                                continue;
                            }
                        }
                        None => {}
                    }
                }
                let range_start = self.pos;
                let lo = self.class_char(start)?;
                let mut hi = lo;
                if self.peek() == Some('-') && self.peek_at(1).is_some_and(|c| c != ']') {
                    self.pos += 1;
                    hi = self.class_char(start)?;
                    if hi < lo {
                        return Err(format!(
                            "invalid character class range: `{}`",
                            self.text(range_start, self.pos)
                        ));
                    }
                }
                ranges.push((lo, hi));
            }
            self.pos += 1; // `]`
            let ranges = normalize(ranges);
            Ok(if negated { complement(&ranges) } else { ranges })
        }

        fn class_char(&mut self, class_start: usize) -> Result<u32, String> {
            match self.peek() {
                None => Err(format!(
                    "missing closing ]: `{}`",
                    self.text(class_start, self.src.len())
                )),
                Some('\\') => self.escape(),
                Some(c) => {
                    self.pos += 1;
                    Ok(c as u32)
                }
            }
        }

        /// At `[:` inside a class: `[:name:]` (Go looks for the first `:]` anywhere after it;
        /// without one the `[` is an ordinary character).
        fn named_class(&mut self) -> Result<Option<Ranges>, String> {
            let rest = self.src.get(self.pos + 2..).unwrap_or(&[]);
            let Some(offset) = rest.windows(2).position(|w| w == [':', ']']) else {
                return Ok(None);
            };
            let end = self.pos + 2 + offset + 2;
            let name = self.text(self.pos, end);
            let ranges = posix_class(&name)
                .ok_or_else(|| format!("invalid character class range: `{name}`"))?;
            self.pos = end;
            Ok(Some(ranges))
        }
    }

    fn literal(c: u32) -> Node {
        Node::Chars(vec![(c, c)])
    }

    fn perl_class(c: char) -> Option<Ranges> {
        let (ranges, negated): (&[(u32, u32)], bool) = match c {
            'd' => (DIGIT, false),
            'D' => (DIGIT, true),
            's' => (PERL_SPACE, false),
            'S' => (PERL_SPACE, true),
            'w' => (WORD, false),
            'W' => (WORD, true),
            _ => return None,
        };
        Some(if negated {
            complement(ranges)
        } else {
            ranges.to_vec()
        })
    }

    const DIGIT: &[(u32, u32)] = &[(0x30, 0x39)];
    const PERL_SPACE: &[(u32, u32)] = &[(0x09, 0x0A), (0x0C, 0x0D), (0x20, 0x20)];
    const WORD: &[(u32, u32)] = &[(0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A)];

    /// `[:alpha:]`, `[:^alpha:]` and friends (ASCII, as in Go).
    fn posix_class(name: &str) -> Option<Ranges> {
        let inner = name.strip_prefix("[:")?.strip_suffix(":]")?;
        let (negated, inner) = match inner.strip_prefix('^') {
            Some(rest) => (true, rest),
            None => (false, inner),
        };
        let ranges: &[(u32, u32)] = match inner {
            "alnum" => &[(0x30, 0x39), (0x41, 0x5A), (0x61, 0x7A)],
            "alpha" => &[(0x41, 0x5A), (0x61, 0x7A)],
            "ascii" => &[(0x00, 0x7F)],
            "blank" => &[(0x09, 0x09), (0x20, 0x20)],
            "cntrl" => &[(0x00, 0x1F), (0x7F, 0x7F)],
            "digit" => DIGIT,
            "graph" => &[(0x21, 0x7E)],
            "lower" => &[(0x61, 0x7A)],
            "print" => &[(0x20, 0x7E)],
            "punct" => &[(0x21, 0x2F), (0x3A, 0x40), (0x5B, 0x60), (0x7B, 0x7E)],
            "space" => &[(0x09, 0x0D), (0x20, 0x20)],
            "upper" => &[(0x41, 0x5A)],
            "word" => WORD,
            "xdigit" => &[(0x30, 0x39), (0x41, 0x46), (0x61, 0x66)],
            _ => return None,
        };
        Some(if negated {
            complement(ranges)
        } else {
            ranges.to_vec()
        })
    }

    /// Sorted, merged ranges.
    fn normalize(mut ranges: Ranges) -> Ranges {
        ranges.sort_unstable();
        let mut out: Ranges = Vec::with_capacity(ranges.len());
        for (lo, hi) in ranges {
            match out.last_mut() {
                Some(last) if lo <= last.1.saturating_add(1) => last.1 = last.1.max(hi),
                _ => out.push((lo, hi)),
            }
        }
        out
    }

    fn complement(ranges: &[(u32, u32)]) -> Ranges {
        let mut out = Vec::new();
        let mut next = 0u32;
        for (lo, hi) in normalize(ranges.to_vec()) {
            if lo > next {
                out.push((next, lo - 1));
            }
            next = hi.saturating_add(1);
        }
        if next <= MAX_RUNE {
            out.push((next, MAX_RUNE));
        }
        out
    }
}

// -------------------------------------------------------------------------------------------
// Tests
// -------------------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;

    fn pm(patterns: &[&str]) -> PatternMatcher {
        PatternMatcher::new(patterns).unwrap()
    }

    fn ignored(patterns: &[&str], path: &str) -> bool {
        pm(patterns).matches_or_parent_matches(path).unwrap()
    }

    #[test]
    fn syntax_errors_name_the_pattern() {
        let err = PatternMatcher::new(&["ok", "[a"]).unwrap_err();
        assert!(err.is_bad_pattern());
        assert_eq!(
            err.to_string(),
            "invalid .dockerignore pattern `[a`: unterminated character class"
        );
        for bad in [
            "[", "[^", "[]a]", "[-x]", "[x-]", "[a-b-c]", "a\\", "x/[", "*[a",
        ] {
            assert!(
                PatternMatcher::new(&[bad]).is_err(),
                "{bad:?} should be rejected"
            );
        }
        for good in ["[*]", "[\\]a]", "[x\\-]", "a*b*[cd]", "[Local-Only]"] {
            assert!(
                PatternMatcher::new(&[good]).is_ok(),
                "{good:?} should be accepted"
            );
        }
        assert_eq!(
            PatternMatcher::new(&["!"]).unwrap_err(),
            IgnoreError::LoneExclamation
        );
        assert_eq!(pm(&["  ", "", " a "]).len(), 1);
    }

    #[test]
    fn regexp_compile_errors_surface_when_matching() {
        let m = pm(&["[z-a]x"]);
        for _ in 0..2 {
            let err = m.matches_or_parent_matches("zx").unwrap_err();
            assert!(err.is_bad_pattern(), "{err}");
            assert!(
                err.to_string().contains("invalid character class range"),
                "{err}"
            );
        }
        // A pattern the ordering skips is never evaluated, so its error does not surface.
        let m = pm(&["*", "[z-a]"]);
        assert!(m.matches_or_parent_matches("x").unwrap());
        assert!(
            m.matches_using_parent_result("x", &MatchInfo::new())
                .unwrap()
                .0
        );
        assert!(pm(&["a\\q"]).matches_or_parent_matches("aq").is_err());
        assert!(pm(&["[[:nope:]]"]).matches_or_parent_matches("a").is_err());
    }

    #[test]
    fn go_regexp_leaks_are_reproduced() {
        // `\d` is Go's digit class, not a literal `d`.
        assert!(ignored(&["a\\d"], "a5"));
        assert!(!ignored(&["a\\d"], "ad"));
        // POSIX classes pass through.
        assert!(ignored(&["[[:alpha:]]*"], "x1"));
        assert!(!ignored(&["[[:alpha:]]*"], "1x"));
        // `^` outside a class anchors at the start of the text, in a regexp pattern only.
        assert!(!ignored(&["a^*"], "a^b"));
        assert!(ignored(&["a^b"], "a^b"));
        // `[*]` becomes `[[^/]*]`: the class `[[^/]` repeated, then a literal `]`.
        assert!(!ignored(&["[*]"], "*"));
        assert!(ignored(&["[*]"], "[^]"));
        assert!(ignored(&["[*]"], "]"));
        // `\Q` quotes the rest of the translation, `$` included, so only a prefix is needed.
        assert!(ignored(&["a\\Qb"], "ab$"));
        assert!(ignored(&["a\\Qb"], "ab$xyz"));
        // Escaped punctuation is literal, control escapes and hex escapes are characters.
        assert!(ignored(&["a\\*b"], "a*b"));
        assert!(ignored(&["a\\tb"], "a\tb"));
        assert!(ignored(&["a\\x41"], "aA"));
        // Word boundaries.
        assert!(ignored(&["*\\bx*"], "a-xb"));
        assert!(!ignored(&["*\\bx*"], "axb"));
    }

    #[test]
    fn strategy_quirks() {
        // `**file` is a suffix match, so it also matches `xfile`.
        assert!(ignored(&["**file"], "xfile"));
        assert_eq!(translate_pattern("**file", '/').0, MatchStrategy::Suffix);
        assert_eq!(
            translate_pattern("**/dir2/*", '/'),
            (
                MatchStrategy::Regexp,
                Some("^(.*/)?dir2/[^/]*$".to_string())
            )
        );
        assert_eq!(
            translate_pattern("dir/**", '/'),
            (MatchStrategy::Prefix, None)
        );
        assert!(ignored(&["dir/**"], "dir/x"));
        assert!(!ignored(&["dir/**"], "dir"));
        assert!(!ignored(&["dir/**"], "dirx"));
    }

    #[test]
    fn exclusions_and_last_match_wins() {
        let patterns = ["*.md", "!README.md", "docs", "!docs/keep/**"];
        let m = pm(&patterns);
        assert!(m.exclusions());
        assert!(m.matches_or_parent_matches("CHANGES.md").unwrap());
        assert!(!m.matches_or_parent_matches("README.md").unwrap());
        assert!(m.matches_or_parent_matches("docs/a.txt").unwrap());
        assert!(!m.matches_or_parent_matches("docs/keep/a.txt").unwrap());
        assert!(!pm(&["docs"]).exclusions());
    }

    #[test]
    fn legacy_matches_checks_one_parent() {
        assert!(legacy_matches("a/b/c", &["a"]).unwrap());
        // `a/b` has two components, so only the parent `a/b` is tried for `a/b/c/d`.
        assert!(legacy_matches("a/b/c/d", &["a/b"]).unwrap());
        assert!(!legacy_matches("a/b/c/d", &["*/c"]).unwrap());
        assert!(pm(&["*/c"]).matches_or_parent_matches("a/c/d").unwrap());
        assert!(!legacy_matches(".", &["*"]).unwrap());
        assert!(legacy_matches("x", &["!"]).is_err());
    }

    const WALK_PATTERNS: &[&[&str]] = &[
        &["a", "!a/b", "a"],
        &["**", "!util/docker/web", "util/docker/web/foo"],
        &["node_modules", "!src/keep.txt"],
        &["*", "!*/keep*", "**/deep"],
        &["docs", "!docs/keep/**"],
        &["dir/**", "!dir/x*/y"],
        &["**/*.log", "!important/*.log", "important/secret*"],
        &["a?c", "![b-d]*/x", "**/z"],
        &["x", "!x/[Local-Only]"],
    ];

    const WALK_PATHS: &[&str] = &[
        "a",
        "a/b",
        "a/b/c",
        "a/c",
        "util/docker/web/foo",
        "util/docker/web/bar",
        "util/docker",
        "node_modules/pkg/index.js",
        "src/keep.txt",
        "src/other.txt",
        "src/keeper/x",
        "b/keep/deep",
        "b/deep/keep",
        "docs/keep/a",
        "docs/drop/a",
        "dir/x1/y",
        "dir/x1/z",
        "dir/q/y",
        "important/a.log",
        "important/secret.log",
        "other/a.log",
        "abc/x",
        "abc/y/z",
        "bbb/x",
        "x/L",
        "x/q",
    ];

    /// Feeds each path's parent chain through `matches_using_parent_result`, as a walker does.
    fn walk(m: &PatternMatcher, path: &str) -> Result<(bool, MatchInfo), IgnoreError> {
        let mut info = MatchInfo::new();
        let mut result = (false, MatchInfo::new());
        let mut prefix = String::new();
        for (i, part) in path.split('/').enumerate() {
            if i > 0 {
                prefix.push('/');
            }
            prefix.push_str(part);
            result = m.matches_using_parent_result(&prefix, &info)?;
            info = result.1.clone();
        }
        Ok(result)
    }

    #[test]
    fn parent_results_agree_with_matches_or_parent_matches() {
        for patterns in WALK_PATTERNS {
            let m = pm(patterns);
            for path in WALK_PATHS {
                let direct = m.matches_or_parent_matches(path);
                let walked = walk(&m, path).map(|(hit, _)| hit);
                let fresh = m
                    .matches_using_parent_result(path, &MatchInfo::new())
                    .map(|r| r.0);
                assert_eq!(direct, walked, "walk {patterns:?} {path}");
                assert_eq!(direct, fresh, "no context {patterns:?} {path}");
            }
        }
    }

    #[test]
    fn can_skip_dir_is_sound() {
        for patterns in WALK_PATTERNS {
            let m = pm(patterns);
            for path in WALK_PATHS {
                let parts: Vec<&str> = path.split('/').collect();
                for depth in 1..parts.len() {
                    let dir = parts[..depth].join("/");
                    let Ok((_, info)) = walk(&m, &dir) else {
                        continue;
                    };
                    if m.can_skip_dir(&dir, &info) {
                        assert_eq!(
                            m.matches_or_parent_matches(path),
                            Ok(true),
                            "{patterns:?}: skipped {dir} but {path} is not ignored"
                        );
                    }
                }
            }
        }
        let m = pm(&["node_modules", "!src/keep.txt"]);
        let (hit, info) = walk(&m, "node_modules").unwrap();
        assert!(hit && m.can_skip_dir("node_modules", &info));
        let m = pm(&["*", "!*/keep*"]);
        let (hit, info) = walk(&m, "src").unwrap();
        assert!(hit && !m.can_skip_dir("src", &info));
        let m = pm(&["dir/**", "!dir/x*/y"]);
        let (_, info) = walk(&m, "dir/q").unwrap();
        assert!(m.can_skip_dir("dir/q", &info));
        let (_, info) = walk(&m, "dir/x1").unwrap();
        assert!(!m.can_skip_dir("dir/x1", &info));
    }

    #[test]
    fn match_info_from_another_matcher_is_rejected() {
        let (_, info) = pm(&["a", "b"])
            .matches_using_parent_result("a", &MatchInfo::new())
            .unwrap();
        let err = pm(&["a"])
            .matches_using_parent_result("a/b", &info)
            .unwrap_err();
        assert_eq!(
            err,
            IgnoreError::MatchInfoMismatch {
                expected: 1,
                got: 2
            }
        );
    }

    #[test]
    fn read_ignore_file_rules() {
        let input =
            b"\xEF\xBB\xBF# comment\r\n  # not a comment\r\n/abs/\n\n! ./x/../y\n\t\n!\nlast";
        assert_eq!(
            read_ignore_file(input),
            ["# not a comment", "abs", "!y", "!", "last"]
        );
        assert!(read_ignore_file(b"").is_empty());
        assert_eq!(read_ignore_file(b"/\n"), ["/"]);
        // The BOM is only stripped from the first line.
        assert_eq!(read_ignore_file(b"a\n\xEF\xBB\xBFb"), ["a", "\u{feff}b"]);
    }

    /// A fresh directory under the system temp dir, removed on drop.
    struct TempDir(std::path::PathBuf);

    impl TempDir {
        fn new(tag: &str) -> Self {
            use std::sync::atomic::{AtomicUsize, Ordering};
            static COUNTER: AtomicUsize = AtomicUsize::new(0);
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0);
            let name = format!(
                "hoist-ignore-{tag}-{}-{nanos}-{}",
                std::process::id(),
                COUNTER.fetch_add(1, Ordering::Relaxed)
            );
            let dir = std::env::temp_dir().join(name);
            fs::create_dir(&dir).unwrap();
            TempDir(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn load_for_prefers_the_dockerfile_specific_file() {
        let tmp = TempDir::new("specific");
        let context = tmp.0.join("ctx");
        let build = tmp.0.join("build");
        fs::create_dir_all(&context).unwrap();
        fs::create_dir_all(&build).unwrap();
        fs::write(context.join(".dockerignore"), "from-context\n").unwrap();
        let dockerfile = build.join("app.Dockerfile");
        fs::write(&dockerfile, "FROM scratch\n").unwrap();

        // Only the context file exists.
        assert_eq!(load_for(&context, &dockerfile).unwrap(), ["from-context"]);

        // The Dockerfile-specific one wins, and the files are not merged.
        fs::write(
            build.join("app.Dockerfile.dockerignore"),
            "/specific/\n!keep\n",
        )
        .unwrap();
        assert_eq!(
            load_for(&context, &dockerfile).unwrap(),
            ["specific", "!keep"]
        );

        // Another Dockerfile in the same directory does not pick it up.
        let other = build.join("Dockerfile");
        assert_eq!(load_for(&context, &other).unwrap(), ["from-context"]);

        // An empty specific file still wins.
        fs::write(build.join("app.Dockerfile.dockerignore"), "").unwrap();
        assert!(load_for(&context, &dockerfile).unwrap().is_empty());
    }

    #[test]
    fn load_for_without_ignore_files_and_with_errors() {
        let tmp = TempDir::new("none");
        let dockerfile = tmp.0.join("Dockerfile");
        assert!(load_for(&tmp.0, &dockerfile).unwrap().is_empty());
        // A directory where the file should be is an error naming the path.
        fs::create_dir(tmp.0.join(".dockerignore")).unwrap();
        let err = load_for(&tmp.0, &dockerfile).unwrap_err();
        assert!(err.to_string().contains(".dockerignore"), "{err}");
    }
}
