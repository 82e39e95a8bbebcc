//! `/v1/me`, the caller's own account, routed here by the gateway's route key:
//! - `GET`: the caller's profile. The row normally comes from post-confirmation; if that
//!   never ran, the first call creates it from the JWT's `sub` and `email`
//!   (`encache_shared::users::for_caller`, as upload does).
//! - `DELETE`: the caller's account data goes, objects first ([`deletion`]).

use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use aws_lambda_events::http::HeaderValue;
use encache_shared::ApiError;
use encache_shared::config::{Env, ProcessEnv};
use encache_shared::db::{Database, bounded};
use encache_shared::http::{
    Caller, REQUEST_ID_HEADER, error_response, logged, request_id, respond,
};
use encache_shared::timestamp::Stored;
use encache_shared::{aws, users};
use lambda_runtime::{Error, LambdaEvent};
use serde::Serialize;
use uuid::Uuid;

use crate::settings::MeSettings;

pub mod deletion;

pub const GET_ROUTE: &str = "GET /v1/me";
pub const DELETE_ROUTE: &str = "DELETE /v1/me";

/// What the handler needs, built once per container.
pub struct Deps {
    pub db: Database,
    pub s3: aws::Lazy<aws_sdk_s3::Client>,
    pub settings: MeSettings,
}

impl Deps {
    pub async fn from_env() -> anyhow::Result<Self> {
        let env = Env::new(&ProcessEnv);
        let settings = MeSettings::from_env(&env)?;
        // The SDK clients are built on first use (shared::aws).
        Ok(Self {
            db: Database::from_env(&env, None)?,
            s3: aws::Lazy::new(aws::s3_client),
            settings,
        })
    }
}

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct Profile {
    pub id: Uuid,
    pub email: String,
    pub plan: String,
    /// From the token, not the database: Cognito owns group membership.
    pub groups: Vec<String>,
    /// RFC 3339, or `null` for a time no RFC 3339 text can show (a row written around the
    /// API: `infinity`, year 10000). The profile still answers: who the caller is does not
    /// depend on these, and an error would shut them out of it over a value they cannot fix.
    pub created_at: Stored,
    pub updated_at: Stored,
}

/// The routes this function serves, by the gateway's route key.
enum Route {
    Get,
    Delete,
}

impl Route {
    fn of(req: &ApiGatewayV2httpRequest) -> Option<Self> {
        match req.route_key.as_deref() {
            Some(GET_ROUTE) => Some(Self::Get),
            Some(DELETE_ROUTE) => Some(Self::Delete),
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
            Some(Route::Get) => respond(profile(req, deps).await.map(|p| (200, p)), rid),
            Some(Route::Delete) => match deletion::delete_account(req, deps).await {
                Ok(()) => no_content(rid),
                Err(e) => error_response(&e, rid),
            },
            None => error_response(&ApiError::not_found("route"), rid),
        }
    })
    .await)
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

/// `GET /v1/me`.
async fn profile(req: &ApiGatewayV2httpRequest, deps: &Deps) -> Result<Profile, ApiError> {
    let caller = Caller::from_request(req)?;
    let user = bounded(deps.settings.db_timeout, async {
        users::for_caller(deps.db.pool().await?, &caller).await
    })
    .await??
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
