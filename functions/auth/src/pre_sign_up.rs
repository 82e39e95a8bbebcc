//! Pre-sign-up: may this email address sign up, and is the user confirmed and their
//! email verified on the spot? Touches no database, so it answers in microseconds.

use aws_lambda_events::cognito::{
    CognitoEventUserPoolsPreSignup, CognitoEventUserPoolsPreSignupTriggerSource as Source,
};
use lambda_runtime::LambdaEvent;
use serde_json::Value;

use encache_shared::config::{Env, ProcessEnv};
use encache_shared::users::Email;

use crate::error::TriggerError;
use crate::event;
use crate::policy::SignUpPolicy;

pub const TRIGGER_SOURCES: &[&str] = &[
    "PreSignUp_SignUp",
    "PreSignUp_AdminCreateUser",
    "PreSignUp_ExternalProvider",
];

/// What the trigger needs, built once per container: the policy, and nothing else.
pub struct Deps {
    pub policy: SignUpPolicy,
}

impl Deps {
    pub async fn from_env() -> anyhow::Result<Self> {
        Ok(Self {
            policy: SignUpPolicy::from_env(&Env::new(&ProcessEnv))?,
        })
    }
}

/// Returns the event with its `response` filled in, or an error whose message Cognito
/// shows the person signing up.
pub async fn handle(
    deps: &Deps,
    event: LambdaEvent<Value>,
) -> Result<CognitoEventUserPoolsPreSignup, TriggerError> {
    decide(event.payload, &deps.policy).inspect_err(TriggerError::log)
}

fn decide(
    raw: Value,
    policy: &SignUpPolicy,
) -> Result<CognitoEventUserPoolsPreSignup, TriggerError> {
    let mut event: CognitoEventUserPoolsPreSignup = event::parse(raw, TRIGGER_SOURCES)?;
    let source = event
        .cognito_event_user_pools_header
        .trigger_source
        .clone()
        .unwrap_or_default();
    let raw_email = event
        .request
        .user_attributes
        .get("email")
        .map(String::as_str)
        .unwrap_or_default();
    let email = Email::parse(raw_email).map_err(|e| TriggerError::Rejected(e.to_string()))?;
    policy.check(&email).map_err(TriggerError::Rejected)?;

    // Cognito ignores these flags for AdminCreateUser; leave them off there so the
    // response says what actually happens.
    let by_user = !matches!(source, Source::AdminCreateUser);
    event.response.auto_confirm_user = by_user && policy.auto_confirm_users;
    event.response.auto_verify_email = by_user && policy.auto_verify_email;
    event.response.auto_verify_phone = false;
    tracing::info!(
        trigger_source = ?source,
        domain = email.domain(),
        auto_confirm = event.response.auto_confirm_user,
        auto_verify_email = event.response.auto_verify_email,
        "sign-up allowed"
    );
    Ok(event)
}
