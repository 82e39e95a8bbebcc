//! `encache-local init`, `migrate` and `sync-env`: the one-off setup of a local run (the
//! first-run env files with a new user pool, the database schema) and the check every
//! start makes that the env file still points at the running services.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use serde_json::{Value, json};

use crate::emulators::cognito::{self, Pool};
use crate::stack::Stack;

#[derive(Debug, Args)]
pub struct InitArgs {
    #[arg(long, default_value = "sam-env.local.example.json")]
    pub env_example: PathBuf,
    #[arg(long, default_value = "sam-container-env.local.example.json")]
    pub container_example: PathBuf,
}

/// Writes `sam-env.local.json` and `sam-container-env.local.json` from the example files,
/// with the user pool and app client it creates in the emulator and the local database
/// filled in (and `AWS_ENDPOINT_URL`, when the container example file has that key; the
/// runtime otherwise passes the emulator's endpoint to every function itself).
pub async fn init(
    stack: &Stack,
    env_example: &Path,
    container_example: &Path,
) -> anyhow::Result<()> {
    let sdk = encache_shared::aws::sdk_config().await;
    let pool_name = format!(
        "encache-local-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    eprintln!("==> creating Cognito user pool {pool_name} in the emulator");
    let (pool_id, client_id) = cognito::create_pool(&sdk, &pool_name).await?;

    let mut env: Value = read_json(env_example)?;
    let params = env
        .get_mut("Parameters")
        .and_then(Value::as_object_mut)
        .context("the example env file has no Parameters object")?;
    for (k, v) in params.iter_mut() {
        match k.as_str() {
            "CognitoUserPoolId" | "COGNITO_USER_POOL_ID" => *v = json!(pool_id),
            "CognitoAppClientId" | "COGNITO_APP_CLIENT_ID" => *v = json!(client_id),
            _ => {}
        }
    }
    if let Ok(url) = std::env::var("DATABASE_URL") {
        fill_database(params, &url);
    }
    let mut container: Value = read_json(container_example)?;
    if let Some(endpoint) = &stack.config.endpoint
        && let Some(p) = container
            .get_mut("Parameters")
            .and_then(Value::as_object_mut)
        && p.contains_key("AWS_ENDPOINT_URL")
    {
        p.insert("AWS_ENDPOINT_URL".into(), json!(endpoint));
    }
    write_json(&stack.config.env_vars, &env)?;
    write_json(&stack.config.container_env_vars, &container)?;
    eprintln!(
        "==> wrote {} and {} (user pool {pool_id}, app client {client_id})",
        stack.config.env_vars.display(),
        stack.config.container_env_vars.display()
    );
    Ok(())
}

/// The env file's database settings for `url`: `DATABASE_URL` and the template's
/// `DbHost`/`DbPort`/`DbName`/`DbUser` parameters, and `DbAppUser`, the login role the
/// migration function creates (devops/'s `db_app_username` default; locally the functions
/// connect with `DATABASE_URL`).
pub fn database_parameters(url: &str) -> Vec<(&'static str, String)> {
    let mut wanted = vec![
        ("DATABASE_URL", url.to_owned()),
        ("DbAppUser", "encache_fn".to_owned()),
    ];
    if let Ok(parsed) = url.parse::<sqlx::postgres::PgConnectOptions>() {
        wanted.extend([
            ("DbHost", parsed.get_host().to_owned()),
            ("DbPort", parsed.get_port().to_string()),
            (
                "DbName",
                parsed.get_database().unwrap_or("encache").to_owned(),
            ),
            ("DbUser", parsed.get_username().to_owned()),
        ]);
    }
    wanted
}

/// Points the database settings the file has at `url`; true when something changed.
fn fill_database(params: &mut serde_json::Map<String, Value>, url: &str) -> bool {
    let mut changed = false;
    for (k, v) in database_parameters(url) {
        if let Some(old) = params.get_mut(k)
            && old.as_str() != Some(v.as_str())
        {
            *old = json!(v);
            changed = true;
        }
    }
    changed
}

/// Every run: the dev services may have restarted on new ports, and the emulator keeps
/// its user pools across a restart only through its recording (scripts/dev-services.sh
/// replays it, with ids that follow from each pool's name and settings). Follows the
/// database; says clearly when the pool is gone.
pub async fn sync_env(stack: &Stack) -> anyhow::Result<()> {
    let path = &stack.config.env_vars;
    let mut env = read_json(path)?;
    let added = add_missing_parameters(
        &mut env,
        &stack
            .config
            .template
            .with_file_name("sam-env.local.example.json"),
    )?;
    if !added.is_empty() {
        write_json(path, &env)?;
        eprintln!(
            "==> {}: added {} from the example file (template parameters newer than the file)",
            path.display(),
            added.join(", ")
        );
    }
    if let (Ok(url), Some(params)) = (
        std::env::var("DATABASE_URL"),
        env.get_mut("Parameters").and_then(Value::as_object_mut),
    ) && fill_database(params, &url)
    {
        write_json(path, &env)?;
        eprintln!("==> {} now points at the running database", path.display());
    }
    let has_pool = ["CognitoUserPoolId", "COGNITO_USER_POOL_ID"]
        .iter()
        .any(|k| stack.env.parameters.contains_key(*k));
    if has_pool {
        let pool = Pool::from_stack(stack)?;
        let sdk = encache_shared::aws::sdk_config().await;
        aws_sdk_cognitoidentityprovider::Client::new(&sdk)
            .describe_user_pool()
            .user_pool_id(&pool.user_pool_id)
            .send()
            .await
            .map_err(|e| {
                // Only a missing pool calls for --init (which makes a new one and forgets
                // the local users); anything else is reported as it is.
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_not_found_exception())
                {
                    anyhow::anyhow!(
                        "user pool {} of {} does not exist in the AWS emulator (its recorded state was forgotten by `scripts/dev-services.sh reset`, or not kept: DEV_SERVICES_RECORD=0, or made before restarts kept it): run scripts/start-local.sh --init",
                        pool.user_pool_id,
                        path.display()
                    )
                } else {
                    anyhow::Error::new(e).context(format!(
                        "checking user pool {} in the AWS emulator",
                        pool.user_pool_id
                    ))
                }
            })?;
    }
    Ok(())
}

fn read_json(path: &Path) -> anyhow::Result<Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))
}

fn write_json(path: &Path, value: &Value) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(value)? + "\n";
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

/// Copies into `env` the parameters the example file has and `env` lacks (a template
/// parameter added after the env file was written), so an older env file keeps working
/// without `--init` (which would make a new user pool). Returns their names.
fn add_missing_parameters(env: &mut Value, example: &Path) -> anyhow::Result<Vec<String>> {
    if !example.exists() {
        return Ok(Vec::new());
    }
    let example = read_json(example)?;
    let (Some(have), Some(want)) = (
        env.get_mut("Parameters").and_then(Value::as_object_mut),
        example.get("Parameters").and_then(Value::as_object),
    ) else {
        return Ok(Vec::new());
    };
    let mut added = Vec::new();
    for (k, v) in want {
        if !have.contains_key(k) {
            have.insert(k.clone(), v.clone());
            added.push(k.clone());
        }
    }
    Ok(added)
}

#[cfg(test)]
mod missing_parameter_tests {
    use super::*;

    #[test]
    fn parameters_newer_than_the_env_file_come_from_the_example_and_nothing_else_changes() {
        let dir =
            std::env::temp_dir().join(format!("encache-sync-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let example = dir.join("sam-env.local.example.json");
        std::fs::write(
            &example,
            r#"{"Parameters":{"DbUser":"postgres","DbAppUser":"encache_fn"}}"#,
        )
        .unwrap();
        let mut env = json!({"Parameters": {"DbUser": "me"}});
        let added = add_missing_parameters(&mut env, &example).unwrap();
        assert_eq!(added, ["DbAppUser"]);
        assert_eq!(
            env,
            json!({"Parameters": {"DbUser": "me", "DbAppUser": "encache_fn"}})
        );
        std::fs::remove_dir_all(dir).ok();
    }
}
