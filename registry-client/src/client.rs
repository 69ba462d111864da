//! The HTTP transport: one [`Client`] per process, one connection pool per registry host.
//!
//! A host is reached over HTTPS with the system roots plus the CA files of its `certs.d`
//! directories (`/etc/docker/certs.d/HOST/*.crt`, `/etc/containers/certs.d/HOST/*.crt`, and a
//! client certificate from `*.cert` + `*.key`). Loopback hosts and hosts named as insecure are
//! tried over plain HTTP first and over HTTPS when that fails or the port answers `400` (a TLS
//! port); insecure hosts also skip certificate verification, as docker's
//! `--insecure-registry` does. A loopback server that speaks TLS is verified like any other.
//!
//! Every request goes through [`Client::send`]: it adds the `Authorization` the host asked for
//! at ping time (Basic, or a Bearer token for the request's scopes, fetched once and cached per
//! scope set), answers a `401` (or an `insufficient_scope` `403`) once by fetching a new token,
//! and retries connection errors, `408`, `429` and `5xx` with the [`RetryPolicy`]'s backoff,
//! honouring `Retry-After`, shared per host through [`HostHealth`].

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, HeaderMap, RETRY_AFTER, WWW_AUTHENTICATE};
use time::OffsetDateTime;

use crate::auth::{
    AuthFiles, Challenge, CredentialHelper, Credentials, ProcessHelpers, ScopeSet, TokenCache,
    normalize_registry, parse_challenges, preferred_challenge, token_request,
};
use crate::error::{Context, Operation, RegistryError, Target, from_response, sanitize_text};
use crate::retry::{HostHealth, RetryPolicy, classify, parse_retry_after};

/// How long one `/v2/` ping may take.
const PING_TIMEOUT: Duration = Duration::from_secs(15);

/// The host name requests for Docker Hub go to.
pub const DOCKER_HUB_API: &str = "registry-1.docker.io";

/// How a [`Client`] reaches registries and finds credentials.
pub struct ClientOptions {
    /// Hosts (with port) that may be reached over plain HTTP or with an unverified certificate.
    pub insecure_registries: Vec<String>,
    /// Directories holding a `HOST[:PORT]/` directory of CA and client certificates.
    pub certs_dirs: Vec<PathBuf>,
    /// Mirrors to try first, per registry (`docker.io` -> `mirror.example:5000`).
    pub mirrors: HashMap<String, Vec<String>>,
    /// Where stored credentials are looked up.
    pub auth_files: AuthFiles,
    /// Runs credential helpers named in the auth files.
    pub helpers: Arc<dyn CredentialHelper + Send + Sync>,
    /// Credentials given explicitly, per registry host: they win over the auth files.
    pub credentials: HashMap<String, Credentials>,
    /// Retry policy for every request.
    pub retry: RetryPolicy,
    /// The `User-Agent` header.
    pub user_agent: String,
    /// Timeout for establishing a connection.
    pub connect_timeout: Duration,
}

impl Default for ClientOptions {
    /// docker's and podman's certificate directories, credentials from the environment's auth
    /// files, the default retry policy.
    fn default() -> Self {
        Self {
            insecure_registries: Vec::new(),
            certs_dirs: vec![
                PathBuf::from("/etc/docker/certs.d"),
                PathBuf::from("/etc/containers/certs.d"),
            ],
            mirrors: HashMap::new(),
            auth_files: AuthFiles::from_env(),
            helpers: Arc::new(ProcessHelpers::new()),
            credentials: HashMap::new(),
            retry: RetryPolicy::default(),
            user_agent: format!("hoist/{}", env!("CARGO_PKG_VERSION")),
            connect_timeout: Duration::from_secs(30),
        }
    }
}

impl std::fmt::Debug for ClientOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientOptions")
            .field("insecure_registries", &self.insecure_registries)
            .field("certs_dirs", &self.certs_dirs)
            .field("mirrors", &self.mirrors)
            .field("auth_files", &self.auth_files.paths())
            .field("credentials", &self.credentials)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

/// How a host wants requests authenticated (learnt from its `/v2/` answer).
#[derive(Clone, Debug)]
enum AuthScheme {
    None,
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
    },
}

/// One registry host: its base URL, connection pool, credentials and auth scheme.
pub struct Host {
    name: String,
    base: String,
    http: reqwest::Client,
    creds: Credentials,
    insecure: bool,
    scheme: Mutex<AuthScheme>,
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Host")
            .field("name", &self.name)
            .field("base", &self.base)
            .field("creds", &self.creds)
            .finish_non_exhaustive()
    }
}

impl Host {
    /// The registry host as named in references (`localhost:5000`, `docker.io`).
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// A registry client: connection pools, credentials, tokens and retry state, shared by every
/// operation of a process.
pub struct Client {
    opts: ClientOptions,
    hosts: tokio::sync::Mutex<HashMap<String, Arc<Host>>>,
    tokens: TokenCache,
    health: HostHealth,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("opts", &self.opts)
            .finish_non_exhaustive()
    }
}

/// True for `localhost`, `127.0.0.0/8` and `::1` (with or without a port).
pub fn is_loopback(host: &str) -> bool {
    let name = host_without_port(host);
    if name.eq_ignore_ascii_case("localhost") || name.ends_with(".localhost") {
        return true;
    }
    name.trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_loopback())
}

fn host_without_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    host.rsplit_once(':').map_or(host, |(h, _)| h)
}

/// The host requests for registry `name` go to (Docker Hub's API host for `docker.io`).
pub fn api_host(name: &str) -> &str {
    if name == crate::auth::DOCKER_HUB {
        DOCKER_HUB_API
    } else {
        name
    }
}

/// Reads the CA certificates and the client identity of `host` from the certs.d directories.
fn host_certs(
    dirs: &[PathBuf],
    host: &str,
) -> Result<(Vec<reqwest::Certificate>, Option<reqwest::Identity>), String> {
    let mut cas = Vec::new();
    let mut identity = None;
    // docker names the directory `host:port`; containers/image also accepts `host_port`.
    let names = [host.to_string(), host.replace(':', "_")];
    for dir in dirs {
        for name in &names {
            let d = dir.join(name);
            let Ok(entries) = std::fs::read_dir(&d) else {
                continue;
            };
            let mut files: Vec<PathBuf> =
                entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
            files.sort();
            for f in &files {
                let ext = f.extension().and_then(|e| e.to_str()).unwrap_or_default();
                match ext {
                    "crt" => {
                        let pem = read(f)?;
                        let certs = reqwest::Certificate::from_pem_bundle(&pem)
                            .map_err(|e| format!("{}: {e}", f.display()))?;
                        cas.extend(certs);
                    }
                    "cert" => {
                        let key = f.with_extension("key");
                        let mut pem = read(f)?;
                        pem.extend_from_slice(b"\n");
                        pem.extend(read(&key).map_err(|e| {
                            format!("client certificate {} without its key: {e}", f.display())
                        })?);
                        identity = Some(
                            reqwest::Identity::from_pem(&pem)
                                .map_err(|e| format!("{}: {e}", f.display()))?,
                        );
                    }
                    _ => {}
                }
            }
        }
    }
    Ok((cas, identity))
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))
}

/// The rustls error in `err`'s source chain (also inside an `io::Error`), if any: the
/// handshake failed, as opposed to nothing answering at all.
fn rustls_error<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    let mut cur = Some(err);
    while let Some(e) = cur {
        if let Some(r) = e.downcast_ref::<rustls::Error>() {
            return Some(r);
        }
        if let Some(inner) = e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .and_then(|i| rustls_error(i))
        {
            return Some(inner);
        }
        cur = e.source();
    }
    None
}

/// True when the server speaks TLS but its certificate is not trusted (as opposed to a server
/// that does not speak TLS at all).
fn is_certificate_error(err: &(dyn std::error::Error + 'static)) -> bool {
    matches!(
        rustls_error(err),
        Some(rustls::Error::InvalidCertificate(_))
    )
}

/// Installs ring as rustls' process-wide crypto provider (once).
fn install_crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// A registry's answer, as [`Client::send`] hands it back: any status that is neither retried
/// nor an auth failure.
pub type Response = reqwest::Response;

impl Client {
    /// A client with `opts`.
    pub fn new(opts: ClientOptions) -> Arc<Self> {
        install_crypto_provider();
        Arc::new(Self {
            opts,
            hosts: tokio::sync::Mutex::new(HashMap::new()),
            tokens: TokenCache::new(),
            health: HostHealth::default(),
        })
    }

    /// Whether `host` may be reached without TLS verification (named insecure).
    pub fn is_insecure(&self, host: &str) -> bool {
        self.opts
            .insecure_registries
            .iter()
            .any(|h| normalize_registry(h) == host)
    }

    /// The mirrors configured for registry `name`.
    pub fn mirrors(&self, name: &str) -> &[String] {
        self.opts.mirrors.get(name).map_or(&[], Vec::as_slice)
    }

    fn credentials_for(&self, host: &str) -> Credentials {
        if let Some(c) = self.opts.credentials.get(host) {
            return c.clone();
        }
        match self
            .opts
            .auth_files
            .lookup(host, self.opts.helpers.as_ref())
        {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!("{e}; going on without credentials for {host}");
                Credentials::Anonymous
            }
        }
    }

    /// Connects to registry `name` (a host with optional port; `docker.io` goes to Docker
    /// Hub's API host): picks HTTPS or HTTP, pings `/v2/` and learns how to authenticate. The
    /// connection is kept for later calls.
    pub async fn host(&self, name: &str) -> Result<Arc<Host>, RegistryError> {
        let name = normalize_registry(name);
        let mut hosts = self.hosts.lock().await;
        if let Some(h) = hosts.get(&name) {
            return Ok(h.clone());
        }
        let host = Arc::new(self.connect(&name).await?);
        hosts.insert(name, host.clone());
        Ok(host)
    }

    /// The HTTP client for host `name` (`host[:port]`): its certs.d CA and client certificate,
    /// certificate checks off when `insecure`.
    pub(crate) fn http_client(
        &self,
        name: &str,
        insecure: bool,
    ) -> Result<reqwest::Client, RegistryError> {
        let api = api_host(name);
        let (cas, identity) = host_certs(&self.opts.certs_dirs, api)
            .map_err(|m| RegistryError::transport_message(Context::new(name), None, &m))?;
        let mut b = reqwest::Client::builder()
            .user_agent(self.opts.user_agent.clone())
            .connect_timeout(self.opts.connect_timeout)
            .read_timeout(Duration::from_secs(120))
            .pool_max_idle_per_host(16)
            .tls_certs_merge(cas);
        if let Some(id) = identity {
            b = b.identity(id);
        }
        if insecure {
            b = b.tls_danger_accept_invalid_certs(true);
        }
        b.build()
            .map_err(|e| RegistryError::transport(Context::new(name), &e))
    }

    async fn connect(&self, name: &str) -> Result<Host, RegistryError> {
        let insecure = self.is_insecure(name);
        let may_use_http = insecure || is_loopback(name);
        let http = self.http_client(name, insecure)?;
        let api = api_host(name);
        let https = format!("https://{api}");
        let ctx = || Context::new(name).op(Operation::get(Target::ApiVersion));
        let plain = format!("http://{api}");
        let cert_hint = |mut err: RegistryError, e: &reqwest::Error| {
            if is_certificate_error(e)
                && let RegistryError::Transport { message, .. } = &mut err
            {
                message.push_str(&format!(
                    " (to trust a private CA, put it in /etc/docker/certs.d/{api}/ca.crt)"
                ));
            }
            err
        };
        // Loopback and insecure hosts: plain HTTP first (a TLS port answers it with 400, or
        // drops it), then HTTPS. Other hosts: HTTPS only.
        let (base, resp) = if may_use_http {
            match self.ping(&http, &plain).await {
                Ok(resp) if resp.status() != StatusCode::BAD_REQUEST => (plain, resp),
                first => match self.ping(&http, &https).await {
                    Ok(resp) => (https, resp),
                    Err(e) => match first {
                        Ok(resp) if !is_certificate_error(&e) => (plain, resp),
                        _ => return Err(cert_hint(RegistryError::transport(ctx(), &e), &e)),
                    },
                },
            }
        } else {
            match self.ping(&http, &https).await {
                Ok(resp) => (https, resp),
                Err(e) => return Err(cert_hint(RegistryError::transport(ctx(), &e), &e)),
            }
        };
        let scheme = match resp.status() {
            StatusCode::UNAUTHORIZED => scheme_from(resp.headers()),
            _ => AuthScheme::None,
        };
        tracing::debug!("{name}: {base} auth {scheme:?}");
        Ok(Host {
            name: name.to_string(),
            base,
            http,
            creds: self.credentials_for(name),
            insecure: may_use_http,
            scheme: Mutex::new(scheme),
        })
    }

    async fn ping(
        &self,
        http: &reqwest::Client,
        base: &str,
    ) -> Result<reqwest::Response, reqwest::Error> {
        let mut backoff = self.opts.retry.backoff();
        loop {
            let r = http
                .get(format!("{base}/v2/"))
                .timeout(PING_TIMEOUT)
                .send()
                .await;
            match r {
                Ok(resp) if classify(Some(resp.status().as_u16()), None).should_retry() => {
                    let after = retry_after(resp.headers());
                    match backoff.next_delay(after) {
                        Some(d) => tokio::time::sleep(d).await,
                        None => return Ok(resp),
                    }
                }
                Ok(resp) => return Ok(resp),
                // Nothing listening yet, or a timeout: retry. A TLS or protocol mismatch is
                // an answer in itself.
                Err(e) if (e.is_connect() && rustls_error(&e).is_none()) || e.is_timeout() => {
                    match backoff.next_delay(None) {
                        Some(d) => tokio::time::sleep(d).await,
                        None => return Err(e),
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Sends a request built by `build` (called once per attempt with the host's pool and base
    /// URL), authenticating for `scopes` and retrying as the module documentation says.
    /// Returns the response for every status that is not retried and not an auth failure;
    /// the caller turns unexpected statuses into errors with [`error_from`].
    pub async fn send(
        &self,
        host: &Host,
        repository: Option<&str>,
        scopes: &ScopeSet,
        op: Operation,
        build: &(dyn Fn(&reqwest::Client, &str) -> reqwest::RequestBuilder + Send + Sync),
    ) -> Result<Response, RegistryError> {
        let ctx = || {
            let mut c = Context::new(&host.name).op(op.clone());
            if let Some(r) = repository {
                c = c.repository(r);
            }
            c
        };
        let mut backoff = self.opts.retry.backoff();
        let mut scopes = scopes.clone();
        let mut reauthed = false;
        let mut attempts = 0u32;
        loop {
            let wait = self.health.wait_before(&host.name, Instant::now());
            if !wait.is_zero() {
                tokio::time::sleep(wait).await;
            }
            attempts += 1;
            let mut req = build(&host.http, &host.base);
            if let Some(value) = self.authorization(host, &scopes).await? {
                req = req.header(AUTHORIZATION, value);
            }
            let (err, after) = match req.send().await {
                Err(e) => (RegistryError::transport(ctx(), &e), None),
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let challenge = resp
                        .headers()
                        .get_all(WWW_AUTHENTICATE)
                        .iter()
                        .filter_map(|v| v.to_str().ok())
                        .flat_map(parse_challenges)
                        .collect::<Vec<_>>();
                    let insufficient = challenge.iter().any(|c| {
                        matches!(c, Challenge::Bearer { error: Some(e), .. } if e == "insufficient_scope")
                    });
                    if status == 401 || (status == 403 && insufficient) {
                        if !reauthed {
                            reauthed = true;
                            if let Some(c) = preferred_challenge(&challenge) {
                                scopes.merge(&c.scope_set());
                                *host.scheme.lock().unwrap_or_else(PoisonError::into_inner) =
                                    scheme_of(c);
                            }
                            self.tokens.invalidate(&host.name, &scopes);
                            attempts -= 1;
                            continue;
                        }
                        let body = resp.bytes().await.unwrap_or_default();
                        if host.creds.is_anonymous() {
                            return Err(from_response(
                                &host.name,
                                repository,
                                op.clone(),
                                status,
                                &body,
                            ));
                        }
                        let e = from_response(&host.name, repository, op.clone(), status, &body);
                        let detail = e.errors().first().map(|i| i.message.clone());
                        return Err(RegistryError::auth(&host.name, detail.as_deref()));
                    }
                    let class = classify(Some(status), None);
                    if !class.should_retry() {
                        self.health.record_success(&host.name);
                        return Ok(resp);
                    }
                    let after = retry_after(resp.headers());
                    let body = resp.bytes().await.unwrap_or_default();
                    (
                        from_response(&host.name, repository, op.clone(), status, &body),
                        after,
                    )
                }
            };
            let class = err.retryable();
            self.health
                .record_failure(&host.name, class, after, Instant::now());
            if !class.should_retry() {
                return Err(RegistryError::retries_exhausted(attempts, err));
            }
            match backoff.next_delay(after) {
                Some(d) => {
                    tracing::debug!("{err}: retrying in {d:?}");
                    tokio::time::sleep(d).await;
                }
                None => return Err(RegistryError::retries_exhausted(attempts, err)),
            }
        }
    }

    /// The `Authorization` header value for a request needing `scopes` on `host`.
    async fn authorization(
        &self,
        host: &Host,
        scopes: &ScopeSet,
    ) -> Result<Option<String>, RegistryError> {
        let scheme = host
            .scheme
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        match scheme {
            AuthScheme::None => Ok(None),
            AuthScheme::Basic => Ok(host.creds.basic_authorization()),
            AuthScheme::Bearer { realm, service } => {
                let now = OffsetDateTime::now_utc();
                if let Some(t) = self.tokens.get(&host.name, scopes, now) {
                    return Ok(Some(t.authorization()));
                }
                let token = self
                    .fetch_token(host, &realm, service.as_deref(), scopes)
                    .await?;
                let value = token.authorization();
                self.tokens.insert(&host.name, scopes, token);
                Ok(Some(value))
            }
        }
    }

    async fn fetch_token(
        &self,
        host: &Host,
        realm: &str,
        service: Option<&str>,
        scopes: &ScopeSet,
    ) -> Result<crate::auth::Token, RegistryError> {
        let ctx = || Context::new(&host.name).op(Operation::get(Target::Token));
        let realm_is_https = realm
            .get(..8)
            .is_some_and(|p| p.eq_ignore_ascii_case("https://"));
        if !realm_is_https && !host.insecure {
            return Err(RegistryError::invalid_response(
                ctx(),
                &format!("token realm {realm} is not https: refusing to send credentials there"),
            ));
        }
        let req = token_request(realm, service, scopes, &host.creds);
        let mut backoff = self.opts.retry.backoff();
        let mut attempts = 0;
        loop {
            attempts += 1;
            let mut b = match req.method {
                crate::auth::Method::Get => host.http.get(&req.url),
                crate::auth::Method::Post => host
                    .http
                    .post(&req.url)
                    .header("Content-Type", "application/x-www-form-urlencoded")
                    .body(req.body.clone().unwrap_or_default()),
            };
            for (k, v) in &req.headers {
                b = b.header(k, v);
            }
            let err = match b.send().await {
                Err(e) => RegistryError::transport(ctx(), &e),
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let after = retry_after(resp.headers());
                    let body = resp
                        .bytes()
                        .await
                        .map_err(|e| RegistryError::transport(ctx(), &e))?;
                    if (200..300).contains(&status) {
                        return crate::auth::Token::from_response(
                            realm,
                            &body,
                            OffsetDateTime::now_utc(),
                        )
                        .map_err(|e| RegistryError::invalid_response(ctx(), &e.to_string()));
                    }
                    if status == 401 || status == 403 {
                        let e = from_response(
                            &host.name,
                            None,
                            Operation::get(Target::Token),
                            status,
                            &body,
                        );
                        let detail = e
                            .errors()
                            .first()
                            .map(|i| i.message.clone())
                            .or_else(|| token_error_detail(&body));
                        return Err(RegistryError::auth(&host.name, detail.as_deref()));
                    }
                    let e = from_response(
                        &host.name,
                        None,
                        Operation::get(Target::Token),
                        status,
                        &body,
                    );
                    if !classify(Some(status), None).should_retry() {
                        return Err(e);
                    }
                    if let Some(d) = backoff.next_delay(after) {
                        tokio::time::sleep(d).await;
                        continue;
                    }
                    return Err(RegistryError::retries_exhausted(attempts, e));
                }
            };
            if !err.retryable().should_retry() {
                return Err(err);
            }
            match backoff.next_delay(None) {
                Some(d) => tokio::time::sleep(d).await,
                None => return Err(RegistryError::retries_exhausted(attempts, err)),
            }
        }
    }

    /// Checks that `creds` are accepted by registry `name` (for `hoist login`): pings it and
    /// performs one authenticated request (a token for the registry's catalog scope, or a
    /// Basic-authenticated `/v2/`).
    pub async fn check_login(&self, name: &str, creds: Credentials) -> Result<(), RegistryError> {
        let probe = self.connect(&normalize_registry(name)).await?;
        let host = Host { creds, ..probe };
        let scheme = host
            .scheme
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        match scheme {
            AuthScheme::None => Ok(()),
            AuthScheme::Basic => {
                let resp = self
                    .send(
                        &host,
                        None,
                        &ScopeSet::new(),
                        Operation::get(Target::ApiVersion),
                        &|c, base| c.get(format!("{base}/v2/")),
                    )
                    .await?;
                if resp.status().is_success() {
                    Ok(())
                } else {
                    Err(error_from(&host, None, Operation::get(Target::ApiVersion), resp).await)
                }
            }
            AuthScheme::Bearer { realm, service } => self
                .fetch_token(&host, &realm, service.as_deref(), &ScopeSet::new())
                .await
                .map(|_| ()),
        }
    }
}

fn token_error_detail(body: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    v.get("details")
        .or_else(|| v.get("error_description"))
        .or_else(|| v.get("error"))
        .and_then(|d| d.as_str())
        .map(|s| sanitize_text(s, 200))
}

fn scheme_from(headers: &HeaderMap) -> AuthScheme {
    let challenges: Vec<Challenge> = headers
        .get_all(WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(parse_challenges)
        .collect();
    preferred_challenge(&challenges).map_or(AuthScheme::None, scheme_of)
}

fn scheme_of(c: &Challenge) -> AuthScheme {
    match c {
        Challenge::Bearer { realm, service, .. } => AuthScheme::Bearer {
            realm: realm.clone(),
            service: service.clone(),
        },
        Challenge::Basic { .. } => AuthScheme::Basic,
    }
}

fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, OffsetDateTime::now_utc()))
}

/// Turns an unexpected response into the error naming the registry, repository, request,
/// status and the registry's own error code and message.
pub async fn error_from(
    host: &Host,
    repository: Option<&str>,
    op: Operation,
    resp: Response,
) -> RegistryError {
    let status = resp.status().as_u16();
    let body = resp.bytes().await.unwrap_or_default();
    from_response(&host.name, repository, op, status, &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        for h in [
            "localhost",
            "localhost:5000",
            "127.0.0.1:5000",
            "[::1]:5000",
            "127.1.2.3",
        ] {
            assert!(is_loopback(h), "{h}");
        }
        for h in [
            "example.com",
            "10.0.0.1:5000",
            "docker.io",
            "[2001:db8::1]:5000",
        ] {
            assert!(!is_loopback(h), "{h}");
        }
    }

    #[test]
    fn docker_hub_goes_to_its_api_host() {
        assert_eq!(api_host("docker.io"), "registry-1.docker.io");
        assert_eq!(api_host("quay.io"), "quay.io");
    }

    #[test]
    fn certs_dir_reads_ca_files_for_host_with_port() {
        let d = tempfile::tempdir().unwrap();
        let host = d.path().join("reg.example:5000");
        std::fs::create_dir_all(&host).unwrap();
        let (cas, id) = host_certs(&[d.path().to_path_buf()], "reg.example:5000").unwrap();
        assert!(cas.is_empty() && id.is_none());
        std::fs::write(host.join("ca.crt"), "not a pem").unwrap();
        let (cas, _) = host_certs(&[d.path().to_path_buf()], "reg.example:5000").unwrap();
        assert!(
            cas.is_empty(),
            "a file without PEM blocks holds no certificate"
        );
        std::fs::write(host.join("client.cert"), "x").unwrap();
        let err = host_certs(&[d.path().to_path_buf()], "reg.example:5000").unwrap_err();
        assert!(err.contains("without its key"), "{err}");
    }
}
