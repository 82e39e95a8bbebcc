//! `GET /v1/health`: is this function up, and does the database answer in time?

use std::time::Duration;

use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use encache_shared::ApiError;
use encache_shared::config::{ConfigError, Env};
use encache_shared::http::{request_id, respond};
use lambda_runtime::{Error, LambdaEvent};
use serde::Serialize;
use sqlx::PgPool;

#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// How long the database may take to answer: well under the function timeout, so a
    /// dead database is a clear 503 rather than a gateway timeout.
    pub db_timeout: Duration,
}

impl Settings {
    pub fn from_env(env: &Env<'_>) -> Result<Self, ConfigError> {
        Ok(Self {
            db_timeout: env.millis("HEALTH_DB_TIMEOUT_MS", Duration::from_millis(1500))?,
        })
    }
}

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct HealthBody {
    pub status: &'static str,
    pub db: &'static str,
}

pub async fn handle(
    event: LambdaEvent<ApiGatewayV2httpRequest>,
    pool: &PgPool,
    settings: Settings,
) -> Result<ApiGatewayV2httpResponse, Error> {
    let result = check_database(pool, settings.db_timeout).await.map(|()| {
        (
            200,
            HealthBody {
                status: "ok",
                db: "ok",
            },
        )
    });
    Ok(respond(result, request_id(&event.payload)))
}

async fn check_database(pool: &PgPool, limit: Duration) -> Result<(), ApiError> {
    let probe = sqlx::query_scalar!(r#"SELECT 1 AS "one!""#).fetch_one(pool);
    match tokio::time::timeout(limit, probe).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "health probe failed");
            Err(ApiError::Unavailable("database unavailable".into()))
        }
        Err(_) => Err(ApiError::Unavailable(format!(
            "database did not answer within {} ms",
            limit.as_millis()
        ))),
    }
}
