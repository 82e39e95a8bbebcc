//! Each function's event for the benchmark: a sample from `events/`, picked by what the
//! template says triggers the function, so the samples and the template are the only
//! places that know which event a function takes:
//! - an `HttpApi` event: the sample whose `routeKey` is the event's `METHOD path`;
//! - an `S3`, `SNS` or `SQS` event: a sample whose records come from that service;
//! - a `Schedule` event: the scheduled event of the rule CloudFormation names after it
//!   (`<stack>-<LogicalId><EventName>-<suffix>` in `resources`);
//! - an `EventBridgeRule` event: a sample whose `source` and `detail-type` its pattern
//!   accepts;
//! - a Cognito trigger (no template event; Terraform wires it): the sample whose
//!   `triggerSource` belongs to the trigger the local pool runs the function as;
//! - a custom resource's function (its `ServiceToken`): the sample of that resource;
//! - a PreTraffic hook (a `DeploymentPreference.Hooks` target): the CodeDeploy hook sample.
//!
//! The function's events are tried in template order, the samples in file-name order;
//! the first match wins.

use std::path::Path;

use anyhow::Context;
use axum::body::Bytes;
use serde_json::Value as Json;
use serde_yaml::Value;

use crate::emulators::cognito::triggers::function_for_trigger_source;
use crate::template::{EventKind, FunctionDef, Template, referenced_ids};

/// What the benchmark sends a function.
pub(super) enum Choice {
    /// A sample from `events/`: its file name and its bytes.
    Sample { name: String, payload: Bytes },
    /// A sample matches, but invoking the function with it here would do harm or cannot
    /// work (the reason says which).
    Skip { name: String, reason: String },
    /// No sample matches the function's triggers.
    None,
}

struct Sample {
    name: String,
    text: String,
    json: Json,
}

/// Every JSON sample of `events/`, in file-name order.
pub(super) struct Samples(Vec<Sample>);

impl Samples {
    /// The samples in `dir` (none when it does not exist).
    pub(super) fn load(dir: &Path) -> anyhow::Result<Self> {
        let mut samples = Vec::new();
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Ok(Self(samples));
        };
        for entry in entries {
            let path = entry?.path();
            if path.extension().is_none_or(|e| e != "json") {
                continue;
            }
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("reading {}", path.display()))?;
            let json = serde_json::from_str(&text)
                .with_context(|| format!("{} is not JSON", path.display()))?;
            let name = path
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into();
            samples.push(Sample { name, text, json });
        }
        samples.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(Self(samples))
    }

    /// The sample for `f`, as the module header describes.
    pub(super) fn choose(&self, template: &Template, f: &FunctionDef) -> Choice {
        let by_event = f.events.iter().find_map(|ev| {
            self.0
                .iter()
                .find(|s| matches_event(&s.json, &f.logical_id, &ev.name, &ev.kind))
        });
        let by_trigger = || {
            self.0.iter().find(|s| {
                s.json["triggerSource"]
                    .as_str()
                    .and_then(function_for_trigger_source)
                    == Some(f.logical_id.as_str())
            })
        };
        if let Some(s) = by_event.or_else(by_trigger) {
            return Choice::Sample {
                name: s.name.clone(),
                payload: Bytes::from(s.text.clone()),
            };
        }
        let custom = custom_resources_of(template, &f.logical_id);
        if let Some(s) = self.0.iter().find(|s| {
            s.json["LogicalResourceId"]
                .as_str()
                .is_some_and(|id| custom.iter().any(|c| c == id))
        }) {
            let host = s.json["ResponseURL"]
                .as_str()
                .and_then(|u| u.split('/').nth(2))
                .unwrap_or("?");
            return Choice::Skip {
                name: s.name.clone(),
                reason: format!(
                    "a custom resource answers with a PUT to its sample's ResponseURL, a live \
                     CloudFormation URL ({host}); `encache-local provision` runs it against \
                     a local listener instead"
                ),
            };
        }
        let is_hook = template.functions.values().any(|other| {
            other
                .pre_traffic_hook
                .as_ref()
                .and_then(crate::template::ref_target)
                .as_deref()
                == Some(f.logical_id.as_str())
        });
        if let Some(s) = self
            .0
            .iter()
            .find(|s| is_hook && s.json["LifecycleEventHookExecutionId"].is_string())
        {
            return Choice::Skip {
                name: s.name.clone(),
                reason: "a PreTraffic hook reports its verdict to CodeDeploy and invokes the \
                         API functions' new versions; `encache-local provision` runs it as \
                         CodeDeploy does, with both APIs on a local listener"
                    .into(),
            };
        }
        Choice::None
    }
}

/// Whether `sample` is an event that the template event `kind` (named `event`, of
/// function `function`) delivers.
fn matches_event(sample: &Json, function: &str, event: &str, kind: &EventKind) -> bool {
    let record_source = || {
        let record = &sample["Records"][0];
        record["eventSource"]
            .as_str()
            .or_else(|| record["EventSource"].as_str())
            .map(str::to_owned)
    };
    match kind {
        EventKind::HttpApi { method, path, .. } => {
            sample["routeKey"].as_str() == Some(format!("{method} {path}").as_str())
        }
        EventKind::S3 { .. } => record_source().as_deref() == Some("aws:s3"),
        EventKind::Sns { .. } => record_source().as_deref() == Some("aws:sns"),
        EventKind::Sqs { .. } => record_source().as_deref() == Some("aws:sqs"),
        EventKind::Schedule { .. } => {
            let rule = format!("-{function}{event}-");
            sample["detail-type"] == "Scheduled Event"
                && sample["resources"].as_array().is_some_and(|arns| {
                    arns.iter()
                        .filter_map(Json::as_str)
                        .filter_map(|arn| arn.split_once(":rule/").map(|(_, name)| name))
                        .any(|name| name.contains(&rule))
                })
        }
        EventKind::EventBridgeRule { pattern } => {
            // `None` when the pattern does not filter on `key`.
            let accepts = |key: &str| {
                pattern
                    .get(key)
                    .and_then(Value::as_sequence)
                    .map(|allowed| {
                        sample[key]
                            .as_str()
                            .is_some_and(|v| allowed.iter().any(|a| a.as_str() == Some(v)))
                    })
            };
            match (accepts("source"), accepts("detail-type")) {
                (None, None) => false,
                (source, detail_type) => source != Some(false) && detail_type != Some(false),
            }
        }
        EventKind::Other(_) => false,
    }
}

/// The custom resources whose `ServiceToken` is `function`.
fn custom_resources_of(template: &Template, function: &str) -> Vec<String> {
    template
        .resources
        .iter()
        .filter(|(_, r)| {
            r.kind == "AWS::CloudFormation::CustomResource" || r.kind.starts_with("Custom::")
        })
        .filter(|(_, r)| {
            r.properties
                .get("ServiceToken")
                .is_some_and(|token| referenced_ids(token).contains(function))
        })
        .map(|(id, _)| id.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::PathBuf;

    use super::*;

    #[test]
    fn every_function_of_the_template_gets_its_sample_or_a_reason_to_skip() {
        // given the real template and events/
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
        let template = Template::load(&root.join("template.yaml")).expect("the template");
        let samples = Samples::load(&root.join("events")).expect("the samples");

        // when each function's sample is chosen
        let chosen: BTreeMap<&str, String> = template
            .functions
            .values()
            .map(|f| {
                let what = match samples.choose(&template, f) {
                    Choice::Sample { name, .. } => name,
                    Choice::Skip { name, .. } => format!("skip ({name})"),
                    Choice::None => "none".into(),
                };
                (f.logical_id.as_str(), what)
            })
            .collect();

        // then HTTP functions get their first route's sample, event functions the sample
        // of their source, triggers theirs, and the custom resource's function is skipped
        let expected = [
            ("ConversationFeedFunction", "conversation-feed-list.json"),
            ("CostAlertFunction", "alarm-sns-alarm.json"),
            ("HealthFunction", "health-get.json"),
            ("MeFunction", "me-get.json"),
            ("MemoryFeedFunction", "memory-feed-list.json"),
            ("MigrateFunction", "skip (cfn-database-schema-create.json)"),
            ("PostConfirmationFunction", "cognito-post-confirmation.json"),
            (
                "PreTrafficHookFunction",
                "skip (codedeploy-pre-traffic.json)",
            ),
            ("PreSignUpFunction", "cognito-pre-sign-up.json"),
            (
                "PreTokenGenerationFunction",
                "cognito-pre-token-generation-v2.json",
            ),
            ("StackSyncFunction", "stack-status-change.json"),
            ("UploadApiFunction", "upload-create.json"),
            ("UploadCompleteFunction", "s3-object-created.json"),
            ("UploadExpiryFunction", "upload-expiry-schedule.json"),
        ];
        for (function, sample) in expected {
            assert_eq!(
                chosen.get(function).map(String::as_str),
                Some(sample),
                "{function}"
            );
        }
        let uncovered: Vec<_> = chosen.iter().filter(|(_, c)| *c == "none").collect();
        assert!(
            uncovered.is_empty(),
            "functions with no sample in events/ (add one that matches a trigger): {uncovered:?}"
        );
    }

    #[test]
    fn a_schedule_sample_belongs_to_the_rule_of_its_own_event() {
        let sample = serde_json::json!({
            "detail-type": "Scheduled Event",
            "resources": ["arn:aws:events:us-east-1:123456789012:rule/encache-dev-CostAlertFunctionDailyDigest-1A2B"]
        });
        let schedule = EventKind::Schedule {
            schedule: Value::Null,
            input: None,
            enabled: None,
            state: None,
        };
        assert!(matches_event(
            &sample,
            "CostAlertFunction",
            "DailyDigest",
            &schedule
        ));
        assert!(!matches_event(
            &sample,
            "UploadExpiryFunction",
            "Sweep",
            &schedule
        ));
    }
}
