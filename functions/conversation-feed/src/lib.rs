//! The conversation feed: `GET /v1/conversations` (most recent activity first, each with
//! its last message preview), `GET /v1/conversations/{id}/messages` (newest first, paging
//! back in time), and the two writers that make the feed usable end to end,
//! `POST /v1/conversations` and `POST /v1/conversations/{id}/messages`.
//!
//! The caller is the JWT `sub` and nothing else. A caller with no `users` row owns
//! nothing: empty feeds, 404s for ids.
//!
//! [`conversations`] and [`messages`] answer the routes; [`settings`] reads the
//! environment; [`store`] holds the SQL.

pub mod conversations;
pub mod messages;
pub mod settings;
pub mod store;

use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use encache_shared::ApiError;
use encache_shared::aws::SecretCache;
use encache_shared::config::{Env, ProcessEnv};
use encache_shared::db::Database;
use encache_shared::http::{error_response, logged, request_id, respond};
use encache_shared::pagination::{CursorSigner, Cursors};
use lambda_runtime::{Error, LambdaEvent};

pub use settings::Settings;

use crate::conversations::{create_conversation, list_conversations};
use crate::messages::{list_messages, post_message};

pub const LIST_ROUTE: &str = "GET /v1/conversations";
pub const CREATE_ROUTE: &str = "POST /v1/conversations";
pub const MESSAGES_ROUTE: &str = "GET /v1/conversations/{id}/messages";
pub const POST_MESSAGE_ROUTE: &str = "POST /v1/conversations/{id}/messages";

/// What the handler needs, built once per container.
pub struct Deps {
    pub db: Database,
    pub cursors: Cursors,
    pub settings: Settings,
}

impl Deps {
    pub async fn from_env() -> anyhow::Result<Self> {
        let env = Env::new(&ProcessEnv);
        let settings = Settings::from_env(&env)?;
        // One SSM client and cache for both secrets, read (and the client built) on the
        // first request.
        let secrets = SecretCache::lazy();
        Ok(Self {
            db: Database::from_env(&env, Some(&secrets))?,
            cursors: Cursors::from_env(&env, &secrets)?,
            settings,
        })
    }

    /// The first request's secrets, side by side and bounded (`Cursors::ready_with`).
    pub async fn ready(&self) -> Result<&CursorSigner, ApiError> {
        self.cursors
            .ready_with(&self.db, self.settings.db_timeout)
            .await
    }
}

/// The routes this function answers, by the gateway's route key.
enum Route {
    ListConversations,
    CreateConversation,
    ListMessages,
    PostMessage,
}

impl Route {
    fn of(req: &ApiGatewayV2httpRequest) -> Option<Self> {
        match req.route_key.as_deref() {
            Some(LIST_ROUTE) => Some(Self::ListConversations),
            Some(CREATE_ROUTE) => Some(Self::CreateConversation),
            Some(MESSAGES_ROUTE) => Some(Self::ListMessages),
            Some(POST_MESSAGE_ROUTE) => Some(Self::PostMessage),
            _ => None,
        }
    }
}

/// The Lambda entry point: routes by the gateway's route key, answers every outcome
/// (errors included) as an HTTP response.
pub async fn handle(
    deps: &Deps,
    event: LambdaEvent<ApiGatewayV2httpRequest>,
) -> Result<ApiGatewayV2httpResponse, Error> {
    let req = &event.payload;
    let rid = request_id(req);
    Ok(logged(req, async {
        match Route::of(req) {
            Some(Route::ListConversations) => {
                respond(list_conversations(req, deps).await.map(|p| (200, p)), rid)
            }
            Some(Route::CreateConversation) => {
                respond(create_conversation(req, deps).await.map(|c| (201, c)), rid)
            }
            Some(Route::ListMessages) => {
                respond(list_messages(req, deps).await.map(|p| (200, p)), rid)
            }
            Some(Route::PostMessage) => {
                respond(post_message(req, deps).await.map(|m| (201, m)), rid)
            }
            None => error_response(&ApiError::not_found("route"), rid),
        }
    })
    .await)
}
