//! The gradual rollout as template.yaml declares it: every function behind a `live`
//! alias that every caller names, CodeDeploy shifting it with the function's alarm as the
//! rollback trigger, and this hook guarding every API function with a check of its own.
//! And what each new version may use of the database: the login role, within the
//! connection budget; and of the data key: only what its own reads and writes need.

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
fn stage_and_prod_shift_gradually_and_dev_all_at_once() {
    let text = std::fs::read_to_string(repo_root().join("samconfig.toml")).expect("samconfig.toml");
    let overrides = |env: &str| -> String {
        let section = format!("[{env}.deploy.parameters]");
        let rest = &text[text.find(&section).expect(&section)..];
        rest.lines()
            .find(|l| l.starts_with("parameter_overrides"))
            .unwrap_or_default()
            .to_owned()
    };
    for env in ["stage", "prod"] {
        let o = overrides(env);
        assert!(
            o.contains("DeploymentType=Canary") || o.contains("DeploymentType=Linear"),
            "{env}: {o}"
        );
    }
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

// ---------------------------------------------------------------- the data key
// Data at rest is under the environment's customer-managed key (`DataKeyArn`, devops/kms.tf),
// and each function may use it only as far as its own reads and writes need: one service
// per statement (`kms:ViaService`), the key and nothing else, no wildcard action.

/// The services a function may reach the data key through, and the actions it may use.
const KEY_SERVICES: &[&str] = &["ssm", "s3", "sqs", "sns", "dynamodb"];
/// (`kms:Encrypt` only through SSM: a standard SecureString is written with it.)
const KEY_ACTIONS: &[&str] = &["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"];

/// Functions whose presigned URLs carry their own KMS authority (a presigned request to an
/// SSE-KMS bucket is authorised as the signer): PUT needs a data key, GET its decryption.
const PRESIGNERS: &[(&str, &[&str])] = &[
    ("UploadApiFunction", &["kms:Decrypt", "kms:GenerateDataKey"]),
    ("MemoryFeedFunction", &["kms:Decrypt"]),
];

fn as_strings(v: &Value) -> Vec<String> {
    match v {
        Value::Sequence(items) => items
            .iter()
            .filter_map(|i| i.as_str().map(str::to_owned))
            .collect(),
        Value::String(s) => vec![s.clone()],
        _ => Vec::new(),
    }
}

fn as_values(v: &Value) -> Vec<Value> {
    match v {
        Value::Sequence(items) => items.clone(),
        Value::Null => Vec::new(),
        other => vec![other.clone()],
    }
}

/// Every inline policy statement of a function (`Policies: - Statement: [...]`).
fn statements(f: &Value) -> Vec<Value> {
    as_values(&f["Properties"]["Policies"])
        .iter()
        .flat_map(|p| as_values(&p["Statement"]))
        .collect()
}

/// The service a statement's `kms:ViaService` names (`!Sub ssm.${AWS::Region}.amazonaws.com`).
fn via_service(s: &Value) -> Option<String> {
    let via = s["Condition"]["StringEquals"].get("kms:ViaService")?;
    let (tag, arg) = tagged(via)?;
    (tag == "Sub")
        .then(|| {
            arg.strip_suffix(".${AWS::Region}.amazonaws.com")
                .map(str::to_owned)
        })
        .flatten()
}

/// The kms actions `id` may use through `service`.
fn key_actions_through(f: &Value, service: &str) -> BTreeSet<String> {
    statements(f)
        .iter()
        .filter(|s| via_service(s).as_deref() == Some(service))
        .flat_map(|s| as_strings(&s["Action"]))
        .filter(|a| a.starts_with("kms:"))
        .collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

#[test]
fn every_key_statement_names_the_data_key_only_through_one_service() {
    let t = template();
    for (id, f) in functions(&t) {
        for s in statements(&f) {
            let actions = as_strings(&s["Action"]);
            if !actions.iter().any(|a| a.to_lowercase().starts_with("kms:")) {
                continue;
            }
            let sid = s["Sid"].as_str().unwrap_or("<no sid>");
            assert_eq!(s["Effect"], "Allow", "{id}/{sid}");
            for a in &actions {
                assert!(
                    KEY_ACTIONS.contains(&a.as_str()),
                    "{id}/{sid}: {a} is not one of {KEY_ACTIONS:?} (no wildcard, nothing else)"
                );
            }
            assert_eq!(
                reference(&s["Resource"]).as_deref(),
                Some("DataKeyArn"),
                "{id}/{sid}: a key statement names !Ref DataKeyArn and nothing else"
            );
            let service = via_service(&s).unwrap_or_else(|| {
                panic!("{id}/{sid}: no kms:ViaService condition of the form !Sub SERVICE.${{AWS::Region}}.amazonaws.com")
            });
            assert!(
                KEY_SERVICES.contains(&service.as_str()),
                "{id}/{sid}: through {service}, not one of {KEY_SERVICES:?}"
            );
            assert!(
                service == "ssm" || !actions.iter().any(|a| a == "kms:Encrypt"),
                "{id}/{sid}: kms:Encrypt through {service} (only SSM's SecureString writes use it)"
            );
        }
    }
}

#[test]
fn every_secure_string_reader_and_writer_may_use_the_key_through_ssm_and_no_other_function() {
    let t = template();
    // Parameters named *ParameterName hold the names of SecureStrings.
    let secure: Vec<String> = t["Parameters"]
        .as_mapping()
        .expect("Parameters")
        .keys()
        .filter_map(|k| k.as_str())
        .filter(|k| k.ends_with("ParameterName"))
        .map(|k| format!("${{{k}}}"))
        .collect();
    assert!(!secure.is_empty());
    for (id, f) in functions(&t) {
        // Reading one decrypts it; writing one (standard tier) encrypts it.
        let on_secure_string = |wanted: &[&str]| {
            statements(&f).iter().any(|s| {
                as_strings(&s["Action"])
                    .iter()
                    .any(|a| wanted.contains(&a.as_str()))
                    && as_values(&s["Resource"]).iter().any(|r| {
                        tagged(r)
                            .is_some_and(|(_, arg)| secure.iter().any(|p| arg.contains(p.as_str())))
                    })
            })
        };
        let mut want = BTreeSet::new();
        if on_secure_string(&["ssm:GetParameter", "ssm:GetParameters"]) {
            want.insert("kms:Decrypt".to_owned());
        }
        if on_secure_string(&["ssm:PutParameter"]) {
            want.insert("kms:Encrypt".to_owned());
        }
        assert_eq!(
            key_actions_through(&f, "ssm"),
            want,
            "{id}: kms actions through ssm (kms:Decrypt to read a SecureString, kms:Encrypt to write one, nothing else)"
        );
    }
}

#[test]
fn every_function_with_an_encrypted_dead_letter_queue_may_send_to_it() {
    let t = template();
    for (id, f) in functions(&t) {
        let p = &f["Properties"];
        let sends = p["DeadLetterQueue"]["Type"] == "SQS"
            || p["EventInvokeConfig"]["DestinationConfig"]["OnFailure"]["Type"] == "SQS";
        let through_sqs = key_actions_through(&f, "sqs");
        if sends {
            assert_eq!(
                through_sqs,
                set(&["kms:Decrypt", "kms:GenerateDataKey"]),
                "{id} sends failed events to a KMS-encrypted queue"
            );
        } else {
            assert!(
                through_sqs.is_empty(),
                "{id} sends to no queue but may use the key through sqs"
            );
        }
    }
}

#[test]
fn presigners_carry_the_key_permissions_their_urls_need_and_nobody_else_uses_it_through_s3() {
    let t = template();
    let bucket =
        "arn:${AWS::Partition}:s3:::encache-${Env}-uploads-${AWS::AccountId}-${AWS::Region}";
    for (id, f) in functions(&t) {
        let want = PRESIGNERS
            .iter()
            .find(|(p, _)| *p == id)
            .map(|(_, a)| set(a))
            .unwrap_or_default();
        assert_eq!(
            key_actions_through(&f, "s3"),
            want,
            "{id}: kms actions through s3"
        );
        for s in statements(&f)
            .iter()
            .filter(|s| via_service(s).as_deref() == Some("s3"))
        {
            let ctx = tagged(&s["Condition"]["StringEquals"]["kms:EncryptionContext:aws:s3:arn"]);
            assert_eq!(
                ctx.map(|(_, arg)| arg).as_deref(),
                Some(bucket),
                "{id}: through s3 only for the upload bucket (its bucket key's encryption context)"
            );
        }
    }
}

#[test]
fn the_bucket_queues_topics_log_groups_and_table_are_under_the_data_key() {
    let t = template();
    let resources = t["Resources"].as_mapping().expect("Resources");
    let mut seen = BTreeSet::new();
    for (id, r) in resources {
        let id = id.as_str().expect("id");
        let p = &r["Properties"];
        let key = match r["Type"].as_str().unwrap_or_default() {
            "AWS::S3::Bucket" => {
                let rules = as_values(&p["BucketEncryption"]["ServerSideEncryptionConfiguration"]);
                assert_eq!(rules.len(), 1, "{id}: one default encryption rule");
                let d = &rules[0]["ServerSideEncryptionByDefault"];
                assert_eq!(d["SSEAlgorithm"], "aws:kms", "{id}");
                assert_eq!(
                    rules[0]["BucketKeyEnabled"], true,
                    "{id}: the bucket key keeps KMS calls few"
                );
                d["KMSMasterKeyID"].clone()
            }
            "AWS::SQS::Queue" => {
                assert!(
                    p.get("SqsManagedSseEnabled").is_none(),
                    "{id}: SQS-managed SSE instead of the key"
                );
                p["KmsMasterKeyId"].clone()
            }
            "AWS::SNS::Topic" => p["KmsMasterKeyId"].clone(),
            "AWS::Logs::LogGroup" => p["KmsKeyId"].clone(),
            "AWS::DynamoDB::Table" => {
                assert_eq!(p["SSESpecification"]["SSEEnabled"], true, "{id}");
                assert_eq!(p["SSESpecification"]["SSEType"], "KMS", "{id}");
                p["SSESpecification"]["KMSMasterKeyId"].clone()
            }
            _ => continue,
        };
        assert_eq!(
            reference(&key).as_deref(),
            Some("DataKeyArn"),
            "{id} is not under !Ref DataKeyArn"
        );
        seen.insert(r["Type"].as_str().unwrap_or_default().to_owned());
    }
    for kind in [
        "AWS::S3::Bucket",
        "AWS::SQS::Queue",
        "AWS::SNS::Topic",
        "AWS::Logs::LogGroup",
        "AWS::DynamoDB::Table",
    ] {
        assert!(
            seen.contains(kind),
            "no {kind} in the template: is this test still looking at the right file?"
        );
    }
    // The key comes from Terraform's parameter, per environment.
    assert_eq!(
        t["Parameters"]["DataKeyArn"]["Type"],
        "AWS::SSM::Parameter::Value<String>"
    );
    assert_eq!(
        t["Parameters"]["DataKeyArn"]["Default"],
        "/encache/dev/kms/data-key-arn"
    );
}

// ---------------------------------------------------------------- the password rotation

const CURRENT_PASSWORD: &str = "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter${DbAppPasswordParameterName}";

/// (action, resource) of every non-kms statement of a function, `!Sub` arguments as text.
fn ssm_grants(f: &Value) -> BTreeSet<(String, String)> {
    statements(f)
        .iter()
        .flat_map(|s| {
            let resources: Vec<String> = as_values(&s["Resource"])
                .iter()
                .filter_map(|r| tagged(r).map(|(_, arg)| arg))
                .collect();
            as_strings(&s["Action"])
                .into_iter()
                .filter(|a| !a.starts_with("kms:"))
                .flat_map(move |a| resources.clone().into_iter().map(move |r| (a.clone(), r)))
        })
        .collect()
}

#[test]
fn the_rotation_may_change_only_the_two_passwords_and_every_database_function_may_read_both() {
    let t = template();
    let pending = format!("{CURRENT_PASSWORD}-pending");
    let fns = functions(&t);
    let rotation = &fns["DbRotationFunction"];
    let grant = |a: &str, r: &str| (a.to_owned(), r.to_owned());
    assert_eq!(
        ssm_grants(rotation),
        BTreeSet::from([
            grant("ssm:GetParameters", &pending),
            grant("ssm:PutParameter", &pending),
            grant("ssm:DeleteParameter", &pending),
            grant("ssm:GetParameters", CURRENT_PASSWORD),
            grant("ssm:PutParameter", CURRENT_PASSWORD),
        ]),
        "the rotation may read, write and delete the pending password, read and write the current one, nothing else"
    );
    assert_eq!(
        rotation["Properties"]["ReservedConcurrentExecutions"].as_u64(),
        Some(1),
        "one rotation at a time"
    );
    for (id, f) in &fns {
        let vars = &f["Properties"]["Environment"]["Variables"];
        if reference(&vars["DB_PASSWORD_PARAMETER"]).as_deref()
            != Some("DbAppPasswordParameterName")
        {
            continue;
        }
        assert_eq!(
            tagged(&vars["DB_PASSWORD_PENDING_PARAMETER"]),
            Some(("Sub".into(), "${DbAppPasswordParameterName}-pending".into())),
            "{id} does not know the pending password's name"
        );
        let grants = ssm_grants(f);
        for name in [CURRENT_PASSWORD, pending.as_str()] {
            assert!(
                grants.contains(&grant("ssm:GetParameters", name)),
                "{id} may not read {name} again after a refusal"
            );
        }
        if id != "DbRotationFunction" {
            assert!(
                !grants.iter().any(|(a, r)| r.starts_with(CURRENT_PASSWORD)
                    && (a == "ssm:PutParameter" || a == "ssm:DeleteParameter")),
                "{id} may change a password"
            );
        }
    }
}
