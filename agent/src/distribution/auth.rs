//! Registry authentication: the caller's credentials, `WWW-Authenticate` challenges
//! (Basic and Bearer), the token flow of Bearer realms (GET with Basic credentials, or
//! an OAuth2 refresh-token POST for identity tokens), and a per-scope token cache that
//! keeps tokens until they expire.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use reqwest::Url;
use reqwest::header::HeaderValue;
use serde::Deserialize;

use super::error::{Error, Result};

/// Credentials for one registry, sent by the client with each pull or push.
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    /// A user name and password (or personal access token).
    Basic { username: String, password: String },
    /// An OAuth2 refresh token issued by the registry's token server (docker's
    /// `identitytoken`).
    IdentityToken(String),
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::Basic { username, .. } => {
                write!(
                    f,
                    "Basic {{ username: {username:?}, password: <redacted> }}"
                )
            }
            Credentials::IdentityToken(_) => f.write_str("IdentityToken(<redacted>)"),
        }
    }
}

impl Credentials {
    /// A key that tells credentials apart in the token cache without holding secrets in
    /// clear.
    fn cache_key(&self) -> String {
        use sha2::Digest as _;
        let (kind, secret) = match self {
            Credentials::Basic { username, password } => {
                ("basic", format!("{username}\0{password}"))
            }
            Credentials::IdentityToken(t) => ("identity", t.clone()),
        };
        format!(
            "{kind}:{}",
            hex::encode(sha2::Sha256::digest(secret.as_bytes()))
        )
    }
}

/// An authentication challenge from a `WWW-Authenticate` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    Basic {
        realm: String,
    },
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
        /// `error="insufficient_scope"` and the like.
        error: Option<String>,
    },
}

/// Parses one `WWW-Authenticate` header value; unknown schemes are skipped.
pub fn parse_challenges(header: &str) -> Vec<Challenge> {
    let mut out = Vec::new();
    for (scheme, params) in split_challenges(header) {
        let get = |k: &str| {
            params
                .iter()
                .find(|(pk, _)| pk.eq_ignore_ascii_case(k))
                .map(|(_, v)| v.clone())
        };
        if scheme.eq_ignore_ascii_case("basic") {
            out.push(Challenge::Basic {
                realm: get("realm").unwrap_or_default(),
            });
        } else if scheme.eq_ignore_ascii_case("bearer")
            && let Some(realm) = get("realm")
        {
            out.push(Challenge::Bearer {
                realm,
                service: get("service"),
                scope: get("scope"),
                error: get("error"),
            });
        }
    }
    out
}

/// Splits `Scheme k=v, k="v", Other k=v` into schemes with their parameters.
fn split_challenges(s: &str) -> Vec<(String, Vec<(String, String)>)> {
    let b = s.as_bytes();
    let mut i = 0;
    let mut out: Vec<(String, Vec<(String, String)>)> = Vec::new();
    let is_tchar = |c: u8| c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~/".contains(&c);
    while i < b.len() {
        while i < b.len() && (b[i] == b' ' || b[i] == b',' || b[i] == b'\t') {
            i += 1;
        }
        let start = i;
        while i < b.len() && is_tchar(b[i]) {
            i += 1;
        }
        if start == i {
            i += 1; // skip a stray character
            continue;
        }
        let token = &s[start..i];
        let mut j = i;
        while j < b.len() && b[j] == b' ' {
            j += 1;
        }
        if j < b.len() && b[j] == b'=' && !out.is_empty() {
            // A parameter of the current challenge.
            j += 1;
            while j < b.len() && b[j] == b' ' {
                j += 1;
            }
            let mut value = String::new();
            if j < b.len() && b[j] == b'"' {
                j += 1;
                while j < b.len() && b[j] != b'"' {
                    if b[j] == b'\\' && j + 1 < b.len() {
                        j += 1;
                    }
                    let ch_len = utf8_len(b[j]);
                    value.push_str(&s[j..(j + ch_len).min(b.len())]);
                    j += ch_len;
                }
                j += 1; // closing quote
            } else {
                let vs = j;
                while j < b.len() && b[j] != b',' && b[j] != b' ' {
                    j += 1;
                }
                value.push_str(&s[vs..j]);
            }
            if let Some(last) = out.last_mut() {
                last.1.push((token.to_string(), value));
            }
            i = j;
        } else {
            out.push((token.to_string(), Vec::new()));
        }
    }
    out
}

fn utf8_len(first: u8) -> usize {
    match first {
        0x00..=0x7f => 1,
        0xc0..=0xdf => 2,
        0xe0..=0xef => 3,
        _ => 4,
    }
}

/// What a request needs access to, as token scopes
/// (`repository:library/busybox:pull`, `registry:catalog:*`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Scopes(Vec<String>);

impl Scopes {
    pub fn pull(repository: &str) -> Scopes {
        Scopes(vec![format!("repository:{repository}:pull")])
    }

    pub fn push(repository: &str) -> Scopes {
        Scopes(vec![format!("repository:{repository}:pull,push")])
    }

    pub fn catalog() -> Scopes {
        Scopes(vec!["registry:catalog:*".to_string()])
    }

    /// Adds a scope (kept sorted and unique).
    pub fn with(mut self, scope: &str) -> Scopes {
        for s in scope.split(' ').filter(|s| !s.is_empty()) {
            if !self.0.iter().any(|x| x == s) {
                self.0.push(s.to_string());
            }
        }
        self.0.sort();
        self
    }

    pub fn as_slice(&self) -> &[String] {
        &self.0
    }

    /// The action shown in messages: "pull" or "push".
    pub fn action(&self) -> &'static str {
        if self
            .0
            .iter()
            .any(|s| s.ends_with(",push") || s.ends_with(":push"))
        {
            "push"
        } else if self.0.iter().any(|s| s.starts_with("registry:catalog")) {
            "catalog"
        } else {
            "pull"
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct TokenKey {
    realm: String,
    service: String,
    scopes: Scopes,
    who: String,
}

#[derive(Clone)]
struct CachedToken {
    token: String,
    expires: Instant,
}

/// Challenges learned per endpoint and tokens per scope.
#[derive(Default)]
pub struct AuthCache {
    challenges: Mutex<HashMap<String, Challenge>>,
    tokens: Mutex<HashMap<TokenKey, CachedToken>>,
}

/// What went into an Authorization header, so a refused one can be told apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sent {
    Nothing,
    Basic,
    Bearer { anonymous: bool },
}

#[derive(Deserialize)]
struct TokenResponse {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
}

/// Tokens without `expires_in` live 60 s (the distribution spec's default).
const DEFAULT_TOKEN_LIFETIME: u64 = 60;
/// Tokens are dropped this long before they expire.
const EXPIRY_MARGIN: Duration = Duration::from_secs(5);

impl AuthCache {
    /// Remembers the challenge an endpoint answered with.
    pub fn learn(&self, authority: &str, challenge: Challenge) {
        self.challenges
            .lock()
            .expect("auth cache lock")
            .insert(authority.to_string(), challenge);
    }

    pub fn challenge(&self, authority: &str) -> Option<Challenge> {
        self.challenges
            .lock()
            .expect("auth cache lock")
            .get(authority)
            .cloned()
    }

    /// Forgets the cached token for these scopes (after a registry refused it).
    pub fn forget_token(
        &self,
        challenge: &Challenge,
        scopes: &Scopes,
        creds: Option<&Credentials>,
    ) {
        if let Some(key) = token_key(challenge, scopes, creds) {
            self.tokens.lock().expect("auth cache lock").remove(&key);
        }
    }

    /// The Authorization header for a request to an endpoint with `challenge` known, or
    /// none when the endpoint asked for nothing yet. Fetches a Bearer token when needed.
    pub async fn authorization(
        &self,
        http: &reqwest::Client,
        challenge: Option<&Challenge>,
        scopes: &Scopes,
        creds: Option<&Credentials>,
        registry: &str,
    ) -> Result<(Option<HeaderValue>, Sent)> {
        match challenge {
            None => Ok((None, Sent::Nothing)),
            Some(Challenge::Basic { .. }) => match creds {
                Some(Credentials::Basic { username, password }) => {
                    Ok((Some(basic_header(username, password)), Sent::Basic))
                }
                // Identity tokens only work with a token server; send nothing and let the
                // registry say no.
                _ => Ok((None, Sent::Nothing)),
            },
            Some(ch @ Challenge::Bearer { .. }) => {
                let key = token_key(ch, scopes, creds).expect("bearer challenge");
                let now = Instant::now();
                if let Some(t) = self.tokens.lock().expect("auth cache lock").get(&key)
                    && t.expires > now
                {
                    return Ok((Some(bearer_header(&t.token)?), bearer_sent(creds)));
                }
                let (token, lifetime) = fetch_token(http, ch, scopes, creds, registry).await?;
                let life = Duration::from_secs(lifetime).saturating_sub(EXPIRY_MARGIN);
                self.tokens.lock().expect("auth cache lock").insert(
                    key,
                    CachedToken {
                        token: token.clone(),
                        expires: Instant::now() + life,
                    },
                );
                Ok((Some(bearer_header(&token)?), bearer_sent(creds)))
            }
        }
    }
}

fn bearer_sent(creds: Option<&Credentials>) -> Sent {
    Sent::Bearer {
        anonymous: creds.is_none(),
    }
}

fn token_key(ch: &Challenge, scopes: &Scopes, creds: Option<&Credentials>) -> Option<TokenKey> {
    match ch {
        Challenge::Bearer {
            realm,
            service,
            scope,
            ..
        } => Some(TokenKey {
            realm: realm.clone(),
            service: service.clone().unwrap_or_default(),
            scopes: match scope {
                Some(s) => scopes.clone().with(s),
                None => scopes.clone(),
            },
            who: creds.map_or_else(|| "anonymous".to_string(), Credentials::cache_key),
        }),
        Challenge::Basic { .. } => None,
    }
}

fn basic_header(username: &str, password: &str) -> HeaderValue {
    use base64::Engine as _;
    let encoded =
        base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
    let mut v = HeaderValue::from_str(&format!("Basic {encoded}"))
        .unwrap_or_else(|_| HeaderValue::from_static("Basic"));
    v.set_sensitive(true);
    v
}

fn bearer_header(token: &str) -> Result<HeaderValue> {
    let mut v = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
        Error::Protocol("the token server sent a token that is not a valid header value".into())
    })?;
    v.set_sensitive(true);
    Ok(v)
}

/// Asks the realm of a Bearer challenge for a token covering `scopes` (plus the scope the
/// challenge named). Returns the token and its lifetime in seconds.
async fn fetch_token(
    http: &reqwest::Client,
    ch: &Challenge,
    scopes: &Scopes,
    creds: Option<&Credentials>,
    registry: &str,
) -> Result<(String, u64)> {
    let Challenge::Bearer {
        realm,
        service,
        scope,
        ..
    } = ch
    else {
        unreachable!("fetch_token takes a bearer challenge");
    };
    let scopes = match scope {
        Some(s) => scopes.clone().with(s),
        None => scopes.clone(),
    };
    let terr = |reason: String| Error::Token {
        realm: realm.clone(),
        reason,
    };
    let url = Url::parse(realm).map_err(|e| terr(format!("the realm is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(terr("the realm is not an http(s) URL".into()));
    }
    let req = match creds {
        Some(Credentials::IdentityToken(refresh)) => {
            let mut form: Vec<(&str, String)> = vec![
                ("grant_type", "refresh_token".into()),
                ("refresh_token", refresh.clone()),
                ("client_id", "berth".into()),
                ("scope", scopes.as_slice().join(" ")),
            ];
            if let Some(s) = service {
                form.push(("service", s.clone()));
            }
            http.post(url).form(&form)
        }
        _ => {
            let mut url = url;
            {
                let mut q = url.query_pairs_mut();
                if let Some(s) = service {
                    q.append_pair("service", s);
                }
                for s in scopes.as_slice() {
                    q.append_pair("scope", s);
                }
            }
            let mut req = http.get(url);
            if let Some(Credentials::Basic { username, password }) = creds {
                req = req.header(
                    reqwest::header::AUTHORIZATION,
                    basic_header(username, password),
                );
            }
            req
        }
    };
    let resp = req
        .send()
        .await
        .map_err(|e| terr(super::registry::describe_reqwest(&e)))?;
    let status = resp.status();
    if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
        let detail = super::registry::error_detail(resp).await;
        return Err(match creds {
            None => Error::LoginRequired {
                action: scopes.action().to_string(),
                registry: registry.to_string(),
                login_host: registry.to_string(),
                detail,
            },
            Some(_) => Error::Unauthorized {
                action: scopes.action().to_string(),
                registry: registry.to_string(),
                detail,
            },
        });
    }
    if !status.is_success() {
        let detail = super::registry::error_detail(resp).await;
        return Err(terr(format!("answered {status}{detail}")));
    }
    let body = resp
        .bytes()
        .await
        .map_err(|e| terr(super::registry::describe_reqwest(&e)))?;
    let t: TokenResponse =
        serde_json::from_slice(&body).map_err(|e| terr(format!("unreadable token answer: {e}")))?;
    let token = t
        .access_token
        .or(t.token)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| terr("the answer holds no token".into()))?;
    Ok((token, t.expires_in.unwrap_or(DEFAULT_TOKEN_LIFETIME).max(1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bearer_and_basic_challenges() {
        let h = r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull""#;
        assert_eq!(
            parse_challenges(h),
            vec![Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
                scope: Some("repository:library/busybox:pull".into()),
                error: None,
            }]
        );
        assert_eq!(
            parse_challenges(r#"Basic realm="basic-realm""#),
            vec![Challenge::Basic {
                realm: "basic-realm".into()
            }]
        );
        let both = r#"Basic realm="a b, c", Bearer realm="http://x/t", scope="repository:a:pull,push", error="insufficient_scope""#;
        let got = parse_challenges(both);
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(
            got[0],
            Challenge::Basic {
                realm: "a b, c".into()
            }
        );
        assert!(
            matches!(&got[1], Challenge::Bearer { scope: Some(s), error: Some(e), .. }
            if s == "repository:a:pull,push" && e == "insufficient_scope")
        );
        // Unquoted values, odd spacing, unknown schemes.
        let got = parse_challenges("Negotiate, bearer realm=http://t/x , service=reg");
        assert_eq!(
            got,
            vec![Challenge::Bearer {
                realm: "http://t/x".into(),
                service: Some("reg".into()),
                scope: None,
                error: None
            }]
        );
        assert!(parse_challenges("Bearer service=x").is_empty());
    }

    #[test]
    fn scopes_merge_and_name_actions() {
        let s = Scopes::pull("a").with("repository:b:pull repository:a:pull");
        assert_eq!(s.as_slice(), ["repository:a:pull", "repository:b:pull"]);
        assert_eq!(s.action(), "pull");
        assert_eq!(Scopes::push("a").action(), "push");
        assert_eq!(Scopes::catalog().action(), "catalog");
    }

    #[test]
    fn basic_header_is_standard_base64() {
        assert_eq!(
            basic_header("user", "pass").to_str().unwrap(),
            "Basic dXNlcjpwYXNz"
        );
    }

    #[test]
    fn credentials_debug_hides_secrets() {
        let c = Credentials::Basic {
            username: "u".into(),
            password: "hunter2".into(),
        };
        assert!(!format!("{c:?}").contains("hunter2"));
        assert_ne!(
            c.cache_key(),
            Credentials::IdentityToken("hunter2".into()).cache_key()
        );
    }
}
