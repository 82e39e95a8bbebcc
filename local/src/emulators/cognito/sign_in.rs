//! Signing in: the emulated pool checks the password, the pool's pre-token-generation
//! trigger (V2_0) runs for the sign-in as Cognito runs it, and the local [`issuer`]
//! issues the ID and access tokens with the trigger's response applied.
//!
//! [`issuer`]: super::issuer

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Context;
use aws_sdk_cognitoidentityprovider::types::AuthFlowType;
use serde_json::{Map, Value, json};

use super::issuer::{self, Issuer, SignIn, Tokens};
use super::{Pool, invoke, wired_triggers};
use crate::emulators::runtime::{InvokeError, Runtime};
use crate::stack::Stack;

/// The access token's scope of a `USER_PASSWORD_AUTH` sign-in (no OAuth scopes).
pub const SIGN_IN_SCOPE: &str = "aws.cognito.signin.user.admin";

/// The emulator's own ID token for the user (`USER_PASSWORD_AUTH`): no trigger ran, so it
/// carries none of a trigger's claims. [`tokens`] issues the tokens Cognito would.
pub async fn token(pool: &Pool, email: &str, password: &str) -> anyhow::Result<String> {
    let sdk = encache_shared::aws::sdk_config().await;
    let idp = aws_sdk_cognitoidentityprovider::Client::new(&sdk);
    sign_in_to_emulator(&idp, pool, email, password, &BTreeMap::new())
        .await?
        .id_token
        .context("the emulator returned no ID token")
}

async fn sign_in_to_emulator(
    idp: &aws_sdk_cognitoidentityprovider::Client,
    pool: &Pool,
    email: &str,
    password: &str,
    client_metadata: &BTreeMap<String, String>,
) -> anyhow::Result<aws_sdk_cognitoidentityprovider::types::AuthenticationResultType> {
    let mut request = idp
        .initiate_auth()
        .client_id(&pool.client_id)
        .auth_flow(AuthFlowType::UserPasswordAuth)
        .auth_parameters("USERNAME", email)
        .auth_parameters("PASSWORD", password);
    for (k, v) in client_metadata {
        request = request.client_metadata(k, v);
    }
    request
        .send()
        .await
        .context("signing in to the emulated pool")?
        .authentication_result
        .context("the emulated pool answered the sign-in with a challenge, not tokens")
}

/// The ID token of [`tokens`].
pub async fn token_checked(
    stack: &Stack,
    pool: &Pool,
    email: &str,
    password: &str,
) -> anyhow::Result<String> {
    Ok(tokens(stack, pool, email, password, &BTreeMap::new())
        .await?
        .id_token)
}

/// The ID and access tokens of a sign-in, as Cognito issues them: the password checked by
/// the emulated pool, then the pool's pre-token-generation trigger (a trigger that fails
/// fails the sign-in, with Cognito's wording), then both tokens from the local issuer
/// with the trigger's response applied. `client_metadata` is InitiateAuth's
/// `ClientMetadata`, which Cognito passes to the trigger.
pub async fn tokens(
    stack: &Stack,
    pool: &Pool,
    email: &str,
    password: &str,
    client_metadata: &BTreeMap<String, String>,
) -> anyhow::Result<Tokens> {
    let sdk = encache_shared::aws::sdk_config().await;
    let idp = aws_sdk_cognitoidentityprovider::Client::new(&sdk);
    sign_in_to_emulator(&idp, pool, email, password, client_metadata).await?;
    let sign_in = read_sign_in(stack, &idp, pool, email).await?;
    let issuer = Issuer::for_stack(stack)?;

    let Some(function) = wired_triggers(stack, &idp, pool)
        .await?
        .pre_token_generation
    else {
        return issuer.issue(&sign_in, &Value::Null);
    };
    let mut attributes = sign_in.attributes.clone();
    attributes
        .entry("cognito:user_status")
        .or_insert_with(|| json!("CONFIRMED"));
    let mut request = json!({
        "userAttributes": attributes,
        "groupConfiguration": sign_in.group_configuration(),
        "scopes": sign_in.scopes,
    });
    if !client_metadata.is_empty() {
        request["clientMetadata"] = json!(client_metadata);
    }
    let event = json!({
        "version": "2",
        "triggerSource": "TokenGeneration_Authentication",
        "region": stack.config.region,
        "userPoolId": pool.user_pool_id,
        "userName": sign_in.username,
        "callerContext": {"awsSdkVersion": "aws-sdk-unknown-unknown", "clientId": pool.client_id},
        "request": request,
        "response": {"claimsAndScopeOverrideDetails": null}
    });
    let runtime = Runtime::new(vec![stack.function_spec(&function)?]);
    let answer = invoke(&runtime, &function, &event).await;
    runtime.shutdown().await;
    let answer = answer.map_err(|e| {
        let message = match &e {
            InvokeError::Function { message, .. } => message.clone(),
            other => other.to_string(),
        };
        eprintln!("==> the PreTokenGeneration trigger ({function}) failed the sign-in");
        anyhow::anyhow!("PreTokenGeneration failed with error {message}.")
    })?;
    let answer: Value = serde_json::from_slice(&answer)
        .context("PreTokenGeneration failed: its answer is not JSON")?;
    let response = answer.get("response").cloned().unwrap_or(Value::Null);
    issuer
        .issue(&sign_in, &response)
        .with_context(|| format!("the PreTokenGeneration trigger {function}"))
}

/// The user as the emulated pool has it: attributes, the attributes the app client may
/// read, groups (best precedence first) and their roles.
async fn read_sign_in(
    stack: &Stack,
    idp: &aws_sdk_cognitoidentityprovider::Client,
    pool: &Pool,
    email: &str,
) -> anyhow::Result<SignIn> {
    let user = idp
        .admin_get_user()
        .user_pool_id(&pool.user_pool_id)
        .username(email)
        .send()
        .await
        .context("reading the user from the emulated pool")?;
    let mut attributes = Map::new();
    for a in user.user_attributes() {
        if let Some(v) = a.value() {
            attributes.insert(a.name().to_owned(), json!(v));
        }
    }
    if let Some(status) = user.user_status() {
        attributes.insert("cognito:user_status".into(), json!(status.as_str()));
    }
    let client = idp
        .describe_user_pool_client()
        .user_pool_id(&pool.user_pool_id)
        .client_id(&pool.client_id)
        .send()
        .await
        .context("reading the app client from the emulated pool")?;
    let readable: BTreeSet<String> = client
        .user_pool_client()
        .map(|c| c.read_attributes().to_vec())
        .unwrap_or_default()
        .into_iter()
        .collect();
    let mut groups = idp
        .admin_list_groups_for_user()
        .user_pool_id(&pool.user_pool_id)
        .username(email)
        .send()
        .await
        .context("reading the user's groups from the emulated pool")?
        .groups
        .unwrap_or_default();
    groups.sort_by_key(|g| g.precedence().unwrap_or(i32::MAX));
    let roles: Vec<String> = groups
        .iter()
        .filter_map(|g| g.role_arn().map(str::to_owned))
        .collect();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    Ok(SignIn {
        issuer: issuer::issuer_url(&stack.config.region, &pool.user_pool_id),
        client_id: pool.client_id.clone(),
        username: user.username().to_owned(),
        attributes,
        readable: (!readable.is_empty()).then_some(readable),
        groups: groups
            .iter()
            .filter_map(|g| g.group_name().map(str::to_owned))
            .collect(),
        preferred_role: roles.first().cloned(),
        roles,
        scopes: vec![SIGN_IN_SCOPE.to_owned()],
        now,
    })
}
