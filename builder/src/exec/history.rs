//! History `created_by` strings as BuildKit (dockerd 20.10's dockerfile frontend) writes them:
//! Go's `%q` and `%v` renderings of the instruction's values, `# buildkit` after steps that ran
//! an operation.

use std::collections::BTreeMap;

use oci::HealthConfig;

/// The `comment` of every history entry BuildKit's Dockerfile frontend writes.
pub const COMMENT: &str = "buildkit.dockerfile.v0";

/// Go's `strconv.Quote` for the strings Dockerfiles hold.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\x07' => out.push_str("\\a"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            '\x0b' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Go's `%q` of a `[]string`: `["a" "b"]`.
pub fn go_quote_list(v: &[String]) -> String {
    let items: Vec<String> = v.iter().map(|s| go_quote(s)).collect();
    format!("[{}]", items.join(" "))
}

/// Go's `%v` of a `[]string`: `[a b]`.
pub fn go_list(v: &[String]) -> String {
    format!("[{}]", v.join(" "))
}

/// Go's `%v` of a `map[nat.Port]struct{}`: `map[443/tcp:{} 80/tcp:{}]` (keys sorted).
pub fn go_port_map(ports: &BTreeMap<String, serde_json::Value>) -> String {
    let items: Vec<String> = ports.keys().map(|k| format!("{k}:{{}}")).collect();
    format!("map[{}]", items.join(" "))
}

/// Go's `time.Duration.String()` of `ns` nanoseconds.
pub fn go_duration(ns: i64) -> String {
    if ns == 0 {
        return "0s".into();
    }
    let neg = ns < 0;
    let u = ns.unsigned_abs();
    let body = if u < 1_000_000_000 {
        let (unit, div) = if u < 1_000 {
            ("ns", 1)
        } else if u < 1_000_000 {
            ("µs", 1_000)
        } else {
            ("ms", 1_000_000)
        };
        format!("{}{unit}", frac(u, div))
    } else {
        let h = u / 3_600_000_000_000;
        let m = (u / 60_000_000_000) % 60;
        let s = frac(u % 60_000_000_000, 1_000_000_000);
        if h > 0 {
            format!("{h}h{m}m{s}s")
        } else if m > 0 {
            format!("{m}m{s}s")
        } else {
            format!("{s}s")
        }
    };
    if neg { format!("-{body}") } else { body }
}

/// `v / div` with the fraction Go prints (trailing zeros trimmed).
fn frac(v: u64, div: u64) -> String {
    let whole = v / div;
    let rest = v % div;
    if rest == 0 {
        return whole.to_string();
    }
    let width = div.to_string().len() - 1;
    let digits = format!("{rest:0width$}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

/// Go's `%q` of `*HealthConfig` as dockerd 20.10 formats it:
/// `&{["CMD-SHELL" "curl x"] "30s" "0s" "0s" '\x03'}` (Retries is an int, which `%q` prints as
/// a quoted character).
pub fn go_healthcheck(h: &HealthConfig) -> String {
    let test = go_quote_list(h.test.as_deref().unwrap_or_default());
    let d = |v: Option<i64>| go_quote(&go_duration(v.unwrap_or(0)));
    let retries = h.retries.unwrap_or(0);
    let r = match u32::try_from(retries).ok().and_then(char::from_u32) {
        Some('\'') => "'\\''".to_string(),
        Some(c) if !c.is_control() => format!("'{c}'"),
        Some(c) if (c as u32) < 0x80 => format!("'\\x{:02x}'", c as u32),
        _ => format!("'\\u{:04x}'", retries),
    };
    format!(
        "&{{{test} {} {} {} {r}}}",
        d(h.interval),
        d(h.timeout),
        d(h.start_period)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_renderings() {
        assert_eq!(
            go_quote_list(&["/bin/sh".into(), "-c".into(), "echo \"hi\"\n".into()]),
            r#"["/bin/sh" "-c" "echo \"hi\"\n"]"#
        );
        assert_eq!(go_list(&["/data".into(), "/x".into()]), "[/data /x]");
        assert_eq!(go_duration(30_000_000_000), "30s");
        assert_eq!(go_duration(90_000_000_000), "1m30s");
        assert_eq!(go_duration(3_600_000_000_000), "1h0m0s");
        assert_eq!(go_duration(1_500_000_000), "1.5s");
        assert_eq!(go_duration(500_000_000), "500ms");
        let h = HealthConfig {
            test: Some(vec!["CMD-SHELL".into(), "true".into()]),
            interval: Some(5_000_000_000),
            retries: Some(3),
            ..Default::default()
        };
        assert_eq!(
            go_healthcheck(&h),
            r#"&{["CMD-SHELL" "true"] "5s" "0s" "0s" '\x03'}"#
        );
        let ports = BTreeMap::from([
            ("80/tcp".to_string(), serde_json::json!({})),
            ("443/tcp".to_string(), serde_json::json!({})),
        ]);
        assert_eq!(go_port_map(&ports), "map[443/tcp:{} 80/tcp:{}]");
    }
}
