//! The conversation feed's SQL: conversations and their messages, always through the
//! caller's `users` row, so a caller without one owns nothing.

use encache_shared::pagination::PageRequest;
use encache_shared::timestamp::{EARLIEST, Stored};
use sqlx::PgPool;
use uuid::Uuid;

use crate::conversations::ConversationItem;
use crate::messages::{MessageItem, Role};

/// One page of the caller's conversations, most recent activity first, `limit + 1` rows.
/// Between `timestamp::EARLIEST` and the cursor (at most `Keyset::TOP`): a sort key written
/// around the API outside the range the API renders is in no page.
pub async fn conversations_page(
    pool: &PgPool,
    sub: &str,
    page: PageRequest,
) -> Result<Vec<ConversationItem>, sqlx::Error> {
    sqlx::query_as!(
        ConversationItem,
        r#"
            SELECT c.id, c.title, c.last_message_preview, c.message_count,
                   c.created_at AS "created_at: Stored", c.last_activity_at
            FROM conversations c
            WHERE c.user_id = (SELECT u.id FROM users u WHERE u.cognito_sub = $1)
              AND (c.last_activity_at, c.id) < ($2, $3)
              AND c.last_activity_at >= $5
            ORDER BY c.last_activity_at DESC, c.id DESC
            LIMIT $4
            "#,
        sub,
        page.after.time,
        page.after.id,
        page.fetch_limit(),
        EARLIEST,
    )
    .fetch_all(pool)
    .await
}

/// A new conversation of the caller's; `None` when the caller has no `users` row yet.
pub async fn insert_conversation(
    pool: &PgPool,
    sub: &str,
    title: &str,
) -> Result<Option<ConversationItem>, sqlx::Error> {
    sqlx::query_as!(
        ConversationItem,
        r#"
            INSERT INTO conversations (user_id, title)
            SELECT u.id, $2 FROM users u WHERE u.cognito_sub = $1
            RETURNING id, title, last_message_preview, message_count,
                      created_at AS "created_at: Stored", last_activity_at
            "#,
        sub,
        title,
    )
    .fetch_optional(pool)
    .await
}

/// One page of a conversation's messages, newest first, `limit + 1` rows; `None` when the
/// conversation is missing or another user's. Bounded like [`conversations_page`].
pub async fn messages_page(
    pool: &PgPool,
    conversation: Uuid,
    sub: &str,
    page: PageRequest,
) -> Result<Option<Vec<MessageItem>>, sqlx::Error> {
    let mut conn = pool.acquire().await?;
    let owned = sqlx::query_scalar!(
        r#"
            SELECT c.id FROM conversations c JOIN users u ON u.id = c.user_id
            WHERE c.id = $1 AND u.cognito_sub = $2
            "#,
        conversation,
        sub,
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
              AND m.created_at >= $5
            ORDER BY m.created_at DESC, m.id DESC
            LIMIT $4
            "#,
        conversation,
        page.after.time,
        page.after.id,
        page.fetch_limit(),
        EARLIEST,
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(Some(rows))
}

/// Adds a message to the caller's conversation and moves the conversation's activity
/// time, count and preview in the same statement; `None` when the conversation is missing
/// or another user's.
///
/// The message's time is the conversation's new activity time, which never moves back:
/// messages of one conversation are ordered as their writes were.
pub async fn insert_message(
    pool: &PgPool,
    conversation: Uuid,
    sub: &str,
    preview: &str,
    role: Role,
    text: &str,
) -> Result<Option<MessageItem>, sqlx::Error> {
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
        sub,
        preview,
        role.as_str(),
        text,
    )
    .fetch_optional(pool)
    .await
}
