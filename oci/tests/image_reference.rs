//! Conformance: runs every section of `shared/conformance/image-reference/cases.json` (tables
//! extracted from docker's `distribution/reference` tests) against `oci::reference`.
#![allow(clippy::unwrap_used, clippy::print_stdout)]

use std::collections::BTreeMap;

use oci::reference::{AnyReference, parse_any};
use oci::{DigestError, Reference, ReferenceError};
use serde_json::Value;

const CASES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/conformance/image-reference/cases.json"
);

/// The outcome of one case: `Err` explains the mismatch.
type Outcome = Result<(), String>;

/// Per-section tallies and the failures to report.
#[derive(Default)]
struct Tally {
    passed: usize,
    failed: Vec<String>,
}

impl Tally {
    fn record(&mut self, label: String, outcome: Outcome) {
        match outcome {
            Ok(()) => self.passed += 1,
            Err(why) => self.failed.push(format!("{label}: {why}")),
        }
    }
}

fn str_field<'a>(case: &'a Value, key: &str) -> &'a str {
    case.get(key).and_then(Value::as_str).unwrap_or_default()
}

fn cases(section: &Value) -> &[Value] {
    section
        .get("cases")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

fn names<'a>(section: &'a Value, key: &str) -> Vec<&'a str> {
    section
        .get(key)
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// Compares a string field where `""` in the data means "absent".
fn check_opt(what: &str, got: Option<String>, want: &str) -> Outcome {
    let want = (!want.is_empty()).then(|| want.to_string());
    if got == want {
        Ok(())
    } else {
        Err(format!("{what}: got {got:?}, want {want:?}"))
    }
}

fn check_eq(what: &str, got: &str, want: &str) -> Outcome {
    if got == want {
        Ok(())
    } else {
        Err(format!("{what}: got `{got}`, want `{want}`"))
    }
}

/// Whether our error is the one the upstream sentinel `name` stands for. Where our message
/// keeps upstream's wording, it must also contain upstream's text; every message must name the
/// input (digest errors name the digest part, which is where the problem is).
fn check_error(input: &str, err: &ReferenceError, name: &str, message: &str) -> Outcome {
    let kind_ok = match name {
        "ErrNameEmpty" => matches!(err, ReferenceError::NameEmpty),
        "ErrReferenceInvalidFormat" => matches!(err, ReferenceError::InvalidFormat { .. }),
        "ErrNameContainsUppercase" => matches!(err, ReferenceError::ContainsUppercase(_)),
        "ErrNameTooLong" => matches!(err, ReferenceError::NameTooLong { .. }),
        "ErrNameNotCanonical" => matches!(err, ReferenceError::NotCanonical { .. }),
        "digest.ErrDigestInvalidLength" => {
            matches!(err, ReferenceError::Digest(DigestError::Encoding(_)))
        }
        // We support sha256 only, so both an unknown algorithm and sha512 are "unsupported",
        // exactly as in upstream's test binary (see the sha512 case's `note`).
        "digest.ErrDigestUnsupported" => {
            matches!(err, ReferenceError::Digest(DigestError::Algorithm(_)))
        }
        other => return Err(format!("unknown upstream error `{other}`")),
    };
    if !kind_ok {
        return Err(format!("got error {err:?}, want {name}"));
    }
    let text = err.to_string();
    let keeps_wording = !matches!(
        err,
        ReferenceError::InvalidFormat { .. } | ReferenceError::Digest(_)
    );
    if keeps_wording && !text.contains(message) {
        return Err(format!("message `{text}` lacks upstream text `{message}`"));
    }
    let names_input = match err {
        ReferenceError::Digest(_) => match input.split_once('@') {
            Some((_, digest)) => text.contains(&format!("`{digest}`")),
            None => false,
        },
        _ => text.contains(&format!("`{input}`")),
    };
    if !names_input {
        return Err(format!("message `{text}` does not name the input"));
    }
    Ok(())
}

fn run_parse(case: &Value) -> Outcome {
    let input = str_field(case, "input");
    let result = Reference::parse(input);
    if let Some(error) = case.get("error").filter(|e| !e.is_null()) {
        return match result {
            Ok(r) => Err(format!("parsed as `{r}`, want error {error}")),
            Err(e) => check_error(
                input,
                &e,
                str_field(error, "name"),
                str_field(error, "message"),
            ),
        };
    }
    let r = result.map_err(|e| format!("unexpected error: {e}"))?;
    check_eq("String()", &r.to_string(), input)?;
    check_eq("name", &r.name(), str_field(case, "name"))?;
    check_eq("domain", r.domain(), str_field(case, "domain"))?;
    check_opt("tag", r.tag().map(str::to_string), str_field(case, "tag"))?;
    check_opt(
        "digest",
        r.digest().map(ToString::to_string),
        str_field(case, "digest"),
    )
}

fn run_parse_named(case: &Value) -> Outcome {
    let input = str_field(case, "input");
    let result = Reference::parse_canonical(input);
    if let Some(error) = case.get("error").filter(|e| !e.is_null()) {
        return match result {
            Ok(r) => Err(format!("parsed as `{r}`, want error {error}")),
            Err(e) => check_error(
                input,
                &e,
                str_field(error, "name"),
                str_field(error, "message"),
            ),
        };
    }
    let r = result.map_err(|e| format!("unexpected error: {e}"))?;
    check_eq("domain", r.domain(), str_field(case, "domain"))?;
    check_eq("path", r.path(), str_field(case, "path"))
}

fn run_normalized_valid(input: &str) -> Outcome {
    Reference::parse_normalized(input)
        .map(drop)
        .map_err(|e| format!("unexpected error: {e}"))
}

fn run_normalized_invalid(input: &str) -> Outcome {
    match Reference::parse_normalized(input) {
        Ok(r) => Err(format!("parsed as `{r}`, want an error")),
        Err(e) if e.to_string().contains(&format!("`{input}`")) => Ok(()),
        Err(e) => Err(format!("message `{e}` does not name the input")),
    }
}

fn run_repository_info(case: &Value) -> Outcome {
    let familiar = str_field(case, "familiar_name");
    let full = str_field(case, "full_name");
    let ambiguous = str_field(case, "ambiguous_name");
    for input in [familiar, full, ambiguous] {
        if input.is_empty() {
            continue;
        }
        let r = Reference::parse_normalized(input)
            .map_err(|e| format!("`{input}`: unexpected error: {e}"))?;
        check_eq(
            &format!("`{input}` familiar_name"),
            &r.familiar_name(),
            familiar,
        )?;
        check_eq(&format!("`{input}` String()"), &r.to_string(), full)?;
        check_eq(
            &format!("`{input}` domain"),
            r.domain(),
            str_field(case, "domain"),
        )?;
        check_eq(
            &format!("`{input}` path"),
            r.path(),
            str_field(case, "remote_name"),
        )?;
    }
    Ok(())
}

fn run_parse_any(case: &Value) -> Outcome {
    let input = str_field(case, "input");
    let want = str_field(case, "string");
    let any = parse_any(input).map_err(|e| format!("unexpected error: {e}"))?;
    check_eq("String()", &any.to_string(), want)?;
    match (str_field(case, "kind"), &any) {
        ("digest-only", AnyReference::Digest(_)) => Ok(()),
        ("named", AnyReference::Named(r)) => {
            let reparsed =
                Reference::parse(want).map_err(|e| format!("Parse(`{want}`) failed: {e}"))?;
            if &reparsed == r {
                Ok(())
            } else {
                Err(format!("{r:?} differs from Parse(`{want}`) = {reparsed:?}"))
            }
        }
        (kind, got) => Err(format!("want kind {kind}, got {got:?}")),
    }
}

fn run_split_hostname(case: &Value) -> Outcome {
    let input = str_field(case, "input");
    let r = Reference::parse_normalized(input).map_err(|e| format!("unexpected error: {e}"))?;
    check_eq("domain", r.domain(), str_field(case, "domain"))?;
    check_eq("path", r.path(), str_field(case, "path"))
}

fn run_parse_docker_ref(case: &Value) -> Outcome {
    let input = str_field(case, "input");
    let want = str_field(case, "expected");
    let r = Reference::parse_docker(input).map_err(|e| format!("unexpected error: {e}"))?;
    check_eq("String()", &r.to_string(), want)?;
    let reparsed = Reference::parse(want).map_err(|e| format!("Parse(`{want}`) failed: {e}"))?;
    if reparsed != r {
        return Err(format!(
            "Parse(`{want}`) = {reparsed:?}, differs from {r:?}"
        ));
    }
    let via_from_str: Reference = input.parse().map_err(|e| format!("FromStr failed: {e}"))?;
    if via_from_str != r {
        return Err(format!(
            "FromStr gave {via_from_str:?}, parse_docker gave {r:?}"
        ));
    }
    Ok(())
}

#[test]
fn image_reference_conformance() {
    let text = std::fs::read_to_string(CASES).unwrap_or_else(|e| panic!("reading {CASES}: {e}"));
    let data: Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("parsing {CASES}: {e}"));
    let sections = data
        .as_object()
        .unwrap_or_else(|| panic!("{CASES}: not a JSON object"));

    let mut tallies: BTreeMap<&str, Tally> = BTreeMap::new();
    for (section_name, section) in sections {
        // Top-level strings such as `_source` describe the file; every object is a section.
        if !section.is_object() {
            continue;
        }
        let tally = tallies.entry(section_name.as_str()).or_default();
        match section_name.as_str() {
            "parse" => {
                for (i, c) in cases(section).iter().enumerate() {
                    tally.record(format!("#{i} `{}`", str_field(c, "input")), run_parse(c));
                }
            }
            "parse_named" => {
                for (i, c) in cases(section).iter().enumerate() {
                    tally.record(
                        format!("#{i} `{}`", str_field(c, "input")),
                        run_parse_named(c),
                    );
                }
            }
            "normalized_valid_names" | "normalized_invalid_names" => {
                let valid = section_name == "normalized_valid_names";
                for list in ["reference_names", "remote_names"] {
                    for name in names(section, list) {
                        let outcome = if valid {
                            run_normalized_valid(name)
                        } else {
                            run_normalized_invalid(name)
                        };
                        tally.record(format!("{list} `{name}`"), outcome);
                    }
                }
            }
            "repository_info" => {
                for (i, c) in cases(section).iter().enumerate() {
                    let label = format!("#{i} `{}`", str_field(c, "full_name"));
                    tally.record(label, run_repository_info(c));
                }
            }
            "parse_any_reference" => {
                for (i, c) in cases(section).iter().enumerate() {
                    tally.record(
                        format!("#{i} `{}`", str_field(c, "input")),
                        run_parse_any(c),
                    );
                }
            }
            "normalized_split_hostname" => {
                for (i, c) in cases(section).iter().enumerate() {
                    let label = format!("#{i} `{}`", str_field(c, "input"));
                    tally.record(label, run_split_hostname(c));
                }
            }
            "parse_docker_ref" => {
                for (i, c) in cases(section).iter().enumerate() {
                    let label =
                        format!("#{i} {} `{}`", str_field(c, "name"), str_field(c, "input"));
                    tally.record(label, run_parse_docker_ref(c));
                }
            }
            other => tally.record(
                format!("section `{other}`"),
                Err("no runner for this section".to_string()),
            ),
        }
        if tally.passed + tally.failed.len() == 0 {
            tally.record("section".to_string(), Err("has no cases".to_string()));
        }
    }

    let mut failures = Vec::new();
    for (section, tally) in &tallies {
        println!(
            "image-reference/{section}: {} passed, {} failed",
            tally.passed,
            tally.failed.len()
        );
        failures.extend(
            tally
                .failed
                .iter()
                .map(|f| format!("image-reference/{section} {f}")),
        );
    }
    assert!(!tallies.is_empty(), "{CASES}: no sections");
    assert!(
        failures.is_empty(),
        "{} failing cases:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
