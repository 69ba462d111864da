//! Unit tests for the parser's tricky corners.

use super::*;

fn df(src: &str) -> Dockerfile {
    parse(src.as_bytes()).unwrap_or_else(|e| panic!("{src:?}: {e}"))
}

fn dump(src: &str) -> String {
    df(src).dump()
}

fn err(src: &str) -> ParseError {
    match parse(src.as_bytes()) {
        Ok(d) => panic!("{src:?} parsed: {}", d.dump()),
        Err(e) => e,
    }
}

#[test]
fn parser_backtick_escape() {
    let d = df("# escape=`\nFROM a\nRUN echo \\ `\n  b\nENV X=c:\\dir\nRUN x \\\n");
    assert_eq!(d.escape, '`');
    assert_eq!(d.directives.escape, Some('`'));
    assert_eq!(d.directives.list[0].line, 1);
    assert_eq!(
        d.dump(),
        "(from \"a\")\n(run \"echo \\\\   b\")\n(env \"X\" \"c:\\\\dir\" \"=\")\n(run \"x \\\\\")"
    );
    // With a backtick escape, `\` has no meaning in words; `` ` `` keeps the next character.
    assert_eq!(dump("#escape=`\nARG a=`\" b"), "(arg \"a=`\\\"\" \"b\")");
}

#[test]
fn parser_directives_only_at_top() {
    let d = df("# syntax=docker/dockerfile:1\n# check=skip=all\n\n# escape=`\nFROM a \\\n b\n");
    assert_eq!(d.directives.syntax.as_deref(), Some("docker/dockerfile:1"));
    assert_eq!(d.directives.check.as_deref(), Some("skip=all"));
    assert_eq!(d.directives.escape, None);
    assert_eq!(d.escape, '\\');
    assert_eq!(d.dump(), "(from \"a\" \"b\")");
    // An unknown directive ends the section too.
    assert_eq!(df("# foo=bar\n# escape=`\nFROM a").directives.escape, None);
    // Case-insensitive key, spaces around `=`, indented.
    assert_eq!(df("  #  ESCAPE  =  `  \nFROM a").escape, '`');
}

#[test]
fn parser_directive_errors() {
    let e = err("# escape=`\n# escape=\\\nFROM a");
    assert!(
        matches!(e, ParseError::DuplicateDirective { line: 2, .. }),
        "{e}"
    );
    assert_eq!(
        e.to_string(),
        "line 2: only one escape parser directive can be used"
    );
    let e = err("# escape=x\nFROM a");
    assert!(
        matches!(e, ParseError::InvalidEscape { line: 1, .. }),
        "{e}"
    );
    // Whitespace only after `=`: the regex hands the last space to the value.
    assert!(matches!(
        err("# escape= \nFROM a"),
        ParseError::InvalidEscape { .. }
    ));
    assert_eq!(df("# syntax=\nFROM a").directives.syntax, None);
}

#[test]
fn parser_continuation_at_eof_and_empty_lines() {
    assert_eq!(dump("FROM a\nRUN x \\"), "(from \"a\")\n(run \"x\")");
    assert_eq!(dump("FROM a\nRUN x \\\n"), "(from \"a\")\n(run \"x\")");
    let d = df("FROM a\nRUN x \\\n\n   \n# c\n  y\n");
    assert_eq!(d.children[1].original, "RUN x   y");
    assert_eq!((d.children[1].start_line, d.children[1].end_line), (2, 6));
    assert_eq!(d.warnings.len(), 1);
    assert_eq!(d.warnings[0].line, 3);
    // Escaped escape is not a continuation.
    assert_eq!(dump("RUN a\\\\\nRUN b"), "(run \"a\\\\\\\\\")\n(run \"b\")");
    // A line that is only the escape character continues into the next one.
    assert_eq!(dump("\\\nFROM a"), "(from \"a\")");
    // A continuation that gathers nothing: BuildKit keeps an empty instruction.
    assert_eq!(dump("FROM a\n\\"), "(from \"a\")\n(\"\")");
}

#[test]
fn parser_bom_crlf_and_comments() {
    let d = df("\u{feff}# escape=`\r\nFROM a `\r\n  b\r\n# hello\r\n#\r\n# world\r\nRUN c\r\n");
    assert_eq!(d.escape, '`');
    assert_eq!(d.dump(), "(from \"a\" \"b\")\n(run \"c\")");
    assert_eq!(d.children[0].comments, vec!["escape=`".to_string()]);
    assert_eq!(d.children[1].comments, vec!["world".to_string()]);
}

#[test]
fn parser_no_instructions() {
    assert!(matches!(err(""), ParseError::NoInstructions { .. }));
    assert!(matches!(
        err("\n\n  \n# x\n"),
        ParseError::NoInstructions { line: 4 }
    ));
    assert!(matches!(err("\u{feff}"), ParseError::NoInstructions { .. }));
}

#[test]
fn parser_keywords_and_unknown() {
    assert_eq!(
        dump("From a AS b\nfoo bar baz"),
        "(from \"a\" \"AS\" \"b\")\n(foo \"\")"
    );
    assert_eq!(
        dump("CMD\nHEALTHCHECK\nENV\nARG\nUSER\nONBUILD"),
        "(cmd)\n(healthcheck)\n(env)\n(arg)\n(user)\n(onbuild)"
    );
    assert_eq!(dump("HEALTHCHECK NONE"), "(healthcheck \"NONE\")");
    assert_eq!(
        dump("STOPSIGNAL  SIGKILL  \nMAINTAINER a  b\nSHELL [\"sh\", \"-c\"]"),
        "(stopsignal \"SIGKILL\")\n(maintainer \"a  b\")\n(shell \"sh\" \"-c\")"
    );
    let d = df("RUN [\"a\"]\nRUN a\nHEALTHCHECK CMD [\"x\"]");
    assert!(d.children[0].json && !d.children[1].json && d.children[2].json);
    assert_eq!(d.children[1].rest, "a");
    // İ lowercases to i (Go's simple mapping), not "i̇".
    assert_eq!(df("\u{130}NFO x").children[0].keyword, "info");
}

#[test]
fn parser_env_label_errors() {
    let e = err("FROM a\nLABEL x");
    assert_eq!(e.to_string(), "line 2: LABEL must have two arguments");
    let e = err("ENV a=b c");
    assert_eq!(
        e.to_string(),
        "line 1: Syntax error - can't find = in \"c\". Must be of the form: name=value"
    );
    assert_eq!(
        dump("ENV a=b c=\"d e\" f="),
        "(env \"a\" \"b\" \"=\" \"c\" \"\\\"d e\\\"\" \"=\" \"f\" \"\" \"=\")"
    );
    assert_eq!(
        dump("LABEL \"a b\"=c"),
        "(label \"\\\"a b\\\"\" \"c\" \"=\")"
    );
}

#[test]
fn parser_flags() {
    assert_eq!(
        dump("COPY --from=\"a b\" --chown='x' --x=\\\"y -- --not-a-flag d"),
        "(copy [\"--from=a b\" \"--chown=x\" \"--x=\\\"y\"] \"--not-a-flag\" \"d\")"
    );
    assert_eq!(
        dump("RUN --mount=type=cache,target=/x"),
        "(run [\"--mount=type=cache,target=/x\"])"
    );
    assert_eq!(dump("RUN -- --"), "(run \"--\")");
    assert_eq!(dump("RUN -x --y"), "(run \"-x --y\")");
    assert_eq!(dump("RUN --a=\"\" b"), "(run [\"--a=\"] \"b\")");
}

#[test]
fn parser_json_not_strings_is_error() {
    let e = err("FROM a\nENTRYPOINT [\"a\", 1]");
    assert_eq!(
        e.to_string(),
        "line 2: ENTRYPOINT: when using JSON array syntax, arrays must be comprised of strings only"
    );
    assert!(matches!(
        err("VOLUME [null]"),
        ParseError::JsonNotStrings { .. }
    ));
    assert!(matches!(
        err("HEALTHCHECK CMD [true]"),
        ParseError::JsonNotStrings { .. }
    ));
    // Invalid JSON falls back (shell form / whitespace split).
    assert_eq!(dump("VOLUME [\"a\" b"), "(volume \"[\\\"a\\\"\" \"b\")");
}

#[test]
fn parser_heredoc_chomp_and_quoted_delimiters() {
    let src = "FROM a\nRUN <<-'EOT' bash\n\tset -e\n\techo $HOME\n\t\tEOT\nRUN x\n";
    let d = df(src);
    let run = &d.children[1];
    assert_eq!(run.heredocs.len(), 1);
    let h = &run.heredocs[0];
    assert_eq!((h.name.as_str(), h.chomp, h.expand), ("EOT", true, false));
    assert_eq!(h.content, "\tset -e\n\techo $HOME\n");
    assert_eq!(chomp_heredoc_content(&h.content), "set -e\necho $HOME\n");
    assert_eq!((run.start_line, run.end_line), (2, 5));
    assert_eq!(run.dump(), "(run \"<<-'EOT' bash\")");
    assert_eq!(d.children[2].start_line, 6);
    // Without `-`, an indented terminator is content.
    assert!(matches!(
        err("RUN <<EOT\n\tEOT\n"),
        ParseError::UnterminatedHeredoc { line: 1, .. }
    ));
}

#[test]
fn parser_several_heredocs_in_one_instruction() {
    let src = "COPY <<A 3<<\"B\" /dst/\na1\nA\nb1\r\nb2\nB\r\nFROM x\n";
    let d = df(src);
    let c = &d.children[0];
    let got: Vec<_> = c
        .heredocs
        .iter()
        .map(|h| (h.name.as_str(), h.file_descriptor, h.expand))
        .collect();
    assert_eq!(got, [("A", 0, true), ("B", 3, false)]);
    assert_eq!(c.heredocs[0].content, "a1\n");
    assert_eq!(c.heredocs[1].content, "b1\r\nb2\n");
    assert_eq!((c.start_line, c.end_line), (1, 6));
    assert_eq!(d.children[1].dump(), "(from \"x\")");
    // Terminator at EOF without newline.
    assert_eq!(df("RUN <<E\nx\nE").children[0].heredocs[0].content, "x\n");
    // A continuation line before the heredoc body.
    let d = df("RUN cat \\\n  <<E\nbody\nE\n");
    assert_eq!(d.children[0].heredocs[0].content, "body\n");
    assert_eq!(d.children[0].end_line, 4);
}

#[test]
fn parser_heredoc_only_where_allowed() {
    let d = df("RUN [\"<<E\"]\nUSER <<E\nE\nONBUILD RUN <<E\nx\nE\nONBUILD ONBUILD RUN <<E\n");
    assert!(d.children[0].heredocs.is_empty());
    assert_eq!(d.dump().lines().nth(2), Some("(e \"\")"));
    let onbuild = &d.children[3];
    assert_eq!(onbuild.heredocs.len(), 1);
    assert_eq!(onbuild.nested().map(|n| n.heredocs.len()), Some(1));
    assert_eq!((onbuild.start_line, onbuild.end_line), (4, 6));
    assert!(d.children[4].heredocs.is_empty());
    // A line the shell lexer rejects (unterminated quote) has no heredocs, as upstream.
    assert!(df("RUN <<E'\n").children[0].heredocs.is_empty());
    let e = err("RUN <<E\nno end\n");
    assert_eq!(e.to_string(), "line 1: unterminated heredoc \"E\"");
}

#[test]
fn parser_onbuild_nesting_is_bounded() {
    assert_eq!(
        dump("ONBUILD ONBUILD RUN a"),
        "(onbuild (onbuild (run \"a\")))"
    );
    let deep = format!("{}RUN a", "ONBUILD ".repeat(MAX_ONBUILD_NESTING));
    assert!(parse(deep.as_bytes()).is_ok());
    let too_deep = format!("{}RUN a", "ONBUILD ".repeat(MAX_ONBUILD_NESTING + 1));
    assert!(matches!(
        err(&too_deep),
        ParseError::NestingTooDeep { line: 1 }
    ));
    let huge = "ONBUILD ".repeat(8000);
    assert!(parse(huge.as_bytes()).is_err());
}

#[test]
fn parser_invalid_utf8_is_replaced_with_warning() {
    let d = parse(b"FROM a\nRUN echo caf\xe9\nRUN \xff").unwrap();
    assert_eq!(
        d.dump(),
        "(from \"a\")\n(run \"echo caf\u{fffd}\")\n(run \"\u{fffd}\")"
    );
    assert_eq!(d.warnings.len(), 1);
    assert_eq!(d.warnings[0].line, 2);
}

#[test]
fn parser_control_characters_dump() {
    assert_eq!(
        dump("RUN a\u{0}b\u{7}\u{1b}\u{85}"),
        "(run \"a\\x00b\\a\\x1b\")"
    );
    assert_eq!(
        dump("LABEL a=\"\u{a0}\""),
        "(label \"a\" \"\\\"\\u00a0\\\"\" \"=\")"
    );
    // U+00A0 separates words like a space.
    assert!(matches!(
        err("LABEL a=\u{a0}b"),
        ParseError::MissingEquals { .. }
    ));
}

/// A tiny deterministic generator for robustness checks.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

#[test]
fn parser_never_panics_on_noise() {
    const PIECES: &[&str] = &[
        "RUN ",
        "COPY ",
        "ONBUILD ",
        "ENV ",
        "LABEL ",
        "ARG ",
        "HEALTHCHECK ",
        "CMD ",
        "FROM ",
        "<<",
        "<<-",
        "EOF",
        "'",
        "\"",
        "\\",
        "`",
        "$",
        "${",
        "}",
        ":",
        "-",
        "=",
        "[",
        "]",
        ",",
        "{",
        "\n",
        "\r\n",
        " ",
        "\t",
        "#",
        "# escape=`\n",
        "--",
        "--x=",
        "\u{feff}",
        "\u{a0}",
        "é",
        "\u{0}",
        "1",
        "null",
        "\\u00",
        "\\ud800",
    ];
    let mut rng = Lcg(7);
    for _ in 0..3000 {
        let mut src = Vec::new();
        let n = rng.next() % 40;
        for _ in 0..n {
            let i = (rng.next() as usize) % PIECES.len();
            src.extend_from_slice(PIECES[i].as_bytes());
            if rng.next() % 16 == 0 {
                src.push((rng.next() % 256) as u8);
            }
        }
        if let Ok(d) = parse(&src) {
            let _ = d.dump();
        }
    }
}

#[test]
fn parser_big_inputs_are_fast() {
    let line = format!("RUN {}\n", "\"'\\ <<A ${x:-".repeat(4000));
    let _ = parse(line.as_bytes());
    let many = "RUN a \\\n\n".repeat(50_000);
    let d = parse(many.as_bytes()).unwrap();
    assert_eq!(d.children.len(), 1);
    let json = format!("CMD {}\n", "[".repeat(60_000));
    assert_eq!(parse(json.as_bytes()).unwrap().children[0].args.len(), 1);
}
