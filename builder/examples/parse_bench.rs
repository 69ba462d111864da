//! Benchmark: parse + group into stages + expand every word BuildKit expands, for a generated
//! Dockerfile of N lines (default 5,000). Prints the median of R runs (default 50).
//! Run: `cargo run --release -p hoist-builder --example parse_bench -- [LINES] [RUNS] [--write FILE]`

#![allow(clippy::print_stdout, clippy::unwrap_used)]

use std::collections::BTreeMap;

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::time::Instant;

use builder::dockerfile::args::GlobalScope;
use builder::dockerfile::instructions::{Instruction, Stages};
use builder::dockerfile::parser;
use builder::dockerfile::shell::Lexer;

/// A varied Dockerfile: global ARGs, stages, ENV/ARG/LABEL with expansion, RUN with
/// continuations and heredocs, COPY with flags, comments.
fn generate(lines: usize) -> String {
    let mut s = String::from(
        "# syntax=docker/dockerfile:1\nARG BASE=localhost:5000/debian\nARG TAG=bookworm\n",
    );
    let mut stage = 0;
    while s.lines().count() < lines {
        s.push_str(&format!("\n# stage {stage}\nFROM ${{BASE}}:${{TAG}} AS s{stage}\nARG V{stage}=\"v-{stage}\"\nENV APP_{stage}=/srv/app{stage} PATH=/usr/local/bin:$PATH\n"));
        for i in 0..40 {
            match i % 8 {
                0 => s.push_str(&format!("WORKDIR ${{APP_{stage}}}/w{i}\n")),
                1 => s.push_str(&format!("ENV K{i}=\"value $V{stage} ${{APP_{stage}:-none}}\" L{i}=${{K{i}%%/*}}\n")),
                2 => s.push_str(&format!("RUN set -e; \\\n    echo building {i} \\\n    && mkdir -p /opt/{i} \\\n    && echo $V{stage} > /opt/{i}/v\n")),
                3 => s.push_str(&format!("COPY --chown=1000:1000 --chmod=0644 src/{i}/*.txt ${{APP_{stage}}}/data/{i}/\n")),
                4 => s.push_str(&format!("LABEL org.example.n{i}=\"${{V{stage}}}\" org.example.path=${{APP_{stage}#/srv}}\n")),
                5 => s.push_str(&format!("RUN <<EOF\necho heredoc {i}\necho $V{stage}\nEOF\n")),
                6 => s.push_str(&format!("ARG A{i}=${{V{stage}/v-/ver-}}\n")),
                _ => s.push_str(&format!("EXPOSE 80{}/tcp\nUSER ${{UID:-1000}}\n", i % 10)),
            }
        }
        stage += 1;
    }
    s
}

/// Expands every instruction with the ARGs and ENV in scope, as a build would.
fn expand_all(stages: &Stages, lexer: &Lexer) -> usize {
    let global = GlobalScope::new(
        &stages
            .meta_args
            .iter()
            .map(|(d, _)| d.clone())
            .collect::<Vec<_>>(),
        &BTreeMap::new(),
        BTreeMap::new(),
        lexer,
    )
    .unwrap();
    let mut n = 0;
    for st in &stages.stages {
        global.expand(&st.base, lexer).unwrap();
        let mut scope = global.stage();
        for l in &st.instructions {
            let expanded = l.instruction.expand(lexer, &scope).unwrap();
            n += 1;
            match &expanded {
                Instruction::Env(kv) => kv.iter().for_each(|(k, v)| scope.set_env(k, v)),
                Instruction::Arg(_) => {
                    if let Instruction::Arg(decls) = &l.instruction {
                        decls.iter().for_each(|d| scope.declare(d, lexer).unwrap());
                    }
                }
                _ => {}
            }
        }
    }
    n
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let lines: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(5000);
    let runs: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(50);
    let src = generate(lines);
    if let Some(i) = args.iter().position(|a| a == "--write") {
        std::fs::write(&args[i + 1], &src).unwrap();
    }
    if args.iter().any(|a| a == "--split") {
        let (mut tp, mut ts, mut te) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..runs {
            let t = Instant::now();
            let df = parser::parse(src.as_bytes()).unwrap();
            tp.push(t.elapsed().as_secs_f64() * 1000.0);
            let t = Instant::now();
            let stages = Stages::from_dockerfile(&df, "Dockerfile").unwrap();
            ts.push(t.elapsed().as_secs_f64() * 1000.0);
            let t = Instant::now();
            expand_all(&stages, &Lexer::new(df.escape));
            te.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        for (n, v) in [("parse", &mut tp), ("stages", &mut ts), ("expand", &mut te)] {
            v.sort_by(f64::total_cmp);
            println!("{n}: median {:.2} ms", v[runs / 2]);
        }
    }
    let mut times = Vec::with_capacity(runs);
    let mut words = 0;
    for _ in 0..runs {
        let t = Instant::now();
        let df = parser::parse(src.as_bytes()).unwrap();
        let stages = Stages::from_dockerfile(&df, "Dockerfile").unwrap();
        words = expand_all(&stages, &Lexer::new(df.escape));
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    println!(
        "parse+expand: {} lines, {} bytes, {} instructions expanded: median {:.2} ms, min {:.2} ms over {runs} runs",
        src.lines().count(),
        src.len(),
        words,
        times[runs / 2],
        times[0]
    );
}
