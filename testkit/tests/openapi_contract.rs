//! `docs/openapi.yaml` and `template.yaml` describe the same HTTP API: every route the
//! template wires to a function is in the spec, the spec has no route the template lacks,
//! and a route is public in one exactly when it is public in the other.
//!
//! (Whether the spec is a valid OpenAPI 3.1 document is checked by
//! `openapi-spec-validator` in scripts/test.sh.)

use std::collections::BTreeSet;

use encache_testkit::repo_root;
use serde_yaml::Value;

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// `(METHOD, path, public)` for one route.
type Route = (String, String, bool);

fn load(relative: &str) -> Value {
    let path = repo_root().join(relative);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()))
}

/// A plain string, or the value under a CloudFormation tag such as `!Ref`.
fn text(value: &Value) -> Option<&str> {
    match value {
        Value::String(s) => Some(s),
        Value::Tagged(tagged) => text(&tagged.value),
        _ => None,
    }
}

/// Every `HttpApi` event of every function in the template.
fn template_routes(template: &Value) -> BTreeSet<Route> {
    let resources = template["Resources"]
        .as_mapping()
        .expect("template.yaml has Resources");
    let mut routes = BTreeSet::new();
    for (name, resource) in resources {
        if text(&resource["Type"]) != Some("AWS::Serverless::Function") {
            continue;
        }
        let Some(events) = resource["Properties"]["Events"].as_mapping() else {
            continue;
        };
        for (event_name, event) in events {
            if text(&event["Type"]) != Some("HttpApi") {
                continue;
            }
            let props = &event["Properties"];
            let where_ = format!("{name:?}.{event_name:?}");
            let method = text(&props["Method"])
                .unwrap_or_else(|| panic!("{where_}: HttpApi event without a Method"))
                .to_ascii_uppercase();
            let path = text(&props["Path"])
                .unwrap_or_else(|| panic!("{where_}: HttpApi event without a Path"))
                .to_owned();
            let public = text(&props["Auth"]["Authorizer"]) == Some("NONE");
            assert!(
                routes.insert((method, path, public)),
                "{where_}: route declared twice"
            );
        }
    }
    routes
}

/// Every operation in the spec; public when its `security` is an empty list.
fn spec_routes(spec: &Value) -> BTreeSet<Route> {
    let default_secured = spec["security"]
        .as_sequence()
        .is_some_and(|s| !s.is_empty());
    let paths = spec["paths"].as_mapping().expect("openapi.yaml has paths");
    let mut routes = BTreeSet::new();
    for (path, item) in paths {
        let path = text(path).expect("paths are strings").to_owned();
        let item = item.as_mapping().expect("a path item is a mapping");
        for (key, operation) in item {
            let key = text(key).expect("keys are strings");
            if !METHODS.contains(&key) {
                continue;
            }
            let public = match operation["security"].as_sequence() {
                Some(list) => list.is_empty(),
                None => !default_secured,
            };
            routes.insert((key.to_ascii_uppercase(), path.clone(), public));
        }
    }
    routes
}

fn describe(routes: &BTreeSet<&Route>) -> String {
    routes
        .iter()
        .map(|(m, p, public)| format!("  {m} {p}{}", if *public { " (public)" } else { "" }))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn the_spec_and_the_template_describe_exactly_the_same_routes() {
    let template = template_routes(&load("template.yaml"));
    let spec = spec_routes(&load("docs/openapi.yaml"));
    assert!(
        !template.is_empty(),
        "the template declares no HttpApi route"
    );

    let missing_from_spec: BTreeSet<_> = template.difference(&spec).collect();
    let missing_from_template: BTreeSet<_> = spec.difference(&template).collect();
    assert!(
        missing_from_spec.is_empty() && missing_from_template.is_empty(),
        "docs/openapi.yaml and template.yaml disagree.\n\
         In template.yaml but not in the spec:\n{}\n\
         In the spec but not in template.yaml:\n{}",
        describe(&missing_from_spec),
        describe(&missing_from_template),
    );
}

#[test]
fn the_spec_declares_bearer_auth_and_the_standard_error() {
    let spec = load("docs/openapi.yaml");
    assert_eq!(text(&spec["openapi"]).map(|v| &v[..4]), Some("3.1."));
    let scheme = &spec["components"]["securitySchemes"]["cognitoJwt"];
    assert_eq!(text(&scheme["type"]), Some("http"));
    assert_eq!(text(&scheme["scheme"]), Some("bearer"));
    let error = &spec["components"]["schemas"]["StandardError"];
    let required: Vec<_> = error["required"]
        .as_sequence()
        .expect("StandardError.required")
        .iter()
        .filter_map(text)
        .collect();
    assert_eq!(required, ["message"]);
    for field in ["status", "code", "message"] {
        assert!(
            error["properties"][field].is_mapping(),
            "StandardError.{field}"
        );
    }
}

#[test]
fn the_route_check_notices_a_route_the_spec_lacks() {
    // Guards the guard: a template with one more route must not match the spec.
    let mut template = load("template.yaml");
    let extra: Value = serde_yaml::from_str(
        "Type: AWS::Serverless::Function\n\
         Properties:\n  Events:\n    Extra:\n      Type: HttpApi\n      Properties:\n        \
         ApiId: !Ref HttpApi\n        Method: DELETE\n        Path: /v1/memories/{id}\n",
    )
    .unwrap();
    template["Resources"]
        .as_mapping_mut()
        .unwrap()
        .insert("ExtraFunction".into(), extra);
    let spec = spec_routes(&load("docs/openapi.yaml"));
    let routes = template_routes(&template);
    let missing: Vec<_> = routes.difference(&spec).collect();
    assert_eq!(
        missing,
        [&("DELETE".to_owned(), "/v1/memories/{id}".to_owned(), false)]
    );
}
