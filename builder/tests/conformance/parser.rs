//! BuildKit's Dockerfile parser corpus (`buildkit-parser/`, README section 1): parse → dump,
//! must-fail files, line numbers, and the cases extracted from upstream's Go tests (heredocs,
//! JSON arrays, empty-continuation warnings, the line length limit).

use std::fs;
use std::path::Path;

use builder::dockerfile::parser::{
    Dockerfile, Node, chomp_heredoc_content, heredocs_from_line, parse, parse_heredoc,
};
use serde_json::Value;

/// Counts one corpus's results and keeps the failures for the final report.
struct Tally {
    name: &'static str,
    passed: usize,
    failures: Vec<String>,
}

impl Tally {
    fn new(name: &'static str) -> Self {
        Tally {
            name,
            passed: 0,
            failures: Vec::new(),
        }
    }

    fn check(&mut self, ok: bool, what: impl FnOnce() -> String) {
        if ok {
            self.passed += 1;
        } else {
            self.failures.push(what());
        }
    }

    fn report(self, all_failures: &mut Vec<String>) {
        println!(
            "buildkit-parser/{}: {} passed, {} failed",
            self.name,
            self.passed,
            self.failures.len()
        );
        for f in &self.failures {
            all_failures.push(format!("[{}] {f}", self.name));
        }
    }
}

fn dir_entries(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    v.sort();
    v
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&fs::read(path).unwrap()).unwrap()
}

fn parsed(path: &Path) -> Dockerfile {
    parse(&fs::read(path).unwrap())
        .unwrap_or_else(|e| panic!("{}: unexpected error: {e}", path.display()))
}

fn testfiles(all: &mut Vec<String>) {
    let mut t = Tally::new("testfiles");
    for case in dir_entries(&crate::corpus("buildkit-parser/testfiles")) {
        let name = case.file_name().unwrap().to_string_lossy().to_string();
        let input = fs::read(case.join("Dockerfile")).unwrap();
        let expected = fs::read_to_string(case.join("result")).unwrap();
        match parse(&input) {
            Ok(df) => {
                let got = df.dump() + "\n";
                t.check(got == expected, || {
                    format!("{name}: dump differs\n--- expected\n{expected}--- got\n{got}")
                });
            }
            Err(e) => t.check(false, || format!("{name}: parse failed: {e}")),
        }
    }
    t.report(all);
}

fn negatives(all: &mut Vec<String>) {
    let mut t = Tally::new("testfiles-negative");
    for case in dir_entries(&crate::corpus("buildkit-parser/testfiles-negative")) {
        let name = case.file_name().unwrap().to_string_lossy().to_string();
        let input = fs::read(case.join("Dockerfile")).unwrap();
        match parse(&input) {
            Err(e) => {
                println!("  {name}: {e}");
                t.check(true, String::new);
            }
            Ok(df) => t.check(false, || {
                format!("{name}: parsed but must fail; dump:\n{}", df.dump())
            }),
        }
    }
    t.report(all);
}

fn line_numbers(all: &mut Vec<String>) {
    let mut t = Tally::new("line-numbers");
    let spec = read_json(&crate::corpus(
        "buildkit-parser/extracted/line-numbers.json",
    ));
    let df = parsed(&crate::corpus("buildkit-parser/testfile-line/Dockerfile"));
    let want_root = (
        spec["root_start"].as_u64().unwrap(),
        spec["root_end"].as_u64().unwrap(),
    );
    let got_root = (df.start_line() as u64, df.end_line() as u64);
    t.check(want_root == got_root, || {
        format!("root range: expected {want_root:?}, got {got_root:?}")
    });
    let want: Vec<(u64, u64)> = spec["children"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c[0].as_u64().unwrap(), c[1].as_u64().unwrap()))
        .collect();
    let got: Vec<(u64, u64)> = df
        .children
        .iter()
        .map(|n| (n.start_line as u64, n.end_line as u64))
        .collect();
    t.check(want.len() == got.len(), || {
        format!(
            "children: expected {} instructions, got {}",
            want.len(),
            got.len()
        )
    });
    for (i, (w, g)) in want.iter().zip(&got).enumerate() {
        t.check(w == g, || format!("child {i}: expected {w:?}, got {g:?}"));
    }
    t.report(all);
}

fn heredoc_list(node: &Node) -> Value {
    if node.heredocs.is_empty() {
        return Value::Null;
    }
    Value::Array(
        node.heredocs
            .iter()
            .map(|h| {
                serde_json::json!({
                    "Name": h.name,
                    "FileDescriptor": h.file_descriptor,
                    "Expand": h.expand,
                    "Chomp": h.chomp,
                    "Content": h.content,
                })
            })
            .collect(),
    )
}

fn heredoc_extract(all: &mut Vec<String>) {
    let mut t = Tally::new("heredoc-extract");
    let dir = crate::corpus("buildkit-parser/extracted/heredoc-extract");
    let spec = read_json(&dir.join("expected.json"));
    let df = parsed(&dir.join("Dockerfile"));
    let expected = spec["expected"].as_array().unwrap();
    t.check(df.children.len() == expected.len() + 1, || {
        format!(
            "expected {} instructions, got {}",
            expected.len() + 1,
            df.children.len()
        )
    });
    for (i, exp) in expected.iter().enumerate() {
        let label = exp["upstream_comment"].as_str().unwrap_or("?");
        let Some(node) = df.children.get(i + 1) else {
            t.check(false, || format!("child {}: missing ({label})", i + 1));
            continue;
        };
        let want = &exp["heredocs"];
        let got = heredoc_list(node);
        t.check(*want == got, || {
            format!(
                "child {} ({label}):\n  expected {want}\n  got      {got}",
                i + 1
            )
        });
    }
    t.report(all);
}

fn heredoc_json(all: &mut Vec<String>) {
    let mut t = Tally::new("heredoc-json");
    let dir = crate::corpus("buildkit-parser/extracted/heredoc-json");
    let spec = read_json(&dir.join("expected.json"));
    let df = parsed(&dir.join("Dockerfile"));
    for idx in spec["children_without_heredocs"].as_array().unwrap() {
        let i = idx.as_u64().unwrap() as usize;
        match df.children.get(i) {
            Some(n) => t.check(n.heredocs.is_empty() && n.json, || {
                format!("child {i}: expected exec form without heredocs, got {n:?}")
            }),
            None => t.check(false, || format!("child {i}: missing")),
        }
    }
    t.report(all);
}

fn heredoc_words(all: &mut Vec<String>) {
    let mut t = Tally::new("heredoc-words");
    let spec = read_json(&crate::corpus(
        "buildkit-parser/extracted/heredoc-words.json",
    ));
    let ph = &spec["parse_heredoc"];
    for w in ph["valid_name_EOF"].as_array().unwrap() {
        let w = w.as_str().unwrap();
        let got = parse_heredoc(w);
        let ok = matches!(&got, Some(Ok(h)) if h.name == "EOF");
        t.check(ok, || {
            format!("ParseHeredoc({w:?}): expected name EOF, got {got:?}")
        });
    }
    for w in ph["invalid"].as_array().unwrap() {
        let w = w.as_str().unwrap();
        let got = parse_heredoc(w);
        t.check(matches!(got, Some(Err(_))), || {
            format!("ParseHeredoc({w:?}): expected an error, got {got:?}")
        });
    }
    for w in ph["not_heredoc"].as_array().unwrap() {
        let w = w.as_str().unwrap();
        let got = parse_heredoc(w);
        t.check(got.is_none(), || {
            format!("ParseHeredoc({w:?}): expected none, got {got:?}")
        });
    }
    for case in spec["heredocs_from_line"]["cases"].as_array().unwrap() {
        let line = case["line"].as_str().unwrap();
        let want: Vec<&str> = case["heredoc_names"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        match heredocs_from_line(line) {
            Ok(heads) => {
                let got: Vec<&str> = heads.iter().map(|h| h.name.as_str()).collect();
                t.check(got == want, || {
                    format!("heredocsFromLine({line:?}): expected {want:?}, got {got:?}")
                });
            }
            Err(e) => t.check(false, || format!("heredocsFromLine({line:?}): error {e}")),
        }
    }
    let chomp = &spec["chomp"];
    let (input, want) = (
        chomp["input"].as_str().unwrap(),
        chomp["expected"].as_str().unwrap(),
    );
    let got = chomp_heredoc_content(input);
    t.check(got == want, || {
        format!("ChompHeredocContent({input:?}): {want:?} != {got:?}")
    });
    t.report(all);
}

fn json_arrays(all: &mut Vec<String>) {
    let mut t = Tally::new("json-arrays");
    let spec = read_json(&crate::corpus("buildkit-parser/extracted/json-arrays.json"));
    for case in spec["valid"].as_array().unwrap() {
        let input = case["input"].as_str().unwrap();
        let want: Vec<&str> = case["expected"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        let src = format!("CMD {input}\n");
        match parse(src.as_bytes()) {
            Ok(df) => {
                let node = &df.children[0];
                let got: Vec<&str> = node.str_args().collect();
                t.check(node.json && got == want, || {
                    format!(
                        "{input:?}: expected exec form {want:?}, got json={} {got:?}",
                        node.json
                    )
                });
            }
            Err(e) => t.check(false, || format!("{input:?}: unexpected error {e}")),
        }
    }
    for case in spec["not_string_array"].as_array().unwrap() {
        let input = case.as_str().unwrap();
        for kw in ["CMD", "RUN", "COPY"] {
            let src = format!("{kw} {input}\n");
            let got = parse(src.as_bytes());
            t.check(got.is_err(), || {
                format!("{kw} {input}: expected an error, got {got:?}")
            });
        }
    }
    t.report(all);
}

fn empty_continuation_warnings(all: &mut Vec<String>) {
    let mut t = Tally::new("empty-continuation-warnings");
    let dir = crate::corpus("buildkit-parser/extracted/empty-continuation-warnings");
    let spec = read_json(&dir.join("expected.json"));
    let df = parsed(&dir.join("Dockerfile"));
    let count = spec["warning_count"].as_u64().unwrap() as usize;
    t.check(df.warnings.len() == count, || {
        format!("expected {count} warnings, got {:?}", df.warnings)
    });
    for (i, subs) in spec["short_contains"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
    {
        let Some(w) = df.warnings.get(i) else {
            t.check(false, || format!("warning {i} missing"));
            continue;
        };
        for s in subs.as_array().unwrap() {
            let s = s.as_str().unwrap();
            t.check(w.message.contains(s), || {
                format!("warning {i}: {:?} does not contain {s:?}", w.message)
            });
        }
    }
    let detail = spec["detail0_contains"].as_str().unwrap();
    let got = df.warnings.first().and_then(|w| w.detail.first());
    t.check(got.is_some_and(|d| d.contains(detail)), || {
        format!("warning 0 detail {got:?} does not contain {detail:?}")
    });
    t.report(all);
}

fn long_line(all: &mut Vec<String>) {
    let mut t = Tally::new("long-line");
    let spec = read_json(&crate::corpus("buildkit-parser/extracted/long-line.json"));
    let len = spec["label_value_len"].as_u64().unwrap() as usize;
    let want = spec["error_message"].as_str().unwrap();
    let src = format!("\n\t\tFROM image\n\t\tLABEL test={}\n", "a".repeat(len));
    match parse(src.as_bytes()) {
        Err(e) => {
            let msg = e.to_string();
            let bare = msg
                .strip_prefix(&format!("line {}: ", e.line()))
                .unwrap_or(&msg);
            t.check(bare == want, || {
                format!("expected error {want:?}, got {msg:?}")
            });
        }
        Ok(df) => t.check(false, || {
            format!("expected an error, parsed:\n{}", df.dump())
        }),
    }
    // The limit itself: 65535 bytes pass, 65536 do not.
    let ok = format!("FROM a\nLABEL x={}\n", "b".repeat(65535 - 8));
    t.check(parse(ok.as_bytes()).is_ok(), || {
        "a 65535-byte line must parse".to_string()
    });
    let too_long = format!("FROM a\nLABEL x={}", "b".repeat(65536 - 8));
    t.check(parse(too_long.as_bytes()).is_err(), || {
        "a 65536-byte line must fail".to_string()
    });
    t.report(all);
}

#[test]
fn buildkit_parser() {
    let mut failures = Vec::new();
    testfiles(&mut failures);
    negatives(&mut failures);
    line_numbers(&mut failures);
    heredoc_extract(&mut failures);
    heredoc_json(&mut failures);
    heredoc_words(&mut failures);
    json_arrays(&mut failures);
    empty_continuation_warnings(&mut failures);
    long_line(&mut failures);
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
