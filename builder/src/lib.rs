//! hoist's Dockerfile builder: the front end (lexer, parser, shell word expansion,
//! .dockerignore), and, as the build issue lands, the build graph with cache keys and the
//! executor.
#![deny(missing_docs)]

pub mod call;
pub mod copy;
pub mod dockerfile;
