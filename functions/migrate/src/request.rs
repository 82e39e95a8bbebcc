//! What a custom resource request asks of the schema, and where its answer goes.

use aws_lambda_events::event::cloudformation::CloudFormationCustomResourceRequest;
use serde_json::Value;

/// The one physical id of the schema resource: CloudFormation never sees it change, so it
/// never replaces the resource (which would mean a Delete of the old one).
pub const PHYSICAL_RESOURCE_ID: &str = "encache-database-schema";

/// What to do with the schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Create, or an Update of a new deploy: bring the schema up to the code.
    Migrate,
    /// An Update back to an older deploy: CloudFormation is rolling back. Migrations are
    /// expand-only, so the previous code runs on the newer schema; nothing to do.
    KeepForRollback { from: u64, to: u64 },
    /// The resource leaves the stack: the schema (and the data) stays.
    Keep,
}

/// The fields of a request that the answer repeats, and the action it asks for.
#[derive(Debug, Clone)]
pub struct Request {
    pub kind: &'static str,
    pub action: Action,
    pub request_id: String,
    /// Presigned S3 URL: never logged or put in an error.
    pub response_url: String,
    pub stack_id: String,
    pub logical_resource_id: String,
    pub physical_resource_id: String,
}

impl Request {
    /// `None` for a request type this code does not know.
    pub fn from_event(event: CloudFormationCustomResourceRequest) -> Option<Self> {
        use CloudFormationCustomResourceRequest::{Create, Delete, Update};
        let request = match event {
            Create(r) => Self {
                kind: "Create",
                action: Action::Migrate,
                request_id: r.request_id,
                response_url: r.response_url,
                stack_id: r.stack_id,
                logical_resource_id: r.logical_resource_id,
                physical_resource_id: PHYSICAL_RESOURCE_ID.into(),
            },
            Update(r) => Self {
                kind: "Update",
                action: match (
                    deploy_id(&r.resource_properties),
                    deploy_id(&r.old_resource_properties),
                ) {
                    (Some(to), Some(from)) if to < from => Action::KeepForRollback { from, to },
                    _ => Action::Migrate,
                },
                request_id: r.request_id,
                response_url: r.response_url,
                stack_id: r.stack_id,
                logical_resource_id: r.logical_resource_id,
                physical_resource_id: PHYSICAL_RESOURCE_ID.into(),
            },
            Delete(r) => Self {
                kind: "Delete",
                action: Action::Keep,
                request_id: r.request_id,
                response_url: r.response_url,
                stack_id: r.stack_id,
                logical_resource_id: r.logical_resource_id,
                // Whatever CloudFormation holds: answering another id would be an error.
                physical_resource_id: r.physical_resource_id,
            },
            _ => return None,
        };
        Some(request)
    }
}

/// `DeployId` (the deploy's UTC time, `YYYYMMDDhhmmss`) as a number; CloudFormation passes
/// every property as a string.
fn deploy_id(properties: &Value) -> Option<u64> {
    match properties.get("DeployId")? {
        Value::String(s) => s.trim().parse().ok(),
        Value::Number(n) => n.as_u64(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn update(new: Value, old: Value) -> Request {
        let event = serde_json::from_value(json!({
            "RequestType": "Update",
            "RequestId": "r", "ResponseURL": "https://example.invalid/r", "StackId": "s",
            "ResourceType": "Custom::DatabaseSchema", "LogicalResourceId": "DatabaseSchema",
            "PhysicalResourceId": PHYSICAL_RESOURCE_ID,
            "ResourceProperties": new, "OldResourceProperties": old,
        }))
        .unwrap();
        Request::from_event(event).unwrap()
    }

    #[test]
    fn an_update_to_an_older_deploy_id_is_a_rollback() {
        let r = update(
            json!({"DeployId": "20261130090000"}),
            json!({"DeployId": "20261130101500"}),
        );
        assert_eq!(
            r.action,
            Action::KeepForRollback {
                from: 20261130101500,
                to: 20261130090000
            }
        );
    }

    #[test]
    fn an_update_to_a_newer_or_equal_or_missing_deploy_id_migrates() {
        for (new, old) in [
            (
                json!({"DeployId": "20261130101500"}),
                json!({"DeployId": "20261130090000"}),
            ),
            (json!({"DeployId": "0"}), json!({"DeployId": "0"})),
            (json!({"DeployId": "20261130101500"}), json!({})),
            (
                json!({"DeployId": "not a number"}),
                json!({"DeployId": "1"}),
            ),
        ] {
            assert_eq!(
                update(new.clone(), old.clone()).action,
                Action::Migrate,
                "{new} after {old}"
            );
        }
    }
}
