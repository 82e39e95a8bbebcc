//! The two reads of the feed: a page of the caller's memories ([`list`]) and one memory
//! with a way to download it ([`get`]), with the filters and bodies they share.

use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use aws_sdk_s3::presigning::PresigningConfig;
use encache_shared::ApiError;
use encache_shared::db::bounded;
use encache_shared::http::{Caller, path_uuid, query_param};
use encache_shared::pagination::{CursorScope, Keyset, Page, PageRequest};
use encache_shared::timestamp::{self, Stored};
use serde::Serialize;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{Deps, LIST_ROUTE, store};

/// The statuses a memory can be in; the feed shows `ready` unless asked otherwise.
pub const STATUSES: [&str; 4] = ["pending", "ready", "failed", "expired"];

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
    /// What the client declared; `null` when absent, or when a row written around the
    /// API holds an instant no response can render (the memory still shows).
    pub captured_at: Option<Stored>,
    /// The sort key: the feed's query only returns rows where it renders.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    pub completed_at: Option<Stored>,
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
            Some(s) if STATUSES.contains(&s.as_str()) => s,
            Some(_) => {
                return Err(ApiError::invalid_field(
                    "status",
                    "must be one of pending, ready, failed, expired",
                ));
            }
        };
        let before = timestamp::query(req, "before")?;
        let after = timestamp::query(req, "after")?;
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

/// `GET /v1/memories?limit&cursor&status&before&after`.
pub async fn list(
    req: &ApiGatewayV2httpRequest,
    deps: &Deps,
) -> Result<Page<MemoryItem>, ApiError> {
    let caller = Caller::from_request(req)?;
    let filter = FeedFilter::from_query(req)?;
    let scope = filter.scope(&caller.sub);
    // The first request reads the cursor key and the database password here, side by side.
    let cursors = deps.ready().await?;
    let page = PageRequest::from_query(req, cursors, &scope)?;
    let rows = bounded(deps.settings.db_timeout, async {
        store::fetch_page(deps.db.pool().await?, &caller.sub, &filter, page).await
    })
    .await?;
    Ok(Page::from_rows(
        rows,
        page,
        |m| Keyset {
            time: m.created_at,
            id: m.id,
        },
        cursors,
        &scope,
    ))
}

/// `GET /v1/memories/{id}`: another user's memory is a 404, exactly like a missing one.
pub async fn get(req: &ApiGatewayV2httpRequest, deps: &Deps) -> Result<MemoryDetail, ApiError> {
    let caller = Caller::from_request(req)?;
    let id = path_uuid(req, "id")?;
    let row = bounded(deps.settings.db_timeout, async {
        store::fetch_memory(deps.db.pool().await?, id, &caller.sub).await
    })
    .await?
    .ok_or_else(|| ApiError::not_found("memory"))?;
    // Out of every feed page (its sort key cannot be rendered), so out of reach here too.
    let Some(created_at) = row.created_at.get() else {
        tracing::warn!(memory_id = %id, "memory hidden: its created_at cannot be rendered");
        return Err(ApiError::not_found("memory"));
    };

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
            created_at,
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
