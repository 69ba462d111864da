//! `WWW-Authenticate` challenges (RFC 7235 §2.1 and §4.1) as registries send them.
//!
//! The grammar is `1#challenge`, `challenge = auth-scheme [ 1*SP ( token68 / #auth-param ) ]`,
//! `auth-param = token BWS "=" BWS ( token / quoted-string )`. Commas separate both the
//! challenges and the parameters of one challenge: after a comma, `name =` continues the current
//! challenge and a bare token starts the next one. The parser never fails: malformed input is
//! skipped up to the next comma, and challenges with schemes other than `Bearer` and `Basic` (and
//! `Bearer` challenges without a realm, which cannot be answered) are left out of the result.

use super::scope::ScopeSet;

/// One authentication challenge the client can answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    /// The token flow of the distribution spec: fetch a token from `realm` and retry.
    Bearer {
        /// The token endpoint's URL.
        realm: String,
        /// The `service` parameter to pass back to the token endpoint.
        service: Option<String>,
        /// The scopes the registry asks for (the `scope` parameter, split at spaces).
        scope: Vec<String>,
        /// The `error` parameter (`insufficient_scope`, `invalid_token`), when present.
        error: Option<String>,
    },
    /// HTTP Basic authentication (RFC 7617).
    Basic {
        /// The protection space, when the server names one.
        realm: Option<String>,
    },
}

impl Challenge {
    /// The challenge's scopes that parse as [`super::Scope`]s, merged into a set; unparsable
    /// ones are dropped. Empty for `Basic`.
    pub fn scope_set(&self) -> ScopeSet {
        match self {
            Challenge::Bearer { scope, .. } => {
                scope.iter().filter_map(|s| s.parse().ok()).collect()
            }
            Challenge::Basic { .. } => ScopeSet::new(),
        }
    }

    /// Whether this is a `Bearer` challenge.
    pub fn is_bearer(&self) -> bool {
        matches!(self, Challenge::Bearer { .. })
    }
}

/// The challenge to answer among several: the first `Bearer`, else the first `Basic` (docker
/// and containerd prefer the token flow when a registry offers both).
pub fn preferred_challenge(challenges: &[Challenge]) -> Option<&Challenge> {
    challenges
        .iter()
        .find(|c| c.is_bearer())
        .or_else(|| challenges.first())
}

/// Parses a `WWW-Authenticate` header value into the challenges hoist understands, in header
/// order. Scheme and parameter names are case-insensitive; when a parameter repeats, the first
/// occurrence wins. Never panics, whatever the input.
pub fn parse_challenges(header: &str) -> Vec<Challenge> {
    parse_raw(header.as_bytes())
        .into_iter()
        .filter_map(RawChallenge::into_challenge)
        .collect()
}

/// A challenge before interpretation: scheme and parameters (names lowercased).
#[derive(Debug, Default)]
struct RawChallenge {
    scheme: String,
    params: Vec<(String, String)>,
}

impl RawChallenge {
    fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn into_challenge(self) -> Option<Challenge> {
        match self.scheme.as_str() {
            "bearer" => {
                let realm = self.param("realm").filter(|r| !r.is_empty())?.to_owned();
                let service = self.param("service").map(str::to_owned);
                let scope = self
                    .param("scope")
                    .map(|s| s.split_whitespace().map(str::to_owned).collect())
                    .unwrap_or_default();
                let error = self.param("error").map(str::to_owned);
                Some(Challenge::Bearer {
                    realm,
                    service,
                    scope,
                    error,
                })
            }
            "basic" => Some(Challenge::Basic {
                realm: self.param("realm").map(str::to_owned),
            }),
            _ => None,
        }
    }
}

/// `tchar` of RFC 7230 §3.2.6.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// The characters of `token68` before its trailing `=`s (RFC 7235 §2.1).
fn is_token68_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~+/".contains(&b)
}

fn is_ws(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

struct Cursor<'a> {
    input: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.input.get(self.pos).copied()
    }

    fn at_end(&self) -> bool {
        self.pos >= self.input.len()
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(is_ws) {
            self.pos += 1;
        }
    }

    /// Skips whitespace and empty list elements (`, ,`).
    fn skip_ws_and_commas(&mut self) {
        while self.peek().is_some_and(|b| is_ws(b) || b == b',') {
            self.pos += 1;
        }
    }

    fn take_while(&mut self, pred: impl Fn(u8) -> bool) -> &'a [u8] {
        let start = self.pos;
        while self.peek().is_some_and(&pred) {
            self.pos += 1;
        }
        self.input.get(start..self.pos).unwrap_or_default()
    }

    /// Skips to the next comma outside a quoted string (or to the end).
    fn skip_junk(&mut self) {
        while let Some(b) = self.peek() {
            match b {
                b',' => return,
                b'"' => {
                    self.quoted_string();
                }
                _ => self.pos += 1,
            }
        }
    }

    /// Reads a quoted string starting at the opening quote; backslash escapes the next byte. An
    /// unterminated string runs to the end of the input.
    fn quoted_string(&mut self) -> String {
        let mut out = Vec::new();
        self.pos += 1; // opening quote
        while let Some(b) = self.peek() {
            self.pos += 1;
            match b {
                b'"' => break,
                b'\\' => {
                    if let Some(next) = self.peek() {
                        out.push(next);
                        self.pos += 1;
                    }
                }
                _ => out.push(b),
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    }

    /// Whether the input at the cursor is `token BWS "="` (the start of an auth-param), looking
    /// ahead without moving.
    fn at_param(&self) -> bool {
        let mut i = self.pos;
        let start = i;
        while self.input.get(i).copied().is_some_and(is_tchar) {
            i += 1;
        }
        if i == start {
            return false;
        }
        while self.input.get(i).copied().is_some_and(is_ws) {
            i += 1;
        }
        self.input.get(i) == Some(&b'=')
    }

    /// Whether the input at the cursor is a token68 standing alone: its characters, any `=`s,
    /// then optional whitespace and a comma or the end.
    fn at_token68(&self) -> bool {
        let mut i = self.pos;
        let start = i;
        while self.input.get(i).copied().is_some_and(is_token68_char) {
            i += 1;
        }
        if i == start {
            return false;
        }
        while self.input.get(i) == Some(&b'=') {
            i += 1;
        }
        while self.input.get(i).copied().is_some_and(is_ws) {
            i += 1;
        }
        matches!(self.input.get(i), None | Some(b','))
    }
}

fn parse_raw(input: &[u8]) -> Vec<RawChallenge> {
    let mut cur = Cursor { input, pos: 0 };
    let mut out = Vec::new();
    loop {
        cur.skip_ws_and_commas();
        if cur.at_end() {
            break;
        }
        let scheme = cur.take_while(is_tchar);
        if scheme.is_empty() {
            // Not a challenge: skip to the next list element.
            cur.pos += 1;
            cur.skip_junk();
            continue;
        }
        let mut challenge = RawChallenge {
            scheme: String::from_utf8_lossy(scheme).to_ascii_lowercase(),
            params: Vec::new(),
        };
        // The scheme must be followed by whitespace, a comma or the end.
        match cur.peek() {
            None | Some(b',') => {
                out.push(challenge);
                continue;
            }
            Some(b) if is_ws(b) => {}
            Some(_) => {
                cur.skip_junk();
                continue;
            }
        }
        cur.skip_ws();
        if !cur.at_param() && cur.at_token68() {
            cur.take_while(|b| is_token68_char(b) || b == b'=');
            out.push(challenge);
            continue;
        }
        parse_params(&mut cur, &mut challenge);
        out.push(challenge);
    }
    out
}

/// Reads `#auth-param` into `challenge`, stopping before the token that starts the next
/// challenge (or at the end).
fn parse_params(cur: &mut Cursor<'_>, challenge: &mut RawChallenge) {
    loop {
        cur.skip_ws_and_commas();
        if cur.at_end() || !cur.at_param() {
            if cur.peek().is_some_and(is_tchar) {
                // A bare token: the next challenge's scheme.
                return;
            }
            if cur.at_end() {
                return;
            }
            // Junk that is neither a parameter nor a scheme.
            cur.pos += 1;
            cur.skip_junk();
            continue;
        }
        let name = String::from_utf8_lossy(cur.take_while(is_tchar)).to_ascii_lowercase();
        cur.skip_ws();
        cur.pos += 1; // '=' (checked by at_param)
        cur.skip_ws();
        let value = match cur.peek() {
            Some(b'"') => cur.quoted_string(),
            // RFC 7235 wants a token here; accept any unquoted run up to a comma or
            // whitespace, since some servers leave URLs unquoted.
            _ => String::from_utf8_lossy(cur.take_while(|b| b != b',' && b != b'"' && !is_ws(b)))
                .into_owned(),
        };
        if !challenge.params.iter().any(|(n, _)| *n == name) {
            challenge.params.push((name, value));
        }
        cur.skip_ws();
        match cur.peek() {
            None | Some(b',') => {}
            // Lenient: a parameter that follows without a comma.
            Some(_) if cur.at_param() => {}
            Some(_) => cur.skip_junk(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bearer(
        realm: &str,
        service: Option<&str>,
        scope: &[&str],
        error: Option<&str>,
    ) -> Challenge {
        Challenge::Bearer {
            realm: realm.to_owned(),
            service: service.map(str::to_owned),
            scope: scope.iter().map(|s| (*s).to_owned()).collect(),
            error: error.map(str::to_owned),
        }
    }

    #[test]
    fn docker_hub_bearer() {
        let h = r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull",error="insufficient_scope""#;
        assert_eq!(
            parse_challenges(h),
            vec![bearer(
                "https://auth.docker.io/token",
                Some("registry.docker.io"),
                &["repository:library/busybox:pull"],
                Some("insufficient_scope"),
            )]
        );
    }

    #[test]
    fn basic_with_and_without_realm() {
        assert_eq!(
            parse_challenges(r#"Basic realm="Registry Realm""#),
            vec![Challenge::Basic {
                realm: Some("Registry Realm".into())
            }]
        );
        assert_eq!(
            parse_challenges("Basic"),
            vec![Challenge::Basic { realm: None }]
        );
        assert_eq!(
            parse_challenges("  basic  "),
            vec![Challenge::Basic { realm: None }]
        );
    }

    #[test]
    fn several_challenges_in_one_header() {
        let h = r#"Basic realm="simple", Bearer realm="https://r/token", service="svc", Newauth realm="x", type=1, title="Login to \"apps\"""#;
        assert_eq!(
            parse_challenges(h),
            vec![
                Challenge::Basic {
                    realm: Some("simple".into())
                },
                bearer("https://r/token", Some("svc"), &[], None),
            ]
        );
        // Bare scheme followed by another challenge.
        assert_eq!(
            parse_challenges(r#"Basic, Bearer realm=https://x/t"#),
            vec![
                Challenge::Basic { realm: None },
                bearer("https://x/t", None, &[], None)
            ]
        );
        // token68 challenges are skipped, the following ones kept.
        assert_eq!(
            parse_challenges(r#"Negotiate a87421000492aa874209af8bc028==, Basic realm="r""#),
            vec![Challenge::Basic {
                realm: Some("r".into())
            }]
        );
    }

    #[test]
    fn quoted_string_escapes_and_commas() {
        let h = r#"Bearer realm="https://a/t?x=1,y=2", service="a\"b\\c", scope="repository:a/b:pull repository:c:pull,push""#;
        assert_eq!(
            parse_challenges(h),
            vec![bearer(
                "https://a/t?x=1,y=2",
                Some(r#"a"b\c"#),
                &["repository:a/b:pull", "repository:c:pull,push"],
                None,
            )]
        );
    }

    #[test]
    fn case_insensitive_scheme_and_names_whitespace_tolerant() {
        let h = "BEARER Realm = \"https://x/t\" ,\tSERVICE=reg , Scope=\"registry:catalog:*\"";
        assert_eq!(
            parse_challenges(h),
            vec![bearer(
                "https://x/t",
                Some("reg"),
                &["registry:catalog:*"],
                None
            )]
        );
    }

    #[test]
    fn first_occurrence_of_a_parameter_wins() {
        let h = r#"Bearer realm="https://a/t", realm="https://evil/t""#;
        assert_eq!(
            parse_challenges(h),
            vec![bearer("https://a/t", None, &[], None)]
        );
    }

    #[test]
    fn bearer_without_realm_is_dropped() {
        assert!(parse_challenges(r#"Bearer service="x""#).is_empty());
        assert!(parse_challenges(r#"Bearer realm="""#).is_empty());
    }

    #[test]
    fn junk_never_panics() {
        let inputs = [
            "",
            ",,,",
            "\"",
            "Bearer realm=\"unterminated",
            "Bearer realm=\"x\\",
            "=====",
            "Bearer ===, Basic",
            "Bearer realm",
            "Bearer realm=",
            "Bearer \u{e9}\u{1F600}=\"\u{e9}\"",
            "\u{0}\u{1}\u{7f} Bearer realm=x",
            "Bearer realm=\"a\"junk\"more\", service=s",
            "Bearer realm=\"a\" \"b\" service=c",
            "@@@ Basic realm=x",
        ];
        for h in inputs {
            let _ = parse_challenges(h);
        }
        assert_eq!(
            parse_challenges("Bearer realm=\"unterminated"),
            vec![bearer("unterminated", None, &[], None)]
        );
        assert_eq!(
            parse_challenges("Bearer realm=\"a\"junk\"more\", service=s"),
            vec![bearer("a", Some("s"), &[], None)]
        );
        // A list element starting with junk is skipped as a whole.
        assert_eq!(
            parse_challenges("@@@ Basic realm=x, Bearer realm=y"),
            vec![bearer("y", None, &[], None)]
        );
        // Parameters separated by whitespace only are accepted.
        assert_eq!(
            parse_challenges("Bearer realm=\"https://t\" service=\"s\""),
            vec![bearer("https://t", Some("s"), &[], None)]
        );
        // Non-ASCII in quoted strings survives.
        assert_eq!(
            parse_challenges("Basic realm=\"r\u{e9}alm\""),
            vec![Challenge::Basic {
                realm: Some("r\u{e9}alm".into())
            }]
        );
        // Every prefix of a realistic header parses without panicking.
        let h = r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull""#;
        for i in 0..=h.len() {
            let _ = parse_challenges(&h[..i]);
        }
        // Arbitrary bytes (lossily decoded) as well.
        let mut state = 0x2545_f491_u32;
        for _ in 0..2000 {
            let mut bytes = Vec::new();
            for _ in 0..(state % 40) {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                bytes.push(b"Bearer realm=\"\\, =xyz\t"[(state % 22) as usize]);
            }
            let _ = parse_challenges(&String::from_utf8_lossy(&bytes));
        }
    }

    #[test]
    fn scope_set_and_preference() {
        let cs = parse_challenges(
            r#"Basic realm="r", Bearer realm="https://t", scope="repository:a:pull repository:a:push bogus""#,
        );
        assert_eq!(preferred_challenge(&cs), cs.get(1));
        let set = cs[1].scope_set();
        assert_eq!(set.key(), "repository:a:pull,push");
        assert!(cs[0].scope_set().is_empty());
        assert_eq!(preferred_challenge(&cs[..1]), cs.first());
        assert_eq!(preferred_challenge(&[]), None);
    }
}
