//! The drift check between the local files and the template, both ways.

mod common;

use common::fixtures;
use encache_local::commands::drift::drift;
use encache_local::env::EnvFile;
use encache_local::template::Template;

fn fixture_template() -> Template {
    Template::load(&fixtures().join("template.yaml")).expect("fixture template")
}

fn env(json: &str) -> EnvFile {
    EnvFile::parse(json).expect("env file")
}

#[test]
fn names_the_local_files_use_that_the_template_lacks_are_reported() {
    let sam_env = env(
        r#"{"Parameters": {"PoolId": "p", "ClientId": "c", "OldSetting": "x"},
            "EchoFunction": {"FIXTURE_TAG": "t", "REMOVED_VAR": "x"},
            "GoneFunction": {}}"#,
    );
    let container = env(r#"{"Parameters": {"RUST_LOG": "debug"}, "RenamedFunction": {}}"#);
    let samconfig =
        "[dev.deploy.parameters]\nparameter_overrides = \"Env=dev PoolId=/x Retired=1\"\n";

    let report = drift(&fixture_template(), &sam_env, &container, Some(samconfig));

    let text = report.unknown.join("\n");
    assert!(text.contains("Parameters.OldSetting"), "{text}");
    assert!(text.contains("EchoFunction.REMOVED_VAR"), "{text}");
    assert!(text.contains("GoneFunction is not a function"), "{text}");
    assert!(
        text.contains("sam-container-env.local.example.json: RenamedFunction"),
        "{text}"
    );
    assert!(
        text.contains("samconfig.toml: parameter_overrides names Retired"),
        "{text}"
    );
    assert_eq!(report.unknown.len(), 5, "{text}");
    assert!(report.unset.is_empty(), "{:?}", report.unset);
}

#[test]
fn template_parameters_and_variables_the_local_files_leave_unset_are_reported() {
    let report = drift(
        &fixture_template(),
        &env(r#"{"Parameters": {}}"#),
        &EnvFile::default(),
        None,
    );

    let text = report.unset.join("\n");
    assert!(text.contains("PostConfirmationFunction.POOL"), "{text}");
    assert!(text.contains("Api.Jwt issuer"), "{text}");
    assert!(text.contains("Api.Jwt audience"), "{text}");
    assert!(report.unknown.is_empty(), "{:?}", report.unknown);
}

#[test]
fn the_repository_example_files_match_template_yaml() {
    // The real files, through the real command, as a developer runs it.
    let root = fixtures().join("../../..");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_encache-local"))
        .current_dir(&root)
        .arg("drift")
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "drift found:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
