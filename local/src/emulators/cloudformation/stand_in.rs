//! The stand-in stack: a CloudFormation stack in the emulator named like the local stack,
//! carrying the template's `Outputs` resolved locally, so the post-deploy sync
//! (`StackSyncFunction`, `stack-sync-cli`) has a stack to describe. Topics are not
//! created, so an output such as `CostAlertTopicArn` names a topic the emulator does not
//! have.

use anyhow::Context;

use crate::stack::Stack;
use crate::template::referenced_ids;

/// The template's `Outputs` as the local stack publishes them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LocalOutputs {
    /// OutputKey → value, and the output's description.
    pub values: std::collections::BTreeMap<String, (String, Option<String>)>,
    /// Outputs that have no local value, with the reason (they are left out of the stack).
    pub skipped: Vec<(String, String)>,
}

/// Resolves every output whose `Condition` (if any) holds locally. An output built from the
/// HTTP API's id (`https://${HttpApi}.execute-api...`) is the local gateway's `api_url`.
pub fn local_outputs(stack: &Stack, api_url: &str) -> anyhow::Result<LocalOutputs> {
    let resolver = stack.resolver();
    let mut out = LocalOutputs::default();
    for (key, def) in &stack.template.outputs {
        if let Some(c) = &def.condition
            && !resolver
                .condition(c)
                .with_context(|| format!("output {key}: condition {c}"))?
        {
            continue;
        }
        let is_api_url = referenced_ids(&def.value)
            .iter()
            .any(|id| stack.template.http_apis.contains_key(id));
        let value = if is_api_url {
            Ok(api_url.trim_end_matches('/').to_owned())
        } else {
            resolver.string(&def.value)
        };
        match value {
            Ok(v) if !v.is_empty() => {
                out.values.insert(key.clone(), (v, def.description.clone()));
            }
            Ok(_) => out
                .skipped
                .push((key.clone(), "its local value is empty".into())),
            Err(e) => out.skipped.push((key.clone(), e.to_string())),
        }
    }
    Ok(out)
}

/// The body of the local stand-in stack: one resource that creates nothing (a stack needs
/// one) and the outputs as literal values.
fn stand_in_template(outputs: &LocalOutputs) -> serde_json::Value {
    let outputs: serde_json::Map<String, serde_json::Value> = outputs
        .values
        .iter()
        .map(|(k, (v, d))| {
            let mut o = serde_json::json!({ "Value": v });
            if let Some(d) = d {
                o["Description"] = serde_json::json!(d);
            }
            (k.clone(), o)
        })
        .collect();
    serde_json::json!({
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": "encache-local: the outputs template.yaml would publish, resolved locally",
        "Resources": {
            "LocalStandIn": { "Type": "AWS::CloudFormation::WaitConditionHandle" }
        },
        "Outputs": outputs,
    })
}

/// Creates (or, when it `exists`, updates) the CloudFormation stack named like the local
/// stack, with the template's outputs, so `StackSyncFunction` and `stack-sync-cli` have a
/// stack to describe. Returns the stack id.
pub async fn create_or_update(
    stack: &Stack,
    sdk: &aws_config::SdkConfig,
    outputs: &LocalOutputs,
    exists: bool,
) -> anyhow::Result<String> {
    let cfn = aws_sdk_cloudformation::Client::new(sdk);
    let name = &stack.config.stack_name;
    let body = stand_in_template(outputs).to_string();
    if exists {
        match cfn
            .update_stack()
            .stack_name(name)
            .template_body(&body)
            .send()
            .await
        {
            Ok(_) => {}
            Err(e)
                if e.as_service_error()
                    .and_then(|s| s.meta().message())
                    .is_some_and(|m| m.contains("No updates are to be performed")) => {}
            Err(e) => {
                return Err(anyhow::Error::new(e).context(format!("updating stack {name}")));
            }
        }
    } else {
        cfn.create_stack()
            .stack_name(name)
            .template_body(&body)
            .send()
            .await
            .with_context(|| format!("creating stack {name}"))?;
    }
    cfn.describe_stacks()
        .stack_name(name)
        .send()
        .await
        .with_context(|| format!("describing stack {name}"))?
        .stacks()
        .first()
        .and_then(|s| s.stack_id.clone())
        .with_context(|| format!("the emulator has no stack {name} after creating it"))
}

/// Whether the emulator has the stack (a first deploy creates, later ones update).
pub async fn stack_exists(stack: &Stack, sdk: &aws_config::SdkConfig) -> anyhow::Result<bool> {
    let cfn = aws_sdk_cloudformation::Client::new(sdk);
    let name = &stack.config.stack_name;
    match cfn.describe_stacks().stack_name(name).send().await {
        Ok(out) => Ok(out.stacks().iter().any(|s| {
            s.stack_status()
                .is_some_and(|st| st.as_str() != "DELETE_COMPLETE")
        })),
        Err(e) => {
            let message = e.as_service_error().and_then(|s| s.meta().message());
            if message.is_some_and(|m| m.contains("does not exist")) {
                Ok(false)
            } else {
                Err(anyhow::Error::new(e).context(format!("describing stack {name}")))
            }
        }
    }
}
