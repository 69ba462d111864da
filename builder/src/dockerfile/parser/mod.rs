//! The Dockerfile parser: bytes → [`Dockerfile`], an AST of instructions with line ranges.
//!
//! This follows BuildKit's `frontend/dockerfile/parser` (`parser.Parse`) behaviour, as pinned by
//! the conformance corpus in `shared/conformance/buildkit-parser` (see its README, section 1):
//!
//! * physical lines → logical lines: optional UTF-8 BOM, parser directives (`# escape=`,
//!   `# syntax=`, `# check=`) only at the very top, comment lines, line continuation with the
//!   escape character (`\` or `` ` ``), empty continuation lines skipped with a warning,
//!   EOF ending a pending continuation;
//! * logical line → instruction: keyword, leading `--flags`, then per-keyword argument nodes
//!   (JSON exec form, whitespace split, "words", key/value triples, HEALTHCHECK, ONBUILD);
//! * heredocs (`<<EOF`, `<<-EOF`, `3<<EOF`, quoted delimiters) for RUN/COPY/ADD in shell form,
//!   whose bodies are read from the lines that follow;
//! * [`Node::dump`] / [`Dockerfile::dump`], BuildKit's `Node.Dump` text format.
//!
//! The parser is deliberately permissive where BuildKit's is: unknown instructions, unknown
//! flags and a first instruction that is not `FROM` are accepted here and reported by the
//! typed instruction layer. It never panics and runs in time linear in the input (apart from
//! bounded constant factors), whatever the input.
//!
//! Text is handled as UTF-8. Invalid UTF-8 bytes are replaced with U+FFFD (with a
//! [`Warning`]), where BuildKit keeps the raw bytes.

mod dump;
mod heredoc;
mod json;
mod lines;
mod print_table;
mod split;

#[cfg(test)]
mod tests;

pub use dump::{goquote, goquote_bytes, is_go_print};
pub use heredoc::{chomp_heredoc_content, heredocs_from_line, parse_heredoc};

use lines::{DirectiveState, Scanner};

/// The default escape character.
pub const DEFAULT_ESCAPE: char = '\\';

/// The longest physical line accepted, in bytes, not counting the newline (BuildKit reads
/// lines with Go's `bufio.Scanner`, whose token limit is 64 KiB).
pub const MAX_LINE_LENGTH: usize = 65535;

/// How deeply `ONBUILD ONBUILD …` may nest before the parser gives up. BuildKit's parser
/// nests without limit (its instruction layer then rejects any chaining); we stop early so
/// that no input can exhaust the stack.
pub const MAX_ONBUILD_NESTING: usize = 8;

/// A parsed Dockerfile: the parser directives and the instructions, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dockerfile {
    /// The parser directives found at the top of the file.
    pub directives: Directives,
    /// The instructions, in file order.
    pub children: Vec<Node>,
    /// Non-fatal problems (empty continuation lines; invalid UTF-8, reported once).
    pub warnings: Vec<Warning>,
    /// The escape character in force (`\` unless `# escape=` said otherwise).
    pub escape: char,
}

/// The parser directives (`# syntax=`, `# escape=`, `# check=`) at the top of a Dockerfile.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Directives {
    /// The `# syntax=` value (the frontend image reference), if any.
    pub syntax: Option<String>,
    /// The `# escape=` value, if any (`\` or `` ` ``).
    pub escape: Option<char>,
    /// The `# check=` value (build check configuration), if any.
    pub check: Option<String>,
    /// Every directive found, in file order, with its line.
    pub list: Vec<Directive>,
}

/// One parser directive as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directive {
    /// The directive name, lowercased: `syntax`, `escape` or `check`.
    pub name: String,
    /// The value, trimmed of surrounding whitespace.
    pub value: String,
    /// The 1-based line it was found on.
    pub line: usize,
}

/// One instruction (or, inside `ONBUILD`, the nested instruction).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// The instruction word, lowercased (`"from"`, `"run"`, …; unknown words are kept).
    pub keyword: String,
    /// The logical line as written, continuations joined (without heredoc bodies); for a
    /// nested ONBUILD instruction, the text after `ONBUILD`.
    pub original: String,
    /// The raw leading `--name=value` flags, quotes and escapes removed.
    pub flags: Vec<String>,
    /// The argument nodes, in order.
    pub args: Vec<Arg>,
    /// The text after the keyword and the flags, trimmed: what the per-keyword rules split
    /// into [`Node::args`] (for a shell-form RUN/CMD/ENTRYPOINT, the command line itself).
    pub rest: String,
    /// Whether the arguments were given in exec (JSON array) form.
    pub json: bool,
    /// The heredocs of a shell-form RUN/COPY/ADD (also set on an `ONBUILD` node whose nested
    /// instruction has them, as BuildKit does, and on that nested node).
    pub heredocs: Vec<Heredoc>,
    /// The comment lines right before the instruction (BuildKit's `PrevComment`).
    pub comments: Vec<String>,
    /// First line, 1-based.
    pub start_line: usize,
    /// Last line, 1-based, inclusive: continuation lines, skipped blank/comment lines and
    /// heredoc bodies with their terminators count.
    pub end_line: usize,
}

/// An argument node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arg {
    /// A plain string argument.
    Str(String),
    /// The instruction nested in an `ONBUILD`.
    Nested(Box<Node>),
}

/// A heredoc attached to an instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heredoc {
    /// The delimiter word with quotes removed (`EOF` for `<<'EOF'`).
    pub name: String,
    /// The file descriptor before `<<` (`3<<EOF`), 0 when absent.
    pub file_descriptor: u32,
    /// False when any part of the delimiter was quoted: the body is then not expanded.
    pub expand: bool,
    /// True for `<<-`: leading tabs are to be removed (see [`chomp_heredoc_content`]); the
    /// terminator line was matched with its leading tabs removed.
    pub chomp: bool,
    /// The raw lines between the instruction and the terminator, newlines included; leading
    /// tabs are kept even when `chomp` is set.
    pub content: String,
}

/// A heredoc delimiter word, as [`parse_heredoc`] reads it (a [`Heredoc`] without body).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeredocHead {
    /// The delimiter with quotes and escapes removed.
    pub name: String,
    /// The file descriptor before `<<`, 0 when absent (saturates at `u32::MAX`).
    pub file_descriptor: u32,
    /// False when any part of the delimiter was quoted.
    pub expand: bool,
    /// True for `<<-`.
    pub chomp: bool,
}

/// A non-fatal problem found while parsing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// The 1-based line it concerns.
    pub line: usize,
    /// The short description, e.g. `Empty continuation line found in: RUN a b`.
    pub message: String,
    /// Longer explanations, possibly none.
    pub detail: Vec<String>,
    /// A documentation link, possibly empty.
    pub url: String,
}

/// An error from a heredoc delimiter word (`<<'EOF` with an unterminated quote, …).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct HeredocWordError(pub String);

/// Why a Dockerfile could not be parsed. Every variant knows its 1-based line
/// ([`ParseError::line`]); the display form is `line N: message`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// The file has no instruction at all (empty, only comments or blank lines).
    #[error("line {line}: file with no instructions")]
    NoInstructions {
        /// The number of lines read.
        line: usize,
    },
    /// `ENV`/`LABEL` in the old `KEY value` form without a value.
    #[error("line {line}: {instruction} must have two arguments")]
    MissingValue {
        /// The line of the instruction.
        line: usize,
        /// `ENV` or `LABEL`.
        instruction: &'static str,
    },
    /// `ENV`/`LABEL` in the `k=v` form with a word that has no `=`.
    #[error(
        "line {line}: Syntax error - can't find = in {quoted}. Must be of the form: name=value",
        quoted = goquote(word)
    )]
    MissingEquals {
        /// The line of the instruction.
        line: usize,
        /// The offending word.
        word: String,
    },
    /// An exec-form (JSON array) argument with an element that is not a string.
    #[error(
        "line {line}: {instruction}: when using JSON array syntax, arrays must be comprised of \
         strings only"
    )]
    JsonNotStrings {
        /// The line of the instruction.
        line: usize,
        /// The instruction word, uppercased.
        instruction: String,
    },
    /// A heredoc without its terminator line before the end of the file.
    #[error("line {line}: unterminated heredoc {quoted}", quoted = goquote(name))]
    UnterminatedHeredoc {
        /// The line of the instruction.
        line: usize,
        /// The heredoc delimiter.
        name: String,
    },
    /// An invalid heredoc delimiter word.
    #[error("line {line}: {source}")]
    HeredocWord {
        /// The line of the instruction.
        line: usize,
        /// What was wrong.
        source: HeredocWordError,
    },
    /// A parser directive given twice.
    #[error("line {line}: only one {name} parser directive can be used")]
    DuplicateDirective {
        /// The line of the second occurrence.
        line: usize,
        /// The directive name.
        name: String,
    },
    /// `# escape=` with something other than `\` or `` ` ``.
    #[error("line {line}: invalid escape token '{value}' does not match ` or \\")]
    InvalidEscape {
        /// The line of the directive.
        line: usize,
        /// The value given.
        value: String,
    },
    /// A physical line longer than [`MAX_LINE_LENGTH`] bytes.
    #[error("line {line}: dockerfile line greater than max allowed size of 65535")]
    LineTooLong {
        /// The line that is too long.
        line: usize,
    },
    /// `ONBUILD ONBUILD …` nested more than [`MAX_ONBUILD_NESTING`] times.
    #[error("line {line}: ONBUILD instructions nested too deeply")]
    NestingTooDeep {
        /// The line of the instruction.
        line: usize,
    },
}

impl ParseError {
    /// The 1-based line the error concerns.
    pub fn line(&self) -> usize {
        match self {
            ParseError::NoInstructions { line }
            | ParseError::MissingValue { line, .. }
            | ParseError::MissingEquals { line, .. }
            | ParseError::JsonNotStrings { line, .. }
            | ParseError::UnterminatedHeredoc { line, .. }
            | ParseError::HeredocWord { line, .. }
            | ParseError::DuplicateDirective { line, .. }
            | ParseError::InvalidEscape { line, .. }
            | ParseError::LineTooLong { line }
            | ParseError::NestingTooDeep { line } => *line,
        }
    }
}

impl Dockerfile {
    /// BuildKit's dump of the whole file: one `(instr …)` line per instruction, joined by
    /// `"\n"` (no final newline).
    pub fn dump(&self) -> String {
        let mut out = String::new();
        for (i, child) in self.children.iter().enumerate() {
            if i > 0 {
                out.push('\n');
            }
            out.push_str(&child.dump());
        }
        out
    }

    /// The first line of the first instruction (BuildKit's root `StartLine`).
    pub fn start_line(&self) -> usize {
        self.children.first().map_or(0, |n| n.start_line)
    }

    /// The last line of the last instruction (BuildKit's root `EndLine`).
    pub fn end_line(&self) -> usize {
        self.children.last().map_or(0, |n| n.end_line)
    }
}

impl Node {
    /// BuildKit's dump of this instruction, e.g.
    /// `(copy ["--user=me" "--doit=true"] "foo" "/tmp/")` or `(onbuild (run "echo" "test"))`.
    pub fn dump(&self) -> String {
        dump::dump_node(self)
    }

    /// The string arguments, in order (a nested ONBUILD instruction is skipped).
    pub fn str_args(&self) -> impl Iterator<Item = &str> {
        self.args.iter().filter_map(|a| match a {
            Arg::Str(s) => Some(s.as_str()),
            Arg::Nested(_) => None,
        })
    }

    /// The instruction nested in an `ONBUILD`, if this is one.
    pub fn nested(&self) -> Option<&Node> {
        self.args.iter().find_map(|a| match a {
            Arg::Nested(n) => Some(&**n),
            Arg::Str(_) => None,
        })
    }

    /// Whether this instruction may carry heredocs (BuildKit's `canContainHeredoc`): a
    /// shell-form RUN/COPY/ADD, directly or as the instruction of an `ONBUILD`.
    pub fn can_contain_heredoc(&self) -> bool {
        let node = if self.keyword == "onbuild" {
            match self.nested() {
                Some(n) => n,
                None => self,
            }
        } else {
            self
        };
        matches!(node.keyword.as_str(), "run" | "copy" | "add") && !node.json
    }
}

/// Parses a Dockerfile.
///
/// Fails on the errors BuildKit's parser reports (see [`ParseError`]); accepts unknown
/// instructions and flags, which the typed instruction layer reports.
pub fn parse(bytes: &[u8]) -> Result<Dockerfile, ParseError> {
    Parser::new(bytes).run()
}

/// The parsing state over one input.
struct Parser<'a> {
    scanner: Scanner<'a>,
    /// Physical lines consumed so far (BuildKit's `currentLine`).
    line: usize,
    escape: char,
    directives: DirectiveState,
    warnings: Vec<Warning>,
    children: Vec<Node>,
    comments: Vec<String>,
    /// Whether the (single) invalid UTF-8 warning was given.
    warned_utf8: bool,
}

impl<'a> Parser<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Parser {
            scanner: Scanner::new(bytes),
            line: 0,
            escape: DEFAULT_ESCAPE,
            directives: DirectiveState::default(),
            warnings: Vec::new(),
            children: Vec::new(),
            comments: Vec::new(),
            warned_utf8: false,
        }
    }

    /// The next physical line (newline included), counting it.
    fn next_line(&mut self) -> Option<String> {
        let raw = self.scanner.next_line()?;
        self.line += 1;
        if self.scanner.take_invalid_utf8() && !self.warned_utf8 {
            self.warned_utf8 = true;
            self.warnings.push(Warning {
                line: self.line,
                message: "invalid UTF-8 replaced with U+FFFD (first occurrence)".to_string(),
                detail: Vec::new(),
                url: String::new(),
            });
        }
        Some(raw)
    }

    fn run(mut self) -> Result<Dockerfile, ParseError> {
        while let Some(mut raw) = self.next_line() {
            if self.line == 1 {
                if let Some(stripped) = raw.strip_prefix('\u{feff}') {
                    raw = stripped.to_string();
                }
            }
            if lines::is_comment(&raw) {
                let comment = lines::comment_text(&raw);
                if comment.is_empty() {
                    self.comments.clear();
                } else {
                    self.comments.push(comment);
                }
            }
            let first = lines::trim_newline(&raw).trim_start();
            if let Some((name, value)) = self.directives.check(first, self.line)? {
                if name == "escape" {
                    self.escape = value.chars().next().unwrap_or(DEFAULT_ESCAPE);
                }
            }
            let first = if lines::is_comment(first) { "" } else { first };
            let start_line = self.line;
            let (text, mut end_of_line) = lines::trim_continuation(first, self.escape);
            if end_of_line && text.is_empty() {
                continue;
            }
            let mut buf = text.to_string();
            let mut empty_lines: Vec<usize> = Vec::new();
            while !end_of_line {
                let Some(raw) = self.next_line() else {
                    break;
                };
                if lines::is_comment(&raw) {
                    continue;
                }
                let cont = lines::trim_newline(&raw);
                if cont.trim_start().is_empty() {
                    empty_lines.push(self.line);
                    continue;
                }
                let (text, eol) = lines::trim_continuation(cont, self.escape);
                buf.push_str(text);
                end_of_line = eol;
            }
            if let Some(&first_empty) = empty_lines.first() {
                self.warnings.push(Warning {
                    line: first_empty,
                    message: format!("Empty continuation line found in: {buf}"),
                    detail: vec![
                        "Empty continuation lines will become errors in a future release"
                            .to_string(),
                    ],
                    url: "https://docs.docker.com/go/dockerfile/rule/no-empty-continuation/"
                        .to_string(),
                });
            }

            let mut node = new_node_from_line(&buf, self.escape, 0, start_line)?;
            node.comments = std::mem::take(&mut self.comments);

            if node.can_contain_heredoc() && buf.contains("<<") {
                let heads = heredocs_from_line(&buf).map_err(|source| ParseError::HeredocWord {
                    line: start_line,
                    source,
                })?;
                for head in heads {
                    let heredoc = self.read_heredoc(head, start_line)?;
                    node.heredocs.push(heredoc);
                }
                if node.keyword == "onbuild" {
                    let heredocs = node.heredocs.clone();
                    for arg in &mut node.args {
                        if let Arg::Nested(nested) = arg {
                            nested.heredocs = heredocs.clone();
                        }
                    }
                }
            }
            set_lines(&mut node, start_line, self.line);
            self.children.push(node);
        }

        if self.children.is_empty() {
            return Err(ParseError::NoInstructions {
                line: self.line.max(1),
            });
        }
        if self.scanner.too_long() {
            return Err(ParseError::LineTooLong {
                line: self.line + 1,
            });
        }
        let mut directives = Directives::default();
        for (name, value, line) in self.directives.found {
            match name.as_str() {
                "syntax" => directives.syntax = Some(value.clone()),
                "check" => directives.check = Some(value.clone()),
                "escape" => directives.escape = value.chars().next(),
                _ => {}
            }
            directives.list.push(Directive { name, value, line });
        }
        Ok(Dockerfile {
            directives,
            children: self.children,
            warnings: self.warnings,
            escape: self.escape,
        })
    }

    /// Reads one heredoc body up to its terminator line.
    fn read_heredoc(
        &mut self,
        head: HeredocHead,
        start_line: usize,
    ) -> Result<Heredoc, ParseError> {
        let mut content = String::new();
        while let Some(raw) = self.next_line() {
            let mut candidate = lines::trim_newline(&raw);
            if head.chomp {
                candidate = candidate.trim_start_matches('\t');
            }
            if candidate == head.name {
                return Ok(Heredoc {
                    name: head.name,
                    file_descriptor: head.file_descriptor,
                    expand: head.expand,
                    chomp: head.chomp,
                    content,
                });
            }
            content.push_str(&raw);
        }
        Err(ParseError::UnterminatedHeredoc {
            line: start_line,
            name: head.name,
        })
    }
}

/// Sets the line range of a node and of its nested ONBUILD instruction.
fn set_lines(node: &mut Node, start: usize, end: usize) {
    node.start_line = start;
    node.end_line = end;
    for arg in &mut node.args {
        if let Arg::Nested(nested) = arg {
            set_lines(nested, start, end);
        }
    }
}

/// Builds the node for one logical line (BuildKit's `newNodeFromLine`). `depth` counts the
/// ONBUILD levels above; `line` is the instruction's first line, for errors.
fn new_node_from_line(
    text: &str,
    escape: char,
    depth: usize,
    line: usize,
) -> Result<Node, ParseError> {
    if depth > MAX_ONBUILD_NESTING {
        return Err(ParseError::NestingTooDeep { line });
    }
    let (cmd, rest_after_cmd) = split::split_once_ws(text.trim());
    let (rest, flags) = match rest_after_cmd {
        Some(r) => split::extract_builder_flags(r, escape),
        None => ("", Vec::new()),
    };
    let rest = rest.trim();
    let keyword = split::go_lower(cmd);
    let mut json = false;
    let args = match keyword.as_str() {
        "add" | "copy" | "volume" => match json::parse_json_array(rest) {
            json::JsonArray::Strings(v) => {
                json = true;
                v.into_iter().map(Arg::Str).collect()
            }
            json::JsonArray::NotStrings => return Err(not_strings(cmd, line)),
            json::JsonArray::Invalid => split_ws_args(rest),
        },
        "run" | "cmd" | "entrypoint" | "shell" => {
            let (args, is_json) = maybe_json(rest, cmd, line)?;
            json = is_json;
            args
        }
        "from" | "expose" => split_ws_args(rest),
        "user" | "workdir" | "maintainer" | "stopsignal" => {
            if rest.is_empty() {
                Vec::new()
            } else {
                vec![Arg::Str(rest.to_string())]
            }
        }
        "arg" => split::parse_words(rest, escape)
            .into_iter()
            .map(Arg::Str)
            .collect(),
        "env" => name_val(rest, "ENV", escape, line)?,
        "label" => name_val(rest, "LABEL", escape, line)?,
        "healthcheck" => {
            let (args, is_json) = health_config(rest, cmd, line)?;
            json = is_json;
            args
        }
        "onbuild" => {
            if rest.is_empty() {
                Vec::new()
            } else {
                let child = new_node_from_line(rest, escape, depth + 1, line)?;
                vec![Arg::Nested(Box::new(child))]
            }
        }
        _ => vec![Arg::Str(String::new())],
    };
    Ok(Node {
        keyword,
        original: text.to_string(),
        flags,
        args,
        rest: rest.to_string(),
        json,
        heredocs: Vec::new(),
        comments: Vec::new(),
        start_line: line,
        end_line: line,
    })
}

fn not_strings(cmd: &str, line: usize) -> ParseError {
    ParseError::JsonNotStrings {
        line,
        instruction: cmd.to_ascii_uppercase(),
    }
}

/// Whitespace-delimited arguments (BuildKit's `parseStringsWhitespaceDelimited`).
fn split_ws_args(rest: &str) -> Vec<Arg> {
    if rest.is_empty() {
        return Vec::new();
    }
    split::split_all_ws(rest)
        .into_iter()
        .map(|s| Arg::Str(s.to_string()))
        .collect()
}

/// Exec form if `rest` is a JSON array of strings, else one node with the whole text
/// (BuildKit's `parseMaybeJSON`). Returns the arguments and whether they were JSON.
fn maybe_json(rest: &str, cmd: &str, line: usize) -> Result<(Vec<Arg>, bool), ParseError> {
    if rest.is_empty() {
        return Ok((Vec::new(), false));
    }
    match json::parse_json_array(rest) {
        json::JsonArray::Strings(v) => Ok((v.into_iter().map(Arg::Str).collect(), true)),
        json::JsonArray::NotStrings => Err(not_strings(cmd, line)),
        json::JsonArray::Invalid => Ok((vec![Arg::Str(rest.to_string())], false)),
    }
}

/// HEALTHCHECK: the type word (`CMD`, `NONE`, …), then the rest as for CMD.
fn health_config(rest: &str, cmd: &str, line: usize) -> Result<(Vec<Arg>, bool), ParseError> {
    let sep = rest.find(char::is_whitespace).unwrap_or(rest.len());
    if sep == 0 {
        return Ok((Vec::new(), false));
    }
    let (typ, after) = rest.split_at(sep);
    let (mut cmd_args, json) = maybe_json(after.trim_start(), cmd, line)?;
    let mut args = vec![Arg::Str(typ.to_string())];
    args.append(&mut cmd_args);
    Ok((args, json))
}

/// ENV/LABEL: `k=v` words, each giving `k`, `v`, `=`; or the old `KEY value` form giving
/// `KEY`, `value`, `""` (BuildKit's `parseNameVal`).
fn name_val(
    rest: &str,
    instruction: &'static str,
    escape: char,
    line: usize,
) -> Result<Vec<Arg>, ParseError> {
    let words = split::parse_words(rest, escape);
    let Some(first) = words.first() else {
        return Ok(Vec::new());
    };
    if !first.contains('=') {
        return match split::split_once_ws(rest) {
            (key, Some(value)) => Ok(vec![
                Arg::Str(key.to_string()),
                Arg::Str(value.to_string()),
                Arg::Str(String::new()),
            ]),
            (_, None) => Err(ParseError::MissingValue { line, instruction }),
        };
    }
    let mut args = Vec::with_capacity(words.len() * 3);
    for word in words {
        let Some((key, value)) = word.split_once('=') else {
            return Err(ParseError::MissingEquals { line, word });
        };
        args.push(Arg::Str(key.to_string()));
        args.push(Arg::Str(value.to_string()));
        args.push(Arg::Str("=".to_string()));
    }
    Ok(args)
}
