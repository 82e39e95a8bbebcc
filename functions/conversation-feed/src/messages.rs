//! `GET /v1/conversations/{id}/messages` (newest first, paging back in time) and
//! `POST /v1/conversations/{id}/messages`. Another user's conversation is a 404, exactly
//! like a missing one.

use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use encache_shared::ApiError;
use encache_shared::db::bounded;
use encache_shared::http::{Caller, json_body, path_uuid};
use encache_shared::idempotency::IdempotencyKey;
use encache_shared::pagination::{CursorScope, Keyset, Page, PageRequest};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{Deps, MESSAGES_ROUTE, store};

/// The longest message a client may post, in characters.
pub const MAX_MESSAGE_CHARS: usize = 4000;
/// How much of the last message a conversation shows, in characters.
pub const PREVIEW_CHARS: usize = 140;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MessageItem {
    pub id: Uuid,
    pub role: String,
    pub text: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
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
    /// A string only: serde's derived enums also read `{"user": null}`.
    #[serde(deserialize_with = "encache_shared::http::string_enum")]
    pub role: Role,
    pub text: String,
}

/// `GET /v1/conversations/{id}/messages?limit&cursor`.
pub async fn list_messages(
    req: &ApiGatewayV2httpRequest,
    deps: &Deps,
) -> Result<Page<MessageItem>, ApiError> {
    let caller = Caller::from_request(req)?;
    let conversation = path_uuid(req, "id")?;
    let scope = CursorScope::new(MESSAGES_ROUTE, &caller.sub).filter("conversation", conversation);
    // The first request reads the cursor key and the database password here, side by side.
    let cursors = deps.ready().await?;
    let page = PageRequest::from_query(req, cursors, &scope)?;
    let rows = bounded(deps.settings.db_timeout, async {
        store::messages_page(deps.db.pool().await?, conversation, &caller.sub, page).await
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
        cursors,
        &scope,
    ))
}

/// `POST /v1/conversations/{id}/messages {"role","text"}` → 201 with the message.
pub async fn post_message(
    req: &ApiGatewayV2httpRequest,
    deps: &Deps,
) -> Result<MessageItem, ApiError> {
    let caller = Caller::from_request(req)?;
    let conversation = path_uuid(req, "id")?;
    let idempotency = IdempotencyKey::from_request(req)?;
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
    let conversation_id = conversation.to_string();
    let id = idempotency.as_ref().map(|k| {
        k.resource_id(
            &caller.sub,
            &["POST /v1/conversations/{id}/messages", &conversation_id],
        )
    });
    let new = store::NewMessageRow {
        preview: &preview,
        role: body.role,
        text,
    };
    let written = bounded(deps.settings.db_timeout, async {
        store::insert_message(deps.db.pool().await?, conversation, &caller.sub, new, id).await
    })
    .await?;
    match written {
        store::Write::Created(m) | store::Write::Repeated(m) => Ok(m),
        store::Write::KeyReused => Err(IdempotencyKey::reused()),
        store::Write::Missing => Err(ApiError::not_found("conversation")),
    }
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
