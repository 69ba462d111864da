//! hoist's Dockerfile builder: the front end (lexer, parser, shell word expansion,
//! .dockerignore), the build graph with cache keys, and the executor. Not written yet: the
//! front-end and build issues deliver it.
#![deny(missing_docs)]
