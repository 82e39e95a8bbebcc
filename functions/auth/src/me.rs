//! `GET /v1/me`: the caller's profile. The row normally comes from post-confirmation;
//! if that never ran, the first call creates it from the JWT's `sub` and `email`.

use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use encache_shared::ApiError;
use encache_shared::db::bounded;
use encache_shared::http::{Caller, request_id, respond};
use lambda_runtime::{Error, LambdaEvent};
use serde::Serialize;
use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::email::Email;
use crate::users::{self, User};

/// 2 s for the read (or first-call upsert), connecting included.
pub type Settings = users::DbSettings<2000>;

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct Profile {
    pub id: Uuid,
    pub email: String,
    pub plan: String,
    /// From the token, not the database: Cognito owns group membership.
    pub groups: Vec<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

pub async fn handle(
    event: LambdaEvent<ApiGatewayV2httpRequest>,
    pool: &PgPool,
    settings: Settings,
) -> Result<ApiGatewayV2httpResponse, Error> {
    let result = profile(&event.payload, pool, settings)
        .await
        .map(|p| (200, p));
    Ok(respond(result, request_id(&event.payload)))
}

async fn profile(
    req: &ApiGatewayV2httpRequest,
    pool: &PgPool,
    settings: Settings,
) -> Result<Profile, ApiError> {
    let caller = Caller::from_request(req)?;
    let user = bounded(settings.db_timeout, find_or_create(pool, &caller))
        .await?
        .ok_or_else(|| {
            // An access token carries no email, and the row needs one.
            ApiError::NotFound(
                "profile not found: sign in again so it can be created from your ID token".into(),
            )
        })?;
    Ok(Profile {
        id: user.id,
        email: user.email,
        plan: user.plan,
        groups: caller.groups,
        created_at: user.created_at,
        updated_at: user.updated_at,
    })
}

async fn find_or_create(pool: &PgPool, caller: &Caller) -> Result<Option<User>, sqlx::Error> {
    if let Some(user) = users::find_by_sub(pool, &caller.sub).await? {
        return Ok(Some(user));
    }
    let Some(email) = caller.email.as_deref().and_then(|e| Email::parse(e).ok()) else {
        return Ok(None);
    };
    let provisioned = users::upsert(pool, &caller.sub, &email).await?;
    tracing::info!(user_id = %provisioned.user.id, cognito_sub = %caller.sub, "user created on first GET /v1/me");
    Ok(Some(provisioned.user))
}
