//! API keys with scopes and per-key rate limits.
//!
//! Keys are configured by their SHA-256 hash only, one per line (`#` starts a comment), from
//! `--api-keys FILE` or the `INGOT_API_KEYS` environment variable (lines separated by newlines
//! or `;`):
//!
//! ```text
//! # NAME  SCOPES               SHA256(key) in hex                                                  [rate=R] [burst=B]
//! ci      predict              9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08  rate=50 burst=100
//! ops     predict,admin,metrics 60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752
//! ```
//!
//! (`printf %s "$KEY" | sha256sum` gives the hash.) A request presents its key as
//! `Authorization: Bearer KEY` or `x-api-key: KEY`; the presented key is hashed and compared with
//! every configured hash in constant time. `rate` is requests per second, `burst` the bucket
//! size (default: `rate`, at least 1).

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Predict and read model metadata.
    Predict,
    /// Reload, promote, roll back, change the canary.
    Admin,
    /// Read `/metrics`.
    Metrics,
}

impl Scope {
    fn bit(self) -> u8 {
        match self {
            Scope::Predict => 1,
            Scope::Admin => 2,
            Scope::Metrics => 4,
        }
    }

    /// The scope's name in key files.
    pub fn name(self) -> &'static str {
        match self {
            Scope::Predict => "predict",
            Scope::Admin => "admin",
            Scope::Metrics => "metrics",
        }
    }

    fn parse(s: &str) -> Option<Scope> {
        [Scope::Predict, Scope::Admin, Scope::Metrics].into_iter().find(|scope| scope.name() == s)
    }
}

/// A token bucket: `rate` tokens a second, at most `burst` saved.
#[derive(Debug)]
struct Bucket {
    rate: f64,
    burst: f64,
    state: Mutex<(f64, Instant)>,
}

impl Bucket {
    fn new(rate: f64, burst: f64) -> Bucket {
        Bucket { rate, burst, state: Mutex::new((burst, Instant::now())) }
    }

    /// Takes a token, or says how long until one is there.
    fn take(&self) -> Result<(), Duration> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        let (tokens, last) = *state;
        let tokens = (tokens + now.duration_since(last).as_secs_f64() * self.rate).min(self.burst);
        if tokens >= 1.0 {
            *state = (tokens - 1.0, now);
            Ok(())
        } else {
            *state = (tokens, now);
            Err(Duration::from_secs_f64((1.0 - tokens) / self.rate))
        }
    }
}

/// One configured key.
#[derive(Debug)]
pub struct ApiKey {
    /// Its name (in logs and errors; never the key).
    pub name: String,
    scopes: u8,
    hash: [u8; 32],
    bucket: Option<Bucket>,
}

impl ApiKey {
    /// Whether the key has `scope`.
    pub fn has(&self, scope: Scope) -> bool {
        self.scopes & scope.bit() != 0
    }
}

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denied {
    /// No key was presented (401).
    Missing,
    /// The key matches none configured (401).
    Invalid,
    /// The key lacks the scope (403).
    Forbidden {
        /// The key's name.
        key: String,
        /// The scope needed.
        scope: Scope,
    },
    /// The key's rate limit is spent (429).
    RateLimited {
        /// The key's name.
        key: String,
        /// When a token is next there.
        retry_after: Duration,
    },
}

/// The configured keys; with none, every request is let in and the admin API is off.
#[derive(Debug, Default)]
pub struct Auth {
    keys: Vec<ApiKey>,
}

impl Auth {
    /// Parses key lines (see the module documentation); `origin` names the source in errors.
    ///
    /// ```
    /// use ingot_server::auth::{Auth, Scope};
    /// let hash = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"; // sha256("test")
    /// let auth = Auth::parse(&format!("ci predict,metrics {hash} rate=10"), "INGOT_API_KEYS").unwrap();
    /// assert_eq!(auth.check(Some("test"), Scope::Predict).unwrap().name, "ci");
    /// assert!(auth.check(Some("test"), Scope::Admin).is_err());
    /// assert!(auth.check(Some("nope"), Scope::Predict).is_err());
    /// ```
    pub fn parse(text: &str, origin: &str) -> Result<Auth, String> {
        let mut keys = Vec::new();
        for (i, line) in text.split(['\n', ';']).enumerate() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let at = |what: &str| format!("{origin}: entry {}: {what}", i + 1);
            let fields: Vec<&str> = line.split_whitespace().collect();
            let [name, scopes, hash, options @ ..] = fields.as_slice() else {
                return Err(at("expected `NAME SCOPES SHA256HEX [rate=R] [burst=B]`"));
            };
            let mut bits = 0;
            for s in scopes.split(',') {
                bits |= Scope::parse(s)
                    .ok_or_else(|| at(&format!("unknown scope `{s}` (predict, admin, metrics)")))?
                    .bit();
            }
            let hash =
                parse_hash(hash).ok_or_else(|| at("the hash must be 64 hex digits (sha256 of the key)"))?;
            let (mut rate, mut burst) = (None, None);
            for option in options {
                let number = |v: &str| v.parse::<f64>().ok().filter(|x| x.is_finite() && *x > 0.0);
                match option.split_once('=') {
                    Some(("rate", v)) => {
                        rate = Some(number(v).ok_or_else(|| at("rate must be a positive number"))?)
                    }
                    Some(("burst", v)) => {
                        burst = Some(number(v).ok_or_else(|| at("burst must be a positive number"))?)
                    }
                    _ => return Err(at(&format!("unknown option `{option}` (rate=R, burst=B)"))),
                }
            }
            if burst.is_some() && rate.is_none() {
                return Err(at("burst needs a rate"));
            }
            let bucket = rate.map(|r| Bucket::new(r, burst.unwrap_or(r).max(1.0)));
            keys.push(ApiKey { name: (*name).to_owned(), scopes: bits, hash, bucket });
        }
        Ok(Auth { keys })
    }

    /// Whether any key is configured (if not, nothing is checked).
    pub fn enabled(&self) -> bool {
        !self.keys.is_empty()
    }

    /// Whether some key has `scope` (the admin API is served only then).
    pub fn any_with(&self, scope: Scope) -> bool {
        self.keys.iter().any(|k| k.has(scope))
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether no key is configured.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The key `presented` if it is configured, has `scope` and is within its rate limit.
    pub fn check(&self, presented: Option<&str>, scope: Scope) -> Result<&ApiKey, Denied> {
        let presented = presented.ok_or(Denied::Missing)?;
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        // Compare with every key, without stopping at a match.
        let mut found = None;
        for key in &self.keys {
            if bool::from(key.hash.ct_eq(&digest)) {
                found = Some(key);
            }
        }
        let key = found.ok_or(Denied::Invalid)?;
        if !key.has(scope) {
            return Err(Denied::Forbidden { key: key.name.clone(), scope });
        }
        if let Some(bucket) = &key.bucket {
            bucket
                .take()
                .map_err(|retry_after| Denied::RateLimited { key: key.name.clone(), retry_after })?;
        }
        Ok(key)
    }
}

fn parse_hash(hex: &str) -> Option<[u8; 32]> {
    let bytes = hex.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (o, pair) in out.iter_mut().zip(bytes.chunks_exact(2)) {
        let digit = |c: u8| (c as char).to_digit(16);
        *o = (digit(pair[0])? * 16 + digit(pair[1])?) as u8;
    }
    Some(out)
}

/// The key a request presents: `Authorization: Bearer KEY`, else `x-api-key: KEY`.
pub fn presented_key(headers: &axum::http::HeaderMap) -> Option<&str> {
    if let Some(value) = headers.get(axum::http::header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        let (scheme, token) = value.split_once(' ')?;
        return scheme.eq_ignore_ascii_case("bearer").then(|| token.trim());
    }
    headers.get("x-api-key").and_then(|v| v.to_str().ok()).map(str::trim)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEST_HASH: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

    #[test]
    fn parse_errors_name_the_entry() {
        let err = Auth::parse("a predict abc", "keys.txt").unwrap_err();
        assert!(err.contains("keys.txt: entry 1") && err.contains("64 hex"), "{err}");
        let err = Auth::parse(&format!("# c\n\nb read {TEST_HASH}"), "keys.txt").unwrap_err();
        assert!(err.contains("entry 3") && err.contains("unknown scope `read`"), "{err}");
        let err = Auth::parse(&format!("b predict {TEST_HASH} burst=3"), "k").unwrap_err();
        assert!(err.contains("burst needs a rate"), "{err}");
        assert_eq!(
            Auth::parse(&format!("a predict {TEST_HASH}; b admin {TEST_HASH}"), "k").unwrap().len(),
            2
        );
    }

    #[test]
    fn rate_limit_refuses_past_the_burst() {
        let auth = Auth::parse(&format!("ci predict {TEST_HASH} rate=1 burst=2"), "k").unwrap();
        assert!(auth.check(Some("test"), Scope::Predict).is_ok());
        assert!(auth.check(Some("test"), Scope::Predict).is_ok());
        match auth.check(Some("test"), Scope::Predict) {
            Err(Denied::RateLimited { key, retry_after }) => {
                assert_eq!(key, "ci");
                assert!(retry_after > Duration::from_millis(500) && retry_after <= Duration::from_secs(1));
            }
            other => panic!("expected a rate limit, got {other:?}"),
        }
    }

    #[test]
    fn keys_are_read_from_either_header() {
        let mut headers = axum::http::HeaderMap::new();
        headers.insert("authorization", "Bearer abc".parse().unwrap());
        assert_eq!(presented_key(&headers), Some("abc"));
        headers.clear();
        headers.insert("x-api-key", "xyz".parse().unwrap());
        assert_eq!(presented_key(&headers), Some("xyz"));
        headers.insert("authorization", "Basic abc".parse().unwrap());
        assert_eq!(presented_key(&headers), None);
    }
}
