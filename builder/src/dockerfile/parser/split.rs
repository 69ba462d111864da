//! Splitting a logical line: keyword, `--flags`, whitespace-separated pieces and "words".

/// BuildKit's `reWhitespace` class: `[\t\v\f\r ]`.
pub(super) fn is_ws_sep(c: char) -> bool {
    matches!(c, '\t' | '\u{0b}' | '\u{0c}' | '\r' | ' ')
}

/// Go's `reWhitespace.Split(s, 2)`: the text before the first run of `[\t\v\f\r ]+` and, if
/// there is such a run, the text after it.
pub(super) fn split_once_ws(s: &str) -> (&str, Option<&str>) {
    match s.find(is_ws_sep) {
        None => (s, None),
        Some(i) => {
            let (head, tail) = s.split_at(i);
            (head, Some(tail.trim_start_matches(is_ws_sep)))
        }
    }
}

/// Go's `reWhitespace.Split(s, -1)`: every piece between runs of `[\t\v\f\r ]+` (an empty
/// first or last piece when `s` starts or ends with such a run).
pub(super) fn split_all_ws(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = s;
    loop {
        match split_once_ws(rest) {
            (head, Some(tail)) => {
                out.push(head);
                rest = tail;
            }
            (head, None) => {
                out.push(head);
                return out;
            }
        }
    }
}

/// Go's `strings.ToLower`: the simple (one-to-one) lowercase mapping of every character.
pub(super) fn go_lower(s: &str) -> String {
    if s.is_ascii() {
        return s.to_ascii_lowercase();
    }
    s.chars()
        .map(|c| {
            let mut lower = c.to_lowercase();
            match (lower.next(), lower.next()) {
                (Some(l), None) => l,
                // Only U+0130 has a longer full mapping ("i\u{307}"); its simple one is 'i'.
                (Some(l), Some(_)) => l,
                (None, _) => c,
            }
        })
        .collect()
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    Spaces,
    Word,
    Quote,
}

/// Takes the leading `--flag` words off `line` (BuildKit's `extractBuilderFlags`). Quotes
/// are removed and escape+char becomes char inside flags; a bare `--` ends the flags and is
/// dropped; the first word not starting with `--` ends them. Returns the rest of the line
/// (from the first non-flag word, untouched) and the flags.
pub(super) fn extract_builder_flags(line: &str, escape: char) -> (&str, Vec<String>) {
    let chars: Vec<(usize, char)> = line.char_indices().collect();
    let n = chars.len();
    let mut words = Vec::new();
    let mut phase = Phase::Spaces;
    let mut word = String::new();
    let mut quote = '\0';
    let mut blank_ok = false;
    let mut pos = 0;
    let at = |i: usize| chars.get(i).map(|&(_, c)| c);
    let offset = |i: usize| chars.get(i).map_or(line.len(), |&(o, _)| o);
    let rest_from = |i: usize| line.get(offset(i)..).unwrap_or("");

    while pos <= n {
        let ch = at(pos).unwrap_or('\0');
        if phase == Phase::Spaces {
            if pos == n {
                break;
            }
            if ch.is_whitespace() {
                pos += 1;
                continue;
            }
            if ch != '-' || at(pos + 1) != Some('-') {
                return (rest_from(pos), words);
            }
            phase = Phase::Word;
        }
        if pos == n {
            if word != "--" && (blank_ok || !word.is_empty()) {
                words.push(word);
            }
            return ("", words);
        }
        match phase {
            Phase::Word => {
                if ch.is_whitespace() {
                    phase = Phase::Spaces;
                    if word == "--" {
                        return (rest_from(pos), words);
                    }
                    if blank_ok || !word.is_empty() {
                        words.push(std::mem::take(&mut word));
                    }
                    word.clear();
                    blank_ok = false;
                    pos += 1;
                    continue;
                }
                if ch == '\'' || ch == '"' {
                    quote = ch;
                    blank_ok = true;
                    phase = Phase::Quote;
                    pos += 1;
                    continue;
                }
                let mut c = ch;
                if ch == escape {
                    match at(pos + 1) {
                        None => {
                            pos += 1;
                            continue;
                        }
                        Some(next) => {
                            pos += 1;
                            c = next;
                        }
                    }
                }
                word.push(c);
                pos += 1;
            }
            Phase::Quote => {
                if ch == quote {
                    phase = Phase::Word;
                    pos += 1;
                    continue;
                }
                let mut c = ch;
                if ch == escape {
                    match at(pos + 1) {
                        None => {
                            phase = Phase::Word;
                            pos += 1;
                            continue;
                        }
                        Some(next) => {
                            pos += 1;
                            c = next;
                        }
                    }
                }
                word.push(c);
                pos += 1;
            }
            Phase::Spaces => pos += 1,
        }
    }
    ("", words)
}

/// Splits into "words" (BuildKit's `parseWords`, used by ARG, ENV and LABEL): separated by
/// Unicode whitespace outside quotes; quotes are kept; escape+char is kept as both characters
/// (except inside single quotes, where the escape means nothing); an escape at the very end is
/// dropped.
pub(super) fn parse_words(rest: &str, escape: char) -> Vec<String> {
    let chars: Vec<char> = rest.chars().collect();
    let n = chars.len();
    let mut words = Vec::new();
    let mut phase = Phase::Spaces;
    let mut word = String::new();
    let mut quote = '\0';
    let mut blank_ok = false;
    let mut pos = 0;

    while pos <= n {
        let ch = chars.get(pos).copied().unwrap_or('\0');
        if phase == Phase::Spaces {
            if pos == n {
                break;
            }
            if ch.is_whitespace() {
                pos += 1;
                continue;
            }
            phase = Phase::Word;
        }
        if pos == n {
            if blank_ok || !word.is_empty() {
                words.push(word);
            }
            break;
        }
        match phase {
            Phase::Word => {
                if ch.is_whitespace() {
                    phase = Phase::Spaces;
                    if blank_ok || !word.is_empty() {
                        words.push(std::mem::take(&mut word));
                    }
                    word.clear();
                    blank_ok = false;
                    pos += 1;
                    continue;
                }
                if ch == '\'' || ch == '"' {
                    quote = ch;
                    blank_ok = true;
                    phase = Phase::Quote;
                }
                let mut c = ch;
                if ch == escape {
                    match chars.get(pos + 1) {
                        None => {
                            pos += 1;
                            continue;
                        }
                        Some(&next) => {
                            word.push(ch);
                            pos += 1;
                            c = next;
                        }
                    }
                }
                word.push(c);
                pos += 1;
            }
            Phase::Quote => {
                if ch == quote {
                    phase = Phase::Word;
                }
                let mut c = ch;
                if ch == escape && quote != '\'' {
                    match chars.get(pos + 1) {
                        None => {
                            phase = Phase::Word;
                            pos += 1;
                            continue;
                        }
                        Some(&next) => {
                            word.push(ch);
                            pos += 1;
                            c = next;
                        }
                    }
                }
                word.push(c);
                pos += 1;
            }
            Phase::Spaces => pos += 1,
        }
    }
    words
}
