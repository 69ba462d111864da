//! Go's `filepath.Match` (Unix flavour), which BuildKit uses to expand COPY/ADD wildcards.
//!
//! * `*` matches any run of non-`/` characters, `?` one non-`/` character.
//! * `[...]` is a character class of single characters and `lo-hi` ranges, `[^...]` its
//!   complement; a class can match `/` (Go does not exclude it).
//! * `\x` matches `x` literally, also inside classes.
//!
//! A malformed pattern (unterminated class, trailing `\`, empty class, `-` or `]` where a
//! character is expected) is reported as [`BadPattern`]; BuildKit's wildcard expansion ignores
//! that error, so such a pattern simply matches nothing there.

/// The pattern is malformed (Go's `filepath.ErrBadPattern`), with what is wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BadPattern(pub &'static str);

const UNTERMINATED: BadPattern = BadPattern("unterminated character class");

/// Fails where Go's `filepath.Match` returns `ErrBadPattern`. Since Go 1.16 that check covers
/// the whole pattern whatever the name, so matching against the empty name is a pure syntax
/// check.
pub(crate) fn check_syntax(pattern: &[u8]) -> Result<(), BadPattern> {
    matches(pattern, b"").map(|_| ())
}

/// Whether `name` matches all of `pattern`. Both are bytes, decoded as UTF-8 where a class or
/// `?` needs a character; invalid bytes count as U+FFFD, as in Go.
pub(crate) fn matches(pattern: &[u8], name: &[u8]) -> Result<bool, BadPattern> {
    let mut pattern = pattern;
    let mut name = name;
    'chunks: while !pattern.is_empty() {
        let (star, chunk, rest) = scan_chunk(pattern);
        pattern = rest;
        if star && chunk.is_empty() {
            // A trailing `*` matches the rest of the name unless it has a `/`.
            return Ok(!name.contains(&b'/'));
        }
        // Try the chunk at the current position; the last chunk must consume the whole name.
        if let Some(t) = match_chunk(chunk, name)? {
            if t.is_empty() || !pattern.is_empty() {
                name = t;
                continue;
            }
        }
        if star {
            // Let the star eat 1, 2, ... bytes, never a `/`.
            let mut i = 0;
            while i < name.len() && name[i] != b'/' {
                if let Some(t) = match_chunk(chunk, &name[i + 1..])? {
                    if !pattern.is_empty() || t.is_empty() {
                        name = t;
                        continue 'chunks;
                    }
                }
                i += 1;
            }
        }
        // No match: still report a malformed remainder, as Go does.
        while !pattern.is_empty() {
            let (_, chunk, rest) = scan_chunk(pattern);
            pattern = rest;
            match_chunk(chunk, b"")?;
        }
        return Ok(false);
    }
    Ok(name.is_empty())
}

/// Splits off leading stars and the chunk up to the next star outside a class.
fn scan_chunk(pattern: &[u8]) -> (bool, &[u8], &[u8]) {
    let mut pattern = pattern;
    let mut star = false;
    while let Some((b'*', rest)) = pattern.split_first() {
        pattern = rest;
        star = true;
    }
    let mut in_range = false;
    let mut i = 0;
    while i < pattern.len() {
        match pattern[i] {
            b'\\' if i + 1 < pattern.len() => i += 1,
            b'[' => in_range = true,
            b']' => in_range = false,
            b'*' if !in_range => break,
            _ => {}
        }
        i += 1;
    }
    (star, &pattern[..i], &pattern[i..])
}

/// Matches `chunk` (no stars outside classes) at the start of `s`; returns what is left of `s`.
/// After a mismatch the rest of the chunk is still checked for syntax, as Go does.
fn match_chunk<'s>(chunk: &[u8], s: &'s [u8]) -> Result<Option<&'s [u8]>, BadPattern> {
    let mut chunk = chunk;
    let mut s = s;
    let mut failed = false;
    while let Some(&c) = chunk.first() {
        if !failed && s.is_empty() {
            failed = true;
        }
        match c {
            b'[' => {
                let mut r = 0;
                if !failed {
                    let (rune, n) = decode(s);
                    r = rune;
                    s = &s[n..];
                }
                chunk = &chunk[1..];
                let negated = chunk.first() == Some(&b'^');
                if negated {
                    chunk = &chunk[1..];
                }
                let mut matched = false;
                let mut ranges = 0;
                loop {
                    if chunk.first() == Some(&b']') && ranges > 0 {
                        chunk = &chunk[1..];
                        break;
                    }
                    let (lo, rest) = class_char(chunk, ranges == 0)?;
                    chunk = rest;
                    let mut hi = lo;
                    if let Some((b'-', rest)) = chunk.split_first() {
                        let (h, rest) = class_char(rest, false)?;
                        hi = h;
                        chunk = rest;
                    }
                    if lo <= r && r <= hi {
                        matched = true;
                    }
                    ranges += 1;
                }
                if matched == negated {
                    failed = true;
                }
            }
            b'?' => {
                if !failed {
                    if s[0] == b'/' {
                        failed = true;
                    }
                    let (_, n) = decode(s);
                    s = &s[n..];
                }
                chunk = &chunk[1..];
            }
            _ => {
                let literal = if c == b'\\' {
                    chunk = &chunk[1..];
                    *chunk
                        .first()
                        .ok_or(BadPattern("trailing `\\` escapes nothing"))?
                } else {
                    c
                };
                if !failed {
                    if literal != s[0] {
                        failed = true;
                    }
                    s = &s[1..];
                }
                chunk = &chunk[1..];
            }
        }
    }
    Ok(if failed { None } else { Some(s) })
}

/// One (possibly escaped) character of a class; something must follow it. `first` is true
/// for the class's first character (a `]` there means the class is empty).
fn class_char(chunk: &[u8], first: bool) -> Result<(u32, &[u8]), BadPattern> {
    let mut chunk = chunk;
    match chunk.first() {
        None => return Err(UNTERMINATED),
        Some(b'-') => {
            return Err(BadPattern(
                "unescaped `-` in character class (escape it as `\\-`)",
            ));
        }
        Some(b']') if first => return Err(BadPattern("empty character class")),
        Some(b']') => return Err(BadPattern("character range is missing its end")),
        Some(b'\\') => {
            chunk = &chunk[1..];
            if chunk.is_empty() {
                return Err(UNTERMINATED);
            }
        }
        Some(_) => {}
    }
    let (r, n) = decode(chunk);
    if r == REPLACEMENT && n == 1 {
        return Err(BadPattern("invalid UTF-8 in character class"));
    }
    let rest = &chunk[n..];
    if rest.is_empty() {
        return Err(UNTERMINATED);
    }
    Ok((r, rest))
}

const REPLACEMENT: u32 = 0xFFFD;

/// Go's `utf8.DecodeRune`: the first character and its length; an invalid byte is U+FFFD of
/// length 1, the empty input U+FFFD of length 0.
fn decode(s: &[u8]) -> (u32, usize) {
    let len = match s.first() {
        None => return (REPLACEMENT, 0),
        Some(0x00..=0x7f) => 1,
        Some(0xc2..=0xdf) => 2,
        Some(0xe0..=0xef) => 3,
        Some(0xf0..=0xf4) => 4,
        Some(_) => return (REPLACEMENT, 1),
    };
    match s
        .get(..len)
        .and_then(|b| std::str::from_utf8(b).ok())
        .and_then(|t| t.chars().next())
    {
        Some(c) => (u32::from(c), len),
        None => (REPLACEMENT, 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pattern: &str, name: &str) -> Result<bool, BadPattern> {
        matches(pattern.as_bytes(), name.as_bytes())
    }

    /// Cases from Go's `filepath` match tests, plus the class-and-slash quirk.
    #[test]
    fn go_match_table() {
        let ok = [
            ("abc", "abc", true),
            ("*", "abc", true),
            ("*c", "abc", true),
            ("a*", "a", true),
            ("a*", "abc", true),
            ("a*", "ab/c", false),
            ("a*/b", "abc/b", true),
            ("a*/b", "a/c/b", false),
            ("a*b*c*d*e*/f", "axbxcxdxe/f", true),
            ("a*b*c*d*e*/f", "axbxcxdxexxx/f", true),
            ("a*b*c*d*e*/f", "axbxcxdxe/xxx/f", false),
            ("a*b*c*d*e*/f", "axbxcxdxexxx/fff", false),
            ("a*b?c*x", "abxbbxdbxebxczzx", true),
            ("a*b?c*x", "abxbbxdbxebxczzy", false),
            ("ab[c]", "abc", true),
            ("ab[b-d]", "abc", true),
            ("ab[e-g]", "abc", false),
            ("ab[^c]", "abc", false),
            ("ab[^b-d]", "abc", false),
            ("ab[^e-g]", "abc", true),
            ("a\\*b", "a*b", true),
            ("a\\*b", "ab", false),
            ("a?b", "a☺b", true),
            ("a[^a]b", "a☺b", true),
            ("a???b", "a☺b", false),
            ("a[^a][^a][^a]b", "a☺b", false),
            ("[a-ζ]*", "α", true),
            ("*[a-ζ]", "A", false),
            ("a?b", "a/b", false),
            ("a*b", "a/b", false),
            ("[\\]a]", "]", true),
            ("[\\-]", "-", true),
            ("[x\\-]", "x", true),
            ("[x\\-]", "-", true),
            ("[x\\-]", "z", false),
            ("[\\-x]", "x", true),
            ("[\\-x]", "-", true),
            ("[\\-x]", "a", false),
            ("*x", "xxx", true),
            // A negated class is not told to skip `/`.
            ("a[^x]b", "a/b", true),
        ];
        for (pattern, name, want) in ok {
            assert_eq!(m(pattern, name), Ok(want), "Match({pattern:?}, {name:?})");
        }
        for (pattern, name) in [
            ("[", "a"),
            ("[^", "a"),
            ("[^bc", "a"),
            ("a[", "a"),
            ("a[", "ab"),
            ("a[", "x"),
            ("a/b[", "x"),
            ("*x[", "xxx"),
            ("[]a]", "a"),
            ("[-]", "-"),
            ("[x-]", "x"),
            ("[-x]", "x"),
            ("\\", "a"),
            ("[a-b-c]", "a"),
        ] {
            assert!(m(pattern, name).is_err(), "Match({pattern:?}, {name:?})");
            assert!(check_syntax(pattern.as_bytes()).is_err(), "{pattern:?}");
        }
    }
}
