//! The post-deploy sync, locally, exactly as the README runs it: `encache-local provision`
//! puts the stack `encache-local` in the AWS emulator with `template.yaml`'s outputs, and
//! `encache-local invoke StackSyncFunction --event events/stack-status-change.json` (the
//! unchanged sample) copies them into SSM under `/encache/{Env}/stack/`.
//!
//! Needs the dev services (`eval "$(scripts/dev-services.sh env)"`). It is the only test
//! that uses the stack name `encache-local` (the sample's); every other test names its own.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use common::*;
use encache_testkit::repo_root;
use serde_json::{Value, json};

const STACK: &str = "encache-local";

/// `encache-local` with the real template, a scratch env file and the debug binaries.
fn encache_local(env_files: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_encache-local"));
    cmd.current_dir(repo_root());
    stack_env(
        &mut cmd,
        &repo_root().join("template.yaml"),
        env_files,
        STACK,
    );
    cmd
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().expect("encache-local runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{cmd:?} failed:\n{stderr}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `encache-local invoke StackSyncFunction --event events/stack-status-change.json`: the
/// function's JSON response (the last line of stdout).
fn invoke_sample(env_files: &Path) -> Value {
    let stdout = run(encache_local(env_files).args([
        "invoke",
        "StackSyncFunction",
        "--event",
        "events/stack-status-change.json",
    ]));
    let last = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
}

fn actions(report: &Value) -> BTreeMap<String, String> {
    report["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| {
            // A write that happened is "done"; an unchanged value is "skipped" (no write).
            let expected = if e["action"] == "unchanged" {
                "skipped"
            } else {
                "done"
            };
            assert_eq!(e["status"], expected, "{e}");
            (
                e["output_key"].as_str().expect("key").to_owned(),
                e["action"].as_str().expect("action").to_owned(),
            )
        })
        .collect()
}

/// The function's binary, built if this run has not built it (`--workspace` does).
fn ensure_stack_sync_binary() {
    if bin_dir().join("stack-sync").exists() {
        return;
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(repo_root())
        .args(["build", "-p", "encache-stack-sync", "--bin", "stack-sync"])
        .status()
        .expect("cargo build runs");
    assert!(status.success(), "building stack-sync failed");
}

async fn stack_outputs(sdk: &aws_config::SdkConfig) -> BTreeMap<String, String> {
    aws_sdk_cloudformation::Client::new(sdk)
        .describe_stacks()
        .stack_name(STACK)
        .send()
        .await
        .expect("the stack exists in the emulator")
        .stacks()
        .first()
        .expect("one stack")
        .outputs()
        .iter()
        .map(|o| {
            (
                o.output_key().unwrap_or_default().to_owned(),
                o.output_value().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

async fn synced_parameters(sdk: &aws_config::SdkConfig, prefix: &str) -> BTreeMap<String, String> {
    let ssm = aws_sdk_ssm::Client::new(sdk);
    let mut out = BTreeMap::new();
    let mut pages = ssm
        .get_parameters_by_path()
        .path(prefix)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        for p in page.expect("reading the synced parameters").parameters() {
            let name = p.name().unwrap_or_default();
            out.insert(
                name.strip_prefix(prefix).unwrap_or(name).to_owned(),
                p.value().unwrap_or_default().to_owned(),
            );
        }
    }
    out
}

#[tokio::test]
async fn the_sample_event_syncs_the_local_stack_outputs_into_ssm() {
    std::env::var("AWS_ENDPOINT_URL").expect(
        "AWS_ENDPOINT_URL is not set: run with the dev services \
         (eval \"$(scripts/dev-services.sh env)\")",
    );
    ensure_stack_sync_binary();
    let sdk = encache_shared::aws::sdk_config().await;
    // `Env` picks /encache/{Env}/stack/ (and the bucket names): unique to this run.
    let env_name = unique("sync").replace('-', "");
    let prefix = format!("/encache/{env_name}/stack/");
    let dir = scratch();
    std::fs::write(
        dir.join("sam-env.local.json"),
        // The data key the local stack creates (provision) under the name the env file gives.
        json!({"Parameters": {"Env": env_name, "DataKeyArn": format!("alias/encache-{env_name}-data")}})
            .to_string(),
    )
    .expect("env file");
    std::fs::write(
        dir.join("sam-container-env.local.json"),
        json!({"Parameters": {}}).to_string(),
    )
    .expect("container env file");

    // given the local stack in the emulator, carrying the template's outputs
    run(encache_local(&dir).args([
        "provision",
        "--no-custom-resources",
        "--no-traffic-hooks",
        "--api-url",
        "http://127.0.0.1:3999",
    ]));
    let outputs = stack_outputs(&sdk).await;
    let template = encache_local::template::Template::load(&repo_root().join("template.yaml"))
        .expect("template.yaml");
    assert_eq!(
        outputs.keys().collect::<Vec<_>>(),
        template.outputs.keys().collect::<Vec<_>>(),
        "every output of template.yaml has a local value"
    );
    assert_eq!(outputs["ApiUrl"], "http://127.0.0.1:3999");
    assert_eq!(
        outputs["PreSignUpFunctionArn"],
        "arn:aws:lambda:us-east-1:123456789012:function:PreSignUpFunction:live",
        "a trigger output names the live alias (what a rollback moves)"
    );

    // when the unchanged sample event is invoked
    let first = invoke_sample(&dir);

    // then every output is created under /encache/{Env}/stack/, as the stack has it
    assert_eq!(first["result"], "synced", "{first}");
    assert_eq!(first["stack"], STACK);
    assert_eq!(first["prefix"], prefix.as_str());
    assert_eq!(first["missing_contract_outputs"], json!([]), "{first}");
    assert!(actions(&first).values().all(|a| a == "create"), "{first}");
    assert_eq!(synced_parameters(&sdk, &prefix).await, outputs);

    // and a second delivery of the same event writes nothing
    let second = invoke_sample(&dir);
    assert!(
        actions(&second).values().all(|a| a == "unchanged"),
        "{second}"
    );

    // and after a redeploy that changes one output, the sync updates exactly that one
    run(encache_local(&dir).args([
        "provision",
        "--no-custom-resources",
        "--no-traffic-hooks",
        "--api-url",
        "http://127.0.0.1:4000",
    ]));
    let third = invoke_sample(&dir);
    let changed: Vec<_> = actions(&third)
        .into_iter()
        .filter(|(_, a)| a != "unchanged")
        .collect();
    assert_eq!(
        changed,
        vec![("ApiUrl".to_owned(), "update".to_owned())],
        "{third}"
    );
    assert_eq!(
        synced_parameters(&sdk, &prefix).await["ApiUrl"],
        "http://127.0.0.1:4000"
    );
}
