//! The drift check between the local files and the template, both ways.

mod common;

use common::fixtures;
use encache_local::commands::drift::drift;
use encache_local::env::{EnvFile, declared_env};
use encache_local::template::{Resolver, Template};

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

/// Two functions as the real template declares them: one reading secrets from SSM by
/// name, one reading none. Neither declares the secrets' local-only variables.
const SECRETS_TEMPLATE: &str = r#"
Resources:
  FeedFunction:
    Type: AWS::Serverless::Function
    Metadata: {BuildMethod: rust-cargolambda, BuildProperties: {Binary: feed}}
    Properties:
      Environment:
        Variables:
          DB_PASSWORD_PARAMETER: /encache/dev/db/password
          CURSOR_KEY_PARAMETER: /encache/dev/api/cursor-key
  SyncFunction:
    Type: AWS::Serverless::Function
    Metadata: {BuildMethod: rust-cargolambda, BuildProperties: {Binary: sync}}
    Properties:
      Environment:
        Variables:
          STACK_NAME: encache-dev
"#;

#[test]
fn local_secret_values_reach_only_the_functions_that_read_that_secret_from_ssm() {
    let template = Template::parse(SECRETS_TEMPLATE).expect("template");
    let local =
        env(r#"{"Parameters": {"DATABASE_URL": "postgres://u@h/db", "CURSOR_SIGNING_KEY": "k"}}"#);
    let resolver = Resolver::new(&template, local.parameter_values(&template));

    let feed = declared_env(
        template.function("FeedFunction").unwrap(),
        &resolver,
        &local,
    )
    .expect("feed env");
    let sync = declared_env(
        template.function("SyncFunction").unwrap(),
        &resolver,
        &local,
    )
    .expect("sync env");

    assert_eq!(
        feed.get("DATABASE_URL").map(String::as_str),
        Some("postgres://u@h/db")
    );
    assert_eq!(
        feed.get("CURSOR_SIGNING_KEY").map(String::as_str),
        Some("k")
    );
    assert!(!sync.contains_key("DATABASE_URL"), "{sync:?}");
    assert!(!sync.contains_key("CURSOR_SIGNING_KEY"), "{sync:?}");
    // Without an env file (as deployed), the functions get the SSM names and nothing else.
    let bare = declared_env(
        template.function("FeedFunction").unwrap(),
        &resolver,
        &EnvFile::default(),
    )
    .expect("bare env");
    assert!(!bare.contains_key("DATABASE_URL") && !bare.contains_key("CURSOR_SIGNING_KEY"));
}

#[test]
fn local_secret_values_are_not_drift_but_only_where_a_function_takes_them() {
    let template = Template::parse(SECRETS_TEMPLATE).expect("template");
    let sam_env = env(
        r#"{"Parameters": {"DATABASE_URL": "postgres://u@h/db", "CURSOR_SIGNING_KEY": "k"},
            "FeedFunction": {"CURSOR_SIGNING_KEY": "k2"},
            "SyncFunction": {"DATABASE_URL": "postgres://u@h/db"}}"#,
    );

    let report = drift(&template, &sam_env, &EnvFile::default(), None);

    assert_eq!(
        report.unknown,
        vec!["sam-env.local.example.json: SyncFunction.DATABASE_URL is not a variable SyncFunction declares".to_owned()]
    );
}
