//! Pre-token-generation (V2 event): add encache's claims to the ID and access tokens.
//!
//! Nothing depends on these claims (handlers resolve the caller by `sub`), so a slow or
//! absent database costs the claims, never the sign-in.

use std::collections::HashMap;

use aws_lambda_events::cognito::{
    ClaimsAndScopeOverrideDetailsV2, CognitoAccessTokenGenerationV2,
    CognitoEventUserPoolsPreTokenGenV2, CognitoIdTokenGenerationV2,
};
use encache_shared::db::{self, StepError, within};
use encache_shared::users;
use lambda_runtime::LambdaEvent;
use serde_json::Value;

use crate::error::TriggerError;
use crate::event;
use crate::settings::TriggerSettings;

pub const TRIGGER_SOURCES: &[&str] = &[
    "TokenGeneration_HostedAuth",
    "TokenGeneration_Authentication",
    "TokenGeneration_NewPasswordChallenge",
    "TokenGeneration_AuthenticateDevice",
    "TokenGeneration_RefreshTokens",
];

/// The user's id in encache's database.
pub const USER_ID_CLAIM: &str = "encache:user_id";
/// The user's plan: `free`, `plus` or `pro`.
pub const PLAN_CLAIM: &str = "encache:plan";

/// Claims Cognito owns: a response that adds, overrides or suppresses one of these fails
/// token generation, so encache never names them.
pub const RESERVED_CLAIMS: &[&str] = &[
    "acr",
    "amr",
    "at_hash",
    "aud",
    "auth_time",
    "azp",
    "c_hash",
    "client_id",
    "exp",
    "iat",
    "identities",
    "iss",
    "jti",
    "nbf",
    "nonce",
    "origin_jti",
    "scope",
    "sub",
    "token_use",
    "username",
    "cognito:username",
    "cognito:groups",
    "cognito:roles",
    "cognito:preferred_role",
    "event_id",
    "device_key",
    "version",
];

/// What the trigger needs, built once per container (its settings: [`TriggerSettings::pre_token_generation`]).
pub type Deps = crate::TriggerDeps;

/// This trigger's [`Deps`], from the environment.
pub async fn deps_from_env() -> anyhow::Result<Deps> {
    Deps::with_settings(TriggerSettings::pre_token_generation).await
}

pub async fn handle(
    deps: &Deps,
    event: LambdaEvent<Value>,
) -> Result<CognitoEventUserPoolsPreTokenGenV2, TriggerError> {
    customise(event.payload, deps)
        .await
        .inspect_err(TriggerError::log)
}

async fn customise(
    mut raw: Value,
    deps: &Deps,
) -> Result<CognitoEventUserPoolsPreTokenGenV2, TriggerError> {
    // `scopes` is optional in what Cognito documents; the crate's type requires it.
    if let Some(request) = raw.get_mut("request").and_then(Value::as_object_mut)
        && request.get("scopes").is_none_or(Value::is_null)
    {
        request.insert("scopes".into(), Value::Array(Vec::new()));
    }
    let mut event: CognitoEventUserPoolsPreTokenGenV2 = event::parse(raw, TRIGGER_SOURCES)?;
    let sub = event::sub(&event.request.user_attributes)?.to_owned();

    let lookup = async { users::find_by_sub(deps.db.pool().await?, &sub).await };
    let claims = match within(deps.settings.db_timeout, lookup).await {
        Ok(Some(user)) => HashMap::from([
            (USER_ID_CLAIM.to_owned(), Value::String(user.id.to_string())),
            (PLAN_CLAIM.to_owned(), Value::String(user.plan)),
        ]),
        Ok(None) => {
            tracing::info!(cognito_sub = %sub, "no user row yet; tokens issued without encache claims");
            HashMap::new()
        }
        // Sign-in must not fail for the claims: an outage is expected now and then, any
        // other database error is a bug worth an ERROR line; both issue plain tokens.
        Err(StepError::Failed(e)) if !db::is_unavailable(&e) => {
            tracing::error!(cognito_sub = %sub, error = format!("{e:#}"), "claim lookup failed; tokens issued without encache claims");
            HashMap::new()
        }
        Err(e) => {
            tracing::warn!(cognito_sub = %sub, error = %e, "database unavailable; tokens issued without encache claims");
            HashMap::new()
        }
    };
    event.response.claims_and_scope_override_details = Some(overrides(&event, claims));
    Ok(event)
}

/// The V2 response: the same claims in both tokens, nothing suppressed, and the
/// request's groups copied back — `groupOverrideDetails` replaces `cognito:groups`, so
/// leaving it empty would strip the user's groups.
fn overrides(
    event: &CognitoEventUserPoolsPreTokenGenV2,
    claims: HashMap<String, Value>,
) -> ClaimsAndScopeOverrideDetailsV2 {
    debug_assert!(
        claims
            .keys()
            .all(|k| !RESERVED_CLAIMS.contains(&k.as_str()))
    );
    let mut id_token = CognitoIdTokenGenerationV2::default();
    id_token.claims_to_add_or_override = claims.clone();
    let mut access_token = CognitoAccessTokenGenerationV2::default();
    access_token.claims_to_add_or_override = claims;
    let mut details = ClaimsAndScopeOverrideDetailsV2::default();
    details.group_override_details = event.request.group_configuration.clone();
    details.id_token_generation = Some(id_token);
    details.access_token_generation = Some(access_token);
    details
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encache_claims_are_not_reserved_and_are_namespaced() {
        for claim in [USER_ID_CLAIM, PLAN_CLAIM] {
            assert!(!RESERVED_CLAIMS.contains(&claim));
            assert!(claim.starts_with("encache:"));
        }
    }
}
