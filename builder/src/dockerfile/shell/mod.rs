//! Shell word expansion with the semantics of BuildKit's Dockerfile shell lexer (`shell.Lex`
//! in `frontend/dockerfile/shell`), checked against BuildKit's own test data
//! (`tests/conformance/shell.rs`).
//!
//! This is not a POSIX shell. What it does, in one pass over the word:
//!
//! * **Escape character** (backslash, or backtick after `# escape=\``): outside quotes it
//!   makes the next character literal and is removed; at the very end of the word it is
//!   dropped. Inside double quotes it only escapes `"`, `$` and itself; before anything else
//!   it is kept as a literal character. Inside single quotes it has no meaning.
//! * **Quotes**: `'…'` is fully literal; `"…"` expands variables. Quotes are removed. An
//!   unterminated quote is an error.
//! * **Variables**: `$name` and `${name}`, where a name is a run of letters, digits and `_`,
//!   or a run of digits (`$1x` is `$1` then `x`), or one special character among
//!   `@ * # ? - $ !`. Names are looked up like any other, so positional and special
//!   parameters are normally unset. `$` followed by anything else (or nothing) stays a
//!   literal `$`.
//! * **Modifiers**: `${v:-w} ${v-w} ${v:+w} ${v+w} ${v:?w} ${v?w}` (the colon forms treat an
//!   empty value as unset), `${v#p} ${v##p} ${v%p} ${v%%p}` (shortest/longest prefix/suffix
//!   removal) and `${v/p/r} ${v//p/r}` (first/all replacement). Anything else
//!   (`${v:=w}`, `${v:#p}`, `${}`, `${.}`, …) is an error.
//!
//! Surprising points, all BuildKit's behaviour (see the tests):
//!
//! * The word after a modifier is always expanded, before the variable is looked up, even
//!   when it is not used: `${SET:-$OTHER}` records `OTHER` as referenced, and
//!   `${SET:-${X:?}}` fails when `X` is unset.
//! * Unquoted expansions are split into words by [`Lexer::process_words`], including the
//!   result of `${v:-"a b"}` (the quotes inside the braces do not protect it).
//! * Patterns (`#`, `%`, `/`) are not full globs: only `*`, `?` and backslash escapes are
//!   special, `[`…`]` is literal, and `*`/`?` do not match a newline. Quotes in a pattern are
//!   removed but do not make `*` literal; values of variables expanded into a pattern are
//!   pattern text too (`${v#$P}` with `P='\*'` removes a literal `*`).
//! * Escapes are kept in the replacement of `${v/p/r}`: `${v//\//\/}` turns `/a` into `\/a`.
//! * `${v##p}` is chosen when the *expanded* pattern word starts with `#`: `${v#$P}` with
//!   `P=#x` removes the longest match of `x`.
//! * [`Lexer::process_words`] never yields an empty word: `""` alone gives no word at all.

mod glob;

use std::borrow::Borrow;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::{BuildHasher, Hash};

/// Where variable values come from.
///
/// Implemented for lists of `"NAME=value"` strings (BuildKit's rules: the last entry for a
/// name wins, and an entry without `=` sets the name to the empty string), and for
/// `HashMap`/`BTreeMap` from names to values. Call it as `Env::get(&list, "NAME")` on a
/// `Vec` or slice, whose own `get` method indexes.
pub trait Env {
    /// The value of `name`, or `None` when it is not set. Set-but-empty is `Some("")`.
    fn get(&self, name: &str) -> Option<&str>;
}

impl<T: Env + ?Sized> Env for &T {
    fn get(&self, name: &str) -> Option<&str> {
        (**self).get(name)
    }
}

impl<S: AsRef<str>> Env for [S] {
    fn get(&self, name: &str) -> Option<&str> {
        self.iter().rev().find_map(|entry| {
            let entry = entry.as_ref();
            match entry.split_once('=') {
                Some((key, value)) => (key == name).then_some(value),
                None => (entry == name).then_some(""),
            }
        })
    }
}

impl<S: AsRef<str>> Env for Vec<S> {
    fn get(&self, name: &str) -> Option<&str> {
        Env::get(self.as_slice(), name)
    }
}

impl<S: AsRef<str>, const N: usize> Env for [S; N] {
    fn get(&self, name: &str) -> Option<&str> {
        Env::get(self.as_slice(), name)
    }
}

impl<K, V, H> Env for HashMap<K, V, H>
where
    K: Borrow<str> + Hash + Eq,
    V: AsRef<str>,
    H: BuildHasher,
{
    fn get(&self, name: &str) -> Option<&str> {
        HashMap::get(self, name).map(AsRef::as_ref)
    }
}

impl<K, V> Env for BTreeMap<K, V>
where
    K: Borrow<str> + Ord,
    V: AsRef<str>,
{
    fn get(&self, name: &str) -> Option<&str> {
        BTreeMap::get(self, name).map(AsRef::as_ref)
    }
}

/// The result of expanding one word.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expanded {
    /// The word with quotes removed, escapes processed and variables expanded
    /// (BuildKit's `ProcessWord`).
    pub value: String,
    /// The same expansion split on unquoted whitespace, including whitespace that came from
    /// unquoted variable values (BuildKit's `ProcessWords`). Never contains an empty word.
    pub words: Vec<String>,
    /// Names that were looked up and were set (possibly to the empty string). BuildKit calls
    /// these "matched"; they decide which build args a step depends on.
    pub used: BTreeSet<String>,
    /// Names that were looked up and were not set ("unmatched" in BuildKit).
    pub unset: BTreeSet<String>,
}

/// Why a word could not be expanded. Every message starts with the word in backticks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ShellError {
    /// A quote was opened and never closed.
    #[error("`{word}`: no closing {quote} quote")]
    UnterminatedQuote {
        /// The whole word being expanded.
        word: String,
        /// `'` or `"`.
        quote: char,
    },
    /// A `${…}` ran to the end of the word without its closing character.
    #[error("`{word}`: variable substitution has no closing `{expected}`")]
    Unterminated {
        /// The whole word being expanded.
        word: String,
        /// `}`, or the `/` after the pattern of `${v/p/r}`.
        expected: char,
    },
    /// `${}`, `${:…}`, `${{…}` or a `${…}` with no variable name.
    #[error("`{word}`: bad substitution `{expr}`")]
    BadSubstitution {
        /// The whole word being expanded.
        word: String,
        /// The offending `${…` text.
        expr: String,
    },
    /// A modifier BuildKit does not support, such as `:=`, `=` or `:#`.
    #[error("`{word}`: unsupported modifier `{modifier}` in `{expr}`")]
    UnsupportedModifier {
        /// The whole word being expanded.
        word: String,
        /// The offending `${…` text.
        expr: String,
        /// The modifier as written, e.g. `:=`.
        modifier: String,
    },
    /// `${v?msg}` with `v` unset, or `${v:?msg}` with `v` unset or empty.
    #[error("`{word}`: {}", required_message(.name, *.empty, .message))]
    Required {
        /// The whole word being expanded.
        word: String,
        /// The variable.
        name: String,
        /// `true` when the variable is set but empty (only with `:?`).
        empty: bool,
        /// The expanded message after `?`, when not empty.
        message: Option<String>,
    },
}

fn required_message(name: &str, empty: bool, message: &Option<String>) -> String {
    match (message, empty) {
        (Some(message), _) => format!("{name}: {message}"),
        (None, true) => format!("{name} is empty"),
        (None, false) => format!("{name} is not set"),
    }
}

/// Expands words with BuildKit's shell-lexer semantics (see the module documentation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lexer {
    escape: char,
    raw_quotes: bool,
    raw_escapes: bool,
    skip_unset_env: bool,
}

impl Default for Lexer {
    /// A lexer with the default escape character, backslash.
    fn default() -> Self {
        Lexer::new('\\')
    }
}

impl Lexer {
    /// A lexer using `escape` as the escape character (`\` or `` ` ``, from the Dockerfile's
    /// `escape` directive), with every option off.
    pub fn new(escape: char) -> Self {
        Lexer {
            escape,
            raw_quotes: false,
            raw_escapes: false,
            skip_unset_env: false,
        }
    }

    /// The escape character.
    pub fn escape(&self) -> char {
        self.escape
    }

    /// Keep quote characters in the output (they still group and protect text).
    /// BuildKit's `RawQuotes`.
    pub fn with_raw_quotes(mut self, on: bool) -> Self {
        self.raw_quotes = on;
        self
    }

    /// Keep escape characters in the output next to the character they escape.
    /// BuildKit's `RawEscapes`.
    pub fn with_raw_escapes(mut self, on: bool) -> Self {
        self.raw_escapes = on;
        self
    }

    /// Leave a substitution of an unset variable as written (`$X`, `${X:-w}`, …) instead of
    /// expanding it. BuildKit's `SkipUnsetEnv`; unlike BuildKit, which rebuilds the text from
    /// the already-expanded modifier word, the original text is kept byte for byte.
    pub fn with_skip_unset_env(mut self, on: bool) -> Self {
        self.skip_unset_env = on;
        self
    }

    /// Expands one word (BuildKit's `ProcessWordWithMatches`): quotes removed, escapes
    /// processed, variables expanded, no splitting in [`Expanded::value`]. The split form is
    /// in [`Expanded::words`], and the variables looked up in [`Expanded::used`] and
    /// [`Expanded::unset`].
    pub fn process_word<E: Env + ?Sized>(
        &self,
        word: &str,
        env: &E,
    ) -> Result<Expanded, ShellError> {
        let mut expander = Expander {
            lexer: self,
            env,
            src: word,
            pos: 0,
            used: BTreeSet::new(),
            unset: BTreeSet::new(),
        };
        let mut words = Words::default();
        let value = expander.sequence(None, self.raw_escapes, &mut words)?;
        words.finish();
        Ok(Expanded {
            value,
            words: words.done,
            used: expander.used,
            unset: expander.unset,
        })
    }

    /// Expands `word` and splits it into words (BuildKit's `ProcessWords`): unquoted and
    /// unescaped whitespace separates words, also when it comes from a variable's value.
    pub fn process_words<E: Env + ?Sized>(
        &self,
        word: &str,
        env: &E,
    ) -> Result<Vec<String>, ShellError> {
        Ok(self.process_word(word, env)?.words)
    }
}

/// Word splitting state.
#[derive(Default)]
struct Words {
    done: Vec<String>,
    current: String,
}

impl Words {
    /// Text that cannot split a word (quoted or escaped).
    fn protected(&mut self, text: &str) {
        self.current.push_str(text);
    }

    /// Text whose whitespace separates words.
    fn splittable(&mut self, text: &str) {
        for c in text.chars() {
            if c.is_whitespace() {
                self.finish();
            } else {
                self.current.push(c);
            }
        }
    }

    fn finish(&mut self) {
        if !self.current.is_empty() {
            self.done.push(std::mem::take(&mut self.current));
        }
    }
}

/// The state of one expansion.
struct Expander<'a, E: ?Sized> {
    lexer: &'a Lexer,
    env: &'a E,
    src: &'a str,
    /// Byte offset of the next character of `src`; always on a character boundary.
    pos: usize,
    used: BTreeSet<String>,
    unset: BTreeSet<String>,
}

fn is_special_parameter(c: char) -> bool {
    matches!(c, '@' | '*' | '#' | '?' | '-' | '$' | '!')
}

impl<'a, E: Env + ?Sized> Expander<'a, E> {
    fn peek(&self) -> Option<char> {
        self.src
            .get(self.pos..)
            .and_then(|rest| rest.chars().next())
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    /// `src[start..pos]`: the text of the substitution that began at `start`.
    fn written_since(&self, start: usize) -> String {
        self.src.get(start..self.pos).unwrap_or_default().to_owned()
    }

    /// The substitution that began at `start`, up to its first `}` if any, for messages.
    fn expr_at(&self, start: usize) -> String {
        let rest = self.src.get(start..).unwrap_or_default();
        match rest.find('}') {
            Some(close) => rest.get(..=close).unwrap_or(rest).to_owned(),
            None => rest.to_owned(),
        }
    }

    fn lookup(&mut self, name: &str) -> Option<&'a str> {
        let env = self.env;
        let value = env.get(name);
        let set = if value.is_some() {
            &mut self.used
        } else {
            &mut self.unset
        };
        set.insert(name.to_owned());
        value
    }

    fn unterminated(&self, expected: char) -> ShellError {
        ShellError::Unterminated {
            word: self.src.to_owned(),
            expected,
        }
    }

    fn bad_substitution(&self, start: usize) -> ShellError {
        ShellError::BadSubstitution {
            word: self.src.to_owned(),
            expr: self.expr_at(start),
        }
    }

    fn unsupported(&self, start: usize, modifier: String) -> ShellError {
        ShellError::UnsupportedModifier {
            word: self.src.to_owned(),
            expr: self.expr_at(start),
            modifier,
        }
    }

    /// Processes text up to `stop` (consumed, not included) or, with `None`, to the end.
    /// `raw_escapes` keeps escape characters in the result (used for patterns).
    fn sequence(
        &mut self,
        stop: Option<char>,
        raw_escapes: bool,
        words: &mut Words,
    ) -> Result<String, ShellError> {
        let mut out = String::new();
        while let Some(c) = self.peek() {
            if Some(c) == stop {
                self.bump();
                return Ok(out);
            }
            match c {
                '$' => {
                    let value = self.dollar()?;
                    words.splittable(&value);
                    out.push_str(&value);
                }
                '\'' => {
                    let value = self.single_quoted()?;
                    words.protected(&value);
                    out.push_str(&value);
                }
                '"' => {
                    let value = self.double_quoted(raw_escapes)?;
                    words.protected(&value);
                    out.push_str(&value);
                }
                c if c == self.lexer.escape => {
                    self.bump();
                    let mut escaped = String::new();
                    if raw_escapes {
                        escaped.push(c);
                    }
                    // An escape character at the very end of the word escapes nothing and
                    // is dropped (kept in raw mode).
                    if let Some(next) = self.bump() {
                        escaped.push(next);
                    }
                    words.protected(&escaped);
                    out.push_str(&escaped);
                }
                c => {
                    self.bump();
                    let mut buf = [0; 4];
                    words.splittable(c.encode_utf8(&mut buf));
                    out.push(c);
                }
            }
        }
        match stop {
            Some(expected) => Err(self.unterminated(expected)),
            None => Ok(out),
        }
    }

    fn single_quoted(&mut self) -> Result<String, ShellError> {
        self.bump();
        let mut out = String::new();
        if self.lexer.raw_quotes {
            out.push('\'');
        }
        loop {
            match self.bump() {
                None => {
                    return Err(ShellError::UnterminatedQuote {
                        word: self.src.to_owned(),
                        quote: '\'',
                    });
                }
                Some('\'') => break,
                Some(c) => out.push(c),
            }
        }
        if self.lexer.raw_quotes {
            out.push('\'');
        }
        Ok(out)
    }

    fn double_quoted(&mut self, raw_escapes: bool) -> Result<String, ShellError> {
        self.bump();
        let mut out = String::new();
        if self.lexer.raw_quotes {
            out.push('"');
        }
        let escape = self.lexer.escape;
        loop {
            match self.peek() {
                None => {
                    return Err(ShellError::UnterminatedQuote {
                        word: self.src.to_owned(),
                        quote: '"',
                    });
                }
                Some('"') => {
                    self.bump();
                    break;
                }
                Some('$') => {
                    let value = self.dollar()?;
                    out.push_str(&value);
                }
                Some(c) => {
                    self.bump();
                    if c == escape {
                        match self.peek() {
                            Some(next) if next == '"' || next == '$' || next == escape => {
                                self.bump();
                                if raw_escapes {
                                    out.push(c);
                                }
                                out.push(next);
                            }
                            // Escapes nothing: the escape character is literal. At the end
                            // of the word the next turn reports the missing quote.
                            _ => out.push(c),
                        }
                    } else {
                        out.push(c);
                    }
                }
            }
        }
        if self.lexer.raw_quotes {
            out.push('"');
        }
        Ok(out)
    }

    /// Reads a variable name (possibly empty) at the current position.
    fn name(&mut self) -> String {
        let mut name = String::new();
        match self.peek() {
            Some(c) if c.is_numeric() => {
                while let Some(c) = self.peek().filter(|c| c.is_numeric()) {
                    self.bump();
                    name.push(c);
                }
            }
            Some(c) if is_special_parameter(c) => {
                self.bump();
                name.push(c);
            }
            _ => {
                while let Some(c) = self.peek().filter(|&c| c.is_alphanumeric() || c == '_') {
                    self.bump();
                    name.push(c);
                }
            }
        }
        name
    }

    /// A `$…` at the current position.
    fn dollar(&mut self) -> Result<String, ShellError> {
        let start = self.pos;
        self.bump();
        if self.peek() != Some('{') {
            let name = self.name();
            if name.is_empty() {
                return Ok("$".to_owned());
            }
            return Ok(match self.lookup(&name) {
                Some(value) => value.to_owned(),
                None if self.lexer.skip_unset_env => self.written_since(start),
                None => String::new(),
            });
        }
        self.bump();
        match self.peek() {
            None => return Err(self.unterminated('}')),
            Some('{' | '}' | ':') => return Err(self.bad_substitution(start)),
            Some(_) => {}
        }
        let name = self.name();
        if name.is_empty() {
            return Err(self.bad_substitution(start));
        }
        match self.bump() {
            None => Err(self.unterminated('}')),
            Some('}') => Ok(match self.lookup(&name) {
                Some(value) => value.to_owned(),
                None if self.lexer.skip_unset_env => self.written_since(start),
                None => String::new(),
            }),
            Some(':') => match self.bump() {
                Some(op @ ('-' | '+' | '?')) => self.alternative(start, &name, op, true),
                Some(op) => Err(self.unsupported(start, format!(":{op}"))),
                None => Err(self.unterminated('}')),
            },
            Some(op @ ('-' | '+' | '?')) => self.alternative(start, &name, op, false),
            Some(op @ ('#' | '%')) => self.trim(start, &name, op),
            Some('/') => self.replace(start, &name),
            Some(op) => Err(self.unsupported(start, op.to_string())),
        }
    }

    /// `${name-w}`, `${name+w}`, `${name?w}` and their colon forms (`colon`: an empty
    /// value counts as unset).
    fn alternative(
        &mut self,
        start: usize,
        name: &str,
        op: char,
        colon: bool,
    ) -> Result<String, ShellError> {
        // BuildKit expands the word first, whether or not it will be used.
        let word = self.sequence(Some('}'), self.lexer.raw_escapes, &mut Words::default())?;
        let value = self.lookup(name);
        if value.is_none() && self.lexer.skip_unset_env {
            return Ok(self.written_since(start));
        }
        let present = value.filter(|v| !(colon && v.is_empty()));
        match op {
            '-' => Ok(present.map_or(word, str::to_owned)),
            '+' => Ok(if present.is_some() {
                word
            } else {
                String::new()
            }),
            _ => match present {
                Some(value) => Ok(value.to_owned()),
                None => Err(ShellError::Required {
                    word: self.src.to_owned(),
                    name: name.to_owned(),
                    empty: value.is_some(),
                    message: (!word.is_empty()).then_some(word),
                }),
            },
        }
    }

    /// `${name#p}`, `${name##p}`, `${name%p}`, `${name%%p}`.
    fn trim(&mut self, start: usize, name: &str, op: char) -> Result<String, ShellError> {
        let word = self.sequence(Some('}'), true, &mut Words::default())?;
        let value = self.lookup(name);
        if value.is_none() && self.lexer.skip_unset_env {
            return Ok(self.written_since(start));
        }
        // The doubled operator is recognised on the expanded word, as BuildKit does.
        let (longest, pattern) = match word.strip_prefix(op) {
            Some(rest) => (true, rest),
            None => (false, word.as_str()),
        };
        let pattern = glob::Pattern::parse(pattern);
        let value = value.unwrap_or_default();
        Ok(if op == '#' {
            pattern.trim_prefix(value, longest)
        } else {
            pattern.trim_suffix(value, longest)
        })
    }

    /// `${name/p/r}` and `${name//p/r}`.
    fn replace(&mut self, start: usize, name: &str) -> Result<String, ShellError> {
        let all = self.peek() == Some('/');
        if all {
            self.bump();
        }
        let pattern = self.sequence(Some('/'), true, &mut Words::default())?;
        let replacement = self.sequence(Some('}'), true, &mut Words::default())?;
        let value = self.lookup(name);
        if value.is_none() && self.lexer.skip_unset_env {
            return Ok(self.written_since(start));
        }
        let pattern = glob::Pattern::parse(&pattern);
        Ok(pattern.replace(value.unwrap_or_default(), &replacement, all))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::collections::{BTreeMap, HashMap};

    use super::{Env, Lexer, ShellError};

    fn word(input: &str, env: &[&str]) -> String {
        Lexer::default().process_word(input, env).unwrap().value
    }

    fn words(input: &str, env: &[&str]) -> Vec<String> {
        Lexer::default().process_words(input, env).unwrap()
    }

    fn error(input: &str, env: &[&str]) -> ShellError {
        Lexer::default().process_word(input, env).unwrap_err()
    }

    #[test]
    fn shell_env_list_rules() {
        let list = vec![
            "a=1".to_owned(),
            "b".to_owned(),
            "a=2".to_owned(),
            "c==x".to_owned(),
        ];
        assert_eq!(Env::get(&list, "a"), Some("2"));
        assert_eq!(Env::get(&list, "b"), Some(""));
        assert_eq!(Env::get(&list, "c"), Some("=x"));
        assert_eq!(Env::get(&list, "d"), None);
        assert_eq!(Env::get(&["A=x"], "a"), None, "names are case-sensitive");
        let map: HashMap<String, String> = [("k".to_owned(), "v".to_owned())].into();
        assert_eq!(Env::get(&map, "k"), Some("v"));
        let map: BTreeMap<&str, &str> = [("k", "")].into();
        assert_eq!(Env::get(&map, "k"), Some(""));
        let dynamic: &dyn Env = &map;
        assert_eq!(
            Lexer::default()
                .process_word("[$k]", dynamic)
                .unwrap()
                .value,
            "[]"
        );
    }

    #[test]
    fn shell_basic_expansion() {
        let env = ["A=a b", "E="];
        assert_eq!(word("x$A-${A}'$A'\"$A\"", &env), "xa b-a b$Aa b");
        assert_eq!(
            word("${E:-d}${E-d}${U-d}${A:+p}${E:+p}${E+p}", &env),
            "ddpp"
        );
        assert_eq!(word("$", &env), "$");
        assert_eq!(word("a\\", &env), "a");
        assert_eq!(word("$1$@x$$${#}", &env), "x");
        assert_eq!(word("$$${#}{#}", &env), "{#}");
    }

    #[test]
    fn shell_matches() {
        let out = Lexer::default()
            .process_word("${A:-$B} ${C+${D}} $E", &["A=1", "E="])
            .unwrap();
        assert_eq!(out.value, "1  ");
        assert_eq!(out.used.into_iter().collect::<Vec<_>>(), ["A", "E"]);
        assert_eq!(out.unset.into_iter().collect::<Vec<_>>(), ["B", "C", "D"]);
    }

    #[test]
    fn shell_unused_modifier_word_is_still_expanded() {
        // BuildKit expands the alternative before it looks at the variable.
        let err = error("${A:-${B:?}}", &["A=1"]);
        assert!(matches!(err, ShellError::Required { ref name, .. } if name == "B"));
    }

    #[test]
    fn shell_word_splitting() {
        let env = ["S= a  b ", "Q=x y"];
        assert_eq!(words("1${S}2", &env), ["1", "a", "b", "2"]);
        assert_eq!(words("1\"$S\"2 '' \"\"", &env), ["1 a  b 2"]);
        assert_eq!(words("a\\ b\tc\nd", &env), ["a b", "c", "d"]);
        // Quotes inside a modifier word do not protect the expansion from splitting.
        assert_eq!(words("${U:-\"p q\"}", &env), ["p", "q"]);
        assert_eq!(words("\"${U:-\"p q\"}\"", &env), ["p q"]);
        assert!(words("", &env).is_empty());
    }

    #[test]
    fn shell_patterns() {
        let env = ["P=/usr/local/bin/tool.tar.gz", "H=#*/"];
        assert_eq!(word("${P#*/}", &env), "usr/local/bin/tool.tar.gz");
        assert_eq!(word("${P##*/}", &env), "tool.tar.gz");
        assert_eq!(word("${P%.*}", &env), "/usr/local/bin/tool.tar");
        assert_eq!(word("${P%%.*}", &env), "/usr/local/bin/tool");
        assert_eq!(word("${P/local/}", &env), "/usr//bin/tool.tar.gz");
        assert_eq!(word("${P//[/}", &env), "/usr/local/bin/tool.tar.gz");
        assert_eq!(word("${P//\"/\"/:}", &env), ":usr:local:bin:tool.tar.gz");
        // The doubled operator is recognised after expansion.
        assert_eq!(word("${P#$H}", &env), "tool.tar.gz");
        assert_eq!(word("a${U#x}b", &env), "ab");
        // Escapes stay in the replacement.
        assert_eq!(word("${P//\\//\\/}", &["P=/a"]), "\\/a");
        assert_eq!(word("${V#$S}", &["V=**", "S=\\*"]), "*");
        assert_eq!(word("${V##\"*\"}", &["V=**"]), "");
    }

    #[test]
    fn shell_errors() {
        let cases: &[(&str, &str)] = &[
            ("a'b", "`a'b`: no closing ' quote"),
            ("\"a\\\"", "`\"a\\\"`: no closing \" quote"),
            ("${A", "`${A`: variable substitution has no closing `}`"),
            (
                "${A:-x",
                "`${A:-x`: variable substitution has no closing `}`",
            ),
            (
                "${A/x}",
                "`${A/x}`: variable substitution has no closing `/`",
            ),
            ("x${}y", "`x${}y`: bad substitution `${}`"),
            ("${.}", "`${.}`: bad substitution `${.}`"),
            (
                "${A:=b}",
                "`${A:=b}`: unsupported modifier `:=` in `${A:=b}`",
            ),
            (
                "${A:#b}",
                "`${A:#b}`: unsupported modifier `:#` in `${A:#b}`",
            ),
            ("${A=b}", "`${A=b}`: unsupported modifier `=` in `${A=b}`"),
            ("${U:?}", "`${U:?}`: U is not set"),
            ("${E:?}", "`${E:?}`: E is empty"),
            ("${U?}", "`${U?}`: U is not set"),
            ("${U?need $E-$A}", "`${U?need $E-$A}`: U: need -1"),
        ];
        for (input, message) in cases {
            let err = Lexer::default()
                .process_word(input, &["E=", "A=1"])
                .unwrap_err();
            assert_eq!(err.to_string(), *message, "{input}");
        }
        assert_eq!(word("${E?}", &["E="]), "");
    }

    #[test]
    fn shell_backtick_escape() {
        let lexer = Lexer::new('`');
        let env = ["A=1"];
        assert_eq!(
            lexer.process_word("C:\\dir\\$A", &env).unwrap().value,
            "C:\\dir\\1"
        );
        assert_eq!(lexer.process_word("`$A ``", &env).unwrap().value, "$A `");
        assert_eq!(
            lexer.process_word("\"`\"`$A`x\"", &env).unwrap().value,
            "\"$A`x"
        );
        assert_eq!(lexer.process_words("a` b c", &env).unwrap(), ["a b", "c"]);
    }

    #[test]
    fn shell_raw_options() {
        let env = ["A=1"];
        let raw = Lexer::default().with_raw_quotes(true);
        assert_eq!(
            raw.process_word("'$A' \"$A\"", &env).unwrap().value,
            "'$A' \"1\""
        );
        assert_eq!(raw.process_words("'a b' c", &env).unwrap(), ["'a b'", "c"]);
        let raw = Lexer::default().with_raw_escapes(true);
        assert_eq!(
            raw.process_word("\\$A \"\\$A\\x\" \\", &env).unwrap().value,
            "\\$A \\$A\\x \\"
        );
        assert_eq!(raw.process_word("${U:-\\x}", &env).unwrap().value, "\\x");
    }

    #[test]
    fn shell_skip_unset_env() {
        let lexer = Lexer::default().with_skip_unset_env(true);
        let env = ["A=1", "E="];
        let out = lexer
            .process_word("$A $U ${U} ${U:-\"x y\"} ${U#*} ${U//a/b} ${E:-d} $1", &env)
            .unwrap();
        assert_eq!(out.value, "1 $U ${U} ${U:-\"x y\"} ${U#*} ${U//a/b} d $1");
        assert!(out.unset.contains("U"));
        assert_eq!(lexer.process_word("${U?}", &env).unwrap().value, "${U?}");
    }

    #[test]
    fn shell_unicode_names_and_values() {
        let env = ["이름=값", "K=한국어"];
        assert_eq!(word("$이름-${K#한}", &env), "값-국어");
        assert_eq!(word("${K/국/-}", &env), "한-어");
    }
}
