//! Which of the stack's functions run as the pool's triggers: the pool's `LambdaConfig`
//! as Terraform wired it, or, for the local stack's own unwired pool, the template's
//! trigger functions.

use anyhow::{Context, bail};

use super::Pool;
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
            .find(|f| resolver.names_function(&f.logical_id, arn))
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

/// The unwired local pool's function for a Cognito `triggerSource` (`PreSignUp_SignUp`,
/// `PostConfirmation_ConfirmSignUp`, `TokenGeneration_Authentication`, ...).
pub fn function_for_trigger_source(trigger_source: &str) -> Option<&'static str> {
    let kind = trigger_source.split('_').next()?;
    match kind {
        "PreSignUp" => Some(PRE_SIGN_UP),
        "PostConfirmation" => Some(POST_CONFIRMATION),
        "TokenGeneration" => Some(PRE_TOKEN_GENERATION),
        _ => None,
    }
}
