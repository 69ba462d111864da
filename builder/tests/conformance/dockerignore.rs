//! `.dockerignore` conformance: moby/patternmatcher's own test tables (extracted into
//! `shared/conformance/dockerignore/`, see its README section 3) against
//! `builder::dockerfile::ignore`.
//!
//! Every corpus file gets one line `dockerignore/<file>: N passed, M failed`; a row passes when
//! every check made for it passes, and each failing check is listed with its patterns, path,
//! expectation and result. We run on Linux, so `unix` rows run like `all` rows.

use builder::dockerfile::ignore::{
    self, IgnoreError, MatchInfo, MatchStrategy, PatternMatcher, translate_pattern,
};
use serde_json::Value;

/// Pass/fail bookkeeping for one corpus file.
struct Tally {
    name: String,
    passed: usize,
    failed: usize,
    failures: Vec<String>,
}

impl Tally {
    fn new(name: &str) -> Self {
        Tally {
            name: name.to_string(),
            passed: 0,
            failed: 0,
            failures: Vec::new(),
        }
    }

    /// Records one row, given the failure messages of its checks.
    fn row(&mut self, failures: Vec<String>) {
        if failures.is_empty() {
            self.passed += 1;
        } else {
            self.failed += 1;
            self.failures.extend(failures);
        }
    }

    fn finish(self) {
        println!(
            "dockerignore/{}: {} passed, {} failed",
            self.name, self.passed, self.failed
        );
        for failure in &self.failures {
            println!("  FAIL {failure}");
        }
        assert!(
            self.failures.is_empty(),
            "dockerignore/{}: {} failed rows:\n{}",
            self.name,
            self.failed,
            self.failures.join("\n")
        );
    }
}

fn read(name: &str) -> String {
    let path = crate::corpus("dockerignore").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// TSV rows without the header. No escaping: fields are raw; trailing columns are patterns.
fn tsv(name: &str) -> Vec<Vec<String>> {
    read(name)
        .lines()
        .skip(1)
        .filter(|line| !line.is_empty())
        .map(|line| line.split('\t').map(str::to_string).collect())
        .collect()
}

fn cases() -> Value {
    serde_json::from_str(&read("cases.json")).expect("cases.json is JSON")
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .expect("array of strings")
        .iter()
        .map(|v| v.as_str().expect("string").to_string())
        .collect()
}

fn parse_bool(field: &str) -> bool {
    match field {
        "true" => true,
        "false" => false,
        other => panic!("not a boolean: {other:?}"),
    }
}

fn run_platform(platform: &str) -> bool {
    match platform {
        "all" | "unix" => true,
        other => panic!("unknown platform {other:?}"),
    }
}

/// Expected outcome of a `matches` row.
#[derive(Debug, Clone, Copy)]
enum Expect {
    Ignored(bool),
    BadPattern,
}

/// Go's `filepath.Dir` for the corpus paths (no `.`, `..` or doubled slashes): everything up
/// to the last `/`, trailing slashes dropped, `.` when there is none.
fn dir(path: &str) -> String {
    match path.rfind('/') {
        None => ".".into(),
        Some(i) => {
            let d = path[..=i].trim_end_matches('/');
            if d.is_empty() { "/".into() } else { d.into() }
        }
    }
}

/// The parent chain upstream's test feeds to `MatchesUsingParentResults`: each prefix of
/// `Dir(path)`'s components, then the path itself with the last info.
fn through_parent_chain(pm: &PatternMatcher, path: &str) -> Result<bool, IgnoreError> {
    let parent = dir(path);
    let mut info = MatchInfo::new();
    if parent != "." {
        let parts: Vec<&str> = parent.split('/').collect();
        for i in 0..parts.len() {
            info = pm
                .matches_using_parent_result(&parts[..=i].join("/"), &info)?
                .1;
        }
    }
    Ok(pm.matches_using_parent_result(path, &info)?.0)
}

/// `New(patterns)` then `MatchesOrParentMatches(path)`, also through
/// `MatchesUsingParentResults` with the parent chain and with no context, as upstream does.
fn check_matches(patterns: &[String], path: &str, expect: Expect) -> Vec<String> {
    let what = format!("patterns {patterns:?} path {path:?} expected {expect:?}");
    let pm = match PatternMatcher::new(patterns) {
        Ok(pm) => pm,
        Err(e) => return vec![format!("{what}: New failed: {e}")],
    };
    let mut failures = Vec::new();
    let mut check = |api: &str, got: Result<bool, IgnoreError>| {
        let ok = match (expect, &got) {
            (Expect::Ignored(want), Ok(hit)) => want == *hit,
            (Expect::BadPattern, Err(e)) => e.is_bad_pattern(),
            _ => false,
        };
        if !ok {
            failures.push(format!("{what}: {api} gave {got:?}"));
        }
    };
    check("MatchesOrParentMatches", pm.matches_or_parent_matches(path));
    if let Expect::BadPattern = expect {
        // The regression row: a second call must fail the same way (and not panic).
        check(
            "MatchesOrParentMatches (2nd call)",
            pm.matches_or_parent_matches(path),
        );
    }
    check(
        "MatchesUsingParentResults (no context)",
        pm.matches_using_parent_result(path, &MatchInfo::new())
            .map(|r| r.0),
    );
    check(
        "MatchesUsingParentResults (parent chain)",
        through_parent_chain(&pm, path),
    );
    failures
}

/// The deprecated package-level `Matches(path, patterns)`.
fn check_legacy(patterns: &[String], path: &str, expected: &str, error: &str) -> Vec<String> {
    let refs: Vec<&str> = patterns.iter().map(String::as_str).collect();
    let got = ignore::legacy_matches(path, &refs);
    let ok = match (error, &got) {
        ("none", Ok(hit)) => expected == "-" || parse_bool(expected) == *hit,
        ("ErrBadPattern", Err(e)) => e.is_bad_pattern(),
        ("error", Err(_)) => true,
        ("none" | "ErrBadPattern" | "error", _) => false,
        (other, _) => panic!("unknown error kind {other:?}"),
    };
    if ok {
        Vec::new()
    } else {
        vec![format!(
            "Matches({path:?}, {patterns:?}): expected {expected} with error {error}, got {got:?}"
        )]
    }
}

/// patternmatcher's internal classification and regexp, for `/` and (as upstream's test does,
/// with the cleaned pattern's `/` replaced) for `\`.
fn check_compile(pattern: &str, match_type: &str, slash: &str, backslash: &str) -> Vec<String> {
    let mut failures = Vec::new();
    let windows_pattern = pattern.replace('/', "\\");
    for (sep, input, want_regexp) in [
        ('/', pattern, slash),
        ('\\', windows_pattern.as_str(), backslash),
    ] {
        let (strategy, regexp): (MatchStrategy, Option<String>) = translate_pattern(input, sep);
        let want = (match_type, (!want_regexp.is_empty()).then_some(want_regexp));
        let got = (strategy.go_name(), regexp.as_deref());
        if want != got {
            failures.push(format!(
                "compile {input:?} with separator {sep:?}: expected {want:?}, got {got:?}"
            ));
        }
    }
    failures
}

#[test]
fn matches_tsv() {
    let mut tally = Tally::new("matches.tsv");
    for row in tsv("matches.tsv") {
        let [pattern, path, expected, platform, ..] = row.as_slice() else {
            panic!("short row {row:?}");
        };
        if !run_platform(platform) {
            continue;
        }
        let expect = match expected.as_str() {
            "error" => Expect::BadPattern,
            other => Expect::Ignored(parse_bool(other)),
        };
        tally.row(check_matches(std::slice::from_ref(pattern), path, expect));
    }
    tally.finish();
}

#[test]
fn matches_multi_tsv() {
    let mut tally = Tally::new("matches-multi.tsv");
    for row in tsv("matches-multi.tsv") {
        let [path, expected, patterns @ ..] = row.as_slice() else {
            panic!("short row {row:?}");
        };
        tally.row(check_matches(
            patterns,
            path,
            Expect::Ignored(parse_bool(expected)),
        ));
    }
    tally.finish();
}

#[test]
fn legacy_matches_tsv() {
    let mut tally = Tally::new("legacy-matches.tsv");
    for row in tsv("legacy-matches.tsv") {
        let [path, expected, error, platform, _source, patterns @ ..] = row.as_slice() else {
            panic!("short row {row:?}");
        };
        if !run_platform(platform) {
            continue;
        }
        tally.row(check_legacy(patterns, path, expected, error));
    }
    tally.finish();
}

#[test]
fn compile_tsv() {
    let mut tally = Tally::new("compile.tsv");
    for row in tsv("compile.tsv") {
        // A trailing empty column may be cut by `lines`/`split`; pad it.
        let field = |i: usize| row.get(i).map(String::as_str).unwrap_or("");
        tally.row(check_compile(field(0), field(1), field(2), field(3)));
    }
    tally.finish();
}

#[test]
fn cases_json() {
    let cases = cases();
    let mut tally = Tally::new("cases.json");
    let mut groups = Vec::new();
    let mut group = |tally: &mut Tally, name: &str, rows: Vec<Vec<String>>| {
        let before = (tally.passed, tally.failed);
        for failures in rows {
            tally.row(failures);
        }
        groups.push(format!(
            "{name} {}/{}",
            tally.passed - before.0,
            tally.passed - before.0 + tally.failed - before.1
        ));
    };

    let rows = cases["matches"]
        .as_array()
        .expect("matches")
        .iter()
        .filter(|c| run_platform(c["platform"].as_str().expect("platform")))
        .map(|c| {
            let expect = match &c["expected"] {
                Value::Bool(b) => Expect::Ignored(*b),
                Value::String(s) if s == "error" => Expect::BadPattern,
                other => panic!("bad expected {other}"),
            };
            let pattern = c["pattern"].as_str().expect("pattern").to_string();
            check_matches(&[pattern], c["path"].as_str().expect("path"), expect)
        })
        .collect();
    group(&mut tally, "matches", rows);

    let rows = cases["matches_multi"]
        .as_array()
        .expect("matches_multi")
        .iter()
        .map(|c| {
            let expect = Expect::Ignored(c["expected"].as_bool().expect("expected"));
            check_matches(
                &strings(&c["patterns"]),
                c["path"].as_str().expect("path"),
                expect,
            )
        })
        .collect();
    group(&mut tally, "matches_multi", rows);

    let rows = cases["legacy_matches"]
        .as_array()
        .expect("legacy_matches")
        .iter()
        .filter(|c| run_platform(c["platform"].as_str().expect("platform")))
        .map(|c| {
            let expected = match &c["expected"] {
                Value::Bool(b) => b.to_string(),
                Value::String(s) => s.clone(),
                Value::Null => "-".to_string(),
                other => panic!("bad expected {other}"),
            };
            check_legacy(
                &strings(&c["patterns"]),
                c["path"].as_str().expect("path"),
                &expected,
                c["error"].as_str().expect("error"),
            )
        })
        .collect();
    group(&mut tally, "legacy_matches", rows);

    let rows = cases["compile"]
        .as_array()
        .expect("compile")
        .iter()
        .map(|c| {
            let s = |key: &str| c[key].as_str().unwrap_or("").to_string();
            check_compile(
                &s("pattern"),
                &s("match_type"),
                &s("regexp_slash"),
                &s("regexp_backslash"),
            )
        })
        .collect();
    group(&mut tally, "compile", rows);

    // New(): trimming, dropping empty patterns, `!` handling.
    let rows = cases["new_patterns"]
        .as_array()
        .expect("new_patterns")
        .iter()
        .map(|c| {
            let patterns = strings(&c["patterns"]);
            let source = c["source"].as_str().unwrap_or("");
            let want_error = c["error"].as_bool().expect("error");
            match PatternMatcher::new(&patterns) {
                Err(e) if want_error => {
                    // A lone `!` is a plain error upstream, not ErrBadPattern.
                    if e == IgnoreError::LoneExclamation {
                        Vec::new()
                    } else {
                        vec![format!("{source}: New({patterns:?}) failed with {e:?}")]
                    }
                }
                Err(e) => vec![format!("{source}: New({patterns:?}) failed: {e}")],
                Ok(_) if want_error => vec![format!("{source}: New({patterns:?}) succeeded")],
                Ok(pm) => {
                    let mut failures = Vec::new();
                    if let Some(count) = c["expected_count"].as_u64() {
                        if pm.len() as u64 != count {
                            failures.push(format!(
                                "{source}: New({patterns:?}) kept {} patterns, expected {count}",
                                pm.len()
                            ));
                        }
                    }
                    if let Some(exclusions) = c["expected_exclusions"].as_bool() {
                        if pm.exclusions() != exclusions {
                            failures.push(format!(
                                "{source}: New({patterns:?}).exclusions() = {}, expected {exclusions}",
                                pm.exclusions()
                            ));
                        }
                    }
                    failures
                }
            }
        })
        .collect();
    group(&mut tally, "new_patterns", rows);

    // ReadAll, from the JSON form of the input, and a nil reader (our empty input).
    let readall = &cases["ignorefile_readall"];
    let input = readall["input"].as_str().expect("input");
    let expected = strings(&readall["expected"]);
    let nil_expected = strings(&readall["nil_reader_expected"]);
    let mut rows = Vec::new();
    let got = ignore::read_ignore_file(input.as_bytes());
    rows.push(if got == expected {
        Vec::new()
    } else {
        vec![format!(
            "ReadAll({input:?}): expected {expected:?}, got {got:?}"
        )]
    });
    let got = ignore::read_ignore_file(b"");
    rows.push(if got == nil_expected {
        Vec::new()
    } else {
        vec![format!(
            "ReadAll(nil): expected {nil_expected:?}, got {got:?}"
        )]
    });
    group(&mut tally, "ignorefile_readall", rows);

    println!("dockerignore/cases.json groups: {}", groups.join(", "));
    tally.finish();
}

#[test]
fn ignorefile_readall() {
    let mut tally = Tally::new("ignorefile/readall.dockerignore + readall.expected");
    let input_path = crate::corpus("dockerignore/ignorefile/readall.dockerignore");
    let input =
        std::fs::read(&input_path).unwrap_or_else(|e| panic!("{}: {e}", input_path.display()));
    let expected: Vec<String> = read("ignorefile/readall.expected")
        .lines()
        .map(str::to_string)
        .collect();
    let got = ignore::read_ignore_file(&input);
    tally.row(if got == expected {
        Vec::new()
    } else {
        vec![format!(
            "ReadAll(readall.dockerignore): expected {expected:?}, got {got:?}"
        )]
    });
    // The file's patterns must also be usable, except the lone `!` lines, which New rejects.
    let usable: Vec<&String> = got.iter().filter(|p| p.as_str() != "!").collect();
    tally.row(
        match PatternMatcher::new(&usable.iter().map(|s| s.as_str()).collect::<Vec<_>>()) {
            Ok(_) => Vec::new(),
            Err(e) => vec![format!("New(ReadAll patterns without `!`) failed: {e}")],
        },
    );
    tally.row(match PatternMatcher::new(&got) {
        Err(IgnoreError::LoneExclamation) => Vec::new(),
        other => vec![format!(
            "New(ReadAll patterns) should reject the lone `!`, got {other:?}"
        )],
    });
    tally.finish();
}
