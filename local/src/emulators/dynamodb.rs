//! DynamoDB tables: every `AWS::DynamoDB::Table` of the template created in the emulator
//! as CloudFormation would create it (its name, key schema, attribute definitions, on
//! demand, its server-side encryption (the data key) and its TTL attribute), so a function
//! reads and writes the table its `!Ref` names. Idempotent: a table that exists is kept.

use anyhow::Context;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    SseSpecification, SseType, TimeToLiveSpecification,
};
use serde_yaml::Value;

use crate::stack::Stack;
use crate::template::Resolver;

/// Creates the template's tables; returns their local names.
pub async fn provision(stack: &Stack, sdk: &aws_config::SdkConfig) -> anyhow::Result<Vec<String>> {
    let client = aws_sdk_dynamodb::Client::new(sdk);
    let resolver = stack.resolver();
    // A table under the data key needs the key first.
    crate::emulators::kms::provision(stack, sdk).await?;
    let mut names = Vec::new();
    for (id, res) in &stack.template.resources {
        if res.kind != "AWS::DynamoDB::Table" {
            continue;
        }
        let name = resolver.physical_name(id)?;
        create_table(&client, &resolver, &name, &res.properties)
            .await
            .with_context(|| format!("creating the table {id} ({name})"))?;
        names.push(name);
    }
    Ok(names)
}

/// The `{Key: value}` entries of a list property, each value resolved to a string.
fn entries(
    resolver: &Resolver<'_>,
    props: &serde_yaml::Mapping,
    list: &str,
    keys: [&str; 2],
) -> anyhow::Result<Vec<(String, String)>> {
    let Some(Value::Sequence(items)) = props.get(list) else {
        anyhow::bail!("{list} is not a list");
    };
    items
        .iter()
        .map(|item| {
            let value = |k: &str| -> anyhow::Result<String> {
                let v = item.get(k).with_context(|| format!("{list}: no {k}"))?;
                Ok(resolver.string(v)?)
            };
            Ok((value(keys[0])?, value(keys[1])?))
        })
        .collect()
}

async fn create_table(
    client: &aws_sdk_dynamodb::Client,
    resolver: &Resolver<'_>,
    name: &str,
    props: &serde_yaml::Mapping,
) -> anyhow::Result<()> {
    let mut create = client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest);
    for (attribute, kind) in entries(
        resolver,
        props,
        "AttributeDefinitions",
        ["AttributeName", "AttributeType"],
    )? {
        create = create.attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(attribute)
                .attribute_type(ScalarAttributeType::from(kind.as_str()))
                .build()?,
        );
    }
    for (attribute, kind) in entries(resolver, props, "KeySchema", ["AttributeName", "KeyType"])? {
        create = create.key_schema(
            KeySchemaElement::builder()
                .attribute_name(attribute)
                .key_type(KeyType::from(kind.as_str()))
                .build()?,
        );
    }
    if let Some(sse) = props.get("SSESpecification") {
        let text = |k: &str| sse.get(k).map(|v| resolver.string(v)).transpose();
        create = create.sse_specification(
            SseSpecification::builder()
                .set_enabled(sse.get("SSEEnabled").and_then(Value::as_bool))
                .set_sse_type(text("SSEType")?.map(|t| SseType::from(t.as_str())))
                .set_kms_master_key_id(text("KMSMasterKeyId")?)
                .build(),
        );
    }
    match create.send().await {
        Ok(_) => {}
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_in_use_exception()) =>
        {
            return Ok(());
        }
        Err(e) => return Err(anyhow::Error::new(e)),
    }
    if let Some(ttl) = props.get("TimeToLiveSpecification") {
        let attribute = ttl
            .get("AttributeName")
            .context("TimeToLiveSpecification: no AttributeName")?;
        client
            .update_time_to_live()
            .table_name(name)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .attribute_name(resolver.string(attribute)?)
                    .enabled(true)
                    .build()?,
            )
            .send()
            .await
            .context("turning on its TTL")?;
    }
    Ok(())
}
