//! BuildKit's AST dump format and Go's `strconv.Quote`.

use std::fmt::Write as _;

use super::print_table::PRINTABLE_RANGES;
use super::{Arg, Node};

/// Go's `unicode.IsPrint` (Unicode 15.0.0): letters, marks, numbers, punctuation, symbols and
/// U+0020 SPACE.
pub fn is_go_print(c: char) -> bool {
    let c = c as u32;
    if c < 0x7f {
        return c >= 0x20;
    }
    // Index of the first range whose end is >= c.
    let pairs = PRINTABLE_RANGES.len() / 2;
    let (mut lo, mut hi) = (0, pairs);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if PRINTABLE_RANGES
            .get(2 * mid + 1)
            .is_some_and(|&end| end < c)
        {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    PRINTABLE_RANGES
        .get(2 * lo)
        .is_some_and(|&start| start <= c)
}

/// Go's `strconv.Quote` of a string: `"` + escaped text + `"`, where `"` and `\` are
/// backslashed, printable characters ([`is_go_print`]) pass through, `\a \b \f \n \r \t \v`
/// are used, other characters below U+0020 and U+007F become `\xHH`, and other
/// non-printable characters `\uHHHH` or `\UHHHHHHHH` (lowercase hex).
pub fn goquote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        push_escaped(&mut out, c);
    }
    out.push('"');
    out
}

/// [`goquote`] of arbitrary bytes, as Go quotes a string holding invalid UTF-8: each byte
/// that is not part of a valid UTF-8 sequence becomes `\xHH`.
pub fn goquote_bytes(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() + 2);
    out.push('"');
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            push_escaped(&mut out, c);
        }
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    out.push('"');
    out
}

fn push_escaped(out: &mut String, c: char) {
    if c == '"' || c == '\\' {
        out.push('\\');
        out.push(c);
        return;
    }
    if is_go_print(c) {
        out.push(c);
        return;
    }
    let v = c as u32;
    let _ = match c {
        '\u{07}' => write!(out, "\\a"),
        '\u{08}' => write!(out, "\\b"),
        '\u{0c}' => write!(out, "\\f"),
        '\n' => write!(out, "\\n"),
        '\r' => write!(out, "\\r"),
        '\t' => write!(out, "\\t"),
        '\u{0b}' => write!(out, "\\v"),
        _ if v < 0x20 || v == 0x7f => write!(out, "\\x{v:02x}"),
        _ if v < 0x10000 => write!(out, "\\u{v:04x}"),
        _ => write!(out, "\\U{v:08x}"),
    };
}

/// `(keyword [flags] args…)` for one node (BuildKit's `Node.Dump`, wrapped in parentheses
/// as its parent prints it).
pub(super) fn dump_node(node: &Node) -> String {
    let mut s = node.keyword.clone();
    if !node.flags.is_empty() {
        s.push_str(" [");
        for (i, f) in node.flags.iter().enumerate() {
            if i > 0 {
                s.push(' ');
            }
            s.push_str(&goquote(f));
        }
        s.push(']');
    }
    for arg in &node.args {
        s.push(' ');
        match arg {
            Arg::Str(v) => s.push_str(&goquote(v)),
            Arg::Nested(n) => s.push_str(&dump_node(n)),
        }
    }
    format!("({})", s.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parser_goquote_control_and_unicode() {
        assert_eq!(goquote(""), r#""""#);
        assert_eq!(goquote("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(goquote("\0\x01\x1f\x7f"), r#""\x00\x01\x1f\x7f""#);
        assert_eq!(goquote("\x07\x08\x0c\n\r\t\x0b"), r#""\a\b\f\n\r\t\v""#);
        assert_eq!(goquote("♥☃é 한국어"), "\"♥☃é 한국어\"");
        // Non-ASCII spaces and format characters are not printable in Go.
        assert_eq!(
            goquote("\u{a0}\u{85}\u{200b}\u{2028}"),
            r#""\u00a0\u0085\u200b\u2028""#
        );
        assert_eq!(goquote("\u{ad}"), r#""\u00ad""#);
        // Unassigned and private use.
        assert_eq!(goquote("\u{378}\u{e000}"), r#""\u0378\ue000""#);
        assert_eq!(goquote("\u{10ffff}\u{1f600}"), "\"\\U0010ffff\u{1f600}\"");
        assert_eq!(goquote("\u{fffd}"), "\"\u{fffd}\"");
        // Unicode 15.0 additions (CJK Extension H) are printable.
        assert_eq!(goquote("\u{31350}"), "\"\u{31350}\"");
    }

    #[test]
    fn parser_goquote_invalid_utf8() {
        assert_eq!(goquote_bytes(b"a\xffb\xc3"), r#""a\xffb\xc3""#);
        assert_eq!(goquote_bytes("é\u{0}".as_bytes()), "\"é\\x00\"");
        assert_eq!(goquote_bytes(b"\xed\xa0\x80"), r#""\xed\xa0\x80""#);
    }

    #[test]
    fn parser_is_go_print_edges() {
        assert!(is_go_print(' '));
        assert!(is_go_print('~'));
        assert!(!is_go_print('\u{7f}'));
        assert!(!is_go_print('\u{9f}'));
        assert!(is_go_print('\u{a1}'));
        assert!(!is_go_print('\u{3000}'));
        assert!(is_go_print('\u{e0100}'));
        assert!(!is_go_print('\u{e01f0}'));
        assert!(!is_go_print('\u{10ffff}'));
    }
}
