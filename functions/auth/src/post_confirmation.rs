//! Post-confirmation: provision the user's row. Cognito waits 5 s and retries (three
//! attempts in all), so the upsert is keyed by `sub` and bounded well inside that.

use aws_lambda_events::cognito::CognitoEventUserPoolsPostConfirmation;
use lambda_runtime::LambdaEvent;
use serde_json::Value;
use sqlx::PgPool;

use crate::email::Email;
use crate::error::TriggerError;
use crate::{event, users};

pub const TRIGGER_SOURCES: &[&str] = &[
    "PostConfirmation_ConfirmSignUp",
    "PostConfirmation_ConfirmForgotPassword",
];

/// 2.5 s for the upsert, connecting included: half of Cognito's 5 s.
pub type Settings = users::DbSettings<2500>;

/// Returns the event unchanged (post-confirmation has no response fields) once the
/// user's row exists.
pub async fn handle(
    event: LambdaEvent<Value>,
    pool: &PgPool,
    settings: Settings,
) -> Result<CognitoEventUserPoolsPostConfirmation, TriggerError> {
    provision(event.payload, pool, settings)
        .await
        .inspect_err(TriggerError::log)
}

async fn provision(
    raw: Value,
    pool: &PgPool,
    settings: Settings,
) -> Result<CognitoEventUserPoolsPostConfirmation, TriggerError> {
    let event: CognitoEventUserPoolsPostConfirmation = event::parse(raw, TRIGGER_SOURCES)?;
    let attributes = &event.request.user_attributes;
    // Everything is validated before the first write: a bad event writes nothing.
    let sub = event::sub(attributes)?;
    let email = Email::parse(event::attribute(attributes, "email")?)
        .map_err(|e| TriggerError::invalid(format!("request.userAttributes.email: {e}")))?;

    let provisioned = users::within(settings.db_timeout, users::upsert(pool, sub, &email)).await?;
    tracing::info!(
        trigger_source = ?event.cognito_event_user_pools_header.trigger_source,
        user_id = %provisioned.user.id,
        cognito_sub = sub,
        created = provisioned.created,
        "user provisioned"
    );
    Ok(event)
}
