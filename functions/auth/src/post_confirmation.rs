//! Post-confirmation: provision the user's row. Cognito waits 5 s and retries (three
//! attempts in all), so the upsert is keyed by `sub` and bounded well inside that.

use aws_lambda_events::cognito::CognitoEventUserPoolsPostConfirmation;
use encache_shared::db::within;
use encache_shared::users::{self, Email};
use lambda_runtime::LambdaEvent;
use serde_json::Value;

use crate::error::TriggerError;
use crate::event;
use crate::settings::TriggerSettings;

pub const TRIGGER_SOURCES: &[&str] = &[
    "PostConfirmation_ConfirmSignUp",
    "PostConfirmation_ConfirmForgotPassword",
];

/// What the trigger needs, built once per container (its settings: [`TriggerSettings::post_confirmation`]).
pub type Deps = crate::TriggerDeps;

/// This trigger's [`Deps`], from the environment.
pub async fn deps_from_env() -> anyhow::Result<Deps> {
    Deps::with_settings(TriggerSettings::post_confirmation).await
}

/// Returns the event unchanged (post-confirmation has no response fields) once the
/// user's row exists.
pub async fn handle(
    deps: &Deps,
    event: LambdaEvent<Value>,
) -> Result<CognitoEventUserPoolsPostConfirmation, TriggerError> {
    provision(event.payload, deps)
        .await
        .inspect_err(TriggerError::log)
}

async fn provision(
    raw: Value,
    deps: &Deps,
) -> Result<CognitoEventUserPoolsPostConfirmation, TriggerError> {
    let event: CognitoEventUserPoolsPostConfirmation = event::parse(raw, TRIGGER_SOURCES)?;
    let attributes = &event.request.user_attributes;
    // Everything is validated before the first write: a bad event writes nothing.
    let sub = event::sub(attributes)?;
    let email = Email::parse(event::attribute(attributes, "email")?)
        .map_err(|e| TriggerError::invalid(format!("request.userAttributes.email: {e}")))?;
    // Confirmation alone does not prove the address (pre-sign-up may auto-confirm without
    // verifying it): only a verified email may take over another identity's row.
    let email_verified = attributes
        .get("email_verified")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));

    let provisioned = within(deps.settings.db_timeout, async {
        users::upsert(deps.db.pool().await?, sub, &email, email_verified).await
    })
    .await?
    .map_err(|taken| {
        tracing::info!(
            cognito_sub = sub,
            "the email is another account's and is not verified"
        );
        TriggerError::Rejected(taken.to_string())
    })?;
    tracing::info!(
        trigger_source = ?event.cognito_event_user_pools_header.trigger_source,
        user_id = %provisioned.user.id,
        cognito_sub = sub,
        created = provisioned.created,
        relinked = provisioned.relinked,
        "user provisioned"
    );
    if provisioned.created {
        encache_shared::metrics::count("sign_ups", 1, &[]);
    }
    Ok(event)
}
