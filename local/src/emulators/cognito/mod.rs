//! Cognito, as a local run needs it: the emulator's user pool, with sign-up and sign-in
//! behaving as Cognito's. The pre-sign-up trigger may reject a sign-up (and then nothing is
//! created), the user is created and confirmed in the emulated pool, and post-confirmation
//! runs; a sign-in runs pre-token-generation and gets tokens carrying its claims. The
//! emulator stores triggers but never calls them; this does.
//!
//! Which function is which trigger comes from the user pool's `LambdaConfig`, as Terraform
//! wired it (each ARN maps back to the stack's function with that ARN), so a wiring mistake
//! shows here. A pool of the local stack with nothing wired (`encache-local init` makes
//! those) uses the template's trigger functions; a deployed stack's pool must be wired.
//!
//! This module is the pool and its users; [`triggers`] finds the functions wired to the
//! pool, [`sign_up`] runs a sign-up through them, [`sign_in`] runs a sign-in through the
//! pre-token-generation trigger and [`issuer`] issues its tokens as Cognito would, with the
//! trigger's claims.

pub mod issuer;
pub mod sign_in;
pub mod sign_up;
pub mod triggers;

use anyhow::Context;
use axum::body::Bytes;

use crate::emulators::runtime::{InvokeError, Runtime};
use crate::stack::Stack;

pub use issuer::{Issuer, Tokens};
pub use sign_in::{token, token_checked, tokens};
pub use sign_up::{create, create_checked};
pub use triggers::{Triggers, wired_triggers};

/// The local stack's user pool and app client.
pub struct Pool {
    pub user_pool_id: String,
    pub client_id: String,
}

impl Pool {
    /// The pool of the local env file (template parameters, or the functions' variables).
    pub fn from_stack(stack: &Stack) -> anyhow::Result<Self> {
        let get = |keys: &[&str]| {
            keys.iter()
                .find_map(|k| {
                    stack
                        .parameters
                        .get(*k)
                        .or_else(|| stack.env.parameters.get(*k))
                })
                .filter(|v| !v.is_empty() && !v.starts_with("REPLACE_WITH"))
                .cloned()
        };
        Ok(Self {
            user_pool_id: get(&["CognitoUserPoolId", "COGNITO_USER_POOL_ID"]).with_context(
                || {
                    format!(
                        "{} has no CognitoUserPoolId: run scripts/start-local.sh --init",
                        stack.config.env_vars.display()
                    )
                },
            )?,
            client_id: get(&["CognitoAppClientId", "COGNITO_APP_CLIENT_ID"]).with_context(
                || {
                    format!(
                        "{} has no CognitoAppClientId: run scripts/start-local.sh --init",
                        stack.config.env_vars.display()
                    )
                },
            )?,
        })
    }
}

/// A Cognito user pool and app client like the Terraform ones (email sign-in,
/// `USER_PASSWORD_AUTH` for the local token command). Under the dev services' HASH id
/// strategies the ids follow from the name and settings, so a replayed emulator gives the
/// pool and client the ids they had.
pub async fn create_pool(
    sdk: &aws_config::SdkConfig,
    pool_name: &str,
) -> anyhow::Result<(String, String)> {
    use aws_sdk_cognitoidentityprovider::types::{ExplicitAuthFlowsType, UsernameAttributeType};
    let idp = aws_sdk_cognitoidentityprovider::Client::new(sdk);
    let pool = idp
        .create_user_pool()
        .pool_name(pool_name)
        .username_attributes(UsernameAttributeType::Email)
        .auto_verified_attributes(
            aws_sdk_cognitoidentityprovider::types::VerifiedAttributeType::Email,
        )
        .send()
        .await
        .context("creating the Cognito user pool")?
        .user_pool
        .and_then(|p| p.id)
        .context("the emulator returned no pool id")?;
    let client = idp
        .create_user_pool_client()
        .user_pool_id(&pool)
        .client_name(format!("{pool_name}-app"))
        .explicit_auth_flows(ExplicitAuthFlowsType::AllowUserPasswordAuth)
        .explicit_auth_flows(ExplicitAuthFlowsType::AllowRefreshTokenAuth)
        // As Cognito's ID tokens carry them (the emulator adds only the attributes a
        // client may read): the API relinks a new identity to its row by verified email.
        .read_attributes("email")
        .read_attributes("email_verified")
        .send()
        .await
        .context("creating the Cognito app client")?
        .user_pool_client
        .and_then(|c| c.client_id)
        .context("the emulator returned no client id")?;
    Ok((pool, client))
}

/// Deletes the user from the pool (Cognito runs no trigger on that).
pub async fn delete(pool: &Pool, email: &str) -> anyhow::Result<()> {
    let sdk = encache_shared::aws::sdk_config().await;
    aws_sdk_cognitoidentityprovider::Client::new(&sdk)
        .admin_delete_user()
        .user_pool_id(&pool.user_pool_id)
        .username(email)
        .send()
        .await
        .with_context(|| format!("deleting {email} from the emulated pool"))?;
    Ok(())
}

/// One trigger invocation with its event as JSON.
pub(super) async fn invoke<T: serde::Serialize>(
    runtime: &Runtime,
    function: &str,
    event: &T,
) -> Result<Bytes, InvokeError> {
    let payload = serde_json::to_vec(event).unwrap_or_default();
    runtime.invoke(function, Bytes::from(payload)).await
}
