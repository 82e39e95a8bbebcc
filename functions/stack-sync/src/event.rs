//! The EventBridge event CloudFormation sends when a stack's status changes, and the
//! decision whether this function acts on it.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use serde::{Deserialize, Serialize};

pub const SOURCE: &str = "aws.cloudformation";
pub const DETAIL_TYPE: &str = "CloudFormation Stack Status Change";
/// The statuses after which the stack's outputs are final.
pub const SYNCED_STATUSES: [&str; 2] = ["CREATE_COMPLETE", "UPDATE_COMPLETE"];

/// `detail` of a "CloudFormation Stack Status Change" event.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub struct StackStatusChange {
    /// The stack ARN; the event carries no stack name.
    pub stack_id: String,
    pub status_details: StatusDetails,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_request_token: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub struct StatusDetails {
    pub status: String,
    #[serde(default)]
    pub status_reason: Option<String>,
}

pub type StackEvent = EventBridgeEvent<StackStatusChange>;

/// What to do with one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Sync { stack_name: String },
    Ignore { reason: String },
}

/// Parses the raw invocation payload; the error names the field that is wrong.
pub fn parse(payload: serde_json::Value) -> Result<StackEvent, String> {
    serde_path_to_error::deserialize(payload).map_err(|e| {
        let path = e.path().to_string();
        format!("at {path}: {}", e.into_inner())
    })
}

/// Decides whether `event` is a completed create or update of `stack_name`.
/// A stack ARN that does not parse is an error; anything else that is not ours is ignored.
pub fn decide(event: &StackEvent, stack_name: &str) -> Result<Decision, String> {
    if event.source != SOURCE || event.detail_type != DETAIL_TYPE {
        return Ok(Decision::Ignore {
            reason: format!(
                "not a stack status change ({} / {})",
                event.source, event.detail_type
            ),
        });
    }
    let name = stack_name_from_arn(&event.detail.stack_id)?;
    if name != stack_name {
        return Ok(Decision::Ignore {
            reason: format!("stack {name} is not {stack_name}"),
        });
    }
    let status = event.detail.status_details.status.as_str();
    if !SYNCED_STATUSES.contains(&status) {
        return Ok(Decision::Ignore {
            reason: format!("status {status} is not one of {SYNCED_STATUSES:?}"),
        });
    }
    Ok(Decision::Sync {
        stack_name: name.to_owned(),
    })
}

/// `arn:<partition>:cloudformation:<region>:<account>:stack/<name>/<uuid>` → `<name>`.
pub fn stack_name_from_arn(arn: &str) -> Result<&str, String> {
    let bad = || format!("{arn:?} is not a CloudFormation stack ARN");
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let [prefix, partition, service, _region, _account, resource] = parts[..] else {
        return Err(bad());
    };
    if prefix != "arn" || partition.is_empty() || service != "cloudformation" {
        return Err(bad());
    }
    let mut segments = resource.split('/');
    match (
        segments.next(),
        segments.next(),
        segments.next(),
        segments.next(),
    ) {
        (Some("stack"), Some(name), Some(id), None) if !name.is_empty() && !id.is_empty() => {
            Ok(name)
        }
        _ => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stack_name_is_the_arn_segment_after_stack() {
        let arn = "arn:aws:cloudformation:us-east-1:123456789012:stack/encache-dev/6a3c9f00-2e1b-11ef-9f2a-0e5b8c1a7d55";
        assert_eq!(stack_name_from_arn(arn), Ok("encache-dev"));
        let cn = "arn:aws-cn:cloudformation:cn-north-1:123456789012:stack/encache-prod/abc";
        assert_eq!(stack_name_from_arn(cn), Ok("encache-prod"));
    }

    #[test]
    fn arns_of_other_things_are_rejected() {
        for arn in [
            "",
            "encache-dev",
            "arn:aws:cloudformation:us-east-1:123456789012:stack/encache-dev",
            "arn:aws:cloudformation:us-east-1:123456789012:stackset/encache-dev/abc",
            "arn:aws:s3:us-east-1:123456789012:stack/encache-dev/abc",
            "arn:aws:cloudformation:us-east-1:123456789012:stack//abc",
            "arn:aws:cloudformation:us-east-1:123456789012:stack/a/b/c",
        ] {
            assert!(stack_name_from_arn(arn).is_err(), "{arn}");
        }
    }
}
