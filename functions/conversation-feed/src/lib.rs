//! The conversation feed: `GET /v1/conversations` (most recent activity first, each with
//! its last message preview), `GET /v1/conversations/{id}/messages` (newest first, paging
//! back in time), and the two writers that make the feed usable end to end,
//! `POST /v1/conversations` and `POST /v1/conversations/{id}/messages`.
//!
//! The caller is the JWT `sub` and nothing else. A caller with no `users` row owns
//! nothing: empty feeds, 404s for ids.

use std::time::Duration;

use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use encache_shared::ApiError;
use encache_shared::config::{ConfigError, Env};
use encache_shared::db::bounded;
use encache_shared::http::{Caller, error_response, json_body, path_uuid, request_id, respond};
use encache_shared::pagination::{CursorScope, CursorSigner, Keyset, Page, PageRequest};
use lambda_runtime::{Error, LambdaEvent};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;

pub const LIST_ROUTE: &str = "GET /v1/conversations";
pub const CREATE_ROUTE: &str = "POST /v1/conversations";
pub const MESSAGES_ROUTE: &str = "GET /v1/conversations/{id}/messages";
pub const POST_MESSAGE_ROUTE: &str = "POST /v1/conversations/{id}/messages";

/// Limits on what clients write, in characters.
pub const MAX_TITLE_CHARS: usize = 200;
pub const MAX_MESSAGE_CHARS: usize = 4000;
pub const PREVIEW_CHARS: usize = 140;

#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// The most the database may take per request (`FEED_DB_TIMEOUT_MS`).
    pub db_timeout: Duration,
}

impl Settings {
    pub fn from_env(env: &Env<'_>) -> Result<Self, ConfigError> {
        Ok(Self {
            db_timeout: env.millis("FEED_DB_TIMEOUT_MS", Duration::from_secs(3))?,
        })
    }
}

/// What the handler needs, built once per container.
pub struct Deps {
    pub pool: PgPool,
    pub cursors: CursorSigner,
    pub settings: Settings,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConversationItem {
    pub id: Uuid,
    pub title: String,
    pub last_message_preview: Option<String>,
    pub message_count: i32,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub last_activity_at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MessageItem {
    pub id: Uuid,
    pub role: String,
    pub text: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// `POST /v1/conversations` body.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewConversation {
    #[serde(default)]
    pub title: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Assistant,
    System,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::System => "system",
        }
    }
}

/// `POST /v1/conversations/{id}/messages` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewMessage {
    pub role: Role,
    pub text: String,
}

/// The Lambda entry point: routes by the gateway's route key, answers every outcome
/// (errors included) as an HTTP response.
pub async fn handle(
    event: LambdaEvent<ApiGatewayV2httpRequest>,
    deps: &Deps,
) -> Result<ApiGatewayV2httpResponse, Error> {
    let req = &event.payload;
    let rid = request_id(req);
    Ok(match req.route_key.as_deref() {
        Some(LIST_ROUTE) => respond(list_conversations(req, deps).await.map(|p| (200, p)), rid),
        Some(CREATE_ROUTE) => respond(create_conversation(req, deps).await.map(|c| (201, c)), rid),
        Some(MESSAGES_ROUTE) => respond(list_messages(req, deps).await.map(|p| (200, p)), rid),
        Some(POST_MESSAGE_ROUTE) => respond(post_message(req, deps).await.map(|m| (201, m)), rid),
        _ => error_response(&ApiError::not_found("route"), rid),
    })
}

/// `GET /v1/conversations?limit&cursor`.
pub async fn list_conversations(
    req: &ApiGatewayV2httpRequest,
    deps: &Deps,
) -> Result<Page<ConversationItem>, ApiError> {
    let caller = Caller::from_request(req)?;
    let scope = CursorScope::new(LIST_ROUTE, &caller.sub);
    let page = PageRequest::from_query(req, &deps.cursors, &scope)?;
    let rows = bounded(deps.settings.db_timeout, async {
        sqlx::query_as!(
            ConversationItem,
            r#"
            SELECT c.id, c.title, c.last_message_preview, c.message_count,
                   c.created_at, c.last_activity_at
            FROM conversations c
            WHERE c.user_id = (SELECT u.id FROM users u WHERE u.cognito_sub = $1)
              AND (c.last_activity_at, c.id) < ($2, $3)
            ORDER BY c.last_activity_at DESC, c.id DESC
            LIMIT $4
            "#,
            caller.sub,
            page.after.time,
            page.after.id,
            page.fetch_limit(),
        )
        .fetch_all(&deps.pool)
        .await
    })
    .await?;
    Ok(Page::from_rows(
        rows,
        page,
        |c| Keyset {
            time: c.last_activity_at,
            id: c.id,
        },
        &deps.cursors,
        &scope,
    ))
}

/// `POST /v1/conversations {"title"?}` → 201 with the new conversation.
pub async fn create_conversation(
    req: &ApiGatewayV2httpRequest,
    deps: &Deps,
) -> Result<ConversationItem, ApiError> {
    let caller = Caller::from_request(req)?;
    let body: NewConversation = if req.body.as_deref().is_none_or(|b| b.trim().is_empty()) {
        NewConversation::default()
    } else {
        json_body(req)?
    };
    let title = body.title.as_deref().map(str::trim).unwrap_or_default();
    if title.chars().count() > MAX_TITLE_CHARS {
        return Err(ApiError::invalid_field(
            "title",
            format!("must be at most {MAX_TITLE_CHARS} characters"),
        ));
    }
    if title.chars().any(char::is_control) {
        return Err(ApiError::invalid_field(
            "title",
            "must not contain control characters",
        ));
    }
    let created = bounded(deps.settings.db_timeout, async {
        sqlx::query_as!(
            ConversationItem,
            r#"
            INSERT INTO conversations (user_id, title)
            SELECT u.id, $2 FROM users u WHERE u.cognito_sub = $1
            RETURNING id, title, last_message_preview, message_count, created_at, last_activity_at
            "#,
            caller.sub,
            title,
        )
        .fetch_optional(&deps.pool)
        .await
    })
    .await?;
    created.ok_or_else(|| ApiError::Conflict {
        code: "account_not_ready".into(),
        message: "your account is still being set up; try again shortly".into(),
    })
}

/// `GET /v1/conversations/{id}/messages?limit&cursor`: another user's conversation is a
/// 404, exactly like a missing one.
pub async fn list_messages(
    req: &ApiGatewayV2httpRequest,
    deps: &Deps,
) -> Result<Page<MessageItem>, ApiError> {
    let caller = Caller::from_request(req)?;
    let conversation = path_uuid(req, "id")?;
    let scope = CursorScope::new(MESSAGES_ROUTE, &caller.sub).filter("conversation", conversation);
    let page = PageRequest::from_query(req, &deps.cursors, &scope)?;
    let rows = bounded(deps.settings.db_timeout, async {
        let mut conn = deps.pool.acquire().await?;
        let owned = sqlx::query_scalar!(
            r#"
            SELECT c.id FROM conversations c JOIN users u ON u.id = c.user_id
            WHERE c.id = $1 AND u.cognito_sub = $2
            "#,
            conversation,
            caller.sub,
        )
        .fetch_optional(&mut *conn)
        .await?;
        if owned.is_none() {
            return Ok(None);
        }
        let rows = sqlx::query_as!(
            MessageItem,
            r#"
            SELECT m.id, m.role, m.body AS text, m.created_at
            FROM messages m
            WHERE m.conversation_id = $1
              AND (m.created_at, m.id) < ($2, $3)
            ORDER BY m.created_at DESC, m.id DESC
            LIMIT $4
            "#,
            conversation,
            page.after.time,
            page.after.id,
            page.fetch_limit(),
        )
        .fetch_all(&mut *conn)
        .await?;
        Ok(Some(rows))
    })
    .await?
    .ok_or_else(|| ApiError::not_found("conversation"))?;
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

/// `POST /v1/conversations/{id}/messages {"role","text"}` → 201 with the message. The
/// conversation's activity time, count and preview move in the same statement.
pub async fn post_message(
    req: &ApiGatewayV2httpRequest,
    deps: &Deps,
) -> Result<MessageItem, ApiError> {
    let caller = Caller::from_request(req)?;
    let conversation = path_uuid(req, "id")?;
    let body: NewMessage = json_body(req)?;
    let text = body.text.trim();
    let chars = text.chars().count();
    if chars == 0 {
        return Err(ApiError::invalid_field("text", "must not be blank"));
    }
    if chars > MAX_MESSAGE_CHARS {
        return Err(ApiError::invalid_field(
            "text",
            format!("must be at most {MAX_MESSAGE_CHARS} characters"),
        ));
    }
    // Line breaks and tabs are text; any other control character (NUL above all, which
    // PostgreSQL's `text` refuses) is not.
    if text
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err(ApiError::invalid_field(
            "text",
            "must not contain control characters other than line breaks and tabs",
        ));
    }
    let preview = preview(text);
    // The message's time is the conversation's new activity time, which never moves
    // back: messages of one conversation are ordered as their writes were.
    let created = bounded(deps.settings.db_timeout, async {
        sqlx::query_as!(
            MessageItem,
            r#"
            WITH conv AS (
                UPDATE conversations c
                SET message_count = c.message_count + 1,
                    last_message_preview = $3,
                    last_activity_at = GREATEST(c.last_activity_at + interval '1 microsecond',
                                                clock_timestamp())
                FROM users u
                WHERE c.id = $1 AND u.id = c.user_id AND u.cognito_sub = $2
                RETURNING c.id, c.last_activity_at
            )
            INSERT INTO messages (conversation_id, role, body, created_at)
            SELECT conv.id, $4, $5, conv.last_activity_at FROM conv
            RETURNING id AS "id!", role AS "role!", body AS "text!", created_at AS "created_at!"
            "#,
            conversation,
            caller.sub,
            preview,
            body.role.as_str(),
            text,
        )
        .fetch_optional(&deps.pool)
        .await
    })
    .await?;
    created.ok_or_else(|| ApiError::not_found("conversation"))
}

/// The first [`PREVIEW_CHARS`] characters, cut on a character boundary.
pub fn preview(text: &str) -> String {
    match text.char_indices().nth(PREVIEW_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_text_is_its_own_preview() {
        assert_eq!(preview("hello"), "hello");
    }

    #[test]
    fn a_long_text_is_cut_on_a_character_boundary() {
        let text = "é".repeat(PREVIEW_CHARS + 10);
        let p = preview(&text);
        assert_eq!(p.chars().count(), PREVIEW_CHARS + 1);
        assert!(p.ends_with('…'));
    }
}
