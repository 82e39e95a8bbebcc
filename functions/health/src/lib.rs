//! `GET /v1/health`: is this function up, and does the database answer in time?
//!
//! [`settings`] reads the database bound; [`store`] holds the probe query.

pub mod settings;
pub mod store;

use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use encache_shared::ApiError;
use encache_shared::config::{Env, ProcessEnv};
use encache_shared::db::{self, Database, StepError};
use encache_shared::http::{logged, request_id, respond};
use lambda_runtime::{Error, LambdaEvent};
use serde::Serialize;

pub use settings::Settings;

/// What the handler needs, built once per container.
pub struct Deps {
    pub db: Database,
    pub settings: Settings,
}

impl Deps {
    pub async fn from_env() -> anyhow::Result<Self> {
        let env = Env::new(&ProcessEnv);
        let settings = Settings::from_env(&env)?;
        let db = Database::from_env(&env, None)?;
        Ok(Self { db, settings })
    }
}

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct HealthBody {
    pub status: &'static str,
    pub db: &'static str,
}

pub async fn handle(
    deps: &Deps,
    event: LambdaEvent<ApiGatewayV2httpRequest>,
) -> Result<ApiGatewayV2httpResponse, Error> {
    let req = &event.payload;
    Ok(logged(req, async {
        let result = check_database(deps).await.map(|()| {
            (
                200,
                HealthBody {
                    status: "ok",
                    db: "ok",
                },
            )
        });
        respond(result, request_id(req))
    })
    .await)
}

/// Any failure of the probe is a 503: health reports reachability, not a server error.
async fn check_database(deps: &Deps) -> Result<(), ApiError> {
    match db::within(deps.settings.db_timeout, async {
        store::ping(deps.db.pool().await?).await
    })
    .await
    {
        Ok(()) => Ok(()),
        Err(StepError::Failed(e)) => {
            tracing::warn!(error = %e, "health probe failed");
            Err(ApiError::Unavailable("database unavailable".into()))
        }
        Err(timed_out) => Err(ApiError::Unavailable(timed_out.to_string())),
    }
}
