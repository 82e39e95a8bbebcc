//! `GET /v1/conversations` (most recent activity first, each with its last message
//! preview) and `POST /v1/conversations`.

use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use encache_shared::ApiError;
use encache_shared::db::bounded;
use encache_shared::http::{Caller, json_body};
use encache_shared::idempotency::IdempotencyKey;
use encache_shared::pagination::{CursorScope, Keyset, Page, PageRequest};
use encache_shared::timestamp::Stored;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{Deps, LIST_ROUTE, store};

/// The longest title a client may give, in characters.
pub const MAX_TITLE_CHARS: usize = 200;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConversationItem {
    pub id: Uuid,
    pub title: String,
    pub last_message_preview: Option<String>,
    pub message_count: i32,
    /// Never `null` in a response: a conversation whose creation time cannot be rendered
    /// (written around the API) is left out of its page, with a warning.
    pub created_at: Stored,
    /// The sort key: the feed's query only returns rows where it renders.
    #[serde(with = "time::serde::rfc3339")]
    pub last_activity_at: OffsetDateTime,
}

/// `POST /v1/conversations` body.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewConversation {
    #[serde(default)]
    pub title: Option<String>,
}

/// `GET /v1/conversations?limit&cursor`.
pub async fn list_conversations(
    req: &ApiGatewayV2httpRequest,
    deps: &Deps,
) -> Result<Page<ConversationItem>, ApiError> {
    let caller = Caller::from_request(req)?;
    let scope = CursorScope::new(LIST_ROUTE, &caller.sub);
    // The first request reads the cursor key and the database password here, side by side.
    let cursors = deps.ready().await?;
    let page = PageRequest::from_query(req, cursors, &scope)?;
    let rows = bounded(deps.settings.db_timeout, async {
        store::conversations_page(deps.db.pool().await?, &caller.sub, page).await
    })
    .await?;
    let mut page = Page::from_rows(
        rows,
        page,
        |c| Keyset {
            time: c.last_activity_at,
            id: c.id,
        },
        cursors,
        &scope,
    );
    // After the cursor is taken, so the walk goes on past a conversation left out.
    page.items.retain(|c| {
        let renders = c.created_at.get().is_some();
        if !renders {
            tracing::warn!(conversation_id = %c.id, "conversation left out: its created_at cannot be rendered");
        }
        renders
    });
    Ok(page)
}

/// `POST /v1/conversations {"title"?}` → 201 with the new conversation.
pub async fn create_conversation(
    req: &ApiGatewayV2httpRequest,
    deps: &Deps,
) -> Result<ConversationItem, ApiError> {
    let caller = Caller::from_request(req)?;
    let idempotency = IdempotencyKey::from_request(req)?;
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
    let id = idempotency
        .as_ref()
        .map(|k| k.resource_id(&caller.sub, &["POST /v1/conversations"]));
    let written = bounded(deps.settings.db_timeout, async {
        store::insert_conversation(deps.db.pool().await?, &caller.sub, title, id).await
    })
    .await?;
    match written {
        store::Write::Created(c) | store::Write::Repeated(c) => Ok(c),
        store::Write::KeyReused => Err(IdempotencyKey::reused()),
        store::Write::Missing => Err(ApiError::Conflict {
            code: "account_not_ready".into(),
            message: "your account is still being set up; try again shortly".into(),
        }),
    }
}
