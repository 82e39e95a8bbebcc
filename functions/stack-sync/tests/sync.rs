//! The sync against emulated CloudFormation and SSM (moto): real stacks with outputs,
//! the handler fed the sample EventBridge event pointed at them. Every test has its own
//! stack and its own environment name, so its parameters live under their own prefix.

use aws_sdk_ssm::types::{ParameterType, Tag};
use encache_shared::error::EventFailure;
use encache_stack_sync::{
    Action, Clients, Contract, Deps, Mode, Outcome, Report, Settings, Status, SyncError, cli,
    handle, sync_stack,
};
use encache_testkit::{lambda_event, sample_event};
use lambda_runtime::Diagnostic;
use serde_json::{Value, json};

struct Given {
    clients: Clients,
    settings: Settings,
    stack_id: String,
}

impl Given {
    /// A fresh stack in the emulator with `outputs` (key → CloudFormation value) and a
    /// fresh environment, with the function configured for that stack.
    async fn a_stack_with(outputs: Value) -> Self {
        let clients = Clients::from_sdk(&encache_shared::aws::sdk_config().await);
        let suffix = uuid::Uuid::new_v4().simple().to_string();
        let stack = format!("encache-test-{}", &suffix[..12]);
        let created = clients
            .cloudformation
            .create_stack()
            .stack_name(&stack)
            .template_body(template(&stack, outputs).to_string())
            .send()
            .await
            .expect("creating the stack in the emulator (are the dev services up?)");
        Self {
            clients,
            settings: Settings {
                env: format!("t{}", &suffix[12..20]),
                stack_name: stack,
                contract: Contract::load().unwrap(),
            },
            stack_id: created.stack_id().unwrap().to_owned(),
        }
    }

    async fn the_outputs_become(&self, outputs: Value) {
        self.clients
            .cloudformation
            .update_stack()
            .stack_name(&self.settings.stack_name)
            .template_body(template(&self.settings.stack_name, outputs).to_string())
            .send()
            .await
            .expect("updating the stack");
    }

    /// The function's dependencies for this stack and environment.
    fn deps(&self) -> Deps {
        Deps::new(self.settings.clone(), self.clients.clone())
    }

    fn parameter(&self, key: &str) -> String {
        format!("/encache/{}/stack/{key}", self.settings.env)
    }

    async fn sync(&self, status: &str) -> Result<Outcome, SyncError> {
        let event = status_change(&self.stack_id, status);
        handle(&self.deps(), lambda_event(event)).await
    }

    async fn synced_report(&self) -> Report {
        match self.sync("UPDATE_COMPLETE").await {
            Ok(Outcome::Synced(report)) => report,
            other => panic!("expected a sync, got {other:?}"),
        }
    }

    /// (value, version) of a parameter, or None when it does not exist.
    async fn stored(&self, key: &str) -> Option<(String, i64)> {
        match self
            .clients
            .ssm
            .get_parameter()
            .name(self.parameter(key))
            .send()
            .await
        {
            Ok(out) => {
                let p = out.parameter().unwrap();
                Some((p.value().unwrap().to_owned(), p.version()))
            }
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_parameter_not_found()) =>
            {
                None
            }
            Err(e) => panic!("reading {key}: {e:?}"),
        }
    }

    async fn tags(&self, key: &str) -> Vec<(String, String)> {
        let out = self
            .clients
            .ssm
            .list_tags_for_resource()
            .resource_type(aws_sdk_ssm::types::ResourceTypeForTagging::Parameter)
            .resource_id(self.parameter(key))
            .send()
            .await
            .unwrap();
        let mut tags: Vec<_> = out
            .tag_list()
            .iter()
            .map(|t| (t.key().to_owned(), t.value().to_owned()))
            .collect();
        tags.sort();
        tags
    }

    async fn someone_else_puts(&self, key: &str, value: &str, tags: &[(&str, &str)]) {
        let tags = tags
            .iter()
            .map(|(k, v)| Tag::builder().key(*k).value(*v).build().unwrap())
            .collect::<Vec<_>>();
        self.clients
            .ssm
            .put_parameter()
            .name(self.parameter(key))
            .value(value)
            .r#type(ParameterType::String)
            .set_tags((!tags.is_empty()).then_some(tags))
            .send()
            .await
            .unwrap();
    }

    async fn parameter_count(&self) -> usize {
        self.clients
            .ssm
            .get_parameters_by_path()
            .path(format!("/encache/{}/stack", self.settings.env))
            .send()
            .await
            .unwrap()
            .parameters()
            .len()
    }
}

/// A plain template (no SAM transform) with one real resource and the given outputs.
/// The topic is named after the stack so that its ARN survives stack updates.
fn template(stack: &str, outputs: Value) -> Value {
    let outputs: serde_json::Map<String, Value> = outputs
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), json!({ "Value": v })))
        .collect();
    json!({
        "AWSTemplateFormatVersion": "2010-09-09",
        "Resources": {
            "Topic": { "Type": "AWS::SNS::Topic", "Properties": { "TopicName": stack } }
        },
        "Outputs": outputs,
    })
}

fn two_outputs() -> Value {
    json!({ "TopicArn": { "Ref": "Topic" }, "Greeting": "hello" })
}

/// The sample event from `events/`, pointed at `stack_id` with `status`.
fn status_change(stack_id: &str, status: &str) -> Value {
    let mut event: Value = sample_event("stack-status-change.json");
    event["resources"] = json!([stack_id]);
    event["detail"]["stack-id"] = json!(stack_id);
    event["detail"]["status-details"]["status"] = json!(status);
    event
}

#[tokio::test]
async fn the_first_sync_creates_a_tagged_parameter_for_every_output() {
    let given = Given::a_stack_with(two_outputs()).await;

    let report = given.synced_report().await;

    assert_eq!(report.count(Action::Create), 2, "{report}");
    assert_eq!(report.writes(), 2);
    assert_eq!(given.stored("Greeting").await, Some(("hello".into(), 1)));
    let (topic, _) = given.stored("TopicArn").await.unwrap();
    assert!(topic.starts_with("arn:aws:sns:"), "{topic}");
    assert_eq!(
        given.tags("Greeting").await,
        vec![
            ("encache:managed-by".into(), "stack-sync".into()),
            ("encache:stack".into(), given.settings.stack_name.clone()),
        ]
    );
}

#[tokio::test]
async fn a_second_sync_of_an_unchanged_stack_writes_nothing() {
    let given = Given::a_stack_with(two_outputs()).await;
    given.synced_report().await;

    let report = given.synced_report().await;

    assert_eq!(report.writes(), 0, "{report}");
    assert_eq!(report.count(Action::Unchanged), 2);
    assert_eq!(given.stored("Greeting").await, Some(("hello".into(), 1)));
}

#[tokio::test]
async fn a_changed_output_makes_exactly_one_update() {
    let given = Given::a_stack_with(two_outputs()).await;
    given.synced_report().await;
    given
        .the_outputs_become(json!({ "TopicArn": { "Ref": "Topic" }, "Greeting": "goodbye" }))
        .await;

    let report = given.synced_report().await;

    assert_eq!(report.writes(), 1, "{report}");
    assert_eq!(
        report.entry("Greeting").unwrap().change.action,
        Action::Update
    );
    assert_eq!(report.count(Action::Unchanged), 1);
    assert_eq!(given.stored("Greeting").await, Some(("goodbye".into(), 2)));
}

#[tokio::test]
async fn a_removed_output_makes_exactly_one_delete() {
    let given = Given::a_stack_with(two_outputs()).await;
    given.synced_report().await;
    given
        .the_outputs_become(json!({ "TopicArn": { "Ref": "Topic" } }))
        .await;

    let report = given.synced_report().await;

    assert_eq!(report.writes(), 1, "{report}");
    assert_eq!(
        report.entry("Greeting").unwrap().change.action,
        Action::Delete
    );
    assert_eq!(given.stored("Greeting").await, None);
    assert!(given.stored("TopicArn").await.is_some());
}

#[tokio::test]
async fn a_parameter_the_sync_did_not_create_survives() {
    let given = Given::a_stack_with(two_outputs()).await;
    given.someone_else_puts("Manual", "by hand", &[]).await;
    given
        .someone_else_puts(
            "FromAnotherStack",
            "theirs",
            &[
                ("encache:managed-by", "stack-sync"),
                ("encache:stack", "another-stack"),
            ],
        )
        .await;

    let report = given.synced_report().await;

    assert_eq!(report.count(Action::Delete), 0, "{report}");
    assert_eq!(given.stored("Manual").await, Some(("by hand".into(), 1)));
    assert_eq!(
        given.stored("FromAnotherStack").await,
        Some(("theirs".into(), 1))
    );
}

#[tokio::test]
async fn an_output_named_like_a_parameter_the_sync_did_not_create_is_reported_not_overwritten() {
    let given = Given::a_stack_with(two_outputs()).await;
    given.someone_else_puts("Greeting", "by hand", &[]).await;

    let result = given.sync("CREATE_COMPLETE").await;

    let err = result.expect_err("a conflict is reported as an error");
    assert!(matches!(err, SyncError::RejectedOutputs { .. }), "{err}");
    assert!(err.to_string().contains("Greeting"), "{err}");
    assert_eq!(given.stored("Greeting").await, Some(("by hand".into(), 1)));
    assert!(
        given.stored("TopicArn").await.is_some(),
        "the other output still synced"
    );
}

#[tokio::test]
async fn an_over_limit_value_is_reported_while_the_other_outputs_sync() {
    let mut outputs = two_outputs();
    outputs["Huge"] = json!("x".repeat(5000));
    let given = Given::a_stack_with(outputs).await;

    let err = given
        .sync("CREATE_COMPLETE")
        .await
        .expect_err("the invalid output is reported");

    assert!(matches!(err, SyncError::RejectedOutputs { .. }), "{err}");
    let message = err.to_string();
    assert!(
        message.contains("Huge") && message.contains("5000") && message.contains("4096"),
        "{message}"
    );
    assert!(!err.retryable());
    assert_eq!(given.stored("Huge").await, None);
    assert_eq!(given.stored("Greeting").await, Some(("hello".into(), 1)));
    assert!(given.stored("TopicArn").await.is_some());
    let report = sync_stack(
        &given.clients,
        &given.settings.contract,
        &given.settings.stack_name,
        &given.settings.env,
        Mode::Apply,
    )
    .await
    .unwrap();
    assert_eq!(report.count(Action::Invalid), 1);
    assert_eq!(report.writes(), 0);
}

#[tokio::test]
async fn another_stacks_event_is_ignored() {
    let given = Given::a_stack_with(two_outputs()).await;
    let other = Given::a_stack_with(two_outputs()).await;

    let outcome = handle(
        &given.deps(),
        lambda_event(status_change(&other.stack_id, "UPDATE_COMPLETE")),
    )
    .await
    .unwrap();

    assert!(matches!(outcome, Outcome::Ignored { .. }), "{outcome:?}");
    assert_eq!(given.parameter_count().await, 0);
}

#[tokio::test]
async fn a_delete_complete_event_is_ignored() {
    let given = Given::a_stack_with(two_outputs()).await;

    let outcome = given.sync("DELETE_COMPLETE").await.unwrap();

    let Outcome::Ignored { reason } = outcome else {
        panic!("expected ignored, got {outcome:?}")
    };
    assert!(reason.contains("DELETE_COMPLETE"), "{reason}");
    assert_eq!(given.parameter_count().await, 0);
}

#[tokio::test]
async fn a_malformed_event_is_an_error_not_a_panic() {
    let given = Given::a_stack_with(two_outputs()).await;
    let mut no_stack_id = status_change(&given.stack_id, "UPDATE_COMPLETE");
    no_stack_id["detail"]
        .as_object_mut()
        .unwrap()
        .remove("stack-id");
    let not_an_arn = status_change("encache-dev", "UPDATE_COMPLETE");

    for payload in [json!({}), json!("UPDATE_COMPLETE"), no_stack_id, not_an_arn] {
        let err = handle(&given.deps(), lambda_event(payload.clone()))
            .await
            .expect_err("a malformed event is an error");

        assert!(
            matches!(err, SyncError::MalformedEvent(_)),
            "{payload}: {err}"
        );
        assert!(!err.retryable());
        let diagnostic = Diagnostic::from(err);
        assert_eq!(diagnostic.error_type, "NotRetryable.MalformedEvent");
    }
    assert_eq!(given.parameter_count().await, 0);
}

#[tokio::test]
async fn the_cli_dry_run_prints_the_plan_and_writes_nothing() {
    let given = Given::a_stack_with(two_outputs()).await;
    given.synced_report().await;
    given
        .the_outputs_become(json!({ "Greeting": "goodbye", "Added": "new" }))
        .await;
    let args = cli::Args {
        stack: given.settings.stack_name.clone(),
        env: given.settings.env.clone(),
        dry_run: true,
    };

    let report = cli::run(&args, &given.clients).await.unwrap();

    let printed = report.to_string();
    assert!(
        printed.contains(&format!("update     {}", given.parameter("Greeting"))),
        "{printed}"
    );
    assert!(
        printed.contains(&format!("create     {}", given.parameter("Added"))),
        "{printed}"
    );
    assert!(
        printed.contains(&format!("delete     {}", given.parameter("TopicArn"))),
        "{printed}"
    );
    assert!(printed.contains("dry run"), "{printed}");
    assert!(
        report.entries.iter().all(|e| e.status == Status::Planned),
        "{printed}"
    );
    assert_eq!(cli::exit_code(&report), 0);
    assert_eq!(given.stored("Greeting").await, Some(("hello".into(), 1)));
    assert_eq!(given.stored("Added").await, None);
    assert!(given.stored("TopicArn").await.is_some());
}

#[tokio::test]
async fn a_stack_that_does_not_exist_is_an_error_naming_it() {
    let given = Given::a_stack_with(two_outputs()).await;
    let args = cli::Args {
        stack: "encache-no-such-stack".into(),
        env: given.settings.env.clone(),
        dry_run: false,
    };

    let err = cli::run(&args, &given.clients).await.unwrap_err();

    assert!(
        format!("{err:#}").contains("encache-no-such-stack"),
        "{err:#}"
    );
}

#[tokio::test]
async fn the_clients_retry_throttling_with_backoff() {
    let clients = Clients::from_sdk(&encache_shared::aws::sdk_config().await);

    let retry = clients.ssm.config().retry_config().unwrap();

    assert!(retry.max_attempts() >= 5, "{retry:?}");
    assert_eq!(
        clients
            .cloudformation
            .config()
            .retry_config()
            .unwrap()
            .max_attempts(),
        retry.max_attempts()
    );
}

#[tokio::test]
async fn the_function_and_the_cli_syncing_at_once_after_a_deploy_both_succeed() {
    let given = Given::a_stack_with(two_outputs()).await;
    let args = cli::Args {
        stack: given.settings.stack_name.clone(),
        env: given.settings.env.clone(),
        dry_run: false,
    };

    let (from_event, from_cli) = tokio::join!(
        given.sync("UPDATE_COMPLETE"),
        cli::run(&args, &given.clients)
    );

    assert!(
        matches!(from_event, Ok(Outcome::Synced(_))),
        "{from_event:?}"
    );
    let from_cli = from_cli.unwrap();
    assert!(from_cli.is_clean(), "{from_cli}");
    assert_eq!(
        given.stored("Greeting").await.map(|(v, _)| v),
        Some("hello".into())
    );
    assert_eq!(given.tags("Greeting").await.len(), 2);
}

#[tokio::test]
async fn a_create_that_loses_the_race_to_the_other_sync_still_succeeds_but_never_takes_a_foreign_parameter()
 {
    let given = Given::a_stack_with(two_outputs()).await;
    given.synced_report().await;
    given.someone_else_puts("Manual", "by hand", &[]).await;
    let stack = &given.settings.stack_name;

    let ours = encache_stack_sync::store::create(
        &given.clients,
        &given.parameter("Greeting"),
        "hello",
        stack,
    )
    .await;
    let theirs = encache_stack_sync::store::create(
        &given.clients,
        &given.parameter("Manual"),
        "mine",
        stack,
    )
    .await;

    ours.unwrap();
    let err = theirs.unwrap_err();
    assert!(format!("{err:#}").contains("left alone"), "{err:#}");
    assert_eq!(given.stored("Manual").await, Some(("by hand".into(), 1)));
}
