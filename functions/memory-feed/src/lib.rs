//! The memory feed: `GET /v1/memories` (the caller's memories, newest first, keyset
//! paginated) and `GET /v1/memories/{id}` (one memory with a short-lived presigned GET
//! URL for its object).
//!
//! The caller is the JWT `sub` and nothing else; it is resolved to a `users` row inside
//! each query, so a caller without a row simply owns nothing (an empty feed, a 404).

use std::time::Duration;

use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use aws_sdk_s3::presigning::PresigningConfig;
use encache_shared::ApiError;
use encache_shared::config::{ConfigError, Env};
use encache_shared::db::bounded;
use encache_shared::http::{Caller, error_response, path_uuid, query_param, request_id, respond};
use encache_shared::pagination::{CursorScope, CursorSigner, Keyset, Page, PageRequest};
use lambda_runtime::{Error, LambdaEvent};
use serde::Serialize;
use sqlx::PgPool;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use time::macros::datetime;
use uuid::Uuid;

pub const LIST_ROUTE: &str = "GET /v1/memories";
pub const GET_ROUTE: &str = "GET /v1/memories/{id}";

/// The statuses a memory can be in; the feed shows `ready` unless asked otherwise.
pub const STATUSES: [&str; 4] = ["pending", "ready", "failed", "expired"];

#[derive(Debug, Clone)]
pub struct Settings {
    /// The bucket the memories' objects live in (`UPLOAD_BUCKET_NAME`).
    pub bucket: String,
    /// How long a download URL stays valid (`DOWNLOAD_URL_TTL_SECONDS`, 1..=3600).
    pub download_ttl: Duration,
    /// The most the database may take per request (`FEED_DB_TIMEOUT_MS`): a clear 503
    /// well inside the function timeout.
    pub db_timeout: Duration,
}

impl Settings {
    pub fn from_env(env: &Env<'_>) -> Result<Self, ConfigError> {
        let ttl: u64 = env.parsed("DOWNLOAD_URL_TTL_SECONDS", 300)?;
        if !(1..=3600).contains(&ttl) {
            return Err(ConfigError::Invalid {
                name: "DOWNLOAD_URL_TTL_SECONDS".into(),
                reason: "must be from 1 to 3600".into(),
            });
        }
        Ok(Self {
            bucket: env.required("UPLOAD_BUCKET_NAME")?,
            download_ttl: Duration::from_secs(ttl),
            db_timeout: env.millis("FEED_DB_TIMEOUT_MS", Duration::from_secs(3))?,
        })
    }
}

/// What the handler needs, built once per container.
pub struct Deps {
    pub pool: PgPool,
    pub s3: aws_sdk_s3::Client,
    pub cursors: CursorSigner,
    pub settings: Settings,
}

/// One memory as the feed shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MemoryItem {
    pub id: Uuid,
    pub status: String,
    pub title: Option<String>,
    pub file_name: Option<String>,
    /// What S3 reported once the upload completed, else what the client declared.
    pub content_type: String,
    pub size_bytes: i64,
    #[serde(with = "time::serde::rfc3339::option")]
    pub captured_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub completed_at: Option<OffsetDateTime>,
}

/// One memory with a way to download it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MemoryDetail {
    #[serde(flatten)]
    pub memory: MemoryItem,
    pub status_reason: Option<String>,
    /// A presigned GET for the object; only for `ready` memories.
    pub download_url: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub download_expires_at: Option<OffsetDateTime>,
}

/// The filters of a feed request, all bound into its cursor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedFilter {
    pub status: String,
    /// Only memories created strictly before this instant.
    pub before: Option<OffsetDateTime>,
    /// Only memories created strictly after this instant.
    pub after: Option<OffsetDateTime>,
}

impl FeedFilter {
    pub fn from_query(req: &ApiGatewayV2httpRequest) -> Result<Self, ApiError> {
        let status = match query_param(req, "status") {
            None => "ready".to_owned(),
            Some(s) if STATUSES.contains(&s) => s.to_owned(),
            Some(_) => {
                return Err(ApiError::invalid_field(
                    "status",
                    "must be one of pending, ready, failed, expired",
                ));
            }
        };
        let before = time_param(req, "before")?;
        let after = time_param(req, "after")?;
        if let (Some(b), Some(a)) = (before, after)
            && a >= b
        {
            return Err(ApiError::invalid_field(
                "after",
                "must be earlier than before",
            ));
        }
        Ok(Self {
            status,
            before,
            after,
        })
    }

    /// What a cursor of this feed is bound to: the route, the caller and these filters.
    pub fn scope(&self, sub: &str) -> CursorScope {
        let stamp = |t: Option<OffsetDateTime>| {
            t.map(|t| (t.unix_timestamp_nanos() / 1_000).to_string())
                .unwrap_or_default()
        };
        CursorScope::new(LIST_ROUTE, sub)
            .filter("status", &self.status)
            .filter("before", stamp(self.before))
            .filter("after", stamp(self.after))
    }
}

fn time_param(
    req: &ApiGatewayV2httpRequest,
    name: &str,
) -> Result<Option<OffsetDateTime>, ApiError> {
    query_param(req, name)
        .map(|raw| {
            OffsetDateTime::parse(raw, &Rfc3339)
                .map_err(|_| ApiError::invalid_field(name, "must be an RFC 3339 timestamp"))
        })
        .transpose()
}

/// The Lambda entry point: routes by the gateway's route key, answers every outcome
/// (errors included) as an HTTP response.
pub async fn handle(
    event: LambdaEvent<ApiGatewayV2httpRequest>,
    deps: &Deps,
) -> Result<ApiGatewayV2httpResponse, Error> {
    let req = &event.payload;
    let rid = request_id(req);
    Ok(match route(req) {
        Some(Route::List) => respond(list(req, deps).await.map(|page| (200, page)), rid),
        Some(Route::Get) => respond(get(req, deps).await.map(|memory| (200, memory)), rid),
        None => error_response(&ApiError::not_found("route"), rid),
    })
}

enum Route {
    List,
    Get,
}

fn route(req: &ApiGatewayV2httpRequest) -> Option<Route> {
    match req.route_key.as_deref() {
        Some(LIST_ROUTE) => Some(Route::List),
        Some(GET_ROUTE) => Some(Route::Get),
        _ => None,
    }
}

/// `GET /v1/memories?limit&cursor&status&before&after`.
pub async fn list(
    req: &ApiGatewayV2httpRequest,
    deps: &Deps,
) -> Result<Page<MemoryItem>, ApiError> {
    let caller = Caller::from_request(req)?;
    let filter = FeedFilter::from_query(req)?;
    let scope = filter.scope(&caller.sub);
    let page = PageRequest::from_query(req, &deps.cursors, &scope)?;
    let rows = bounded(
        deps.settings.db_timeout,
        fetch_page(&deps.pool, &caller.sub, &filter, page),
    )
    .await?;
    Ok(Page::from_rows(
        rows,
        page,
        |m| Keyset {
            time: m.created_at,
            id: m.id,
        },
        &deps.cursors,
        &scope,
    ))
}

/// Far enough out that no row is beyond it, near enough that both PostgreSQL and `time`
/// represent it: the open ends of the `before`/`after` range.
const EARLIEST: OffsetDateTime = datetime!(0001-01-01 0:00 UTC);

/// One page of the feed, `limit + 1` rows, on the (user_id, status, created_at, id) index.
pub async fn fetch_page(
    pool: &PgPool,
    sub: &str,
    filter: &FeedFilter,
    page: PageRequest,
) -> Result<Vec<MemoryItem>, sqlx::Error> {
    sqlx::query_as!(
        MemoryItem,
        r#"
        SELECT m.id, m.status, m.title, m.file_name,
               COALESCE(m.actual_content_type, m.declared_content_type) AS "content_type!",
               COALESCE(m.actual_size_bytes, m.declared_size_bytes) AS "size_bytes!",
               m.captured_at, m.created_at, m.completed_at
        FROM memories m
        WHERE m.user_id = (SELECT u.id FROM users u WHERE u.cognito_sub = $1)
          AND m.status = $2
          AND (m.created_at, m.id) < ($3, $4)
          AND m.created_at < $5
          AND m.created_at > $6
        ORDER BY m.created_at DESC, m.id DESC
        LIMIT $7
        "#,
        sub,
        filter.status,
        page.after.time,
        page.after.id,
        filter.before.unwrap_or(Keyset::TOP.time),
        filter.after.unwrap_or(EARLIEST),
        page.fetch_limit(),
    )
    .fetch_all(pool)
    .await
}

/// `GET /v1/memories/{id}`: another user's memory is a 404, exactly like a missing one.
pub async fn get(req: &ApiGatewayV2httpRequest, deps: &Deps) -> Result<MemoryDetail, ApiError> {
    let caller = Caller::from_request(req)?;
    let id = path_uuid(req, "id")?;
    let row = bounded(deps.settings.db_timeout, async {
        sqlx::query!(
            r#"
            SELECT m.id, m.status, m.title, m.file_name, m.s3_key, m.status_reason,
                   COALESCE(m.actual_content_type, m.declared_content_type) AS "content_type!",
                   COALESCE(m.actual_size_bytes, m.declared_size_bytes) AS "size_bytes!",
                   m.captured_at, m.created_at, m.completed_at
            FROM memories m
            JOIN users u ON u.id = m.user_id
            WHERE m.id = $1 AND u.cognito_sub = $2
            "#,
            id,
            caller.sub,
        )
        .fetch_optional(&deps.pool)
        .await
    })
    .await?
    .ok_or_else(|| ApiError::not_found("memory"))?;

    let (download_url, download_expires_at) = if row.status == "ready" {
        let (url, expires) = presign_download(deps, &row.s3_key).await?;
        (Some(url), Some(expires))
    } else {
        (None, None)
    };
    Ok(MemoryDetail {
        memory: MemoryItem {
            id: row.id,
            status: row.status,
            title: row.title,
            file_name: row.file_name,
            content_type: row.content_type,
            size_bytes: row.size_bytes,
            captured_at: row.captured_at,
            created_at: row.created_at,
            completed_at: row.completed_at,
        },
        status_reason: row.status_reason,
        download_url,
        download_expires_at,
    })
}

/// Signs a GET for the object locally (no call to S3).
async fn presign_download(deps: &Deps, key: &str) -> Result<(String, OffsetDateTime), ApiError> {
    use anyhow::Context;
    let ttl = deps.settings.download_ttl;
    let config = PresigningConfig::expires_in(ttl).context("download URL lifetime")?;
    let expires_at = OffsetDateTime::now_utc() + ttl;
    let request = deps
        .s3
        .get_object()
        .bucket(&deps.settings.bucket)
        .key(key)
        .presigned(config)
        .await
        .context("presigning the download URL")?;
    Ok((request.uri().to_owned(), expires_at))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k: &str| {
            pairs
                .iter()
                .find(|(name, _)| *name == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn settings_need_the_bucket_and_default_to_a_five_minute_download_url() {
        let src = env_of(&[("UPLOAD_BUCKET_NAME", "encache-dev-uploads")]);
        let settings = Settings::from_env(&Env::new(&src)).unwrap();
        assert_eq!(settings.bucket, "encache-dev-uploads");
        assert_eq!(settings.download_ttl, Duration::from_secs(300));

        let none = env_of(&[]);
        assert_eq!(
            Settings::from_env(&Env::new(&none)).unwrap_err(),
            ConfigError::Missing("UPLOAD_BUCKET_NAME".into())
        );
    }

    #[test]
    fn a_download_url_lifetime_over_an_hour_is_refused() {
        let src = env_of(&[
            ("UPLOAD_BUCKET_NAME", "b"),
            ("DOWNLOAD_URL_TTL_SECONDS", "86400"),
        ]);
        assert!(Settings::from_env(&Env::new(&src)).is_err());
    }
}
