//! Keyset pagination, shared by every feed.
//!
//! A feed is read newest first on a `(sort time, id)` key. A page request carries a
//! `limit` (default 20, 1..=100; anything else is a 400, never clamped) and an optional
//! `cursor`. The cursor is opaque to clients: base64url of the last key it returned,
//! followed by an HMAC-SHA256 tag over that key *and* the cursor's scope (the route, the
//! caller and the filters). A cursor that was altered, minted for someone else, for
//! another route or for other filters, or that is not a cursor at all, is a 400
//! `invalid_cursor`: the tag does not verify, and the reason is deliberately not told.
//!
//! The signing key comes from configuration: `CURSOR_SIGNING_KEY` (a value, for local
//! runs) or `CURSOR_KEY_PARAMETER` (the name of an SSM SecureString, in AWS).

use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::Sha256;
use time::OffsetDateTime;
use time::macros::datetime;
use uuid::Uuid;

use crate::aws::SecretCache;
use crate::config::{ConfigError, Env, Secret};
use crate::error::ApiError;
use crate::http::query_param;

pub const DEFAULT_LIMIT: i64 = 20;
pub const MAX_LIMIT: i64 = 100;
/// Shorter keys are refused at cold start: an HMAC is only as strong as its key.
pub const MIN_KEY_BYTES: usize = 32;

const VERSION: u8 = 1;
const KEY_BYTES: usize = 1 + 8 + 16;
const TAG_BYTES: usize = 32;

type HmacSha256 = Hmac<Sha256>;

/// `limit`: absent → 20; an integer 1..=100 → itself; anything else → 400.
pub fn parse_limit(raw: Option<&str>) -> Result<i64, ApiError> {
    let Some(raw) = raw else {
        return Ok(DEFAULT_LIMIT);
    };
    match raw.trim().parse::<i64>() {
        Ok(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        _ => Err(ApiError::invalid_field(
            "limit",
            format!("must be an integer from 1 to {MAX_LIMIT}"),
        )),
    }
}

/// A position in a newest-first feed: the sort time and id of the last item returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keyset {
    pub time: OffsetDateTime,
    pub id: Uuid,
}

impl Keyset {
    /// Above every real row, so `(time, id) < TOP` holds for all of them: where a walk
    /// starts. A constant (not NULL) keeps the feed query one index range scan.
    pub const TOP: Keyset = Keyset {
        time: datetime!(9999-12-31 23:59:59.999999 UTC),
        id: Uuid::max(),
    };

    fn to_bytes(self) -> [u8; KEY_BYTES] {
        // PostgreSQL keeps microseconds, so they round-trip exactly.
        let micros = (self.time.unix_timestamp_nanos() / 1_000) as i64;
        let mut out = [0u8; KEY_BYTES];
        out[0] = VERSION;
        out[1..9].copy_from_slice(&micros.to_be_bytes());
        out[9..].copy_from_slice(self.id.as_bytes());
        out
    }

    fn from_bytes(bytes: &[u8]) -> Option<Self> {
        if bytes.len() != KEY_BYTES || bytes[0] != VERSION {
            return None;
        }
        let micros = i64::from_be_bytes(bytes[1..9].try_into().ok()?);
        let time = OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1_000).ok()?;
        let id = Uuid::from_slice(&bytes[9..]).ok()?;
        Some(Self { time, id })
    }
}

/// What a cursor is bound to: the route, the caller and every filter of the request.
/// Parts are length-prefixed, so no two different scopes serialize alike.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CursorScope {
    bytes: Vec<u8>,
}

impl CursorScope {
    /// `route` is the gateway's route key, e.g. `GET /v1/memories`; `caller` the JWT `sub`.
    pub fn new(route: &str, caller: &str) -> Self {
        let mut scope = Self { bytes: Vec::new() };
        scope.push(route);
        scope.push(caller);
        scope
    }

    /// Binds one filter; an absent filter should still be bound (as `""`), so that a
    /// cursor minted without it does not fit a request with it.
    pub fn filter(mut self, name: &str, value: impl std::fmt::Display) -> Self {
        self.push(name);
        self.push(&value.to_string());
        self
    }

    fn push(&mut self, part: &str) {
        self.bytes
            .extend_from_slice(&(part.len() as u32).to_be_bytes());
        self.bytes.extend_from_slice(part.as_bytes());
    }
}

/// Where the signing key comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CursorKeySource {
    /// `CURSOR_SIGNING_KEY`: the key itself (local runs and tests).
    Value(Secret<String>),
    /// `CURSOR_KEY_PARAMETER`: the name of the SSM SecureString that holds it (AWS).
    Parameter(String),
}

impl CursorKeySource {
    pub fn from_env(env: &Env<'_>) -> Result<Self, ConfigError> {
        if let Some(value) = env.optional("CURSOR_SIGNING_KEY") {
            return Ok(Self::Value(Secret::new(value)));
        }
        match env.optional("CURSOR_KEY_PARAMETER") {
            Some(name) => Ok(Self::Parameter(name)),
            None => Err(ConfigError::Missing(
                "CURSOR_KEY_PARAMETER (or CURSOR_SIGNING_KEY)".into(),
            )),
        }
    }
}

/// Mints and checks cursors with one key.
/// A feed's cursor signer, keyed on first use: the key may be an SSM SecureString, read
/// then (not during init) for the reasons given on `shared::db::Database`.
pub struct Cursors {
    signer: tokio::sync::OnceCell<CursorSigner>,
    source: Option<(String, SecretCache)>,
}

impl Cursors {
    /// No I/O: a key in the environment is checked now; a parameter name is kept for later.
    pub fn from_env(env: &Env<'_>, secrets: &SecretCache) -> Result<Self, ConfigError> {
        Ok(match CursorKeySource::from_env(env)? {
            CursorKeySource::Value(key) => CursorSigner::new(&key)?.into(),
            CursorKeySource::Parameter(name) => Self {
                signer: tokio::sync::OnceCell::new(),
                source: Some((name, secrets.clone())),
            },
        })
    }

    /// The signer, reading its key on the first call. SSM out of reach is a 503; a key in
    /// SSM too short to sign with is a deployment error (500, logged, never echoed).
    pub async fn signer(&self) -> Result<&CursorSigner, ApiError> {
        // Boxed for the same reason as `Database::pool`: the SSM call is a deep future.
        type Init<'a> = std::pin::Pin<
            Box<dyn std::future::Future<Output = Result<CursorSigner, ApiError>> + Send + 'a>,
        >;
        self.signer
            .get_or_try_init(|| -> Init<'_> {
                Box::pin(async {
                    let (name, secrets) = self.source.as_ref().ok_or_else(|| {
                        ApiError::Unexpected(anyhow::anyhow!("no cursor key source"))
                    })?;
                    let key = secrets.get(name).await.map_err(|e| {
                        tracing::warn!(error = format!("{e:#}"), "cursor key unavailable");
                        ApiError::Unavailable("cursor signing key unavailable".into())
                    })?;
                    CursorSigner::new(&key).map_err(|e| ApiError::Unexpected(e.into()))
                })
            })
            .await
    }
}

#[cfg(feature = "db")]
impl Cursors {
    /// A feed's first request: the cursor key and the database (its password, both may be
    /// SSM reads, and its first connection: [`Database::pool`](crate::db::Database::pool))
    /// side by side, one round trip of latency instead of two, bounded by `limit` so
    /// a hung SSM call is a 503, not a function timeout. Cached after that.
    pub async fn ready_with(
        &self,
        db: &crate::db::Database,
        limit: std::time::Duration,
    ) -> Result<&CursorSigner, ApiError> {
        // The database first: its connection is under way (or its password read is, which
        // builds the SSM client) before the key's read starts.
        let both = async {
            tokio::try_join!(
                async { db.pool().await.map_err(ApiError::from) },
                self.signer()
            )
        };
        match tokio::time::timeout(limit, both).await {
            Ok(result) => Ok(result?.1),
            Err(_) => Err(ApiError::Unavailable(
                "the feed's secrets did not load in time".into(),
            )),
        }
    }
}

impl From<CursorSigner> for Cursors {
    fn from(signer: CursorSigner) -> Self {
        Self {
            signer: tokio::sync::OnceCell::new_with(Some(signer)),
            source: None,
        }
    }
}

#[derive(Clone)]
pub struct CursorSigner {
    /// Keyed once at cold start; each cursor clones it (no re-keying per request).
    mac: HmacSha256,
}

impl std::fmt::Debug for CursorSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CursorSigner([redacted])")
    }
}

impl CursorSigner {
    pub fn new(key: &Secret<String>) -> Result<Self, ConfigError> {
        let bytes = key.expose().as_bytes().to_vec();
        if bytes.len() < MIN_KEY_BYTES {
            return Err(ConfigError::Invalid {
                name: "cursor signing key".into(),
                reason: format!("must be at least {MIN_KEY_BYTES} bytes"),
            });
        }
        Ok(Self {
            mac: HmacSha256::new_from_slice(&bytes).expect("HMAC accepts keys of any size"),
        })
    }

    fn tag(&self, scope: &CursorScope, key: &[u8]) -> HmacSha256 {
        let mut mac = self.mac.clone();
        mac.update(b"encache-cursor");
        mac.update(&scope.bytes);
        mac.update(key);
        mac
    }

    pub fn encode(&self, scope: &CursorScope, at: Keyset) -> String {
        let key = at.to_bytes();
        let tag = self.tag(scope, &key).finalize().into_bytes();
        let mut raw = Vec::with_capacity(KEY_BYTES + TAG_BYTES);
        raw.extend_from_slice(&key);
        raw.extend_from_slice(&tag);
        URL_SAFE_NO_PAD.encode(raw)
    }

    /// The position a cursor stands for, if this signer minted it for this scope.
    pub fn decode(&self, scope: &CursorScope, cursor: &str) -> Result<Keyset, ApiError> {
        let invalid = || ApiError::bad_request("invalid_cursor", "cursor is invalid or expired");
        let raw = URL_SAFE_NO_PAD
            .decode(cursor.trim())
            .map_err(|_| invalid())?;
        if raw.len() != KEY_BYTES + TAG_BYTES {
            return Err(invalid());
        }
        let (key, tag) = raw.split_at(KEY_BYTES);
        // verify_slice compares in constant time.
        self.tag(scope, key)
            .verify_slice(tag)
            .map_err(|_| invalid())?;
        Keyset::from_bytes(key).ok_or_else(invalid)
    }
}

/// A parsed page request: how many items, and after which position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    pub limit: i64,
    /// [`Keyset::TOP`] on the first page.
    pub after: Keyset,
}

impl PageRequest {
    /// Reads `limit` and `cursor` from the query string; the cursor must fit `scope`.
    pub fn from_query(
        req: &ApiGatewayV2httpRequest,
        signer: &CursorSigner,
        scope: &CursorScope,
    ) -> Result<Self, ApiError> {
        let limit = parse_limit(query_param(req, "limit").as_deref())?;
        let after = match query_param(req, "cursor") {
            None => Keyset::TOP,
            Some(cursor) => signer.decode(scope, &cursor)?,
        };
        Ok(Self { limit, after })
    }

    /// Rows to fetch: one more than the page, to know whether another page follows.
    pub fn fetch_limit(&self) -> i64 {
        self.limit + 1
    }
}

/// The body of every feed response: `{"items": [...], "next_cursor": string|null}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// Builds a page from up to `limit + 1` rows fetched in feed order: the extra row
    /// only says that more follow, and `next_cursor` is null exactly at the end.
    pub fn from_rows(
        mut rows: Vec<T>,
        request: PageRequest,
        key_of: impl Fn(&T) -> Keyset,
        signer: &CursorSigner,
        scope: &CursorScope,
    ) -> Self {
        let limit = usize::try_from(request.limit).unwrap_or(usize::MAX);
        let next_cursor = if rows.len() > limit {
            rows.truncate(limit);
            rows.last().map(|last| signer.encode(scope, key_of(last)))
        } else {
            None
        };
        Self {
            items: rows,
            next_cursor,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer() -> CursorSigner {
        CursorSigner::new(&Secret::new("k".repeat(MIN_KEY_BYTES))).unwrap()
    }

    fn scope() -> CursorScope {
        CursorScope::new("GET /v1/memories", "sub-a").filter("status", "ready")
    }

    fn position() -> Keyset {
        Keyset {
            time: datetime!(2026-11-21 15:08:21.123456 UTC),
            id: Uuid::from_u128(0x1234_5678_9abc_def0_1234_5678_9abc_def0),
        }
    }

    fn assert_invalid_cursor(result: Result<Keyset, ApiError>) {
        let err = result.expect_err("cursor should be rejected");
        assert_eq!((err.status(), err.code()), (400, "invalid_cursor"));
    }

    #[test]
    fn limit_defaults_to_twenty() {
        assert_eq!(parse_limit(None).unwrap(), 20);
    }

    #[test]
    fn limit_accepts_one_to_one_hundred() {
        for n in 1..=100 {
            assert_eq!(parse_limit(Some(&n.to_string())).unwrap(), n);
        }
    }

    #[test]
    fn limit_outside_its_range_or_not_a_number_is_a_400_not_clamped() {
        for raw in [
            "0",
            "-1",
            "101",
            "1000",
            "",
            " ",
            "abc",
            "1.5",
            "20x",
            "1e2",
            "99999999999999999999",
        ] {
            let err = parse_limit(Some(raw)).expect_err(raw);
            assert_eq!(err.status(), 400, "{raw}");
            assert!(err.to_string().starts_with("limit:"), "{err}");
        }
    }

    #[test]
    fn a_cursor_round_trips_to_the_same_position() {
        let cursor = signer().encode(&scope(), position());
        assert_eq!(signer().decode(&scope(), &cursor).unwrap(), position());
    }

    #[test]
    fn a_cursor_is_url_safe_and_opaque() {
        let cursor = signer().encode(&scope(), position());
        assert!(
            cursor
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
            "{cursor}"
        );
        assert!(!cursor.contains(&position().id.to_string()));
    }

    #[test]
    fn a_tampered_cursor_is_rejected() {
        let cursor = signer().encode(&scope(), position());
        let mut raw = URL_SAFE_NO_PAD.decode(&cursor).unwrap();
        for i in 0..raw.len() {
            raw[i] ^= 0x01;
            assert_invalid_cursor(signer().decode(&scope(), &URL_SAFE_NO_PAD.encode(&raw)));
            raw[i] ^= 0x01;
        }
    }

    #[test]
    fn a_cursor_for_another_caller_route_or_filter_is_rejected() {
        let cursor = signer().encode(&scope(), position());
        let others = [
            CursorScope::new("GET /v1/memories", "sub-b").filter("status", "ready"),
            CursorScope::new("GET /v1/conversations", "sub-a").filter("status", "ready"),
            CursorScope::new("GET /v1/memories", "sub-a").filter("status", "failed"),
            CursorScope::new("GET /v1/memories", "sub-a"),
            // Length prefixes keep "a"+"bc" and "ab"+"c" apart.
            CursorScope::new("GET /v1/memories", "sub-").filter("astatus", "ready"),
        ];
        for other in others {
            assert_invalid_cursor(signer().decode(&other, &cursor));
        }
    }

    #[test]
    fn a_cursor_signed_with_another_key_is_rejected() {
        let other = CursorSigner::new(&Secret::new("z".repeat(MIN_KEY_BYTES))).unwrap();
        let cursor = other.encode(&scope(), position());
        assert_invalid_cursor(signer().decode(&scope(), &cursor));
    }

    #[test]
    fn garbage_is_rejected_as_an_invalid_cursor() {
        let good = signer().encode(&scope(), position());
        for raw in [
            "",
            "x",
            "not a cursor!",
            "%%%",
            "AAAA",
            &good[..good.len() - 1],
            &format!("{good}A"),
            &"A".repeat(76),
        ] {
            assert_invalid_cursor(signer().decode(&scope(), raw));
        }
    }

    #[test]
    fn short_keys_are_refused() {
        assert!(CursorSigner::new(&Secret::new("short".into())).is_err());
    }

    #[test]
    fn the_key_source_prefers_a_direct_value_and_otherwise_names_the_parameter() {
        let direct = |k: &str| match k {
            "CURSOR_SIGNING_KEY" => Some("v".repeat(40)),
            "CURSOR_KEY_PARAMETER" => Some("/encache/dev/api/cursor-key".into()),
            _ => None,
        };
        assert!(matches!(
            CursorKeySource::from_env(&Env::new(&direct)).unwrap(),
            CursorKeySource::Value(_)
        ));
        let ssm = |k: &str| (k == "CURSOR_KEY_PARAMETER").then(|| "/p".to_string());
        assert_eq!(
            CursorKeySource::from_env(&Env::new(&ssm)).unwrap(),
            CursorKeySource::Parameter("/p".into())
        );
        let none = |_: &str| None;
        assert!(CursorKeySource::from_env(&Env::new(&none)).is_err());
    }

    #[test]
    fn a_page_with_an_extra_row_has_a_cursor_at_its_last_item_and_the_last_page_has_none() {
        let rows: Vec<Keyset> = (0..4u128)
            .map(|i| Keyset {
                time: position().time,
                id: Uuid::from_u128(10 - i),
            })
            .collect();
        let request = PageRequest {
            limit: 3,
            after: Keyset::TOP,
        };
        let page = Page::from_rows(rows.clone(), request, |k| *k, &signer(), &scope());
        assert_eq!(page.items, rows[..3]);
        let next = page.next_cursor.expect("more rows follow");
        assert_eq!(signer().decode(&scope(), &next).unwrap(), rows[2]);

        let last = Page::from_rows(rows[..3].to_vec(), request, |k| *k, &signer(), &scope());
        assert_eq!(last.items.len(), 3);
        assert_eq!(last.next_cursor, None);
    }

    #[test]
    fn top_sorts_above_any_real_position() {
        let now = OffsetDateTime::now_utc();
        assert!(Keyset::TOP.time > now);
        assert_eq!(Keyset::TOP.id, Uuid::max());
    }
}
