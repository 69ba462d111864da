//! `--call targets|outline`: what a Dockerfile offers, without building it (as
//! `docker buildx build --call` prints it).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::dockerfile::instructions::{Instruction, Stages};
use crate::dockerfile::shell::Lexer;

/// A stage as `--call targets` lists it.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct TargetInfo {
    /// The stage name, or its index when unnamed.
    pub name: String,
    /// The base image or stage, global ARGs expanded.
    pub base: String,
    /// The line of its FROM.
    pub line: usize,
    /// The comment above the FROM.
    pub description: String,
    /// True for the stage built when no `--target` is given (the last one).
    pub default: bool,
}

/// A build argument as `--call outline` lists it.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct ArgInfo {
    /// The name.
    pub name: String,
    /// The value the build would use: the `--build-arg` given, else the default (expanded).
    pub value: Option<String>,
    /// The comment above the ARG.
    pub description: String,
    /// The line of the ARG.
    pub line: usize,
}

/// The stages of a Dockerfile.
pub fn targets(
    stages: &Stages,
    lexer: &Lexer,
    build_args: &BTreeMap<String, String>,
) -> Vec<TargetInfo> {
    let meta = meta_env(stages, lexer, build_args);
    let last = stages.stages.len().saturating_sub(1);
    stages
        .stages
        .iter()
        .map(|s| TargetInfo {
            name: s.name.clone().unwrap_or_else(|| s.index.to_string()),
            base: lexer
                .process_word(&s.base, &meta)
                .map(|e| e.value)
                .unwrap_or_else(|_| s.base.clone()),
            line: s.span.start,
            description: s.description.clone(),
            default: s.index == last,
        })
        .collect()
}

/// The build arguments the target (default: the last stage) uses: the global ARGs, then the
/// ARGs of every stage it needs, in file order.
pub fn outline(
    stages: &Stages,
    target: Option<usize>,
    lexer: &Lexer,
    build_args: &BTreeMap<String, String>,
) -> Vec<ArgInfo> {
    let meta = meta_env(stages, lexer, build_args);
    let mut out: Vec<ArgInfo> = stages
        .meta_args
        .iter()
        .map(|(d, span)| ArgInfo {
            name: d.name.clone(),
            value: meta.get(&d.name).cloned(),
            description: d.description.clone(),
            line: span.start,
        })
        .collect();
    let target = target.unwrap_or(stages.stages.len().saturating_sub(1));
    for i in stages.needed(target) {
        let mut env = BTreeMap::new();
        for l in &stages.stages[i].instructions {
            let Instruction::Arg(decls) = &l.instruction else {
                continue;
            };
            for d in decls {
                let value = build_args
                    .get(&d.name)
                    .cloned()
                    .or_else(|| {
                        d.default.as_ref().map(|v| {
                            lexer
                                .process_word(v, &env)
                                .map(|e| e.value)
                                .unwrap_or_else(|_| v.clone())
                        })
                    })
                    .or_else(|| meta.get(&d.name).cloned());
                if let Some(v) = &value {
                    env.insert(d.name.clone(), v.clone());
                }
                if !out.iter().any(|a| a.name == d.name) {
                    out.push(ArgInfo {
                        name: d.name.clone(),
                        value,
                        description: d.description.clone(),
                        line: l.span.start,
                    });
                }
            }
        }
    }
    out
}

/// Values of the global ARGs: `--build-arg` overrides, else defaults expanded in order.
fn meta_env(
    stages: &Stages,
    lexer: &Lexer,
    build_args: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    for (d, _) in &stages.meta_args {
        let v = build_args.get(&d.name).cloned().or_else(|| {
            d.default.as_ref().map(|v| {
                lexer
                    .process_word(v, &env)
                    .map(|e| e.value)
                    .unwrap_or_else(|_| v.clone())
            })
        });
        if let Some(v) = v {
            env.insert(d.name.clone(), v);
        }
    }
    env
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dockerfile::parser::parse;

    const DF: &str = "# where the base comes from\nARG REG=localhost:5000\nARG TAG=\"bookworm\"\n# the base stage\nFROM $REG/debian:$TAG AS base\n# the app version\nARG VERSION=1.${TAG}\nFROM base AS tools\nARG TOOLS_ONLY=1\nFROM base AS final\nCOPY --from=base /a /b\n";

    fn st() -> Stages {
        Stages::from_dockerfile(&parse(DF.as_bytes()).unwrap(), "Dockerfile").unwrap()
    }

    #[test]
    fn targets_list_stages_with_expanded_bases() {
        let t = targets(&st(), &Lexer::new('\\'), &BTreeMap::new());
        assert_eq!(t.len(), 3);
        assert_eq!(t[0].name, "base");
        assert_eq!(t[0].base, "localhost:5000/debian:bookworm");
        assert_eq!(t[0].line, 5);
        assert_eq!(t[0].description, "the base stage");
        assert!(t[2].default && !t[0].default);
        let over = BTreeMap::from([("TAG".to_string(), "trixie".to_string())]);
        assert_eq!(
            targets(&st(), &Lexer::new('\\'), &over)[0].base,
            "localhost:5000/debian:trixie"
        );
    }

    #[test]
    fn outline_lists_the_args_the_target_uses() {
        let o = outline(&st(), None, &Lexer::new('\\'), &BTreeMap::new());
        let names: Vec<&str> = o.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(
            names,
            ["REG", "TAG", "VERSION"],
            "TOOLS_ONLY belongs to a stage final does not need"
        );
        assert_eq!(o[1].value.as_deref(), Some("bookworm"), "quotes removed");
        assert_eq!(o[0].description, "where the base comes from");
        assert_eq!(o[2].description, "the app version");
        let o = outline(&st(), Some(1), &Lexer::new('\\'), &BTreeMap::new());
        assert!(o.iter().any(|a| a.name == "TOOLS_ONLY"));
    }
}
