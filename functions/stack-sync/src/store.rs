//! The AWS side: the stack's outputs from CloudFormation, the parameters under the
//! prefix from SSM, and the writes. Every client retries throttling with backoff.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context;
use aws_config::SdkConfig;
use aws_config::retry::RetryConfig;
use aws_sdk_ssm::types::{ParameterType, ResourceTypeForTagging, Tag};

use crate::plan::{Existing, Output, Ownership};

/// Tag marking a parameter as created by stack-sync (the only ones it updates or deletes).
pub const MANAGED_BY_TAG: &str = "encache:managed-by";
pub const MANAGED_BY_VALUE: &str = "stack-sync";
/// Tag naming the stack whose output the parameter mirrors.
pub const STACK_TAG: &str = "encache:stack";

/// SSM throttles parameter writes at a few per second: retry with exponential backoff
/// and jitter long enough to ride out a burst, well inside the function's timeout.
pub fn retry_config() -> RetryConfig {
    RetryConfig::standard()
        .with_max_attempts(6)
        .with_initial_backoff(Duration::from_millis(200))
        .with_max_backoff(Duration::from_secs(4))
}

#[derive(Clone, Debug)]
pub struct Clients {
    pub cloudformation: aws_sdk_cloudformation::Client,
    pub ssm: aws_sdk_ssm::Client,
}

impl Clients {
    pub fn from_sdk(sdk: &SdkConfig) -> Self {
        let cloudformation = aws_sdk_cloudformation::config::Builder::from(sdk)
            .retry_config(retry_config())
            .build();
        let ssm = aws_sdk_ssm::config::Builder::from(sdk)
            .retry_config(retry_config())
            .build();
        Self {
            cloudformation: aws_sdk_cloudformation::Client::from_conf(cloudformation),
            ssm: aws_sdk_ssm::Client::from_conf(ssm),
        }
    }
}

/// The stack's outputs, in the order CloudFormation lists them.
pub async fn stack_outputs(clients: &Clients, stack: &str) -> anyhow::Result<Vec<Output>> {
    let described = clients
        .cloudformation
        .describe_stacks()
        .stack_name(stack)
        .send()
        .await
        .with_context(|| format!("describing stack {stack}"))?;
    let found = described
        .stacks()
        .first()
        .with_context(|| format!("stack {stack} was not found"))?;
    Ok(found
        .outputs()
        .iter()
        .filter_map(|o| {
            Some(Output {
                key: o.output_key()?.to_owned(),
                // An output whose value is absent is an empty one: validation reports it.
                value: o.output_value().unwrap_or_default().to_owned(),
            })
        })
        .collect())
}

/// Every parameter one level under `prefix`, with who owns it (read from its tags).
pub async fn existing_parameters(
    clients: &Clients,
    prefix: &str,
    stack: &str,
) -> anyhow::Result<BTreeMap<String, Existing>> {
    let path = prefix.trim_end_matches('/');
    let mut pages = clients
        .ssm
        .get_parameters_by_path()
        .path(path)
        .recursive(false)
        .into_paginator()
        .send();
    let mut found = BTreeMap::new();
    while let Some(page) = pages.next().await {
        let page = page.with_context(|| format!("listing SSM parameters under {path}"))?;
        for p in page.parameters() {
            let Some(name) = p.name() else { continue };
            found.insert(name.to_owned(), p.value().unwrap_or_default().to_owned());
        }
    }
    let mut existing = BTreeMap::new();
    for (name, value) in found {
        let ownership = ownership(clients, &name, stack).await?;
        existing.insert(name, Existing { value, ownership });
    }
    Ok(existing)
}

async fn ownership(clients: &Clients, name: &str, stack: &str) -> anyhow::Result<Ownership> {
    let tags = clients
        .ssm
        .list_tags_for_resource()
        .resource_type(ResourceTypeForTagging::Parameter)
        .resource_id(name)
        .send()
        .await
        .with_context(|| format!("reading the tags of SSM parameter {name}"))?;
    let tag = |key: &str| {
        tags.tag_list()
            .iter()
            .find(|t| t.key() == key)
            .map(|t| t.value().to_owned())
    };
    let ours = tag(MANAGED_BY_TAG).as_deref() == Some(MANAGED_BY_VALUE)
        && tag(STACK_TAG).as_deref() == Some(stack);
    Ok(if ours {
        Ownership::Managed
    } else {
        Ownership::Foreign
    })
}

/// Creates the parameter with its ownership tags in one call (without `Overwrite`,
/// `PutParameter` takes `Tags`), so no parameter of ours ever exists untagged.
///
/// The Lambda and the deploy script's CLI run at the same moment after a deploy; if the
/// other one created the parameter first, it is ours all the same and gets overwritten
/// with the same value. Anyone else's parameter is left alone.
pub async fn create(clients: &Clients, name: &str, value: &str, stack: &str) -> anyhow::Result<()> {
    let created = clients
        .ssm
        .put_parameter()
        .name(name)
        .value(value)
        .r#type(ParameterType::String)
        .description(format!(
            "Output of CloudFormation stack {stack}, synced by stack-sync"
        ))
        .overwrite(false)
        .set_tags(Some(ownership_tags(stack)?))
        .send()
        .await;
    match created {
        Ok(_) => Ok(()),
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_parameter_already_exists()) =>
        {
            match ownership(clients, name, stack).await? {
                Ownership::Managed => update(clients, name, value).await,
                Ownership::Foreign => anyhow::bail!(
                    "SSM parameter {name} was just created by someone else; it is left alone"
                ),
            }
        }
        Err(e) => Err(e).with_context(|| format!("creating SSM parameter {name}")),
    }
}

/// Overwrites a parameter of ours. `PutParameter` with `Overwrite` cannot carry tags;
/// none are needed: only parameters already tagged as ours are ever updated.
pub async fn update(clients: &Clients, name: &str, value: &str) -> anyhow::Result<()> {
    clients
        .ssm
        .put_parameter()
        .name(name)
        .value(value)
        .r#type(ParameterType::String)
        .overwrite(true)
        .send()
        .await
        .with_context(|| format!("updating SSM parameter {name}"))?;
    Ok(())
}

/// Deletes a parameter of ours; one already gone counts as deleted (events repeat).
pub async fn delete(clients: &Clients, name: &str) -> anyhow::Result<()> {
    match clients.ssm.delete_parameter().name(name).send().await {
        Ok(_) => Ok(()),
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_parameter_not_found()) =>
        {
            Ok(())
        }
        Err(e) => Err(e).with_context(|| format!("deleting SSM parameter {name}")),
    }
}

fn ownership_tags(stack: &str) -> anyhow::Result<Vec<Tag>> {
    Ok(vec![
        Tag::builder()
            .key(MANAGED_BY_TAG)
            .value(MANAGED_BY_VALUE)
            .build()?,
        Tag::builder().key(STACK_TAG).value(stack).build()?,
    ])
}
