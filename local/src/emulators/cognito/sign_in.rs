//! Signing in: an ID token from the emulated pool, after the pool's pre-token-generation
//! trigger ran for the sign-in.

use anyhow::{Context, bail};
use aws_sdk_cognitoidentityprovider::types::AuthFlowType;
use serde_json::json;

use super::{Pool, invoke, wired_triggers};
use crate::emulators::runtime::Runtime;
use crate::stack::Stack;

/// An ID token for the user (`USER_PASSWORD_AUTH`), as the app would get at sign-in.
pub async fn token(pool: &Pool, email: &str, password: &str) -> anyhow::Result<String> {
    let sdk = encache_shared::aws::sdk_config().await;
    let idp = aws_sdk_cognitoidentityprovider::Client::new(&sdk);
    let out = idp
        .initiate_auth()
        .client_id(&pool.client_id)
        .auth_flow(AuthFlowType::UserPasswordAuth)
        .auth_parameters("USERNAME", email)
        .auth_parameters("PASSWORD", password)
        .send()
        .await
        .context("signing in to the emulated pool")?;
    out.authentication_result
        .and_then(|r| r.id_token)
        .context("the emulator returned no ID token")
}

/// [`token`] after the pool's pre-token-generation trigger (V2_0) ran for this sign-in,
/// as Cognito runs it: a trigger that fails fails the sign-in. The emulator issues its own
/// token, so the claims the trigger adds are checked in its answer, not in the token.
pub async fn token_checked(
    stack: &Stack,
    pool: &Pool,
    email: &str,
    password: &str,
) -> anyhow::Result<String> {
    let token = token(pool, email, password).await?;
    let sdk = encache_shared::aws::sdk_config().await;
    let idp = aws_sdk_cognitoidentityprovider::Client::new(&sdk);
    let Some(function) = wired_triggers(stack, &idp, pool)
        .await?
        .pre_token_generation
    else {
        return Ok(token);
    };
    let user = idp
        .admin_get_user()
        .user_pool_id(&pool.user_pool_id)
        .username(email)
        .send()
        .await
        .context("reading the user from the emulated pool")?;
    let mut attributes = serde_json::Map::new();
    for a in user.user_attributes() {
        if let Some(v) = a.value() {
            attributes.insert(a.name().to_owned(), json!(v));
        }
    }
    attributes.insert("cognito:user_status".into(), json!("CONFIRMED"));
    let event = json!({
        "version": "2",
        "triggerSource": "TokenGeneration_Authentication",
        "region": stack.config.region,
        "userPoolId": pool.user_pool_id,
        "userName": user.username(),
        "callerContext": {"awsSdkVersion": "aws-sdk-unknown-unknown", "clientId": pool.client_id},
        "request": {
            "userAttributes": attributes,
            "groupConfiguration": {"groupsToOverride": [], "iamRolesToOverride": [], "preferredRole": null},
            "scopes": ["openid", "email"]
        },
        "response": {"claimsAndScopeOverrideDetails": null}
    });
    let runtime = Runtime::new(vec![stack.function_spec(&function)?]);
    let answer = invoke(&runtime, &function, &event).await;
    runtime.shutdown().await;
    let answer =
        answer.map_err(|e| anyhow::anyhow!("PreTokenGeneration failed with error {e}."))?;
    let answer: serde_json::Value =
        serde_json::from_slice(&answer).context("the pre-token-generation answer is not JSON")?;
    let claims = &answer["response"]["claimsAndScopeOverrideDetails"]["idTokenGeneration"]["claimsToAddOrOverride"];
    if !claims.is_object() {
        bail!("PreTokenGeneration ({function}) answered without V2 ID token claims: {answer}");
    }
    eprintln!("==> pre-token-generation ({function}) adds {claims}");
    Ok(token)
}
