//! In-process tools for registry tests, next to a real [`super::Registry`]: TLS material
//! ([`Pki`]), a token server for distribution's `auth: token` ([`TokenServer`]) and a
//! fault-injecting HTTP/1.1 reverse proxy ([`FaultProxy`]).
//!
//! Plain std threads and sockets: one thread per connection, one request per connection
//! (`Connection: close`), every message fully buffered.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::io::{self, BufRead, BufReader, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use ring::rand::{SecureRandom as _, SystemRandom};
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use serde_json::{Value, json};

/// How long a tool waits on a silent peer before giving up on the connection.
const IO_TIMEOUT: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------------------------
// TLS material
// ---------------------------------------------------------------------------------------------

/// A throwaway certificate authority that signs server certificates.
pub struct Pki {
    /// The CA certificate, PEM.
    pub ca_pem: String,
    ca_cert: rcgen::Certificate,
    ca_key: KeyPair,
}

impl Pki {
    /// A new self-signed CA (ECDSA P-256).
    pub fn new() -> Self {
        let ca_key = KeyPair::generate().expect("generate CA key");
        let mut params = CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, "hoist test CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert = params.self_signed(&ca_key).expect("self-sign CA");
        Pki {
            ca_pem: ca_cert.pem(),
            ca_cert,
            ca_key,
        }
    }

    /// A server certificate for `names` (IP addresses become IP SANs, the rest DNS SANs),
    /// signed by this CA: `(cert_pem, key_pem)`, the key in PKCS#8.
    pub fn server_cert(&self, names: &[&str]) -> (String, String) {
        let key = KeyPair::generate().expect("generate server key");
        let sans: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(sans).expect("valid SAN names");
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(
            DnType::CommonName,
            names.first().copied().unwrap_or("server"),
        );
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        let cert = params
            .signed_by(&key, &self.ca_cert, &self.ca_key)
            .expect("sign server certificate");
        (cert.pem(), key.serialize_pem())
    }
}

impl Default for Pki {
    fn default() -> Self {
        Self::new()
    }
}

/// Writes `server.crt` and `server.key` (for 127.0.0.1 and localhost) into `dir`, as
/// `Registry::start_in(dir, _, true)` expects.
pub fn write_registry_tls(dir: &Path, pki: &Pki) {
    let (cert, key) = pki.server_cert(&["127.0.0.1", "localhost"]);
    write(&dir.join("server.crt"), cert.as_bytes());
    write(&dir.join("server.key"), key.as_bytes());
}

/// Creates `dir/certs.d/HOST/ca.crt` holding the CA and returns `dir/certs.d` (a root for
/// `HOIST_CERTS_D`). `host` is spelled as in references: `127.0.0.1:5000`.
pub fn certs_d(dir: &Path, host: &str, pki: &Pki) -> PathBuf {
    let root = dir.join("certs.d");
    let host_dir = root.join(host);
    std::fs::create_dir_all(&host_dir)
        .unwrap_or_else(|e| panic!("create `{}`: {e}", host_dir.display()));
    write(&host_dir.join("ca.crt"), pki.ca_pem.as_bytes());
    root
}

fn write(path: &Path, bytes: &[u8]) {
    std::fs::write(path, bytes).unwrap_or_else(|e| panic!("write `{}`: {e}", path.display()));
}

// ---------------------------------------------------------------------------------------------
// A tiny HTTP/1.1 server and message codec
// ---------------------------------------------------------------------------------------------

/// A loopback listener serving each connection on its own thread; stops accepting on drop.
struct Server {
    addr: String,
    stop: Arc<AtomicBool>,
}

impl Server {
    fn start(handler: impl Fn(TcpStream) + Send + Sync + 'static) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let addr = listener.local_addr().expect("listener address").to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let handler = Arc::new(handler);
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if flag.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let _ = conn.set_read_timeout(Some(IO_TIMEOUT));
                let _ = conn.set_write_timeout(Some(IO_TIMEOUT));
                let handler = Arc::clone(&handler);
                std::thread::spawn(move || handler(conn));
            }
        });
        Server { addr, stop }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so that it sees the flag.
        let _ = TcpStream::connect(&self.addr);
    }
}

/// A start line and headers.
struct Head {
    start: String,
    headers: Vec<(String, String)>,
}

impl Head {
    fn get(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn remove(&mut self, name: &str) -> Option<String> {
        let i = self
            .headers
            .iter()
            .position(|(k, _)| k.eq_ignore_ascii_case(name))?;
        Some(self.headers.remove(i).1)
    }

    fn is_chunked(&self) -> bool {
        self.get("Transfer-Encoding")
            .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
    }

    fn content_length(&self) -> io::Result<Option<usize>> {
        self.get("Content-Length")
            .map(|v| v.trim().parse().map_err(|_| bad("bad Content-Length")))
            .transpose()
    }

    /// The head without hop-by-hop and framing headers.
    fn end_to_end(&self) -> impl Iterator<Item = &(String, String)> {
        const HOP: [&str; 6] = [
            "Connection",
            "Keep-Alive",
            "Proxy-Connection",
            "Transfer-Encoding",
            "Content-Length",
            "Expect",
        ];
        self.headers
            .iter()
            .filter(|(k, _)| !HOP.iter().any(|h| k.eq_ignore_ascii_case(h)))
    }
}

fn bad(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_string())
}

fn read_line(r: &mut impl BufRead) -> io::Result<String> {
    let mut buf = Vec::new();
    r.read_until(b'\n', &mut buf)?;
    if buf.last() != Some(&b'\n') {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "truncated line",
        ));
    }
    while matches!(buf.last(), Some(b'\n' | b'\r')) {
        buf.pop();
    }
    String::from_utf8(buf).map_err(|_| bad("non-UTF-8 header line"))
}

/// Reads a start line and headers; `None` when the peer closed before sending anything.
fn read_head(r: &mut impl BufRead) -> io::Result<Option<Head>> {
    if r.fill_buf()?.is_empty() {
        return Ok(None);
    }
    let start = read_line(r)?;
    let mut headers = Vec::new();
    loop {
        let line = read_line(r)?;
        if line.is_empty() {
            break;
        }
        let (k, v) = line
            .split_once(':')
            .ok_or_else(|| bad("header without `:`"))?;
        headers.push((k.trim().to_string(), v.trim().to_string()));
    }
    Ok(Some(Head { start, headers }))
}

/// Reads a message body: chunked, by Content-Length, or (`to_eof`, for responses) until EOF.
fn read_body(r: &mut impl BufRead, head: &Head, to_eof: bool) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    if head.is_chunked() {
        loop {
            let line = read_line(r)?;
            let size = line.split(';').next().unwrap_or_default().trim();
            let size = usize::from_str_radix(size, 16).map_err(|_| bad("bad chunk size"))?;
            if size == 0 {
                // Trailers, up to the empty line.
                while !read_line(r)?.is_empty() {}
                return Ok(body);
            }
            let at = body.len();
            body.resize(at + size, 0);
            r.read_exact(&mut body[at..])?;
            if !read_line(r)?.is_empty() {
                return Err(bad("chunk not followed by CRLF"));
            }
        }
    }
    if let Some(n) = head.content_length()? {
        body.resize(n, 0);
        r.read_exact(&mut body)?;
    } else if to_eof {
        r.read_to_end(&mut body)?;
    }
    Ok(body)
}

/// Writes a response with `Connection: close`; with `head_only` (a reply to HEAD, or a status
/// without a body) the headers go out alone.
fn write_response(
    w: &mut impl Write,
    status_line: &str,
    headers: &[(String, String)],
    body: &[u8],
    head_only: bool,
) -> io::Result<()> {
    let mut out = format!("{status_line}\r\n");
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("Connection: close\r\n\r\n");
    w.write_all(out.as_bytes())?;
    if !head_only {
        w.write_all(body)?;
    }
    w.flush()
}

/// A JSON reply with a reason phrase for the few statuses the tools make up.
fn json_reply(w: &mut impl Write, status: u16, extra: &[(&str, String)], body: &Value, head: bool) {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        416 => "Range Not Satisfiable",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        _ => "Status",
    };
    let body = serde_json::to_vec(body).expect("JSON value serializes");
    let mut headers = vec![
        ("Content-Type".to_string(), "application/json".to_string()),
        ("Content-Length".to_string(), body.len().to_string()),
    ];
    headers.extend(extra.iter().map(|(k, v)| (k.to_string(), v.clone())));
    let _ = write_response(
        w,
        &format!("HTTP/1.1 {status} {reason}"),
        &headers,
        &body,
        head,
    );
}

/// A distribution-style error body.
fn registry_error(code: &str, message: &str) -> Value {
    json!({"errors": [{"code": code, "message": message, "detail": null}]})
}

/// Decodes `application/x-www-form-urlencoded` text (a query string or a form body).
fn form_decode(s: &str) -> Vec<(String, String)> {
    fn unescape(s: &str) -> String {
        let b = s.as_bytes();
        let mut out = Vec::with_capacity(b.len());
        let mut i = 0;
        while i < b.len() {
            match b[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < b.len() => {
                    let byte = std::str::from_utf8(&b[i + 1..i + 3])
                        .ok()
                        .and_then(|h| u8::from_str_radix(h, 16).ok());
                    match byte {
                        Some(byte) => {
                            out.push(byte);
                            i += 2;
                        }
                        None => out.push(b'%'),
                    }
                }
                c => out.push(c),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }
    s.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (unescape(k), unescape(v))
        })
        .collect()
}

fn random_hex(rng: &SystemRandom, n: usize) -> String {
    let mut bytes = vec![0u8; n];
    rng.fill(&mut bytes).expect("system randomness");
    hex::encode(bytes)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

// ---------------------------------------------------------------------------------------------
// Token server
// ---------------------------------------------------------------------------------------------

/// A token server for distribution's `auth: token`, issuing ES256 JWTs whose `x5c` names a
/// self-signed signing certificate (the registry's `rootcertbundle`).
pub struct TokenServer {
    /// `http://127.0.0.1:PORT/token`.
    pub realm: String,
    /// The `service` (token audience) the registry announces.
    pub service: String,
    /// The token issuer the registry expects.
    pub issuer: String,
    state: Arc<TokenState>,
    _server: Server,
}

struct TokenState {
    users: HashMap<String, String>,
    anonymous_pull: bool,
    service: String,
    issuer: String,
    signer: EcdsaKeyPair,
    /// Base64 (standard) DER of the signing certificate.
    x5c: String,
    cert_pem: String,
    rng: SystemRandom,
    /// Refresh token -> user.
    refresh: Mutex<HashMap<String, String>>,
    requests: Mutex<Vec<String>>,
}

/// What the token server decided about a caller.
enum Caller {
    Anonymous,
    User(String),
}

impl TokenServer {
    /// A token server knowing `users` (`(name, password)`); anonymous callers get no access.
    pub fn start(users: &[(&str, &str)]) -> TokenServer {
        Self::start_with(users, false)
    }

    /// As [`TokenServer::start`]; with `anonymous_pull`, callers without credentials are
    /// granted the `pull` actions they ask for.
    pub fn start_with(users: &[(&str, &str)], anonymous_pull: bool) -> TokenServer {
        let rng = SystemRandom::new();
        let key = KeyPair::generate().expect("generate token signing key");
        let mut params = CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, "hoist test token signer");
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let cert = params
            .self_signed(&key)
            .expect("self-sign token signing cert");
        let signer =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, key.serialized_der(), &rng)
                .expect("rcgen's P-256 PKCS#8 key loads into ring");
        let service = "hoist-test-registry".to_string();
        let issuer = "hoist-test-token-issuer".to_string();
        let state = Arc::new(TokenState {
            users: users
                .iter()
                .map(|(u, p)| (u.to_string(), p.to_string()))
                .collect(),
            anonymous_pull,
            service: service.clone(),
            issuer: issuer.clone(),
            signer,
            x5c: STANDARD.encode(cert.der()),
            cert_pem: cert.pem(),
            rng,
            refresh: Mutex::new(HashMap::new()),
            requests: Mutex::new(Vec::new()),
        });
        let served = Arc::clone(&state);
        let server = Server::start(move |conn| served.serve(conn));
        TokenServer {
            realm: format!("http://{}/token", server.addr),
            service,
            issuer,
            state,
            _server: server,
        }
    }

    /// The registry's `auth:` YAML section for this server; writes the signing certificate to
    /// `cert_bundle_path` (its `rootcertbundle`).
    pub fn registry_yaml(&self, cert_bundle_path: &Path) -> String {
        write(cert_bundle_path, self.state.cert_pem.as_bytes());
        format!(
            "auth:\n  token:\n    realm: {}\n    service: {}\n    issuer: {}\n    rootcertbundle: {}\n",
            self.realm,
            self.service,
            self.issuer,
            cert_bundle_path.display()
        )
    }

    /// The requests served so far, one line each: `METHOD TARGET authorization=BOOL`, and for
    /// a form POST its non-secret fields (`grant_type`, `service`, `scope`, ...).
    pub fn requests(&self) -> Vec<String> {
        lock(&self.state.requests).clone()
    }
}

impl TokenState {
    fn serve(&self, conn: TcpStream) {
        let Ok(read_half) = conn.try_clone() else {
            return;
        };
        let mut r = BufReader::new(read_half);
        let mut w = conn;
        let Ok(Some(head)) = read_head(&mut r) else {
            return;
        };
        let Ok(body) = read_body(&mut r, &head, false) else {
            return;
        };
        let (status, reply) = self.answer(&head, &body);
        json_reply(&mut w, status, &[], &reply, false);
    }

    fn answer(&self, head: &Head, body: &[u8]) -> (u16, Value) {
        let mut parts = head.start.split_whitespace();
        let method = parts.next().unwrap_or_default();
        let target = parts.next().unwrap_or_default();
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let auth = head.get("Authorization");
        let mut line = format!("{method} {target} authorization={}", auth.is_some());
        let params = match method {
            "GET" => form_decode(query),
            "POST" => {
                let form = form_decode(&String::from_utf8_lossy(body));
                const SHOWN: [&str; 5] =
                    ["grant_type", "service", "scope", "access_type", "client_id"];
                for (k, v) in form.iter().filter(|(k, _)| SHOWN.contains(&k.as_str())) {
                    line.push_str(&format!(" {k}={v}"));
                }
                form
            }
            _ => Vec::new(),
        };
        lock(&self.requests).push(line);
        if path != "/token" {
            return (404, json!({"details": "not found"}));
        }
        let param = |name: &str| {
            params
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        let caller = match method {
            "GET" => match auth {
                None => Caller::Anonymous,
                Some(value) => match self.basic(value) {
                    Some(user) => Caller::User(user),
                    None => return (401, json!({"details": "invalid credentials"})),
                },
            },
            "POST" => match param("grant_type") {
                Some("password") => {
                    let user = param("username").unwrap_or_default();
                    if self.users.get(user).map(String::as_str) != param("password")
                        || param("password").is_none()
                    {
                        return (401, json!({"details": "invalid credentials"}));
                    }
                    Caller::User(user.to_string())
                }
                Some("refresh_token") => {
                    let known =
                        param("refresh_token").and_then(|t| lock(&self.refresh).get(t).cloned());
                    match known {
                        Some(user) => Caller::User(user),
                        None => return (401, json!({"details": "invalid refresh token"})),
                    }
                }
                _ => return (400, json!({"details": "unsupported grant_type"})),
            },
            _ => return (405, json!({"details": "method not allowed"})),
        };
        let scopes: Vec<&str> = params
            .iter()
            .filter(|(k, _)| k == "scope")
            .flat_map(|(_, v)| v.split_whitespace())
            .collect();
        let access = self.grant(&caller, &scopes);
        let sub = match &caller {
            Caller::User(u) => u.as_str(),
            Caller::Anonymous => "",
        };
        let token = self.jwt(sub, access);
        let issued_at = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .expect("now formats as RFC 3339");
        let mut reply = json!({
            "token": token,
            "access_token": token,
            "expires_in": 300,
            "issued_at": issued_at,
        });
        let offline =
            param("access_type") == Some("offline") || param("offline_token") == Some("true");
        if let (Caller::User(user), true) = (&caller, offline) {
            let refresh = random_hex(&self.rng, 24);
            lock(&self.refresh).insert(refresh.clone(), user.clone());
            reply["refresh_token"] = Value::String(refresh);
        }
        (200, reply)
    }

    /// The user named by a valid `Basic` header value.
    fn basic(&self, value: &str) -> Option<String> {
        let (scheme, encoded) = value.split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("basic") {
            return None;
        }
        let decoded = STANDARD.decode(encoded.trim()).ok()?;
        let decoded = String::from_utf8(decoded).ok()?;
        let (user, password) = decoded.split_once(':')?;
        (self.users.get(user)? == password).then(|| user.to_string())
    }

    /// The `access` claim: everything asked for by a user (the registry enforces), `pull` on
    /// repositories for anonymous callers when allowed, nothing otherwise.
    fn grant(&self, caller: &Caller, scopes: &[&str]) -> Vec<Value> {
        let mut granted: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
        for scope in scopes {
            // type:name:actions, where the name may itself hold colons (a port).
            let Some((kind, rest)) = scope.split_once(':') else {
                continue;
            };
            let Some((name, actions)) = rest.rsplit_once(':') else {
                continue;
            };
            let entry = granted
                .entry((kind.to_string(), name.to_string()))
                .or_default();
            for action in actions.split(',').filter(|a| !a.is_empty()) {
                let allowed = match caller {
                    Caller::User(_) => true,
                    Caller::Anonymous => {
                        self.anonymous_pull && kind == "repository" && action == "pull"
                    }
                };
                if allowed && !entry.iter().any(|a| a == action) {
                    entry.push(action.to_string());
                }
            }
        }
        granted
            .into_iter()
            .filter(|(_, actions)| !actions.is_empty())
            .map(|((kind, name), actions)| json!({"type": kind, "name": name, "actions": actions}))
            .collect()
    }

    /// A signed ES256 JWT for `sub` with `access`.
    fn jwt(&self, sub: &str, access: Vec<Value>) -> String {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock after 1970")
            .as_secs();
        let header = json!({"typ": "JWT", "alg": "ES256", "x5c": [self.x5c]});
        let claims = json!({
            "iss": self.issuer,
            "sub": sub,
            "aud": self.service,
            "exp": now + 300,
            "nbf": now - 10,
            "iat": now,
            "jti": random_hex(&self.rng, 16),
            "access": access,
        });
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let sig = self
            .signer
            .sign(&self.rng, signing_input.as_bytes())
            .expect("ECDSA signing");
        format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()))
    }
}

// ---------------------------------------------------------------------------------------------
// Fault proxy
// ---------------------------------------------------------------------------------------------

/// Faults a [`FaultProxy`] injects; the default injects none.
#[derive(Clone, Debug, Default)]
pub struct Faults {
    /// Every Nth request (any method, apart from the first `/v2/` ping) answers `500`.
    pub fail_every: Option<u32>,
    /// The first N requests under `/blobs/` (uploads included) or `/manifests/` answer `429`
    /// with `Retry-After`.
    pub throttle_first: u32,
    /// The `Retry-After` seconds of a throttled reply.
    pub retry_after_secs: u32,
    /// The first GET of a blob over 1024 bytes sends its full Content-Length and half the
    /// body, then closes.
    pub cut_blob_once: bool,
    /// Strip the client's `Range` header.
    pub ignore_range: bool,
    /// Flip one byte in every blob over 1024 bytes that is fetched.
    pub corrupt_blob: bool,
    /// Forward a cross-repository mount without its query (so the registry opens an upload).
    pub refuse_mount: bool,
    /// Announce `OCI-Chunk-Max-Length` on upload starts and refuse larger `PATCH` bodies
    /// with `416`.
    pub chunk_max: Option<u64>,
}

/// An HTTP/1.1 reverse proxy in front of a registry that injects [`Faults`] and counts them.
pub struct FaultProxy {
    /// `127.0.0.1:PORT`.
    pub addr: String,
    state: Arc<ProxyState>,
    _server: Server,
}

#[derive(Default)]
struct Counters {
    requests: AtomicU32,
    fail_500: AtomicU32,
    throttle_429: AtomicU32,
    cut: AtomicU32,
    range_stripped: AtomicU32,
    corrupt: AtomicU32,
    mount_refused: AtomicU32,
    chunk_416: AtomicU32,
    monolithic_put: AtomicU32,
}

struct ProxyState {
    upstream: String,
    faults: Faults,
    counters: Counters,
    /// Requests counted towards `fail_every`.
    fail_seen: AtomicU32,
    ping_seen: AtomicBool,
    /// Blob or manifest requests seen, for `throttle_first`.
    throttle_seen: AtomicU32,
    cut_done: AtomicBool,
    max_patch: AtomicU64,
    log: Mutex<Vec<String>>,
}

/// What to do with a response from upstream before it goes back.
enum Deliver {
    Whole,
    Cut,
}

impl FaultProxy {
    /// A proxy on a free loopback port forwarding to `upstream` (`127.0.0.1:PORT`).
    pub fn start(upstream: &str, faults: Faults) -> FaultProxy {
        let state = Arc::new(ProxyState {
            upstream: upstream.to_string(),
            faults,
            counters: Counters::default(),
            fail_seen: AtomicU32::new(0),
            ping_seen: AtomicBool::new(false),
            throttle_seen: AtomicU32::new(0),
            cut_done: AtomicBool::new(false),
            max_patch: AtomicU64::new(0),
            log: Mutex::new(Vec::new()),
        });
        let served = Arc::clone(&state);
        let server = Server::start(move |conn| served.serve(conn));
        FaultProxy {
            addr: server.addr.clone(),
            state,
            _server: server,
        }
    }

    /// How often an event happened: `requests` (all), `500`, `429`, `cut`, `ignore_range`
    /// (Range headers stripped), `corrupt`, `refuse_mount`, `416`, `monolithic_put`.
    pub fn count(&self, what: &str) -> u32 {
        let c = &self.state.counters;
        let counter = match what {
            "requests" => &c.requests,
            "500" => &c.fail_500,
            "429" => &c.throttle_429,
            "cut" => &c.cut,
            "ignore_range" => &c.range_stripped,
            "corrupt" => &c.corrupt,
            "refuse_mount" => &c.mount_refused,
            "416" => &c.chunk_416,
            "monolithic_put" => &c.monolithic_put,
            other => panic!("FaultProxy::count: no counter `{other}`"),
        };
        counter.load(Ordering::SeqCst)
    }

    /// The largest `PATCH` body seen, in bytes (refused ones included).
    pub fn max_patch(&self) -> u64 {
        self.state.max_patch.load(Ordering::SeqCst)
    }

    /// One `METHOD PATH STATUS` line per request (upload `_state` values elided).
    pub fn log(&self) -> String {
        lock(&self.state.log).join("\n")
    }
}

impl ProxyState {
    fn serve(&self, conn: TcpStream) {
        let Ok(read_half) = conn.try_clone() else {
            return;
        };
        let mut r = BufReader::new(read_half);
        let mut w = conn;
        let Ok(Some(mut head)) = read_head(&mut r) else {
            return;
        };
        if head
            .get("Expect")
            .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"))
        {
            let _ = w.write_all(b"HTTP/1.1 100 Continue\r\n\r\n");
        }
        let Ok(body) = read_body(&mut r, &head, false) else {
            return;
        };
        let mut parts = head.start.split_whitespace();
        let method = parts.next().unwrap_or_default().to_string();
        let mut target = parts.next().unwrap_or_default().to_string();
        let is_head = method == "HEAD";
        let status = self.handle(&method, &mut target, &mut head, body, &mut w, is_head);
        lock(&self.log).push(format!("{method} {} {status}", elide_state(&target)));
        let _ = w.shutdown(Shutdown::Both);
    }

    /// Answers one request, returning the status sent (with a note for cut replies).
    fn handle(
        &self,
        method: &str,
        target: &mut String,
        head: &mut Head,
        body: Vec<u8>,
        w: &mut TcpStream,
        is_head: bool,
    ) -> String {
        let f = &self.faults;
        let c = &self.counters;
        c.requests.fetch_add(1, Ordering::SeqCst);
        let path = target.split('?').next().unwrap_or_default().to_string();

        if let Some(every) = f.fail_every.filter(|n| *n > 0) {
            let ping = path == "/v2/" && !self.ping_seen.swap(true, Ordering::SeqCst);
            if !ping && (self.fail_seen.fetch_add(1, Ordering::SeqCst) + 1) % every == 0 {
                c.fail_500.fetch_add(1, Ordering::SeqCst);
                let err = registry_error("UNKNOWN", "injected failure");
                json_reply(w, 500, &[], &err, is_head);
                return "500".into();
            }
        }
        let blob_or_manifest = path.contains("/blobs/") || path.contains("/manifests/");
        if blob_or_manifest
            && f.throttle_first > 0
            && self.throttle_seen.fetch_add(1, Ordering::SeqCst) < f.throttle_first
        {
            c.throttle_429.fetch_add(1, Ordering::SeqCst);
            let err = registry_error("TOOMANYREQUESTS", "injected rate limit");
            let after = [("Retry-After", f.retry_after_secs.to_string())];
            json_reply(w, 429, &after, &err, is_head);
            return "429".into();
        }
        let upload = path.contains("/blobs/uploads/");
        if method == "PATCH" && upload {
            let len = body.len() as u64;
            self.max_patch.fetch_max(len, Ordering::SeqCst);
            if f.chunk_max.is_some_and(|max| len > max) {
                c.chunk_416.fetch_add(1, Ordering::SeqCst);
                let err = json!({"errors": [{"code": "BLOB_UPLOAD_INVALID", "message": "chunk too large"}]});
                json_reply(w, 416, &[], &err, false);
                return "416".into();
            }
        }
        if method == "PUT" && upload && !body.is_empty() {
            c.monolithic_put.fetch_add(1, Ordering::SeqCst);
        }
        if f.refuse_mount && method == "POST" && upload && target.contains("mount=") {
            c.mount_refused.fetch_add(1, Ordering::SeqCst);
            *target = path.clone();
        }
        if f.ignore_range && head.remove("Range").is_some() {
            c.range_stripped.fetch_add(1, Ordering::SeqCst);
        }

        let (resp, mut resp_body) = match self.forward(method, target, head, &body) {
            Ok(r) => r,
            Err(e) => {
                let err = registry_error("UNKNOWN", &format!("proxy: upstream failed: {e}"));
                json_reply(w, 502, &[], &err, is_head);
                // The reason in the log line: a test failing on it shows why.
                return format!("502 (upstream failed: {e})");
            }
        };
        let status: u16 = resp
            .start
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);

        let blob_get = method == "GET"
            && path.contains("/blobs/sha256:")
            && (200..300).contains(&status)
            && resp_body.len() > 1024;
        let mut deliver = Deliver::Whole;
        if blob_get && f.cut_blob_once && !self.cut_done.swap(true, Ordering::SeqCst) {
            c.cut.fetch_add(1, Ordering::SeqCst);
            deliver = Deliver::Cut;
        } else if blob_get && f.corrupt_blob {
            c.corrupt.fetch_add(1, Ordering::SeqCst);
            let mid = resp_body.len() / 2;
            resp_body[mid] ^= 0xff;
        }

        let mut headers: Vec<(String, String)> = resp.end_to_end().cloned().collect();
        if is_head || status == 204 || status == 304 || (100..200).contains(&status) {
            // No body: keep what upstream said about the length (HEAD reports the blob size).
            if let Some(n) = resp.get("Content-Length") {
                headers.push(("Content-Length".into(), n.to_string()));
            }
        } else {
            headers.push(("Content-Length".into(), resp_body.len().to_string()));
        }
        if let (Some(max), true) = (f.chunk_max, method == "POST" && upload) {
            headers.push(("OCI-Chunk-Max-Length".into(), max.to_string()));
        }
        match deliver {
            Deliver::Whole => {
                let no_body = is_head || status == 204 || status == 304;
                let _ = write_response(w, &resp.start, &headers, &resp_body, no_body);
                status.to_string()
            }
            Deliver::Cut => {
                let half = &resp_body[..resp_body.len() / 2];
                let _ = write_response(w, &resp.start, &headers, half, false);
                format!(
                    "{status} (cut after {} of {} bytes)",
                    half.len(),
                    resp_body.len()
                )
            }
        }
    }

    /// Sends the request upstream with `Connection: close` and reads the whole response.
    fn forward(
        &self,
        method: &str,
        target: &str,
        head: &Head,
        body: &[u8],
    ) -> io::Result<(Head, Vec<u8>)> {
        let mut up = TcpStream::connect(&self.upstream)?;
        up.set_read_timeout(Some(IO_TIMEOUT))?;
        up.set_write_timeout(Some(IO_TIMEOUT))?;
        let mut out = format!("{method} {target} HTTP/1.1\r\n");
        for (k, v) in head.end_to_end() {
            out.push_str(&format!("{k}: {v}\r\n"));
        }
        if !body.is_empty() || matches!(method, "POST" | "PUT" | "PATCH") {
            out.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        out.push_str("Connection: close\r\n\r\n");
        up.write_all(out.as_bytes())?;
        up.write_all(body)?;
        up.flush()?;
        let mut r = BufReader::new(up);
        let resp = read_head(&mut r)?.ok_or_else(|| bad("upstream closed without a response"))?;
        let status = resp.start.split_whitespace().nth(1).unwrap_or_default();
        let bodiless =
            method == "HEAD" || status == "204" || status == "304" || status.starts_with('1');
        let resp_body = if bodiless {
            Vec::new()
        } else {
            read_body(&mut r, &resp, true)?
        };
        Ok((resp, resp_body))
    }
}

/// `target` with the value of an upload's `_state` parameter elided, for log lines.
fn elide_state(target: &str) -> String {
    let Some((path, query)) = target.split_once('?') else {
        return target.to_string();
    };
    let query: Vec<&str> = query
        .split('&')
        .map(|p| {
            if p.starts_with("_state=") {
                "_state=..."
            } else {
                p
            }
        })
        .collect();
    format!("{path}?{}", query.join("&"))
}
