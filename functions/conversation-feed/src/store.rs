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

/// What a create with an optional `Idempotency-Key` id did.
#[derive(Debug)]
pub enum Write<T> {
    /// Written now.
    Created(T),
    /// The key's resource exists and the request is the same: the resource as it is.
    Repeated(T),
    /// The key's resource exists, made by a different request.
    KeyReused,
    /// The caller has no `users` row, or (messages) no such conversation of theirs.
    Missing,
}

/// A new conversation of the caller's, with the id an `Idempotency-Key` names (else a
/// random one).
pub async fn insert_conversation(
    pool: &PgPool,
    sub: &str,
    title: &str,
    id: Option<Uuid>,
) -> Result<Write<ConversationItem>, sqlx::Error> {
    let created = sqlx::query_as!(
        ConversationItem,
        r#"
            INSERT INTO conversations (id, user_id, title)
            SELECT COALESCE($3, gen_random_uuid()), u.id, $2 FROM users u WHERE u.cognito_sub = $1
            ON CONFLICT (id) DO NOTHING
            RETURNING id, title, last_message_preview, message_count,
                      created_at AS "created_at: Stored", last_activity_at
            "#,
        sub,
        title,
        id,
    )
    .fetch_optional(pool)
    .await?;
    if let Some(c) = created {
        return Ok(Write::Created(c));
    }
    let Some(id) = id else {
        return Ok(Write::Missing);
    };
    // The id was taken: the key's conversation, if it is the caller's and titled alike.
    let existing = sqlx::query!(
        r#"
            SELECT c.id, c.title, c.last_message_preview, c.message_count,
                   c.created_at AS "created_at: Stored", c.last_activity_at
            FROM conversations c JOIN users u ON u.id = c.user_id
            WHERE c.id = $1 AND u.cognito_sub = $2
            "#,
        id,
        sub,
    )
    .fetch_optional(pool)
    .await?;
    Ok(match existing {
        Some(c) if c.title == title => Write::Repeated(ConversationItem {
            id: c.id,
            title: c.title,
            last_message_preview: c.last_message_preview,
            message_count: c.message_count,
            created_at: c.created_at,
            last_activity_at: c.last_activity_at,
        }),
        Some(_) => Write::KeyReused,
        None => Write::Missing,
    })
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
/// time, count and preview in the same statement.
///
/// The message's time is the conversation's new activity time, which never moves back:
/// messages of one conversation are ordered as their writes were. With the id an
/// `Idempotency-Key` names, the write takes a transaction lock on that id first, so a
/// repeat (even a concurrent one) finds the message and moves nothing.
pub async fn insert_message(
    pool: &PgPool,
    conversation: Uuid,
    sub: &str,
    new: NewMessageRow<'_>,
    id: Option<Uuid>,
) -> Result<Write<MessageItem>, sqlx::Error> {
    let Some(id) = id else {
        return Ok(insert_message_row(pool, conversation, sub, &new, None)
            .await?
            .map_or(Write::Missing, Write::Created));
    };
    let mut tx = pool.begin().await?;
    sqlx::query!(
        "SELECT pg_advisory_xact_lock(hashtextextended($1::text, 0))",
        id.to_string()
    )
    .execute(&mut *tx)
    .await?;
    let existing = sqlx::query_as!(
        MessageItem,
        r#"
            SELECT m.id, m.role, m.body AS text, m.created_at
            FROM messages m
            JOIN conversations c ON c.id = m.conversation_id
            JOIN users u ON u.id = c.user_id
            WHERE m.id = $1 AND m.conversation_id = $2 AND u.cognito_sub = $3
            "#,
        id,
        conversation,
        sub,
    )
    .fetch_optional(&mut *tx)
    .await?;
    let outcome = match existing {
        Some(m) if m.role == new.role.as_str() && m.text == new.text => Write::Repeated(m),
        Some(_) => Write::KeyReused,
        None => insert_message_row(&mut *tx, conversation, sub, &new, Some(id))
            .await?
            .map_or(Write::Missing, Write::Created),
    };
    tx.commit().await?;
    Ok(outcome)
}

/// A message to write, validated.
#[derive(Debug, Clone, Copy)]
pub struct NewMessageRow<'a> {
    pub preview: &'a str,
    pub role: Role,
    pub text: &'a str,
}

/// The one statement that adds a message and moves its conversation; `None` when the
/// conversation is missing or another user's.
async fn insert_message_row(
    db: impl sqlx::PgExecutor<'_>,
    conversation: Uuid,
    sub: &str,
    new: &NewMessageRow<'_>,
    id: Option<Uuid>,
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
            INSERT INTO messages (id, conversation_id, role, body, created_at)
            SELECT COALESCE($6, gen_random_uuid()), conv.id, $4, $5, conv.last_activity_at FROM conv
            RETURNING id AS "id!", role AS "role!", body AS "text!", created_at AS "created_at!"
            "#,
        conversation,
        sub,
        new.preview,
        new.role.as_str(),
        new.text,
        id,
    )
    .fetch_optional(db)
    .await
}
