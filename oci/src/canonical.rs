//! A canonical JSON writer: object keys sorted by their UTF-8 bytes, no insignificant
//! whitespace, and strings escaped as Go's `encoding/json` does (`<`, `>`, `&`, U+2028 and
//! U+2029 as `\u` escapes), so the documents we hash look like the ones docker and BuildKit write
//! and equal content always gives equal bytes, hence equal digests.

use serde::Serialize;
use serde_json::Value;

/// A value could not be turned into JSON (for example a map with non-string keys).
#[derive(Debug, thiserror::Error)]
#[error("cannot encode canonical JSON: {0}")]
pub struct CanonicalError(#[from] serde_json::Error);

/// Serializes `value` to canonical JSON bytes.
pub fn to_canonical_vec<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CanonicalError> {
    let v = serde_json::to_value(value)?;
    let mut out = Vec::with_capacity(512);
    write_value(&v, &mut out);
    Ok(out)
}

fn write_value(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Number(n) => out.extend_from_slice(n.to_string().as_bytes()),
        Value::String(s) => write_string(s, out),
        Value::Array(a) => {
            out.push(b'[');
            for (i, item) in a.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(item, out);
            }
            out.push(b']');
        }
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort_unstable();
            out.push(b'{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_string(k, out);
                out.push(b':');
                write_value(&m[k], out);
            }
            out.push(b'}');
        }
    }
}

fn write_string(s: &str, out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    for c in s.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            c if (c as u32) < 0x20 || matches!(c, '<' | '>' | '&' | '\u{2028}' | '\u{2029}') => {
                let n = c as u32;
                out.extend_from_slice(b"\\u");
                for shift in [12, 8, 4, 0] {
                    out.push(HEX[((n >> shift) & 0xf) as usize]);
                }
            }
            c => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sorts_keys_and_escapes_like_go() {
        let v = json!({"b": 1, "a": {"z": [true, null], "y": "x<y>&\u{1}\n"}, "": 2.5});
        let out = String::from_utf8(to_canonical_vec(&v).unwrap()).unwrap();
        assert_eq!(
            out,
            r#"{"":2.5,"a":{"y":"x\u003cy\u003e\u0026\u0001\n","z":[true,null]},"b":1}"#
        );
    }

    #[test]
    fn equal_content_equal_bytes() {
        let a: Value = serde_json::from_str(r#"{"x":1,"y":{"b":2,"a":3}}"#).unwrap();
        let b: Value = serde_json::from_str(r#"{ "y": {"a":3, "b":2}, "x": 1 }"#).unwrap();
        assert_eq!(to_canonical_vec(&a).unwrap(), to_canonical_vec(&b).unwrap());
    }
}
