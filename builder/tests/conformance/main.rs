//! `cargo test --manifest-path builder/Cargo.toml --test conformance`: our front end against
//! BuildKit's and moby/patternmatcher's own test data in ../shared/conformance. Each module
//! prints `<corpus>: N passed, M failed` and fails on any failure.
#![allow(clippy::unwrap_used, clippy::print_stdout)]

mod dockerignore;
mod parser;
mod shell;

/// The shared conformance directory.
pub fn corpus(sub: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/conformance")
        .join(sub)
}
