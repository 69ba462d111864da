//! Fuzz target: any bytes through the parser, the AST dump, the typed-instruction layer and the
//! shell lexer (every word of every instruction expanded, and split), and .dockerignore
//! compilation of the lines. Nothing may panic, hang or grow without bound.
#![no_main]

use std::collections::BTreeMap;

use builder::dockerfile::instructions::Stages;
use builder::dockerfile::shell::Lexer;
use builder::dockerfile::{ignore, parser};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = ignore::PatternMatcher::new(&ignore::read_ignore_file(data)).map(|m| m.matches_or_parent_matches("a/b/c"));
    let Ok(df) = parser::parse(data) else { return };
    let _ = df.dump();
    let lexer = Lexer::new(df.escape);
    let env: BTreeMap<String, String> = BTreeMap::from([("A".into(), "x y".into()), ("EMPTY".into(), String::new())]);
    for node in &df.children {
        for w in node.str_args() {
            let _ = lexer.process_word(w, &env);
            let _ = lexer.process_words(w, &env);
        }
        let _ = lexer.process_word(&node.rest, &env);
    }
    let _ = Stages::from_dockerfile(&df, "Dockerfile").map(|s| s.needed(s.stages.len().saturating_sub(1)));
});
