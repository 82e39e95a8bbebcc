//! A local sign-up that behaves as Cognito's: the pre-sign-up trigger may reject it (and
//! then nothing is created), the user is created and confirmed in the emulated pool, and
//! post-confirmation runs. The emulator stores triggers but never calls them; this does.
//!
//! Which function is which trigger comes from the user pool's `LambdaConfig`, as Terraform
//! wired it (each ARN maps back to the stack's function with that ARN), so a wiring mistake
//! shows here. A pool of the local stack with nothing wired (`encache-local init` makes
//! those) uses the template's trigger functions; a deployed stack's pool must be wired.

use anyhow::{Context, bail};
use aws_lambda_events::cognito::{
    CognitoEventUserPoolsPostConfirmation, CognitoEventUserPoolsPreSignup,
};
use aws_sdk_cognitoidentityprovider::types::{AttributeType, AuthFlowType, MessageActionType};
use axum::body::Bytes;
use serde_json::json;

use crate::runtime::{InvokeError, Runtime};
use crate::stack::Stack;

/// The trigger functions of an unwired local pool, by the template's logical ids.
pub const PRE_SIGN_UP: &str = "PreSignUpFunction";
pub const POST_CONFIRMATION: &str = "PostConfirmationFunction";
pub const PRE_TOKEN_GENERATION: &str = "PreTokenGenerationFunction";

/// The stack's functions wired to a pool's triggers (logical ids).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Triggers {
    pub pre_sign_up: Option<String>,
    pub post_confirmation: Option<String>,
    pub pre_token_generation: Option<String>,
}

impl Triggers {
    /// Every trigger Cognito has for this pool, or the reason one is missing.
    pub fn require_all(&self) -> anyhow::Result<()> {
        let missing: Vec<&str> = [
            ("PreSignUp", &self.pre_sign_up),
            ("PostConfirmation", &self.post_confirmation),
            ("PreTokenGeneration", &self.pre_token_generation),
        ]
        .iter()
        .filter(|(_, f)| f.is_none())
        .map(|(name, _)| *name)
        .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            bail!(
                "the user pool has no {} trigger: Terraform's second apply \
                 (wire_auth_triggers=true) wires them from /encache/<env>/stack/*FunctionArn",
                missing.join(", ")
            )
        }
    }
}

/// The pool's `LambdaConfig`, each ARN mapped back to the function of this stack with that
/// ARN. An ARN that is no function of the stack is an error naming the trigger.
pub async fn wired_triggers(
    stack: &Stack,
    idp: &aws_sdk_cognitoidentityprovider::Client,
    pool: &Pool,
) -> anyhow::Result<Triggers> {
    let described = idp
        .describe_user_pool()
        .user_pool_id(&pool.user_pool_id)
        .send()
        .await
        .with_context(|| format!("describing user pool {}", pool.user_pool_id))?;
    let config = described.user_pool.and_then(|p| p.lambda_config);
    let Some(config) = config else {
        return Ok(unwired(stack));
    };
    let resolver = stack.resolver();
    let functions = stack.functions()?;
    let to_function = |trigger: &str, arn: Option<&str>| -> anyhow::Result<Option<String>> {
        let Some(arn) = arn.filter(|a| !a.is_empty()) else {
            return Ok(None);
        };
        functions
            .iter()
            .find(|f| resolver.function_arn(&f.logical_id).ok().as_deref() == Some(arn))
            .map(|f| Some(f.logical_id.clone()))
            .with_context(|| {
                format!("the user pool's {trigger} trigger is wired to {arn}, which is no function of this stack")
            })
    };
    let triggers = Triggers {
        pre_sign_up: to_function("PreSignUp", config.pre_sign_up())?,
        post_confirmation: to_function("PostConfirmation", config.post_confirmation())?,
        pre_token_generation: to_function(
            "PreTokenGeneration",
            config
                .pre_token_generation_config()
                .map(|c| c.lambda_arn())
                .or(config.pre_token_generation()),
        )?,
    };
    if triggers == Triggers::default() {
        return Ok(unwired(stack));
    }
    Ok(triggers)
}

/// Nothing wired: a deployed stack's pool runs no trigger (as Cognito would); the local
/// stack's own pool runs the template's trigger functions.
fn unwired(stack: &Stack) -> Triggers {
    if stack.is_deployed() {
        return Triggers::default();
    }
    let has = |id: &str| {
        stack
            .template
            .functions
            .contains_key(id)
            .then(|| id.to_owned())
    };
    Triggers {
        pre_sign_up: has(PRE_SIGN_UP),
        post_confirmation: has(POST_CONFIRMATION),
        pre_token_generation: has(PRE_TOKEN_GENERATION),
    }
}

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
        if !specs
            .iter()
            .any(|s: &crate::runtime::FunctionSpec| &s.logical_id == id)
        {
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
