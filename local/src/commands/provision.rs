//! `encache-local provision`: what the template declares and the functions use, created
//! in the AWS emulator as a deploy creates it: the data key (a local alias's key, when
//! missing), buckets with their notifications (to queues
//! the local runtime polls), DynamoDB tables, SSM parameters with their local values, the template's custom
//! resources (the database migrations), and the stack itself carrying the template's
//! `Outputs`, for the post-deploy sync. Every step is idempotent: the emulator forgets
//! everything when it stops, so every start runs them.

use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use crate::emulators::cloudformation::{custom_resources, stand_in};
use crate::emulators::codedeploy;
use crate::emulators::dynamodb;
use crate::emulators::event_sources::{eventbridge, s3};
use crate::emulators::kms;
use crate::env;
use crate::stack::Stack;

#[derive(Debug, Args)]
pub struct ProvisionArgs {
    /// The API's URL, published as the outputs built from the HTTP API's id (`ApiUrl`).
    #[arg(long, default_value = "http://127.0.0.1:3000", env = "ENCACHE_API_URL")]
    pub api_url: String,
    /// Do not run the template's custom resources (the database migrations).
    #[arg(long)]
    pub no_custom_resources: bool,
    /// Do not run the PreTraffic hooks of the functions' deployment preferences.
    #[arg(long)]
    pub no_traffic_hooks: bool,
}

pub async fn run(stack: &Stack, args: &ProvisionArgs) -> anyhow::Result<ExitCode> {
    let sdk = encache_shared::aws::sdk_config().await;
    if let Some(key) = kms::provision(stack, &sdk).await? {
        eprintln!("==> data key {key}");
    }
    let subs = s3::provision(stack, &sdk).await?;
    let tables = dynamodb::provision(stack, &sdk).await?;
    // A deploy's parameters were written by Terraform; the local ones come from the env file.
    let n = if stack.is_deployed() {
        0
    } else {
        ssm_parameters(stack, &sdk).await?
    };
    let exists = stand_in::stack_exists(stack, &sdk).await?;
    if !args.no_custom_resources {
        custom_resources::run_all(stack, exists).await?;
    }
    // Then, as CodeDeploy does before it moves a live alias: the PreTraffic hooks.
    let hooks = if args.no_traffic_hooks {
        0
    } else {
        codedeploy::run_all(stack).await?
    };
    let outputs = stand_in::local_outputs(stack, &args.api_url)?;
    for (key, why) in &outputs.skipped {
        eprintln!("warning: output {key} is left out of the local stack: {why}");
    }
    let stack_id = stand_in::create_or_update(stack, &sdk, &outputs, exists).await?;
    // As CloudFormation tells EventBridge: the post-deploy rules (the sync) see it.
    let status = if exists {
        "UPDATE_COMPLETE"
    } else {
        "CREATE_COMPLETE"
    };
    let (_, matched) =
        eventbridge::put(stack, &sdk, eventbridge::stack_status_change(stack, status)).await?;
    let rules: Vec<String> = matched.iter().map(eventbridge::Rule::name).collect();
    eprintln!(
        "==> put the stack's {status} event on the local bus (rules: {})",
        if rules.is_empty() {
            "none".into()
        } else {
            rules.join(", ")
        }
    );
    eprintln!(
        "==> provisioned {} bucket notification(s), {} table(s), {n} SSM parameter(s), \
         {hooks} PreTraffic hook run(s), stack {stack_id} with {} output(s)",
        subs.len(),
        tables.len(),
        outputs.values.len()
    );
    Ok(ExitCode::SUCCESS)
}

/// SSM-typed parameters get their local values under their SSM names, as Terraform would
/// have written them.
pub async fn ssm_parameters(stack: &Stack, sdk: &aws_config::SdkConfig) -> anyhow::Result<usize> {
    let ssm = aws_sdk_ssm::Client::new(sdk);
    let values = &stack.parameters;
    let mut n = 0;
    for (name, def) in &stack.template.parameters {
        let (Some(value), Some(serde_yaml::Value::String(path))) = (values.get(name), &def.default)
        else {
            continue;
        };
        if !def.is_ssm() {
            continue;
        }
        ssm.put_parameter()
            .name(path)
            .value(value)
            .r#type(aws_sdk_ssm::types::ParameterType::String)
            .overwrite(true)
            .send()
            .await
            .with_context(|| format!("writing SSM parameter {path}"))?;
        n += 1;
    }
    // Secrets the functions read by name (`*_PARAMETER` variables): a random local value
    // when the emulator has none, so no secret is ever written in a file.
    let data_key = kms::provision(stack, sdk).await?;
    let resolver = stack.resolver();
    let mut names = std::collections::BTreeSet::new();
    for f in stack.template.functions.values() {
        if let Ok(vars) = env::declared_env(f, &resolver, &stack.env) {
            names.extend(
                vars.into_iter()
                    .filter(|(k, v)| k.ends_with("_PARAMETER") && v.starts_with('/'))
                    .map(|(_, v)| v),
            );
        }
    }
    for name in names {
        if ssm.get_parameter().name(&name).send().await.is_ok() {
            continue;
        }
        ssm.put_parameter()
            .name(&name)
            .value(uuid::Uuid::new_v4().simple().to_string())
            .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
            // Under the data key, as Terraform writes them (devops/parameters.tf).
            .set_key_id(data_key.clone())
            .send()
            .await
            .with_context(|| format!("writing the local secret {name}"))?;
        eprintln!("==> created local secret {name} (random value)");
        n += 1;
    }
    Ok(n)
}
