//! Exec-form arguments: a JSON array of strings, read as Go's `encoding/json` would read it
//! into `[]interface{}` (BuildKit's `parseJSON`).
//!
//! Hand-written rather than serde_json so that every corner agrees with Go: what is a syntax
//! error (then the instruction falls back to shell form), lone UTF-16 surrogates (U+FFFD, not
//! an error), numbers too large for a float64 (a type error, so shell form too), the nesting
//! limit of 10000, and JSON whitespace being only space, tab, CR and LF. Iterative, so no
//! input can exhaust the stack.

/// What a candidate exec-form argument turned out to be.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum JsonArray {
    /// A JSON array of strings, decoded.
    Strings(Vec<String>),
    /// A valid JSON array with an element that is not a string: an error for the instruction.
    NotStrings,
    /// Not a JSON array (or not valid JSON): the instruction uses its shell/list form.
    Invalid,
}

/// Go's `encoding/json` nesting limit.
const MAX_DEPTH: usize = 10000;

/// Reads `rest` (leading Unicode whitespace ignored) as a JSON array.
pub(super) fn parse_json_array(rest: &str) -> JsonArray {
    let text = rest.trim_start();
    if !text.starts_with('[') {
        return JsonArray::Invalid;
    }
    let bytes = text.as_bytes();
    match validate(bytes) {
        Some(false) => {}
        // Syntax error, or a number out of float64 range (Go's UnmarshalTypeError).
        Some(true) | None => return JsonArray::Invalid,
    }
    decode_top_level(text).unwrap_or(JsonArray::Invalid)
}

fn is_json_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while b.get(i).is_some_and(|&c| is_json_ws(c)) {
        i += 1;
    }
    i
}

/// Checks that `b` is exactly one JSON value (with optional surrounding whitespace). Returns
/// None on a syntax error, else whether some number overflows a float64.
fn validate(b: &[u8]) -> Option<bool> {
    #[derive(Clone, Copy, PartialEq, Eq)]
    enum Ctx {
        Array,
        Object,
    }
    let mut stack: Vec<Ctx> = Vec::new();
    let mut overflow = false;
    let mut i = 0;
    'value: loop {
        // Expect a value at i.
        i = skip_ws(b, i);
        match *b.get(i)? {
            b'[' => {
                stack.push(Ctx::Array);
                if stack.len() > MAX_DEPTH {
                    return None;
                }
                i = skip_ws(b, i + 1);
                if b.get(i) == Some(&b']') {
                    stack.pop();
                    i += 1;
                } else {
                    continue 'value;
                }
            }
            b'{' => {
                stack.push(Ctx::Object);
                if stack.len() > MAX_DEPTH {
                    return None;
                }
                i = skip_ws(b, i + 1);
                if b.get(i) == Some(&b'}') {
                    stack.pop();
                    i += 1;
                } else {
                    i = object_key(b, i)?;
                    continue 'value;
                }
            }
            b'"' => i = scan_string(b, i)?,
            b't' => i = literal(b, i, b"true")?,
            b'f' => i = literal(b, i, b"false")?,
            b'n' => i = literal(b, i, b"null")?,
            b'-' | b'0'..=b'9' => {
                let end = scan_number(b, i)?;
                let text = std::str::from_utf8(b.get(i..end)?).ok()?;
                if text.parse::<f64>().map_or(true, f64::is_infinite) {
                    overflow = true;
                }
                i = end;
            }
            _ => return None,
        }
        // After a value: close containers or move to the next element.
        loop {
            i = skip_ws(b, i);
            match stack.last() {
                None => return if i == b.len() { Some(overflow) } else { None },
                Some(Ctx::Array) => match *b.get(i)? {
                    b',' => {
                        i += 1;
                        continue 'value;
                    }
                    b']' => {
                        stack.pop();
                        i += 1;
                    }
                    _ => return None,
                },
                Some(Ctx::Object) => match *b.get(i)? {
                    b',' => {
                        i = object_key(b, skip_ws(b, i + 1))?;
                        continue 'value;
                    }
                    b'}' => {
                        stack.pop();
                        i += 1;
                    }
                    _ => return None,
                },
            }
        }
    }
}

/// Scans `"key" :` at `i`; returns the index after the colon.
fn object_key(b: &[u8], i: usize) -> Option<usize> {
    if b.get(i) != Some(&b'"') {
        return None;
    }
    let i = skip_ws(b, scan_string(b, i)?);
    if b.get(i) != Some(&b':') {
        return None;
    }
    Some(i + 1)
}

fn literal(b: &[u8], i: usize, word: &[u8]) -> Option<usize> {
    let end = i + word.len();
    if b.get(i..end)? == word {
        Some(end)
    } else {
        None
    }
}

/// Scans a string starting at the quote at `i`; returns the index after the closing quote.
fn scan_string(b: &[u8], mut i: usize) -> Option<usize> {
    i += 1;
    loop {
        let c = *b.get(i)?;
        match c {
            b'"' => return Some(i + 1),
            b'\\' => match *b.get(i + 1)? {
                b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => i += 2,
                b'u' => {
                    let hex = b.get(i + 2..i + 6)?;
                    if !hex.iter().all(u8::is_ascii_hexdigit) {
                        return None;
                    }
                    i += 6;
                }
                _ => return None,
            },
            c if c < 0x20 => return None,
            _ => i += 1,
        }
    }
}

/// Scans `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?` at `i`; returns its end.
fn scan_number(b: &[u8], mut i: usize) -> Option<usize> {
    let digits = |mut j: usize| {
        let start = j;
        while b.get(j).is_some_and(u8::is_ascii_digit) {
            j += 1;
        }
        (j > start).then_some(j)
    };
    if b.get(i) == Some(&b'-') {
        i += 1;
    }
    match *b.get(i)? {
        b'0' => i += 1,
        b'1'..=b'9' => i = digits(i)?,
        _ => return None,
    }
    if b.get(i) == Some(&b'.') {
        i = digits(i + 1)?;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        i = digits(i)?;
    }
    Some(i)
}

/// Walks the (already validated) top-level array: strings are decoded; anything else makes
/// it [`JsonArray::NotStrings`].
fn decode_top_level(text: &str) -> Option<JsonArray> {
    let b = text.as_bytes();
    let mut i = skip_ws(b, 0);
    if b.get(i) != Some(&b'[') {
        return None;
    }
    i = skip_ws(b, i + 1);
    let mut out = Vec::new();
    if b.get(i) == Some(&b']') {
        return Some(JsonArray::Strings(out));
    }
    loop {
        if b.get(i) != Some(&b'"') {
            return Some(JsonArray::NotStrings);
        }
        let end = scan_string(b, i)?;
        out.push(decode_string(text.get(i + 1..end - 1)?));
        i = skip_ws(b, end);
        match b.get(i) {
            Some(b',') => i = skip_ws(b, i + 1),
            Some(b']') => return Some(JsonArray::Strings(out)),
            _ => return None,
        }
    }
}

/// Decodes the body of a valid JSON string (between the quotes), as Go does: a UTF-16
/// surrogate pair becomes one character, a lone surrogate becomes U+FFFD.
fn decode_string(body: &str) -> String {
    let mut out = String::with_capacity(body.len());
    let mut rest = body;
    while let Some(pos) = rest.find('\\') {
        out.push_str(rest.get(..pos).unwrap_or(""));
        let esc = rest.get(pos..).unwrap_or("");
        let mut chars = esc.chars();
        chars.next();
        let consumed = match chars.next() {
            Some('u') => {
                let (c, used) = decode_u_escape(esc);
                out.push(c);
                used
            }
            Some(c) => {
                out.push(match c {
                    'b' => '\u{08}',
                    'f' => '\u{0c}',
                    'n' => '\n',
                    'r' => '\r',
                    't' => '\t',
                    other => other,
                });
                1 + c.len_utf8()
            }
            None => 1,
        };
        rest = esc.get(consumed..).unwrap_or("");
    }
    out.push_str(rest);
    out
}

/// Reads `\uXXXX` at the start of `s` (and a following `\uXXXX` low surrogate when the
/// first is a high one). Returns the character and the bytes used.
fn decode_u_escape(s: &str) -> (char, usize) {
    let hex4 = |from: usize| -> Option<u32> {
        let h = s.get(from..from + 4)?;
        u32::from_str_radix(h, 16).ok()
    };
    let Some(first) = hex4(2) else {
        return ('\u{fffd}', s.len().min(6));
    };
    if !(0xD800..0xE000).contains(&first) {
        return (char::from_u32(first).unwrap_or('\u{fffd}'), 6);
    }
    if (0xD800..0xDC00).contains(&first) && s.get(6..8) == Some("\\u") {
        if let Some(second) = hex4(8) {
            if (0xDC00..0xE000).contains(&second) {
                let c = 0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00);
                return (char::from_u32(c).unwrap_or('\u{fffd}'), 12);
            }
        }
    }
    ('\u{fffd}', 6)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> JsonArray {
        JsonArray::Strings(v.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn parser_json_basic() {
        assert_eq!(parse_json_array("[]"), strings(&[]));
        assert_eq!(
            parse_json_array(" [ \"a\" , \"b\" ] "),
            strings(&["a", "b"])
        );
        assert_eq!(parse_json_array("[\"a\",42]"), JsonArray::NotStrings);
        assert_eq!(parse_json_array("[\"a\",[\"b\"]]"), JsonArray::NotStrings);
        assert_eq!(
            parse_json_array("[\"a\",{\"b\":[1,{}]}]"),
            JsonArray::NotStrings
        );
        assert_eq!(parse_json_array("[\"a\",42"), JsonArray::Invalid);
        assert_eq!(parse_json_array("['a']"), JsonArray::Invalid);
        assert_eq!(parse_json_array("[\"a\"] x"), JsonArray::Invalid);
        assert_eq!(parse_json_array("[\"a\",]"), JsonArray::Invalid);
        assert_eq!(parse_json_array("[01]"), JsonArray::Invalid);
        assert_eq!(parse_json_array("[1.]"), JsonArray::Invalid);
        assert_eq!(parse_json_array("[\"\t\"]"), JsonArray::Invalid);
        assert_eq!(parse_json_array("[\"a\"]\u{0b}"), JsonArray::Invalid);
    }

    #[test]
    fn parser_json_overflow_is_type_error() {
        // Go: UnmarshalTypeError (not the "strings only" error), so shell form.
        assert_eq!(parse_json_array("[\"a\", 1e999]"), JsonArray::Invalid);
        assert_eq!(parse_json_array("[\"a\", 1e-999]"), JsonArray::NotStrings);
    }

    #[test]
    fn parser_json_escapes_and_surrogates() {
        assert_eq!(
            parse_json_array(r#"["\" \\ \/ \b \f \n \r \t \u0000 \u00e9"]"#),
            strings(&["\" \\ / \u{8} \u{c} \n \r \t \u{0} é"])
        );
        assert_eq!(parse_json_array(r#"["\ud83d\ude00"]"#), strings(&["😀"]));
        assert_eq!(
            parse_json_array(r#"["\ud83d x"]"#),
            strings(&["\u{fffd} x"])
        );
        assert_eq!(
            parse_json_array(r#"["\ude00\ud83d"]"#),
            strings(&["\u{fffd}\u{fffd}"])
        );
        assert_eq!(
            parse_json_array(r#"["\ud83d\u0041"]"#),
            strings(&["\u{fffd}A"])
        );
    }

    #[test]
    fn parser_json_depth() {
        let deep = format!("[{}{}]", "[".repeat(9999), "]".repeat(9999));
        assert_eq!(parse_json_array(&deep), JsonArray::NotStrings);
        let too_deep = format!("{}{}", "[".repeat(10001), "]".repeat(10001));
        assert_eq!(parse_json_array(&too_deep), JsonArray::Invalid);
        let unclosed = "[".repeat(200_000);
        assert_eq!(parse_json_array(&unclosed), JsonArray::Invalid);
    }
}
