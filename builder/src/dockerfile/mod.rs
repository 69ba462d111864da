//! The Dockerfile front end, following BuildKit's behaviour: `parser` turns bytes into an AST
//! with line ranges (directives, escape character, continuations, heredocs, flags), `shell`
//! expands words as BuildKit's shell lexer does, and `ignore` matches .dockerignore patterns.

pub mod args;
pub mod ignore;
pub mod instructions;
pub mod parser;
pub mod shell;
