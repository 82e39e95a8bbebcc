//! The HTTP API's JWT authorizer, enforced as API Gateway does: RS256 only, the key chosen
//! by `kid` from the issuer's JWKS (cached), `iss` equal to the issuer, `aud` in the
//! audience or (without `aud`) `client_id` in it, `exp` in the future, `nbf`/`iat` past.
//! Accepted claims reach the function as strings, the way AWS sends them.

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;
use tokio::sync::Mutex;

/// API Gateway caches a JWKS for up to two hours.
const JWKS_TTL: Duration = Duration::from_secs(2 * 60 * 60);
/// An unknown `kid` refetches the JWKS at most this often (key rotation without a storm).
const REFETCH_AFTER: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtSettings {
    pub issuer: String,
    pub audience: Vec<String>,
    pub jwks_url: String,
}

/// Why a token was refused (logged; the client only ever sees 401 Unauthorized).
#[derive(Debug, thiserror::Error)]
pub enum Rejected {
    #[error("no Authorization header")]
    Missing,
    #[error("the token's header is not a JWT header: {0}")]
    BadHeader(String),
    #[error("algorithm {0:?} is not RS256")]
    Algorithm(Algorithm),
    #[error("the token has no kid")]
    NoKid,
    #[error("kid {0} is not in the issuer's JWKS")]
    UnknownKid(String),
    #[error("the JWKS could not be fetched: {0}")]
    Jwks(String),
    #[error("the token is invalid: {0}")]
    Invalid(String),
    #[error("neither aud nor client_id matches the audience")]
    Audience,
}

/// Claims of an accepted token: strings for the event, and the scopes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Accepted {
    pub claims: HashMap<String, String>,
    pub scopes: Option<Vec<String>>,
}

pub struct JwtAuthorizer {
    pub settings: JwtSettings,
    http: reqwest::Client,
    keys: Mutex<KeyCache>,
    /// Keys known besides the JWKS: the local issuer's (`encache-local user token`), which
    /// signs for the same Cognito issuer string as the emulator.
    local_keys: HashMap<String, DecodingKey>,
}

#[derive(Default)]
struct KeyCache {
    fetched_at: Option<Instant>,
    keys: HashMap<String, DecodingKey>,
}

impl JwtAuthorizer {
    pub fn new(settings: JwtSettings) -> Self {
        Self {
            settings,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .expect("a plain reqwest client builds"),
            keys: Mutex::new(KeyCache::default()),
            local_keys: HashMap::new(),
        }
    }

    /// Also accepts tokens signed by `key` (by `kid`); every other rule is unchanged.
    pub fn with_local_key(mut self, kid: String, key: DecodingKey) -> Self {
        self.local_keys.insert(kid, key);
        self
    }

    /// Checks the identity source (the `Authorization` header value).
    pub async fn authorize(&self, authorization: Option<&str>) -> Result<Accepted, Rejected> {
        let raw = authorization
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .ok_or(Rejected::Missing)?;
        let token = strip_bearer(raw);
        let header =
            jsonwebtoken::decode_header(token).map_err(|e| Rejected::BadHeader(e.to_string()))?;
        if header.alg != Algorithm::RS256 {
            return Err(Rejected::Algorithm(header.alg));
        }
        let kid = header.kid.ok_or(Rejected::NoKid)?;
        let key = self.key(&kid).await?;

        let mut validation = Validation::new(Algorithm::RS256);
        validation.leeway = 0;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.validate_aud = false;
        validation.set_issuer(&[self.settings.issuer.as_str()]);
        validation.set_required_spec_claims(&["exp", "iss"]);
        let data = jsonwebtoken::decode::<serde_json::Map<String, Value>>(token, &key, &validation)
            .map_err(|e| Rejected::Invalid(e.to_string()))?;
        let claims = data.claims;

        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        if let Some(iat) = claims.get("iat").and_then(Value::as_u64)
            && iat > now
        {
            return Err(Rejected::Invalid("iat is in the future".into()));
        }
        let audience_ok = match claims.get("aud") {
            Some(Value::String(a)) => self.settings.audience.contains(a),
            Some(Value::Array(list)) => list
                .iter()
                .filter_map(Value::as_str)
                .any(|a| self.settings.audience.iter().any(|x| x == a)),
            _ => claims
                .get("client_id")
                .and_then(Value::as_str)
                .is_some_and(|c| self.settings.audience.iter().any(|x| x == c)),
        };
        if !audience_ok {
            return Err(Rejected::Audience);
        }
        let scopes = claims
            .get("scope")
            .and_then(Value::as_str)
            .map(|s| s.split_whitespace().map(str::to_owned).collect());
        Ok(Accepted {
            claims: claims
                .iter()
                .map(|(k, v)| (k.clone(), claim_string(v)))
                .collect(),
            scopes,
        })
    }

    async fn key(&self, kid: &str) -> Result<DecodingKey, Rejected> {
        if let Some(key) = self.local_keys.get(kid) {
            return Ok(key.clone());
        }
        let mut cache = self.keys.lock().await;
        let stale = cache.fetched_at.is_none_or(|t| t.elapsed() > JWKS_TTL);
        let may_refetch = cache.fetched_at.is_none_or(|t| t.elapsed() > REFETCH_AFTER);
        if stale || (!cache.keys.contains_key(kid) && may_refetch) {
            cache.keys = self.fetch().await?;
            cache.fetched_at = Some(Instant::now());
        }
        cache
            .keys
            .get(kid)
            .cloned()
            .ok_or_else(|| Rejected::UnknownKid(kid.to_owned()))
    }

    async fn fetch(&self) -> Result<HashMap<String, DecodingKey>, Rejected> {
        let url = &self.settings.jwks_url;
        let set: JwkSet = self
            .http
            .get(url)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| Rejected::Jwks(format!("{url}: {e}")))?
            .json()
            .await
            .map_err(|e| Rejected::Jwks(format!("{url}: {e}")))?;
        Ok(set
            .keys
            .iter()
            .filter_map(|jwk| {
                let kid = jwk.common.key_id.clone()?;
                DecodingKey::from_jwk(jwk).ok().map(|k| (kid, k))
            })
            .collect())
    }
}

fn strip_bearer(raw: &str) -> &str {
    match raw.get(..7) {
        Some(p) if p.eq_ignore_ascii_case("bearer ") => raw[7..].trim(),
        _ => raw,
    }
}

/// A claim as API Gateway writes it: strings as is, arrays as `[a b]`, numbers as text.
pub fn claim_string(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(claim_string).collect::<Vec<_>>().join(" ")
        ),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}
