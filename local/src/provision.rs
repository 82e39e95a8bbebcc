//! What the template declares and the functions use, created in the AWS emulator:
//! buckets with their notifications (to queues the local runtime polls), SSM parameters
//! with their local values, and the stack itself (a CloudFormation stack carrying the
//! template's `Outputs`, resolved locally, for the post-deploy sync). These steps are
//! idempotent: the emulator forgets everything when it stops, so every start runs them.
//! Topics are not created (nothing delivers SNS locally; `invoke` the function with a
//! sample instead), so an output such as `CostAlertTopicArn` names a topic the emulator
//! does not have. [`cognito`] is `--init`'s: it makes a new pool on every call.

use anyhow::Context;
use aws_sdk_s3::types::{
    Event, FilterRule, FilterRuleName, NotificationConfiguration, NotificationConfigurationFilter,
    QueueConfiguration, S3KeyFilter,
};

use crate::stack::Stack;
use crate::template::{EventKind, referenced_ids};

/// One bucket notification the runtime delivers: objects in `bucket` → `function`.
#[derive(Debug, Clone)]
pub struct S3Subscription {
    pub function: String,
    pub bucket: String,
    pub queue_name: String,
    pub prefix: Option<String>,
    pub suffix: Option<String>,
    /// The S3 event types (`s3:ObjectCreated:*`, ...).
    pub events: Vec<String>,
}

/// The queue name for one function's S3 event (SQS names: 80 chars of [A-Za-z0-9_-]).
fn queue_name(stack_name: &str, function: &str, event: &str) -> String {
    let name: String = format!("{stack_name}-{function}-{event}")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    name.chars().take(80).collect()
}

/// Every S3 event of the template's functions, with local names.
pub fn s3_subscriptions(stack: &Stack) -> anyhow::Result<Vec<S3Subscription>> {
    let resolver = stack.resolver();
    let mut subs = Vec::new();
    for f in stack.functions()? {
        for ev in &f.events {
            if let EventKind::S3 {
                bucket,
                events,
                prefix,
                suffix,
            } = &ev.kind
            {
                subs.push(S3Subscription {
                    function: f.logical_id.clone(),
                    bucket: resolver.physical_name(bucket).with_context(|| {
                        format!("{}.{}: the bucket name", f.logical_id, ev.name)
                    })?,
                    queue_name: queue_name(&resolver.stack_name, &f.logical_id, &ev.name),
                    prefix: prefix.clone(),
                    suffix: suffix.clone(),
                    events: events.clone(),
                });
            }
        }
    }
    Ok(subs)
}

/// Creates the buckets, queues and notifications; returns the subscriptions with queue URLs.
pub async fn s3(
    stack: &Stack,
    sdk: &aws_config::SdkConfig,
) -> anyhow::Result<Vec<(S3Subscription, String)>> {
    let s3 = encache_shared::aws::s3_client(sdk);
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let resolver = stack.resolver();
    // Every bucket the template declares exists locally, subscribed or not.
    for (id, res) in &stack.template.resources {
        if res.kind == "AWS::S3::Bucket" {
            create_bucket(&s3, &resolver.physical_name(id)?).await?;
        }
    }
    let subs = s3_subscriptions(stack)?;
    let mut out = Vec::new();
    let mut per_bucket: std::collections::BTreeMap<String, Vec<QueueConfiguration>> =
        Default::default();
    for sub in subs {
        let url = sqs
            .create_queue()
            .queue_name(&sub.queue_name)
            .send()
            .await
            .with_context(|| format!("creating the queue {}", sub.queue_name))?
            .queue_url
            .context("the emulator returned no queue URL")?;
        let arn = resolver.arn("sqs", &sub.queue_name);
        let mut rules = Vec::new();
        for (name, value) in [
            (FilterRuleName::Prefix, &sub.prefix),
            (FilterRuleName::Suffix, &sub.suffix),
        ] {
            if let Some(v) = value {
                rules.push(FilterRule::builder().name(name).value(v).build());
            }
        }
        let mut config = QueueConfiguration::builder()
            .id(sub.queue_name.clone())
            .queue_arn(arn)
            .set_events(Some(
                sub.events.iter().map(|e| Event::from(e.as_str())).collect(),
            ));
        if !rules.is_empty() {
            config = config.filter(
                NotificationConfigurationFilter::builder()
                    .key(S3KeyFilter::builder().set_filter_rules(Some(rules)).build())
                    .build(),
            );
        }
        per_bucket
            .entry(sub.bucket.clone())
            .or_default()
            .push(config.build().context("a queue notification")?);
        out.push((sub, url));
    }
    for (bucket, configs) in per_bucket {
        s3.put_bucket_notification_configuration()
            .bucket(&bucket)
            .notification_configuration(
                NotificationConfiguration::builder()
                    .set_queue_configurations(Some(configs))
                    .build(),
            )
            .send()
            .await
            .with_context(|| format!("setting the notifications of bucket {bucket}"))?;
    }
    Ok(out)
}

async fn create_bucket(s3: &aws_sdk_s3::Client, name: &str) -> anyhow::Result<()> {
    match s3.create_bucket().bucket(name).send().await {
        Ok(_) => Ok(()),
        Err(e) => {
            let service = e.as_service_error();
            if service
                .is_some_and(|s| s.is_bucket_already_owned_by_you() || s.is_bucket_already_exists())
            {
                Ok(())
            } else {
                Err(anyhow::Error::new(e).context(format!("creating bucket {name}")))
            }
        }
    }
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
    let resolver = stack.resolver();
    let mut names = std::collections::BTreeSet::new();
    for f in stack.template.functions.values() {
        if let Ok(vars) = crate::env::declared_env(f, &resolver, &stack.env) {
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
            .send()
            .await
            .with_context(|| format!("writing the local secret {name}"))?;
        eprintln!("==> created local secret {name} (random value)");
        n += 1;
    }
    Ok(n)
}

/// A Cognito user pool and app client like the Terraform ones (email sign-in,
/// `USER_PASSWORD_AUTH` for the local token command).
pub async fn cognito(
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
        .send()
        .await
        .context("creating the Cognito app client")?
        .user_pool_client
        .and_then(|c| c.client_id)
        .context("the emulator returned no client id")?;
    Ok((pool, client))
}

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
pub async fn cloudformation_stack(
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
