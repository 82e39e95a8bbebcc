//! The data key (`DataKeyArn`): the customer-managed KMS key the template encrypts its
//! bucket, queues, topics, log groups, table and SecureStrings with. A deploy gets it from
//! Terraform (devops/kms.tf, through `/encache/ENV/kms/data-key-arn`), and so does the
//! rehearsal, whose Terraform applied to the emulator; it must exist there. A local stack
//! names an alias (`alias/encache-local-data` in sam-env.local.example.json) that is created
//! here, with its key, when the emulator lacks it: the emulator forgets everything when it
//! stops, so every start runs this. Idempotent.

use anyhow::Context;
use aws_sdk_kms::types::KeyState;

use crate::stack::Stack;

/// The template parameter that names the data key.
pub const DATA_KEY_PARAMETER: &str = "DataKeyArn";

/// The data key's ARN, created first when the local value is an alias the emulator lacks;
/// `None` when the template has no data key.
pub async fn provision(
    stack: &Stack,
    sdk: &aws_config::SdkConfig,
) -> anyhow::Result<Option<String>> {
    if !stack.template.parameters.contains_key(DATA_KEY_PARAMETER) {
        return Ok(None);
    }
    let value = match stack.resolver().parameter(DATA_KEY_PARAMETER)? {
        serde_json::Value::String(v) if !v.is_empty() => v,
        other => anyhow::bail!("{DATA_KEY_PARAMETER} is {other}, not a key ARN or alias"),
    };
    let kms = aws_sdk_kms::Client::new(sdk);
    let arn = match describe(&kms, &value).await? {
        Some(arn) => arn,
        None if value.starts_with("alias/") => create(&kms, &value).await?,
        None => anyhow::bail!(
            "the data key {value} ({DATA_KEY_PARAMETER}) is not in the AWS emulator: a deploy's key \
             comes from Terraform (devops/kms.tf); locally, name an alias (alias/encache-local-data) \
             and it is created"
        ),
    };
    Ok(Some(arn))
}

/// The key's ARN when the emulator has it (enabled); `None` when it does not exist.
async fn describe(kms: &aws_sdk_kms::Client, key: &str) -> anyhow::Result<Option<String>> {
    let meta = match kms.describe_key().key_id(key).send().await {
        Ok(out) => out
            .key_metadata
            .context("DescribeKey returned no metadata")?,
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_not_found_exception()) =>
        {
            return Ok(None);
        }
        Err(e) => {
            return Err(anyhow::Error::new(e).context(format!("describing the data key {key}")));
        }
    };
    anyhow::ensure!(
        meta.key_state == Some(KeyState::Enabled),
        "the data key {key} is {:?}, not enabled: nothing could be encrypted with it",
        meta.key_state
    );
    Ok(Some(meta.arn.context("DescribeKey returned no ARN")?))
}

/// A symmetric key with rotation on (as devops/kms.tf makes it), and `alias` on it.
async fn create(kms: &aws_sdk_kms::Client, alias: &str) -> anyhow::Result<String> {
    let meta = kms
        .create_key()
        .description(format!("encache local data key ({alias})"))
        .send()
        .await
        .context("creating the local data key")?
        .key_metadata
        .context("CreateKey returned no metadata")?;
    let id = meta.key_id;
    kms.enable_key_rotation()
        .key_id(&id)
        .send()
        .await
        .context("turning on the local data key's rotation")?;
    kms.create_alias()
        .alias_name(alias)
        .target_key_id(&id)
        .send()
        .await
        .with_context(|| format!("naming the local data key {alias}"))?;
    eprintln!("==> created the local data key {alias} in the emulator");
    meta.arn.context("CreateKey returned no ARN")
}
