//! `/v1/me`, the caller's own account, routed here by the gateway's route key:
//! - `GET`: the caller's profile. The row normally comes from post-confirmation; if that
//!   never ran, the first call creates it from the JWT's `sub` and `email`.
//! - `DELETE`: the caller's account data goes, objects first ([`deletion`]).

use std::time::Duration;

use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use aws_lambda_events::http::HeaderValue;
use encache_shared::ApiError;
use encache_shared::config::{ConfigError, Env};
use encache_shared::db::bounded;
use encache_shared::http::{Caller, REQUEST_ID_HEADER, error_response, request_id, respond};
use lambda_runtime::{Error, LambdaEvent};
use serde::Serialize;
use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::email::Email;
use crate::users::{self, User};

pub mod deletion;

pub const GET_ROUTE: &str = "GET /v1/me";
pub const DELETE_ROUTE: &str = "DELETE /v1/me";

#[derive(Debug, Clone)]
pub struct Settings {
    /// The most each database step may take, connecting included (`AUTH_DB_TIMEOUT_MS`,
    /// 2 s by default).
    pub db_timeout: Duration,
    /// The upload bucket, where the caller's memories' objects live (`UPLOAD_BUCKET`).
    pub bucket: String,
}

impl Settings {
    pub fn from_env(env: &Env<'_>) -> Result<Self, ConfigError> {
        Ok(Self {
            db_timeout: users::DbSettings::<2000>::from_env(env)?.db_timeout,
            bucket: env.required("UPLOAD_BUCKET")?,
        })
    }
}

/// What the handler needs, built once per container.
pub struct Deps {
    pub pool: PgPool,
    pub s3: aws_sdk_s3::Client,
    pub settings: Settings,
}

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

/// The Lambda entry point: routes by the gateway's route key, answers every outcome
/// (errors included) as an HTTP response.
pub async fn handle(
    event: LambdaEvent<ApiGatewayV2httpRequest>,
    deps: &Deps,
) -> Result<ApiGatewayV2httpResponse, Error> {
    let req = &event.payload;
    let rid = request_id(req);
    Ok(match req.route_key.as_deref() {
        Some(GET_ROUTE) => respond(
            profile(req, &deps.pool, &deps.settings)
                .await
                .map(|p| (200, p)),
            rid,
        ),
        Some(DELETE_ROUTE) => match deletion::delete_account(req, deps).await {
            Ok(()) => no_content(rid),
            Err(e) => error_response(&e, rid),
        },
        _ => error_response(&ApiError::not_found("route"), rid),
    })
}

/// 204, no body; the request id echoed back as on every other response.
fn no_content(request_id: Option<&str>) -> ApiGatewayV2httpResponse {
    let mut resp = ApiGatewayV2httpResponse::default();
    resp.status_code = 204;
    if let Some(id) = request_id.and_then(|id| HeaderValue::from_str(id).ok()) {
        resp.headers.insert(REQUEST_ID_HEADER, id);
    }
    resp
}

async fn profile(
    req: &ApiGatewayV2httpRequest,
    pool: &PgPool,
    settings: &Settings,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_upload_bucket_is_required_and_the_database_bound_defaults_to_two_seconds() {
        let missing = |_: &str| None;
        assert_eq!(
            Settings::from_env(&Env::new(&missing)).unwrap_err(),
            ConfigError::Missing("UPLOAD_BUCKET".into())
        );
        let set = |k: &str| (k == "UPLOAD_BUCKET").then(|| "encache-dev-uploads".to_owned());
        let settings = Settings::from_env(&Env::new(&set)).unwrap();
        assert_eq!(settings.bucket, "encache-dev-uploads");
        assert_eq!(settings.db_timeout, Duration::from_secs(2));
    }
}
