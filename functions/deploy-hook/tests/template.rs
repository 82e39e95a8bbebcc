//! The gradual rollout as template.yaml declares it: every function behind a `live`
//! alias that every caller names, CodeDeploy shifting it with the function's alarm as the
//! rollback trigger, and this hook guarding every API function with a check of its own.
//! And what each new version may use of the database: the login role, within the
//! connection budget.

use std::collections::{BTreeMap, BTreeSet};

use encache_deploy_hook::CHECKS;
use encache_testkit::repo_root;
use serde_yaml::Value;

/// Functions outside the rollout: the custom resource CloudFormation calls during the
/// stack update (before any traffic shift) and the hook itself.
const NOT_SHIFTED: &[&str] = &["MigrateFunction", "PreTrafficHookFunction"];

fn template() -> Value {
    let text = std::fs::read_to_string(repo_root().join("template.yaml")).expect("template.yaml");
    serde_yaml::from_str(&text).expect("template.yaml is YAML")
}

/// `!Tag arg` → ("Tag", arg as a string).
fn tagged(v: &Value) -> Option<(String, String)> {
    match v {
        Value::Tagged(t) => Some((
            t.tag.to_string().trim_start_matches('!').to_owned(),
            t.value.as_str().unwrap_or_default().to_owned(),
        )),
        _ => None,
    }
}

fn reference(v: &Value) -> Option<String> {
    tagged(v).filter(|(t, _)| t == "Ref").map(|(_, a)| a)
}

fn functions(t: &Value) -> BTreeMap<String, Value> {
    t["Resources"]
        .as_mapping()
        .expect("Resources")
        .iter()
        .filter(|(_, r)| r["Type"] == "AWS::Serverless::Function")
        .map(|(k, r)| (k.as_str().expect("id").to_owned(), r.clone()))
        .collect()
}

/// (method, path) of every HttpApi event of a function.
fn routes(f: &Value) -> BTreeSet<(String, String)> {
    f["Properties"]["Events"]
        .as_mapping()
        .map(|evs| {
            evs.values()
                .filter(|e| e["Type"] == "HttpApi")
                .map(|e| {
                    let p = &e["Properties"];
                    (
                        p["Method"].as_str().unwrap_or_default().to_owned(),
                        p["Path"].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn every_function_publishes_a_live_alias() {
    let t = template();
    assert_eq!(t["Globals"]["Function"]["AutoPublishAlias"], "live");
    for (id, f) in functions(&t) {
        assert!(
            f["Properties"].get("AutoPublishAlias").is_none(),
            "{id} overrides the Globals alias"
        );
    }
}

#[test]
fn every_shifted_function_rolls_back_on_its_own_errors_alarm() {
    let t = template();
    let resources = t["Resources"].as_mapping().expect("Resources");
    for (id, f) in functions(&t) {
        let pref = &f["Properties"]["DeploymentPreference"];
        if NOT_SHIFTED.contains(&id.as_str()) {
            assert!(pref.is_null(), "{id} must not be shifted by CodeDeploy");
            continue;
        }
        assert_eq!(
            reference(&pref["Type"]).as_deref(),
            Some("DeploymentType"),
            "{id}: DeploymentPreference.Type is the DeploymentType parameter"
        );
        let alarms: Vec<String> = pref["Alarms"]
            .as_sequence()
            .unwrap_or_else(|| panic!("{id} has no rollback alarms"))
            .iter()
            .filter_map(reference)
            .collect();
        let own = format!("{id}ErrorsAlarm");
        assert!(
            alarms.contains(&own),
            "{id} rolls back on {alarms:?}, not {own}"
        );
        for a in &alarms {
            assert_eq!(
                resources.get(a.as_str()).map(|r| &r["Type"]),
                Some(&Value::from("AWS::CloudWatch::Alarm")),
                "{id}: rollback alarm {a} is no alarm of the template"
            );
        }
    }
}

#[test]
fn every_api_function_is_guarded_by_the_hook_with_a_check_of_its_own() {
    let t = template();
    let fns = functions(&t);
    let hook = &fns["PreTrafficHookFunction"];
    let env = hook["Properties"]["Environment"]["Variables"]
        .as_mapping()
        .expect("the hook's variables");
    // variable → the function whose new version it names
    let versions: BTreeMap<String, String> = env
        .iter()
        .filter_map(|(k, v)| {
            let target = reference(v)?.strip_suffix(".Version")?.to_owned();
            Some((k.as_str()?.to_owned(), target))
        })
        .collect();
    let checked: BTreeSet<&str> = CHECKS.iter().map(|c| c.variable).collect();
    assert_eq!(
        versions.keys().map(String::as_str).collect::<BTreeSet<_>>(),
        checked,
        "the hook's *_VERSION variables are exactly its checks'"
    );
    for c in CHECKS {
        let target = &versions[c.variable];
        assert!(
            routes(&fns[target]).contains(&(c.method.to_owned(), c.path.to_owned())),
            "{}: {target} has no route {} {}",
            c.variable,
            c.method,
            c.path
        );
    }
    for (id, f) in &fns {
        let hooked = reference(&f["Properties"]["DeploymentPreference"]["Hooks"]["PreTraffic"]);
        let is_api = !routes(f).is_empty();
        assert_eq!(
            hooked.as_deref(),
            is_api.then_some("PreTrafficHookFunction"),
            "{id}: an API function has the PreTraffic hook, nothing else does"
        );
        assert_eq!(
            versions.values().any(|v| v == id),
            is_api,
            "{id}: every API function's new version is checked"
        );
    }
}

#[test]
fn the_hook_is_named_for_codedeploy_and_may_do_only_its_job() {
    let t = template();
    let hook = &functions(&t)["PreTrafficHookFunction"]["Properties"];
    let (tag, name) = tagged(&hook["FunctionName"]).expect("an explicit FunctionName");
    assert_eq!(tag, "Sub");
    assert!(
        name.starts_with("CodeDeployHook_"),
        "SAM's CodeDeploy role invokes only CodeDeployHook_* functions: {name}"
    );
    let statements = hook["Policies"][0]["Statement"]
        .as_sequence()
        .expect("one inline policy");
    let actions: BTreeSet<&str> = statements
        .iter()
        .filter_map(|s| s["Action"].as_str())
        .collect();
    assert_eq!(
        actions,
        BTreeSet::from([
            "lambda:InvokeFunction",
            "codedeploy:PutLifecycleEventHookExecutionStatus"
        ])
    );
    let invoke = statements
        .iter()
        .find(|s| s["Action"] == "lambda:InvokeFunction")
        .expect("the invoke statement");
    let resources: BTreeSet<String> = invoke["Resource"]
        .as_sequence()
        .expect("a list of versions")
        .iter()
        .filter_map(reference)
        .collect();
    let variables: BTreeSet<String> = hook["Environment"]["Variables"]
        .as_mapping()
        .expect("variables")
        .values()
        .filter_map(reference)
        .collect();
    assert_eq!(
        resources, variables,
        "it may invoke exactly the versions it checks"
    );
}

#[test]
fn callers_outside_the_template_name_the_alias() {
    let t = template();
    for (id, o) in t["Outputs"].as_mapping().expect("Outputs") {
        let id = id.as_str().expect("output id");
        if id.ends_with("FunctionArn") {
            let target = reference(&o["Value"]).unwrap_or_default();
            assert!(
                target.ends_with(".Alias"),
                "output {id} names {target}, not an alias"
            );
        }
    }
    for (id, r) in t["Resources"].as_mapping().expect("Resources") {
        if r["Type"] == "AWS::Lambda::Permission" {
            let target = reference(&r["Properties"]["FunctionName"]).unwrap_or_default();
            assert!(
                target.ends_with(".Alias"),
                "{}: permission on {target}, not on the alias its caller invokes",
                id.as_str().unwrap_or_default()
            );
        }
    }
}

#[test]
fn prod_shifts_gradually_and_dev_all_at_once() {
    let text = std::fs::read_to_string(repo_root().join("samconfig.toml")).expect("samconfig.toml");
    let overrides = |env: &str| -> String {
        let section = format!("[{env}.deploy.parameters]");
        let rest = &text[text.find(&section).expect(&section)..];
        rest.lines()
            .find(|l| l.starts_with("parameter_overrides"))
            .unwrap_or_default()
            .to_owned()
    };
    let prod = overrides("prod");
    assert!(
        prod.contains("DeploymentType=Canary") || prod.contains("DeploymentType=Linear"),
        "prod: {prod}"
    );
    assert!(
        !overrides("dev").contains("DeploymentType="),
        "dev uses the default (AllAtOnce)"
    );
    let t = template();
    assert_eq!(t["Parameters"]["DeploymentType"]["Default"], "AllAtOnce");
}

/// The connections the functions may hold at once: `db_connections_alarm_threshold`'s
/// default in devops/ (about 75 % of `max_connections` on db.t4g.micro), so the budget
/// leaves the rest to the migration, the bastion and RDS itself.
const CONNECTION_BUDGET: u64 = 60;

/// What the migration function may hold (its pool's bound; deploys run it one at a time).
const MIGRATION_CONNECTIONS: u64 = 2;

#[test]
fn the_database_functions_log_in_as_the_login_role_within_the_connection_budget() {
    let t = template();
    let mut total = MIGRATION_CONNECTIONS;
    for (id, f) in functions(&t) {
        let p = &f["Properties"];
        let vars = &p["Environment"]["Variables"];
        if vars["DB_HOST"].is_null() {
            continue;
        }
        let policies = serde_yaml::to_string(&p["Policies"]).unwrap();
        if id == "MigrateFunction" {
            assert_eq!(reference(&vars["DB_USER"]).as_deref(), Some("DbUser"));
            assert_eq!(
                reference(&vars["DB_APP_USER"]).as_deref(),
                Some("DbAppUser")
            );
            continue;
        }
        // Only the migration function logs in as the master user or reads its password.
        assert_eq!(
            reference(&vars["DB_USER"]).as_deref(),
            Some("DbAppUser"),
            "{id}"
        );
        assert_eq!(
            reference(&vars["DB_PASSWORD_PARAMETER"]).as_deref(),
            Some("DbAppPasswordParameterName"),
            "{id}"
        );
        assert!(
            !policies.contains("${DbPasswordParameterName}"),
            "{id} may read the master password"
        );
        // Reserved concurrency x connections per container is what it can hold.
        let reserved = p["ReservedConcurrentExecutions"]
            .as_u64()
            .unwrap_or_else(|| {
                panic!("{id} has no ReservedConcurrentExecutions: its connections are unbounded")
            });
        let per_container = vars["DB_MAX_CONNECTIONS"].as_str().map_or(1, |v| {
            v.parse::<u64>().expect("DB_MAX_CONNECTIONS is a number")
        });
        total += reserved * per_container;
    }
    assert!(
        total <= CONNECTION_BUDGET,
        "the database functions may hold {total} connections, over the budget of {CONNECTION_BUDGET}"
    );
}
