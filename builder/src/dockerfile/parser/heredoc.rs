//! Heredoc delimiters (`<<EOF`, `<<-'EOF'`, `3<<EOF`, `<< EOF`) and their bodies.
//!
//! BuildKit finds heredocs by lexing the instruction line with its shell lexer (escape `\`,
//! no variables set, unset variables kept as written) and matching every word against
//! `^(\d*)<<(-?)([^<]*)$`. The small lexer below does just that much of the shell lexer:
//! word splitting, quotes, `\` escapes and the syntax (not the values) of `$VAR`/`${…}`,
//! including the syntax errors that make upstream see no heredoc at all.

use super::{HeredocHead, HeredocWordError};

/// The heredoc lexer always uses `\`, whatever the Dockerfile's escape character.
const ESCAPE: char = '\\';

/// Nesting limit for `${a:-${b:-…}}` (upstream has none; we stop to protect the stack).
const MAX_DOLLAR_DEPTH: usize = 64;

/// Reads one heredoc delimiter word (BuildKit's `ParseHeredoc`).
///
/// Returns None when `word` is not a heredoc (`EOF`, `<<`, `<<<EOF`, `<<EOF sh`, …),
/// `Some(Err)` when it is one but malformed (`<<'EOF`), else the delimiter.
pub fn parse_heredoc(word: &str) -> Option<Result<HeredocHead, HeredocWordError>> {
    let (fd, chomp, rest) = match_heredoc(word)?;
    if rest.is_empty() {
        return None;
    }
    let words = match lex_words(rest, false, false) {
        Ok(w) => w,
        Err(e) => return Some(Err(e)),
    };
    let [name] = words.as_slice() else {
        return None;
    };
    let raw = match lex_words(rest, true, false) {
        Ok(w) => w,
        Err(e) => return Some(Err(e)),
    };
    let [raw_name] = raw.as_slice() else {
        return Some(Err(HeredocWordError(format!(
            "internal lexing of heredoc produced inconsistent results: {rest}"
        ))));
    };
    let quotes = |s: &str| s.chars().filter(|&c| c == '\'' || c == '"').count();
    Some(Ok(HeredocHead {
        name: name.clone(),
        file_descriptor: parse_fd(fd),
        expand: quotes(name) == quotes(raw_name),
        chomp,
    }))
}

/// The heredocs of an instruction line, in order (BuildKit's `heredocsFromLine`). The line
/// is split into words keeping quotes and escapes; a line the lexer rejects (an unterminated
/// quote, a bad `${…}`) has no heredocs. A bare `<<` or `<<-` (possibly with a descriptor)
/// takes the next word as its delimiter, so `<<  EOF` and `<< -EOF` work.
pub fn heredocs_from_line(line: &str) -> Result<Vec<HeredocHead>, HeredocWordError> {
    let words = lex_words(line, true, true).unwrap_or_default();
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(word) = words.get(i) {
        if let (true, Some(next)) = (is_bare_operator(word), words.get(i + 1)) {
            match parse_heredoc(&format!("{word} {next}")) {
                Some(Ok(head)) => {
                    out.push(head);
                    i += 2;
                    continue;
                }
                Some(Err(e)) => return Err(e),
                None => {}
            }
        }
        match parse_heredoc(word) {
            Some(Ok(head)) => out.push(head),
            Some(Err(e)) => return Err(e),
            None => {}
        }
        i += 1;
    }
    Ok(out)
}

/// Removes the leading tabs of every line (BuildKit's `ChompHeredocContent`, for `<<-`).
pub fn chomp_heredoc_content(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for (i, line) in s.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(line.trim_start_matches('\t'));
    }
    out
}

/// Matches `^(\d*)<<(-?)([^<]*)$`: the descriptor digits, whether `-` was there, the rest.
fn match_heredoc(word: &str) -> Option<(&str, bool, &str)> {
    let digits = word.bytes().take_while(u8::is_ascii_digit).count();
    let (fd, after) = word.split_at_checked(digits)?;
    let after = after.strip_prefix("<<")?;
    let (chomp, rest) = match after.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, after),
    };
    if rest.contains('<') {
        return None;
    }
    Some((fd, chomp, rest))
}

/// `^\d*<<-?$`: an operator waiting for its delimiter in the next word.
fn is_bare_operator(word: &str) -> bool {
    matches!(match_heredoc(word), Some((_, _, "")))
}

/// Go's `strconv.ParseUint(s, 10, 0)` with the error ignored: empty is 0, overflow is the
/// maximum (here `u32::MAX`).
fn parse_fd(digits: &str) -> u32 {
    let mut v: u32 = 0;
    for b in digits.bytes() {
        v = v.saturating_mul(10).saturating_add(u32::from(b - b'0'));
    }
    v
}

/// Splits `src` into shell words as BuildKit's `Lex.ProcessWords` does with escape `\`, an
/// empty environment and `SkipUnsetEnv` (so `$X` stays `$X`).
fn lex_words(
    src: &str,
    raw_quotes: bool,
    raw_escapes: bool,
) -> Result<Vec<String>, HeredocWordError> {
    let mut lexer = Lexer {
        chars: src.chars().collect(),
        pos: 0,
        raw_quotes,
        raw_escapes,
        depth: 0,
    };
    let (_, words) = lexer.process_stop_on(None)?;
    Ok(words)
}

struct Lexer {
    chars: Vec<char>,
    pos: usize,
    raw_quotes: bool,
    raw_escapes: bool,
    depth: usize,
}

/// Word accumulation (BuildKit's `wordsStruct`).
#[derive(Default)]
struct Words {
    word: String,
    words: Vec<String>,
    in_word: bool,
}

impl Words {
    fn add_char(&mut self, ch: char) {
        if ch.is_whitespace() {
            if self.in_word && !self.word.is_empty() {
                self.words.push(std::mem::take(&mut self.word));
                self.in_word = false;
            }
        } else {
            self.add_raw_char(ch);
        }
    }

    fn add_raw_char(&mut self, ch: char) {
        self.word.push(ch);
        self.in_word = true;
    }

    fn add_string(&mut self, s: &str) {
        for ch in s.chars() {
            self.add_char(ch);
        }
    }

    fn add_raw_string(&mut self, s: &str) {
        self.word.push_str(s);
        self.in_word = true;
    }

    fn finish(mut self) -> Vec<String> {
        if !self.word.is_empty() {
            self.words.push(self.word);
        }
        self.words
    }
}

fn err(msg: &str) -> HeredocWordError {
    HeredocWordError(msg.to_string())
}

impl Lexer {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        if c.is_some() {
            self.pos += 1;
        }
        c
    }

    /// Processes up to `stop` (consumed) or the end; returns the text and the words.
    fn process_stop_on(
        &mut self,
        stop: Option<char>,
    ) -> Result<(String, Vec<String>), HeredocWordError> {
        let mut result = String::new();
        let mut words = Words::default();
        while let Some(ch) = self.peek() {
            if Some(ch) == stop {
                self.pos += 1;
                return Ok((result, words.finish()));
            }
            match ch {
                '\'' | '"' => {
                    let tmp = if ch == '\'' {
                        self.single_quote()?
                    } else {
                        self.double_quote()?
                    };
                    result.push_str(&tmp);
                    words.add_raw_string(&tmp);
                }
                '$' => {
                    let tmp = self.dollar()?;
                    result.push_str(&tmp);
                    words.add_string(&tmp);
                }
                _ => {
                    self.pos += 1;
                    let mut c = ch;
                    if ch == ESCAPE {
                        if self.raw_escapes {
                            words.add_raw_char(ch);
                            result.push(ch);
                        }
                        match self.next() {
                            None => break,
                            Some(next) => {
                                c = next;
                                words.add_raw_char(c);
                            }
                        }
                    } else {
                        words.add_char(c);
                    }
                    result.push(c);
                }
            }
        }
        match stop {
            Some(s) => Err(HeredocWordError(format!(
                "unexpected end of statement while looking for matching {s}"
            ))),
            None => Ok((result, words.finish())),
        }
    }

    fn single_quote(&mut self) -> Result<String, HeredocWordError> {
        let mut out = String::new();
        let open = self.next();
        if self.raw_quotes {
            out.extend(open);
        }
        loop {
            match self.next() {
                None => {
                    return Err(err(
                        "unexpected end of statement while looking for matching single-quote",
                    ));
                }
                Some('\'') => {
                    if self.raw_quotes {
                        out.push('\'');
                    }
                    return Ok(out);
                }
                Some(c) => out.push(c),
            }
        }
    }

    fn double_quote(&mut self) -> Result<String, HeredocWordError> {
        let mut out = String::new();
        let open = self.next();
        if self.raw_quotes {
            out.extend(open);
        }
        loop {
            match self.peek() {
                None => {
                    return Err(err(
                        "unexpected end of statement while looking for matching double-quote",
                    ));
                }
                Some('"') => {
                    self.pos += 1;
                    if self.raw_quotes {
                        out.push('"');
                    }
                    return Ok(out);
                }
                Some('$') => {
                    let v = self.dollar()?;
                    out.push_str(&v);
                }
                Some(ch) => {
                    self.pos += 1;
                    if ch == ESCAPE {
                        match self.peek() {
                            None => continue,
                            Some(next @ ('"' | '$' | ESCAPE)) => {
                                if self.raw_escapes {
                                    out.push(ESCAPE);
                                }
                                self.pos += 1;
                                out.push(next);
                                continue;
                            }
                            Some(_) => {}
                        }
                    }
                    out.push(ch);
                }
            }
        }
    }

    /// `$…` with every variable unset and kept as written.
    fn dollar(&mut self) -> Result<String, HeredocWordError> {
        self.depth += 1;
        let r = self.dollar_inner();
        self.depth -= 1;
        r
    }

    fn dollar_inner(&mut self) -> Result<String, HeredocWordError> {
        if self.depth > MAX_DOLLAR_DEPTH {
            return Err(err("substitutions nested too deeply"));
        }
        let start = self.pos;
        self.pos += 1; // '$'
        if self.peek() != Some('{') {
            let name = self.process_name();
            if name.is_empty() {
                return Ok("$".to_string());
            }
            return Ok(format!("${name}"));
        }
        self.pos += 1; // '{'
        match self.peek() {
            None => return Err(err("syntax error: missing '}'")),
            Some('{' | '}' | ':') => return Err(err("syntax error: bad substitution")),
            Some(_) => {}
        }
        self.process_name();
        let missing = |this: &Self, e: HeredocWordError| {
            if this.peek().is_none() {
                err("syntax error: missing '}'")
            } else {
                e
            }
        };
        match self.next() {
            Some('}') => {}
            Some('?' | '-' | '+') => {
                self.process_stop_on(Some('}'))
                    .map_err(|e| missing(self, e))?;
            }
            Some(':') => {
                self.next();
                self.process_stop_on(Some('}'))
                    .map_err(|e| missing(self, e))?;
            }
            Some(c @ ('#' | '%')) => {
                if self.peek() == Some(c) {
                    self.pos += 1;
                }
                self.process_stop_on(Some('}'))
                    .map_err(|e| missing(self, e))?;
            }
            Some('/') => {
                if self.peek() == Some('/') {
                    self.pos += 1;
                }
                self.process_stop_on(Some('/')).map_err(|e| {
                    if self.peek().is_none() {
                        err("syntax error: missing '/' in ${}")
                    } else {
                        e
                    }
                })?;
                self.process_stop_on(Some('}'))
                    .map_err(|e| missing(self, e))?;
            }
            Some(c) => {
                return Err(HeredocWordError(format!(
                    "unsupported modifier ({c}) in substitution"
                )));
            }
            None => return Err(err("syntax error: missing '}'")),
        }
        // Unset and skipped: the substitution stays as written.
        Ok(self
            .chars
            .get(start..self.pos)
            .unwrap_or(&[])
            .iter()
            .collect())
    }

    /// A variable name: digits (positional), one special parameter, or letters/digits/`_`.
    fn process_name(&mut self) -> String {
        let mut name = String::new();
        while let Some(ch) = self.peek() {
            if name.is_empty() && ch.is_numeric() {
                while let Some(d) = self.peek().filter(|c| c.is_numeric()) {
                    name.push(d);
                    self.pos += 1;
                }
                return name;
            }
            if name.is_empty() && matches!(ch, '@' | '*' | '#' | '?' | '-' | '$' | '!' | '0') {
                self.pos += 1;
                return ch.to_string();
            }
            if !(ch.is_alphabetic() || ch.is_numeric() || ch == '_') {
                break;
            }
            name.push(ch);
            self.pos += 1;
        }
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parser_heredoc_words_basic() {
        let h = parse_heredoc("<<-\"EOF\"").unwrap().unwrap();
        assert_eq!(
            (h.name.as_str(), h.chomp, h.expand, h.file_descriptor),
            ("EOF", true, false, 0)
        );
        let h = parse_heredoc("12<<EOF").unwrap().unwrap();
        assert_eq!(
            (h.name.as_str(), h.file_descriptor, h.expand),
            ("EOF", 12, true)
        );
        let h = parse_heredoc("99999999999999999999<<EOF").unwrap().unwrap();
        assert_eq!(h.file_descriptor, u32::MAX);
        assert!(parse_heredoc("<<'EOF").unwrap().is_err());
        assert!(parse_heredoc("<<EOF sh").is_none());
        assert!(parse_heredoc("<<${").unwrap().is_err());
        let h = parse_heredoc("<<${X:-a}").unwrap().unwrap();
        assert_eq!(h.name, "${X:-a}");
    }

    #[test]
    fn parser_heredoc_several_and_spaced() {
        let names = |line: &str| -> Vec<String> {
            heredocs_from_line(line)
                .unwrap()
                .into_iter()
                .map(|h| h.name)
                .collect()
        };
        assert_eq!(names("RUN <<A cat - <<-'B' 3<< C"), ["A", "B", "C"]);
        assert_eq!(names("RUN << -EOF"), ["-EOF"]);
        assert_eq!(names("RUN echo '<<A' \"<<B\" x<<C"), Vec::<String>::new());
        // An unterminated quote: upstream's lexer fails, so no heredoc at all.
        assert_eq!(names("RUN <<A echo 'oops"), Vec::<String>::new());
        // Inside single quotes `\` is literal.
        assert_eq!(names("RUN <<'A\\'"), ["A\\"]);
    }

    #[test]
    fn parser_heredoc_deep_dollar_is_bounded() {
        let line = format!("RUN <<EOF {}", "${a:-".repeat(100_000));
        assert!(heredocs_from_line(&line).unwrap().is_empty());
    }

    #[test]
    fn parser_heredoc_chomp() {
        assert_eq!(chomp_heredoc_content("\t\ta\n\tb\n c\n\t"), "a\nb\n c\n");
        assert_eq!(chomp_heredoc_content(""), "");
    }
}
