//! hoist's Dockerfile builder: the front end (lexer, parser, shell word expansion,
//! .dockerignore), COPY/ADD file operations, and the executor with its build cache ([`exec`]).
#![deny(missing_docs)]

pub mod call;
pub mod copy;
pub mod dockerfile;
pub mod exec;
mod go;
