//! Pre-sign-up, called through its real handler with the sample event and the crate's
//! documented shapes: the domain policy, auto-confirm / auto-verify, and bad events.

mod common;

use common::{raw, with, without};
use encache_auth::TriggerError;
use encache_auth::policy::SignUpPolicy;
use encache_auth::pre_sign_up::{Deps, handle};
use encache_shared::error::EventFailure;
use encache_testkit::lambda_event;
use lambda_runtime::Diagnostic;
use serde_json::{Value, json};

fn policy() -> SignUpPolicy {
    SignUpPolicy {
        allowed_domains: vec![],
        blocked_domains: vec!["mailinator.com".into()],
        auto_confirm_users: true,
        auto_verify_email: true,
    }
}

async fn sign_up(event: Value, policy: &SignUpPolicy) -> Result<Value, TriggerError> {
    let deps = Deps {
        policy: policy.clone(),
    };
    handle(&deps, lambda_event(event))
        .await
        .map(|e| serde_json::to_value(e).unwrap())
}

fn event_for(email: &str) -> Value {
    with(
        raw("cognito-pre-sign-up.json"),
        "/request/userAttributes/email",
        json!(email),
    )
}

#[tokio::test]
async fn an_allowed_sign_up_returns_the_whole_event_with_the_configured_response() {
    let event = raw("cognito-pre-sign-up.json");

    let out = sign_up(event.clone(), &policy()).await.unwrap();

    let expected = with(
        event,
        "/response",
        json!({"autoConfirmUser": true, "autoVerifyEmail": true, "autoVerifyPhone": false}),
    );
    // Null validationData comes back as the empty map Cognito also accepts.
    let expected = with(expected, "/request/validationData", json!({}));
    assert_eq!(out, expected);
}

#[tokio::test]
async fn nothing_is_auto_confirmed_or_verified_unless_configured() {
    let policy = SignUpPolicy::default();

    let out = sign_up(raw("cognito-pre-sign-up.json"), &policy)
        .await
        .unwrap();

    assert_eq!(
        out["response"],
        json!({"autoConfirmUser": false, "autoVerifyEmail": false, "autoVerifyPhone": false})
    );
}

#[tokio::test]
async fn every_pre_sign_up_source_is_handled_and_admin_created_users_get_no_auto_flags() {
    for (source, auto) in [
        ("PreSignUp_SignUp", true),
        ("PreSignUp_ExternalProvider", true),
        ("PreSignUp_AdminCreateUser", false),
    ] {
        let event = with(
            raw("cognito-pre-sign-up.json"),
            "/triggerSource",
            json!(source),
        );

        let out = sign_up(event, &policy()).await.unwrap();

        assert_eq!(out["triggerSource"], source);
        assert_eq!(out["response"]["autoConfirmUser"], auto, "{source}");
        assert_eq!(out["response"]["autoVerifyEmail"], auto, "{source}");
    }
}

#[tokio::test]
async fn a_blocked_domain_is_refused_with_a_reason_the_user_can_read() {
    let err = sign_up(event_for("someone@MX.Mailinator.com"), &policy())
        .await
        .unwrap_err();

    let diagnostic = Diagnostic::from(err);
    assert_eq!(
        diagnostic.error_message,
        "email addresses at mx.mailinator.com cannot be used to sign up"
    );
    assert_eq!(diagnostic.error_type, "NotRetryable.Rejected");
}

#[tokio::test]
async fn with_an_allow_list_only_listed_domains_sign_up() {
    let policy = SignUpPolicy {
        allowed_domains: vec!["example.com".into()],
        ..SignUpPolicy::default()
    };

    // The sample's " Ada.Lovelace@Example.com " matches once trimmed and lower-cased.
    assert!(
        sign_up(raw("cognito-pre-sign-up.json"), &policy)
            .await
            .is_ok()
    );
    let err = sign_up(event_for("ada@elsewhere.test"), &policy)
        .await
        .unwrap_err();
    assert!(matches!(err, TriggerError::Rejected(_)));
    assert_eq!(
        err.to_string(),
        "sign-up is limited to approved email domains and elsewhere.test is not one of them"
    );
}

#[tokio::test]
async fn a_blocked_domain_loses_even_when_a_parent_domain_is_allowed() {
    let policy = SignUpPolicy {
        allowed_domains: vec!["example.com".into()],
        blocked_domains: vec!["contractors.example.com".into()],
        ..SignUpPolicy::default()
    };

    let err = sign_up(event_for("x@contractors.example.com"), &policy)
        .await
        .unwrap_err();

    assert!(matches!(err, TriggerError::Rejected(_)), "{err:?}");
}

#[tokio::test]
async fn a_sign_up_without_a_usable_email_is_refused_with_a_clear_reason() {
    let missing = without(
        raw("cognito-pre-sign-up.json"),
        "/request/userAttributes",
        "email",
    );
    let cases = [
        (missing, "an email address is required"),
        (event_for("   "), "an email address is required"),
        (
            event_for("not-an-address"),
            "the email address is not valid",
        ),
    ];
    for (event, reason) in cases {
        let err = sign_up(event, &policy()).await.unwrap_err();
        assert!(matches!(err, TriggerError::Rejected(_)), "{err:?}");
        assert_eq!(err.to_string(), reason);
    }
}

#[tokio::test]
async fn an_unexpected_trigger_source_is_a_clear_non_retryable_error() {
    let event = with(
        raw("cognito-pre-sign-up.json"),
        "/triggerSource",
        json!("PostConfirmation_ConfirmSignUp"),
    );

    let err = sign_up(event, &policy()).await.unwrap_err();

    assert!(!err.retryable());
    assert_eq!(
        err.to_string(),
        "invalid event: unexpected triggerSource \"PostConfirmation_ConfirmSignUp\"; \
         this function handles PreSignUp_SignUp, PreSignUp_AdminCreateUser, PreSignUp_ExternalProvider"
    );
}

#[tokio::test]
async fn malformed_events_name_what_is_wrong() {
    let cases = [
        (json!("just a string"), "the event is not a JSON object"),
        (
            without(raw("cognito-pre-sign-up.json"), "", "triggerSource"),
            "triggerSource is missing",
        ),
        (
            with(
                raw("cognito-pre-sign-up.json"),
                "/request/userAttributes",
                json!(["email"]),
            ),
            "userAttributes",
        ),
    ];
    for (event, needle) in cases {
        let err = sign_up(event, &policy()).await.unwrap_err();
        assert!(matches!(err, TriggerError::InvalidEvent(_)), "{err:?}");
        assert!(err.to_string().contains(needle), "{err}");
    }
}
