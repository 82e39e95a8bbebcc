//! A local sign-up as Cognito runs it: pre-sign-up may refuse it (then nothing is
//! created), the user is created and confirmed in the emulated pool, post-confirmation runs.

use anyhow::{Context, bail};
use aws_lambda_events::cognito::{
    CognitoEventUserPoolsPostConfirmation, CognitoEventUserPoolsPreSignup,
};
use aws_sdk_cognitoidentityprovider::types::{AttributeType, MessageActionType};
use serde_json::json;

use super::{Pool, Triggers, invoke, wired_triggers};
use crate::emulators::runtime::{FunctionSpec, InvokeError, Runtime};
use crate::stack::Stack;

pub async fn create(stack: &Stack, pool: &Pool, email: &str, password: &str) -> anyhow::Result<()> {
    create_checked(stack, pool, email, password, false).await
}

/// [`create`]; with `require_wired`, every trigger must be wired to the pool first (what
/// a deploy's smoke test asks: a pool Terraform left unwired is a failed deploy).
pub async fn create_checked(
    stack: &Stack,
    pool: &Pool,
    email: &str,
    password: &str,
    require_wired: bool,
) -> anyhow::Result<()> {
    let sdk = encache_shared::aws::sdk_config().await;
    let idp = aws_sdk_cognitoidentityprovider::Client::new(&sdk);
    let triggers = wired_triggers(stack, &idp, pool).await?;
    if require_wired {
        triggers.require_all()?;
    }
    let mut specs = Vec::new();
    for id in [&triggers.pre_sign_up, &triggers.post_confirmation]
        .into_iter()
        .flatten()
    {
        if !specs.iter().any(|s: &FunctionSpec| &s.logical_id == id) {
            specs.push(stack.function_spec(id)?);
        }
    }
    let runtime = Runtime::new(specs);
    let result = create_with(stack, &runtime, &idp, &triggers, pool, email, password).await;
    runtime.shutdown().await;
    result
}

async fn create_with(
    stack: &Stack,
    runtime: &Runtime,
    idp: &aws_sdk_cognitoidentityprovider::Client,
    triggers: &Triggers,
    pool: &Pool,
    email: &str,
    password: &str,
) -> anyhow::Result<()> {
    let region = &stack.config.region;
    if let Some(function) = &triggers.pre_sign_up {
        let event: CognitoEventUserPoolsPreSignup = serde_json::from_value(json!({
            "version": "1",
            "triggerSource": "PreSignUp_SignUp",
            "region": region,
            "userPoolId": pool.user_pool_id,
            "userName": email,
            "callerContext": {"awsSdkVersion": "aws-sdk-unknown-unknown", "clientId": pool.client_id},
            "request": {"userAttributes": {"email": email}, "validationData": null},
            "response": {"autoConfirmUser": false, "autoVerifyEmail": false, "autoVerifyPhone": false}
        }))
        .context("building the pre-sign-up event")?;
        if let Err(e) = invoke(runtime, function, &event).await {
            let message = match &e {
                InvokeError::Function { message, .. } => message.clone(),
                other => other.to_string(),
            };
            // Cognito's own wording; the log names the function.
            eprintln!("==> the PreSignUp trigger ({function}) refused the sign-up");
            bail!("PreSignUp failed with error {message}.");
        }
    }

    let attr = |k: &str, v: &str| AttributeType::builder().name(k).value(v).build();
    let created = idp
        .admin_create_user()
        .user_pool_id(&pool.user_pool_id)
        .username(email)
        .user_attributes(attr("email", email)?)
        .user_attributes(attr("email_verified", "true")?)
        .message_action(MessageActionType::Suppress)
        .send()
        .await
        .context("creating the user in the emulated pool")?;
    idp.admin_set_user_password()
        .user_pool_id(&pool.user_pool_id)
        .username(email)
        .password(password)
        .permanent(true)
        .send()
        .await
        .context("setting the user's password")?;
    let user = created.user.context("the emulator returned no user")?;
    let username = user.username.clone().unwrap_or_else(|| email.to_owned());
    let mut attributes = serde_json::Map::new();
    for a in user.attributes() {
        if let Some(v) = a.value() {
            attributes.insert(a.name().to_owned(), json!(v));
        }
    }
    attributes.insert("cognito:user_status".into(), json!("CONFIRMED"));
    eprintln!(
        "==> created {email} (sub {})",
        attributes
            .get("sub")
            .and_then(|s| s.as_str())
            .unwrap_or("?")
    );

    if let Some(function) = &triggers.post_confirmation {
        let event: CognitoEventUserPoolsPostConfirmation = serde_json::from_value(json!({
            "version": "1",
            "triggerSource": "PostConfirmation_ConfirmSignUp",
            "region": region,
            "userPoolId": pool.user_pool_id,
            "userName": username,
            "callerContext": {"awsSdkVersion": "aws-sdk-unknown-unknown", "clientId": pool.client_id},
            "request": {"userAttributes": attributes},
            "response": {}
        }))
        .context("building the post-confirmation event")?;
        invoke(runtime, function, &event).await.map_err(|e| {
            anyhow::anyhow!("PostConfirmation failed with error {e} (trigger function {function}).")
        })?;
    }
    Ok(())
}
