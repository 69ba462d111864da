//! Physical lines: reading them, comments, line continuation and parser directives.

use super::{MAX_LINE_LENGTH, ParseError};

/// Hands out physical lines, newline included, as BuildKit's line scanner does. Invalid UTF-8
/// is replaced with U+FFFD. A line longer than [`MAX_LINE_LENGTH`] ends the input (like a
/// `bufio.Scanner` error) and is remembered, see [`Scanner::too_long`].
pub(super) struct Scanner<'a> {
    data: &'a [u8],
    pos: usize,
    too_long: bool,
    invalid_utf8: bool,
}

impl<'a> Scanner<'a> {
    pub(super) fn new(data: &'a [u8]) -> Self {
        Scanner {
            data,
            pos: 0,
            too_long: false,
            invalid_utf8: false,
        }
    }

    /// The next line including its `\n` (the last line may have none), or None at the end
    /// of the input or at a line that is too long.
    pub(super) fn next_line(&mut self) -> Option<String> {
        if self.too_long {
            return None;
        }
        let rest = self.data.get(self.pos..)?;
        if rest.is_empty() {
            return None;
        }
        let (content_len, token_len) = match rest.iter().position(|&b| b == b'\n') {
            Some(i) => (i, i + 1),
            None => (rest.len(), rest.len()),
        };
        if content_len > MAX_LINE_LENGTH {
            self.too_long = true;
            return None;
        }
        let token = rest.get(..token_len)?;
        self.pos += token_len;
        Some(match std::str::from_utf8(token) {
            Ok(s) => s.to_string(),
            Err(_) => {
                self.invalid_utf8 = true;
                String::from_utf8_lossy(token).into_owned()
            }
        })
    }

    /// Whether the input stopped at a line longer than [`MAX_LINE_LENGTH`].
    pub(super) fn too_long(&self) -> bool {
        self.too_long
    }

    /// Whether the last line handed out had invalid UTF-8 (and clears the flag).
    pub(super) fn take_invalid_utf8(&mut self) -> bool {
        std::mem::take(&mut self.invalid_utf8)
    }
}

/// Removes trailing `\r` and `\n` characters (all of them, as Go's `bytes.TrimRight`).
pub(super) fn trim_newline(s: &str) -> &str {
    s.trim_end_matches(['\r', '\n'])
}

/// A comment line: `#` is its first non-whitespace character.
pub(super) fn is_comment(s: &str) -> bool {
    s.trim_start().starts_with('#')
}

/// The text of a comment line as BuildKit records it for `PrevComment`: the raw line minus
/// its first character, trimmed (so an indented `  # x` gives `# x`, as upstream).
pub(super) fn comment_text(raw: &str) -> String {
    let mut chars = raw.chars();
    chars.next();
    chars.as_str().trim().to_string()
}

/// Line continuation (BuildKit's regex `([^E])E[ \t]*$|^E[ \t]*$` with E the escape
/// character): returns the line without the escape character and the spaces/tabs after it,
/// and false; or the line unchanged and true (end of the logical line).
pub(super) fn trim_continuation(line: &str, escape: char) -> (&str, bool) {
    let trimmed = line.trim_end_matches([' ', '\t']);
    if let Some(before) = trimmed.strip_suffix(escape) {
        if before.is_empty() || !before.ends_with(escape) {
            return (before, false);
        }
    }
    (line, true)
}

/// Go's regexp `\s`: `[\t\n\f\r ]`.
fn is_re_space(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\u{0c}' | '\r' | ' ')
}

/// Matches `^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$` (Go RE2 leftmost-first semantics)
/// and returns the key and the value.
pub(super) fn match_directive(line: &str) -> Option<(&str, &str)> {
    let rest = line.strip_prefix('#')?.trim_start_matches(is_re_space);
    let key_len = rest
        .bytes()
        .enumerate()
        .take_while(|&(i, b)| {
            if i == 0 {
                b.is_ascii_alphabetic()
            } else {
                b.is_ascii_alphanumeric()
            }
        })
        .count();
    if key_len == 0 {
        return None;
    }
    let key = rest.get(..key_len)?;
    let after = rest
        .get(key_len..)?
        .trim_start_matches(is_re_space)
        .strip_prefix('=')?;
    let value = after.trim_start_matches(is_re_space);
    if value.is_empty() {
        // Only whitespace after `=`: `\s*` gives back its last character to `.+?`.
        let last = after.chars().next_back()?;
        return Some((key, after.get(after.len() - last.len_utf8()..)?));
    }
    Some((key, value.trim_end_matches(is_re_space)))
}

/// BuildKit's `DirectiveParser`: directives are recognised only until the first line that is
/// not one; each may appear once.
#[derive(Default)]
pub(super) struct DirectiveState {
    done: bool,
    /// `(name, value, line)` in file order.
    pub(super) found: Vec<(String, String, usize)>,
}

impl DirectiveState {
    /// Looks at a first line (newline removed, left-trimmed). Returns the directive found, if
    /// any; fails on a repeated directive or a bad escape character.
    pub(super) fn check(
        &mut self,
        line: &str,
        line_no: usize,
    ) -> Result<Option<(String, String)>, ParseError> {
        if self.done {
            return Ok(None);
        }
        let Some((key, value)) = match_directive(line) else {
            self.done = true;
            return Ok(None);
        };
        let name = key.to_ascii_lowercase();
        if !matches!(name.as_str(), "syntax" | "escape" | "check") {
            self.done = true;
            return Ok(None);
        }
        if self.found.iter().any(|(n, _, _)| *n == name) {
            return Err(ParseError::DuplicateDirective {
                line: line_no,
                name,
            });
        }
        if name == "escape" && value != "`" && value != "\\" {
            return Err(ParseError::InvalidEscape {
                line: line_no,
                value: value.to_string(),
            });
        }
        self.found.push((name.clone(), value.to_string(), line_no));
        Ok(Some((name, value.to_string())))
    }
}
