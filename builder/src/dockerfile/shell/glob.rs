//! The pattern language of `${v#p}`, `${v%p}` and `${v/p/r}`.
//!
//! BuildKit's patterns are smaller than POSIX shell globs: `*` matches any run of characters,
//! `?` matches one character, a backslash makes the next character literal, and every other
//! character (including `[`, `]`, `{`, `}`, `.`, `|`) is literal. Bracket expressions are not
//! supported; `[a]` matches the three characters `[a]`.
//!
//! BuildKit turns the pattern into a Go regular expression, where `.` does not match a
//! newline; we keep that: `*` and `?` never match `\n`.

/// Whether `*` and `?` may match a newline (Go's `.` without the `s` flag does not).
const WILDCARD_MATCHES_NEWLINE: bool = false;

/// One element of a pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    /// This exact character.
    Lit(char),
    /// `?`: any one character.
    Any,
    /// `*`: any run of characters, possibly empty.
    Star,
}

/// A parsed pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Pattern {
    tokens: Vec<Token>,
}

fn wildcard_accepts(c: char) -> bool {
    WILDCARD_MATCHES_NEWLINE || c != '\n'
}

impl Pattern {
    /// Parses `text`, which still holds the backslash escapes the lexer kept for it.
    /// A backslash makes the next character literal whatever it is; a lone trailing
    /// backslash is a literal backslash.
    pub(super) fn parse(text: &str) -> Self {
        let mut tokens = Vec::new();
        let mut chars = text.chars();
        while let Some(c) = chars.next() {
            tokens.push(match c {
                '*' => Token::Star,
                '?' => Token::Any,
                '\\' => Token::Lit(chars.next().unwrap_or('\\')),
                other => Token::Lit(other),
            });
        }
        Pattern { tokens }
    }

    /// The same pattern read backwards, so that suffixes can be matched as prefixes.
    fn reversed(&self) -> Self {
        Pattern {
            tokens: self.tokens.iter().rev().copied().collect(),
        }
    }

    /// Every `end` (ascending) such that `text[start..end]` matches the whole pattern.
    fn match_ends(&self, text: &[char], start: usize) -> Vec<usize> {
        let len = self.tokens.len();
        // `states[j]`: the first `j` tokens have matched the text consumed so far.
        let mut states = vec![false; len + 1];
        states[0] = true;
        self.close(&mut states);
        let mut ends = Vec::new();
        if states[len] {
            ends.push(start);
        }
        for (offset, &c) in text.iter().enumerate().skip(start) {
            let mut next = vec![false; len + 1];
            for (j, token) in self.tokens.iter().enumerate() {
                if !states[j] {
                    continue;
                }
                match *token {
                    Token::Star if wildcard_accepts(c) => next[j] = true,
                    Token::Any if wildcard_accepts(c) => next[j + 1] = true,
                    Token::Lit(l) if l == c => next[j + 1] = true,
                    _ => {}
                }
            }
            self.close(&mut next);
            if !next.contains(&true) {
                break;
            }
            if next[len] {
                ends.push(offset + 1);
            }
            states = next;
        }
        ends
    }

    /// Adds the states reachable by letting `*` match nothing.
    fn close(&self, states: &mut [bool]) {
        for (j, token) in self.tokens.iter().enumerate() {
            if states[j] && *token == Token::Star {
                states[j + 1] = true;
            }
        }
    }

    /// `${v#p}` (`longest == false`) and `${v##p}` (`longest == true`): removes the shortest
    /// or longest prefix of `value` that matches; `value` is unchanged when none does.
    pub(super) fn trim_prefix(&self, value: &str, longest: bool) -> String {
        let text: Vec<char> = value.chars().collect();
        let ends = self.match_ends(&text, 0);
        let end = if longest { ends.last() } else { ends.first() };
        match end {
            Some(&end) => text[end..].iter().collect(),
            None => value.to_owned(),
        }
    }

    /// `${v%p}` and `${v%%p}`: removes the shortest or longest matching suffix.
    pub(super) fn trim_suffix(&self, value: &str, longest: bool) -> String {
        let reversed: String = value.chars().rev().collect();
        self.reversed()
            .trim_prefix(&reversed, longest)
            .chars()
            .rev()
            .collect()
    }

    /// The leftmost match at or after `from`, and at that start the longest one (what a
    /// leftmost-first regex engine with greedy `.*` finds for these patterns).
    fn find(&self, text: &[char], from: usize) -> Option<(usize, usize)> {
        (from..=text.len())
            .find_map(|start| self.match_ends(text, start).last().map(|&end| (start, end)))
    }

    /// `${v/p/r}` (first match) and `${v//p/r}` (every match). The replacement is inserted
    /// literally. With `all`, matches do not overlap, and an empty match right after the
    /// previous match is not replaced (Go's `ReplaceAll` rules), so an empty pattern puts
    /// `r` between every two characters and at both ends.
    pub(super) fn replace(&self, value: &str, replacement: &str, all: bool) -> String {
        let text: Vec<char> = value.chars().collect();
        let mut out = String::new();
        let mut copied = 0; // text[..copied] is already handled
        let mut from = 0;
        while from <= text.len() {
            let Some((start, end)) = self.find(&text, from) else {
                break;
            };
            out.extend(&text[copied..start]);
            if end > copied || start == 0 {
                out.push_str(replacement);
            }
            copied = end;
            if !all {
                break;
            }
            from = if end > from { end } else { from + 1 };
        }
        out.extend(&text[copied..]);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::Pattern;

    fn trim(pattern: &str, value: &str, suffix: bool, longest: bool) -> String {
        let p = Pattern::parse(pattern);
        if suffix {
            p.trim_suffix(value, longest)
        } else {
            p.trim_prefix(value, longest)
        }
    }

    #[test]
    fn shell_glob_trim() {
        assert_eq!(trim("*x*y", "xxyy", false, false), "y");
        assert_eq!(trim("*x*y", "xxyy", false, true), "");
        assert_eq!(trim("*", "abc", false, false), "abc");
        assert_eq!(trim("*", "abc", false, true), "");
        assert_eq!(trim("?", "abc", true, false), "ab");
        assert_eq!(trim("b*", "abcb", true, false), "abc");
        assert_eq!(trim("b*", "abcb", true, true), "a");
        assert_eq!(trim("[a]", "[a]b", false, false), "b");
        assert_eq!(trim("\\*", "**", false, true), "*");
        assert_eq!(trim("x", "abc", false, true), "abc");
    }

    #[test]
    fn shell_glob_wildcards_stop_at_newline() {
        assert_eq!(trim("*", "a\nb", false, true), "\nb");
        assert_eq!(trim("a?b", "a\nb", false, true), "a\nb");
        assert_eq!(trim("a\nb", "a\nbc", false, true), "c");
    }

    #[test]
    fn shell_glob_replace() {
        let p = Pattern::parse("a*");
        assert_eq!(p.replace("xabab", "-", false), "x-");
        let p = Pattern::parse("?");
        assert_eq!(p.replace("abc", "-", true), "---");
        let p = Pattern::parse("");
        assert_eq!(p.replace("ab", "-", true), "-a-b-");
        assert_eq!(p.replace("ab", "-", false), "-ab");
        assert_eq!(p.replace("", "-", true), "-");
        let p = Pattern::parse("b*");
        assert_eq!(p.replace("abcb", "X", true), "aX");
        let p = Pattern::parse("x*");
        assert_eq!(p.replace("axbxc", "-", true), "a-");
        let p = Pattern::parse("x");
        assert_eq!(p.replace("axbxc", "$1", true), "a$1b$1c");
    }
}
