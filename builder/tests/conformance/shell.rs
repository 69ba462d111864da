//! `buildkit-shell/`: BuildKit's shell-lexer tables (README section 2) against
//! `builder::dockerfile::shell::Lexer`. Every corpus, every mode; no case is skipped.

use std::collections::{BTreeMap, BTreeSet};

use builder::dockerfile::shell::{Env, Lexer};
use serde_json::Value;

/// Pass/fail tally for one corpus; failures carry input, expected and got.
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

    fn check(&mut self, ok: bool, case: impl FnOnce() -> String) {
        if ok {
            self.passed += 1;
        } else {
            self.failures.push(case());
        }
    }

    /// Prints the summary line and fails on any failure.
    fn finish(self) {
        println!(
            "buildkit-shell/{}: {} passed, {} failed",
            self.name,
            self.passed,
            self.failures.len()
        );
        for failure in &self.failures {
            println!("  FAIL {failure}");
        }
        assert!(self.passed > 0, "{}: no cases ran", self.name);
        assert!(
            self.failures.is_empty(),
            "{}: {} failures:\n{}",
            self.name,
            self.failures.len(),
            self.failures.join("\n")
        );
    }
}

fn read(name: &str) -> String {
    let path = crate::corpus("buildkit-shell").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Windows environments look names up case-insensitively; that is all that differs for the
/// `W` lines of envVarTest.
struct CaseInsensitive<'a>(&'a [&'a str]);

impl Env for CaseInsensitive<'_> {
    fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().rev().find_map(|entry| {
            let (key, value) = entry.split_once('=').unwrap_or((*entry, ""));
            key.eq_ignore_ascii_case(name).then_some(value)
        })
    }
}

/// `Ok(value)`, or `Err(message)` rendered for a failure report.
fn show(result: &Result<String, String>) -> String {
    match result {
        Ok(value) => format!("{value:?}"),
        Err(message) => format!("error ({message})"),
    }
}

struct EnvVarCase {
    line: usize,
    platform: String,
    input: String,
    expected: String,
}

fn env_var_cases() -> Vec<EnvVarCase> {
    let mut cases = Vec::new();
    for (index, raw) in read("envVarTest").lines().enumerate() {
        if raw.starts_with('#') {
            continue;
        }
        let line = raw.trim();
        if line.is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split('|').map(str::trim).collect();
        let [platform, input, expected] = fields[..] else {
            panic!("envVarTest:{}: expected 3 fields: {raw:?}", index + 1);
        };
        assert!(
            matches!(platform, "A" | "U" | "W"),
            "envVarTest:{}: platform {platform:?}",
            index + 1
        );
        cases.push(EnvVarCase {
            line: index + 1,
            platform: platform.to_owned(),
            input: input.to_owned(),
            expected: expected.to_owned(),
        });
    }
    cases
}

fn run_env_var_test(name: &'static str, platforms: &[&str], env: &dyn Env) {
    let lexer = Lexer::new('\\');
    let mut tally = Tally::new(name);
    for case in env_var_cases()
        .iter()
        .filter(|c| platforms.contains(&c.platform.as_str()))
    {
        let got = lexer
            .process_word(&case.input, env)
            .map(|e| e.value)
            .map_err(|e| e.to_string());
        let ok = match (&got, case.expected.as_str()) {
            (Err(_), "error") => true,
            (Ok(value), expected) => expected != "error" && value == expected,
            (Err(_), _) => false,
        };
        tally.check(ok, || {
            format!(
                "line {} [{}] input {:?}: expected {}, got {}",
                case.line,
                case.platform,
                case.input,
                if case.expected == "error" {
                    "error".to_owned()
                } else {
                    format!("{:?}", case.expected)
                },
                show(&got)
            )
        });
    }
    tally.finish();
}

const ENV_VAR_TEST_ENV: [&str; 4] = ["PWD=/home", "SHELL=bash", "KOREAN=한국어", "NULL="];

#[test]
fn shell_env_var_test_counts() {
    let cases = env_var_cases();
    let count = |p: &str| cases.iter().filter(|c| c.platform == p).count();
    assert_eq!(
        (cases.len(), count("A"), count("U"), count("W")),
        (230, 226, 2, 2)
    );
    assert_eq!(cases.iter().filter(|c| c.expected == "error").count(), 36);
}

/// Upstream on Unix: `A` and `U` lines, case-sensitive names.
#[test]
fn shell_env_var_test_unix() {
    run_env_var_test("envVarTest (A+U, unix)", &["A", "U"], &ENV_VAR_TEST_ENV);
}

/// Upstream on Windows: `A` and `W` lines, case-insensitive names.
#[test]
fn shell_env_var_test_windows() {
    run_env_var_test(
        "envVarTest (A+W, windows env)",
        &["A", "W"],
        &CaseInsensitive(&ENV_VAR_TEST_ENV),
    );
}

#[test]
fn shell_words_test() {
    let lexer = Lexer::new('\\');
    let mut tally = Tally::new("wordsTest");
    let mut env: Vec<String> = Vec::new();
    let (mut env_lines, mut error_cases) = (0, 0);
    for (index, line) in read("wordsTest").lines().enumerate() {
        if line.starts_with('#') {
            continue;
        }
        if let Some(rest) = line.strip_prefix("ENV ") {
            // Upstream takes line[3:] and removes leading spaces; trailing ones are kept.
            env.push(rest.trim_start_matches(' ').to_owned());
            env_lines += 1;
            continue;
        }
        let fields: Vec<&str> = line.split('|').collect();
        let [input, expected] = fields[..] else {
            panic!("wordsTest:{}: expected one '|': {line:?}", index + 1);
        };
        let input = input.trim();
        let expected: Vec<&str> = expected.trim_start_matches(' ').split(',').collect();
        let got = lexer.process_words(input, &env).map_err(|e| e.to_string());
        let ok = match &got {
            Err(_) => expected == ["error"],
            Ok(words) => words == &expected,
        };
        if expected == ["error"] {
            error_cases += 1;
        }
        tally.check(ok, || {
            format!(
                "line {} input {input:?}: expected {expected:?}, got {got:?}",
                index + 1
            )
        });
    }
    assert_eq!(
        (tally.passed + tally.failures.len(), env_lines, error_cases),
        (24, 4, 1)
    );
    tally.finish();
}

fn cases_json() -> Value {
    serde_json::from_str(&read("process-word-cases.json")).unwrap()
}

fn string_set(value: &Value) -> BTreeSet<String> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

fn env_map(case: &Value) -> BTreeMap<String, String> {
    case["envs"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
        .collect()
}

fn env_list(case: &Value) -> Vec<String> {
    case["env_list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

/// `process_word_with_matches` and `process_word_platform`: value, and (when given) the
/// matched/unmatched name sets; error cases only check that it fails.
fn run_with_matches(group: &'static str, count: usize) {
    let lexer = Lexer::new('\\');
    let mut tally = Tally::new(group);
    let cases = cases_json();
    let cases = cases[group].as_array().unwrap();
    assert_eq!(cases.len(), count, "{group}");
    for case in cases {
        let input = case["input"].as_str().unwrap();
        let env = env_map(case);
        let got = lexer.process_word(input, &env);
        let describe = |got: &dyn std::fmt::Debug| {
            format!(
                "input {input:?} envs {env:?}: expected {}, got {got:?}",
                if case["error"] == true {
                    "error".to_owned()
                } else {
                    format!(
                        "{:?} matched {} unmatched {}",
                        case["expected"].as_str().unwrap(),
                        case.get("matched")
                            .map_or("-".to_owned(), ToString::to_string),
                        case.get("unmatched")
                            .map_or("-".to_owned(), ToString::to_string),
                    )
                }
            )
        };
        let ok = match &got {
            Err(_) => case["error"] == true,
            Ok(out) => {
                case["error"] == false
                    && Some(out.value.as_str()) == case["expected"].as_str()
                    && case
                        .get("matched")
                        .is_none_or(|m| string_set(m) == out.used)
                    && case
                        .get("unmatched")
                        .is_none_or(|m| string_set(m) == out.unset)
            }
        };
        tally.check(ok, || describe(&got));
    }
    tally.finish();
}

#[test]
fn shell_process_word_with_matches() {
    run_with_matches("process_word_with_matches", 47);
}

#[test]
fn shell_process_word_platform() {
    run_with_matches("process_word_platform", 3);
}

#[test]
fn shell_process_word_mandatory() {
    let lexer = Lexer::new('\\');
    let mut tally = Tally::new("process_word_mandatory");
    let cases = cases_json();
    let cases = cases["process_word_mandatory"].as_array().unwrap();
    assert_eq!(cases.len(), 6);
    for case in cases {
        let input = case["input"].as_str().unwrap();
        let env = env_list(case);
        let got = lexer
            .process_word(input, &env)
            .map(|e| e.value)
            .map_err(|e| e.to_string());
        let ok = match (&got, case["error"] == true) {
            (Err(message), true) => message.contains(case["error_contains"].as_str().unwrap()),
            (Ok(value), false) => Some(value.as_str()) == case["expected"].as_str(),
            _ => false,
        };
        tally.check(ok, || {
            let expected = match case["error_contains"].as_str() {
                Some(text) => format!("error containing {text:?}"),
                None => format!("{:?}", case["expected"].as_str().unwrap()),
            };
            format!(
                "input {input:?} env {env:?}: expected {expected}, got {}",
                show(&got)
            )
        });
    }
    tally.finish();
}

#[test]
fn shell_env_lookup() {
    let mut tally = Tally::new("env_lookup");
    let cases = cases_json();
    let cases = cases["env_lookup"].as_array().unwrap();
    assert_eq!(cases.len(), 7);
    for case in cases {
        let env = env_list(case);
        let name = case["name"].as_str().unwrap();
        let expected = case["expected"].as_str().unwrap();
        // Upstream only compares the value; "not set" reads as "".
        let got = Env::get(&env, name);
        tally.check(got.unwrap_or_default() == expected, || {
            format!("env {env:?} name {name:?}: expected {expected:?}, got {got:?}")
        });
    }
    tally.finish();
}
