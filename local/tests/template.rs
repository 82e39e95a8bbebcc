//! The template model: short- and long-form intrinsics resolved the way CloudFormation
//! would, from local parameter values.

use std::collections::HashMap;

use encache_local::emulators::cloudformation::local_outputs;
use encache_local::stack::{Config, Stack};
use encache_local::template::{Authorizer, EventKind, Resolver, Template, referenced_ids};
use serde_yaml::Value;

const TEMPLATE: &str = r#"
Parameters:
  Env: {Type: String, Default: dev}
  Names: {Type: CommaDelimitedList, Default: "a,b,c"}
  PoolId: {Type: "AWS::SSM::Parameter::Value<String>", Default: /encache/dev/auth/pool}
Conditions:
  IsDev: !Equals [!Ref Env, dev]
  NotDev: !Not [!Condition IsDev]
Globals:
  Function:
    Timeout: 10
    MemorySize: 256
    Environment: {Variables: {ENCACHE_ENV: !Ref Env}}
Resources:
  Bucket:
    Type: AWS::S3::Bucket
    Properties: {BucketName: !Sub "encache-${Env}-${AWS::AccountId}-${AWS::Region}"}
  Fn:
    Type: AWS::Serverless::Function
    Metadata: {BuildMethod: rust-cargolambda, BuildProperties: {Binary: fn-bin}}
    Properties:
      CodeUri: .
      Timeout: 4
      ReservedConcurrentExecutions: 3
      Environment:
        Variables:
          OWN: x
      Events:
        Get:
          Type: HttpApi
          Properties: {Method: get, Path: "/v1/things/{id}", Auth: {Authorizer: NONE}}
        Upload:
          Type: S3
          Properties:
            Bucket: !Ref Bucket
            Events: [s3:ObjectCreated:*]
            Filter: {S3Key: {Rules: [{Name: prefix, Value: users/}]}}
        Nightly:
          Type: Schedule
          Properties: {Schedule: rate(1 day)}
"#;

fn yaml(text: &str) -> Value {
    serde_yaml::from_str(text).expect("yaml")
}

#[test]
fn functions_merge_globals_and_keep_their_events() {
    let t = Template::parse(TEMPLATE).expect("parses");
    let f = t.function("Fn").expect("Fn");

    assert_eq!(f.binary, "fn-bin");
    assert_eq!(f.timeout_secs, 4);
    assert_eq!(f.memory_mb, 256);
    assert!(f.environment.contains_key("ENCACHE_ENV") && f.environment.contains_key("OWN"));
    assert!(matches!(
        &f.events[0].kind,
        EventKind::HttpApi { method, path, authorizer: Authorizer::None, .. }
            if method == "GET" && path == "/v1/things/{id}"
    ));
    assert!(
        matches!(&f.events[1].kind, EventKind::S3 { bucket, prefix: Some(p), .. }
        if bucket == "Bucket" && p == "users/")
    );
    assert!(matches!(&f.events[2].kind, EventKind::Schedule { .. }));
    assert_eq!(t.binaries(), vec!["fn-bin".to_owned()]);
    assert_eq!(f.reserved_concurrency, Some(3));
}

#[test]
fn what_the_runtime_does_not_emulate_is_named() {
    let t = Template::parse(TEMPLATE).expect("parses");
    let gaps = t.not_emulated();
    assert!(
        !gaps.iter().any(|g| g.starts_with("MemorySize")),
        "MemorySize is enforced: {gaps:?}"
    );
    assert!(
        gaps.iter()
            .any(|g| g.starts_with("ReservedConcurrentExecutions (Fn 3)")),
        "{gaps:?}"
    );
}

#[test]
fn intrinsics_resolve_against_local_values() {
    let t = Template::parse(TEMPLATE).expect("parses");
    let local = HashMap::from([("PoolId".to_owned(), "us-east-1_local".to_owned())]);
    let r = Resolver::new(&t, local);
    let s = |text: &str| r.string(&yaml(text)).expect(text);

    assert_eq!(s("!Ref Env"), "dev");
    assert_eq!(s("!Ref PoolId"), "us-east-1_local");
    assert_eq!(s("!Ref Bucket"), "encache-dev-123456789012-us-east-1");
    assert_eq!(
        s("!GetAtt Bucket.Arn"),
        "arn:aws:s3:::encache-dev-123456789012-us-east-1"
    );
    assert_eq!(
        s("!Sub '${Bucket.Arn}/*'"),
        "arn:aws:s3:::encache-dev-123456789012-us-east-1/*"
    );
    assert_eq!(
        s("!Sub ['${A}-${!Literal}', {A: !Ref Env}]"),
        "dev-${Literal}"
    );
    assert_eq!(s("!Join ['+', !Ref Names]"), "a+b+c");
    assert_eq!(s("{'Fn::Join': ['-', [x, {Ref: Env}]]}"), "x-dev");
    assert_eq!(s("!Select [1, !Split [',', 'p,q,r']]"), "q");
    assert_eq!(s("!If [IsDev, yes, no]"), "yes");
    assert_eq!(s("!If [NotDev, yes, no]"), "no");
    assert_eq!(
        s("!GetAtt Fn.Arn"),
        "arn:aws:lambda:us-east-1:123456789012:function:Fn"
    );
    assert_eq!(
        r.list(&yaml("!Ref Names")).expect("list"),
        vec!["a", "b", "c"]
    );
}

#[test]
fn an_ssm_parameter_without_a_local_value_does_not_resolve() {
    let t = Template::parse(TEMPLATE).expect("parses");
    let r = Resolver::new(&t, HashMap::new());

    let err = r.string(&yaml("!Ref PoolId")).expect_err("no local value");

    assert!(err.to_string().contains("PoolId"), "{err}");
    assert!(r.string(&yaml("!ImportValue Other")).is_err());
}

#[test]
fn rate_and_cron_schedules_parse_and_the_scheduled_event_has_its_real_shape() {
    use encache_local::emulators::event_sources::schedule::Expression;
    use encache_local::emulators::event_sources::{schedule_interval, scheduled_event};
    use std::time::Duration;

    assert_eq!(
        schedule_interval("rate(5 minutes)"),
        Some(Duration::from_secs(300))
    );
    assert_eq!(
        schedule_interval("rate(1 day)"),
        Some(Duration::from_secs(86400))
    );
    assert_eq!(schedule_interval("cron(0 8 * * ? *)"), None);
    assert!(matches!(
        Expression::parse("cron(0 8 * * ? *)"),
        Ok(Expression::Cron(_))
    ));
    let refused = Expression::parse("cron(0 8 * * *)").expect_err("five fields");
    assert!(refused.to_string().contains("6"), "{refused}");

    let event = scheduled_event(
        "arn:aws:events:us-east-1:123456789012:rule/r",
        "us-east-1",
        None,
    );
    let parsed: aws_lambda_events::cloudwatch_events::CloudWatchEvent =
        serde_json::from_value(event.clone()).expect("a real scheduled event shape");
    assert_eq!(parsed.detail_type.as_deref(), Some("Scheduled Event"));
    assert_eq!(event["source"], "aws.events");
    assert_eq!(
        scheduled_event("arn", "us-east-1", Some(r#"{"mode":"digest"}"#)),
        serde_json::json!({"mode": "digest"})
    );
}

const WITH_OUTPUTS: &str = r#"
Parameters:
  Env: {Type: String, Default: dev}
  PoolId: {Type: "AWS::SSM::Parameter::Value<String>", Default: /encache/dev/auth/pool}
Conditions:
  IsProd: !Equals [!Ref Env, prod]
Resources:
  Api:
    Type: AWS::Serverless::HttpApi
  Fn:
    Type: AWS::Serverless::Function
    Metadata: {BuildMethod: rust-cargolambda, BuildProperties: {Binary: fn-bin}}
    Properties: {CodeUri: .}
Outputs:
  ApiUrl:
    Description: Base URL.
    Value: !Sub https://${Api}.execute-api.${AWS::Region}.${AWS::URLSuffix}
  FnArn:
    Value: {"Fn::GetAtt": [Fn, Arn]}
  ProdOnly:
    Condition: IsProd
    Value: !Ref Env
  Pool:
    Value: !Ref PoolId
"#;

#[test]
fn outputs_resolve_locally_and_name_what_they_cannot() {
    // given a stack whose template has outputs of every kind
    let dir = std::env::temp_dir().join(format!("encache-outputs-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("scratch");
    std::fs::write(dir.join("template.yaml"), WITH_OUTPUTS).expect("template");
    let mut config = Config::for_root(&dir, dir.clone());
    config.region = "eu-west-1".into();
    config.stack_name = "stack-x".into();
    let stack = Stack::load(config).expect("loads");

    // when
    let outputs = local_outputs(&stack, "http://127.0.0.1:3000/").expect("resolves");

    // then the API's URL is the local gateway's, ARNs are local, a false condition drops
    // the output, and an SSM-typed parameter without a local value is named as skipped
    let values: Vec<(&str, &str)> = outputs
        .values
        .iter()
        .map(|(k, (v, _))| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        values,
        vec![
            ("ApiUrl", "http://127.0.0.1:3000"),
            ("FnArn", "arn:aws:lambda:eu-west-1:123456789012:function:Fn"),
        ]
    );
    assert_eq!(outputs.values["ApiUrl"].1.as_deref(), Some("Base URL."));
    assert_eq!(outputs.skipped.len(), 1, "{:?}", outputs.skipped);
    assert_eq!(outputs.skipped[0].0, "Pool");
    assert!(
        outputs.skipped[0].1.contains("PoolId"),
        "{:?}",
        outputs.skipped
    );
}

#[test]
fn referenced_ids_follow_ref_getatt_and_sub() {
    let v = yaml(
        r#"{"Fn::Join": ["", [!Ref A, !GetAtt B.Arn, !Sub ["${C.Url}/${D}${!Literal}", {D: !Ref E}]]]}"#,
    );
    let ids: Vec<String> = referenced_ids(&v).into_iter().collect();
    assert_eq!(ids, ["A", "B", "C", "D", "E"]);
}

/// template.yaml's optional custom API domain: conditioned resources the local stack does
/// not run, a deploy-time `Rules` section, and an `ApiUrl` chosen with `Fn::If`.
const WITH_API_DOMAIN: &str = r#"
Parameters:
  ApiDomainName: {Type: String, Default: ""}
  ApiHostedZoneId: {Type: String, Default: ""}
Rules:
  ApiDomainNeedsItsHostedZone:
    Assertions:
      - Assert: !Or
          - !And [!Equals [!Ref ApiDomainName, ""], !Equals [!Ref ApiHostedZoneId, ""]]
          - !And [!Not [!Equals [!Ref ApiDomainName, ""]], !Not [!Equals [!Ref ApiHostedZoneId, ""]]]
Conditions:
  HasApiDomain: !Not [!Equals [!Ref ApiDomainName, ""]]
Resources:
  Api:
    Type: AWS::Serverless::HttpApi
    Properties:
      DisableExecuteApiEndpoint: !If [HasApiDomain, true, false]
  ApiCertificate:
    Type: AWS::CertificateManager::Certificate
    Condition: HasApiDomain
    Properties: {DomainName: !Ref ApiDomainName, ValidationMethod: DNS}
  ApiDomain:
    Type: AWS::ApiGatewayV2::DomainName
    Condition: HasApiDomain
    Properties: {DomainName: !Ref ApiDomainName}
  ApiDomainMapping:
    Type: AWS::ApiGatewayV2::ApiMapping
    Condition: HasApiDomain
    Properties: {ApiId: !Ref Api, DomainName: !Ref ApiDomain, Stage: !Ref ApiApiGatewayDefaultStage}
Outputs:
  ApiUrl:
    Value: !If
      - HasApiDomain
      - !Sub https://${ApiDomainName}
      - !Sub https://${Api}.execute-api.${AWS::Region}.${AWS::URLSuffix}
  DomainOnly:
    Condition: HasApiDomain
    Value: !Ref ApiDomainName
"#;

#[test]
fn the_api_url_stays_local_with_or_without_a_custom_domain() {
    let dir = std::env::temp_dir().join(format!("encache-domain-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("scratch");
    std::fs::write(dir.join("template.yaml"), WITH_API_DOMAIN).expect("template");
    for domain in ["", "api.example.com"] {
        // given the template with the domain unset, then set
        let mut stack = Stack::load(Config::for_root(&dir, dir.clone())).expect("loads");
        stack
            .parameters
            .insert("ApiDomainName".into(), domain.into());
        stack.parameters.insert(
            "ApiHostedZoneId".into(),
            if domain.is_empty() { "" } else { "Z1" }.into(),
        );

        // when
        let resolver = stack.resolver();
        let outputs = local_outputs(&stack, "http://127.0.0.1:3000").expect("resolves");

        // then the condition and Fn::If follow the parameter, and the API's URL is the
        // local gateway's either way (the custom domain exists only in AWS)
        assert_eq!(
            resolver.condition("HasApiDomain").expect("condition"),
            !domain.is_empty()
        );
        let disabled = resolver
            .resolve(&yaml("!If [HasApiDomain, true, false]"))
            .expect("Fn::If");
        assert_eq!(
            disabled,
            serde_json::json!(!domain.is_empty()),
            "{domain:?}"
        );
        assert_eq!(
            outputs.values["ApiUrl"].0, "http://127.0.0.1:3000",
            "{domain:?}"
        );
        assert_eq!(
            outputs.values.contains_key("DomainOnly"),
            !domain.is_empty(),
            "{domain:?}"
        );
        assert!(outputs.skipped.is_empty(), "{:?}", outputs.skipped);
    }
}
