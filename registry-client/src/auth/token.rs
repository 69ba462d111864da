//! Bearer tokens: the request to the token endpoint (distribution's token and OAuth2 specs), the
//! answer, and a cache of tokens per registry and scope set.
//!
//! Which request [`token_request_with`] builds, following docker's client:
//!
//! | credentials | options | request |
//! |---|---|---|
//! | identity token | any | `POST` form, `grant_type=refresh_token` |
//! | user and password | `oauth_password` | `POST` form, `grant_type=password` |
//! | user and password | default | `GET` with `account` and Basic auth |
//! | anonymous | any | `GET` without `Authorization` |
//!
//! Not every token server implements the OAuth2 POST: when a password-grant POST is answered
//! `404` (or `405`), the transport should retry with the default GET.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Mutex, PoisonError};

use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

use super::{AuthError, Credentials, ScopeSet, normalize_registry};

/// The lifetime assumed when a token response gives none or less than this (docker's minimum).
pub const DEFAULT_TOKEN_LIFETIME: Duration = Duration::seconds(60);

/// How long before its expiry a token stops being handed out by [`Token::is_fresh`], so that it
/// does not expire between the check and the registry's use of it.
pub const TOKEN_EXPIRY_MARGIN: Duration = Duration::seconds(10);

/// The `client_id` hoist sends to OAuth2 token endpoints.
pub const OAUTH_CLIENT_ID: &str = "hoist";

/// A bearer token and when it stops being valid. `Debug` hides the token.
#[derive(Clone, PartialEq, Eq)]
pub struct Token {
    value: String,
    issued_at: OffsetDateTime,
    expires_at: OffsetDateTime,
    refresh_token: Option<String>,
}

impl Token {
    /// A token issued at `issued_at` and valid for `lifetime`.
    pub fn new(value: impl Into<String>, issued_at: OffsetDateTime, lifetime: Duration) -> Token {
        Token {
            value: value.into(),
            issued_at,
            expires_at: issued_at.saturating_add(lifetime),
            refresh_token: None,
        }
    }

    /// Reads a token endpoint's JSON answer received at `now` from `realm` (named in errors).
    ///
    /// The token is `access_token` when non-empty, else `token` (docker's order). The lifetime
    /// is `expires_in` seconds, raised to [`DEFAULT_TOKEN_LIFETIME`] when absent or shorter. It
    /// runs from `issued_at` when that is a valid RFC 3339 time within the lifetime before
    /// `now`; a later or much earlier `issued_at` betrays clock skew between the token server
    /// and us, and the lifetime then runs from `now`. A `refresh_token` is kept (servers send
    /// one for `access_type=offline`).
    pub fn from_response(
        realm: &str,
        body: &[u8],
        now: OffsetDateTime,
    ) -> Result<Token, AuthError> {
        let err = |reason| AuthError::TokenResponse {
            realm: realm.to_owned(),
            reason,
        };
        let json: Value = serde_json::from_slice(body).map_err(|_| err("not json"))?;
        let obj = json.as_object().ok_or_else(|| err("not a json object"))?;
        let nonempty_str = |name: &str| {
            obj.get(name)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
        };
        let value = nonempty_str("access_token")
            .or_else(|| nonempty_str("token"))
            .ok_or_else(|| err("no token in response"))?;
        let expires_in = obj
            .get("expires_in")
            .and_then(|v| v.as_i64().or_else(|| v.as_f64().map(|f| f as i64)))
            .unwrap_or(0);
        let lifetime = Duration::seconds(expires_in).max(DEFAULT_TOKEN_LIFETIME);
        let issued_at = obj
            .get("issued_at")
            .and_then(Value::as_str)
            .and_then(|s| OffsetDateTime::parse(s, &Rfc3339).ok())
            .filter(|t| *t <= now && t.saturating_add(lifetime) > now)
            .unwrap_or(now);
        let mut token = Token::new(value, issued_at, lifetime);
        token.refresh_token = nonempty_str("refresh_token").map(str::to_owned);
        Ok(token)
    }

    /// The token itself.
    pub fn value(&self) -> &str {
        &self.value
    }

    /// The `Authorization` header value: `Bearer <token>`.
    pub fn authorization(&self) -> String {
        format!("Bearer {}", self.value)
    }

    /// When the token was issued (as used for the expiry).
    pub fn issued_at(&self) -> OffsetDateTime {
        self.issued_at
    }

    /// When the token expires.
    pub fn expires_at(&self) -> OffsetDateTime {
        self.expires_at
    }

    /// The refresh token the server sent along, if any (to store as an identity token).
    pub fn refresh_token(&self) -> Option<&str> {
        self.refresh_token.as_deref()
    }

    /// Whether the token is still usable at `now`: more than [`TOKEN_EXPIRY_MARGIN`] before
    /// its expiry.
    pub fn is_fresh(&self, now: OffsetDateTime) -> bool {
        now.saturating_add(TOKEN_EXPIRY_MARGIN) < self.expires_at
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Token")
            .field("value", &format_args!("<redacted>"))
            .field("issued_at", &self.issued_at)
            .field("expires_at", &self.expires_at)
            .field(
                "refresh_token",
                &self
                    .refresh_token
                    .as_ref()
                    .map(|_| format_args!("<redacted>")),
            )
            .finish()
    }
}

/// Tokens per (registry host, [`ScopeSet::key`]), shared between threads. Hosts are normalised
/// with [`normalize_registry`], so `index.docker.io` and `docker.io` share entries. A token is
/// only handed out for exactly the scope set it was requested for: registries may grant fewer
/// actions than asked, so a token requested for `pull,push` does not prove `push`.
#[derive(Debug, Default)]
pub struct TokenCache {
    entries: Mutex<HashMap<(String, String), Token>>,
}

impl TokenCache {
    /// An empty cache.
    pub fn new() -> TokenCache {
        TokenCache::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), Token>> {
        // A panic while holding the lock cannot leave the map half-updated: recover it.
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn key(registry: &str, scopes: &ScopeSet) -> (String, String) {
        (normalize_registry(registry), scopes.key())
    }

    /// The cached token for `registry` and `scopes` if it is fresh at `now`; a stale one is
    /// dropped.
    pub fn get(&self, registry: &str, scopes: &ScopeSet, now: OffsetDateTime) -> Option<Token> {
        let key = Self::key(registry, scopes);
        let mut entries = self.lock();
        match entries.get(&key) {
            Some(token) if token.is_fresh(now) => Some(token.clone()),
            Some(_) => {
                entries.remove(&key);
                None
            }
            None => None,
        }
    }

    /// Stores `token` for `registry` and `scopes`, replacing any previous one.
    pub fn insert(&self, registry: &str, scopes: &ScopeSet, token: Token) {
        self.lock().insert(Self::key(registry, scopes), token);
    }

    /// Forgets the token for `registry` and `scopes` (after the registry rejected it); returns
    /// whether there was one.
    pub fn invalidate(&self, registry: &str, scopes: &ScopeSet) -> bool {
        self.lock().remove(&Self::key(registry, scopes)).is_some()
    }

    /// Forgets every token for `registry` (after a login or logout); returns how many.
    pub fn invalidate_registry(&self, registry: &str) -> usize {
        let host = normalize_registry(registry);
        let mut entries = self.lock();
        let before = entries.len();
        entries.retain(|(h, _), _| *h != host);
        before - entries.len()
    }

    /// Drops every token that is not fresh at `now`; returns how many.
    pub fn prune(&self, now: OffsetDateTime) -> usize {
        let mut entries = self.lock();
        let before = entries.len();
        entries.retain(|_, token| token.is_fresh(now));
        before - entries.len()
    }

    /// The number of cached tokens, fresh or not.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether the cache holds no token.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }
}

/// An HTTP method of a [`TokenRequest`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// `GET`.
    Get,
    /// `POST`.
    Post,
}

impl Method {
    /// `GET` or `POST`.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
        }
    }
}

/// A request to a token endpoint, as plain data for the HTTP transport to send. `Debug` hides
/// the `Authorization` header and the body (which may hold a password or refresh token).
#[derive(Clone, PartialEq, Eq)]
pub struct TokenRequest {
    /// The method.
    pub method: Method,
    /// The URL, query included and percent-encoded.
    pub url: String,
    /// Headers to send, in order.
    pub headers: Vec<(String, String)>,
    /// The `application/x-www-form-urlencoded` body of a POST.
    pub body: Option<String>,
}

impl TokenRequest {
    /// The value of the first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

impl fmt::Debug for TokenRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Headers<'a>(&'a [(String, String)]);
        impl fmt::Debug for Headers<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let mut list = f.debug_list();
                for (name, value) in self.0 {
                    if name.eq_ignore_ascii_case("authorization") {
                        let scheme = value.split(' ').next().unwrap_or_default();
                        list.entry(&(name, format_args!("{scheme} <redacted>")));
                    } else {
                        list.entry(&(name, value));
                    }
                }
                list.finish()
            }
        }
        f.debug_struct("TokenRequest")
            .field("method", &self.method)
            .field("url", &self.url)
            .field("headers", &Headers(&self.headers))
            .field("body", &self.body.as_ref().map(|b| Redacted(b.len())))
            .finish()
    }
}

/// Shows `<redacted, N bytes>` in place of a secret body.
struct Redacted(usize);

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<redacted, {} bytes>", self.0)
    }
}

/// Choices for [`token_request_with`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TokenRequestOptions {
    /// Use the OAuth2 password grant (POST) for user and password instead of GET with Basic
    /// auth (docker's `forceOAuth`, used by `login` to obtain a refresh token).
    pub oauth_password: bool,
    /// Ask for a refresh token: `access_type=offline` in a POST, `offline_token=true` and
    /// `client_id` in a GET.
    pub offline: bool,
}

/// The token request for `scopes` at `realm` with `creds`, with default options: GET with Basic
/// auth for a user and password, the OAuth2 refresh-token grant for an identity token, an
/// anonymous GET otherwise. `realm` and `service` come from the registry's [`super::Challenge`];
/// the transport must check the realm's scheme (https, or http only for an insecure registry)
/// before sending credentials to it.
pub fn token_request(
    realm: &str,
    service: Option<&str>,
    scopes: &ScopeSet,
    creds: &Credentials,
) -> TokenRequest {
    token_request_with(
        realm,
        service,
        scopes,
        creds,
        &TokenRequestOptions::default(),
    )
}

/// [`token_request`] with explicit [`TokenRequestOptions`].
pub fn token_request_with(
    realm: &str,
    service: Option<&str>,
    scopes: &ScopeSet,
    creds: &Credentials,
    options: &TokenRequestOptions,
) -> TokenRequest {
    // A fragment is never sent.
    let realm = realm.split('#').next().unwrap_or_default();
    let service = service.filter(|s| !s.is_empty());
    let scope_strings = scopes.to_strings();
    match creds {
        Credentials::IdentityToken(refresh) => {
            let mut form = oauth_form("refresh_token", service, &scope_strings, options);
            form.push(("refresh_token", refresh.clone()));
            post(realm, &form)
        }
        Credentials::Basic { username, password }
            if options.oauth_password && !username.is_empty() && !password.is_empty() =>
        {
            let mut form = oauth_form("password", service, &scope_strings, options);
            form.push(("username", username.clone()));
            form.push(("password", password.clone()));
            post(realm, &form)
        }
        _ => {
            let mut query: Vec<(&str, &str)> = Vec::new();
            if let Some(service) = service {
                query.push(("service", service));
            }
            for scope in &scope_strings {
                query.push(("scope", scope));
            }
            if options.offline {
                query.push(("offline_token", "true"));
                query.push(("client_id", OAUTH_CLIENT_ID));
            }
            let mut headers = Vec::new();
            // Basic auth needs both a user name and a password (as in docker).
            if let (Some(header), Some(username)) = (creds.basic_authorization(), creds.username())
            {
                query.push(("account", username));
                headers.push(("Authorization".to_owned(), header));
            }
            let url = if query.is_empty() {
                realm.to_owned()
            } else {
                let sep = if realm.ends_with('?') || realm.ends_with('&') {
                    ""
                } else if realm.contains('?') {
                    "&"
                } else {
                    "?"
                };
                format!("{realm}{sep}{}", form_encode(&query))
            };
            TokenRequest {
                method: Method::Get,
                url,
                headers,
                body: None,
            }
        }
    }
}

/// The OAuth2 form fields common to both grants.
fn oauth_form(
    grant_type: &'static str,
    service: Option<&str>,
    scopes: &[String],
    options: &TokenRequestOptions,
) -> Vec<(&'static str, String)> {
    let mut form = vec![("grant_type", grant_type.to_owned())];
    if let Some(service) = service {
        form.push(("service", service.to_owned()));
    }
    form.push(("client_id", OAUTH_CLIENT_ID.to_owned()));
    if options.offline {
        form.push(("access_type", "offline".to_owned()));
    }
    if !scopes.is_empty() {
        form.push(("scope", scopes.join(" ")));
    }
    form
}

fn post(realm: &str, form: &[(&str, String)]) -> TokenRequest {
    TokenRequest {
        method: Method::Post,
        url: realm.to_owned(),
        headers: vec![(
            "Content-Type".to_owned(),
            "application/x-www-form-urlencoded".to_owned(),
        )],
        body: Some(form_encode(form)),
    }
}

/// `application/x-www-form-urlencoded` (what Go's `url.Values.Encode` produces): unreserved
/// characters stay, space becomes `+`, every other byte `%XX`.
fn form_encode<V: AsRef<str>>(pairs: &[(&str, V)]) -> String {
    let mut out = String::new();
    for (i, (name, value)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        encode_component(name, &mut out);
        out.push('=');
        encode_component(value.as_ref(), &mut out);
    }
    out
}

fn encode_component(s: &str, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in s.as_bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(char::from(b))
            }
            b' ' => out.push('+'),
            _ => {
                out.push('%');
                out.push(char::from(HEX[usize::from(b >> 4)]));
                out.push(char::from(HEX[usize::from(b & 0xf)]));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use time::macros::datetime;

    use super::*;
    use crate::auth::Scope;

    const NOW: OffsetDateTime = datetime!(2026-03-01 12:00:00 UTC);

    fn parse(body: &str) -> Result<Token, AuthError> {
        Token::from_response("https://auth.example/token", body.as_bytes(), NOW)
    }

    #[test]
    fn token_or_access_token() {
        assert_eq!(parse(r#"{"token":"t1"}"#).unwrap().value(), "t1");
        assert_eq!(parse(r#"{"access_token":"a1"}"#).unwrap().value(), "a1");
        // Docker prefers access_token when both are present.
        assert_eq!(
            parse(r#"{"token":"t1","access_token":"a1"}"#)
                .unwrap()
                .value(),
            "a1"
        );
        assert_eq!(
            parse(r#"{"token":"t1","access_token":""}"#)
                .unwrap()
                .value(),
            "t1"
        );
        assert_eq!(
            parse(r#"{"token":"t1"}"#).unwrap().authorization(),
            "Bearer t1"
        );
    }

    #[test]
    fn malformed_responses_name_the_realm_not_the_body() {
        for body in [
            "",
            "not json",
            "[]",
            "{}",
            r#"{"token":""}"#,
            r#"{"token":42}"#,
            r#"{"tok":"secret-value"}"#,
        ] {
            let err = parse(body).unwrap_err();
            let msg = err.to_string();
            assert!(matches!(err, AuthError::TokenResponse { .. }), "{body}");
            assert!(msg.contains("https://auth.example/token"), "{msg}");
            assert!(!msg.contains("secret-value"), "{msg}");
        }
    }

    #[test]
    fn lifetime_defaults_and_minimum() {
        let t = parse(r#"{"token":"t"}"#).unwrap();
        assert_eq!(t.issued_at(), NOW);
        assert_eq!(t.expires_at(), NOW + Duration::seconds(60));
        let t = parse(r#"{"token":"t","expires_in":30}"#).unwrap();
        assert_eq!(t.expires_at(), NOW + Duration::seconds(60));
        let t = parse(r#"{"token":"t","expires_in":-5}"#).unwrap();
        assert_eq!(t.expires_at(), NOW + Duration::seconds(60));
        let t = parse(r#"{"token":"t","expires_in":"300"}"#).unwrap();
        assert_eq!(t.expires_at(), NOW + Duration::seconds(60));
        let t = parse(r#"{"token":"t","expires_in":300}"#).unwrap();
        assert_eq!(t.expires_at(), NOW + Duration::seconds(300));
        let t = parse(r#"{"token":"t","expires_in":300.7}"#).unwrap();
        assert_eq!(t.expires_at(), NOW + Duration::seconds(300));
        // Absurd lifetimes saturate instead of overflowing.
        let t = parse(r#"{"token":"t","expires_in":9223372036854775807}"#).unwrap();
        assert!(t.is_fresh(NOW + Duration::days(365 * 100)));
    }

    #[test]
    fn expiry_runs_from_issued_at() {
        let t =
            parse(r#"{"token":"t","expires_in":300,"issued_at":"2026-03-01T11:58:00Z"}"#).unwrap();
        assert_eq!(t.issued_at(), datetime!(2026-03-01 11:58:00 UTC));
        assert_eq!(t.expires_at(), datetime!(2026-03-01 12:03:00 UTC));
        // Fractional seconds and offsets (Go's RFC3339Nano).
        let t = parse(
            r#"{"token":"t","expires_in":300,"issued_at":"2026-03-01T12:59:30.123456789+01:00"}"#,
        )
        .unwrap();
        assert_eq!(t.issued_at(), datetime!(2026-03-01 11:59:30.123456789 UTC));
    }

    #[test]
    fn skewed_or_invalid_issued_at_falls_back_to_now() {
        for issued in [
            "2026-03-01T12:05:00Z", // in the future
            "2026-03-01T11:00:00Z", // already expired
            "yesterday",
            "",
        ] {
            let body = format!(r#"{{"token":"t","expires_in":300,"issued_at":"{issued}"}}"#);
            let t = parse(&body).unwrap();
            assert_eq!(t.issued_at(), NOW, "{issued}");
            assert_eq!(t.expires_at(), NOW + Duration::seconds(300), "{issued}");
        }
    }

    #[test]
    fn freshness_has_a_margin() {
        let t = Token::new("t", NOW, Duration::seconds(60));
        assert!(t.is_fresh(NOW));
        assert!(t.is_fresh(NOW + Duration::seconds(49)));
        assert!(!t.is_fresh(NOW + Duration::seconds(50)));
        assert!(!t.is_fresh(NOW + Duration::seconds(61)));
    }

    #[test]
    fn refresh_token_is_kept_and_debug_redacts() {
        let t =
            parse(r#"{"access_token":"sekrit-access","refresh_token":"sekrit-refresh"}"#).unwrap();
        assert_eq!(t.refresh_token(), Some("sekrit-refresh"));
        let dbg = format!("{t:?}");
        assert!(!dbg.contains("sekrit"), "{dbg}");
        assert!(dbg.contains("<redacted>"), "{dbg}");
        assert_eq!(parse(r#"{"token":"t"}"#).unwrap().refresh_token(), None);
    }

    fn scopes(list: &[&str]) -> ScopeSet {
        list.iter().map(|s| s.parse::<Scope>().unwrap()).collect()
    }

    #[test]
    fn cache_get_insert_invalidate() {
        let cache = TokenCache::new();
        let pull = scopes(&["repository:library/busybox:pull"]);
        let push = scopes(&["repository:library/busybox:pull,push"]);
        assert!(cache.is_empty());
        assert_eq!(cache.get("docker.io", &pull, NOW), None);

        cache.insert(
            "index.docker.io",
            &pull,
            Token::new("p", NOW, Duration::seconds(300)),
        );
        // Registry aliases share entries; scope sets are distinct.
        let got = cache.get("registry-1.docker.io", &pull, NOW).unwrap();
        assert_eq!(got.value(), "p");
        assert_eq!(cache.get("docker.io", &push, NOW), None);
        assert_eq!(cache.get("quay.io", &pull, NOW), None);
        // Same set built in another order hits the same entry.
        let pull_again = scopes(&["repository:library/busybox:pull"]);
        assert!(cache.get("docker.io", &pull_again, NOW).is_some());

        cache.insert(
            "docker.io",
            &push,
            Token::new("pp", NOW, Duration::seconds(300)),
        );
        assert_eq!(cache.len(), 2);
        assert!(cache.invalidate("docker.io", &pull));
        assert!(!cache.invalidate("docker.io", &pull));
        assert_eq!(cache.get("docker.io", &pull, NOW), None);
        assert_eq!(cache.get("docker.io", &push, NOW).unwrap().value(), "pp");

        cache.insert(
            "quay.io",
            &pull,
            Token::new("q", NOW, Duration::seconds(300)),
        );
        assert_eq!(cache.invalidate_registry("https://index.docker.io/v1/"), 1);
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn cache_drops_stale_tokens() {
        let cache = TokenCache::new();
        let set = scopes(&["repository:a:pull"]);
        cache.insert("r", &set, Token::new("old", NOW, Duration::seconds(60)));
        assert!(cache.get("r", &set, NOW + Duration::seconds(30)).is_some());
        assert_eq!(cache.get("r", &set, NOW + Duration::seconds(55)), None);
        assert!(cache.is_empty());

        cache.insert("r", &set, Token::new("a", NOW, Duration::seconds(60)));
        cache.insert("s", &set, Token::new("b", NOW, Duration::seconds(600)));
        assert_eq!(cache.prune(NOW + Duration::seconds(120)), 1);
        assert_eq!(cache.len(), 1);
        // Anonymous (empty) scope sets are keyed too.
        cache.insert(
            "r",
            &ScopeSet::new(),
            Token::new("anon", NOW, Duration::seconds(600)),
        );
        assert_eq!(
            cache.get("r", &ScopeSet::new(), NOW).unwrap().value(),
            "anon"
        );
    }

    #[test]
    fn cache_is_shared_between_threads() {
        let cache = Arc::new(TokenCache::new());
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let cache = Arc::clone(&cache);
                std::thread::spawn(move || {
                    let set = scopes(&[&format!("repository:r{i}:pull")]);
                    cache.insert(
                        "reg",
                        &set,
                        Token::new(format!("t{i}"), NOW, Duration::HOUR),
                    );
                    cache.get("reg", &set, NOW).map(|t| t.value().to_owned())
                })
            })
            .collect();
        for (i, h) in handles.into_iter().enumerate() {
            assert_eq!(h.join().unwrap(), Some(format!("t{i}")));
        }
        assert_eq!(cache.len(), 8);
    }

    #[test]
    fn get_request_anonymous() {
        let set = scopes(&["repository:library/busybox:pull"]);
        let req = token_request(
            "https://auth.docker.io/token",
            Some("registry.docker.io"),
            &set,
            &Credentials::Anonymous,
        );
        assert_eq!(req.method, Method::Get);
        assert_eq!(
            req.url,
            "https://auth.docker.io/token?service=registry.docker.io&scope=repository%3Alibrary%2Fbusybox%3Apull"
        );
        assert!(req.headers.is_empty());
        assert_eq!(req.body, None);
        // No parameters at all: the realm as is.
        let req = token_request(
            "https://t/x",
            None,
            &ScopeSet::new(),
            &Credentials::Anonymous,
        );
        assert_eq!(req.url, "https://t/x");
    }

    #[test]
    fn get_request_with_basic_auth_and_repeated_scopes() {
        let set = scopes(&[
            "repository:me/app:push",
            "repository:me/app:pull",
            "repository:library/alpine:pull",
        ]);
        let creds = Credentials::basic("bob", "p@ss word");
        let req = token_request(
            "https://t.example/token?x=1#frag",
            Some("reg svc"),
            &set,
            &creds,
        );
        assert_eq!(req.method, Method::Get);
        assert_eq!(
            req.url,
            "https://t.example/token?x=1&service=reg+svc\
             &scope=repository%3Alibrary%2Falpine%3Apull\
             &scope=repository%3Ame%2Fapp%3Apull%2Cpush&account=bob"
        );
        use base64::Engine as _;
        let expected = base64::engine::general_purpose::STANDARD.encode("bob:p@ss word");
        assert_eq!(
            req.header("authorization"),
            Some(format!("Basic {expected}").as_str())
        );
        let dbg = format!("{req:?}");
        assert!(!dbg.contains(&expected), "{dbg}");
        assert!(dbg.contains("Basic <redacted>"), "{dbg}");
        // Basic auth needs both parts.
        let req = token_request("https://t", None, &set, &Credentials::basic("bob", ""));
        assert!(req.headers.is_empty());
        assert!(!req.url.contains("account"));
    }

    #[test]
    fn get_request_offline() {
        let req = token_request_with(
            "https://t/token?",
            Some("s"),
            &ScopeSet::new(),
            &Credentials::basic("u", "p"),
            &TokenRequestOptions {
                offline: true,
                ..Default::default()
            },
        );
        assert_eq!(
            req.url,
            "https://t/token?service=s&offline_token=true&client_id=hoist&account=u"
        );
    }

    #[test]
    fn post_with_identity_token() {
        let set = scopes(&[
            "repository:me/app:pull,push",
            "repository:library/alpine:pull",
        ]);
        let creds = Credentials::IdentityToken("refresh/tok=".into());
        let req = token_request(
            "https://auth.example/token",
            Some("registry.example"),
            &set,
            &creds,
        );
        assert_eq!(req.method, Method::Post);
        assert_eq!(req.url, "https://auth.example/token");
        assert_eq!(
            req.header("content-type"),
            Some("application/x-www-form-urlencoded")
        );
        assert_eq!(req.header("authorization"), None);
        assert_eq!(
            req.body.as_deref(),
            Some(
                "grant_type=refresh_token&service=registry.example&client_id=hoist\
                 &scope=repository%3Alibrary%2Falpine%3Apull+repository%3Ame%2Fapp%3Apull%2Cpush\
                 &refresh_token=refresh%2Ftok%3D"
            )
        );
        let dbg = format!("{req:?}");
        assert!(!dbg.contains("refresh%2Ftok"), "{dbg}");
        assert!(dbg.contains("<redacted,"), "{dbg}");
    }

    #[test]
    fn post_with_password_grant_when_asked() {
        let set = scopes(&["repository:a:pull"]);
        let creds = Credentials::basic("bob", "pa&ss");
        let options = TokenRequestOptions {
            oauth_password: true,
            offline: true,
        };
        let req = token_request_with("https://t", None, &set, &creds, &options);
        assert_eq!(req.method, Method::Post);
        assert_eq!(
            req.body.as_deref(),
            Some(
                "grant_type=password&client_id=hoist&access_type=offline\
                 &scope=repository%3Aa%3Apull&username=bob&password=pa%26ss"
            )
        );
        // Anonymous has no grant: plain GET.
        let req = token_request_with("https://t", None, &set, &Credentials::Anonymous, &options);
        assert_eq!(req.method, Method::Get);
    }

    #[test]
    fn form_encoding_of_non_ascii() {
        assert_eq!(form_encode(&[("k", "\u{e9} ~.-_*")]), "k=%C3%A9+~.-_%2A");
        assert_eq!(Method::Get.as_str(), "GET");
        assert_eq!(Method::Post.as_str(), "POST");
    }
}
