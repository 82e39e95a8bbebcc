//! The memory feed: `GET /v1/memories` (the caller's memories, newest first, keyset
//! paginated) and `GET /v1/memories/{id}` (one memory with a short-lived presigned GET
//! URL for its object).
//!
//! The caller is the JWT `sub` and nothing else; it is resolved to a `users` row inside
//! each query, so a caller without a row simply owns nothing (an empty feed, a 404).
//!
//! [`memories`] answers the two routes; [`settings`] reads the environment; [`store`]
//! holds the SQL.

pub mod memories;
pub mod settings;
pub mod store;

use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use encache_shared::ApiError;
use encache_shared::aws::{Lazy, SecretCache, s3_client};
use encache_shared::config::{Env, ProcessEnv};
use encache_shared::db::Database;
use encache_shared::http::{error_response, logged, request_id, respond};
use encache_shared::pagination::{CursorSigner, Cursors};
use lambda_runtime::{Error, LambdaEvent};

pub use memories::{FeedFilter, MemoryDetail, MemoryItem, STATUSES, get, list};
pub use settings::Settings;

pub const LIST_ROUTE: &str = "GET /v1/memories";
pub const GET_ROUTE: &str = "GET /v1/memories/{id}";

/// What the handler needs, built once per container.
pub struct Deps {
    pub db: Database,
    pub s3: Lazy<aws_sdk_s3::Client>,
    pub cursors: Cursors,
    pub settings: Settings,
}

impl Deps {
    pub async fn from_env() -> anyhow::Result<Self> {
        let env = Env::new(&ProcessEnv);
        let settings = Settings::from_env(&env)?;
        // One SSM client and cache for both secrets, read on the first request; the
        // clients are built then too (shared::aws).
        let secrets = SecretCache::lazy();
        Ok(Self {
            db: Database::from_env(&env, Some(&secrets))?,
            s3: Lazy::new(s3_client),
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
    List,
    Get,
}

impl Route {
    fn of(req: &ApiGatewayV2httpRequest) -> Option<Self> {
        match req.route_key.as_deref() {
            Some(LIST_ROUTE) => Some(Self::List),
            Some(GET_ROUTE) => Some(Self::Get),
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
            Some(Route::List) => respond(list(req, deps).await.map(|page| (200, page)), rid),
            Some(Route::Get) => respond(get(req, deps).await.map(|memory| (200, memory)), rid),
            None => error_response(&ApiError::not_found("route"), rid),
        }
    })
    .await)
}
