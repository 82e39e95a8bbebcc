//! The triggers fed the real fixtures shipped in `aws_lambda_events` 1.2.1
//! (`src/fixtures/example-cognito-event-userpools-*.json`), copied verbatim except for
//! the placeholder attributes a handler cannot work with (`"<email>"`, no `sub`).

mod common;

use std::time::Duration;

use common::{user_count, with};
use encache_auth::policy::SignUpPolicy;
use encache_auth::settings::TriggerSettings;
use encache_auth::{post_confirmation, pre_sign_up, pre_token_generation};
use encache_shared::users::{self, Email};
use encache_testkit::{TestDb, lambda_event};
use serde_json::{Value, json};

fn presignup_fixture() -> Value {
    json!({
      "version": "1",
      "triggerSource": "PreSignUp_SignUp",
      "region": "<region>",
      "userPoolId": "<userPoolId>",
      "userName": "<userName>",
      "callerContext": {
          "awsSdkVersion": "<calling aws sdk with version>",
          "clientId": "<apps client id>"
      },
      "request": {
          "userAttributes": {
              "email": "<email>",
              "phone_number": "<phone_number>"
           },
          "validationData": {
              "k1": "v1",
              "k2": "v2"
           },
           "clientMetadata": {
            "exampleMetadataKey": "example metadata value"
          }
      },
      "response": {
          "autoConfirmUser": false,
          "autoVerifyEmail": true,
          "autoVerifyPhone": true
      }
    })
}

fn postconfirmation_fixture() -> Value {
    json!({
      "version": "1",
      "triggerSource": "PostConfirmation_ConfirmSignUp",
      "region": "<region>",
      "userPoolId": "<userPoolId>",
      "userName": "<userName>",
      "callerContext": {
          "awsSdkVersion": "<calling aws sdk with version>",
          "clientId": "<apps client id>"
      },
      "request": {
          "userAttributes" : {
              "email": "<email>",
              "phone_number": "<phone_number>"
          },
          "clientMetadata": {
            "exampleMetadataKey": "example metadata value"
          }
      },
      "response": {}
    })
}

fn pretokengen_v2_incoming_fixture() -> Value {
    json!({
      "version": "1",
      "triggerSource": "TokenGeneration_HostedAuth",
      "region": "region",
      "userPoolId": "userPoolId",
      "userName": "userName",
      "callerContext": {
        "awsSdkVersion": "calling aws sdk with version",
        "clientId": "apps client id"
      },
      "request": {
        "userAttributes": {
          "email": "email",
          "phone_number": "phone_number"
        },
        "scopes": ["scope-1", "scope-2"],
        "groupConfiguration": {
          "groupsToOverride": ["group-A", "group-B", "group-C"],
          "iamRolesToOverride": [
            "arn:aws:iam::XXXXXXXXXXXX:role/sns_callerA",
            "arn:aws:iam::XXXXXXXXX:role/sns_callerB",
            "arn:aws:iam::XXXXXXXXXX:role/sns_callerC"
          ],
          "preferredRole": "arn:aws:iam::XXXXXXXXXXX:role/sns_caller"
        },
        "clientMetadata": {
          "exampleMetadataKey": "example metadata value"
        }
      },
      "response": {
        "claimsOverrideDetails": null
      }
    })
}

#[tokio::test]
async fn the_crates_pre_sign_up_fixture_is_refused_for_its_placeholder_email_and_accepted_with_a_real_one()
 {
    let deps = pre_sign_up::Deps {
        policy: SignUpPolicy::default(),
    };

    let refused = pre_sign_up::handle(&deps, lambda_event(presignup_fixture())).await;
    let fixed = with(
        presignup_fixture(),
        "/request/userAttributes/email",
        json!("kim@example.com"),
    );
    let accepted = pre_sign_up::handle(&deps, lambda_event(fixed))
        .await
        .unwrap();

    assert_eq!(
        refused.unwrap_err().to_string(),
        "the email address is not valid"
    );
    // The fixture asked for auto-verification; the policy (all off) decides, not the event.
    let out = serde_json::to_value(accepted).unwrap();
    assert_eq!(
        out["response"],
        json!({"autoConfirmUser": false, "autoVerifyEmail": false, "autoVerifyPhone": false})
    );
}

#[tokio::test]
async fn the_crates_post_confirmation_fixture_needs_a_sub_and_then_provisions_one_row() {
    let db = TestDb::new().await;
    let deps = post_confirmation::Deps {
        db: db.pool.clone().into(),
        settings: TriggerSettings {
            db_timeout: Duration::from_secs(2),
        },
    };

    let missing_sub =
        post_confirmation::handle(&deps, lambda_event(postconfirmation_fixture())).await;
    let mut fixed = with(
        postconfirmation_fixture(),
        "/request/userAttributes/email",
        json!("kim@example.com"),
    );
    fixed["request"]["userAttributes"]["sub"] = json!("0d5a6c3e-1111-4b2a-9c8d-7e6f5a4b3c2d");
    post_confirmation::handle(&deps, lambda_event(fixed))
        .await
        .unwrap();

    assert!(
        missing_sub
            .unwrap_err()
            .to_string()
            .contains("request.userAttributes.sub is missing")
    );
    assert_eq!(user_count(&db.pool).await, 1);
}

#[tokio::test]
async fn the_crates_v2_incoming_fixture_gets_claims_and_its_groups_and_roles_back() {
    let db = TestDb::new().await;
    let sub = "0d5a6c3e-2222-4b2a-9c8d-7e6f5a4b3c2d";
    let user = users::upsert(
        &db.pool,
        sub,
        &Email::parse("kim@example.com").unwrap(),
        true,
    )
    .await
    .unwrap()
    .unwrap()
    .user;
    let mut event = pretokengen_v2_incoming_fixture();
    event["request"]["userAttributes"]["sub"] = json!(sub);
    let deps = pre_token_generation::Deps {
        db: db.pool.clone().into(),
        settings: TriggerSettings {
            db_timeout: Duration::from_secs(1),
        },
    };

    let out = pre_token_generation::handle(&deps, lambda_event(event.clone()))
        .await
        .unwrap();

    let out = serde_json::to_value(out).unwrap();
    let details = &out["response"]["claimsAndScopeOverrideDetails"];
    assert_eq!(
        details["groupOverrideDetails"],
        event["request"]["groupConfiguration"]
    );
    assert_eq!(
        details["accessTokenGeneration"]["claimsToAddOrOverride"],
        json!({"encache:user_id": user.id.to_string(), "encache:plan": "free"})
    );
}
