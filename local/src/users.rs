//! A local sign-up that behaves as Cognito's: the pre-sign-up trigger may reject it (and
//! then nothing is created), the user is created and confirmed in the emulated pool, and
//! post-confirmation runs. The emulator stores triggers but never calls them; this does.

use anyhow::{Context, bail};
use aws_lambda_events::cognito::{
    CognitoEventUserPoolsPostConfirmation, CognitoEventUserPoolsPreSignup,
};
use aws_sdk_cognitoidentityprovider::types::{AttributeType, AuthFlowType, MessageActionType};
use axum::body::Bytes;
use serde_json::json;

use crate::runtime::{InvokeError, Runtime};
use crate::stack::Stack;

/// The trigger functions, by the template's logical ids.
pub const PRE_SIGN_UP: &str = "PreSignUpFunction";
pub const POST_CONFIRMATION: &str = "PostConfirmationFunction";

pub struct Pool {
    pub user_pool_id: String,
    pub client_id: String,
}

impl Pool {
    /// The pool of the local env file (template parameters, or the functions' variables).
    pub fn from_stack(stack: &Stack) -> anyhow::Result<Self> {
        let get = |keys: &[&str]| {
            keys.iter()
                .find_map(|k| stack.env.parameters.get(*k))
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

pub async fn create(stack: &Stack, pool: &Pool, email: &str, password: &str) -> anyhow::Result<()> {
    let mut specs = Vec::new();
    for id in [PRE_SIGN_UP, POST_CONFIRMATION] {
        if stack.template.functions.contains_key(id) {
            specs.push(stack.function_spec(id)?);
        } else {
            eprintln!("warning: the template has no {id}; that trigger is skipped");
        }
    }
    let runtime = Runtime::new(specs);
    let result = create_with(stack, &runtime, pool, email, password).await;
    runtime.shutdown().await;
    result
}

async fn create_with(
    stack: &Stack,
    runtime: &Runtime,
    pool: &Pool,
    email: &str,
    password: &str,
) -> anyhow::Result<()> {
    let region = &stack.config.region;
    let has = |id: &str| stack.template.functions.contains_key(id);
    if has(PRE_SIGN_UP) {
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
        if let Err(e) = invoke(runtime, PRE_SIGN_UP, &event).await {
            let message = match &e {
                InvokeError::Function { message, .. } => message.clone(),
                other => other.to_string(),
            };
            bail!("PreSignUp failed with error {message}.");
        }
    }

    let sdk = encache_shared::aws::sdk_config().await;
    let idp = aws_sdk_cognitoidentityprovider::Client::new(&sdk);
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

    if has(POST_CONFIRMATION) {
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
        invoke(runtime, POST_CONFIRMATION, &event)
            .await
            .map_err(|e| anyhow::anyhow!("PostConfirmation failed with error {e}."))?;
    }
    Ok(())
}

async fn invoke<T: serde::Serialize>(
    runtime: &Runtime,
    function: &str,
    event: &T,
) -> Result<Bytes, InvokeError> {
    let payload = serde_json::to_vec(event).unwrap_or_default();
    runtime.invoke(function, Bytes::from(payload)).await
}

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
