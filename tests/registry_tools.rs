//! Self-tests of the in-process registry tools (`common::regtools`): TLS material, the token
//! server and the fault proxy, each against a real registry (`docker-registry serve`) and
//! `curl`. Skips locally and fails under `CI=true` without `docker-registry`.

#![allow(clippy::unwrap_used, clippy::print_stdout)]

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::regtools::{FaultProxy, Faults, Pki, TokenServer, certs_d, write_registry_tls};
use common::*;
use serde_json::Value;
use sha2::{Digest as _, Sha256};

/// A response as curl saw it: status, headers (lowercased names), body.
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
}

fn curl_raw(args: &[&str]) -> Output {
    Command::new("curl")
        .args(["-sS", "--max-time", "30", "-i"])
        .args(args)
        .output()
        .expect("run curl")
}

/// Runs `curl -i ARGS` and splits its output; panics when curl itself fails.
fn curl(args: &[&str]) -> Reply {
    let out = curl_raw(args);
    assert!(
        out.status.success(),
        "curl {args:?} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    parse_reply(&out.stdout)
}

fn parse_reply(raw: &[u8]) -> Reply {
    let mut rest = raw;
    // Skip interim `100 Continue` heads.
    loop {
        let end = rest
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("a complete response head");
        let head = String::from_utf8_lossy(&rest[..end]).into_owned();
        rest = &rest[end + 4..];
        let mut lines = head.lines();
        let status: u16 = lines
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|s| s.parse().ok())
            .expect("a status line");
        if status == 100 {
            continue;
        }
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        return Reply {
            status,
            headers,
            body: rest.to_vec(),
        };
    }
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

#[test]
fn tls_registry_needs_the_ca() {
    if !require(has_tool("docker-registry"), "docker-registry") {
        return;
    }
    let pki = Pki::new();
    let dir = Registry::prepare();
    write_registry_tls(dir.path(), &pki);
    let reg = Registry::start_in(dir, "", true);
    let ca = reg.dir.path().join("ca.pem");
    std::fs::write(&ca, &pki.ca_pem).unwrap();
    let port = reg.addr.rsplit(':').next().unwrap();

    for host in ["127.0.0.1", "localhost"] {
        let url = format!("https://{host}:{port}/v2/");
        let r = curl(&["--cacert", ca.to_str().unwrap(), &url]);
        assert_eq!(r.status, 200, "{url} with the CA\n{}", reg.log());
    }
    let out = curl_raw(&[&format!("https://{}/v2/", reg.addr)]);
    // 60: peer certificate cannot be authenticated with known CA certificates.
    assert_eq!(
        out.status.code(),
        Some(60),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let other = tempdir();
    let root = certs_d(other.path(), &reg.addr, &pki);
    assert_eq!(root, other.path().join("certs.d"));
    let placed = std::fs::read_to_string(root.join(&reg.addr).join("ca.crt")).unwrap();
    assert_eq!(placed, pki.ca_pem);
}

/// A registry behind the token server, and the server.
fn token_registry(anonymous_pull: bool) -> (Registry, TokenServer) {
    let ts = TokenServer::start_with(&[("alice", "s3cret")], anonymous_pull);
    let dir = Registry::prepare();
    let yaml = ts.registry_yaml(&dir.path().join("token-signer.crt"));
    (Registry::start_in(dir, &yaml, false), ts)
}

fn token_from(r: &Reply) -> String {
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let v = r.json();
    assert_eq!(v["token"], v["access_token"]);
    assert_eq!(v["expires_in"], 300);
    assert!(
        v["issued_at"].as_str().is_some_and(|s| s.ends_with('Z')),
        "{v}"
    );
    v["token"].as_str().expect("a token").to_string()
}

fn bearer_get(reg: &Registry, token: &str, path: &str) -> Reply {
    curl(&[
        "-H",
        &format!("Authorization: Bearer {token}"),
        &format!("http://{}{path}", reg.addr),
    ])
}

#[test]
fn token_server_issues_tokens_the_registry_accepts() {
    if !require(has_tool("docker-registry"), "docker-registry") {
        return;
    }
    let (reg, ts) = token_registry(false);

    let r = curl(&[&format!("http://{}/v2/", reg.addr)]);
    assert_eq!(r.status, 401);
    let challenge = r.header("www-authenticate").expect("a challenge");
    assert!(
        challenge.starts_with("Bearer ")
            && challenge.contains(&format!("realm=\"{}\"", ts.realm))
            && challenge.contains(&format!("service=\"{}\"", ts.service)),
        "{challenge}"
    );

    // Basic auth over GET, two scopes in one request.
    let url = format!(
        "{}?service={}&scope=repository:x:pull,push&scope=registry:catalog:*&account=alice",
        ts.realm, ts.service
    );
    let token = token_from(&curl(&["-u", "alice:s3cret", &url]));
    let r = bearer_get(&reg, &token, "/v2/x/tags/list");
    assert_eq!(
        r.status,
        404,
        "past auth: {}\n{}",
        String::from_utf8_lossy(&r.body),
        reg.log()
    );
    assert_eq!(r.json()["errors"][0]["code"], "NAME_UNKNOWN");
    assert_eq!(bearer_get(&reg, &token, "/v2/_catalog").status, 200);
    // The token covers only what it names.
    assert_eq!(bearer_get(&reg, &token, "/v2/y/tags/list").status, 401);

    let r = curl(&["-u", "alice:wrong", &url]);
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["details"], "invalid credentials");

    // Anonymous callers get a token without access here.
    let anon = token_from(&curl(&[&format!(
        "{}?service={}&scope=repository:x:pull",
        ts.realm, ts.service
    )]));
    assert_eq!(bearer_get(&reg, &anon, "/v2/x/tags/list").status, 401);

    // OAuth2 form: password grant with a refresh token, then the refresh grant.
    let form = format!(
        "grant_type=password&username=alice&password=s3cret&service={}&scope=repository%3Ax%3Apull&access_type=offline&client_id=t",
        ts.service
    );
    let r = curl(&["-d", &form, &ts.realm]);
    let refresh = r.json()["refresh_token"]
        .as_str()
        .expect("a refresh token")
        .to_string();
    token_from(&r);
    let form = format!(
        "grant_type=refresh_token&refresh_token={refresh}&service={}&scope=repository%3Ax%3Apull",
        ts.service
    );
    let token = token_from(&curl(&["-d", &form, &ts.realm]));
    assert_eq!(bearer_get(&reg, &token, "/v2/x/tags/list").status, 404);
    let r = curl(&[
        "-d",
        "grant_type=password&username=alice&password=nope",
        &ts.realm,
    ]);
    assert_eq!(r.status, 401);

    let log = ts.requests();
    assert_eq!(log.len(), 6, "{log:#?}");
    assert!(log[0].starts_with("GET /token?") && log[0].contains("scope=registry:catalog:*"));
    assert!(log[0].ends_with("authorization=true"), "{log:#?}");
    assert!(log[2].ends_with("authorization=false"), "{log:#?}");
    assert!(log[3].contains("grant_type=password") && log[3].contains("scope=repository:x:pull"));
    let all = log.join("\n");
    assert!(!all.contains("s3cret") && !all.contains(&refresh), "{all}");
}

#[test]
fn token_server_anonymous_pull() {
    if !require(has_tool("docker-registry"), "docker-registry") {
        return;
    }
    let (reg, ts) = token_registry(true);
    let url = format!(
        "{}?service={}&scope=repository:x:pull,push",
        ts.realm, ts.service
    );
    let token = token_from(&curl(&[&url]));
    let claims = token.split('.').nth(1).unwrap();
    use base64::Engine as _;
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(claims)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        claims["access"][0]["actions"],
        serde_json::json!(["pull"]),
        "{claims}"
    );
    assert_eq!(bearer_get(&reg, &token, "/v2/x/tags/list").status, 404);
}

#[test]
fn proxy_fail_every() {
    if !require(has_tool("docker-registry"), "docker-registry") {
        return;
    }
    let reg = Registry::start();
    let faults = Faults {
        fail_every: Some(1),
        ..Faults::default()
    };
    let proxy = FaultProxy::start(&reg.addr, faults);
    let ping = format!("http://{}/v2/", proxy.addr);
    let r = curl(&[&ping]);
    assert_eq!(r.status, 200, "{}", proxy.log());
    assert_eq!(
        r.header("docker-distribution-api-version"),
        Some("registry/2.0")
    );
    let r = curl(&[&ping]);
    assert_eq!(r.status, 500, "{}", proxy.log());
    assert_eq!(r.json()["errors"][0]["code"], "UNKNOWN");
    assert_eq!(proxy.count("500"), 1);
    assert_eq!(proxy.count("requests"), 2);
    assert_eq!(proxy.log(), "GET /v2/ 200\nGET /v2/ 500");
}

/// Uploads `data` to `repo` through `proxy` (POST, then a chunked monolithic PUT).
fn upload(proxy: &FaultProxy, repo: &str, data: &[u8], dir: &Path) -> String {
    let digest = sha256(data);
    let r = curl(&[
        "-X",
        "POST",
        &format!("http://{}/v2/{repo}/blobs/uploads/", proxy.addr),
    ]);
    assert_eq!(r.status, 202, "{}", proxy.log());
    let location = r.header("location").expect("an upload location");
    assert!(
        location.contains(&proxy.addr),
        "Location names the proxy: {location}"
    );
    let file = dir.join("blob");
    std::fs::write(&file, data).unwrap();
    let sep = if location.contains('?') { '&' } else { '?' };
    let r = curl(&[
        "-X",
        "PUT",
        "-H",
        "Transfer-Encoding: chunked",
        "-H",
        "Content-Type: application/octet-stream",
        "--data-binary",
        &format!("@{}", file.display()),
        &format!("{location}{sep}digest={digest}"),
    ]);
    assert_eq!(
        r.status,
        201,
        "{}\n{}",
        String::from_utf8_lossy(&r.body),
        proxy.log()
    );
    digest
}

#[test]
fn proxy_passes_blobs_and_injects_blob_faults() {
    if !require(has_tool("docker-registry"), "docker-registry") {
        return;
    }
    let reg = Registry::start();
    let dir = tempdir();
    let data: Vec<u8> = (0..64 * 1024u32).map(|i| (i * 7 % 251) as u8).collect();

    let plain = FaultProxy::start(&reg.addr, Faults::default());
    let digest = upload(&plain, "t", &data, dir.path());
    assert_eq!(plain.count("monolithic_put"), 1);
    let url = |p: &FaultProxy| format!("http://{}/v2/t/blobs/{digest}", p.addr);
    let r = curl(&["-I", &url(&plain)]);
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-length"),
        Some(data.len().to_string().as_str())
    );
    assert!(r.body.is_empty());
    assert_eq!(curl(&[&url(&plain)]).body, data, "{}", plain.log());

    let corrupt = FaultProxy::start(
        &reg.addr,
        Faults {
            corrupt_blob: true,
            ..Faults::default()
        },
    );
    let got = curl(&[&url(&corrupt)]).body;
    assert_eq!(got.len(), data.len());
    assert_eq!(got.iter().zip(&data).filter(|(a, b)| a != b).count(), 1);
    assert_eq!(corrupt.count("corrupt"), 1);

    let cut = FaultProxy::start(
        &reg.addr,
        Faults {
            cut_blob_once: true,
            ..Faults::default()
        },
    );
    let out = curl_raw(&[&url(&cut)]);
    // 18: transfer closed with outstanding read data remaining.
    assert_eq!(
        out.status.code(),
        Some(18),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let half = data.len() / 2;
    let r = curl(&["-H", &format!("Range: bytes={half}-"), &url(&cut)]);
    assert_eq!(r.status, 206, "{}", cut.log());
    assert_eq!(r.body, data[half..]);
    assert_eq!(cut.count("cut"), 1);

    let no_range = FaultProxy::start(
        &reg.addr,
        Faults {
            ignore_range: true,
            ..Faults::default()
        },
    );
    let r = curl(&["-H", "Range: bytes=10-", &url(&no_range)]);
    assert_eq!((r.status, r.body.len()), (200, data.len()));
    assert_eq!(no_range.count("ignore_range"), 1);
}

#[test]
fn proxy_upload_and_throttle_faults() {
    if !require(has_tool("docker-registry"), "docker-registry") {
        return;
    }
    let reg = Registry::start();
    let dir = tempdir();
    let data: Vec<u8> = (0..4096u32).map(|i| (i % 13) as u8).collect();
    let plain = FaultProxy::start(&reg.addr, Faults::default());
    let digest = upload(&plain, "t", &data, dir.path());

    let throttle = FaultProxy::start(
        &reg.addr,
        Faults {
            throttle_first: 1,
            retry_after_secs: 3,
            ..Faults::default()
        },
    );
    let url = format!("http://{}/v2/t/blobs/{digest}", throttle.addr);
    let r = curl(&[&url]);
    assert_eq!((r.status, r.header("retry-after")), (429, Some("3")));
    assert_eq!(r.json()["errors"][0]["code"], "TOOMANYREQUESTS");
    assert_eq!(curl(&[&url]).status, 200);
    assert_eq!(throttle.count("429"), 1);

    let mount = |p: &FaultProxy| {
        let url = format!(
            "http://{}/v2/u/blobs/uploads/?mount={digest}&from=t",
            p.addr
        );
        curl(&["-X", "POST", &url]).status
    };
    let refuse = FaultProxy::start(
        &reg.addr,
        Faults {
            refuse_mount: true,
            ..Faults::default()
        },
    );
    assert_eq!(mount(&refuse), 202, "{}", refuse.log());
    assert_eq!(refuse.count("refuse_mount"), 1);
    assert_eq!(mount(&plain), 201, "{}", plain.log());

    let chunked = FaultProxy::start(
        &reg.addr,
        Faults {
            chunk_max: Some(1000),
            ..Faults::default()
        },
    );
    let r = curl(&[
        "-X",
        "POST",
        &format!("http://{}/v2/c/blobs/uploads/", chunked.addr),
    ]);
    assert_eq!(r.header("oci-chunk-max-length"), Some("1000"));
    let location = r.header("location").unwrap().to_string();
    let patch = |bytes: &[u8]| {
        let file = dir.path().join("chunk");
        std::fs::write(&file, bytes).unwrap();
        curl(&[
            "-X",
            "PATCH",
            "-H",
            "Content-Type: application/octet-stream",
            "--data-binary",
            &format!("@{}", file.display()),
            &location,
        ])
    };
    let r = patch(&data[..2000]);
    assert_eq!(r.status, 416);
    assert_eq!(r.json()["errors"][0]["code"], "BLOB_UPLOAD_INVALID");
    assert_eq!(patch(&data[..1000]).status, 202, "{}", chunked.log());
    assert_eq!((chunked.count("416"), chunked.max_patch()), (1, 2000));
}
