//! `hoist build --call targets|outline`: the stages and build args of a Dockerfile without
//! building, and front-end errors that name the file and line and show it.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;

use common::*;

fn sample() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/dockerfiles/multistage")
        .display()
        .to_string()
}

#[test]
fn targets_lists_stages_with_bases_lines_and_descriptions() {
    let t = tempdir();
    let out = hoist_ok(t.path(), &["build", "--call", "targets", &sample()]);
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with("TARGET") && lines[0].contains("BASE") && lines[0].contains("LINE"),
        "{out}"
    );
    assert!(
        lines[1].starts_with("base")
            && lines[1].contains("localhost:5000/debian:bookworm")
            && lines[1].contains(" 6 ")
            && lines[1].contains("The common base."),
        "{out}"
    );
    assert!(lines[3].starts_with("final (default)"), "{out}");
    let json: serde_json::Value = serde_json::from_str(&hoist_ok(
        t.path(),
        &[
            "build",
            "--call",
            "targets",
            "--format",
            "json",
            "--build-arg",
            "DEBIAN_TAG=trixie",
            &sample(),
        ],
    ))
    .unwrap();
    assert_eq!(json["targets"][0]["base"], "localhost:5000/debian:trixie");
    assert_eq!(json["targets"][2]["name"], "final");
    assert_eq!(json["targets"][2]["default"], true);
}

#[test]
fn outline_lists_the_build_args_of_the_target() {
    let t = tempdir();
    let json: serde_json::Value = serde_json::from_str(&hoist_ok(
        t.path(),
        &[
            "build",
            "--call",
            "outline",
            "--format",
            "json",
            "--build-arg",
            "VERSION=2.0",
            &sample(),
        ],
    ))
    .unwrap();
    let names: Vec<&str> = json["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["REG", "DEBIAN_TAG", "TOOL_COUNT", "VERSION"]);
    assert_eq!(json["args"][3]["value"], "2.0");
    assert_eq!(
        json["args"][2]["description"],
        "How many tool files to generate."
    );
    let base: serde_json::Value = serde_json::from_str(&hoist_ok(
        t.path(),
        &[
            "build",
            "--call",
            "outline",
            "--format",
            "json",
            "--target",
            "base",
            &sample(),
        ],
    ))
    .unwrap();
    assert_eq!(
        base["args"].as_array().unwrap().len(),
        2,
        "the base stage declares no ARG of its own"
    );
}

#[test]
fn front_end_errors_name_the_file_and_line_and_show_it() {
    let t = tempdir();
    for (df, want) in [
        (
            "FROM a\n\n\n\n\n\nRUN --chmod=755 x\n",
            ":7: unknown flag --chmod for RUN",
        ),
        ("RUN true\nFROM a\n", ":1: RUN before the first FROM"),
        (
            "FROM a\nFROBNICATE x\n",
            ":2: unknown instruction: FROBNICATE",
        ),
        (
            "FROM a\nCOPY onlyone\n",
            ":2: COPY requires at least two arguments",
        ),
        ("FROM a\nENV PATH\n", ":2: ENV must have two arguments"),
        (
            "FROM a\nCMD [\"a\", [1]]\n",
            ":2: CMD: when using JSON array syntax",
        ),
        ("FROM a\nRUN <<EOF\necho\n", ":2: unterminated heredoc"),
    ] {
        let path = t.path().join("Dockerfile.bad");
        std::fs::write(&path, df).unwrap();
        let out = hoist(
            t.path(),
            &[
                "build",
                "--call",
                "targets",
                "-f",
                path.to_str().unwrap(),
                t.path().to_str().unwrap(),
            ],
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{df:?}");
        assert!(
            err.contains(&format!("Dockerfile.bad{want}")),
            "{df:?}: {err}"
        );
        let line: usize = want[1..].split(':').next().unwrap().parse().unwrap();
        let text = df.lines().nth(line - 1).unwrap();
        assert!(
            err.contains(&format!("{line} | {text}")),
            "{df:?}: the line is not shown: {err}"
        );
    }
}
