//! The contract with Terraform and the template: every output Terraform reads is
//! exported by template.yaml, and the rule that triggers the function matches what the
//! handler acts on.

use encache_stack_sync::Contract;
use encache_stack_sync::event::{DETAIL_TYPE, SOURCE, SYNCED_STATUSES};
use encache_testkit::repo_root;
use serde_yaml::Value;

/// template.yaml, parsed; CloudFormation tags (`!Sub`, `!Ref`) become `Value::Tagged`.
fn template() -> Value {
    let path = repo_root().join("template.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()))
}

fn strings(v: &Value) -> Vec<String> {
    v.as_sequence()
        .unwrap_or_else(|| panic!("expected a list, got {v:?}"))
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn every_output_terraform_reads_is_exported_by_the_template() {
    let contract = Contract::load().unwrap();
    let template = template();
    let outputs = template["Outputs"]
        .as_mapping()
        .expect("template.yaml has Outputs");

    let missing: Vec<&String> = contract
        .outputs
        .iter()
        .filter(|key| !outputs.contains_key(key.as_str()))
        .collect();

    assert!(
        missing.is_empty(),
        "contracts/stack-outputs.json lists outputs template.yaml does not export: {missing:?}"
    );
}

#[test]
fn the_contract_prefix_is_a_per_environment_stack_path() {
    let contract = Contract::load().unwrap();
    assert_eq!(contract.parameter_prefix, "/encache/{env}/stack/");
}

#[test]
fn the_rule_sends_exactly_the_events_the_handler_acts_on() {
    let template = template();
    let function = &template["Resources"]["StackSyncFunction"]["Properties"];
    let pattern = &function["Events"]["StackStatusChange"]["Properties"]["Pattern"];

    assert_eq!(strings(&pattern["source"]), vec![SOURCE]);
    assert_eq!(strings(&pattern["detail-type"]), vec![DETAIL_TYPE]);
    assert_eq!(
        strings(&pattern["detail"]["status-details"]["status"]),
        SYNCED_STATUSES
    );
    let Value::Tagged(resource) = &pattern["resources"][0] else {
        panic!("the rule should match this stack's id with !Ref AWS::StackId");
    };
    assert_eq!(resource.tag, "!Ref");
    assert_eq!(resource.value.as_str(), Some("AWS::StackId"));
    assert!(
        function.get("VpcConfig").is_none(),
        "the sync function runs outside the VPC"
    );
}

#[test]
fn the_sample_event_is_a_completed_update_of_the_local_stack() {
    use encache_stack_sync::event::{Decision, decide, parse};
    let payload: serde_json::Value = encache_testkit::sample_event("stack-status-change.json");

    let event = parse(payload).unwrap();

    assert_eq!(
        decide(&event, "encache-local"),
        Ok(Decision::Sync {
            stack_name: "encache-local".into()
        })
    );
}
