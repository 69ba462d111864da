//! Runs the OCI image-spec conformance corpus (`shared/conformance/oci-image-spec/`, see section
//! 4 of its README) through `oci::validate::validate`: every document must be classified as
//! upstream's validator classifies it.
#![allow(clippy::unwrap_used, clippy::print_stdout)]

use std::collections::HashMap;
use std::fs;

use oci::validate::{ValidationError, validate};
use oci::{Digest, MediaType};

const CORPUS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/conformance/oci-image-spec"
);
const INDEX_TSV: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/conformance/oci-image-spec/index.tsv"
);
const EXPECTED_ROWS: usize = 84;

/// The Docker → OCI media type substitutions upstream applies to the compat documents.
const DOCKER_TO_OCI: [(&str, &str); 4] = [
    (
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.index.v1+json",
    ),
    (
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
    ),
    (
        "application/vnd.docker.image.rootfs.diff.tar.gzip",
        "application/vnd.oci.image.layer.v1.tar+gzip",
    ),
    (
        "application/vnd.docker.container.image.v1+json",
        "application/vnd.oci.image.config.v1+json",
    ),
];

struct Row {
    file: String,
    media_type: String,
    expect_valid: bool,
    rejected_by: String,
}

fn read(rel: &str) -> Vec<u8> {
    let path = format!("{CORPUS}/{rel}");
    fs::read(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"))
}

fn rows() -> Vec<Row> {
    let text = fs::read_to_string(INDEX_TSV).unwrap_or_else(|e| panic!("reading {INDEX_TSV}: {e}"));
    let mut lines = text.lines();
    let header = lines.next().expect("index.tsv has a header");
    assert!(
        header.starts_with("file\tmediatype\tschema\texpect\trejected_by"),
        "header: {header}"
    );
    lines
        .filter(|l| !l.is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            assert!(f.len() >= 5, "short row: {l}");
            assert!(f[3] == "valid" || f[3] == "invalid", "expect column: {l}");
            Row {
                file: f[0].to_string(),
                media_type: f[1].to_string(),
                expect_valid: f[3] == "valid",
                rejected_by: f[4].to_string(),
            }
        })
        .collect()
}

/// `file` → (`raw_file`, `raw_digest`) for the Docker-compat cases, from index.json.
fn compat_cases() -> HashMap<String, (String, String)> {
    let index: serde_json::Value =
        serde_json::from_slice(&read("index.json")).expect("index.json is JSON");
    let cases = index["cases"].as_array().expect("index.json has cases");
    cases
        .iter()
        .filter_map(|c| {
            let raw_file = c.get("raw_file")?.as_str()?;
            let raw_digest = c.get("raw_digest")?.as_str()?;
            let file = c["file"].as_str()?;
            Some((
                file.to_string(),
                (raw_file.to_string(), raw_digest.to_string()),
            ))
        })
        .collect()
}

/// The docker media type whose rules a compat document's raw form is checked with.
fn docker_counterpart(oci: &MediaType) -> MediaType {
    match oci {
        MediaType::OciManifest => MediaType::DockerManifest,
        MediaType::OciIndex => MediaType::DockerManifestList,
        MediaType::OciConfig => MediaType::DockerConfig,
        other => panic!("no docker counterpart for {other}"),
    }
}

/// Does the error look like the rule the corpus says rejects the document?
fn matches_rule(rule: &str, err: &ValidationError) -> bool {
    let syntax = err.reason.starts_with("not valid JSON");
    match rule {
        "json-syntax" => syntax,
        "go-digest-encoding" => err.path.ends_with("digest"),
        "go-base64-data" => err.path.ends_with("data"),
        "go-config-env" => err.path.starts_with("config.Env["),
        "schema-format-uri" => err.path.starts_with("urls["),
        _ => !syntax,
    }
}

/// Checks one row; `Err` says why it is misclassified.
fn check(row: &Row, compat: &HashMap<String, (String, String)>) -> Result<(), String> {
    let media_type = MediaType::parse(&row.media_type);
    let bytes = read(&row.file);
    match (validate(&media_type, &bytes), row.expect_valid) {
        (Ok(()), true) => {}
        (Err(e), true) => return Err(format!("expected valid, got: {e}")),
        (Ok(()), false) => {
            return Err(format!(
                "expected invalid ({}), but it validated",
                row.rejected_by
            ));
        }
        (Err(e), false) if matches_rule(&row.rejected_by, &e) => {}
        (Err(e), false) => {
            return Err(format!(
                "rejected, but not by rule {}: {e}",
                row.rejected_by
            ));
        }
    }

    let is_compat = row.file.starts_with("tests/compat-");
    match compat.get(&row.file) {
        None if is_compat => Err("compat case without raw_file/raw_digest".to_string()),
        None => Ok(()),
        Some((raw_file, raw_digest)) => {
            let raw = read(raw_file);
            let digest = Digest::of(&raw).to_string();
            if digest != *raw_digest {
                return Err(format!(
                    "{raw_file} hashes to {digest}, expected {raw_digest}"
                ));
            }
            let mut converted = String::from_utf8(raw.clone()).map_err(|e| e.to_string())?;
            for (docker, oci) in DOCKER_TO_OCI {
                converted = converted.replace(docker, oci);
            }
            if converted.as_bytes() != bytes.as_slice() {
                return Err(format!(
                    "{raw_file} with the media types replaced differs from it"
                ));
            }
            let docker = docker_counterpart(&media_type);
            validate(&docker, &raw)
                .map_err(|e| format!("{raw_file} as {docker}: expected valid, got: {e}"))
        }
    }
}

#[test]
fn oci_image_spec_corpus() {
    let rows = rows();
    assert_eq!(rows.len(), EXPECTED_ROWS, "index.tsv rows");
    let compat = compat_cases();
    assert_eq!(compat.len(), 4, "compat cases in index.json");

    let mut failures = Vec::new();
    for row in &rows {
        if let Err(why) = check(row, &compat) {
            failures.push(format!("{} ({}): {why}", row.file, row.media_type));
        }
    }
    let passed = rows.len() - failures.len();
    println!("oci-image-spec: {passed} passed, {} failed", failures.len());
    for f in &failures {
        println!("  MISCLASSIFIED {f}");
    }
    assert!(
        failures.is_empty(),
        "misclassified documents:\n{}",
        failures.join("\n")
    );
}
