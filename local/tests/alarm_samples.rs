//! The alarm path, locally, as an on-call engineer would try it: the fake Discord as the
//! webhook, then `encache-local invoke CostAlertFunction --event events/alarm-sns-*.json`
//! for each sample. Every state change arrives as its embed (the forwarder's real binary,
//! the real template, the webhook URL read from the emulator's SSM).
//!
//! Needs the dev services (`eval "$(scripts/dev-services.sh env)"`).

mod common;

use std::process::Command;

use common::*;
use encache_testkit::fake_discord::FakeDiscord;
use encache_testkit::repo_root;
use serde_json::json;

/// The forwarder's binary, built if this run has not built it (`--workspace` does).
fn ensure_forwarder_binary() {
    if bin_dir().join("cost-alert-forwarder").exists() {
        return;
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(repo_root())
        .args([
            "build",
            "-p",
            "encache-cost-alerts",
            "--bin",
            "cost-alert-forwarder",
        ])
        .status()
        .expect("cargo build runs");
    assert!(status.success(), "building cost-alert-forwarder failed");
}

// Multi-threaded: the fake Discord answers while the test blocks on encache-local.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_alarm_sample_reaches_the_fake_discord_through_encache_local_invoke() {
    std::env::var("AWS_ENDPOINT_URL").expect(
        "AWS_ENDPOINT_URL is not set: run with the dev services \
         (eval \"$(scripts/dev-services.sh env)\")",
    );
    ensure_forwarder_binary();

    // given the fake Discord and its webhook URL as the forwarder's SecureString
    let discord = FakeDiscord::start().await;
    let parameter = format!("/encache-test/{}/discord-webhook", unique("alarms"));
    let sdk = encache_shared::aws::sdk_config().await;
    aws_sdk_ssm::Client::new(&sdk)
        .put_parameter()
        .name(&parameter)
        .value(discord.new_webhook())
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .send()
        .await
        .expect("storing the webhook URL");
    let env_name = unique("alarms").replace('-', "");
    let dir = scratch();
    std::fs::write(
        dir.join("sam-env.local.json"),
        json!({
            "Parameters": {"Env": env_name, "DataKeyArn": format!("alias/encache-{env_name}-data")},
            "CostAlertFunction": {"DISCORD_WEBHOOK_PARAMETER": parameter}
        })
        .to_string(),
    )
    .expect("env file");
    std::fs::write(
        dir.join("sam-container-env.local.json"),
        json!({"Parameters": {}}).to_string(),
    )
    .expect("container env file");
    // and the stack's idempotency table, as `encache-local provision` creates it
    let config = encache_local::stack::Config::for_root(&repo_root(), bin_dir()).env_files_in(&dir);
    let stack = encache_local::stack::Stack::load(config).expect("the template and env files load");
    encache_local::emulators::dynamodb::provision(&stack, &sdk)
        .await
        .expect("creating the stack's tables in the emulator");

    // when each alarm sample is invoked
    let samples = [
        ("alarm-sns-alarm.json", "ALARM: encache-dev-health-errors"),
        ("alarm-sns-ok.json", "OK: encache-dev-health-errors"),
        (
            "alarm-sns-insufficient-data.json",
            "INSUFFICIENT_DATA: encache-dev-api-p99-latency",
        ),
        (
            "alarm-sns-composite.json",
            "ALARM: encache-dev-api-degraded",
        ),
    ];
    for (sample, _) in samples {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_encache-local"));
        cmd.current_dir(repo_root());
        stack_env(
            &mut cmd,
            &repo_root().join("template.yaml"),
            &dir,
            &unique("alarms"),
        );
        let out = cmd
            .args([
                "invoke",
                "CostAlertFunction",
                "--event",
                &format!("events/{sample}"),
            ])
            .output()
            .expect("encache-local runs");
        assert!(
            out.status.success(),
            "{sample}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    // then each one is an embed in the channel, in order
    let titles: Vec<String> = discord
        .accepted()
        .iter()
        .map(|m| {
            m["embeds"][0]["title"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    let expected: Vec<&str> = samples.iter().map(|(_, t)| *t).collect();
    assert_eq!(titles, expected, "rejected: {:?}", discord.rejected());
}
